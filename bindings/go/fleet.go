// Package lifecycle decides when a cloud VM may be deleted, and proves afterwards why it was or
// wasn't. It wraps the node-lifecycle library's C ABI.
//
// A Fleet owns every node's lifecycle state, its safety verdicts, the two-phase decommission
// protocol and a bounded audit ring. It is safe for concurrent use by many goroutines; every
// method is atomic. Close it when done.
package lifecycle

// #include <stdlib.h>
// #include "node_lifecycle.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// Fleet is a registry of nodes. Create it with New and release it with Close.
type Fleet struct {
	h      *C.nl_fleet
	closed atomic.Bool
}

// New creates a fleet. The zero Options give the specification's defaults on the wall clock.
func New(opts Options) (*Fleet, error) {
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	defer C.nl_options_free(copts)
	var h *C.nl_fleet
	var cerr *C.nl_error
	if err := takeError(C.nl_fleet_new(copts, &h, &cerr), cerr); err != nil {
		return nil, err
	}
	f := &Fleet{h: h}
	// Backstop only: a Fleet that is never closed is released when collected.
	runtime.SetFinalizer(f, func(f *Fleet) { _ = f.Close() })
	return f, nil
}

// Close releases the fleet. It is idempotent and safe to call while other goroutines use the
// fleet: their calls finish, and later calls return ErrClosed.
func (f *Fleet) Close() error {
	if f == nil || !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	C.nl_fleet_free(f.h)
	runtime.SetFinalizer(f, nil)
	return nil
}

// handle returns the C handle, or ErrClosed.
func (f *Fleet) handle() (*C.nl_fleet, error) {
	if f == nil {
		return nil, &Error{Code: CodeNullArgument, Message: "nil *Fleet"}
	}
	if f.closed.Load() {
		return nil, &Error{Code: CodeUseAfterFree, Message: "fleet is closed"}
	}
	return f.h, nil
}

// cstr passes a Go string to C as pointer + length without copying. The pointer is valid for
// the duration of the call only (cgo pins the memory while C runs).
func cstr(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// takeBytes copies an nl_bytes into Go memory and frees it.
func takeBytes(b *C.nl_bytes) []byte {
	defer C.nl_bytes_free(b)
	return C.GoBytes(unsafe.Pointer(C.nl_bytes_data(b)), C.int(C.nl_bytes_len(b)))
}

// decodeJSON turns a JSON-returning call's buffer into v.
func decodeJSON(r C.nl_result, b *C.nl_bytes, cerr *C.nl_error, v any) error {
	if err := takeError(r, cerr); err != nil {
		return err
	}
	if err := json.Unmarshal(takeBytes(b), v); err != nil {
		return &Error{Code: CodeInvalidArgument, Message: "decoding library JSON: " + err.Error()}
	}
	return nil
}

func millis(t time.Time) C.int64_t { return C.int64_t(t.UnixMilli()) }

// ----- clock and policy ---------------------------------------------------------------------

// Now is the library clock's time.
func (f *Fleet) Now() time.Time {
	h, err := f.handle()
	if err != nil {
		return time.Time{}
	}
	var ms C.int64_t
	r := C.nl_fleet_now_ms(h, &ms, nil)
	runtime.KeepAlive(f)
	if r != C.NL_RESULT_OK {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// Advance moves a manual clock forward (ErrNotManualClock on the wall clock).
func (f *Fleet) Advance(d time.Duration) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	if d < 0 {
		return &Error{Code: CodeInvalidArgument, Message: "cannot advance by a negative duration"}
	}
	var cerr *C.nl_error
	r := C.nl_fleet_advance_clock_ms(h, C.uint64_t(d.Milliseconds()), &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}

// SetClock sets a manual clock (ErrNotManualClock on the wall clock).
func (f *Fleet) SetClock(t time.Time) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	var cerr *C.nl_error
	r := C.nl_fleet_set_clock_ms(h, millis(t), &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}

// SetPolicy replaces the policy (durations and threshold; AuditCapacity and the clock are fixed
// at New). Zero fields mean the defaults, as in New.
func (f *Fleet) SetPolicy(opts Options) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	copts, err := opts.toC()
	if err != nil {
		return err
	}
	defer C.nl_options_free(copts)
	var cerr *C.nl_error
	r := C.nl_fleet_set_policy(h, copts, &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}

// Policy returns the policy in force.
func (f *Fleet) Policy() (Policy, error) {
	h, err := f.handle()
	if err != nil {
		return Policy{}, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_policy_json(h, &b, &cerr)
	runtime.KeepAlive(f)
	var p policyJSON
	if err := decodeJSON(r, b, cerr, &p); err != nil {
		return Policy{}, err
	}
	return p.policy(), nil
}

// ----- registration and lifecycle ----------------------------------------------------------

// NodeSpec describes a node to register.
type NodeSpec struct {
	ID           string
	Origin       Origin
	TotalRAMMB   uint64 // 0 = unknown (reservations are not capacity-checked)
	InstanceType string
	HourlyCost   float64 // EUR per hour
	// InitialState: dedicated nodes only, StateActive (the default) or StateReady. Leave nil
	// for the origin's default.
	InitialState *State
	// CreatedAt: recovered nodes only, the VM's creation time at the provider, if known.
	CreatedAt time.Time
}

// Register adds a node. Its origin decides the starting state: cloud nodes start
// provisioning, system and dedicated nodes active, recovered nodes ready with their container
// sync pending.
func (f *Fleet) Register(spec NodeSpec) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	// The spec lives in Go memory and points at Go strings: pin them for the call, as cgo's
	// pointer rules require for Go memory that holds pointers.
	var pin runtime.Pinner
	defer pin.Unpin()
	var cs C.nl_node_spec
	if spec.ID != "" {
		pin.Pin(unsafe.StringData(spec.ID))
	}
	if spec.InstanceType != "" {
		pin.Pin(unsafe.StringData(spec.InstanceType))
	}
	cs.id, cs.id_len = cstr(spec.ID)
	cs.instance_type, cs.instance_type_len = cstr(spec.InstanceType)
	cs.origin = C.uint32_t(spec.Origin)
	cs.total_ram_mb = C.uint64_t(spec.TotalRAMMB)
	cs.hourly_cost_eur = C.double(spec.HourlyCost)
	cs.initial_state = -1
	if spec.InitialState != nil {
		cs.initial_state = C.int32_t(*spec.InitialState)
	}
	if !spec.CreatedAt.IsZero() {
		cs.has_provisioned_at = true
		cs.provisioned_at_ms = millis(spec.CreatedAt)
	}
	var cerr *C.nl_error
	r := C.nl_fleet_register(h, &cs, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(spec)
	return takeError(r, cerr)
}

// RegisterCloudNode registers a VM the conductor just asked the provider for (provisioning).
func (f *Fleet) RegisterCloudNode(id string, totalRAMMB uint64) error {
	return f.Register(NodeSpec{ID: id, Origin: OriginCloud, TotalRAMMB: totalRAMMB})
}

// RegisterSystemNode registers a local, proxy or control-plane node (active, never deleted).
func (f *Fleet) RegisterSystemNode(id string, totalRAMMB uint64) error {
	return f.Register(NodeSpec{ID: id, Origin: OriginSystem, TotalRAMMB: totalRAMMB})
}

// RegisterRecoveredNode registers a cloud node found after a restart (ready, sync pending).
// createdAt is the VM's creation time at the provider, or the zero time if unknown.
func (f *Fleet) RegisterRecoveredNode(id string, totalRAMMB uint64, createdAt time.Time) error {
	return f.Register(NodeSpec{ID: id, Origin: OriginRecovered, TotalRAMMB: totalRAMMB, CreatedAt: createdAt})
}

// Forget removes a decommissioned node (its audit entries stay).
func (f *Fleet) Forget(id string) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	p, n := cstr(id)
	var cerr *C.nl_error
	r := C.nl_fleet_forget(h, p, n, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(id)
	return takeError(r, cerr)
}

// Transition moves a node along the transition table, recording reason (required). It returns
// false when the node already was in that state (a no-op, not an error). Entering draining or
// decommissioned this way must pass the safety rules; a refusal is an ErrRejected error.
func (f *Fleet) Transition(id string, to State, reason string) (bool, error) {
	h, err := f.handle()
	if err != nil {
		return false, err
	}
	ip, il := cstr(id)
	rp, rl := cstr(reason)
	var changed C.bool
	var cerr *C.nl_error
	r := C.nl_fleet_transition(h, ip, il, C.uint32_t(to), rp, rl, &changed, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(id)
	runtime.KeepAlive(reason)
	return bool(changed), takeError(r, cerr)
}

// HealthOutcome is what a health report did.
type HealthOutcome struct {
	Health              Health
	State               State
	ConsecutiveFailures int
}

// ReportHealth applies one health-check result: after the threshold of consecutive failures a
// productive node becomes unhealthy; a success brings an unhealthy node back to ready (its
// containers must then be re-synchronised before it counts as empty).
func (f *Fleet) ReportHealth(id string, healthy bool) (HealthOutcome, error) {
	h, err := f.handle()
	if err != nil {
		return HealthOutcome{}, err
	}
	ip, il := cstr(id)
	var out C.nl_health_outcome
	var cerr *C.nl_error
	r := C.nl_fleet_report_health(h, ip, il, C.bool(healthy), &out, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(id)
	if err := takeError(r, cerr); err != nil {
		return HealthOutcome{}, err
	}
	return HealthOutcome{Health: Health(out.health), State: State(out.state), ConsecutiveFailures: int(out.consecutive_failures)}, nil
}

// TickReport lists the nodes whose timers fired in Tick.
type TickReport struct {
	ProvisioningTimeouts []string `json:"provisioning_timeouts"`
	SyncTimeouts         []string `json:"sync_timeouts"`
}

// Tick applies the timers (provisioning timeout, container sync timeout). Call it on every
// health-check round.
func (f *Fleet) Tick() (TickReport, error) {
	h, err := f.handle()
	if err != nil {
		return TickReport{}, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_tick(h, &b, &cerr)
	runtime.KeepAlive(f)
	var rep TickReport
	err = decodeJSON(r, b, cerr, &rep)
	return rep, err
}

// FinishRestore ends the restore pass after a restart: every pending container sync completes
// now. It returns how many nodes it completed.
func (f *Fleet) FinishRestore() (int, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	var n C.size_t
	var cerr *C.nl_error
	r := C.nl_fleet_finish_restore(h, &n, &cerr)
	runtime.KeepAlive(f)
	return int(n), takeError(r, cerr)
}
