package mtasts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
)

// Mode is what a policy asks of senders (RFC 8461 §5).
type Mode string

const (
	// ModeEnforce: deliver only to MX hosts that match the policy, over
	// TLS with a certificate valid for the MX name; otherwise defer.
	ModeEnforce Mode = "enforce"
	// ModeTesting: deliver as without a policy, and report failures.
	ModeTesting Mode = "testing"
	// ModeNone: the domain has withdrawn its policy.
	ModeNone Mode = "none"
)

// MaxAge is the largest max_age a policy may give (RFC 8461 §3.2: about a
// year, 31557600 s); MaxPolicySize the largest policy fetched (§3.3).
const (
	MaxAge        = 31557600 * time.Second
	MaxPolicySize = 64 << 10
)

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	Mode   Mode
	MX     []string // patterns, lower case without a final dot: "mx.example.com", "*.example.com"
	MaxAge time.Duration
}

// ErrPolicySyntax: the policy is not one RFC 8461 §3.2 allows (permanent:
// the same bytes never parse).
var ErrPolicySyntax = mail.PermanentError("malformed MTA-STS policy")

// ParsePolicy parses the text of a policy: lines "key: value" separated by
// LF or CRLF (RFC 8461 §3.2; blank lines are skipped). version (STSv1), mode and max_age are
// required, and at least one mx unless the mode is none; of a repeated
// field other than mx the first counts; unknown fields are ignored.
func ParsePolicy(text string) (*Policy, error) {
	bad := func(format string, a ...any) (*Policy, error) {
		return nil, fmt.Errorf("%w: %s", ErrPolicySyntax, fmt.Sprintf(format, a...))
	}
	p := &Policy{}
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.Trim(line, " \t") == "" {
			continue // blank lines, a final line break: not in the ABNF, harmless
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return bad("line %d has no colon: %q", i+1, clip(line))
		}
		if !validKey(key) {
			return bad("line %d: bad field name %q", i+1, clip(key))
		}
		value = strings.Trim(value, " \t")
		first := !seen[key]
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				return bad("version %q is not STSv1", clip(value))
			}
		case "mode":
			m := Mode(value)
			if m != ModeEnforce && m != ModeTesting && m != ModeNone {
				return bad("mode %q is not enforce, testing or none", clip(value))
			}
			if first {
				p.Mode = m
			}
		case "max_age":
			if value == "" || len(value) > 10 || strings.Trim(value, "0123456789") != "" {
				return bad("max_age %q is not a number of seconds", clip(value))
			}
			n, _ := strconv.ParseInt(value, 10, 64)
			if n > int64(MaxAge/time.Second) {
				return bad("max_age %d is more than %d", n, int64(MaxAge/time.Second))
			}
			if first {
				p.MaxAge = time.Duration(n) * time.Second
			}
		case "mx":
			pat, err := parsePattern(value)
			if err != nil {
				return bad("mx %q: %v", clip(value), err)
			}
			p.MX = append(p.MX, pat)
		default:
			if !validExtensionValue(value) {
				return bad("line %d: bad value of %s", i+1, key)
			}
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if !seen[k] {
			return bad("no %s field", k)
		}
	}
	if len(p.MX) == 0 && p.Mode != ModeNone {
		return bad("no mx field in mode %s", p.Mode)
	}
	return p, nil
}

// Match reports whether host, an MX host name, matches one of the
// policy's patterns (RFC 8461 §4.1): equal, or "*.example.com" for a host
// with exactly one more label ("mx.example.com", not "example.com" nor
// "a.b.example.com"). Case and a final dot do not matter.
func (p *Policy) Match(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if label, parent, ok := strings.Cut(host, "."); ok && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// String is the policy in the form it is served in.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\nmode: %s\n", p.Mode)
	for _, mx := range p.MX {
		fmt.Fprintf(&b, "mx: %s\n", mx)
	}
	fmt.Fprintf(&b, "max_age: %d\n", int64(p.MaxAge/time.Second))
	return b.String()
}

// parsePattern checks an mx value: a host name in A-labels, or "*." and
// one (RFC 8461 §3.2, the ABNF's sts-policy-mx-value).
func parsePattern(v string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(v, "."))
	host := strings.TrimPrefix(name, "*.")
	if host == "" || len(host) > 253 {
		return "", errors.New("not a host name")
	}
	for _, label := range strings.Split(host, ".") {
		if !validLabel(label) {
			return "", fmt.Errorf("label %q is not a host name label in A-labels", clip(label))
		}
	}
	return name, nil
}

// validLabel: letters, digits and hyphens, not at either end, 1 to 63.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validKey is sts-policy-ext-name: 1 to 32 of letters, digits, "_", "-",
// ".", starting with a letter or digit.
func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validExtensionValue is sts-policy-ext-value: printable characters and
// spaces (UTF-8 allowed), no control characters.
func validExtensionValue(v string) bool {
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// clip shortens what goes into an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
