//go:build !race

package testkit_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// A test of a cluster, in the shape a user writes one: one frontend and two
// backends in process; an account created through the frontend lives on a
// backend; mail sent to the frontend over SMTP is stored there; when that
// backend dies its partitions move and the mailbox is still there. In a
// test, t is the test's *testing.T; here testkit.Standalone stands in for
// it so that the example runs. (In-process clusters are not for -race:
// see Cluster.)
func Example() {
	t, done := testkit.Standalone("example", io.Discard)
	defer done()
	ctx := context.Background()

	c := testkit.StartCluster(t, testkit.ClusterOptions{Frontends: 1, Backends: 2})
	fe := c.Admin("fe1")
	if _, err := fe.CreateAccount(ctx, admin.CreateAccount{Address: "alice@example.test", Password: "secret-words-1"}); err != nil {
		t.Fatal(err)
	}
	acct, _ := fe.Account(ctx, "alice@example.test")
	fmt.Println("alice lives on a backend:", acct.Owner == "be1" || acct.Owner == "be2")

	msg := testkit.Message("bob@remote.test", "alice@example.test", "hello", "Hello, Alice.")
	if _, err := testkit.Send(c.SMTPAddr("fe1"), "bob@remote.test", []string{"alice@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	stored := func() int {
		ms, err := fe.Messages(ctx, "alice@example.test")
		if err != nil {
			return -1
		}
		return len(ms)
	}
	wait.For(t, 10*time.Second, func() bool { return stored() == 1 }, "the message is not stored")
	fmt.Println("stored:", stored())

	c.Kill(acct.Owner) // as a crash: the others declare it dead
	c.WaitSettled(t)
	acct, _ = fe.Account(ctx, "alice@example.test")
	fmt.Println("moved to the other backend, mailbox kept:", acct.Owner != "" && stored() == 1)
	// Output:
	// alice lives on a backend: true
	// stored: 1
	// moved to the other backend, mailbox kept: true
}
