package mail

import (
	"hash/fnv"
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
