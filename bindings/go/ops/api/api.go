// Package api serves a lifecycle.Fleet as a JSON HTTP API for dashboards and operators: the
// node list with state, health, metrics and current verdict; one node with its history; the
// audit log with filters and pagination; the fleet projection; and a dry-run consolidation
// plan. It is a plain net/http Handler, so it mounts in any router (gin: gin.WrapH).
//
// Read-only by default. The one mutating endpoint, a manual decommission, exists only when
// Options.Delete and Options.Authorize are both set. The API is described in openapi.yaml.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// Options configure the handler. The zero value serves a read-only API.
type Options struct {
	// Delete deletes a VM at the provider; with Authorize it enables
	// POST /nodes/{id}/decommission, which runs the two-phase protocol with decision_by=manual.
	Delete lifecycle.DeleteFunc
	// Authorize decides whether a request may mutate; a non-nil error answers 403 with it.
	Authorize func(r *http.Request) error
	// MaxPageSize caps ?limit= (default 1000).
	MaxPageSize int
}

type handler struct {
	fleet *lifecycle.Fleet
	opts  Options
	mux   *http.ServeMux
}

// New returns the API for fleet, to be mounted where the caller likes (e.g. under
// /api/lifecycle/ with http.StripPrefix).
func New(fleet *lifecycle.Fleet, opts Options) http.Handler {
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	h := &handler{fleet: fleet, opts: opts, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /nodes", h.nodes)
	h.mux.HandleFunc("GET /nodes/{id}", h.node)
	h.mux.HandleFunc("GET /audit", h.audit)
	h.mux.HandleFunc("GET /projection", h.projection)
	h.mux.HandleFunc("GET /consolidation-plan", h.plan)
	h.mux.HandleFunc("POST /nodes/{id}/decommission", h.decommission)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, errorDTO{Error: fmt.Sprintf(format, args...)})
}

// writeError maps library errors to HTTP statuses, keeping the code and the verdict.
func writeError(w http.ResponseWriter, err error) {
	body := errorDTO{Error: err.Error()}
	status := http.StatusInternalServerError
	var le *lifecycle.Error
	if errors.As(err, &le) {
		body.Code = uint32(le.Code)
		switch {
		case errors.Is(err, lifecycle.ErrNodeNotFound):
			status = http.StatusNotFound
		case errors.Is(err, lifecycle.ErrRejected), errors.Is(err, lifecycle.ErrTicketInvalid):
			status = http.StatusConflict
		case errors.Is(err, lifecycle.ErrInvalidArgument), errors.Is(err, lifecycle.ErrInvalidUTF8), errors.Is(err, lifecycle.ErrInvalidSetting):
			status = http.StatusBadRequest
		case errors.Is(err, lifecycle.ErrClosed):
			status = http.StatusServiceUnavailable
		}
		if le.Verdict != nil {
			v := verdictOf(*le.Verdict)
			body.Verdict = &v
		}
	}
	writeJSON(w, status, body)
}

// rejectUnknown refuses query parameters the endpoint does not know: a typo must not be
// silently ignored (it would return unfiltered data).
func rejectUnknown(w http.ResponseWriter, r *http.Request, known ...string) bool {
	for k := range r.URL.Query() {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			badRequest(w, "unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
			return false
		}
	}
	return true
}

func (h *handler) nodes(w http.ResponseWriter, r *http.Request) {
	if !rejectUnknown(w, r, "state") {
		return
	}
	var state *lifecycle.State
	if s := r.URL.Query().Get("state"); s != "" {
		st, err := lifecycle.ParseState(s)
		if err != nil {
			badRequest(w, "state: %v", err)
			return
		}
		state = &st
	}
	nodes, err := h.fleet.Nodes()
	if err != nil {
		writeError(w, err)
		return
	}
	verdicts, err := h.fleet.ExplainAll()
	if err != nil {
		writeError(w, err)
		return
	}
	byID := make(map[string]lifecycle.Verdict, len(verdicts))
	for _, v := range verdicts {
		byID[v.NodeID] = v.Verdict
	}
	out := []nodeDTO{}
	for _, n := range nodes {
		if state == nil || n.State == *state {
			out = append(out, nodeOf(n, byID[n.ID]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

func (h *handler) node(w http.ResponseWriter, r *http.Request) {
	if !rejectUnknown(w, r, "history") {
		return
	}
	limit, ok := h.intParam(w, r, "history", 100)
	if !ok {
		return
	}
	id := r.PathValue("id")
	n, err := h.fleet.Node(id)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := h.fleet.Explain(id)
	if err != nil {
		writeError(w, err)
		return
	}
	history, err := h.fleet.AuditByNode(id, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	entries := make([]entryDTO, 0, len(history))
	for i := len(history) - 1; i >= 0; i-- { // newest first
		entries = append(entries, entryOf(history[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": nodeOf(n, v), "history": entries})
}

// intParam reads a non-negative integer query parameter capped at MaxPageSize.
func (h *handler) intParam(w http.ResponseWriter, r *http.Request, name string, def int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > h.opts.MaxPageSize {
		badRequest(w, "%s must be an integer from 1 to %d, got %q", name, h.opts.MaxPageSize, s)
		return 0, false
	}
	return n, true
}

func timeParam(w http.ResponseWriter, r *http.Request, name string) (time.Time, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		badRequest(w, "%s must be an RFC 3339 time, got %q", name, s)
		return time.Time{}, false
	}
	return t, true
}

func uintParam(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		badRequest(w, "%s must be a non-negative integer, got %q", name, s)
		return 0, false
	}
	return n, true
}

// audit serves the retained audit log, newest first, filtered, in pages. `before_seq` pages
// backwards (pass the response's next_before_seq); `since_seq` returns only entries after a
// sequence number.
func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	if !rejectUnknown(w, r, "node", "action", "result", "since_seq", "before_seq", "from", "to", "limit") {
		return
	}
	q := r.URL.Query()
	limit, ok := h.intParam(w, r, "limit", 100)
	if !ok {
		return
	}
	var action *lifecycle.Action
	if s := q.Get("action"); s != "" {
		var a lifecycle.Action
		if err := a.UnmarshalText([]byte(s)); err != nil {
			badRequest(w, "action: %v", err)
			return
		}
		action = &a
	}
	var result *lifecycle.Result
	if s := q.Get("result"); s != "" {
		var res lifecycle.Result
		if err := res.UnmarshalText([]byte(s)); err != nil {
			badRequest(w, "result: %v", err)
			return
		}
		result = &res
	}
	since, ok := uintParam(w, r, "since_seq")
	if !ok {
		return
	}
	before, ok := uintParam(w, r, "before_seq")
	if !ok {
		return
	}
	from, ok := timeParam(w, r, "from")
	if !ok {
		return
	}
	to, ok := timeParam(w, r, "to")
	if !ok {
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		badRequest(w, "from must be before to")
		return
	}

	// The ring is bounded, so reading what it retains and filtering here is cheap; the node
	// filter uses the ring's per-node index.
	var entries []lifecycle.AuditEntry
	var err error
	if node := q.Get("node"); node != "" {
		entries, err = h.fleet.AuditByNode(node, 1<<31-1)
	} else {
		entries, err = h.fleet.AuditRecent(1<<31 - 1)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq > entries[j].Seq })
	page := []entryDTO{}
	var next *uint64
	for _, e := range entries {
		switch {
		case before != 0 && e.Seq >= before,
			e.Seq <= since,
			action != nil && e.Action != *action,
			result != nil && e.Result != *result,
			!from.IsZero() && e.Time.Before(from),
			!to.IsZero() && !e.Time.Before(to):
			continue
		}
		if len(page) == limit {
			seq := page[len(page)-1].Seq
			next = &seq
			break
		}
		page = append(page, entryOf(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": page, "next_before_seq": next})
}

func (h *handler) projection(w http.ResponseWriter, r *http.Request) {
	if !rejectUnknown(w, r) {
		return
	}
	p, err := h.fleet.Projection()
	if err != nil {
		writeError(w, err)
		return
	}
	coming := []map[string]any{}
	for _, c := range p.ComingNodes {
		coming = append(coming, map[string]any{"node_id": c.NodeID, "state": c.State.String(), "total_ram_mb": c.TotalRAMMB, "ready_deadline": c.ReadyDeadline.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"at": p.At.UTC(), "now": p.Now, "coming": p.Coming, "coming_nodes": coming,
		"leaving": p.Leaving, "unusable": p.Unusable,
		"utilisation_now": p.UtilisationNow, "utilisation_projected": p.UtilisationProjected,
	})
}

func (h *handler) plan(w http.ResponseWriter, r *http.Request) {
	if !rejectUnknown(w, r, "non_migratable", "last_consolidation", "min_savings_eur_per_hour", "max_utilisation_after") {
		return
	}
	q := r.URL.Query()
	req := lifecycle.ConsolidationRequest{}
	if s := q.Get("non_migratable"); s != "" {
		req.NonMigratable = strings.Split(s, ",")
	}
	last, ok := timeParam(w, r, "last_consolidation")
	if !ok {
		return
	}
	req.LastConsolidation = last
	for name, dst := range map[string]*float64{"min_savings_eur_per_hour": &req.Policy.MinSavingsPerHour, "max_utilisation_after": &req.Policy.MaxUtilisationAfter} {
		if s := q.Get(name); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				badRequest(w, "%s must be a number, got %q", name, s)
				return
			}
			*dst = v
		}
	}
	plan, err := h.fleet.ConsolidationPlan(req)
	if err != nil {
		writeError(w, err)
		return
	}
	if plan.Remove == nil {
		plan.Remove = []lifecycle.RemovedNode{}
	}
	if plan.Moves == nil {
		plan.Moves = []lifecycle.ContainerMove{}
	}
	writeJSON(w, http.StatusOK, plan)
}

func (h *handler) decommission(w http.ResponseWriter, r *http.Request) {
	if h.opts.Delete == nil || h.opts.Authorize == nil {
		writeJSON(w, http.StatusMethodNotAllowed, errorDTO{Error: "mutating endpoints are disabled (read-only API)"})
		return
	}
	if err := h.opts.Authorize(r); err != nil {
		writeJSON(w, http.StatusForbidden, errorDTO{Error: err.Error()})
		return
	}
	if !rejectUnknown(w, r) {
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	ticket, err := h.fleet.Decommission(ctx, id, "manual", h.opts.Delete)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": id, "ticket": ticket.ID, "state": "decommissioned"})
}
