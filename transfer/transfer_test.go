package transfer

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/smtp"
)

func member(name string, self bool, state cluster.State, mode mail.QueueMode, roles ...mail.Role) cluster.Member {
	return cluster.Member{Name: name, Self: self, State: state,
		Meta: cluster.Meta{Roles: roles, QueueMode: mode, SMTP: name + ":25"}}
}

var members = []cluster.Member{
	member("me", true, cluster.StateAlive, mail.ModeLocallyForOthers, mail.RoleFrontend),
	member("fe1", false, cluster.StateAlive, mail.ModeLocallyForOthers, mail.RoleFrontend),
	member("fe2", false, cluster.StateSuspect, mail.ModeLocallyForOthers, mail.RoleFrontend),
	member("fe3", false, cluster.StateAlive, mail.ModeLocally, mail.RoleFrontend),
	member("be1", false, cluster.StateAlive, mail.ModeLocallyForOthers, mail.RoleBackend),
}

// --forward-to '*' means the live frontends other than this node, in
// turn; named hosts stay as given.
func TestForwardHostsAreTheLiveFrontendsInTurn(t *testing.T) {
	hosts := ForwardHosts([]string{"*", "smart.example:587"}, func() []cluster.Member { return members })
	first, second := hosts(), hosts()
	want := []string{"fe1:25", "fe3:25", "smart.example:587"}
	for _, got := range [][]string{first, second} {
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if !slices.Equal(sorted, []string{"fe1:25", "fe3:25", "smart.example:587"}) {
			t.Fatalf("hosts %v, want %v in some order (no self, no suspect, no backend)", got, want)
		}
	}
	if first[0] == second[0] {
		t.Fatalf("two calls start at the same host %s: the load does not spread", first[0])
	}
	if got := ForwardHosts([]string{"*"}, func() []cluster.Member { return nil })(); len(got) != 0 {
		t.Fatalf("a single node forwards to %v", got)
	}
}

// Only live Locally-for-Others members other than this node take
// transfers; with none, Transfer fails at once with ErrNoTarget (the
// message is then processed where it was generated).
func TestTransferTargets(t *testing.T) {
	c := New(smtp.NewClient(smtp.ClientConfig{}), nil, func() []cluster.Member { return members })
	var names []string
	for _, m := range c.targets() {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"fe1", "be1"}) {
		t.Fatalf("targets %v, want fe1 and be1", names)
	}
	first, second := c.Targets(), c.Targets()
	if sorted := slices.Sorted(slices.Values(first)); !slices.Equal(sorted, []string{"be1", "fe1"}) || first[0] == second[0] {
		t.Fatalf("Targets %v then %v, want fe1 and be1, starting at another each time", first, second)
	}
	none := New(smtp.NewClient(smtp.ClientConfig{}), nil, func() []cluster.Member { return members[:1] })
	if got := none.Targets(); len(got) != 0 {
		t.Fatalf("Targets with none = %v", got)
	}
	if err := none.TransferTo(context.Background(), "fe1", &mail.Message{}); !errors.Is(err, ErrNoTarget) || !mail.IsTemporary(err) {
		t.Fatalf("Transfer with no target = %v, want ErrNoTarget (temporary)", err)
	}
}
