package admin_test

import (
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
)

// What the handler can tell is wrong without the node is a 400 that
// names the field (in its message and as "field"), and the API is not
// asked: an address in a path that is not local@domain, an id with a
// slash, a blank or a control character, JSON of the wrong shape or type.
// (node's TestBadInputOverHTTP sends the same and more to a real node.)
func TestBadInputNamesTheField(t *testing.T) {
	e := newEnv(t, admin.Options{})
	long := strings.Repeat("x", 200)
	for _, c := range []struct {
		method, path, body string
		field, words       string
	}{
		{"GET", "/api/v1/accounts/nodomain", "", "address", `address "nodomain": not of the form local@domain`},
		{"GET", "/api/v1/accounts/a@b@example.test", "", "address", `address "a@b@example.test": relay syntax in address: '@', '%' or '!' in the local part`},
		{"GET", "/api/v1/accounts/%00@example.test", "", "address", "address"},
		{"GET", "/api/v1/accounts/@example.test", "", "address", "empty local part"},
		{"GET", "/api/v1/accounts/a@", "", "address", "address"},
		{"DELETE", "/api/v1/accounts/nodomain", "", "address", "address"},
		{"GET", "/api/v1/accounts/nodomain/messages", "", "address", "address"},
		{"GET", "/api/v1/accounts/nodomain/messages/M1/raw", "", "address", "address"},
		{"GET", "/api/v1/accounts/demo@example.test/messages/a%2Fb/raw", "", "id", `id "a/b"`},
		{"GET", "/api/v1/accounts/nodomain/rules", "", "address", "address"},
		{"PUT", "/api/v1/accounts/nodomain/rules", "[]", "address", "address"},
		{"GET", "/api/v1/queue/a%20b", "", "id", "id"},
		{"GET", "/api/v1/queue/" + long, "", "id", "longer than"},
		{"POST", "/api/v1/queue/a%0Ab/retry", "", "id", "id"},
		{"DELETE", "/api/v1/queue/..%2Fx", "", "id", "id"},
		{"GET", "/api/v1/journey/a%09b", "", "id", "id"},
		{"GET", "/api/v1/queue?scope=everything", "", "scope", `scope "everything"`},
		{"POST", "/api/v1/accounts", `{"address":"nodomain","password":"p"}`, "address", "address"},
		{"POST", "/api/v1/accounts", `{"address":"u@example.test"}`, "password", "password"},
		{"POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p","quotaBytes":"big"}`, "quotaBytes", `"quotaBytes" must be a number, got string`},
		{"POST", "/api/v1/accounts", `{"address":5,"password":"p"}`, "address", `"address" must be a string, got number`},
		{"POST", "/api/v1/accounts", `{"adress":"u@example.test","password":"p"}`, "adress", `unknown field "adress"`},
		{"PUT", "/api/v1/settings", `{"queueMode":"sideways"}`, "queueMode", `queueMode "sideways"`},
		{"PUT", "/api/v1/settings", `{"queueMode":1}`, "queueMode", "queueMode"},
	} {
		r := e.do(c.method, c.path, c.body).expect(t, 400)
		if msg := r.errorText(t); !strings.Contains(msg, c.words) || !strings.Contains(msg, c.field) {
			t.Errorf("%s %s: message %q, want it to name %q and say %q", c.method, c.path, msg, c.field, c.words)
		}
		if f := r.field(t); f != c.field {
			t.Errorf("%s %s: field %q, want %q", c.method, c.path, f, c.field)
		}
	}
	for _, m := range []string{"Account", "DeleteAccount", "Messages", "RawMessage", "AccountRules", "SetAccountRules",
		"QueueEntry", "QueueAction", "Journey", "Queue", "CreateAccount", "UpdateSettings"} {
		if n := len(e.fake.CallsTo(m)); n != 0 {
			t.Errorf("%s was called %d times for bad input", m, n)
		}
	}
}
