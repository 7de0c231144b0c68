package control

import (
	"sync"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// Settings are a node's settings the administrator changes at run time:
// its queue processing mode, gossiped to the cluster when it changes.
// Safe for concurrent use.
type Settings struct {
	mu      sync.Mutex
	mode    mail.QueueMode
	members *cluster.Membership
}

// NewSettings starts with queue mode m.
func NewSettings(m mail.QueueMode) *Settings { return &Settings{mode: m} }

// QueueMode is the queue processing mode now.
func (s *Settings) QueueMode() mail.QueueMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// Join makes later changes reach the cluster's gossip.
func (s *Settings) Join(ms *cluster.Membership) {
	s.mu.Lock()
	s.members = ms
	s.mu.Unlock()
}

// SetQueueMode changes the queue mode and gossips it; the error is the
// gossip's (the mode is in force here either way).
func (s *Settings) SetQueueMode(m mail.QueueMode) error {
	s.mu.Lock()
	s.mode = m
	ms := s.members
	s.mu.Unlock()
	if ms == nil {
		return nil
	}
	return ms.UpdateMeta(func(meta *cluster.Meta) { meta.QueueMode = m })
}
