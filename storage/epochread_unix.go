//go:build unix

package storage

import "syscall"

// readSmallFile reads the start of the file at path into buf with three
// system calls (open, read, close: os.Open adds an fstat and a poller
// registration), reporting the bytes read and whether all went well.
func readSmallFile(path string, buf []byte) (int, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, false
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, true
}
