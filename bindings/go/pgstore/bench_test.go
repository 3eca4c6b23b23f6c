package pgstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// A container event pair on a shared fleet's leader: two mutations, each one transaction.
func BenchmarkMutationPair(b *testing.B) {
	pool := newPool(b, nil)
	f := replica(b, openStore(b, pool, fleetName(b)), "a", 10*time.Second, nil)
	_, err := f.Register(lifecycle.NodeSpec{ID: "n", Origin: lifecycle.OriginCloud, TotalRAMMB: 1 << 20, BootedFromImage: true})
	must(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.AddContainer("n", "c", 1); err != nil {
			b.Fatal(err)
		}
		if _, err := f.RemoveContainer("n", "c"); err != nil {
			b.Fatal(err)
		}
	}
}

// Mutations from several goroutines at once, each on its own node: the throughput a leader
// sustains (each mutation waits for its own transaction; there is no group commit).
func BenchmarkMutationParallel(b *testing.B) {
	pool := newPool(b, nil)
	f := replica(b, openStore(b, pool, fleetName(b)), "a", 10*time.Second, nil)
	var next atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("n%d", next.Add(1))
		if _, err := f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 1 << 20, BootedFromImage: true}); err != nil {
			b.Fatal(err)
		}
		for add := true; pb.Next(); add = !add {
			var err error
			if add {
				_, err = f.AddContainer(id, id+"-c", 1)
			} else {
				_, err = f.RemoveContainer(id, id+"-c")
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// How long after the leader acknowledged a mutation the standby answers with it (Poll 10ms),
// in a fleet of 10 and of 10,000 nodes (the standby reloads the whole fleet).
func BenchmarkStandbyLag(b *testing.B) {
	for _, size := range []int{10, 10000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			pool := newPool(b, nil)
			fleet := fleetName(b)
			a := replica(b, openStore(b, pool, fleet), "a", time.Minute, nil)
			for i := 0; i < size; i++ {
				if _, err := a.Register(lifecycle.NodeSpec{ID: fmt.Sprintf("base%05d", i), Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}); err != nil {
					b.Fatal(err)
				}
			}
			must(b, a.Compact())
			s := replica(b, openStore(b, pool, fleet), "s", time.Minute, nil)
			var worst time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("n%d", i)
				if _, err := a.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for {
					if _, err := s.Node(id); err == nil {
						break
					}
					time.Sleep(time.Millisecond)
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}

// A graceful handover: the leader closes (releasing the lease), the standby leads.
func BenchmarkHandover(b *testing.B) {
	pool := newPool(b, nil)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fleet := fleetName(b)
		a, err := lifecycle.New(lifecycle.Options{Shared: &lifecycle.Replication{
			Store: openStore(b, pool, fleet), ReplicaID: "a", LeaseTTL: time.Minute, Poll: 10 * time.Millisecond}})
		must(b, err)
		_, err = a.Register(lifecycle.NodeSpec{ID: "n", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
		must(b, err)
		s := replica(b, openStore(b, pool, fleet), "s", time.Minute, nil)
		b.StartTimer()
		must(b, a.Close())
		for !s.IsLeader() {
			time.Sleep(time.Millisecond)
		}
	}
}
