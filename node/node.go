package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/filter"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/smtp"
	"github.com/homing-mail/homing/storage"
)

// Node is one running Homing node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	queue    *storage.QueueStore
	accounts *storage.AccountStore
	actors   *actors.System
	registry *prometheus.Registry

	smtpServer *smtp.Server
	subServer  *smtp.Server
	smtpLn     net.Listener
	subLn      net.Listener
	adminLn    net.Listener
	adminSrv   *http.Server

	mu        sync.Mutex
	queueMode string
	demo      demoInfo
	pipe      *pipeline
	cl        *clusterParts
	syncers   []*storage.Syncer

	abrupt    atomic.Bool // CloseAbruptly: no graceful leave
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Start opens the stores, starts the actors and the listeners, and returns
// once the node accepts mail.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("node", cfg.Name)
	n = &Node{cfg: cfg, log: log, started: time.Now(), queueMode: cfg.QueueMode, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	sopt := storage.Options{Logger: log.With("component", "storage")}
	qopt, aopt := sopt, sopt
	if cfg.SyncMode == "syncfs" {
		if qopt.Syncer, err = n.syncerFor(cfg.DataDir); err != nil {
			return nil, err
		}
		if aopt.Syncer, err = n.syncerFor(cfg.AccountStore); err != nil {
			return nil, err
		}
	}
	n.queue, err = storage.OpenQueue(filepath.Join(cfg.DataDir, "queue"), qopt)
	if err != nil {
		return nil, fmt.Errorf("opening the queue: %w", err)
	}
	var open actors.OpenPartition
	if cfg.hasRole("backend") {
		n.accounts, err = storage.NewAccountStore(cfg.AccountStore, cfg.Partitions, aopt)
		if err != nil {
			return nil, fmt.Errorf("opening the account store: %w", err)
		}
		open = func(id int) (actors.PartitionData, error) { return n.accounts.Open(id) }
	}

	var clusterAuth *smtp.ClusterAuth
	if cfg.Clustered() && cfg.Secret != "" {
		clusterAuth = smtp.NewClusterAuth(cfg.Secret, cfg.ClusterName, cfg.Name)
	}
	relayCfg := smtp.ClientConfig{
		Hostname: cfg.Hostname,
		Resolver: cfg.Resolver,
		Routes:   cfg.Routes,
	}
	if len(cfg.ForwardTo) > 0 {
		// A backend without Internet access: every non-local recipient
		// goes to the frontends, which relay it (authenticated as a
		// member, so they accept any domain).
		relayCfg.Smarthosts = n.forwardHosts(new(atomic.Uint64))
		relayCfg.Auth = clusterAuth
	}
	relayer := smtp.NewClient(relayCfg)
	var tr actors.Transferer
	if clusterAuth != nil {
		tr = &transferer{n: n, auth: clusterAuth, client: smtp.NewClient(smtp.ClientConfig{Hostname: cfg.Hostname})}
	}
	filterMetrics := filter.NewMetrics(n.registry)
	filters := map[string]*filter.Filter{}
	for name, cmd := range cfg.Filters {
		f, err := filter.Start(filter.Config{Name: name, Command: cmd, Logger: log.With("component", "filter", "filter", name)}, filterMetrics)
		if err != nil {
			for _, f := range filters {
				f.Close()
			}
			return nil, fmt.Errorf("--filter %s: %w", name, err)
		}
		filters[name] = f
	}
	if n.pipe, err = newPipeline(cfg.DataDir, filters, log.With("component", "rules")); err != nil {
		for _, f := range filters {
			f.Close()
		}
		return nil, err
	}
	stats := actors.NewStats(n.registry)
	var sysPtr atomic.Pointer[actors.System]
	var pl *cluster.Placement
	var placement actors.Placement // nil interface on a single node
	if cfg.Clustered() {
		pl = newPlacement(cfg, &sysPtr)
		placement = pl
	}
	n.actors, err = actors.Start(actors.Config{
		Partitions:       cfg.Partitions,
		Hostname:         cfg.Hostname,
		LocalDomains:     cfg.Domains,
		AccountIdle:      cfg.AccountIdle,
		MinBackoff:       cfg.MinBackoff,
		MaxBackoff:       cfg.MaxBackoff,
		MaxLifetime:      cfg.MaxLifetime,
		DelayWarning:     cfg.DelayWarning,
		OverQuotaTimeout: cfg.OverQuotaTimeout,
		RelayConcurrency: cfg.RelayConcurrency,
		LocalRetry:       cfg.LocalRetry,
		LookupCacheTTL:   cfg.LookupCacheTTL,
	}, actors.Deps{
		OpenPartition: open,
		Placement:     placement,
		Queue:         n.queue,
		Relayer:       relayer,
		Transferer:    tr,
		Pipeline:      n.pipe,
		Mode:          n.mode,
		Logger:        log.With("component", "actors"),
		Stats:         stats,
	})
	if err != nil {
		return nil, fmt.Errorf("starting actors: %w", err)
	}
	sysPtr.Store(n.actors)
	n.registerNodeMetrics()

	if cfg.DemoAccount && !cfg.Clustered() {
		if err := n.ensureDemo(ctx); err != nil {
			return nil, err
		}
	}

	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	smtpMetrics := smtp.NewMetrics(n.registry)
	scfg := smtp.Config{
		Hostname:            cfg.Hostname,
		MaxMessageBytes:     cfg.MaxMessageBytes,
		MaxRecipients:       cfg.MaxRecipients,
		CommandTimeout:      cfg.CommandTimeout,
		DataTimeout:         cfg.DataTimeout,
		MaxConnections:      cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		Source:              mail.SourceSMTP,
		TLSConfig:           tlsConfig,
		Cluster:             clusterAuth,
		AcceptTransfers:     func() bool { return n.mode() == ModeLocallyForOthers },
	}
	n.smtpServer = smtp.NewServer(scfg, n.actors.Directory(), n.actors.Enqueuer(), nil, log.With("component", "smtp"), smtpMetrics)
	if n.smtpLn, err = net.Listen("tcp", cfg.SMTPAddr); err != nil {
		return nil, fmt.Errorf("--smtp %s: %w", cfg.SMTPAddr, err)
	}
	n.serve("smtp", func() error { return n.smtpServer.Serve(n.smtpLn) })
	if cfg.SubmissionAddr != "" {
		sub := scfg
		sub.Submission = true
		sub.Source = mail.SourceSubmission
		if sub.TLSConfig == nil {
			// AUTH needs TLS off loopback: without a configured
			// certificate, offer STARTTLS with a self-signed one.
			cert, err := selfSigned(cfg.Hostname)
			if err != nil {
				return nil, fmt.Errorf("self-signed certificate: %w", err)
			}
			sub.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			log.Warn("submission: no --tls-cert; using a self-signed certificate (development only)")
		}
		n.subServer = smtp.NewServer(sub, n.actors.Directory(), n.actors.Enqueuer(), authenticator{n.actors},
			log.With("component", "submission"), smtpMetrics)
		if n.subLn, err = net.Listen("tcp", cfg.SubmissionAddr); err != nil {
			return nil, fmt.Errorf("--submission %s: %w", cfg.SubmissionAddr, err)
		}
		n.serve("submission", func() error { return n.subServer.Serve(n.subLn) })
	}

	handler := admin.NewHandler(apiImpl{n}, admin.Options{
		Token:         cfg.AdminToken,
		ReadOnlyToken: cfg.AdminReadToken,
		Metrics:       promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}),
		Logger:        log.With("component", "admin"),
	})
	n.adminSrv = &http.Server{Handler: withConsole(withPprof(handler, cfg.AdminToken)), ReadHeaderTimeout: 10 * time.Second}
	if n.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
		return nil, fmt.Errorf("--admin %s: %w", cfg.AdminAddr, err)
	}
	n.serve("admin", func() error { return n.adminSrv.Serve(n.adminLn) })
	if cfg.Clustered() {
		if err := n.startCluster(pl); err != nil {
			return nil, err
		}
	}
	log.Info("node started", "smtp", n.SMTPAddr(), "admin", n.AdminAddr(), "roles", strings.Join(cfg.Roles, ","),
		"domains", strings.Join(cfg.Domains, ","), "data", cfg.DataDir)
	return n, nil
}

func (n *Node) serve(what string, f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Error("listener stopped", "listener", what, "err", err)
		}
	}()
}

// SMTPAddr is the address the SMTP listener is bound to.
func (n *Node) SMTPAddr() string { return addrOf(n.smtpLn) }

// SubmissionAddr is the address of the submission listener, "" if off.
func (n *Node) SubmissionAddr() string { return addrOf(n.subLn) }

// AdminAddr is the address the admin endpoint is bound to.
func (n *Node) AdminAddr() string { return addrOf(n.adminLn) }

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Actors is the node's actor system (tests and the cluster layer use it).
func (n *Node) Actors() *actors.System { return n.actors }

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Close stops the node in order: listeners (no more 250s), then actors
// (the queue and partitions, which close their data), then stores.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.smtpServer != nil {
			errs = append(errs, n.smtpServer.Close())
		} else if n.smtpLn != nil {
			errs = append(errs, n.smtpLn.Close())
		}
		if n.subServer != nil {
			errs = append(errs, n.subServer.Close())
		}
		if n.adminSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, n.adminSrv.Shutdown(ctx))
			cancel()
		} else if n.adminLn != nil {
			errs = append(errs, n.adminLn.Close())
		}
		n.wg.Wait()
		errs = append(errs, n.stopCluster())
		if n.actors != nil {
			n.actors.Stop()
		}
		errs = append(errs, n.closeCluster())
		if n.pipe != nil {
			errs = append(errs, n.pipe.close())
		}
		if n.accounts != nil {
			errs = append(errs, n.accounts.Close())
		}
		if n.queue != nil {
			errs = append(errs, n.queue.Close())
		}
		for _, s := range n.syncers {
			st := s.Stats()
			if st.Rounds > 0 {
				n.log.Info("syncfs rounds", "rounds", st.Rounds, "waits", st.Waits,
					"avgRound", st.RoundTime/time.Duration(st.Rounds))
			}
			errs = append(errs, s.Close())
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped")
	})
	return n.closeErr
}

// CloseAbruptly stops the node like Close but without leaving the
// cluster: the others notice through failure detection, as after a crash.
// (In one process the data must still be closed so that another node can
// open it; a real crash is tested with kill -9 of a process.)
func (n *Node) CloseAbruptly() error {
	n.abrupt.Store(true)
	return n.Close()
}

// ensureDemo creates the demo account on first start and keeps its
// password in DataDir/demo-password so that every start can print it.
func (n *Node) ensureDemo(ctx context.Context) error {
	addr := "demo@" + n.cfg.Domains[0]
	pwFile := filepath.Join(n.cfg.DataDir, "demo-password")
	if _, err := n.actors.GetAccount(ctx, addr); err == nil {
		if pw, err := os.ReadFile(pwFile); err == nil {
			n.demo = demoInfo{addr, strings.TrimSpace(string(pw))}
		} else {
			n.demo = demoInfo{addr, ""}
		}
		return nil
	} else if !errors.Is(err, mail.ErrNotFound) {
		return fmt.Errorf("demo account: %w", err)
	}
	pw := randomPassword()
	hash, err := storage.HashPassword(pw)
	if err != nil {
		return err
	}
	if _, err := n.actors.CreateAccount(ctx, addr, hash, 0); err != nil {
		return fmt.Errorf("creating the demo account: %w", err)
	}
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	n.demo = demoInfo{addr, pw}
	return nil
}

// syncerFor returns the Syncer of the filesystem holding dir, creating it
// on first use: DBs on one filesystem share syncfs rounds.
func (n *Node) syncerFor(dir string) (*storage.Syncer, error) {
	for _, s := range n.syncers {
		if s.Covers(dir) {
			return s, nil
		}
	}
	s, err := storage.NewSyncer(dir)
	if err != nil {
		return nil, fmt.Errorf("--sync syncfs: %w (use --sync fsync)", err)
	}
	n.syncers = append(n.syncers, s)
	return s, nil
}

type demoInfo struct{ Address, Password string }

// Demo returns the demo account and its password ("" when unknown).
func (n *Node) Demo() (address, password string) { return n.demo.Address, n.demo.Password }

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authenticator adapts the actors to smtp.Authenticator.
type authenticator struct{ s *actors.System }

func (a authenticator) Authenticate(ctx context.Context, user, password string) (string, error) {
	return a.s.Authenticate(ctx, user, password)
}
