//go:build !linux

package table

import (
	"os"

	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/dgraph-io/badger/v4/y"
)

// writeTable copies bd into the file's mapping and syncs it (upstream's
// way; write_linux.go writes with pwritev).
func writeTable(f *os.File, data []byte, bd *buildData) error {
	written := bd.Copy(data)
	y.AssertTrue(written == len(data))
	if err := z.Msync(data); err != nil {
		return y.Wrapf(err, "while calling msync on %s", f.Name())
	}
	return nil
}
