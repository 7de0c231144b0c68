package damage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homing-mail/homing/testkit/failtb"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDamage(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"000001.vlog": "aaaa-marker-bbbb", "000002.vlog": "other",
		"000001.sst": "0123456789", "000002.sst": "01234567890123456789",
		"KEYREGISTRY": "registry",
	})
	if p, off := Find(t, dir, ".vlog", []byte("marker")); filepath.Base(p) != "000001.vlog" || off != 5 {
		t.Fatalf("Find = %s, %d", p, off)
	}
	TruncateValueLog(t, dir, []byte("marker"))
	if got := read(t, filepath.Join(dir, "000001.vlog")); got != "aaaa-mar" {
		t.Fatalf("truncated value log = %q", got)
	}
	Overwrite(t, dir, ".sst", []byte("345"))
	if got := read(t, filepath.Join(dir, "000002.sst")); got != "012XXX6789012XXX6789" {
		t.Fatalf("overwritten table = %q", got)
	}
	if p := TruncateTable(t, dir); filepath.Base(p) != "000002.sst" || len(read(t, p)) != 10 {
		t.Fatalf("TruncateTable cut %s to %d bytes", p, len(read(t, p)))
	}
	EmptyKeyRegistry(t, dir)
	if got := read(t, filepath.Join(dir, "KEYREGISTRY")); got != "" {
		t.Fatalf("KEYREGISTRY = %q", got)
	}
}

// Damage that cannot be made fails the test: a test that damaged nothing
// would pass for the wrong reason.
func TestDamageThatCannotBeMadeFails(t *testing.T) {
	dir := writeFiles(t, map[string]string{"000001.vlog": "nothing here"})
	for name, fn := range map[string]func(tb testing.TB){
		"Find":             func(tb testing.TB) { Find(tb, dir, ".vlog", []byte("marker")) },
		"TruncateValueLog": func(tb testing.TB) { TruncateValueLog(tb, dir, []byte("marker")) },
		"Overwrite":        func(tb testing.TB) { Overwrite(tb, dir, ".vlog", []byte("marker")) },
		"TruncateTable":    func(tb testing.TB) { TruncateTable(tb, dir) },
		"EmptyKeyRegistry": func(tb testing.TB) { EmptyKeyRegistry(tb, dir) },
	} {
		r := failtb.New(t)
		msgs, returned := r.Run(func() { fn(r) })
		if returned || len(msgs) != 1 || !strings.HasPrefix(msgs[0], "damage: ") {
			t.Errorf("%s: failures %q, returned %v; want one 'damage: ...' failure", name, msgs, returned)
		}
	}
	if got := read(t, filepath.Join(dir, "000001.vlog")); !bytes.Equal([]byte(got), []byte("nothing here")) {
		t.Fatalf("the file changed: %q", got)
	}
}
