package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileReplacesAndLeavesNoTemporary: the new content replaces the
// old, with the mode asked for a new file, and no .tmp stays behind.
func TestWriteFileReplacesAndLeavesNoTemporary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	for _, want := range []string{"one", "two, longer"} {
		if err := WriteFile(p, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file stayed: %v", err)
	}
}

// TestWriteFileFailureKeepsTheOldFile: when the new file cannot be
// placed (its path is a directory), the error is returned and the
// temporary file removed.
func TestWriteFileFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "taken")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o600); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file stayed: %v", err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("the old path changed: %v, %v", fi, err)
	}
}
