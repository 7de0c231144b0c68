// Package browser drives Debian's headless Chromium for tests of the web
// console: Start gives a browser that resolves nothing but loopback, Open
// a tab on a URL, and the Page's methods act and wait in it, each wait
// bounded by WaitLimit (polling the page, never sleeping). A page that
// throws or logs an error fails its test when the test ends.
//
// It imports nothing of Homing, so the console's own tests (fake API) and
// the node's (a real node) share it.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium; .ci/run installs it.
const ChromiumPath = "/usr/bin/chromium"

// WaitLimit bounds every wait for the page.
const WaitLimit = 15 * time.Second

// Start starts one headless Chromium for a test, with a fresh profile and
// nothing that talks to the network on its own, 1280 x 1000 pixels, and
// closes it when the test ends. It fails the test, never skips it, when
// Chromium is missing.
func Start(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatalf("the console's browser tests need Debian's chromium at %s (.ci/run installs it: apt-get install chromium): %v",
			ChromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
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
		t.Fatalf("starting %s: %v", ChromiumPath, err)
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

// Page is one tab.
type Page struct {
	T   *testing.T
	Ctx context.Context
	URL string

	mu   sync.Mutex
	logs []chromedp.ConsoleMessage
	done chan struct{}
}

// Open opens url in a new tab of browser and waits until ready (a
// JavaScript expression) is true. When the test ends it fails the test if
// the page threw or logged an error (other than a failed fetch, which is
// the test's doing).
func Open(t *testing.T, browser context.Context, url, ready string) *Page {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	p := &Page{T: t, Ctx: tab, URL: url, done: make(chan struct{})}
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
	p.Run(chromedp.Navigate(url))
	p.WaitFor("the page to start", ready)
	return p
}

// checkConsole fails the test for every exception, console.error or
// browser error the page produced. Failed requests are the tests' own doing
// (401, 404) and are left out.
func (p *Page) checkConsole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.logs {
		if m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleError {
			continue
		}
		if m.Source == "network" || strings.HasPrefix(m.Text, "Failed to load resource") {
			continue
		}
		p.T.Errorf("page %s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text)
	}
}

// Run performs actions in the tab, each wait bounded by WaitLimit.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, WaitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("browser: %v\npage text:\n%s", err, p.BodyText())
	}
}

// BodyText is the page's visible text, for failure messages.
func (p *Page) BodyText() string {
	ctx, cancel := context.WithTimeout(p.Ctx, 2*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return text
}

// WaitVisible waits until an element matching css is visible.
func (p *Page) WaitVisible(css string) {
	p.T.Helper()
	p.Run(chromedp.WaitVisible(chromedp.CSS(css)))
}

// Click clicks the element matching css.
func (p *Page) Click(css string) {
	p.T.Helper()
	p.Run(chromedp.Click(chromedp.CSS(css)))
}

// TypeInto types text into an input, replacing what it held.
func (p *Page) TypeInto(css, text string) {
	p.T.Helper()
	// Clear sets the value attribute, not what the user typed; empty the
	// field's value itself, then type.
	// (SetValue refuses the empty string).
	p.Run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ''`, JSString(css))),
		chromedp.SendKeys(chromedp.CSS(css), text))
}

// WaitFor polls a JavaScript expression in the page until it is truthy or
// WaitLimit passes; what says what was awaited.
func (p *Page) WaitFor(what, expr string) {
	p.T.Helper()
	p.WaitForWithin(WaitLimit, what, expr)
}

// WaitForWithin is WaitFor with another limit.
func (p *Page) WaitForWithin(limit time.Duration, what, expr string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, limit+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(limit)))
	if err != nil {
		p.T.Fatalf("waiting for %s: %v\nexpression: %s\npage text:\n%s", what, err, expr, p.BodyText())
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value.
func Eval[T any](p *Page, expr string) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, WaitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.T.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Texts returns the textContent of every element matching css.
func (p *Page) Texts(css string) []string {
	p.T.Helper()
	return Eval[[]string](p, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.textContent)`, JSString(css)))
}

// Attrs returns attribute name of every element matching css.
func (p *Page) Attrs(css, name string) []string {
	p.T.Helper()
	return Eval[[]string](p, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.getAttribute(%s))`, JSString(css), JSString(name)))
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// WithLimit bounds one action on the page by WaitLimit.
func WithLimit(p *Page) (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.Ctx, WaitLimit)
}
