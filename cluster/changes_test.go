package cluster

import "testing"

func TestChangesCoalesceAndEndWithTheSubscription(t *testing.T) {
	var c Changes
	a, cancelA := c.Subscribe()
	b, cancelB := c.Subscribe()
	defer cancelB()
	c.Notify()
	c.Notify() // coalesced: a and b have one notice each
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Fatalf("%s was not told about the change", name)
		}
		select {
		case <-ch:
			t.Fatalf("%s was told twice about changes it had not looked at", name)
		default:
		}
	}
	cancelA()
	c.Notify()
	select {
	case <-a:
		t.Fatal("a cancelled subscription was told")
	default:
	}
	select {
	case <-b:
	default:
		t.Fatal("b was not told after a's subscription ended")
	}
}
