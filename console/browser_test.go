package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/homing-mail/homing/testkit/browser"
)

// waitLimit bounds every wait for the page; the console polls the cluster
// every 2 s and the queue every 5 s, so anything it shows is there well
// within it.
const waitLimit = browser.WaitLimit

// startBrowser starts one headless Chromium for a test (testkit/browser).
func startBrowser(t *testing.T) context.Context { return browser.Start(t) }

// consolePage is one tab showing the console, served with Handler and
// backed by a fake API.
type consolePage struct {
	*browser.Page
	t   *testing.T
	ctx context.Context
	api *consoleAPI
	url string // the console's URL
}

// openConsole serves the console at /console/ and api at /api/v1/ on a
// new loopback server, opens it in a new tab of browser and waits until
// the page's script has started. When the test ends it fails the test if the page
// threw or logged an error (other than a failed fetch the test caused).
func openConsole(t *testing.T, b context.Context, api *consoleAPI) *consolePage {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/console/", Handler("/console/"))
	mux.Handle("/api/v1/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") && !strings.HasPrefix(srv.URL, "http://[::1]:") {
		t.Fatalf("test server is not on loopback: %s", srv.URL)
	}
	pg := browser.Open(t, b, srv.URL+"/console/", `document.getElementById('cluster-members') !== null`)
	return &consolePage{Page: pg, t: t, ctx: pg.Ctx, api: api, url: pg.URL}
}

func (p *consolePage) run(actions ...chromedp.Action[chromedp.Void]) { p.t.Helper(); p.Run(actions...) }
func (p *consolePage) waitVisible(css string)                        { p.t.Helper(); p.WaitVisible(css) }
func (p *consolePage) click(css string)                              { p.t.Helper(); p.Click(css) }
func (p *consolePage) typeInto(css, text string)                     { p.t.Helper(); p.TypeInto(css, text) }
func (p *consolePage) waitFor(what, expr string)                     { p.t.Helper(); p.WaitFor(what, expr) }
func (p *consolePage) texts(css string) []string                     { p.t.Helper(); return p.Texts(css) }
func (p *consolePage) attrs(css, name string) []string               { p.t.Helper(); return p.Attrs(css, name) }

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *consolePage, expr string) T {
	p.t.Helper()
	return browser.Eval[T](p.Page, expr)
}

// withLimit bounds one action on the page by waitLimit.
func withLimit(p *consolePage) (context.Context, context.CancelFunc) {
	return browser.WithLimit(p.Page)
}
