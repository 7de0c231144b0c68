package interop

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/testkit"
)

// homingBin is the homing binary TestMain builds; every test runs it as a
// real process.
var homingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "homing-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	homingBin, err = testkit.BuildHoming(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// No goroutine outlives the tests (the IMAP clients' readers).
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
