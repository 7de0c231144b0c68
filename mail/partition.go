package mail

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
)

// PartitionOf returns the partition, in [0, n), that the account address
// hashes into (FNV-1a of the lower-cased address). Every node must compute
// the same value, so this function never changes for a given n.
func PartitionOf(account string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(account)))
	return int(h.Sum32() % uint32(n))
}

// ParsePartitionSet parses "0-7,12" into sorted partition ids below n.
func ParsePartitionSet(s string, n int) ([]int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("partition set %q: %q is not a number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("partition set %q: %q is not a number", s, hi)
			}
		}
		if a < 0 || b >= n || a > b {
			return nil, fmt.Errorf("partition set %q: %q is outside 0-%d", s, part, n-1)
		}
		for p := a; p <= b; p++ {
			seen[p] = true
		}
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out, nil
}

// FormatPartitionSet writes ids as compact ranges ("0-3,5").
func FormatPartitionSet(ids []int) string {
	ids = append([]int(nil), ids...)
	sort.Ints(ids)
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ids[i], ids[j])
		} else {
			fmt.Fprintf(&b, "%d", ids[i])
		}
		i = j + 1
	}
	return b.String()
}
