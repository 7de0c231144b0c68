package console

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit/wait"
)

// TestConsoleInChromium drives the console in headless Chromium against a
// fake admin API: one browser, one tab and one fake per subtest.
func TestConsoleInChromium(t *testing.T) {
	browser := startBrowser(t)

	// The subtests wait mostly on the console's own polling (2 s and 5 s),
	// so they run side by side, each in its own tab against its own fake.
	for _, tc := range []struct {
		name string
		test func(*testing.T, context.Context)
	}{
		{"ClusterPictureFollowsMembership", testClusterPicture},
		{"QueueHoldChangesState", testQueueHold},
		{"QueueDeleteAsksFirst", testQueueDelete},
		{"JourneyShowsNodes", testJourney},
		{"AccountLookup", testAccount},
		{"AccountFoldersAndPaging", testAccountPaging},
		{"QueueModeSwitch", testQueueMode},
		{"HistoryCharts", testHistoryCharts},
		{"AdminToken", testToken},
		{"DataIsText", testEscaping},
		{"APIErrorShown", testAPIError},
		{"DamagedPartitionShown", testDamagedPartition},
		{"Screenshot", testScreenshot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, browser)
		})
	}
}

const (
	be1Parts = `#cluster g.member[data-node="be1"] [data-partition]`
	be2Parts = `#cluster g.member[data-node="be2"] [data-partition]`
)

func testClusterPicture(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)

	p.waitFor("three members and be1's four partitions",
		`document.querySelectorAll('#cluster g.member[data-node]').length === 3 &&
		 document.querySelectorAll('`+be1Parts+`').length === 4`)
	names := p.attrs("#cluster g.member", "data-node")
	slices.Sort(names)
	if want := []string{"be1", "be2", "fe1"}; !slices.Equal(names, want) {
		t.Fatalf("members drawn: %q, want %q", names, want)
	}
	if got := p.attrs("#cluster g.member", "data-state"); !slices.Equal(got, []string{"alive", "alive", "alive"}) {
		t.Errorf("member states: %q, want all alive", got)
	}
	if got, want := p.attrs(be1Parts, "data-partition"), []string{"0", "3", "5", "6"}; !slices.Equal(got, want) {
		t.Errorf("be1's partitions: %q, want %q", got, want)
	}
	if got, want := p.attrs(be1Parts, "data-open"), []string{"true", "true", "false", "true"}; !slices.Equal(got, want) {
		t.Errorf("be1's partitions open: %q, want %q (5 is not open)", got, want)
	}
	if got, want := p.texts(be1Parts+" text"), []string{"0", "3", "5", "6"}; !slices.Equal(got, want) {
		t.Errorf("be1's partition labels: %q, want %q", got, want)
	}
	if got, want := p.attrs(be2Parts, "data-partition"), []string{"1", "2", "4", "7"}; !slices.Equal(got, want) {
		t.Errorf("be2's partitions: %q, want %q", got, want)
	}
	if got := p.attrs(`#cluster g.member[data-node="fe1"] [data-partition]`, "data-partition"); len(got) != 0 {
		t.Errorf("frontend fe1 drawn with partitions %q", got)
	}
	fe1 := strings.Join(p.texts(`#cluster g.member[data-node="fe1"] text`), " | ")
	for _, want := range []string{"fe1", "alive", "frontend", "queue 1"} {
		if !strings.Contains(fe1, want) {
			t.Errorf("fe1's box reads %q, missing %q", fe1, want)
		}
	}
	modes := eval[[]string](p, `Array.from(document.querySelectorAll('#cluster select.mode-select'), s => s.dataset.node + '=' + s.value).sort()`)
	if want := []string{"be1=locally", "be2=remotely", "fe1=locally-for-others"}; !slices.Equal(modes, want) {
		t.Errorf("queue-mode selects: %q, want %q", modes, want)
	}

	killed := time.Now()
	api.killBackend("be2")
	p.waitFor("be2 drawn dead",
		`document.querySelector('#cluster g.member[data-node="be2"]').getAttribute('data-state') === 'dead'`)
	seen := time.Since(killed)
	p.waitFor("be2's partitions drawn on be1", `document.querySelectorAll('`+be1Parts+`').length === 8`)
	t.Logf("the picture showed be2 dead %v after the API reported it (the console polls every 2 s)", seen.Round(time.Millisecond))
	if seen > 5*time.Second {
		t.Errorf("the picture took %v to show be2 dead, want a few seconds at most", seen)
	}
	if got := p.attrs(be2Parts, "data-partition"); len(got) != 0 {
		t.Errorf("dead be2 still drawn with partitions %q", got)
	}
	if got, want := p.attrs(be1Parts, "data-open"), []string{"true", "false", "false", "true", "false", "false", "true", "false"}; !slices.Equal(got, want) {
		t.Errorf("be1's partitions open after the move: %q, want %q (moved ones not open yet)", got, want)
	}
	if be2 := strings.Join(p.texts(`#cluster g.member[data-node="be2"] text`), " | "); !strings.Contains(be2, "no answer") {
		t.Errorf("dead be2's box reads %q, want it to say the node gave no answer", be2)
	}
	if !eval[bool](p, `document.querySelector('#cluster select.mode-select[data-node="be2"]').disabled`) {
		t.Error("dead be2's queue mode can still be switched")
	}
}

func testQueueHold(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)

	p.waitFor("both queue entries", `document.querySelectorAll('#queue tr[data-queue-id]').length === 2`)
	rows := eval[[][]string](p, `Array.from(document.querySelectorAll('#queue tr[data-queue-id]'),
		r => [r.dataset.queueId, r.querySelector('td.node').textContent, r.dataset.state, r.cells[2].textContent])`)
	want := [][]string{{idDeferred, "fe1", "deferred", "alice@example.net"}, {idActive, "be2", "active", "<>"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("queue rows (id, node, state, sender): %q, want %q", rows, want)
	}

	row := `#queue tr[data-queue-id="` + idActive + `"]`
	p.click(row + ` button[data-action="hold"]`)
	p.waitFor("the refreshed list to show the entry held", `document.querySelector('`+row+`').dataset.state === 'held'`)
	if got, want := api.callsWith(""), []string{"POST /api/v1/queue/" + idActive + "/hold?node=be2"}; !slices.Equal(got, want) {
		t.Fatalf("requests that change state: %q, want %q", got, want)
	}
	buttons := eval[map[string]bool](p, `Object.fromEntries(Array.from(document.querySelectorAll('`+row+` button[data-action]'), b => [b.dataset.action, b.disabled]))`)
	if !buttons["hold"] || buttons["release"] {
		t.Errorf("held row: hold disabled=%v release disabled=%v, want hold off and release on", buttons["hold"], buttons["release"])
	}
	if got := p.texts(row + " .badge"); !slices.Equal(got, []string{"held"}) {
		t.Errorf("held row's state badge: %q", got)
	}
	if got := p.attrs(`#queue tr[data-queue-id="`+idDeferred+`"]`, "data-state"); !slices.Equal(got, []string{"deferred"}) {
		t.Errorf("the other entry changed too: %q", got)
	}

	p.click(row + ` button[data-action="release"]`)
	p.waitFor("the entry released", `document.querySelector('`+row+`').dataset.state === 'deferred'`)
	if got := api.callsWith("POST /api/v1/queue/" + idActive + "/release?node=be2"); len(got) != 1 {
		t.Errorf("release requests: %q, want one", got)
	}
}

func testQueueDelete(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)
	row := `#queue tr[data-queue-id="` + idDeferred + `"]`
	p.waitVisible(row)

	p.click(row + ` button[data-action="delete"]`)
	p.waitVisible("#confirm-dialog")
	if text := strings.Join(p.texts("#confirm-text"), ""); !strings.Contains(text, idDeferred) || !strings.Contains(text, "fe1") {
		t.Errorf("confirmation reads %q, want the id and the node", text)
	}
	p.click("#confirm-cancel")
	p.waitFor("the dialog to close on Cancel",
		`!document.getElementById('confirm-dialog').open && document.getElementById('queue-status').textContent.includes('Kept')`)
	if got := api.callsWith("DELETE"); len(got) != 0 {
		t.Fatalf("Cancel sent %q", got)
	}

	p.click(row + ` button[data-action="delete"]`)
	p.waitVisible("#confirm-dialog")
	p.click("#confirm-ok")
	p.waitFor("the entry gone from the list", `document.querySelector('`+row+`') === null &&
		document.querySelectorAll('#queue tr[data-queue-id]').length === 1`)
	if got, want := api.callsWith("DELETE"), []string{"DELETE /api/v1/queue/" + idDeferred + "?node=fe1"}; !slices.Equal(got, want) {
		t.Errorf("delete requests: %q, want %q", got, want)
	}
}

func testJourney(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)

	p.typeInto("#journey-input", idDeferred)
	p.click(`#journey-form button[type="submit"]`)
	p.waitFor("four journey events", `document.querySelectorAll('#journey li.event').length === 4`)
	events := eval[[][]string](p, `Array.from(document.querySelectorAll('#journey li.event'),
		li => [li.querySelector('.node-tag').innerText, li.querySelector('.event-name').innerText, li.querySelector('time').textContent])`)
	want := [][]string{
		{"fe1", "received", "2026-03-14 09:26:53.000 UTC"},
		{"fe1", "queued", "2026-03-14 09:26:53.005 UTC"},
		{"fe1", "filtered", "2026-03-14 09:26:53.040 UTC"},
		{"be1", "delivered", "2026-03-14 09:26:53.120 UTC"},
	}
	if !slices.EqualFunc(events, want, slices.Equal) {
		t.Errorf("journey (node, event, time) in order: %q, want %q", events, want)
	}
	if text := eval[string](p, `document.getElementById('journey').innerText`); !strings.Contains(text, "bob@example.test, partition 3") {
		t.Errorf("journey text %q lacks the delivery's detail", text)
	}

	p.typeInto("#journey-input", "Qunknown")
	p.click(`#journey-form button[type="submit"]`)
	p.waitFor("an unknown id reported", `document.getElementById('journey-status').textContent.includes('No journey known for Qunknown') &&
		document.querySelectorAll('#journey li').length === 0`)

	// The id in the queue list is a shortcut to its journey.
	p.click(`#queue button[data-journey="` + idDeferred + `"]`)
	p.waitFor("the journey from the queue list", `document.querySelectorAll('#journey li.event').length === 4 &&
		document.getElementById('journey-input').value === '`+idDeferred+`'`)
}

func testAccount(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)

	p.typeInto("#account-input", "bob@example.test")
	p.click(`#account-form button[type="submit"]`)
	p.waitFor("the account's two messages", `document.querySelectorAll('#account-messages-body tr[data-message-id]').length === 2`)
	facts := eval[map[string]string](p, `Object.fromEntries(Array.from(document.querySelectorAll('#account [data-field]'),
		d => [d.dataset.field, d.querySelector('dd').textContent]))`)
	for field, want := range map[string]string{
		"address": "bob@example.test", "owner": "be1", "partition": "3", "messages": "2",
		"created": "2026-03-12 09:26:53 UTC", "storage": "5.0 KiB used of 10.0 MiB ",
	} {
		if facts[field] != want {
			t.Errorf("account %s shows %q, want %q", field, facts[field], want)
		}
	}
	msgs := eval[[][]string](p, `Array.from(document.querySelectorAll('#account-messages-body tr[data-message-id]'),
		r => Array.from(r.cells, c => c.textContent))`)
	// Newest first.
	want := [][]string{
		{"2", "Archive", "2026-03-14 08:56:53 UTC", "dave@example.org", "Minutes of the meeting", `\Seen`, "2.9 KiB"},
		{"1", "INBOX", "2026-03-14 08:26:53 UTC", "alice@example.net", "Lunch on Friday?", "", "2.1 KiB"},
	}
	if !slices.EqualFunc(msgs, want, slices.Equal) {
		t.Errorf("messages: %q, want %q", msgs, want)
	}

	p.typeInto("#account-input", "nobody@example.test")
	p.click(`#account-form button[type="submit"]`)
	p.waitFor("an unknown account reported", `document.getElementById('account-status').textContent.includes('No such account: nobody@example.test') &&
		document.querySelectorAll('#account [data-field]').length === 0 && document.getElementById('account-messages').hidden`)
}

// testAccountPaging: the account view lists the folders with their
// messages and unseen counts, and the messages newest first a page at a
// time (Older, Newer); a folder's button lists only its messages.
func testAccountPaging(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	api.Lock()
	api.AccountMap["carol@example.test"] = admin.Account{Address: "carol@example.test", Messages: 60, Partition: 1, Owner: "be2"}
	for i := 1; i <= 60; i++ {
		m := admin.Message{ID: fmt.Sprint(i), Folder: "INBOX", Size: 1000, Received: fakeT0.Add(time.Duration(i) * time.Minute),
			From: "list@example.org", Subject: fmt.Sprint("issue ", i)}
		if i%4 == 0 {
			m.Folder = "Lists/go"
		}
		if i%2 == 0 {
			m.Flags = []string{`\Seen`}
		}
		api.Mailboxes["carol@example.test"] = append(api.Mailboxes["carol@example.test"], m)
	}
	api.Unlock()
	p := openConsole(t, browser, api)
	p.typeInto("#account-input", "carol@example.test")
	p.click(`#account-form button[type="submit"]`)
	p.waitFor("the first page and the folders", `document.querySelectorAll('#account-messages-body tr[data-message-id]').length === 25 &&
		document.querySelectorAll('#account-folders-body tr[data-folder]').length === 8`)
	folders := eval[[][]string](p, `Array.from(document.querySelectorAll('#account-folders-body tr[data-folder]'),
		r => Array.from(r.cells, c => c.textContent))`)
	want := [][]string{
		{"All folders", "60", "30", ""}, {"INBOX", "45", "30", ""}, {"Sent", "0", "0", `\Sent`}, {"Drafts", "0", "0", `\Drafts`},
		{"Trash", "0", "0", `\Trash`}, {"Junk", "0", "0", `\Junk`}, {"Archive", "0", "0", `\Archive`}, {"Lists/go", "15", "0", ""},
	}
	if !slices.EqualFunc(folders, want, slices.Equal) {
		t.Errorf("folders: %q, want %q", folders, want)
	}
	ids := func() []string { return p.attrs("#account-messages-body tr[data-message-id]", "data-message-id") }
	if got := ids(); got[0] != "60" || got[24] != "36" {
		t.Errorf("first page %q, want 60 down to 36", got)
	}
	if got := eval[string](p, `document.getElementById('account-page').textContent`); got != "1–25 of 60, newest first" {
		t.Errorf("page line %q", got)
	}
	p.click("#account-older")
	p.waitFor("the second page", `document.querySelector('#account-messages-body tr[data-message-id]')?.dataset.messageId === '35'`)
	p.click("#account-older")
	p.waitFor("the last page", `document.querySelectorAll('#account-messages-body tr[data-message-id]').length === 10 &&
		document.getElementById('account-older').disabled && document.getElementById('account-page').textContent === '51–60 of 60, newest first'`)
	p.click("#account-newer")
	p.waitFor("back to the second page", `document.querySelector('#account-messages-body tr[data-message-id]')?.dataset.messageId === '35'`)

	p.click(`#account-folders-body button[data-folder-button="Lists/go"]`)
	p.waitFor("the folder's messages only", `document.querySelectorAll('#account-messages-body tr[data-message-id]').length === 15 &&
		getComputedStyle(document.getElementById('account-pager')).display === 'none' &&
		document.getElementById('account-messages-caption').textContent === 'Messages in Lists/go'`)
	if got := ids(); got[0] != "60" || got[14] != "4" {
		t.Errorf("Lists/go: %q, want 60, 56, ... 4", got)
	}
	if got := api.callsWith(""); len(got) != 0 {
		t.Errorf("looking changed something: %q", got)
	}
}

func testQueueMode(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)
	sel := `#cluster select.mode-select[data-node="be1"]`
	p.waitFor("be1's mode shown", `document.querySelector('`+sel+`')?.value === 'locally'`)

	// The keyboard, as an operator would: type-ahead picks "Remotely";
	// the console asks first, and a cancel changes nothing.
	p.run(chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), "r"))
	p.waitVisible("#confirm-dialog")
	if text := strings.Join(p.texts("#confirm-text"), ""); !strings.Contains(text, "Switch be1 from Locally to Remotely?") {
		t.Errorf("the confirmation reads %q", text)
	}
	p.click("#confirm-cancel")
	p.waitFor("the switch cancelled", `!document.getElementById('confirm-dialog').open &&
		document.querySelector('`+sel+`').value === 'locally' &&
		document.getElementById('cluster-status').textContent.includes('be1: queue mode left at Locally')`)
	if got := api.callsWith("PUT"); len(got) != 0 {
		t.Fatalf("a cancelled switch sent %q", got)
	}
	p.run(chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), "r"))
	p.waitVisible("#confirm-dialog")
	p.click("#confirm-ok")
	wait.For(t, waitLimit, func() bool { return len(api.callsWith("PUT")) > 0 }, "the PUT of be1's queue mode")
	if got, want := api.callsWith(""), []string{`PUT /api/v1/settings?node=be1 {"queueMode":"remotely"}`}; !slices.Equal(got, want) {
		t.Fatalf("requests that change state: %q, want %q", got, want)
	}
	if got := api.memberMode("be1"); got != "remotely" {
		t.Fatalf("the fake holds be1's mode %q", got)
	}
	p.waitFor("the switch confirmed", `document.getElementById('cluster-status').textContent.includes('be1: queue mode set to Remotely')`)
	p.run(chromedp.Blur(chromedp.CSS(sel)))
	// The box's tooltip is rebuilt from GET /api/v1/cluster on every
	// refresh: the cluster, not the select, now says remotely.
	p.waitFor("the refreshed picture to show the new mode",
		`document.querySelector('#cluster g.member[data-node="be1"] > title').textContent.includes('queue mode: Remotely') &&
		 document.querySelector('`+sel+`').value === 'remotely'`)
	if got := api.memberMode("be2"); got != "remotely" {
		t.Errorf("be2's mode changed to %q", got)
	}
}

// The charts of the last 24 hours draw the nodes' own minutes (GET
// /api/v1/history): the cluster's throughput per series, the queue depth
// of each node.
func testHistoryCharts(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	now := time.Now().UTC().Truncate(time.Minute)
	api.Lock()
	api.HistoryData = []admin.NodeHistory{
		{Node: "fe1", Minutes: []admin.Minute{
			{Time: now.Add(-3 * time.Minute), In: 10, Relayed: 4, Deferred: 2, Queue: 6},
			{Time: now.Add(-2 * time.Minute), In: 30, Relayed: 20, Queue: 16},
			{Time: now, In: 5, Relayed: 1, Queue: 12},
		}},
		{Node: "be1", Minutes: []admin.Minute{
			{Time: now.Add(-2 * time.Minute), Delivered: 25, Queue: 3},
			{Time: now, Delivered: 4, Queue: 2},
		}},
		{Node: "be2", Error: "be2 did not answer"},
	}
	api.Unlock()
	p := openConsole(t, browser, api)
	p.waitFor("the throughput of three minutes", `document.getElementById('throughput-chart').dataset.minutes === '3'`)
	got := eval[map[string]string](p, `Object.fromEntries(Object.entries(document.getElementById('throughput-chart').dataset))`)
	for k, want := range map[string]string{"totalIn": "45", "totalDelivered": "29", "totalRelayed": "25", "totalDeferred": "2",
		"lastIn": "5", "lastDelivered": "4", "max": "50"} {
		if got[k] != want {
			t.Errorf("throughput %s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	if n := eval[int](p, `document.querySelectorAll('#throughput-chart path.series').length`); n != 4 {
		t.Errorf("%d series drawn, want 4", n)
	}
	if text := strings.Join(p.texts("#throughput-now"), ""); text != "Last 24 h: 45 in, 29 delivered, 25 relayed, 2 deferred." {
		t.Errorf("throughput line reads %q", text)
	}
	depth := eval[map[string]string](p, `Object.fromEntries(Object.entries(document.getElementById('depth-chart').dataset))`)
	if depth["nodes"] != "be1,be2,fe1" || depth["last"] != "14" || depth["max"] != "20" {
		t.Errorf("depth chart %v, want nodes be1,be2,fe1, last 14 (12+2), max 20", depth)
	}
	if legend := p.texts("#depth-legend li"); !slices.Equal(legend, []string{"be1", "be2 (no answer)", "fe1"}) {
		t.Errorf("depth legend %q", legend)
	}
	// A minute missing in fe1's series breaks its line.
	d := eval[string](p, `document.querySelector('#depth-chart path[data-node="fe1"]').getAttribute('d')`)
	if strings.Count(d, "M") != 2 || strings.Count(d, "L") != 1 {
		t.Errorf("fe1's depth path %q, want two pieces (the minute before now is missing)", d)
	}
	// Every viewer sees the same: a second tab draws the same numbers.
	q := openConsole(t, browser, api)
	q.waitFor("the same history in another tab", `document.getElementById('throughput-chart').dataset.totalIn === '45'`)
}

func testToken(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	api.token, api.readOnly = "s3cret-admin", "s3cret-read"
	p := openConsole(t, browser, api)

	p.waitVisible("#auth")
	p.waitFor("the token request", `document.getElementById('auth-message').textContent === 'This node requires an admin token.'`)
	if n := eval[int](p, `document.querySelectorAll('#cluster g.member').length`); n != 0 {
		t.Fatalf("%d members drawn without a token", n)
	}

	p.typeInto("#token-input", "wrong")
	p.click(`#token-form button[type="submit"]`)
	p.waitFor("a refused token reported", `!document.getElementById('auth').hidden &&
		document.getElementById('auth-message').textContent.includes('refused this token')`)

	// A read-only token shows everything and changes nothing.
	p.typeInto("#token-input", "s3cret-read")
	p.click(`#token-form button[type="submit"]`)
	p.waitFor("the cluster with the read-only token", `document.getElementById('auth').hidden &&
		document.querySelectorAll('#cluster g.member').length === 3`)
	row := `#queue tr[data-queue-id="` + idActive + `"]`
	p.waitVisible(row)
	p.click(row + ` button[data-action="hold"]`)
	p.waitFor("403 explained", `document.getElementById('queue-status').textContent.includes('forbidden')`)
	if got := p.attrs(row, "data-state"); !slices.Equal(got, []string{"active"}) {
		t.Errorf("entry state after a forbidden hold: %q", got)
	}

	// Forget it, and give the admin token instead.
	p.click("#forget-token")
	p.waitVisible("#auth")
	p.typeInto("#token-input", "s3cret-admin")
	p.click(`#token-form button[type="submit"]`)
	p.waitFor("the form gone", `document.getElementById('auth').hidden`)
	p.click(row + ` button[data-action="hold"]`)
	p.waitFor("the entry held with the admin token", `document.querySelector('`+row+`')?.dataset.state === 'held'`)
	if got := eval[string](p, `sessionStorage.getItem('homing.console.token')`); got != "s3cret-admin" {
		t.Errorf("sessionStorage holds %q", got)
	}
	auth := api.authSeen()
	if !slices.Contains(auth, "Bearer s3cret-admin") || !slices.Contains(auth, "Bearer s3cret-read") || !slices.Contains(auth, "") {
		t.Errorf("Authorization headers seen: %q", slices.Compact(slices.Sorted(slices.Values(auth))))
	}
}

func testAPIError(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)
	p.waitFor("the members", `document.querySelectorAll('#cluster g.member').length === 3`)

	api.setBroken(true)
	p.waitFor("the failure reported and the picture marked stale",
		`document.getElementById('cluster-error').textContent === 'Cluster view unavailable: cluster view timed out (500)' &&
		 document.getElementById('cluster').classList.contains('stale')`)
	if n := eval[int](p, `document.querySelectorAll('#cluster g.member').length`); n != 3 {
		t.Errorf("%d members drawn while the API fails, want the last picture kept", n)
	}
	api.setBroken(false)
	p.waitFor("the error cleared", `document.getElementById('cluster-error').textContent === '' &&
		!document.getElementById('cluster').classList.contains('stale')`)
}

func testEscaping(t *testing.T, browser context.Context) {
	const (
		evilName   = `<img src=x onerror="window.__pwned=1">`
		evilSender = `<script>window.__pwned=2</script>@evil.example`
		evilNode   = `<i>fe1</i>`
		evilDetail = `<img src=x onerror="window.__pwned=3">`
	)
	api := newFakeAPI()
	api.ClusterInfo.Members[0].Name = evilName
	api.QueueList[0].Sender = evilSender
	api.QueueList[0].Node = evilNode
	api.QueueList[0].LastError = `<b>bold</b>`
	api.Journeys[idDeferred][0].Detail = evilDetail
	p := openConsole(t, browser, api)

	p.waitFor("the members and the queue", `document.querySelectorAll('#cluster g.member').length === 3 &&
		document.querySelectorAll('#queue tr[data-queue-id]').length === 2`)
	p.typeInto("#journey-input", idDeferred)
	p.click(`#journey-form button[type="submit"]`)
	p.waitFor("the journey", `document.querySelectorAll('#journey li.event').length === 4`)

	if n := eval[int](p, `document.querySelectorAll('main img, main b, main i, main script').length`); n != 0 {
		t.Errorf("%d elements made from API data", n)
	}
	if got := p.texts(`#cluster g.member[data-node="` + strings.ReplaceAll(evilName, `"`, `\"`) + `"] text.name`); !slices.Equal(got, []string{evilName}) {
		t.Errorf("member name shown as %q, want the raw text", got)
	}
	row := `#queue tr[data-queue-id="` + idDeferred + `"]`
	cells := eval[[]string](p, `Array.from(document.querySelector('`+row+`').cells, c => c.textContent)`)
	if cells[1] != evilNode || cells[2] != evilSender || cells[6] != "<b>bold</b>" {
		t.Errorf("queue row cells %q, want node, sender and error as text", cells)
	}
	if text := eval[string](p, `document.getElementById('journey').textContent`); !strings.Contains(text, evilDetail) {
		t.Errorf("journey text %q lacks the detail as text", text)
	}
	// The odd node name travels URL-encoded and arrives intact.
	p.click(row + ` button[data-action="hold"]`)
	p.waitFor("the entry held", `document.querySelector('`+row+`').dataset.state === 'held'`)
	if got, want := api.callsWith(""), []string{"POST /api/v1/queue/" + idDeferred + "/hold?node=%3Ci%3Efe1%3C%2Fi%3E"}; !slices.Equal(got, want) {
		t.Errorf("hold request %q, want %q", got, want)
	}
	if pwned := eval[bool](p, `window.__pwned !== undefined`); pwned {
		t.Error("API data ran as script")
	}
}

// testScreenshot fills every part of the page, checks that the page loaded
// nothing from anywhere but its own origin, and takes a full-page
// screenshot (kept in the test's temporary directory, or written to
// $HOMING_CONSOLE_SCREENSHOT when set, to look at).
func testScreenshot(t *testing.T, browser context.Context) {
	api := newFakeAPI()
	p := openConsole(t, browser, api)
	p.typeInto("#journey-input", idDeferred)
	p.click(`#journey-form button[type="submit"]`)
	p.typeInto("#account-input", "bob@example.test")
	p.click(`#account-form button[type="submit"]`)
	p.waitFor("every part filled", `document.querySelectorAll('#cluster g.member').length === 3 &&
		document.querySelectorAll('#queue tr[data-queue-id]').length === 2 &&
		document.querySelectorAll('#journey li.event').length === 4 &&
		document.querySelectorAll('#account-messages-body tr[data-message-id]').length === 2 &&
		document.querySelectorAll('#depth-chart path.depth-line').length === 3`)

	// Something to see: a dead backend and a rising queue.
	api.killBackend("be2")
	api.setDepth("be1", 5)
	p.waitFor("be2 dead and a depth of 6 (fe1 1 + be1 5; be2 does not answer)",
		`document.querySelector('#cluster g.member[data-node="be2"]').getAttribute('data-state') === 'dead' &&
		 document.getElementById('depth-now').textContent === '6 message(s) queued now on 2 node(s).'`)

	foreign := eval[[]string](p, `performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin + '/'))`)
	if len(foreign) != 0 {
		t.Errorf("the page loaded from other origins: %q", foreign)
	}

	ctx, cancel := withLimit(p)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 800 {
		t.Errorf("screenshot is %dx%d, want the whole page", b.Dx(), b.Dy())
	}
	path := filepath.Join(t.TempDir(), "console.png")
	if env := os.Getenv("HOMING_CONSOLE_SCREENSHOT"); env != "" {
		path = env
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatalf("writing the screenshot: %v", err)
	}
	t.Logf("screenshot %dx%d: %s", img.Bounds().Dx(), img.Bounds().Dy(), path)
}

// A partition whose data failed to open (damaged files) is drawn apart
// from one that is merely not open yet (a handoff), with the error below
// the cells and in its tooltip, as text.
func testDamagedPartition(t *testing.T, browser context.Context) {
	const why = "open partition 5: storage: partition 5: storage: open /data/accounts/p0005: storage: data damaged: badger crashed reading table 000001.sst: <b>checksumLen</b>"
	api := newFakeAPI()
	api.NodeList[1].Partitions[2] = admin.PartitionStatus{ID: 5, Open: false, Error: why, Damaged: true}
	p := openConsole(t, browser, api)

	p.waitFor("be1's damaged partition drawn", `document.querySelector('`+be1Parts+`[data-partition="5"]') !== null &&
		document.querySelector('`+be1Parts+`[data-partition="5"]').getAttribute('data-error') !== null`)
	if got, want := p.attrs(be1Parts, "class"), []string{"partition open", "partition open", "partition closed failed", "partition open"}; !slices.Equal(got, want) {
		t.Errorf("be1's partition classes: %q, want %q", got, want)
	}
	if got := p.attrs(be1Parts+`[data-partition="5"]`, "data-error"); !slices.Equal(got, []string{why}) {
		t.Errorf("data-error %q, want the partition's error", got)
	}
	if got := p.texts(be1Parts + `[data-partition="5"] title`); len(got) != 1 || !strings.HasSuffix(got[0], ": "+why) {
		t.Errorf("tooltip %q, want it to end with the error", got)
	}
	lines := p.texts(`#cluster g.member[data-node="be1"] text.partition-error`)
	if !slices.Equal(lines, []string{"partition 5: damaged, not openpartition 5: " + why}) {
		t.Errorf("error lines %q, want one for partition 5 (with its tooltip)", lines)
	}
	if n := eval[int](p, `document.querySelectorAll('main b').length`); n != 0 {
		t.Errorf("%d elements made from the error's text", n)
	}
	// be2 has no failed partition and no error line.
	if got := p.texts(`#cluster g.member[data-node="be2"] text.partition-error`); len(got) != 0 {
		t.Errorf("be2 shows error lines %q", got)
	}
	// The box grew to hold the line: it ends below it.
	if !eval[bool](p, `(() => {
		const g = document.querySelector('#cluster g.member[data-node="be1"]');
		return g.querySelector('text.partition-error').getBBox().y + 12 < Number(g.querySelector('rect.box').getAttribute('height'));
	})()`) {
		t.Error("the error line is outside be1's box")
	}
}
