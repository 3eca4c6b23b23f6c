package lifecycle

// #include <stdlib.h>
// #include "node_lifecycle.h"
import "C"

import "fmt"

// Code is the numeric result of a library call (the C header's nl_result). Codes 100 and above
// are Reasons.
type Code uint32

const (
	CodeNullArgument         Code = C.NL_RESULT_NULL_ARGUMENT
	CodeInvalidUTF8          Code = C.NL_RESULT_INVALID_UTF8
	CodeInvalidArgument      Code = C.NL_RESULT_INVALID_ARGUMENT
	CodeNodeNotFound         Code = C.NL_RESULT_NODE_NOT_FOUND
	CodeNodeExists           Code = C.NL_RESULT_NODE_EXISTS
	CodeInvalidTransition    Code = C.NL_RESULT_INVALID_TRANSITION
	CodeNotSchedulable       Code = C.NL_RESULT_NOT_SCHEDULABLE
	CodeInsufficientCapacity Code = C.NL_RESULT_INSUFFICIENT_CAPACITY
	CodeTicketInvalid        Code = C.NL_RESULT_TICKET_INVALID
	CodeNotManualClock       Code = C.NL_RESULT_NOT_MANUAL_CLOCK
	CodePanic                Code = C.NL_RESULT_PANIC
	CodeUnknownEnum          Code = C.NL_RESULT_UNKNOWN_ENUM
	CodeUseAfterFree         Code = C.NL_RESULT_USE_AFTER_FREE
	CodeStorage              Code = C.NL_RESULT_STORAGE
	CodeLocked               Code = C.NL_RESULT_LOCKED
	CodeUnsupportedFormat    Code = C.NL_RESULT_UNSUPPORTED_FORMAT
	CodeCorrupt              Code = C.NL_RESULT_CORRUPT
)

// Error is every error the library returns. It keeps the numeric code; for a rejected
// decommission or transition it also carries the verdict.
//
// Match with the sentinels (errors.Is(err, lifecycle.ErrNodeNotFound)), with a Reason
// (errors.Is(err, lifecycle.ReasonHasContainers)), with ErrRejected for any rejection, or take
// the detail with errors.As(err, &e) where e is a *lifecycle.Error.
type Error struct {
	Code    Code
	Message string
	// Verdict is set when the error is a rejection by the safety rules.
	Verdict *Verdict
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

// Is matches sentinels by code, any rejection against ErrRejected, and Reasons by number.
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
	ErrNullArgument         = &Error{Code: CodeNullArgument}
	ErrInvalidUTF8          = &Error{Code: CodeInvalidUTF8}
	ErrInvalidArgument      = &Error{Code: CodeInvalidArgument}
	ErrNodeNotFound         = &Error{Code: CodeNodeNotFound}
	ErrNodeExists           = &Error{Code: CodeNodeExists}
	ErrInvalidTransition    = &Error{Code: CodeInvalidTransition}
	ErrNotSchedulable       = &Error{Code: CodeNotSchedulable}
	ErrInsufficientCapacity = &Error{Code: CodeInsufficientCapacity}
	ErrTicketInvalid        = &Error{Code: CodeTicketInvalid}
	ErrNotManualClock       = &Error{Code: CodeNotManualClock}
	ErrUnknownEnum          = &Error{Code: CodeUnknownEnum}
	// ErrStorage: the data directory could not be read or written (unwritable, full); the call
	// changed nothing.
	ErrStorage = &Error{Code: CodeStorage}
	// ErrLocked: the data directory is open in another process.
	ErrLocked = &Error{Code: CodeLocked}
	// ErrUnsupportedFormat: the data directory was written by a newer library.
	ErrUnsupportedFormat = &Error{Code: CodeUnsupportedFormat}
	// ErrCorrupt: a snapshot or journal is damaged beyond a torn tail.
	ErrCorrupt = &Error{Code: CodeCorrupt}
	// ErrClosed: the Fleet was closed.
	ErrClosed = &Error{Code: CodeUseAfterFree}
	// ErrRejected matches every rejection by the safety rules (codes 100 and above).
	ErrRejected = &Error{Code: 100, Message: "rejected"}
)

// takeError converts a call's result and error object into a Go error, freeing the object.
func takeError(r C.nl_result, cerr *C.nl_error) error {
	if r == C.NL_RESULT_OK {
		if cerr != nil {
			C.nl_error_free(cerr)
		}
		return nil
	}
	e := &Error{Code: Code(r)}
	if cerr != nil {
		e.Message = C.GoString(C.nl_error_message(cerr))
		var v C.nl_verdict
		if C.nl_error_verdict(cerr, &v) == C.NL_RESULT_OK {
			verdict := verdictFromC(&v)
			e.Verdict = &verdict
		}
		C.nl_error_free(cerr)
	}
	if e.Code == CodeUseAfterFree {
		e.Message = "fleet is closed"
	}
	return e
}
