package storage

import (
	"errors"
	"fmt"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// The origin's side of a cluster transfer (queue mode Remotely,
// actors/transfer.go): the one durable record that says which copy of a
// message handed to another member goes on. It is written once per
// message, by the queue actor of the node that generated the message, and
// read when a member asks whether a copy it holds is its to process.
//
//	o/<id>   "kept" (processed here) or "given\x00<member>"; expires after TransferRetention

var prefixOutcome = []byte("o/")

// TransferOutcome is what the origin decided about a message it handed to
// a member: GivenTo that member (its copy goes on, the origin's is gone),
// or Kept (the origin processes it; any member's copy is dropped). The
// zero value means no decision is recorded.
type TransferOutcome struct {
	GivenTo string
	Kept    bool
}

// Decided reports whether o records a decision.
func (o TransferOutcome) Decided() bool { return o.Kept || o.GivenTo != "" }

func (o TransferOutcome) encode() []byte {
	if o.Kept {
		return []byte("kept")
	}
	return []byte("given\x00" + o.GivenTo)
}

func decodeOutcome(v []byte) (TransferOutcome, error) {
	s := string(v)
	switch {
	case s == "kept":
		return TransferOutcome{Kept: true}, nil
	case strings.HasPrefix(s, "given\x00") && len(s) > len("given\x00"):
		return TransferOutcome{GivenTo: s[len("given\x00"):]}, nil
	}
	return TransferOutcome{}, damaged("transfer outcome %q", s)
}

// GiveTransfer records that the message id goes on at member and removes
// this node's copy (envelope and body), in one batch: no crash leaves the
// copy without the record. The channel (buffer 1) receives nil once it is
// durable.
func (q *QueueStore) GiveTransfer(id, member string) <-chan error {
	if err := checkID(id); err != nil {
		return failed(err)
	}
	if member == "" {
		return failed(fmt.Errorf("%w: a transfer given to nobody", mail.ErrInvalid))
	}
	var b Batch
	b.maintenance = true
	b.Delete(key(prefixEnvelope, id))
	b.Delete(key(prefixBody, id))
	b.setTTL(key(prefixOutcome, id), TransferOutcome{GivenTo: member}.encode(), TransferRetention)
	return q.db.Submit(&b)
}

// KeepTransfer records that the message id is processed here and no
// member's copy goes on. The copy itself is left as it is. The channel
// (buffer 1) receives nil once it is durable.
func (q *QueueStore) KeepTransfer(id string) <-chan error {
	if err := checkID(id); err != nil {
		return failed(err)
	}
	var b Batch
	b.maintenance = true
	b.setTTL(key(prefixOutcome, id), TransferOutcome{Kept: true}.encode(), TransferRetention)
	return q.db.Submit(&b)
}

// TransferOutcome returns the decision recorded for id within
// TransferRetention; the zero TransferOutcome when there is none.
func (q *QueueStore) TransferOutcome(id string) (TransferOutcome, error) {
	if err := checkID(id); err != nil {
		return TransferOutcome{}, err
	}
	v, err := q.db.Get(key(prefixOutcome, id))
	if errors.Is(err, mail.ErrNotFound) {
		return TransferOutcome{}, nil
	}
	if err != nil {
		return TransferOutcome{}, err
	}
	return decodeOutcome(v)
}

func failed(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}
