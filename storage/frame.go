package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/homing-mail/homing/mail"
)

// Body frames.
//
// badger does not tell a reader when the bytes of a value are gone: when a
// value-log read fails (a truncated or overwritten file) it logs the
// failure and returns an EMPTY value with a nil error
// (Item.yieldItemValue), and with its default checksum mode it hands out
// the bytes of a damaged table block as they are. Before frames, a queue
// whose value log was truncated relayed empty messages and reported them
// accepted, and the admin API served 0-byte messages with 200.
//
// So every message body Homing stores (queue bodies b/<id>, mailbox raw
// messages r/<addr>\x00<id>) is written as a frame that carries its own
// length and checksum, and every read checks them:
//
//	offset  size  field
//	0       1     magic 0x89
//	1       2     "HB" (Homing Body)
//	3       1     version, 1
//	4       8     length of the body in bytes, big-endian
//	12      4     CRC-32C (Castagnoli) of the body, big-endian
//	16      n     the body
//
// CRC-32C is the checksum of iSCSI (RFC 3720 §12.1, appendix B.4) and SCTP
// (RFC 9260 appendix B), and of badger's own tables and WAL: it detects
// every burst error up to 32 bits and any odd number of flipped bits, and
// Go computes it with the CPU's CRC32 instruction (SSE 4.2, ARMv8), at
// several GB/s, so checking every read costs less than copying the body
// once. It is not a MAC: it finds damage, not tampering by someone who can
// write the store's files. The length is checked too (a frame cut short
// or run long is damage even before the checksum), and readers compare it
// with the size recorded beside the body where there is one (the message's
// metadata in a mailbox).
//
// A frame costs 16 bytes per body and one copy of the body on write (into
// the frame buffer; the read returns a slice of the stored value without
// copying it again). Frames do not change where values live: bodies are
// still in badger's value log from 1 KiB (queue) or 512 B (mailboxes) up.
//
// # Bodies stored before frames
//
// Stores written before this change hold bare bodies, and they are not
// migrated when a store is opened: a migration would read and rewrite every
// mailbox body of every partition (months of mail, the largest part of the
// data) at the first start, doubling the value log for a while, and it
// could not tell a good old body from one already damaged (it would
// checksum the damage and make it look valid). Instead a reader tells the
// two apart by the first byte: every bare body is an RFC 5322 message,
// which begins with a header field name (printable US-ASCII, RFC 5322
// §2.2; a message needs at least its Date and From fields), never with
// 0x89. An old body is accepted WITHOUT a checksum (there is none to
// check): it is checked only for being non-empty and, where a size was
// recorded beside it (the envelope's Size in the queue, the metadata's
// Size in a mailbox), for having that length. So an old body that badger
// returns empty or truncated is still found damaged; one overwritten in
// place with the same length is not. A frame whose magic byte itself is
// damaged reads as an old body 16 bytes longer than its recorded size, and
// is found by the same length check. Old bodies leave the stores as mail
// is delivered and deleted; everything written from now on is framed.
const (
	frameMagic     = 0x89
	frameVersion   = 1
	frameHeaderLen = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader fills the first frameHeaderLen bytes of v for body.
func frameHeader(v, body []byte) {
	v[0], v[1], v[2], v[3] = frameMagic, 'H', 'B', frameVersion
	binary.BigEndian.PutUint64(v[4:], uint64(len(body)))
	binary.BigEndian.PutUint32(v[12:], crc32.Checksum(body, castagnoli))
}

// frame returns body as it is stored: a frame header and a copy of body.
func frame(body []byte) []byte {
	v := make([]byte, frameHeaderLen+len(body))
	copy(v[frameHeaderLen:], body)
	frameHeader(v, v[frameHeaderLen:])
	return v
}

// frameBody reads b into a new frame, without a copy of the body in
// between: the body is read straight into the frame's buffer.
func frameBody(b mail.Body) ([]byte, error) {
	if bb, ok := b.(mail.BytesBody); ok {
		return frame(bb), nil
	}
	r, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, frameHeaderLen, frameHeaderLen+max(b.Size(), 0)))
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	v := buf.Bytes()
	frameHeader(v, v[frameHeaderLen:])
	return v, nil
}

// framed reports whether v is (or was meant to be) a frame rather than an
// old bare body.
func framed(v []byte) bool { return len(v) > 0 && v[0] == frameMagic }

// unframe returns the body stored in v (a slice of v, not a copy), or an
// error wrapping ErrDamaged when v does not check. size is the body's
// length as recorded beside it, or -1 when there is no record to compare
// with. A bare body stored before frames is returned as it is after the
// checks it allows (see the comment above).
func unframe(v []byte, size int64) ([]byte, error) {
	switch {
	case len(v) == 0:
		return nil, damaged("empty value where a body must be (badger returns one when a value-log read fails)")
	case !framed(v):
		if size >= 0 && int64(len(v)) != size {
			return nil, damaged("unframed body of %d bytes, %d recorded", len(v), size)
		}
		return v, nil
	case len(v) < frameHeaderLen:
		return nil, damaged("frame cut short: %d bytes", len(v))
	case v[1] != 'H' || v[2] != 'B':
		return nil, damaged("bad frame magic % x", v[:3])
	case v[3] != frameVersion:
		return nil, damaged("unknown frame version %d", v[3])
	}
	body := v[frameHeaderLen:]
	n := binary.BigEndian.Uint64(v[4:])
	if n != uint64(len(body)) {
		return nil, damaged("frame says %d bytes, %d stored", n, len(body))
	}
	if size >= 0 && int64(n) != size {
		return nil, damaged("frame of %d bytes, %d recorded", n, size)
	}
	if want, got := binary.BigEndian.Uint32(v[12:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, damaged("CRC-32C mismatch: stored %08x, computed %08x", want, got)
	}
	return body, nil
}

// damaged is an error wrapping ErrDamaged.
func damaged(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, a...))
}
