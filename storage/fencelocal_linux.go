//go:build linux

package storage

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// The fence check's fast path on a filesystem of this host alone.
//
// check (fence.go) opens and reads the epoch file in every group-commit
// round, twice, for every DB written in it: on a network filesystem only a
// new open shows another host's rename (close-to-open consistency). That
// was 2.9% of a loaded node's CPU (three system calls a check; CPU profile
// at 2,583 msg/s, 2026-12-03). On a filesystem that no other host writes,
// stat(2) of the path is always current, and one stat says the same: the
// open keeps a descriptor of the epoch file it wrote, so that inode cannot
// be freed and its number given to another file; while the path still
// names that inode, with the size and times it had, the file is the one
// this open wrote, unchanged (writeEpoch only ever renames a new file into
// place). Anything else — another inode, another size or time, a stat that
// fails — goes to the full check, which reads the file.

// localFilesystem reports whether stat of a path on a filesystem of type
// t (statfs(2)) is trusted: disk filesystems a single host mounts, and
// tmpfs. Network, cluster (OCFS2, GFS2), FUSE and overlay filesystems are
// not, and always take the full check.
func localFilesystem(t int64) bool {
	switch t {
	case unix.EXT4_SUPER_MAGIC, // ext2, ext3, ext4
		unix.XFS_SUPER_MAGIC,
		unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC,
		unix.BCACHEFS_SUPER_MAGIC,
		unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// heldEpoch is the open epoch file of this open and what stat said of it.
type heldEpoch struct {
	fd int
	st syscall.Stat_t
}

// holdEpoch opens the epoch file at path when dir is on a local filesystem
// and the file holds exactly written (the bytes this open wrote); nil
// otherwise, and check always reads the file.
func holdEpoch(dir, path string, written []byte) *heldEpoch {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || !localFilesystem(int64(fs.Type)) {
		return nil
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	h := &heldEpoch{fd: fd}
	var buf [maxEpochFile]byte
	n, err := syscall.Pread(fd, buf[:], 0)
	if err != nil || string(buf[:max(n, 0)]) != string(written) || syscall.Fstat(fd, &h.st) != nil {
		h.close()
		return nil
	}
	return h
}

// unchanged reports whether path still names the held file with the
// size and times it had when it was opened.
func (h *heldEpoch) unchanged(path string) bool {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return false
	}
	return st.Dev == h.st.Dev && st.Ino == h.st.Ino && st.Size == h.st.Size &&
		st.Mtim == h.st.Mtim && st.Ctim == h.st.Ctim && st.Nlink == h.st.Nlink
}

func (h *heldEpoch) close() {
	if h != nil && h.fd >= 0 {
		_ = syscall.Close(h.fd)
		h.fd = -1
	}
}
