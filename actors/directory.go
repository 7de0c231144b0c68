package actors

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// Directory answers which addresses are local accounts, asking the actor of
// the address's partition (an alias lives in the partition of the alias
// address). It satisfies smtp.Directory.
//
// It remembers the addresses it found (a bounded map). An answer younger
// than the cache TTL is used without asking again (on a frontend every
// RCPT would otherwise be a round trip to a backend). When the partition's
// owner cannot answer (a frontend cut off from the backends, a handoff), an
// address known to exist is still accepted, however old the answer: the
// message waits in this node's queue until the owner answers. An address
// never seen gets 451 4.4.3. So a real account is never rejected, and
// nothing accepted is lost (if the account was deleted meanwhile, the
// sender gets a DSN).
type Directory struct {
	domainMu sync.RWMutex
	domains  map[string]bool // changed at run time (SetDomains)
	parts    int
	place    Placement
	root     *actor.RootContext
	timeout  time.Duration

	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	known map[string]knownAddress // last positive answers
}

type knownAddress struct {
	account string
	at      time.Time
}

// maxKnown bounds the Directory's memory of positive answers.
const maxKnown = 100_000

func (d *Directory) remember(addr, account string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known == nil {
		d.known = map[string]knownAddress{}
	}
	if _, ok := d.known[addr]; !ok && len(d.known) >= maxKnown {
		for k := range d.known { // drop an arbitrary entry
			delete(d.known, k)
			break
		}
	}
	d.known[addr] = knownAddress{account: account, at: d.now()}
}

// Forget drops what the Directory remembers of addr (the account was
// disabled, deleted or changed).
func (d *Directory) Forget(addr string) { d.forget(strings.ToLower(addr)) }

func (d *Directory) forget(addr string) {
	d.mu.Lock()
	delete(d.known, addr)
	d.mu.Unlock()
}

// recall returns the remembered account of addr and whether the answer is
// still fresh.
func (d *Directory) recall(addr string) (account string, known, fresh bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.known[addr]
	return k.account, ok, ok && d.now().Sub(k.at) < d.ttl
}

// IsLocalDomain implements smtp.Directory.
func (d *Directory) IsLocalDomain(domain string) bool {
	d.domainMu.RLock()
	defer d.domainMu.RUnlock()
	return d.domains[strings.ToLower(strings.TrimSuffix(domain, "."))]
}

// Domains returns the local domains, sorted.
func (d *Directory) Domains() []string {
	d.domainMu.RLock()
	out := make([]string, 0, len(d.domains))
	for k := range d.domains {
		out = append(out, k)
	}
	d.domainMu.RUnlock()
	sort.Strings(out)
	return out
}

// SetDomains replaces the local domains (the administrator changed them,
// on this node or another: package domains). Remembered answers about
// addresses of domains no longer local are of no use and are dropped.
func (d *Directory) SetDomains(domains []string) {
	m := make(map[string]bool, len(domains))
	for _, x := range domains {
		m[strings.ToLower(strings.TrimSuffix(x, "."))] = true
	}
	d.domainMu.Lock()
	d.domains = m
	d.domainMu.Unlock()
	d.mu.Lock()
	for addr := range d.known {
		if !m[mail.Domain(addr)] {
			delete(d.known, addr)
		}
	}
	d.mu.Unlock()
}

// Resolve implements smtp.Directory.
func (d *Directory) Resolve(ctx context.Context, addr string) (string, error) {
	addr = strings.ToLower(addr)
	if a, _, fresh := d.recall(addr); fresh {
		return a, nil
	}
	account, err := d.ask(ctx, addr)
	switch {
	case err == nil:
		d.remember(addr, account)
		return account, nil
	case errors.Is(err, mail.ErrNoSuchUser), errors.Is(err, mail.ErrDisabled):
		d.forget(addr)
		return "", err
	default:
		if a, known, _ := d.recall(addr); known {
			return a, nil
		}
		return "", err
	}
}

// ask asks the owner of addr's partition which account addr delivers to;
// when none does, the domain's catch-all alias (*@domain) answers.
func (d *Directory) ask(ctx context.Context, addr string) (string, error) {
	account, err := d.askOwner(ctx, addr)
	if !errors.Is(err, mail.ErrNoSuchUser) || strings.HasPrefix(addr, CatchAllLocal+"@") {
		return account, err
	}
	catchAll, cerr := d.askOwner(ctx, CatchAllLocal+"@"+mail.Domain(addr))
	if cerr != nil {
		if errors.Is(cerr, mail.ErrNoSuchUser) {
			return "", err
		}
		return "", cerr
	}
	return catchAll, nil
}

// CatchAllLocal is the local part of a domain's catch-all alias:
// *@example.test delivers every address of example.test that no account
// or alias has.
const CatchAllLocal = "*"

// askOwner puts the lookup to the owner of addr's partition. When the owner
// changes while it waits (the owner died and another took over, or a
// partition without an owner got one), it asks the new owner at once, at
// most maxOwnerMoves times, so that an RCPT during a failover waits for
// the new owner instead of answering 451 (each ask has its own timeout).
func (d *Directory) askOwner(ctx context.Context, addr string) (string, error) {
	p := mail.PartitionOf(addr, d.parts)
	retries := 0
	for moves := 0; ; moves++ {
		changed := ownerChanged(d.place, p)
		if changed == nil || moves >= maxOwnerMoves {
			changed = nil
		}
		pid, err := d.place.PartitionPID(p)
		if err != nil {
			if changed != nil && d.waitOwner(ctx, changed) {
				continue
			}
			return "", err
		}
		actx, cancel := context.WithTimeout(ctx, d.timeout)
		type answer struct {
			r   *pb.ResolveResult
			err error
		}
		ch := make(chan answer, 1)
		go func() {
			r, err := request[*pb.ResolveResult](actx, d.root, pid, &pb.Resolve{Address: addr}, d.timeout)
			ch <- answer{r, err}
		}()
		select {
		case a := <-ch:
			cancel()
			if a.err != nil {
				// Right after a move the new owner may not run the
				// partition yet (its view lags by a probe or two): try it
				// again shortly, within one lookup timeout.
				if moves > 0 && d.pause(ctx, &retries) {
					continue
				}
				if changed != nil && d.waitOwner(ctx, changed) {
					continue
				}
				return "", a.err
			}
			return a.r.Account, goError(a.r.Error)
		case <-changed:
			cancel()
			continue
		}
	}
}

// pause waits before asking a new owner again (100 ms doubling, at most
// 5 times); it reports whether to ask.
func (d *Directory) pause(ctx context.Context, retries *int) bool {
	if *retries >= 5 {
		return false
	}
	t := time.NewTimer(100 * time.Millisecond << *retries)
	defer t.Stop()
	*retries++
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitOwner waits up to the lookup timeout for the partition's owner to
// change; it reports whether it did.
func (d *Directory) waitOwner(ctx context.Context, changed <-chan struct{}) bool {
	t := time.NewTimer(d.timeout)
	defer t.Stop()
	select {
	case <-changed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
