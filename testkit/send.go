package testkit

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Message builds a small RFC 5322 message with CRLF line ends.
func Message(from, to, subject, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d@testkit>\r\n\r\n",
		from, to, subject, time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(strings.TrimRight(line, "\r"))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// Send delivers one message over SMTP to addr and returns the server's
// reply to the end of DATA (or the first error).
func Send(addr, from string, to []string, msg []byte) (string, error) {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(msg); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	return resp.StatusText, nil
}
