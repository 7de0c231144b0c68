package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerServesEachAsset(t *testing.T) {
	h := Handler("/console/")
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/console/index.html", "text/html; charset=utf-8", `<svg id="cluster"`},
		{"/console/app.js", "text/javascript; charset=utf-8", `'use strict';`},
		{"/console/style.css", "text/css; charset=utf-8", `.partition.open rect`},
	} {
		res := serve(t, h, http.MethodGet, tc.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if b := body(t, res); !strings.Contains(b, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		for header, want := range map[string]string{
			"Cache-Control":          "no-cache",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
				"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		} {
			if got := res.Header.Get(header); got != want {
				t.Errorf("GET %s: %s %q, want %q", tc.path, header, got, want)
			}
		}
		if etag := res.Header.Get("ETag"); !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
			t.Errorf("GET %s: ETag %q, want a quoted digest", tc.path, etag)
		}
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := Handler("/console/")
	first := serve(t, h, http.MethodGet, "/console/app.js", nil)
	etag := first.Header.Get("ETag")
	res := serve(t, h, http.MethodGet, "/console/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: %d, want 304", res.StatusCode)
	}
	if b := body(t, res); b != "" {
		t.Errorf("304 with a body of %d bytes", len(b))
	}
	res = serve(t, h, http.MethodGet, "/console/app.js", http.Header{"If-None-Match": {`"stale"`}})
	if res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with another ETag: %d, want 200", res.StatusCode)
	}
	if other := serve(t, h, http.MethodGet, "/console/style.css", nil).Header.Get("ETag"); other == etag {
		t.Errorf("app.js and style.css share the ETag %s", etag)
	}
}

func TestHandlerHead(t *testing.T) {
	res := serve(t, Handler("/console/"), http.MethodHead, "/console/", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if b := body(t, res); b != "" {
		t.Errorf("HEAD answered with a body of %d bytes", len(b))
	}
}

func TestHandlerRefusesOtherMethods(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res := serve(t, Handler("/console/"), method, "/console/app.js", nil)
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", method, res.StatusCode)
		}
		if got := res.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow %q", method, got)
		}
	}
}

func TestHandlerUnknownPaths(t *testing.T) {
	h := Handler("/console/")
	for _, path := range []string{
		"/console/nope.js", "/console/assets/app.js", "/console/app.js/", "/console/%2e%2e/go.mod",
		"/console/../handler.go", "/consoleapp.js", "/api/v1/cluster", "/",
	} {
		if res := serve(t, h, http.MethodGet, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
}

func TestHandlerPrefix(t *testing.T) {
	res := serve(t, Handler("/console/"), http.MethodGet, "/console?x=1", nil)
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/console/?x=1" {
		t.Errorf("GET /console: %d Location %q, want 301 to /console/?x=1", res.StatusCode, res.Header.Get("Location"))
	}
	// A prefix without its slash is taken as if it had one.
	if res := serve(t, Handler("/ui"), http.MethodGet, "/ui/app.js", nil); res.StatusCode != http.StatusOK {
		t.Errorf("Handler(\"/ui\"): GET /ui/app.js: %d", res.StatusCode)
	}
	// Mounted at the root.
	if res := serve(t, Handler("/"), http.MethodGet, "/style.css", nil); res.StatusCode != http.StatusOK {
		t.Errorf("Handler(\"/\"): GET /style.css: %d", res.StatusCode)
	}
	// Behind a mux, as the admin listener mounts it.
	mux := http.NewServeMux()
	mux.Handle("/console/", Handler("/console/"))
	if res := serve(t, mux, http.MethodGet, "/console/", nil); res.StatusCode != http.StatusOK {
		t.Errorf("through a mux: GET /console/: %d", res.StatusCode)
	}
}

// TestAssetsAreSelfContained reads the embedded files: nothing is loaded
// from another origin, no markup is built from strings, no inline script
// or style (the CSP forbids both), and every element the script looks up
// by id exists in the page or is made by the script.
func TestAssetsAreSelfContained(t *testing.T) {
	read := func(name string) string {
		b, err := files.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	html, js, css := read("index.html"), read("app.js"), read("style.css")

	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, text := range map[string]string{"index.html": html, "app.js": js, "style.css": css} {
		for _, u := range url.FindAllString(text, -1) {
			if u != "http://www.w3.org" { // the SVG namespace name, never fetched
				t.Errorf("%s names another origin: %s", name, u)
			}
		}
		if strings.Contains(text, "@import") || strings.Contains(text, "@font-face") {
			t.Errorf("%s imports a style sheet or a font", name)
		}
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	if regexp.MustCompile(`<script(\s[^>]*)?>[^<]`).MatchString(html) {
		t.Error("index.html has an inline script")
	}
	if regexp.MustCompile(`\sstyle=|\son[a-z]+=|<style`).MatchString(html) {
		t.Error("index.html has inline style or an inline event handler")
	}

	made := []string{"cluster-links", "cluster-members", "cluster-footer"}
	for _, m := range regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(js, -1) {
		id := m[1]
		if !strings.Contains(html, `id="`+id+`"`) && !slices.Contains(made, id) {
			t.Errorf("app.js looks up #%s, which index.html lacks", id)
		}
	}
	for _, id := range made {
		if !strings.Contains(js, `id: '`+id+`'`) {
			t.Errorf("app.js does not make #%s", id)
		}
	}
}
