package node

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/homing-mail/homing/acme"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/mail"
)

// ACME (issue #11 item 4, package acme): with --acme-directory the TLS
// listeners serve a certificate obtained from the CA for --acme-names
// (RFC 8555), kept in DATA/acme and shared with every frontend over the
// cluster channel. Until the first one arrives they serve a self-signed
// certificate; each renewal is swapped into the same cert.Source, so
// sessions in progress keep theirs.

// maxChallengeConns bounds the connections of the challenge listener
// (a CA makes a few per validation).
const maxChallengeConns = 64

// acmeDir is the ACME store in the data directory.
const acmeDir = "acme"

// startACME opens the ACME store, checks the directory (a URL that is
// not an ACME directory fails the start; a CA that does not answer now
// is logged and retried), makes the listeners' certificate source with
// the stored certificate, spawns the replication actor and starts the
// HTTP-01 challenge listener. Obtaining starts with runACME.
func (n *Node) startACME(ctx context.Context) error {
	cfg := n.cfg.Trust.ACME
	if !cfg.Enabled() {
		return nil
	}
	var roots *x509.CertPool
	if cfg.CARoots != "" {
		var err error
		if roots, err = acme.LoadRoots(cfg.CARoots); err != nil {
			return err
		}
	}
	store, err := acme.OpenStore(filepath.Join(n.cfg.Store.DataDir, acmeDir))
	if err != nil {
		return err
	}
	src, err := cert.NewSource("", "", n.cfg.Hostname)
	if err != nil {
		return err
	}
	log := n.log.With("component", "acme")
	challenges := acme.NewChallenges()
	var repl *acme.Replicator
	if n.channel != nil {
		repl = acme.NewReplicator(store, challenges, log)
		if err := repl.Start(n.actors.ActorSystem()); err != nil {
			return err
		}
	}
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "homing_acme_attempts_total",
		Help: "Attempts to order the ACME certificate, by result: ok, temporary or permanent failure."}, []string{"result"})
	for _, r := range []string{"ok", "temporary", "permanent"} {
		attempts.WithLabelValues(r)
	}
	n.registry.MustRegister(attempts)
	onAttempt := func(err error) {
		switch {
		case err == nil:
			attempts.WithLabelValues("ok").Inc()
		case mail.IsTemporary(err):
			attempts.WithLabelValues("temporary").Inc()
		default:
			attempts.WithLabelValues("permanent").Inc()
		}
	}
	mgr, err := acme.New(acme.Config{Directory: cfg.Directory, Email: cfg.Email, Names: cfg.Names, Roots: roots,
		Resolver: n.trust.resolver, RetryMin: cfg.Retry, Store: store, Challenges: challenges, Replicator: repl,
		OnCertificate: src.Set, OnAttempt: onAttempt, Log: log})
	if err != nil {
		return err
	}
	if err := mgr.Check(ctx); err != nil {
		if !mail.IsTemporary(err) {
			return err
		}
		log.Warn("ACME: the CA does not answer now; the node starts and keeps trying", "err", err)
	}
	if src.SelfSigned() {
		log.Warn("ACME: no certificate yet for "+strings.Join(mgr.Names(), ",")+"; the TLS listeners serve a self-signed one until it arrives",
			"directory", cfg.Directory)
	}
	n.trust.certs, n.trust.acme, n.trust.acmeRepl = src, mgr, repl
	srv := &http.Server{Handler: challenges, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second,
		WriteTimeout: 20 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	n.trust.acmeLn, err = n.listen("--acme-http", cfg.HTTP, func(ln net.Listener) error {
		return srv.Serve(netutil.LimitListener(ln, maxChallengeConns))
	}, srv.Close)
	if err != nil {
		return err
	}
	n.stop.push("acme", func() error { mgr.Stop(); return nil })
	return nil
}

// runACME starts obtaining and renewing, once the node has joined (so
// that it knows the other frontends and what they hold).
func (n *Node) runACME(context.Context) error {
	if n.trust.acme != nil {
		n.trust.acme.Run()
	}
	return nil
}

// ACMEChallengeAddr is the address of the HTTP-01 challenge listener,
// "" without ACME.
func (n *Node) ACMEChallengeAddr() string { return addrOf(n.trust.acmeLn) }
