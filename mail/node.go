package mail

import (
	"fmt"
	"slices"
)

// Role is what a node does in the cluster (design.md, "Shape").
type Role string

// The roles. A single node has both.
const (
	RoleFrontend Role = "frontend" // takes mail over SMTP, keeps a queue, relays
	RoleBackend  Role = "backend"  // owns account partitions
)

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleFrontend, RoleBackend:
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (want frontend or backend)", ErrInvalid, s)
}

// HasRole reports whether roles holds r.
func HasRole(roles []Role, r Role) bool { return slices.Contains(roles, r) }

// QueueMode is a node's queue processing mode (design.md, mail flow 6):
// where mail generated on the node is queued and processed.
type QueueMode string

// The queue processing modes.
const (
	// ModeLocally: generated mail goes into this node's own queue.
	ModeLocally QueueMode = "locally"
	// ModeLocallyForOthers: as Locally, and this node also takes the mail
	// other members generate (transfers).
	ModeLocallyForOthers QueueMode = "locally-for-others"
	// ModeRemotely: generated mail is handed to a Locally-for-Others
	// member; on any failure it goes into this node's own queue.
	ModeRemotely QueueMode = "remotely"
)

// ParseQueueMode reads a queue mode's name.
func ParseQueueMode(s string) (QueueMode, error) {
	switch m := QueueMode(s); m {
	case ModeLocally, ModeLocallyForOthers, ModeRemotely:
		return m, nil
	}
	return "", fmt.Errorf("%w: queue mode %q is not one of locally, locally-for-others, remotely", ErrInvalid, s)
}
