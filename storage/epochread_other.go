//go:build !unix

package storage

import "os"

// readSmallFile reads the start of the file at path into buf, reporting
// the bytes read and whether all went well.
func readSmallFile(path string, buf []byte) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	return n, true
}
