package imap

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/summary"
)

// The commands of the selected state: FETCH, STORE, SEARCH, COPY, MOVE,
// EXPUNGE.

func decodeName(s string) string { return s }

// fetchBatch is how many messages one FETCH asks the owner about at once.
const fetchBatch = 500

// piece is how much of a message one read asks for (the owner's most).
const piece = 256 << 10

func (ss *session) needSelected() (*selection, error) {
	sel := ss.selected()
	if sel == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No mailbox selected"}
	}
	return sel, nil
}

// Fetch is FETCH (RFC 9051 §6.4.5): index data from the client's view,
// sizes, dates and summaries from the owner, bodies read in pieces.
// BODY[] (with a partial range) streams; other sections read only their
// octets, which the summary places (sections.go).
func (ss *session) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	sel, err := ss.needSelected()
	if err != nil {
		return err
	}
	seqs, uids := sel.resolve(set)
	if done, err := ss.fetchFromView(w, sel, seqs, uids, o); done {
		return err
	}
	markSeen := false
	for _, bs := range o.BodySection {
		if !bs.Peek {
			markSeen = true
		}
	}
	if len(o.BinarySection) > 0 {
		markSeen = true
	}
	if markSeen && !sel.readOnly && len(uids) > 0 {
		// RFC 9051 §6.4.5: BODY[] sets \Seen; the FETCH answer then has
		// the flags.
		if err := ss.storeFlags(sel, uids, imap.StoreFlagsAdd, []string{`\Seen`}, nil); err != nil {
			return err
		}
		o.Flags = true
	}
	for start := 0; start < len(uids); start += fetchBatch {
		end := min(start+fetchBatch, len(uids))
		r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_FETCH, FolderId: sel.folder.Id, Uids: uids[start:end],
			Summaries: o.Envelope || o.BodyStructure != nil || needsOffsets(o)})
		if err != nil {
			return err
		}
		byUID := map[uint32]*pb.MessageEntry{}
		for _, e := range r.Entries {
			byUID[e.Uid] = e
		}
		for i := start; i < end; i++ {
			e := byUID[uids[i]]
			if e == nil {
				continue // expunged meanwhile; the client hears it later
			}
			if err := ss.fetchOne(w.CreateMessage(seqs[i]), sel, e, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// needsOffsets: the FETCH asks for a section of a message (not BODY[]
// whole), which the summary's offsets place (sections.go).
func needsOffsets(o *imap.FetchOptions) bool {
	if len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 {
		return true
	}
	for _, bs := range o.BodySection {
		if bs.Specifier != imap.PartSpecifierNone || len(bs.Part) > 0 {
			return true
		}
	}
	return false
}

func (ss *session) fetchOne(rw *imapserver.FetchResponseWriter, sel *selection, e *pb.MessageEntry, o *imap.FetchOptions) error {
	rw.WriteUID(imap.UID(e.Uid))
	if o.Flags {
		sel.mu.Lock()
		flags, _ := sel.flags.get(e.Uid, -1)
		if flags == nil {
			flags = e.Flags
		}
		sel.mu.Unlock()
		rw.WriteFlags(imapFlags(flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(time.Unix(0, e.ReceivedUnixNano))
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(e.Size)
	}
	if o.Envelope && o.BodyStructure == nil {
		env, err := summary.DecodeEnvelope(e.Summary)
		if err != nil {
			env = &imap.Envelope{}
		}
		rw.WriteEnvelope(env)
	} else if o.Envelope || o.BodyStructure != nil {
		s, err := summary.Decode(e.Summary)
		if err != nil {
			s, _ = summary.Decode([]byte("{}"))
		}
		if o.Envelope {
			rw.WriteEnvelope(s.Envelope)
		}
		if o.BodyStructure != nil {
			rw.WriteBodyStructure(s.Body.BodyStructure())
		}
	}
	m := ss.stored(e)
	for _, bs := range o.BodySection {
		if err := ss.writeBodySection(rw, bs, m); err != nil {
			return err
		}
	}
	for _, bs := range o.BinarySection {
		if err := ss.writeBinarySection(rw, bs, m); err != nil {
			return err
		}
	}
	for _, bss := range o.BinarySectionSize {
		n, err := ss.binarySize(m, bss)
		if err != nil {
			return err
		}
		rw.WriteBinarySectionSize(bss, n)
	}
	return rw.Close()
}

// streamBody writes BODY[]<partial> in pieces as they are read.
func (ss *session) streamBody(rw *imapserver.FetchResponseWriter, bs *imap.FetchItemBodySection, id string, size int64) error {
	off, n := int64(0), size
	if p := bs.Partial; p != nil {
		off = min(p.Offset, size)
		n = min(p.Size, size-off)
	}
	wc := rw.WriteBodySection(bs, n)
	for done := int64(0); done < n; {
		ctx, cancel := ss.opCtx()
		// A whole BODY[] is checked whole before its first piece; a
		// partial one reads only its range.
		b, _, err := ss.s.backend.ReadMessage(ctx, ss.loggedIn(), id, off+done, int(min(n-done, piece)), bs.Partial == nil)
		cancel()
		if err != nil {
			// The literal's length is promised: the connection cannot go on.
			ss.s.log.Warn("imap fetch: reading a message failed", "account", ss.loggedIn(), "id", id, "err", err)
			_ = wc.Close()
			return fmt.Errorf("imap: reading message %s: %w", id, err)
		}
		if len(b) == 0 {
			return fmt.Errorf("imap: message %s ended early", id)
		}
		b = b[:min(int64(len(b)), n-done)]
		if _, err := wc.Write(b); err != nil {
			return err
		}
		done += int64(len(b))
	}
	return wc.Close()
}

// readAll reads a whole message.
func (ss *session) readAll(id string, size int64) ([]byte, error) {
	out := make([]byte, 0, size)
	for int64(len(out)) < size {
		ctx, cancel := ss.opCtx()
		b, _, err := ss.s.backend.ReadMessage(ctx, ss.loggedIn(), id, int64(len(out)), piece, true)
		cancel()
		if err != nil {
			return nil, imapError(err)
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

func storeOp(op imap.StoreFlagsOp) int32 {
	switch op {
	case imap.StoreFlagsAdd:
		return 1
	case imap.StoreFlagsDel:
		return 2
	}
	return 0
}

// storeFlags changes flags at the owner and takes the answer into the
// view (not told again as an update: the session made the change).
func (ss *session) storeFlags(sel *selection, uids []uint32, op imap.StoreFlagsOp, flags []string, after func(uid uint32, flags []string)) error {
	for start := 0; start < len(uids); start += fetchBatch {
		end := min(start+fetchBatch, len(uids))
		r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_STORE, FolderId: sel.folder.Id, Uids: uids[start:end], StoreOp: storeOp(op), Flags: flags})
		if err != nil {
			return err
		}
		sel.mu.Lock()
		for _, e := range r.Entries {
			sel.flags.set(e.Uid, e.Flags)
			sel.own[e.Uid] = e.Modseq
		}
		sel.mu.Unlock()
		if after != nil {
			for _, e := range r.Entries {
				after(e.Uid, e.Flags)
			}
		}
	}
	return nil
}

// Store is STORE (RFC 9051 §6.4.6); the OK comes once durable.
func (ss *session) Store(w *imapserver.FetchWriter, set imap.NumSet, f *imap.StoreFlags, _ *imap.StoreOptions) error {
	sel, err := ss.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The mailbox is read-only (EXAMINE)"}
	}
	seqs, uids := sel.resolve(set)
	seqOf := map[uint32]uint32{}
	for i, u := range uids {
		seqOf[u] = seqs[i]
	}
	var flags []string
	for _, x := range f.Flags {
		flags = append(flags, string(x))
	}
	return ss.storeFlags(sel, uids, f.Op, flags, func(uid uint32, fl []string) {
		if f.Silent {
			return
		}
		rw := w.CreateMessage(seqOf[uid])
		rw.WriteUID(imap.UID(uid))
		rw.WriteFlags(imapFlags(fl))
		_ = rw.Close()
	})
}

// Expunge is EXPUNGE and UID EXPUNGE (RFC 4315 §2.1).
func (ss *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel, err := ss.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The mailbox is read-only (EXAMINE)"}
	}
	op := &pb.MailboxOp{Kind: pb.MailboxOp_EXPUNGE, FolderId: sel.folder.Id, All: uids == nil}
	if uids != nil {
		_, op.Uids = sel.resolve(*uids)
		if len(op.Uids) == 0 {
			return nil
		}
	}
	r, err := ss.op(op)
	if err != nil {
		return err
	}
	return sel.expunged(r.Expunged, w.WriteExpunge)
}

// expunged removes uids from the view, telling the client each.
func (sel *selection) expunged(uids []uint32, write func(uint32) error) error {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	for i := len(uids) - 1; i >= 0; i-- {
		seq := sel.seqOf(uids[i])
		if seq == 0 {
			continue
		}
		sel.uids = append(sel.uids[:seq-1], sel.uids[seq:]...)
		delete(sel.gone, uids[i])
		sel.flags.remove(uids[i])
		if err := write(seq); err != nil {
			return err
		}
	}
	return nil
}

// Copy is COPY (RFC 9051 §6.4.7) with COPYUID (RFC 4315).
func (ss *session) Copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	sel, err := ss.needSelected()
	if err != nil {
		return nil, err
	}
	_, uids := sel.resolve(set)
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_COPY, FolderId: sel.folder.Id, Uids: uids, Folder: dest})
	if err != nil {
		return nil, tryCreate(err)
	}
	return copyData(r), nil
}

func tryCreate(err error) error {
	if ie, ok := err.(*imap.Error); ok && ie.Code == imap.ResponseCodeNonExistent {
		ie.Code = imap.ResponseCodeTryCreate
	}
	return err
}

func copyData(r *pb.MailboxReply) *imap.CopyData {
	d := &imap.CopyData{UIDValidity: r.UidValidity}
	for i := range r.SourceUids {
		d.SourceUIDs.AddNum(imap.UID(r.SourceUids[i]))
		d.DestUIDs.AddNum(imap.UID(r.DestUids[i]))
	}
	return d
}

// Move is MOVE (RFC 6851): COPYUID first, then the expunges.
func (ss *session) Move(w *imapserver.MoveWriter, set imap.NumSet, dest string) error {
	sel, err := ss.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The mailbox is read-only (EXAMINE)"}
	}
	_, uids := sel.resolve(set)
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_MOVE, FolderId: sel.folder.Id, Uids: uids, Folder: dest})
	if err != nil {
		return tryCreate(err)
	}
	if err := w.WriteCopyData(copyData(r)); err != nil {
		return err
	}
	return sel.expunged(r.SourceUids, w.WriteExpunge)
}

// Search is SEARCH and UID SEARCH (RFC 9051 §6.4.4): flags, dates and
// sizes from the index and the owner; headers from the summary or the
// message's header; BODY and TEXT read the message.
func (ss *session) Search(kind imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	sel, err := ss.needSelected()
	if err != nil {
		return nil, err
	}
	sel.mu.Lock()
	uids := append([]uint32(nil), sel.uids...)
	sel.mu.Unlock()
	m := &matcher{ss: ss, sel: sel, needMeta: needsMeta(c), needText: needsText(c)}
	data := &imap.SearchData{}
	var seqSet imap.SeqSet
	var uidSet imap.UIDSet
	for start := 0; start < len(uids); start += fetchBatch {
		end := min(start+fetchBatch, len(uids))
		metas := map[uint32]*pb.MessageEntry{}
		if m.needMeta {
			r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_FETCH, FolderId: sel.folder.Id, Uids: uids[start:end], Summaries: true})
			if err != nil {
				return nil, err
			}
			for _, e := range r.Entries {
				metas[e.Uid] = e
			}
		}
		for i := start; i < end; i++ {
			u, seq := uids[i], uint32(i+1)
			ok, err := m.match(c, seq, u, metas[u])
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			uidSet.AddNum(imap.UID(u))
			seqSet.AddNum(seq)
			num := seq
			if kind == imapserver.NumKindUID {
				num = u
			}
			if data.Min == 0 || num < data.Min {
				data.Min = num
			}
			data.Max = max(data.Max, num)
			data.Count++
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if o != nil && o.ReturnSave {
		sel.mu.Lock()
		sel.searched = uidSet
		sel.mu.Unlock()
	}
	return data, nil
}

type matcher struct {
	ss                 *session
	sel                *selection
	needMeta, needText bool
}

func needsMeta(c *imap.SearchCriteria) bool {
	if !c.Since.IsZero() || !c.Before.IsZero() || !c.SentSince.IsZero() || !c.SentBefore.IsZero() ||
		len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || c.Larger > 0 || c.Smaller > 0 {
		return true
	}
	for i := range c.Not {
		if needsMeta(&c.Not[i]) {
			return true
		}
	}
	for _, o := range c.Or {
		if needsMeta(&o[0]) || needsMeta(&o[1]) {
			return true
		}
	}
	return false
}

func needsText(c *imap.SearchCriteria) bool {
	if len(c.Body) > 0 || len(c.Text) > 0 || len(c.Header) > 0 {
		return true
	}
	for i := range c.Not {
		if needsText(&c.Not[i]) {
			return true
		}
	}
	for _, o := range c.Or {
		if needsText(&o[0]) || needsText(&o[1]) {
			return true
		}
	}
	return false
}

func day(t time.Time) time.Time { y, m, d := t.Date(); return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func (m *matcher) match(c *imap.SearchCriteria, seq, uid uint32, e *pb.MessageEntry) (bool, error) {
	for _, s := range c.SeqNum {
		_, in := m.sel.resolve(s)
		if !containsU(in, uid) {
			return false, nil
		}
	}
	for _, s := range c.UID {
		_, in := m.sel.resolve(s)
		if !containsU(in, uid) {
			return false, nil
		}
	}
	m.sel.mu.Lock()
	flags, _ := m.sel.flags.get(uid, -1)
	m.sel.mu.Unlock()
	for _, f := range c.Flag {
		if !hasFlag(flags, string(f)) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(flags, string(f)) {
			return false, nil
		}
	}
	if m.needMeta && e == nil {
		return false, nil
	}
	if e != nil {
		internal := day(time.Unix(0, e.ReceivedUnixNano))
		if !c.Since.IsZero() && internal.Before(day(c.Since)) {
			return false, nil
		}
		if !c.Before.IsZero() && !internal.Before(day(c.Before)) {
			return false, nil
		}
		if c.Larger > 0 && e.Size <= c.Larger {
			return false, nil
		}
		if c.Smaller > 0 && e.Size >= c.Smaller {
			return false, nil
		}
		if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
			s, _ := summary.Decode(e.Summary)
			sent := day(s.Envelope.Date)
			if !c.SentSince.IsZero() && sent.Before(day(c.SentSince)) {
				return false, nil
			}
			if !c.SentBefore.IsZero() && !sent.Before(day(c.SentBefore)) {
				return false, nil
			}
		}
		if len(c.Header) > 0 && len(c.Body)+len(c.Text) == 0 {
			// The header only, where the summary places it.
			head, err := m.header(e)
			if err != nil {
				return false, err
			}
			for _, h := range c.Header {
				if !headerContains(head, h.Key, h.Value) {
					return false, nil
				}
			}
		} else if len(c.Header)+len(c.Body)+len(c.Text) > 0 {
			raw, err := m.ss.readAll(fmt.Sprint(e.Id), e.Size)
			if err != nil {
				return false, err
			}
			head, body := splitHeader(raw)
			for _, h := range c.Header {
				if !headerContains(head, h.Key, h.Value) {
					return false, nil
				}
			}
			for _, s := range c.Body {
				if !containsFold(body, s) {
					return false, nil
				}
			}
			for _, s := range c.Text {
				if !containsFold(raw, s) {
					return false, nil
				}
			}
		}
	}
	for i := range c.Not {
		ok, err := m.match(&c.Not[i], seq, uid, e)
		if err != nil || ok {
			return false, err
		}
	}
	for _, o := range c.Or {
		a, err := m.match(&o[0], seq, uid, e)
		if err != nil {
			return false, err
		}
		if !a {
			b, err := m.match(&o[1], seq, uid, e)
			if err != nil || !b {
				return false, err
			}
		}
	}
	return true, nil
}

// header reads a message's header section (all of it, as the summary
// places it; the first maxHeaderRead octets of a larger one).
func (m *matcher) header(e *pb.MessageEntry) ([]byte, error) {
	sm := m.ss.stored(e)
	s, err := sm.summary()
	if err != nil {
		return nil, err
	}
	start, end, ok := s.Section(nil, imap.PartSpecifierHeader)
	if !ok {
		raw, err := m.ss.readAll(sm.id, sm.size)
		head, _ := splitHeader(raw)
		return head, err
	}
	return sm.readRange(start, min(end, start+maxHeaderRead))
}

func containsU(s []uint32, u uint32) bool {
	for _, x := range s {
		if x == u {
			return true
		}
	}
	return false
}

func splitHeader(raw []byte) (head, body []byte) {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2], raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[:i+1], raw[i+2:]
	}
	return raw, nil
}

func containsFold(b []byte, s string) bool {
	return bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(s)))
}

// headerContains: RFC 9051 §6.4.4 HEADER: the field exists and its value
// contains the string (an empty string matches any such field).
func headerContains(head []byte, key, value string) bool {
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	var fields []string
	for _, l := range lines {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += l
			continue
		}
		fields = append(fields, l)
	}
	for _, f := range fields {
		name, v, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), key) && strings.Contains(strings.ToLower(v), strings.ToLower(value)) {
			return true
		}
	}
	return false
}

var _ = io.EOF
