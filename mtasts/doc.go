// Package mtasts is SMTP MTA Strict Transport Security (RFC 8461) for the
// relay: a domain publishes a TXT record at _mta-sts.DOMAIN ("v=STSv1;
// id=...") and a policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt
// that lists its MX hosts and says whether a sender must deliver to them
// only over TLS with a certificate it can verify (mode enforce), should
// only report failures (testing), or has withdrawn its policy (none).
//
// Source finds the policy of a domain as RFC 8461 §5.1 describes: the TXT
// record through the node's resolver, the policy from the cache while its
// id is that of the record and its max_age has not passed, otherwise
// fetched again over HTTPS (a certificate valid for mta-sts.DOMAIN, no
// redirects, at most 64 KiB, text/plain, a timeout). A cached policy that
// has not expired is applied when the record or the fetch fails; nothing
// cached and nothing fetched is no policy. The cache is a file of the data
// directory, so a restart keeps what was learnt (and an attacker who
// blocks the policy host after a restart gains nothing).
//
// Errors say whether they are temporary (DNS, HTTP, TLS) or permanent
// (malformed records and policies), in package mail's taxonomy; no input
// makes the parsers panic.
package mtasts
