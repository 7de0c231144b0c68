package smtp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/crypto/hkdf"

	"github.com/homing-mail/homing/mail"
)

// The cluster submission protocol (design.md, "The mail flow" item 6,
// Remotely): a member hands a message it generated to a member whose queue
// mode is Locally for Others, over that member's SMTP port, with the
// whole envelope.
//
//   - Authentication: the SASL mechanism X-HOMING-CLUSTER (RFC 4954 AUTH),
//     offered in EHLO when the server knows the cluster secret. The server
//     sends a fresh 32-byte challenge; the client answers
//     "node NUL hex(HMAC-SHA256(key, label NUL challenge NUL node))" with
//     key = HKDF-SHA256(secret, "homing smtp cluster auth v1" NUL cluster
//     name). The secret never crosses the wire and a reply cannot be
//     replayed against another challenge.
//   - Only after that, the first line of DATA may be an envelope record,
//     "X-Homing-Envelope: " followed by the base64 of the JSON of
//     mail.Envelope (message id, sender, recipients with NOTIFY and ORCPT,
//     ENVID, RET, arrival time, authenticated identity). The receiver takes
//     the envelope from it (MAIL and RCPT must agree), removes the line, and
//     queues the message under the same id (a transfer repeated is
//     recognised and not queued twice), with the authenticated member as
//     its origin: it is held until the origin says it is the receiver's
//     to process (actors/transfer.go), so that after an unclear reply
//     exactly one of the two copies goes on.
//   - A server that does not take transfers now (its mode is not Locally
//     for Others) refuses MAIL from a cluster peer with 451 4.3.2, and the
//     sender processes the message itself.
//
// A client without the secret cannot authenticate, and a message that
// starts with an envelope record from anyone else is refused (554 5.7.1),
// so nobody outside the cluster can inject an envelope.

// MechCluster is the SASL mechanism of cluster members.
const MechCluster = "X-HOMING-CLUSTER"

// envelopeRecord is the first DATA line of a cluster transfer.
const envelopeRecord = "X-Homing-Envelope: "

const clusterAuthLabel = "homing smtp cluster auth v1"

// ClusterAuth holds the key cluster members authenticate with on the SMTP
// port. Safe for concurrent use.
type ClusterAuth struct {
	key  []byte
	node string // this node's name, used by Client
}

// NewClusterAuth derives the key from the cluster secret and name; node is
// this node's name.
func NewClusterAuth(secret, clusterName, node string) *ClusterAuth {
	r := hkdf.New(sha256.New, []byte(secret), nil, []byte(clusterAuthLabel+"\x00"+clusterName))
	key := make([]byte, 32)
	if _, err := io.ReadFull(r, key); err != nil {
		panic(err) // HKDF-SHA256 yields up to 8160 bytes
	}
	return &ClusterAuth{key: key, node: node}
}

func (a *ClusterAuth) mac(challenge []byte, node string) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(clusterAuthLabel))
	m.Write([]byte{0})
	m.Write(challenge)
	m.Write([]byte{0})
	m.Write([]byte(node))
	return m.Sum(nil)
}

// Client returns a SASL client that authenticates this node.
func (a *ClusterAuth) Client() sasl.Client { return &clusterClient{a: a} }

type clusterClient struct{ a *ClusterAuth }

func (c *clusterClient) Start() (string, []byte, error) { return MechCluster, nil, nil }

func (c *clusterClient) Next(challenge []byte) ([]byte, error) {
	if len(challenge) != 32 {
		return nil, errors.New("cluster auth: unexpected challenge")
	}
	return []byte(c.a.node + "\x00" + hex.EncodeToString(c.a.mac(challenge, c.a.node))), nil
}

// clusterServer is the server side of one X-HOMING-CLUSTER exchange.
type clusterServer struct {
	a         *ClusterAuth
	challenge []byte
	done      func(node string) error
}

func (s *clusterServer) Next(response []byte) ([]byte, bool, error) {
	if s.challenge == nil {
		if len(response) > 0 {
			return nil, false, errors.New("cluster auth: no initial response expected")
		}
		s.challenge = make([]byte, 32)
		if _, err := rand.Read(s.challenge); err != nil {
			return nil, false, err
		}
		return s.challenge, false, nil
	}
	node, sum, ok := strings.Cut(string(response), "\x00")
	got, err := hex.DecodeString(sum)
	if !ok || err != nil || node == "" || len(node) > 255 {
		return nil, false, ErrMalformedClusterAuth
	}
	if !hmac.Equal(got, s.a.mac(s.challenge, node)) {
		return nil, false, s.done("") // wrong key
	}
	return nil, true, s.done(node)
}

// ErrMalformedClusterAuth: the X-HOMING-CLUSTER response is not well formed.
var ErrMalformedClusterAuth = mail.PermanentError("malformed cluster authentication response")

// encodeEnvelopeRecord writes the envelope record line (with CRLF).
func encodeEnvelopeRecord(env *mail.Envelope) ([]byte, error) {
	j, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(envelopeRecord)+base64.StdEncoding.EncodedLen(len(j))+2)
	out = append(out, envelopeRecord...)
	out = base64.StdEncoding.AppendEncode(out, j)
	return append(out, '\r', '\n'), nil
}

// splitEnvelopeRecord returns the envelope of a transfer and the message
// after the record; ok is false when data does not start with a record.
func splitEnvelopeRecord(data []byte) (env *mail.Envelope, rest []byte, ok bool, err error) {
	if !bytes.HasPrefix(data, []byte(envelopeRecord)) {
		return nil, data, false, nil
	}
	i := bytes.Index(data, []byte("\r\n"))
	if i < 0 {
		return nil, nil, true, errors.New("envelope record without line end")
	}
	j, err := base64.StdEncoding.DecodeString(string(data[len(envelopeRecord):i]))
	if err != nil {
		return nil, nil, true, fmt.Errorf("envelope record: %w", err)
	}
	env = &mail.Envelope{}
	if err := json.Unmarshal(j, env); err != nil {
		return nil, nil, true, fmt.Errorf("envelope record: %w", err)
	}
	if env.ID == "" || strings.ContainsAny(env.ID, "/\r\n") || len(env.ID) > 64 {
		return nil, nil, true, errors.New("envelope record: bad message id")
	}
	return env, data[i+2:], true, nil
}

// TransferError says how far a transfer got: Unclear is true when the
// whole message was sent but no final reply was read, so the receiver may
// have queued it (the sender asks it, actors/transfer.go; sent again to
// the same member, it recognises the id).
type TransferError struct {
	Err     error
	Unclear bool
}

// Temporary is true: a failed transfer is retried, or the message is
// processed where it was generated.
func (e *TransferError) Temporary() bool { return true }

// TransferUnclear reports Unclear (the question actors.Transferer's
// callers ask of an error).
func (e *TransferError) TransferUnclear() bool { return e.Unclear }

func (e *TransferError) Error() string { return "cluster transfer: " + e.Err.Error() }
func (e *TransferError) Unwrap() error { return e.Err }

// Transfer hands msg to the member whose SMTP listener is addr,
// with the cluster submission protocol. It returns nil only after the
// member answered 250 to the end of DATA, i.e. the message is durable in
// its queue. auth's node name identifies this node.
func (c *Client) Transfer(ctx context.Context, addr string, auth *ClusterAuth, msg *mail.Message) error {
	env := msg.Envelope
	if auth == nil {
		return &TransferError{Err: errors.New("no cluster secret")}
	}
	record, err := encodeEnvelopeRecord(env)
	if err != nil {
		return &TransferError{Err: err}
	}
	raw, err := c.dial(ctx, addr)
	if err != nil {
		return &TransferError{Err: err}
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	// STARTTLS: required and verified against the cluster CA when the
	// client is configured so (ClientConfig.TLS and RequireTLS, the
	// node's members' client), else opportunistic; the cluster HMAC
	// authenticates the peer either way.
	pol, _ := c.hostTLS(host{name: addr}, nil, nil)
	cl, _, _, res, _ := c.open(ctx, addr, raw, pol, func(result, _ string) { c.cfg.Metrics.tlsOutcome(pol.label, result) })
	if cl == nil {
		return &TransferError{Err: errors.New(res.String())}
	}
	defer cl.Close()
	if err := cl.Auth(auth.Client()); err != nil {
		return &TransferError{Err: err}
	}
	opts := &gosmtp.MailOptions{UTF8: env.SMTPUTF8}
	if env.Body8Bit {
		opts.Body = gosmtp.Body8BitMIME
	}
	if err := cl.Mail(env.From, opts); err != nil {
		return &TransferError{Err: err}
	}
	for _, r := range env.Recipients {
		if r.State.Final() {
			continue
		}
		if err := cl.Rcpt(r.Addr, nil); err != nil {
			return &TransferError{Err: err}
		}
	}
	w, err := cl.Data()
	if err != nil {
		return &TransferError{Err: err}
	}
	if _, err := w.Write(record); err != nil {
		return &TransferError{Err: err}
	}
	if err := writeBody(w, msg.Body); err != nil {
		return &TransferError{Err: err}
	}
	if err := w.Close(); err != nil {
		var se *gosmtp.SMTPError
		return &TransferError{Err: err, Unclear: !errors.As(err, &se)}
	}
	_ = cl.Quit()
	return nil
}

// dial connects to addr with the client's dialer and timeout.
func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	return c.cfg.Dial(dctx, "tcp", addr)
}
