package filter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// exampleBin is cmd/homing-filter-example, built once by TestMain and only
// read by the tests.
var exampleBin string

// TestMain builds the example filter and checks that no goroutine of the
// package outlives the tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "homing-filter-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exampleBin = filepath.Join(dir, "homing-filter-example")
	build := exec.Command("go", "build", "-o", exampleBin, "github.com/homing-mail/homing/cmd/homing-filter-example")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build homing-filter-example: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { _ = os.RemoveAll(dir) }))
}
