package lifecycle

// #include "node_lifecycle.h"
import "C"

import (
	"encoding/json"
	"runtime"
)

// ContainerOutcome is what a container event did.
type ContainerOutcome struct {
	// Changed is false for a no-op: a known id added again, an unknown id removed.
	Changed bool
	// State is the node's state afterwards (container events drive ready/active/idle).
	State             State
	CurrentContainers int
}

func containerOutcome(o *C.nl_container_outcome) ContainerOutcome {
	return ContainerOutcome{Changed: bool(o.changed), State: State(o.state), CurrentContainers: int(o.current_containers)}
}

// AddContainer records that a container started on a node (idempotent by id; consumes a
// reservation of the same id). Refused with ErrNotSchedulable on a node that is not ready,
// active or idle.
func (f *Fleet) AddContainer(nodeID, containerID string, ramMB uint64) (ContainerOutcome, error) {
	h, err := f.handle()
	if err != nil {
		return ContainerOutcome{}, err
	}
	np, nl := cstr(nodeID)
	cp, cl := cstr(containerID)
	var out C.nl_container_outcome
	var cerr *C.nl_error
	r := C.nl_fleet_add_container(h, np, nl, cp, cl, C.uint64_t(ramMB), &out, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(containerID)
	if err := takeError(r, cerr); err != nil {
		return ContainerOutcome{}, err
	}
	return containerOutcome(&out), nil
}

// RemoveContainer records that a container stopped. Removing an unknown id is a no-op reported
// as Changed == false.
func (f *Fleet) RemoveContainer(nodeID, containerID string) (ContainerOutcome, error) {
	h, err := f.handle()
	if err != nil {
		return ContainerOutcome{}, err
	}
	np, nl := cstr(nodeID)
	cp, cl := cstr(containerID)
	var out C.nl_container_outcome
	var cerr *C.nl_error
	r := C.nl_fleet_remove_container(h, np, nl, cp, cl, &out, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(containerID)
	if err := takeError(r, cerr); err != nil {
		return ContainerOutcome{}, err
	}
	return containerOutcome(&out), nil
}

// Container is a running container as reported by a node.
type Container struct {
	ID    string `json:"id"`
	RAMMB uint64 `json:"ram_mb"`
}

// SyncContainers replaces the node's container view with what it really runs and completes its
// pending container sync (after a restart or a recovery from unhealthy).
func (f *Fleet) SyncContainers(nodeID string, containers []Container) (ContainerOutcome, error) {
	h, err := f.handle()
	if err != nil {
		return ContainerOutcome{}, err
	}
	if containers == nil {
		containers = []Container{}
	}
	body, err := json.Marshal(containers)
	if err != nil {
		return ContainerOutcome{}, err
	}
	np, nl := cstr(nodeID)
	js := string(body)
	jp, jl := cstr(js)
	var out C.nl_container_outcome
	var cerr *C.nl_error
	r := C.nl_fleet_sync_containers(h, np, nl, jp, jl, &out, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(js)
	if err := takeError(r, cerr); err != nil {
		return ContainerOutcome{}, err
	}
	return containerOutcome(&out), nil
}

// Reserve reserves capacity for a container about to be placed. A reservation counts as
// occupancy for every safety check, and is atomic with BeginDecommission: of a concurrent
// Reserve and BeginDecommission on the same empty node exactly one succeeds. It returns false
// when a reservation of that id existed and was updated.
func (f *Fleet) Reserve(nodeID, containerID string, ramMB uint64) (bool, error) {
	h, err := f.handle()
	if err != nil {
		return false, err
	}
	np, nl := cstr(nodeID)
	cp, cl := cstr(containerID)
	var created C.bool
	var cerr *C.nl_error
	r := C.nl_fleet_reserve(h, np, nl, cp, cl, C.uint64_t(ramMB), &created, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(containerID)
	return bool(created), takeError(r, cerr)
}

// ConfirmReservation turns a reservation into a running container.
func (f *Fleet) ConfirmReservation(nodeID, containerID string) (ContainerOutcome, error) {
	h, err := f.handle()
	if err != nil {
		return ContainerOutcome{}, err
	}
	np, nl := cstr(nodeID)
	cp, cl := cstr(containerID)
	var out C.nl_container_outcome
	var cerr *C.nl_error
	r := C.nl_fleet_confirm_reservation(h, np, nl, cp, cl, &out, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(containerID)
	if err := takeError(r, cerr); err != nil {
		return ContainerOutcome{}, err
	}
	return containerOutcome(&out), nil
}

// ReleaseReservation drops a reservation (the placement was abandoned). It returns false when
// there was none.
func (f *Fleet) ReleaseReservation(nodeID, containerID string) (bool, error) {
	h, err := f.handle()
	if err != nil {
		return false, err
	}
	np, nl := cstr(nodeID)
	cp, cl := cstr(containerID)
	var released C.bool
	var cerr *C.nl_error
	r := C.nl_fleet_release_reservation(h, np, nl, cp, cl, &released, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(containerID)
	return bool(released), takeError(r, cerr)
}

// PlaceHold places a named hold on a node: world data of a stopped server, a manual
// do-not-disrupt, a migration in flight. A node with holds is never drained. It returns false
// when the hold already existed.
func (f *Fleet) PlaceHold(nodeID, name, detail string) (bool, error) {
	h, err := f.handle()
	if err != nil {
		return false, err
	}
	np, nl := cstr(nodeID)
	hp, hl := cstr(name)
	dp, dl := cstr(detail)
	var created C.bool
	var cerr *C.nl_error
	r := C.nl_fleet_place_hold(h, np, nl, hp, hl, dp, dl, &created, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(name)
	runtime.KeepAlive(detail)
	return bool(created), takeError(r, cerr)
}

// ReleaseHold releases a hold. It returns false when there was none by that name.
func (f *Fleet) ReleaseHold(nodeID, name string) (bool, error) {
	h, err := f.handle()
	if err != nil {
		return false, err
	}
	np, nl := cstr(nodeID)
	hp, hl := cstr(name)
	var released C.bool
	var cerr *C.nl_error
	r := C.nl_fleet_release_hold(h, np, nl, hp, hl, &released, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(nodeID)
	runtime.KeepAlive(name)
	return bool(released), takeError(r, cerr)
}
