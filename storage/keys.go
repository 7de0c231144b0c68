package storage

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Key layout. Every key starts with a one-letter record kind and '/', so
// each kind is one contiguous, prefix-scannable range. Addresses are
// lower-cased; an address that is followed by more key bytes ends with a
// NUL byte, which cannot occur in an address, so the scan of "a@x" never
// sees "a@xy". Integers are big-endian so that key order is numeric order.
//
// Queue DB (OpenQueue):
//
//	e/<id>                    envelope, JSON (mail.Envelope)
//	b/<id>                    message body, framed (frame.go)
//	t/<id>                    a cluster transfer with this id was queued (expires after TransferRetention)
//	o/<id>                    the origin's decision about a message it handed over (transfer.go; expires after TransferRetention)
//	f/<id>                    the name of the body's file when b/<id> references one (blob.go)
//
// Partition DB (AccountStore.Open):
//
//	a/<addr>                  account record, JSON (accountRecord)
//	l/<alias>                 alias: the target account address
//	s/<addr>                  mailbox state: next id, bytes, count (3 x uint64)
//	m/<addr>\x00<id:uint64>   message metadata, JSON (messageRecord)
//	r/<addr>\x00<id:uint64>   raw message bytes (RFC 5322), framed (frame.go), or a reference to a body file (blob.go)
//	f/<addr>\x00<id:uint64>   the name of the message's body file when r/ references one
//	d/<addr>\x00<dedup key>   dedup record: the id (uint64; 0 for a discarded delivery), expires after DedupRetention
//	w/<addr>\x00<dedup key>   work pending after that append (JSON list of kinds), until DonePending
//	x/<addr>                  purge marker: the account is deleted, its records are being removed
//	v/<addr>\x00<sender>      RFC 3834 auto-reply sent to sender (expires after the rule's days)
//	g/<addr>\x00<fid:uint32>  folder record, binary (folderrecord.go; JSON before)
//	u/<addr>\x00<fid:uint32><uid:uint32>  folder index: message id, modseq, flags (Entry)
//	h/<addr>\x00<id:uint64>   message summary: envelope and body structure (package summary)
//
// Metadata and raw bytes are apart so that listing a mailbox never reads a
// body.
var (
	prefixEnvelope = []byte("e/")
	prefixBody     = []byte("b/")
	prefixTransfer = []byte("t/")
	prefixFile     = []byte("f/") // queue and partitions

	prefixAccount  = []byte("a/")
	prefixAlias    = []byte("l/")
	prefixState    = []byte("s/")
	prefixMeta     = []byte("m/")
	prefixRaw      = []byte("r/")
	prefixDedup    = []byte("d/")
	prefixPurge    = []byte("x/")
	prefixVacation = []byte("v/")
	prefixPending  = []byte("w/")
	prefixFolder   = []byte("g/")
	prefixIndex    = []byte("u/")
	prefixSummary  = []byte("h/")
)

func key(prefix []byte, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// accountPrefix is the scan prefix of one account's records of a kind.
func accountPrefix(prefix []byte, addr string) []byte {
	k := key(prefix, addr)
	return append(k, 0)
}

// messageKey is m/ or r/ + addr + NUL + id.
func messageKey(prefix []byte, addr string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(accountPrefix(prefix, addr), id)
}

// dedupKey is d/ + addr + NUL + the caller's dedup key.
func dedupKey(addr, dedup string) []byte {
	return append(accountPrefix(prefixDedup, addr), dedup...)
}

// pendingKey is w/ + addr + NUL + the dedup key of the append.
func pendingKey(addr, dedup string) []byte {
	return append(accountPrefix(prefixPending, addr), dedup...)
}

// autoReplyKey is v/ + addr + NUL + the lower-cased sender.
func autoReplyKey(addr, sender string) []byte {
	return append(accountPrefix(prefixVacation, addr), strings.ToLower(sender)...)
}

// maxAddressBytes: RFC 5321 §4.5.3.1 limits a local part to 64 octets and a
// domain to 255; 320 is the usual bound for the whole address.
const maxAddressBytes = 320

// normalizeAddress lower-cases addr and checks that it can be a key.
func normalizeAddress(addr string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(a, '@')
	switch {
	case a == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidAddress)
	case len(a) > maxAddressBytes:
		return "", fmt.Errorf("%w: %d bytes (max %d)", ErrInvalidAddress, len(a), maxAddressBytes)
	case at <= 0 || at == len(a)-1:
		return "", fmt.Errorf("%w: %q is not local@domain", ErrInvalidAddress, addr)
	case !utf8.ValidString(a):
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidAddress, addr)
	}
	for _, r := range a {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return "", fmt.Errorf("%w: %q contains a space or control character", ErrInvalidAddress, addr)
		}
	}
	return a, nil
}

// maxIDBytes bounds queue ids (mail.NewID makes 24 characters).
const maxIDBytes = 128

func checkID(id string) error {
	if id == "" || len(id) > maxIDBytes {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c == 0x7f || c == '/' {
			return fmt.Errorf("%w: %q", ErrInvalidID, id)
		}
	}
	return nil
}
