package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Filter is one external filter program and the requests waiting for it.
// Create it with Start; it is safe for concurrent use, and must be closed
// with Close to stop the program and the goroutines serving it.
type Filter struct {
	cfg  Config
	m    *Metrics
	log  *slog.Logger
	name string

	mu      sync.Mutex
	seq     uint64              // last sequence number used
	pending map[uint64]*request // requests waiting for an answer
	proc    *process            // the process taking requests; nil while restarting
	closed  bool

	invocations atomic.Int64

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the supervisor has ended
	closeErr  error         // the supervisor's last stop; read after done
}

// request is one Check call waiting for its answer. Whoever removes it
// from Filter.pending (under Filter.mu) owns it: the answer, a give-up or
// Close sends the result; a timeout or cancellation drops it.
type request struct {
	seq      uint64
	line     []byte   // "seq FILE path\n"
	attempts int      // how often it was sent
	proc     *process // the process it was last sent to; nil: not sent there yet
	done     chan result
}

type result struct {
	v   Verdict
	err error
}

// Start starts the program of cfg, performs the INTF handshake, and
// returns the Filter that serves it. It fails if the config is unusable
// (ErrInvalidConfig), the program cannot be started, or it does not answer
// INTF within cfg.Timeout. m may be nil.
func Start(cfg Config, m *Metrics) (*Filter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Filter{
		cfg:     cfg,
		m:       m,
		log:     cfg.Logger,
		name:    cfg.Name,
		pending: make(map[uint64]*request),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.prepare(f.name)
	p, err := f.spawn()
	if err != nil {
		return nil, fmt.Errorf("filter %s: start %q: %w", f.name, cfg.Command[0], err)
	}
	f.proc = p
	f.m.setRunning(f.name, true)
	go f.supervise(p)
	return f, nil
}

// spawn starts one process and performs the handshake.
func (f *Filter) spawn() (*process, error) {
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	p, err := startProcess(f.cfg, seq, f.onLine)
	if err != nil {
		return nil, err
	}
	p.send(fmt.Appendf(nil, "%d INTF %d\n", seq, InterfaceVersion))
	t := time.NewTimer(f.cfg.Timeout)
	defer t.Stop()
	select {
	case h := <-p.intf:
		if h.err != nil {
			p.kill()
			<-p.done
			return nil, fmt.Errorf("bad INTF answer: %w", h.err)
		}
		p.log.Info("filter program started", "interface", min(h.version, InterfaceVersion))
		return p, nil
	case <-p.exited:
		<-p.done
		return nil, fmt.Errorf("program exited during the INTF handshake (%s)", exitText(p.waitErr))
	case <-t.C:
		p.kill()
		<-p.done
		return nil, fmt.Errorf("no INTF answer within %v", f.cfg.Timeout)
	case <-f.closing:
		_ = p.stop(f.cfg.Grace)
		return nil, ErrClosed
	}
}

// onLine handles one line from process p (see lineFunc).
func (f *Filter) onLine(p *process, line string, tooLong bool) {
	if tooLong {
		perr := &ProtocolError{Line: cut(line, 200), Reason: "line longer than " + strconv.Itoa(MaxLineBytes) + " bytes"}
		seq, ok := seqPrefix(line)
		perr.Seq = seq
		p.log.Warn("filter protocol error", "err", perr)
		if ok {
			f.finish(p, seq, Verdict{Kind: KindFailure, Text: "content filter answered with a protocol error"}, perr)
		}
		return
	}
	r, err := parseResponse(line)
	switch {
	case r.info:
		p.log.Info("filter program says", "text", r.text)
	case r.hasSeq && r.seq == p.intfSeq:
		h := handshake{version: r.version, err: err}
		if err == nil && r.verb != verbINTF {
			h.err = errors.New("answer " + r.verb + " to INTF")
		}
		select {
		case p.intf <- h:
		default: // a second answer to INTF: ignored
		}
	case err != nil:
		p.log.Warn("filter protocol error", "err", err)
		if r.hasSeq {
			f.finish(p, r.seq, Verdict{Kind: KindFailure, Text: "content filter answered with a protocol error"}, err)
		}
	case r.verb == verbINTF:
		p.log.Warn("unexpected INTF answer", "seq", r.seq)
	default:
		f.finish(p, r.seq, r.verdict, nil)
	}
}

// finish delivers the answer to request seq if it is still waiting for
// process p.
func (f *Filter) finish(p *process, seq uint64, v Verdict, err error) {
	f.mu.Lock()
	req := f.pending[seq]
	if req == nil || req.proc != p {
		f.mu.Unlock()
		p.log.Info("answer to a request that is no longer waiting", "seq", seq)
		return
	}
	delete(f.pending, seq)
	f.mu.Unlock()
	p.answered.Store(true)
	req.done <- result{v: v, err: err}
}

// Check asks the filter about the message file at path (made absolute)
// and waits for the verdict. The program's own answers, FAILURE included,
// come with a nil error. It returns a KindFailure verdict and a non-nil
// error when no usable answer came: ErrTimeout after Config.Timeout,
// ErrGaveUp when the program died MaxAttempts times under the request,
// ErrProtocol (and ErrBadHeader) for an unusable answer, ErrClosed after
// Close, ErrInvalidPath for a path that cannot be sent, or the context's
// error when ctx ends first. The file must exist until Check returns.
// Safe for concurrent use; many calls may wait at once.
func (f *Filter) Check(ctx context.Context, path string) (Verdict, error) {
	start := time.Now()
	v, err := f.check(ctx, path)
	v = withDefaultText(v)
	f.m.answer(f.name, v.Kind, time.Since(start))
	if err != nil {
		f.m.failure(f.name, reason(err))
	}
	return v, err
}

func (f *Filter) check(ctx context.Context, path string) (Verdict, error) {
	if path == "" || strings.ContainsAny(path, "\r\n\x00") {
		return Verdict{Kind: KindFailure, Text: "invalid message path"}, fmt.Errorf("%w: %q", ErrInvalidPath, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Verdict{Kind: KindFailure, Text: "invalid message path"}, fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	if err := ctx.Err(); err != nil {
		return Verdict{Kind: KindFailure, Text: "content filter check cancelled"}, err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return Verdict{Kind: KindFailure, Text: "content filter closed"}, ErrClosed
	}
	f.seq++
	req := &request{seq: f.seq, done: make(chan result, 1)}
	req.line = fmt.Appendf(nil, "%d FILE %s\n", req.seq, abs)
	f.pending[req.seq] = req
	if f.proc != nil {
		f.sendLocked(f.proc, req)
	}
	f.mu.Unlock()
	f.invocations.Add(1)
	f.m.request(f.name)

	t := time.NewTimer(f.cfg.Timeout)
	defer t.Stop()
	select {
	case r := <-req.done:
		return r.v, r.err
	case <-t.C:
		if r, answered := f.abandon(req, true); answered {
			return r.v, r.err
		}
		return Verdict{Kind: KindFailure, Text: "content filter timed out"},
			fmt.Errorf("filter %s: %w after %v", f.name, ErrTimeout, f.cfg.Timeout)
	case <-ctx.Done():
		if r, answered := f.abandon(req, false); answered {
			return r.v, r.err
		}
		return Verdict{Kind: KindFailure, Text: "content filter check cancelled"}, ctx.Err()
	}
}

// sendLocked sends req to p. f.mu must be held.
func (f *Filter) sendLocked(p *process, req *request) {
	req.attempts++
	req.proc = p
	if req.attempts > 1 {
		f.m.resend(f.name)
	}
	p.send(req.line)
}

// abandon removes req from the pending requests after its timeout or
// cancellation. If an answer won the race, it returns that answer. On a
// timeout (hung) the process that has the request is presumed hung and
// killed; the supervisor restarts it.
func (f *Filter) abandon(req *request, hung bool) (result, bool) {
	f.mu.Lock()
	if f.pending[req.seq] != req {
		f.mu.Unlock()
		return <-req.done, true
	}
	delete(f.pending, req.seq)
	p := req.proc
	kill := hung && p != nil && p == f.proc
	f.mu.Unlock()
	if kill {
		p.log.Warn("filter program did not answer in time; killing it", "seq", req.seq, "timeout", f.cfg.Timeout)
		p.kill()
	}
	return result{}, false
}

// supervise waits for the process to end, restarts the program with a
// doubling back-off, and sends the pending requests to each new process,
// until Close.
func (f *Filter) supervise(p *process) {
	defer close(f.done)
	backoff := f.cfg.Restart
	limit := max(MaxRestart, f.cfg.Restart)
	for {
		select {
		case <-p.done:
		case <-f.closing:
			f.closeErr = p.stop(f.cfg.Grace)
			f.m.setRunning(f.name, false)
			return
		}
		f.m.setRunning(f.name, false)
		f.buried(p)
		if p.answered.Load() {
			backoff = f.cfg.Restart
		}
		p.log.Warn("filter program ended; restarting it", "exit", exitText(p.waitErr), "after", backoff)
		for {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-f.closing:
				t.Stop()
				return
			}
			backoff = min(backoff*2, limit)
			f.m.restart(f.name)
			np, err := f.spawn()
			if errors.Is(err, ErrClosed) {
				return
			}
			if err == nil {
				p = np
				break
			}
			f.log.Warn("filter program failed to restart", "err", err, "retry_after", backoff)
		}
		f.mu.Lock()
		f.proc = p
		seqs := make([]uint64, 0, len(f.pending))
		for seq, req := range f.pending {
			if req.proc == nil {
				seqs = append(seqs, seq)
			}
		}
		slices.Sort(seqs)
		for _, seq := range seqs {
			f.sendLocked(p, f.pending[seq])
		}
		f.mu.Unlock()
		f.m.setRunning(f.name, true)
		if len(seqs) > 0 {
			p.log.Info("pending requests sent to the restarted filter program", "count", len(seqs))
		}
	}
}

// buried forgets the dead process p: requests it had are ended with
// ErrGaveUp after MaxAttempts, or wait to be sent to the next process.
func (f *Filter) buried(p *process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proc == p {
		f.proc = nil
	}
	for seq, req := range f.pending {
		if req.proc != p {
			continue
		}
		if req.attempts >= MaxAttempts {
			delete(f.pending, seq)
			req.done <- result{
				v:   Verdict{Kind: KindFailure, Text: "content filter failed repeatedly on this message"},
				err: fmt.Errorf("filter %s: %w (%d attempts)", f.name, ErrGaveUp, req.attempts),
			}
			continue
		}
		req.proc = nil
	}
}

// Invocations is the number of Check calls that were handed to the filter
// (not counting re-sends after restarts), for tests and /metrics.
func (f *Filter) Invocations() int64 { return f.invocations.Load() }

// Name is the filter's name (Config.Name or its default).
func (f *Filter) Name() string { return f.name }

// Close ends every pending request with ErrClosed, stops the program
// (closes its standard input, waits Config.Grace, then kills its process
// group) and waits for the goroutines of the Filter to end. It returns an
// error if the program had to be killed. Calling it again returns the same
// result.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		pending := f.pending
		f.pending = make(map[uint64]*request)
		f.mu.Unlock()
		for _, req := range pending {
			req.done <- result{v: Verdict{Kind: KindFailure, Text: "content filter closed"}, err: ErrClosed}
		}
		close(f.closing)
	})
	<-f.done
	return f.closeErr
}

// pid is the process id of the program taking requests, 0 while none does
// (for tests).
func (f *Filter) pid() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proc == nil {
		return 0
	}
	return f.proc.pid
}

// withDefaultText gives a refusal or failure without a report a text.
func withDefaultText(v Verdict) Verdict {
	if v.Text != "" {
		return v
	}
	switch v.Kind {
	case KindReject:
		v.Text = "message rejected by content filter"
	case KindError:
		v.Text = "message refused by content filter"
	case KindFailure:
		v.Text = "content filter failure, try again later"
	}
	return v
}

// reason is the metrics label for an error returned by Check.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrGaveUp):
		return "gave_up"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrInvalidPath):
		return "invalid_path"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// exitText describes how a program ended, from cmd.Wait's error.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
