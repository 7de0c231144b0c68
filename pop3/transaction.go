package pop3

import (
	"errors"
	"io"
	"strconv"

	"github.com/homing-mail/homing/mail"
)

// streamBuffer is the size of the buffer a message is read through.
const streamBuffer = 32 << 10

// message returns the entry that a message-number argument names, or
// answers -ERR and returns nil: RFC 1939 §5, "a message-number [...] may
// NOT refer to a message marked as deleted".
func (s *session) message(arg string) *entry {
	n, ok := parseNumber(arg)
	if !ok {
		s.clientError(textSyntax)
		return nil
	}
	if n < 1 || n > len(s.msgs) || s.msgs[n-1].deleted {
		s.fail("", textNoSuchMessage)
		return nil
	}
	return &s.msgs[n-1]
}

// visible returns the number and total size of the messages not marked.
func (s *session) visible() (count int, size int64) {
	for _, m := range s.msgs {
		if !m.deleted {
			count++
			size += m.Size
		}
	}
	return count, size
}

// cmdStat is STAT (RFC 1939 §5): "+OK nn mm", the messages not marked as
// deleted and their size.
func (s *session) cmdStat(cmd command) {
	if len(cmd.Args) != 0 {
		s.clientError(textSyntax)
		return
	}
	n, size := s.visible()
	s.ok(strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
}

// cmdList is LIST [msg] (RFC 1939 §5): a scan listing "n size" of one
// message, or of every message not marked as deleted.
func (s *session) cmdList(cmd command) {
	switch len(cmd.Args) {
	case 0:
		n, size := s.visible()
		s.ok(strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
		for i, m := range s.msgs {
			if !m.deleted {
				s.w.WriteString(strconv.Itoa(i+1) + " " + strconv.FormatInt(m.Size, 10) + "\r\n")
			}
		}
		s.w.WriteString(".\r\n")
	case 1:
		if m := s.message(cmd.Args[0]); m != nil {
			s.ok(cmd.Args[0] + " " + strconv.FormatInt(m.Size, 10))
		}
	default:
		s.clientError(textSyntax)
	}
}

// cmdUidl is UIDL [msg] (RFC 1939 §7): "n unique-id" of one message, or of
// every message not marked as deleted.
func (s *session) cmdUidl(cmd command) {
	switch len(cmd.Args) {
	case 0:
		s.ok("unique-id listing follows")
		for i, m := range s.msgs {
			if !m.deleted {
				s.w.WriteString(strconv.Itoa(i+1) + " " + m.uid + "\r\n")
			}
		}
		s.w.WriteString(".\r\n")
	case 1:
		if m := s.message(cmd.Args[0]); m != nil {
			s.ok(cmd.Args[0] + " " + m.uid)
		}
	default:
		s.clientError(textSyntax)
	}
}

// cmdRetr is RETR msg (RFC 1939 §5): the whole message.
func (s *session) cmdRetr(cmd command) {
	if len(cmd.Args) != 1 {
		s.clientError(textSyntax)
		return
	}
	if m := s.message(cmd.Args[0]); m != nil {
		s.send(m, -1)
	}
}

// cmdTop is TOP msg n (RFC 1939 §7): the header, the blank line after it
// and the first n lines of the body.
func (s *session) cmdTop(cmd command) {
	if len(cmd.Args) != 2 {
		s.clientError(textSyntax)
		return
	}
	lines, ok := parseNumber(cmd.Args[1])
	if !ok {
		s.clientError(textSyntax)
		return
	}
	if m := s.message(cmd.Args[0]); m != nil {
		s.send(m, lines)
	}
}

// send streams message m as a multi-line response: whole (top < 0) or as
// TOP with top body lines. The message is read in pieces of streamBuffer
// octets and dot-stuffed on the way (canonWriter), never held whole. A
// failure to open it is -ERR and the session goes on; a failure after the
// +OK ends the session without the terminator, as the client must not
// take part of a message for all of it.
func (s *session) send(m *entry, top int) {
	rc, err := s.drop.Open(s.ctx, m.ID)
	if err != nil {
		s.backendFailure("opening a message", err)
		return
	}
	defer rc.Close()
	if top < 0 {
		s.ok(strconv.FormatInt(m.Size, 10) + " octets")
	} else {
		s.ok("top of message follows")
	}
	if s.buf == nil {
		s.buf = make([]byte, streamBuffer)
	}
	cw := newCanonWriter(s.w, true, top)
	for !cw.Done() {
		n, err := rc.Read(s.buf)
		if n > 0 {
			if _, werr := cw.Write(s.buf[:n]); werr != nil {
				s.end = true // the client is gone or stopped reading
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.srv.log.Warn("POP3: reading a message failed; closing the connection", "account", s.account, "id", m.ID, "err", err)
			s.end = true
			return
		}
	}
	if err := cw.Finish(); err != nil {
		s.end = true
		return
	}
	s.w.WriteString(".\r\n")
	if top < 0 && cw.Written() != m.Size {
		s.srv.log.Error("POP3: a message's size differs from the size listed (the backend's bug)", "account", s.account, "id", m.ID,
			"listed", m.Size, "sent", cw.Written())
	}
}

// cmdDele is DELE msg (RFC 1939 §5): the message is marked, and removed
// only at QUIT (the UPDATE state).
func (s *session) cmdDele(cmd command) {
	if len(cmd.Args) != 1 {
		s.clientError(textSyntax)
		return
	}
	if m := s.message(cmd.Args[0]); m != nil {
		m.deleted = true
		s.ok("message " + cmd.Args[0] + " deleted")
	}
}

// cmdNoop is NOOP (RFC 1939 §5).
func (s *session) cmdNoop(cmd command) {
	if len(cmd.Args) != 0 {
		s.clientError(textSyntax)
		return
	}
	s.ok("")
}

// cmdRset is RSET (RFC 1939 §5): every mark is removed.
func (s *session) cmdRset(cmd command) {
	if len(cmd.Args) != 0 {
		s.clientError(textSyntax)
		return
	}
	for i := range s.msgs {
		s.msgs[i].deleted = false
	}
	n, size := s.visible()
	s.ok("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
}

// cmdQuit is QUIT. In the AUTHORIZATION state it only ends the session
// (RFC 1939 §4). In the TRANSACTION state it enters the UPDATE state
// (RFC 1939 §6): the marked messages are deleted in one Maildrop.Delete,
// and +OK is sent only once that is durable; on its failure the answer is
// -ERR and the session ends all the same. The lock is released before the
// answer (RFC 1939 §6 releases it after; nothing follows QUIT, so the order
// is not seen), so that a client that reconnects at once is not refused.
func (s *session) cmdQuit(cmd command) {
	s.end = true
	if s.state == stateAuthorization {
		s.ok(s.srv.cfg.Hostname + " POP3 server signing off")
		return
	}
	var ids []string
	for _, m := range s.msgs {
		if m.deleted {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) > 0 {
		if err := s.drop.Delete(s.ctx, ids); err != nil {
			s.release()
			s.srv.log.Warn("POP3: deleting the marked messages failed", "account", s.account, "messages", len(ids), "err", err)
			code := codeSysTemp
			if !mail.IsTemporary(err) {
				code = codeSysPerm
			}
			s.fail(code, "some deleted messages not removed")
			return
		}
	}
	s.release()
	s.srv.log.Info("POP3 logout", "client", s.clientIP, "account", s.account, "deleted", len(ids))
	s.ok(s.srv.cfg.Hostname + " POP3 server signing off (" + strconv.Itoa(len(ids)) + " messages deleted)")
}
