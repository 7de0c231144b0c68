package mtasts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// Record is the TXT record at _mta-sts.DOMAIN (RFC 8461 §3.1): its id
// changes whenever the policy does.
type Record struct {
	ID string
}

// Errors of the TXT record. A name without a record is not an error of
// the domain: it has no policy (a cached one still applies).
var (
	ErrNoRecord        = mail.PermanentError("no MTA-STS record")
	ErrRecordSyntax    = mail.PermanentError("malformed MTA-STS record")
	ErrMultipleRecords = mail.PermanentError("more than one MTA-STS record")
	ErrDNS             = mail.TemporaryError("the MTA-STS record could not be looked up")
)

// TXTResolver looks up TXT records; a name without them is a
// *net.DNSError with IsNotFound.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// LookupRecord returns the MTA-STS record of domain. Of the TXT records
// only those that begin with "v=STSv1" count, and there must be exactly
// one (§3.1); CNAMEs are followed by the resolver.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (Record, error) {
	txts, err := r.LookupTXT(ctx, "_mta-sts."+domain)
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return Record{}, ErrNoRecord
	case err != nil:
		return Record{}, fmt.Errorf("%w: %v", ErrDNS, err)
	}
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
		return ParseRecord(found[0])
	}
	return Record{}, fmt.Errorf("%w: %d records begin with v=STSv1", ErrMultipleRecords, len(found))
}

// ParseRecord parses "v=STSv1; id=ID[; ext=value]..." (RFC 8461 §3.1):
// the version first, an id of 1 to 32 letters and digits, fields separated
// by ";" with optional spaces around it, extension fields ignored. Of a
// repeated id the first counts.
func ParseRecord(txt string) (Record, error) {
	bad := func(format string, a ...any) (Record, error) {
		return Record{}, fmt.Errorf("%w: %s in %q", ErrRecordSyntax, fmt.Sprintf(format, a...), clip(txt))
	}
	fields := strings.Split(txt, ";")
	if v, ok := keyValue(fields[0]); !ok || v[0] != "v" || v[1] != "STSv1" || strings.TrimLeft(fields[0], " \t") != fields[0] {
		return bad("it does not begin with v=STSv1")
	}
	var rec Record
	for i, f := range fields[1:] {
		if strings.Trim(f, " \t") == "" {
			if i == len(fields)-2 {
				break // a final ";"
			}
			return bad("an empty field")
		}
		kv, ok := keyValue(f)
		if !ok {
			return bad("field %q is not key=value", clip(strings.TrimSpace(f)))
		}
		switch kv[0] {
		case "id":
			if !validID(kv[1]) {
				return bad("id %q is not 1 to 32 letters and digits", clip(kv[1]))
			}
			if rec.ID == "" {
				rec.ID = kv[1]
			}
		case "v":
			return bad("a second v=")
		default:
			if !validKey(kv[0]) || !validRecordValue(kv[1]) {
				return bad("bad extension field %q", clip(strings.TrimSpace(f)))
			}
		}
	}
	if rec.ID == "" {
		return bad("no id")
	}
	return rec, nil
}

// keyValue splits " key = value " into its trimmed halves.
func keyValue(f string) ([2]string, bool) {
	k, v, ok := strings.Cut(f, "=")
	k, v = strings.Trim(k, " \t"), strings.Trim(v, " \t")
	return [2]string{k, v}, ok && k != "" && v != ""
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validRecordValue is sts-ext-value: visible ASCII except "=" and ";".
func validRecordValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '=' || c == ';' {
			return false
		}
	}
	return true
}
