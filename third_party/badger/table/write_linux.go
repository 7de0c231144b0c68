//go:build linux

package table

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/dgraph-io/badger/v4/y"
)

// homing patch: a new table is written to its file with pwritev(2) and
// synced with fdatasync(2), instead of copied into the file's fresh shared
// mapping (a page fault for every 4 KiB) and synced with msync. The mapping
// still serves every read: it is MAP_SHARED over the same page cache.

// iovMax is the most iovecs one pwritev takes (IOV_MAX on Linux).
const iovMax = 1024

// writeTable writes bd at the start of f, which is at least bd.Size long,
// and syncs its data.
func writeTable(f *os.File, data []byte, bd *buildData) error {
	iovs := make([][]byte, 0, len(bd.blockList)+4)
	for _, bl := range bd.blockList {
		iovs = append(iovs, bl.data[:bl.end])
	}
	iovs = append(iovs, bd.index, y.U32ToBytes(uint32(len(bd.index))),
		bd.checksum, y.U32ToBytes(uint32(len(bd.checksum))))
	fd := int(f.Fd())
	var off int64
	for len(iovs) > 0 {
		batch := iovs
		if len(batch) > iovMax {
			batch = batch[:iovMax]
		}
		n, err := unix.Pwritev(fd, batch, off)
		if err != nil {
			return y.Wrapf(err, "while writing table %s", f.Name())
		}
		if n == 0 {
			return y.Wrapf(unix.EIO, "while writing table %s: no progress", f.Name())
		}
		off += int64(n)
		// Drop what was written, splitting an iovec written in part.
		for n > 0 {
			if n >= len(iovs[0]) {
				n -= len(iovs[0])
				iovs = iovs[1:]
				continue
			}
			iovs[0] = iovs[0][n:]
			n = 0
		}
	}
	y.AssertTrue(off == int64(len(data)))
	if err := unix.Fdatasync(fd); err != nil {
		return y.Wrapf(err, "while syncing table %s", f.Name())
	}
	return nil
}
