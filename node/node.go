package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/console"
	"github.com/homing-mail/homing/content"
	"github.com/homing-mail/homing/control"
	"github.com/homing-mail/homing/domains"
	"github.com/homing-mail/homing/filter"
	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/imap"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/smtp"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/transfer"
)

// Version is the node software version.
const Version = control.Version

// Node is one running Homing node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	started  time.Time
	registry *prometheus.Registry
	maillog  *maillog.Log // the delivery log
	stop     shutdown
	abrupt   atomic.Bool // CloseAbruptly: no graceful leave

	// Set by the steps of Start, in order; read-only afterwards.
	syncers     []*storage.Syncer
	spaces      []*storage.Space // free-space guards, one per filesystem of a store
	queue       *storage.QueueStore
	journal     *storage.JournalStore
	accounts    *storage.AccountStore
	pipe        *content.Pipeline
	replicator  *content.Replicator
	domains     *domains.Registry  // the cluster's local domains
	placement   *cluster.Placement // nil on a single node
	actors      *actors.System
	settings    *control.Settings
	api         *control.API
	clusterAuth *smtp.ClusterAuth
	guard       *guard.Guard // logins: SMTP AUTH and POST /api/v1/submit share it
	channel     *cluster.Channel
	smtpLn      net.Listener
	subLn       net.Listener
	imapLn      net.Listener
	imapsLn     net.Listener
	pop3Ln      net.Listener
	pop3sLn     net.Listener
	adminLn     net.Listener
	demo        demoInfo
	trust       trust    // resolver, DKIM keys and signer, inbound checks (trust.go)
	relay       relayTLS // MTA-STS, relay trust roots, route credentials (relay_tls.go)

	// membership is set once the node has joined (the last step); the
	// transfer client and forwarding read it from the start.
	membership atomic.Pointer[cluster.Membership]
	// changes tells subscribers when membership or the partitions open
	// here change (testkit's WaitSettled waits on it).
	changes  cluster.Changes
	closed   atomic.Bool
	closeErr error
}

// Start opens the stores, starts the content pipeline, the actors, the
// cluster channel, the SMTP listeners and the admin endpoint, and joins the
// cluster, each a step that pushes its closers on the node's shutdown
// stack; it returns once the node accepts mail. When a step fails, what
// the steps before it started is closed in reverse, and the error says
// which setting or resource failed and why.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("node", cfg.Name)
	n := &Node{cfg: cfg, log: log, started: time.Now(), registry: prometheus.NewRegistry(),
		maillog: maillog.New(log.With("component", "maillog"), maillog.Options{Fields: cfg.LogFields})}
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	steps := []func(context.Context) error{
		n.openStores,
		n.startContent,
		n.startTrust,
		n.startActors,
		n.startChannel,
		n.startTrustChannel,
		n.startACME,
		n.startSMTP,
		n.startIMAP,
		n.startPOP3,
		n.startAdmin,
		n.joinCluster,
		n.joinTrust,
		n.runACME,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			if cerr := n.stop.run(); cerr != nil {
				log.Error("closing after a failed start", "err", cerr)
			}
			return nil, err
		}
	}
	n.api.SetStarted()
	log.Info("node started", "smtp", n.SMTPAddr(), "admin", n.AdminAddr(), "roles", cfg.Roles,
		"domains", strings.Join(n.Domains(), ","), "data", cfg.Store.DataDir)
	return n, nil
}

// openStores opens the queue and, on a backend, the account store, with a
// shared syncfs Syncer per filesystem in SyncFS mode.
func (n *Node) openStores(context.Context) error {
	cfg := n.cfg.Store
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data %s: %w", cfg.DataDir, err)
	}
	// Every DB of the node builds its tables in the same buffers; they are
	// freed after the last DB closed (closers run last pushed first).
	tables := storage.NewTableBuffers()
	n.stop.push("table buffers", tables.Close)
	sopt := storage.Options{Logger: n.log.With("component", "storage"), Owner: n.cfg.Name, TableBuffers: tables}
	qopt, aopt := sopt, sopt
	// The free-space guards come first: on a full disk one may have to
	// remove its reserve file for the stores to open at all.
	backend := n.cfg.hasRole(mail.RoleBackend)
	var err error
	// DataDir holds two databases, the queue and the journal.
	if qopt.Space, err = n.spaceFor(cfg.DataDir, "queue", 2+n.partitionsOn(cfg.DataDir)); err != nil {
		return err
	}
	aopt.MemTableSize = storage.PartitionMemTableSize(cfg.Partitions)
	if backend {
		if aopt.Space, err = n.spaceFor(cfg.AccountStore, "accounts", cfg.Partitions); err != nil {
			return err
		}
	}
	if cfg.Sync == SyncFS {
		if qopt.Syncer, err = n.syncerFor(cfg.DataDir); err != nil {
			return err
		}
		if aopt.Syncer, err = n.syncerFor(cfg.AccountStore); err != nil {
			return err
		}
	}
	q, err := storage.OpenQueue(filepath.Join(cfg.DataDir, "queue"), qopt)
	if errors.Is(err, storage.ErrDamaged) {
		// The node does not start without its queue: the mail in it
		// was acknowledged. The storage layer turned badger's panic,
		// leak or silent loss into this error; say what to do.
		return fmt.Errorf("opening the queue in %s: %w (the queue's files are damaged: `homing check %s` says what it finds; restore the queue directory from a backup)",
			cfg.DataDir, err, cfg.DataDir)
	}
	if errors.Is(err, storage.ErrNoSpace) {
		return fmt.Errorf("opening the queue in %s: %w (the filesystem is full and the reserve file %s is used up: free some space there and start again)",
			cfg.DataDir, err, storage.ReserveName)
	}
	if err != nil {
		return fmt.Errorf("opening the queue in %s: %w", cfg.DataDir, err)
	}
	n.queue = q
	n.stop.push("queue store", q.Close)
	j, err := storage.OpenJournal(filepath.Join(cfg.DataDir, "journal"), qopt, cfg.JournalRetention)
	if err != nil {
		return fmt.Errorf("opening the journal in %s: %w (it can be removed: only the journeys of past messages are lost)", cfg.DataDir, err)
	}
	n.journal = j
	n.stop.push("journal store", j.Close)
	if backend {
		a, err := storage.NewAccountStore(cfg.AccountStore, cfg.Partitions, aopt)
		if err != nil {
			return fmt.Errorf("opening the account store %s: %w", cfg.AccountStore, err)
		}
		n.accounts = a
		n.stop.push("account store", a.Close)
	}
	for _, s := range n.spaces {
		s.Start()
	}
	if cfg.MapCache >= 0 {
		trim := storage.NewMapTrimmer(storage.MapTrimConfig{Budget: cfg.MapCache,
			Dirs: []string{cfg.DataDir, cfg.AccountStore}, Logger: n.log.With("component", "storage")})
		trim.Start()
		n.stop.push("mapped-file trimmer", func() error { trim.Close(); return nil })
	}
	return nil
}

// spaceFor returns the free-space guard of the filesystem holding dir,
// creating it on first use (stores on one filesystem share it), with
// store named among those it watches; dbs is how many databases may live
// there (it sizes the reserve file).
func (n *Node) spaceFor(dir, store string, dbs int) (*storage.Space, error) {
	for _, s := range n.spaces {
		if s.Covers(dir) {
			s.AddStore(store)
			return s, nil
		}
	}
	minFree := max(n.cfg.Store.MinFreeSpace, 0)
	s, err := storage.NewSpace(dir, storage.SpaceConfig{
		Store:       store,
		MinFree:     minFree,
		Reserve:     reserveSize(dbs, minFree),
		ReservePath: storage.ReservePath(dir),
		Logger:      n.log.With("component", "storage"),
	})
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", dir, err)
	}
	if st := s.Status(); st.Err == "" && st.Total > 0 && st.Total < st.MinFree {
		n.log.Warn("the filesystem of this store is smaller than its free-space limit: all new mail is refused (452 4.3.1); set --min-free-space lower",
			"store", store, "dir", dir, "size", storage.FormatBytes(st.Total), "minFree", storage.FormatBytes(st.MinFree))
	}
	n.spaces = append(n.spaces, s)
	n.stop.push("free-space guard", s.Close)
	return s, nil
}

// reserveSize is the reserve file of a filesystem holding dbs databases:
// what opening them on a full disk and finishing their writes takes (the
// headers of new files and the first allocations ahead, a pending flush),
// 2 MiB each and 4 MiB, but at most half the admission limit.
func reserveSize(dbs int, minFree int64) int64 {
	r := int64(4<<20) + int64(dbs)*2<<20
	if minFree > 0 {
		r = min(r, minFree/2)
	}
	return r
}

// partitionsOn is how many account partitions this node may open on the
// filesystem of dir: all of them on a backend whose account store is
// there, none otherwise.
func (n *Node) partitionsOn(dir string) int {
	if !n.cfg.hasRole(mail.RoleBackend) || !storage.SameFilesystem(dir, n.cfg.Store.AccountStore) {
		return 0
	}
	return n.cfg.Store.Partitions
}

// Spaces is the state of the free-space guard of each store: one entry
// per store (queue, accounts), stores on one filesystem alike.
func (n *Node) Spaces() []storage.SpaceStatus {
	var out []storage.SpaceStatus
	for _, s := range n.spaces {
		out = append(out, s.Status())
	}
	return out
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
	if n.cfg.Store.SyncGap > 0 {
		s.SetGap(n.cfg.Store.SyncGap)
	}
	n.syncers = append(n.syncers, s)
	n.stop.push("syncfs syncer", func() error {
		if st := s.Stats(); st.Rounds > 0 {
			n.log.Info("syncfs rounds", "rounds", st.Rounds, "waits", st.Waits, "held", st.Held, "joined", st.Joined, "avgRound", st.RoundTime/time.Duration(st.Rounds))
		}
		return s.Close()
	})
	return s, nil
}

// startContent starts the external filters and the content pipeline with
// the rule sets saved in the data directory.
func (n *Node) startContent(context.Context) error {
	metrics := filter.NewMetrics(n.registry)
	filters := map[string]*filter.Filter{}
	closeFilters := func() error {
		var errs []error
		for _, f := range filters {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	for name, cmd := range n.cfg.Routing.Filters {
		f, err := filter.Start(filter.Config{Name: name, Command: cmd, Logger: n.log.With("component", "filter", "filter", name)}, metrics)
		if err != nil {
			closeFilters()
			return fmt.Errorf("--filter %s: %w", name, err)
		}
		filters[name] = f
	}
	pipe, err := content.New(n.cfg.Store.DataDir, filters, n.log.With("component", "rules"))
	if err != nil {
		closeFilters()
		return err
	}
	n.pipe = pipe
	pipe.SetAuthServID(n.cfg.Trust.AuthServID)
	n.replicator = content.NewReplicator(pipe, n.log.With("component", "rules"))
	n.stop.push("filters", pipe.Close)
	return n.openDomains()
}

// openDomains loads the cluster's local domains saved in the data
// directory, or seeds them from --domains on a new node. Later changes
// (here or from a member) reach the directory at once.
func (n *Node) openDomains() error {
	reg, saved, err := domains.Open(n.cfg.Store.DataDir, n.cfg.Domains, n.log.With("component", "domains"), func(local []string) {
		if s := n.actors; s != nil {
			s.Directory().SetDomains(local)
		}
	})
	if err != nil {
		return fmt.Errorf("the local domains: %w", err)
	}
	if saved && !slices.Equal(reg.Local(), n.cfg.Domains) && n.cfg.DomainsGiven {
		n.log.Warn("the local domains saved in the data directory (changed at run time, or by the cluster) win over --domains, which only seeds a new node; change them with homing ctl domains",
			"domains", strings.Join(reg.Local(), ","), "flag", strings.Join(n.cfg.Domains, ","))
	}
	n.domains = reg
	return nil
}

// startActors starts the node's actors (recovering the queue), with the
// relay client, the transfer client and, in a cluster, the placement that
// follows membership; then the control plane on top of them.
func (n *Node) startActors(ctx context.Context) error {
	cfg := n.cfg
	clustered := cfg.Cluster.Enabled()
	if clustered && cfg.Cluster.Secret != "" {
		n.clusterAuth = smtp.NewClusterAuth(cfg.Cluster.Secret, cfg.Cluster.Name, cfg.Name)
		if err := n.clusterSMTPTLS(); err != nil {
			return err
		}
	}
	relay := n.relayClientTLS(smtp.ClientConfig{Hostname: cfg.Hostname, Resolver: n.relayResolver(), Routes: cfg.Routing.Routes, DANE: n.relayDANE()})
	if len(cfg.Routing.ForwardTo) > 0 {
		// A backend without Internet access: every non-local recipient
		// goes to the frontends, which relay it (authenticated as a
		// member, so they accept any domain).
		relay.Smarthosts = transfer.ForwardHosts(cfg.Routing.ForwardTo, n.members)
		relay.Auth = n.clusterAuth
		relay = n.memberClient(relay)
	}
	var tr actors.Transferer // nil interface without a transfer client
	var channel func(string) string
	if n.clusterAuth != nil {
		c := transfer.New(smtp.NewClient(n.memberClient(smtp.ClientConfig{Hostname: cfg.Hostname})), n.clusterAuth, n.members)
		tr, channel = c, c.Channel
	}
	var open actors.OpenPartition
	if n.accounts != nil {
		open = func(id int) (actors.PartitionData, error) { return n.accounts.Open(id) }
	}
	var sys atomic.Pointer[actors.System]
	var place actors.Placement // nil interface on a single node
	if clustered {
		n.placement = cluster.NewPlacement(cfg.Store.Partitions, cfg.Name, func(p int) *actor.PID {
			if s := sys.Load(); s != nil {
				return s.LocalPartition(p)
			}
			return nil
		})
		place = n.placement
	}
	settings, saved, err := control.LoadSettings(cfg.Store.DataDir, cfg.Routing.Mode)
	if err != nil {
		return fmt.Errorf("the saved settings: %w", err)
	}
	if saved && settings.QueueMode() != cfg.Routing.Mode {
		n.log.Warn("queue mode set at run time and saved overrides --queue-mode; change it with homing ctl settings set queue-mode",
			"queueMode", settings.QueueMode(), "flag", cfg.Routing.Mode)
	}
	n.settings = settings
	stats := actors.NewStats(n.registry)
	stats.Journal = actors.NewStoredJournal(n.journal, nil, n.log.With("component", "journal"))
	// Written out before its store closes, after the actors stopped.
	n.stop.push("journal", func() error { stats.Journal.Close(); return nil })
	qcfg := cfg.Queue
	qcfg.LocalDomains = n.domains.Local()
	if cfg.Cluster.StaticPartitions != "" {
		// A static partition's open data is what this node tells the
		// cluster it holds (staticHasData): it stays open.
		qcfg.PartitionIdle = -1
	}
	freeMem := newMemoryReturn()
	n.stop.push("memory return", freeMem.stop)
	s, err := actors.Start(qcfg, actors.Deps{
		OpenPartition: open,
		Placement:     place,
		Queue:         n.queue,
		Relayer:       n.relayer(smtp.NewClient(relay)),
		Transferer:    tr,
		MemberChannel: channel,
		Pipeline:      n.pipe,
		Mode:          n.settings.QueueMode,
		Logger:        n.log.With("component", "actors"),
		Stats:         stats,
		MailLog:       n.maillog,
		PartitionChanged: func(id int, open bool) {
			if open {
				n.noteStaticData(id)
			} else {
				freeMem.closed()
			}
			n.changes.Notify()
		},
		AfterTransferStored: n.testKillAfterTransferStored(),
	})
	if err != nil {
		return fmt.Errorf("starting the actors: %w", err)
	}
	sys.Store(s)
	n.actors = s
	n.stop.push("actors", func() error { s.Stop(); return nil })

	n.guard = guard.New(cfg.SMTP.Auth)
	n.api = control.New(control.Deps{
		Info: control.Info{Name: cfg.Name, Roles: cfg.Roles, Hostname: cfg.Hostname, Domains: cfg.Domains,
			Partitions: cfg.Store.Partitions, Started: n.started, Clustered: clustered, Seeds: len(cfg.Cluster.Join)},
		System:     s,
		Content:    n.pipe,
		Replicator: n.replicator,
		Runtime:    n.settings,
		Addrs:      func() control.Addrs { return control.Addrs{SMTP: n.SMTPAddr(), Admin: n.AdminAddr()} },
		Logger:     n.log.With("component", "admin"),
		Guard:      n.guard,
		MailLog:    n.maillog,
		DomainSet:  n.domains,
		Spaces:     n.Spaces,

		MinPasswordLength: cfg.Admin.MinPasswordLength,
	})
	n.api.RegisterMetrics(n.registry)
	n.api.StartHistory()
	n.stop.push("history", func() error { n.api.StopHistory(); return nil })
	if cfg.DemoAccount && !clustered {
		return n.ensureDemo(ctx)
	}
	return nil
}

// testKillAfterTransferStored is the hook of
// Config.TestKillAfterTransferStored (tests only), nil when it is off.
func (n *Node) testKillAfterTransferStored() func(id string) {
	file := n.cfg.TestKillAfterTransferStored
	if file == "" {
		return nil
	}
	return func(id string) {
		if os.Remove(file) != nil {
			return // not armed
		}
		n.log.Warn("test: killing this process after storing a transfer, before its reply", "queueID", id)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way: never reply
	}
}

// startChannel starts the cluster channel on the node's actor system, and
// the actors members talk to (settings, introspect). Clustered nodes only.
func (n *Node) startChannel(context.Context) error {
	cfg := n.cfg.Cluster
	if !cfg.Enabled() {
		return nil
	}
	ch, err := cluster.StartChannel(n.actors.ActorSystem(), cluster.ChannelConfig{
		BindAddr:    cfg.Addr,
		Secret:      cfg.Secret,
		Insecure:    cfg.Insecure,
		ClusterName: cfg.Name,
		Logger:      n.log.With("component", "channel"),
	})
	if err != nil {
		return fmt.Errorf("--cluster-addr %s: %w", cfg.Addr, err)
	}
	n.channel = ch
	// The actors stop before the channel does: answers still in flight
	// (a Local Delivery stored here, waiting for its sync) must reach the
	// members that asked. Stopping the actors again later does nothing.
	n.stop.push("cluster channel", func() error {
		n.actors.Stop()
		ch.Stop()
		return nil
	})
	if err := n.replicator.Start(n.actors.ActorSystem()); err != nil {
		return err
	}
	if err := n.domains.Start(n.actors.ActorSystem()); err != nil {
		return err
	}
	if err := n.api.StartIntrospect(); err != nil {
		return fmt.Errorf("introspect actor: %w", err)
	}
	return nil
}

// startSMTP starts the public SMTP listener and, when configured, the
// submission listener.
func (n *Node) startSMTP(context.Context) error {
	cfg := n.cfg
	tlsConfig, err := n.listenerTLS()
	if err != nil {
		return err
	}
	metrics := smtp.NewMetrics(n.registry)
	scfg := cfg.SMTP
	scfg.Source = mail.SourceSMTP
	scfg.TLSConfig = tlsConfig
	scfg.Cluster = n.clusterAuth
	scfg.Guard = n.guard
	scfg.MailLog = n.maillog
	scfg.AcceptTransfers = func() bool { return n.settings.QueueMode() == mail.ModeLocallyForOthers }
	scfg.Checks = n.inboundChecker()
	srv := smtp.NewServer(scfg, n.actors.Directory(), n.actors.Enqueuer(), nil, n.log.With("component", "smtp"), metrics)
	if n.smtpLn, err = n.listen("--smtp", cfg.Listen.SMTP, srv.Serve, srv.Close); err != nil {
		return err
	}
	sub := scfg
	sub.Submission, sub.Source = true, mail.SourceSubmission
	if cfg.Listen.Submission != "" {
		subSrv := smtp.NewServer(sub, n.actors.Directory(), n.actors.Enqueuer(), authenticator{n.actors},
			n.log.With("component", "submission"), metrics)
		if n.subLn, err = n.listen("--submission", cfg.Listen.Submission, subSrv.Serve, subSrv.Close); err != nil {
			return err
		}
	}
	return n.startSubmissions(sub, metrics)
}

// startIMAP starts the IMAP listeners (package imap), which reach every
// account through its owner's account actor, with the login limits of
// SMTP AUTH.
func (n *Node) startIMAP(context.Context) error {
	cfg := n.cfg
	if cfg.Listen.IMAP == "" && cfg.Listen.IMAPS == "" {
		return nil
	}
	// The SMTP listeners' source (startSMTP ran): reloaded on SIGHUP,
	// renewed by ACME.
	tlsConfig := n.trust.certs.Config("", nil)
	var err error
	if n.trust.certs.SelfSigned() && !cfg.Trust.ACME.Enabled() {
		n.log.Info("imap: no --tls-cert; STARTTLS and --imaps use a self-signed certificate")
	}
	// APPEND takes what SMTP takes (--max-message-size).
	srv := imap.New(imap.Config{TLS: tlsConfig, MaxAppend: cfg.SMTP.MaxMessageBytes, Logger: n.log.With("component", "imap")},
		imap.SystemBackend{System: n.actors}, n.guard)
	if cfg.Listen.IMAP != "" {
		if n.imapLn, err = n.listen("--imap", cfg.Listen.IMAP, func(ln net.Listener) error { return srv.Serve(ln, false) }, srv.Close); err != nil {
			return err
		}
	}
	if cfg.Listen.IMAPS != "" {
		// One server serves both: the listener pushed last is closed
		// first by itself, the server with the other.
		closeOnce := func() error { return n.imapsLn.Close() }
		if n.imapLn == nil {
			closeOnce = srv.Close
		}
		if n.imapsLn, err = n.listen("--imaps", cfg.Listen.IMAPS, func(ln net.Listener) error { return srv.Serve(ln, true) }, closeOnce); err != nil {
			return err
		}
	}
	return nil
}

// listen listens on addr (the value of flag) and serves it on a goroutine;
// the closer it pushes stops the server and waits for that goroutine.
func (n *Node) listen(flag, addr string, serve func(net.Listener) error, stop func() error) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Error("listener stopped", "listener", flag, "err", err)
		}
	}()
	n.stop.push(flag+" listener", func() error {
		err := stop()
		<-done
		return err
	})
	return ln, nil
}

// startAdmin starts the admin endpoint: the JSON API, /metrics, the
// profiler and the web console.
func (n *Node) startAdmin(context.Context) error {
	cfg := n.cfg.Admin
	handler := admin.NewHandler(n.adminAPI(), admin.Options{
		Token:         cfg.Token,
		ReadOnlyToken: cfg.ReadToken,
		Metrics:       promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}),
		Logger:        n.log.With("component", "admin"),
		Pprof:         cfg.Pprof,
		Console:       console.Handler("/console/"),
		MailLog:       n.maillog,
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	var err error
	n.adminLn, err = n.listen("--admin", cfg.Addr, srv.Serve, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return err
}

// leaveTimeout bounds a graceful leave's wait for its broadcasts
// (cluster.Membership.Leave's default).
const leaveTimeout = 5 * time.Second

// joinCluster joins the cluster's gossip and starts following it: the
// ownership loop starts and stops partitions as membership changes.
// Clustered nodes only. Closing leaves gracefully (the others see "left"
// and take over this node's partitions) unless CloseAbruptly.
func (n *Node) joinCluster(context.Context) error {
	cfg := n.cfg
	if !cfg.Cluster.Enabled() {
		return nil
	}
	_, rulesVersion := n.pipe.Rules(rules.ScopeCluster)
	ms, err := cluster.Start(cluster.Config{
		Name:          cfg.Name,
		BindAddr:      cfg.Cluster.Gossip,
		Join:          cfg.Cluster.Join,
		Secret:        cfg.Cluster.Secret,
		Insecure:      cfg.Cluster.Insecure,
		Fast:          cfg.Cluster.GossipFast,
		WrapTransport: cfg.Cluster.WrapGossip,
		Logger:        n.log.With("component", "gossip"),
		Meta: cluster.Meta{
			Cluster:      cfg.Cluster.Name,
			Version:      Version,
			Roles:        cfg.Roles,
			QueueMode:    n.settings.QueueMode(),
			SMTP:         n.SMTPAddr(),
			Channel:      n.channel.Address(),
			Admin:        n.AdminAddr(),
			Partitions:   cfg.Store.Partitions,
			Static:       cfg.Cluster.StaticPartitions,
			HasData:      n.staticHasData(),
			Started:      n.started.UnixNano(),
			RulesVersion: rulesVersion,

			DomainsVersion: n.domains.Current().Version,
		},
	})
	if err != nil {
		return fmt.Errorf("--gossip %s: %w", cfg.Cluster.Gossip, err)
	}
	n.stop.push("gossip", func() error {
		var err error
		if !n.abrupt.Load() {
			// Leave returns as soon as its two broadcasts are sent; the
			// bound matters only on a loaded machine, where 2 s once ran
			// out and the others saw this node dead instead of left
			// (TestClusterMailFlowsThroughFrontendToBackends).
			err = ms.Leave(leaveTimeout)
		}
		return errors.Join(err, ms.Shutdown())
	})
	n.membership.Store(ms)
	n.settings.Join(ms)
	n.replicator.Join(ms)
	n.domains.Join(ms)
	own := cluster.RunOwnership(ms, n.placement, n.actors, cfg.hasRole(mail.RoleBackend),
		n.log.With("component", "ownership"), func() {
			n.replicator.Sync()
			n.domains.Sync()
			n.changes.Notify()
		})
	n.stop.push("ownership", func() error { own.Stop(); return nil })
	n.api.Join(&control.Cluster{Membership: ms, Placement: n.placement, Ownership: own})
	return nil
}

// staticHasData is the part of this backend's static set whose data is in
// its store (cluster/static.go).
func (n *Node) staticHasData() string {
	set, err := mail.ParsePartitionSet(n.cfg.Cluster.StaticPartitions, n.cfg.Store.Partitions)
	if err != nil || n.accounts == nil {
		return ""
	}
	var has []int
	for _, p := range set {
		if n.accounts.Opened(p) {
			has = append(has, p)
		}
	}
	return mail.FormatPartitionSet(has)
}

// noteStaticData tells the cluster that static partition id now has its
// data here (it just opened), off the caller (a partition actor).
func (n *Node) noteStaticData(id int) {
	ms := n.membership.Load()
	if ms == nil || n.cfg.Cluster.StaticPartitions == "" {
		return
	}
	has := n.staticHasData()
	if ms.Meta().HasData == has {
		return
	}
	go func() {
		if err := ms.UpdateMeta(func(m *cluster.Meta) { m.HasData = n.staticHasData() }); err != nil && !errors.Is(err, cluster.ErrClosed) {
			n.log.Warn("telling the cluster which static partitions have their data here", "err", err)
		}
	}()
}

// members returns the cluster's members as this node sees them (none on
// a single node or before it has joined).
func (n *Node) members() []cluster.Member {
	if ms := n.membership.Load(); ms != nil {
		return ms.Members()
	}
	return nil
}

// SMTPAddr is the address the SMTP listener is bound to.
func (n *Node) SMTPAddr() string { return addrOf(n.smtpLn) }

// IMAPAddr is the address of the IMAP listener, "" if off.
func (n *Node) IMAPAddr() string { return addrOf(n.imapLn) }

// IMAPSAddr is the address of the implicit-TLS IMAP listener, "" if off.
func (n *Node) IMAPSAddr() string { return addrOf(n.imapsLn) }

// SubmissionAddr is the address of the submission listener, "" if off.
func (n *Node) SubmissionAddr() string { return addrOf(n.subLn) }

// AdminAddr is the address the admin endpoint is bound to.
func (n *Node) AdminAddr() string { return addrOf(n.adminLn) }

// GossipAddr is the gossip address, "" on a single node.
func (n *Node) GossipAddr() string {
	if ms := n.membership.Load(); ms != nil {
		return ms.GossipAddr()
	}
	return ""
}

// ChannelAddr is the cluster channel's address, "" on a single node.
func (n *Node) ChannelAddr() string {
	if n.channel == nil {
		return ""
	}
	return n.channel.Address()
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Domains are the node's local domains now (the first is the default).
func (n *Node) Domains() []string { return n.domains.Local() }

// API is the node's admin API, in process (what the admin endpoint serves).
func (n *Node) API() admin.API { return n.adminAPI() }

// Changes subscribes to the node's changes of membership and of the
// partitions open here: the channel receives a value after each (several
// at once may come as one); cancel ends the subscription.
func (n *Node) Changes() (changed <-chan struct{}, cancel func()) { return n.changes.Subscribe() }

// Actors is the node's actor system (tests and the cluster layer use it).
func (n *Node) Actors() *actors.System { return n.actors }

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Close stops the node in the reverse order of its start: the cluster
// (ownership, then a graceful leave), the admin endpoint, the SMTP
// listeners (no more 250s), the actors (the queue and partitions, which
// answer what is in flight and close their data) and then the cluster
// channel, the filters, then the stores and their syncers. Later calls
// return the first call's error.
func (n *Node) Close() error {
	if n.closed.CompareAndSwap(false, true) {
		if n.api != nil {
			n.api.SetClosing() // GET /readyz answers 503 from now on
		}
		n.closeErr = n.stop.run()
		n.log.Info("node stopped")
	}
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
	addr := "demo@" + n.Domains()[0]
	pwFile := filepath.Join(n.cfg.Store.DataDir, "demo-password")
	_, err := n.actors.GetAccount(ctx, addr)
	if err != nil && mail.IsTemporary(err) {
		// Its partition does not open (damaged files, say): the node runs
		// without it, as without any other partition; so does the demo.
		n.log.Warn("demo account unavailable; starting without it", "account", addr, "err", err)
		n.demo = demoInfo{addr, ""}
		return nil
	}
	if err == nil {
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
