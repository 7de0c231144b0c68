package cluster

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"
)

// joinLoop runs until stop is closed. While this node knows no live peer
// it joins the seeds, backing off from timers.joinMin to timers.joinMax
// between failed rounds; otherwise, every timers.reconnect, it tries to
// reach one member it believes dead (for at most timers.reconnectFor after
// its death), so that both sides of a healed partition merge again
// (memberlist itself never probes a dead member).
func (m *Membership) joinLoop() {
	defer m.joinWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := m.t.joinMin
	failing := false
	for {
		wait := m.t.reconnect
		if len(m.cfg.Join) > 0 && m.ml.NumMembers() <= 1 {
			if err := m.joinSeeds(ctx); err != nil {
				m.joinErr.Add(1)
				if !failing {
					m.log.Warn("cannot join the cluster yet; retrying in the background", "seeds",
						strings.Join(m.cfg.Join, ","), "err", err)
				} else {
					m.log.Debug("join failed", "err", err, "retry", backoff)
				}
				failing = true
				wait = backoff
				backoff = min(2*backoff, m.t.joinMax)
				m.reconnectOne() // a member we lost may answer where the seeds do not
			} else {
				m.log.Info("joined the cluster", "members", m.ml.NumMembers())
				// memberlist merged the seed's whole member table before
				// Join returned: this node's view now has every member
				// the seed knew (ownership waits for this).
				if !m.joined.Swap(true) {
					m.signalChanged()
				}
				failing = false
				backoff = m.t.joinMin
			}
		} else {
			backoff = m.t.joinMin
			m.reconnectOne()
		}
		timer := time.NewTimer(wait)
		select {
		case <-m.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// errNoPeer is a join that reached nobody but this node.
type errNoPeer struct{}

func (errNoPeer) Error() string { return "no seed other than this node answered" }

// joinSeeds resolves the seeds and joins them. It fails unless this node
// then knows another live member.
func (m *Membership) joinSeeds(ctx context.Context) error {
	var addrs []string
	var lookupErr error
	for _, s := range m.cfg.Join {
		as, err := m.resolveSeed(ctx, s)
		if err != nil {
			lookupErr = err
			continue
		}
		for _, a := range as {
			if a != m.addr {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		if lookupErr != nil {
			return lookupErr
		}
		return errNoPeer{}
	}
	if _, err := m.ml.Join(addrs); err != nil {
		return err
	}
	if m.ml.NumMembers() <= 1 {
		return errNoPeer{}
	}
	return nil
}

// resolveSeed turns host:port into IP:port addresses, looking the host up
// through Config.Resolver unless it is an IP address.
func (m *Membership) resolveSeed(ctx context.Context, seed string) ([]string, error) {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return nil, err // Start checked the seeds: cannot happen
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.Unmap().String(), port)}, nil
	}
	var r Resolver = net.DefaultResolver
	if m.cfg.Resolver != nil {
		r = m.cfg.Resolver
	}
	ctx, cancel := context.WithTimeout(ctx, m.t.resolve)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	return out, nil
}

// reconnectOne tries to join one member believed dead, chosen at random.
func (m *Membership) reconnectOne() {
	peers := m.deadPeers(m.t.reconnectFor)
	if len(peers) == 0 {
		return
	}
	addr := peers[rand.IntN(len(peers))]
	if _, err := m.ml.Join([]string{addr}); err != nil {
		m.log.Debug("reconnect to a dead member failed", "addr", addr, "err", err)
	}
}
