package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/homing-mail/homing/mail"
)

// The fixed paths of the external contract (design.md) that need naming.
const (
	pathSubmit = "/api/v1/submit"
)

// routes registers every endpoint. Method-qualified patterns make the mux
// reject other methods; notFound turns those into JSON 405 answers.
func (h *handler) routes() {
	m := h.mux
	m.HandleFunc("GET /api/v1/cluster", h.cluster)

	m.HandleFunc("POST /api/v1/accounts", h.createAccount)
	m.HandleFunc("GET /api/v1/accounts", h.accounts)
	m.HandleFunc("GET /api/v1/accounts/{address}", h.account)
	m.HandleFunc("DELETE /api/v1/accounts/{address}", h.deleteAccount)
	m.HandleFunc("GET /api/v1/accounts/{address}/messages", h.messages)
	m.HandleFunc("GET /api/v1/accounts/{address}/messages/{id}/raw", h.rawMessage)
	h.mailboxRoutes(m)

	m.HandleFunc("GET /api/v1/queue", h.queue)
	m.HandleFunc("GET /api/v1/queue/{id}", h.queueEntry)
	m.HandleFunc("DELETE /api/v1/queue/{id}", h.queueAction(ActionDelete))
	m.HandleFunc("POST /api/v1/queue/{id}/retry", h.queueAction(ActionRetry))
	m.HandleFunc("POST /api/v1/queue/{id}/hold", h.queueAction(ActionHold))
	m.HandleFunc("POST /api/v1/queue/{id}/release", h.queueAction(ActionRelease))

	m.HandleFunc("GET /api/v1/settings", h.settings)
	m.HandleFunc("PUT /api/v1/settings", h.updateSettings)

	m.HandleFunc("GET /api/v1/actors", h.actors)
	m.HandleFunc("GET /api/v1/stats", h.stats)
	m.HandleFunc("GET /api/v1/partitions", h.partitions)
	m.HandleFunc("POST /api/v1/partitions/{id}/move", h.movePartition)
	m.HandleFunc("GET /api/v1/nodes", h.nodes)
	m.HandleFunc("GET /api/v1/journey/{id}", h.journey)
	m.HandleFunc("GET /api/v1/journey", h.findMessages)
	m.HandleFunc("GET /api/v1/accounts/{address}/rules", h.accountRules)
	m.HandleFunc("PUT /api/v1/accounts/{address}/rules", h.setAccountRules)
	m.HandleFunc("GET /api/v1/rules/{scope}", h.rules)
	m.HandleFunc("PUT /api/v1/rules/{scope}", h.setRules)

	h.provisionRoutes()
	h.observeRoutes()

	m.HandleFunc("POST "+pathSubmit, h.submit)
	h.dkimRoutes()
	// ServeHTTP answers GET and HEAD before the token check; these make
	// other methods a 405.
	m.HandleFunc("GET "+pathHealthz, h.health)
	m.HandleFunc("GET "+pathReadyz, h.health)

	if h.opt.Metrics != nil {
		m.Handle("GET /metrics", h.opt.Metrics)
	}
	if h.opt.Pprof {
		// Go's profiler shows internals (and the command line): behind
		// the same token and Host checks as the API.
		m.HandleFunc("GET /debug/pprof/", pprof.Index)
		m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	m.HandleFunc("/", h.notFound)
}

// notFound answers every request no route matched: 405 with Allow when the
// path exists for other methods, 404 otherwise.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = method
		if _, pattern := h.mux.Handler(&probe); pattern != "" && pattern != "/" {
			allow = append(allow, method)
			if method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) > 0 {
		sort.Strings(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return
	}
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
}

func (h *handler) cluster(w http.ResponseWriter, r *http.Request) {
	c, err := h.api.Cluster(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if c.Members == nil {
		c.Members = []Member{}
	}
	if c.Partitions == nil {
		c.Partitions = []Partition{}
	}
	for i := range c.Members {
		if c.Members[i].Roles == nil {
			c.Members[i].Roles = []string{}
		}
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *handler) createAccount(w http.ResponseWriter, r *http.Request) {
	var req CreateAccount
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	noteObject(r, req.Address)
	if err := validateCreateAccount(req); err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.api.CreateAccount(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/accounts/"+url.PathEscape(a.Address))
	writeJSON(w, http.StatusCreated, a)
}

// validateCreateAccount checks what the handler can check without the
// node: an address of the form local@domain, exactly one of password and
// passwordHash, and a quota that is not negative.
func validateCreateAccount(req CreateAccount) error {
	local, domain, ok := strings.Cut(req.Address, "@")
	switch {
	case req.Address == "":
		return badField("address", "address is required")
	case !ok || local == "" || domain == "" || strings.ContainsAny(req.Address, " \t\r\n<>/"):
		return badField("address", fmt.Sprintf("address %q must have the form local@domain", req.Address))
	case req.Password == "" && req.PasswordHash == "":
		return badField("password", "one of password and passwordHash is required")
	case req.Password != "" && req.PasswordHash != "":
		return badField("passwordHash", "only one of password and passwordHash may be given")
	case req.QuotaBytes < 0:
		return badField("quotaBytes", "quotaBytes must not be negative")
	}
	return nil
}

// Limits of the identifiers in paths.
const maxIDLen = 128 // queue and message ids are 24 characters

// pathAddress is the {address} of the request, checked for the form
// local@domain (mail.ParseAddress): an address that cannot name an
// account is a 400 naming the field, never a lookup.
func pathAddress(r *http.Request) (string, error) {
	a := r.PathValue("address")
	if _, err := mail.ParseAddress(strings.TrimSpace(a)); err != nil {
		return "", badField("address", fmt.Sprintf("address %q: %v", a, addressReason(err)))
	}
	return a, nil
}

// addressReason is a parse error of mail.ParseAddress without the
// sentinel's words ("bad address syntax: no @" is "no @").
func addressReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), mail.ErrBadAddress.Error()+": ")
	if msg == "no @" {
		return "not of the form local@domain (no @)"
	}
	return msg
}

// pathID is the {id} of the request (a queue or message id): printable,
// no blanks or slashes, at most maxIDLen bytes; otherwise a 400 naming
// the field. An id of the right form that names nothing is the API's 404.
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	switch {
	case id == "":
		return "", badField("id", "id is required")
	case len(id) > maxIDLen:
		return "", badField("id", fmt.Sprintf("id is longer than %d bytes", maxIDLen))
	case !utf8.ValidString(id) || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c == '/' || c == 0x7f || unicode.IsControl(c) }):
		return "", badField("id", fmt.Sprintf("id %q has a blank, a slash or a control character", id))
	}
	return id, nil
}

func (h *handler) accounts(w http.ResponseWriter, r *http.Request) {
	as, err := h.api.Accounts(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if as == nil {
		as = []Account{}
	}
	writeJSON(w, http.StatusOK, as)
}

func (h *handler) account(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.api.Account(r.Context(), addr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) deleteAccount(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.api.DeleteAccount(r.Context(), addr); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) messages(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.listMessages(w, r, addr) // mailbox_routes.go: ?folder, paging
}

func (h *handler) rawMessage(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if o, ok := h.api.(RawMessageOpener); ok {
		size, body, err := o.OpenRawMessage(r.Context(), addr, id)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		defer body.Close()
		w.Header().Set("Content-Type", "message/rfc822")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if _, err := io.CopyBuffer(w, body, make([]byte, 32<<10)); err != nil {
			// The status is sent: cut the response short, so that the
			// client never takes what it got for the whole message.
			panic(http.ErrAbortHandler)
		}
		return
	}
	raw, err := h.api.RawMessage(r.Context(), addr, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(raw)
}

func (h *handler) queue(w http.ResponseWriter, r *http.Request) {
	var q []QueueEntry
	var err error
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "node":
		q, err = h.api.Queue(r.Context())
	case "cluster":
		q, err = h.api.ClusterQueue(r.Context())
	default:
		err = badField("scope", fmt.Sprintf("scope %q: scope must be node or cluster", scope))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q, total, err := queuePage(q, r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if q == nil {
		q = []QueueEntry{}
	}
	for i := range q {
		if q[i].Recipients == nil {
			q[i].Recipients = []QueueRecipient{}
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	writeJSON(w, http.StatusOK, q)
}

func (h *handler) queueEntry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	e, err := h.api.QueueEntry(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if e.Recipients == nil {
		e.Recipients = []QueueRecipient{}
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *handler) queueAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if node := r.URL.Query().Get("node"); node != "" {
			err = h.api.NodeQueueAction(r.Context(), node, id, action)
		} else {
			err = h.api.QueueAction(r.Context(), id, action)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *handler) settings(w http.ResponseWriter, r *http.Request) {
	s, err := h.api.Settings(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeSettings(w, s)
}

func (h *handler) updateSettings(w http.ResponseWriter, r *http.Request) {
	var req SettingsUpdate
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.QueueMode != nil && !ValidQueueMode(*req.QueueMode) {
		h.fail(w, r, badField("queueMode", fmt.Sprintf("queueMode %q: queueMode must be one of %s, %s, %s", *req.QueueMode,
			QueueModeLocally, QueueModeLocallyForOthers, QueueModeRemotely)))
		return
	}
	var s Settings
	var err error
	if node := r.URL.Query().Get("node"); node != "" {
		s, err = h.api.NodeUpdateSettings(r.Context(), node, req)
	} else {
		s, err = h.api.UpdateSettings(r.Context(), req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeSettings(w, s)
}

func writeSettings(w http.ResponseWriter, s Settings) {
	if s.Roles == nil {
		s.Roles = []string{}
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) actors(w http.ResponseWriter, r *http.Request) {
	a, err := h.api.Actors(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if a == nil {
		a = map[string]int{}
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) accountRules(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rs, err := h.api.AccountRules(r.Context(), addr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeRules(w, rs)
}

func (h *handler) setAccountRules(w http.ResponseWriter, r *http.Request) {
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var list []json.RawMessage
	if err := decode(w, r, h.opt.BodyLimit, &list); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, _ := json.Marshal(list)
	rs, err := h.api.SetAccountRules(r.Context(), addr, raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeRules(w, rs)
}

// writeRules writes a rule set; no rules are [], never null.
func writeRules(w http.ResponseWriter, rs RuleSet) {
	if len(rs.Rules) == 0 {
		rs.Rules = json.RawMessage("[]")
	}
	writeJSON(w, http.StatusOK, rs)
}

func ruleScope(r *http.Request) (string, error) {
	s := r.PathValue("scope")
	if s != "server" && s != "cluster" {
		return "", &Error{Status: http.StatusNotFound, Message: "rule scope must be server or cluster", Field: "scope"}
	}
	return s, nil
}

func (h *handler) rules(w http.ResponseWriter, r *http.Request) {
	scope, err := ruleScope(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rs, err := h.api.Rules(r.Context(), scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeRules(w, rs)
}

// setRules takes the rule array itself as the body.
func (h *handler) setRules(w http.ResponseWriter, r *http.Request) {
	scope, err := ruleScope(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var list []json.RawMessage
	if err := decode(w, r, h.opt.BodyLimit, &list); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, _ := json.Marshal(list)
	rs, err := h.api.SetRules(r.Context(), scope, raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeRules(w, rs)
}

// nodesTimeout bounds GET /api/v1/nodes: a member that has not answered
// by then is listed with its error (unreachable) rather than holding the
// whole answer (homing ctl nodes, the console) for the channel's own
// request timeout.
const nodesTimeout = 3 * time.Second

func (h *handler) nodes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), nodesTimeout)
	defer cancel()
	ns, err := h.api.Nodes(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ns == nil {
		ns = []NodeInfo{}
	}
	for i := range ns {
		if ns[i].Partitions == nil {
			ns[i].Partitions = []PartitionStatus{}
		}
		if ns[i].Actors == nil {
			ns[i].Actors = map[string]int{}
		}
		if ns[i].Queue.ByDomain == nil {
			ns[i].Queue.ByDomain = map[string]int{}
		}
		if ns[i].Roles == nil {
			ns[i].Roles = []string{}
		}
	}
	writeJSON(w, http.StatusOK, ns)
}

func (h *handler) journey(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ev, err := h.api.Journey(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ev == nil {
		ev = []JourneyEvent{}
	}
	writeJSON(w, http.StatusOK, Journey{Steps: ev})
}

func (h *handler) partitions(w http.ResponseWriter, r *http.Request) {
	ps, err := h.api.Partitions(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []PartitionStatus{}
	}
	writeJSON(w, http.StatusOK, ps)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	s, err := h.api.Stats(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// submit is mail generated on this node by an account (design.md, mail
// flow 4): HTTP basic auth (RFC 7617) with the account's address and
// password, the recipients and the RFC 5322 message in the body.
func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	const challenge = `Basic realm="homing", charset="UTF-8"`
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, http.StatusUnauthorized, "basic authentication with the account's address and password is required")
		return
	}
	var req SubmitRequest
	if err := decode(w, r, h.opt.SubmitLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(req.To) == 0 {
		h.fail(w, r, badField("to", "to: at least one recipient is required"))
		return
	}
	for _, to := range req.To {
		if _, err := mail.ParseAddress(strings.TrimSpace(to)); err != nil {
			h.fail(w, r, badField("to", fmt.Sprintf("to: recipient %q: %v", to, addressReason(err))))
			return
		}
	}
	if req.Raw == "" {
		h.fail(w, r, badField("raw", "raw: the message is required"))
		return
	}
	// The peer's address, never a forwarded-for header: failed logins are
	// limited by the client's network, which a header would let anyone
	// choose.
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		client = ap.Addr().Unmap()
	}
	id, err := h.api.Submit(r.Context(), client, user, pass, req.To, []byte(req.Raw))
	if err != nil {
		if isAuthFailure(err) {
			w.Header().Set("WWW-Authenticate", challenge)
		}
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, SubmitResponse{ID: id})
}
