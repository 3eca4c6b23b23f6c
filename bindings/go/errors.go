package lifecycle

import (
	"encoding/json"
	"fmt"
)

// Code is the numeric result of a library call (the C header's nl_result). Codes 100 and above
// are Reasons.
type Code uint32

const (
	CodeNullArgument         Code = 1
	CodeInvalidUTF8          Code = 2
	CodeInvalidArgument      Code = 3
	CodeNodeNotFound         Code = 4
	CodeNodeExists           Code = 5
	CodeInvalidTransition    Code = 6
	CodeNotSchedulable       Code = 7
	CodeInsufficientCapacity Code = 8
	CodeTicketInvalid        Code = 9
	CodeNotManualClock       Code = 10
	CodePanic                Code = 11
	CodeUnknownEnum          Code = 12
	CodeUseAfterFree         Code = 13
	CodeStorage              Code = 14
	CodeLocked               Code = 15
	CodeUnsupportedFormat    Code = 16
	CodeCorrupt              Code = 17
	CodeInvalidSetting       Code = 18
	CodeProtocolOnly         Code = 19
	CodeContainerElsewhere   Code = 20
	CodeClaimNotFound        Code = 21
	CodeStalePlan            Code = 22
	CodePoisoned             Code = 23
	CodeCapacityInUse        Code = 24
	// CodeNotLeader and CodeFenced come from this package's replica layer (Options.Shared);
	// the library itself never returns them.
	CodeNotLeader Code = 25
	CodeFenced    Code = 26
)

// Error is every error the package returns. It keeps the numeric code and what the library
// said about it.
//
// Match with the sentinels (errors.Is(err, lifecycle.ErrNodeNotFound)), with a Reason
// (errors.Is(err, lifecycle.ReasonHasContainers)), with ErrRejected for any rejection, or take
// the detail with errors.As(err, &e) where e is a *lifecycle.Error.
type Error struct {
	Code    Code
	Message string
	// Verdict is set when the error is a rejection by the safety rules; its Messages are
	// filled.
	Verdict *Verdict
	// Field names the setting of an ErrInvalidSetting by its Go field name ("IdleGrace",
	// "MinSavingsPerHour"), whether the package or the library refused it.
	Field string
	// Node is the node an ErrContainerElsewhere container runs on.
	Node string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("lifecycle: error %d", e.Code)
	}
	return "lifecycle: " + e.Message
}

// Reason returns the rejection's primary reason, or 0 if this is not a rejection.
func (e *Error) Reason() Reason {
	if e.Code >= 100 {
		return Reason(e.Code)
	}
	return 0
}

// Is matches sentinels by code, any rejection against ErrRejected, and Reasons by number (any
// of the verdict's reasons, not only the primary one).
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		if t == ErrRejected {
			return e.Code >= 100
		}
		return t.Message == "" && t.Code == e.Code
	case Reason:
		return e.Code >= 100 && (Reason(e.Code) == t || (e.Verdict != nil && e.Verdict.Has(t)))
	}
	return false
}

// Sentinels for errors.Is. Each matches any *Error with its code.
var (
	ErrNullArgument    = &Error{Code: CodeNullArgument}
	ErrInvalidUTF8     = &Error{Code: CodeInvalidUTF8}
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrNodeNotFound    = &Error{Code: CodeNodeNotFound}
	// ErrNodeExists: the id is registered with another origin (the same origin is an upsert),
	// or a rename's new id is taken.
	ErrNodeExists        = &Error{Code: CodeNodeExists}
	ErrInvalidTransition = &Error{Code: CodeInvalidTransition}
	// ErrNotSchedulable: the node takes no new containers, claims or holds now (its state, or
	// its cordons, which the message names).
	ErrNotSchedulable       = &Error{Code: CodeNotSchedulable}
	ErrInsufficientCapacity = &Error{Code: CodeInsufficientCapacity}
	// ErrTicketInvalid: not the node's outstanding ticket (used up, from another fleet, or for
	// another node).
	ErrTicketInvalid  = &Error{Code: CodeTicketInvalid}
	ErrNotManualClock = &Error{Code: CodeNotManualClock}
	ErrUnknownEnum    = &Error{Code: CodeUnknownEnum}
	// ErrStorage: the data directory could not be read or written (unwritable, full); the call
	// changed nothing.
	ErrStorage = &Error{Code: CodeStorage}
	// ErrLocked: the data directory is open in another process.
	ErrLocked = &Error{Code: CodeLocked}
	// ErrUnsupportedFormat: the data directory was written by another format version.
	ErrUnsupportedFormat = &Error{Code: CodeUnsupportedFormat}
	// ErrCorrupt: a snapshot or journal is damaged beyond a torn tail (the message names the
	// file and offset). Nothing was changed on disk; see Salvage.
	ErrCorrupt = &Error{Code: CodeCorrupt}
	// ErrInvalidSetting: a policy or option value is out of range; Error.Field names it.
	ErrInvalidSetting = &Error{Code: CodeInvalidSetting}
	// ErrProtocolOnly: draining and decommissioned are entered only through the decommission
	// protocol (BeginDecommission, CompleteDecommission) or AbandonProvisioning.
	ErrProtocolOnly = &Error{Code: CodeProtocolOnly}
	// ErrContainerElsewhere: the container runs on another node (Error.Node); container ids
	// are unique across the fleet. Move it with RecordMigration.
	ErrContainerElsewhere = &Error{Code: CodeContainerElsewhere}
	// ErrClaimNotFound: the claim is unknown, expired, confirmed or released.
	ErrClaimNotFound = &Error{Code: CodeClaimNotFound}
	// ErrStalePlan: a consolidation plan no longer matches the fleet; plan again.
	ErrStalePlan = &Error{Code: CodeStalePlan}
	// ErrPoisoned: the fleet refuses work until it is reopened (a failed fsync, an internal
	// error, or a trap in the WebAssembly backend). Nothing unacknowledged was kept.
	ErrPoisoned = &Error{Code: CodePoisoned}
	// ErrCapacityInUse: a node's RAM cannot go below what its containers and claims use, nor
	// to 0 ("unknown", which switches capacity checks off) while anything is placed on it.
	ErrCapacityInUse = &Error{Code: CodeCapacityInUse}
	// ErrNotLeader: a shared fleet's standby replica answers reads only; the message names the
	// leader. Retry on the leader, or after this replica became leader (Fleet.IsLeader).
	ErrNotLeader = &Error{Code: CodeNotLeader}
	// ErrFenced: the store refused a write because this replica's lease was taken over or had
	// expired. Nothing was acknowledged; the replica steps down to standby by itself.
	ErrFenced = &Error{Code: CodeFenced}
	// ErrPanic: the library caught an internal panic; the call changed nothing.
	ErrPanic = &Error{Code: CodePanic}
	// ErrClosed: the Fleet was closed.
	ErrClosed = &Error{Code: CodeUseAfterFree}
	// ErrRejected matches every rejection by the safety rules (codes 100 and above).
	ErrRejected = &Error{Code: 100, Message: "rejected"}
)

// errorDetail is the library's description of an error (nl_error_detail_json).
type errorDetail struct {
	Code    uint32   `json:"code"`
	Message string   `json:"message"`
	Verdict *Verdict `json:"verdict"`
	Field   *string  `json:"field"`
	Node    *string  `json:"node"`
}

// libraryError builds the Go error for a failed call from its code and the library's detail
// JSON (both backends hand over the same two things).
func libraryError(code uint32, detail []byte) *Error {
	e := &Error{Code: Code(code)}
	if len(detail) > 0 {
		var d errorDetail
		if err := json.Unmarshal(detail, &d); err != nil {
			e.Message = fmt.Sprintf("error %d (its detail could not be decoded: %v)", code, err)
		} else {
			e.Message = d.Message
			e.Verdict = d.Verdict
			if d.Field != nil {
				e.Field = goFieldName(*d.Field)
			}
			if d.Node != nil {
				e.Node = *d.Node
			}
		}
	}
	if e.Code == CodeUseAfterFree {
		e.Message = "fleet is closed"
	}
	return e
}

// goFieldName maps the library's setting names to the Go fields that set them.
func goFieldName(library string) string {
	if n, ok := librarySettingNames[library]; ok {
		return n
	}
	return library
}

var librarySettingNames = map[string]string{
	"ready_grace_ms":           "ReadyGrace",
	"idle_grace_ms":            "IdleGrace",
	"post_sync_grace_ms":       "PostSyncGrace",
	"sync_timeout_ms":          "SyncTimeout",
	"provisioning_timeout_ms":  "ProvisioningTimeout",
	"claim_ttl_ms":             "ClaimTTL",
	"unhealthy_grace_ms":       "UnhealthyGrace",
	"unhealthy_threshold":      "UnhealthyThreshold",
	"audit_capacity":           "AuditCapacity",
	"compact_after_records":    "CompactAfterRecords",
	"min_uptime_ms":            "MinUptime",
	"min_idle_ms":              "MinIdle",
	"min_savings_eur_per_hour": "MinSavingsPerHour",
	"max_utilisation_after":    "MaxUtilisationAfter",
	"cooldown_ms":              "Cooldown",
	"min_worker_nodes":         "MinWorkerNodes",
}

// invalidSetting is the error for a setting the package refuses before the library sees it;
// owner is the struct that holds the field ("Options", "Policy", "ConsolidationPolicy").
func invalidSetting(owner, field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidSetting, Field: field,
		Message: "invalid setting " + owner + "." + field + ": " + fmt.Sprintf(format, args...)}
}

func invalidArgument(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
