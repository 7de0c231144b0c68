package node

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/smtp"
)

// TLS by default (issue #11 item 4): the MX port, submission,
// submissions, IMAP and POP3 serve the certificate of
// --tls-cert/--tls-key (reloaded by ReloadTLS, which homing serve runs on
// SIGHUP), or ACME's (acme.go), or, without either, a self-signed
// certificate, so that STARTTLS is always offered; a member
// that connects to the SMTP port names cluster.SMTPServerName and gets a
// leaf of the cluster CA instead, which it verifies: cluster mail on the
// SMTP port is never plaintext.

// listenerTLS is the TLS configuration of the SMTP listeners.
func (n *Node) listenerTLS() (*tls.Config, error) {
	if n.trust.certs != nil { // ACME's (startACME)
		n.certMetrics()
		return n.trust.certs.Config(cluster.SMTPServerName, n.trust.memberServerTLS), nil
	}
	src, err := cert.NewSource(n.cfg.Listen.TLSCert, n.cfg.Listen.TLSKey, n.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	if src.SelfSigned() {
		n.log.Warn("NO TLS CERTIFICATE CONFIGURED: the SMTP listeners offer STARTTLS with a self-signed certificate for "+
			n.cfg.Hostname+"; senders that verify certificates will not trust it. Give --tls-cert and --tls-key (reloaded on SIGHUP)",
			"hostname", n.cfg.Hostname)
	}
	n.trust.certs = src
	n.certMetrics()
	return src.Config(cluster.SMTPServerName, n.trust.memberServerTLS), nil
}

// certMetrics exports the expiry of the listeners' certificate, for an
// alert before it lapses (a renewal that keeps failing, files nobody
// renewed).
func (n *Node) certMetrics() {
	src := n.trust.certs
	n.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "homing_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate the TLS listeners serve expires (Unix time): --tls-cert's, ACME's or the self-signed one.",
	}, func() float64 { return float64(src.NotAfter().Unix()) }))
}

// clusterSMTPTLS makes the TLS of cluster traffic on the SMTP port from
// the secret (a clustered node with a secret).
func (n *Node) clusterSMTPTLS() error {
	srv, cli, err := cluster.SMTPTLS(n.cfg.Cluster.Secret, n.cfg.Cluster.Name, n.cfg.Name)
	if err != nil {
		return err
	}
	n.trust.memberServerTLS, n.trust.memberClientTLS = srv, cli
	return nil
}

// memberClient makes c a client of members' SMTP ports: TLS required,
// the server verified against the cluster CA. Without a secret (an
// --insecure test cluster) c is unchanged.
func (n *Node) memberClient(c smtp.ClientConfig) smtp.ClientConfig {
	if n.trust.memberClientTLS != nil {
		// Verified against the cluster CA: members publish no TLSA.
		c.TLS, c.RequireTLS, c.DANE = n.trust.memberClientTLS, true, nil
	}
	return c
}

// startSubmissions starts the implicit-TLS submission listener
// (--submissions, RFC 8314 §3.3) with sub's configuration.
func (n *Node) startSubmissions(sub smtp.Config, metrics *smtp.Metrics) error {
	addr := n.cfg.Listen.Submissions
	if addr == "" {
		return nil
	}
	srv := smtp.NewServer(sub, n.actors.Directory(), n.actors.Enqueuer(), authenticator{n.actors},
		n.log.With("component", "submissions"), metrics)
	ln, err := n.listen("--submissions", addr, func(l net.Listener) error { return srv.ServeTLS(l, sub.TLSConfig) }, srv.Close)
	n.trust.subsLn = ln
	return err
}

// SubmissionsAddr is the address of the implicit-TLS submission
// listener, "" if off.
func (n *Node) SubmissionsAddr() string { return addrOf(n.trust.subsLn) }

// ReloadTLS reads --tls-cert and --tls-key again: new handshakes get the
// new certificate, sessions in progress keep theirs. On an error the old
// certificate stays in use. Without the files (a self-signed or an ACME
// certificate) it does nothing.
func (n *Node) ReloadTLS() error {
	if n.trust.certs == nil {
		return errors.New("the node has no TLS listeners yet")
	}
	if err := n.trust.certs.Reload(); err != nil {
		return err
	}
	if n.cfg.Listen.TLSCert != "" {
		n.log.Info("TLS certificate reloaded", "cert", n.cfg.Listen.TLSCert)
	}
	return nil
}
