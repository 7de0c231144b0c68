package actors

import (
	"slices"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/storage"
)

// folderView is the index of one folder in the account actor's memory,
// with the log of its recent changes: SELECT copies it, SYNC since a
// MODSEQ answers from the log, or with the whole index when the log does
// not reach back that far (the session then compares). The actor is its
// only user.
type folderView struct {
	entries []storage.Entry // by UID
	modseq  uint64          // the folder's MODSEQ
	log     []change        // by modseq
	floor   uint64          // the log covers the changes after floor
	pack    *packedIndex    // entries packed for SELECT; nil after a change
}

// packedIndex is a view's index as SELECT answers it packed
// (pb.MailboxReply.index_uids): built once for a state of the view and
// shared, read-only, by every reply until the view changes, so fifty
// sessions selecting a 100,000-message folder at once cost one pass.
type packedIndex struct {
	uids, flags []uint32
	sets        []*pb.FlagSet
}

// packed is the view's index packed.
func (v *folderView) packed() *packedIndex {
	if v.pack != nil {
		return v.pack
	}
	p := &packedIndex{uids: make([]uint32, len(v.entries)), flags: make([]uint32, len(v.entries))}
	byKey := map[string]uint32{}
	var key []byte
	for i, e := range v.entries {
		p.uids[i] = e.UID
		key = key[:0]
		for _, f := range e.Flags {
			key = append(append(key, f...), 0)
		}
		n, ok := byKey[string(key)]
		if !ok {
			n = uint32(len(p.sets))
			byKey[string(key)] = n
			p.sets = append(p.sets, &pb.FlagSet{Flags: e.Flags})
		}
		p.flags[i] = n
	}
	v.pack = p
	return p
}

// change is one entry of the log: a message's flags changed or it came
// (its entry holds the rest), or it was expunged.
type change struct {
	modseq   uint64
	uid      uint32
	expunged bool
}

// maxLog bounds a view's log; older changes answer with the whole index.
const maxLog = 4096

func newFolderView(es []storage.Entry, modseq uint64) *folderView {
	return &folderView{entries: es, modseq: modseq, floor: modseq}
}

func (v *folderView) find(uid uint32) (int, bool) {
	return slices.BinarySearchFunc(v.entries, uid, func(e storage.Entry, u uint32) int {
		switch {
		case e.UID < u:
			return -1
		case e.UID > u:
			return 1
		}
		return 0
	})
}

func (v *folderView) get(uid uint32) (storage.Entry, bool) {
	i, ok := v.find(uid)
	if !ok {
		return storage.Entry{}, false
	}
	return v.entries[i], true
}

func (v *folderView) record(c change) {
	v.pack = nil
	v.log = append(v.log, c)
	if len(v.log) > maxLog {
		drop := len(v.log) - maxLog/2
		v.floor = v.log[drop-1].modseq
		v.log = append([]change(nil), v.log[drop:]...)
	}
	v.modseq = max(v.modseq, c.modseq)
}

func (v *folderView) add(e storage.Entry, modseq uint64) {
	i, ok := v.find(e.UID)
	if ok {
		v.entries[i] = e
	} else {
		v.entries = slices.Insert(v.entries, i, e)
	}
	v.record(change{modseq: modseq, uid: e.UID})
}

func (v *folderView) stored(es []storage.Entry) {
	for _, e := range es {
		i, ok := v.find(e.UID)
		if !ok || v.entries[i].ModSeq == e.ModSeq {
			continue
		}
		v.entries[i] = e
		v.record(change{modseq: e.ModSeq, uid: e.UID})
	}
}

func (v *folderView) expunged(uids []uint32, modseq uint64) {
	for _, uid := range uids {
		if i, ok := v.find(uid); ok {
			v.entries = slices.Delete(v.entries, i, i+1)
		}
		v.record(change{modseq: modseq, uid: uid, expunged: true})
	}
}

func (v *folderView) all() []*pb.MessageEntry {
	out := make([]*pb.MessageEntry, len(v.entries))
	for i, e := range v.entries {
		out[i] = pbEntry(e)
	}
	return out
}

// since returns what changed after modseq: the entries that changed or
// came, and the UIDs expunged; full when the log does not reach back, and
// then entries is the whole index.
func (v *folderView) since(modseq uint64) (entries []*pb.MessageEntry, expunged []uint32, full bool) {
	if modseq < v.floor {
		return v.all(), nil, true
	}
	i, _ := slices.BinarySearchFunc(v.log, modseq+1, func(c change, m uint64) int {
		switch {
		case c.modseq < m:
			return -1
		case c.modseq > m:
			return 1
		}
		return 0
	})
	seen := map[uint32]bool{}
	for j := len(v.log) - 1; j >= i; j-- {
		c := v.log[j]
		if seen[c.uid] {
			continue
		}
		seen[c.uid] = true
		if e, ok := v.get(c.uid); ok && !c.expunged {
			entries = append(entries, pbEntry(e))
		} else {
			expunged = append(expunged, c.uid)
		}
	}
	slices.SortFunc(entries, func(a, b *pb.MessageEntry) int { return int(a.Uid) - int(b.Uid) })
	slices.Sort(expunged)
	return entries, expunged, false
}
