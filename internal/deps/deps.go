// Package deps pins the modules Homing builds on while the packages that use
// them are being written, so that helpers working in parallel never race on
// go.mod. It is removed once every module is imported for real.
package deps

import (
	_ "github.com/asynkron/protoactor-go/actor"
	_ "github.com/chromedp/chromedp"
	_ "github.com/asynkron/protoactor-go/remote"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.uber.org/goleak"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/bcrypt"
)
