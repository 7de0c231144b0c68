package imap

import (
	"errors"
	"slices"

	"github.com/homing-mail/homing/actors/pb"
)

// flagIndex is the flags of the messages of a selection: the index SELECT
// answered (packed by the owner, and on the owner's node shared read-only
// by every session that selected the folder in the same state), and what
// changed since in a small map. A session on a 100,000-message folder then
// holds two arrays it did not build, not a map entry per message (which
// was most of SELECT's time, and of the memory of fifty such sessions).
type flagIndex struct {
	uids  []uint32 // ascending; read-only (shared)
	flags []uint32 // flags of uids[i]: sets[flags[i]]
	sets  [][]string
	over  map[uint32]override
}

// override is a change since SELECT: new flags, or the message is gone.
type override struct {
	flags []string
	gone  bool
}

// newFlagIndex takes the index of a SELECT answer: packed, or (from an
// owner that does not pack) as entries.
func newFlagIndex(r *pb.MailboxReply) (*flagIndex, error) {
	x := &flagIndex{over: map[uint32]override{}}
	if len(r.Entries) == 0 {
		x.uids, x.flags = r.IndexUids, r.IndexFlags
		x.sets = make([][]string, len(r.FlagSets))
		for i, s := range r.FlagSets {
			x.sets[i] = s.Flags
		}
		if len(x.flags) != len(x.uids) || !x.valid() {
			return nil, errors.New("imap: the owner's answer to SELECT has an index that does not add up")
		}
		return x, nil
	}
	x.uids, x.flags = make([]uint32, len(r.Entries)), make([]uint32, len(r.Entries))
	for i, e := range r.Entries {
		x.uids[i], x.flags[i] = e.Uid, uint32(len(x.sets))
		x.sets = append(x.sets, e.Flags)
	}
	return x, nil
}

func (x *flagIndex) valid() bool {
	for _, f := range x.flags {
		if int(f) >= len(x.sets) {
			return false
		}
	}
	return true
}

// get returns the flags of uid; hint is where uid may be in the packed
// index (its position in the client's view; a wrong hint costs a search).
func (x *flagIndex) get(uid uint32, hint int) ([]string, bool) {
	if o, ok := x.over[uid]; ok {
		return o.flags, !o.gone
	}
	if hint >= 0 && hint < len(x.uids) && x.uids[hint] == uid {
		return x.sets[x.flags[hint]], true
	}
	i, ok := slices.BinarySearch(x.uids, uid)
	if !ok {
		return nil, false
	}
	return x.sets[x.flags[i]], true
}

func (x *flagIndex) set(uid uint32, flags []string) {
	x.over[uid] = override{flags: flags}
}

func (x *flagIndex) remove(uid uint32) {
	if _, ok := slices.BinarySearch(x.uids, uid); ok {
		x.over[uid] = override{gone: true}
	} else {
		delete(x.over, uid)
	}
}
