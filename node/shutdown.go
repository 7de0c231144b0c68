package node

import (
	"errors"
	"fmt"
)

// shutdown is a stack of closers: each start-up step pushes the closers of
// what it started, and closing pops them in reverse, so the node stops in
// the reverse order of its start and a start that fails half-way closes
// exactly what was started (and nothing that was not).
type shutdown struct {
	closers []closer
}

type closer struct {
	what  string
	close func() error
}

// push adds the closer of what to the top of the stack.
func (s *shutdown) push(what string, close func() error) {
	s.closers = append(s.closers, closer{what, close})
}

// run pops and calls every closer, the last pushed first, and returns
// their errors, each naming what failed to close.
func (s *shutdown) run() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		c := s.closers[i]
		if err := c.close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.what, err))
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}
