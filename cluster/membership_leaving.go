package cluster

import (
	"encoding/json"
	"sync"
	"time"
)

// The leaving notice: a node that leaves tells every live member so over
// TCP (memberlist's reliable user message) before it gossips its leave.
//
// memberlist's own leave travels only by gossip: a dead message about
// itself, sent over UDP to a few random members (RetransmitMult x
// log10(N) sends, three with the fast profile, all in one gossip round),
// which relay it. A member that none of those sends reached, and that
// probes the leaver before a relay does, declares it dead, and a dead
// verdict hides the leave message that comes later (memberlist ignores
// news of a member it holds dead). Seen on two loaded cores under -race:
// the frontend held a backend that had left gracefully as "dead"
// (TestClusterMailFlowsThroughFrontendToBackends). Ownership treats the
// two differently (ownership.go: a member dead for less than
// minorityMemory may be on the other side of a partition; one that left
// is gone), so the verdict has to be right. The notice makes it right
// whichever way the death is learnt: a member that got it records the
// leaver as leaving, and setGone then records "left".

// leavingNotice is the user message a leaving node sends: its name and
// start time, so that a later process of the same name is not taken for
// the leaver.
type leavingNotice struct {
	Leaving deadProcess `json:"leaving"`
}

// sendLeavingNotices sends the leaving notice to every live member but
// this node, all at once, and waits for the sends (each bounded by
// memberlist's TCPTimeout) or until the deadline. It returns how many
// members were told. Called by Leave before memberlist's leave.
func (m *Membership) sendLeavingNotices(started int64, deadline time.Time) (told, members int) {
	msg, err := json.Marshal(leavingNotice{Leaving: deadProcess{Name: m.name, Started: started}})
	if err != nil {
		return 0, 0
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	for _, n := range m.ml.Members() {
		if n.Name == m.name {
			continue
		}
		members++
		wg.Go(func() {
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("leaving notice not sent", "member", n.Name, "err", err)
				return
			}
			mu.Lock()
			told++
			mu.Unlock()
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
	mu.Lock()
	defer mu.Unlock()
	return told, members
}

// receiveLeavingNotice handles a user message: a leaving notice marks its
// sender, if this node knows it alive as that very process, as leaving;
// anything else is ignored.
func (m *Membership) receiveLeavingNotice(msg []byte) {
	var n leavingNotice
	if err := json.Unmarshal(msg, &n); err != nil || n.Leaving.Name == "" {
		return
	}
	if m.markLeaving(n.Leaving.Name, n.Leaving.Started) {
		m.log.Debug("member is leaving", "member", n.Leaving.Name)
	}
}
