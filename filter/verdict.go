package filter

// Kind is what a filter decided about a message.
type Kind int

// The verdict kinds. The zero Kind is KindOK.
const (
	// KindOK: pass the message on, with Verdict.Headers added at the top.
	KindOK Kind = iota
	// KindDiscard: accept the message and deliver it to nobody.
	KindDiscard
	// KindReject: refuse the message permanently (5xx, or a DSN to the
	// sender); Verdict.Text is the filter's report.
	KindReject
	// KindError: refuse the message permanently because the filter says
	// it is bad (malformed, cannot be scanned); Verdict.Text says why.
	KindError
	// KindFailure: the filter could not judge the message now (4xx, try
	// again later). Check also returns it, with a non-nil error, when the
	// filter timed out, broke the protocol, kept dying or was closed.
	KindFailure
)

// String is the lower-case name used as the metrics label: "ok",
// "discard", "reject", "error" or "failure".
func (k Kind) String() string {
	switch k {
	case KindOK:
		return "ok"
	case KindDiscard:
		return "discard"
	case KindReject:
		return "reject"
	case KindError:
		return "error"
	case KindFailure:
		return "failure"
	}
	return "unknown"
}

// Permanent reports whether the message must be refused for good
// (KindReject or KindError).
func (k Kind) Permanent() bool { return k == KindReject || k == KindError }

// Verdict is a filter's answer about one message.
type Verdict struct {
	Kind Kind
	// Headers are complete header fields ("Name: value") to add to the
	// message, from ADDHEADER. Each has been checked: no CR, LF or other
	// control characters, a valid field name, at most 998 bytes. Only set
	// with KindOK.
	Headers []string
	// Text is the reason for KindReject, KindError and KindFailure: the
	// filter's report, or Homing's own words when the filter gave none.
	// It holds no control characters and at most 512 bytes.
	Text string
}
