package filter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteMessageFile writes the file a filter reads: a "Return-Path: <from>"
// line, one "Envelope-To: <rcpt>" line per recipient, then body (the RFC
// 5322 message, written as is), into a new file with mode 0600 in dir, and
// returns its path. from "" is the null sender. The caller removes the file
// when the check is over. Addresses with CR, LF, NUL or other control
// characters, or with angle brackets, are refused (ErrInvalidEnvelope), as
// is an empty recipient list; nothing is written then.
func WriteMessageFile(dir string, from string, rcpts []string, body []byte) (path string, err error) {
	return WriteMessageFileFrom(dir, from, rcpts, bytes.NewReader(body))
}

// WriteMessageFileFrom is WriteMessageFile with the message read from
// body as it is written (a large message is never held in memory). An
// error reading body removes the file and is returned.
func WriteMessageFileFrom(dir string, from string, rcpts []string, body io.Reader) (path string, err error) {
	if len(rcpts) == 0 {
		return "", fmt.Errorf("%w: no recipients", ErrInvalidEnvelope)
	}
	if err := envelopeAddress(from, true); err != nil {
		return "", err
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "Return-Path: <%s>\r\n", from)
	for _, r := range rcpts {
		if err := envelopeAddress(r, false); err != nil {
			return "", err
		}
		fmt.Fprintf(&head, "Envelope-To: <%s>\r\n", r)
	}
	f, err := os.CreateTemp(dir, "filter-*.msg")
	if err != nil {
		return "", err
	}
	_, err = f.Write(head.Bytes())
	if err == nil {
		_, err = io.CopyBuffer(f, body, make([]byte, 32<<10))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// envelopeAddress checks that addr can be written between angle brackets
// on one envelope line.
func envelopeAddress(addr string, nullOK bool) error {
	if addr == "" {
		if nullOK {
			return nil
		}
		return fmt.Errorf("%w: empty recipient", ErrInvalidEnvelope)
	}
	if strings.ContainsAny(addr, "<>") {
		return fmt.Errorf("%w: angle bracket in %q", ErrInvalidEnvelope, addr)
	}
	for _, r := range addr {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character in %q", ErrInvalidEnvelope, addr)
		}
	}
	return nil
}

// CheckMessage writes the message file in dir (WriteMessageFile), checks
// it (Check) and removes it. A file that cannot be written gives a
// KindFailure verdict and the write error.
func (f *Filter) CheckMessage(ctx context.Context, dir, from string, rcpts []string, body []byte) (Verdict, error) {
	return f.CheckMessageFrom(ctx, dir, from, rcpts, bytes.NewReader(body))
}

// CheckMessageFrom is CheckMessage with the message streamed from body
// into the file.
func (f *Filter) CheckMessageFrom(ctx context.Context, dir, from string, rcpts []string, body io.Reader) (Verdict, error) {
	path, err := WriteMessageFileFrom(dir, from, rcpts, body)
	if err != nil {
		return Verdict{Kind: KindFailure, Text: "cannot write the message file for the content filter"}, err
	}
	defer func() {
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			f.log.Warn("cannot remove filter message file", "path", path, "err", rerr)
		}
	}()
	return f.Check(ctx, path)
}
