package admin_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func ids(ms []admin.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func apiStatus(err error) int {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// The mailbox routes over the client: the listing of one folder, newest
// first and in pages with the count before paging in X-Total-Count; the
// folders with their counts; moving, flagging and deleting a message,
// each seen in the listing after; and the errors: a bad page, no such
// folder, message or account.
func TestMailboxRoutes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.fake.Lock()
	e.fake.AccountMap["ann@example.test"] = admin.Account{Address: "ann@example.test"}
	for i := 1; i <= 7; i++ {
		folder := "INBOX"
		if i%3 == 0 {
			folder = "Archive"
		}
		e.fake.Mailboxes["ann@example.test"] = append(e.fake.Mailboxes["ann@example.test"],
			admin.Message{ID: fmt.Sprint(i), Folder: folder, Size: int64(100 * i), Received: t0.Add(timeStep(i)), From: "x@example.net", Subject: fmt.Sprint("m", i)})
	}
	e.fake.Unlock()
	c := admin.NewClient(e.srv.URL, "")
	ctx := t.Context()

	inbox, err := c.QueryMessages(ctx, "ann@example.test", admin.MessageQuery{Folder: "INBOX"})
	if err != nil || !slices.Equal(ids(inbox), []string{"1", "2", "4", "5", "7"}) {
		t.Fatalf("INBOX: %v, %v", ids(inbox), err)
	}
	page, err := c.QueryMessages(ctx, "ann@example.test", admin.MessageQuery{Newest: true, Offset: 2, Limit: 3})
	if err != nil || !slices.Equal(ids(page), []string{"5", "4", "3"}) {
		t.Fatalf("newest first, offset 2, limit 3: %v, %v", ids(page), err)
	}
	r := e.do("GET", "/api/v1/accounts/ann@example.test/messages?folder=Archive&limit=1", "")
	if r.status != 200 || r.header.Get("X-Total-Count") != "2" {
		t.Errorf("Archive, one per page: %d, X-Total-Count %q, want 200 and 2", r.status, r.header.Get("X-Total-Count"))
	}
	for _, q := range []string{"offset=-1", "limit=x", "limit=100000", "order=sideways"} {
		if r := e.do("GET", "/api/v1/accounts/ann@example.test/messages?"+q, ""); r.status != 400 {
			t.Errorf("?%s: %d, want 400", q, r.status)
		}
	}
	if _, err := c.QueryMessages(ctx, "ann@example.test", admin.MessageQuery{Folder: "Nope"}); apiStatus(err) != 404 {
		t.Errorf("no such folder: %v, want 404", err)
	}

	fs, err := c.Folders(ctx, "ann@example.test")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string][2]int64{}
	for _, f := range fs {
		counts[f.Name] = [2]int64{f.Messages, f.Unseen}
	}
	if counts["INBOX"] != [2]int64{5, 5} || counts["Archive"] != [2]int64{2, 2} || len(fs) != 6 {
		t.Errorf("folders %+v", fs)
	}

	if err := c.MoveMessage(ctx, "ann@example.test", "1", "Archive"); err != nil {
		t.Fatal(err)
	}
	if err := c.FlagMessage(ctx, "ann@example.test", "2", []string{`\Seen`, `\Flagged`}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.FlagMessage(ctx, "ann@example.test", "2", nil, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMessage(ctx, "ann@example.test", "4"); err != nil {
		t.Fatal(err)
	}
	all, err := c.Messages(ctx, "ann@example.test")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]admin.Message{}
	for _, m := range all {
		got[m.ID] = m
	}
	if _, ok := got["4"]; ok || got["1"].Folder != "Archive" || !slices.Equal(got["2"].Flags, []string{`\Seen`}) {
		t.Errorf("after move, flags and delete: %+v", all)
	}
	for name, err := range map[string]error{
		"move to no folder":     c.MoveMessage(ctx, "ann@example.test", "2", "Nope"),
		"move no message":       c.MoveMessage(ctx, "ann@example.test", "99", "INBOX"),
		"delete no message":     c.DeleteMessage(ctx, "ann@example.test", "4"),
		"flags of no account":   c.FlagMessage(ctx, "ghost@example.test", "1", []string{`\Seen`}, nil),
		"folders of no account": func() error { _, err := c.Folders(ctx, "ghost@example.test"); return err }(),
	} {
		if apiStatus(err) != http.StatusNotFound {
			t.Errorf("%s: %v, want 404", name, err)
		}
	}
	if r := e.do("POST", "/api/v1/accounts/ann@example.test/messages/2/move", `{"folder":""}`); r.status != 400 {
		t.Errorf("move without a folder: %d, want 400", r.status)
	}
}

func timeStep(i int) time.Duration { return time.Duration(i) * time.Minute }
