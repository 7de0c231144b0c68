package mail

import (
	"reflect"
	"testing"
)

func TestPartitionSets(t *testing.T) {
	ids, err := ParsePartitionSet("0-3, 5,7-7", 8)
	if err != nil || !reflect.DeepEqual(ids, []int{0, 1, 2, 3, 5, 7}) {
		t.Fatalf("ParsePartitionSet = %v, %v", ids, err)
	}
	if s := FormatPartitionSet(ids); s != "0-3,5,7" {
		t.Fatalf("FormatPartitionSet = %q", s)
	}
	for _, bad := range []string{"x", "3-1", "0-8", "-1"} {
		if _, err := ParsePartitionSet(bad, 8); err == nil {
			t.Errorf("ParsePartitionSet(%q) accepted", bad)
		}
	}
}
