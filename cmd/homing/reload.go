package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/homing-mail/homing/node"
)

// reloadOnHUP reloads the node's TLS certificate and the route
// credentials (--route-credentials) on every SIGHUP until ctx ends (the
// convention of mail servers: a renewed certificate or a changed
// password file, then `kill -HUP`). Sessions in progress are not dropped.
func reloadOnHUP(ctx context.Context, n *node.Node, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := n.ReloadTLS(); err != nil {
					log.Error("SIGHUP: reloading the TLS certificate failed; the old one stays in use", "err", err)
				}
				if err := n.ReloadRouteCredentials(); err != nil {
					log.Error("SIGHUP: reloading the route credentials failed; the old ones stay in use", "err", err)
				}
			}
		}
	}()
}
