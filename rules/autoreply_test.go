package rules

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"
)

func TestShouldAutoReply(t *testing.T) {
	person := "bob@example.net"
	h := func(kv ...string) Header {
		var out Header
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, Field{kv[i], kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		sender string
		h      Header
		want   bool
		reason string // a substring of the reason when want is false
	}{
		{"a person", person, h("Subject", "hi"), true, ""},
		{"a person in brackets", "<" + person + ">", nil, true, ""},
		{"null sender", "", nil, false, "null sender"},
		{"null sender in brackets", "<>", nil, false, "null sender"},
		{"not an address", "bob", nil, false, "not an address"},
		{"MAILER-DAEMON", "MAILER-DAEMON@example.net", nil, false, "mailer-daemon"},
		{"listserv", "LISTSERV@lists.example.net", nil, false, "listserv"},
		{"majordomo", "majordomo@example.net", nil, false, "majordomo"},
		{"owner-", "owner-golang@example.net", nil, false, "owner-golang"},
		{"-request", "golang-request@example.net", nil, false, "mailing list address"},
		{"-owner", "golang-owner@example.net", nil, false, "mailing list address"},
		{"-bounces with VERP", "golang-bounces+bob=example.net@example.net", nil, false, "mailing list address"},
		{"noreply", "noreply@example.net", nil, false, "takes no replies"},
		{"no-reply prefix", "no-reply-alerts@example.net", nil, false, "takes no replies"},
		{"Auto-Submitted auto-replied", person, h("Auto-Submitted", "auto-replied"), false, "Auto-Submitted: auto-replied"},
		{"Auto-Submitted auto-generated", person, h("Auto-Submitted", "auto-generated; owner-email=x"), false, "auto-submitted"},
		{"Auto-Submitted empty", person, h("Auto-Submitted", ""), false, "auto-submitted"},
		{"Auto-Submitted no", person, h("Auto-Submitted", "no"), true, ""},
		{"Auto-Submitted No with comment", person, h("auto-submitted", "No (a person)"), true, ""},
		{"Precedence bulk", person, h("Precedence", "bulk"), false, "Precedence: bulk"},
		{"Precedence list", person, h("Precedence", "List"), false, "Precedence"},
		{"Precedence junk", person, h("Precedence", "junk"), false, "Precedence"},
		{"Precedence first-class", person, h("Precedence", "first-class"), true, ""},
		{"List-Id", person, h("List-Id", "<golang.example.net>"), false, "List-Id"},
		{"List-Unsubscribe", person, h("list-unsubscribe", "<mailto:x@example.net>"), false, "mailing list"},
		{"X-Mailing-List", person, h("X-Mailing-List", "x"), false, "mailing list"},
		{"Mailing-List", person, h("Mailing-List", "contact x"), false, "mailing list"},
		{"X-Auto-Response-Suppress OOF", person, h("X-Auto-Response-Suppress", "DR, OOF"), false, "X-Auto-Response-Suppress"},
		{"X-Auto-Response-Suppress All", person, h("X-Auto-Response-Suppress", "All"), false, "X-Auto-Response-Suppress"},
		{"X-Auto-Response-Suppress DR only", person, h("X-Auto-Response-Suppress", "DR, RN"), true, ""},
		{"X-Autoreply", person, h("X-Autoreply", "yes"), false, "X-Autoreply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := ShouldAutoReply(tt.sender, tt.h)
			if got != tt.want {
				t.Fatalf("ShouldAutoReply = %v (%q), want %v", got, reason, tt.want)
			}
			if got && reason != "" {
				t.Errorf("reason %q given with true", reason)
			}
			if !got && !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", reason, tt.reason)
			}
		})
	}
}

func TestAddressedTo(t *testing.T) {
	me := []string{"me@example.test", "alias@example.test"}
	tests := []struct {
		name string
		h    Header
		want bool
	}{
		{"To with a name", Header{{"To", `"Me Myself" <Me@Example.test>`}}, true},
		{"Cc list", Header{{"To", "x@example.net"}, {"Cc", "y@example.net, alias@example.test"}}, true},
		{"Bcc", Header{{"Bcc", "me@example.test"}}, true},
		{"Resent-To", Header{{"Resent-To", "me@example.test"}}, true},
		{"group syntax", Header{{"To", "friends: a@example.net, me@example.test;"}}, true},
		{"only a list address", Header{{"To", "golang@lists.example.net"}}, false},
		{"in another field", Header{{"From", "me@example.test"}, {"Reply-To", "me@example.test"}}, false},
		{"no header", nil, false},
		{"unparseable, found as text", Header{{"To", "Me <me@example.test>, broken<<"}}, true},
		{"unparseable, only a longer address", Header{{"To", "notme@example.test, broken<<"}}, false},
		{"unparseable, address as a prefix", Header{{"To", "me@example.test.evil, broken<<"}}, false},
	}
	for _, tt := range tests {
		if got := AddressedTo(tt.h, me...); got != tt.want {
			t.Errorf("%s: AddressedTo = %v, want %v", tt.name, got, tt.want)
		}
	}
	if AddressedTo(Header{{"To", "x@example.net"}}, "") {
		t.Error("an empty address matched")
	}
}

var replyTime = time.Date(2024, 3, 5, 14, 30, 0, 0, time.FixedZone("", 3600))

// checkWellFormed asserts the RFC 5322 framing of a generated message and
// returns its parsed header and the raw body.
func checkWellFormed(t *testing.T, msg []byte) (Header, []byte) {
	t.Helper()
	for i, c := range msg {
		if c == '\n' && (i == 0 || msg[i-1] != '\r') {
			t.Fatalf("bare LF at %d in %q", i, msg)
		}
		if c == '\r' && (i+1 == len(msg) || msg[i+1] != '\n') {
			t.Fatalf("bare CR at %d in %q", i, msg)
		}
	}
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Fatalf("message does not end with CRLF: %q", msg)
	}
	for _, line := range bytes.Split(msg, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line of %d bytes", len(line))
		}
	}
	head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no empty line after the header: %q", msg)
	}
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		for _, c := range line {
			if c >= 0x80 || (c < 0x20 && c != '\t') {
				t.Fatalf("header line %q is not printable ASCII", line)
			}
		}
	}
	h, err := ParseHeader(msg)
	if err != nil {
		t.Fatalf("ParseHeader: %v\n%s", err, msg)
	}
	return h, body
}

func TestAutoReplyMessage(t *testing.T) {
	orig := Header{
		{"From", "Bob <bob@example.net>"},
		{"Subject", "Lunch on Friday?"},
		{"Message-ID", "<m2@example.net>"},
		{"References", "<m0@example.net> <m1@example.net>"},
	}
	msg := AutoReplyMessage("me@example.test", "bob@example.net", "", "I am away.\nBack on Monday.", orig, replyTime, "reply1@example.test")
	h, body := checkWellFormed(t, msg)
	want := map[string]string{
		"From":                      "<me@example.test>",
		"To":                        "<bob@example.net>",
		"Date":                      "Tue, 05 Mar 2024 14:30:00 +0100",
		"Subject":                   "Auto: Lunch on Friday?",
		"Message-ID":                "<reply1@example.test>",
		"In-Reply-To":               "<m2@example.net>",
		"References":                "<m0@example.net> <m1@example.net> <m2@example.net>",
		"Auto-Submitted":            "auto-replied",
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "7bit",
	}
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	if string(body) != "I am away.\r\nBack on Monday.\r\n" {
		t.Errorf("body = %q", body)
	}
	// The reply itself is never answered by another RFC 3834 responder.
	if ok, _ := ShouldAutoReply("me@example.test", h); ok {
		t.Error("ShouldAutoReply accepts the auto-reply")
	}
}

func TestAutoReplySubjects(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		orig    Header
		want    string // decoded
	}{
		{"given", "Out of office", Header{{"Subject", "x"}}, "Out of office"},
		{"no original subject", "", nil, "Auto: (no subject)"},
		{"encoded original", "", Header{{"Subject", "=?utf-8?q?Gr=C3=BC=C3=9Fe?="}}, "Auto: Grüße"},
		{"non-ASCII given", "Abwesenheit: Grüße", nil, "Abwesenheit: Grüße"},
		{"injection in given", "hi\r\nBcc: evil@example.net", nil, "hi  Bcc: evil@example.net"},
		{"long", strings.Repeat("word ", 100), nil, strings.TrimSpace(strings.Repeat("word ", 100))},
	}
	var dec mime.WordDecoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := AutoReplyMessage("me@example.test", "bob@example.net", tt.subject, "x", tt.orig, replyTime, "")
			h, _ := checkWellFormed(t, msg)
			if h.Has("Bcc") {
				t.Fatalf("a Bcc field was injected:\n%s", msg)
			}
			got, err := dec.DecodeHeader(h.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			// Folding turns runs of white space into one space.
			if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(tt.want), " ") {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAutoReplyThreading(t *testing.T) {
	t.Run("In-Reply-To when there are no References", func(t *testing.T) {
		orig := Header{{"Message-ID", " <m2@example.net> "}, {"In-Reply-To", "<m1@example.net>"}}
		h, _ := checkWellFormed(t, AutoReplyMessage("a@example.test", "b@example.net", "", "x", orig, replyTime, "<r@x>"))
		if got := h.Get("References"); got != "<m1@example.net> <m2@example.net>" {
			t.Errorf("References = %q", got)
		}
		if got := h.Get("Message-ID"); got != "<r@x>" {
			t.Errorf("Message-ID = %q", got)
		}
	})
	t.Run("no Message-ID: no In-Reply-To or References", func(t *testing.T) {
		h, _ := checkWellFormed(t, AutoReplyMessage("a@example.test", "b@example.net", "", "x", Header{{"References", "<m1@x>"}}, replyTime, ""))
		if h.Has("In-Reply-To") || h.Has("References") || h.Has("Message-ID") {
			t.Errorf("header %q", h)
		}
	})
	t.Run("a bad Message-ID is not copied", func(t *testing.T) {
		h, _ := checkWellFormed(t, AutoReplyMessage("a@example.test", "b@example.net", "", "x",
			Header{{"Message-ID", "<a b@x>"}}, replyTime, "bad id\r\nBcc: x@y"))
		if h.Has("In-Reply-To") || h.Has("Bcc") {
			t.Errorf("header %q", h)
		}
		if got := h.Get("Message-ID"); strings.ContainsAny(got, " \t") {
			t.Errorf("Message-ID %q", got)
		}
	})
	t.Run("long References are cut and folded", func(t *testing.T) {
		var refs []string
		for i := 0; i < 50; i++ {
			refs = append(refs, "<ref"+strings.Repeat("x", 10)+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.net>")
		}
		orig := Header{{"Message-ID", "<last@example.net>"}, {"References", strings.Join(refs, " ")}}
		msg := AutoReplyMessage("a@example.test", "b@example.net", "", "x", orig, replyTime, "")
		h, _ := checkWellFormed(t, msg)
		got := strings.Fields(h.Get("References"))
		if len(got) != maxReferences || got[0] != refs[0] || got[len(got)-1] != "<last@example.net>" || got[len(got)-2] != refs[49] {
			t.Errorf("References = %q", got)
		}
		for _, line := range strings.Split(string(msg), "\r\n") {
			if len(line) > 78 {
				t.Errorf("line of %d characters: %q", len(line), line)
			}
		}
	})
}

func TestAutoReplyAddresses(t *testing.T) {
	msg := AutoReplyMessage(`Jürgen Müller <me@example.test>`, "bob@example.net\r\nBcc: evil@example.net", "s", "x", nil, replyTime, "")
	h, _ := checkWellFormed(t, msg)
	if h.Has("Bcc") {
		t.Fatalf("injected Bcc:\n%s", msg)
	}
	var dec mime.WordDecoder
	from, err := dec.DecodeHeader(h.Get("From"))
	if err != nil || from != `Jürgen Müller <me@example.test>` {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
}

func TestAutoReplyBody(t *testing.T) {
	t.Run("non-ASCII is quoted-printable", func(t *testing.T) {
		text := "Ich bin bis Montag nicht da.\r\nGrüße\rJürgen\n"
		msg := AutoReplyMessage("a@example.test", "b@example.net", "s", text, nil, replyTime, "")
		h, body := checkWellFormed(t, msg)
		if h.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("encoding %q", h.Get("Content-Transfer-Encoding"))
		}
		got, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "Ich bin bis Montag nicht da.\r\nGrüße\r\nJürgen\r\n" {
			t.Errorf("decoded body %q", got)
		}
	})
	t.Run("a very long line is quoted-printable", func(t *testing.T) {
		text := strings.Repeat("a", 2000)
		h, body := checkWellFormed(t, AutoReplyMessage("a@example.test", "b@example.net", "s", text, nil, replyTime, ""))
		if h.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("encoding %q", h.Get("Content-Transfer-Encoding"))
		}
		got, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if strings.TrimSpace(string(got)) != text {
			t.Errorf("body changed")
		}
	})
	t.Run("empty text", func(t *testing.T) {
		_, body := checkWellFormed(t, AutoReplyMessage("a@example.test", "b@example.net", "s", "", nil, replyTime, ""))
		if string(body) != "\r\n" {
			t.Errorf("body %q", body)
		}
	})
}

func TestAutoReplyLongSubjectCutOnRuneBoundary(t *testing.T) {
	long := strings.Repeat("ü", 1000) // 2000 bytes
	msg := AutoReplyMessage("a@example.test", "b@example.net", long, "x", nil, replyTime, "")
	h, _ := checkWellFormed(t, msg)
	var dec mime.WordDecoder
	got, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxSubjectLen || !strings.HasPrefix(long, got) {
		t.Errorf("subject of %d bytes, want the first %d bytes of whole characters", len(got), maxSubjectLen)
	}
	if got := cut("aü", 2); got != "a" {
		t.Errorf("cut split a character: %q", got)
	}
}

func TestReasonQuotesAreClipped(t *testing.T) {
	_, reason := ShouldAutoReply("bob@example.net", Header{{"Precedence", "bulk " + strings.Repeat("x", 200)}})
	if len(reason) > 100 || !strings.HasSuffix(reason, "...") {
		t.Errorf("reason %q", reason)
	}
}
