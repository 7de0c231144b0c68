package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// rssFile is the RssFile of /proc/self/status in bytes: the resident
// pages of the process's file mappings.
func rssFile() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("storage: mapped-file trimming: %w", err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("RssFile:")); ok {
			f := bytes.Fields(v)
			if len(f) < 1 {
				break
			}
			kib, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				break
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("storage: mapped-file trimming: no RssFile in /proc/self/status")
}

// pageOutMappings advises MADV_PAGEOUT on every mapping of
// /proc/self/maps whose file want accepts, and returns the bytes advised.
// A mapping gone since the list was read is skipped (ENOMEM); a kernel
// without MADV_PAGEOUT is an error (EINVAL).
func pageOutMappings(want func(path string) bool) (int64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("storage: mapped-file trimming: %w", err)
	}
	type span struct{ start, end uintptr }
	var spans []span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// start-end perms offset dev inode path
		line := sc.Bytes()
		fields := bytes.Fields(line)
		if len(fields) < 6 || !want(string(fields[5])) {
			continue
		}
		lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(string(lo), 16, 64)
		e, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			continue
		}
		spans = append(spans, span{uintptr(s), uintptr(e)})
	}
	err = sc.Err()
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("storage: mapped-file trimming: reading /proc/self/maps: %w", err)
	}
	var n int64
	for _, s := range spans {
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_PAGEOUT)
		switch errno {
		case 0:
			n += int64(s.end - s.start)
		case unix.ENOMEM, unix.EAGAIN:
			// Unmapped meanwhile, or the kernel was busy: the next round.
		case unix.EINVAL:
			return n, fmt.Errorf("storage: mapped-file trimming: madvise(MADV_PAGEOUT) not supported by this kernel (Linux 5.4 or later): %w", errno)
		default:
			return n, fmt.Errorf("storage: mapped-file trimming: madvise: %w", errno)
		}
	}
	return n, nil
}
