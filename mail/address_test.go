package mail

import (
	"errors"
	"testing"
)

func TestParseAddressAccepts(t *testing.T) {
	cases := []struct{ in, want string }{
		{"user@example.test", "user@example.test"},
		{"User.Name+tag@EXAMPLE.Test", "User.Name+tag@example.test"},
		{"a@b", "a@b"},
		{`"user"@example.test`, "user@example.test"},               // needless quotes dropped
		{`"john smith"@example.test`, `"john smith"@example.test`}, // quoted stays quoted
		{`john smith@example.test`, `"john smith"@example.test`},   // as go-smtp hands it over
		{`"a\"b"@example.test`, `"a\"b"@example.test`},
		{`a"b@example.test`, `"a\"b"@example.test`},
		{`"a..b"@example.test`, `"a..b"@example.test`},
		{`"a\\b"@example.test`, `"a\\b"@example.test`},
		{"user@[192.0.2.1]", "user@[192.0.2.1]"},
		{"user@[IPv6:2001:DB8:0::1]", "user@[ipv6:2001:db8::1]"},
		{"用户@例子.测试", "用户@例子.测试"},
		{"JÖRG@BÜCHER.Example", "JÖRG@bücher.example"},
		{"x@xn--bcher-kva.example", "x@xn--bcher-kva.example"},
		{"x@a-b.c0", "x@a-b.c0"},
	}
	for _, c := range cases {
		got, err := ParseAddress(c.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseAddress(%q) = %q, want %q", c.in, got, c.want)
		}
		again, err := ParseAddress(got)
		if err != nil || again != got {
			t.Errorf("ParseAddress(%q) (re-parse) = %q, %v", got, again, err)
		}
	}
}

func TestParseAddressRelayTricks(t *testing.T) {
	for _, in := range []string{
		"@relay.example:user@example.test",           // source route
		"@a.example,@b.example:user@example.test",    // source route, several hops
		"user%remote.example@example.test",           // percent hack
		"remote.example!user@example.test",           // bang path
		"user@remote.example@example.test",           // two '@'
		"user@example.test@remote.example",           // two '@', the other way round
		`"user@remote.example"@example.test`,         // quoted '@'
		`"user%remote.example"@example.test`,         // quoted '%'
		`"remote.example!user"@example.test`,         // quoted '!'
		`"a"@b@example.test`,                         // quoted, then a second '@'
		`@example.test:"user@remote.example"@x.test`, // route and quoted '@'
	} {
		_, err := ParseAddress(in)
		if !errors.Is(err, ErrRelaySyntax) {
			t.Errorf("ParseAddress(%q) = %v, want ErrRelaySyntax", in, err)
		}
	}
}

func TestParseAddressRejectsBadSyntax(t *testing.T) {
	for _, in := range []string{
		"",
		"user",
		"@",
		"user@",
		"@example.test",
		`""@example.test`,
		"user@example.test.", // trailing dot
		"user@.example.test",
		"user@example..test",
		"user@-example.test",
		"user@example-.test",
		"user@exa mple.test",
		"user@exa_mple.test",
		"user@1.2.3.4", // IP without brackets
		"user@[1.2.3]",
		"user@[300.1.1.1]",
		"user@[IPv6:1.2.3.4]",
		"user@[IPv6:fe80::1%eth0]",
		"user@[tag:foo]",
		"user@[1.2.3.4",
		"us\x00er@example.test",
		"us\ter@example.test",
		"us\r\ner@example.test",
		"user@example.test\x00",
		"\xff@example.test",
		`"unterminated@example.test`,
		`"bad\` + "\x01" + `"@example.test`,
		`"x"example.test`,
		"user@" + string(make([]byte, 300)),
		"user@" + longLabel(64) + ".test",
		longLabel(300) + "@example.test",
	} {
		_, err := ParseAddress(in)
		if !errors.Is(err, ErrBadAddress) {
			t.Errorf("ParseAddress(%q) = %v, want ErrBadAddress", in, err)
		}
	}
}

func longLabel(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestSplitAddress(t *testing.T) {
	cases := []struct{ in, local, domain string }{
		{"user@example.test", "user", "example.test"},
		{`"a b"@example.test`, `"a b"`, "example.test"},
		{"nodomain", "nodomain", ""},
	}
	for _, c := range cases {
		l, d := SplitAddress(c.in)
		if l != c.local || d != c.domain {
			t.Errorf("SplitAddress(%q) = %q, %q; want %q, %q", c.in, l, d, c.local, c.domain)
		}
	}
}
