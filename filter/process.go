package filter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// drainGrace is how long a process's output readers may take to reach the
// end of their pipes after the program (and its process group) is gone.
// Only a descendant that left the group and kept the pipes open makes it
// run out; then the pipes are closed under it.
const drainGrace = 2 * time.Second

// handshake is the program's answer to INTF.
type handshake struct {
	version int
	err     error
}

// process is one running instance of the filter program: its pipes and the
// goroutines that serve them (a writer for standard input, readers for
// standard output and standard error, and a waiter). Lines to the program
// are queued with send and written by the writer, so no caller ever blocks
// on a program that stops reading.
type process struct {
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	log    *slog.Logger

	mu    sync.Mutex
	queue []byte        // bytes waiting for the writer
	wake  chan struct{} // cap 1: the queue is not empty

	stdinOnce sync.Once
	stopping  atomic.Bool // stop closed standard input on purpose
	answered  atomic.Bool // the process answered at least one request

	intfSeq uint64         // sequence number of this process's INTF request
	intf    chan handshake // cap 1: the INTF answer

	exited  chan struct{} // closed when Wait has returned
	waitErr error         // Wait's result; read only after exited is closed
	done    chan struct{} // closed when every goroutine of the process ended
}

// lineFunc receives each line the program writes to standard output, with
// its line end; tooLong marks a line cut at MaxLineBytes. It runs on the
// process's reader goroutine, one line at a time.
type lineFunc func(p *process, line string, tooLong bool)

// startProcess starts the program of cfg with fresh pipes and the
// goroutines that serve them. intfSeq is the sequence number the caller
// will use for INTF; onLine gets every line of standard output.
func startProcess(cfg Config, intfSeq uint64, onLine lineFunc) (*process, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.Env = childEnv(os.Environ())
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		return nil, err
	}
	// The child has its copies; ours of the child's ends must go, or the
	// readers would never see the end of the pipes.
	closeAll(inR, outW, errW)
	p := &process{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		stdin:   inW,
		stdout:  outR,
		stderr:  errR,
		log:     cfg.Logger.With("pid", cmd.Process.Pid),
		wake:    make(chan struct{}, 1),
		intfSeq: intfSeq,
		intf:    make(chan handshake, 1),
		exited:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	var pipes sync.WaitGroup
	pipes.Add(3)
	go func() { defer pipes.Done(); p.write() }()
	go func() { defer pipes.Done(); p.readStdout(onLine) }()
	go func() { defer pipes.Done(); p.readStderr() }()
	go p.wait(&pipes)
	return p, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// send queues line (which ends in LF) for the program. It never blocks.
func (p *process) send(line []byte) {
	p.mu.Lock()
	p.queue = append(p.queue, line...)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// write is the writer goroutine: it copies queued lines to the program
// until the program exits or its standard input fails.
func (p *process) write() {
	for {
		select {
		case <-p.wake:
		case <-p.exited:
			return
		}
		p.mu.Lock()
		buf := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := p.stdin.Write(buf); err != nil {
			if !p.stopping.Load() {
				// The program closed its input but runs on: it can never
				// get another request. Kill it so that it is restarted.
				p.log.Warn("cannot write to filter program; killing it", "err", err)
				p.kill()
			}
			return
		}
	}
}

// readStdout is the reader goroutine of standard output. When the output
// ends while the program still runs, the program is killed: it can no
// longer answer.
func (p *process) readStdout(onLine lineFunc) {
	err := readLines(p.stdout, MaxLineBytes, func(line []byte, tooLong bool) {
		onLine(p, string(line), tooLong)
	})
	select {
	case <-p.exited:
	default:
		if err == nil && !p.stopping.Load() {
			p.log.Debug("filter program closed its standard output; killing it")
		}
		p.kill()
	}
}

// readStderr logs what the program writes to standard error.
func (p *process) readStderr() {
	_ = readLines(p.stderr, MaxLineBytes, func(line []byte, tooLong bool) {
		if text := sanitizeText(string(line)); text != "" {
			p.log.Warn("filter program stderr", "text", text, "truncated", tooLong)
		}
	})
}

// wait is the waiter goroutine: it reaps the program, kills what is left
// of its process group, closes its input, lets the readers drain the
// pipes, and closes done when the process is over.
func (p *process) wait(pipes *sync.WaitGroup) {
	err := p.cmd.Wait()
	p.waitErr = err
	close(p.exited)
	killGroup(p.cmd.Process)
	p.closeStdin()
	drained := make(chan struct{})
	go func() { pipes.Wait(); close(drained) }()
	t := time.NewTimer(drainGrace)
	select {
	case <-drained:
	case <-t.C:
		p.log.Warn("a descendant of the filter program holds its pipes; closing them")
		closeAll(p.stdout, p.stderr)
		<-drained
	}
	t.Stop()
	closeAll(p.stdout, p.stderr)
	close(p.done)
}

func (p *process) closeStdin() {
	p.stdinOnce.Do(func() { _ = p.stdin.Close() })
}

// kill kills the program and its process group at once, unless it has
// exited already.
func (p *process) kill() {
	select {
	case <-p.exited:
	default:
		killGroup(p.cmd.Process)
	}
}

// stop ends the process gracefully: its standard input is closed, and it
// is killed if it has not exited after grace. It returns when every
// goroutine of the process has ended; the error says whether it had to be
// killed.
func (p *process) stop(grace time.Duration) error {
	p.stopping.Store(true)
	p.closeStdin()
	t := time.NewTimer(grace)
	defer t.Stop()
	var err error
	select {
	case <-p.exited:
	case <-t.C:
		err = fmt.Errorf("filter program (pid %d) did not exit within %v; killed", p.pid, grace)
		p.kill()
	}
	<-p.done
	return err
}

// readLines calls fn for each line of r (with its line end). A line longer
// than max bytes (without its line end) is passed cut, with tooLong set,
// and the rest of it is skipped. A last line without a line end is passed
// too. It returns nil at the end of r, else the read error.
func readLines(r io.Reader, max int, fn func(line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, max+2) // room for CR LF
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			fn(line[:max], true)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
		} else if len(line) > 0 {
			content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if len(content) > max {
				fn(content[:max], true)
			} else {
				fn(line, false)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// childEnv is the environment of the filter program: Homing's, without
// the variables whose names start with HOMING_ (the cluster secret, admin
// tokens), which are none of a third-party program's business.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOMING_") {
			out = append(out, kv)
		}
	}
	return out
}
