// Package acme obtains and renews the node's public TLS certificate from
// an ACME certificate authority (RFC 8555; Let's Encrypt, or any CA that
// speaks it), with golang.org/x/crypto/acme doing the protocol (JWS
// requests, nonces, orders) and this package deciding when, by whom and
// with which challenge.
//
//   - The challenge is HTTP-01 (RFC 8555 §8.3): a small HTTP listener
//     (Challenges) answers /.well-known/acme-challenge/TOKEN with the key
//     authorization. Before the node tells the CA to validate, it hands
//     the token to every live frontend (Replicator), so that whichever
//     frontend the CA's lookup of the name reaches answers it.
//   - The certificate, its chain and its private key (a Bundle) are a
//     file of the data directory (Store), replicated to every frontend
//     over the cluster channel by content, like the DKIM keys: for one
//     set of names the bundle that expires last wins, a rule that
//     converges in any order. One frontend obtains it (the first by name
//     among the live frontends; the next one only if that one has not
//     renewed a while after the renewal was due), the others load it.
//     The first node of a cluster waits for a first other frontend (or
//     10 s) before it orders: one that joins meanwhile would not hold
//     the challenge the CA may ask it for.
//   - Renewal starts when a third of the certificate's lifetime remains
//     (Bundle.RenewAt). A failed attempt is logged, says whether it is
//     temporary, and is retried with a doubling wait; the certificate in
//     use keeps serving meanwhile.
package acme
