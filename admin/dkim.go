package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// DKIMGenerate is the body of POST /api/v1/dkim/{domain}: both optional
// (a selector named by the date, the algorithm rsa).
type DKIMGenerate struct {
	Selector  string `json:"selector,omitempty"`
	Algorithm string `json:"algorithm,omitempty"` // rsa (RSA-2048) or ed25519
}

// DKIMKey is one signing key of a domain, without its private key.
type DKIMKey struct {
	Domain    string `json:"domain"`
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm"`
	Created   string `json:"created"`
	// State is "active" (it signs) or "retired" (replaced by a newer
	// key: keep its record published until the mail it signed has been
	// verified, a week or so, then remove it).
	State string `json:"state"`
}

// DNSRecord is a record to publish.
type DNSRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	// Selector and State say which key it publishes.
	Selector string `json:"selector,omitempty"`
	State    string `json:"state,omitempty"`
}

// DKIMRecords is the answer of GET /api/v1/dkim/{domain}/dns.
type DKIMRecords struct {
	Records []DNSRecord `json:"records"`
}

// DKIMAPI is implemented by an API that keeps DKIM keys (the node's):
// the handler serves /api/v1/dkim only then. An unknown or non-local
// domain is an error wrapping mail.ErrNotFound; a taken selector
// mail.ErrExists; a bad selector or algorithm a permanent error.
type DKIMAPI interface {
	GenerateDKIM(ctx context.Context, domain string, req DKIMGenerate) (DKIMKey, error)
	DKIMKeys(ctx context.Context) ([]DKIMKey, error)
	DKIMRecords(ctx context.Context, domain string) (DKIMRecords, error)
}

func (h *handler) dkimRoutes() {
	if _, ok := h.api.(DKIMAPI); !ok {
		return
	}
	h.mux.HandleFunc("GET /api/v1/dkim", h.dkimKeys)
	h.mux.HandleFunc("POST /api/v1/dkim/{domain}", h.generateDKIM)
	h.mux.HandleFunc("GET /api/v1/dkim/{domain}/dns", h.dkimRecords)
}

func (h *handler) generateDKIM(w http.ResponseWriter, r *http.Request) {
	domain, err := pathDomain(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req DKIMGenerate
	if r.ContentLength != 0 {
		if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if req.Algorithm != "" && req.Algorithm != "rsa" && req.Algorithm != "ed25519" {
		h.fail(w, r, badField("algorithm", fmt.Sprintf("algorithm %q is not rsa or ed25519", req.Algorithm)))
		return
	}
	k, err := h.api.(DKIMAPI).GenerateDKIM(r.Context(), domain, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/dkim/"+url.PathEscape(domain)+"/dns")
	writeJSON(w, http.StatusCreated, k)
}

func (h *handler) dkimKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := h.api.(DKIMAPI).DKIMKeys(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ks == nil {
		ks = []DKIMKey{}
	}
	writeJSON(w, http.StatusOK, ks)
}

func (h *handler) dkimRecords(w http.ResponseWriter, r *http.Request) {
	domain, err := pathDomain(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	recs, err := h.api.(DKIMAPI).DKIMRecords(r.Context(), domain)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if recs.Records == nil {
		recs.Records = []DNSRecord{}
	}
	writeJSON(w, http.StatusOK, recs)
}

// GenerateDKIM makes a new DKIM key for domain (POST /api/v1/dkim/{domain}).
func (c *Client) GenerateDKIM(ctx context.Context, domain string, req DKIMGenerate) (DKIMKey, error) {
	var out DKIMKey
	err := c.call(ctx, http.MethodPost, "/api/v1/dkim/"+url.PathEscape(domain), req, &out)
	return out, err
}

// DKIMKeys lists every DKIM key (GET /api/v1/dkim).
func (c *Client) DKIMKeys(ctx context.Context) ([]DKIMKey, error) {
	var out []DKIMKey
	err := c.call(ctx, http.MethodGet, "/api/v1/dkim", nil, &out)
	return out, err
}

// DKIMRecords returns the records to publish for domain (GET
// /api/v1/dkim/{domain}/dns).
func (c *Client) DKIMRecords(ctx context.Context, domain string) (DKIMRecords, error) {
	var out DKIMRecords
	err := c.call(ctx, http.MethodGet, "/api/v1/dkim/"+url.PathEscape(domain)+"/dns", nil, &out)
	return out, err
}
