package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// setNice gives every thread of this process the CPU priority n (nice(2)
// values: -20 highest, 19 lowest; below the current one needs
// CAP_SYS_NICE). On Linux a priority belongs to a thread, not to the
// process (setpriority(2) with PRIO_PROCESS and a thread id; "the nice
// value is a per-thread attribute", sched(7)), and a new thread takes its
// creator's: so every thread the Go runtime has started so far is set, in
// passes until one finds none left at another value (a thread created
// during a pass by a thread not yet set is found by the next), and every
// later thread inherits n.
func setNice(n int) error {
	for pass := 0; pass < 10; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("listing the threads: %w", err)
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// getpriority(2)'s raw system call returns 20 - nice.
			cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
			if err == nil && 20-cur == n {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
				if err == syscall.ESRCH {
					continue // the thread has exited
				}
				return fmt.Errorf("setpriority of thread %d to %d: %w", tid, n, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("the threads kept changing; their priority may be mixed")
}
