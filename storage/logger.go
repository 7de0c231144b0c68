package storage

import (
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger adapts badger.Logger to slog at WARNING level: errors and
// warnings are passed on, info and debug output is dropped.
//
// It also watches for one message. badger's value log syncs its file after
// each write, but only logs a failure of that sync ("Error while curlf
// sync", value.go valueLog.write) and still reports the write as
// successful. onSyncError is called for it, so the committer can fail the
// commit that was running (the committer is the only writer, so the failure
// belongs to its current transaction). It is safe for concurrent use.
type badgerLogger struct {
	log         *slog.Logger
	onSyncError func(msg string)
}

func (l *badgerLogger) Errorf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	if strings.HasPrefix(format, "Error while curlf sync") && l.onSyncError != nil {
		l.onSyncError(msg)
	}
	l.log.Error(msg, "component", "badger")
}

func (l *badgerLogger) Warningf(format string, args ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (l *badgerLogger) Infof(string, ...any) {}

func (l *badgerLogger) Debugf(string, ...any) {}
