package testkit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a logger that writes every record to t.Log, prefixed with
// name, until the test ends (later records are dropped, since t.Log
// panics after the test).
func Logger(t testing.TB, name string) *slog.Logger {
	h := &tlogHandler{t: t, prefix: name, mu: &sync.Mutex{}, done: new(bool)}
	t.Cleanup(func() {
		h.mu.Lock()
		*h.done = true
		h.mu.Unlock()
	})
	return slog.New(h)
}

type tlogHandler struct {
	t      testing.TB
	prefix string
	attrs  []slog.Attr
	group  string
	mu     *sync.Mutex
	done   *bool
}

func (h *tlogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tlogHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	th := slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	var hh slog.Handler = th.WithAttrs(h.attrs)
	if h.group != "" {
		hh = hh.WithGroup(h.group)
	}
	if err := hh.Handle(context.Background(), r); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !*h.done {
		h.t.Logf("[%s] %s", h.prefix, strings.TrimRight(b.String(), "\n"))
	}
	return nil
}

func (h *tlogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *tlogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
