package imap_test

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestCreateMakesTheSuperiors: CREATE a/b/c makes a and a/b (RFC 9051
// §6.3.4's SHOULD), LIST shows them with children, and CREATE of an
// existing superior's child still works.
func TestCreateMakesTheSuperiors(t *testing.T) {
	n := startNode(t, "create@example.test")
	c, _ := login(t, n.IMAPAddr(), "create@example.test")
	if err := c.Create("Projects/2025/Q1", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "Projects*", &imap.ListOptions{ReturnChildren: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
	}
	for name, attr := range map[string]imap.MailboxAttr{"Projects": imap.MailboxAttrHasChildren, "Projects/2025": imap.MailboxAttrHasChildren,
		"Projects/2025/Q1": imap.MailboxAttrHasNoChildren, "Projects/2026": imap.MailboxAttrHasNoChildren} {
		if attrs, ok := got[name]; !ok || !slices.Contains(attrs, attr) {
			t.Errorf("LIST: %s has %v (listed: %v), want %s", name, attrs, ok, attr)
		}
	}
	if len(got) != 4 {
		t.Errorf("LIST Projects*: %v", got)
	}
	if _, err := c.Select("Projects/2025", nil).Wait(); err != nil {
		t.Errorf("SELECT of a superior CREATE made: %v", err)
	}
}
