//go:build linux

package storage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// residentUnder sums the Rss of /proc/self/smaps over the mappings of
// files under dir (bytes).
func residentUnder(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], dir+"/")
			continue
		}
		if in && fields[0] == "Rss:" && len(fields) >= 2 {
			kib, _ := strconv.ParseInt(fields[1], 10, 64)
			sum += kib << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// The pages badger read through its mappings stay resident until the
// trimmer advises them out; what was written reads back the same after.
func TestMapTrimmerPagesOutTheStoresLogs(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	const n, size = 6000, 4096
	value := func(i int) []byte {
		return []byte(fmt.Sprintf("%08d", i) + strings.Repeat("v", size-8))
	}
	for i := 0; i < n; i += 100 {
		var b Batch
		for j := i; j < i+100; j++ {
			b.Set([]byte(fmt.Sprintf("k%08d", j)), value(j))
		}
		if err := db.Commit(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
	}
	// badger writes its value logs with pwrite(2) (third_party/badger,
	// HOMING.md): written values are in the page cache, not in this
	// process's mappings, until they are read through them.
	if written := residentUnder(t, dir); written > 8<<20 {
		t.Fatalf("%d KiB of the store's files resident after writing %d MiB and reading nothing: the value log is written through its mapping again", written>>10, n*size>>20)
	}
	for i := 0; i < n; i++ {
		mustGet(t, db, fmt.Sprintf("k%08d", i))
	}
	before := residentUnder(t, dir)
	if before < 8<<20 {
		t.Fatalf("only %d KiB of the store's files resident after reading %d MiB: the test no longer sees badger's mappings", before>>10, n*size>>20)
	}

	quiet := NewMapTrimmer(MapTrimConfig{Budget: 1 << 50, Dirs: []string{dir}})
	if got, err := quiet.Trim(false); err != nil || got != 0 {
		t.Fatalf("Trim under the budget advised %d bytes (%v), want none", got, err)
	}
	other := NewMapTrimmer(MapTrimConfig{Dirs: []string{t.TempDir()}})
	if _, err := other.Trim(true); err != nil {
		t.Fatal(err)
	}
	if still := residentUnder(t, dir); still < before/2 {
		t.Fatalf("a trimmer of another directory paged out this store's files: %d -> %d KiB", before>>10, still>>10)
	}

	tr := NewMapTrimmer(MapTrimConfig{Dirs: []string{dir}})
	advised, err := tr.Trim(true)
	if err != nil {
		t.Fatal(err)
	}
	after := residentUnder(t, dir)
	t.Logf("store's mapped files resident: %d KiB before, %d KiB after advising %d MiB", before>>10, after>>10, advised>>20)
	if advised == 0 || after > before/4 {
		t.Fatalf("resident %d KiB -> %d KiB after advising %d bytes, want at most a quarter left", before>>10, after>>10, advised)
	}
	if rounds, bytes := tr.Stats(); rounds != 1 || bytes != advised {
		t.Fatalf("Stats() = %d rounds, %d bytes; want 1, %d", rounds, bytes, advised)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		if got := mustGet(t, db, fmt.Sprintf("k%08d", i)); got != string(value(i)) {
			t.Fatalf("k%08d reads back %d bytes %.12q..., want its value", i, len(got), got)
		}
	}
}
