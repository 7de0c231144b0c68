package storage

import "testing"

// BenchmarkFenceCheck is the committer's check of its epoch, twice per
// group-commit round.
func BenchmarkFenceCheck(b *testing.B) {
	dir := b.TempDir()
	f, err := takeFence(dir, Options{}.normalized())
	if err != nil {
		b.Fatal(err)
	}
	defer f.release()
	for i := 0; i < b.N; i++ {
		if err := f.check(); err != nil {
			b.Fatal(err)
		}
	}
}
