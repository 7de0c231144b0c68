package fakemx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/homing-mail/homing/testkit/failtb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// message is a small RFC 5322 message with CRLF line ends.
func message(subject string) []byte {
	return []byte("From: <a@origin.test>\r\nTo: <b@dest.test>\r\nSubject: " + subject + "\r\n\r\nhello\r\n")
}

// send delivers msg over one SMTP session to addr and returns the first
// error.
func send(addr, from string, to []string, msg []byte) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// smtpCode returns the reply code of an SMTP error, or fails the test.
func smtpCode(t *testing.T, err error) int {
	t.Helper()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want an SMTP reply", err, err)
	}
	return se.Code
}

var (
	errNoUser   = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	errTryLater = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
)

func TestRecordsWhatItReceives(t *testing.T) {
	mx := Start(t)
	msg := message("hello")
	if err := send(mx.Addr, "alice@origin.test", []string{"bob@dest.test", "carol@dest.test"}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := mx.WaitMessages(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("fake MX holds %d messages, want 1", len(got))
	}
	r := got[0]
	if r.From != "alice@origin.test" || r.Helo != "client.test" || r.TLS {
		t.Errorf("From %q, EHLO %q, TLS %v; want alice@origin.test, client.test, no TLS", r.From, r.Helo, r.TLS)
	}
	if strings.Join(r.To, ",") != "bob@dest.test,carol@dest.test" || len(r.RcptOptions) != 2 {
		t.Errorf("To = %q with %d RCPT options, want bob and carol in order", r.To, len(r.RcptOptions))
	}
	if !bytes.Equal(r.Data, msg) || !r.DataSeen || !r.Accepted {
		t.Errorf("Data = %q (seen %v, accepted %v), want the message as sent %q", r.Data, r.DataSeen, r.Accepted, msg)
	}
	if r.MailOptions.Size != 0 {
		t.Errorf("SIZE = %d, want none (the client sent none)", r.MailOptions.Size)
	}
	if n := mx.Connections(); n != 1 {
		t.Errorf("Connections = %d, want 1", n)
	}
}

func TestRecordsDSNParameters(t *testing.T) {
	mx := Start(t)
	c, err := gosmtp.Dial(mx.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@origin.test", &gosmtp.MailOptions{Return: gosmtp.DSNReturnHeaders, EnvelopeID: "env-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@dest.test", &gosmtp.RcptOptions{Notify: []gosmtp.DSNNotify{gosmtp.DSNNotifyFailure, gosmtp.DSNNotifyDelayed},
		OriginalRecipientType: gosmtp.DSNAddressTypeRFC822, OriginalRecipient: "list@origin.test"}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(message("dsn")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := mx.WaitMessages(t, 1, 5*time.Second)[0]
	if m.MailOptions.Return != gosmtp.DSNReturnHeaders || m.MailOptions.EnvelopeID != "env-1" {
		t.Errorf("MAIL options %+v, want RET=HDRS ENVID=env-1", m.MailOptions)
	}
	o := m.RcptOptions[0]
	if fmt.Sprint(o.Notify) != "[FAILURE DELAY]" || o.OriginalRecipient != "list@origin.test" {
		t.Errorf("RCPT options %+v, want NOTIFY=FAILURE,DELAY ORCPT=rfc822;list@origin.test", o)
	}
}

func TestFailMailRefusesTheTransactionUntilReset(t *testing.T) {
	mx := Start(t)
	mx.FailMail(errTryLater)
	if code := smtpCode(t, send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("1"))); code != 451 {
		t.Fatalf("MAIL answered %d, want 451", code)
	}
	if got := mx.Transactions(); len(got) != 0 {
		t.Fatalf("a refused MAIL began a transaction: %+v", got)
	}
	mx.FailMail(nil)
	if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("2")); err != nil {
		t.Fatalf("after FailMail(nil): %v", err)
	}
	mx.WaitMessages(t, 1, 5*time.Second)
}

func TestFailRcptRefusesMatchingRecipientsUntilReset(t *testing.T) {
	mx := Start(t)
	mx.FailRcpt(func(r string) bool { return strings.HasPrefix(r, "gone") }, errNoUser)

	if code := smtpCode(t, send(mx.Addr, "a@origin.test", []string{"gone@dest.test"}, message("1"))); code != 550 {
		t.Fatalf("RCPT gone@ answered %d, want 550", code)
	}
	if err := send(mx.Addr, "a@origin.test", []string{"here@dest.test"}, message("2")); err != nil {
		t.Fatalf("a recipient that does not match was refused: %v", err)
	}
	mx.FailRcpt(nil, nil)
	if err := send(mx.Addr, "a@origin.test", []string{"gone@dest.test"}, message("3")); err != nil {
		t.Fatalf("after FailRcpt(nil) the recipient is still refused: %v", err)
	}
	got := mx.WaitMessages(t, 2, 5*time.Second)
	if len(got) != 2 || got[0].To[0] != "here@dest.test" || got[1].To[0] != "gone@dest.test" {
		t.Fatalf("fake MX recorded %+v, want the message to here@ then the one to gone@ after the reset", got)
	}
	// The refused transaction is there, without recipients or data.
	txs := mx.Transactions()
	if len(txs) != 3 || len(txs[0].To) != 0 || txs[0].DataSeen || txs[0].Accepted {
		t.Fatalf("transactions %+v, want the refused one first, empty", txs)
	}
}

func TestFailRcptFuncAnswersEachRecipient(t *testing.T) {
	mx := Start(t)
	mx.FailRcptFunc(func(r string) *gosmtp.SMTPError {
		return map[string]*gosmtp.SMTPError{"b@dest.test": errNoUser, "c@dest.test": errTryLater}[r]
	})
	c, err := gosmtp.Dial(mx.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@origin.test", nil); err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range map[string]int{"a@dest.test": 0, "b@dest.test": 550, "c@dest.test": 451} {
		err := c.Rcpt(rcpt, nil)
		if want == 0 && err != nil {
			t.Errorf("RCPT %s: %v, want it accepted", rcpt, err)
		}
		if want != 0 && smtpCode(t, err) != want {
			t.Errorf("RCPT %s: %v, want %d", rcpt, err, want)
		}
	}
}

func TestFailDataRefusesTheMessageUntilReset(t *testing.T) {
	mx := Start(t)
	mx.FailData(errTryLater)
	if code := smtpCode(t, send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("1"))); code != 451 {
		t.Fatalf("DATA answered %d, want 451", code)
	}
	if got := mx.Messages(); len(got) != 0 {
		t.Fatalf("a refused message was recorded as accepted: %+v", got)
	}
	if txs := mx.Transactions(); len(txs) != 1 || !txs[0].DataSeen || txs[0].Accepted {
		t.Fatalf("transactions %+v, want the refused message seen, not accepted", txs)
	}
	mx.FailData(nil)
	if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("2")); err != nil {
		t.Fatalf("after FailData(nil): %v", err)
	}
	if got := mx.WaitMessages(t, 1, 5*time.Second); len(got) != 1 {
		t.Fatalf("fake MX holds %d messages, want 1", len(got))
	}
	if n := mx.Connections(); n != 2 {
		t.Errorf("Connections = %d, want 2", n)
	}
}

func TestFailDataFuncCountsTheMessages(t *testing.T) {
	mx := Start(t)
	var seen []int
	mx.FailDataFunc(func(n int) *gosmtp.SMTPError {
		seen = append(seen, n) // sessions run one at a time here
		if n%2 == 0 {
			return errTryLater
		}
		return nil
	})
	for i := range 4 {
		err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message(fmt.Sprint(i)))
		if (i%2 == 1) != (err != nil) {
			t.Errorf("message %d: %v", i+1, err)
		}
	}
	if fmt.Sprint(seen) != "[1 2 3 4]" || len(mx.Messages()) != 2 {
		t.Fatalf("FailDataFunc saw %v and %d messages were accepted, want 1 2 3 4 and 2", seen, len(mx.Messages()))
	}
}

// TestHangUpAtClosesTheConnectionInsteadOfAnswering: at each command the
// client gets no reply but a broken connection; at Data the message was
// read but is not accepted.
func TestHangUpAtClosesTheConnectionInsteadOfAnswering(t *testing.T) {
	for _, c := range []Command{Hello, Mail, Rcpt, Data} {
		t.Run(string(c), func(t *testing.T) {
			mx := Start(t)
			mx.HangUpAt(c)
			err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("x"))
			var se *gosmtp.SMTPError
			if err == nil || errors.As(err, &se) {
				t.Fatalf("send: %v, want a connection error, not a reply", err)
			}
			txs := mx.Transactions()
			if c == Data && (len(txs) != 1 || !txs[0].DataSeen || txs[0].Accepted) {
				t.Errorf("transactions %+v, want the message read, not accepted", txs)
			}
			if len(mx.Messages()) != 0 {
				t.Errorf("a message was accepted")
			}
			mx.HangUpAt(None)
			if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("y")); err != nil {
				t.Fatalf("after HangUpAt(None): %v", err)
			}
		})
	}
}

func TestDelayHoldsTheReply(t *testing.T) {
	mx := Start(t)
	mx.Delay(Rcpt, 80*time.Millisecond)
	start := time.Now()
	if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test", "c@dest.test"}, message("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 160*time.Millisecond {
		t.Errorf("two RCPTs answered after %v, want each delayed 80ms", d)
	}
	mx.Delay(Rcpt, 0)

	mx.Delay(Data, time.Hour) // Close ends it
	read := make(chan struct{})
	mx.FailDataFunc(func(int) *gosmtp.SMTPError { close(read); return nil }) // the message is read; the delay follows
	errc := make(chan error, 1)
	go func() { errc <- send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("y")) }()
	<-read
	if err := mx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("the delayed message was accepted after Close")
	}
	if len(mx.Messages()) != 1 {
		t.Errorf("%d messages accepted, want only the first", len(mx.Messages()))
	}
}

func TestRecordsTLSAndOptionsChangeTheServer(t *testing.T) {
	mx := Start(t, func(s *gosmtp.Server) {
		s.TLSConfig = selfSigned(t)
		s.MaxMessageBytes = 1000
	})
	c, err := gosmtp.Dial(mx.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("relay.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered with a TLS config")
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "1000" {
		t.Fatalf("SIZE %q offered, want 1000", size)
	}
	_ = c.Quit()

	tc, err := gosmtp.DialStartTLS(mx.Addr, &tls.Config{InsecureSkipVerify: true}) // says EHLO localhost
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.SendMail("a@origin.test", []string{"b@dest.test"}, bytes.NewReader(message("tls"))); err != nil {
		t.Fatal(err)
	}
	if m := mx.WaitMessages(t, 1, 5*time.Second)[0]; !m.TLS || m.Helo != "localhost" {
		t.Fatalf("TLS %v, EHLO %q; want TLS and the EHLO said after STARTTLS", m.TLS, m.Helo)
	}
}

// selfSigned is a server TLS config with a fresh certificate.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.fake.test"}, DNSNames: []string{"mx.fake.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestWaitMessagesFailsWithTheCountAtTheEnd(t *testing.T) {
	mx := Start(t)
	if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("1")); err != nil {
		t.Fatal(err)
	}
	f := failtb.New(t)
	msgs, returned := f.Run(func() { mx.WaitMessages(f, 2, 30*time.Millisecond) })
	if returned || len(msgs) != 1 || !strings.Contains(msgs[0], "1 messages within 30ms, want 2") {
		t.Fatalf("WaitMessages with one message of two: failures %q, returned %v; want the count at the end of the wait", msgs, returned)
	}
}

func TestWaitMessagesWakesOnAMessage(t *testing.T) {
	mx := Start(t)
	errc := make(chan error, 1)
	go func() { errc <- send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("1")) }()
	if got := mx.WaitMessages(t, 1, 10*time.Second); len(got) != 1 {
		t.Fatalf("WaitMessages returned %d messages", len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestServeRunsOnAGivenListenerUntilClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mx := Serve(l)
	if mx.Addr != l.Addr().String() {
		t.Fatalf("Addr %s, want the listener's %s", mx.Addr, l.Addr())
	}
	if err := send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, message("1")); err != nil {
		t.Fatal(err)
	}
	if err := mx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := mx.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", mx.Addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}

// TestCloseRightAfterServe: Close may come before the server's goroutine
// has started to accept, and must still stop it.
func TestCloseRightAfterServe(t *testing.T) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := Serve(l).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Close: %v", err)
		}
	}
}
