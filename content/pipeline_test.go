package content

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/homing-mail/homing/rules"
)

// TestPipelineSaveFailedWriteKeepsTheRulesFile: when the new rules cannot
// be written (here the temporary file is /dev/full, so write(2) fails with
// ENOSPC), save reports the error and rules.json keeps its last good
// content; it is never replaced by a file that is not on disk.
func TestPipelineSaveFailedWriteKeepsTheRulesFile(t *testing.T) {
	dir := t.TempDir()
	p, err := New(dir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	first := []rules.Rule{{Name: "first", Conditions: []rules.Condition{{Field: "subject", Op: "contains", Value: "x"}},
		Actions: []rules.Action{{Kind: rules.ActionDiscard}}}}
	if err := p.Set(rules.ScopeServer, first, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(); err != nil {
		t.Fatalf("first save: %v", err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink("/dev/full", filepath.Join(dir, "rules.json.tmp")); err != nil {
		t.Fatal(err)
	}
	second := append(first, rules.Rule{Name: "second", Conditions: []rules.Condition{{Field: "subject", Op: "contains", Value: "y"}},
		Actions: []rules.Action{{Kind: rules.ActionDiscard}}})
	if err := p.Set(rules.ScopeServer, second, 0); err != nil {
		t.Fatal(err)
	}
	err = p.Save()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("save onto a full device = %v, want an error wrapping ENOSPC", err)
	}
	now, err := os.ReadFile(filepath.Join(dir, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(now) != string(good) {
		t.Fatalf("rules.json changed after a failed save:\n%s\nwant:\n%s", now, good)
	}
}
