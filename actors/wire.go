package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/summary"
)

// Every conversion between Homing's types and the protobuf messages that
// cross the cluster channel (package pb) is in this file.

// pbError turns an error into the wire form, keeping only its kind and a
// short text.
func pbError(err error) *pb.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNoFolder):
		return &pb.Error{Kind: pb.Error_NO_FOLDER, Text: err.Error()}
	case errors.Is(err, storage.ErrOverQuota):
		return &pb.Error{Kind: pb.Error_OVER_QUOTA, Text: err.Error()}
	case errors.Is(err, storage.ErrCannot):
		return &pb.Error{Kind: pb.Error_CANNOT, Text: err.Error()}
	case errors.Is(err, mail.ErrNoSpace):
		return &pb.Error{Kind: pb.Error_NO_SPACE, Text: err.Error()}
	case errors.Is(err, mail.ErrNoSuchUser):
		return &pb.Error{Kind: pb.Error_NO_SUCH_USER, Text: err.Error()}
	case errors.Is(err, mail.ErrDisabled):
		return &pb.Error{Kind: pb.Error_DISABLED, Text: err.Error()}
	case errors.Is(err, mail.ErrNotFound):
		return &pb.Error{Kind: pb.Error_NOT_FOUND, Text: err.Error()}
	case errors.Is(err, mail.ErrExists):
		return &pb.Error{Kind: pb.Error_EXISTS, Text: err.Error()}
	case errors.Is(err, storage.ErrDamaged):
		return &pb.Error{Kind: pb.Error_DAMAGED, Text: err.Error()}
	case !mail.IsTemporary(err):
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
	case pb.Error_DISABLED:
		return fmt.Errorf("%w: %s", mail.ErrDisabled, e.Text)
	case pb.Error_NOT_FOUND:
		return fmt.Errorf("%w: %s", mail.ErrNotFound, e.Text)
	case pb.Error_EXISTS:
		return fmt.Errorf("%w: %s", mail.ErrExists, e.Text)
	case pb.Error_INVALID:
		return fmt.Errorf("%w: %s", mail.ErrInvalid, e.Text)
	case pb.Error_DAMAGED:
		return fmt.Errorf("%w: %s", storage.ErrDamaged, e.Text)
	case pb.Error_NO_FOLDER:
		return fmt.Errorf("%w (%w): %s", storage.ErrNoFolder, mail.ErrNotFound, e.Text)
	case pb.Error_OVER_QUOTA:
		return fmt.Errorf("%w: %s", storage.ErrOverQuota, e.Text)
	case pb.Error_CANNOT:
		return fmt.Errorf("%w: %s", storage.ErrCannot, e.Text)
	case pb.Error_NO_SPACE:
		return fmt.Errorf("%w: %s", mail.ErrNoSpace, e.Text)
	default:
		return fmt.Errorf("%w: %s", mail.ErrUnavailable, e.Text)
	}
}

// WireError is err in the form that crosses the channel, for the other
// packages that answer members (control's introspection).
func WireError(err error) *pb.Error { return pbError(err) }

// ErrorFromWire is the error a member sent, testable with errors.Is.
func ErrorFromWire(e *pb.Error) error { return goError(e) }

func pbResult(r mail.Result) *pb.Result {
	return &pb.Result{Rcpt: int32(r.Rcpt), Code: int32(r.Code), Status: string(r.Status), Text: r.Text, RemoteMta: r.RemoteMTA,
		Damaged: r.Damaged}
}

// mailResults are the results of a DeliverResult; a recipient of want the
// answer does not name gets a temporary failure.
func mailResults(dr *pb.DeliverResult, want []*mail.Recipient) []mail.Result {
	got := make(map[int]*pb.Result, len(dr.GetResults()))
	for _, r := range dr.GetResults() {
		got[int(r.Rcpt)] = r
	}
	out := make([]mail.Result, 0, len(want))
	for _, rc := range want {
		r := got[rc.Key]
		if r == nil {
			out = append(out, mail.Result{Rcpt: rc.Key, Code: 451, Status: mail.StatusLocalError, Text: "no result for this recipient"})
			continue
		}
		out = append(out, mail.Result{Rcpt: rc.Key, Code: int(r.Code), Status: mail.Status(r.Status), Text: r.Text, RemoteMTA: r.RemoteMta,
			Damaged: r.Damaged, Relay: dr.GetNode()})
	}
	return out
}

// pbDeliver is the Local Delivery of msg (an attempt for recipients of one
// account). A body in a file of the queue goes by reference (BodyRef): the
// owner of the account links it when it runs on this node, and pulls it
// in chunks from this node's body server (origin, this node's channel
// address) otherwise. Any other body goes inline.
func pbDeliver(msg *mail.Message, origin string) (*pb.Deliver, error) {
	out := &pb.Deliver{}
	if prefix, fb, ok := storage.BodyFile(msg.Body); ok {
		out.BodyRef = &pb.BodyRef{Origin: origin, QueueId: msg.Envelope.ID, Size: fb.Size(), Crc32C: fb.CRC(),
			Prefix: prefix}
	} else {
		body, err := mail.ReadBody(msg.Body)
		if err != nil {
			return nil, err
		}
		out.Body = body
	}
	env := msg.Envelope
	out.Envelope = &pb.Envelope{
		Id: env.ID, From: env.From, EnvId: env.EnvID, Ret: string(env.Ret), Smtputf8: env.SMTPUTF8,
		Body8Bit: env.Body8Bit, ReceivedUnixNano: env.Received.UnixNano(), Source: string(env.Source),
		Auth: env.Auth, ClientIp: env.ClientIP, Helo: env.HELO,
	}
	for _, r := range env.Recipients {
		pr := &pb.Recipient{Key: int32(r.Key), Address: r.Addr, Account: r.Account, Orcpt: r.ORcpt}
		for _, n := range r.Notify {
			pr.Notify = append(pr.Notify, string(n))
		}
		out.Envelope.Recipients = append(out.Envelope.Recipients, pr)
	}
	return out, nil
}

// mailMessage is the Message a Deliver carries. For a body by reference
// (BodyRef) Body is nil: the account actor finds it (bodyref.go).
func mailMessage(d *pb.Deliver) *mail.Message {
	e := d.GetEnvelope()
	size := int64(len(d.GetBody()))
	if ref := d.GetBodyRef(); ref != nil {
		size = ref.GetSize() + int64(len(ref.GetPrefix()))
	}
	env := &mail.Envelope{
		ID: e.GetId(), From: e.GetFrom(), EnvID: e.GetEnvId(), Ret: mail.Return(e.GetRet()), SMTPUTF8: e.GetSmtputf8(),
		Body8Bit: e.GetBody8Bit(), Received: time.Unix(0, e.GetReceivedUnixNano()), Source: mail.Source(e.GetSource()),
		Auth: e.GetAuth(), ClientIP: e.GetClientIp(), HELO: e.GetHelo(), Size: size,
	}
	for _, r := range e.GetRecipients() {
		mr := &mail.Recipient{Key: int(r.Key), Addr: r.Address, Account: r.Account, ORcpt: r.Orcpt, State: mail.StatePending}
		for _, n := range r.Notify {
			mr.Notify = append(mr.Notify, mail.Notify(n))
		}
		env.Recipients = append(env.Recipients, mr)
	}
	if d.GetBodyRef() != nil {
		return &mail.Message{Envelope: env}
	}
	return &mail.Message{Envelope: env, Body: mail.BytesBody(d.GetBody())}
}

// deliverResult answers d with one result per recipient.
// node is the member answering (Result.Relay at the queue).
func deliverResult(d *pb.Deliver, partition int, node string, results []*pb.Result) *pb.DeliverResult {
	return &pb.DeliverResult{QueueId: d.GetEnvelope().GetId(), Partition: int32(partition), Results: results, Node: node}
}

// deliverFailure answers every recipient of d with res.
func deliverFailure(d *pb.Deliver, partition int, node string, res mail.Result) *pb.DeliverResult {
	out := deliverResult(d, partition, node, nil)
	for _, r := range d.GetEnvelope().GetRecipients() {
		res.Rcpt = int(r.Key)
		out.Results = append(out.Results, pbResult(res))
	}
	return out
}

// pbAccount is an account record as the admin layer sees it.
func pbAccount(a storage.Account, partition int, used int64, messages int) *pb.AccountRecord {
	return &pb.AccountRecord{
		Address: a.Address, PasswordHash: a.PasswordHash, QuotaBytes: a.QuotaBytes,
		CreatedUnixNano: a.Created.UnixNano(), Partition: int32(partition), Rules: a.Rules,
		UsedBytes: used, Messages: int64(messages), Disabled: a.Disabled,
	}
}

// storageAccount is the record a CreateAccount asks for.
func storageAccount(a *pb.AccountRecord, address string) storage.Account {
	return storage.Account{
		Address:      address,
		PasswordHash: a.GetPasswordHash(),
		QuotaBytes:   a.GetQuotaBytes(),
		Created:      time.Unix(0, a.GetCreatedUnixNano()),
	}
}

// pbMessageInfo is a mailbox listing entry.
func pbMessageInfo(m storage.MessageInfo) *pb.MessageInfo {
	mi := &pb.MessageInfo{Id: m.ID, Folder: m.Folder, Size: m.Size, ReceivedUnixNano: m.Received.UnixNano(), Flags: m.Flags, Uid: m.UID}
	if s, err := summary.Decode(m.Summary); err == nil && len(m.Summary) > 0 {
		mi.From, mi.Subject = s.From(), s.Subject()
	}
	return mi
}

// unavailableReply answers an admin request msg that cannot be served now.
func unavailableReply(msg interface{}, err error) interface{} {
	e := &pb.Error{Kind: pb.Error_UNAVAILABLE, Text: err.Error()}
	switch msg.(type) {
	case *pb.Resolve:
		return &pb.ResolveResult{Error: e}
	case *pb.ListMessages:
		return &pb.MessagesReply{Error: e}
	case *pb.GetRaw:
		return &pb.RawReply{Error: e}
	case *pb.ListAliases:
		return &pb.AliasList{Error: e}
	default:
		return &pb.AccountReply{Error: e}
	}
}

// pbTransferQuery is a transfer question on the wire.
func pbTransferQuery(q TransferQuestion) *pb.TransferQuery {
	k := pb.TransferQuery_KIND_UNSPECIFIED
	switch q.Kind {
	case AskHold:
		k = pb.TransferQuery_HOLD
	case AskMine:
		k = pb.TransferQuery_MINE
	}
	return &pb.TransferQuery{Kind: k, Id: q.ID, From: q.From}
}

// transferQuestion is the question a member sent (an unknown kind is
// answered as invalid).
func transferQuestion(m *pb.TransferQuery) TransferQuestion {
	var k TransferQuestionKind
	switch m.GetKind() {
	case pb.TransferQuery_HOLD:
		k = AskHold
	case pb.TransferQuery_MINE:
		k = AskMine
	}
	return TransferQuestion{Kind: k, ID: m.GetId(), From: m.GetFrom()}
}

// pbTransferAnswer is the answer to a transfer question on the wire.
func pbTransferAnswer(v TransferVerdict, err error) *pb.TransferAnswer {
	if err != nil {
		return &pb.TransferAnswer{Error: pbError(err)}
	}
	switch v {
	case VerdictYes:
		return &pb.TransferAnswer{Verdict: pb.TransferAnswer_YES}
	case VerdictNo:
		return &pb.TransferAnswer{Verdict: pb.TransferAnswer_NO}
	case VerdictUnknown:
		return &pb.TransferAnswer{Verdict: pb.TransferAnswer_UNKNOWN}
	}
	return &pb.TransferAnswer{Error: &pb.Error{Kind: pb.Error_UNAVAILABLE, Text: "no verdict"}}
}

// transferVerdict is the answer a member sent; an answer without a
// verdict is an error (nothing was decided).
func transferVerdict(a *pb.TransferAnswer) (TransferVerdict, error) {
	if err := goError(a.GetError()); err != nil {
		return 0, err
	}
	switch a.GetVerdict() {
	case pb.TransferAnswer_YES:
		return VerdictYes, nil
	case pb.TransferAnswer_NO:
		return VerdictNo, nil
	case pb.TransferAnswer_UNKNOWN:
		return VerdictUnknown, nil
	}
	return 0, fmt.Errorf("%w: a transfer answer without a verdict", mail.ErrUnavailable)
}
