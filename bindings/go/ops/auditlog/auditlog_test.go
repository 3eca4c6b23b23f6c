package auditlog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// capture is a slog.Handler that keeps records.
type capture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func attrs(r slog.Record) map[string]string {
	out := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

func TestMirrorLevelsAndAttributes(t *testing.T) {
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), AuditCapacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := &capture{}
	m := New(f, slog.New(h))

	_ = f.RegisterSystemNode("local-node", 0)
	_, _ = f.BeginDecommission("local-node", "manual")
	_, _ = f.BeginDecommission("ghost", "manual")
	n, err := m.Sync(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("synced %d, %v", n, err)
	}
	if len(h.records) != 3 {
		t.Fatalf("records: %d", len(h.records))
	}
	want := []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	for i, r := range h.records {
		if r.Level != want[i] {
			t.Fatalf("record %d level %v, want %v", i, r.Level, want[i])
		}
	}
	rejected := attrs(h.records[1])
	if rejected["node_id"] != "local-node" || rejected["reason_name"] != "system_node" || rejected["decision_by"] != "manual" || rejected["seq"] != "2" {
		t.Fatalf("rejected attrs: %v", rejected)
	}
	failed := attrs(h.records[2])
	if failed["error"] == "" || failed["reason_code"] != "113" {
		t.Fatalf("failed attrs: %v", failed)
	}
	// Nothing is logged twice; an eviction gap is reported once.
	if n, _ := m.Sync(context.Background()); n != 0 {
		t.Fatalf("second sync logged %d", n)
	}
	for i := 0; i < 25; i++ {
		_, _ = f.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, NodeID: "x"})
	}
	n, _ = m.Sync(context.Background())
	if n != 10 {
		t.Fatalf("after eviction logged %d", n)
	}
	gap := h.records[3]
	if gap.Level != slog.LevelWarn || attrs(gap)["missed"] != "15" {
		t.Fatalf("gap record: %v %v", gap.Message, attrs(gap))
	}
}
