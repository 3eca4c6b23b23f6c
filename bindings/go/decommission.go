package lifecycle

// #include "node_lifecycle.h"
import "C"

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"unsafe"
)

// Ticket proves that a node entered the two-phase decommission. Pass it to
// CompleteDecommission, FailDecommission or CancelDecommission.
type Ticket struct {
	ID     uint64
	NodeID string
}

// Evaluate returns the safety verdict for a node now, without messages (see Explain).
func (f *Fleet) Evaluate(nodeID string) (Verdict, error) {
	h, err := f.handle()
	if err != nil {
		return Verdict{}, err
	}
	np, nl := cstr(nodeID)
	var v C.nl_verdict
	var cerr *C.nl_error
	r := C.nl_fleet_evaluate(h, np, nl, &v, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	if err := takeError(r, cerr); err != nil {
		return Verdict{}, err
	}
	return verdictFromC(&v), nil
}

// Explain returns the safety verdict with a human message for every reason.
func (f *Fleet) Explain(nodeID string) (Verdict, error) {
	h, err := f.handle()
	if err != nil {
		return Verdict{}, err
	}
	np, nl := cstr(nodeID)
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_evaluate_json(h, np, nl, &b, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	var v Verdict
	err = decodeJSON(r, b, cerr, &v)
	return v, err
}

// EvaluateAll returns every node's verdict, ordered by node id, in one call: a dry run of what
// a policy may delete now and why not the rest. It crosses into the library once for the
// whole fleet (no messages; see ExplainAll).
func (f *Fleet) EvaluateAll() ([]NodeVerdict, error) {
	h, err := f.handle()
	if err != nil {
		return nil, err
	}
	var list *C.nl_verdict_list
	var cerr *C.nl_error
	r := C.nl_fleet_evaluate_all(h, &list, &cerr)
	runtime.KeepAlive(f)
	if err := takeError(r, cerr); err != nil {
		return nil, err
	}
	defer C.nl_verdict_list_free(list)
	var count, idsLen C.size_t
	items := C.nl_verdict_list_items(list, &count)
	ids := C.nl_verdict_list_ids(list, &idsLen)
	out := make([]NodeVerdict, int(count))
	if count == 0 {
		return out, nil
	}
	itemSlice := unsafe.Slice(items, int(count))
	// One copy of all ids; each NodeID is a substring of it.
	allIDs := C.GoStringN((*C.char)(unsafe.Pointer(ids)), C.int(idsLen))
	total := 0
	for i := range itemSlice {
		total += bits.OnesCount64(uint64(itemSlice[i].verdict.reasons_mask))
	}
	// One backing array for every node's Reasons: a fleet-wide call allocates a constant
	// number of times, not once per blocked node.
	reasons := make([]Reason, 0, total)
	for i := range itemSlice {
		it := &itemSlice[i]
		out[i] = NodeVerdict{
			NodeID:  allIDs[it.id.offset : it.id.offset+it.id.len],
			Verdict: verdictFromCInto(&it.verdict, &reasons),
		}
	}
	return out, nil
}

// ExplainAll is EvaluateAll with a human message for every reason (one JSON document).
func (f *Fleet) ExplainAll() ([]NodeVerdict, error) {
	h, err := f.handle()
	if err != nil {
		return nil, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_evaluate_all_json(h, &b, &cerr)
	runtime.KeepAlive(f)
	out := []NodeVerdict{}
	err = decodeJSON(r, b, cerr, &out)
	return out, err
}

// BeginDecommission is phase 1: it evaluates the node and, if allowed, moves it to draining
// under the same lock and returns a ticket. A refusal is recorded in the audit log and returned
// as an *Error matching ErrRejected and its Reasons, with the Verdict attached. decisionBy
// names the caller ("reactive_policy", "consolidation_policy", "manual", ...), required.
func (f *Fleet) BeginDecommission(nodeID, decisionBy string) (Ticket, error) {
	h, err := f.handle()
	if err != nil {
		return Ticket{}, err
	}
	np, nl := cstr(nodeID)
	bp, bl := cstr(decisionBy)
	var ticket C.uint64_t
	var cerr *C.nl_error
	r := C.nl_fleet_begin_decommission(h, np, nl, bp, bl, &ticket, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(decisionBy)
	if err := takeError(r, cerr); err != nil {
		return Ticket{}, err
	}
	return Ticket{ID: uint64(ticket), NodeID: nodeID}, nil
}

// CompleteDecommission is phase 3 after the VM was deleted: the node becomes decommissioned
// and a success entry is recorded. The ticket is used up.
func (f *Fleet) CompleteDecommission(t Ticket) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	var cerr *C.nl_error
	r := C.nl_fleet_complete_decommission(h, C.uint64_t(t.ID), &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}

// FailDecommission records that deleting the VM failed. The node stays draining and the
// ticket stays valid: complete, fail again or cancel later.
func (f *Fleet) FailDecommission(t Ticket, cause error) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	ep, el := cstr(msg)
	var cerr *C.nl_error
	r := C.nl_fleet_fail_decommission(h, C.uint64_t(t.ID), ep, el, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(msg)
	return takeError(r, cerr)
}

// CancelDecommission abandons a decommission: the node returns to ready or idle (the state it
// had before draining). The ticket is used up.
func (f *Fleet) CancelDecommission(t Ticket, reason string) (State, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	rp, rl := cstr(reason)
	var state C.uint32_t
	var cerr *C.nl_error
	r := C.nl_fleet_cancel_decommission(h, C.uint64_t(t.ID), rp, rl, &state, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(reason)
	return State(state), takeError(r, cerr)
}

// DeleteFunc deletes a node's VM at the cloud provider.
type DeleteFunc func(ctx context.Context, nodeID string) error

// Decommission runs the whole protocol in one call: BeginDecommission, then deleteVM, then
// CompleteDecommission on success or FailDecommission on error (the node then stays draining
// and a later Decommission call is rejected until the ticket is resolved: retry with
// CompleteDecommission/CancelDecommission on the returned ticket). A rejection is returned
// without calling deleteVM. A panic in deleteVM is recorded as a failure and re-raised.
func (f *Fleet) Decommission(ctx context.Context, nodeID, decisionBy string, deleteVM DeleteFunc) (Ticket, error) {
	if deleteVM == nil {
		return Ticket{}, &Error{Code: CodeNullArgument, Message: "deleteVM must not be nil"}
	}
	t, err := f.BeginDecommission(nodeID, decisionBy)
	if err != nil {
		return Ticket{}, err
	}
	deleteErr := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				_ = f.FailDecommission(t, fmt.Errorf("panic in delete function: %v", p))
				panic(p)
			}
		}()
		return deleteVM(ctx, nodeID)
	}()
	if deleteErr != nil {
		if err := f.FailDecommission(t, deleteErr); err != nil {
			return t, fmt.Errorf("deleting %s: %w (and recording the failure: %v)", nodeID, deleteErr, err)
		}
		return t, fmt.Errorf("deleting %s: %w", nodeID, deleteErr)
	}
	return t, f.CompleteDecommission(t)
}
