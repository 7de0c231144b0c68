package imap

import (
	"sync"
	"time"
)

// writeDeadline holds the write deadline imapserver asks for until output
// goes out. imapserver sets a deadline before every response line and
// clears it after (two runtime timer changes per message of a FETCH: 7%
// of the node's CPU in the concurrent loop of make bench-imap), while the
// filter writes to the network only when its output fills or the server
// reads again (wire.go): so the deadline is applied to the connection
// when a write goes out, and only when it differs from the one in force
// by more than deadlineSlack (or one of them is none).
type writeDeadline struct {
	mu               sync.Mutex
	wanted, inEffect time.Time
}

// outputGrace lengthens every write deadline imapserver asks for. Its
// 30 s for a response line cuts off a client that is slow, not gone: 50
// sessions each reading a 30 MB FETCH ENVELOPE answer of a 100,000-message
// mailbox on a loaded 2-core machine had single writes of 32 KiB wait
// longer than that, and their connections ended mid-answer (make
// bench-imap). Dovecot drops a client only when it "can't send anything
// to client for" 5 minutes (CLIENT_OUTPUT_TIMEOUT_MSECS, imap-common.h);
// so does this server: a write of the filter's output that makes no
// progress for 5 minutes (30 s + outputGrace) ends the session, a
// literal's gets 9.5 minutes.
const outputGrace = 5*time.Minute - 30*time.Second

// deadlineSlack: a deadline within this of the one in force is not
// applied again (imapserver's is 30 s for a line, 5 minutes for a
// literal).
const deadlineSlack = time.Second

func (d *writeDeadline) set(t time.Time) {
	if !t.IsZero() {
		t = t.Add(outputGrace)
	}
	d.mu.Lock()
	d.wanted = t
	d.mu.Unlock()
}

// apply brings the connection's deadline to the one wanted, if needed.
func (d *writeDeadline) apply(set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, e := d.wanted, d.inEffect
	if w.IsZero() == e.IsZero() && (w.IsZero() || (w.Sub(e) < deadlineSlack && e.Sub(w) < deadlineSlack)) {
		return nil
	}
	if err := set(w); err != nil {
		return err
	}
	d.inEffect = w
	return nil
}

// SetWriteDeadline takes imapserver's deadline for the next writes.
func (c *filterConn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return nil
}

// SetDeadline: the read deadline at once, the write deadline with the
// next write.
func (c *filterConn) SetDeadline(t time.Time) error {
	c.wd.set(t)
	return c.Conn.SetReadDeadline(t)
}
