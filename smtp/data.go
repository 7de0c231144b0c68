package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

// Data receives the message (RFC 5321 §4.1.1.4, or BDAT, RFC 3030), checks
// it, prepends a Received header and hands it to the Enqueuer. It always
// reads r to its end, also when it refuses the message, so that the
// connection stays in step with the client.
//
// The 250 reply is returned as an *SMTPError with code 250: go-smtp writes
// any *SMTPError as it is, and that is the only way to put the queue id in
// the reply text.
func (s *session) Data(r io.Reader) (err error) {
	defer s.recoverPanic("DATA", &err)
	return s.answer(s.limitErrors(s.data(r)))
}

func (s *session) data(r io.Reader) error {
	s.mu.Lock()
	tx := s.tx
	tx.rcpts = append([]*mail.Recipient(nil), s.tx.rcpts...)
	helo, authAccount, peer := s.helo, s.authAccount, s.clusterPeer
	s.mu.Unlock()

	// With DATA, go-smtp's read deadline is the one it set for the DATA
	// command line (CommandTimeout); replace it with DataTimeout for the
	// whole message. A BDAT chunk is read by go-smtp's goroutine, not
	// through r directly, and keeps go-smtp's deadline.
	// Stress does not shorten it (dataPhase).
	if _, bdat := r.(*io.PipeReader); !bdat {
		if s.limited != nil {
			s.limited.dataPhase(true)
			defer s.limited.dataPhase(false)
		}
		s.netConn.SetReadDeadline(time.Now().Add(s.srv.cfg.DataTimeout))
	}

	msg := readMessage(r, s.srv.cfg.MaxMessageBytes, s.srv.cfg.MaxDataLineLength)
	switch {
	case msg.readErr != nil:
		if errors.Is(msg.readErr, gosmtp.ErrDataReset) {
			// BDAT aborted by RSET or a closed connection; nobody
			// reads this reply.
			return errTempFailure()
		}
		// The connection is out of step (timeout, over-long line,
		// broken connection): say so and close it after the reply.
		s.srv.abuseLog.Info("reading message data failed", "client", s.clientIP, "err", msg.readErr)
		if s.limited != nil {
			s.limited.closeAfterNextWrite()
		}
		var ne net.Error
		if errors.As(msg.readErr, &ne) && ne.Timeout() {
			return reply(421, mail.StatusConnectionLost, "Timeout waiting for message data, closing connection")
		}
		return reply(421, mail.StatusConnectionLost, "Error reading message data, closing connection")
	case !tx.started || len(tx.rcpts) == 0:
		return errNoRecipients()
	case msg.tooBig:
		return errTooBig()
	case msg.bareCRLF:
		// RFC 5321 §2.3.8: lines end with CRLF only. Accepting bare LF
		// or CR lets a client smuggle a second message past the
		// next hop's end-of-data detection ("SMTP smuggling").
		return errBareCRLF()
	case msg.lineTooLong:
		return errLineTooLong()
	}

	// A cluster transfer starts with the envelope record.
	transfer, rest, isRecord, recErr := splitEnvelopeRecord(msg.data)
	switch {
	case isRecord && peer == "":
		return reply(554, mail.StatusRefused, "Envelope records are accepted from cluster members only")
	case isRecord && recErr != nil:
		s.srv.log.Warn("bad envelope record", "peer", peer, "err", recErr)
		return reply(554, mail.StatusBadContent, "Malformed envelope record")
	case isRecord && (s.srv.cfg.AcceptTransfers == nil || !s.srv.cfg.AcceptTransfers()):
		return reply(451, mail.StatusNotAccepting, "This node does not take transfers now")
	case isRecord:
		return s.transferred(transfer, rest, tx, peer, helo)
	}

	now := s.srv.cfg.Now()
	// The queue id is needed in the Received header, before Enqueue;
	// Enqueue keeps an id that is set.
	id := mail.NewID(now)
	cleanHELO := sanitizeHELO(helo)
	hdr := receivedHeader(received{
		helo:     cleanHELO,
		clientIP: s.clientIP,
		by:       s.srv.cfg.Hostname,
		tls:      s.tls,
		auth:     authAccount != "",
		smtputf8: tx.smtputf8,
		id:       id,
		rcpts:    tx.rcpts,
		date:     now,
	})
	body := make([]byte, 0, len(hdr)+len(msg.data))
	body = append(append(body, hdr...), msg.data...)

	env := &mail.Envelope{
		ID:         id,
		From:       tx.from,
		Recipients: tx.rcpts,
		EnvID:      tx.envID,
		Ret:        tx.ret,
		SMTPUTF8:   tx.smtputf8,
		Body8Bit:   tx.body8bit,
		Received:   now,
		Source:     s.srv.cfg.Source,
		Auth:       authAccount,
		HELO:       cleanHELO,
		Size:       int64(len(body)),
	}
	if s.clientIP.IsValid() {
		env.ClientIP = s.clientIP.String()
	}

	if err := s.srv.enq.Enqueue(s.ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(body)}); err != nil {
		if mail.AsError(err) == nil {
			s.srv.log.Warn("enqueue failed", "id", id, "client", env.ClientIP, "err", err)
		}
		return errorReply(err)
	}
	if env.ID == "" {
		env.ID = id
	}
	s.srv.m.messageAccepted(string(s.srv.cfg.Source), len(body))
	s.srv.log.Debug("message accepted", "id", env.ID, "from", env.From, "rcpts", len(env.Recipients), "size", env.Size)
	return reply(250, mail.StatusOK, "OK queued as "+env.ID)
}

// TransferEnqueuer is implemented by an Enqueuer that recognises a
// message it has queued before (by id): a cluster transfer retried after
// an unclear reply is then acknowledged again without a second copy.
type TransferEnqueuer interface {
	EnqueueTransfer(ctx context.Context, msg *mail.Message) (duplicate bool, err error)
}

// transferred queues a message handed over by a cluster member with its
// envelope record.
func (s *session) transferred(env *mail.Envelope, data []byte, tx transaction, peer, helo string) error {
	// MAIL and RCPT must agree with the record.
	if !strings.EqualFold(env.From, tx.from) {
		return reply(554, mail.StatusBadContent, "Envelope record does not match MAIL FROM")
	}
	want := map[string]bool{}
	for _, r := range tx.rcpts {
		want[strings.ToLower(r.Addr)] = true
	}
	var open []*mail.Recipient
	for _, r := range env.Recipients {
		if r.State.Final() {
			continue
		}
		if !want[strings.ToLower(r.Addr)] {
			return reply(554, mail.StatusBadContent, "Envelope record does not match RCPT TO")
		}
		delete(want, strings.ToLower(r.Addr))
		// The receiving node routes afresh (its own directory).
		open = append(open, &mail.Recipient{Key: r.Key, Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt, State: mail.StatePending})
	}
	if len(want) > 0 || len(open) == 0 {
		return reply(554, mail.StatusBadContent, "Envelope record does not match RCPT TO")
	}
	now := s.srv.cfg.Now()
	hdr := receivedHeader(received{
		helo:     sanitizeHELO(helo),
		clientIP: s.clientIP,
		by:       s.srv.cfg.Hostname,
		tls:      s.tls,
		auth:     true,
		smtputf8: env.SMTPUTF8,
		id:       env.ID,
		rcpts:    open,
		date:     now,
	})
	body := append(append(make([]byte, 0, len(hdr)+len(data)), hdr...), data...)
	out := &mail.Envelope{
		ID: env.ID, From: env.From, Recipients: open, EnvID: env.EnvID, Ret: env.Ret,
		SMTPUTF8: env.SMTPUTF8, Body8Bit: env.Body8Bit, Received: env.Received,
		Source: mail.SourceCluster, Auth: env.Auth, HELO: sanitizeHELO(helo), Size: int64(len(body)),
		Origin: peer, // held until the origin says it is ours (actors/transfer.go)
	}
	if out.Received.IsZero() {
		out.Received = now
	}
	if s.clientIP.IsValid() {
		out.ClientIP = s.clientIP.String()
	}
	var dup bool
	var err error
	msg := &mail.Message{Envelope: out, Body: mail.BytesBody(body)}
	if te, ok := s.srv.enq.(TransferEnqueuer); ok {
		dup, err = te.EnqueueTransfer(s.ctx, msg)
	} else {
		err = s.srv.enq.Enqueue(s.ctx, msg)
	}
	if err != nil {
		if mail.AsError(err) == nil {
			s.srv.log.Warn("enqueue of a transfer failed", "id", env.ID, "peer", peer, "err", err)
		}
		return errorReply(err)
	}
	s.srv.m.messageAccepted(string(mail.SourceCluster), len(body))
	if dup {
		s.srv.log.Info("transfer already queued", "id", env.ID, "peer", peer)
		return reply(250, mail.StatusOK, "OK already queued as "+env.ID)
	}
	s.srv.log.Debug("transfer accepted", "id", env.ID, "peer", peer)
	return reply(250, mail.StatusOK, "OK queued as "+env.ID)
}

// message is the result of reading DATA.
type message struct {
	data        []byte
	tooBig      bool
	bareCRLF    bool
	lineTooLong bool
	readErr     error
}

// readMessage reads r to its end. It keeps at most maxBytes bytes and
// stops keeping them as soon as the message is known to be refused, but
// reads on. go-smtp's DATA reader returns ErrDataTooLarge once maxBytes
// are exceeded (and discards the rest itself); BDAT chunks over the limit
// never reach r.
func readMessage(r io.Reader, maxBytes int64, maxLine int) message {
	var (
		msg  message
		buf  bytes.Buffer
		sc   = lineScanner{maxLine: maxLine}
		p    = make([]byte, 32<<10)
		size int64
	)
	for {
		n, err := r.Read(p)
		if n > 0 {
			size += int64(n)
			sc.scan(p[:n])
			if size > maxBytes {
				msg.tooBig = true
			}
			if !msg.tooBig && !sc.bare && !sc.long {
				buf.Write(p[:n])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, gosmtp.ErrDataTooLarge) {
				msg.tooBig = true
			} else {
				msg.readErr = err
			}
			break
		}
	}
	sc.end()
	msg.bareCRLF, msg.lineTooLong = sc.bare, sc.long
	if !msg.tooBig && !msg.bareCRLF && !msg.lineTooLong && msg.readErr == nil {
		msg.data = buf.Bytes()
	}
	return msg
}

// lineScanner finds bare CR, bare LF and over-long lines in a stream fed
// to it in pieces.
type lineScanner struct {
	maxLine int
	prevCR  bool
	lineLen int
	bare    bool // a LF not preceded by CR, or a CR not followed by LF
	long    bool // a line of more than maxLine octets, CRLF not counted
}

func (sc *lineScanner) scan(p []byte) {
	for _, b := range p {
		if sc.prevCR && b != '\n' {
			sc.bare = true
		}
		switch b {
		case '\n':
			if !sc.prevCR {
				sc.bare = true
			}
			sc.lineLen = 0
		case '\r':
		default:
			sc.lineLen++
			if sc.lineLen > sc.maxLine {
				sc.long = true
			}
		}
		sc.prevCR = b == '\r'
	}
}

// end reports a CR at the very end of the message as bare.
func (sc *lineScanner) end() {
	if sc.prevCR {
		sc.bare = true
	}
}
