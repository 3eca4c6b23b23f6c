package api

// Benchmarks (not tests) of the API at 10k and 100k nodes with a full ring of 1M audit entries:
// a page of nodes, a filtered page that matches nothing, a page of the audit log, and a
// consolidation plan. A request should cost the same at both sizes (the plan grows as n log n).
//
//	go test -run '^$' -bench API -benchtime 200x ./api/
//
// Results go to docs/PERFORMANCE.md.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

var (
	benchMu     sync.Mutex
	benchFleets = map[int]*lifecycle.Fleet{}
)

// benchFleet builds (once per size) a fleet of n nodes — a third running a container, the rest
// idle or ready — and fills a 1M-entry ring.
func benchFleet(b *testing.B, n int) *lifecycle.Fleet {
	benchMu.Lock()
	defer benchMu.Unlock()
	if f, ok := benchFleets[n]; ok {
		return f
	}
	const ring = 1_000_000
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0, AuditCapacity: ring})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("node-%07d", i)
		if _, err := f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, BootedFromImage: true,
			TotalRAMMB: 8192, HourlyCost: 0.05 + float64(i%7)/100}); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := f.AddContainer(id, "c-"+id, 1024+512*(i%4)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := f.Advance(2 * time.Hour); err != nil {
		b.Fatal(err)
	}
	stats, err := f.AuditStats()
	if err != nil {
		b.Fatal(err)
	}
	for i := stats.TotalRecorded; i < ring; i++ {
		if _, err := f.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, Result: lifecycle.ResultSuccess,
			NodeID: fmt.Sprintf("node-%07d", int(i)%n), Reason: "load", DecisionBy: "reactive_policy"}); err != nil {
			b.Fatal(err)
		}
	}
	benchFleets[n] = f
	return f
}

func BenchmarkAPI(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		f := benchFleet(b, n)
		h := New(f, Options{MaxConcurrentPlans: 4})
		for _, c := range []struct{ name, target string }{
			{"nodes_page", "/nodes?limit=100&after=node-0004000"},
			{"nodes_filtered_empty", "/nodes?state=draining&limit=100"},
			{"audit_page", "/audit?limit=100"},
			{"audit_by_node", "/audit?node=node-0000042&limit=100"},
			{"consolidation_plan", "/consolidation-plan"},
		} {
			b.Run(fmt.Sprintf("nodes=%d/%s", n, c.name), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, c.target, nil)
				for i := 0; i < b.N; i++ {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", c.target, rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
