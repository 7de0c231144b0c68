package imap

import (
	"slices"
	"testing"

	"github.com/homing-mail/homing/actors/pb"
)

// TestFlagIndexPackedAndChanged: the flags of a packed SELECT answer are
// found by UID with a right or wrong position hint; changes and removals
// since override them; an answer as entries (an owner that does not
// pack) reads the same; an index that does not add up is an error.
func TestFlagIndexPackedAndChanged(t *testing.T) {
	seen, none := &pb.FlagSet{Flags: []string{`\Seen`}}, &pb.FlagSet{}
	packed := &pb.MailboxReply{IndexUids: []uint32{2, 5, 9}, IndexFlags: []uint32{0, 1, 0}, FlagSets: []*pb.FlagSet{seen, none}}
	entries := &pb.MailboxReply{Entries: []*pb.MessageEntry{{Uid: 2, Flags: []string{`\Seen`}}, {Uid: 5}, {Uid: 9, Flags: []string{`\Seen`}}}}
	for name, r := range map[string]*pb.MailboxReply{"packed": packed, "entries": entries} {
		x, err := newFlagIndex(r)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range [][]string{{`\Seen`}, nil, {`\Seen`}} {
			u := []uint32{2, 5, 9}[i]
			for _, hint := range []int{i, -1, 2 - i, 100} {
				if got, ok := x.get(u, hint); !ok || !slices.Equal(got, want) {
					t.Fatalf("%s: uid %d hint %d: %v %v, want %v", name, u, hint, got, ok, want)
				}
			}
		}
		if _, ok := x.get(3, 1); ok {
			t.Fatalf("%s: uid 3 found", name)
		}
		x.set(5, []string{`\Flagged`})
		x.set(10, []string{`\Draft`})
		x.remove(2)
		x.remove(10)
		if got, ok := x.get(5, 1); !ok || !slices.Equal(got, []string{`\Flagged`}) {
			t.Fatalf("%s: changed uid 5: %v %v", name, got, ok)
		}
		if _, ok := x.get(2, 0); ok {
			t.Fatalf("%s: removed uid 2 found", name)
		}
		if _, ok := x.get(10, -1); ok {
			t.Fatalf("%s: removed uid 10 found", name)
		}
	}
	bad := &pb.MailboxReply{IndexUids: []uint32{1, 2}, IndexFlags: []uint32{0, 3}, FlagSets: []*pb.FlagSet{seen}}
	if _, err := newFlagIndex(bad); err == nil {
		t.Fatal("an index pointing past its flag sets was taken")
	}
	if _, err := newFlagIndex(&pb.MailboxReply{IndexUids: []uint32{1}}); err == nil {
		t.Fatal("an index without flags was taken")
	}
}
