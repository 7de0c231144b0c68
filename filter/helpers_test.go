package filter

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/testkit/tlog"
)

// waitLimit bounds every wait of these tests for the filter or its log.
const waitLimit = 20 * time.Second

// env is one filter under test with its registry and log.
type env struct {
	f   *Filter
	reg *prometheus.Registry
	log *tlog.Lines // the filter's log lines, also in t.Log
	dir string      // for message files
}

// start starts a filter running command with cfg's other settings, and
// closes it when the test ends.
func start(t *testing.T, cfg Config, command ...string) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry(), log: new(tlog.Lines), dir: t.TempDir()}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Command = command
	cfg.Logger = tlog.New(t, "filter", tlog.KeepIn(e.log))
	if cfg.Restart == 0 {
		cfg.Restart = 10 * time.Millisecond
	}
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	f, err := Start(cfg, NewMetrics(e.reg))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.f = f
	t.Cleanup(func() { _ = f.Close() })
	return e
}

// startExample starts the example filter with args.
func startExample(t *testing.T, cfg Config, args ...string) *env {
	t.Helper()
	return start(t, cfg, append([]string{exampleBin}, args...)...)
}

// message writes a message file with the subject and extra header fields.
func (e *env) message(t testing.TB, subject string, fields ...string) string {
	t.Helper()
	body := "From: <a@example.net>\r\nTo: <b@example.test>\r\n"
	for _, f := range fields {
		body += f + "\r\n"
	}
	body += "Subject: " + subject + "\r\n\r\nHello.\r\n"
	path, err := WriteMessageFile(e.dir, "a@example.net", []string{"b@example.test"}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// metric is the value of a counter or gauge, or the sample count of a
// histogram, with exactly the labels given (0 if absent).
func (e *env) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// script writes a shell script filter into a temporary directory and
// returns the command that runs it.
func script(t testing.TB, body string, args ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "filter.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return append([]string{"/bin/sh", path}, args...)
}

// answering is a shell filter that answers INTF, and every FILE request
// with the fixed text of its first argument after the sequence number.
const answering = `while IFS=' ' read -r seq cmd rest; do
	case "$cmd" in
	INTF) printf '%s INTF 3\n' "$seq" ;;
	FILE) printf '%s %s\n' "$seq" "$1" ;;
	esac
done
`
