package node_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// domainsOf lists the local domains node via answers.
func domainsOf(c *admin.Client) string {
	ds, err := c.Domains(context.Background())
	if err != nil {
		return "error: " + err.Error()
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Domain+"="+d.State)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// statusOf is the HTTP status of an admin error (0: none, -1: another
// error).
func statusOf(err error) int {
	var ae *admin.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ae):
		return ae.Status
	}
	return -1
}

// Provisioning for the whole cluster (issue #12 item 3), with real
// processes: a domain added on one node is local on every node at once,
// also on a node that joins later with other --domains; aliases,
// catch-alls and forwarding addresses; an account's password changed by
// the administrator and by its user with the old one; quota and usage;
// a disabled account refused at RCPT (550 5.2.1) and at login; a domain
// refused once it is removed everywhere, not while it has accounts.
func TestProvisioningForTheWholeCluster(t *testing.T) {
	mx := fakemx.Start(t)
	c := testkit.NewCluster(t, testkit.ClusterOptions{Runner: testkit.Processes, Binary: homingBin, Partitions: 8,
		Args: func(name string) []string { return []string{"--route", "remote.test=" + mx.Addr} }})
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	ctx := context.Background()
	send := func(via, rcpt string) (string, error) {
		return testkit.Send(c.SMTPAddr(via), "x@remote.test", []string{rcpt}, testkit.Message("x@remote.test", rcpt, "prov", "hello"))
	}

	// A domain added through a backend is local on the frontend too.
	if _, err := send("fe", "bob@example.org"); err == nil {
		t.Fatal("mail for a domain that is not local yet was accepted")
	}
	if _, err := c.Admin("be1").AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"fe", "be1", "be2"} {
		if got := domainsOf(c.Admin(n)); got != "example.org=active,example.test=active" {
			t.Errorf("domains through %s right after the change: %s", n, got)
		}
	}
	if _, err := c.Admin("fe").AddDomain(ctx, "example.org"); statusOf(err) != 409 {
		t.Errorf("adding it again: %v, want 409", err)
	}
	if _, err := c.Admin("fe").CreateAccount(ctx, admin.CreateAccount{Address: "bob@example.org", Password: "first-pw-123"}); err != nil {
		t.Fatal(err)
	}
	if _, err := send("fe", "bob@example.org"); err != nil {
		t.Fatalf("mail for the new domain: %v", err)
	}
	waitMessages(t, c.Admin("fe"), "bob@example.org", 1)

	// A node that joins later with other --domains takes the cluster's.
	c.Add("be3", mail.RoleBackend, "--domains", "only.test")
	wait.For(t, 10*time.Second, func() bool { return domainsOf(c.Admin("be3")) == "example.org=active,example.test=active" },
		"the new node's domains: %s", wait.Lazy(func() string { return domainsOf(c.Admin("be3")) }))

	// Aliases, the catch-all and a forwarding address.
	for _, a := range []admin.Alias{
		{Alias: "postmaster@example.org", Target: "bob@example.org"},
		{Alias: "*@example.org", Target: "bob@example.org"},
		{Alias: "away@example.org", Target: "bob@remote.test"},
	} {
		if _, err := c.Admin("be2").AddAlias(ctx, a); err != nil {
			t.Fatalf("alias %+v: %v", a, err)
		}
	}
	if _, err := c.Admin("fe").AddAlias(ctx, admin.Alias{Alias: "x@example.org", Target: "nobody@example.org"}); statusOf(err) != 400 {
		t.Errorf("an alias to a missing account: %v, want 400", err)
	}
	if _, err := c.Admin("fe").AddAlias(ctx, admin.Alias{Alias: "x@elsewhere.test", Target: "bob@example.org"}); statusOf(err) != 400 {
		t.Errorf("an alias in a domain that is not local: %v, want 400", err)
	}
	if as, err := c.Admin("fe").Aliases(ctx); err != nil || len(as) != 3 {
		t.Errorf("aliases: %+v, %v", as, err)
	}
	for _, rcpt := range []string{"postmaster@example.org", "anything@example.org"} {
		if _, err := send("fe", rcpt); err != nil {
			t.Fatalf("mail for %s: %v", rcpt, err)
		}
	}
	waitMessages(t, c.Admin("fe"), "bob@example.org", 3)
	if _, err := send("fe", "away@example.org"); err != nil {
		t.Fatalf("mail for the forwarding address: %v", err)
	}
	fwd := mx.WaitMessages(t, 1, 20*time.Second)
	if fwd[0].To[0] != "bob@remote.test" {
		t.Errorf("forwarded to %v, want bob@remote.test", fwd[0].To)
	}

	// Passwords: the policy, the administrator, the user with the old one.
	if err := c.Admin("be1").SetPassword(ctx, "bob@example.org", "short"); statusOf(err) != 400 || !strings.Contains(err.Error(), "at least 8") {
		t.Errorf("a short password: %v, want 400 naming the length", err)
	}
	if err := c.Admin("be1").SetPassword(ctx, "bob@example.org", "bob-is-me-1"); statusOf(err) != 400 || !strings.Contains(err.Error(), "name") {
		t.Errorf("a password with the name: %v, want 400", err)
	}
	if err := c.Admin("be1").SetPassword(ctx, "bob@example.org", "second-pw-456"); err != nil {
		t.Fatal(err)
	}
	msg := []byte("Subject: s\r\n\r\nhi\r\n")
	if _, err := c.Admin("fe").Submit(ctx, "bob@example.org", "first-pw-123", []string{"x@remote.test"}, msg); statusOf(err) != 401 {
		t.Errorf("the old password after the change: %v, want 401", err)
	}
	if _, err := c.Admin("fe").Submit(ctx, "bob@example.org", "second-pw-456", []string{"x@remote.test"}, msg); err != nil {
		t.Errorf("the new password: %v", err)
	}
	user := admin.NewClient(c.Process("fe").Admin, "") // no token: the account's own request
	if err := user.ChangePassword(ctx, "bob@example.org", "wrong-pw-000", "third-pw-789"); statusOf(err) != 401 {
		t.Errorf("a change with a wrong old password: %v, want 401", err)
	}
	if err := user.ChangePassword(ctx, "bob@example.org", "second-pw-456", "third-pw-789"); err != nil {
		t.Fatalf("the user's change: %v", err)
	}
	if _, err := c.Admin("be2").Submit(ctx, "bob@example.org", "third-pw-789", []string{"x@remote.test"}, msg); err != nil {
		t.Errorf("the password the user set: %v", err)
	}

	// Quota and usage.
	q := int64(10 << 20)
	a, err := c.Admin("be3").UpdateAccount(ctx, "bob@example.org", admin.AccountUpdate{QuotaBytes: &q})
	if err != nil || a.QuotaBytes != q || a.UsedBytes == 0 || a.Messages != 3 {
		t.Errorf("quota change: %+v, %v; want the quota, the space used and 3 messages", a, err)
	}

	// Disabled: RCPT refused on the frontend at once, logins refused;
	// enabled again, it takes mail.
	off, on := true, false
	if _, err := c.Admin("be1").UpdateAccount(ctx, "bob@example.org", admin.AccountUpdate{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	_, err = send("fe", "bob@example.org")
	assertSMTPCode(t, err, 550, "5.2.1")
	if _, err := c.Admin("fe").Submit(ctx, "bob@example.org", "third-pw-789", []string{"x@remote.test"}, msg); statusOf(err) != 401 {
		t.Errorf("a login of a disabled account: %v, want 401", err)
	}
	if _, err := c.Admin("be1").UpdateAccount(ctx, "bob@example.org", admin.AccountUpdate{Disabled: &on}); err != nil {
		t.Fatal(err)
	}
	if _, err := send("fe", "bob@example.org"); err != nil {
		t.Errorf("mail for the enabled account: %v", err)
	}

	// The domain is not removed while it has accounts and aliases; then
	// it is, everywhere, and refused.
	if err := c.Admin("fe").RemoveDomain(ctx, "example.org"); statusOf(err) != 409 || !strings.Contains(err.Error(), "bob@example.org") {
		t.Errorf("removing a domain with an account: %v, want 409 naming it", err)
	}
	for _, al := range []string{"postmaster@example.org", "*@example.org", "away@example.org"} {
		if err := c.Admin("fe").RemoveAlias(ctx, al); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 20*time.Second, func() bool {
		err := c.Admin("fe").DeleteAccount(ctx, "bob@example.org")
		return err == nil || statusOf(err) == 404
	}, "deleting bob@example.org")
	if err := c.Admin("be2").RemoveDomain(ctx, "example.org"); err != nil {
		t.Fatalf("removing the empty domain: %v", err)
	}
	for _, n := range []string{"fe", "be1", "be2", "be3"} {
		if got := domainsOf(c.Admin(n)); got != "example.test=active" {
			t.Errorf("domains through %s after the removal: %s", n, got)
		}
	}
	_, err = send("fe", "anything@example.org")
	assertSMTPCode(t, err, 554, "5.7.1")
	if err := c.Admin("fe").RemoveDomain(ctx, "example.test"); statusOf(err) != 409 {
		t.Errorf("removing the last domain: %v, want 409", err)
	}

	// A restart keeps the cluster's domains, whatever --domains says.
	if _, err := c.Admin("fe").AddDomain(ctx, "kept.test"); err != nil {
		t.Fatal(err)
	}
	c.Restart("be1")
	if got := domainsOf(c.Admin("be1")); got != "example.test=active,kept.test=active" {
		t.Errorf("domains after a restart: %s", got)
	}
}
