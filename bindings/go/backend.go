package lifecycle

// backend is the one seam between this package and the library: every call into nl_* goes
// through it. Two implementations exist: backend_cgo.go links the native library through cgo,
// backend_wazero.go runs the same Rust core compiled to WebAssembly inside the Go process (no
// cgo). Everything above this interface — types, errors, validation, decoding — is shared, so
// the two cannot drift apart in behaviour.
//
// The seam is deliberately narrow: nl_fleet_call (every operation as JSON) for everything that
// is not on a hot path, and typed calls for the hot ones (a verdict, a container event, the
// flat verdict and audit lists). Flat lists are handed to a callback as byte views of the
// library's own buffers (fixed-width little-endian layouts, the same on every target; see
// flat.go), valid only during the callback, so the native backend copies nothing.
//
// Errors come back as *Error built by libraryError from the code and the library's detail JSON.
type backend interface {
	// call runs one JSON operation (nl_fleet_call) and returns its JSON result.
	call(request []byte) ([]byte, error)
	// evaluate is nl_fleet_evaluate.
	evaluate(node string) (flatVerdict, error)
	// containerEvent is nl_fleet_add_container (add) or nl_fleet_remove_container.
	containerEvent(add bool, node, container string, ramMB uint64) (ContainerOutcome, error)
	// evaluateAll is nl_fleet_evaluate_all: read gets the items (nl_node_verdict) and the ids.
	evaluateAll(read func(items, ids []byte)) error
	// recordAudit is nl_fleet_audit_record.
	recordAudit(rec *AuditRecord) (uint64, error)
	// auditList is nl_fleet_audit_query_list or, with q.since, nl_fleet_audit_since_list.
	auditList(q auditListQuery, read func(items, strs []byte, missed, next uint64)) error
	// noop is nl_noop: the cost of a bare call, for benchmarks.
	noop() uint32
	// close is nl_fleet_free. Calls after it return ErrClosed.
	close() error
}

// flatVerdict is nl_verdict.
type flatVerdict struct {
	allowed      bool
	state        uint32
	primary      uint32
	mask         uint64
	hasRetry     bool
	retryAfterMs int64
}

// auditListQuery selects an audit list: a filter with the newest limit entries, or (since)
// the entries after a cursor.
type auditListQuery struct {
	since  bool
	cursor uint64
	filter uint32
	text   string
	value  uint32
	limit  uint64
}

// The nl_audit_filter values.
const (
	filterAll    = 0
	filterNode   = 1
	filterAction = 2
	filterResult = 3
)

// libraryInfo is what the backend's library reports (nl_version,
// nl_source_fingerprint).
type libraryInfo struct {
	version     string
	fingerprint string
	// err is why the library could not be asked (the wasm module failed to load).
	err error
}
