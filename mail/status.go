package mail

import (
	"strconv"
	"strings"
)

// Status is an RFC 3463 enhanced mail system status code,
// "class.subject.detail": class 2 success, 4 persistent transient failure
// (try again), 5 permanent failure. Every status Homing itself gives is one
// of the named values below; this file is the only place where they are
// written as literals. Statuses received from other servers are kept as
// they came (ParseStatus checks their form).
type Status string

// RFC 3463 §3.1: success.
const (
	StatusOK Status = "2.0.0" // other or undefined success
)

// Addressing status, X.1.Y (RFC 3463 §3.2).
const (
	StatusNoSuchUser         Status = "5.1.1"  // bad destination mailbox address
	StatusBadDestinationHost Status = "5.1.2"  // bad destination system address
	StatusBadDestination     Status = "5.1.3"  // bad destination mailbox address syntax
	StatusBadSender          Status = "5.1.7"  // bad sender's mailbox address syntax
	StatusNullMX             Status = "5.1.10" // recipient address has null MX (RFC 7505 §4.2)
)

// Mailbox status, X.2.Y (RFC 3463 §3.3).
const (
	StatusMailboxDisabled Status = "5.2.1" // mailbox disabled, not accepting messages
	StatusMailboxFull     Status = "4.2.2" // mailbox full (temporary: it may be emptied)
	StatusMailboxFullPerm Status = "5.2.2" // mailbox full, given up
)

// Mail system status, X.3.Y (RFC 3463 §3.4).
const (
	StatusLocalError    Status = "4.3.0" // other or undefined mail system status: our fault, temporary
	StatusSystemFull    Status = "4.3.1" // mail system full: a store's disk is below its free-space limit
	StatusNotAccepting  Status = "4.3.2" // system not accepting network messages
	StatusMessageTooBig Status = "5.3.4" // message too big for system
)

// Network and routing status, X.4.Y (RFC 3463 §3.5).
const (
	StatusNoAnswer         Status = "4.4.1" // no answer from host
	StatusConnectionLost   Status = "4.4.2" // bad connection
	StatusDirectoryFailure Status = "4.4.3" // directory server failure (DNS, the account's owner)
	StatusUnableToRoute    Status = "4.4.4" // unable to route
	StatusExpired          Status = "4.4.7" // delivery time expired
)

// Mail delivery protocol status, X.5.Y (RFC 3463 §3.6).
const (
	StatusProtocolError Status = "4.5.0" // other or undefined protocol status
	StatusBadCommand    Status = "5.5.1" // invalid command (or sequence)
	StatusSyntaxError   Status = "5.5.2" // syntax error
	StatusTooManyRcpts  Status = "4.5.3" // too many recipients
	StatusBadArguments  Status = "5.5.4" // invalid command arguments
)

// Message content or media status, X.6.Y (RFC 3463 §3.7).
const (
	StatusBadContent    Status = "5.6.0" // other or undefined media error (bare CR/LF, malformed records)
	StatusNeeds8BitMIME Status = "5.6.3" // conversion required but not supported
	StatusNeedsUTF8     Status = "5.6.7" // non-ASCII addresses not permitted (RFC 6531 §3.5)
)

// Security or policy status, X.7.Y (RFC 3463 §3.8, RFC 4954 §6).
const (
	StatusTempAuth           Status = "4.7.0"  // temporary authentication failure, too many attempts
	StatusTLSFailed          Status = "4.7.5"  // cryptographic failure
	StatusAuthRequired       Status = "5.7.0"  // authentication required
	StatusRefused            Status = "5.7.1"  // delivery not authorized, message refused (relay denied, policy)
	StatusBadCredentials     Status = "5.7.8"  // authentication credentials invalid
	StatusEncryptionRequired Status = "5.7.11" // encryption required for the mechanism
)

// Generic statuses of each class, for a reply code that came without one.
const (
	StatusTempFailure Status = "4.0.0"
	StatusPermFailure Status = "5.0.0"
)

// ParseStatus checks that s is "class.subject.detail" with class 2, 4 or
// 5 and numbers of at most three digits (RFC 3463 §2).
func ParseStatus(s string) (Status, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return "", false
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return "", false
		}
		if _, err := strconv.Atoi(p); err != nil || p[0] == '+' || p[0] == '-' {
			return "", false
		}
		if i == 0 && p != "2" && p != "4" && p != "5" {
			return "", false
		}
	}
	return Status(s), true
}

// Class is 2, 4 or 5; 0 for a malformed status.
func (s Status) Class() int {
	if len(s) < 2 || s[1] != '.' {
		return 0
	}
	switch s[0] {
	case '2':
		return 2
	case '4':
		return 4
	case '5':
		return 5
	}
	return 0
}

// Subject is the middle number (1 addressing, 2 mailbox, 3 mail system,
// 4 network and routing, 5 protocol, 6 content, 7 security); -1 when s is
// malformed.
func (s Status) Subject() int {
	parts := strings.Split(string(s), ".")
	if len(parts) != 3 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// SameCondition reports whether s and t name the same condition whatever
// their class ("4.2.2" and "5.2.2" do).
func (s Status) SameCondition(t Status) bool {
	return len(s) > 1 && len(t) > 1 && s[1:] == t[1:]
}

// Permanent returns the class-5 form of a transient status (4.4.7 -> 5.4.7,
// RFC 3463 §3.5: a message that timed out); a permanent status is
// returned as it is, anything else becomes 5.0.0.
func (s Status) Permanent() Status {
	switch s.Class() {
	case 5:
		return s
	case 4:
		return "5" + s[1:]
	}
	return StatusPermFailure
}

// Transient returns the class-4 form of a permanent status (5.7.1 ->
// 4.7.1); a transient status is returned as it is, anything else becomes
// 4.0.0.
func (s Status) Transient() Status {
	switch s.Class() {
	case 4:
		return s
	case 5:
		return "4" + s[1:]
	}
	return StatusTempFailure
}

// ForCode returns s when its class agrees with the SMTP reply code (2xx,
// 4xx, 5xx), otherwise the generic status of the code's class (RFC 3463
// §2: the class of the status must match the reply's).
func (s Status) ForCode(code int) Status {
	if s.Class() == code/100 {
		return s
	}
	switch code / 100 {
	case 2:
		return StatusOK
	case 4:
		return StatusTempFailure
	}
	return StatusPermFailure
}
