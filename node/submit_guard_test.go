package node_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
)

// httpFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all loopback on Linux): with the default /24
// networks, 127.0.N.x stands for a client on network N.
func httpFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// postSubmit sends POST /api/v1/submit as user and returns the answer's
// status, its Retry-After and how long it took.
func postSubmit(t *testing.T, n *node.Node, c *http.Client, user, pw string) (status int, retryAfter string, took time.Duration) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"to": []string{"bob@example.test"}, "raw": "Subject: s\r\n\r\nhi\r\n"})
	req, err := http.NewRequest(http.MethodPost, "http://"+n.AdminAddr()+"/api/v1/submit", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pw)))
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)
}

// Issue #9, "POST /api/v1/submit with wrong basic-auth passwords": the API
// checks passwords through the same guard as SMTP AUTH on the submission
// listener. Wrong passwords from network A get 401 after a growing delay,
// then 429 with Retry-After even with the right password, and SMTP AUTH
// from network A is refused too (the budgets are shared); the owner from
// network B submits at once, over HTTP and over SMTP.
func TestSubmitThrottledLikeSubmissionAuth(t *testing.T) {
	const delay = 100 * time.Millisecond
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submission = "127.0.0.1:0"
		c.SMTP.Auth = guard.Config{FailureDelay: delay, MaxFailureDelay: 4 * delay, MaxFailuresPerAccount: 3}
	}))
	createAccount(t, client(n), "alice@example.test", "pw-for-tests-123", 0)
	createAccount(t, client(n), "bob@example.test", "pw-fourth-123", 0)
	netA, netB := httpFrom("127.0.11.5"), httpFrom("127.0.12.5")

	var took []time.Duration
	for i := 0; i < 3; i++ {
		status, _, d := postSubmit(t, n, netA, "alice@example.test", "guess"+strconv.Itoa(i))
		if status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, status)
		}
		if want := delay << i; d < want {
			t.Errorf("wrong password %d answered after %v, before its delay %v", i+1, d, want)
		}
		took = append(took, d)
	}
	status, retry, _ := postSubmit(t, n, netA, "alice@example.test", "pw-for-tests-123")
	if secs, err := strconv.Atoi(retry); status != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 15*60 {
		t.Fatalf("right password from network A after 3 failures: %d, Retry-After %q; want 429 with a Retry-After", status, retry)
	}

	// SMTP AUTH from network A shares the budget.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.11.6")}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", n.SubmissionAddr())
	if err != nil {
		t.Fatal(err)
	}
	sc := gosmtp.NewClient(conn)
	defer sc.Close()
	if err := sc.Hello("mua.test"); err != nil {
		t.Fatal(err)
	}
	assertSMTPCode(t, sc.Auth(sasl.NewPlainClient("", "alice@example.test", "pw-for-tests-123")), 454, "4.7.0")

	// The owner from network B: at once.
	status, _, ownerTook := postSubmit(t, n, netB, "alice@example.test", "pw-for-tests-123")
	if status != http.StatusAccepted {
		t.Fatalf("the owner from network B: %d, want 202", status)
	}
	b, err := gosmtp.Dial(n.SubmissionAddr()) // 127.0.0.1: another network again
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Auth(sasl.NewPlainClient("", "alice@example.test", "pw-for-tests-123")); err != nil {
		t.Fatalf("the owner over SMTP from another network: %v", err)
	}
	waitMessages(t, client(n), "bob@example.test", 1)
	t.Logf("HTTP submit: wrong passwords from network A answered 401 after %v, then 429 (Retry-After %s s) and SMTP AUTH 454 from A; the owner from B got 202 in %v",
		took, retry, ownerTook.Round(time.Millisecond))
}
