package actorstest_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// The fakes keep the contracts their doc comments state.

func TestPartitionAppendContract(t *testing.T) {
	ctx := context.Background()
	const ann = "ann@example.test"
	p := actorstest.NewPartition(0, storage.Account{Address: "Ann@Example.Test"})
	raw := []byte("Subject: x\r\n\r\nbody\r\n")

	res, durable, err := p.AppendAsync(ctx, ann, storage.AppendRequest{DedupKey: "Q1/ann", Raw: raw, Pending: []string{"R"}})
	if err != nil || res.Duplicate || res.ID == "" || durable == nil || <-durable != nil {
		t.Fatalf("first append = %+v, %v, %v; want a new message, durable", res, durable, err)
	}
	res2, durable, err := p.AppendAsync(ctx, ann, storage.AppendRequest{DedupKey: "Q1/ann", Raw: raw, QuotaBytes: 1})
	if err != nil || !res2.Duplicate || res2.ID != res.ID || !slices.Equal(res2.Pending, []string{"R"}) || durable != nil {
		t.Errorf("repeated append over quota = %+v, %v, %v; want a duplicate of %s with its pending work", res2, durable, err, res.ID)
	}
	if err := <-p.DonePending(ann, "Q1/ann", []string{"R"}); err != nil {
		t.Fatal(err)
	}
	if res3, _ := p.Append(ctx, ann, storage.AppendRequest{DedupKey: "Q1/ann", Raw: raw}); !res3.Duplicate || res3.Pending != nil {
		t.Errorf("append after the work is done = %+v, want a duplicate without pending work", res3)
	}
	if _, err := p.Append(ctx, ann, storage.AppendRequest{DedupKey: "Q2/ann", Raw: raw, QuotaBytes: int64(2*len(raw) - 1)}); !errors.Is(err, storage.ErrOverQuota) {
		t.Errorf("append over quota: %v, want ErrOverQuota", err)
	}
	if p.Deduped(ann, "Q2/ann") {
		t.Error("a refused append left a dedup record")
	}
	res4, err := p.Append(ctx, ann, storage.AppendRequest{DedupKey: "Q3/ann", Discard: true, AutoReplied: []string{"Bob@Remote.Example"}, AutoReplyTTL: 1})
	if err != nil || res4.ID != "" || !p.Deduped(ann, "Q3/ann") {
		t.Errorf("discard = %+v, %v; want no message, a dedup record", res4, err)
	}
	if ok, _ := p.HasAutoReplied(ann, "bob@remote.example"); !ok {
		t.Error("no auto-reply mark")
	}
	if _, err := p.Append(ctx, ann, storage.AppendRequest{Discard: true}); !errors.Is(err, storage.ErrInvalidMessage) {
		t.Errorf("discard without a dedup key: %v, want ErrInvalidMessage", err)
	}
	if _, err := p.Append(ctx, "nobody@example.test", storage.AppendRequest{Raw: raw}); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("append to no account: %v, want ErrNotFound", err)
	}
	if got := p.Stored(ann); len(got) != 1 || got[0].ID != res.ID || got[0].Folder != storage.Inbox {
		t.Errorf("stored %+v, want the first message only, in the inbox", got)
	}
	if err := p.DeleteMessage(ann, res.ID); err != nil || len(p.Stored(ann)) != 0 {
		t.Errorf("DeleteMessage: %v, %d left", err, len(p.Stored(ann)))
	}
	if n := p.AppendCalls(); n != 7 {
		t.Errorf("%d append calls counted, want 7", n)
	}
}

func TestPartitionFailureInjection(t *testing.T) {
	ctx := context.Background()
	const ann = "ann@example.test"
	p := actorstest.NewPartition(0, storage.Account{Address: ann})
	boom := errors.New("boom")
	appendOne := func(k string) error {
		_, err := p.Append(ctx, ann, storage.AppendRequest{DedupKey: k, Raw: []byte("x")})
		return err
	}
	p.FailAppends(2, boom)
	for i, want := range []error{boom, boom, nil} {
		if err := appendOne(string(rune('a' + i))); !errors.Is(err, want) && err != want {
			t.Errorf("append %d: %v, want %v", i+1, err, want)
		}
	}
	p.FailAppendAfter(2, boom)
	if err := appendOne("d"); err != nil {
		t.Errorf("the first append let through: %v", err)
	}
	if err := appendOne("d"); err != nil { // a duplicate is a success too
		t.Errorf("a duplicate: %v", err)
	}
	for i := range 3 {
		if err := appendOne("e"); !errors.Is(err, boom) {
			t.Errorf("append %d after the successful ones: %v, want boom", i+1, err)
		}
	}
	p.FailAppendAfter(-1, nil)
	if err := appendOne("e"); err != nil {
		t.Errorf("after FailAppendAfter(-1, nil): %v", err)
	}
	p.FailAppends(1, boom)
	p.FailAppendAfter(0, boom)
	p.Heal()
	if err := appendOne("f"); err != nil {
		t.Errorf("after Heal: %v", err)
	}
}

func TestQueueLogAndWait(t *testing.T) {
	ctx := context.Background()
	q := actorstest.NewQueue()
	env := &mail.Envelope{ID: "Q1", Recipients: []*mail.Recipient{{Key: 1, Addr: "a@b.example", State: mail.StatePending}}}
	if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody("body")}); err != nil {
		t.Fatal(err)
	}
	env.Recipients[0].State = mail.StateDeferred // the queue kept a copy
	if got, _ := q.Envelope("Q1"); got.Recipients[0].State != mail.StatePending {
		t.Error("the queue shares the envelope it was given")
	}
	go func() {
		<-q.Update(env.Clone())
		<-q.Delete("Q1")
	}()
	up := q.WaitUpdate(t, "Q1", "deferred", func(e *mail.Envelope) bool { return e.Recipient(1).State == mail.StateDeferred })
	q.WaitDeleted(t, "Q1")
	if up.ID != "Q1" || q.Count(actorstest.OpPut, "Q1") != 1 || q.OpIndex(actorstest.OpDelete, "Q1") != 2 {
		t.Errorf("log %+v", q.Ops())
	}
	if _, err := q.Body("Q1"); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("body of a deleted message: %v", err)
	}
	q.FailPuts(1, errors.New("disk full"))
	if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody("body")}); err == nil || q.Count(actorstest.OpPut, "Q1") != 1 {
		t.Errorf("an injected Put failure: %v, %d puts", err, q.Count(actorstest.OpPut, "Q1"))
	}
}

func TestRelayerAnswersByKey(t *testing.T) {
	r := actorstest.NewRelayer()
	r.Answer(func(rc *mail.Recipient, n int) mail.Result {
		if rc.Addr == "b@x.example" && n == 0 {
			return mail.Temp(mail.StatusNoAnswer, "later")
		}
		return mail.Delivered("ok")
	})
	msg := &mail.Message{Envelope: &mail.Envelope{ID: "Q1", Recipients: []*mail.Recipient{
		{Key: 5, Addr: "a@x.example"}, {Key: 7, Addr: "b@x.example"}}}, Body: mail.BytesBody("body")}
	got := r.Send(context.Background(), msg)
	if len(got) != 2 || got[0].Rcpt != 5 || !got[0].OK() || got[1].Rcpt != 7 || !got[1].Temporary() {
		t.Errorf("first call %+v", got)
	}
	got = r.Send(context.Background(), msg.For(7))
	if len(got) != 1 || got[0].Rcpt != 7 || !got[0].OK() {
		t.Errorf("second call %+v, want key 7 delivered (its second attempt)", got)
	}
	if calls := r.CallsTo("x.example"); len(calls) != 2 || !slices.Equal(calls[1].Keys, []int{7}) {
		t.Errorf("calls %+v", calls)
	}
	gate := r.Block(actorstest.AnyDomain)
	done := make(chan []mail.Result)
	go func() { done <- r.Send(context.Background(), msg) }()
	r.Wait(t, func() bool { return r.InflightTo("x.example") == 1 }, "a blocked call")
	actorstest.Release(t, gate, "the blocked call")
	<-done
	if r.MaxInflightTotal() != 1 || r.InflightTotal() != 0 {
		t.Errorf("in flight %d at most, %d now", r.MaxInflightTotal(), r.InflightTotal())
	}
}

func TestSubmitterFailureInjection(t *testing.T) {
	ctx := context.Background()
	s := actorstest.NewSubmitter(nil)
	boom := errors.New("boom")
	msg := func(id string) *mail.Message {
		return &mail.Message{Envelope: &mail.Envelope{ID: id}, Body: mail.BytesBody(id)}
	}
	s.FailSubmits(1, boom)
	s.FailSubmitAfter(1, boom)
	for i, want := range []error{boom, nil, boom, boom} {
		if err := s.Submit(ctx, msg(string(rune('A'+i)))); err != want {
			t.Errorf("submission %d: %v, want %v", i+1, err, want)
		}
	}
	s.Heal()
	if err := s.Submit(ctx, msg("E")); err != nil {
		t.Errorf("after Heal: %v", err)
	}
	var ids []string
	for _, m := range s.Submitted() {
		ids = append(ids, m.Envelope.ID)
	}
	if !slices.Equal(ids, []string{"B", "E"}) || s.Calls() != 5 {
		t.Errorf("submitted %v in %d calls, want [B E] in 5", ids, s.Calls())
	}
	next := actorstest.NewSubmitter(nil)
	chained := actorstest.NewSubmitter(next)
	if err := chained.Submit(ctx, msg("F")); err != nil || len(next.Submitted()) != 1 {
		t.Errorf("passing on: %v, %d at the next submitter", err, len(next.Submitted()))
	}
}

func TestPlacementSwitches(t *testing.T) {
	var p actorstest.Placement
	if _, err := p.PartitionPID(3); !errors.Is(err, mail.ErrUnavailable) {
		t.Errorf("no owner: %v, want ErrUnavailable", err)
	}
}
