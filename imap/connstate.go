package imap

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/homing-mail/homing/actors/pb"
)

// connState is what the filter of one connection (wire.go) asks of the
// connection: its capabilities now, and the answers to ID and QUOTA.
type connState struct {
	s      *Server
	fc     *filterConn
	remote netip.Addr
	sess   *session
}

// mayLogin: LOGIN and AUTHENTICATE PLAIN only over TLS or from loopback
// (RFC 9051 §6.2.3, RFC 8314 §5).
func (h *connState) mayLogin(isTLS bool) bool { return isTLS || h.remote.IsLoopback() }

func (h *connState) mayStartTLS() bool {
	return h.sess == nil || h.sess.loggedIn() == ""
}

func (h *connState) capabilities(caps []string, isTLS bool) []string {
	authed := h.sess != nil && h.sess.loggedIn() != ""
	out := slices.DeleteFunc(slices.Clone(caps), func(c string) bool {
		return strings.HasPrefix(c, "AUTH=") || c == "LOGINDISABLED" || c == "STARTTLS"
	})
	if !authed {
		if !isTLS && h.s.cfg.TLS != nil {
			out = append(out, "STARTTLS")
		}
		if h.mayLogin(isTLS) {
			out = append(out, "AUTH=PLAIN")
		} else {
			out = append(out, "LOGINDISABLED")
		}
	}
	out = append(out, "ID")
	if authed {
		out = append(out, "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE") // APPENDLIMIT: imapserver's (appendlimit.go)
	}
	return out
}

// maxBufferedLiteral is imapserver's limit of a literal outside APPEND.
const maxBufferedLiteral = 4096

// command answers BAD to the syntax errors imapserver would take for its
// own (badSyntax), NO [TOOBIG] to a synchronizing literal over imapserver's
// limit outside APPEND, ID (RFC 2971 §3.1) in any state, and GETQUOTAROOT,
// GETQUOTA (RFC 9208 §4.2, §4.3) and SETQUOTA (refused: quotas are the
// administrator's) once logged in.
func (h *connState) command(tag, name, args string, isTLS bool, answer func(string) error) (bool, error) {
	if reason := badSyntax(name, args); reason != "" {
		return true, answer(tag + " BAD [CLIENTBUG] " + reason)
	}
	if n, ok := literalAtEnd([]byte(args)); ok && n > maxBufferedLiteral && name != "APPEND" && !strings.HasSuffix(args, "+}") {
		// imapserver refuses it without a word and then waits for
		// bytes the client will not send.
		return true, answer(fmt.Sprintf("%s NO [TOOBIG] Literals are limited to %d bytes for this command", tag, maxBufferedLiteral))
	}
	switch name {
	case "ID":
		a := strings.TrimSpace(args)
		if a != "NIL" && !(strings.HasPrefix(a, "(") && strings.HasSuffix(a, ")")) {
			return true, answer(tag + " BAD ID takes NIL or a parenthesized list")
		}
		if err := answer(`* ID ("name" "Homing" "vendor" "homing-mail")`); err != nil {
			return true, err
		}
		return true, answer(tag + " OK ID completed")
	case "GETQUOTAROOT", "GETQUOTA", "SETQUOTA":
	default:
		return false, nil
	}
	account := ""
	if h.sess != nil {
		account = h.sess.loggedIn()
	}
	if account == "" {
		return true, answer(tag + " BAD " + name + " is only valid in the authenticated state")
	}
	arg, ok := oneArg(args)
	switch {
	case name == "SETQUOTA":
		return true, answer(tag + " NO [NOPERM] Quotas are set by the administrator")
	case !ok:
		return true, answer(tag + " BAD " + name + " takes one argument")
	case name == "GETQUOTA" && arg != "":
		return true, answer(tag + " NO [NONEXISTENT] No such quota root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.s.requestTimeout())
	defer cancel()
	r, err := h.s.backend.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_QUOTA, Account: account})
	if err != nil {
		return true, answer(tag + " NO [UNAVAILABLE] The mailbox is not reachable now")
	}
	if name == "GETQUOTAROOT" {
		if _, err := h.s.backend.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_STATUS, Account: account, Folder: decodeName(arg)}); err != nil {
			return true, answer(tag + " NO [NONEXISTENT] No such mailbox")
		}
		if err := answer(fmt.Sprintf("* QUOTAROOT %s \"\"", quote(arg))); err != nil {
			return true, err
		}
	}
	// RFC 9208 §5.1: STORAGE in units of 1024 octets. Without a limit
	// the usage is still told, with the largest limit.
	limit := r.QuotaBytes
	if limit <= 0 {
		limit = 1 << 53
	}
	line := fmt.Sprintf(`* QUOTA "" (STORAGE %d %d MESSAGE %d %d)`, (r.UsedBytes+1023)/1024, limit/1024, r.UsedMessages, int64(1)<<31)
	if err := answer(line); err != nil {
		return true, err
	}
	return true, answer(tag + " OK " + name + " completed")
}

// oneArg reads one astring argument (an atom or a quoted string).
func oneArg(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			return "", false
		}
		inner := s[1 : len(s)-1]
		inner = strings.ReplaceAll(strings.ReplaceAll(inner, `\\`, "\x00"), `\"`, `"`)
		return strings.ReplaceAll(inner, "\x00", `\`), true
	}
	if s == "" || strings.ContainsAny(s, " (){") {
		return "", false
	}
	return s, true
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
