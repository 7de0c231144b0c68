package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// The questions of the transfer protocol (transfer.go) between members,
// and the "transfers" actor that answers them on every node.

// TransferQuestionKind says which question of the transfer protocol is
// asked.
type TransferQuestionKind int

const (
	// AskHold: the origin asks the member it handed the message to
	// whether it holds a copy.
	AskHold TransferQuestionKind = iota + 1
	// AskMine: a member holding a copy asks its origin whether that copy
	// is its to process.
	AskMine
)

// TransferQuestion is one question of the transfer protocol: about the
// message ID (the same queue id on both members), asked by member From.
type TransferQuestion struct {
	Kind TransferQuestionKind
	ID   string
	From string
}

// TransferVerdict answers a TransferQuestion.
type TransferVerdict int

const (
	// VerdictYes: (AskHold) I hold a copy; (AskMine) it is yours.
	VerdictYes TransferVerdict = iota + 1
	// VerdictNo: (AskHold) I hold none; (AskMine) it is not yours.
	VerdictNo
	// VerdictUnknown: (AskMine) I have no record of it.
	VerdictUnknown
)

// TransfersActor is the name of the actor that answers the transfer
// protocol's questions on every node (actor.NewPID(channel address,
// TransfersActor)).
const TransfersActor = "transfers"

// ChannelPeers puts transfer questions to members over the cluster
// channel. Channel returns a live member's channel address, "" when it is
// not live or not known.
type ChannelPeers struct {
	Root    *actor.RootContext
	Channel func(member string) string
}

// AskTransfer implements TransferPeers.
func (c *ChannelPeers) AskTransfer(ctx context.Context, member string, q TransferQuestion) (TransferVerdict, error) {
	addr := c.Channel(member)
	if addr == "" {
		return 0, fmt.Errorf("%w: member %s is not reachable now", mail.ErrUnavailable, member)
	}
	a, err := request[*pb.TransferAnswer](ctx, c.Root, actor.NewPID(addr, TransfersActor), pbTransferQuery(q), 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("%w: %s did not answer: %v", mail.ErrUnavailable, member, err)
	}
	return transferVerdict(a)
}

// transfersActor answers members' transfer questions by asking the queue
// actor, which owns every queued message.
type transfersActor struct{ queue *actor.PID }

func (a *transfersActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*pb.TransferQuery)
	if !ok {
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	if sender == nil {
		return
	}
	ctx.Send(a.queue, &transferAsked{q: transferQuestion(m), reply: func(v TransferVerdict, err error) {
		root.Send(sender, pbTransferAnswer(v, err))
	}})
}

// AnswerTransfer answers a member's transfer question here, as the
// transfers actor does for questions over the channel (tests connect two
// Systems with it).
func (s *System) AnswerTransfer(ctx context.Context, q TransferQuestion) (TransferVerdict, error) {
	type answer struct {
		v   TransferVerdict
		err error
	}
	ch := make(chan answer, 1)
	s.root.Send(s.queue, &transferAsked{q: q, reply: func(v TransferVerdict, err error) { ch <- answer{v, err} }})
	select {
	case a := <-ch:
		return a.v, a.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: no answer about %s: %v", mail.ErrUnavailable, q.ID, ctx.Err())
	}
}
