package dkim

import (
	"context"
	"errors"
	"log/slog"

	"github.com/homing-mail/homing/mail"
)

// Relayer sends an attempt to the next hop (actors.Relayer).
type Relayer interface {
	Send(ctx context.Context, msg *mail.Message) []mail.Result
}

// SigningRelayer signs each attempt of a local sender's message before
// the relayer it wraps sends it: the node whose queue relays a message
// to the world signs it, once (a node that forwards every non-local
// message to the cluster's frontends is not given one: the frontend
// that relays signs).
type SigningRelayer struct {
	Next   Relayer
	Signer *Signer
	// Record notes what happened in the message's journey.
	Record func(id, event, detail string)
	Log    *slog.Logger
}

// Trusted reports whether env is the cluster's own mail, whose author
// domain it signs: an authenticated user's, generated here (API, rules,
// reports) or handed over by a member. Mail from outside is never
// signed, even when it claims a local author.
func Trusted(env *mail.Envelope) bool {
	if env.Auth != "" || env.FromMember != "" {
		return true
	}
	switch env.Source {
	case mail.SourceSubmission, mail.SourceAPI, mail.SourceDSN, mail.SourceCluster, "rule":
		return true
	}
	return false
}

// Send signs msg when it is a trusted sender's and sends it. A message
// that cannot be signed (a key that cannot be made, a body that cannot
// be read) goes unsigned rather than not at all, with a log line.
func (r *SigningRelayer) Send(ctx context.Context, msg *mail.Message) []mail.Result {
	if Trusted(msg.Envelope) {
		made := func(k Key) {
			r.Log.Warn("made a DKIM key on first use: publish its record (homing ctl dkim dns DOMAIN)",
				"domain", k.Domain, "selector", k.Selector, "algorithm", k.Algorithm)
		}
		signed, sigs, err := r.Signer.Sign(msg, made)
		switch {
		case errors.Is(err, ErrNoKey):
		case err != nil:
			r.Log.Warn("DKIM signing failed; sending unsigned", "queueID", msg.Envelope.ID, "err", err)
			r.record(msg.Envelope.ID, "dkim", "not signed: "+err.Error())
		default:
			for _, s := range sigs {
				r.record(msg.Envelope.ID, "dkim", "signed "+s.String())
			}
			msg = signed
		}
	}
	return r.Next.Send(ctx, msg)
}

func (r *SigningRelayer) record(id, event, detail string) {
	if r.Record != nil {
		r.Record(id, event, detail)
	}
}
