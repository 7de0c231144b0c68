package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homing-mail/homing/smtp"
)

// TestLoadRouteCredentials: the file's lines, its keys as Postfix writes
// them, the lookup order (the route, then HOST:PORT, then HOST), and the
// errors that name the line.
func TestLoadRouteCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("good", `# routes
*            relay@example.com   pass with  spaces  
Example.NET  u1 p1
[smtp.example.org]:587	u2	p2
smtp.example.org u3 p3
`)
	rc, err := loadRouteCredentials(p)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{}
	n.relay.creds.Store(&rc)
	for _, c := range []struct {
		route, host string
		port        int
		want        smtp.Credential
		ok          bool
	}{
		{"*", "smarthost.example.com", 587, smtp.Credential{User: "relay@example.com", Password: "pass with  spaces"}, true},
		{"example.net", "10.0.0.1", 25, smtp.Credential{User: "u1", Password: "p1"}, true},
		{"other.test", "SMTP.example.org", 587, smtp.Credential{User: "u2", Password: "p2"}, true},
		{"other.test", "smtp.example.org", 25, smtp.Credential{User: "u3", Password: "p3"}, true},
		{"other.test", "mx.other.test", 25, smtp.Credential{}, false},
	} {
		got, ok := n.routeCredential(c.route, c.host, c.port)
		if ok != c.ok || got != c.want {
			t.Errorf("routeCredential(%s, %s, %d) = %+v %v, want %+v %v", c.route, c.host, c.port, got, ok, c.want, c.ok)
		}
	}
	if u := rc.unused(map[string]string{"*": "smarthost.example.com:587", "example.net": "10.0.0.1:25"}); strings.Join(u, ",") != "smtp.example.org,smtp.example.org:587" {
		t.Errorf("unused = %v", u)
	}
	for text, want := range map[string]string{
		"* user\n":              "line 1: want KEY USER PASSWORD",
		"# c\n\nx u p\nx u q\n": "line 4: a second entry for x",
		"just-a-key\n":          "line 1",
	} {
		if _, err := loadRouteCredentials(write("bad", text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	if _, err := loadRouteCredentials(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
