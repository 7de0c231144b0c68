package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

// Data receives the message (RFC 5321 §4.1.1.4, or BDAT, RFC 3030), checks
// it, prepends a Received header and hands it to the Enqueuer. It always
// reads r to its end, also when it refuses the message, so that the
// connection stays in step with the client.
//
// The message is not held in memory: the session writes the Received
// header and then the bytes, as they arrive, into a body writer of the
// Enqueuer (BodyStore; the queue keeps up to its inline threshold in
// memory and writes a file beyond it), checking bare CR, bare LF, line
// lengths and the size on the way. A message found to be refused stops
// being written at once and what was written is discarded.
//
// The 250 reply is returned as an *SMTPError with code 250: go-smtp writes
// any *SMTPError as it is, and that is the only way to put the queue id in
// the reply text.
func (s *session) Data(r io.Reader) (err error) {
	defer s.recoverPanic("DATA", &err)
	err = s.limitErrors(s.data(r))
	s.logRefusal("DATA", "", "", err)
	return s.answer(err)
}

// BodyStore is implemented by an Enqueuer that stores bodies itself
// (actors.Enqueuer, over the queue store): the session writes DATA into
// a writer NewBody returns as it reads it, so that a message in flight
// costs a small buffer rather than its size. Without it the session keeps
// the message in memory (mail.MemoryBodyWriter).
//
// The body committed from such a writer is the Enqueuer's: Enqueue (and
// EnqueueTransfer) stores it, or removes it when the message is not
// stored (a rule's refusal, a duplicate transfer). A writer of a message
// the session refuses is aborted.
type BodyStore interface {
	NewBody() (mail.BodyWriter, error)
}

// maxPiece is how much of DATA the session reads at once.
const maxPiece = 32 << 10

// piecePool holds the sessions' DATA buffers (*[]byte of maxPiece): a
// piece is passed on (written, checked) before the next one is read, and
// nothing keeps it after Data.
var piecePool = sync.Pool{New: func() any { p := make([]byte, maxPiece); return &p }}

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

	now := s.srv.cfg.Now()
	// The queue id is needed in the Received header, before Enqueue;
	// Enqueue keeps an id that is set.
	id := mail.NewID(now)
	cleanHELO := sanitizeHELO(helo)
	piece := piecePool.Get().(*[]byte)
	defer piecePool.Put(piece)
	in := &dataIn{r: r, sc: lineScanner{maxLine: s.srv.cfg.MaxDataLineLength}, maxBytes: s.srv.cfg.MaxMessageBytes,
		p: *piece}
	if !s.srv.cfg.slowData && in.fast.init(r, &in.sc) {
		in.r, in.scanned = &in.fast, true
		fastDataPhases.Add(1)
	}

	// The start of the message, enough to tell whether it begins with
	// an envelope record (a cluster transfer): its first line, bounded
	// by the line length limit.
	head := in.start(envelopeRecord, s.srv.cfg.MaxDataLineLength+2)
	var (
		w        mail.BodyWriter // nil: nothing is being written
		refusal  error           // decided before the end (the record), sent once r is read
		transfer *mail.Envelope
		open     []*mail.Recipient
		werr     error // the body writer failed
	)
	write := func(p []byte) {
		if w == nil || len(p) == 0 {
			return
		}
		if _, err := w.Write(p); err != nil {
			werr = err
			w.Abort()
			w = nil
		}
	}
	newWriter := func() {
		if bs, ok := s.srv.enq.(BodyStore); ok {
			if w, werr = bs.NewBody(); werr != nil {
				w = nil
			}
			return
		}
		w = new(mail.MemoryBodyWriter)
	}
	// The client's bytes: through the checks of mail from outside
	// (checks.go), which pass them on without forged
	// Authentication-Results fields.
	var check Check
	writeClient := write
	isRecord := bytes.HasPrefix(head, []byte(envelopeRecord))
	if s.srv.cfg.Checks != nil && !isRecord && authAccount == "" && peer == "" && !s.srv.cfg.Submission &&
		tx.started && len(tx.rcpts) > 0 {
		check = s.srv.cfg.Checks.Begin(s.ctx, id, s.clientIP, helo, tx.from, writerFunc(func(p []byte) { write(p) }))
		writeClient = func(p []byte) { check.Write(p) }
		defer func() {
			if check != nil {
				check.Abort()
			}
		}()
	}
	switch {
	case !tx.started || len(tx.rcpts) == 0 || in.refused():
	case s.srv.admit(0) != nil:
		// The queue's disk went below its free-space limit since MAIL
		// FROM: nothing is written, the client tries again later.
		refusal = errNoSpace()
	case isRecord:
		env, rest, _, recErr := splitEnvelopeRecord(head)
		switch {
		case peer == "":
			refusal = reply(554, mail.StatusRefused, "Envelope records are accepted from cluster members only")
		case recErr != nil:
			s.srv.log.Warn("bad envelope record", "peer", peer, "err", recErr)
			refusal = reply(554, mail.StatusBadContent, "Malformed envelope record")
		case s.srv.cfg.AcceptTransfers == nil || !s.srv.cfg.AcceptTransfers():
			refusal = reply(451, mail.StatusNotAccepting, "This node does not take transfers now")
		default:
			if open, refusal = transferRecipients(env, tx); refusal == nil {
				transfer = env
				newWriter()
				write(receivedHeader(received{
					helo:     cleanHELO,
					clientIP: s.clientIP,
					by:       s.srv.cfg.Hostname,
					tls:      s.tls,
					auth:     true,
					smtputf8: env.SMTPUTF8,
					id:       env.ID,
					rcpts:    open,
					date:     now,
				}))
				write(rest)
			}
		}
	default:
		newWriter()
		write(receivedHeader(received{
			helo:     cleanHELO,
			clientIP: s.clientIP,
			by:       s.srv.cfg.Hostname,
			tls:      s.tls,
			auth:     authAccount != "",
			smtputf8: tx.smtputf8,
			id:       id,
			rcpts:    tx.rcpts,
			date:     now,
		}))
		writeClient(head)
	}
	head = nil
	for p := in.next(); p != nil; p = in.next() {
		if in.refused() && w != nil {
			// Known to be refused: stop writing and drop what was
			// written (a file is removed now, not after the reply).
			w.Abort()
			w = nil
		}
		writeClient(p)
	}
	in.end()
	if in.refused() && w != nil {
		w.Abort()
		w = nil
	}

	switch {
	case in.readErr != nil:
		if errors.Is(in.readErr, gosmtp.ErrDataReset) {
			// BDAT aborted by RSET or a closed connection; nobody
			// reads this reply.
			return errTempFailure()
		}
		// The connection is out of step (timeout, over-long line,
		// broken connection): say so and close it after the reply.
		s.srv.abuseLog.Info("reading message data failed", "client", s.clientIP, "err", in.readErr)
		if s.limited != nil {
			s.limited.closeAfterNextWrite()
		}
		var ne net.Error
		if errors.As(in.readErr, &ne) && ne.Timeout() {
			return reply(421, mail.StatusConnectionLost, "Timeout waiting for message data, closing connection")
		}
		return reply(421, mail.StatusConnectionLost, "Error reading message data, closing connection")
	case !tx.started || len(tx.rcpts) == 0:
		return errNoRecipients()
	case in.tooBig:
		return errTooBig()
	case in.sc.bare:
		// RFC 5321 §2.3.8: lines end with CRLF only. Accepting bare LF
		// or CR lets a client smuggle a second message past the
		// next hop's end-of-data detection ("SMTP smuggling").
		return errBareCRLF()
	case in.sc.long:
		return errLineTooLong()
	case refusal != nil:
		return refusal
	case werr != nil || w == nil:
		return s.writeFailed(id, werr)
	}
	var verdict Verdict
	if check != nil {
		verdict, check = check.End(), nil
		if verdict.Refuse != nil {
			w.Abort()
			s.srv.log.Info("message refused by its authentication checks", "id", id, "client", s.clientIP,
				"from", tx.from, "checks", verdict.Detail)
			return errorReply(verdict.Refuse)
		}
	}
	body, err := w.Commit()
	if err != nil {
		return s.writeFailed(id, err)
	}
	if transfer != nil {
		return s.transferred(transfer, open, body, peer, helo)
	}
	if len(verdict.Header) > 0 {
		// RFC 8601 §5: above the trace fields the checks read.
		body = mail.Prepend(verdict.Header, body)
	}

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
		FromMember: peer,
		HELO:       cleanHELO,
		Size:       body.Size(),
	}
	if s.clientIP.IsValid() {
		env.ClientIP = s.clientIP.String()
	}

	if err := s.srv.enq.Enqueue(s.ctx, &mail.Message{Envelope: env, Body: body}); err != nil {
		if mail.AsError(err) == nil && !errors.Is(err, mail.ErrNoSpace) {
			s.srv.log.Warn("enqueue failed", "id", id, "client", env.ClientIP, "err", err)
		}
		return errorReply(err)
	}
	if env.ID == "" {
		env.ID = id
	}
	s.srv.m.messageAccepted(string(s.srv.cfg.Source), int(env.Size))
	s.srv.log.Debug("message accepted", "id", env.ID, "from", env.From, "rcpts", len(env.Recipients), "size", env.Size)
	if verdict.Detail != "" {
		s.srv.log.Info("authentication checks", "queueID", env.ID, "client", env.ClientIP, "checks", verdict.Detail)
	}
	return reply(250, mail.StatusOK, "OK queued as "+env.ID)
}

// writeFailed is the reply when the body could not be written (the
// writer removed what it had written): 452 4.3.1 when the queue's disk is
// short of space, which its free-space guard logs once (not once per
// message), the generic 451 for anything else, logged.
func (s *session) writeFailed(id string, err error) error {
	if errors.Is(err, mail.ErrNoSpace) {
		s.srv.log.Debug("message not written: no space", "id", id, "client", s.clientIP, "err", err)
		return errNoSpace()
	}
	s.srv.log.Error("writing the message failed", "id", id, "client", s.clientIP, "err", err)
	return errTempFailure()
}

// TransferEnqueuer is implemented by an Enqueuer that recognises a
// message it has queued before (by id): a cluster transfer retried after
// an unclear reply is then acknowledged again without a second copy.
type TransferEnqueuer interface {
	EnqueueTransfer(ctx context.Context, msg *mail.Message) (duplicate bool, err error)
}

// transferRecipients checks a transfer's envelope record against MAIL and
// RCPT and returns the recipients still open, as this node routes them
// afresh, or the refusal.
func transferRecipients(env *mail.Envelope, tx transaction) ([]*mail.Recipient, error) {
	// MAIL and RCPT must agree with the record.
	if !strings.EqualFold(env.From, tx.from) {
		return nil, reply(554, mail.StatusBadContent, "Envelope record does not match MAIL FROM")
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
			return nil, reply(554, mail.StatusBadContent, "Envelope record does not match RCPT TO")
		}
		delete(want, strings.ToLower(r.Addr))
		// The receiving node routes afresh (its own directory).
		open = append(open, &mail.Recipient{Key: r.Key, Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt, State: mail.StatePending})
	}
	if len(want) > 0 || len(open) == 0 {
		return nil, reply(554, mail.StatusBadContent, "Envelope record does not match RCPT TO")
	}
	return open, nil
}

// transferred queues a message handed over by a cluster member with its
// envelope record (checked by transferRecipients); body already holds the
// Received header.
func (s *session) transferred(env *mail.Envelope, open []*mail.Recipient, body mail.Body, peer, helo string) error {
	now := s.srv.cfg.Now()
	out := &mail.Envelope{
		ID: env.ID, From: env.From, Recipients: open, EnvID: env.EnvID, Ret: env.Ret,
		SMTPUTF8: env.SMTPUTF8, Body8Bit: env.Body8Bit, Received: env.Received,
		Source: mail.SourceCluster, Auth: env.Auth, HELO: sanitizeHELO(helo), Size: body.Size(),
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
	msg := &mail.Message{Envelope: out, Body: body}
	if te, ok := s.srv.enq.(TransferEnqueuer); ok {
		dup, err = te.EnqueueTransfer(s.ctx, msg)
	} else {
		err = s.srv.enq.Enqueue(s.ctx, msg)
	}
	if err != nil {
		if mail.AsError(err) == nil && !errors.Is(err, mail.ErrNoSpace) {
			s.srv.log.Warn("enqueue of a transfer failed", "id", env.ID, "peer", peer, "err", err)
		}
		return errorReply(err)
	}
	s.srv.m.messageAccepted(string(mail.SourceCluster), int(out.Size))
	if dup {
		s.srv.log.Info("transfer already queued", "id", env.ID, "peer", peer)
		return reply(250, mail.StatusOK, "OK already queued as "+env.ID)
	}
	s.srv.log.Debug("transfer accepted", "id", env.ID, "peer", peer)
	return reply(250, mail.StatusOK, "OK queued as "+env.ID)
}

// dataIn reads DATA in pieces, counting them against the size limit and
// scanning them for bare CR, bare LF and over-long lines, and keeps
// nothing itself: each piece is valid until the next call. go-smtp's DATA
// reader returns ErrDataTooLarge once maxBytes are exceeded (and discards
// the rest itself); BDAT chunks over the limit never reach r.
type dataIn struct {
	r        io.Reader
	sc       lineScanner
	scanned  bool           // r scans what it returns with sc itself (fast)
	fast     fastDataReader // r when go-smtp's reader could be taken over
	maxBytes int64
	p        []byte

	size    int64
	tooBig  bool
	readErr error
	eof     bool // r is at its end (or failed)
}

// refused reports whether the message is known to be refused (or the
// connection out of step).
func (in *dataIn) refused() bool {
	return in.tooBig || in.sc.bare || in.sc.long || in.readErr != nil
}

// next returns the next piece of the message, nil at its end.
func (in *dataIn) next() []byte {
	for !in.eof {
		n, err := in.r.Read(in.p)
		if err != nil {
			in.eof = true
			switch {
			case err == io.EOF:
			case errors.Is(err, gosmtp.ErrDataTooLarge):
				in.tooBig = true
			default:
				in.readErr = err
			}
		}
		if n > 0 {
			in.size += int64(n)
			if !in.scanned {
				in.sc.scan(in.p[:n])
			}
			if in.size > in.maxBytes {
				in.tooBig = true
			}
			return in.p[:n]
		}
	}
	return nil
}

// start returns the first bytes of the message: its first line when the
// message starts with marker, and at most limit bytes more than a piece;
// otherwise what the first read returned (then valid, like a piece, until
// the next call).
func (in *dataIn) start(marker string, limit int) []byte {
	var head []byte
	m := []byte(marker)
	decided := func(h []byte) bool {
		return len(h) < len(m) && !bytes.HasPrefix(m, h) ||
			len(h) >= len(m) && (!bytes.HasPrefix(h, m) || bytes.Contains(h, []byte("\r\n"))) ||
			len(h) > limit
	}
	for {
		p := in.next()
		if p == nil {
			return head
		}
		if head == nil && decided(p) {
			return p // the common case: no copy
		}
		head = append(head, p...)
		if decided(head) {
			return head
		}
	}
}

// end finishes the scan (a CR at the very end is bare).
func (in *dataIn) end() { in.sc.end() }

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
		sc.scanByte(b)
	}
}

// end reports a CR at the very end of the message as bare.
func (sc *lineScanner) end() {
	if sc.prevCR {
		sc.bare = true
	}
}
