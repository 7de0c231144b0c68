package filter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCheck measures round trips through the example filter (no
// artificial delay), with b.RunParallel's concurrent callers.
func BenchmarkCheck(b *testing.B) {
	f, err := Start(Config{Name: "bench", Command: []string{exampleBin, "-max-delay", "0"}}, NewMetrics(nil))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	dir := b.TempDir()
	path, err := WriteMessageFile(dir, "a@example.net", []string{"b@example.test"}, []byte("Subject: hi\r\n\r\nbody\r\n"))
	if err != nil {
		b.Fatal(err)
	}
	path, _ = filepath.Abs(path)
	defer os.Remove(path)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := f.Check(context.Background(), path); err != nil || v.Kind != KindOK {
				b.Errorf("Check: %+v, %v", v, err)
				return
			}
		}
	})
}
