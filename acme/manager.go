package acme

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// Defaults of Config's retry waits: a failed attempt is retried after
// RetryMin, doubling per failure up to RetryMax (Let's Encrypt allows 5
// failed validations per name and hour); a permanent failure waits
// RetryMax at once.
const (
	DefaultRetryMin = time.Minute
	DefaultRetryMax = time.Hour
)

// Timeouts: the start's look at the directory, and one whole attempt
// (order, validations, finalization, download).
const (
	checkTimeout   = 20 * time.Second
	attemptTimeout = 5 * time.Minute
)

// takeoverNoCert is how long the frontend of rank r waits r times for
// the first certificate of its names before it orders one itself.
const takeoverNoCert = time.Minute

// meetTimeout is how long a clustered node waits to meet the cluster
// (Replicator.Met) before it decides alone: until then its rank and the
// bundles it has seen say nothing.
const meetTimeout = 30 * time.Second

// aloneSettle is how long a clustered frontend that sees no other
// frontend waits before its first order (a lone node's certificate comes
// that much later; a stored one serves at once).
const aloneSettle = 10 * time.Second

// Resolver resolves the CA's host name (the node's resolver, so that no
// lookup bypasses --dns).
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Config is what a Manager obtains, from where, and where it keeps it.
type Config struct {
	// Directory is the CA's directory URL (RFC 8555 §7.1.1), https.
	Directory string
	// Email is the account's contact (RFC 8555 §7.3: mailto:), optional.
	Email string
	// Names are the DNS names of the certificate.
	Names []string
	// Roots verify the CA's HTTPS certificate; nil: the system's.
	Roots *x509.CertPool
	// Resolver resolves the CA's host; nil: Go's resolver.
	Resolver Resolver
	// RetryMin, RetryMax: the waits after failures (defaults above).
	RetryMin, RetryMax time.Duration
	// Store keeps the bundles and the account key; Challenges is what
	// the challenge listener answers.
	Store      *Store
	Challenges *Challenges
	// Replicator, on a clustered node, shares bundles and challenges
	// with the other frontends and ranks this one among them.
	Replicator *Replicator
	// OnCertificate is given every certificate of Names the node should
	// now serve: the stored one at New, then each renewal, whether this
	// node or another frontend obtained it.
	OnCertificate func(*tls.Certificate)
	// OnAttempt, if set, is told the outcome of every attempt to order
	// (nil: a certificate was stored).
	OnAttempt func(error)
	Log       *slog.Logger
}

// Manager obtains and renews the certificate of Config.Names.
type Manager struct {
	cfg    Config
	names  []string
	client *xacme.Client
	log    *slog.Logger
	wake   chan struct{}
	start  time.Time

	mu         sync.Mutex
	installed  []byte // leaf served now
	registered bool
	lastErr    error

	stop context.CancelFunc
	done chan struct{}
}

// Error is a failed step of obtaining a certificate. Temporary says
// whether trying again may work as things are (the CA or the network
// failed, a rate limit) or not (the CA refuses the names, the directory
// is not one, its certificate is not trusted): the node retries either,
// a permanent one only after Config.RetryMax.
type Error struct {
	Step      string // what was being done, with its RFC 8555 section
	Err       error
	temporary bool
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("ACME %s: %v (%s)", e.Step, e.Err, kind)
}

// Temporary reports whether trying again may work.
func (e *Error) Temporary() bool { return e.temporary }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func stepErr(step string, err error) *Error {
	return &Error{Step: step, Err: err, temporary: temporary(err)}
}

// New makes the manager and gives Config.OnCertificate the stored
// certificate of the names, if there is one. It contacts nobody: Check
// looks at the directory, Run obtains and renews.
func New(cfg Config) (*Manager, error) {
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := ValidDirectory(cfg.Directory); err != nil {
		return nil, err
	}
	names := NormalizeNames(cfg.Names)
	for _, n := range names {
		if err := ValidName(n); err != nil {
			return nil, err
		}
	}
	if len(names) == 0 {
		return nil, errors.New("ACME: no names to obtain a certificate for")
	}
	key, err := cfg.Store.accountKey()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:   cfg,
		names: names,
		log:   cfg.Log.With("names", strings.Join(names, ",")),
		wake:  make(chan struct{}, 1),
		start: time.Now(),
		client: &xacme.Client{
			Key:          key,
			DirectoryURL: cfg.Directory,
			HTTPClient:   httpClient(cfg.Roots, cfg.Resolver),
			UserAgent:    "homing",
		},
	}
	cfg.Store.OnChange(m.Wake)
	m.install(cfg.Store.Get(cfg.Directory, names))
	return m, nil
}

// ValidDirectory checks that u can be a directory URL: absolute https
// (RFC 8555 §6.1: ACME is HTTPS only).
func ValidDirectory(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("--acme-directory %q: want an https:// URL (RFC 8555 §6.1), e.g. https://acme-v02.api.letsencrypt.org/directory", u)
	}
	return nil
}

// ValidName checks that n can be a name of the certificate: a DNS name
// of at least two labels; no IP address and no wildcard (HTTP-01 cannot
// validate those, RFC 8555 §8.3 and §7.1.3).
func ValidName(n string) error {
	if net.ParseIP(n) != nil || strings.Contains(n, "*") {
		return fmt.Errorf("--acme-names %s: HTTP-01 validates host names only, no IP address or wildcard", n)
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 || len(n) > 253 {
		return fmt.Errorf("--acme-names %s: not a fully qualified host name", n)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("--acme-names %s: not a host name", n)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("--acme-names %s: not a host name", n)
			}
		}
	}
	return nil
}

// Names are the certificate's names, normalized.
func (m *Manager) Names() []string { return append([]string(nil), m.names...) }

// Check fetches the directory (RFC 8555 §7.1.1). A URL whose host does
// not exist (NXDOMAIN), that answers with something other than a
// directory, or whose certificate is not trusted, is a permanent *Error
// (the start fails); a CA that cannot be reached now is a temporary one
// (the node starts and Run keeps trying).
func (m *Manager) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := m.client.Discover(ctx)
	if err == nil {
		return nil
	}
	var ae *xacme.Error
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		if ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != http.StatusTooManyRequests && ae.StatusCode != http.StatusRequestTimeout {
			return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s is not an ACME directory: the server answered %d %s",
				m.cfg.Directory, ae.StatusCode, http.StatusText(ae.StatusCode))}
		}
		return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s: %w", m.cfg.Directory, err), temporary: true}
	case errors.As(err, &ue):
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s: its host does not exist: %w",
				m.cfg.Directory, err)}
		}
		if untrusted(err) {
			return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s: the CA's HTTPS certificate is not trusted (a private CA needs --acme-ca-roots): %w",
				m.cfg.Directory, err)}
		}
		return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s: %w", m.cfg.Directory, err), temporary: true}
	case ctx.Err() != nil:
		return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s: %w", m.cfg.Directory, err), temporary: true}
	default:
		// It answered 200 with something that is not an RFC 8555
		// directory (HTML, JSON without newOrder).
		return &Error{Step: "directory (RFC 8555 §7.1.1)", Err: fmt.Errorf("--acme-directory %s is not an ACME directory: %w", m.cfg.Directory, err)}
	}
}

// Wake makes Run look at the store and the membership again now (a
// bundle arrived, the frontends changed).
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run obtains and renews the certificate on a goroutine until Stop.
func (m *Manager) Run() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		m.run(ctx)
	}()
}

// Stop ends Run and waits for it (an attempt in progress is abandoned).
func (m *Manager) Stop() {
	if m.stop != nil {
		m.stop()
		<-m.done
	}
}

// LastError is the error of the last attempt, nil after a success.
func (m *Manager) LastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

func (m *Manager) run(ctx context.Context) {
	failures := 0
	var retryAt time.Time
	synced := m.cfg.Replicator == nil
	for ctx.Err() == nil {
		b := m.cfg.Store.Get(m.cfg.Directory, m.names)
		m.install(b)
		now := time.Now()
		var at time.Time
		if !synced && !m.cfg.Replicator.Met() && now.Sub(m.start) < meetTimeout {
			at = m.start.Add(meetTimeout) // or a Wake when it joins
		} else if !synced && m.cfg.Replicator.Alone() && now.Sub(m.start) < aloneSettle {
			// The first node of a cluster (no seeds): the frontends that
			// join it in the next moments must hold the challenge too (the
			// CA may connect to any of them), so it waits for the first
			// of them (a Wake) or aloneSettle.
			at = m.start.Add(aloneSettle)
		} else if !synced {
			// What the other frontends hold first: a node that restarts
			// with an empty store must not order what they have.
			sctx, cancel := context.WithTimeout(ctx, requestTimeout+time.Second)
			m.cfg.Replicator.Sync(sctx)
			cancel()
			synced = true
			continue
		} else {
			at = m.dueAt(b)
		}
		if retryAt.After(at) {
			at = retryAt
		}
		if !now.Before(at) {
			err := m.obtain(ctx)
			if ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			m.lastErr = err
			m.mu.Unlock()
			if m.cfg.OnAttempt != nil {
				m.cfg.OnAttempt(err)
			}
			if err == nil {
				failures, retryAt = 0, time.Time{}
				continue
			}
			failures++
			wait := m.backoff(failures, err)
			retryAt = time.Now().Add(wait)
			msg := "ACME: obtaining the certificate failed; retrying later"
			if b != nil {
				msg = "ACME: renewing the certificate failed; the current one keeps serving"
			}
			m.log.Warn(msg, "err", err, "temporary", temporary(err), "attempt", failures, "retry_in", wait.Round(time.Second))
			continue
		}
		t := time.NewTimer(at.Sub(now))
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// dueAt is when this node should order: at renewal time (a third of the
// lifetime left) or, with no certificate yet, at once; the frontend of
// rank r only r takeover steps later, so that the first frontend orders
// and the others learn its certificate.
func (m *Manager) dueAt(b *Bundle) time.Time {
	rank := 0
	if m.cfg.Replicator != nil {
		rank = m.cfg.Replicator.Rank()
	}
	if b == nil {
		return m.start.Add(time.Duration(rank) * takeoverNoCert)
	}
	return b.RenewAt().Add(time.Duration(rank) * (b.Lifetime() / 12))
}

// backoff is the wait after the failures-th failure in a row.
func (m *Manager) backoff(failures int, err error) time.Duration {
	d := m.cfg.RetryMax
	if temporary(err) {
		d = m.cfg.RetryMin
		for i := 1; i < failures && d < m.cfg.RetryMax; i++ {
			d *= 2
		}
		d = min(d, m.cfg.RetryMax)
	}
	if ra, ok := xacme.RateLimit(errors.Unwrap(err)); ok && ra > d {
		d = ra
	}
	return d
}

// install hands b's certificate to OnCertificate unless it is the one
// served already.
func (m *Manager) install(b *Bundle) {
	if b == nil || m.cfg.OnCertificate == nil {
		return
	}
	m.mu.Lock()
	same := bytes.Equal(m.installed, leafOf(b))
	m.mu.Unlock()
	if same {
		return
	}
	c, err := b.Certificate()
	if err != nil {
		m.log.Error("ACME: a stored certificate does not load", "err", err)
		return
	}
	m.mu.Lock()
	m.installed = leafOf(b)
	m.mu.Unlock()
	m.cfg.OnCertificate(c)
	m.log.Info("ACME certificate in use", "not_after", b.NotAfter.UTC().Format(time.RFC3339),
		"renew_at", b.RenewAt().UTC().Format(time.RFC3339), "issuer", c.Leaf.Issuer.CommonName)
}

// obtain orders, validates and downloads a certificate for the names
// (RFC 8555 §7.4) and stores it.
func (m *Manager) obtain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := m.register(ctx); err != nil {
		return err
	}
	order, err := m.client.AuthorizeOrder(ctx, xacme.DomainIDs(m.names...))
	if err != nil {
		return stepErr("new order (RFC 8555 §7.4)", err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, u); err != nil {
			return err
		}
	}
	if order, err = m.client.WaitOrder(ctx, order.URI); err != nil {
		return stepErr("order (RFC 8555 §7.1.6)", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return &Error{Step: "certificate key", Err: err, temporary: true}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: m.names[0]}, DNSNames: m.names}, key)
	if err != nil {
		return &Error{Step: "CSR", Err: err}
	}
	chain, _, err := m.client.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return stepErr("finalize (RFC 8555 §7.4)", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return &Error{Step: "certificate key", Err: err}
	}
	if len(chain) == 0 {
		return &Error{Step: "download (RFC 8555 §7.4.2)", Err: errors.New("the CA sent no certificate"), temporary: true}
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return &Error{Step: "download (RFC 8555 §7.4.2)", Err: err}
	}
	b := Bundle{Directory: m.cfg.Directory, Names: m.names, Chain: chain, Key: der, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	if err := b.check(); err != nil {
		return &Error{Step: "download (RFC 8555 §7.4.2)", Err: err}
	}
	if _, err := m.cfg.Store.Merge([]Bundle{b}); err != nil {
		return &Error{Step: "store", Err: err, temporary: true}
	}
	m.log.Info("ACME certificate obtained", "serial", leaf.SerialNumber.Text(16),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", leaf.Issuer.CommonName)
	return nil
}

// register makes sure the account exists (RFC 8555 §7.3), once per
// process: a key that has an account gets it back. Registering accepts
// the CA's terms of service (configuring the CA is the operator's
// consent, as certbot's --agree-tos).
func (m *Manager) register(ctx context.Context) error {
	m.mu.Lock()
	done := m.registered
	m.mu.Unlock()
	if done {
		return nil
	}
	acct := &xacme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	if _, err := m.client.Register(ctx, acct, xacme.AcceptTOS); err != nil && !errors.Is(err, xacme.ErrAccountAlreadyExists) {
		return stepErr("account (RFC 8555 §7.3)", err)
	}
	m.mu.Lock()
	m.registered = true
	m.mu.Unlock()
	return nil
}

// authorize completes one authorization with its HTTP-01 challenge
// (RFC 8555 §7.5, §8.3): the key authorization is answered here and
// handed to every other live frontend before the CA is told to look.
func (m *Manager) authorize(ctx context.Context, u string) error {
	z, err := m.client.GetAuthorization(ctx, u)
	if err != nil {
		return stepErr("authorization (RFC 8555 §7.5)", err)
	}
	switch z.Status {
	case xacme.StatusValid:
		return nil
	case xacme.StatusPending:
	default:
		return &Error{Step: "authorization (RFC 8555 §7.5)", Err: fmt.Errorf("the authorization for %s is %s", z.Identifier.Value, z.Status)}
	}
	var chal *xacme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		return &Error{Step: "authorization (RFC 8555 §7.5)", Err: fmt.Errorf("the CA offers no http-01 challenge for %s (RFC 8555 §8.3)", z.Identifier.Value)}
	}
	ka, err := m.client.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return &Error{Step: "challenge (RFC 8555 §8.1)", Err: err}
	}
	c := Challenge{Token: chal.Token, KeyAuth: ka, Expires: time.Now().Add(challengeTTL)}
	m.cfg.Challenges.Add(c)
	defer m.cfg.Challenges.Remove(chal.Token)
	if m.cfg.Replicator != nil {
		if acked, of := m.cfg.Replicator.Publish(ctx, c); acked < of {
			m.log.Warn("ACME: not every frontend took the challenge; the CA may reach one that cannot answer it",
				"name", z.Identifier.Value, "took", acked, "frontends", of)
		}
	}
	if _, err := m.client.Accept(ctx, chal); err != nil {
		return stepErr("challenge (RFC 8555 §7.5.1)", err)
	}
	if _, err := m.client.WaitAuthorization(ctx, z.URI); err != nil {
		return stepErr("validation of "+z.Identifier.Value+" (RFC 8555 §8.3)", err)
	}
	return nil
}

// permanentProblems are the RFC 8555 §6.7 error types that trying again
// will not cure as things are: the CA refuses the names, the contact,
// the request or the challenge's answer.
var permanentProblems = []string{
	"rejectedIdentifier", "unsupportedIdentifier", "caa", "invalidContact", "unsupportedContact",
	"externalAccountRequired", "badCSR", "badSignatureAlgorithm", "badPublicKey", "unauthorized",
	"incorrectResponse", "accountDoesNotExist", "malformed", "userActionRequired",
}

// temporary reports whether err may go away if tried again. Network
// failures, the CA's 5xx, rate limits, and validation that could not
// connect or resolve (the name's DNS may be on its way) are temporary;
// the problem types above, an untrusted CA certificate and a
// validation the CA saw answered wrongly are not.
func temporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.temporary
	}
	var ae *xacme.Error
	var ze *xacme.AuthorizationError
	var oe *xacme.OrderError
	switch {
	case errors.As(err, &ze):
		for _, ce := range ze.Errors {
			if temporary(ce) {
				return true
			}
		}
		return len(ze.Errors) == 0
	case errors.As(err, &oe):
		return oe.Problem == nil || temporary(oe.Problem)
	case errors.As(err, &ae):
		for _, p := range permanentProblems {
			if strings.HasSuffix(ae.ProblemType, ":"+p) {
				return false
			}
		}
		return true
	case untrusted(err):
		return false
	}
	return true
}

// untrusted: the TLS handshake with the CA failed on its certificate.
func untrusted(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ie)
}

// httpClient is the client of the CA: TLS verified against roots, host
// names through the node's resolver, every step bounded.
func httpClient(roots *x509.CertPool, r Resolver) *http.Client {
	d := &net.Dialer{Timeout: 15 * time.Second}
	dial := d.DialContext
	if r != nil {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if net.ParseIP(host) != nil {
				return d.DialContext(ctx, network, addr)
			}
			ips, err := r.LookupIPAddr(ctx, host)
			if err != nil {
				return nil, err
			}
			var last error = fmt.Errorf("%s has no address", host)
			for _, ip := range ips {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		}
	}
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dial,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          2,
			IdleConnTimeout:       time.Minute,
		},
	}
}

// LoadRoots reads a PEM file of CA certificates (--acme-ca-roots).
func LoadRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--acme-ca-roots %s: no PEM certificate in it", file)
	}
	return pool, nil
}
