package rules

import (
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/homing-mail/homing/mail"
)

// act is an Action checked and prepared for Evaluate.
type act struct {
	kind   string
	reject *mail.Error // reject
	addrs  []string    // redirect, forward
	text   string      // add-header (the whole line), folder, filter
	vac    *Vacation   // vacation
}

// compileAction checks a and prepares it. The returned act has its kind
// set also when err is not nil.
func compileAction(a Action) (act, error) {
	k := act{kind: strings.ToLower(strings.TrimSpace(a.Kind))}
	if len(a.Params) > 0 && k.kind != ActionVacation {
		return k, fmt.Errorf("params apply to vacation only")
	}
	var err error
	switch k.kind {
	case ActionReject:
		k.reject, err = parseReject(a.Value)
	case ActionDiscard, ActionStop:
		if strings.TrimSpace(a.Value) != "" {
			err = fmt.Errorf("%s takes no value", k.kind)
		}
	case ActionRedirect, ActionForward:
		k.addrs, err = parseAddressList(a.Value)
	case ActionAddHeader:
		k.text, err = parseAddHeader(a.Value)
	case ActionFolder:
		k.text, err = parseFolder(a.Value)
	case ActionFilter:
		k.text, err = parseFilterName(a.Value)
	case ActionVacation:
		k.vac, err = parseVacation(a.Value, a.Params)
	default:
		return k, fmt.Errorf("unknown action %q (want reject, discard, redirect, forward, add-header, folder, filter, vacation or stop)", a.Kind)
	}
	if err != nil {
		return k, fmt.Errorf("%s: %w", k.kind, err)
	}
	return k, nil
}

// defaultReject is the reply of a reject action without a value.
func defaultReject() *mail.Error {
	return &mail.Error{Code: 550, Status: mail.StatusRefused, Reason: "Message refused by policy"}
}

// parseReject reads "code [status] text": an RFC 5321 §4.2 reply code
// (4xx or 5xx; not 421, which closes the connection), an optional RFC 3463
// enhanced status code of the same class and a text of printable US-ASCII
// (RFC 5321 §4.2 textstring). Each part may be left out: the defaults are
// 550, x.7.1 and "Message refused by policy". A value that does not start
// with digits is all text.
func parseReject(v string) (*mail.Error, error) {
	r := defaultReject()
	rest := strings.TrimSpace(v)
	if tok, after := cutToken(rest); tok != "" && allDigits(tok) {
		if len(tok) != 3 || (tok[0] != '4' && tok[0] != '5') || tok[1] > '5' {
			return nil, fmt.Errorf("reply code %q is not a 4xx or 5xx code", tok)
		}
		if tok == "421" {
			return nil, fmt.Errorf("reply code 421 is reserved for closing the connection")
		}
		r.Code, _ = strconv.Atoi(tok)
		if r.Code/100 == 4 {
			r.Status = mail.StatusRefused.Transient()
		}
		rest = after
	}
	if tok, after := cutToken(rest); tok != "" && strings.Trim(tok, "0123456789.") == "" && strings.Contains(tok, ".") {
		if !enhancedStatus(tok) {
			return nil, fmt.Errorf("enhanced status code %q is not class.subject.detail (RFC 3463)", tok)
		}
		if tok[0] != byte('0'+r.Code/100) {
			return nil, fmt.Errorf("enhanced status code %s does not match reply code %d", tok, r.Code)
		}
		r.Status = mail.Status(tok)
		rest = after
	}
	if rest != "" {
		if len(rest) > maxReplyText {
			return nil, fmt.Errorf("text longer than %d bytes", maxReplyText)
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c != '\t' && (c < 32 || c > 126) {
				return nil, fmt.Errorf("text may hold printable US-ASCII only (RFC 5321 §4.2), not %q", c)
			}
		}
		r.Reason = rest
	}
	return r, nil
}

// cutToken splits s at its first run of spaces or tabs.
func cutToken(s string) (tok, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// enhancedStatus reports whether s is an RFC 3463 status code: class "4"
// or "5", subject and detail of one to three digits.
func enhancedStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 || !allDigits(p) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseAddressList reads comma-separated addresses, each optionally in
// angle brackets, normalised by mail.ParseAddress (which refuses relay
// tricks such as source routes and the percent hack).
func parseAddressList(v string) ([]string, error) {
	var out []string
	for i, part := range strings.Split(v, ",") {
		p := strings.TrimSpace(part)
		if strings.HasPrefix(p, "<") && strings.HasSuffix(p, ">") {
			p = strings.TrimSpace(p[1 : len(p)-1])
		}
		if p == "" {
			if strings.TrimSpace(v) == "" {
				return nil, fmt.Errorf("no addresses")
			}
			return nil, fmt.Errorf("address %d is empty", i+1)
		}
		a, err := mail.ParseAddress(p)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", p, err)
		}
		out = appendUnique(out, a)
		if len(out) > maxAddresses {
			return nil, fmt.Errorf("more than %d addresses", maxAddresses)
		}
	}
	return out, nil
}

// parseAddHeader reads "Name: value" and returns the header line to add:
// the name an RFC 5322 field name, the value without CR, LF or control
// characters, RFC 2047 encoded when it is not ASCII, and the line at most
// 998 bytes. Fields that would make the message ambiguous (MIME structure,
// the Return-Path a final delivery writes) are refused.
func parseAddHeader(v string) (string, error) {
	name, value, ok := strings.Cut(v, ":")
	if !ok {
		return "", fmt.Errorf("want \"Name: value\"")
	}
	name = strings.TrimSpace(name)
	if !validFieldName(name) {
		return "", fmt.Errorf("%q is not a header field name", name)
	}
	ln := strings.ToLower(name)
	if ln == "mime-version" || ln == "return-path" || strings.HasPrefix(ln, "content-") {
		return "", fmt.Errorf("%s may not be added by a rule", name)
	}
	value = strings.TrimSpace(value)
	if err := checkText("the value", value, maxHeaderLine); err != nil {
		return "", err
	}
	if !isASCII(value) {
		value = mime.QEncoding.Encode("utf-8", value)
	}
	line := name + ": " + value
	if len(line) > maxHeaderLine {
		return "", fmt.Errorf("the field is longer than %d bytes", maxHeaderLine)
	}
	return line, nil
}

// parseFolder checks a folder name: not empty, no control characters.
func parseFolder(v string) (string, error) {
	f := strings.TrimSpace(v)
	if f == "" {
		return "", fmt.Errorf("no folder name")
	}
	if err := checkText("the folder name", f, maxFolderLen); err != nil {
		return "", err
	}
	if strings.ContainsRune(f, '\t') {
		return "", fmt.Errorf("the folder name contains a tab")
	}
	return f, nil
}

// parseFilterName checks an external filter's name: letters, digits, '.',
// '_' and '-'.
func parseFilterName(v string) (string, error) {
	f := strings.TrimSpace(v)
	if f == "" {
		return "", fmt.Errorf("no filter name")
	}
	if len(f) > maxFilterName {
		return "", fmt.Errorf("filter name longer than %d bytes", maxFilterName)
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", fmt.Errorf("filter name %q may hold letters, digits, '.', '_' and '-' only", f)
		}
	}
	return f, nil
}

// parseVacation checks a vacation action: the reply text (any UTF-8
// without control characters other than tab, CR and LF) and the params
// subject, from and days.
func parseVacation(text string, params map[string]string) (*Vacation, error) {
	v := &Vacation{Text: text, Days: DefaultVacationDays}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("no reply text")
	}
	if len(text) > maxVacationText {
		return nil, fmt.Errorf("reply text longer than %d bytes", maxVacationText)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("reply text is not valid UTF-8")
	}
	for _, r := range text {
		if (r < 0x20 && r != '\t' && r != '\r' && r != '\n') || r == 0x7f {
			return nil, fmt.Errorf("reply text contains control character %q", r)
		}
	}
	keys := make([]string, 0, len(params))
	for key := range params {
		keys = append(keys, key)
	}
	slices.Sort(keys) // the first problem reported is always the same
	seen := map[string]bool{}
	for _, key := range keys {
		val := params[key]
		k := strings.ToLower(strings.TrimSpace(key))
		if seen[k] {
			return nil, fmt.Errorf("param %q given twice", k)
		}
		seen[k] = true
		switch k {
		case ParamSubject:
			s := strings.TrimSpace(val)
			if err := checkText("the subject", s, maxVacationSubj); err != nil {
				return nil, err
			}
			v.Subject = s
		case ParamFrom:
			a, err := mail.ParseAddress(strings.Trim(strings.TrimSpace(val), "<>"))
			if err != nil {
				return nil, fmt.Errorf("from %q: %w", val, err)
			}
			v.From = a
		case ParamDays:
			d, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil || d < 1 || d > maxVacationDays {
				return nil, fmt.Errorf("days %q is not a number from 1 to %d", val, maxVacationDays)
			}
			v.Days = d
		default:
			return nil, fmt.Errorf("unknown param %q (want subject, from or days)", key)
		}
	}
	return v, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
