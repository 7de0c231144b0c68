package smtp

import (
	"net"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// Refused connections are logged a line a second with the count dropped,
// not a line each (issue #9 item 7): a client that opens connections in a
// loop against a full server cannot grow the log.
func TestRefusedConnectionsDoNotFloodTheLog(t *testing.T) {
	lines := new(tlog.Lines)
	cfg := Config{Hostname: "mx.example.test", MaxConnections: 1}
	testLimits(&cfg)
	srv := NewServer(cfg, newFakeDirectory(), &fakeEnqueuer{}, nil, tlog.New(t, "smtp", tlog.KeepIn(lines)), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	held, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	buf := make([]byte, 512)
	if _, err := held.Read(buf); err != nil { // its greeting: it holds the one slot
		t.Fatal(err)
	}
	const refused = 300
	start := time.Now()
	for i := 0; i < refused; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Read(buf) // the 421, then the server closes it
		c.Close()
	}
	wait.For(t, 5*time.Second, func() bool { return lines.Count("connection refused") > 0 }, "no refused connection logged")
	if n, max := lines.Count("connection refused"), int(time.Since(start)/time.Second)+2; n > max {
		t.Fatalf("%d lines for %d refused connections in %v, want at most %d", n, refused, time.Since(start).Round(time.Millisecond), max)
	}
}
