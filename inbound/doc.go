// Package inbound checks mail that arrives from outside the cluster (not
// from an authenticated user, not from a member): SPF (RFC 7208, with
// blitiri.com.ar/go/spf, which keeps the limits of §4.6.4: 10 lookups, 2
// void lookups), every DKIM signature (RFC 6376, go-msgauth's dkim), and
// DMARC (RFC 7489: the author domain's policy with go-msgauth's dmarc
// parser, alignment and the organizational domain here, with the public
// suffix list of golang.org/x/net/publicsuffix). The results become an
// Authentication-Results header field (RFC 8601, formatted by
// go-msgauth's authres) under the cluster's authserv-id; fields that
// claim that id in the message are removed as it streams in (§5), so a
// field with it is always the cluster's own.
//
// What a failure does is a Policy: DMARC p=reject is refused with 550
// 5.7.1 at the end of DATA, p=quarantine files the message in Junk,
// anything else is delivered with the header; a DNS failure where the
// policy could have rejected is 451 4.7.1, never a 5xx. Malformed
// signatures and records are permerror results, never a refusal for the
// wrong reason.
//
// Every lookup goes through the node's resolver (package resolve).
package inbound
