package acme

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// challengePrefix is the path of HTTP-01 challenge responses (RFC 8555
// §8.3).
const challengePrefix = "/.well-known/acme-challenge/"

// Bounds of the challenges a node answers: a token is kept an hour (a CA
// validates within seconds or minutes of the order) and at most
// maxChallenges are kept (each order of a few names needs one a name).
const (
	challengeTTL  = time.Hour
	maxChallenges = 256
)

// Challenge is one HTTP-01 challenge to answer: the token the CA gave
// and the key authorization that answers it (RFC 8555 §8.1: token "."
// base64url(JWK thumbprint of the account key)).
type Challenge struct {
	Token   string    `json:"token"`
	KeyAuth string    `json:"keyAuth"`
	Expires time.Time `json:"expires"`
}

// Challenges is the set of HTTP-01 challenges this node answers, its own
// and those other frontends handed it; as an http.Handler it serves them
// on the challenge listener. Safe for concurrent use.
type Challenges struct {
	mu sync.Mutex
	m  map[string]Challenge
	// now is the clock (tests).
	now func() time.Time
}

// NewChallenges returns an empty set.
func NewChallenges() *Challenges {
	return &Challenges{m: map[string]Challenge{}, now: time.Now}
}

// Add makes the node answer c until it expires (a zero Expires: an hour).
// When the set is full the challenge that expires first is dropped.
func (cs *Challenges) Add(c Challenge) {
	if !validToken(c.Token) || c.KeyAuth == "" || len(c.KeyAuth) > 512 {
		return
	}
	now := cs.now()
	if c.Expires.IsZero() || c.Expires.After(now.Add(challengeTTL)) {
		c.Expires = now.Add(challengeTTL)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for t, x := range cs.m {
		if !x.Expires.After(now) {
			delete(cs.m, t)
		}
	}
	if _, ok := cs.m[c.Token]; !ok && len(cs.m) >= maxChallenges {
		var first string
		for t, x := range cs.m {
			if first == "" || x.Expires.Before(cs.m[first].Expires) {
				first = t
			}
		}
		delete(cs.m, first)
	}
	cs.m[c.Token] = c
}

// Remove stops answering token.
func (cs *Challenges) Remove(token string) {
	cs.mu.Lock()
	delete(cs.m, token)
	cs.mu.Unlock()
}

// lookup is the key authorization for token, if it is answered.
func (cs *Challenges) lookup(token string) (string, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.m[token]
	if !ok || !c.Expires.After(cs.now()) {
		return "", false
	}
	return c.KeyAuth, true
}

// ServeHTTP answers GET /.well-known/acme-challenge/TOKEN with the key
// authorization (RFC 8555 §8.3) and everything else with 404.
func (cs *Challenges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, challengePrefix)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	ka, ok := cs.lookup(token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write([]byte(ka))
}

// validToken: a token is base64url (RFC 8555 §8.3: at least 128 bits of
// entropy, no padding); anything else is never answered.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
