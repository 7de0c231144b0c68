package node

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/homing-mail/homing/mtasts"
	"github.com/homing-mail/homing/smtp"
)

// Outbound TLS (issue #11 item 5): MTA-STS for MX delivery, the trust
// roots that verify relay targets, and routes' TLS levels and
// credentials (--route DOMAIN=HOST:PORT,tls=..., --route-credentials).

// mtaSTSCacheFile is the policy cache in the data directory.
const mtaSTSCacheFile = "mta-sts-policies.json"

// relayTLS is the node's part of it.
type relayTLS struct {
	roots *x509.CertPool // nil: the system's
	sts   *mtasts.Source // nil: MTA-STS off
	creds atomic.Pointer[routeCredentials]
}

// startRelayTLS reads --relay-ca-file and --route-credentials and opens
// the MTA-STS policy cache (a step of startTrust: the resolver exists).
func (n *Node) startRelayTLS() error {
	roots, err := loadRoots(n.cfg.Trust.RelayCAFile)
	if err != nil {
		return err
	}
	n.relay.roots = roots
	if err := n.loadCredentials(); err != nil {
		return err
	}
	if n.cfg.Trust.NoMTASTS || n.cfg.Routing.Resolver != nil {
		// Off, or a test stubs the relay's DNS (which has no TXT).
		return nil
	}
	src, err := mtasts.New(mtasts.Config{
		Resolver:   n.trust.resolver,
		Roots:      roots,
		Port:       n.cfg.Trust.TestMTASTSPort,
		CacheFile:  filepath.Join(n.cfg.Store.DataDir, mtaSTSCacheFile),
		Logger:     n.log.With("component", "mta-sts"),
		Registerer: n.registry,
	})
	if err != nil {
		return err
	}
	n.relay.sts = src
	return nil
}

// relayClientTLS adds the outbound TLS settings to the relay client's
// configuration.
func (n *Node) relayClientTLS(c smtp.ClientConfig) smtp.ClientConfig {
	if n.relay.sts != nil {
		c.MTASTS = n.relay.sts
	}
	c.RootCAs = n.relay.roots
	c.RouteTLS = map[string]smtp.RouteTLS{}
	for d, lvl := range n.cfg.Routing.RouteTLS {
		c.RouteTLS[d] = smtp.RouteTLS(lvl)
	}
	c.Credentials = n.routeCredential
	c.Metrics = smtp.NewClientMetrics(n.registry)
	c.Logger = n.log.With("component", "relay")
	c.Journal = n.noteJourney
	c.Port = n.cfg.Routing.TestMXPort
	return c
}

// routeCredential is the credential of a route: the one given for its
// domain (or "*"), else for "HOST:PORT", else for HOST.
func (n *Node) routeCredential(route, host string, port int) (smtp.Credential, bool) {
	rc := n.relay.creds.Load()
	if rc == nil {
		return smtp.Credential{}, false
	}
	host = strings.ToLower(host)
	for _, k := range []string{strings.ToLower(route), fmt.Sprintf("%s:%d", host, port), host} {
		if c, ok := (*rc)[k]; ok {
			return c, true
		}
	}
	return smtp.Credential{}, false
}

// loadCredentials reads --route-credentials (nothing without one).
func (n *Node) loadCredentials() error {
	path := n.cfg.Routing.RouteCredentials
	if path == "" {
		return nil
	}
	rc, err := loadRouteCredentials(path)
	if err != nil {
		return err
	}
	for _, k := range rc.unused(n.cfg.Routing.Routes) {
		n.log.Warn("--route-credentials: an entry matches no route (keys are a route's DOMAIN or *, or its HOST or HOST:PORT)", "key", k, "file", path)
	}
	n.relay.creds.Store(&rc)
	return nil
}

// ReloadRouteCredentials reads --route-credentials again (homing serve
// does on SIGHUP): connections from now on use the new credentials. On an
// error the old ones stay in use. Without the file it does nothing.
func (n *Node) ReloadRouteCredentials() error {
	if n.cfg.Routing.RouteCredentials == "" {
		return nil
	}
	if err := n.loadCredentials(); err != nil {
		return err
	}
	n.log.Info("route credentials reloaded", "file", n.cfg.Routing.RouteCredentials, "entries", len(*n.relay.creds.Load()))
	return nil
}

// CheckRelayFiles reads the files of outbound TLS that a start would
// read (--relay-ca-file, --route-credentials), for --check-config.
func CheckRelayFiles(cfg Config) error {
	if _, err := loadRoots(cfg.Trust.RelayCAFile); err != nil {
		return err
	}
	if cfg.Routing.RouteCredentials != "" {
		if _, err := loadRouteCredentials(cfg.Routing.RouteCredentials); err != nil {
			return err
		}
	}
	return nil
}

// loadRoots reads a PEM file of CA certificates ("" = nil: the system's
// roots).
func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--relay-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--relay-ca-file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// routeCredentials maps a lower-case key (a route's DOMAIN or "*", a
// HOST:PORT or a HOST) to its credential.
type routeCredentials map[string]smtp.Credential

// loadRouteCredentials parses the credentials file: one "KEY USER
// PASSWORD" per line (the password is the rest of the line, inner spaces
// kept), # comments, blank lines; KEY is a route's DOMAIN or *, or a
// HOST or HOST:PORT ([HOST]:PORT as Postfix writes it). The file must not
// be readable by group or others: it holds passwords.
func loadRouteCredentials(path string) (routeCredentials, error) {
	fail := func(format string, a ...any) (routeCredentials, error) {
		return nil, fmt.Errorf("--route-credentials %s: %s", path, fmt.Sprintf(format, a...))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--route-credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--route-credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fail("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fail("mode %04o lets group or others read the passwords in it; chmod 600 it", perm)
	}
	const maxSize = 1 << 20
	if fi.Size() > maxSize {
		return fail("larger than %d bytes", maxSize)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("--route-credentials: %w", err)
	}
	rc := routeCredentials{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := cutSpace(line)
		user, password, _ := cutSpace(rest)
		if key == "" || user == "" || password == "" {
			return fail("line %d: want KEY USER PASSWORD", i+1)
		}
		key = strings.ToLower(key)
		if h, p, ok := strings.Cut(key, "]:"); ok && strings.HasPrefix(h, "[") {
			key = h[1:] + ":" + p
		}
		key = strings.Trim(key, "[]")
		if _, dup := rc[key]; dup {
			return fail("line %d: a second entry for %s", i+1, key)
		}
		rc[key] = smtp.Credential{User: user, Password: password}
	}
	return rc, nil
}

// cutSpace splits s at its first run of spaces or tabs.
func cutSpace(s string) (before, after string, found bool) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeft(s[i:], " \t"), true
}

// unused lists the keys that match no route: neither a route's domain
// nor its host or host:port (sorted for a stable log).
func (rc routeCredentials) unused(routes map[string]string) []string {
	known := map[string]bool{}
	for d, hp := range routes {
		known[strings.ToLower(d)] = true
		known[strings.ToLower(hp)] = true
		if h, _, err := net.SplitHostPort(hp); err == nil {
			known[strings.ToLower(h)] = true
		}
	}
	var out []string
	for k := range rc {
		if !known[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
