package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/fakemx"
)

// stubResolver answers from maps; a missing name is NXDOMAIN.
type stubResolver struct {
	mx    map[string][]*net.MX
	hosts map[string][]string
	err   error // returned by every lookup when set
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *stubResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if r.err != nil {
		return nil, r.err
	}
	if mx, ok := r.mx[name]; ok {
		return mx, nil
	}
	return nil, notFound(name)
}

func (r *stubResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, notFound(host)
}

// dialMap dials the real address mapped to each requested one, refuses
// everything else, and never leaves loopback. It records the requests.
type dialMap struct {
	mu    sync.Mutex
	to    map[string]string
	calls []string
}

func (d *dialMap) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, addr)
	real, ok := d.to[addr]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s: connection refused (not mapped)", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, real)
}

func (d *dialMap) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func rcptsOf(addrs ...string) []*mail.Recipient {
	var rs []*mail.Recipient
	for _, a := range addrs {
		rs = append(rs, &mail.Recipient{Addr: a, State: mail.StatePending})
	}
	return rs
}

// msgOf is the attempt of env for rcpts (keys assigned) with body.
func msgOf(env *mail.Envelope, rcpts []*mail.Recipient, body string) *mail.Message {
	env.Recipients = rcpts
	env.AssignKeys()
	return &mail.Message{Envelope: env, Body: mail.BytesBody(body)}
}

const testBody = "Subject: test\r\n\r\n.dot line\r\nbody\r\n"

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientOneTransactionPerRecipientResults(t *testing.T) {
	rs := fakemx.Start(t)
	rs.FailRcptFunc(func(rcpt string) *gosmtp.SMTPError {
		return map[string]*gosmtp.SMTPError{
			"b@remote.test": {Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
			"c@remote.test": {Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"},
		}[rcpt]
	})
	cl := NewClient(ClientConfig{Hostname: "relay.example.test", Routes: map[string]string{"remote.test": rs.Addr}})

	env := &mail.Envelope{ID: "Q1", From: "s@example.test"}
	res := cl.Send(sendCtx(t), msgOf(env, rcptsOf("a@remote.test", "b@remote.test", "c@remote.test", "d@remote.test"), testBody))

	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	if !res[0].OK() || !res[3].OK() || res[0].String() != "250 2.0.0 OK: queued" {
		t.Errorf("accepted recipients: %v, %v", res[0], res[3])
	}
	if res[1].Code != 550 || res[1].Status != "5.1.1" || res[1].Text != "no such user" || res[1].Temporary() {
		t.Errorf("b: %+v", res[1])
	}
	if res[2].Code != 452 || res[2].Status != "4.2.2" || !res[2].Temporary() {
		t.Errorf("c: %+v", res[2])
	}
	for i, r := range res {
		if r.RemoteMTA != "127.0.0.1" {
			t.Errorf("result %d RemoteMTA = %q", i, r.RemoteMTA)
		}
	}
	txs := rs.Transactions()
	if len(txs) != 1 {
		t.Fatalf("%d transactions, want 1", len(txs))
	}
	tx := txs[0]
	if tx.From != "s@example.test" || strings.Join(tx.To, ",") != "a@remote.test,d@remote.test" {
		t.Errorf("transaction from %q to %v", tx.From, tx.To)
	}
	if string(tx.Data) != testBody {
		t.Errorf("data = %q, want %q", tx.Data, testBody)
	}
	if tx.Helo != "relay.example.test" || tx.MailOptions.Size != int64(len(testBody)) {
		t.Errorf("EHLO %q, SIZE %d", tx.Helo, tx.MailOptions.Size)
	}
}

func TestClientNoDataWhenAllRecipientsRefused(t *testing.T) {
	rs := fakemx.Start(t)
	rs.FailRcpt(func(rcpt string) bool { return rcpt == "a@remote.test" }, &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no"})
	cl := NewClient(ClientConfig{Routes: map[string]string{"*": rs.Addr}})
	res := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: ""}, rcptsOf("a@remote.test"), testBody))
	if res[0].Code != 550 {
		t.Errorf("result %+v", res[0])
	}
	txs := rs.Transactions()
	if len(txs) != 1 || txs[0].DataSeen {
		t.Errorf("transactions %+v: DATA sent without an accepted recipient", txs)
	}
	if txs[0].From != "" {
		t.Errorf("MAIL FROM = %q, want the null sender", txs[0].From)
	}
}

func TestClientFinalReplyAppliesToAccepted(t *testing.T) {
	rs := fakemx.Start(t)
	rs.FailRcpt(func(rcpt string) bool { return rcpt == "b@remote.test" }, &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no"})
	rs.FailData(&gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "spam"})
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}})
	res := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@example.test"}, rcptsOf("a@remote.test", "b@remote.test", "c@remote.test"), testBody))
	if res[0].Code != 554 || res[0].Status != "5.7.1" || res[2].Code != 554 {
		t.Errorf("accepted recipients: %+v %+v", res[0], res[2])
	}
	if res[1].Code != 550 || res[1].Status != "5.1.1" {
		t.Errorf("refused recipient: %+v", res[1])
	}
}

func TestClientDSNParameters(t *testing.T) {
	rs := fakemx.Start(t)
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}})
	env := &mail.Envelope{From: "s@example.test", Ret: mail.ReturnHeaders, EnvID: "env=1+x", Body8Bit: true}
	rcpts := rcptsOf("a@remote.test", "b@remote.test")
	rcpts[0].Notify = []mail.Notify{mail.NotifySuccess, mail.NotifyDelay}
	rcpts[0].ORcpt = "rfc822;list@example.test"
	rcpts[1].Notify = []mail.Notify{mail.NotifyNever}
	res := cl.Send(sendCtx(t), msgOf(env, rcpts, testBody))
	if !res[0].OK() || !res[1].OK() {
		t.Fatalf("results %+v", res)
	}
	tx := rs.Transactions()[0]
	if tx.MailOptions.Return != gosmtp.DSNReturnHeaders || tx.MailOptions.EnvelopeID != "env=1+x" || tx.MailOptions.Body != gosmtp.Body8BitMIME {
		t.Errorf("MAIL options %+v", tx.MailOptions)
	}
	o := tx.RcptOptions[0]
	if len(o.Notify) != 2 || o.Notify[0] != gosmtp.DSNNotifySuccess || o.Notify[1] != gosmtp.DSNNotifyDelayed {
		t.Errorf("NOTIFY %v", o.Notify)
	}
	if o.OriginalRecipientType != gosmtp.DSNAddressTypeRFC822 || o.OriginalRecipient != "list@example.test" {
		t.Errorf("ORCPT %q;%q", o.OriginalRecipientType, o.OriginalRecipient)
	}
	if n := tx.RcptOptions[1].Notify; len(n) != 1 || n[0] != gosmtp.DSNNotifyNever {
		t.Errorf("NOTIFY of b %v", n)
	}
}

func TestClientConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": addr}})
	res := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@example.test"}, rcptsOf("a@remote.test", "b@remote.test"), testBody))
	for i, r := range res {
		if !r.Temporary() || r.Status != "4.4.1" {
			t.Errorf("result %d: %+v, want temporary 4.4.1", i, r)
		}
	}
}

// greeter421 accepts connections, says 421 and closes; it counts them.
func greeter421(t *testing.T) (addr string, count func() int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			c.Write([]byte("421 4.3.2 busy, try later\r\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// TestClientMXOrderAndFallback: MX hosts are tried by preference; a 421
// greeting moves on to the next host.
func TestClientMXOrderAndFallback(t *testing.T) {
	good := fakemx.Start(t)
	busy, busyCount := greeter421(t)
	res := &stubResolver{
		mx: map[string][]*net.MX{"dest.test": {
			{Host: "mx-backup.dest.test.", Pref: 20},
			{Host: "mx-primary.dest.test.", Pref: 10},
		}},
		hosts: map[string][]string{
			"mx-primary.dest.test": {"127.0.0.1"},
			"mx-backup.dest.test":  {"127.0.0.2"},
		},
	}
	d := &dialMap{to: map[string]string{"127.0.0.1:25": busy, "127.0.0.2:25": good.Addr}}
	cl := NewClient(ClientConfig{Resolver: res, Dial: d.dial})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@example.test"}, rcptsOf("a@dest.test"), testBody))
	if !out[0].OK() || out[0].RemoteMTA != "mx-backup.dest.test" {
		t.Fatalf("result %+v, want delivered by mx-backup.dest.test", out[0])
	}
	if got := d.dialed(); strings.Join(got, " ") != "127.0.0.1:25 127.0.0.2:25" {
		t.Errorf("dialed %v, want the primary first", got)
	}
	if busyCount() != 1 {
		t.Errorf("the primary got %d connections", busyCount())
	}
}

func TestClientAllHostsBusy(t *testing.T) {
	busy, _ := greeter421(t)
	res := &stubResolver{
		mx:    map[string][]*net.MX{"dest.test": {{Host: "mx.dest.test", Pref: 10}}},
		hosts: map[string][]string{"mx.dest.test": {"127.0.0.1"}},
	}
	d := &dialMap{to: map[string]string{"127.0.0.1:25": busy}}
	out := NewClient(ClientConfig{Resolver: res, Dial: d.dial}).
		Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@dest.test"), testBody))
	if out[0].Code != 421 || out[0].Status != "4.3.2" || out[0].RemoteMTA != "mx.dest.test" {
		t.Errorf("result %+v, want the 421 greeting", out[0])
	}
}

func TestClientNullMX(t *testing.T) {
	res := &stubResolver{mx: map[string][]*net.MX{"nomail.test": {{Host: ".", Pref: 0}}}}
	d := &dialMap{}
	out := NewClient(ClientConfig{Resolver: res, Dial: d.dial}).
		Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@nomail.test", "b@nomail.test"), testBody))
	for i, r := range out {
		if r.Code/100 != 5 || r.Status != "5.1.10" {
			t.Errorf("result %d: %+v, want permanent 5.1.10", i, r)
		}
	}
	if len(d.dialed()) != 0 {
		t.Errorf("dialed %v for a null MX", d.dialed())
	}
}

func TestClientImplicitMX(t *testing.T) {
	good := fakemx.Start(t)
	res := &stubResolver{hosts: map[string][]string{"implicit.test": {"127.0.0.1"}}}
	d := &dialMap{to: map[string]string{"127.0.0.1:2525": good.Addr}}
	out := NewClient(ClientConfig{Resolver: res, Dial: d.dial, Port: 2525}).
		Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@implicit.test"), testBody))
	if !out[0].OK() || out[0].RemoteMTA != "implicit.test" {
		t.Errorf("result %+v", out[0])
	}
}

func TestClientDNSFailures(t *testing.T) {
	d := &dialMap{}
	out := NewClient(ClientConfig{Resolver: &stubResolver{}, Dial: d.dial}).
		Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@nxdomain.test"), testBody))
	if out[0].Code/100 != 5 || out[0].Status != "5.1.2" {
		t.Errorf("NXDOMAIN: %+v", out[0])
	}
	out = NewClient(ClientConfig{Resolver: &stubResolver{err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}, Dial: d.dial}).
		Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@x.test"), testBody))
	if !out[0].Temporary() || out[0].Status != "4.4.3" {
		t.Errorf("SERVFAIL: %+v", out[0])
	}
	if len(d.dialed()) != 0 {
		t.Errorf("dialed %v", d.dialed())
	}
}

func TestClientSMTPUTF8NotSupported(t *testing.T) {
	rs := fakemx.Start(t, func(s *gosmtp.Server) { s.EnableSMTPUTF8 = false })
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "発信者@example.test", SMTPUTF8: true}, rcptsOf("a@remote.test"), testBody))
	if out[0].Code/100 != 5 || out[0].Status != "5.6.7" {
		t.Errorf("result %+v, want permanent 5.6.7", out[0])
	}
	if len(rs.Transactions()) != 0 {
		t.Error("MAIL was sent")
	}
}

func TestClientSMTPUTF8Supported(t *testing.T) {
	rs := fakemx.Start(t)
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "発信者@example.test", SMTPUTF8: true}, rcptsOf("用户@remote.test"), testBody))
	if !out[0].OK() {
		t.Fatalf("result %+v", out[0])
	}
	tx := rs.Transactions()[0]
	if !tx.MailOptions.UTF8 || tx.From != "発信者@example.test" || tx.To[0] != "用户@remote.test" {
		t.Errorf("transaction %+v", tx)
	}
}

func TestClientRemoteSizeLimit(t *testing.T) {
	rs := fakemx.Start(t, func(s *gosmtp.Server) { s.MaxMessageBytes = 10 })
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@remote.test"), testBody))
	if out[0].Code != 552 || out[0].Status != "5.3.4" {
		t.Errorf("result %+v", out[0])
	}
	if len(rs.Transactions()) != 0 {
		t.Error("MAIL was sent")
	}
}

func TestClientOpportunisticSTARTTLS(t *testing.T) {
	rs := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = selfSignedTLS(t, "remote.test") })
	cl := NewClient(ClientConfig{Hostname: "relay.example.test", Routes: map[string]string{"remote.test": rs.Addr}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@example.test"}, rcptsOf("a@remote.test"), testBody))
	if !out[0].OK() {
		t.Fatalf("result %+v", out[0])
	}
	tx := rs.Transactions()[0]
	if !tx.TLS || tx.Helo != "relay.example.test" || string(tx.Data) != testBody {
		t.Errorf("transaction tls=%v helo=%q data=%q", tx.TLS, tx.Helo, tx.Data)
	}
}

// TestClientVerifiedTLSFailure: with a TLS config that does not trust the
// server's certificate, the host fails (no plaintext fallback).
func TestClientVerifiedTLSFailure(t *testing.T) {
	rs := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = selfSignedTLS(t, "remote.test") })
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": rs.Addr}, TLS: &tls.Config{ServerName: "remote.test"}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@remote.test"), testBody))
	if !out[0].Temporary() || out[0].Status != "4.7.5" {
		t.Errorf("result %+v, want temporary 4.7.5", out[0])
	}
	if len(rs.Transactions()) != 0 {
		t.Error("the message was sent without verified TLS")
	}
}

// TestClientHonoursContext: a server that never greets does not hold Send
// past its context.
func TestClientHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := NewClient(ClientConfig{Routes: map[string]string{"remote.test": l.Addr().String()}}).
		Send(ctx, msgOf(&mail.Envelope{}, rcptsOf("a@remote.test"), testBody))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 200ms context", d)
	}
	if !out[0].Temporary() {
		t.Errorf("result %+v, want temporary", out[0])
	}
}

// TestClientRelaysThroughServer: the relay client against Homing's own
// server, over STARTTLS; the server sees ESMTPS.
func TestClientRelaysThroughServer(t *testing.T) {
	ts := startServer(t, Config{TLSConfig: selfSignedTLS(t, "mx.example.test")}, false)
	cl := NewClient(ClientConfig{Hostname: "relay.remote.example", Routes: map[string]string{"example.test": ts.addr}})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@remote.example"}, rcptsOf("alice@example.test", "nobody@example.test"), testBody))
	if !out[0].OK() || out[1].Code != 550 || out[1].Status != "5.1.1" {
		t.Fatalf("results %+v", out)
	}
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 || !strings.Contains(string(bodies[0]), "from relay.remote.example ([127.0.0.1])\r\n\tby mx.example.test with ESMTPS id") {
		t.Errorf("queued %+v %q", envs, bodies)
	}
}
