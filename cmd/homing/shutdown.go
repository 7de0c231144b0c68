package main

import (
	"fmt"
	"io"
	"time"
)

// defaultShutdownTimeout bounds a graceful shutdown: below the example
// systemd unit's TimeoutStopSec (60 s), so that the reason reaches the
// journal before systemd's SIGKILL does.
const defaultShutdownTimeout = 45 * time.Second

// closer is what shutdown closes (*node.Node).
type closer interface{ Close() error }

// shutdown closes n gracefully, waiting at most timeout (<= 0: no bound),
// and returns the exit status: 0 when the close finished cleanly, 1 when
// it failed or did not finish in time.
//
// A close can take forever when a store cannot write: badger retries a
// memtable flush that fails (the data directory removed or unmounted, a
// filesystem gone read-only) every second, and its Close waits for the
// flush. Nothing acknowledged depends on the close (every 250 and every
// IMAP OK was synced before it was sent; badger replays its logs at the
// next start), so the process leaves rather than hang until an operator
// or systemd kills it.
func shutdown(n closer, timeout time.Duration, stderr io.Writer) int {
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(stderr, "homing serve: shutdown: %v\n", err)
			return 1
		}
		return 0
	case <-expired:
		fmt.Fprintf(stderr, "homing serve: shutdown did not finish within %v (a store that cannot write? see the log above); exiting anyway: everything acknowledged is already on disk\n", timeout)
		return 1
	}
}
