package admin

// SubmitRequest is the body of POST /api/v1/submit: the recipients
// (RFC 5321 forward-paths, without angle brackets) and the whole RFC 5322
// message, header and body, as a string.
type SubmitRequest struct {
	To  []string `json:"to"`
	Raw string   `json:"raw"`
}

// SubmitResponse is the 202 answer to POST /api/v1/submit: the queue id of
// the message generated on the node.
type SubmitResponse struct {
	ID string `json:"id"`
}

// errorBody is the JSON body of every error answer: {"error": "message"},
// and on a 400 for one field of the request, "field": its name.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Queue modes accepted by PUT /api/v1/settings (design.md: Queue
// Processing of each node).
const (
	QueueModeLocally          = "locally"
	QueueModeLocallyForOthers = "locally-for-others"
	QueueModeRemotely         = "remotely"
)

// ValidQueueMode reports whether m is one of the three queue modes.
func ValidQueueMode(m string) bool {
	switch m {
	case QueueModeLocally, QueueModeLocallyForOthers, QueueModeRemotely:
		return true
	}
	return false
}

// Queue actions accepted by API.QueueAction.
const (
	ActionRetry   = "retry"
	ActionHold    = "hold"
	ActionRelease = "release"
	ActionDelete  = "delete"
)
