package main

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// checkLines fails unless b is CRLF lines of at most 76 characters, none
// starting with '.', with no bare CR or LF.
func checkLines(t *testing.T, b []byte) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatalf("does not end in CRLF: %q", b[max(0, len(b)-10):])
	}
	for i, l := range bytes.Split(b[:len(b)-2], []byte("\r\n")) {
		if bytes.ContainsAny(l, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i, l)
		}
		if len(l) > lineLen {
			t.Fatalf("line %d has %d characters", i, len(l))
		}
		if bytes.HasPrefix(l, []byte(".")) {
			t.Fatalf("line %d starts with a dot", i)
		}
	}
}

func TestFillBodyExactSize(t *testing.T) {
	for n := lineLen + 2; n < 5*(lineLen+2)+3; n++ {
		b := fillBody(n)
		if len(b) != n {
			t.Fatalf("fillBody(%d) has %d bytes", n, len(b))
		}
		checkLines(t, b)
	}
	if b := fillBody(1 << 20); len(b) != 1<<20 {
		t.Fatalf("1 MiB body has %d bytes", len(b))
	}
}

func TestMessagesHaveExactSizeAndRealisticHeader(t *testing.T) {
	now := time.Date(2025, 2, 3, 4, 5, 6, 0, time.FixedZone("", 3600))
	for _, c := range []struct {
		size, accounts int
		domain         string
	}{
		{4096, 500, "example.test"},
		{600, 1, "example.test"},
		{1 << 20, 12345, "a-much-longer-subdomain.of.some.example.test"},
	} {
		g, err := newGenerator(c.size, "bench@"+c.domain, c.domain, c.accounts)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		ids := map[string]bool{}
		for _, i := range []int{0, 1, 9, 10, 99, 12345, maxMessages} {
			rcpt := g.account(i % c.accounts)
			m := g.message(i, rcpt, now)
			if len(m) != c.size {
				t.Fatalf("%+v: message %d has %d bytes", c, i, len(m))
			}
			checkLines(t, m)
			msg, err := mail.ReadMessage(bytes.NewReader(m))
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			h := msg.Header
			if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != rcpt {
				t.Errorf("To %q (%v), want %s", h.Get("To"), err, rcpt)
			}
			if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "bench@"+c.domain {
				t.Errorf("From %q (%v)", h.Get("From"), err)
			}
			if d, err := h.Date(); err != nil || !d.Equal(now) {
				t.Errorf("Date %q: %v %v", h.Get("Date"), d, err)
			}
			id := h.Get("Message-ID")
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@"+c.domain+">") || ids[id] {
				t.Errorf("Message-ID %q is malformed or repeated", id)
			}
			ids[id] = true
			for _, k := range []string{"Subject", "MIME-Version", "Content-Type"} {
				if h.Get(k) == "" {
					t.Errorf("no %s", k)
				}
			}
		}
	}
}

func TestAccountNames(t *testing.T) {
	for _, c := range []struct {
		accounts, i int
		want        string
	}{
		{500, 0, "user0000@d.test"},
		{500, 499, "user0499@d.test"},
		{10000, 9999, "user9999@d.test"},
		{10001, 7, "user00007@d.test"},
		{1, 0, "user0000@d.test"},
	} {
		if got := accountAddr(c.i, accountWidth(c.accounts), "d.test"); got != c.want {
			t.Errorf("account %d of %d = %q, want %q", c.i, c.accounts, got, c.want)
		}
	}
}

func TestGeneratorRefusesTooSmall(t *testing.T) {
	if _, err := newGenerator(200, "bench@example.test", "example.test", 500); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("size 200: %v", err)
	}
	g, err := newGenerator(4096, "bench@example.test", "example.test", 500)
	if err != nil {
		t.Fatal(err)
	}
	hl := len(g.header(0, g.account(0), time.Now()))
	if _, err := newGenerator(hl+lineLen+2, "bench@example.test", "example.test", 500); err != nil {
		t.Errorf("the smallest size %d is refused: %v", hl+lineLen+2, err)
	}
	if _, err := newGenerator(hl+lineLen+1, "bench@example.test", "example.test", 500); err == nil {
		t.Errorf("size %d below the smallest is accepted", hl+lineLen+1)
	}
}
