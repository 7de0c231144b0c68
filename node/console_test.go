package node_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/browser"
	"github.com/homing-mail/homing/testkit/wait"
)

// consoleNode starts a `homing serve` process whose retries wait an hour
// (a deferred message stays deferred while the test looks at it), with
// the account alice@example.test and full@example.test, whose quota of one
// byte defers every message for it (4.2.2). A process rather than a node
// in this process: the browser and the node need the cores, and the
// node is not slowed by this binary's race detector.
func consoleNode(t *testing.T) (*testkit.Process, *admin.Client) {
	t.Helper()
	p := testkit.StartProcess(t, homingBin, "n1", "--retry-min", "1h", "--retry-max", "1h", "--partitions", "4")
	c := admin.NewClient(p.Admin, "")
	createAccount(t, c, "alice@example.test", "pw-for-tests-123", 0)
	createAccount(t, c, "full@example.test", "pw-for-tests-123", 1)
	return p, c
}

// openNodeConsole opens the console of node n in a tab of b.
func openNodeConsole(t *testing.T, b context.Context, n *testkit.Process) *browser.Page {
	t.Helper()
	return browser.Open(t, b, "http://"+n.Admin+"/console/", `document.getElementById('cluster-members') !== null`)
}

// The console against a real node (issue #12 item 6): the history of the
// last 24 hours is the node's (the same after a reload), a queued
// message links to its journey, the delivery log is tailed live, and
// accounts, aliases and domains are managed from it; a queue-mode switch
// asks first.
func TestConsoleAgainstARealNode(t *testing.T) {
	n, c := consoleNode(t)
	ctx := context.Background()
	if _, err := testkit.Send(n.SMTP, "x@remote.test", []string{"alice@example.test"}, testkit.Message("x@remote.test", "alice@example.test", "hi", "hi")); err != nil {
		t.Fatal(err)
	}
	reply, err := testkit.Send(n.SMTP, "x@remote.test", []string{"full@example.test"}, testkit.Message("x@remote.test", "full@example.test", "big", "too big"))
	if err != nil {
		t.Fatal(err)
	}
	deferred := reply[strings.LastIndexByte(reply, ' ')+1:]
	wait.For(t, 10*time.Second, func() bool {
		e, err := c.QueueEntry(ctx, deferred)
		return err == nil && e.State == "deferred"
	}, "%s deferred", deferred)

	b := browser.Start(t)
	p := openNodeConsole(t, b, n)

	// The last 24 hours, from the node.
	p.WaitFor("two messages in and one queued in the charts",
		`Number(document.getElementById('throughput-chart').dataset.totalIn) === 2 &&
		 Number(document.getElementById('throughput-chart').dataset.totalDelivered) === 1 &&
		 document.getElementById('depth-chart').dataset.last === '1' &&
		 document.getElementById('depth-chart').dataset.nodes === 'n1'`)
	p.Run(chromedp.Reload())
	p.WaitFor("the same picture after a reload",
		`Number(document.getElementById('throughput-chart').dataset.totalIn) === 2 &&
		 document.getElementById('depth-chart').dataset.last === '1'`)

	// The queue row links to the journey.
	row := `#queue tr[data-queue-id="` + deferred + `"]`
	p.WaitVisible(row)
	p.Click(row + ` button[data-journey]`)
	// Mail from outside is checked (SPF, DKIM, DMARC) before it is queued.
	p.WaitFor("the journey of the deferred message", `Array.from(document.querySelectorAll('#journey li.event'), e => e.dataset.event).join(',') === 'checked,queued,deferred'`)

	// The delivery log, live.
	p.WaitFor("its lines in the live log", `Array.from(document.querySelectorAll('#log-lines li[data-queue-id="`+deferred+`"]'), l => l.textContent).join('\n').includes('status=deferred')`)

	// An account: the policy's refusal is shown, then it is created,
	// given a password, a quota, and disabled (after a confirmation).
	p.TypeInto("#create-address", "carol@example.test")
	p.TypeInto("#create-password", "carol")
	p.Click(`#create-form button[type="submit"]`)
	p.WaitFor("the policy's refusal", `document.getElementById('create-status').textContent.includes('at least 8 characters')`)
	p.TypeInto("#create-password", "a-good-password-1")
	p.Click(`#create-form button[type="submit"]`)
	p.WaitFor("the account created and shown", `document.getElementById('create-status').textContent.includes('Created carol@example.test') &&
		document.querySelector('#account [data-field="address"] dd')?.textContent === 'carol@example.test'`)
	p.TypeInto("#password-input", "another-password-2")
	p.Click(`#password-form button[type="submit"]`)
	p.WaitFor("the password changed", `document.getElementById('account-status').textContent.includes('password changed')`)
	if _, err := c.Submit(ctx, "carol@example.test", "another-password-2", []string{"alice@example.test"}, []byte("Subject: s\r\n\r\nhi\r\n")); err != nil {
		t.Errorf("the password set in the console: %v", err)
	}
	p.TypeInto("#quota-input", "2M")
	p.Click(`#quota-form button[type="submit"]`)
	p.WaitFor("the quota shown", `document.querySelector('#account [data-field="storage"] dd').textContent.includes('of 2.0 MiB')`)
	p.Click("#account-toggle")
	p.WaitVisible("#confirm-dialog")
	p.Click("#confirm-ok")
	p.WaitFor("the account disabled", `document.querySelector('#account [data-field="state"] dd').textContent.startsWith('disabled')`)
	if a, err := c.Account(ctx, "carol@example.test"); err != nil || a.QuotaBytes != 2<<20 || !a.Disabled {
		t.Errorf("the node holds %+v, %v; want a quota of 2 MiB and disabled", a, err)
	}

	// An alias and a domain.
	p.TypeInto("#alias-input", "postmaster@example.test")
	p.TypeInto("#alias-target", "alice@example.test")
	p.Click(`#alias-form button[type="submit"]`)
	p.WaitFor("the alias listed", `document.querySelector('#aliases-body tr[data-alias="postmaster@example.test"]') !== null`)
	p.TypeInto("#domain-input", "example.org")
	p.Click(`#domain-form button[type="submit"]`)
	p.WaitFor("the domain listed", `document.querySelector('#domains li[data-domain="example.org"]') !== null`)
	if ds, err := c.Domains(ctx); err != nil || len(ds) != 2 {
		t.Errorf("the node's domains: %+v, %v", ds, err)
	}
	if as, err := c.Aliases(ctx); err != nil || len(as) != 1 || as[0].Target != "alice@example.test" {
		t.Errorf("the node's aliases: %+v, %v", as, err)
	}
	// What the administrator did is in the live log.
	p.WaitFor("the admin actions in the live log", `Array.from(document.querySelectorAll('#log-lines li[data-event="admin"]'), l => l.textContent).join('\n').includes('action=add domain, object=example.org')`)

	// The queue mode changes only after a confirmation.
	sel := `#cluster select.mode-select[data-node="n1"]`
	p.WaitFor("the mode select", `document.querySelector('`+sel+`')?.value === 'locally'`)
	p.Run(chromedp.SetValue(chromedp.CSS(sel), "locally-for-others"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('`+sel+`').dispatchEvent(new Event('change'))`))
	p.WaitVisible("#confirm-dialog")
	if s, _ := c.Settings(ctx); s.QueueMode != "locally" {
		t.Fatalf("the mode changed before the confirmation: %s", s.QueueMode)
	}
	p.Click("#confirm-ok")
	wait.For(t, 10*time.Second, func() bool {
		s, err := c.Settings(ctx)
		return err == nil && s.QueueMode == "locally-for-others"
	}, "the node in mode locally-for-others")
}

// A queue of 10,000 messages on a real node stays one screen: the console
// shows it a page at a time, searchable, and the screenshot of the whole
// page is no taller than with an empty queue would make it.
func TestConsoleTenThousandMessageQueue(t *testing.T) {
	const total = 10_000
	src, err := exec.LookPath("smtp-source")
	if err != nil {
		t.Fatalf("this test needs Postfix's smtp-source (.ci/run installs postfix): %v", err)
	}
	n, c := consoleNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, src, "-s", "8", "-m", fmt.Sprint(total), "-l", "200", "-f", "load@remote.test",
		"-t", "full@example.test", n.SMTP).CombinedOutput()
	if err != nil {
		t.Fatalf("smtp-source: %v: %s", err, out)
	}
	wait.For(t, 5*time.Minute, func() bool {
		s, err := c.Stats(ctx)
		return err == nil && s.QueueDepth == total
	}, "%d messages in the queue", total)
	q, err := c.Queue(ctx)
	if err != nil || len(q) != total {
		t.Fatalf("queue: %d entries, %v", len(q), err)
	}
	someone := q[total/2].ID

	b := browser.Start(t)
	p := openNodeConsole(t, b, n)
	p.WaitForWithin(30*time.Second, "the first page of 10,000", `document.getElementById('queue-page').textContent === '1–20 of 10000' &&
		document.querySelectorAll('#queue-body tr[data-queue-id]').length === 20`)
	fits := browser.Eval[bool](p, `(() => {
		const r = document.getElementById('queue').closest('section').getBoundingClientRect();
		return r.height <= window.innerHeight;
	})()`)
	if !fits {
		t.Errorf("the queue card is %v px high, more than one screen (%v px)",
			browser.Eval[float64](p, `document.getElementById('queue').closest('section').getBoundingClientRect().height`),
			browser.Eval[float64](p, `window.innerHeight`))
	}
	p.Click("#queue-next")
	p.WaitForWithin(30*time.Second, "the second page", `document.getElementById('queue-page').textContent === '21–40 of 10000' && !document.getElementById('queue-prev').disabled`)

	// Searchable: by id, by state, by recipient.
	search := func(text string) {
		p.Run(chromedp.SetValue(chromedp.CSS("#queue-search"), text),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('queue-search').dispatchEvent(new Event('input'))`))
	}
	search(someone)
	p.WaitForWithin(30*time.Second, "the one message found by its id", `document.getElementById('queue-page').textContent === '1–1 of 1' &&
		document.querySelector('#queue-body tr[data-queue-id]').dataset.queueId === '`+someone+`'`)
	search("full@example")
	p.WaitForWithin(30*time.Second, "every message found by its recipient", `document.getElementById('queue-page').textContent === '1–20 of 10000'`)
	p.Run(chromedp.SetValue(chromedp.CSS("#queue-state"), "held"), chromedp.Evaluate[chromedp.Void](`document.getElementById('queue-state').dispatchEvent(new Event('change'))`))
	p.WaitForWithin(30*time.Second, "no held message", `document.getElementById('queue-count').textContent === '0 message(s) match'`)
	p.Run(chromedp.SetValue(chromedp.CSS("#queue-state"), "deferred"), chromedp.Evaluate[chromedp.Void](`document.getElementById('queue-state').dispatchEvent(new Event('change'))`))
	p.WaitForWithin(30*time.Second, "every message deferred", `document.getElementById('queue-page').textContent === '1–20 of 10000'`)

	// The screenshot: the whole page, one queue page tall.
	sctx, scancel := browser.WithLimit(p)
	defer scancel()
	shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if h := img.Bounds().Dy(); h > 4000 {
		t.Errorf("the page with 10,000 queued messages is %d px high, want it to stay about a page per card (at most 4000)", h)
	}
	path := filepath.Join(t.TempDir(), "console-10000.png")
	if env := os.Getenv("HOMING_CONSOLE_SCREENSHOT"); env != "" {
		path = env
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %dx%d: %s", img.Bounds().Dx(), img.Bounds().Dy(), path)
}
