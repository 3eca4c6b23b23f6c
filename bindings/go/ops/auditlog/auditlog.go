// Package auditlog mirrors a lifecycle.Fleet's audit entries into a *slog.Logger: info for
// success, warn for rejected, error for failed, with every field as an attribute.
//
// Entries are read through the sequence cursor and logged after the read returns, so logging
// never happens under the fleet's lock and a slow log sink never slows a decision down.
package auditlog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// Mirror copies audit entries from a fleet to a logger.
type Mirror struct {
	fleet  *lifecycle.Fleet
	logger *slog.Logger
	mu     sync.Mutex
	cursor uint64
}

// New returns a mirror that starts with the fleet's first retained entry.
func New(fleet *lifecycle.Fleet, logger *slog.Logger) *Mirror {
	return &Mirror{fleet: fleet, logger: logger}
}

// Sync logs every entry recorded since the previous call and returns how many it logged. If the
// ring evicted entries first, one warning says how many were missed.
func (m *Mirror) Sync(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	logged := 0
	for {
		page, err := m.fleet.AuditSince(m.cursor, 500)
		if err != nil {
			return logged, err
		}
		if page.Missed > 0 {
			m.logger.LogAttrs(ctx, slog.LevelWarn, "audit entries evicted before they were logged",
				slog.Uint64("after_seq", m.cursor), slog.Uint64("missed", page.Missed))
		}
		for _, e := range page.Entries {
			m.log(ctx, e)
			logged++
		}
		m.cursor = page.NextCursor
		if len(page.Entries) < 500 {
			return logged, nil
		}
	}
}

// Run calls Sync every interval until ctx is done.
func (m *Mirror) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, _ = m.Sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Mirror) log(ctx context.Context, e lifecycle.AuditEntry) {
	level := slog.LevelInfo
	switch e.Result {
	case lifecycle.ResultRejected:
		level = slog.LevelWarn
	case lifecycle.ResultFailed:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Uint64("seq", e.Seq),
		slog.Time("at", e.Time),
		slog.String("action", e.Action.String()),
		slog.String("node_id", e.NodeID),
		slog.String("result", e.Result.String()),
		slog.String("reason", e.Reason),
	}
	if e.ReasonCode != 0 {
		attrs = append(attrs, slog.Int("reason_code", int(e.ReasonCode)), slog.String("reason_name", e.ReasonCode.String()))
	}
	if e.DecisionBy != "" {
		attrs = append(attrs, slog.String("decision_by", e.DecisionBy))
	}
	if e.ContainerID != "" {
		attrs = append(attrs, slog.String("container_id", e.ContainerID))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	if e.FromState != nil && e.ToState != nil {
		attrs = append(attrs, slog.String("from_state", e.FromState.String()), slog.String("to_state", e.ToState.String()))
	}
	if s := e.Snapshot; s != nil {
		attrs = append(attrs, slog.Group("snapshot",
			slog.String("state", s.State.String()),
			slog.Int("current_containers", s.CurrentContainers),
			slog.Int("pending_reservations", s.PendingReservations),
			slog.Int("holds", s.Holds),
			slog.Int64("age_ms", s.Age.Milliseconds()),
		))
	}
	m.logger.LogAttrs(ctx, level, "audit: "+e.Action.String(), attrs...)
}
