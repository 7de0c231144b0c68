package ctl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress rendering of `homing ctl`'s long operations (retrying a whole
// queue, importing accounts).
const (
	barWidth    = 30                     // characters between the brackets
	barInterval = 100 * time.Millisecond // at most 10 renders a second on a terminal
	plainSteps  = 10                     // "n/m" lines without a terminal: every 10%
)

// progress shows how far a batch of total items has got, on w.
//
// On a terminal it redraws one line in place, "\r[#####.....] 523/1000",
// at most once per interval (and always for the first and the last item),
// so a fast batch does not spend its time writing to the terminal.
// Anywhere else (a pipe, a log file) it writes a plain "n/m" line each time
// another tenth of the items is done, and never a control character.
//
// Done may be called from several goroutines; Finish once, after the last
// Done.
type progress struct {
	w        io.Writer
	tty      bool
	total    int
	width    int
	interval time.Duration
	now      func() time.Time

	mu       sync.Mutex
	done     int
	failed   int
	drawn    bool      // something was drawn on the terminal line
	lastDraw time.Time // when, for the rate limit
	lastLen  int       // length of the drawn line, to blank a shorter one
	step     int       // plain mode: tenths already reported
}

// newProgress returns a progress display for total items on w; tty
// chooses the redrawn bar over plain lines, now is the clock.
func newProgress(w io.Writer, tty bool, total int, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, total: total, width: barWidth, interval: barInterval, now: now}
}

// isTerminal reports whether w is a terminal, where the bar may redraw
// its line (isTerminalFile is per operating system).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminalFile(f)
}

// Done counts one finished item; failed counts it as a failure too (the
// bar shows how many failed so far).
func (p *progress) Done(failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total <= 0 {
		return
	}
	p.done++
	if failed {
		p.failed++
	}
	if !p.tty {
		// The tenths crossed: one line each time, with the count when it
		// crossed (a batch of 3 reports 1/3, 2/3, 3/3).
		if s := p.done * plainSteps / p.total; s > p.step {
			p.step = s
			fmt.Fprintf(p.w, "%d/%d\n", p.done, p.total)
		}
		return
	}
	now := p.now()
	if p.drawn && p.done < p.total && now.Sub(p.lastDraw) < p.interval {
		return
	}
	p.draw(now)
}

// Finish draws the final state and ends the terminal's line, so what is
// printed next starts on a line of its own.
func (p *progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total <= 0 {
		return
	}
	if !p.tty {
		if p.step < plainSteps {
			fmt.Fprintf(p.w, "%d/%d\n", p.done, p.total)
			p.step = plainSteps
		}
		return
	}
	p.draw(p.now())
	fmt.Fprint(p.w, "\n")
}

// draw redraws the terminal line; the caller holds the lock.
func (p *progress) draw(now time.Time) {
	line := p.bar()
	pad := ""
	if n := p.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.drawn, p.lastDraw, p.lastLen = true, now, len(line)
}

// bar is "[#####.....] 523/1000" and ", 2 failed" when some did.
func (p *progress) bar() string {
	fill := min(p.done, p.total) * p.width / p.total
	s := "[" + strings.Repeat("#", fill) + strings.Repeat(".", p.width-fill) + "] " + fmt.Sprintf("%d/%d", p.done, p.total)
	if p.failed > 0 {
		s += fmt.Sprintf(", %d failed", p.failed)
	}
	return s
}
