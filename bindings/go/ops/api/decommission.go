package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// decommission runs a manual decommission: begin (the safety rules, then draining, under the
// fleet's lock), delete at the provider, complete or fail. The provider call does not depend on
// the client staying connected: it runs to its end (bounded by Options.DeleteTimeout) and its
// outcome is recorded. A failure answers 502 with the ticket; the ticket endpoints find it too.
func (h *handler) decommission(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() || !noBody(w, r) {
		return
	}
	if h.opts.Delete == nil {
		writeJSON(w, http.StatusMethodNotAllowed, errorDTO{Error: "manual decommissions are disabled (no delete function configured)"})
		return
	}
	id := r.PathValue("id")
	ticket, err := h.fleet.BeginDecommission(id, "manual")
	if err != nil {
		writeError(w, err)
		return
	}
	h.deleteAndComplete(w, r, ticket)
}

// deleteAndComplete deletes the VM under an outstanding ticket and completes it, or records the
// failure and answers 502 with the ticket.
func (h *handler) deleteAndComplete(w http.ResponseWriter, r *http.Request, ticket lifecycle.Ticket) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.opts.DeleteTimeout)
	defer cancel()
	if err := callDelete(ctx, h.opts.Delete, ticket.NodeID); err != nil {
		if ferr := h.fleet.FailDecommission(ticket, err); ferr != nil {
			writeError(w, ferr)
			return
		}
		writeJSON(w, http.StatusBadGateway, errorDTO{
			Error:  fmt.Sprintf("deleting %s at the provider failed: %v (the node stays draining; retry or cancel with the ticket)", ticket.NodeID, err),
			Ticket: ticketRef(ticket),
		})
		return
	}
	if err := h.fleet.CompleteDecommission(ticket); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": ticket.NodeID, "state": lifecycle.StateDecommissioned.String(), "ticket": ticketRef(ticket)})
}

// callDelete runs the provider's delete, turning a panic into an error (the failure is then
// recorded like any other).
func callDelete(ctx context.Context, del lifecycle.DeleteFunc, node string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in delete function: %v", p)
		}
	}()
	return del(ctx, node)
}

// ticket answers the outstanding decommission of a node (404 when there is none).
func (h *handler) ticket(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	id := r.PathValue("id")
	n, err := h.fleet.Node(id)
	if err != nil {
		writeError(w, err)
		return
	}
	if n.Decommission == nil {
		writeJSON(w, http.StatusNotFound, errorDTO{Error: fmt.Sprintf("node %q has no decommission in progress", id)})
		return
	}
	t := n.Decommission
	writeJSON(w, http.StatusOK, map[string]any{
		"ticket": ticketRef(t.Ticket), "decision_by": t.DecisionBy, "issued_at": utc(t.IssuedAt),
		"pre_drain_state": t.PreDrainState.String(), "state": n.State.String(),
	})
}

// ticketBody is the body of the ticket endpoints.
type ticketBody struct {
	Ticket string `json:"ticket"`
	// Delete (complete): delete the VM at the provider first, as the interrupted request would
	// have; without it, complete records that the VM is already gone.
	Delete bool `json:"delete"`
	// Error (fail): the provider's failure text.
	Error string `json:"error"`
	// Reason (cancel): why the node is kept.
	Reason string `json:"reason"`
}

// readTicket reads the body, allowing only the named fields, and returns the ticket it names.
func readTicket(w http.ResponseWriter, r *http.Request, allowed ...string) (lifecycle.Ticket, ticketBody, bool) {
	var body ticketBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorDTO{Error: fmt.Sprintf("reading the body: %v", err)})
		return lifecycle.Ticket{}, body, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "the body must be a JSON object: " + err.Error()})
		return lifecycle.Ticket{}, body, false
	}
	for k := range fields {
		if k != "ticket" && !contains(allowed, k) {
			writeJSON(w, http.StatusBadRequest, errorDTO{Error: fmt.Sprintf("unknown field %q", k), Parameter: k})
			return lifecycle.Ticket{}, body, false
		}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "the body's fields have the wrong types: " + err.Error()})
		return lifecycle.Ticket{}, body, false
	}
	tid, err := lifecycle.ParseTicketID(body.Ticket)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "ticket must be the 32 hex digits of GET /nodes/{id}/ticket", Parameter: "ticket"})
		return lifecycle.Ticket{}, body, false
	}
	return lifecycle.Ticket{ID: tid, NodeID: r.PathValue("id")}, body, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// noBody refuses a body where none is expected.
func noBody(w http.ResponseWriter, r *http.Request) bool {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1))
	if n > 0 {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "this endpoint takes no body"})
		return false
	}
	return true
}

func (h *handler) completeTicket(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	ticket, body, ok := readTicket(w, r, "delete")
	if !ok {
		return
	}
	if body.Delete {
		if h.opts.Delete == nil {
			writeJSON(w, http.StatusMethodNotAllowed, errorDTO{Error: "no delete function configured; delete the VM by other means and complete without delete"})
			return
		}
		// Check the ticket before calling the provider: a wrong ticket deletes nothing.
		if cur, ok, err := h.fleet.TicketFor(ticket.NodeID); err != nil || !ok || cur != ticket {
			if err == nil {
				err = &lifecycle.Error{Code: lifecycle.CodeTicketInvalid, Message: "ticket " + ticket.ID.String() + " is not the outstanding ticket of node " + ticket.NodeID}
			}
			writeError(w, err)
			return
		}
		h.deleteAndComplete(w, r, ticket)
		return
	}
	if err := h.fleet.CompleteDecommission(ticket); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": ticket.NodeID, "state": lifecycle.StateDecommissioned.String(), "ticket": ticketRef(ticket)})
}

func (h *handler) failTicket(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	ticket, body, ok := readTicket(w, r, "error")
	if !ok {
		return
	}
	if body.Error == "" {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "error must name the failure", Parameter: "error"})
		return
	}
	if err := h.fleet.FailDecommission(ticket, errors.New(body.Error)); err != nil {
		writeError(w, err)
		return
	}
	h.stateAnswer(w, ticket)
}

func (h *handler) cancelTicket(w http.ResponseWriter, r *http.Request) {
	if !params(w, r).done() {
		return
	}
	ticket, body, ok := readTicket(w, r, "reason")
	if !ok {
		return
	}
	if body.Reason == "" {
		writeJSON(w, http.StatusBadRequest, errorDTO{Error: "reason must say why the node is kept", Parameter: "reason"})
		return
	}
	if _, err := h.fleet.CancelDecommission(ticket, body.Reason); err != nil {
		writeError(w, err)
		return
	}
	h.stateAnswer(w, ticket)
}

func (h *handler) stateAnswer(w http.ResponseWriter, ticket lifecycle.Ticket) {
	n, err := h.fleet.Node(ticket.NodeID)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node_id": ticket.NodeID, "state": n.State.String(), "ticket": ticketRef(ticket)})
}
