package actors

import (
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// The queue policy, a pure function of one attempt's result and the
// recipient's history: what each result means, for how long, and which
// status the recipient keeps.
func TestPolicy(t *testing.T) {
	cfg := Config{
		MinBackoff:       time.Minute,
		MaxBackoff:       10 * time.Minute,
		MaxLifetime:      48 * time.Hour,
		OverQuotaTimeout: 24 * time.Hour,
		LocalRetry:       30 * time.Second,
	}.WithDefaults()
	received := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := received.Add(time.Hour)
	noAnswer := mail.Temp(mail.StatusNoAnswer, "no answer from host")
	full := mail.Result{Code: 452, Status: mail.StatusMailboxFull, Text: "mailbox full"}

	for _, c := range []struct {
		name      string
		res       mail.Result
		at        time.Time
		attempts  int
		firstTemp time.Time // zero: at
		local     bool
		want      decision
	}{
		{name: "delivered", res: mail.Delivered("stored"), attempts: 1,
			want: decision{verdict: delivered, status: mail.StatusOK}},
		{name: "delivered remote", res: mail.Result{Code: 250, Status: mail.StatusOK, Text: "ok", RemoteMTA: "mx"}, attempts: 3,
			want: decision{verdict: delivered, status: mail.StatusOK}},

		// 4xx: the backoff doubles per attempt from MinBackoff, capped at
		// MaxBackoff.
		{name: "deferred after 1 attempt", res: noAnswer, attempts: 1,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(time.Minute)}},
		{name: "deferred after 2 attempts", res: noAnswer, attempts: 2,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(2 * time.Minute)}},
		{name: "deferred after 3 attempts", res: noAnswer, attempts: 3,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(4 * time.Minute)}},
		{name: "deferred after 4 attempts", res: noAnswer, attempts: 4,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(8 * time.Minute)}},
		{name: "deferred after 5 attempts: MaxBackoff", res: noAnswer, attempts: 5,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(10 * time.Minute)}},
		{name: "deferred after 30 attempts: MaxBackoff", res: noAnswer, attempts: 30,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(10 * time.Minute)}},

		// A local recipient whose backend did not answer (4.4.x) is
		// retried after at most LocalRetry; a remote one keeps the
		// backoff, and so does a local one failing otherwise.
		{name: "local 4.4.1 capped at LocalRetry", res: noAnswer, attempts: 3, local: true,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(30 * time.Second)}},
		{name: "local 4.4.3 capped at LocalRetry", res: mail.Temp(mail.StatusDirectoryFailure, "mailbox server temporarily unavailable"), attempts: 1, local: true,
			want: decision{verdict: deferred, status: mail.StatusDirectoryFailure, reason: "451 4.4.3 mailbox server temporarily unavailable", next: at.Add(30 * time.Second)}},
		{name: "remote 4.4.1 not capped", res: noAnswer, attempts: 3, local: false,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(4 * time.Minute)}},
		{name: "local 4.3.0 not capped", res: mail.Temp(mail.StatusLocalError, "mailbox temporarily unavailable"), attempts: 3, local: true,
			want: decision{verdict: deferred, status: mail.StatusLocalError, reason: "451 4.3.0 mailbox temporarily unavailable", next: at.Add(4 * time.Minute)}},

		// MaxLifetime: a temporary failure of a message queued that long
		// fails the recipient with 5.4.7.
		{name: "just before MaxLifetime", res: noAnswer, at: received.Add(48*time.Hour - time.Second), attempts: 20,
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host",
				next: received.Add(48*time.Hour - time.Second + 10*time.Minute)}},
		{name: "expired at MaxLifetime", res: noAnswer, at: received.Add(48 * time.Hour), attempts: 20,
			want: decision{verdict: expired, status: "5.4.7", reason: "delivery time expired: 451 4.4.1 no answer from host"}},
		{name: "expired after MaxLifetime", res: noAnswer, at: received.Add(72 * time.Hour), attempts: 20, local: true,
			want: decision{verdict: expired, status: "5.4.7", reason: "delivery time expired: 451 4.4.1 no answer from host"}},

		// A full mailbox (4.2.2) is deferred until it has been full for
		// OverQuotaTimeout, then failed with 5.2.2.
		{name: "4.2.2 before OverQuotaTimeout", res: full, attempts: 2, local: true, firstTemp: at.Add(-24*time.Hour + time.Second),
			want: decision{verdict: deferred, status: mail.StatusMailboxFull, reason: "452 4.2.2 mailbox full", next: at.Add(2 * time.Minute)}},
		{name: "4.2.2 at OverQuotaTimeout", res: full, attempts: 9, local: true, firstTemp: at.Add(-24 * time.Hour),
			want: decision{verdict: overQuota, status: "5.2.2", reason: "mailbox full: 452 4.2.2 mailbox full"}},
		{name: "4.2.2 from a remote MTA after OverQuotaTimeout", res: mail.Temp(mail.StatusMailboxFull, "over quota"), attempts: 9,
			firstTemp: at.Add(-25 * time.Hour),
			want:      decision{verdict: overQuota, status: "5.2.2", reason: "mailbox full: 451 4.2.2 over quota"}},
		{name: "another 4xx long after the first failure", res: noAnswer, attempts: 2, firstTemp: at.Add(-25 * time.Hour),
			want: decision{verdict: deferred, status: mail.StatusNoAnswer, reason: "451 4.4.1 no answer from host", next: at.Add(2 * time.Minute)}},

		// 5xx: failed, the status kept when it is permanent, made
		// permanent when the reply came with a transient one.
		{name: "5xx kept", res: mail.Result{Code: 550, Status: mail.StatusNoSuchUser, Text: "user unknown", RemoteMTA: "mx"}, attempts: 1,
			want: decision{verdict: failed, status: mail.StatusNoSuchUser, reason: "550 5.1.1 user unknown"}},
		{name: "5xx with a 5.2.2 kept", res: mail.Result{Code: 552, Status: mail.StatusMailboxFullPerm, Text: "full"}, attempts: 1,
			want: decision{verdict: failed, status: "5.2.2", reason: "552 5.2.2 full"}},
		{name: "5xx with a 4.x.y status made permanent", res: mail.Result{Code: 554, Status: "4.7.1", Text: "policy"}, attempts: 1,
			want: decision{verdict: failed, status: "5.7.1", reason: "554 4.7.1 policy"}},
		{name: "5xx without a status", res: mail.Result{Code: 550, Text: "no"}, attempts: 1,
			want: decision{verdict: failed, status: mail.StatusPermFailure, reason: "550 no"}},
		{name: "5xx past MaxLifetime is failed, not expired", res: mail.Perm(mail.StatusRefused, "refused"), at: received.Add(72 * time.Hour), attempts: 1,
			want: decision{verdict: failed, status: mail.StatusRefused, reason: "550 5.7.1 refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			when := c.at
			if when.IsZero() {
				when = at
			}
			first := c.firstTemp
			if first.IsZero() {
				first = when
			}
			got := cfg.policy(c.res, when, c.attempts, first, received, c.local)
			if got != c.want {
				t.Errorf("policy(%v, attempts %d, local %v) =\n  %+v (%s), want\n  %+v (%s)", c.res, c.attempts, c.local,
					got, got.verdict, c.want, c.want.verdict)
			}
			if st := got.state(); st.Final() != (got.verdict != deferred) {
				t.Errorf("state %s for verdict %s", st, got.verdict)
			}
		})
	}
}
