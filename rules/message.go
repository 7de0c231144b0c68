package rules

import "github.com/homing-mail/homing/mail"

// SourceRule is the source of a message that a rule generated (a redirect,
// a forward, an auto-reply). The other sources are mail.Source's constants.
const SourceRule mail.Source = "rule"

// knownSource reports whether s is a value a "source" condition may test.
func knownSource(s mail.Source) bool {
	switch s {
	case mail.SourceSMTP, mail.SourceSubmission, mail.SourceAPI,
		mail.SourceDSN, mail.SourceCluster, SourceRule:
		return true
	}
	return false
}

// Message is what conditions look at. It is read only; Evaluate never
// changes it or keeps a reference to it.
type Message struct {
	// Sender is the envelope sender; "" is the null sender.
	Sender string
	// Recipients are the envelope recipients.
	Recipients []string
	// Header is the message's header section (ParseHeader).
	Header Header
	// Size is the message size in bytes.
	Size int64
	// Source is where the message came from.
	Source mail.Source
	// Auth holds the results of the cluster's own checks of a message
	// from outside, by method ("spf", "dkim", "dmarc"; see AuthResults);
	// empty for other mail.
	Auth map[string]string
}

// NewMessage describes a queued message for conditions: its envelope's
// sender, recipients (all of them; an account actor that runs one
// account's rules passes that account's address instead), size and
// source, and the header h of its body.
func NewMessage(env *mail.Envelope, h Header) Message {
	m := Message{Sender: env.From, Header: h, Size: env.Size, Source: env.Source}
	m.Recipients = make([]string, len(env.Recipients))
	for i, r := range env.Recipients {
		m.Recipients[i] = r.Addr
	}
	return m
}
