package actors

import (
	"errors"
	"fmt"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// ErrUnavailable means the actor that must answer cannot do so now: its
// partition is not open here, it timed out, or its disk failed. Callers
// treat it as temporary.
var ErrUnavailable = errors.New("temporarily unavailable")

// pbError turns an error into the wire form, keeping only its kind and a
// short text.
func pbError(err error) *pb.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mail.ErrNoSuchUser):
		return &pb.Error{Kind: pb.Error_NO_SUCH_USER, Text: err.Error()}
	case errors.Is(err, mail.ErrNotFound):
		return &pb.Error{Kind: pb.Error_NOT_FOUND, Text: err.Error()}
	case errors.Is(err, mail.ErrExists):
		return &pb.Error{Kind: pb.Error_EXISTS, Text: err.Error()}
	case errors.Is(err, errInvalid):
		return &pb.Error{Kind: pb.Error_INVALID, Text: err.Error()}
	default:
		return &pb.Error{Kind: pb.Error_UNAVAILABLE, Text: err.Error()}
	}
}

// goError turns the wire form back into an error that errors.Is can test.
func goError(e *pb.Error) error {
	if e == nil || e.Kind == pb.Error_NONE {
		return nil
	}
	switch e.Kind {
	case pb.Error_NO_SUCH_USER:
		return fmt.Errorf("%w: %s", mail.ErrNoSuchUser, e.Text)
	case pb.Error_NOT_FOUND:
		return fmt.Errorf("%w: %s", mail.ErrNotFound, e.Text)
	case pb.Error_EXISTS:
		return fmt.Errorf("%w: %s", mail.ErrExists, e.Text)
	case pb.Error_INVALID:
		return fmt.Errorf("%w: %s", errInvalid, e.Text)
	default:
		return fmt.Errorf("%w: %s", ErrUnavailable, e.Text)
	}
}

// errInvalid marks a request that can never succeed as it is.
var errInvalid = errors.New("invalid request")

// InvalidError reports whether err says the request itself was wrong.
func InvalidError(err error) bool { return errors.Is(err, errInvalid) }

func pbResult(r mail.Result) *pb.Result {
	return &pb.Result{Code: int32(r.Code), Status: r.Status, Text: r.Text, RemoteMta: r.RemoteMTA}
}

func mailResult(r *pb.Result) mail.Result {
	if r == nil {
		return mail.Temp("4.3.0", "no result")
	}
	return mail.Result{Code: int(r.Code), Status: r.Status, Text: r.Text, RemoteMTA: r.RemoteMta}
}
