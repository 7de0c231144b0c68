package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/homing-mail/homing/mail"
)

// Errors of a policy fetch.
var (
	// ErrNoPolicy: the policy host does not exist or answered 404.
	ErrNoPolicy = mail.PermanentError("no MTA-STS policy served")
	// ErrFetch: the policy could not be fetched (the connection, TLS,
	// the HTTP status, a redirect, a timeout, the size or type).
	ErrFetch = mail.TemporaryError("the MTA-STS policy could not be fetched")
)

// HostResolver looks up the addresses of the policy host.
type HostResolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Fetcher gets policies over HTTPS (RFC 8461 §3.3).
type Fetcher struct {
	// Resolver finds mta-sts.DOMAIN: the node's resolver, never the
	// system's.
	Resolver HostResolver
	// Roots verify the policy host's certificate; nil: the system's.
	Roots *x509.CertPool
	// Port is the HTTPS port; 0 is 443. Tests only serve policies on
	// another port of loopback.
	Port int
	// Timeout bounds the whole fetch (connect, TLS, headers, body);
	// default 20 s.
	Timeout time.Duration
	// Dial opens connections; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// URL is where the policy of domain is fetched from.
func (f *Fetcher) URL(domain string) string {
	host := "mta-sts." + domain
	if f.Port != 0 && f.Port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(f.Port))
	}
	return "https://" + host + "/.well-known/mta-sts.txt"
}

// Fetch gets and parses the policy of domain: status 200, no redirect
// followed, content type text/plain, at most MaxPolicySize bytes, the
// certificate verified for mta-sts.DOMAIN, within the timeout, no proxy,
// no HTTP cache, no connection kept. The error wraps ErrNoPolicy, ErrFetch
// or ErrPolicySyntax.
func (f *Fetcher) Fetch(ctx context.Context, domain string) (*Policy, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	var noHost error // the policy host does not exist
	tr := &http.Transport{
		Proxy: nil, // never the environment's proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := f.dial(ctx, addr)
			if errors.Is(err, ErrNoPolicy) {
				mu.Lock()
				noHost = err
				mu.Unlock()
			}
			return c, err
		},
		TLSClientConfig:        &tls.Config{RootCAs: f.Roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true,
		DisableCompression:     true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the policy host redirects, and RFC 8461 §3.3 forbids following it")
		},
	}
	url := f.URL(domain)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if noHost != nil {
			return nil, noHost
		}
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s answered %s", ErrNoPolicy, url, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s answered %s (only 200 counts)", ErrFetch, url, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("%w: %s is served as %q, not text/plain", ErrFetch, url, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrFetch, url, err)
	}
	if len(body) > MaxPolicySize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrFetch, url, MaxPolicySize)
	}
	p, err := ParsePolicy(string(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return p, nil
}

// dial connects to the policy host's addresses in turn, found through the
// resolver.
func (f *Fetcher) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if f.Resolver == nil {
		return nil, errors.New("no resolver for the policy host")
	}
	ips, err := f.Resolver.LookupHost(ctx, host)
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound, err == nil && len(ips) == 0:
		return nil, fmt.Errorf("%w: %s has no address", ErrNoPolicy, host)
	case err != nil:
		return nil, err
	}
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var last error
	for _, ip := range ips {
		c, err := dial(ctx, "tcp", net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}
