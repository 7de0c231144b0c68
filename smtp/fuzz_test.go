package smtp

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// FuzzSession drives a server session over net.Pipe with fuzzed input
// after a fixed EHLO. It fails if a panic was recovered (in the session
// or in go-smtp), if the server stops reading without closing the
// connection, or if the connection is not released after the client hangs
// up.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
		"MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=a+2Bb\r\nRCPT TO:<alice@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40b\r\n",
		"MAIL FROM:<s@x>\r\nRCPT TO:<\"a@b\"@example.test>\r\nRCPT TO:<@a,@b:c@d>\r\nRCPT TO:<a%b@example.test>\r\n",
		"MAIL FROM:<s@x>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\n.\r\nMAIL FROM:<y@z>\r\n.\r\n",
		"MAIL FROM:<s@x>\r\nRCPT TO:<alice@example.test>\r\nBDAT 5\r\nab\r\ncBDAT 0 LAST\r\n",
		"MAIL FROM:<s@x>\r\nRCPT TO:<alice@example.test>\r\nBDAT 100 LAST\r\nshort",
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\nYQ==\r\n*\r\n",
		"AUTH LOGIN\r\n",
		"STARTTLS\r\nRSET\r\nNOOP\r\nVRFY x\r\nEHLO again\r\nHELO x\r\nQUIT\r\n",
		"MAIL FROM:<s@x>\r\nRCPT TO:<用户@example.test>\r\nDATA\r\n\r\n.\r\n",
		"\x00\xff\r\n\r\n\r\n\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	ps := startPipeServer(f, Config{
		Submission:        false,
		MaxMessageBytes:   4096,
		MaxRecipients:     5,
		MaxDataLineLength: 200,
		CommandTimeout:    5 * time.Second,
		DataTimeout:       5 * time.Second,
	}, true)

	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		defer client.Close()
		if err := ps.l.push(server); err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for _, chunk := range [][]byte{[]byte("EHLO fuzz.example\r\n"), input, []byte("\r\n.\r\nQUIT\r\n")} {
			if _, err := client.Write(chunk); err != nil {
				var ne net.Error
				if isTimeout(err, &ne) {
					t.Fatalf("the server stopped reading without closing the connection: %v", err)
				}
				break // the server closed the connection (QUIT, too many errors, ...)
			}
		}
		client.Close()
		<-drained
		wait.For(t, 10*time.Second, func() bool { return ps.lim.open() == 0 }, "the session did not end after the client hung up")
		if n := ps.PanicsRecovered(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
	})
}
