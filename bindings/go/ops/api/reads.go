package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// nodes serves a page of nodes with their verdicts, ordered by id; each row's node and verdict
// come from one read of the fleet, so they always agree.
func (h *handler) nodes(w http.ResponseWriter, r *http.Request) {
	q := params(w, r)
	query := lifecycle.NodeQuery{
		State: q.state("state"),
		After: q.str("after"),
		Limit: int(q.integer("limit", defaultPageSize, 1, int64(h.opts.MaxPageSize))),
	}
	if !q.done() {
		return
	}
	page, err := h.fleet.NodesPage(query)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]nodeDTO, 0, len(page.Rows))
	for _, row := range page.Rows {
		out = append(out, nodeOf(row.Node, row.Verdict))
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out, "next_after": optString(page.NextAfter)})
}

// node serves one node, its verdict and its newest history entries.
func (h *handler) node(w http.ResponseWriter, r *http.Request) {
	q := params(w, r)
	limit := int(q.integer("history", defaultPageSize, 0, int64(h.opts.MaxPageSize)))
	if !q.done() {
		return
	}
	id := r.PathValue("id")
	row, err := h.fleet.NodeRow(id)
	if err != nil {
		writeError(w, err)
		return
	}
	history, err := h.fleet.AuditPage(lifecycle.AuditQuery{Node: id, Limit: limit})
	if err != nil {
		writeError(w, err)
		return
	}
	entries := make([]entryDTO, 0, len(history.Entries))
	for _, e := range history.Entries {
		entries = append(entries, entryOf(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": nodeOf(row.Node, row.Verdict), "history": entries})
}

// audit serves a page of the audit log, newest first, filtered by at most one of node, action
// and result, at a cost of O(log n + limit).
func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	q := params(w, r)
	var query lifecycle.AuditQuery
	query.Node = q.str("node")
	if s := q.str("action"); s != "" {
		a, err := lifecycle.ParseAction(s)
		if err != nil {
			q.fail("action", "action: %q is not an audit action", s)
		}
		query.Action = &a
	}
	if s := q.str("result"); s != "" {
		res, err := lifecycle.ParseResult(s)
		if err != nil {
			q.fail("result", "result: %q is not an audit result", s)
		}
		query.Result = &res
	}
	query.BeforeSeq = uint64(q.integer("before_seq", 0, 1, 1<<62))
	query.AfterSeq = uint64(q.integer("after_seq", 0, 0, 1<<62))
	query.From = q.timestamp("from")
	query.To = q.timestamp("to")
	query.Limit = int(q.integer("limit", defaultPageSize, 1, int64(h.opts.MaxPageSize)))
	if !q.done() {
		return
	}
	filters := 0
	for _, set := range []bool{query.Node != "", query.Action != nil, query.Result != nil} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		q.fail("node", "give at most one of node, action and result")
		return
	}
	if !query.From.IsZero() && !query.To.IsZero() && !query.From.Before(query.To) {
		q.fail("to", "from must be before to")
		return
	}
	page, err := h.fleet.AuditPage(query)
	if err != nil {
		writeError(w, err)
		return
	}
	entries := make([]entryDTO, 0, len(page.Entries))
	for _, e := range page.Entries {
		entries = append(entries, entryOf(e))
	}
	var next *uint64
	if page.NextBeforeSeq != 0 {
		next = &page.NextBeforeSeq
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "next_before_seq": next})
}

type comingNodeDTO struct {
	NodeID        string  `json:"node_id"`
	State         string  `json:"state"`
	TotalRAMMB    int     `json:"total_ram_mb"`
	ReadyDeadline *string `json:"ready_deadline"`
}

func (h *handler) projection(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	p, err := h.fleet.Projection()
	if err != nil {
		writeError(w, err)
		return
	}
	coming := make([]comingNodeDTO, 0, len(p.ComingNodes))
	for _, c := range p.ComingNodes {
		d := comingNodeDTO{NodeID: c.NodeID, State: c.State.String(), TotalRAMMB: c.TotalRAMMB}
		if t := optTime(c.ReadyDeadline); t != nil {
			s := t.Format("2006-01-02T15:04:05.000Z07:00")
			d.ReadyDeadline = &s
		}
		coming = append(coming, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"at": utc(p.At), "now": p.Now, "cordoned": p.Cordoned, "coming": p.Coming, "coming_nodes": coming,
		"leaving": p.Leaving, "unusable": p.Unusable,
		"utilisation_now": p.UtilisationNow, "utilisation_projected": p.UtilisationProjected,
	})
}

// plan serves a dry-run consolidation plan. At most Options.MaxConcurrentPlans run at once;
// beyond that the answer is 429 with Retry-After, so no client can pile up plan computations.
func (h *handler) plan(w http.ResponseWriter, r *http.Request) {
	q := params(w, r)
	var req lifecycle.ConsolidationRequest
	req.Policy.MinUptime = q.duration("min_uptime_ms")
	req.Policy.MinIdle = q.duration("min_idle_ms")
	req.Policy.Cooldown = q.duration("cooldown_ms")
	req.Policy.MinSavingsPerHour = q.number("min_savings_eur_per_hour", 0, 0, 1e6, false)
	req.Policy.MaxUtilisationAfter = q.number("max_utilisation_after", 0, 0, 1, true)
	req.Policy.MinWorkerNodes = int(q.integer("min_worker_nodes", 0, 1, 1_000_000))
	if s := q.str("non_migratable"); s != "" {
		for _, id := range strings.Split(s, ",") {
			if id == "" {
				q.fail("non_migratable", "non_migratable holds an empty container id")
				break
			}
			req.NonMigratable = append(req.NonMigratable, id)
		}
	}
	req.LastConsolidation = q.timestamp("last_consolidation")
	if !q.done() {
		return
	}
	select {
	case h.plans <- struct{}{}:
		defer func() { <-h.plans }()
	default:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, errorDTO{Error: "a consolidation plan is being computed; retry shortly"})
		return
	}
	if wait := h.rate.take(); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, errorDTO{Error: fmt.Sprintf(
			"consolidation plans are limited to %d a minute (bursts of %d); retry in %v",
			h.opts.PlansPerMinute, h.opts.PlanBurst, wait.Round(time.Millisecond))})
		return
	}
	plan, err := h.fleet.ConsolidationPlan(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, planOf(plan))
}

type planDTO struct {
	Worthwhile        bool                      `json:"worthwhile"`
	Refusal           *string                   `json:"refusal"`
	RefusalDetail     string                    `json:"refusal_detail"`
	Remove            []lifecycle.RemovedNode   `json:"remove"`
	Moves             []lifecycle.ContainerMove `json:"moves"`
	SavingsPerHour    float64                   `json:"savings_eur_per_hour"`
	UtilisationBefore float64                   `json:"utilisation_before"`
	UtilisationAfter  float64                   `json:"utilisation_after"`
	Kept              []lifecycle.KeptNode      `json:"kept"`
}

func planOf(p lifecycle.ConsolidationPlan) planDTO {
	return planDTO{
		Worthwhile: p.Worthwhile, Refusal: optString(p.Refusal), RefusalDetail: p.RefusalDetail,
		Remove: p.Remove, Moves: p.Moves, SavingsPerHour: p.SavingsPerHour,
		UtilisationBefore: p.UtilisationBefore, UtilisationAfter: p.UtilisationAfter, Kept: p.Kept,
	}
}
