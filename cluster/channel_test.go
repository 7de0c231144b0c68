package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Secrets of the tests' clusters. Every channel runs in a child process
// (channel_child_test.go); this process only dials them.
const (
	testSecretA = "channel-test-secret-A-0123456789"
	testSecretB = "channel-test-secret-B-0123456789"
)

func withSecret(s string) string { return childSecretEnv + "=" + s }

const withInsecure = childInsecureEnv + "=1"

// okTimeout is the request timeout where a reply is expected; failTimeout
// where none is (the test waits for all of it).
const (
	okTimeout   = 10 * time.Second
	failTimeout = 2 * time.Second
)

// startPair starts two children at once.
func startPair(t *testing.T, an, bn string, aenv, benv []string) (*channelChild, *channelChild) {
	t.Helper()
	cs := startChannelChildren(t, []string{an, bn}, aenv, benv)
	return cs[0], cs[1]
}

// requireLoopbackPort checks that addr is 127.0.0.1 with a real port.
func requireLoopbackPort(t *testing.T, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	if p, _ := strconv.Atoi(port); host != "127.0.0.1" || p == 0 {
		t.Fatalf("address %q: want 127.0.0.1 and the real port", addr)
	}
}

// requireCleanStop stops c gracefully and checks that it leaked no
// goroutine and took less than protoactor's 10 s forced-stop timeout.
func requireCleanStop(t *testing.T, c *channelChild) {
	t.Helper()
	took, leaks := c.stop()
	t.Logf("%s: Stop and actor system shutdown took %v", c.name, took)
	if leaks != "none" {
		t.Errorf("%s leaked goroutines after Stop: %s", c.name, leaks)
	}
	if took >= 10*time.Second {
		t.Errorf("%s: Stop took %v: the gRPC server was forced down", c.name, took)
	}
}

func TestChannelRequestReplyWithSameSecret(t *testing.T) {
	a, b := startPair(t, "a", "b", []string{withSecret(testSecretA)}, []string{withSecret(testSecretA)})
	// Port 0 was asked: Address must carry the real port, since PIDs and
	// peers use it.
	requireLoopbackPort(t, a.addr)
	requireLoopbackPort(t, b.addr)
	if a.addr == b.addr {
		t.Fatalf("both children have address %s", a.addr)
	}

	want := "resolved:" + resolveAddress
	if got, err := b.resolve(a.addr, okTimeout); err != nil || got != want {
		t.Fatalf("b -> a: got %q, %v; want %q", got, err, want)
	}
	if got, err := a.resolve(b.addr, okTimeout); err != nil || got != want {
		t.Fatalf("a -> b: got %q, %v; want %q", got, err, want)
	}
	if n := a.count(); n != 1 {
		t.Errorf("a's resolver received %d messages, want 1", n)
	}
	if n := b.count(); n != 1 {
		t.Errorf("b's resolver received %d messages, want 1", n)
	}
	// b stops first: a then stops after losing its peer (the case
	// Channel.watchEndpoints orders for the race detector).
	requireCleanStop(t, b)
	requireCleanStop(t, a)
}

func TestChannelCarriesLargeMessages(t *testing.T) {
	// Larger than gRPC's default limit of 4 MiB, both ways: the request to
	// a's server, the reply to b's. (33 MiB, above Homing's default SMTP
	// limit, passes too, but takes 8 s under -race.)
	const size = 6 << 20
	a, b := startPair(t, "a", "b", []string{withSecret(testSecretA)}, []string{withSecret(testSecretA)})
	// 6 MiB each way under -race: seconds on a quiet machine, more than
	// okTimeout on a loaded one (seen at a load average of 20).
	b.send("resolvebig %s %d %d", a.addr, (3 * okTimeout).Milliseconds(), size)
	want := fmt.Sprintf("ok %d", len("resolved:")+size)
	if got := b.read(); got != want {
		t.Fatalf("a %d-byte request: got %q, want %q", size, got, want)
	}
}

func TestChannelOtherSecretOrPlaintextNeverDelivers(t *testing.T) {
	// "other-cluster" has the secret but another cluster name: another CA.
	cs := startChannelChildren(t, []string{"a", "b", "other-secret", "plaintext", "other-cluster"},
		[]string{withSecret(testSecretA)}, []string{withSecret(testSecretA)},
		[]string{withSecret(testSecretB)}, []string{withInsecure},
		[]string{withSecret(testSecretA), childClusterEnv + "=elsewhere"})
	a, b, other, plain, renamed := cs[0], cs[1], cs[2], cs[3], cs[4]

	// All three ask a's resolver at once; none may get through.
	intruders := []*channelChild{other, plain, renamed}
	for _, c := range intruders {
		c.sendResolve(a.addr, failTimeout)
	}
	for _, c := range intruders {
		if got, err := c.recvResolve(); err == nil {
			t.Errorf("%s -> a: got reply %q, want a failure", c.name, got)
		} else {
			t.Logf("%s -> a failed as it should: %v", c.name, err)
		}
	}
	// Once the intruders have exited nothing of theirs can be in flight.
	for _, c := range intruders {
		c.exit()
	}
	if n := a.count(); n != 0 {
		t.Fatalf("a's resolver received %d messages from nodes without the cluster's keys", n)
	}
	// The control: a node with the secret gets through, and it is the only
	// message a's resolver ever saw.
	if got, err := b.resolve(a.addr, okTimeout); err != nil {
		t.Fatalf("b -> a: %v (%q)", err, got)
	}
	if n := a.count(); n != 1 {
		t.Fatalf("a's resolver received %d messages, want only b's", n)
	}
}

func TestChannelInsecureWorksInPlaintext(t *testing.T) {
	d, e := startPair(t, "d", "e", []string{withInsecure}, []string{withInsecure})
	if got, err := e.resolve(d.addr, okTimeout); err != nil || got != "resolved:"+resolveAddress {
		t.Fatalf("e -> d: got %q, %v", got, err)
	}
	// It really is plaintext: a gRPC client without TLS is served.
	if err := plaintextConnect(d.addr); err != nil {
		t.Fatalf("plaintext gRPC client to an insecure channel: %v", err)
	}
	if n := d.count(); n != 1 {
		t.Errorf("d's resolver received %d messages, want 1", n)
	}
	requireCleanStop(t, e)
	requireCleanStop(t, d)
}

func TestChannelRefusesPlaintextGRPCClient(t *testing.T) {
	a, d := startPair(t, "a", "d", []string{withSecret(testSecretA)}, []string{withInsecure})
	// Control: the same client is accepted by a plaintext channel, so its
	// failure below is the TLS channel's doing.
	if err := plaintextConnect(d.addr); err != nil {
		t.Fatalf("control: plaintext gRPC client to the insecure channel: %v", err)
	}
	err := plaintextConnect(a.addr)
	if err == nil {
		t.Fatal("a plaintext gRPC client connected to the TLS channel")
	}
	t.Logf("plaintext gRPC client refused: %v", err)
	if n := a.count(); n != 0 {
		t.Fatalf("a's resolver received %d messages", n)
	}
}

// plaintextConnect opens protoactor's Receive stream to addr without TLS
// and performs remote's connect handshake; nil means the server accepted
// it as a peer.
func plaintextConnect(addr string) error {
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "plaintext-probe", Address: "127.0.0.1:1"},
		}},
	}})
	if err != nil {
		return fmt.Errorf("send connect request: %w", err)
	}
	msg, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("receive connect response: %w", err)
	}
	if _, ok := msg.MessageType.(*remote.RemoteMessage_ConnectResponse); !ok {
		return fmt.Errorf("unexpected answer %T", msg.MessageType)
	}
	return stream.CloseSend()
}

func TestChannelStartErrors(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c := spawnChannelChild(t, "busy", withSecret(testSecretA), childBindEnv+"="+l.Addr().String())
		if !strings.HasPrefix(c.startErr, "listen ") {
			t.Fatalf("start on a busy port: got addr %q, starterr %q; want a listen error", c.addr, c.startErr)
		}
	})
	t.Run("second channel on one actor system", func(t *testing.T) {
		c := startChannelChild(t, "twice", withSecret(testSecretA))
		c.send("again")
		if line := c.read(); !strings.HasPrefix(line, "starterr started ") {
			t.Fatalf("second StartChannel: got %q, want ErrChannelStarted", line)
		}
		// The first channel still works.
		if got, err := c.resolve(c.addr, okTimeout); err != nil {
			t.Fatalf("request to itself after the refused restart: %q, %v", got, err)
		}
	})
	t.Run("advertised address", func(t *testing.T) {
		const adv = "127.0.0.1:4999"
		c := startChannelChild(t, "advertised", withSecret(testSecretA), childAdvertiseEnv+"="+adv)
		if c.addr != adv {
			t.Fatalf("Address() = %q with AdvertiseAddr %q", c.addr, adv)
		}
	})
}

// TestStartChannelRefusesBadConfig runs in this process: every case fails
// before remote.Start, so no remote runs here.
func TestStartChannelRefusesBadConfig(t *testing.T) {
	ok := ChannelConfig{BindAddr: "127.0.0.1:0", Secret: testSecretA}
	cases := []struct {
		name string
		edit func(*ChannelConfig)
	}{
		{"no secret and not insecure", func(c *ChannelConfig) { c.Secret = "" }},
		{"secret and insecure", func(c *ChannelConfig) { c.Insecure = true }},
		{"short secret", func(c *ChannelConfig) { c.Secret = strings.Repeat("x", MinSecretLen-1) }},
		{"bind without port", func(c *ChannelConfig) { c.BindAddr = "127.0.0.1" }},
		{"bind port out of range", func(c *ChannelConfig) { c.BindAddr = "127.0.0.1:70000" }},
		{"wildcard bind without advertise", func(c *ChannelConfig) { c.BindAddr = "0.0.0.0:0" }},
		{"empty host bind without advertise", func(c *ChannelConfig) { c.BindAddr = ":7000" }},
		{"advertise port 0", func(c *ChannelConfig) { c.AdvertiseAddr = "127.0.0.1:0" }},
		{"advertise without port", func(c *ChannelConfig) { c.AdvertiseAddr = "10.0.0.1" }},
		{"advertise wildcard", func(c *ChannelConfig) { c.AdvertiseAddr = "0.0.0.0:7000" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
				return slog.New(slog.DiscardHandler)
			}))
			defer system.Shutdown()
			ch, err := StartChannel(system, cfg)
			if !errors.Is(err, ErrChannelConfig) {
				if ch != nil {
					ch.Stop()
				}
				t.Fatalf("StartChannel(%+v) = %v, want ErrChannelConfig", cfg, err)
			}
			if system.Address() != unstartedAddress {
				t.Fatalf("a refused config changed the system's address to %q", system.Address())
			}
		})
	}
	if _, err := StartChannel(nil, ok); !errors.Is(err, ErrChannelConfig) {
		t.Fatalf("nil system: %v", err)
	}
}

func TestCheckChannelAddrs(t *testing.T) {
	cases := []struct {
		bind, advertise string
		want            channelAddrs
	}{
		{"127.0.0.1:0", "", channelAddrs{host: "127.0.0.1", port: 0}},
		{"127.0.0.1:7000", "", channelAddrs{host: "127.0.0.1", port: 7000}},
		{"[::1]:0", "", channelAddrs{host: "[::1]", port: 0}},
		{"localhost:7000", "", channelAddrs{host: "localhost", port: 7000}},
		{"0.0.0.0:7000", "10.0.0.5:7000", channelAddrs{host: "0.0.0.0", port: 7000, advertise: "10.0.0.5:7000"}},
		{":7000", "node1.example:7000", channelAddrs{host: "", port: 7000, advertise: "node1.example:7000"}},
		{"[::]:7000", "[2001:db8::1]:7000", channelAddrs{host: "[::]", port: 7000, advertise: "[2001:db8::1]:7000"}},
		{"127.0.0.1:0", "192.0.2.1:9000", channelAddrs{host: "127.0.0.1", port: 0, advertise: "192.0.2.1:9000"}},
	}
	for _, tc := range cases {
		got, err := checkChannelAddrs(tc.bind, tc.advertise)
		if err != nil || got != tc.want {
			t.Errorf("checkChannelAddrs(%q, %q) = %+v, %v; want %+v", tc.bind, tc.advertise, got, err, tc.want)
		}
	}
}
