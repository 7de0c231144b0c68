package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// Settings are a node's settings the administrator changes at run time:
// its queue processing mode, gossiped to the cluster when it changes and
// saved in the data directory (settings.json), so that a restart keeps it.
// Safe for concurrent use.
type Settings struct {
	file string // "" = not saved

	mu      sync.Mutex
	mode    mail.QueueMode
	members *cluster.Membership
}

// ErrNotSaved: a setting could not be saved (the disk); it is not in force.
var ErrNotSaved = mail.TemporaryError("the setting could not be saved")

// savedSettings is settings.json.
type savedSettings struct {
	QueueMode mail.QueueMode `json:"queueMode"`
}

// NewSettings starts with queue mode m, unsaved (tests, tools).
func NewSettings(m mail.QueueMode) *Settings { return &Settings{mode: m} }

// LoadSettings returns the settings saved in dataDir/settings.json, or, when
// none were saved, the queue mode m given at start (--queue-mode).
// saved reports whether the file held a mode (which then wins over m: it
// was set at run time, after a start with m or another).
func LoadSettings(dataDir string, m mail.QueueMode) (s *Settings, saved bool, err error) {
	s = &Settings{file: filepath.Join(dataDir, "settings.json"), mode: m}
	b, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var st savedSettings
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.file, err)
	}
	mode, err := mail.ParseQueueMode(string(st.QueueMode))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.file, err)
	}
	s.mode = mode
	return s, true, nil
}

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

// SetQueueMode changes the queue mode, saves it (durably: temporary file,
// fsync, rename) and gossips it. A failed save leaves the mode in force
// as it was and returns the error; a failed gossip returns its error with
// the new mode in force here.
func (s *Settings) SetQueueMode(m mail.QueueMode) error {
	s.mu.Lock()
	if err := s.save(savedSettings{QueueMode: m}); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrNotSaved, err)
	}
	s.mode = m
	ms := s.members
	s.mu.Unlock()
	if ms == nil {
		return nil
	}
	return ms.UpdateMeta(func(meta *cluster.Meta) { meta.QueueMode = m })
}

// save writes st to the settings file; the caller holds mu.
func (s *Settings) save(st savedSettings) error {
	if s.file == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, s.file)
}
