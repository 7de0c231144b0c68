package cluster

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
)

// ErrInsecure is returned by Start when the node is to join other nodes
// (Config.Join) without a secret and without Config.Insecure.
var ErrInsecure = mail.PermanentError("cluster: joining a cluster without a secret: set --secret (the same on every node), " +
	"or --insecure to gossip unencrypted and unauthenticated")

// ErrMembershipConfig is wrapped by Start when the Config is not usable; the
// wrapped text says which field and why.
var ErrMembershipConfig = mail.PermanentError("cluster: bad membership config")

// gossipKeyLabel is the HKDF info prefix of the gossip key; a zero byte and
// the cluster name follow it. Changing it changes every key.
const gossipKeyLabel = "homing memberlist v1"

// Resolver looks up the addresses of a seed's host name. *net.Resolver
// satisfies it. It is called from Membership's join goroutine only.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures Start. The zero value of every optional field is
// usable.
type Config struct {
	// Name is the node name, unique in the cluster (memberlist's node
	// name). Required.
	Name string
	// BindAddr is the gossip listen address, IP:port (UDP and TCP on the
	// same port); port 0 picks a free port (tests). Required.
	BindAddr string
	// Join lists seeds, host:port. Start never blocks on them: a
	// goroutine joins them with a backoff capped at about 5 s until one
	// answers, and again whenever this node knows no live peer.
	Join []string
	// Secret is the cluster's shared secret, the same on every node; ""
	// = no encryption. A node with no Secret, no Join and not Insecure
	// runs alone: it refuses every node that tries to join it, and they
	// refuse it.
	Secret string
	// Insecure allows gossip without a secret, unencrypted and
	// unauthenticated (logged at WARN once at start).
	Insecure bool
	// Meta is what this node tells the others about itself. Cluster and
	// Partitions must be the same on every node; Partitions > 0. Started
	// is set to the start time if zero.
	Meta Meta
	// Logger receives Membership's log and memberlist's own (each line at
	// the level memberlist gives it, its text prefixed "memberlist: ").
	// Membership adds no attributes: give it a logger that names the node
	// and component. nil = slog.Default().
	Logger *slog.Logger
	// Fast shrinks every timer for tests (gossip every 10 ms, probe every
	// 100 ms with a 50 ms timeout, push/pull every 500 ms, short
	// suspicion), so that a crash is declared dead within about 2 s.
	Fast bool
	// WrapTransport, if set, wraps the network transport (tests use it to
	// cut and heal links: Switch.Wrap).
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// Resolver resolves seed host names; nil = net.DefaultResolver. Seeds
	// given as IP:port are never looked up.
	Resolver Resolver

	// tune, if set, adjusts the memberlist configuration last (tests).
	tune func(*memberlist.Config)
}

// timers are Membership's own intervals (memberlist's are in its Config).
type timers struct {
	joinMin, joinMax time.Duration // seed join backoff
	reconnect        time.Duration // between attempts to reach a member believed dead
	reconnectFor     time.Duration // how long after its death a member is still tried
	update           time.Duration // how long UpdateMeta waits for its broadcast
	resolve          time.Duration // timeout of one seed lookup
	refusalLog       time.Duration // a refused node is logged at most once per this
}

func (c *Config) timers() timers {
	if c.Fast {
		return timers{joinMin: 20 * time.Millisecond, joinMax: 500 * time.Millisecond,
			reconnect: 100 * time.Millisecond, reconnectFor: time.Minute,
			update: time.Second, resolve: time.Second, refusalLog: time.Minute}
	}
	return timers{joinMin: 250 * time.Millisecond, joinMax: 5 * time.Second,
		reconnect: 10 * time.Second, reconnectFor: 24 * time.Hour,
		update: 5 * time.Second, resolve: 5 * time.Second, refusalLog: time.Minute}
}

// check validates c and returns the bind IP and port.
func (c *Config) check() (string, int, error) {
	bad := func(format string, args ...any) (string, int, error) {
		return "", 0, fmt.Errorf("%w: "+format, append([]any{ErrMembershipConfig}, args...)...)
	}
	if c.Name == "" {
		return bad("node name is empty")
	}
	host, portText, err := net.SplitHostPort(c.BindAddr)
	if err != nil {
		return bad("gossip address %q: %v", c.BindAddr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bad("gossip address %q: the host must be an IP address", c.BindAddr)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return bad("gossip address %q: bad port", c.BindAddr)
	}
	for _, s := range c.Join {
		if _, p, err := net.SplitHostPort(s); err != nil {
			return bad("seed %q: %v", s, err)
		} else if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return bad("seed %q: bad port", s)
		}
	}
	if c.Meta.Partitions <= 0 {
		return bad("partition count %d: must be positive", c.Meta.Partitions)
	}
	if len(c.Join) > 0 && c.Secret == "" && !c.Insecure {
		return "", 0, ErrInsecure
	}
	return ip.String(), int(port), nil
}

// gossipKey derives the 32-byte AES-256 memberlist key from the secret
// (HKDF-SHA256, RFC 5869, no salt; info = gossipKeyLabel, 0, cluster name).
func gossipKey(secret, cluster string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(secret), nil, gossipKeyLabel+"\x00"+cluster, 32)
}

// memberlistConfig is the memberlist configuration for c (delegates,
// transport and logger are set by Start).
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.TCPTimeout = 5 * time.Second
	// A node that crashed comes back under its name with a new address
	// (port 0, a new container): let it in once its old self is dead.
	mc.DeadNodeReclaimTime = 10 * time.Second
	// The production profile: memberlist's LAN profile with failure
	// detection tightened so that a crashed backend is declared dead in
	// about 2.5 s instead of 5-7 s (measured, README "Failover"): probe
	// every 500 ms (LAN: 1 s) with a 250 ms timeout (500 ms; a LAN round
	// trip is well under 1 ms, and memberlist's awareness multiplier
	// stretches the timeout of a node that is itself slow), and a
	// suspicion that lasts 4 x log10(N) probe intervals at least and twice
	// that at most (LAN: six times), gossiped every 100 ms (200 ms). A
	// member that is merely slow refutes the suspicion within that time.
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 250 * time.Millisecond
	mc.SuspicionMaxTimeoutMult = 2
	mc.GossipInterval = 100 * time.Millisecond
	if c.Fast {
		mc.TCPTimeout = 500 * time.Millisecond
		mc.RetransmitMult = 3
		// Fast, yet forgiving enough that a member busy for a few hundred
		// milliseconds (a -race build on two loaded cores) is not declared
		// dead just as it leaves gracefully: a dead verdict, once given,
		// hides its later leave message (memberlist ignores news of a
		// member it holds dead).
		mc.SuspicionMult = 4
		mc.SuspicionMaxTimeoutMult = 3
		mc.PushPullInterval = 500 * time.Millisecond
		mc.ProbeInterval = 150 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.AwarenessMaxMultiplier = 3
		mc.GossipInterval = 10 * time.Millisecond
		mc.GossipToTheDeadTime = 2 * time.Second
		mc.DeadNodeReclaimTime = 200 * time.Millisecond
	}
	if c.Secret != "" {
		key, err := gossipKey(c.Secret, c.Meta.Cluster)
		if err != nil {
			return nil, fmt.Errorf("cluster: deriving the gossip key: %w", err)
		}
		mc.SecretKey = key
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	if c.tune != nil {
		c.tune(mc)
	}
	return mc, nil
}
