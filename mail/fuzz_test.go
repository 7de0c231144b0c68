package mail

import (
	"errors"
	"testing"
)

// FuzzParseAddress checks that ParseAddress never panics, that every error
// is one of the two documented kinds, and that its output parses to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"user@example.test", `"a b"@x.test`, `a"b@x`, "@a,@b:u@c", "u%x@y", "x!u@y",
		"u@x@y", "u@[192.0.2.1]", "u@[IPv6:::1]", "用户@例子.测试", "u@EXAMPLE.TEST.",
		`"\"x"@y`, "\"", "@", "u@\u212a.test",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) && !errors.Is(err, ErrRelaySyntax) {
				t.Fatalf("ParseAddress(%q): error %v wraps neither ErrBadAddress nor ErrRelaySyntax", s, err)
			}
			return
		}
		again, err := ParseAddress(got)
		if err != nil {
			t.Fatalf("ParseAddress(%q) = %q, which does not re-parse: %v", s, got, err)
		}
		if again != got {
			t.Fatalf("ParseAddress(%q) = %q, re-parsed to %q", s, got, again)
		}
		if _, d := SplitAddress(got); d == "" || d != Domain(got) {
			t.Fatalf("ParseAddress(%q) = %q: SplitAddress domain %q, Domain %q", s, got, d, Domain(got))
		}
	})
}
