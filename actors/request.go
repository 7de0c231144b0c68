package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// request sends msg to pid and waits for a reply of type T, at most timeout
// (or ctx's deadline, if sooner). Failing to get one is mail.ErrUnavailable.
func request[T any](ctx context.Context, root *actor.RootContext, pid *actor.PID, msg interface{}, timeout time.Duration) (T, error) {
	var zero T
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return zero, fmt.Errorf("%w: deadline passed", mail.ErrUnavailable)
	}
	res, err := root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		return zero, fmt.Errorf("%w: %v", mail.ErrUnavailable, err)
	}
	t, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("%w: unexpected reply %T", mail.ErrUnavailable, res)
	}
	return t, nil
}
