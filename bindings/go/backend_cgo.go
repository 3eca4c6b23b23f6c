//go:build cgo && !nl_wasm

package lifecycle

// The native backend: the library linked through cgo (see link_*.go for which library).

// #include <stdlib.h>
// #if __has_include("node_lifecycle.h")
// #include "node_lifecycle.h"
// #else
// #error "node-lifecycle: the library's header is not on the include path: inside the repository run `make go-lib` at its root and build with -tags nl_dev; a copy of the module without its lib directory builds with CGO_ENABLED=0 (the WebAssembly backend)"
// #endif
import "C"

import (
	"runtime"
	"unsafe"
)

// BackendName says which backend this build uses: "cgo" (the native library) or "wasm".
const BackendName = "cgo"

type cgoBackend struct {
	h *C.nl_fleet
}

func openBackend(optionsJSON []byte) (backend, error) {
	var opts *C.nl_options
	var cerr *C.nl_error
	p, n := cbytes(optionsJSON)
	r := C.nl_options_from_json(p, n, &opts, &cerr)
	runtime.KeepAlive(optionsJSON)
	if err := takeError(r, cerr); err != nil {
		return nil, err
	}
	defer C.nl_options_free(opts)
	var h *C.nl_fleet
	if err := takeError(C.nl_fleet_new(opts, &h, &cerr), cerr); err != nil {
		return nil, err
	}
	return &cgoBackend{h: h}, nil
}

func queryLibrary() libraryInfo {
	return libraryInfo{
		version:     C.GoString(C.nl_version()),
		fingerprint: C.GoString(C.nl_source_fingerprint()),
	}
}

// cstr passes a Go string to C as pointer + length without copying. The pointer is valid for
// the duration of the call only (cgo keeps the memory in place while C runs); string data holds
// no Go pointers, so this is within cgo's pointer rules.
func cstr(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// view is a library-owned buffer as a Go slice, without copying: valid until it is freed.
func view(p *C.uint8_t, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// takeError converts a call's result and error object into a Go error, freeing the object.
func takeError(r C.nl_result, cerr *C.nl_error) error {
	if r == C.NL_RESULT_OK {
		if cerr != nil {
			C.nl_error_free(cerr)
		}
		return nil
	}
	var detail []byte
	if cerr != nil {
		var b *C.nl_bytes
		if C.nl_error_detail_json(cerr, &b) == C.NL_RESULT_OK {
			detail = C.GoBytes(unsafe.Pointer(C.nl_bytes_data(b)), C.int(C.nl_bytes_len(b)))
			C.nl_bytes_free(b)
		}
		C.nl_error_free(cerr)
	}
	return libraryError(uint32(r), detail)
}

func (b *cgoBackend) call(request []byte) ([]byte, error) {
	p, n := cbytes(request)
	var out *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_call(b.h, p, n, &out, &cerr)
	runtime.KeepAlive(request)
	if err := takeError(r, cerr); err != nil {
		return nil, err
	}
	defer C.nl_bytes_free(out)
	return C.GoBytes(unsafe.Pointer(C.nl_bytes_data(out)), C.int(C.nl_bytes_len(out))), nil
}

// The hot calls use the by-value forms (nl_fleet_evaluate_r, nl_fleet_container_event_r): no
// Go pointer besides the strings crosses, so nothing escapes to the heap and cgo's pointer
// check has one argument less to look at.

func (b *cgoBackend) evaluate(node string) (flatVerdict, error) {
	np, nl := cstr(node)
	res := C.nl_fleet_evaluate_r(b.h, np, nl)
	runtime.KeepAlive(node)
	if res.result != C.NL_RESULT_OK {
		return flatVerdict{}, takeError(res.result, res.error)
	}
	v := &res.verdict
	return flatVerdict{
		allowed: bool(v.allowed), state: uint32(v.state), primary: uint32(v.primary_reason),
		mask: uint64(v.reasons_mask), hasRetry: bool(v.has_retry_after), retryAfterMs: int64(v.retry_after_ms),
	}, nil
}

func (b *cgoBackend) containerEvent(add bool, node, container string, ramMB uint64) (ContainerOutcome, error) {
	np, nl := cstr(node)
	cp, cl := cstr(container)
	res := C.nl_fleet_container_event_r(b.h, C.bool(add), np, nl, cp, cl, C.uint64_t(ramMB))
	runtime.KeepAlive(node)
	runtime.KeepAlive(container)
	if res.result != C.NL_RESULT_OK {
		return ContainerOutcome{}, takeError(res.result, res.error)
	}
	out := &res.outcome
	return ContainerOutcome{Changed: bool(out.changed), State: State(out.state), CurrentContainers: int(out.current_containers)}, nil
}

func (b *cgoBackend) evaluateAll(read func(items, ids []byte)) error {
	var list *C.nl_verdict_list
	var cerr *C.nl_error
	if err := takeError(C.nl_fleet_evaluate_all(b.h, &list, &cerr), cerr); err != nil {
		return err
	}
	defer C.nl_verdict_list_free(list)
	var count, idsLen C.size_t
	items := C.nl_verdict_list_items(list, &count)
	ids := C.nl_verdict_list_ids(list, &idsLen)
	read(view((*C.uint8_t)(unsafe.Pointer(items)), count*C.sizeof_nl_node_verdict), view(ids, idsLen))
	return nil
}

func (b *cgoBackend) auditList(q auditListQuery, read func(items, strs []byte, missed, next uint64)) error {
	var list *C.nl_audit_list
	var cerr *C.nl_error
	var missed, next C.uint64_t
	var r C.nl_result
	if q.since {
		r = C.nl_fleet_audit_since_list(b.h, C.uint64_t(q.cursor), C.size_t(q.limit), &list, &missed, &next, &cerr)
	} else {
		tp, tl := cstr(q.text)
		r = C.nl_fleet_audit_query_list(b.h, C.uint32_t(q.filter), tp, tl, C.uint32_t(q.value), C.size_t(q.limit), &list, &cerr)
		runtime.KeepAlive(q.text)
	}
	if err := takeError(r, cerr); err != nil {
		return err
	}
	defer C.nl_audit_list_free(list)
	var count, strsLen C.size_t
	items := C.nl_audit_list_items(list, &count)
	strs := C.nl_audit_list_strings(list, &strsLen)
	read(view((*C.uint8_t)(unsafe.Pointer(items)), count*C.sizeof_nl_audit_item), view(strs, strsLen), uint64(missed), uint64(next))
	return nil
}

func (b *cgoBackend) recordAudit(rec *AuditRecord) (uint64, error) {
	np, nl := cstr(rec.NodeID)
	cp, cl := cstr(rec.ContainerID)
	rp, rl := cstr(rec.Reason)
	dp, dl := cstr(rec.DecisionBy)
	ep, el := cstr(rec.Error)
	var seq C.uint64_t
	var cerr *C.nl_error
	r := C.nl_fleet_audit_record(b.h, C.uint32_t(rec.Action), C.uint32_t(rec.Result), np, nl, cp, cl, rp, rl, dp, dl, ep, el, &seq, &cerr)
	runtime.KeepAlive(rec)
	if r != C.NL_RESULT_OK {
		return 0, takeError(r, cerr)
	}
	return uint64(seq), nil
}

func (b *cgoBackend) noop() uint32 { return uint32(C.nl_noop()) }

func (b *cgoBackend) close() error {
	if r := C.nl_fleet_free(b.h); r != C.NL_RESULT_OK {
		return libraryError(uint32(r), nil)
	}
	return nil
}

func salvage(from, to string) ([]byte, error) {
	fp, fl := cstr(from)
	tp, tl := cstr(to)
	var out *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_salvage(fp, fl, tp, tl, &out, &cerr)
	runtime.KeepAlive(from)
	runtime.KeepAlive(to)
	if err := takeError(r, cerr); err != nil {
		return nil, err
	}
	defer C.nl_bytes_free(out)
	return C.GoBytes(unsafe.Pointer(C.nl_bytes_data(out)), C.int(C.nl_bytes_len(out))), nil
}
