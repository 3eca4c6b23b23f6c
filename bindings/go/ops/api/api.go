// Package api serves a lifecycle.Fleet as a JSON HTTP API for dashboards and operators: pages
// of nodes with their verdicts, one node with its history, pages of the audit log, the fleet
// projection, a dry-run consolidation plan, and — only when the embedding program enables them
// with an authorisation hook — manual decommissions and the tickets of decommissions in flight.
// It is a plain net/http Handler, so it mounts in any router (gin: gin.WrapH).
//
// Every request costs O(limit) (plus O(log n) to seek), never O(fleet) or O(ring): pages are
// cut in the library, under its lock only while the page is copied. Consolidation plans are
// O(n log n); they run at most Options.MaxConcurrentPlans at a time and Options.PlansPerMinute a
// minute (429 with Retry-After beyond). A closed fleet answers 503. Every answer,
// errors and unknown paths included, is JSON; malformed, repeated, empty, out-of-range, NaN or
// infinite parameters are a 400 naming the parameter. The contract is openapi.yaml (served at
// GET /openapi.yaml), and the tests validate every response against it.
package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// OpenAPI is the API's description (OpenAPI 3.0).
//
//go:embed openapi.yaml
var OpenAPI []byte

// Options configure the handler. The zero value serves a read-only API.
type Options struct {
	// Authorize decides whether a request may mutate or see a decommission ticket; a non-nil
	// error answers 403 with it. Without it every mutating and ticket endpoint answers 405.
	Authorize func(r *http.Request) error
	// Delete deletes a VM at the provider. With Authorize it enables
	// POST /nodes/{id}/decommission (decision_by=manual) and the delete-then-complete retry.
	Delete lifecycle.DeleteFunc
	// DeleteTimeout bounds a provider delete started by a request (10 minutes). The delete
	// runs to its end even if the client disconnects: the outcome is recorded either way.
	DeleteTimeout time.Duration
	// MaxPageSize caps ?limit= and ?history= (1000).
	MaxPageSize int
	// MaxConcurrentPlans bounds concurrent consolidation plans (1); more answer 429.
	MaxConcurrentPlans int
	// PlansPerMinute and PlanBurst bound the rate of consolidation plans (6 a minute, in bursts
	// of up to 2): a plan is O(n log n) in fleet size, so a client asking back to back would
	// keep a core busy. Beyond the rate the answer is 429 with Retry-After (whole seconds).
	PlansPerMinute int
	PlanBurst      int
}

const (
	defaultPageSize      = 100
	defaultMaxPageSize   = 1000
	defaultDeleteTimeout = 10 * time.Minute
	maxBodyBytes         = 64 << 10
)

type handler struct {
	fleet *lifecycle.Fleet
	opts  Options
	mux   *http.ServeMux
	plans chan struct{} // a slot per consolidation plan allowed to run
	rate  *planRate
}

// New returns the API for fleet, to be mounted where the caller likes (e.g. under
// /api/lifecycle/ with http.StripPrefix).
func New(fleet *lifecycle.Fleet, opts Options) http.Handler {
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = defaultMaxPageSize
	}
	if opts.MaxConcurrentPlans <= 0 {
		opts.MaxConcurrentPlans = 1
	}
	if opts.DeleteTimeout <= 0 {
		opts.DeleteTimeout = defaultDeleteTimeout
	}
	if opts.PlansPerMinute <= 0 {
		opts.PlansPerMinute = 6
	}
	if opts.PlanBurst <= 0 {
		opts.PlanBurst = 2
	}
	h := &handler{fleet: fleet, opts: opts, mux: http.NewServeMux(), plans: make(chan struct{}, opts.MaxConcurrentPlans),
		rate: newPlanRate(opts.PlansPerMinute, opts.PlanBurst, time.Now)}
	h.mux.HandleFunc("GET /nodes", h.nodes)
	h.mux.HandleFunc("GET /nodes/{id}", h.node)
	h.mux.HandleFunc("GET /audit", h.audit)
	h.mux.HandleFunc("GET /projection", h.projection)
	h.mux.HandleFunc("GET /consolidation-plan", h.plan)
	h.mux.HandleFunc("POST /nodes/{id}/decommission", h.mutating(h.decommission))
	h.mux.HandleFunc("GET /nodes/{id}/ticket", h.mutating(h.ticket))
	h.mux.HandleFunc("POST /nodes/{id}/ticket/complete", h.mutating(h.completeTicket))
	h.mux.HandleFunc("POST /nodes/{id}/ticket/fail", h.mutating(h.failTicket))
	h.mux.HandleFunc("POST /nodes/{id}/ticket/cancel", h.mutating(h.cancelTicket))
	h.mux.HandleFunc("GET /openapi.yaml", h.openapi)
	return h
}

// ServeHTTP routes, answering unknown paths (404) and methods (405, with Allow) in JSON too.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := h.mux.Handler(probe); p != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		writeJSON(w, http.StatusNotFound, errorDTO{Error: "no such endpoint: " + r.URL.Path})
		return
	}
	for _, m := range allowed {
		w.Header().Add("Allow", m)
	}
	writeJSON(w, http.StatusMethodNotAllowed, errorDTO{Error: r.Method + " is not allowed on " + r.URL.Path})
}

func (h *handler) openapi(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}

// mutating guards an endpoint that changes the fleet or reveals a ticket: disabled (405)
// without an authorisation hook, 403 when the hook refuses.
func (h *handler) mutating(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Authorize == nil {
			writeJSON(w, http.StatusMethodNotAllowed, errorDTO{Error: "mutating endpoints are disabled (read-only API)"})
			return
		}
		if err := h.opts.Authorize(r); err != nil {
			writeJSON(w, http.StatusForbidden, errorDTO{Error: err.Error()})
			return
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errorDTO is every error's body.
type errorDTO struct {
	Error string `json:"error"`
	// Code and Name are the library's result code and its name, when the error came from it.
	Code uint32 `json:"code,omitempty"`
	Name string `json:"name,omitempty"`
	// Parameter names the query parameter or body field that was refused.
	Parameter string `json:"parameter,omitempty"`
	// Verdict is set for a refusal by the safety rules.
	Verdict *verdictDTO `json:"verdict,omitempty"`
	// Ticket is set when a decommission stays in flight (a failed provider delete).
	Ticket *ticketRefDTO `json:"ticket,omitempty"`
}

// writeError maps library errors to HTTP statuses, keeping the code and the verdict.
func writeError(w http.ResponseWriter, err error) {
	body := errorDTO{Error: err.Error()}
	status := http.StatusInternalServerError
	var le *lifecycle.Error
	if errors.As(err, &le) {
		body.Code = uint32(le.Code)
		body.Name = codeName(le)
		switch {
		case errors.Is(err, lifecycle.ErrNodeNotFound):
			status = http.StatusNotFound
		case errors.Is(err, lifecycle.ErrRejected), errors.Is(err, lifecycle.ErrTicketInvalid),
			errors.Is(err, lifecycle.ErrStalePlan), errors.Is(err, lifecycle.ErrNotSchedulable),
			errors.Is(err, lifecycle.ErrInvalidTransition):
			status = http.StatusConflict
		case errors.Is(err, lifecycle.ErrInvalidArgument), errors.Is(err, lifecycle.ErrInvalidUTF8),
			errors.Is(err, lifecycle.ErrInvalidSetting), errors.Is(err, lifecycle.ErrUnknownEnum):
			status = http.StatusBadRequest
			body.Parameter = le.Field
		case errors.Is(err, lifecycle.ErrClosed), errors.Is(err, lifecycle.ErrPoisoned), errors.Is(err, lifecycle.ErrStorage):
			status = http.StatusServiceUnavailable
		}
		if le.Verdict != nil {
			v := verdictOf(*le.Verdict)
			body.Verdict = &v
		}
	}
	writeJSON(w, status, body)
}

// codeName is the library's name of an error's code ("has_containers", "node_not_found").
func codeName(e *lifecycle.Error) string {
	if r := e.Reason(); r != 0 {
		return r.String()
	}
	if n, ok := codeNames[e.Code]; ok {
		return n
	}
	return ""
}

var codeNames = map[lifecycle.Code]string{
	lifecycle.CodeInvalidUTF8: "invalid_utf8", lifecycle.CodeInvalidArgument: "invalid_argument",
	lifecycle.CodeNodeNotFound: "node_not_found", lifecycle.CodeNodeExists: "node_exists",
	lifecycle.CodeInvalidTransition: "invalid_transition", lifecycle.CodeNotSchedulable: "not_schedulable",
	lifecycle.CodeInsufficientCapacity: "insufficient_capacity", lifecycle.CodeTicketInvalid: "ticket_invalid",
	lifecycle.CodeUnknownEnum: "unknown_enum", lifecycle.CodeUseAfterFree: "closed",
	lifecycle.CodeStorage: "storage", lifecycle.CodeInvalidSetting: "invalid_setting",
	lifecycle.CodeProtocolOnly: "protocol_only", lifecycle.CodeContainerElsewhere: "container_elsewhere",
	lifecycle.CodeClaimNotFound: "claim_not_found", lifecycle.CodeStalePlan: "stale_plan",
	lifecycle.CodePoisoned: "poisoned", lifecycle.CodePanic: "panic",
}
