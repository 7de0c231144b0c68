package main

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// loadDNS is a DNS server on loopback for a spawned node (--dns), so that
// the node's SPF, DKIM and DMARC checks of the load's mail ask no one
// else: the sender's domain publishes SPF that passes for loopback; any
// other name does not exist.
type loadDNS struct {
	udp, tcp *dns.Server
	addr     string
}

// startDNS serves the zone of senderDomain on a free loopback port.
func startDNS(senderDomain string) (*loadDNS, error) {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 50 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, err
	}
	spfName := dns.Fqdn(strings.ToLower(senderDomain))
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && strings.EqualFold(q.Question[0].Name, spfName) {
			if q.Question[0].Qtype == dns.TypeTXT {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: spfName, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600},
					Txt: []string{"v=spf1 ip4:127.0.0.0/8 -all"}})
			}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	d := &loadDNS{udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: ln, Handler: h}, addr: pc.LocalAddr().String()}
	go d.udp.ActivateAndServe()
	go d.tcp.ActivateAndServe()
	return d, nil
}

func (d *loadDNS) stop() {
	d.udp.Shutdown()
	d.tcp.Shutdown()
}

// mailDomain is the domain of an address ("" without one).
func mailDomain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}
