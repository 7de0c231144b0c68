package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"net/textproto"
	"strings"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/homing-mail/homing/mail"
)

// headHead is how much of a message is read to find its header fields.
const headBytes = 256 << 10

// signedFields are the header fields signed when present (RFC 6376
// §5.4.1's list, and the MIME fields that decide how the body reads);
// oversigned are signed once more than they occur (§5.4.2), so that
// nobody can add one later: a second From, Subject or To would change
// what the reader sees. The List-* fields are signed only as they are:
// a mailing list adds its own.
var (
	signedFields = []string{
		"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From", "Resent-To",
		"Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
		"List-Subscribe", "List-Post", "List-Owner", "List-Archive", "Message-ID", "MIME-Version",
		"Content-Type", "Content-Transfer-Encoding",
	}
	oversigned = map[string]bool{
		"From": true, "Reply-To": true, "Subject": true, "Date": true, "To": true, "Cc": true,
		"Message-Id": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	}
)

// Signature is one DKIM signature a Signer added.
type Signature struct {
	Domain, Selector, Algorithm string
}

func (s Signature) String() string { return "d=" + s.Domain + " s=" + s.Selector + " a=" + s.Algorithm }

// SignerConfig says whose mail is signed and with what.
type SignerConfig struct {
	Keys *Keyring
	// IsLocal reports whether domain (lower case) is a local domain.
	IsLocal func(domain string) bool
	// Fallback is the domain whose key signs the node's own reports
	// (DSNs, from MAILER-DAEMON@hostname) when the author domain has no
	// local parent: the first local domain.
	Fallback string
	// Algorithm is that of a key made on first use ("" = none made: a
	// domain without a key is not signed).
	Algorithm string
}

// Signer signs the mail of local senders (see Sign). Safe for concurrent
// use.
type Signer struct{ cfg SignerConfig }

// NewSigner returns a signer for cfg.
func NewSigner(cfg SignerConfig) *Signer { return &Signer{cfg: cfg} }

// ErrNoKey: the message is not signed because it is not from a local
// sender (see Sign); not an error of the message.
var ErrNoKey = errors.New("dkim: not a local sender's message")

// Sign returns msg with a DKIM-Signature header field (relaxed/relaxed,
// rsa-sha256 or ed25519-sha256) per signing key of the author domain in
// front, and the signatures. The author domain is the domain of the
// first From address (RFC 5322 §3.6.2), signed as d= the local domain it
// is or is below (so that DMARC's relaxed alignment holds, RFC 7489
// §3.1.1); a report of the node itself (source dsn) from a domain that
// is not local is signed as Fallback. A message already signed by one of
// the domain's selectors is not signed again, so that a message passing
// two of the cluster's queues is signed once. Not a local sender's mail:
// ErrNoKey. The caller decides whether the sender is trusted.
func (s *Signer) Sign(msg *mail.Message, made func(Key)) (*mail.Message, []Signature, error) {
	head, err := mail.Head(msg.Body, headBytes)
	if err != nil {
		return nil, nil, err
	}
	fields, hdr, err := readFields(head)
	if err != nil {
		return nil, nil, ErrNoKey
	}
	domain := s.signingDomain(hdr, msg.Envelope)
	if domain == "" {
		return nil, nil, ErrNoKey
	}
	keys, newKey, err := s.cfg.Keys.Signing(domain, s.cfg.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, ErrNoKey
	}
	if newKey && made != nil {
		made(keys[0])
	}
	if alreadySigned(hdr, keys) {
		return msg, nil, nil
	}
	hk := headerKeys(fields)
	var signers []*msgdkim.Signer
	var ws []io.Writer
	var sigs []Signature
	for _, k := range keys {
		priv, err := k.Signer()
		if err != nil {
			return nil, nil, err
		}
		sg, err := msgdkim.NewSigner(&msgdkim.SignOptions{
			Domain: k.Domain, Selector: k.Selector, Signer: priv, Hash: crypto.SHA256,
			HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
			HeaderKeys:             hk,
		})
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, sg)
		ws = append(ws, sg)
		sigs = append(sigs, Signature{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm})
	}
	r, err := msg.Body.Open()
	if err != nil {
		for _, sg := range signers {
			sg.Close()
		}
		return nil, nil, err
	}
	_, err = io.Copy(io.MultiWriter(ws...), r)
	r.Close()
	var fields2 bytes.Buffer
	for _, sg := range signers {
		if cerr := sg.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: signing: %w", err)
	}
	for _, sg := range signers {
		fields2.WriteString(sg.Signature())
	}
	return &mail.Message{Envelope: msg.Envelope, Body: mail.Prepend(fields2.Bytes(), msg.Body)}, sigs, nil
}

// signingDomain is the local domain that signs for the author (see
// Sign), "" when none does.
func (s *Signer) signingDomain(hdr textproto.MIMEHeader, env *mail.Envelope) string {
	if from := authorDomain(hdr); from != "" {
		for d := from; d != ""; d = parent(d) {
			if s.cfg.IsLocal(d) {
				return d
			}
		}
	}
	if env != nil && env.Source == mail.SourceDSN && s.cfg.Fallback != "" {
		return strings.ToLower(s.cfg.Fallback)
	}
	return ""
}

// authorDomain is the domain of the first From address, lower case.
func authorDomain(hdr textproto.MIMEHeader) string {
	from := hdr.Get("From")
	if from == "" {
		return ""
	}
	addrs, err := netmail.ParseAddressList(from)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	return mail.Domain(addrs[0].Address)
}

// parent is d without its first label ("" for a top-level name).
func parent(d string) string {
	i := strings.IndexByte(d, '.')
	if i < 0 || !strings.Contains(d[i+1:], ".") {
		return ""
	}
	return d[i+1:]
}

// alreadySigned reports whether a DKIM-Signature of the header names one
// of keys' domain and selector.
func alreadySigned(hdr textproto.MIMEHeader, keys []Key) bool {
	for _, v := range hdr.Values("Dkim-Signature") {
		tags := parseTags(v)
		for _, k := range keys {
			if strings.EqualFold(tags["d"], k.Domain) && strings.EqualFold(tags["s"], k.Selector) {
				return true
			}
		}
	}
	return false
}

// parseTags reads a tag=value list (RFC 6376 §3.2), leniently.
func parseTags(v string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		out[strings.ToLower(strings.TrimSpace(name))] = strings.Join(strings.Fields(val), "")
	}
	return out
}

// headerKeys lists the fields to sign: those of signedFields present, as
// often as they occur, and the oversigned ones once more.
func headerKeys(fields []string) []string {
	count := map[string]int{}
	for _, f := range fields {
		count[textproto.CanonicalMIMEHeaderKey(f)]++
	}
	var out []string
	for _, f := range signedFields {
		c := count[textproto.CanonicalMIMEHeaderKey(f)]
		n := c
		if oversigned[textproto.CanonicalMIMEHeaderKey(f)] {
			n = c + 1
		}
		for i := 0; i < n; i++ {
			out = append(out, f)
		}
	}
	return out
}

// readFields parses the header section at the start of head: the field
// names in order and the fields.
func readFields(head []byte) ([]string, textproto.MIMEHeader, error) {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	hdr, err := tr.ReadMIMEHeader()
	if err != nil && len(hdr) == 0 {
		return nil, nil, err
	}
	var names []string
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if name, _, ok := bytes.Cut(line, []byte(":")); ok {
			names = append(names, strings.TrimSpace(string(name)))
		}
	}
	return names, hdr, nil
}
