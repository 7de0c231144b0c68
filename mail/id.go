package mail

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// NewID returns a queue id: 48 bits of milliseconds since the epoch followed
// by 72 random bits, in Crockford base32 (24 characters). Ids sort by arrival
// time and are unique without coordination between nodes.
func NewID(now time.Time) string {
	var b [15]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand.Read never fails on Linux since Go 1.24; keep the
		// id unique anyway by falling back to the nanoseconds.
		binary.BigEndian.PutUint64(b[7:], uint64(now.UnixNano()))
	}
	return idEncoding.EncodeToString(b[:])
}
