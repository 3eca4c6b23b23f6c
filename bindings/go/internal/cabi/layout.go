//go:build cgo && !nl_wasm

// Package cabi is the C compiler's view of include/node_lifecycle.h, for the lifecycle
// package's tests (cgo is not allowed in test files). Nothing but tests imports it, so no build
// of the lifecycle package compiles it.
package cabi

// #include "node_lifecycle.h"
import "C"

import "unsafe"

// Layout returns the size, offset or value of every flat-struct fact the decoder in flat.go
// names, as the C compiler computes it from the header.
func Layout() map[string]int {
	return map[string]int{
		"sizeof(nl_str_ref)":                            int(unsafe.Sizeof(C.nl_str_ref{})),
		"sizeof(nl_verdict)":                            int(unsafe.Sizeof(C.nl_verdict{})),
		"nl_verdict.allowed":                            int(unsafe.Offsetof(C.nl_verdict{}.allowed)),
		"nl_verdict.state":                              int(unsafe.Offsetof(C.nl_verdict{}.state)),
		"nl_verdict.primary_reason":                     int(unsafe.Offsetof(C.nl_verdict{}.primary_reason)),
		"nl_verdict.reasons_mask":                       int(unsafe.Offsetof(C.nl_verdict{}.reasons_mask)),
		"nl_verdict.has_retry_after":                    int(unsafe.Offsetof(C.nl_verdict{}.has_retry_after)),
		"nl_verdict.retry_after_ms":                     int(unsafe.Offsetof(C.nl_verdict{}.retry_after_ms)),
		"sizeof(nl_node_verdict)":                       int(unsafe.Sizeof(C.nl_node_verdict{})),
		"nl_node_verdict.id":                            int(unsafe.Offsetof(C.nl_node_verdict{}.id)),
		"nl_node_verdict.verdict":                       int(unsafe.Offsetof(C.nl_node_verdict{}.verdict)),
		"sizeof(nl_state_snapshot)":                     int(unsafe.Sizeof(C.nl_state_snapshot{})),
		"nl_state_snapshot.state":                       int(unsafe.Offsetof(C.nl_state_snapshot{}.state)),
		"nl_state_snapshot.health":                      int(unsafe.Offsetof(C.nl_state_snapshot{}.health)),
		"nl_state_snapshot.origin":                      int(unsafe.Offsetof(C.nl_state_snapshot{}.origin)),
		"nl_state_snapshot.consecutive_health_failures": int(unsafe.Offsetof(C.nl_state_snapshot{}.consecutive_health_failures)),
		"nl_state_snapshot.current_containers":          int(unsafe.Offsetof(C.nl_state_snapshot{}.current_containers)),
		"nl_state_snapshot.pending_reservations":        int(unsafe.Offsetof(C.nl_state_snapshot{}.pending_reservations)),
		"nl_state_snapshot.allocated_ram_mb":            int(unsafe.Offsetof(C.nl_state_snapshot{}.allocated_ram_mb)),
		"nl_state_snapshot.reserved_ram_mb":             int(unsafe.Offsetof(C.nl_state_snapshot{}.reserved_ram_mb)),
		"nl_state_snapshot.total_ram_mb":                int(unsafe.Offsetof(C.nl_state_snapshot{}.total_ram_mb)),
		"nl_state_snapshot.total_containers_ever":       int(unsafe.Offsetof(C.nl_state_snapshot{}.total_containers_ever)),
		"nl_state_snapshot.age_ms":                      int(unsafe.Offsetof(C.nl_state_snapshot{}.age_ms)),
		"nl_state_snapshot.time_in_state_ms":            int(unsafe.Offsetof(C.nl_state_snapshot{}.time_in_state_ms)),
		"nl_state_snapshot.since_initialized_ms":        int(unsafe.Offsetof(C.nl_state_snapshot{}.since_initialized_ms)),
		"nl_state_snapshot.idle_for_ms":                 int(unsafe.Offsetof(C.nl_state_snapshot{}.idle_for_ms)),
		"nl_state_snapshot.hourly_cost_eur":             int(unsafe.Offsetof(C.nl_state_snapshot{}.hourly_cost_eur)),
		"nl_state_snapshot.flags":                       int(unsafe.Offsetof(C.nl_state_snapshot{}.flags)),
		"nl_state_snapshot.instance_type":               int(unsafe.Offsetof(C.nl_state_snapshot{}.instance_type)),
		"nl_state_snapshot.evacuated_by":                int(unsafe.Offsetof(C.nl_state_snapshot{}.evacuated_by)),
		"nl_state_snapshot.names_json":                  int(unsafe.Offsetof(C.nl_state_snapshot{}.names_json)),
		"sizeof(nl_audit_item)":                         int(unsafe.Sizeof(C.nl_audit_item{})),
		"nl_audit_item.seq":                             int(unsafe.Offsetof(C.nl_audit_item{}.seq)),
		"nl_audit_item.at_ms":                           int(unsafe.Offsetof(C.nl_audit_item{}.at_ms)),
		"nl_audit_item.action":                          int(unsafe.Offsetof(C.nl_audit_item{}.action)),
		"nl_audit_item.result":                          int(unsafe.Offsetof(C.nl_audit_item{}.result)),
		"nl_audit_item.reason_code":                     int(unsafe.Offsetof(C.nl_audit_item{}.reason_code)),
		"nl_audit_item.from_state":                      int(unsafe.Offsetof(C.nl_audit_item{}.from_state)),
		"nl_audit_item.to_state":                        int(unsafe.Offsetof(C.nl_audit_item{}.to_state)),
		"nl_audit_item.flags":                           int(unsafe.Offsetof(C.nl_audit_item{}.flags)),
		"nl_audit_item.ram_mb":                          int(unsafe.Offsetof(C.nl_audit_item{}.ram_mb)),
		"nl_audit_item.age_ms":                          int(unsafe.Offsetof(C.nl_audit_item{}.age_ms)),
		"nl_audit_item.node_id":                         int(unsafe.Offsetof(C.nl_audit_item{}.node_id)),
		"nl_audit_item.container_id":                    int(unsafe.Offsetof(C.nl_audit_item{}.container_id)),
		"nl_audit_item.reason":                          int(unsafe.Offsetof(C.nl_audit_item{}.reason)),
		"nl_audit_item.decision_by":                     int(unsafe.Offsetof(C.nl_audit_item{}.decision_by)),
		"nl_audit_item.error":                           int(unsafe.Offsetof(C.nl_audit_item{}.error)),
		"nl_audit_item.related_node_id":                 int(unsafe.Offsetof(C.nl_audit_item{}.related_node_id)),
		"nl_audit_item.snapshot":                        int(unsafe.Offsetof(C.nl_audit_item{}.snapshot)),
		"NL_AUDIT_FLAG_HAS_SNAPSHOT":                    int(C.NL_AUDIT_FLAG_HAS_SNAPSHOT),
		"NL_AUDIT_FLAG_HAS_RAM":                         int(C.NL_AUDIT_FLAG_HAS_RAM),
		"NL_AUDIT_FLAG_HAS_AGE":                         int(C.NL_AUDIT_FLAG_HAS_AGE),
		"NL_SNAPSHOT_FLAG_HAS_SINCE_INITIALIZED":        int(C.NL_SNAPSHOT_FLAG_HAS_SINCE_INITIALIZED),
		"NL_SNAPSHOT_FLAG_HAS_IDLE_FOR":                 int(C.NL_SNAPSHOT_FLAG_HAS_IDLE_FOR),
		"NL_SNAPSHOT_FLAG_CONTAINER_SYNC_PENDING":       int(C.NL_SNAPSHOT_FLAG_CONTAINER_SYNC_PENDING),
	}
}
