package pop3

import (
	"bytes"
	"errors"
	"strings"
)

// command is one parsed command line.
type command struct {
	// Name is the keyword in upper case.
	Name string
	// Args are the arguments, split at spaces.
	Args []string
	// Rest is everything after the keyword and its space, unsplit: PASS
	// takes it whole ("since the PASS command has exactly one argument, a
	// POP3 server may treat spaces in the argument as part of the
	// password", RFC 1939 §7).
	Rest string
}

// Reasons a line is not a command; each is answered -ERR with its text.
var (
	errEmptyLine  = errors.New("empty command line")
	errBadKeyword = errors.New("unknown command")
	errBadChar    = errors.New("invalid character in command line")
)

// parseCommand parses one command line, its CRLF (or bare LF) included or
// not. RFC 1939 §3: "Commands in the POP3 consist of a case-insensitive
// keyword, possibly followed by one or more arguments. [...] Keywords and
// arguments consist of printable ASCII characters. Keywords and arguments
// are each separated by a single SPACE character. Keywords are three or
// four characters long." Arguments may also hold UTF-8 (user names and
// passwords of RFC 6856 clients); control characters are refused, and runs
// of spaces between arguments are taken as one.
func parseCommand(line []byte) (command, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return command{}, errEmptyLine
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return command{}, errBadChar
		}
	}
	name, rest, _ := bytes.Cut(line, []byte(" "))
	if len(name) < 3 || len(name) > 4 {
		return command{}, errBadKeyword
	}
	for _, c := range name {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return command{}, errBadKeyword
		}
	}
	cmd := command{Name: strings.ToUpper(string(name)), Rest: string(rest)}
	cmd.Args = strings.Fields(cmd.Rest)
	return cmd, nil
}

// maxNumberDigits bounds a message number or line count argument: more
// digits than this cannot name anything (and would overflow).
const maxNumberDigits = 9

// parseNumber parses a non-negative decimal argument (RFC 1939 §3:
// "message-number", and TOP's line count): digits only, no sign.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > maxNumberDigits {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
