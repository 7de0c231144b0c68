package rules

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines; goleak proves the tests' own
// concurrent evaluations all finish.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
