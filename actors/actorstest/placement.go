package actorstest

import (
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// Placement is an actors.Placement a test switches: every partition is at
// the PID last Set, and has no owner (an error wrapping
// mail.ErrUnavailable) while that is nil. The zero value has no owner.
type Placement struct {
	mu  sync.Mutex
	pid *actor.PID
}

// Set places every partition at pid (nil: no owner).
func (p *Placement) Set(pid *actor.PID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid = pid
}

// PartitionPID implements actors.Placement.
func (p *Placement) PartitionPID(partition int) (*actor.PID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == nil {
		return nil, fmt.Errorf("%w: partition %d has no owner", mail.ErrUnavailable, partition)
	}
	return p.pid, nil
}
