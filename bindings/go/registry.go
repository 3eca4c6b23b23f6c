package lifecycle

import (
	"math"
	"time"
)

// NodeSpec describes a node to register.
type NodeSpec struct {
	ID     string
	Origin Origin
	// TotalRAMMB is the RAM containers may use; 0 = unknown (claims are not capacity-checked).
	// Correct it later with Update or by registering again.
	TotalRAMMB   int
	InstanceType string
	HourlyCost   float64 // EUR per hour
	// Labels are free-form (zone, pool, ...); they appear in node views and audit snapshots.
	Labels map[string]string
	// BootedFromImage: a cloud node started from a prepared image, without cloud-init. It
	// starts ready, initialized at registration (the ready grace runs from then).
	BootedFromImage bool
	// DedicatedStartsReady: a dedicated node starts ready instead of active.
	DedicatedStartsReady bool
	// CreatedAt: recovered nodes only, the VM's creation time at the provider, if known.
	CreatedAt time.Time
	// Placeholder: a cloud node registered before its VM exists, under an id of the
	// caller's, so that projections count the capacity coming. Rename binds it to the
	// provider's VM (Rename(id, id) when the VM got that id); until then, AbandonProvisioning
	// retires it when the VM is never created, also after a crash. A node that is not a
	// placeholder has a VM and is deleted through the decommission protocol.
	Placeholder bool
}

func checkRAM(what string, mb int) error {
	if mb < 0 {
		return invalidArgument("%s = %d MB is negative", what, mb)
	}
	return nil
}

func checkCost(eur float64) error {
	if math.IsNaN(eur) || math.IsInf(eur, 0) || eur < 0 {
		return invalidArgument("HourlyCost = %v must be a finite number of at least 0", eur)
	}
	return nil
}

func (s NodeSpec) request() (op, error) {
	if err := checkRAM("TotalRAMMB", s.TotalRAMMB); err != nil {
		return nil, err
	}
	if err := checkCost(s.HourlyCost); err != nil {
		return nil, err
	}
	spec := map[string]any{
		"id": s.ID, "origin": s.Origin, "total_ram_mb": s.TotalRAMMB,
		"instance_type": s.InstanceType, "hourly_cost_eur": s.HourlyCost,
	}
	if s.Labels != nil {
		spec["labels"] = s.Labels
	}
	switch {
	case s.BootedFromImage && s.DedicatedStartsReady:
		return nil, invalidArgument("NodeSpec: BootedFromImage is for cloud nodes, DedicatedStartsReady for dedicated ones")
	case s.BootedFromImage:
		if s.Origin != OriginCloud {
			return nil, invalidArgument("NodeSpec: BootedFromImage is only for cloud nodes, not %s", s.Origin)
		}
		spec["initial_state"] = StateReady
	case s.DedicatedStartsReady:
		if s.Origin != OriginDedicated {
			return nil, invalidArgument("NodeSpec: DedicatedStartsReady is only for dedicated nodes, not %s", s.Origin)
		}
		spec["initial_state"] = StateReady
	}
	if !s.CreatedAt.IsZero() {
		spec["provisioned_at_ms"] = s.CreatedAt.UnixMilli()
	}
	if s.Placeholder {
		spec["placeholder"] = true
	}
	return op{"op": "register", "spec": spec}, nil
}

// Register adds a node and returns it. Its origin decides the starting state: cloud nodes
// start provisioning (ready when BootedFromImage), system and dedicated nodes active,
// recovered nodes ready with their container sync pending.
//
// Registering an id that exists with the same origin is an upsert that merges: the attributes
// the spec gives (a non-zero TotalRAMMB or HourlyCost, an InstanceType, Labels) replace the
// node's, the ones it leaves zero or empty stay as they are, and no state changes (use Update to
// set a value to zero or to remove every label). RAM below what is placed on the node is
// refused (ErrCapacityInUse). OriginCloud and OriginRecovered count as one origin; another
// origin is ErrNodeExists.
func (f *Fleet) Register(spec NodeSpec) (Node, error) {
	req, err := spec.request()
	if err != nil {
		return Node{}, err
	}
	var n Node
	err = f.do(req, &n)
	return n, err
}

// NodeUpdate changes a node's attributes; nil fields stay as they are.
type NodeUpdate struct {
	TotalRAMMB   *int
	HourlyCost   *float64
	InstanceType *string
	// Labels, when non-nil, replace every label (an empty map removes them all).
	Labels map[string]string
}

// Update changes a node's attributes. RAM below what its containers and claims use is
// refused (ErrCapacityInUse), and so is RAM 0 ("unknown", which switches capacity checks
// off) while anything is placed on it. Changes of RAM or cost are audited (node_update).
func (f *Fleet) Update(id string, u NodeUpdate) (Node, error) {
	update := map[string]any{}
	if u.TotalRAMMB != nil {
		if err := checkRAM("TotalRAMMB", *u.TotalRAMMB); err != nil {
			return Node{}, err
		}
		update["total_ram_mb"] = *u.TotalRAMMB
	}
	if u.HourlyCost != nil {
		if err := checkCost(*u.HourlyCost); err != nil {
			return Node{}, err
		}
		update["hourly_cost_eur"] = *u.HourlyCost
	}
	if u.InstanceType != nil {
		update["instance_type"] = *u.InstanceType
	}
	if u.Labels != nil {
		update["labels"] = u.Labels
	}
	var n Node
	err := f.do(op{"op": "update", "node": id, "update": update}, &n)
	return n, err
}

// Rename binds a placeholder to the provider's id: the node keeps its state, metrics,
// containers and history; a node_renamed entry links both ids, and audit queries find the
// node's history by either id. Rename(id, id) binds a placeholder whose VM got the id it
// already has.
func (f *Fleet) Rename(oldID, newID string) (Node, error) {
	var n Node
	err := f.do(op{"op": "rename", "old": oldID, "new": newID}, &n)
	return n, err
}

// AbandonProvisioning records that a placeholder's VM was never created: the placeholder
// (still provisioning or initializing) becomes decommissioned with a failed node_provision
// entry carrying cause. Refused for a node that is not a placeholder (ErrInvalidArgument): it
// has a VM, which must be deleted through the decommission protocol so that a failed delete
// keeps its ticket and is retried instead of leaking the VM; and in any other state
// (ErrInvalidTransition).
func (f *Fleet) AbandonProvisioning(id string, cause error) (Node, error) {
	var n Node
	err := f.do(op{"op": "abandon_provisioning", "node": id, "error": errorText(cause)}, &n)
	return n, err
}

// Forget removes a decommissioned node from the registry (its audit entries stay).
func (f *Fleet) Forget(id string) error {
	return f.do(op{"op": "forget", "node": id}, nil)
}

// errorText is what is recorded for a failure: the error's text, or a marker for nil.
func errorText(err error) string {
	if err == nil {
		return "unknown error (nil)"
	}
	return err.Error()
}

// RegisterCloudNode registers a VM the conductor just asked the provider for (provisioning).
// Use a placeholder id until the provider's id is known, then Rename.
func (f *Fleet) RegisterCloudNode(id string, totalRAMMB int) error {
	_, err := f.Register(NodeSpec{ID: id, Origin: OriginCloud, TotalRAMMB: totalRAMMB})
	return err
}

// RegisterSystemNode registers a local, proxy or control-plane node (active, never deleted).
func (f *Fleet) RegisterSystemNode(id string, totalRAMMB int) error {
	_, err := f.Register(NodeSpec{ID: id, Origin: OriginSystem, TotalRAMMB: totalRAMMB})
	return err
}

// RegisterRecoveredNode registers a cloud node found after a restart (ready, sync pending).
// createdAt is the VM's creation time at the provider, or the zero time if unknown.
func (f *Fleet) RegisterRecoveredNode(id string, totalRAMMB int, createdAt time.Time) error {
	_, err := f.Register(NodeSpec{ID: id, Origin: OriginRecovered, TotalRAMMB: totalRAMMB, CreatedAt: createdAt})
	return err
}
