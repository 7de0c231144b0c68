package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/homing-mail/homing/testkit"
)

// Every route of a real node, sent bad input (bad addresses, bad ids, bad
// JSON, bad values) and unknown things: 400 for what is wrong with the
// request, naming the field at fault in the message and as "field"; 404
// for what does not exist, saying what in words (no "not found:" or
// "storage:" of the inside); never 500.
func TestBadInputOverHTTP(t *testing.T) {
	n := testkit.StartNode(t, "n1")
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-for-tests-123", 0)
	base := "http://" + n.AdminAddr()
	const msg = `"raw":"Subject: s\r\n\r\nhi\r\n"`

	for _, tc := range []struct {
		method, path, body string
		user               string // basic auth user for submit ("": none); the password is alice's
		status             int
		field              string // the "field" of the answer ("-": none)
		words              string // in the message
	}{
		// Accounts: addresses in the path and the body.
		{"GET", "/api/v1/accounts/nodomain", "", "", 400, "address", `address "nodomain": not of the form local@domain`},
		{"GET", "/api/v1/accounts/a@b@example.test", "", "", 400, "address", "relay syntax"},
		{"GET", "/api/v1/accounts/a%00b@example.test", "", "", 400, "address", "control character"},
		{"GET", "/api/v1/accounts/a@exa%20mple.test", "", "", 400, "address", "address"},
		{"GET", "/api/v1/accounts/ghost@example.test", "", "", 404, "address", "no account ghost@example.test"},
		{"GET", "/api/v1/accounts/ghost@other.test", "", "", 404, "address", "other.test is not a local domain"},
		{"DELETE", "/api/v1/accounts/ghost@example.test", "", "", 404, "address", "no account ghost@example.test"},
		{"DELETE", "/api/v1/accounts/nodomain", "", "", 400, "address", "address"},
		{"GET", "/api/v1/accounts/ghost@example.test/messages", "", "", 404, "address", "no account ghost@example.test"},
		{"GET", "/api/v1/accounts/nodomain/messages", "", "", 400, "address", "address"},
		{"GET", "/api/v1/accounts/alice@example.test/messages/7/raw", "", "", 404, "id", "no message 7 in alice@example.test"},
		{"GET", "/api/v1/accounts/ghost@example.test/messages/7/raw", "", "", 404, "address", "no account ghost@example.test"},
		{"GET", "/api/v1/accounts/alice@example.test/messages/..%2F..%2Fx/raw", "", "", 400, "id", "id"},
		{"GET", "/api/v1/accounts/ghost@example.test/rules", "", "", 404, "address", "no account ghost@example.test"},
		{"PUT", "/api/v1/accounts/ghost@example.test/rules", "[]", "", 404, "address", "no account ghost@example.test"},
		{"PUT", "/api/v1/accounts/alice@example.test/rules", `{"x":1}`, "", 400, "body", "must be an array"},
		{"PUT", "/api/v1/accounts/alice@example.test/rules", `[{"bogus":1}]`, "", 400, "rules", `unknown field "bogus"`},
		{"PUT", "/api/v1/accounts/alice@example.test/rules", `[{}]`, "", 400, "rules", "name is empty"},
		{"POST", "/api/v1/accounts", `{"address":`, "", 400, "body", "invalid JSON"},
		{"POST", "/api/v1/accounts", `[]`, "", 400, "body", "must be an object"},
		{"POST", "/api/v1/accounts", ``, "", 400, "body", "body is empty"},
		{"POST", "/api/v1/accounts", `{"address":"bad","password":"p"}`, "", 400, "address", `address "bad"`},
		{"POST", "/api/v1/accounts", `{"address":"a@b@example.test","password":"p"}`, "", 400, "address", "relay syntax"},
		{"POST", "/api/v1/accounts", `{"address":"x@other.test","password":"p"}`, "", 400, "address", "other.test is not a local domain"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","password":"p","quotaBytes":-1}`, "", 400, "quotaBytes", "quotaBytes"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","password":"p","quotaBytes":"1G"}`, "", 400, "quotaBytes", "must be a number"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","passwordHash":"nothash"}`, "", 400, "passwordHash", "passwordHash"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","password":"p","passwordHash":"$2b$10$x"}`, "", 400, "passwordHash", "passwordHash"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test"}`, "", 400, "password", "password"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","pasword":"p"}`, "", 400, "pasword", `unknown field "pasword"`},
		{"POST", "/api/v1/accounts", `{"address":"alice@example.test","password":"a-long-password-9"}`, "", 409, "address", "account alice@example.test exists already"},
		{"POST", "/api/v1/accounts", `{"address":"x@example.test","password":"short"}`, "", 400, "password", "at least 8 characters"},
		{"POST", "/api/v1/accounts", `{"address":"carol@example.test","password":"carol-2026!"}`, "", 400, "password", "must not contain the account's name (carol)"},
		// The queue and journeys: ids.
		{"GET", "/api/v1/queue/NOSUCH", "", "", 404, "id", "no message NOSUCH in the queue of n1"},
		{"GET", "/api/v1/queue/a%20b", "", "", 400, "id", "id"},
		{"DELETE", "/api/v1/queue/NOSUCH", "", "", 404, "id", "no message NOSUCH in the queue of n1"},
		{"POST", "/api/v1/queue/NOSUCH/retry", "", "", 404, "id", "no message NOSUCH"},
		{"POST", "/api/v1/queue/NOSUCH/hold", "", "", 404, "id", "no message NOSUCH"},
		{"POST", "/api/v1/queue/x%2Fy/release", "", "", 400, "id", "id"},
		{"POST", "/api/v1/queue/NOSUCH/hold?node=ghost", "", "", 404, "-", "no node named ghost"},
		{"GET", "/api/v1/queue?scope=everything", "", "", 400, "scope", `scope "everything"`},
		{"GET", "/api/v1/journey/NOSUCH", "", "", 404, "-", "NOSUCH"},
		{"GET", "/api/v1/journey/a%09b", "", "", 400, "id", "id"},
		{"GET", "/api/v1/journey?since=yesterday", "", "", 400, "since", "neither an RFC 3339 time"},
		{"GET", "/api/v1/journey?until=-5m", "", "", 400, "until", "negative"},
		{"GET", "/api/v1/journey?since=1h&until=2h", "", "", 400, "until", "until is before since"},
		{"GET", "/api/v1/journey?limit=0", "", "", 400, "limit", "from 1 to 1000"},
		{"GET", "/api/v1/journey?limit=many", "", "", 400, "limit", "limit"},
		{"GET", "/api/v1/journey?sender=x", "", "", 400, "sender", "unknown parameter"},
		{"GET", "/api/v1/journey?from=a%0Ab", "", "", 400, "from", "control character"},
		// Settings and rules: values.
		{"PUT", "/api/v1/settings", `{"queueMode":"sideways"}`, "", 400, "queueMode", `queueMode "sideways"`},
		{"PUT", "/api/v1/settings", `{"queueMode":5}`, "", 400, "queueMode", "must be a string"},
		{"PUT", "/api/v1/settings", `{"queueMod":"locally"}`, "", 400, "queueMod", `unknown field "queueMod"`},
		{"PUT", "/api/v1/settings?node=ghost", `{"queueMode":"locally"}`, "", 404, "-", "no node named ghost"},
		{"PUT", "/api/v1/rules/server", `[{}]`, "", 400, "rules", "name is empty"},
		{"PUT", "/api/v1/rules/cluster", `[{"when":1}]`, "", 400, "rules", `unknown field "when"`},
		{"PUT", "/api/v1/rules/server", `{"rules":[]}`, "", 400, "body", "must be an array"},
		{"GET", "/api/v1/rules/everything", "", "", 404, "scope", "rule scope must be server or cluster"},
		// Submit: recipients and the message.
		{"POST", "/api/v1/submit", `{"to":["bad"],` + msg + `}`, "alice@example.test", 400, "to", `recipient "bad"`},
		{"POST", "/api/v1/submit", `{"to":["a@b@remote.test"],` + msg + `}`, "alice@example.test", 400, "to", "relay syntax"},
		{"POST", "/api/v1/submit", `{"to":[],` + msg + `}`, "alice@example.test", 400, "to", "to"},
		{"POST", "/api/v1/submit", `{"to":"x@remote.test",` + msg + `}`, "alice@example.test", 400, "to", "must be an array of strings"},
		{"POST", "/api/v1/submit", `{"to":["x@remote.test"],"raw":""}`, "alice@example.test", 400, "raw", "raw"},
		{"POST", "/api/v1/submit", `{"to":["x@remote.test"],"raw":"Subject: s\n\nhi\n"}`, "alice@example.test", 400, "raw", "bare LF"},
		{"POST", "/api/v1/submit", `{"to":["x@remote.test"],"raw":"no header at all"}`, "alice@example.test", 400, "raw", "raw"},
		{"POST", "/api/v1/submit", `{"to":["x@remote.test"],` + msg + `}`, "nodomain", 401, "-", "authentication failed"},
		// Provisioning: domains, aliases, passwords, account changes.
		{"POST", "/api/v1/domains", `{"domain":"bad domain"}`, "", 400, "domain", "not a domain name"},
		{"POST", "/api/v1/domains", `{}`, "", 400, "domain", "domain is required"},
		{"POST", "/api/v1/domains", `{"domain":"example.test"}`, "", 409, "domain", "example.test is a local domain already"},
		{"DELETE", "/api/v1/domains/nosuch.test", "", "", 404, "domain", "no local domain nosuch.test"},
		{"DELETE", "/api/v1/domains/a_b", "", "", 400, "domain", "not a domain name"},
		{"DELETE", "/api/v1/domains/example.test", "", "", 409, "domain", "only local domain"},
		{"POST", "/api/v1/aliases", `{"alias":"nodomain","target":"alice@example.test"}`, "", 400, "alias", `alias "nodomain"`},
		{"POST", "/api/v1/aliases", `{"alias":"x@example.test"}`, "", 400, "target", "target is required"},
		{"POST", "/api/v1/aliases", `{"alias":"x@other.test","target":"alice@example.test"}`, "", 400, "alias", "other.test is not a local domain"},
		{"POST", "/api/v1/aliases", `{"alias":"x@example.test","target":"ghost@example.test"}`, "", 400, "target", "no such account"},
		{"POST", "/api/v1/aliases", `{"alias":"alice@example.test","target":"x@remote.test"}`, "", 409, "alias", "is an account"},
		{"DELETE", "/api/v1/aliases/ghost@example.test", "", "", 404, "alias", "no alias ghost@example.test"},
		{"PUT", "/api/v1/accounts/alice@example.test/password", `{"password":"x"}`, "", 400, "password", "at least 8 characters"},
		{"PUT", "/api/v1/accounts/alice@example.test/password", `{"password":"i-am-alice!"}`, "", 400, "password", "account's name"},
		{"PUT", "/api/v1/accounts/alice@example.test/password", `{}`, "", 400, "password", "password is required"},
		{"PUT", "/api/v1/accounts/ghost@example.test/password", `{"password":"long-enough-1"}`, "", 404, "address", "no account ghost@example.test"},
		{"PUT", "/api/v1/accounts/bob@example.test/password", `{"password":"long-enough-1"}`, "alice@example.test", 403, "-", "only its own password"},
		{"PATCH", "/api/v1/accounts/alice@example.test", `{}`, "", 400, "body", "nothing to change"},
		{"PATCH", "/api/v1/accounts/alice@example.test", `{"quotaBytes":-1}`, "", 400, "quotaBytes", "must not be negative"},
		{"PATCH", "/api/v1/accounts/alice@example.test", `{"disabled":"yes"}`, "", 400, "disabled", "must be true or false"},
		{"PATCH", "/api/v1/accounts/ghost@example.test", `{"disabled":true}`, "", 404, "address", "no account ghost@example.test"},
		// The console's views: history, the delivery log, a queue page.
		{"GET", "/api/v1/history?scope=all", "", "", 400, "scope", "scope must be node or cluster"},
		{"GET", "/api/v1/log?after=-1", "", "", 400, "after", "sequence number"},
		{"GET", "/api/v1/log?since=yesterday", "", "", 400, "since", "RFC 3339"},
		{"GET", "/api/v1/log?limit=0", "", "", 400, "limit", "from 1 to 2000"},
		{"GET", "/api/v1/queue?limit=0", "", "", 400, "limit", "from 1 to 1000"},
		{"GET", "/api/v1/queue?offset=-5", "", "", 400, "offset", "0 or more"},
		{"GET", "/api/v1/queue?state=lost", "", "", 400, "state", "active, deferred, held or damaged"},
		{"GET", "/api/v1/nosuch", "", "", 404, "-", "no such endpoint"},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, "pw-for-tests-123")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error, Field string }
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s %s: %d %q is not a JSON error", tc.method, tc.path, resp.StatusCode, b)
			continue
		}
		what := tc.method + " " + tc.path + " " + tc.body
		switch {
		case resp.StatusCode != tc.status:
			t.Errorf("%s: %d %s, want %d", what, resp.StatusCode, b, tc.status)
		case !strings.Contains(e.Error, tc.words):
			t.Errorf("%s: message %q, want it to say %q", what, e.Error, tc.words)
		case tc.field != "-" && e.Field != tc.field:
			t.Errorf("%s: field %q, want %q (message %q)", what, e.Field, tc.field, e.Error)
		case tc.status == 400 && !strings.Contains(e.Error, tc.field) && tc.field != "body":
			t.Errorf("%s: message %q does not name the field %s", what, e.Error, tc.field)
		}
		for _, internal := range []string{"not found:", "storage:", "invalid request:", "already exists:", "internal error"} {
			if strings.Contains(e.Error, internal) {
				t.Errorf("%s: message %q has the internal %q", what, e.Error, internal)
			}
		}
	}
}
