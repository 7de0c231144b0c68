package smtp

import (
	"context"
	"net"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

type discardEnqueuer struct{}

func (discardEnqueuer) Enqueue(context.Context, *mail.Message) error { return nil }

// BenchmarkSessionDelivery measures messages of 4 KiB through one
// connection: MAIL, RCPT (directory lookup), DATA, checks, Received header
// and Enqueue (which discards).
func BenchmarkSessionDelivery(b *testing.B) {
	srv := NewServer(Config{Hostname: "mx.example.test"}, newFakeDirectory(), discardEnqueuer{}, nil, nil, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() { srv.Close(); <-done }()

	c, err := gosmtp.Dial(l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 51))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Mail("s@remote.example", nil); err != nil {
			b.Fatal(err)
		}
		if err := c.Rcpt("alice@example.test", nil); err != nil {
			b.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			b.Fatal(err)
		}
		w.Write(body)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Quit()
}
