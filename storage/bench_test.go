package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// benchWriters is the number of concurrent writers the benchmarks model
// (concurrent SMTP sessions or deliveries).
const benchWriters = 20

// BenchmarkQueuePut: ~20 concurrent Puts of a 4 KiB message, each acked only
// once synced. syncs/op is badger transactions per Put (1 = no merging).
func BenchmarkQueuePut(b *testing.B) {
	q, err := OpenQueue(b.TempDir(), Options{ValueLogGCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	procs := runtime.GOMAXPROCS(0)
	par := (benchWriters + procs - 1) / procs
	b.SetParallelism(par)
	before := q.DB().Stats().Commits
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			env := testEnvelope(mail.NewID(time.Now()))
			env.Size = int64(len(body))
			if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(body)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	commits := q.DB().Stats().Commits - before
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(commits)/float64(b.N), "syncs/op")
	b.ReportMetric(float64(par*procs), "writers")
}

// BenchmarkAppend: 20 concurrent writers append 4 KiB messages (with a
// dedup key, as Local Delivery does) to accounts spread over 1, 16 and 64
// partitions. Each partition is its own DB with its own committer, so more
// partitions mean more, smaller groups: more syncs per append.
func BenchmarkAppend(b *testing.B) {
	for _, parts := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			benchmarkAppend(b, parts)
		})
	}
}

func benchmarkAppend(b *testing.B, parts int) {
	s, err := NewAccountStore(b.TempDir(), parts, Options{ValueLogGCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ps := make([]*Partition, parts)
	for id := range parts {
		if ps[id], err = s.Open(id); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	const accounts = 8 * benchWriters
	addrs := make([]string, accounts)
	var wg sync.WaitGroup
	for i := range addrs {
		addrs[i] = fmt.Sprintf("user%d@example.test", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := ps[mail.PartitionOf(addrs[i], parts)]
			if err := p.CreateAccount(ctx, Account{Address: addrs[i]}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	commits := func() (n uint64) {
		for _, p := range ps {
			n += p.DB().Stats().Commits
		}
		return n
	}
	before := commits()
	body := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	var next atomic.Int64
	b.ResetTimer()
	for w := range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				a := addrs[rng.IntN(accounts)]
				p := ps[mail.PartitionOf(a, parts)]
				req := AppendRequest{DedupKey: fmt.Sprintf("Q%d/%s", n, a), Raw: body}
				if _, err := p.Append(ctx, a, req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(commits()-before)/float64(b.N), "syncs/op")
}

// BenchmarkOpenPartitions opens and closes a 64-partition store: how long
// one partition takes to open and how many goroutines and how much RSS an
// open partition costs (badger's defaults: 3.9 s, 1,025 goroutines and
// 33 MB for 64).
func BenchmarkOpenPartitions(b *testing.B) {
	const parts = 64
	var openTime time.Duration
	var goroutines, rss float64
	for range b.N {
		s, err := NewAccountStore(b.TempDir(), parts, Options{})
		if err != nil {
			b.Fatal(err)
		}
		g0, r0 := runtime.NumGoroutine(), rssBytes()
		start := time.Now()
		for id := range parts {
			if _, err := s.Open(id); err != nil {
				b.Fatal(err)
			}
		}
		openTime += time.Since(start)
		goroutines += float64(runtime.NumGoroutine() - g0)
		rss += float64(rssBytes() - r0)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(openTime.Milliseconds())/n, "ms/64-opens")
	b.ReportMetric(goroutines/n/parts, "goroutines/partition")
	b.ReportMetric(rss/n/parts/(1<<20), "MB-RSS/partition")
}

// rssBytes reads VmRSS from /proc/self/status (0 if unavailable).
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkQueueChurn: what the queue really does: ~20 writers each Put a
// 4 KiB message and Delete it once "delivered". Delete is waited for, so
// syncs/op counts both writes.
func BenchmarkQueueChurn(b *testing.B) {
	q, err := OpenQueue(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchWriters + procs - 1) / procs)
	before := q.DB().Stats().Commits
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			env := testEnvelope(mail.NewID(time.Now()))
			if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(body)}); err != nil {
				b.Error(err)
				return
			}
			if err := <-q.Delete(env.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(q.DB().Stats().Commits-before)/float64(b.N), "syncs/op")
}
