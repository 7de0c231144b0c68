package admin

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/homing-mail/homing/maillog"
)

// Every request that may change something (any method but GET and HEAD)
// is an administrator's action: the delivery log gets one line saying who
// (which token, or which account for a user's own request), what, on
// which object, from where, and how it ended (the status, and the error's
// text when it failed).

// audit is what the handlers learn about the action of one request.
type audit struct {
	who    string
	object string
}

type auditKey struct{}

// noteObject names what the request acts on when its path does not (the
// address of a new account, the domain added).
func noteObject(r *http.Request, object string) {
	if a, ok := r.Context().Value(auditKey{}).(*audit); ok {
		a.object = object
	}
}

// noteWho says who made the request.
func noteWho(r *http.Request, who string) {
	if a, ok := r.Context().Value(auditKey{}).(*audit); ok {
		a.who = who
	}
}

// withAudit gives r the audit record of its request.
func withAudit(r *http.Request) (*http.Request, *audit) {
	a := &audit{who: "unauthenticated"}
	return r.WithContext(context.WithValue(r.Context(), auditKey{}, a)), a
}

// actions names the routes' actions for the log; a route not listed is
// named by its pattern.
var actions = map[string]string{
	"POST /api/v1/accounts":                   "create account",
	"DELETE /api/v1/accounts/{address}":       "delete account",
	"PATCH /api/v1/accounts/{address}":        "change account",
	"PUT /api/v1/accounts/{address}/password": "set password",
	"PUT /api/v1/accounts/{address}/rules":    "set account rules",
	"DELETE /api/v1/queue/{id}":               "delete queued message",
	"POST /api/v1/queue/{id}/retry":           "retry queued message",
	"POST /api/v1/queue/{id}/hold":            "hold queued message",
	"POST /api/v1/queue/{id}/release":         "release queued message",
	"PUT /api/v1/settings":                    "change settings",
	"PUT /api/v1/rules/{scope}":               "set rules",
	"POST /api/v1/domains":                    "add domain",
	"DELETE /api/v1/domains/{domain}":         "remove domain",
	"POST /api/v1/aliases":                    "add alias",
	"DELETE /api/v1/aliases/{alias}":          "remove alias",
}

// pathObjects are the path values that name an action's object, in the
// order they are written.
var pathObjects = []string{"address", "id", "domain", "alias", "scope"}

// logAction writes the line of a request that may have changed something.
func (h *handler) logAction(r *http.Request, a *audit, rw *recordingWriter) {
	if h.opt.MailLog == nil || r.Method == http.MethodGet || r.Method == http.MethodHead || r.URL.Path == pathSubmit {
		return
	}
	action := actions[r.Pattern]
	if action == "" {
		action = r.Method + " " + r.URL.Path
		if r.Pattern != "" {
			action = r.Pattern
		}
	}
	object := a.object
	if object == "" {
		var parts []string
		for _, k := range pathObjects {
			if v := r.PathValue(k); v != "" {
				parts = append(parts, v)
			}
		}
		object = strings.Join(parts, " ")
	}
	if node := r.URL.Query().Get("node"); node != "" {
		object = strings.TrimSpace(object + " on " + node)
	}
	client := r.RemoteAddr
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	entry := maillog.Admin{Who: a.who, Action: action, Object: object, Client: client, Code: status}
	if status >= 400 {
		var body errorBody
		if json.Unmarshal(rw.head, &body) == nil {
			entry.Error = body.Error
		}
	}
	h.opt.MailLog.AdminAction(entry)
}
