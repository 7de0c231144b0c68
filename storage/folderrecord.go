package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// A folder record (g/<addr>\0<fid>) is rewritten by every append to its
// folder and read, with its account's other folders, whenever an account
// actor starts cold: with 100,000 accounts that is every delivery, and
// decoding the records as JSON was 39 us of a delivery's 1,260 (six
// folders each). They are written in this binary form, version 1:
//
//	0x01
//	uvarint UIDValidity, UIDNext, ModSeq
//	varint  Messages, Unseen, Bytes
//	byte    flags (bit 0: Subscribed; the others must be 0)
//	uvarint len(Name), Name, uvarint len(SpecialUse), SpecialUse
//
// Records written before are JSON (they begin with '{') and are read as
// they are; any other first octet, a record cut short or one with octets
// after its end is damaged (ErrDamaged), never a folder read as empty.
const folderRecordV1 = 0x01

// maxFolderNameBytes bounds a decoded name: a damaged length is an error,
// not a huge allocation.
const maxFolderNameBytes = 64 << 10

func encodeFolder(f Folder) []byte {
	b := make([]byte, 0, 24+len(f.Name)+len(f.SpecialUse))
	b = append(b, folderRecordV1)
	b = binary.AppendUvarint(b, uint64(f.UIDValidity))
	b = binary.AppendUvarint(b, uint64(f.UIDNext))
	b = binary.AppendUvarint(b, f.ModSeq)
	b = binary.AppendVarint(b, f.Messages)
	b = binary.AppendVarint(b, f.Unseen)
	b = binary.AppendVarint(b, f.Bytes)
	var flags byte
	if f.Subscribed {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(f.Name)))
	b = append(b, f.Name...)
	b = binary.AppendUvarint(b, uint64(len(f.SpecialUse)))
	return append(b, f.SpecialUse...)
}

// decodeFolder reads the record of folder id, of either form.
func decodeFolder(id uint32, v []byte) (Folder, error) {
	if len(v) > 0 && v[0] == '{' {
		var r folderRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return Folder{}, fmt.Errorf("storage: folder record %d: %w: %v", id, ErrDamaged, err)
		}
		return folderFrom(id, r), nil
	}
	d := folderDecoder{v: v}
	if d.byte() != folderRecordV1 {
		return Folder{}, fmt.Errorf("storage: folder record %d of an unknown form: %w", id, ErrDamaged)
	}
	f := Folder{ID: id}
	validity, next := d.uvarint(), d.uvarint()
	if validity > 1<<32-1 || next > 1<<32-1 {
		d.fail()
	}
	f.UIDValidity, f.UIDNext = uint32(validity), uint32(next)
	f.ModSeq = d.uvarint()
	f.Messages, f.Unseen, f.Bytes = d.varint(), d.varint(), d.varint()
	flags := d.byte()
	if flags&^1 != 0 {
		d.fail()
	}
	f.Subscribed = flags&1 != 0
	f.Name, f.SpecialUse = d.string(), d.string()
	if d.bad || len(d.v) != 0 {
		return Folder{}, fmt.Errorf("storage: folder record %d: %w", id, ErrDamaged)
	}
	return f, nil
}

// folderDecoder reads a record's fields; after the first field cut short
// or out of range, bad is set and every read gives zero.
type folderDecoder struct {
	v   []byte
	bad bool
}

func (d *folderDecoder) fail() { d.bad, d.v = true, nil }

func (d *folderDecoder) byte() byte {
	if len(d.v) == 0 {
		d.fail()
		return 0
	}
	c := d.v[0]
	d.v = d.v[1:]
	return c
}

func (d *folderDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.v)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.v = d.v[n:]
	return x
}

func (d *folderDecoder) varint() int64 {
	x, n := binary.Varint(d.v)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.v = d.v[n:]
	return x
}

func (d *folderDecoder) string() string {
	n := d.uvarint()
	if n > maxFolderNameBytes || n > uint64(len(d.v)) {
		d.fail()
		return ""
	}
	s := string(d.v[:n])
	d.v = d.v[n:]
	return s
}
