package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Mailbox operations in the account actor (pb.MailboxOp): the IMAP and
// POP3 sessions of every node and the admin API change a mailbox only
// here, the one writer of the account on its partition's one owner.
//
// A change is written in the actor and answered off it once durable
// (group commit, as for deliveries): the reply goes from a goroutine that
// waits for the sync, then the watchers are told (pb.MailboxChanged). So a
// session never hears of a change before it is on disk, and the actor goes
// on with the next operation meanwhile.
//
// Watchers are actors of sessions (any node) that asked SELECT or WATCH;
// each has a lease of watchLease, renewed by WATCH. While an account has
// watchers its actor is not passivated. The actor keeps, for each folder
// a session selected, its index in memory with a log of recent changes
// (folderView), so SELECT of a large folder is a copy and SYNC since a
// MODSEQ is what changed, not the whole folder.

// watchLease is how long a watcher is told of changes without renewing.
const watchLease = 45 * time.Second

// The POP3 maildrop lock (RFC 1939 §8: "the POP3 server then acquires
// an exclusive-access lock on the maildrop"): a lease held by the account
// actor for one session, wherever it runs, named by the session's watcher
// (address and id). The session renews it well within the lease; one that
// is not renewed (its node died) expires. The lease asked for is bounded
// to [popLockMinLease, popLockMaxLease]; 0 asks for popLockLease.
const (
	popLockLease    = 30 * time.Second
	popLockMinLease = time.Second
	popLockMaxLease = 10 * time.Minute
)

type watcher struct {
	pid     *actor.PID
	expires time.Time
}

// notifyChange: a change to folder is durable; tell the watchers.
type notifyChange struct {
	folder uint32
	modseq uint64
}

// mailbox handles one operation.
func (a *accountActor) mailbox(ctx actor.Context, op *pb.MailboxOp) {
	sender := ctx.Sender()
	md, ok := a.data.(MailboxData)
	if !ok {
		a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(fmt.Errorf("%w: this store has no folders", mail.ErrInvalid))})
		return
	}
	if !a.loaded {
		if err := a.load(); err != nil {
			a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(err)})
			return
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	now := a.now()
	switch op.Kind {
	case pb.MailboxOp_FOLDERS:
		fs, err := md.Folders(a.address)
		r := &pb.MailboxReply{Error: pbError(err)}
		for _, f := range fs {
			r.Folders = append(r.Folders, pbFolder(f))
		}
		a.reply(ctx, sender, r)
	case pb.MailboxOp_STATUS:
		f, err := md.Folder(a.address, op.Folder)
		a.reply(ctx, sender, &pb.MailboxReply{Folder: pbFolderOK(f, err), Error: pbError(err)})
	case pb.MailboxOp_CREATE:
		f, d, err := md.CreateFolder(cctx, a.address, op.Folder, op.SpecialUse)
		a.afterDurable(ctx, sender, &pb.MailboxReply{Folder: pbFolderOK(f, err)}, d, err, nil)
	case pb.MailboxOp_DELETE:
		f, ferr := md.Folder(a.address, op.Folder)
		d, err := md.DeleteFolder(cctx, a.address, op.Folder)
		if ferr == nil {
			delete(a.views, f.ID)
		}
		a.afterDurable(ctx, sender, &pb.MailboxReply{}, d, err, nil)
	case pb.MailboxOp_RENAME:
		d, err := md.RenameFolder(cctx, a.address, op.Folder, op.NewName)
		a.views = nil // INBOX's messages may have moved
		a.afterDurable(ctx, sender, &pb.MailboxReply{}, d, err, nil)
	case pb.MailboxOp_SUBSCRIBE, pb.MailboxOp_UNSUBSCRIBE:
		d, err := md.SubscribeFolder(cctx, a.address, op.Folder, op.Kind == pb.MailboxOp_SUBSCRIBE)
		a.afterDurable(ctx, sender, &pb.MailboxReply{}, d, err, nil)
	case pb.MailboxOp_SELECT:
		f, err := md.Folder(a.address, op.Folder)
		var v *folderView
		if err == nil {
			v, err = a.view(md, f)
		}
		if err != nil {
			a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(err)})
			return
		}
		a.watch(op, now)
		r := &pb.MailboxReply{Folder: pbFolder(f), Modseq: v.modseq, Full: true}
		if op.Packed {
			p := v.packed()
			r.IndexUids, r.IndexFlags, r.FlagSets = p.uids, p.flags, p.sets
		} else {
			r.Entries = v.all()
		}
		a.reply(ctx, sender, r)
	case pb.MailboxOp_SYNC:
		v, err := a.viewByID(md, op.FolderId)
		if err != nil {
			a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(err)})
			return
		}
		r := &pb.MailboxReply{Modseq: v.modseq}
		r.Entries, r.Expunged, r.Full = v.since(op.SinceModseq)
		a.reply(ctx, sender, r)
	case pb.MailboxOp_FETCH:
		a.fetch(ctx, sender, md, op)
	case pb.MailboxOp_STORE:
		es, d, err := md.StoreFlags(cctx, a.address, op.FolderId, op.Uids, storage.FlagOp(op.StoreOp), op.Flags)
		r := &pb.MailboxReply{}
		if err == nil {
			if v := a.views[op.FolderId]; v != nil {
				v.stored(es)
			}
			for _, e := range es {
				r.Entries = append(r.Entries, pbEntry(e))
			}
		}
		a.afterDurable(ctx, sender, r, d, err, a.changed(md, op.FolderId))
	case pb.MailboxOp_EXPUNGE, pb.MailboxOp_REMOVE:
		uids := op.Uids
		if op.All {
			uids = nil
		}
		var gone []uint32
		var d <-chan error
		var err error
		if op.Kind == pb.MailboxOp_EXPUNGE {
			gone, d, err = md.Expunge(cctx, a.address, op.FolderId, uids)
		} else {
			gone, d, err = md.Remove(cctx, a.address, op.FolderId, uids)
		}
		n := a.changed(md, op.FolderId)
		if err == nil {
			if v := a.views[op.FolderId]; v != nil && n != nil {
				v.expunged(gone, n.modseq)
			}
		}
		a.afterDurable(ctx, sender, &pb.MailboxReply{Expunged: gone}, d, err, n)
	case pb.MailboxOp_COPY, pb.MailboxOp_MOVE:
		dst, err := md.Folder(a.address, op.Folder)
		if err != nil {
			a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(err)})
			return
		}
		move := op.Kind == pb.MailboxOp_MOVE
		res, d, err := md.CopyMessages(cctx, a.address, op.FolderId, op.Uids, dst.ID, move, a.acct.QuotaBytes)
		r := &pb.MailboxReply{SourceUids: res.Source, DestUids: res.Dest, UidValidity: res.UIDValidity}
		// The destination's index is read again when next selected.
		delete(a.views, dst.ID)
		var n *notifyChange
		if move && err == nil {
			n = a.changed(md, op.FolderId)
			if v := a.views[op.FolderId]; v != nil && n != nil {
				v.expunged(res.Source, n.modseq)
			}
		}
		a.afterDurable(ctx, sender, r, d, err, n, &notifyChange{folder: dst.ID, modseq: res.ModSeq})
	case pb.MailboxOp_APPEND:
		a.appendOp(ctx, sender, md, op)
	case pb.MailboxOp_WATCH:
		a.watch(op, now)
		a.reply(ctx, sender, &pb.MailboxReply{})
	case pb.MailboxOp_UNWATCH:
		delete(a.watchers, watcherKey(op))
		a.reply(ctx, sender, &pb.MailboxReply{})
	case pb.MailboxOp_LOCK:
		a.lock(ctx, sender, op, now)
	case pb.MailboxOp_UNLOCK:
		if a.popLock == watcherKey(op) {
			a.popLock = ""
		}
		delete(a.watchers, watcherKey(op))
		a.reply(ctx, sender, &pb.MailboxReply{})
	case pb.MailboxOp_QUOTA:
		used, n, err := a.data.Usage(a.address)
		a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(err), QuotaBytes: a.acct.QuotaBytes, UsedBytes: used, UsedMessages: int64(n)})
	case pb.MailboxOp_DELETE_MESSAGE, pb.MailboxOp_MOVE_MESSAGE, pb.MailboxOp_FLAG_MESSAGE:
		// The admin API: by message id, synchronous (rare), and every
		// view is read again when next used.
		var err error
		r := &pb.MailboxReply{}
		switch op.Kind {
		case pb.MailboxOp_DELETE_MESSAGE:
			err = md.DeleteMessage(cctx, a.address, op.MessageId)
		case pb.MailboxOp_MOVE_MESSAGE:
			r.Uid, err = md.MoveMessage(cctx, a.address, op.MessageId, op.Folder)
		default:
			err = md.ChangeFlags(cctx, a.address, op.MessageId, op.Flags, op.RemoveFlags, false)
		}
		a.views = nil
		if err != nil {
			a.opFailed(err)
			r = &pb.MailboxReply{Error: pbError(err)}
		} else if fs, ferr := md.Folders(a.address); ferr == nil {
			for _, f := range fs {
				a.notify(ctx, &notifyChange{folder: f.ID, modseq: f.ModSeq})
			}
		}
		a.reply(ctx, sender, r)
	default:
		a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(fmt.Errorf("%w: mailbox operation %v", mail.ErrInvalid, op.Kind))})
	}
}

// lock takes or renews the POP3 lock for op's watcher, which is also
// told of changes (so it hears Closing when the actor stops, and renews
// at once); another session's lease that holds answers mail.ErrExists.
func (a *accountActor) lock(ctx actor.Context, sender *actor.PID, op *pb.MailboxOp, now time.Time) {
	token := watcherKey(op)
	if op.WatcherId == "" {
		a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(fmt.Errorf("%w: a lock needs its holder", mail.ErrInvalid))})
		return
	}
	if a.popLock != "" && a.popLock != token && now.Before(a.popLockExpires) {
		a.reply(ctx, sender, &pb.MailboxReply{Error: pbError(fmt.Errorf("%w: the maildrop is locked by another session", mail.ErrExists))})
		return
	}
	lease := popLockLease
	if op.LeaseMillis > 0 {
		lease = min(max(time.Duration(op.LeaseMillis)*time.Millisecond, popLockMinLease), popLockMaxLease)
	}
	a.popLock, a.popLockExpires = token, now.Add(lease)
	a.watch(op, now)
	if w := a.watchers[token]; w != nil && w.expires.Before(a.popLockExpires) {
		w.expires = a.popLockExpires
	}
	a.reply(ctx, sender, &pb.MailboxReply{})
}

func (a *accountActor) reply(ctx actor.Context, to *actor.PID, r *pb.MailboxReply) {
	if to != nil {
		ctx.Send(to, r)
	}
}

// viewsStale: a change the folder views took was not written after all
// (afterDurable): they are read again when next used.
type viewsStale struct{}

// afterDurable answers r once d says the change is durable (err: the
// write failed, answered at once), then has the watchers told of ns.
func (a *accountActor) afterDurable(ctx actor.Context, to *actor.PID, r *pb.MailboxReply, d <-chan error, err error, ns ...*notifyChange) {
	if err != nil {
		a.opFailed(err)
		a.reply(ctx, to, &pb.MailboxReply{Error: pbError(err)})
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		if d != nil {
			if err := <-d; err != nil {
				if errors.Is(err, storage.ErrNoSpace) {
					// Refused for want of space, nothing written, the
					// store goes on (its guard logs the condition
					// once): a temporary refusal to the client.
					r = &pb.MailboxReply{Error: pbError(err)}
				} else {
					a.log.Error("mailbox change not synced", "account", a.address, "err", err)
					r = &pb.MailboxReply{Error: pbError(fmt.Errorf("%w: %v", mail.ErrUnavailable, err))}
				}
				// The views took the change already.
				root.Send(self, &viewsStale{})
			}
		}
		if to != nil {
			root.Send(to, r)
		}
		for _, n := range ns {
			if n != nil && r.Error == nil {
				root.Send(self, n)
			}
		}
	}()
}

func (a *accountActor) opFailed(err error) {
	// Over quota, or a store short of space (its guard logs that once):
	// the client's answer says it, not the log.
	if mail.IsTemporary(err) && !errors.Is(err, storage.ErrOverQuota) && !errors.Is(err, storage.ErrNoSpace) {
		a.log.Error("mailbox operation failed", "account", a.address, "err", err)
		a.loaded = false
	}
}

// changed reads folder fid's MODSEQ after a change (nil if it is gone).
func (a *accountActor) changed(md MailboxData, fid uint32) *notifyChange {
	fs, err := md.Folders(a.address)
	if err != nil {
		return nil
	}
	for _, f := range fs {
		if f.ID == fid {
			if v := a.views[fid]; v != nil {
				v.modseq = f.ModSeq
			}
			return &notifyChange{folder: fid, modseq: f.ModSeq}
		}
	}
	return nil
}

// notify tells every watcher whose lease holds that a folder changed.
func (a *accountActor) notify(ctx actor.Context, n *notifyChange) {
	now := a.now()
	for k, w := range a.watchers {
		if now.After(w.expires) {
			delete(a.watchers, k)
			continue
		}
		ctx.Send(w.pid, &pb.MailboxChanged{Account: a.address, FolderId: n.folder, Modseq: n.modseq})
	}
}

// closing tells every watcher that this actor stops.
func (a *accountActor) closing(ctx actor.Context) {
	for _, w := range a.watchers {
		ctx.Send(w.pid, &pb.MailboxChanged{Account: a.address, Closing: true})
	}
}

func watcherKey(op *pb.MailboxOp) string { return op.WatcherAddress + "/" + op.WatcherId }

func (a *accountActor) watch(op *pb.MailboxOp, now time.Time) {
	if op.WatcherId == "" {
		return
	}
	if a.watchers == nil {
		a.watchers = map[string]*watcher{}
	}
	a.watchers[watcherKey(op)] = &watcher{pid: actor.NewPID(op.WatcherAddress, op.WatcherId), expires: now.Add(watchLease)}
}

// watched reports whether a watcher's lease holds (the actor stays).
func (a *accountActor) watched() bool {
	now := a.now()
	for k, w := range a.watchers {
		if now.After(w.expires) {
			delete(a.watchers, k)
		}
	}
	return len(a.watchers) > 0 || (a.popLock != "" && now.Before(a.popLockExpires))
}

// view returns the in-memory index of folder f, reading it if needed.
func (a *accountActor) view(md MailboxData, f storage.Folder) (*folderView, error) {
	if v := a.views[f.ID]; v != nil {
		v.modseq = max(v.modseq, f.ModSeq)
		return v, nil
	}
	es, err := md.FolderEntries(a.address, f.ID)
	if err != nil {
		return nil, err
	}
	v := newFolderView(es, f.ModSeq)
	if a.views == nil {
		a.views = map[uint32]*folderView{}
	}
	a.views[f.ID] = v
	return v, nil
}

func (a *accountActor) viewByID(md MailboxData, fid uint32) (*folderView, error) {
	fs, err := md.Folders(a.address)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.ID == fid {
			return a.view(md, f)
		}
	}
	return nil, fmt.Errorf("folder %d of %s: %w (%w)", fid, a.address, storage.ErrNoFolder, mail.ErrNotFound)
}

// fetch answers the index entries of uids with their sizes, dates and
// (summaries) summaries.
func (a *accountActor) fetch(ctx actor.Context, to *actor.PID, md MailboxData, op *pb.MailboxOp) {
	// The folder's view is kept by this actor with every change, so a
	// FETCH of a selected folder reads no folder list (a FETCH of 100,000
	// messages is 200 of these in the actor's queue).
	v, err := a.views[op.FolderId], error(nil)
	if v == nil {
		v, err = a.viewByID(md, op.FolderId)
	}
	if err != nil {
		a.reply(ctx, to, &pb.MailboxReply{Error: pbError(err)})
		return
	}
	var es []*pb.MessageEntry
	var ids []uint64
	for _, uid := range op.Uids {
		if e, ok := v.get(uid); ok {
			es = append(es, pbEntry(e))
			ids = append(ids, e.ID)
		}
	}
	// What is read now (size, date, summary) never changes once a
	// message is stored, so it is read beside the actor, which goes on
	// with the next operation: the FETCHes of many sessions read at once
	// instead of one after the other through the account's one actor. A
	// message expunged meanwhile is not found and left out, as it would
	// be had the expunge come first.
	root, modseq, address, cache := ctx.ActorSystem().Root, v.modseq, a.address, &a.metas
	go func() {
		out, err := readMeta(md, cache, address, es, ids, op.Summaries)
		if to == nil {
			return
		}
		if err != nil {
			root.Send(to, &pb.MailboxReply{Error: pbError(err)})
			return
		}
		root.Send(to, &pb.MailboxReply{Entries: out, Modseq: modseq})
	}()
}

// readMeta fills es (the index entries of messages ids) with sizes and
// dates, from the cache or read (and then cached), and with summaries
// when asked; entries of messages no longer stored are left out.
func readMeta(md MailboxData, cache *metaCache, address string, es []*pb.MessageEntry, ids []uint64, summaries bool) ([]*pb.MessageEntry, error) {
	known, found, missing := cache.split(ids)
	var sums [][]byte
	if summaries {
		var err error
		if sums, err = md.MessageSummaries(address, ids); err != nil {
			return nil, err
		}
	}
	if summaries {
		// A message without a summary is rare (one whose summary could
		// not be made); one whose summary went with it was expunged
		// meanwhile: the record says which.
		for i, id := range ids {
			if found[i] && sums[i] == nil {
				found[i] = false
				missing = append(missing, id)
			}
		}
	}
	if len(missing) > 0 {
		metas, err := md.MessageMeta(address, missing, false)
		if err != nil {
			return nil, err
		}
		byID := make(map[uint64]storage.MessageMeta, len(metas))
		for _, m := range metas {
			byID[m.ID] = m
			cache.put(m.ID, m.Size, m.CRLFSize, m.Received)
		}
		for i, id := range ids {
			if m, ok := byID[id]; ok && !found[i] {
				known[i], found[i] = messageMeta{size: m.Size, crlfSize: m.CRLFSize, received: m.Received.UnixNano()}, true
			}
		}
	}
	out := es[:0]
	for i, e := range es {
		if !found[i] {
			continue // not stored (expunged meanwhile)
		}
		m := known[i]
		e.Size, e.CrlfSize, e.ReceivedUnixNano = m.size, m.crlfSize, m.received
		if summaries {
			e.Summary = sums[i]
		}
		out = append(out, e)
	}
	return out, nil
}

// appendOp stores a message a client appends (IMAP APPEND, RFC 9051
// §6.3.12): into an existing folder only (TRYCREATE otherwise), within the
// quota (OVERQUOTA, RFC 9208). Its body is inline, or by reference
// (appendref.go).
func (a *accountActor) appendOp(ctx actor.Context, to *actor.PID, md MailboxData, op *pb.MailboxOp) {
	if ref := op.GetBodyRef(); ref != nil {
		a.appendRef(ctx, to, op, ref)
		return
	}
	a.appendBody(ctx, to, op, nil, nil)
}

// appendBody appends op's message: body, or op.Body when body is nil;
// discard (if set) drops a staged body the append did not take.
func (a *accountActor) appendBody(ctx actor.Context, to *actor.PID, op *pb.MailboxOp, body mail.Body, discard func()) {
	cctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	received := time.Time{}
	if op.ReceivedUnixNano != 0 {
		received = time.Unix(0, op.ReceivedUnixNano)
	}
	req := storage.AppendRequest{
		Folder: op.Folder, Raw: op.Body, Flags: op.Flags, Received: received,
		QuotaBytes: a.acct.QuotaBytes, MustExist: true,
	}
	if body != nil {
		req.Raw, req.Body = nil, body
	}
	res, d, err := a.data.AppendAsync(cctx, a.address, req)
	if err != nil {
		if discard != nil {
			discard()
		}
		a.afterDurable(ctx, to, nil, nil, err)
		return
	}
	a.appended(res)
	r := &pb.MailboxReply{Uid: res.UID, UidValidity: res.UIDValidity}
	a.afterDurable(ctx, to, r, d, nil, &notifyChange{folder: res.FolderID, modseq: res.ModSeq})
}

// appended puts a new message (an append, a delivery) into the folder's
// view, if it has one.
func (a *accountActor) appended(res storage.AppendResult) {
	if res.Duplicate || res.UID == 0 {
		return
	}
	v := a.views[res.FolderID]
	if v == nil {
		return
	}
	var id uint64
	_, _ = fmt.Sscan(res.ID, &id)
	v.add(storage.Entry{UID: res.UID, ID: id, ModSeq: res.ModSeq, Flags: res.Flags}, res.ModSeq)
}

func pbFolder(f storage.Folder) *pb.FolderInfo {
	return &pb.FolderInfo{Id: f.ID, Name: f.Name, UidValidity: f.UIDValidity, UidNext: f.UIDNext, Modseq: f.ModSeq,
		SpecialUse: f.SpecialUse, Subscribed: f.Subscribed, Messages: f.Messages, Unseen: f.Unseen, Bytes: f.Bytes}
}

func pbFolderOK(f storage.Folder, err error) *pb.FolderInfo {
	if err != nil {
		return nil
	}
	return pbFolder(f)
}

func pbEntry(e storage.Entry) *pb.MessageEntry {
	return &pb.MessageEntry{Uid: e.UID, Id: e.ID, Modseq: e.ModSeq, Flags: slices.Clone(e.Flags)}
}
