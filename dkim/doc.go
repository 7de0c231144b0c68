// Package dkim signs the mail of local senders with DKIM (RFC 6376;
// Ed25519 keys RFC 8463 beside RSA-2048) and keeps the signing keys of
// the local domains: a Keyring per node, saved in the data directory and
// replicated to every member (replicate.go), so that every node that
// relays signs with the same keys. Signing and the cryptography are
// github.com/emersion/go-msgauth's dkim package; this package decides
// what is signed, with which key, and keeps the keys.
//
// A domain's keys are selectors: generating a key for a domain adds a
// selector and retires the domain's older key of the same algorithm
// (rotation, RFC 6376 §3.1: the old record stays published until the
// mail signed with it has been verified, then the operator removes it).
package dkim
