package lifecycle

// #include "node_lifecycle.h"
import "C"

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
	// Messages holds a human message per reason (same order as Reasons). It is filled by
	// Fleet.Explain and by rejections returned as errors; Fleet.Evaluate leaves it empty to
	// stay allocation-light.
	Messages []string
	// RetryAfter is when the node could next pass, if timers are the only blockers; zero otherwise.
	RetryAfter time.Time
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

func verdictFromC(v *C.nl_verdict) Verdict {
	var buf []Reason
	if mask := uint64(v.reasons_mask); mask != 0 {
		buf = make([]Reason, 0, bits.OnesCount64(mask))
	}
	return verdictFromCInto(v, &buf)
}

// verdictFromCInto converts a flat verdict, taking its Reasons from the front of *buf (which
// must have room for them), so that a batch of verdicts shares one allocation.
func verdictFromCInto(v *C.nl_verdict, buf *[]Reason) Verdict {
	out := Verdict{
		Allowed: bool(v.allowed),
		State:   State(v.state),
		Primary: Reason(v.primary_reason),
	}
	if mask := uint64(v.reasons_mask); mask != 0 {
		// Rule order is the numeric order of the reason codes, so walking the mask from the
		// lowest bit up yields the reasons in rule order.
		start := len(*buf)
		for mask != 0 {
			bit := bits.TrailingZeros64(mask)
			*buf = append(*buf, Reason(100+bit))
			mask &= mask - 1
		}
		out.Reasons = (*buf)[start:len(*buf):len(*buf)]
	}
	if v.has_retry_after {
		out.RetryAfter = time.UnixMilli(int64(v.retry_after_ms))
	}
	return out
}

type verdictJSON struct {
	Allowed     bool  `json:"allowed"`
	State       State `json:"state"`
	PrimaryCode int   `json:"primary_code"`
	Reasons     []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
	Message      string `json:"message"`
	RetryAfterMs *int64 `json:"retry_after_ms"`
}

func (j verdictJSON) verdict() Verdict {
	v := Verdict{Allowed: j.Allowed, State: j.State, Primary: Reason(j.PrimaryCode)}
	for _, r := range j.Reasons {
		v.Reasons = append(v.Reasons, Reason(r.Code))
		v.Messages = append(v.Messages, r.Message)
	}
	if j.RetryAfterMs != nil {
		v.RetryAfter = time.UnixMilli(*j.RetryAfterMs)
	}
	return v
}

func (v *Verdict) UnmarshalJSON(b []byte) error {
	var j verdictJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = j.verdict()
	return nil
}

// NodeVerdict pairs a node with its verdict (Fleet.EvaluateAll).
type NodeVerdict struct {
	NodeID  string  `json:"node_id"`
	Verdict Verdict `json:"verdict"`
}
