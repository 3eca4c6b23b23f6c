package lifecycle

import (
	"fmt"
	"time"
)

// Transition moves a node along the transition table, recording reason (required). It returns
// false when the node already was in that state (a no-op, not an error). Draining and
// decommissioned are refused with ErrProtocolOnly: they are entered only through
// BeginDecommission/CompleteDecommission or AbandonProvisioning, so that every deletion is
// attributed. Use Cordon to stop placement on a node.
func (f *Fleet) Transition(id string, to State, reason string) (bool, error) {
	var out struct {
		Changed bool `json:"changed"`
	}
	err := f.do(op{"op": "transition", "node": id, "to": to, "reason": reason}, &out)
	return out.Changed, err
}

// HealthOutcome is what a health report did.
type HealthOutcome struct {
	Health              Health `json:"health"`
	State               State  `json:"state"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
}

// ReportHealth applies one health-check result: after the threshold of consecutive failures a
// productive node becomes unhealthy; a success brings an unhealthy node back to ready (its
// containers must then be re-synchronised before it counts as empty). A node with an
// outstanding decommission ticket keeps its state.
func (f *Fleet) ReportHealth(id string, healthy bool) (HealthOutcome, error) {
	var out HealthOutcome
	err := f.do(op{"op": "report_health", "node": id, "healthy": healthy}, &out)
	return out, err
}

// ReportHealthStatus is ReportHealth with the health checker's three answers. HealthUnknown
// (it could not tell: no address yet, a probe that timed out) is neither a success nor a
// failure: it is recorded as the node's health and changes nothing else, so an unknown never
// makes a worker unhealthy. Report HealthUnhealthy only for a probe that failed.
func (f *Fleet) ReportHealthStatus(id string, status Health) (HealthOutcome, error) {
	if status > HealthUnhealthy {
		return HealthOutcome{}, &Error{Code: CodeUnknownEnum, Message: fmt.Sprintf("%d is not a valid Health", uint32(status))}
	}
	var out HealthOutcome
	err := f.do(op{"op": "report_health", "node": id, "status": status}, &out)
	return out, err
}

// ConfirmGone records the provider's word that the node's VM no longer exists (a 404 for its
// server, say): nothing can run on it. A node that is not unhealthy yet becomes unhealthy, and
// the unhealthy grace no longer protects it, so its cleanup can go through the decommission
// protocol at once. evidence is what the provider said (recorded, sanitised). Containers and
// claims still block a deletion: sync or remove them first. A node with a decommission ticket
// keeps its state.
func (f *Fleet) ConfirmGone(id string, evidence string) (Node, error) {
	var j nodeJSON
	if err := f.do(op{"op": "confirm_gone", "node": id, "evidence": evidence}, &j); err != nil {
		return Node{}, err
	}
	return j.node(), nil
}

// Restoring reports whether a restore pass is open: the fleet reopened a data directory that
// held nodes (or a recovered node was registered) and FinishRestore has not been called since.
// The conductor's "still restoring" flag lives here.
func (f *Fleet) Restoring() (bool, error) {
	var out struct {
		Restoring bool `json:"restoring"`
	}
	err := f.do(op{"op": "restoring"}, &out)
	return out.Restoring, err
}

// ExpiredClaim is a claim or reservation that Tick released after its TTL.
type ExpiredClaim struct {
	NodeID      string
	ClaimID     ClaimID
	ContainerID string // set for a keyed reservation
	RAMMB       int
	Age         time.Duration
}

// TickReport lists what the timers did in Tick.
type TickReport struct {
	// ProvisioningTimeouts: nodes stuck starting past the timeout, now unhealthy.
	ProvisioningTimeouts []string
	// SyncTimeouts: nodes whose pending container sync the timeout completed.
	SyncTimeouts []string
	// ExpiredClaims: claims and reservations past their TTL, released (audited as
	// reservation_expired).
	ExpiredClaims []ExpiredClaim
}

// Tick applies the timers (provisioning timeout, container sync timeout, claim expiry). Call
// it on every health-check round.
func (f *Fleet) Tick() (TickReport, error) {
	var j struct {
		ProvisioningTimeouts []string `json:"provisioning_timeouts"`
		SyncTimeouts         []string `json:"sync_timeouts"`
		ExpiredClaims        []struct {
			NodeID      string  `json:"node_id"`
			ClaimID     ClaimID `json:"claim_id"`
			ContainerID *string `json:"container_id"`
			RAMMB       int     `json:"ram_mb"`
			AgeMs       uint64  `json:"age_ms"`
		} `json:"expired_claims"`
	}
	if err := f.do(op{"op": "tick"}, &j); err != nil {
		return TickReport{}, err
	}
	r := TickReport{
		ProvisioningTimeouts: nonNil(j.ProvisioningTimeouts),
		SyncTimeouts:         nonNil(j.SyncTimeouts),
		ExpiredClaims:        make([]ExpiredClaim, 0, len(j.ExpiredClaims)),
	}
	for _, c := range j.ExpiredClaims {
		r.ExpiredClaims = append(r.ExpiredClaims, ExpiredClaim{
			NodeID: c.NodeID, ClaimID: c.ClaimID, ContainerID: fromOptString(c.ContainerID),
			RAMMB: c.RAMMB, Age: msDuration(c.AgeMs),
		})
	}
	return r, nil
}

// FinishRestore ends the restore pass after a restart: every pending container sync completes
// now (the post-sync grace then runs). It returns how many nodes it completed.
func (f *Fleet) FinishRestore() (int, error) {
	var out struct {
		Completed int `json:"completed"`
	}
	err := f.do(op{"op": "finish_restore"}, &out)
	return out.Completed, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
