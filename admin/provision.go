package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// Provisioning for the whole cluster: the local domains (replicated to
// every member), aliases and catch-alls, and the changes of an account
// (its password, by the administrator or by the account's user with the
// old one; its quota; disabled or not).
type Provisioning interface {
	// Domains lists the local domains, each "active" or "removing".
	Domains(ctx context.Context) ([]Domain, error)
	// AddDomain makes domain local on every member (409 when it is).
	AddDomain(ctx context.Context, domain string) (Domain, error)
	// RemoveDomain removes it from every member, once none of its
	// accounts and aliases is left (409 otherwise); a member that does
	// not confirm in time is 503 with the domain still local everywhere.
	RemoveDomain(ctx context.Context, domain string) error

	// Aliases lists every alias of the cluster; Target is an account,
	// or an address elsewhere the mail is forwarded to. The alias
	// *@domain is the domain's catch-all.
	Aliases(ctx context.Context) ([]Alias, error)
	AddAlias(ctx context.Context, a Alias) (Alias, error)
	RemoveAlias(ctx context.Context, alias string) error

	// SetPassword is the administrator's: the password must pass the
	// policy (a 400 naming "password" otherwise).
	SetPassword(ctx context.Context, address, password string) error
	// ChangePassword is the account's own, authenticated with the old
	// password, checked and limited like a login from client (401 after
	// the guard's delay, 429 once the client's failures are used up).
	ChangePassword(ctx context.Context, client netip.Addr, address, old, password string) error
	// UpdateAccount changes the fields of u that are set.
	UpdateAccount(ctx context.Context, address string, u AccountUpdate) (Account, error)
}

// Domain is one local domain, GET /api/v1/domains.
type Domain struct {
	Domain string `json:"domain"`
	State  string `json:"state"` // active, removing
}

// AddDomain is the body of POST /api/v1/domains.
type AddDomain struct {
	Domain string `json:"domain"`
}

// Alias is one alias: mail for Alias goes to Target.
type Alias struct {
	Alias  string `json:"alias"`
	Target string `json:"target"`
}

// SetPassword is the body of PUT /api/v1/accounts/{address}/password.
type SetPassword struct {
	Password string `json:"password"`
}

// AccountUpdate is the body of PATCH /api/v1/accounts/{address}; nil
// fields are left as they are.
type AccountUpdate struct {
	QuotaBytes *int64 `json:"quotaBytes,omitempty"` // 0: unlimited
	Disabled   *bool  `json:"disabled,omitempty"`
}

// The paths of an account's own requests (basic auth, not the token).
const passwordSuffix = "/password"

func (h *handler) provisionRoutes() {
	m := h.mux
	m.HandleFunc("GET /api/v1/domains", h.domains)
	m.HandleFunc("POST /api/v1/domains", h.addDomain)
	m.HandleFunc("DELETE /api/v1/domains/{domain}", h.removeDomain)
	m.HandleFunc("GET /api/v1/aliases", h.aliases)
	m.HandleFunc("POST /api/v1/aliases", h.addAlias)
	m.HandleFunc("DELETE /api/v1/aliases/{alias}", h.removeAlias)
	m.HandleFunc("PUT /api/v1/accounts/{address}"+passwordSuffix, h.setPassword)
	m.HandleFunc("PATCH /api/v1/accounts/{address}", h.updateAccount)
}

// userRequest reports whether r is an account's own request, which it
// authenticates with HTTP basic auth instead of the admin token: a
// password change with the old password.
func (h *handler) userRequest(r *http.Request) bool {
	if r.Method != http.MethodPut || !strings.HasPrefix(r.URL.Path, "/api/v1/accounts/") || !strings.HasSuffix(r.URL.Path, passwordSuffix) {
		return false
	}
	_, _, ok := r.BasicAuth()
	return ok
}

// pathDomain is the {domain} of the request, lower case without a
// trailing dot: a name of letters, digits, hyphens and dots (the API
// decides whether it is one of its domains).
func pathDomain(r *http.Request) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.PathValue("domain")), "."))
	if err := checkDomain(d); err != nil {
		return "", badField("domain", err.Error())
	}
	return d, nil
}

// checkDomain says what is wrong with a domain name, nil when nothing is.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("domain is required")
	}
	if len(d) > 253 || strings.ContainsFunc(d, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.')
	}) || strings.Contains(d, "..") || strings.HasPrefix(d, ".") || strings.HasPrefix(d, "-") {
		return fmt.Errorf("domain %q is not a domain name (letters, digits, hyphens and dots)", d)
	}
	return nil
}

func (h *handler) domains(w http.ResponseWriter, r *http.Request) {
	ds, err := h.api.Domains(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []Domain{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (h *handler) addDomain(w http.ResponseWriter, r *http.Request) {
	var req AddDomain
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	noteObject(r, req.Domain)
	if err := checkDomain(req.Domain); err != nil {
		h.fail(w, r, badField("domain", err.Error()))
		return
	}
	d, err := h.api.AddDomain(r.Context(), req.Domain)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/domains/"+url.PathEscape(d.Domain))
	writeJSON(w, http.StatusCreated, d)
}

func (h *handler) removeDomain(w http.ResponseWriter, r *http.Request) {
	d, err := pathDomain(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.api.RemoveDomain(r.Context(), d); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) aliases(w http.ResponseWriter, r *http.Request) {
	as, err := h.api.Aliases(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if as == nil {
		as = []Alias{}
	}
	writeJSON(w, http.StatusOK, as)
}

// aliasAddress checks an alias: local@domain, or *@domain for the
// domain's catch-all.
func aliasAddress(field, a string) error {
	if local, domain, ok := strings.Cut(a, "@"); ok && local == "*" {
		if err := checkDomain(domain); err != nil {
			return badField(field, fmt.Sprintf("%s %q: %v", field, a, err))
		}
		return nil
	}
	if _, err := mail.ParseAddress(strings.TrimSpace(a)); err != nil {
		return badField(field, fmt.Sprintf("%s %q: %v", field, a, addressReason(err)))
	}
	return nil
}

func (h *handler) addAlias(w http.ResponseWriter, r *http.Request) {
	var req Alias
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	noteObject(r, req.Alias+" -> "+req.Target)
	if req.Alias == "" {
		h.fail(w, r, badField("alias", "alias is required"))
		return
	}
	if err := aliasAddress("alias", req.Alias); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Target == "" {
		h.fail(w, r, badField("target", "target is required"))
		return
	}
	if _, err := mail.ParseAddress(strings.TrimSpace(req.Target)); err != nil {
		h.fail(w, r, badField("target", fmt.Sprintf("target %q: %v", req.Target, addressReason(err))))
		return
	}
	a, err := h.api.AddAlias(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/aliases/"+url.PathEscape(a.Alias))
	writeJSON(w, http.StatusCreated, a)
}

func (h *handler) removeAlias(w http.ResponseWriter, r *http.Request) {
	a := r.PathValue("alias")
	if err := aliasAddress("alias", a); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.api.RemoveAlias(r.Context(), a); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setPassword is the administrator's (bearer token) or the account's own
// (basic auth with its address and old password) change of its password.
func (h *handler) setPassword(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	user, old, own := r.BasicAuth()
	if own {
		noteWho(r, "account "+user)
		if !strings.EqualFold(user, addr) {
			h.fail(w, r, &Error{Status: http.StatusForbidden, Message: fmt.Sprintf("%s may change only its own password", user)})
			return
		}
	}
	var req SetPassword
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Password == "" {
		h.fail(w, r, badField("password", "password is required"))
		return
	}
	if own {
		var client netip.Addr
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			client = ap.Addr().Unmap()
		}
		err = h.api.ChangePassword(r.Context(), client, addr, old, req.Password)
		if isAuthFailure(err) {
			w.Header().Set("WWW-Authenticate", `Basic realm="homing", charset="UTF-8"`)
		}
	} else {
		err = h.api.SetPassword(r.Context(), addr, req.Password)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) updateAccount(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req AccountUpdate
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case req.QuotaBytes == nil && req.Disabled == nil:
		h.fail(w, r, badField("body", "nothing to change: give quotaBytes or disabled"))
		return
	case req.QuotaBytes != nil && *req.QuotaBytes < 0:
		h.fail(w, r, badField("quotaBytes", "quotaBytes must not be negative (0: unlimited)"))
		return
	}
	a, err := h.api.UpdateAccount(r.Context(), addr, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// The client's side.

// Domains is GET /api/v1/domains.
func (c *Client) Domains(ctx context.Context) ([]Domain, error) {
	var out []Domain
	err := c.call(ctx, http.MethodGet, "/api/v1/domains", nil, &out)
	return out, err
}

// AddDomain is POST /api/v1/domains.
func (c *Client) AddDomain(ctx context.Context, domain string) (Domain, error) {
	var out Domain
	err := c.call(ctx, http.MethodPost, "/api/v1/domains", AddDomain{Domain: domain}, &out)
	return out, err
}

// RemoveDomain is DELETE /api/v1/domains/{domain}.
func (c *Client) RemoveDomain(ctx context.Context, domain string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/domains/"+url.PathEscape(domain), nil, nil)
}

// Aliases is GET /api/v1/aliases.
func (c *Client) Aliases(ctx context.Context) ([]Alias, error) {
	var out []Alias
	err := c.call(ctx, http.MethodGet, "/api/v1/aliases", nil, &out)
	return out, err
}

// AddAlias is POST /api/v1/aliases.
func (c *Client) AddAlias(ctx context.Context, a Alias) (Alias, error) {
	var out Alias
	err := c.call(ctx, http.MethodPost, "/api/v1/aliases", a, &out)
	return out, err
}

// RemoveAlias is DELETE /api/v1/aliases/{alias}.
func (c *Client) RemoveAlias(ctx context.Context, alias string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/aliases/"+url.PathEscape(alias), nil, nil)
}

// SetPassword is PUT /api/v1/accounts/{address}/password with the admin
// token.
func (c *Client) SetPassword(ctx context.Context, address, password string) error {
	return c.call(ctx, http.MethodPut, "/api/v1/accounts/"+url.PathEscape(address)+passwordSuffix, SetPassword{Password: password}, nil)
}

// ChangePassword is the account's own PUT /api/v1/accounts/{address}/password,
// with basic auth (address and the old password) instead of the token.
func (c *Client) ChangePassword(ctx context.Context, address, old, password string) error {
	auth := func(r *http.Request) { r.SetBasicAuth(address, old) }
	resp, err := c.send(ctx, http.MethodPut, "/api/v1/accounts/"+url.PathEscape(address)+passwordSuffix, SetPassword{Password: password}, auth)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// UpdateAccount is PATCH /api/v1/accounts/{address}.
func (c *Client) UpdateAccount(ctx context.Context, address string, u AccountUpdate) (Account, error) {
	var out Account
	err := c.call(ctx, http.MethodPatch, "/api/v1/accounts/"+url.PathEscape(address), u, &out)
	return out, err
}
