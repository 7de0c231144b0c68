package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// waitLimit bounds every wait for the page; the console polls the cluster
// every 2 s and the queue every 5 s, so anything it shows is there well
// within it.
const waitLimit = 15 * time.Second

// startBrowser starts one headless Chromium for a test, with a fresh
// profile and nothing that talks to the network on its own, and closes it
// when the test ends. It fails the test, never skips it, when Chromium is
// missing.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console's browser tests need Debian's chromium at %s (.ci/run installs it: apt-get install chromium): %v",
			chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Nothing but loopback resolves: the page has no business elsewhere.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		// Close gracefully, so that Chromium's helper processes are gone
		// before t.TempDir removes the profile.
		closeCtx, done := context.WithTimeout(ctx, 10*time.Second)
		defer done()
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancel()
		cancelAlloc() // waits for the process
	})
	return ctx
}

// consolePage is one tab showing the console, served with Handler and
// backed by a fake API.
type consolePage struct {
	t   *testing.T
	ctx context.Context
	api *consoleAPI
	url string // the console's URL

	mu   sync.Mutex
	logs []chromedp.ConsoleMessage
	done chan struct{}
}

// openConsole serves the console at /console/ and api at /api/v1/ on a
// new loopback server, opens it in a new tab of browser and waits until
// the page's script has started. When the test ends it fails the test if the page
// threw or logged an error (other than a failed fetch the test caused).
func openConsole(t *testing.T, browser context.Context, api *consoleAPI) *consolePage {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/console/", Handler("/console/"))
	mux.Handle("/api/v1/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") && !strings.HasPrefix(srv.URL, "http://[::1]:") {
		t.Fatalf("test server is not on loopback: %s", srv.URL)
	}

	tab, cancel := chromedp.NewContext(browser)
	p := &consolePage{t: t, ctx: tab, api: api, url: srv.URL + "/console/", done: make(chan struct{})}
	if err := chromedp.Do(tab); err != nil { // opens the tab
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	messages := chromedp.Console(tab)
	go func() {
		defer close(p.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.logs = append(p.logs, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		p.checkConsole()
	})
	p.run(chromedp.Navigate(p.url))
	p.waitFor("the console to start", `document.getElementById('cluster-members') !== null`)
	return p
}

// checkConsole fails the test for every exception, console.error or
// browser error the page produced. Failed requests are the tests' own doing
// (401, 404) and are left out.
func (p *consolePage) checkConsole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.logs {
		if m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleError {
			continue
		}
		if m.Source == "network" || strings.HasPrefix(m.Text, "Failed to load resource") {
			continue
		}
		p.t.Errorf("page %s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text)
	}
}

// run performs actions in the tab, each wait bounded by waitLimit.
func (p *consolePage) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage text:\n%s", err, p.bodyText())
	}
}

// bodyText is the page's visible text, for failure messages.
func (p *consolePage) bodyText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return text
}

func (p *consolePage) waitVisible(css string) {
	p.t.Helper()
	p.run(chromedp.WaitVisible(chromedp.CSS(css)))
}

func (p *consolePage) click(css string) {
	p.t.Helper()
	p.run(chromedp.Click(chromedp.CSS(css)))
}

// typeInto types text into an input, replacing what it held.
func (p *consolePage) typeInto(css, text string) {
	p.t.Helper()
	// Clear sets the value attribute, not what the user typed; empty the
	// field's value itself, then type.
	// (SetValue refuses the empty string).
	p.run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ''`, jsString(css))),
		chromedp.SendKeys(chromedp.CSS(css), text))
}

// waitFor polls a JavaScript expression in the page until it is truthy or
// waitLimit passes; what says what was awaited.
func (p *consolePage) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLimit)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\nexpression: %s\npage text:\n%s", what, err, expr, p.bodyText())
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *consolePage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// texts returns the textContent of every element matching css.
func (p *consolePage) texts(css string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.textContent)`, jsString(css)))
}

// attrs returns attribute name of every element matching css.
func (p *consolePage) attrs(css, name string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.getAttribute(%s))`, jsString(css), jsString(name)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// withLimit bounds one action on the page by waitLimit.
func withLimit(p *consolePage) (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, waitLimit)
}
