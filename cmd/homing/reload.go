package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/homing-mail/homing/node"
)

// reloadOnHUP reloads the node's TLS certificate on every SIGHUP until ctx
// ends (the convention of mail servers: a renewed certificate, then
// `kill -HUP`). Sessions in progress are not dropped.
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
			}
		}
	}()
}
