// Package admin is the node's administration endpoint: a JSON HTTP API under
// /api/v1 (the paths are a contract, listed in README.md), Prometheus metrics
// on /metrics, and a typed Go client for the same API that `homing ctl` uses.
//
// The handler knows nothing about how a node works: everything it shows or
// changes goes through the API interface in api.go, which the node
// implements. Errors are mapped to HTTP status codes through the sentinel
// errors of package mail (ErrNotFound -> 404, ErrExists -> 409) and
// *admin.Error (any code, with a message meant for the operator).
package admin
