package filter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

func TestHandshakeAndInfoLines(t *testing.T) {
	e := startExample(t, Config{})
	// The example writes "* ... started" before it answers INTF; the line
	// is logged and does not disturb the handshake.
	e.log.WaitCount(t, 1, waitLimit, "homing-filter-example started")
	if e.log.Count("filter program started") != 1 {
		t.Fatal("no log record of the handshake")
	}
	if e.f.pid() == 0 {
		t.Fatal("no process after Start")
	}
	if got := e.metric(t, "homing_filter_running", "filter", "test"); got != 1 {
		t.Fatalf("homing_filter_running = %v, want 1", got)
	}
}

func TestStartFails(t *testing.T) {
	cases := []struct {
		name    string
		command []string
		timeout time.Duration
		want    string
	}{
		{"no such program", []string{filepath.Join(t.TempDir(), "nope")}, 10 * time.Second, "no such file"},
		{"exits at once", script(t, "exit 0\n"), 10 * time.Second, "exited during the INTF handshake"},
		{"wrong answer", script(t, "read -r seq rest\nprintf '%s OK\\n' \"$seq\"\ncat >/dev/null\n"), 10 * time.Second, "bad INTF answer"},
		{"bad version", script(t, "read -r seq rest\nprintf '%s INTF zero\\n' \"$seq\"\ncat >/dev/null\n"), 10 * time.Second, "bad INTF answer"},
		{"silent", script(t, "cat >/dev/null\n"), 300 * time.Millisecond, "no INTF answer within"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			f, err := Start(Config{Name: "x", Command: c.command, Timeout: c.timeout}, nil)
			if err == nil {
				_ = f.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v, want an error containing %q", err, c.want)
			}
			t.Logf("Start failed after %v: %v", time.Since(start), err)
		})
	}
	if _, err := Start(Config{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start without a command: %v, want ErrInvalidConfig", err)
	}
}

func TestEveryVerdict(t *testing.T) {
	e := startExample(t, Config{})
	cases := []struct {
		subject string
		want    Verdict
	}{
		{"hello", Verdict{Kind: KindOK, Headers: []string{"X-Homing-Filtered: yes"}}},
		{"buy now SPAM-TEST", Verdict{Kind: KindReject, Text: "spam"}},
		{"DISCARD-TEST", Verdict{Kind: KindDiscard}},
		{"ERROR-TEST", Verdict{Kind: KindError, Text: "message refused by the example filter"}},
		{"FAIL-TEST", Verdict{Kind: KindFailure, Text: "temporary failure requested"}},
	}
	for _, c := range cases {
		v, err := e.f.Check(context.Background(), e.message(t, c.subject))
		if err != nil {
			t.Fatalf("%s: Check: %v", c.subject, err)
		}
		if v.Kind != c.want.Kind || v.Text != c.want.Text || !slices.Equal(v.Headers, c.want.Headers) {
			t.Errorf("%s: verdict %+v, want %+v", c.subject, v, c.want)
		}
	}
	if got := e.f.Invocations(); got != int64(len(cases)) {
		t.Errorf("Invocations = %d, want %d", got, len(cases))
	}
}

// TestMissingFile: the program cannot read the file and answers FAILURE.
func TestMissingFile(t *testing.T) {
	e := startExample(t, Config{})
	v, err := e.f.Check(context.Background(), filepath.Join(e.dir, "gone.msg"))
	if err != nil || v.Kind != KindFailure || v.Text != "cannot read the message file" {
		t.Fatalf("Check of a missing file: %+v, %v", v, err)
	}
}

func TestAnswersOutOfOrder(t *testing.T) {
	e := startExample(t, Config{})
	slow := make(chan Verdict, 1)
	go func() {
		v, err := e.f.Check(context.Background(), e.message(t, "slow", "X-Test-Delay: 1s"))
		if err != nil {
			t.Error(err)
		}
		slow <- v
	}()
	// The slow request is registered (and sent) before the fast one.
	wait.For(t, waitLimit, func() bool { return e.f.Invocations() == 1 }, "the slow request to be sent")
	v, err := e.f.Check(context.Background(), e.message(t, "fast SPAM-TEST"))
	if err != nil || v.Kind != KindReject {
		t.Fatalf("fast request: %+v, %v", v, err)
	}
	select {
	case v := <-slow:
		t.Fatalf("the slow request was answered first: %+v", v)
	default:
	}
	if v := <-slow; v.Kind != KindOK {
		t.Fatalf("slow request: %+v", v)
	}
}

func TestManyConcurrentChecks(t *testing.T) {
	e := startExample(t, Config{}, "-max-delay", "20ms")
	kinds := map[string]Kind{"plain": KindOK, "SPAM-TEST": KindReject, "DISCARD-TEST": KindDiscard, "ERROR-TEST": KindError, "FAIL-TEST": KindFailure}
	words := []string{"plain", "SPAM-TEST", "DISCARD-TEST", "ERROR-TEST", "FAIL-TEST"}
	const n = 300
	var wg sync.WaitGroup
	want := map[Kind]int{}
	for i := range n {
		word := words[rand.IntN(len(words))]
		want[kinds[word]]++
		path := e.message(t, fmt.Sprintf("%s %d", word, i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := e.f.Check(context.Background(), path)
			if err != nil {
				t.Errorf("%s: %v", word, err)
				return
			}
			if v.Kind != kinds[word] {
				t.Errorf("message %d (%s): verdict %v, want %v", i, word, v.Kind, kinds[word])
			}
		}()
	}
	wg.Wait()
	if got := e.f.Invocations(); got != n {
		t.Errorf("Invocations = %d, want %d", got, n)
	}
	for k, w := range want {
		if got := e.metric(t, "homing_filter_answers_total", "filter", "test", "kind", k.String()); got != float64(w) {
			t.Errorf("answers{kind=%v} = %v, want %d", k, got, w)
		}
	}
}

func TestTimeoutKillsAndRestarts(t *testing.T) {
	e := startExample(t, Config{Timeout: time.Second})
	first := e.f.pid()
	begin := time.Now()
	v, err := e.f.Check(context.Background(), e.message(t, "HANG-TEST"))
	if !errors.Is(err, ErrTimeout) || v.Kind != KindFailure {
		t.Fatalf("Check of a message the filter never answers: %+v, %v", v, err)
	}
	if d := time.Since(begin); d < time.Second {
		t.Fatalf("timed out after %v, before the 1s timeout", d)
	}
	// The hung program is killed and started again; the next message is
	// judged by the new process.
	wait.For(t, waitLimit, func() bool { p := e.f.pid(); return p != 0 && p != first }, "a restarted process")
	v, err = e.f.Check(context.Background(), e.message(t, "after"))
	if err != nil || v.Kind != KindOK {
		t.Fatalf("Check after the restart: %+v, %v", v, err)
	}
	if got := e.metric(t, "homing_filter_errors_total", "filter", "test", "reason", "timeout"); got != 1 {
		t.Errorf("errors{reason=timeout} = %v, want 1", got)
	}
	if got := e.metric(t, "homing_filter_restarts_total", "filter", "test"); got != 1 {
		t.Errorf("restarts = %v, want 1", got)
	}
}

func TestKilledProgramIsRestartedAndPendingResent(t *testing.T) {
	hold := filepath.Join(t.TempDir(), "hold")
	if err := os.WriteFile(hold, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := startExample(t, Config{}, "-hang-while", hold)
	const n = 5
	type answer struct {
		v   Verdict
		err error
	}
	answers := make(chan answer, n)
	for i := range n {
		path := e.message(t, fmt.Sprintf("message %d", i))
		go func() {
			v, err := e.f.Check(context.Background(), path)
			answers <- answer{v, err}
		}()
	}
	// The first process has read every request and holds it.
	e.log.WaitCount(t, n, waitLimit, `text="holding`) // slog quotes "holding <seq>"
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	first := e.f.pid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range n {
		a := <-answers
		if a.err != nil || a.v.Kind != KindOK || !slices.Equal(a.v.Headers, []string{"X-Homing-Filtered: yes"}) {
			t.Errorf("answer after the restart: %+v, %v", a.v, a.err)
		}
	}
	if p := e.f.pid(); p == first || p == 0 {
		t.Errorf("pid after restart = %d, first was %d", p, first)
	}
	if got := e.metric(t, "homing_filter_restarts_total", "filter", "test"); got != 1 {
		t.Errorf("restarts = %v, want 1", got)
	}
	if got := e.metric(t, "homing_filter_resends_total", "filter", "test"); got != n {
		t.Errorf("resends = %v, want %d", got, n)
	}
	if got := e.f.Invocations(); got != n {
		t.Errorf("Invocations = %d, want %d (re-sends do not count)", got, n)
	}
}

func TestPoisonMessageGivesUpAfterThreeAttempts(t *testing.T) {
	e := startExample(t, Config{})
	v, err := e.f.Check(context.Background(), e.message(t, "CRASH-TEST"))
	if !errors.Is(err, ErrGaveUp) || v.Kind != KindFailure {
		t.Fatalf("Check of a message that kills the filter: %+v, %v", v, err)
	}
	if got := e.metric(t, "homing_filter_restarts_total", "filter", "test"); got < MaxAttempts-1 {
		t.Errorf("restarts = %v, want at least %d", got, MaxAttempts-1)
	}
	if got := e.metric(t, "homing_filter_resends_total", "filter", "test"); got != MaxAttempts-1 {
		t.Errorf("resends = %v, want %d", got, MaxAttempts-1)
	}
	// The filter recovers for other messages.
	v, err = e.f.Check(context.Background(), e.message(t, "innocent"))
	if err != nil || v.Kind != KindOK {
		t.Fatalf("Check after the poison message: %+v, %v", v, err)
	}
}

func TestScriptedAnswers(t *testing.T) {
	cases := []struct {
		name    string
		answer  string
		want    Verdict
		wantErr error
	}{
		{"ok", "OK", Verdict{Kind: KindOK}, nil},
		{"lower case", "ok", Verdict{Kind: KindOK}, nil},
		{"addheader without OK", `ADDHEADER "X-Score: 1"`, Verdict{Kind: KindOK, Headers: []string{"X-Score: 1"}}, nil},
		{"several headers, folded", `ADDHEADER "X-A: 1\eX-B: 2\e\tfolded\e" OK`,
			Verdict{Kind: KindOK, Headers: []string{"X-A: 1", "X-B: 2\tfolded"}}, nil},
		{"utf-8 header", `ADDHEADER "X-Note: grüße" OK`, Verdict{Kind: KindOK, Headers: []string{"X-Note: grüße"}}, nil},
		{"rejected unquoted", "REJECTED virus found", Verdict{Kind: KindReject, Text: "virus found"}, nil},
		{"rejected bare", "REJECTED", Verdict{Kind: KindReject, Text: "message rejected by content filter"}, nil},
		{"failure bare", "FAILURE", Verdict{Kind: KindFailure, Text: "content filter failure, try again later"}, nil},
		{"report with CRLF", `ERROR "bad\r\n250 OK"`, Verdict{Kind: KindError, Text: "bad  250 OK"}, nil},
		{"injection CRLF", `ADDHEADER "X-A: 1\r\nBcc: evil@example.net" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"injection LF", `ADDHEADER "X-A: 1\nBcc: evil@example.net" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"injection decimal escapes", `ADDHEADER "X-A: 1\013\010Bcc: evil@example.net" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"injection body", `ADDHEADER "X-A: 1\r\n\r\nfake body" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"NUL", `ADDHEADER "X-A: a\000b" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"bad name", `ADDHEADER "Bad Name: x" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"no colon", `ADDHEADER "just text" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"continuation first", `ADDHEADER " X-A: 1" OK`, Verdict{Kind: KindFailure}, ErrBadHeader},
		{"unquoted header", "ADDHEADER X-A: 1", Verdict{Kind: KindFailure}, ErrProtocol},
		{"addheader then discard", `ADDHEADER "X-A: 1" DISCARD`, Verdict{Kind: KindFailure}, ErrProtocol},
		{"unknown keyword", "MIRROR x@example.net", Verdict{Kind: KindFailure}, ErrProtocol},
		{"ok with garbage", "OK please", Verdict{Kind: KindFailure}, ErrProtocol},
		{"too long", "REJECTED " + strings.Repeat("x", MaxLineBytes), Verdict{Kind: KindFailure}, ErrProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, Config{}, script(t, answering, c.answer)...)
			v, err := e.f.Check(context.Background(), e.message(t, "x"))
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("Check: %v, want %v", err, c.wantErr)
			}
			if v.Kind != c.want.Kind || !slices.Equal(v.Headers, c.want.Headers) || (c.want.Text != "" && v.Text != c.want.Text) {
				t.Fatalf("verdict %+v, want %+v", v, c.want)
			}
			if c.wantErr != nil {
				if got := e.metric(t, "homing_filter_errors_total", "filter", "test", "reason", "protocol"); got != 1 {
					t.Errorf("errors{reason=protocol} = %v, want 1", got)
				}
			}
		})
	}
}

// TestLateAnswerIgnored: an answer for a request that is no longer waiting
// (here: never made) is logged and changes nothing.
func TestUnknownSequenceIgnored(t *testing.T) {
	e := start(t, Config{}, script(t, `while IFS=' ' read -r seq cmd rest; do
	case "$cmd" in
	INTF) printf '%s INTF 3\n' "$seq" ;;
	FILE) printf '999 REJECTED "not yours"\n%s OK\n' "$seq" ;;
	esac
done
`)...)
	v, err := e.f.Check(context.Background(), e.message(t, "x"))
	if err != nil || v.Kind != KindOK {
		t.Fatalf("Check: %+v, %v", v, err)
	}
	if e.log.Count("no longer waiting") != 1 {
		t.Fatal("the answer with an unknown sequence number was not logged")
	}
}

func TestContextCancelLeavesProgramAlone(t *testing.T) {
	e := startExample(t, Config{Grace: 200 * time.Millisecond}) // the HANG-TEST request makes Close kill it
	pid := e.f.pid()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		v, err := e.f.Check(ctx, e.message(t, "HANG-TEST"))
		if v.Kind != KindFailure {
			t.Errorf("verdict %+v", v)
		}
		done <- err
	}()
	wait.For(t, waitLimit, func() bool { return e.f.Invocations() == 1 }, "the request to be sent")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Check: %v, want context.Canceled", err)
	}
	v, err := e.f.Check(context.Background(), e.message(t, "next"))
	if err != nil || v.Kind != KindOK {
		t.Fatalf("next Check: %+v, %v", v, err)
	}
	if e.f.pid() != pid {
		t.Fatal("the program was restarted after a cancellation")
	}
}

func TestCloseEndsPendingAndKillsAfterGrace(t *testing.T) {
	e := startExample(t, Config{Grace: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := e.f.Check(context.Background(), e.message(t, "HANG-TEST"))
		done <- err
	}()
	wait.For(t, waitLimit, func() bool { return e.f.Invocations() == 1 }, "the request to be sent")
	// The example waits for its requests at the end of its input, and a
	// HANG-TEST request never ends: Close has to kill it.
	if err := e.f.Close(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Close: %v, want an error saying the program was killed", err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending Check: %v, want ErrClosed", err)
	}
	if v, err := e.f.Check(context.Background(), e.message(t, "late")); !errors.Is(err, ErrClosed) || v.Kind != KindFailure {
		t.Fatalf("Check after Close: %+v, %v", v, err)
	}
	if err := e.f.Close(); err == nil {
		t.Fatal("second Close forgot the result")
	}
	if got := e.metric(t, "homing_filter_running", "filter", "test"); got != 0 {
		t.Fatalf("homing_filter_running = %v after Close", got)
	}
}

func TestCloseGraceful(t *testing.T) {
	e := startExample(t, Config{})
	if _, err := e.f.Check(context.Background(), e.message(t, "x")); err != nil {
		t.Fatal(err)
	}
	if err := e.f.Close(); err != nil {
		t.Fatalf("Close of a program that exits at the end of its input: %v", err)
	}
}

// TestShellChildrenAreKilled: killing a filter kills its process group, so
// a child that holds the pipes does not keep the Filter waiting (without
// the group kill, the waiter would have to close the pipes under it after
// drainGrace, and say so).
func TestShellChildrenAreKilled(t *testing.T) {
	e := start(t, Config{Timeout: time.Second, Grace: 100 * time.Millisecond}, script(t, `read -r seq rest
printf '%s INTF 3\n' "$seq"
sleep 1000
`)...)
	if err := e.f.Close(); err == nil {
		t.Fatal("Close of a program that ignores its input: no error")
	}
	if e.log.Count("holds its pipes") != 0 {
		t.Fatal("the shell's child outlived the kill and held the pipes")
	}
}

func TestInvalidPath(t *testing.T) {
	e := startExample(t, Config{})
	for _, p := range []string{"", "a\nb", "a\rb", "a\x00b"} {
		v, err := e.f.Check(context.Background(), p)
		if !errors.Is(err, ErrInvalidPath) || v.Kind != KindFailure {
			t.Errorf("Check(%q): %+v, %v", p, v, err)
		}
	}
	if e.f.Invocations() != 0 {
		t.Fatal("an invalid path reached the filter")
	}
}

func TestMetrics(t *testing.T) {
	e := startExample(t, Config{Name: "scan"})
	for _, s := range []string{"a", "b", "SPAM-TEST", "DISCARD-TEST"} {
		if _, err := e.f.Check(context.Background(), e.message(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"homing_filter_requests_total", []string{"filter", "scan"}, 4},
		{"homing_filter_answers_total", []string{"filter", "scan", "kind", "ok"}, 2},
		{"homing_filter_answers_total", []string{"filter", "scan", "kind", "reject"}, 1},
		{"homing_filter_answers_total", []string{"filter", "scan", "kind", "discard"}, 1},
		{"homing_filter_latency_seconds", []string{"filter", "scan"}, 4},
		{"homing_filter_running", []string{"filter", "scan"}, 1},
		{"homing_filter_restarts_total", []string{"filter", "scan"}, 0},
	}
	for _, c := range checks {
		if got := e.metric(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A second NewMetrics on the same registry shares the series.
	m2 := NewMetrics(e.reg)
	m2.request("scan")
	if got := e.metric(t, "homing_filter_requests_total", "filter", "scan"); got != 5 {
		t.Errorf("requests after a second NewMetrics = %v, want 5", got)
	}
	var nilMetrics *Metrics
	nilMetrics.answer("scan", KindOK, time.Millisecond) // must not panic
}

func TestCheckMessageRemovesFile(t *testing.T) {
	e := startExample(t, Config{})
	dir := t.TempDir()
	v, err := e.f.CheckMessage(context.Background(), dir, "a@example.net", []string{"b@example.test"},
		[]byte("Subject: SPAM-TEST\r\n\r\nx\r\n"))
	if err != nil || v.Kind != KindReject {
		t.Fatalf("CheckMessage: %+v, %v", v, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left behind: %v", left)
	}
	if _, err := e.f.CheckMessage(context.Background(), dir, "a@example.net", nil, nil); !errors.Is(err, ErrInvalidEnvelope) {
		t.Fatalf("CheckMessage without recipients: %v", err)
	}
}

// TestSecretNotInherited: the program does not see Homing's HOMING_
// variables (the cluster secret), and does see the others.
func TestSecretNotInherited(t *testing.T) {
	t.Setenv("HOMING_SECRET", "cluster-secret-value")
	t.Setenv("FILTER_TEST_VISIBLE", "visible")
	e := start(t, Config{}, script(t, `while IFS=' ' read -r seq cmd rest; do
	case "$cmd" in
	INTF) printf '%s INTF 3\n' "$seq" ;;
	FILE) printf '%s REJECTED "[%s][%s]"\n' "$seq" "$HOMING_SECRET" "$FILTER_TEST_VISIBLE" ;;
	esac
done
`)...)
	v, err := e.f.Check(context.Background(), e.message(t, "x"))
	if err != nil || v.Text != "[][visible]" {
		t.Fatalf("the program saw: %+v, %v", v, err)
	}
}
