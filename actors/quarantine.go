package actors

import (
	"bytes"

	"github.com/homing-mail/homing/rules"
)

// JunkFolder is where a message the cluster's checks quarantined is
// filed (DMARC p=quarantine, issue #11), unless the account's rules file
// it elsewhere. The IMAP mailbox model makes it the \Junk special-use
// folder (RFC 6154).
const JunkFolder = "Junk"

// quarantineFolder is JunkFolder when the cluster's own
// Authentication-Results field of the message says it applied quarantine
// (rules.Quarantined), else "" (the default folder). h is the parsed
// header when the caller has it.
func (a *accountActor) quarantineFolder(c *content, h rules.Header) string {
	head := c.header()
	if a.cfg.AuthServID == "" || !bytes.Contains(head, []byte("policy.dmarc=")) {
		return ""
	}
	if h == nil {
		h, _ = rules.ParseHeader(head)
	}
	if rules.Quarantined(h, a.cfg.AuthServID) {
		return JunkFolder
	}
	return ""
}
