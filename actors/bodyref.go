package actors

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Bodies by reference.
//
// A body stored in a file of the queue (storage.FileBody: larger than the
// inline threshold) goes to the owner of an account as a reference
// (pb.BodyRef: the queue's node, the queue id, the file's size and
// CRC-32C, the prefix in front of it), never whole in one message:
//
//   - on the node of the queue, on the same filesystem (a single node),
//     the append hard-links the queue's file into the partition: one copy
//     of the bytes on disk for the queue and every mailbox (the append
//     reads it once, for its summary, and checks it on the way);
//   - on the same node but another filesystem (--account-store elsewhere),
//     the account actor copies it into the partition on a goroutine of its
//     own, streaming;
//   - on another node (a frontend's queue, a backend's partition), the
//     account actor pulls it on a goroutine of its own from the origin's
//     body server (bodyServerActor, the actor "bodies" every node runs) in
//     chunks of at most bodyChunk bytes, at most bodyWindow of them in
//     flight, into a body writer of the partition, checking the size and
//     CRC-32C at the end; at most Config.MaxFetches such transfers run at
//     once on a node. Only members reach the body server: the cluster
//     channel is mutual TLS.
//
// A delivery repeated after its append was stored (and its pending work
// done) is answered without fetching the body. A body that fails its
// check comes back as a result with Damaged set: the queue holds the
// message.

// bodyServerName is the actor name of a node's body server; members
// address it as actor.NewPID(channel address, bodyServerName).
const bodyServerName = "bodies"

// Chunks of a body pulled over the channel.
const (
	bodyChunk  = 256 << 10
	bodyWindow = 4
)

// bodySource is what account actors find bodies by reference with.
type bodySource struct {
	queue   QueueStore    // this node's queue
	uploads *uploads      // this node's staged APPEND bodies
	fetches chan struct{} // a slot per transfer (fetch or copy) running
	timeout time.Duration // for one chunk
}

// local returns the queued body a reference from this node names: the
// queue's file with the reference's prefix in front.
func (s *bodySource) local(ref *pb.BodyRef) (mail.Body, error) {
	if ref.GetUpload() != "" && s != nil && s.uploads != nil {
		fb, err := s.uploads.get(ref.GetUpload(), ref.GetSize(), ref.GetCrc32C())
		if err != nil {
			return nil, err
		}
		return mail.Prepend(ref.GetPrefix(), fb), nil
	}
	if s == nil || s.queue == nil {
		return nil, fmt.Errorf("%w: no queue here to read the body from", mail.ErrUnavailable)
	}
	qb, err := s.queue.Body(ref.GetQueueId())
	if err != nil {
		return nil, err
	}
	_, fb, ok := storage.BodyFile(qb)
	if !ok || fb.Size() != ref.GetSize() || fb.CRC() != ref.GetCrc32C() {
		return nil, fmt.Errorf("%w: queue message %s holds another body now", mail.ErrUnavailable, ref.GetQueueId())
	}
	return mail.Prepend(ref.GetPrefix(), fb), nil
}

// staged: a goroutine of the account actor fetched or copied the body of
// d into the partition (or failed to).
type staged struct {
	d      *pb.Deliver
	msg    *mail.Message
	sender *actor.PID
	body   mail.Body // the file's bytes, without the prefix
	err    error
}

// receive takes a Deliver: one with its body inline, or by reference
// from this node on the partition's filesystem, is delivered at once;
// any other is staged first, off the actor (see above).
func (a *accountActor) receive(ctx actor.Context, d *pb.Deliver) {
	msg := mailMessage(d)
	sender := ctx.Sender()
	ref := d.GetBodyRef()
	if ref == nil {
		a.deliver(ctx, d, msg, sender, nil)
		return
	}
	local := ref.GetOrigin() == ctx.ActorSystem().Address()
	if local {
		body, err := a.bodies.local(ref)
		if err != nil {
			a.answerAll(ctx, d, sender, bodyFailure(err))
			return
		}
		if a.data.Linkable(body) {
			msg.Body = body
			a.deliver(ctx, d, msg, sender, nil)
			return
		}
	}
	if a.repeated(ctx, d, msg, sender) {
		return
	}
	if a.bodies == nil {
		a.answerAll(ctx, d, sender, mail.Temp(mail.StatusLocalError, "message body unavailable"))
		return
	}
	a.staging++
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		body, err := a.stage(root, ref, local)
		root.Send(self, &staged{d: d, msg: msg, sender: sender, body: body, err: err})
	}()
}

// staged delivers a Deliver whose body was staged.
func (a *accountActor) staged(ctx actor.Context, m *staged) {
	a.staging--
	if m.err != nil {
		if !errors.Is(m.err, storage.ErrNoSpace) {
			a.log.Warn("local delivery: the body could not be fetched", "account", a.address,
				"queueID", m.d.GetEnvelope().GetId(), "err", m.err)
		}
		a.answerAll(ctx, m.d, m.sender, bodyFailure(m.err))
		return
	}
	ref := m.d.GetBodyRef()
	how := "copied from this node's queue (another filesystem)"
	if ref.GetOrigin() != ctx.ActorSystem().Address() {
		how = fmt.Sprintf("fetched from %s in %d pieces", ref.GetOrigin(), (ref.GetSize()+bodyChunk-1)/bodyChunk)
	}
	a.stats.Journal.Record(m.d.GetEnvelope().GetId(), "fetched", fmt.Sprintf("body of %d bytes for %s %s", ref.GetSize(), a.address, how))
	m.msg.Body = mail.Prepend(ref.GetPrefix(), m.body)
	// The staged file is taken over by the first append of it (the
	// others link it); done drops it when none did.
	a.deliver(ctx, m.d, m.msg, m.sender, func() { storage.DiscardBody(m.body) })
}

// repeated answers d at once when every recipient's append was stored
// before and left no work pending: a repeated delivery needs no body.
func (a *accountActor) repeated(ctx actor.Context, d *pb.Deliver, msg *mail.Message, sender *actor.PID) bool {
	ids := make([]string, 0, len(msg.Envelope.Recipients))
	for _, r := range msg.Envelope.Recipients {
		id, ok, err := a.data.Delivered(a.address, msg.Envelope.ID+"/"+r.Addr)
		if err != nil || !ok {
			return false
		}
		ids = append(ids, id)
	}
	out := deliverResult(d, mail.PartitionOf(a.address, a.cfg.Partitions), a.cfg.NodeName, nil)
	for i, r := range msg.Envelope.Recipients {
		res := mail.Delivered("stored")
		res.Rcpt = r.Key
		pr := pbResult(res)
		pr.MessageId, pr.Duplicate = ids[i], true
		out.Results = append(out.Results, pr)
		a.stats.Journal.Record(msg.Envelope.ID, "stored", fmt.Sprintf("%s: already stored in %s (a repeated delivery; its body was not fetched)", r.Addr, a.address))
	}
	if sender != nil {
		ctx.Send(sender, out)
	}
	return true
}

// answerAll answers every recipient of d with res.
func (a *accountActor) answerAll(ctx actor.Context, d *pb.Deliver, sender *actor.PID, res mail.Result) {
	if sender != nil {
		ctx.Send(sender, deliverFailure(d, mail.PartitionOf(a.address, a.cfg.Partitions), a.cfg.NodeName, res))
	}
}

// bodyFailure is the result of a delivery whose body could not be had.
func bodyFailure(err error) mail.Result {
	if errors.Is(err, storage.ErrNoSpace) {
		return noSpaceResult() // no room to stage it here
	}
	res := mail.Temp(mail.StatusLocalError, "message body unavailable")
	if errors.Is(err, storage.ErrDamaged) {
		res.Damaged = err.Error()
	}
	return res
}

// stage copies (local) or fetches the file a reference names into a body
// of the partition and checks it; it runs on a goroutine of its own.
func (a *accountActor) stage(root *actor.RootContext, ref *pb.BodyRef, local bool) (mail.Body, error) {
	a.bodies.fetches <- struct{}{}
	defer func() { <-a.bodies.fetches }()
	w, err := a.data.NewBody()
	if err != nil {
		return nil, err
	}
	if local {
		err = a.copyLocal(ref, w)
	} else {
		err = fetchBody(root, actor.NewPID(ref.GetOrigin(), bodyServerName), ref, w, a.bodies.timeout)
	}
	if err != nil {
		w.Abort()
		return nil, err
	}
	body, err := w.Commit()
	if err != nil {
		return nil, err
	}
	if err := checkStaged(body, ref); err != nil {
		storage.DiscardBody(body)
		return nil, err
	}
	return body, nil
}

// copyLocal copies the file of a body of this node's queue into w
// (another filesystem), verifying it as it reads.
func (a *accountActor) copyLocal(ref *pb.BodyRef, w io.Writer) error {
	body, err := a.bodies.local(ref)
	if err != nil {
		return err
	}
	_, fb, _ := storage.BodyFile(body)
	r, err := fb.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.CopyBuffer(w, r, make([]byte, 64<<10))
	return err
}

// checkStaged compares a staged body with its reference.
func checkStaged(body mail.Body, ref *pb.BodyRef) error {
	var crc uint32
	if _, fb, ok := storage.BodyFile(body); ok {
		crc = fb.CRC()
	} else if bb, ok := body.(mail.BytesBody); ok {
		crc = crc32.Checksum(bb, crc32.MakeTable(crc32.Castagnoli))
	}
	switch {
	case body.Size() != ref.GetSize():
		return fmt.Errorf("%w: the body of %s came with %d bytes, %d stored", storage.ErrDamaged, ref.GetQueueId(), body.Size(), ref.GetSize())
	case crc != ref.GetCrc32C():
		return fmt.Errorf("%w: the body of %s: CRC-32C mismatch: stored %08x, received %08x", storage.ErrDamaged, ref.GetQueueId(), ref.GetCrc32C(), crc)
	}
	return nil
}

// fetchBody pulls the body ref names from the body server from, in chunks
// of bodyChunk bytes with at most bodyWindow requests in flight, and
// writes it to w in order. The caller checks what was written against
// the reference (checkStaged).
func fetchBody(root *actor.RootContext, from *actor.PID, ref *pb.BodyRef, w io.Writer, timeout time.Duration) error {
	type inflight struct {
		f   *actor.Future
		off int64
		n   int
	}
	var window []inflight
	size, next := ref.GetSize(), int64(0)
	for done := int64(0); done < size; {
		for len(window) < bodyWindow && next < size {
			n := int(min(size-next, bodyChunk))
			f := root.RequestFuture(from, &pb.GetBody{QueueId: ref.GetQueueId(), Offset: next, Length: int32(n),
				Size: size, Crc32C: ref.GetCrc32C(), Upload: ref.GetUpload()}, timeout)
			window = append(window, inflight{f: f, off: next, n: n})
			next += int64(n)
		}
		c := window[0]
		window[0] = inflight{}
		window = window[1:]
		res, err := c.f.Result()
		if err != nil {
			return fmt.Errorf("%w: fetching the body of %s at %d: %v", mail.ErrUnavailable, ref.GetQueueId(), c.off, err)
		}
		chunk, ok := res.(*pb.BodyChunk)
		if !ok {
			return fmt.Errorf("%w: fetching the body of %s: unexpected answer %T", mail.ErrUnavailable, ref.GetQueueId(), res)
		}
		if err := goError(chunk.GetError()); err != nil {
			return fmt.Errorf("fetching the body of %s at %d: %w", ref.GetQueueId(), c.off, err)
		}
		if len(chunk.GetData()) != c.n {
			return fmt.Errorf("%w: the body of %s at %d: %d bytes, %d asked", storage.ErrDamaged, ref.GetQueueId(), c.off, len(chunk.GetData()), c.n)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
		done += int64(c.n)
	}
	return nil
}

// bodyServerActor serves pieces of the bodies of this node's queue to
// the account actors of members (GetBody), each read on a goroutine, at
// most cap(slots) at once, so that the actor never waits on the disk.
type bodyServerActor struct {
	queue   QueueStore
	uploads *uploads // nil: none
	slots   chan struct{}
	log     *slog.Logger
}

func (b *bodyServerActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*pb.GetBody)
	if !ok {
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	if sender == nil {
		return
	}
	go func() {
		b.slots <- struct{}{}
		reply := b.serve(m)
		<-b.slots
		root.Send(sender, reply)
	}()
}

// serve reads the piece m asks for.
func (b *bodyServerActor) serve(m *pb.GetBody) *pb.BodyChunk {
	fail := func(err error) *pb.BodyChunk { return &pb.BodyChunk{Error: pbError(err)} }
	if m.GetLength() <= 0 || m.GetLength() > bodyChunk || m.GetOffset() < 0 {
		return fail(fmt.Errorf("%w: a piece of %d bytes at %d", mail.ErrInvalid, m.GetLength(), m.GetOffset()))
	}
	var fb *storage.FileBody
	if m.GetUpload() != "" {
		if b.uploads == nil {
			return fail(fmt.Errorf("%w: no uploads here", mail.ErrNotFound))
		}
		var err error
		if fb, err = b.uploads.get(m.GetUpload(), m.GetSize(), m.GetCrc32C()); err != nil {
			return fail(err)
		}
	} else {
		body, err := b.queue.Body(m.GetQueueId())
		if err != nil {
			if errors.Is(err, storage.ErrDamaged) {
				b.log.Error("a member asked for a damaged body", "queueID", m.GetQueueId(), "err", err)
			}
			return fail(err)
		}
		var ok bool
		_, fb, ok = storage.BodyFile(body)
		if !ok || fb.Size() != m.GetSize() || fb.CRC() != m.GetCrc32C() {
			return fail(fmt.Errorf("%w: queue message %s holds no such body", mail.ErrNotFound, m.GetQueueId()))
		}
	}
	n := int(min(int64(m.GetLength()), fb.Size()-m.GetOffset()))
	if n <= 0 {
		return fail(fmt.Errorf("%w: offset %d past the body's %d bytes", mail.ErrInvalid, m.GetOffset(), fb.Size()))
	}
	buf := make([]byte, n)
	got, err := fb.ReadAt(buf, m.GetOffset())
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: body file of %s is shorter than stored", storage.ErrDamaged, m.GetQueueId())
		}
		return fail(err)
	}
	return &pb.BodyChunk{Data: buf}
}
