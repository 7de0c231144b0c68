package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"time"
)

// The health endpoints, for load balancers, orchestrators and systemd.
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
)

// readyTimeout bounds the checks of one GET /readyz: a probe that waits
// longer than this is a failed probe anyway.
const readyTimeout = 3 * time.Second

// healthBody is the answer of GET /healthz and GET /readyz.
type healthBody struct {
	Status string  `json:"status"` // "ok" (healthz), "ready" or "not ready"
	Checks []Check `json:"checks,omitempty"`
}

// health serves GET /healthz (the process is up and serves HTTP: always
// 200) and GET /readyz (200 when the node does its whole job now, else
// 503 with Retry-After), without a token on any listener: a load
// balancer's or an orchestrator's probe carries none, and the answer is
// only up or ready and which check failed. What a check found (a
// partition's error, which may name files) is sent only to a client that
// may read the API: one on loopback that names the machine in its Host
// header (not a rebound DNS name), or one with a token.
func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathHealthz {
		writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	rd := h.api.Readiness(ctx)
	detail := h.trusted(r)
	body := healthBody{Status: "ready", Checks: make([]Check, 0, len(rd.Checks))}
	for _, c := range rd.Checks {
		if !detail {
			c.Detail = ""
		}
		body.Checks = append(body.Checks, c)
	}
	status := http.StatusOK
	if !rd.Ready {
		status, body.Status = http.StatusServiceUnavailable, "not ready"
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

// trusted reports whether r may see the detail of the checks: it comes
// from loopback with a literal Host (as a tokenless API requires), or it
// carries the admin or the read-only token.
func (h *handler) trusted(r *http.Request) bool {
	if tok, ok := bearer(r.Header.Get("Authorization")); ok && h.needAuth {
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1 ||
			h.hasRO && subtle.ConstantTimeCompare(sum[:], h.roToken[:]) == 1 {
			return true
		}
	}
	return loopbackPeer(r.RemoteAddr) && localHost(r.Host)
}

// loopbackPeer reports whether the connection comes from loopback.
func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
