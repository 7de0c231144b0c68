package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/wait"
)

// refusedAtConnect reads the first reply of c and reports whether it is the
// 421 of the connection limits (the connection is then closed).
func refusedAtConnect(t testing.TB, c *rawClient) bool {
	t.Helper()
	code, msg := c.read()
	switch {
	case code == 421 && msg == "4.7.0 Too many connections":
		c.expectClosed()
		return true
	case code == 220:
		return false
	}
	t.Fatalf("first reply %d %q", code, msg)
	return false
}

// The per-network limit counts every address of a /24; another network is
// still served.
func TestPerNetworkConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{MaxConnectionsPerIP: 10, MaxConnectionsPerNetwork: 3}, false)
	for i := 1; i <= 3; i++ {
		if refusedAtConnect(t, dialRawFrom(t, ts.addr, from(5, i))) {
			t.Fatalf("connection %d of the network refused", i)
		}
	}
	if !refusedAtConnect(t, dialRawFrom(t, ts.addr, from(5, 4))) {
		t.Fatal("the 4th connection of 127.0.5.0/24 was served, want 421")
	}
	if refusedAtConnect(t, dialRawFrom(t, ts.addr, from(6, 1))) {
		t.Fatal("a connection from another network was refused")
	}
	if got := ts.gathered(t)["homing_smtp_connections_rejected_total,listener=smtp,reason=per-network"]; got != 1 {
		t.Errorf("per-network refusals counted %v, want 1", got)
	}
}

// The last ReservedConnections slots go only to networks that hold few
// connections.
func TestReservedConnectionsForLightNetworks(t *testing.T) {
	// 10 slots, 3 reserved; a light network holds fewer than 20/10 = 2.
	ts := startServer(t, Config{MaxConnections: 10, ReservedConnections: 3, MaxConnectionsPerNetwork: 20}, false)
	for i := 1; i <= 7; i++ {
		if refusedAtConnect(t, dialRawFrom(t, ts.addr, from(7, i))) {
			t.Fatalf("connection %d of the busy network refused", i)
		}
	}
	if !refusedAtConnect(t, dialRawFrom(t, ts.addr, from(7, 8))) {
		t.Fatal("the busy network got a reserved slot")
	}
	for i, want := range []bool{false, false, true} { // network 8 gets 2, then holds 2: not light any more
		if got := refusedAtConnect(t, dialRawFrom(t, ts.addr, from(8, 1+i))); got != want {
			t.Fatalf("connection %d of a light network: refused %v, want %v", i+1, got, want)
		}
	}
	if refusedAtConnect(t, dialRawFrom(t, ts.addr, from(9, 1))) {
		t.Fatal("the last reserved slot was not given to a new network")
	}
	if got := ts.gathered(t)["homing_smtp_connections_rejected_total,listener=smtp,reason=reserved"]; got != 2 {
		t.Errorf("reserved refusals counted %v, want 2", got)
	}
}

// Under stress (StressPercent of the slots taken) the command timeout is
// StressCommandTimeout, also for connections that were already waiting
// with the long timeout; the DATA phase keeps DataTimeout.
func TestStressShortensCommandTimeout(t *testing.T) {
	const stressTimeout = 300 * time.Millisecond
	ts := startServer(t, Config{MaxConnections: 4, StressPercent: 75, CommandTimeout: time.Minute,
		StressCommandTimeout: stressTimeout, DataTimeout: time.Minute}, false)
	inData := dialRaw(t, ts.addr)
	inData.expect("EHLO client.example", 250)
	inData.expect("MAIL FROM:<s@remote.example>", 250)
	inData.expect("RCPT TO:<alice@example.test>", 250)
	inData.expect("DATA", 354)
	idle := dialRaw(t, ts.addr)
	wait.Never(t, 2*stressTimeout, func() bool { return ts.lim.open() < 2 }, "a connection closed before the server was under stress")
	if got := ts.gathered(t)["homing_smtp_under_stress,listener=smtp"]; got != 0 {
		t.Fatalf("under stress with 2 of 4 slots taken")
	}

	start := time.Now()
	third := dialRaw(t, ts.addr) // 3 of 4: stress
	if got := ts.gathered(t)["homing_smtp_under_stress,listener=smtp"]; got != 1 {
		t.Fatalf("not under stress with 3 of 4 slots taken")
	}
	for _, c := range []*rawClient{idle, third} {
		if code, msg := c.read(); code != 421 || !strings.HasPrefix(msg, "4.4.2") {
			t.Fatalf("idle connection under stress: %d %q", code, msg)
		}
		c.expectClosed()
	}
	if d := time.Since(start); d > 20*stressTimeout {
		t.Errorf("idle connections closed after %v under stress, want about %v", d, stressTimeout)
	}
	// The DATA phase was not cut short: the message still goes through.
	inData.send("Subject: slow\r\n\r\nhi\r\n")
	inData.expect(".", 250)
	wait.For(t, ioTimeout, func() bool { return ts.gathered(t)["homing_smtp_under_stress,listener=smtp"] == 0 },
		"the stress to end once the connections closed")
	if got := ts.gathered(t)["homing_smtp_stress_periods_total,listener=smtp"]; got != 1 {
		t.Errorf("stress periods %v, want 1", got)
	}
}

// Issue #9, "slowloris, 20 source IPs x 50": with the default limits (1000
// slots, 50 per IP, 100 per network, the last 100 slots for networks that
// hold few), 20 networks with 50 idle connections each take 900 slots; a
// client from another network is still served, and under stress the idle
// connections are closed after StressCommandTimeout instead of the
// 5-minute command timeout.
func TestSlowlorisLegitimateClientServed(t *testing.T) {
	const stressTimeout = 3 * time.Second
	ts := startServer(t, Config{StressCommandTimeout: stressTimeout}, false)
	const networks, perNetwork = 20, 50
	var (
		mu       sync.Mutex
		held     []*rawClient
		refused  int
		wg       sync.WaitGroup
		stressAt time.Time
	)
	for n := 0; n < networks; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perNetwork; i++ {
				c := dialRawFrom(t, ts.addr, from(100+n, 1))
				code, _ := c.read()
				mu.Lock()
				if code == 220 {
					held = append(held, c)
				} else {
					refused++
				}
				if stressAt.IsZero() && ts.lim.stressed.Load() {
					stressAt = time.Now()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if time.Since(stressAt) >= stressTimeout/2 {
		t.Fatalf("opening the attack took %v after the stress began, too long for this test to tell anything", time.Since(stressAt))
	}
	if len(held) != 900 || refused != 100 {
		t.Fatalf("the attack holds %d slots, %d refused; want 900 and 100", len(held), refused)
	}

	// A legitimate client from another network gets in and delivers.
	start := time.Now()
	c := dialFrom(t, ts.addr, from(250, 1))
	c.expect("EHLO legit.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("Subject: hi\r\n\r\nhello\r\n.", 250)
	c.expect("QUIT", 221)
	served := time.Since(start)

	// The stress timeout closes the idle connections.
	wait.For(t, 4*stressTimeout, func() bool { return ts.lim.open() == 0 }, "the idle connections closed by the stress timeout (%v open)",
		wait.Lazy(func() string { return fmt.Sprint(ts.lim.open()) }))
	closedAfter := time.Since(stressAt)
	code, msg := held[0].read()
	if code != 421 || !strings.HasPrefix(msg, "4.4.2") {
		t.Errorf("an idle connection got %d %q", code, msg)
	}
	m := ts.gathered(t)
	if m["homing_smtp_connections_rejected_total,listener=smtp,reason=reserved"] != 100 || m["homing_smtp_under_stress,listener=smtp"] != 0 {
		t.Errorf("metrics: %v", m)
	}
	t.Logf("slowloris %d networks x %d: %d held, %d refused (reserved); a client from another network was served in %v; every idle connection closed %v after the stress began (command timeout %v)",
		networks, perNetwork, len(held), refused, served.Round(time.Millisecond), closedAfter.Round(10*time.Millisecond), ts.cfg.CommandTimeout)
}

// Issue #9, "5,000 RCPT of unknown users in one session": after
// SoftErrorLimit errors each error waits ErrorSleep, and the
// HardErrorLimit-th ends the session with 421 4.7.0.
func TestHardErrorLimit(t *testing.T) {
	const sleep = 100 * time.Millisecond
	ts := startServer(t, Config{ErrorSleep: sleep}, false) // soft 10, hard 20: the defaults
	c := dialRaw(t, ts.addr)
	c.expect("EHLO harvester.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	start := time.Now()
	codes := map[int]int{}
	sent := 0
	var last string
	for sent < 5000 {
		code, msg := c.cmd(fmt.Sprintf("RCPT TO:<user%d@example.test>", sent))
		sent++
		codes[code]++
		if code != 550 {
			last = fmt.Sprintf("%d %s", code, msg)
			break
		}
	}
	took := time.Since(start)
	c.expectClosed()
	if sent != 20 || codes[550] != 19 || last != "421 4.7.0 Too many errors, closing connection" {
		t.Fatalf("after %d RCPTs: %v, last %q; want 19 x 550 then 421 4.7.0", sent, codes, last)
	}
	if want := 9 * sleep; took < want { // errors 11 to 19 wait, and the 20th
		t.Errorf("20 errors answered in %v, want at least %v", took, want)
	}
	if n := len(ts.dir.resolvedAddrs()); n != 20 { // the 20th is looked up, then answered 421
		t.Errorf("the directory was asked %d times", n)
	}
	m := ts.gathered(t)
	if m["homing_smtp_error_limit_total,action=disconnected,listener=smtp"] != 1 || m["homing_smtp_error_limit_total,action=delayed,listener=smtp"] != 9 {
		t.Errorf("error limit metrics: %v", m)
	}
	t.Logf("5,000 unknown RCPT: the session ended with 421 after %d RCPTs (%v), in %v", sent, codes, took.Round(time.Millisecond))
}

// A good session is not affected by a few errors.
func TestFewErrorsNotDelayed(t *testing.T) {
	ts := startServer(t, Config{ErrorSleep: time.Minute}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	for i := 0; i < 10; i++ {
		c.expect(fmt.Sprintf("RCPT TO:<nobody%d@example.test>", i), 550)
	}
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
}

// The message rate per client network: a token bucket; over it every RCPT
// of the transaction gets 450 4.7.1; another network is not affected.
func TestMessageRatePerNetwork(t *testing.T) {
	clk := clock.New(time.Time{})
	ts := startServer(t, Config{MessageRatePerNetwork: 2, MessageRateInterval: time.Minute, Now: clk.Now}, false)
	send := func(c *rawClient, want int) {
		t.Helper()
		c.expect("MAIL FROM:<s@remote.example>", 250)
		if want != 250 {
			if msg := c.expect("RCPT TO:<alice@example.test>", want); msg != "4.7.1 Too much mail from this client; try again later" {
				t.Fatalf("rate limited: %q", msg)
			}
			c.expect("RCPT TO:<bob@example.test>", want)
			c.expect("DATA", 502) // go-smtp: no RCPT was accepted
			c.expect("RSET", 250)
			return
		}
		c.expect("RCPT TO:<alice@example.test>", 250)
		c.expect("RCPT TO:<bob@example.test>", 250)
		c.expect("DATA", 354)
		c.expect("hi\r\n.", 250)
	}
	a := dialFrom(t, ts.addr, from(40, 1))
	a.expect("EHLO a.example", 250)
	send(a, 250)
	send(a, 250)
	send(a, 450)
	a2 := dialFrom(t, ts.addr, from(40, 2)) // the same network, another address
	a2.expect("EHLO a.example", 250)
	send(a2, 450)
	b := dialFrom(t, ts.addr, from(41, 1))
	b.expect("EHLO b.example", 250)
	send(b, 250)
	clk.Advance(30 * time.Second) // one token back
	send(a, 250)
	send(a, 450)
	if got := ts.gathered(t)["homing_smtp_rate_limited_total,by=network,listener=smtp"]; got != 3 {
		t.Errorf("rate limited counted %v, want 3", got)
	}
}

// The message rate per authenticated sender, whatever the network.
func TestMessageRatePerSender(t *testing.T) {
	clk := clock.New(time.Time{})
	ts := startServer(t, Config{Submission: true, MessageRatePerSender: 2, Now: clk.Now}, true)
	for i, want := range []int{250, 250, 450, 450} {
		c := dialFrom(t, ts.addr, from(50+i, 1))
		c.expect("EHLO mua.example", 250)
		c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 235)
		c.expect("MAIL FROM:<alice@example.test>", 250)
		c.expect("RCPT TO:<friend@remote.example>", want)
	}
	if got := ts.gathered(t)["homing_smtp_rate_limited_total,by=sender,listener=submission"]; got != 2 {
		t.Errorf("rate limited counted %v, want 2", got)
	}
}

// Issue #9 item 8: a member's transfers are not counted as a stranger's
// connections. With 2 connections per IP and per network, a stranger's
// third parallel connection gets 421; 30 parallel transfers from a
// member's address all succeed, and the rate limit does not apply to them.
func TestMemberTransfersNotCountedAsStrangers(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	ts := startServer(t, Config{
		MaxConnectionsPerIP: 2, MaxConnectionsPerNetwork: 2, MessageRatePerNetwork: 1,
		Cluster:         NewClusterAuth("the-cluster-secret-123", "homing", "fe1"),
		AcceptTransfers: accept.Load,
	}, false)

	// A stranger from 127.0.60.0/24.
	stranger := []*rawClient{dialFrom(t, ts.addr, from(60, 8)), dialFrom(t, ts.addr, from(60, 9))}
	if !refusedAtConnect(t, dialRawFrom(t, ts.addr, from(60, 8))) {
		t.Fatal("a stranger's third connection was served")
	}
	for _, c := range stranger {
		c.expect("QUIT", 221)
		c.expectClosed()
	}
	wait.For(t, ioTimeout, func() bool { return ts.lim.open() == 0 }, "the stranger's connections released")

	// A member on 127.0.60.7: every transfer succeeds.
	member := NewClusterAuth("the-cluster-secret-123", "homing", "be1")
	dialer := &net.Dialer{LocalAddr: from(60, 7), Timeout: ioTimeout}
	cl := NewClient(ClientConfig{Hostname: "be1.test", Dial: dialer.DialContext})
	transfer := func(id string) error {
		return cl.Transfer(context.Background(), ts.addr, member, &mail.Message{Envelope: transferEnvelope(id), Body: mail.BytesBody("Subject: t\r\n\r\nx\r\n")})
	}
	if err := transfer("FIRST"); err != nil {
		t.Fatalf("first transfer: %v", err)
	}
	const parallel = 30
	errs := make(chan error, parallel)
	for i := 0; i < parallel; i++ {
		go func() { errs <- transfer(fmt.Sprint("ID", i)) }()
	}
	failed := 0
	for i := 0; i < parallel; i++ {
		if err := <-errs; err != nil {
			failed++
			var se *gosmtp.SMTPError
			if errors.As(err, &se) || failed == 1 {
				t.Errorf("transfer: %v", err)
			}
		}
	}
	if envs, _ := ts.enq.messages(); len(envs) != parallel+1 || failed != 0 {
		t.Fatalf("%d transfers failed, %d queued; want all %d", failed, len(envs), parallel+1)
	}
	m := ts.gathered(t)
	if m["homing_smtp_member_connections_total,listener=smtp"] != parallel+1 || m["homing_smtp_rate_limited_total,by=network,listener=smtp"] != 0 {
		t.Errorf("metrics %v", m)
	}
	t.Logf("per IP and per network 2: a stranger's 3rd connection got 421; %d parallel transfers from a member's address: %d refused", parallel, failed)
}

// The stress begins at StressPercent of the slots and ends a tenth below
// it, so a load around the threshold does not flap in and out.
func TestStressHysteresis(t *testing.T) {
	var events []bool
	l := newLimiter(limitsOf(Config{MaxConnections: 100, StressPercent: 50}.WithDefaults()), func(string) {},
		func(on bool, _ int) { events = append(events, on) }, nil)
	var open []*limitedConn
	add := func() {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := &limitedConn{Conn: a, lim: l}
		if _, ok := l.admit(c); !ok {
			t.Fatalf("connection %d refused", len(open)+1)
		}
		open = append(open, c)
	}
	drop := func() {
		open[len(open)-1].Close()
		open = open[:len(open)-1]
	}
	for len(open) < 49 {
		add()
	}
	if len(events) != 0 {
		t.Fatalf("stress events %v below the threshold", events)
	}
	add() // 50: stress
	for len(open) > 46 {
		drop()
	}
	if len(events) != 1 || !events[0] {
		t.Fatalf("stress events %v at 46 of 100 after 50", events)
	}
	drop() // 45: calm
	add()  // 46: still calm
	if fmt.Sprint(events) != "[true false]" {
		t.Fatalf("stress events %v", events)
	}
	for len(open) < 50 {
		add()
	}
	if fmt.Sprint(events) != "[true false true]" {
		t.Fatalf("stress events %v", events)
	}
}

// The server's own temporary trouble (451: the directory does not answer)
// is not the client's error: a client that keeps trying in one session is
// not cut off.
func TestLocalErrorsAreNotCountedAgainstTheClient(t *testing.T) {
	ts := startServer(t, Config{HardErrorLimit: 3}, false)
	ts.dir.setErr(errors.New("owner in a handoff"))
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	for i := 0; i < 10; i++ {
		c.expect("RCPT TO:<alice@example.test>", 451)
	}
	ts.dir.setErr(nil)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("RCPT TO:<nobody1@example.test>", 550)
	c.expect("RCPT TO:<nobody2@example.test>", 550)
	c.expect("RCPT TO:<nobody3@example.test>", 421)
	c.expectClosed()
}
