package inbound

import (
	netmail "net/mail"
	"strings"
	"testing"
)

// fromFieldNetMail is the From field as authorDomain read it before
// fromField: net/mail's reading of the header; ok when it reads and has
// exactly one From field.
func fromFieldNetMail(header []byte) (string, bool) {
	msg, err := netmail.ReadMessage(strings.NewReader(string(header) + "\r\n"))
	if err != nil {
		return "", false
	}
	froms := msg.Header["From"]
	if len(froms) != 1 {
		return "", false
	}
	return froms[0], true
}

var fromFieldSeeds = []string{
	"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n",
	"Received: from x by y;\r\n\tThu, 3 Dec 2026 14:00:00 +0000\r\nFROM:  \"A B\" <a@example.org>  \r\n",
	"from:\r\n a@example.org\r\n\t (comment)\r\nX: y\r\n",
	"Subject: x\nFrom: a@example.org\n",
	"From: a@example.org\r\nFrom: b@example.org\r\n",
	" From: a@example.org\r\n",
	"From : a@example.org\r\n",
	"From: a@example.org\r\nno colon here\r\n",
	"From: a@example.org\r\n\r\nFrom: b@example.org\r\n",
	"X:\r\nFrom: a@example.org\r",
	"From: a@example.org\r\r\n",
	": empty name\r\nFrom: <a@example.org>\r\n",
	"\r\nFrom: a@example.org\r\n",
	"Fr\u017fm: a@example.org\r\n",
	"",
}

// TestFromFieldReadsAsNetMail: where fromField answers, net/mail reads the
// same one From field; where it declines, authorDomain asks net/mail.
func TestFromFieldReadsAsNetMail(t *testing.T) {
	answered := 0
	for _, h := range fromFieldSeeds {
		got, ok := fromField([]byte(h))
		want, wok := fromFieldNetMail([]byte(h))
		if ok {
			answered++
			if !wok || got != want {
				t.Errorf("fromField(%q) = %q; net/mail: %q (ok %v)", h, got, want, wok)
			}
		}
	}
	if answered < 5 {
		t.Fatalf("fromField answered %d of the seeds: the fast path is not taken", answered)
	}
	for _, c := range []struct{ header, want string }{
		{fromFieldSeeds[0], "a@example.org"},
		{fromFieldSeeds[1], "\"A B\" <a@example.org>"},
		{fromFieldSeeds[2], "a@example.org (comment)"},
	} {
		if got, ok := fromField([]byte(c.header)); !ok || got != c.want {
			t.Errorf("fromField(%q) = %q, %v; want %q", c.header, got, ok, c.want)
		}
	}
	if d, err := authorDomain([]byte(fromFieldSeeds[1])); err != nil || d != "example.org" {
		t.Fatalf("authorDomain = %q, %v", d, err)
	}
}

func FuzzFromField(f *testing.F) {
	for _, h := range fromFieldSeeds {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		got, ok := fromField(h)
		if !ok {
			return
		}
		want, wok := fromFieldNetMail(h)
		if !wok || got != want {
			t.Fatalf("fromField(%q) = %q; net/mail: %q (ok %v)", h, got, want, wok)
		}
	})
}

func BenchmarkAuthorDomain(b *testing.B) {
	h := []byte("Received: from homing-load.localhost (localhost [127.0.0.1])\r\n\tby x with ESMTP id 1; Thu, 3 Dec 2026 14:00:00 +0000\r\n" +
		"From: bench@example.test\r\nTo: u1@example.test\r\nSubject: message 1\r\nDate: Thu, 3 Dec 2026 14:00:00 +0000\r\n" +
		"Message-ID: <1.run@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := authorDomain(h); err != nil {
			b.Fatal(err)
		}
	}
}
