// Package transfer is how mail generated on a node leaves it for another
// member (design.md, mail flow 4 and 6): in queue mode Remotely the
// message is handed to a Locally-for-Others member with the cluster
// submission protocol (Client), and with --forward-to '*' non-local mail is
// relayed through the cluster's live frontends (ForwardHosts).
package transfer
