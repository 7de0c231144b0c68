package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
	m.HandleFunc("GET /api/v1/nodes", h.nodes)
	m.HandleFunc("GET /api/v1/journey/{id}", h.journey)
	m.HandleFunc("GET /api/v1/accounts/{address}/rules", h.accountRules)
	m.HandleFunc("PUT /api/v1/accounts/{address}/rules", h.setAccountRules)
	m.HandleFunc("GET /api/v1/rules/{scope}", h.rules)
	m.HandleFunc("PUT /api/v1/rules/{scope}", h.setRules)

	m.HandleFunc("POST "+pathSubmit, h.submit)

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
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
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
		return badRequest("address is required")
	case !ok || local == "" || domain == "" || strings.ContainsAny(req.Address, " \t\r\n<>/"):
		return badRequest("address must have the form local@domain")
	case req.Password == "" && req.PasswordHash == "":
		return badRequest("one of password and passwordHash is required")
	case req.Password != "" && req.PasswordHash != "":
		return badRequest("only one of password and passwordHash may be given")
	case req.QuotaBytes < 0:
		return badRequest("quotaBytes must not be negative")
	}
	return nil
}

func badRequest(msg string) error { return &Error{Status: http.StatusBadRequest, Message: msg} }

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
	a, err := h.api.Account(r.Context(), r.PathValue("address"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := h.api.DeleteAccount(r.Context(), r.PathValue("address")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) messages(w http.ResponseWriter, r *http.Request) {
	ms, err := h.api.Messages(r.Context(), r.PathValue("address"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []Message{}
	}
	writeJSON(w, http.StatusOK, ms)
}

func (h *handler) rawMessage(w http.ResponseWriter, r *http.Request) {
	if o, ok := h.api.(RawMessageOpener); ok {
		size, body, err := o.OpenRawMessage(r.Context(), r.PathValue("address"), r.PathValue("id"))
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
	raw, err := h.api.RawMessage(r.Context(), r.PathValue("address"), r.PathValue("id"))
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
		err = badRequest("scope must be node or cluster")
	}
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
	writeJSON(w, http.StatusOK, q)
}

func (h *handler) queueEntry(w http.ResponseWriter, r *http.Request) {
	e, err := h.api.QueueEntry(r.Context(), r.PathValue("id"))
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
		var err error
		if node := r.URL.Query().Get("node"); node != "" {
			err = h.api.NodeQueueAction(r.Context(), node, r.PathValue("id"), action)
		} else {
			err = h.api.QueueAction(r.Context(), r.PathValue("id"), action)
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
		h.fail(w, r, badRequest("queueMode must be one of "+QueueModeLocally+", "+QueueModeLocallyForOthers+", "+QueueModeRemotely))
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
	rs, err := h.api.AccountRules(r.Context(), r.PathValue("address"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeRules(w, rs)
}

func (h *handler) setAccountRules(w http.ResponseWriter, r *http.Request) {
	var list []json.RawMessage
	if err := decode(w, r, h.opt.BodyLimit, &list); err != nil {
		h.fail(w, r, err)
		return
	}
	raw, _ := json.Marshal(list)
	rs, err := h.api.SetAccountRules(r.Context(), r.PathValue("address"), raw)
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
		return "", &Error{Status: http.StatusNotFound, Message: "rule scope must be server or cluster"}
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

func (h *handler) nodes(w http.ResponseWriter, r *http.Request) {
	ns, err := h.api.Nodes(r.Context())
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
	ev, err := h.api.Journey(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ev == nil {
		ev = []JourneyEvent{}
	}
	writeJSON(w, http.StatusOK, ev)
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
		h.fail(w, r, badRequest("to: at least one recipient is required"))
		return
	}
	for _, to := range req.To {
		if to == "" || strings.ContainsAny(to, "\r\n") {
			h.fail(w, r, badRequest("to: recipients must be non-empty addresses"))
			return
		}
	}
	if req.Raw == "" {
		h.fail(w, r, badRequest("raw: the message is required"))
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
