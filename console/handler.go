package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// files holds the console's assets. An embed.FS is read-only, so sharing it
// between several nodes in one process is safe.
//
//go:embed assets/index.html assets/app.js assets/style.css
var files embed.FS

// contentSecurityPolicy allows the page to load and fetch only from its own
// origin; no inline script or style, no frames, no form submissions (every
// form of the console is handled by app.js).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentType names the media type of an asset by its extension; set here
// rather than taken from the system's MIME table, which differs between
// machines.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string // strong validator: a quoted digest of body
}

// handler serves the embedded assets under prefix. It is immutable after
// Handler returns and so safe for concurrent use.
type handler struct {
	prefix string // ends in "/"
	assets map[string]asset
	err    error // set when the embedded files could not be read
}

// Handler serves the console's files under prefix (e.g. "/console/"):
// prefix itself and prefix+"index.html" answer with the page, prefix+"app.js"
// and prefix+"style.css" with its script and style sheet; any other path is
// 404, and any method but GET and HEAD is 405. A prefix without a trailing
// slash is taken as if it had one, and a request for the prefix without its
// slash is redirected to it. The handler is safe for concurrent use; mount
// it on a mux at the same prefix, e.g. mux.Handle("/console/", Handler("/console/")).
func Handler(prefix string) http.Handler {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	h := &handler{prefix: prefix}
	h.assets, h.err = loadAssets()
	return h
}

// loadAssets reads every embedded file and computes its validator.
func loadAssets() (map[string]asset, error) {
	out := make(map[string]asset)
	err := fs.WalkDir(files, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(name, "assets/")] = asset{
			body:        body,
			contentType: contentType(path.Ext(name)),
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
		return nil
	})
	return out, err
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == strings.TrimSuffix(h.prefix, "/") && p != "" {
		target := h.prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(p, h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	if h.err != nil {
		http.Error(w, "console assets unavailable: "+h.err.Error(), http.StatusInternalServerError)
		return
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	// ServeContent answers If-None-Match with 304 and handles Range and
	// HEAD; the zero time means no Last-Modified (embedded files have none).
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
