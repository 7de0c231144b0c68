package cluster

import (
	"crypto/tls"
	"time"
)

// SMTPServerName is the TLS server name a member sends when it connects
// to another member's SMTP port (a transfer in queue mode Remotely, a
// forward to the frontends): the SMTP server answers it with a leaf of
// the cluster CA instead of its public certificate, so that cluster mail
// is always encrypted and both ends verified against the CA (tls.go),
// never plaintext and never trusted on a public certificate.
const SMTPServerName = clusterServerName

// SMTPTLS returns the TLS configurations of cluster traffic on the SMTP
// port: the server's (TLS 1.3, a fresh leaf of the CA of secret and
// clusterName, a member's client certificate required) and the client's
// (the server verified against the CA and SMTPServerName, the same leaf
// as its client certificate).
func SMTPTLS(secret, clusterName, nodeName string) (server, client *tls.Config, err error) {
	ca, err := deriveCA(secret, clusterName)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := ca.issueLeaf(nodeName, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return ca.serverTLS(leaf), ca.clientTLS(leaf), nil
}
