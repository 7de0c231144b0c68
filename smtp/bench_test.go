package smtp

import (
	"bufio"
	"context"
	"net"
	"net/textproto"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

type discardEnqueuer struct{}

func (discardEnqueuer) Enqueue(context.Context, *mail.Message) error { return nil }

// benchServer serves a Server that discards what it accepts on a loopback
// port until the benchmark ends, and returns its address.
func benchServer(b *testing.B) string {
	b.Helper()
	srv := NewServer(Config{Hostname: "mx.example.test"}, newFakeDirectory(), discardEnqueuer{}, nil, nil, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	b.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// BenchmarkSessionDelivery measures messages of 4 KiB through one
// connection: MAIL, RCPT (directory lookup), DATA, checks, Received header
// and Enqueue (which discards).
func BenchmarkSessionDelivery(b *testing.B) {
	addr := benchServer(b)

	c, err := gosmtp.Dial(addr)
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

// BenchmarkSessionPipelined measures one session receiving b.N messages of
// 4 KiB over loopback the way a pipelining client sends them (RFC 2920):
// the end of each message's data, MAIL, RCPT and DATA of the next go out
// in one write, and the client then reads the four replies. ns/op is per
// message; the client's own work is included.
func BenchmarkSessionPipelined(b *testing.B) {
	addr := benchServer(b)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := textproto.NewReader(bufio.NewReader(conn))
	expect := func(want int) {
		b.Helper()
		code, msg, err := r.ReadResponse(want)
		if err != nil {
			b.Fatalf("reply %d %q: %v, want %d", code, msg, err, want)
		}
	}
	send := func(p []byte) {
		b.Helper()
		if _, err := conn.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	expect(220)
	send([]byte("EHLO client.example\r\n"))
	expect(250)
	const envelope = "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
	// 4 KiB with a dot-stuffed line, as a client sends it.
	body := "Subject: bench\r\n\r\n..stuffed\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 51)
	next := []byte(body + ".\r\n" + envelope)
	send([]byte(envelope))
	expect(250)
	expect(250)
	expect(354)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		send(next)
		expect(250) // the message
		expect(250) // MAIL
		expect(250) // RCPT
		expect(354) // DATA
	}
	b.StopTimer()
	send([]byte(".\r\nQUIT\r\n"))
	expect(250)
	expect(221)
}
