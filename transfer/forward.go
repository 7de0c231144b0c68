package transfer

import (
	"sync/atomic"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// ForwardHosts returns the smarthost list of --forward-to (smtp.ClientConfig.
// Smarthosts): the configured HOST:PORTs, with "*" standing for the live
// frontends of the cluster (a backend without Internet access). Each call
// starts at a different host, so that the load spreads and a dead one is
// skipped.
func ForwardHosts(forwardTo []string, members Members) func() []string {
	var counter atomic.Uint64
	return func() []string {
		var hosts []string
		for _, f := range forwardTo {
			if f != "*" {
				hosts = append(hosts, f)
				continue
			}
			for _, m := range members() {
				if !m.Self && m.State == cluster.StateAlive && m.Meta.HasRole(mail.RoleFrontend) && m.Meta.SMTP != "" {
					hosts = append(hosts, m.Meta.SMTP)
				}
			}
		}
		if len(hosts) > 1 {
			k := int(counter.Add(1)) % len(hosts)
			hosts = append(hosts[k:], hosts[:k]...)
		}
		return hosts
	}
}
