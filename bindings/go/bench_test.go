package lifecycle

// Benchmarks of the Go package against the hand-written baseline (baseline_test.go):
//
//	cd bindings/go && go test -run '^$' -bench . -benchmem
//
// Results and ratios are reported in docs/PERFORMANCE.md; nothing here is asserted.

import (
	"fmt"
	"testing"
	"time"
)

func benchID(i int) string { return fmt.Sprintf("node-%08d", i) }

// benchFleets builds the same n-node fleet in the package and in the baseline: a third idle,
// a third active with two containers, a third ready, all past their graces.
func benchFleets(b *testing.B, n int) (*Fleet, *baseRegistry) {
	b.Helper()
	f, err := New(Options{ManualClockStart: t0, AuditCapacity: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	reg := &baseRegistry{nodes: map[string]*baseNode{}}
	long := time.Now().Add(-2 * time.Hour)
	for i := 0; i < n; i++ {
		id := benchID(i)
		must(b, f.RegisterCloudNode(id, 16384))
		_, _ = f.Transition(id, StateInitializing, "cloud_init_started")
		_, _ = f.Transition(id, StateReady, "cloud_init_completed")
		bn := &baseNode{ID: id, LifecycleState: baseReady, Metrics: baseMetrics{ProvisionedAt: long, InitializedAt: &long}}
		reg.nodes[id] = bn
		switch i % 3 {
		case 0:
			_, _ = f.AddContainer(id, "c", 1024)
			_, _ = f.RemoveContainer(id, "c")
			bn.LifecycleState, bn.Metrics.TotalContainersEver, bn.Metrics.LastContainerAt = baseIdle, 1, &long
		case 1:
			_, _ = f.AddContainer(id, "a", 2048)
			_, _ = f.AddContainer(id, "b", 1024)
			bn.LifecycleState, bn.ContainerCount, bn.AllocatedRAMMB, bn.Metrics.TotalContainersEver = baseActive, 2, 3072, 2
		}
	}
	must(b, f.Advance(2*time.Hour))
	return f, reg
}

func BenchmarkVerdict(b *testing.B) {
	f, reg := benchFleets(b, 10_000)
	for _, id := range []string{benchID(4242), benchID(4243), benchID(4244)} { // idle, active, ready
		b.Run("lifecycle/"+id, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := f.Evaluate(id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("baseline/"+id, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n, _ := reg.GetNode(id)
				baseSinkBool, baseSinkString = n.CanBeDecommissioned()
			}
		})
	}
}

var (
	baseSinkBool   bool
	baseSinkString string
)

func BenchmarkContainerEventPair(b *testing.B) {
	f, reg := benchFleets(b, 1000)
	id := benchID(3) // idle
	b.Run("lifecycle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := f.AddContainer(id, "bench", 512); err != nil {
				b.Fatal(err)
			}
			if _, err := f.RemoveContainer(id, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			reg.RegisterContainer(id, 512)
			reg.UnregisterContainer(id, 512)
		}
	})
}

func BenchmarkAuditRecord(b *testing.B) {
	f, reg := benchFleets(b, 100)
	id := benchID(42)
	b.Run("lifecycle", func(b *testing.B) {
		rec := AuditRecord{Action: ActionNodeDecommission, Result: ResultRejected, NodeID: id, Reason: "node has 2 containers", DecisionBy: "reactive_policy"}
		for i := 0; i < b.N; i++ {
			if _, err := f.RecordAudit(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		log := newBaseAuditLogger(1000)
		n, _ := reg.GetNode(id)
		for i := 0; i < b.N; i++ {
			log.RecordNodeDecommission(id, "node has 2 containers", "reactive_policy", baseSnapshot(n), "rejected", nil)
		}
	})
}

func BenchmarkGetByNodeID(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		f, err := New(Options{ManualClockStart: t0, AuditCapacity: size})
		must(b, err)
		log := newBaseAuditLogger(size)
		// 1000 nodes writing round robin: each node has size/1000 entries retained.
		for i := 0; i < size; i++ {
			id := benchID(i % 1000)
			_, err := f.RecordAudit(AuditRecord{Action: ActionScaleUp, Result: ResultSuccess, NodeID: id, Reason: "load", DecisionBy: "reactive_policy"})
			must(b, err)
			log.Record(baseAuditEntry{Action: "scale_up", NodeID: id, Reason: "load", DecisionBy: "reactive_policy", Result: "success"})
		}
		target := benchID(42)
		b.Run(fmt.Sprintf("lifecycle/%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := f.AuditByNode(target, size)
				if err != nil || len(got) != size/1000 {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
		})
		b.Run(fmt.Sprintf("baseline/%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := log.GetByNodeID(target); len(got) != size/1000 {
					b.Fatalf("%d entries", len(got))
				}
			}
		})
		f.Close()
	}
}

func BenchmarkEvaluateAll10k(b *testing.B) {
	f, reg := benchFleets(b, 10_000)
	b.Run("lifecycle (one call)", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, err := f.EvaluateAll()
			if err != nil || len(v) != 10_000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("lifecycle (call per node)", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < 10_000; j++ {
				if _, err := f.Evaluate(benchID(j)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("baseline (loop)", func(b *testing.B) {
		type result struct {
			id     string
			ok     bool
			reason string
		}
		for i := 0; i < b.N; i++ {
			reg.mu.RLock()
			out := make([]result, 0, len(reg.nodes))
			for id, n := range reg.nodes {
				ok, reason := n.CanBeDecommissioned()
				out = append(out, result{id, ok, reason})
			}
			reg.mu.RUnlock()
			if len(out) != 10_000 {
				b.Fatal(len(out))
			}
		}
	})
}

// BenchmarkBoundary is the cost of a bare call into the library (nl_noop) through the
// backend: the floor every other call pays.
func BenchmarkBoundary(b *testing.B) {
	f, err := New(Options{ManualClockStart: t0})
	must(b, err)
	defer f.Close()
	for i := 0; i < b.N; i++ {
		f.b.noop()
	}
}

// BenchmarkVerdictParallel is the verdict under contention: every goroutine of
// b.RunParallel (GOMAXPROCS of them) evaluates nodes of one shared fleet. On the native backend
// verdicts share the fleet's read lock; on the WebAssembly backend a fleet's instance is
// single-threaded, so its calls are serialised. The baseline takes its registry's read lock.
func BenchmarkVerdictParallel(b *testing.B) {
	f, reg := benchFleets(b, 10_000)
	ids := []string{benchID(4242), benchID(4243), benchID(4244)} // idle, active, ready
	b.Run("lifecycle", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := f.Evaluate(ids[i%3]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				n, _ := reg.GetNode(ids[i%3])
				ok, _ := n.CanBeDecommissioned()
				_ = ok
				i++
			}
		})
	})
}

// BenchmarkOpenClose is New + Close of an in-memory fleet once the process has loaded the
// library: on the WebAssembly backend, instantiating the (already compiled) module.
func BenchmarkOpenClose(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
