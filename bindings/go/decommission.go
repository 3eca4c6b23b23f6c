package lifecycle

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// TicketID identifies a decommission: 16 random bytes, unique across fleets and restarts.
type TicketID [16]byte

func (id TicketID) String() string { return hexString(id[:]) }

func (id TicketID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *TicketID) UnmarshalText(b []byte) error { return parseHex(id[:], b, "ticket id") }

// ParseTicketID is the inverse of TicketID.String.
func ParseTicketID(s string) (TicketID, error) {
	var id TicketID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

// Ticket proves that a node entered the two-phase decommission. It is valid only for the
// fleet that issued it and the node it names: any other pairing is ErrTicketInvalid. A caller
// that lost it finds it again with TicketFor.
type Ticket struct {
	ID     TicketID `json:"id"`
	NodeID string   `json:"node_id"`
}

// Evaluate returns the safety verdict for a node now, without messages (see Explain).
func (f *Fleet) Evaluate(nodeID string) (v Verdict, err error) {
	b, err := f.backend()
	if err != nil {
		return v, err
	}
	flat, err := b.evaluate(nodeID)
	runtime.KeepAlive(f)
	if err != nil {
		return v, err
	}
	flat.fill(&v, nil)
	return v, nil
}

// Explain returns the safety verdict with a message for every reason and the names of the
// node's holds and cordons.
func (f *Fleet) Explain(nodeID string) (Verdict, error) {
	var v Verdict
	err := f.do(op{"op": "explain", "node": nodeID}, &v)
	return v, err
}

// EvaluateAll returns every node's verdict, ordered by node id, in one call: a dry run of what
// a policy may delete now and why not the rest. It crosses into the library once for the
// whole fleet and allocates a constant number of times (no messages; see ExplainAll).
func (f *Fleet) EvaluateAll() ([]NodeVerdict, error) {
	b, err := f.backend()
	if err != nil {
		return nil, err
	}
	var out []NodeVerdict
	err = b.evaluateAll(func(items, ids []byte) { out = decodeNodeVerdicts(items, ids) })
	runtime.KeepAlive(f)
	return out, err
}

// ExplainAll is EvaluateAll with messages and names for every node.
func (f *Fleet) ExplainAll() ([]NodeVerdict, error) {
	out := []NodeVerdict{}
	err := f.do(op{"op": "explain_all"}, &out)
	return out, err
}

// BeginDecommission is phase 1: it evaluates the node and, if allowed, moves it to draining
// under the same lock and returns a ticket. A refusal is recorded in the audit log and returned
// as an *Error matching ErrRejected and its Reasons, with the Verdict (messages included)
// attached. decisionBy names the caller ("reactive_policy", "consolidation_policy",
// "manual", ...), required. A node with a ticket already is ReasonDecommissionInProgress: find
// the ticket with TicketFor.
func (f *Fleet) BeginDecommission(nodeID, decisionBy string) (Ticket, error) {
	var t Ticket
	err := f.do(op{"op": "begin_decommission", "node": nodeID, "decision_by": decisionBy}, &t)
	return t, err
}

// CompleteDecommission is phase 3 after the VM was deleted: the node becomes decommissioned
// and a success entry is recorded. The ticket is used up.
func (f *Fleet) CompleteDecommission(t Ticket) error {
	return f.do(op{"op": "complete_decommission", "ticket": t}, nil)
}

// FailDecommission records that deleting the VM failed, with the provider's error text (any
// text is recorded: invalid UTF-8 replaced, control characters escaped, the length bounded).
// The node stays draining and the ticket stays valid: complete, fail again or cancel later.
func (f *Fleet) FailDecommission(t Ticket, cause error) error {
	return f.do(op{"op": "fail_decommission", "ticket": t, "error": errorText(cause)}, nil)
}

// CancelDecommission abandons a decommission: the node returns to the state it had before
// draining (ready or idle). The ticket is used up.
func (f *Fleet) CancelDecommission(t Ticket, reason string) (State, error) {
	var out struct {
		State State `json:"state"`
	}
	err := f.do(op{"op": "cancel_decommission", "ticket": t, "reason": reason}, &out)
	return out.State, err
}

// TicketFor returns a node's outstanding ticket, for a caller that lost it (a crash, a failed
// delete, a client that disconnected). ok is false when there is none.
func (f *Fleet) TicketFor(nodeID string) (t Ticket, ok bool, err error) {
	var out *Ticket
	if err := f.do(op{"op": "ticket_for", "node": nodeID}, &out); err != nil || out == nil {
		return Ticket{}, false, err
	}
	return *out, true, nil
}

// DeleteFunc deletes a node's VM at the cloud provider.
type DeleteFunc func(ctx context.Context, nodeID string) error

// Decommission runs the whole protocol in one call: BeginDecommission, then deleteVM, then
// CompleteDecommission on success or FailDecommission on error.
//
// A context that is already done changes nothing and calls nothing (its error is returned). A
// rejection is returned without calling deleteVM. When deleteVM fails (or panics: the panic is
// recorded as a failure and re-raised), the node stays draining and the returned ticket stays
// valid: retry the delete and call CompleteDecommission, or CancelDecommission; a caller that
// lost the ticket finds it with TicketFor.
func (f *Fleet) Decommission(ctx context.Context, nodeID, decisionBy string, deleteVM DeleteFunc) (Ticket, error) {
	if deleteVM == nil {
		return Ticket{}, &Error{Code: CodeNullArgument, Message: "deleteVM must not be nil"}
	}
	if err := ctx.Err(); err != nil {
		return Ticket{}, fmt.Errorf("lifecycle: decommission of %s not started: %w", nodeID, err)
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
			return t, fmt.Errorf("lifecycle: deleting %s: %w (and recording the failure: %v)", nodeID, deleteErr, err)
		}
		return t, fmt.Errorf("lifecycle: deleting %s: %w", nodeID, deleteErr)
	}
	return t, f.CompleteDecommission(t)
}

// TicketInfo is an outstanding decommission as a node view shows it.
type TicketInfo struct {
	Ticket        Ticket
	DecisionBy    string
	IssuedAt      time.Time
	PreDrainState State
}
