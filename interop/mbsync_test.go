package interop

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// mbsync runs isync's mbsync with a configuration the test writes: the
// account's folders on the node over plain IMAP on loopback (SSLType None
// and AuthMechs LOGIN: the server takes a password from loopback without
// TLS) and a Maildir in a temporary directory, synced both ways with
// creation and expunge on both sides; SyncState * keeps mbsync's state in
// each Maildir folder.
type mbsync struct {
	t       *testing.T
	rc      string
	maildir string
}

func newMbsync(t *testing.T, imapAddr, user, password string) *mbsync {
	t.Helper()
	if _, err := exec.LookPath("mbsync"); err != nil {
		t.Fatalf("mbsync is needed (Debian's isync; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	m := &mbsync{t: t, rc: filepath.Join(dir, "mbsyncrc"), maildir: filepath.Join(dir, "mail")}
	if err := os.Mkdir(m.maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf(`IMAPAccount homing
Host 127.0.0.1
Port %d
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore far
Account homing

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel homing
Far :far:
Near :near:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
`, port(t, imapAddr), user, password, m.maildir, m.maildir)
	if err := os.WriteFile(m.rc, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// run syncs once and fails unless mbsync exits 0. It returns the commands
// mbsync sent to the server (-Dn traces the protocol: ">>> TAG COMMAND").
func (m *mbsync) run() []string {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mbsync", "-Dn", "-c", m.rc, "homing").CombinedOutput()
	if err != nil {
		m.t.Fatalf("mbsync: %v\n%s", err, lastLines(string(out), 60))
	}
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), ">>> "); ok {
			if _, cmd, ok := strings.Cut(l, " "); ok {
				cmds = append(cmds, cmd)
			}
		}
	}
	if len(cmds) == 0 {
		m.t.Fatalf("mbsync sent no command?\n%s", lastLines(string(out), 60))
	}
	return cmds
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// state is a mailbox seen from one side: Message-ID -> flags as Maildir
// letters (D draft, F flagged, R answered, S seen, T deleted), sorted.
type state map[string]string

// maildirFolder reads a Maildir folder: each message's Message-ID and the
// flags of its file name, and its files' names.
func (m *mbsync) maildirFolder(folder string) (st state, paths map[string]string) {
	m.t.Helper()
	st, paths = state{}, map[string]string{}
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(m.maildir, folder, sub)
		ents, err := os.ReadDir(dir)
		if err != nil {
			m.t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			id := messageIDOf(m.t, p)
			if _, dup := st[id]; dup {
				m.t.Fatalf("Maildir %s holds %s twice", folder, id)
			}
			_, flags, _ := strings.Cut(e.Name(), ":2,")
			st[id], paths[id] = sortFlags(flags), p
		}
	}
	return st, paths
}

func messageIDOf(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() && sc.Text() != "" {
		if v, ok := strings.CutPrefix(sc.Text(), "Message-ID: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no Message-ID", path)
	return ""
}

func sortFlags(f string) string {
	b := []byte(f)
	slices.Sort(b)
	return string(slices.Compact(b))
}

var letterOf = map[imap.Flag]byte{imap.FlagDraft: 'D', imap.FlagFlagged: 'F', imap.FlagAnswered: 'R', imap.FlagSeen: 'S', imap.FlagDeleted: 'T'}

func imapFlagsOf(letters string) []imap.Flag {
	var fs []imap.Flag
	for f, l := range letterOf {
		if strings.IndexByte(letters, l) >= 0 {
			fs = append(fs, f)
		}
	}
	return fs
}

// serverFolder reads a folder over IMAP: Message-ID -> flags, and
// Message-ID -> UID.
func serverFolder(t *testing.T, c *imapclient.Client, folder string) (state, map[string]imap.UID) {
	t.Helper()
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	st, uids := state{}, map[string]imap.UID{}
	if sel.NumMessages == 0 {
		return st, uids
	}
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != int(sel.NumMessages) {
		t.Fatalf("FETCH 1:* of %s: %d messages, SELECT said %d", folder, len(msgs), sel.NumMessages)
	}
	for _, msg := range msgs {
		id := "<" + msg.Envelope.MessageID + ">"
		if _, dup := st[id]; dup {
			t.Fatalf("the server's %s holds %s twice", folder, id)
		}
		var l []byte
		for _, f := range msg.Flags {
			if b, ok := letterOf[f]; ok {
				l = append(l, b)
			} else {
				t.Fatalf("%s has flag %s, which the test never set", id, f)
			}
		}
		st[id], uids[id] = sortFlags(string(l)), msg.UID
	}
	return st, uids
}

func allSeq() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}

// diff names the differences of two states, at most a few.
func diff(a, b state, aName, bName string) string {
	var out []string
	keys := slices.Sorted(maps.Keys(a))
	for _, k := range keys {
		if v, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("%s only in %s (flags %q)", k, aName, a[k]))
		} else if v != a[k] {
			out = append(out, fmt.Sprintf("%s: %s %q, %s %q", k, aName, a[k], bName, v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s only in %s (flags %q)", k, bName, b[k]))
		}
	}
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("... %d differences in all", len(out)))
	}
	return strings.Join(out, "\n")
}

func mbsyncMessage(id, subject string) string {
	return "From: Sender <sender@remote.test>\r\n" +
		"To: reader@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Thu, 02 Jan 2025 03:04:05 +0000\r\n" +
		"Message-ID: " + id + "\r\n" +
		"\r\n" +
		"The body of " + subject + ".\r\n" + strings.Repeat("A line to give the message some size.\r\n", len(id)%20)
}

// TestMbsyncTwoWaySyncConverges: a 1,000-message INBOX on a real node is
// synced by mbsync to an empty Maildir (every message, its flags and the
// special-use folders arrive); then both sides change: in the Maildir
// files are renamed with other flags, removed and added, and over IMAP
// flags are stored, messages expunged and appended, and some messages get
// a different flag on each side. The second sync converges: both sides
// hold the same messages with the same flags, which are the changes of
// both sides together. A third sync changes nothing: mbsync sends no
// command that changes the mailbox, and its state files, the Maildir and
// the server's folders are as they were.
func TestMbsyncTwoWaySyncConverges(t *testing.T) {
	const user, pass = "reader@example.test", "two-way-sync-pw-1"
	n := startNode(t, "mbsync")
	n.createAccount(t, user, pass)

	const total = 1000
	msgs := make([]string, total)
	flags := make([][]imap.Flag, total)
	want := state{}
	ids := make([]string, total)
	for i := range msgs {
		ids[i] = fmt.Sprintf("<m%04d@interop.test>", i)
		msgs[i] = mbsyncMessage(ids[i], fmt.Sprintf("message %d", i))
		var l string
		if i%3 == 0 {
			l += "S"
		}
		if i%7 == 0 {
			l += "F"
		}
		if i%11 == 0 {
			l += "R"
		}
		if i%101 == 0 {
			l += "D"
		}
		flags[i], want[ids[i]] = imapFlagsOf(l), sortFlags(l)
	}
	start := time.Now()
	n.appendMany(t, user, pass, "INBOX", msgs, flags, 4)
	t.Logf("%d APPENDs in %v", total, time.Since(start))

	m := newMbsync(t, n.p.IMAP, user, pass)
	start = time.Now()
	m.run()
	t.Logf("first sync in %v", time.Since(start))
	near, paths := m.maildirFolder("INBOX")
	if d := diff(want, near, "the server", "the Maildir"); d != "" {
		t.Fatalf("after the first sync:\n%s", d)
	}
	for _, f := range []string{"Archive", "Drafts", "Junk", "Sent", "Trash"} {
		if _, err := os.Stat(filepath.Join(m.maildir, f, "cur")); err != nil {
			t.Errorf("the special-use folder %s was not created in the Maildir: %v", f, err)
		}
	}

	// Changes in the Maildir, as a mail reader makes them: a file's flags
	// are in its name (renamed into cur/), a deleted message's file is
	// removed, a new message is written to tmp/ and renamed into new/ or
	// cur/.
	setNear := func(i int, letters string) {
		p := paths[ids[i]]
		base, _, _ := strings.Cut(filepath.Base(p), ":2,")
		np := filepath.Join(m.maildir, "INBOX", "cur", base+":2,"+sortFlags(letters))
		if err := os.Rename(p, np); err != nil {
			t.Fatal(err)
		}
		want[ids[i]] = sortFlags(letters)
	}
	for i := 100; i < 150; i++ { // flagged
		setNear(i, want[ids[i]]+"F")
	}
	for i := 150; i < 200; i++ { // seen ones made unseen, others seen
		if strings.Contains(want[ids[i]], "S") {
			setNear(i, strings.ReplaceAll(want[ids[i]], "S", ""))
		} else {
			setNear(i, want[ids[i]]+"S")
		}
	}
	for i := 200; i < 210; i++ { // drafts, and every flag cleared
		setNear(i, "D")
	}
	for i := 210; i < 220; i++ {
		setNear(i, "")
	}
	for i := 250; i < 280; i++ { // deleted
		if err := os.Remove(paths[ids[i]]); err != nil {
			t.Fatal(err)
		}
		delete(want, ids[i])
	}
	for i := 0; i < 10; i++ { // new, half of them seen
		id := fmt.Sprintf("<near%d@interop.test>", i)
		name := fmt.Sprintf("%d.interop_%d.near", time.Now().Unix(), i)
		tmp := filepath.Join(m.maildir, "INBOX", "tmp", name)
		if err := os.WriteFile(tmp, []byte(mbsyncMessage(id, fmt.Sprintf("near %d", i))), 0o600); err != nil {
			t.Fatal(err)
		}
		dst, letters := filepath.Join(m.maildir, "INBOX", "new", name), ""
		if i%2 == 1 {
			letters = "S"
			dst = filepath.Join(m.maildir, "INBOX", "cur", name+":2,S")
		}
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
		want[id] = letters
	}

	// Changes on the server, over IMAP.
	c := n.login(t, user, pass)
	_, uids := serverFolder(t, c, "INBOX")
	uidSet := func(from, to int) imap.UIDSet {
		var s imap.UIDSet
		for i := from; i < to; i++ {
			s.AddNum(uids[ids[i]])
		}
		return s
	}
	store := func(from, to int, op imap.StoreFlagsOp, fs ...imap.Flag) {
		t.Helper()
		if err := c.Store(uidSet(from, to), &imap.StoreFlags{Op: op, Silent: true, Flags: fs}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			l := want[ids[i]]
			for _, f := range fs {
				if op == imap.StoreFlagsAdd {
					l += string(letterOf[f])
				} else {
					l = strings.ReplaceAll(l, string(letterOf[f]), "")
				}
			}
			want[ids[i]] = sortFlags(l)
		}
	}
	store(500, 550, imap.StoreFlagsAdd, imap.FlagFlagged)
	store(550, 600, imap.StoreFlagsDel, imap.FlagSeen)
	store(600, 650, imap.StoreFlagsAdd, imap.FlagAnswered, imap.FlagSeen)
	store(650, 680, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.UIDExpunge(uidSet(650, 680)).Close(); err != nil {
		t.Fatal(err)
	}
	for i := 650; i < 680; i++ {
		delete(want, ids[i])
	}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("<far%d@interop.test>", i)
		var fs []imap.Flag
		if i%2 == 0 {
			fs = []imap.Flag{imap.FlagSeen, imap.FlagFlagged}
		}
		if _, err := appendMessage(c, "INBOX", mbsyncMessage(id, fmt.Sprintf("far %d", i)), fs, time.Now()); err != nil {
			t.Fatal(err)
		}
		want[id] = sortFlags(map[bool]string{true: "FS"}[i%2 == 0])
	}
	// A different change on each side of the same messages: both count.
	for i := 700; i < 710; i++ {
		setNear(i, want[ids[i]]+"F")
	}
	store(700, 710, imap.StoreFlagsAdd, imap.FlagAnswered)
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	m.run()
	t.Logf("second sync in %v", time.Since(start))
	c = n.login(t, user, pass)
	far, _ := serverFolder(t, c, "INBOX")
	near, _ = m.maildirFolder("INBOX")
	if d := diff(far, near, "the server", "the Maildir"); d != "" {
		t.Fatalf("after the second sync the sides differ:\n%s", d)
	}
	if d := diff(want, far, "the changes", "the server"); d != "" {
		t.Fatalf("after the second sync the mailbox is not what both sides' changes make:\n%s", d)
	}
	if len(far) != total-30-30+10+10 {
		t.Fatalf("%d messages after the second sync, want %d", len(far), total-30-30+10+10)
	}

	// The third sync changes nothing.
	before := m.snapshot(t, c)
	cmds := m.run()
	for _, cmd := range cmds {
		verb := strings.ToUpper(strings.Fields(cmd)[0])
		if verb == "UID" {
			verb += " " + strings.ToUpper(strings.Fields(cmd)[1])
		}
		switch verb {
		case "APPEND", "UID STORE", "STORE", "EXPUNGE", "UID EXPUNGE", "COPY", "UID COPY", "MOVE", "UID MOVE", "CREATE", "DELETE", "RENAME":
			t.Errorf("the third sync sent %q", cmd)
		}
	}
	if after := m.snapshot(t, c); after != before {
		t.Errorf("the third sync changed something:\n%s", lineDiff(before, after))
	}
	t.Logf("the third sync sent %d commands, none of them a change", len(cmds))
}

// lineDiff lists the lines only before has (-) and only after has (+).
func lineDiff(before, after string) string {
	count := map[string]int{}
	for _, l := range strings.Split(before, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(after, "\n") {
		count[l]--
	}
	var out []string
	for _, l := range slices.Sorted(maps.Keys(count)) {
		switch {
		case count[l] > 0:
			out = append(out, "- "+l)
		case count[l] < 0:
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// snapshot is everything a sync could change: the Maildir's file names,
// mbsync's state files, and per server folder its status and each
// message's UID and flags.
func (m *mbsync) snapshot(t *testing.T, c *imapclient.Client) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(m.maildir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(m.maildir, p)
		if fi.IsDir() || strings.HasSuffix(p, ".lock") {
			return nil
		}
		fmt.Fprintln(&b, "file", rel)
		if filepath.Base(p) == ".mbsyncstate" {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	folders, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Mailbox < folders[j].Mailbox })
	for _, f := range folders {
		st, err := c.Status(f.Mailbox, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "folder %s messages %d uidnext %d uidvalidity %d unseen %d\n", f.Mailbox, *st.NumMessages, st.UIDNext, st.UIDValidity, *st.NumUnseen)
		if *st.NumMessages == 0 {
			continue
		}
		if _, err := c.Select(f.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			fs := slices.Clone(msg.Flags)
			slices.Sort(fs)
			fmt.Fprintf(&b, "uid %d %v\n", msg.UID, fs)
		}
	}
	return b.String()
}
