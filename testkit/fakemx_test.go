package testkit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// smtpCode returns the reply code of an SMTP error, or fails the test.
func smtpCode(t *testing.T, err error) int {
	t.Helper()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want an SMTP reply", err, err)
	}
	return se.Code
}

func TestFakeMXRecordsWhatItReceives(t *testing.T) {
	mx := StartFakeMX(t)
	msg := Message("alice@origin.test", "bob@dest.test", "hello", "one\ntwo")
	if _, err := Send(mx.Addr, "alice@origin.test", []string{"bob@dest.test", "carol@dest.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := mx.WaitMessages(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("fake MX holds %d messages, want 1", len(got))
	}
	r := got[0]
	if r.From != "alice@origin.test" {
		t.Errorf("From = %q, want alice@origin.test", r.From)
	}
	if strings.Join(r.To, ",") != "bob@dest.test,carol@dest.test" {
		t.Errorf("To = %q, want bob and carol in order", r.To)
	}
	if !bytes.Equal(r.Data, msg) {
		t.Errorf("Data = %q, want the message as sent %q", r.Data, msg)
	}
	if n := mx.Sessions(); n != 1 {
		t.Errorf("Sessions = %d, want 1", n)
	}
}

func TestFakeMXRecordsDSNParameters(t *testing.T) {
	mx := StartFakeMX(t)
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
	if err := c.Rcpt("b@dest.test", &gosmtp.RcptOptions{Notify: []gosmtp.DSNNotify{gosmtp.DSNNotifyFailure, gosmtp.DSNNotifyDelayed}}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(Message("a@origin.test", "b@dest.test", "dsn", "x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := mx.WaitMessages(t, 1, 5*time.Second)[0].Notes
	if n["RET"] != "HDRS" || n["ENVID"] != "env-1" || n["NOTIFY:b@dest.test"] != "FAILURE,DELAY" {
		t.Fatalf("Notes = %v, want RET=HDRS ENVID=env-1 NOTIFY:b@dest.test=FAILURE,DELAY", n)
	}
}

func TestFakeMXFailRcptRefusesMatchingRecipientsUntilReset(t *testing.T) {
	mx := StartFakeMX(t)
	mx.FailRcpt(func(r string) bool { return strings.HasPrefix(r, "gone") },
		&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"})

	_, err := Send(mx.Addr, "a@origin.test", []string{"gone@dest.test"}, Message("a@origin.test", "gone@dest.test", "1", "x"))
	if code := smtpCode(t, err); code != 550 {
		t.Fatalf("RCPT gone@ answered %d, want 550", code)
	}
	if _, err := Send(mx.Addr, "a@origin.test", []string{"here@dest.test"}, Message("a@origin.test", "here@dest.test", "2", "x")); err != nil {
		t.Fatalf("a recipient that does not match was refused: %v", err)
	}
	mx.FailRcpt(nil, nil)
	if _, err := Send(mx.Addr, "a@origin.test", []string{"gone@dest.test"}, Message("a@origin.test", "gone@dest.test", "3", "x")); err != nil {
		t.Fatalf("after FailRcpt(nil) the recipient is still refused: %v", err)
	}
	got := mx.WaitMessages(t, 2, 5*time.Second)
	if len(got) != 2 || got[0].To[0] != "here@dest.test" || got[1].To[0] != "gone@dest.test" {
		t.Fatalf("fake MX recorded %+v, want the message to here@ then the one to gone@ after the reset", got)
	}
}

func TestFakeMXFailDataRefusesTheMessageUntilReset(t *testing.T) {
	mx := StartFakeMX(t)
	mx.FailData(&gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	_, err := Send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, Message("a@origin.test", "b@dest.test", "1", "x"))
	if code := smtpCode(t, err); code != 451 {
		t.Fatalf("DATA answered %d, want 451", code)
	}
	if got := mx.Messages(); len(got) != 0 {
		t.Fatalf("a refused message was recorded: %+v", got)
	}
	mx.FailData(nil)
	if _, err := Send(mx.Addr, "a@origin.test", []string{"b@dest.test"}, Message("a@origin.test", "b@dest.test", "2", "x")); err != nil {
		t.Fatalf("after FailData(nil): %v", err)
	}
	if got := mx.WaitMessages(t, 1, 5*time.Second); len(got) != 1 {
		t.Fatalf("fake MX holds %d messages, want 1", len(got))
	}
	if n := mx.Sessions(); n != 2 {
		t.Errorf("Sessions = %d, want 2", n)
	}
}
