package summary

import "github.com/emersion/go-imap/v2"

// Section finds the octets of a body section (RFC 9051 §6.4.5, BODY[...])
// in the message: [start, end). part is the section's part number
// (1.2.3: [1 2 3]; none for the whole message) and spec its specifier
// (HEADER.FIELDS and HEADER.FIELDS.NOT are within HEADER's octets). A
// section that names no part of the message is empty (start == end), as
// go-imap's ExtractBodySection has it. ok is false when the summary cannot
// say: it has no offsets (Version 0), or the section is inside a part that
// was not split (Part.Opaque); the caller then reads the message.
//
// The rules are go-imap's: a non-multipart message is its own part 1; a
// message/rfc822 part is opened when a part number or HEADER/TEXT goes
// into it; MIME is the part's own header.
func (s *Summary) Section(part []int, spec imap.PartSpecifier) (start, end int64, ok bool) {
	if s == nil || s.Version < 1 || s.Body == nil {
		return 0, 0, false
	}
	root := s.Body
	cur := root
	path := part
	if cur.Type != "multipart" && len(path) > 0 && path[0] == 1 {
		path = path[1:]
	}
	for _, n := range path {
		if cur.isMessage() {
			if cur.Message == nil {
				return 0, 0, false // opaque
			}
			cur = cur.Message.Body
		}
		if cur.Type != "multipart" {
			if n != 1 {
				return 0, 0, true
			}
			continue
		}
		if cur.Opaque {
			return 0, 0, false
		}
		if n < 1 || n > len(cur.Children) {
			return 0, 0, true
		}
		cur = cur.Children[n-1]
	}
	if len(part) == 0 {
		switch spec {
		case imap.PartSpecifierHeader, imap.PartSpecifierMIME:
			return 0, root.BodyStart, true
		case imap.PartSpecifierText:
			return root.BodyStart, root.End, true
		}
		return 0, root.End, true
	}
	switch spec {
	case imap.PartSpecifierMIME:
		return cur.Start, cur.BodyStart, true
	case imap.PartSpecifierHeader, imap.PartSpecifierText:
		if cur.isMessage() {
			if cur.Message == nil {
				return 0, 0, false
			}
			cur = cur.Message.Body
		}
		if spec == imap.PartSpecifierHeader {
			return cur.Start, cur.BodyStart, true
		}
		return cur.BodyStart, cur.End, true
	}
	return cur.BodyStart, cur.End, true
}

func (p *Part) isMessage() bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
}
