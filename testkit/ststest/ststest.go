// Package ststest serves MTA-STS policies (RFC 8461) for tests: an HTTPS
// server on 127.0.0.1 that answers GET /.well-known/mta-sts.txt for every
// mta-sts.DOMAIN a test gives it, by the request's Host, with the policy,
// status and content type the test chose. Tests resolve mta-sts.DOMAIN to
// 127.0.0.1 in their own DNS server (testkit/dnstest) and point the
// fetcher at Port. It imports nothing of Homing.
package ststest

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Response is what the server answers for one domain.
type Response struct {
	Status      int    // 0 is 200
	ContentType string // "" is text/plain
	Body        string
	Location    string // a redirect target (with a 3xx Status)
	// Hang makes the server wait until the client gives up.
	Hang bool
}

// Server is a running policy server.
type Server struct {
	Port int
	srv  *httptest.Server

	mu        sync.Mutex
	responses map[string]Response // by domain
	requests  map[string]int
}

// Start starts a server with cfg (its certificates decide what clients
// think of it); it stops when the test ends.
func Start(t testing.TB, cfg *tls.Config) *Server {
	t.Helper()
	s := &Server{responses: map[string]Response{}, requests: map[string]int{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = cfg
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are what tests provoke
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	for _, c := range port {
		s.Port = s.Port*10 + int(c-'0')
	}
	return s
}

// Serve makes the server answer policy for domain (200, text/plain).
func (s *Server) Serve(domain, policy string) { s.Respond(domain, Response{Body: policy}) }

// Respond sets the answer for domain.
func (s *Server) Respond(domain string, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responses[strings.ToLower(domain)] = r
}

// Requests is how many requests for domain's policy the server received.
func (s *Server) Requests(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[strings.ToLower(domain)]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	domain, ok := strings.CutPrefix(strings.ToLower(host), "mta-sts.")
	s.mu.Lock()
	s.requests[domain]++
	resp, known := s.responses[domain]
	s.mu.Unlock()
	if !ok || !known || r.URL.Path != "/.well-known/mta-sts.txt" {
		http.NotFound(w, r)
		return
	}
	if resp.Hang {
		<-r.Context().Done()
		return
	}
	ct := resp.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	w.Header().Set("Content-Type", ct)
	if resp.Location != "" {
		w.Header().Set("Location", resp.Location)
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write([]byte(resp.Body))
}
