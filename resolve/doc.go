// Package resolve is the one DNS resolver of a node: every MX, A/AAAA,
// TXT (SPF, DKIM, DMARC), PTR and TLSA lookup goes through it, to the
// server given with --dns or to those of /etc/resolv.conf. It speaks DNS
// itself (github.com/miekg/dns) rather than through net.Resolver, so
// that it can ask for and see the AD bit (RFC 4035 §3.2.3, the answer
// of a validating resolver that DANE trusts, RFC 7672 §2.2) and honour
// each answer's TTL in a bounded cache (RFC 1035 §3.2.1; negative
// answers RFC 2308 §5).
//
// Its errors are *net.DNSError, as net.Resolver's are, so the libraries
// that take a resolver (blitiri.com.ar/go/spf, go-msgauth) tell the
// cases apart as they do with Go's own: IsNotFound for NXDOMAIN and for
// a name without records of the type, IsTimeout or IsTemporary for a
// server that did not answer or answered SERVFAIL.
package resolve
