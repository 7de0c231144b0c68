package actors

import (
	"errors"
	"fmt"
	"testing"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// An error crosses the cluster channel as its kind: on the other side it
// is still what errors.Is tests, and temporary stays temporary (a store
// short of space is a temporary refusal on every node, not "unavailable").
func TestErrorKindsCrossTheWire(t *testing.T) {
	for _, tc := range []struct {
		err       error
		want      error
		temporary bool
	}{
		{fmt.Errorf("append: %w", storage.ErrNoSpace), mail.ErrNoSpace, true},
		{fmt.Errorf("append: %w", storage.ErrOverQuota), storage.ErrOverQuota, true},
		{fmt.Errorf("x: %w", storage.ErrNoFolder), storage.ErrNoFolder, false},
		{fmt.Errorf("x: %w", storage.ErrCannot), storage.ErrCannot, false},
		{fmt.Errorf("x: %w", storage.ErrDamaged), storage.ErrDamaged, false},
		{fmt.Errorf("x: %w", mail.ErrNoSuchUser), mail.ErrNoSuchUser, false},
		{fmt.Errorf("x: %w", mail.ErrExists), mail.ErrExists, false},
		{fmt.Errorf("x: %w", mail.ErrUnavailable), mail.ErrUnavailable, true},
	} {
		got := ErrorFromWire(WireError(tc.err))
		if !errors.Is(got, tc.want) || mail.IsTemporary(got) != tc.temporary {
			t.Errorf("%v crossed the wire as %v (temporary %v), want %v (temporary %v)",
				tc.err, got, mail.IsTemporary(got), tc.want, tc.temporary)
		}
	}
}
