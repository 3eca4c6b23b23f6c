// Package lifecycle decides when a cloud VM may be deleted, and proves afterwards why it was or
// wasn't. It wraps the node-lifecycle library (a Rust core) through one of two backends: the
// native library through cgo (the default when cgo is on), or the same core compiled to
// WebAssembly and run in-process by a pure-Go runtime (when cgo is off, or with the nl_wasm
// build tag). Both have the same API and behaviour; BackendName says which one is built in.
//
// A Fleet owns every node's lifecycle state, its safety verdicts, the two-phase decommission
// protocol and a bounded audit ring. It is safe for concurrent use by many goroutines; every
// method is atomic. Close it when done.
package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Fleet is a registry of nodes. Create it with New and release it with Close.
type Fleet struct {
	b      backend
	closed atomic.Bool
}

// New creates a fleet. The zero Options give the specification's defaults on the wall clock,
// in memory. Settings the package or the library refuses are ErrInvalidSetting naming the
// field; a data directory that cannot be opened is ErrStorage, ErrLocked, ErrCorrupt or
// ErrUnsupportedFormat.
func New(opts Options) (*Fleet, error) {
	js, err := opts.toJSON()
	if err != nil {
		return nil, err
	}
	if err := checkLibraryVersion(); err != nil {
		return nil, err
	}
	if sharedForTests != nil {
		sharedForTests(&opts)
	}
	var b backend
	if opts.Shared != nil {
		b, err = openReplica(opts, js)
	} else {
		b, err = openBackend(js)
	}
	if err != nil {
		return nil, err
	}
	f := &Fleet{b: b}
	// Backstop only: a Fleet that is never closed is released when collected.
	runtime.SetFinalizer(f, func(f *Fleet) { _ = f.Close() })
	return f, nil
}

// sharedForTests, set only by this package's tests (NL_TEST_SHARED=1), turns every fleet New
// opens into a shared one, so that the acceptance suites also run over the replica layer.
var sharedForTests func(*Options)

// Close releases the fleet (a persistent one syncs its journal and releases its directory).
// It is idempotent and safe to call while other goroutines use the fleet: their calls finish,
// and later calls return ErrClosed.
func (f *Fleet) Close() error {
	if f == nil || !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	runtime.SetFinalizer(f, nil)
	return f.b.close()
}

// backend returns the fleet's backend, or ErrClosed.
func (f *Fleet) backend() (backend, error) {
	if f == nil {
		return nil, &Error{Code: CodeNullArgument, Message: "nil *Fleet"}
	}
	if f.closed.Load() {
		return nil, &Error{Code: CodeUseAfterFree, Message: "fleet is closed"}
	}
	return f.b, nil
}

// op is one nl_fleet_call request.
type op map[string]any

// do runs one JSON operation and decodes its result into out (nil: ignore it).
func (f *Fleet) do(request op, out any) error {
	b, err := f.backend()
	if err != nil {
		return err
	}
	if err := checkUTF8(request); err != nil {
		return err
	}
	req, err := json.Marshal(request)
	if err != nil {
		// A value the package cannot encode (an enum out of range, a NaN) never reaches the
		// library.
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return invalidArgument("%s: %v", request["op"], err)
	}
	res, err := b.call(req)
	runtime.KeepAlive(f)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return &Error{Code: CodePanic, Message: fmt.Sprintf("decoding the library's answer to %s: %v", request["op"], err)}
	}
	return nil
}

// checkUTF8 refuses invalid UTF-8 in every string of a request except the free texts that
// describe what happened (keys "error" and "evidence"), which are recorded whatever they hold. encoding/json would otherwise replace the
// bad bytes silently, and a node id "\xff" would become another id instead of an error (the
// typed calls get ErrInvalidUTF8 from the library; this keeps the JSON calls the same).
func checkUTF8(v any) error {
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			return &Error{Code: CodeInvalidUTF8, Message: fmt.Sprintf("%q is not valid UTF-8", v)}
		}
	case op:
		for k, x := range v {
			if k == "error" || k == "evidence" {
				continue
			}
			if err := checkUTF8(x); err != nil {
				err.(*Error).Message = k + ": " + err.(*Error).Message
				return err
			}
		}
	case map[string]any:
		for k, x := range v {
			if err := checkUTF8(k); err != nil {
				return err
			}
			if err := checkUTF8(x); err != nil {
				return err
			}
		}
	case map[string]string:
		for k, x := range v {
			if !utf8.ValidString(k) || !utf8.ValidString(x) {
				return &Error{Code: CodeInvalidUTF8, Message: fmt.Sprintf("label %q = %q is not valid UTF-8", k, x)}
			}
		}
	case []string:
		for _, x := range v {
			if err := checkUTF8(x); err != nil {
				return err
			}
		}
	case [][2]any:
		for _, x := range v {
			if err := checkUTF8(x[0]); err != nil {
				return err
			}
		}
	case Ticket:
		return checkUTF8(v.NodeID)
	case ConsolidationPlan:
		for _, m := range v.Moves {
			for _, s := range []string{m.ContainerID, m.FromNode, m.ToNode} {
				if err := checkUTF8(s); err != nil {
					return err
				}
			}
		}
		for _, r := range v.Remove {
			if err := checkUTF8(r.NodeID); err != nil {
				return err
			}
		}
	}
	return nil
}

// ----- clock and policy ---------------------------------------------------------------------

// Now is the library clock's time (the zero time for a closed fleet).
func (f *Fleet) Now() time.Time {
	var out struct {
		NowMs int64 `json:"now_ms"`
	}
	if f.do(op{"op": "now"}, &out) != nil {
		return time.Time{}
	}
	return time.UnixMilli(out.NowMs)
}

// Advance moves a manual clock forward (ErrNotManualClock on the wall clock). Both the
// recorded (wall) time and the elapsed (monotonic) time move; they saturate instead of
// wrapping.
func (f *Fleet) Advance(d time.Duration) error {
	if d < 0 {
		return invalidArgument("cannot advance the clock by a negative duration (%v)", d)
	}
	return f.do(op{"op": "advance_clock", "ms": uint64(d / time.Millisecond)}, nil)
}

// SetClock sets a manual clock's wall time (ErrNotManualClock on the wall clock). Like a
// wall-clock step on a real machine, it does not move elapsed time: no grace gets shorter or
// longer because of it.
func (f *Fleet) SetClock(t time.Time) error {
	return f.do(op{"op": "set_clock", "ms": t.UnixMilli()}, nil)
}

// SetPolicy replaces the policy; zero fields mean the defaults, as in New.
func (f *Fleet) SetPolicy(p Policy) error {
	j, err := p.toJSON("Policy")
	if err != nil {
		return err
	}
	return f.do(op{"op": "set_policy", "policy": j}, nil)
}

// Policy returns the policy in force, every default filled in (Off for a timer that is off).
func (f *Fleet) Policy() (Policy, error) {
	var j policyJSON
	if err := f.do(op{"op": "policy"}, &j); err != nil {
		return Policy{}, err
	}
	return j.policy(), nil
}

// InstanceID identifies a fleet: random at creation, kept in its data directory across
// restarts. Audit stores use it to tell fleets apart.
type InstanceID [16]byte

func (id InstanceID) String() string { return hexString(id[:]) }

func (id InstanceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *InstanceID) UnmarshalText(b []byte) error { return parseHex(id[:], b, "instance id") }

// InstanceID returns the fleet's identity.
func (f *Fleet) InstanceID() (InstanceID, error) {
	var id InstanceID
	err := f.do(op{"op": "instance_id"}, &id)
	return id, err
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func parseHex(dst []byte, text []byte, what string) error {
	if len(text) != 2*len(dst) {
		return invalidArgument("%s %q must be %d hex digits", what, text, 2*len(dst))
	}
	for i := range dst {
		hi, ok1 := hexDigit(text[2*i])
		lo, ok2 := hexDigit(text[2*i+1])
		if !ok1 || !ok2 {
			return invalidArgument("%s %q must be %d hex digits", what, text, 2*len(dst))
		}
		dst[i] = hi<<4 | lo
	}
	return nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
