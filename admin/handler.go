package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/homing-mail/homing/maillog"
)

// Default request body limits; see Options.
const (
	DefaultBodyLimit   = 1 << 20  // 1 MiB for every JSON body except submit
	DefaultSubmitLimit = 64 << 20 // 64 MiB for POST /api/v1/submit
)

// Options configures NewHandler. The zero value serves the API without a
// token, without /metrics, and logs nowhere.
type Options struct {
	// Token is the administrator's bearer token. "" means no token is
	// required at all (the node allows that only on a loopback listener);
	// ReadOnlyToken is then ignored, and the Host header must be
	// "localhost" or an IP literal, which defeats DNS rebinding.
	Token string
	// ReadOnlyToken may be used for GET and HEAD requests only; any other
	// method with it is refused with 403.
	ReadOnlyToken string
	// Metrics serves GET /metrics (promhttp.HandlerFor(registry, ...)),
	// behind the same token check as the API; nil means 404.
	Metrics http.Handler
	// Logger receives the detail of internal errors and recovered panics;
	// nil discards it.
	Logger *slog.Logger
	// BodyLimit bounds every JSON request body except submit's;
	// 0 means DefaultBodyLimit.
	BodyLimit int64
	// SubmitLimit bounds the body of POST /api/v1/submit; 0 means
	// DefaultSubmitLimit.
	SubmitLimit int64
	// Pprof serves Go's profiles under /debug/pprof/, behind the token
	// and Host checks of the API.
	Pprof bool
	// Console, when set, is the web console, served under /console/
	// without a token (static assets; the console asks the operator for
	// the token and sends it with its API calls); "/" redirects there.
	Console http.Handler
	// MailLog, when set, gets a line for every request that may change
	// something (audit.go).
	MailLog *maillog.Log
}

// handler is the http.Handler NewHandler returns. It holds no mutable state
// after construction and is safe for concurrent use.
type handler struct {
	api      API
	opt      Options
	log      *slog.Logger
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
	token    [sha256.Size]byte // sha256 of Options.Token
	roToken  [sha256.Size]byte // sha256 of Options.ReadOnlyToken
	hasRO    bool
	needAuth bool
}

// NewHandler returns the admin endpoint for api: the JSON API under /api/v1
// (routes.go lists the routes), /metrics, and /healthz and /readyz
// (health.go, without a token). It checks the bearer token
// (in constant time), refuses cross-origin browser requests that change
// state (CSRF), recovers panics as 500, and maps errors as the API contract
// says. The handler is safe for concurrent use.
func NewHandler(api API, opt Options) http.Handler {
	h := &handler{
		api:      api,
		opt:      opt,
		log:      opt.Logger,
		mux:      http.NewServeMux(),
		cop:      http.NewCrossOriginProtection(),
		needAuth: opt.Token != "",
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.opt.BodyLimit <= 0 {
		h.opt.BodyLimit = DefaultBodyLimit
	}
	if h.opt.SubmitLimit <= 0 {
		h.opt.SubmitLimit = DefaultSubmitLimit
	}
	h.token = sha256.Sum256([]byte(opt.Token))
	h.roToken = sha256.Sum256([]byte(opt.ReadOnlyToken))
	h.hasRO = opt.ReadOnlyToken != ""
	h.routes()
	return h
}

// ServeHTTP recovers panics, applies the cross-origin, host and token
// checks, then dispatches to the route.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &recordingWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		h.log.Error("admin: panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
		if !rw.wroteHeader {
			writeJSON(rw, http.StatusInternalServerError, errorBody{Error: "internal error"})
		}
	}()
	if c := h.opt.Console; c != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		switch {
		case r.URL.Path == "/":
			http.Redirect(rw, r, "/console/", http.StatusFound)
			return
		case r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/"):
			c.ServeHTTP(rw, r)
			return
		}
	}
	if (r.URL.Path == pathHealthz || r.URL.Path == pathReadyz) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// No token: probes carry none (see health).
		h.health(rw, r)
		return
	}
	r, au := withAudit(r)
	defer h.logAction(r, au, rw)
	if err := h.cop.Check(r); err != nil {
		writeError(rw, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if r.URL.Path == pathSubmit || h.userRequest(r) {
		// Submit, and an account's change of its own password,
		// authenticate the account with HTTP basic auth instead of the
		// admin token.
		h.mux.ServeHTTP(rw, r)
		return
	}
	if !h.authorize(rw, r) {
		return
	}
	h.mux.ServeHTTP(rw, r)
}

// authorize checks the admin token and writes the refusal when it fails.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if !h.needAuth {
		if !localHost(r.Host) {
			writeError(w, http.StatusForbidden, "without an admin token the Host header must be localhost or an IP address")
			return false
		}
		noteWho(r, "loopback (no token)")
		return true
	}
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="homing"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token")
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1 {
		noteWho(r, "admin token")
		return true
	}
	if h.hasRO && subtle.ConstantTimeCompare(sum[:], h.roToken[:]) == 1 {
		noteWho(r, "read-only token")
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return true
		}
		writeError(w, http.StatusForbidden, "the read-only token allows GET and HEAD only")
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="homing", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "invalid bearer token")
	return false
}

// bearer extracts the token from an "Authorization: Bearer <token>" value
// (the scheme is case-insensitive, RFC 7235 §2.1).
func bearer(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// localHost reports whether the Host header names the machine by an IP
// literal or "localhost", so that a DNS name rebound to a loopback address
// cannot reach a tokenless endpoint from a browser.
func localHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	return net.ParseIP(host) != nil
}

// recordingWriter remembers whether the header was written, so a recovered
// panic knows whether it may still send a 500.
type recordingWriter struct {
	http.ResponseWriter
	wroteHeader bool
	status      int    // the status written (0: none yet)
	head        []byte // the start of an error answer's body, for the log
}

// maxHead bounds what recordingWriter keeps of an error answer.
const maxHead = 1 << 10

func (w *recordingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status = http.StatusOK
	}
	w.wroteHeader = true
	if w.status >= 400 && len(w.head) < maxHead {
		w.head = append(w.head, b[:min(len(b), maxHead-len(w.head))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through (promhttp may stream).
func (w *recordingWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
