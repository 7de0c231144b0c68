package smtp

import (
	"sync"
	"time"
)

// authLimiter counts failed AUTH attempts per client IP and per account
// over a sliding window, across connections, so that a client cannot guess
// passwords by reconnecting (RFC 4954 §4 leaves the policy to the server).
// Once a key has failed limit times within the window, further attempts
// for it are refused with 454 4.7.0 without checking the password, until
// the oldest failure leaves the window. Safe for concurrent use; memory is
// bounded by pruning keys whose failures all left the window.
type authLimiter struct {
	window time.Duration
	perIP  int
	perAcc int
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time // "ip:<addr>" or "acct:<name>" -> times, oldest first
	sweeps   int
}

func newAuthLimiter(window time.Duration, perIP, perAccount int, now func() time.Time) *authLimiter {
	return &authLimiter{window: window, perIP: perIP, perAcc: perAccount, now: now, failures: map[string][]time.Time{}}
}

// blocked reports whether ip or account has used up its failures.
func (l *authLimiter) blocked(ip, account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.count("ip:"+ip, now) >= l.perIP || (account != "" && l.count("acct:"+account, now) >= l.perAcc)
}

// failed records a failed attempt.
func (l *authLimiter) failed(ip, account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.failures["ip:"+ip] = append(l.failures["ip:"+ip], now)
	if account != "" {
		l.failures["acct:"+account] = append(l.failures["acct:"+account], now)
	}
	if l.sweeps++; l.sweeps%1024 == 0 {
		for k := range l.failures {
			if l.count(k, now) == 0 {
				delete(l.failures, k)
			}
		}
	}
}

// count drops failures that left the window and returns the rest.
func (l *authLimiter) count(k string, now time.Time) int {
	ts := l.failures[k]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	if i > 0 {
		ts = ts[i:]
		if len(ts) == 0 {
			delete(l.failures, k)
		} else {
			l.failures[k] = ts
		}
	}
	return len(ts)
}
