package storage

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// jsonFolder is f's record in the JSON form written before the binary one.
func jsonFolder(f Folder) []byte {
	v, _ := json.Marshal(folderRecord{Name: f.Name, UIDValidity: f.UIDValidity, UIDNext: f.UIDNext, ModSeq: f.ModSeq,
		SpecialUse: f.SpecialUse, Subscribed: f.Subscribed, Messages: f.Messages, Unseen: f.Unseen, Bytes: f.Bytes})
	return v
}

func TestFolderRecordRoundTrip(t *testing.T) {
	for _, f := range []Folder{
		{ID: 1, Name: Inbox, UIDValidity: 1, UIDNext: 1, ModSeq: 1, Subscribed: true},
		{ID: 7, Name: "Archiv/2026/Müller", UIDValidity: 1<<32 - 1, UIDNext: 1<<32 - 1, ModSeq: 1<<64 - 1,
			SpecialUse: `\Archive`, Messages: 1 << 40, Unseen: 3, Bytes: 1 << 62},
		{ID: 2, Name: "", UIDValidity: 0, UIDNext: 0},
	} {
		got, err := decodeFolder(f.ID, encodeFolder(f))
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("decoded %+v, encoded %+v", got, f)
		}
	}
}

// A damaged record is an error wrapping ErrDamaged, never a folder read
// as empty: every prefix of a record, octets after its end, an unknown
// form, unknown flags.
func TestDamagedFolderRecordIsAnError(t *testing.T) {
	v := encodeFolder(Folder{ID: 3, Name: "Lists", UIDValidity: 9, UIDNext: 300, ModSeq: 1000, Messages: 299, Bytes: 1 << 20})
	bad := [][]byte{append(append([]byte(nil), v...), 0), {0x02, 1, 1}, {'x'}, {}}
	for i := range v {
		bad = append(bad, v[:i])
	}
	flags := append([]byte(nil), v...)
	// The flags octet follows the six numbers, before the two lengths
	// and strings: where it is in the same record without them.
	n := len(encodeFolder(Folder{UIDValidity: 9, UIDNext: 300, ModSeq: 1000, Messages: 299, Bytes: 1 << 20})) - 3
	flags[n] = 0x02
	bad = append(bad, flags, []byte(`{"name": 7}`))
	for _, b := range bad {
		if f, err := decodeFolder(3, b); !errors.Is(err, ErrDamaged) {
			t.Errorf("record %q: %+v, %v; want ErrDamaged", b, f, err)
		}
	}
}

// Folder records written as JSON, before the binary form, are read as
// they were, and an append rewrites its folder's record in the new form.
func TestFolderRecordsWrittenAsJSONAreStillRead(t *testing.T) {
	ctx := context.Background()
	s, root := openTestStore(t)
	p, err := s.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(1, testPartitions, 0, "legacy")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: one\r\n\r\n1\r\n")}); err != nil {
		t.Fatal(err)
	}
	want, err := p.Folders(acct)
	if err != nil || len(want) < 2 {
		t.Fatalf("folders %+v, %v", want, err)
	}
	var b Batch
	for _, f := range want {
		b.Set(folderKey(acct, f.ID), jsonFolder(f))
	}
	if err := p.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	s, p = reopenPartition(t, s, p, root, 1)
	raw, err := p.db.Get(folderKey(acct, want[0].ID))
	if err != nil || len(raw) == 0 || raw[0] != '{' {
		t.Fatalf("the record is not the JSON written: %q, %v", raw, err)
	}
	got, err := p.Folders(acct)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("folders read from JSON records:\n%+v, %v\nwant %+v", got, err, want)
	}
	res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: two\r\n\r\n2\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := p.Folder(acct, Inbox)
	if err != nil || inbox.Messages != 2 || res.UID != 2 {
		t.Fatalf("INBOX after an append %+v (uid %d), %v", inbox, res.UID, err)
	}
	if raw, _ = p.db.Get(folderKey(acct, inbox.ID)); len(raw) == 0 || raw[0] != folderRecordV1 {
		t.Fatalf("the appended folder's record is not in the binary form: %q", raw)
	}
}

func FuzzDecodeFolder(f *testing.F) {
	f.Add(encodeFolder(Folder{Name: Inbox, UIDValidity: 5, UIDNext: 9, ModSeq: 12, Subscribed: true}))
	f.Add([]byte(`{"name":"INBOX","uidValidity":1,"uidNext":2,"modSeq":3,"messages":1,"unseen":1,"bytes":10}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decodeFolder(4, v)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("%q: %v, not ErrDamaged", v, err)
			}
			return
		}
		again, err := decodeFolder(4, encodeFolder(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%+v encoded and decoded: %+v, %v", got, again, err)
		}
	})
}

// The two forms side by side (the record of a folder with mail in it).
func BenchmarkDecodeFolder(b *testing.B) {
	f := Folder{ID: 1, Name: Inbox, UIDValidity: 1764700000, UIDNext: 4812, ModSeq: 90211, Subscribed: true,
		Messages: 4811, Unseen: 12, Bytes: 81234567}
	js := jsonFolder(f)
	for _, c := range []struct {
		name string
		v    []byte
	}{{"json", js}, {"binary", encodeFolder(f)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeFolder(1, c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
