package lifecycle

import (
	"encoding/json"
	"math/bits"
	"time"
)

// Verdict says whether a node may be deleted now, and if not, every reason why.
type Verdict struct {
	Allowed bool
	// State is the state the node was evaluated in.
	State State
	// Primary is the first blocking reason in rule order; 0 when allowed.
	Primary Reason
	// Reasons lists every blocking reason in rule order.
	Reasons []Reason
	// RetryAfter is when the node could next pass, if timers are the only blockers; zero otherwise.
	RetryAfter time.Time
	// Explanation is the verdict in words. It is set by Explain, ExplainAll, NodeRow and
	// NodesPage and in every verdict carried by an error; Evaluate and EvaluateAll leave it nil
	// to stay small and allocation-free (a verdict is copied on every call).
	Explanation *Explanation
}

// Explanation is a verdict in words.
type Explanation struct {
	// Messages holds a human message per reason (same order as Verdict.Reasons), naming
	// every hold.
	Messages []string
	// Message is the whole verdict in one line.
	Message string
	// Holds and Cordons name what was on the node. A cordon does not block deletion; it is
	// reported because it explains why a node is empty.
	Holds   []Mark
	Cordons []Mark
	// IdleGraceWaivedBy names the evacuate cordon under which the node was emptied, when the
	// idle grace was waived for that reason.
	IdleGraceWaivedBy string
	// UnhealthyGraceWaivedBy is what the provider said when it confirmed the unhealthy node's
	// VM is gone (Fleet.ConfirmGone), when the unhealthy grace was waived for that reason.
	UnhealthyGraceWaivedBy string
}

// Message is the whole verdict in one line, or "" for a verdict without an explanation.
func (v Verdict) Message() string {
	if v.Explanation == nil {
		return ""
	}
	return v.Explanation.Message
}

// Mark is a named hold or cordon with its detail.
type Mark struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

// Has reports whether r is among the blocking reasons.
func (v Verdict) Has(r Reason) bool {
	for _, x := range v.Reasons {
		if x == r {
			return true
		}
	}
	return false
}

func (f flatVerdict) verdict() Verdict {
	var out Verdict
	f.fill(&out, nil)
	return out
}

// fill writes a flat verdict into *out (which is zero), taking its Reasons from the end of
// *buf when buf is not nil (it must have room for them: a batch of verdicts shares one
// allocation). Written in place: a Verdict is ten words, and copying it through return values
// cost more than the call into the library.
func (f *flatVerdict) fill(out *Verdict, buf *[]Reason) {
	out.Allowed, out.State, out.Primary = f.allowed, State(f.state), Reason(f.primary)
	if mask := f.mask; mask != 0 {
		if buf == nil {
			own := make([]Reason, 0, bits.OnesCount64(mask))
			buf = &own
		}
		// Rule order is the numeric order of the reason codes, so walking the mask from the
		// lowest bit up yields the reasons in rule order.
		start := len(*buf)
		for mask != 0 {
			*buf = append(*buf, Reason(100+bits.TrailingZeros64(mask)))
			mask &= mask - 1
		}
		out.Reasons = (*buf)[start:len(*buf):len(*buf)]
	}
	if f.hasRetry {
		out.RetryAfter = time.UnixMilli(f.retryAfterMs)
	}
}

type verdictJSON struct {
	Allowed     bool  `json:"allowed"`
	State       State `json:"state"`
	PrimaryCode int   `json:"primary_code"`
	Reasons     []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
	Message                string  `json:"message"`
	RetryAfterMs           *int64  `json:"retry_after_ms"`
	Holds                  []Mark  `json:"holds"`
	Cordons                []Mark  `json:"cordons"`
	IdleGraceWaivedBy      *string `json:"idle_grace_waived_by"`
	UnhealthyGraceWaivedBy *string `json:"unhealthy_grace_waived_by"`
}

func (v *Verdict) UnmarshalJSON(b []byte) error {
	var j verdictJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = j.verdict()
	return nil
}

func (j *verdictJSON) verdict() Verdict {
	x := &Explanation{Message: j.Message, Holds: nonNil(j.Holds), Cordons: nonNil(j.Cordons),
		Messages: make([]string, 0, len(j.Reasons))}
	v := Verdict{Allowed: j.Allowed, State: j.State, Primary: Reason(j.PrimaryCode), Explanation: x}
	for _, r := range j.Reasons {
		v.Reasons = append(v.Reasons, Reason(r.Code))
		x.Messages = append(x.Messages, r.Message)
	}
	if j.RetryAfterMs != nil {
		v.RetryAfter = time.UnixMilli(*j.RetryAfterMs)
	}
	if j.IdleGraceWaivedBy != nil {
		x.IdleGraceWaivedBy = *j.IdleGraceWaivedBy
	}
	if j.UnhealthyGraceWaivedBy != nil {
		x.UnhealthyGraceWaivedBy = *j.UnhealthyGraceWaivedBy
	}
	return v
}

// NodeVerdict pairs a node with its verdict (Fleet.EvaluateAll).
type NodeVerdict struct {
	NodeID  string  `json:"node_id"`
	Verdict Verdict `json:"verdict"`
}
