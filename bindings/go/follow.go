package lifecycle

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// An AuditHandler receives the audit entries a follower reads, in sequence order, outside the
// fleet's lock: a slow handler never slows a decision down. Missed counts entries the ring
// evicted before the follower read them (the handler's gap). When the handler returns an
// error, the same entries are handed over again on the next round.
type AuditHandler func(ctx context.Context, page AuditPage) error

// FollowAudit hands every audit entry after cursor to handle, polling every interval, until
// ctx is done (it then returns ctx's error). It is how sinks (logs, databases, metrics) follow
// the ring: by the sequence cursor, never under the fleet's lock. The returned error is the
// context's; handler errors are retried.
func (f *Fleet) FollowAudit(ctx context.Context, cursor uint64, interval time.Duration, handle AuditHandler) error {
	if interval <= 0 {
		return invalidArgument("FollowAudit: interval %v must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cursor = f.drainAudit(ctx, cursor, handle)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// drainAudit hands over pages until the ring has nothing newer or the handler fails, and
// returns the cursor after the last page handled.
func (f *Fleet) drainAudit(ctx context.Context, cursor uint64, handle AuditHandler) uint64 {
	const page = 500
	for ctx.Err() == nil {
		p, err := f.AuditSince(cursor, page)
		if err != nil || (len(p.Entries) == 0 && p.Missed == 0) {
			return cursor
		}
		if handle(ctx, p) != nil {
			return cursor
		}
		cursor = p.NextCursor
		if len(p.Entries) < page {
			return cursor
		}
	}
	return cursor
}

// LogAudit is an AuditHandler that writes every entry to logger, the way the conductor logged
// "AUDIT:" lines: info for success, warn for rejected, error for failed, every field an
// attribute (the snapshot as a group). A gap is one warning with its size.
//
//	go fleet.FollowAudit(ctx, 0, time.Second, lifecycle.LogAudit(slog.Default()))
func LogAudit(logger *slog.Logger) AuditHandler {
	return func(ctx context.Context, p AuditPage) error {
		if p.Missed > 0 {
			logger.LogAttrs(ctx, slog.LevelWarn, "audit entries evicted before they were logged",
				slog.Uint64("missed", p.Missed))
		}
		for i := range p.Entries {
			LogAuditEntry(ctx, logger, &p.Entries[i])
		}
		return nil
	}
}

// LogAuditEntry writes one entry to logger (see LogAudit).
func LogAuditEntry(ctx context.Context, logger *slog.Logger, e *AuditEntry) {
	level := slog.LevelInfo
	switch e.Result {
	case ResultRejected:
		level = slog.LevelWarn
	case ResultFailed:
		level = slog.LevelError
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.Uint64("seq", e.Seq),
		slog.Time("at", e.Time),
		slog.String("action", e.Action.String()),
		slog.String("node_id", e.NodeID),
		slog.String("result", e.Result.String()),
		slog.String("reason", e.Reason),
	)
	if e.ReasonCode != 0 {
		attrs = append(attrs, slog.Int("reason_code", int(e.ReasonCode)), slog.String("reason_name", e.ReasonCode.String()))
	}
	if e.DecisionBy != "" {
		attrs = append(attrs, slog.String("decision_by", e.DecisionBy))
	}
	if e.ContainerID != "" {
		attrs = append(attrs, slog.String("container_id", e.ContainerID))
	}
	if e.RelatedNodeID != "" {
		attrs = append(attrs, slog.String("related_node_id", e.RelatedNodeID))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	if e.FromState != nil {
		attrs = append(attrs, slog.String("from_state", e.FromState.String()))
	}
	if e.ToState != nil {
		attrs = append(attrs, slog.String("to_state", e.ToState.String()))
	}
	if e.RAMMB != nil {
		attrs = append(attrs, slog.Int("ram_mb", *e.RAMMB))
	}
	if e.Age != nil {
		attrs = append(attrs, slog.Int64("age_ms", e.Age.Milliseconds()))
	}
	if s := e.Snapshot; s != nil {
		snap := []any{
			slog.String("state", s.State.String()),
			slog.Int("current_containers", s.CurrentContainers),
			slog.Int("pending_reservations", s.PendingReservations),
			slog.Int("allocated_ram_mb", s.AllocatedRAMMB),
			slog.Int("total_ram_mb", s.TotalRAMMB),
			slog.Float64("hourly_cost_eur", s.HourlyCost),
			slog.Int64("age_ms", s.Age.Milliseconds()),
		}
		for _, h := range s.Holds {
			snap = append(snap, slog.String("hold."+h.Name, h.Detail))
		}
		for _, c := range s.Cordons {
			snap = append(snap, slog.String("cordon."+c.Name, c.Reason))
		}
		for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
			snap = append(snap, slog.String("label."+k, s.Labels[k]))
		}
		attrs = append(attrs, slog.Group("snapshot", snap...))
	}
	logger.LogAttrs(ctx, level, "AUDIT: "+e.Action.String(), attrs...)
}
