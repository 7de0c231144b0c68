package imap

import "math"

// AppendLimit makes imapserver refuse an APPEND whose literal is larger
// than Config.MaxAppend with NO [TOOBIG] before it asks for the literal
// (RFC 7889 §4): a client is not invited to send 40 MB to be refused.
// imapserver also lists APPENDLIMIT=N after login from it.
func (ss *session) AppendLimit() uint32 {
	return uint32(min(ss.s.cfg.MaxAppend, math.MaxUint32))
}
