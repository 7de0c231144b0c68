package node

import (
	"net/http"
	"strings"

	"github.com/homing-mail/homing/console"
)

// withConsole serves the web console under /console/ (its assets are
// embedded; it calls the JSON API of the same origin, with the token the
// operator types) and redirects / to it; everything else goes to next.
func withConsole(next http.Handler) http.Handler {
	ch := console.Handler("/console/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, "/console/", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/console/") || r.URL.Path == "/console":
			ch.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
