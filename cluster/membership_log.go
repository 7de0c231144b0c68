package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/homing-mail/homing/ratelog"
)

// memberlistLogWriter turns memberlist's log lines ("[WARN] memberlist:
// text") into slog records at the matching level. It also reads two of
// them, because memberlist reports these events nowhere else:
//
//   - "Suspect NAME has failed, no acks received": this node's probe of NAME
//     failed and memberlist now suspects it (Members shows it suspect);
//   - "Refuting a dead message": another member declared this node dead
//     (SelfDeclaredDead).
//
// Both texts are those of memberlist v0.7.0 (state.go); the tests of
// suspicion and of SelfDeclaredDead fail if a new version changes them.
// memberlist may write while holding its node lock: Write never blocks on
// anything but the slog handler.
//
// Lines of one kind (ratelog.Kind) are written at most once a second, with
// the number dropped since (suppressed=N): a peer that sends garbage to the
// gossip port cannot flood the log. The two events above are read from
// every line, written or not.
type memberlistLogWriter struct {
	m        *Membership
	throttle *ratelog.Throttle
}

// memberlistLogEvery is the most often a line of one kind is written.
const memberlistLogEvery = time.Second

// newMemberlistLog returns the *log.Logger memberlist and its transport
// write to. log.Logger makes one Write per line.
func newMemberlistLog(m *Membership) *log.Logger {
	return log.New(memberlistLogWriter{m: m, throttle: ratelog.NewThrottle(memberlistLogEvery, time.Now)}, "", 0)
}

// refuteGrace: see Write.
const refuteGrace = 10 * time.Second

const (
	suspectPrefix = "Suspect "
	suspectSuffix = " has failed, no acks received"
	refuteDead    = "Refuting a dead message"
)

func (w memberlistLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := slog.LevelInfo
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, text, ok := strings.Cut(rest, "] "); ok {
			switch tag {
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = text
		}
	}
	if ok, suppressed := w.throttle.Allow(line); ok && suppressed > 0 {
		w.m.log.Log(context.Background(), level, line, "suppressed", suppressed)
	} else if ok {
		w.m.log.Log(context.Background(), level, line)
	}

	text := strings.TrimPrefix(line, "memberlist: ")
	if rest, ok := strings.CutPrefix(text, suspectPrefix); ok {
		if name, ok := strings.CutSuffix(rest, suspectSuffix); ok && w.m.setSuspect(name) {
			w.m.signalChanged()
		}
	}
	// The refuted message names no incarnation: in the first moments of a
	// process it is usually about a predecessor under the same name, so it
	// only counts after refuteGrace (push/pull state and join lists, which
	// carry the start time, are trusted at once).
	if strings.HasPrefix(text, refuteDead) && time.Since(time.Unix(0, w.m.Meta().Started)) > refuteGrace {
		w.m.declaredDead("a member gossiped that this node is dead (" + text + ")")
	}
	return len(p), nil
}
