// Package cert provides the TLS certificates of a node's listeners: loaded
// from the files the operator configures, or generated self-signed where a
// listener must offer TLS without one (submission, for AUTH in
// development).
package cert
