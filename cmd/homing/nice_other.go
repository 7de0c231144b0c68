//go:build !linux

package main

import "errors"

// setNice is Linux's (nice_linux.go): elsewhere a priority is the
// process's, which nice(1) sets before the start.
func setNice(n int) error {
	return errors.New("--nice is supported on Linux only; start the node with nice(1)")
}
