package ctl

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock           { return &fakeClock{t: t0} }
func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

// splitFrames splits a terminal's output into the frames drawn.
func splitFrames(out string) []string { return strings.Split(strings.TrimPrefix(out, "\r"), "\r") }

func lastFrame(out string) string {
	f := splitFrames(out)
	return f[len(f)-1]
}

// testBar is a progress display 10 characters wide, as in the example
// "[#####.....] 523/1000".
func testBar(w *bytes.Buffer, tty bool, total int, clk *fakeClock) *progress {
	p := newProgress(w, tty, total, clk.now)
	p.width = 10
	return p
}

// On a terminal the bar is redrawn in place: the first item draws it, and
// then at most one frame per interval however fast items finish.
func TestProgressTerminalRateLimited(t *testing.T) {
	var buf bytes.Buffer
	clk := newFakeClock()
	p := testBar(&buf, true, 1000, clk)

	p.Done(false)
	if got := buf.String(); got != "\r[..........] 1/1000" {
		t.Fatalf("first frame %q", got)
	}
	for range 522 {
		p.Done(false) // no time passes: nothing is drawn
	}
	if n := strings.Count(buf.String(), "\r"); n != 1 {
		t.Fatalf("%d frames drawn within one interval, want 1: %q", n, buf.String())
	}
	clk.add(barInterval)
	p.Done(false)
	if got := lastFrame(buf.String()); got != "[#####.....] 524/1000" {
		t.Fatalf("frame after an interval %q", got)
	}
	clk.add(barInterval - time.Millisecond)
	p.Done(true)
	if n := strings.Count(buf.String(), "\r"); n != 2 {
		t.Fatalf("a frame was drawn before the interval passed: %q", buf.String())
	}
	clk.add(time.Millisecond)
	p.Done(false)
	if got := lastFrame(buf.String()); got != "[#####.....] 526/1000, 1 failed" {
		t.Fatalf("frame with a failure %q", got)
	}
	// The last item is always drawn, even within the interval.
	for range 1000 - 526 {
		p.Done(false)
	}
	if got := lastFrame(buf.String()); got != "[##########] 1000/1000, 1 failed" {
		t.Fatalf("last frame %q", got)
	}
	p.Finish()
	if !strings.HasSuffix(buf.String(), "\r[##########] 1000/1000, 1 failed\n") {
		t.Fatalf("Finish did not end with the final frame and a newline: %q", buf.String())
	}
}

// A steady stream of items over one second draws about ten frames, not a
// thousand.
func TestProgressFrameCount(t *testing.T) {
	var buf bytes.Buffer
	clk := newFakeClock()
	p := testBar(&buf, true, 1000, clk)
	for range 1000 {
		clk.add(time.Millisecond)
		p.Done(false)
	}
	p.Finish()
	// Items 1, 101, 201, ..., 901, the last one, and Finish.
	if n := strings.Count(buf.String(), "\r"); n != 12 {
		t.Errorf("%d frames for 1000 items over 1s, want 12", n)
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("want exactly one newline (from Finish): %q", buf.String())
	}
}

// A shorter frame after a longer one is padded so no old characters stay
// on the line.
func TestProgressPadsShorterFrame(t *testing.T) {
	var buf bytes.Buffer
	clk := newFakeClock()
	p := testBar(&buf, true, 20, clk)
	p.Done(true)
	p.mu.Lock()
	p.failed = 0 // a frame shorter than the one before
	p.mu.Unlock()
	clk.add(barInterval)
	p.Done(false)
	frames := splitFrames(buf.String())
	if len(frames) != 2 || len(frames[1]) != len(frames[0]) || !strings.HasPrefix(frames[1], "[#.........] 2/20 ") {
		t.Errorf("frames %q", frames)
	}
}

// Without a terminal the progress is a plain "n/m" line at each tenth,
// with no control characters and nothing rate-limited away.
func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	clk := newFakeClock()
	p := testBar(&buf, false, 1000, clk)
	for range 1000 {
		p.Done(false)
	}
	p.Finish()
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, strconv.Itoa(i*100)+"/1000")
	}
	if got := buf.String(); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("plain progress:\n%s", got)
	}
	if strings.ContainsAny(buf.String(), "\r\x1b[#") {
		t.Errorf("control characters or a bar in plain mode: %q", buf.String())
	}

	// A batch smaller than ten reports every item.
	buf.Reset()
	p = testBar(&buf, false, 3, clk)
	for range 3 {
		p.Done(false)
	}
	p.Finish()
	if got := buf.String(); got != "1/3\n2/3\n3/3\n" {
		t.Errorf("3 items: %q", got)
	}

	// Finish before the end reports where it stopped.
	buf.Reset()
	p = testBar(&buf, false, 1000, clk)
	for range 150 {
		p.Done(false)
	}
	p.Finish()
	if got := buf.String(); got != "100/1000\n150/1000\n" {
		t.Errorf("stopped at 150: %q", got)
	}
}

// An empty batch shows nothing at all.
func TestProgressEmpty(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		p := testBar(&buf, tty, 0, newFakeClock())
		p.Done(false)
		p.Finish()
		if buf.Len() != 0 {
			t.Errorf("tty=%v: %q for an empty batch", tty, buf.String())
		}
	}
}

// Buffers, files and /dev/null are not terminals: the bar is not drawn
// into a log or a pipe.
func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Errorf("a buffer is a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("a regular file is a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Errorf("%s is a terminal", os.DevNull)
	}
}
