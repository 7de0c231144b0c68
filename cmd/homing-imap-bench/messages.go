package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// message is one message of the benchmark mailbox, with CRLF line ends
// (as APPEND sends it), its flags and its internal date.
type message struct {
	Raw   []byte
	Flags []imap.Flag
	Date  time.Time
}

var words = strings.Fields(`the quarterly report numbers meeting agenda project timeline budget
review notes draft final update status customer order invoice shipping travel plans lunch
team offsite release candidate build server cluster mailbox message delivery queue backend`)

// generate makes n messages, the same for every run: senders, subjects and
// dates vary, bodies are 1 to 8 KiB of text lines, a third are \Seen and
// one in 17 \Flagged.
func generate(n int) []message {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := make([]message, n)
	for i := range msgs {
		var b bytes.Buffer
		date := base.Add(time.Duration(i) * 7 * time.Minute)
		fmt.Fprintf(&b, "Return-Path: <sender%d@remote.test>\r\n", i%500)
		fmt.Fprintf(&b, "From: Sender %d <sender%d@remote.test>\r\n", i%500, i%500)
		fmt.Fprintf(&b, "To: Bench Reader <bench@example.test>\r\n")
		if i%4 == 0 {
			fmt.Fprintf(&b, "Cc: colleague%d@example.test, other%d@remote.test\r\n", i%37, i%41)
		}
		fmt.Fprintf(&b, "Subject: %s %s %s (%d)\r\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))], i)
		fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
		fmt.Fprintf(&b, "Message-ID: <bench.%d@remote.test>\r\n", i)
		fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
		size := 1024 + rng.IntN(7*1024)
		for b.Len() < size {
			line := 0
			for line < 60 {
				w := words[rng.IntN(len(words))]
				b.WriteString(w)
				b.WriteByte(' ')
				line += len(w) + 1
			}
			b.WriteString("\r\n")
		}
		m := message{Raw: b.Bytes(), Date: date}
		if i%3 == 0 {
			m.Flags = append(m.Flags, imap.FlagSeen)
		}
		if i%17 == 0 {
			m.Flags = append(m.Flags, imap.FlagFlagged)
		}
		msgs[i] = m
	}
	return msgs
}

func totalSize(msgs []message) int {
	t := 0
	for _, m := range msgs {
		t += len(m.Raw)
	}
	return t
}

// maildirName is the name Dovecot's own delivery gives a file in cur/:
// S= the file's size (LF line ends), W= the size with CRLF (what IMAP
// counts), then the flags after ":2,".
func maildirName(i int, m message, fileSize int) string {
	var flags []byte
	for _, f := range m.Flags {
		switch f {
		case imap.FlagFlagged:
			flags = append(flags, 'F')
		case imap.FlagSeen:
			flags = append(flags, 'S')
		}
	}
	slices.Sort(flags) // Maildir's flags are in ASCII order
	return fmt.Sprintf("%d.M%dP1.bench,S=%d,W=%d:2,%s", m.Date.Unix(), i, fileSize, len(m.Raw), flags)
}
