// Package dnstest runs a real DNS server on loopback (UDP and TCP on one
// port, github.com/miekg/dns) that answers from a zone the test gives
// as a map, so that no test ever asks the system's resolver. A test can
// change the zone, make a name fail (SERVFAIL) or go unanswered (a
// timeout), mark names as DNSSEC-validated (the AD bit) and count the
// queries. It imports nothing of Homing.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Zone maps an owner name ("example.test", with or without the final
// dot) to its records, each "TYPE RDATA" or "TTL TYPE RDATA" in zone
// file syntax: "TXT \"v=spf1 -all\"", "MX 10 mx.example.test.",
// "60 A 127.0.0.1". A record's TTL is 300 unless given.
type Zone map[string][]string

// Server is a DNS server on 127.0.0.1.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu      sync.Mutex
	rrs     map[string][]dns.RR // by lower-case fqdn
	fail    map[string]int      // rcode to answer instead
	drop    map[string]bool     // never answer
	secure  map[string]bool     // set AD
	queries map[string]int      // "name TYPE" -> count
}

// Start starts a server answering from zone; it stops when the test
// ends. Malformed records fail the test.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, fail: map[string]int{}, drop: map[string]bool{},
		secure: map[string]bool{}, queries: map[string]int{}}
	for name, recs := range zone {
		if err := s.Set(name, recs...); err != nil {
			t.Fatalf("dnstest: %v", err)
		}
	}
	pc, ln, err := listen()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// listen takes a UDP port and the TCP port of the same number (another
// process may hold that one: then another pair).
func listen() (net.PacketConn, net.Listener, error) {
	var err error
	for range 50 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, err
}

// Addr is the server's "127.0.0.1:port" (the value of --dns).
func (s *Server) Addr() string { return s.addr }

// Port is the server's port.
func (s *Server) Port() int { return s.udp.PacketConn.LocalAddr().(*net.UDPAddr).Port }

// Set replaces the records of name (none: the name no longer exists).
func (s *Server) Set(name string, records ...string) error {
	fqdn := dns.Fqdn(strings.ToLower(name))
	var rrs []dns.RR
	for _, rec := range records {
		text := rec
		if f := strings.Fields(rec); len(f) > 0 && !isNumber(f[0]) {
			text = "300 " + rec
		}
		rr, err := dns.NewRR(fqdn + " " + text)
		if err != nil {
			return fmt.Errorf("record %q of %s: %w", rec, name, err)
		}
		if rr == nil {
			return fmt.Errorf("record %q of %s: empty", rec, name)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rrs) == 0 {
		delete(s.rrs, fqdn)
	} else {
		s.rrs[fqdn] = rrs
	}
	return nil
}

// Fail makes every query for name answer SERVFAIL (rcode 0 stops it).
func (s *Server) Fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[dns.Fqdn(strings.ToLower(name))] = rcode
}

// Drop makes queries for name go unanswered: the client times out.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[dns.Fqdn(strings.ToLower(name))] = true
}

// Secure marks the answers for name as validated (the AD bit).
func (s *Server) Secure(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secure[dns.Fqdn(strings.ToLower(name))] = true
}

// Queries is how many queries for name of type qtype ("TXT", "MX", ...)
// the server received.
func (s *Server) Queries(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))+" "+strings.ToUpper(qtype)]
}

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	qn := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	s.mu.Lock()
	s.queries[qn+" "+dns.TypeToString[qt]]++
	drop, rcode, secure := s.drop[qn], s.fail[qn], s.secure[qn]
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	if rcode != 0 {
		m.Rcode = rcode
	} else {
		s.answer(m, qn, qt)
	}
	s.mu.Unlock()
	if drop {
		return
	}
	m.AuthenticatedData = secure && m.Rcode == dns.RcodeSuccess
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := q.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer fills m for qn/qt, following CNAMEs in the zone (s.mu held).
func (s *Server) answer(m *dns.Msg, qn string, qt uint16) {
	for hops := 0; hops < 8; hops++ {
		rrs, ok := s.rrs[qn]
		if !ok {
			if len(m.Answer) == 0 && !s.hasBelow(qn) {
				m.Rcode = dns.RcodeNameError
			}
			s.soa(m, qn)
			return
		}
		var cname *dns.CNAME
		for _, rr := range rrs {
			if rr.Header().Rrtype == qt {
				m.Answer = append(m.Answer, dns.Copy(rr))
			} else if c, ok := rr.(*dns.CNAME); ok && qt != dns.TypeCNAME {
				cname = c
			}
		}
		if len(m.Answer) > 0 || cname == nil {
			if len(m.Answer) == 0 {
				s.soa(m, qn)
			}
			return
		}
		m.Answer = append(m.Answer, dns.Copy(cname))
		qn = strings.ToLower(cname.Target)
	}
}

// hasBelow reports whether a name below qn exists (then qn exists too, as
// an empty non-terminal: NODATA, not NXDOMAIN).
func (s *Server) hasBelow(qn string) bool {
	for n := range s.rrs {
		if strings.HasSuffix(n, "."+qn) {
			return true
		}
	}
	return false
}

// soa adds a short negative-caching SOA to the authority section.
func (s *Server) soa(m *dns.Msg, qn string) {
	m.Ns = append(m.Ns, &dns.SOA{Hdr: dns.RR_Header{Name: qn, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 60})
}

func isNumber(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
