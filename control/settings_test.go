package control

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/homing-mail/homing/mail"
)

// A queue mode set at run time is saved and wins at the next start over
// the mode given then; without a saved one the given mode is used.
func TestQueueModeSetAtRunTimeSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	s, saved, err := LoadSettings(dir, mail.ModeLocally)
	if err != nil || saved || s.QueueMode() != mail.ModeLocally {
		t.Fatalf("fresh: %v, saved %v, mode %s", err, saved, s.QueueMode())
	}
	if err := s.SetQueueMode(mail.ModeRemotely); err != nil {
		t.Fatal(err)
	}
	again, saved, err := LoadSettings(dir, mail.ModeLocally)
	if err != nil || !saved || again.QueueMode() != mail.ModeRemotely {
		t.Fatalf("after a restart: %v, saved %v, mode %s; want the saved remotely", err, saved, again.QueueMode())
	}
}

// A mode that cannot be saved is not in force, and the error says it is
// temporary (the admin API answers 503).
func TestQueueModeNotSavedIsNotInForce(t *testing.T) {
	dir := t.TempDir()
	s, _, err := LoadSettings(dir, mail.ModeLocally)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", filepath.Join(dir, "settings.json.tmp")); err != nil {
		t.Fatal(err)
	}
	err = s.SetQueueMode(mail.ModeRemotely)
	if !errors.Is(err, ErrNotSaved) || !mail.IsTemporary(err) {
		t.Fatalf("SetQueueMode onto a full device = %v, want ErrNotSaved (temporary)", err)
	}
	if s.QueueMode() != mail.ModeLocally {
		t.Fatalf("mode %s after a failed save, want locally still", s.QueueMode())
	}
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"queueMode":"sideways"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSettings(dir, mail.ModeLocally); err == nil {
		t.Fatal("a saved mode that is not one is accepted")
	}
}
