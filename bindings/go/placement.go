package lifecycle

import (
	"runtime"
	"time"
)

// ContainerOutcome is what a container event did.
type ContainerOutcome struct {
	// Changed is false for a no-op: a known id added again, an unknown id removed.
	Changed bool `json:"changed"`
	// State is the node's state afterwards (container events drive ready/active/idle).
	State             State `json:"state"`
	CurrentContainers int   `json:"current_containers"`
}

// AddContainer records that a container started on a node (idempotent by id; consumes a
// reservation of the same id). Refused with ErrNotSchedulable on a node that takes no
// containers (its state, or its cordons), and with ErrContainerElsewhere when the id runs on
// another node (Error.Node names it; move containers with RecordMigration).
func (f *Fleet) AddContainer(nodeID, containerID string, ramMB int) (ContainerOutcome, error) {
	if err := checkRAM("ramMB", ramMB); err != nil {
		return ContainerOutcome{}, err
	}
	b, err := f.backend()
	if err != nil {
		return ContainerOutcome{}, err
	}
	out, err := b.containerEvent(true, nodeID, containerID, uint64(ramMB))
	runtime.KeepAlive(f)
	return out, err
}

// RemoveContainer records that a container stopped. Removing an unknown id is a no-op reported
// as Changed == false.
func (f *Fleet) RemoveContainer(nodeID, containerID string) (ContainerOutcome, error) {
	b, err := f.backend()
	if err != nil {
		return ContainerOutcome{}, err
	}
	out, err := b.containerEvent(false, nodeID, containerID, 0)
	runtime.KeepAlive(f)
	return out, err
}

// Container is a running container as reported by a node.
type Container struct {
	ID    string
	RAMMB int
}

// SyncContainers replaces the node's container view with what it really runs. It does not end
// a pending container sync (after a restart or a recovery from unhealthy): call
// CompleteContainerSync when the view is complete (or FinishRestore for every node at once),
// so the view can be refreshed during a restore without ending the protection it gives.
func (f *Fleet) SyncContainers(nodeID string, containers []Container) (ContainerOutcome, error) {
	pairs := make([][2]any, 0, len(containers))
	for _, c := range containers {
		if err := checkRAM("Container.RAMMB", c.RAMMB); err != nil {
			return ContainerOutcome{}, err
		}
		pairs = append(pairs, [2]any{c.ID, c.RAMMB})
	}
	var out ContainerOutcome
	err := f.do(op{"op": "sync_containers", "node": nodeID, "containers": pairs}, &out)
	return out, err
}

// CompleteContainerSync declares the node's container view (refreshed with SyncContainers)
// complete: it may count as empty from now on, after the post-sync grace. Audited. It returns
// whether a sync was pending.
func (f *Fleet) CompleteContainerSync(nodeID string) (bool, error) {
	var out struct {
		Completed bool `json:"completed"`
	}
	err := f.do(op{"op": "complete_container_sync", "node": nodeID}, &out)
	return out.Completed, err
}

// Reserve reserves capacity for a container about to be placed, by its id. A reservation
// counts as occupancy for every safety check, and is atomic with BeginDecommission: of a
// concurrent Reserve and BeginDecommission on the same empty node exactly one succeeds. It
// expires after the policy's ClaimTTL unless confirmed or released. It returns false when a
// reservation of that id existed and was updated. When the id is not known yet, use Claim.
func (f *Fleet) Reserve(nodeID, containerID string, ramMB int) (bool, error) {
	if err := checkRAM("ramMB", ramMB); err != nil {
		return false, err
	}
	var out struct {
		Created bool `json:"created"`
	}
	err := f.do(op{"op": "reserve", "node": nodeID, "container": containerID, "ram_mb": ramMB}, &out)
	return out.Created, err
}

// ConfirmReservation turns a reservation into a running container.
func (f *Fleet) ConfirmReservation(nodeID, containerID string) (ContainerOutcome, error) {
	var out ContainerOutcome
	err := f.do(op{"op": "confirm_reservation", "node": nodeID, "container": containerID}, &out)
	return out, err
}

// ReleaseReservation drops a reservation (the placement was abandoned). It returns false when
// there was none.
func (f *Fleet) ReleaseReservation(nodeID, containerID string) (bool, error) {
	var out struct {
		Released bool `json:"released"`
	}
	err := f.do(op{"op": "release_reservation", "node": nodeID, "container": containerID}, &out)
	return out.Released, err
}

// ClaimID identifies a claim of capacity (8 random bytes).
type ClaimID [8]byte

func (id ClaimID) String() string { return hexString(id[:]) }

func (id ClaimID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *ClaimID) UnmarshalText(b []byte) error { return parseHex(id[:], b, "claim id") }

// ParseClaimID is the inverse of ClaimID.String.
func ParseClaimID(s string) (ClaimID, error) {
	var id ClaimID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

// Claim claims RAM on a node before the container's id is known (the conductor's "allocate
// RAM on node"). Like a reservation it counts as occupancy and is atomic with
// BeginDecommission. It expires after ttl (0: the policy's ClaimTTL; Off: never) unless
// confirmed or released; expiry happens in Tick and is audited. Refused with
// ErrNotSchedulable and ErrInsufficientCapacity.
func (f *Fleet) Claim(nodeID string, ramMB int, ttl time.Duration) (ClaimID, error) {
	if err := checkRAM("ramMB", ramMB); err != nil {
		return ClaimID{}, err
	}
	t, err := durationSetting("Claim", "ttl", ttl)
	if err != nil {
		return ClaimID{}, err
	}
	ttlMs := t.ms
	if t.off {
		ttlMs = ^uint64(0)
	}
	var out struct {
		Claim ClaimID `json:"claim"`
	}
	err = f.do(op{"op": "claim", "node": nodeID, "ram_mb": ramMB, "ttl_ms": ttlMs}, &out)
	return out.Claim, err
}

// ConfirmClaim turns a claim into a running container with the claim's RAM. ErrClaimNotFound
// when it expired, was released or confirmed, or belongs to another fleet.
func (f *Fleet) ConfirmClaim(claim ClaimID, containerID string) (ContainerOutcome, error) {
	var out ContainerOutcome
	err := f.do(op{"op": "confirm_claim", "claim": claim, "container": containerID}, &out)
	return out, err
}

// ReleaseClaim frees a claim (the placement failed). It returns false when the claim was
// already gone (expired, released or confirmed).
func (f *Fleet) ReleaseClaim(claim ClaimID) (bool, error) {
	var out struct {
		Released bool `json:"released"`
	}
	err := f.do(op{"op": "release_claim", "claim": claim}, &out)
	return out.Released, err
}

// PlaceHold places a named hold on a node: world data of a stopped server, a manual
// do-not-disrupt, a migration in flight. A node with holds is never drained; rejections name
// every hold. It returns false when the hold already existed.
func (f *Fleet) PlaceHold(nodeID, name, detail string) (bool, error) {
	var out struct {
		Created bool `json:"created"`
	}
	err := f.do(op{"op": "place_hold", "node": nodeID, "name": name, "detail": detail}, &out)
	return out.Created, err
}

// ReleaseHold releases a hold. It returns false when there was none by that name.
func (f *Fleet) ReleaseHold(nodeID, name string) (bool, error) {
	var out struct {
		Released bool `json:"released"`
	}
	err := f.do(op{"op": "release_hold", "node": nodeID, "name": name}, &out)
	return out.Released, err
}

// Cordon places a named cordon: the node takes no new containers, claims or reservations
// (refused with ErrNotSchedulable naming the cordons), its state does not change and its
// containers keep running. A node may carry several cordons (disk_full, maintenance, ...);
// it is schedulable again when the last is removed. With evacuate, the node is being emptied
// on purpose: when its last container leaves while the cordon is in place, the idle grace does
// not apply (consolidation relies on this). Audited as node_cordon. It returns false when a
// cordon of that name is in place already: it is left as it is and nothing is recorded, so a
// health round may re-assert its cordon every time (to change one, Uncordon it first).
func (f *Fleet) Cordon(nodeID, name, reason string, evacuate bool) (bool, error) {
	var out struct {
		Created bool `json:"created"`
	}
	err := f.do(op{"op": "cordon", "node": nodeID, "name": name, "reason": reason, "evacuate": evacuate}, &out)
	return out.Created, err
}

// Uncordon removes one cordon (audited as node_uncordon). It returns false when there was
// none by that name.
func (f *Fleet) Uncordon(nodeID, name string) (bool, error) {
	var out struct {
		Removed bool `json:"removed"`
	}
	err := f.do(op{"op": "uncordon", "node": nodeID, "name": name}, &out)
	return out.Removed, err
}

// RecordMigration records that a container moved from one node to another, atomically, audited
// as container_migrate. Refused when the container is not on the source (ErrInvalidArgument),
// when the target is not schedulable (ErrNotSchedulable; a cordon on the source is fine) or
// would overfill (ErrInsufficientCapacity).
func (f *Fleet) RecordMigration(containerID, fromNode, toNode, decisionBy string) error {
	return f.do(op{
		"op": "record_migration", "container": containerID, "from": fromNode, "to": toNode,
		"decision_by": decisionBy,
	}, nil)
}
