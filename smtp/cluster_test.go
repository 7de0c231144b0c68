package smtp

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

func transferEnvelope(id string) *mail.Envelope {
	return &mail.Envelope{
		ID:   id,
		From: "alice@example.test",
		Recipients: []*mail.Recipient{
			{Addr: "bob@remote.test", State: mail.StatePending, Notify: []mail.Notify{mail.NotifyFailure}, ORcpt: "rfc822;bob@remote.test"},
			{Addr: "done@remote.test", State: mail.StateDelivered},
		},
		EnvID: "env-1", Ret: mail.ReturnHeaders, Auth: "alice@example.test",
		Received: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Source: mail.SourceAPI,
	}
}

func startClusterServer(t *testing.T, accept *atomic.Bool) *testServer {
	t.Helper()
	return startServer(t, Config{
		Cluster:         NewClusterAuth("the-cluster-secret-123", "homing", "fe1"),
		AcceptTransfers: accept.Load,
	}, false)
}

// A member with the secret hands a message over with its whole envelope;
// the receiver queues it under the same id, with the DSN parameters,
// arrival time and identity of the record, and without the record line,
// held with the sending member as its origin.
func TestClusterTransfer(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	ts := startClusterServer(t, &accept)
	c := NewClient(ClientConfig{Hostname: "be1.test"})
	body := []byte("Subject: t\r\n\r\nhello\r\n")
	auth := NewClusterAuth("the-cluster-secret-123", "homing", "be1")
	if err := c.Transfer(context.Background(), ts.addr, auth, &mail.Message{Envelope: transferEnvelope("ID1"), Body: mail.BytesBody(body)}); err != nil {
		t.Fatal(err)
	}
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 {
		t.Fatalf("%d messages queued", len(envs))
	}
	e := envs[0]
	if e.ID != "ID1" || e.From != "alice@example.test" || e.EnvID != "env-1" || e.Ret != mail.ReturnHeaders ||
		e.Auth != "alice@example.test" || !e.Received.Equal(transferEnvelope("").Received) || e.Source != mail.SourceCluster {
		t.Fatalf("queued envelope %+v", e)
	}
	if e.Origin != "be1" {
		t.Fatalf("queued with origin %q, want the authenticated member be1 (it is held until be1 confirms)", e.Origin)
	}
	if len(e.Recipients) != 1 || e.Recipients[0].Addr != "bob@remote.test" || e.Recipients[0].ORcpt != "rfc822;bob@remote.test" ||
		len(e.Recipients[0].Notify) != 1 {
		t.Fatalf("queued recipients %+v (the delivered one must not be sent again)", e.Recipients)
	}
	if strings.Contains(string(bodies[0]), "X-Homing-Envelope") || !strings.HasSuffix(string(bodies[0]), string(body)) ||
		!strings.HasPrefix(string(bodies[0]), "Received: ") {
		t.Fatalf("queued body:\n%s", bodies[0])
	}
}

// A wrong secret fails authentication; nothing is queued.
func TestClusterTransferWrongSecret(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	ts := startClusterServer(t, &accept)
	c := NewClient(ClientConfig{Hostname: "intruder.test"})
	err := c.Transfer(context.Background(), ts.addr, NewClusterAuth("another-secret-456789", "homing", "be1"), &mail.Message{Envelope: transferEnvelope("ID2"), Body: mail.BytesBody("x\r\n")})
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("transfer with a wrong secret = %v, want 535", err)
	}
	if envs, _ := ts.enq.messages(); len(envs) != 0 {
		t.Fatalf("%d messages queued by an intruder", len(envs))
	}
}

// An envelope record from a client that is not a member is refused.
func TestEnvelopeRecordFromOutsiderRefused(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	ts := startClusterServer(t, &accept)
	ts.dir.accounts["bob@example.test"] = "bob@example.test"
	rec, err := encodeEnvelopeRecord(transferEnvelope("ID3"))
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts.addr)
	c.expect("EHLO outsider.test", 250)
	c.expect("MAIL FROM:<alice@example.test>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	c.expect("DATA", 354)
	c.send(string(rec) + "Subject: x\r\n\r\nx\r\n.\r\n")
	if code, _ := c.read(); code != 554 {
		t.Fatalf("envelope record from an outsider: %d, want 554", code)
	}
	if envs, _ := ts.enq.messages(); len(envs) != 0 {
		t.Fatalf("%d messages queued", len(envs))
	}
}

// A node that does not take transfers now answers 451, so the sender
// processes the message itself.
func TestClusterTransferRefusedWhenNotLocallyForOthers(t *testing.T) {
	var accept atomic.Bool
	ts := startClusterServer(t, &accept)
	c := NewClient(ClientConfig{Hostname: "be1.test"})
	err := c.Transfer(context.Background(), ts.addr, NewClusterAuth("the-cluster-secret-123", "homing", "be1"), &mail.Message{Envelope: transferEnvelope("ID4"), Body: mail.BytesBody("x\r\n")})
	var se *gosmtp.SMTPError
	var te *TransferError
	if !errors.As(err, &se) || se.Code != 451 || !errors.As(err, &te) || te.Unclear {
		t.Fatalf("transfer to a node not taking them = %v, want a clear 451", err)
	}
}

// A transfer with a record that disagrees with RCPT TO is refused.
func TestClusterTransferMismatchRefused(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	ts := startClusterServer(t, &accept)
	auth := NewClusterAuth("the-cluster-secret-123", "homing", "be1")
	rec, _ := encodeEnvelopeRecord(transferEnvelope("ID5"))
	c := NewClient(ClientConfig{Hostname: "be1.test"})
	raw, err := c.dial(context.Background(), ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cl, _, _, _, _ := c.open(context.Background(), ts.addr, raw, tlsPolicy{label: TLSPolicyOpportunistic, plain: true}, func(string, string) {})
	if cl == nil {
		t.Fatal("no session")
	}
	defer cl.Close()
	if err := cl.Auth(auth.Client()); err != nil {
		t.Fatal(err)
	}
	if err := cl.Mail("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rcpt("mallory@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(rec)
	w.Write([]byte("x\r\n"))
	err = w.Close()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 {
		t.Fatalf("mismatched record = %v, want 554", err)
	}
	if envs, _ := ts.enq.messages(); len(envs) != 0 {
		t.Fatalf("%d messages queued", len(envs))
	}
}
