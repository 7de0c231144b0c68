package cluster

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/homing-mail/homing/mail"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Errors of StartChannel. Callers test them with errors.Is.
var (
	// ErrChannelConfig: the ChannelConfig is not usable (no secret and not
	// Insecure, both, a short secret, a malformed address). The wrapped
	// text says which.
	ErrChannelConfig = mail.PermanentError("cluster: bad channel config")
	// ErrChannelStarted: the actor system already has a remote (one
	// channel per actor system).
	ErrChannelStarted = mail.PermanentError("cluster: actor system already has a channel")
	// ErrChannelListen: the channel could not listen on BindAddr (or, far
	// less likely, protoactor's endpoint manager did not start).
	ErrChannelListen = mail.PermanentError("cluster: channel cannot listen")
)

// maxChannelMessage is the largest gRPC message the channel's server
// accepts. gRPC's default is 4 MiB, but one message of protoactor's is a
// batch of up to 1000 actor messages, and a single pb.Deliver carries a
// whole mail (32 MiB by default, more if configured). Peers are
// authenticated, so the limit is protobuf's own: 2 GiB.
const maxChannelMessage = math.MaxInt32

// unstartedAddress is the address protoactor gives an actor system that
// has no remote (actor.localAddress, unexported there).
const unstartedAddress = "nonhost"

// ChannelConfig configures the cluster channel of one node.
type ChannelConfig struct {
	// BindAddr is host:port to listen on; port 0 picks a free port. A host
	// that is empty or unspecified (0.0.0.0, ::) listens on every
	// interface and then needs AdvertiseAddr.
	BindAddr string
	// AdvertiseAddr is host:port other nodes use to reach this one; it is
	// the address every PID of this node carries. "" means the bound
	// address (with the real port when BindAddr asked for port 0). It
	// must have a non-zero port.
	AdvertiseAddr string
	// Secret is the cluster secret every node shares; the channel's TLS
	// keys derive from it (tls.go). At least MinSecretLen bytes. "" is
	// allowed only with Insecure.
	Secret string
	// Insecure runs the channel in plaintext, unauthenticated: anyone who
	// reaches the port can send any message to any actor. Only with an
	// empty Secret; for tests and trusted networks.
	Insecure bool
	// ClusterName separates clusters that share a secret: it is part of
	// the key derivation.
	ClusterName string
	// Logger receives the channel's own records; nil discards them.
	// protoactor logs through the actor system's logger.
	Logger *slog.Logger
}

// Channel is a node's cluster channel: protoactor remote on the node's
// actor system, over mutual TLS (or plaintext when Insecure). PIDs whose
// Address is another node's channel address reach that node's actors
// through it. Its methods are safe for concurrent use.
type Channel struct {
	system *actor.ActorSystem
	remote *remote.Remote
	addr   string
	log    *slog.Logger
	sub    *eventstream.Subscription

	// endpointMu orders remote's handling of endpoint events before Stop;
	// see watchEndpoints.
	endpointMu sync.Mutex
	stopOnce   sync.Once
}

// channelAddrs is the checked form of the addresses of a ChannelConfig.
type channelAddrs struct {
	host      string // for remote.Configure: an IPv6 literal in brackets
	port      int
	advertise string // "" = the bound address
}

// checkChannelAddrs validates bind and advertise (see ChannelConfig).
func checkChannelAddrs(bind, advertise string) (channelAddrs, error) {
	host, portText, err := net.SplitHostPort(bind)
	if err != nil {
		return channelAddrs{}, fmt.Errorf("%w: BindAddr %q: %v", ErrChannelConfig, bind, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return channelAddrs{}, fmt.Errorf("%w: BindAddr %q: bad port", ErrChannelConfig, bind)
	}
	a := channelAddrs{host: host, port: port}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		// remote.Config.Address joins host and port with a bare colon.
		a.host = "[" + host + "]"
	}
	if advertise == "" {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return channelAddrs{}, fmt.Errorf("%w: BindAddr %q listens on every interface: set AdvertiseAddr", ErrChannelConfig, bind)
		}
		return a, nil
	}
	ahost, aport, err := net.SplitHostPort(advertise)
	if err != nil {
		return channelAddrs{}, fmt.Errorf("%w: AdvertiseAddr %q: %v", ErrChannelConfig, advertise, err)
	}
	if p, err := strconv.Atoi(aport); err != nil || p <= 0 || p > 65535 {
		return channelAddrs{}, fmt.Errorf("%w: AdvertiseAddr %q needs a port from 1 to 65535 (with BindAddr port 0, leave it empty or bind a fixed port)", ErrChannelConfig, advertise)
	}
	if ip := net.ParseIP(ahost); ahost == "" || (ip != nil && ip.IsUnspecified()) {
		return channelAddrs{}, fmt.Errorf("%w: AdvertiseAddr %q has no host others can reach", ErrChannelConfig, advertise)
	}
	// Normalise the way PIDs will spell it (IPv6 in brackets).
	a.advertise = net.JoinHostPort(ahost, aport)
	return a, nil
}

// StartChannel starts protoactor remote on system with the security of
// tls.go (or plaintext when cfg.Insecure), listening on cfg.BindAddr. One
// channel per actor system: start it before the system's PIDs are handed
// to other nodes, since PIDs made earlier carry no address.
//
// remote.Start overwrites grpc's global logger (grpclog.SetLoggerV2),
// which is a data race when several channels start in one process while
// another one's gRPC goroutines run; in tests, run further channels in
// child processes.
func StartChannel(system *actor.ActorSystem, cfg ChannelConfig) (*Channel, error) {
	if system == nil {
		return nil, fmt.Errorf("%w: nil actor system", ErrChannelConfig)
	}
	switch {
	case cfg.Insecure && cfg.Secret != "":
		return nil, fmt.Errorf("%w: Insecure with a Secret (choose one)", ErrChannelConfig)
	case !cfg.Insecure && cfg.Secret == "":
		return nil, fmt.Errorf("%w: no Secret (set one, or Insecure for plaintext)", ErrChannelConfig)
	case !cfg.Insecure && len(cfg.Secret) < MinSecretLen:
		return nil, fmt.Errorf("%w: Secret shorter than %d bytes", ErrChannelConfig, MinSecretLen)
	}
	addrs, err := checkChannelAddrs(cfg.BindAddr, cfg.AdvertiseAddr)
	if err != nil {
		return nil, err
	}
	if a := system.Address(); a != unstartedAddress {
		return nil, fmt.Errorf("%w (address %s)", ErrChannelStarted, a)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var opts []remote.ConfigOption
	if cfg.Insecure {
		// remote's default dial option is the deprecated grpc.WithInsecure;
		// say the same thing explicitly.
		opts = append(opts,
			remote.WithServerOptions(grpc.MaxRecvMsgSize(maxChannelMessage)),
			remote.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())))
	} else {
		ca, err := deriveCA(cfg.Secret, cfg.ClusterName)
		if err != nil {
			return nil, err
		}
		name := cfg.AdvertiseAddr
		if name == "" {
			name = cfg.BindAddr
		}
		leaf, err := ca.issueLeaf(name, time.Now())
		if err != nil {
			return nil, err
		}
		// WithDialOptions replaces remote's default options (which hold
		// grpc.WithInsecure) rather than appending to them, so the dialer
		// has exactly one transport credential: this one.
		opts = append(opts,
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(ca.serverTLS(leaf))), grpc.MaxRecvMsgSize(maxChannelMessage)),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(ca.clientTLS(leaf)))),
		)
	}
	if addrs.advertise != "" {
		// Despite its name, remote uses AdvertisedHost verbatim as the
		// whole address (host:port) of the system.
		opts = append(opts, remote.WithAdvertisedHost(addrs.advertise))
	}

	r := remote.NewRemote(system, remote.Configure(addrs.host, addrs.port, opts...))
	if err := startRemote(r); err != nil {
		return nil, err
	}
	// With no AdvertisedHost, remote.Start sets the system's address to the
	// listener's address, which has the real port when 0 was asked.
	c := &Channel{system: system, remote: r, addr: system.Address(), log: log}
	c.watchEndpoints()
	mode := "mutual TLS"
	if cfg.Insecure {
		mode = "plaintext"
		log.Warn("cluster channel is plaintext and unauthenticated", "address", c.addr)
	}
	log.Info("cluster channel started", "address", c.addr, "bind", cfg.BindAddr, "security", mode)
	return c, nil
}

// startRemote runs r.Start, which panics when it cannot listen (and when
// its endpoint manager does not answer in 3 s); it returns that as an
// error. A listen failure happens before Start changes anything else.
func startRemote(r *remote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrChannelListen, p)
		}
	}()
	r.Start()
	return nil
}

// watchEndpoints subscribes to remote's endpoint events, after remote's
// own endpoint manager (remote.Start subscribed it), so that for each event
// this handler runs after the manager's on the same goroutine, and logs
// them.
//
// It also fixes a data race of remote's Shutdown: the manager's handler
// reads a field that Shutdown sets to nil, with nothing ordering the two, so
// a node that lost a peer before it stops is reported by -race. Stop takes
// endpointMu, which this handler takes after the manager's handler has
// returned; that orders every event handled before Stop began. This relies
// on the event stream calling subscribers in the order they subscribed,
// which holds unless a subscriber that came before is unsubscribed (the
// stream then moves the last one into its place). An event whose handling
// is still under way when Stop runs remains racy inside protoactor (a
// narrow window).
func (c *Channel) watchEndpoints() {
	c.sub = c.system.EventStream.SubscribeWithPredicate(func(evt any) {
		c.endpointMu.Lock()
		defer c.endpointMu.Unlock()
		switch e := evt.(type) {
		case *remote.EndpointTerminatedEvent:
			c.log.Debug("cluster channel endpoint terminated", "peer", e.Address)
		case *remote.EndpointConnectedEvent:
			c.log.Debug("cluster channel endpoint connected", "peer", e.Address)
		}
	}, func(evt any) bool {
		switch evt.(type) {
		case *remote.EndpointTerminatedEvent, *remote.EndpointConnectedEvent:
			return true
		}
		return false
	})
}

// Address is the address this node's PIDs carry and other nodes dial:
// AdvertiseAddr, or the bound host:port with the real port.
func (c *Channel) Address() string { return c.addr }

// Stop stops the remote gracefully: it tells connected peers it leaves,
// stops its endpoints and the gRPC server (protoactor forces the server
// down after 10 s). Later calls do nothing. Messages to and from other
// nodes after Stop are not delivered. It does not stop the actor system.
func (c *Channel) Stop() {
	c.stopOnce.Do(func() {
		start := time.Now()
		c.endpointMu.Lock()
		c.system.EventStream.Unsubscribe(c.sub)
		c.endpointMu.Unlock()
		c.remote.Shutdown(true)
		c.log.Info("cluster channel stopped", "address", c.addr, "took", time.Since(start))
	})
}
