// Package cluster turns single Homing nodes into a cluster: who is a member
// (gossip membership: membership*.go, meta.go, transport.go), which backend
// owns each account partition (placement*.go, ownership*.go), and the
// channel the nodes talk over (channel*.go, tls*.go).
//
// # Membership
//
// Nodes find each other and detect failures with
// github.com/hashicorp/memberlist (the SWIM protocol: Das, Gupta and
// Motivala, "SWIM: Scalable Weakly-consistent Infection-style Process Group
// Membership Protocol", DSN 2002, with Lifeguard's suspicion and awareness
// extensions). Start binds the gossip port (UDP and TCP on the same
// host:port), starts memberlist and keeps joining the configured seeds in
// the background with a capped backoff; once in the cluster it keeps trying
// to reconnect to members it believes dead, so that the two sides of a
// healed network partition find each other again (memberlist alone never
// does).
//
// Each node describes itself in memberlist's node metadata (Meta, at most
// memberlist.MetaMaxSize = 512 bytes of compact JSON): cluster name, roles,
// queue processing mode, the addresses of its SMTP, channel and admin
// listeners, the partition count, its static partitions and the time its
// process started. Nodes of another cluster name or partition count are
// refused (memberlist's AliveDelegate and MergeDelegate), and logged once a
// minute per node.
//
// Membership keeps its own table of every member it has seen, so that
// members that died or left stay listed as dead or left until a member of
// the same name comes back. memberlist reports joins and leaves but not why
// a member went; a member that leaves gracefully (Leave) first tells every
// live member so over TCP (the leaving notice) and gossips metadata with a
// private "leaving" marker, so the others record it as left, not dead, even
// when they learn of its going from their own failure detection.
//
// # Security
//
// memberlist without a key lets anyone who reaches the port join and inject
// state. With a secret, every gossip packet and stream is encrypted and
// authenticated with AES-256-GCM under a key derived from the secret with
// HKDF-SHA256 (RFC 5869; info "homing memberlist v1", a zero byte, the
// cluster name), and unencrypted gossip is refused in both directions. A
// node that is given seeds but no secret refuses to start unless Insecure
// is set; a node with neither seeds, secret nor Insecure runs alone and
// refuses every other node that tries to join it.
//
// # Declared dead
//
// A node that the others declared dead (after a network partition, a long
// pause) has had its partitions given to others, so it must close them at
// once (design.md). memberlist refutes such a declaration silently;
// Membership signals it on SelfDeclaredDead when it sees that another member
// holds this very process (same name and start time) as dead: in the member
// list of a join, in the state another member sends on a push/pull, or in a
// dead message about us (seen through memberlist's log line "Refuting a
// dead message").
//
// # Tests
//
// Config.Fast shrinks every memberlist timer so that a crash is declared
// dead within about two seconds; Switch wraps the gossip transport of
// in-process nodes to cut and heal links between them.
package cluster
