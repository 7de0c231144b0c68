package cluster

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain is the package's only TestMain. When the test binary is
// re-executed as a channel child process (channelChildEnv set, see
// channel_child_test.go) it runs that node instead of the tests.
//
// Every cluster channel of the tests runs in a child process, one per
// process, and none in this one: remote.Start writes grpc's global logger
// (a data race with the gRPC goroutines of any other remote in the same
// process, which -race reports), so this process only dials channels with
// plain crypto/tls and gRPC clients, which never write it.
func TestMain(m *testing.M) {
	if os.Getenv(channelChildEnv) != "" {
		os.Exit(runChannelChild())
	}
	goleak.VerifyTestMain(m)
}
