package inbound

import "bytes"

// fromField returns the value of the header's one From field exactly as
// net/mail.ReadMessage would give it (authorDomain's reading, which it
// replaces on the common path): ok is false when the header has no From
// field or more than one, or when net/mail could fail on it (a first line
// that is a continuation, a field line without a colon), and the caller
// then asks net/mail, whose answer and error stand. net/mail built a map
// of every field, a 4 KiB reader and a copy of the header for each
// message: 1.9% of a loaded node's CPU (profile at 2,583 msg/s,
// 2026-12-03). FuzzFromField compares the two.
//
// As net/mail (its readHeader and textproto's continued lines): a line
// ends at LF, a CR before it is dropped; a line starting with SP or HTAB
// continues the field before it, joined by one space, each line trimmed
// of SP and HTAB at both ends; the name is what precedes the first colon,
// compared without case (CanonicalMIMEHeaderKey leaves a name with other
// bytes than letters as it is, so " From" or "From " is no From field);
// the value loses its leading SP and HTAB; an empty line ends the header.
func fromField(header []byte) (string, bool) {
	var (
		from   []byte
		n      int
		inFrom bool
		first  = true
	)
	rest := header
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
		} else {
			rest = nil // net/mail's caller adds the CRLF of this last line
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				return "", false
			}
			if inFrom {
				from = append(from, ' ')
				from = append(from, bytes.Trim(line, " \t")...)
			}
			continue
		}
		first = false
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return "", false
		}
		inFrom = isFromName(line[:colon])
		if inFrom {
			if n++; n > 1 {
				return "", false
			}
			// The line does not start with SP or HTAB (textproto's trim
			// is its right end here), and that never reaches the colon.
			from = append(from, bytes.TrimRight(line, " \t")[colon+1:]...)
		}
	}
	if n != 1 {
		return "", false
	}
	return string(bytes.TrimLeft(from, " \t")), true
}

// isFromName reports whether name is "From" in any case (ASCII only:
// CanonicalMIMEHeaderKey folds nothing else).
func isFromName(name []byte) bool {
	return len(name) == 4 && name[0]|0x20 == 'f' && name[1]|0x20 == 'r' &&
		name[2]|0x20 == 'o' && name[3]|0x20 == 'm'
}
