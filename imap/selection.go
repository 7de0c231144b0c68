package imap

import (
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/homing-mail/homing/actors/pb"
)

// selection is the client's view of the selected folder (RFC 9051 §2.3.1:
// sequence numbers are the client's; they change only when the client is
// told, with EXISTS and EXPUNGE). uids is that view; what the owner
// reported since (new messages, flag changes, expunges) waits in the
// pending fields until flush tells the client.
type selection struct {
	mu       sync.Mutex
	folder   *pb.FolderInfo
	readOnly bool
	uids     []uint32 // by sequence number - 1
	flags    *flagIndex
	modseq   uint64
	synced   time.Time

	gone     map[uint32]bool // expunged at the owner, not told yet
	arrived  []uint32        // new at the owner, not told yet (ascending)
	changed  []uint32        // flags changed, not told yet
	own      map[uint32]uint64
	searched imap.UIDSet // SEARCHRES (RFC 5182)
}

func newSelection(r *pb.MailboxReply, readOnly bool) (*selection, error) {
	flags, err := newFlagIndex(r)
	if err != nil {
		return nil, err
	}
	sel := &selection{folder: r.Folder, readOnly: readOnly, modseq: r.Modseq, synced: time.Now(),
		flags: flags, gone: map[uint32]bool{}, own: map[uint32]uint64{}}
	sel.uids = slices.Clone(flags.uids) // the view changes; the index is shared
	return sel, nil
}

func (sel *selection) selectData(r *pb.MailboxReply) *imap.SelectData {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	flags := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	d := &imap.SelectData{
		Flags:          flags,
		PermanentFlags: append(slices.Clone(flags), imap.FlagWildcard),
		NumMessages:    uint32(len(sel.uids)),
		UIDNext:        imap.UID(r.Folder.UidNext),
		UIDValidity:    r.Folder.UidValidity,
		HighestModSeq:  r.Folder.Modseq,
	}
	if sel.readOnly {
		d.PermanentFlags = nil
	}
	for i, u := range sel.uids {
		if f, _ := sel.flags.get(u, i); !hasFlag(f, `\Seen`) {
			d.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return d
}

func hasFlag(fs []string, f string) bool {
	for _, x := range fs {
		if equalFold(x, f) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

func imapFlags(fs []string) []imap.Flag {
	out := make([]imap.Flag, len(fs))
	for i, f := range fs {
		out[i] = imap.Flag(f)
	}
	return out
}

// seqOf is the sequence number of uid in the client's view (0: none).
func (sel *selection) seqOf(uid uint32) uint32 {
	i, ok := slices.BinarySearch(sel.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// apply takes the owner's answer to SYNC.
func (sel *selection) apply(r *pb.MailboxReply) {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	sel.synced = time.Now()
	last := uint32(0)
	if n := len(sel.uids); n > 0 {
		last = sel.uids[n-1]
	}
	if n := len(sel.arrived); n > 0 {
		last = max(last, sel.arrived[n-1])
	}
	if r.Full {
		present := map[uint32]bool{}
		for _, e := range r.Entries {
			present[e.Uid] = true
		}
		for _, u := range sel.uids {
			if !present[u] {
				sel.gone[u] = true
			}
		}
		sel.arrived = slices.DeleteFunc(sel.arrived, func(u uint32) bool { return !present[u] })
	}
	for _, u := range r.Expunged {
		if sel.seqOf(u) != 0 {
			sel.gone[u] = true
		}
		if i, ok := slices.BinarySearch(sel.arrived, u); ok {
			sel.arrived = slices.Delete(sel.arrived, i, i+1)
		}
	}
	for _, e := range r.Entries {
		switch {
		case e.Uid > last:
			sel.arrived = append(sel.arrived, e.Uid)
			last = e.Uid
			sel.flags.set(e.Uid, e.Flags)
		case sel.seqOf(e.Uid) != 0 && !sel.gone[e.Uid]:
			if f, _ := sel.flags.get(e.Uid, -1); sel.own[e.Uid] == e.Modseq || sameFlags(f, e.Flags) {
				continue
			}
			sel.flags.set(e.Uid, e.Flags)
			sel.changed = append(sel.changed, e.Uid)
		}
	}
	sel.modseq = max(sel.modseq, r.Modseq)
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !hasFlag(b, f) {
			return false
		}
	}
	return true
}

// flush tells the client what is pending: flag changes, then (when
// allowed) expunges, then new messages (EXISTS).
func (sel *selection) flush(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	changed := sel.changed
	sel.changed = nil
	slices.Sort(changed)
	for _, u := range slices.Compact(changed) {
		if seq := sel.seqOf(u); seq != 0 && !sel.gone[u] {
			f, _ := sel.flags.get(u, int(seq)-1)
			if err := w.WriteMessageFlags(seq, imap.UID(u), imapFlags(f)); err != nil {
				return err
			}
		}
	}
	if allowExpunge && len(sel.gone) > 0 {
		// Highest first, so every number told is still right.
		for i := len(sel.uids) - 1; i >= 0; i-- {
			u := sel.uids[i]
			if !sel.gone[u] {
				continue
			}
			sel.uids = slices.Delete(sel.uids, i, i+1)
			delete(sel.gone, u)
			sel.flags.remove(u)
			delete(sel.own, u)
			if err := w.WriteExpunge(uint32(i + 1)); err != nil {
				return err
			}
		}
	}
	if len(sel.arrived) > 0 {
		sel.uids = append(sel.uids, sel.arrived...)
		sel.arrived = nil
		if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns a sequence or UID set into the (seq, uid) pairs of the
// client's view, in ascending order; "*" is the last message (RFC 9051
// §9, seq-number), "$" the saved search result (RFC 5182).
func (sel *selection) resolve(set imap.NumSet) (seqs, uids []uint32) {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return sel.resolveLocked(set)
}

func (sel *selection) resolveLocked(set imap.NumSet) (seqs, uids []uint32) {
	if imap.IsSearchRes(set) {
		set = sel.searched
	}
	n := uint32(len(sel.uids))
	switch s := set.(type) {
	case imap.SeqSet:
		for _, r := range s {
			start, stop := r.Start, r.Stop
			if start == 0 {
				start = n
			}
			if stop == 0 {
				stop = n
			}
			if start > stop {
				start, stop = stop, start
			}
			for q := start; q <= min(stop, n) && q >= 1; q++ {
				seqs = append(seqs, q)
			}
		}
	case imap.UIDSet:
		maxUID := uint32(0)
		if n > 0 {
			maxUID = sel.uids[n-1]
		}
		for i, u := range sel.uids {
			for _, r := range s {
				start, stop := uint32(r.Start), uint32(r.Stop)
				if start == 0 {
					start = maxUID
				}
				if stop == 0 {
					stop = maxUID
				}
				if start > stop {
					start, stop = stop, start
				}
				if u >= start && u <= stop {
					seqs = append(seqs, uint32(i+1))
					break
				}
			}
		}
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	for _, q := range seqs {
		uids = append(uids, sel.uids[q-1])
	}
	return seqs, uids
}
