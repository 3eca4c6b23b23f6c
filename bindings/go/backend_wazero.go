//go:build !cgo || nl_wasm

package lifecycle

// The cgo-free backend: the same Rust core compiled to WebAssembly (wasm32-wasip1, embedded
// below, built by scripts/build-dist from this repository's source) and run in-process by
// wazero, a pure-Go runtime. Selected when cgo is off, or with the nl_wasm build tag.
//
// Each fleet gets its own module instance (its own linear memory): fleets are isolated, and a
// trap in one (a Rust panic aborts on wasm) poisons that fleet only. An instance is
// single-threaded, so calls into it are serialised by a mutex. Clocks (wall and monotonic) and
// randomness come from the host; a data directory is mounted into the instance at /data, its
// syncs reach the host's fsync, and the host holds the directory's exclusive lock (WASI has
// no locks). The compiled module is cached on disk (wazero's compilation cache), so only the
// first process on a machine pays for compiling it.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// BackendName says which backend this build uses: "cgo" (the native library) or "wasm".
const BackendName = "wasm"

// wasmModule is the library compiled to WebAssembly: the shipped module (wasm_shipped.go),
// or with the nl_dev tag the one `make go-wasm` just built from this checkout (wasm_dev.go).

// wasmEngine is the runtime and the compiled module, shared by every fleet of the process.
type wasmEngine struct {
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
}

var (
	engineOnce sync.Once
	engine     *wasmEngine
	engineErr  error
)

// compilationCacheDir is where compiled modules are kept between processes:
// $NL_WASM_CACHE_DIR, or node-lifecycle/wazero in the user's cache directory. Empty (no
// cache) when neither is usable.
func compilationCacheDir() string {
	if d := os.Getenv("NL_WASM_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "node-lifecycle", "wazero")
	}
	return ""
}

// wasmMissing says why there is no module to run (set by wasm_dev.go when the checkout's module
// is not built; the shipped module is always there).
var wasmMissing error

func loadEngine() (*wasmEngine, error) {
	engineOnce.Do(func() {
		if wasmMissing != nil {
			engineErr = wasmMissing
			return
		}
		ctx := context.Background()
		cfg := wazero.NewRuntimeConfig()
		if dir := compilationCacheDir(); dir != "" {
			if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
				cfg = cfg.WithCompilationCache(cache)
			}
		}
		r := wazero.NewRuntimeWithConfig(ctx, cfg)
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
			engineErr = fmt.Errorf("lifecycle: starting the WebAssembly runtime: %w", err)
			return
		}
		compiled, err := r.CompileModule(ctx, wasmModule)
		if err != nil {
			engineErr = fmt.Errorf("lifecycle: compiling the embedded library: %w", err)
			return
		}
		engine = &wasmEngine{runtime: r, compiled: compiled}
	})
	return engine, engineErr
}

// wasmInstance is one instance of the module with the exports the seam uses.
type wasmInstance struct {
	mod api.Module
	mem api.Memory
	fn  map[string]wasmFunc
	// stack is the parameter and result stack of every call (CallWithStack), reused so that
	// a call allocates nothing; argv is the (pointer, length) pairs args returns.
	stack [16]uint64
	argv  [8]uint64
	// scratch is module memory the host writes arguments and reads out-parameters in.
	scratch, scratchCap uint32
	// mounts maps the guest paths the library sees to the host's, for the paths storage
	// errors and reports name.
	mounts map[string]string
	// hostErrno is what the host file system really said when the module saw EIO (wasm_fs.go).
	hostErrno hostErrno
}

// wasmExports are the library's functions the backend calls.
var wasmExports = []string{
	"nl_wasm_alloc", "nl_wasm_free", "nl_options_from_json", "nl_options_free", "nl_fleet_new",
	"nl_fleet_free", "nl_fleet_call", "nl_fleet_evaluate", "nl_fleet_add_container",
	"nl_fleet_remove_container", "nl_fleet_audit_record", "nl_fleet_evaluate_all",
	"nl_verdict_list_items", "nl_verdict_list_ids", "nl_verdict_list_free",
	"nl_fleet_audit_query_list", "nl_fleet_audit_since_list", "nl_audit_list_items",
	"nl_audit_list_strings", "nl_audit_list_free", "nl_error_code", "nl_error_detail_json",
	"nl_error_free", "nl_bytes_data", "nl_bytes_len", "nl_bytes_free", "nl_version",
	"nl_source_fingerprint", "nl_noop", "nl_salvage",
}

// instantiate starts an instance with the given host directories mounted (guest path ->
// host path).
func instantiate(mounts map[string]string) (*wasmInstance, error) {
	return instantiateFS(mounts, newDiskFS)
}

// mountFS makes the file system the module sees at a mount from the host directory (diskFS,
// or a replica's mirrorFS over it).
type mountFS func(host string, seen *hostErrno) experimentalsys.FS

// instantiateFS is instantiate with the file system of each mount made by fsFor.
func instantiateFS(mounts map[string]string, fsFor mountFS) (*wasmInstance, error) {
	e, err := loadEngine()
	if err != nil {
		return nil, err
	}
	in := &wasmInstance{mounts: mounts}
	fsConfig := wazero.NewFSConfig()
	for guest, host := range mounts {
		fsConfig = fsConfig.(sysfs.FSConfig).WithSysFSMount(fsFor(host, &in.hostErrno), guest)
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: one instance per fleet
		WithStartFunctions("_initialize").
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(crand.Reader).
		WithStderr(os.Stderr).
		WithFSConfig(fsConfig)
	mod, err := e.runtime.InstantiateModule(context.Background(), e.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: instantiating the library: %w", err)
	}
	in.mod, in.mem, in.fn = mod, mod.Memory(), make(map[string]wasmFunc, len(wasmExports))
	for _, name := range wasmExports {
		f := mod.ExportedFunction(name)
		if f == nil {
			_ = mod.Close(context.Background())
			return nil, fmt.Errorf("lifecycle: the embedded library lacks %s (rebuild it with scripts/build-dist)", name)
		}
		in.fn[name] = wasmFunc{f: f, results: len(f.Definition().ResultTypes())}
	}
	return in, nil
}

// trapError is what a call that trapped returns: the instance is unusable from then on.
type trapError struct{ err error }

func (t trapError) Error() string { return t.err.Error() }

// wasmFunc is one export and how many results it returns (0 or 1).
type wasmFunc struct {
	f       api.Function
	results int
}

// call runs one export; a trap (a Rust panic aborts on wasm) comes back as trapError.
// Parameters and the result travel through the instance's reused stack: no allocation.
func (in *wasmInstance) call(name string, args ...uint64) (uint64, error) {
	fn := in.fn[name]
	stack := in.stack[:max(len(args), fn.results)]
	copy(stack, args)
	if err := fn.f.CallWithStack(context.Background(), stack); err != nil {
		return 0, trapError{err}
	}
	if fn.results == 0 {
		return 0, nil
	}
	return stack[0], nil
}

// reserve makes the scratch region at least n bytes.
func (in *wasmInstance) reserve(n uint32) error {
	if n <= in.scratchCap {
		return nil
	}
	size := max(n, 2*in.scratchCap, 4096)
	ptr, err := in.call("nl_wasm_alloc", uint64(size))
	if err != nil {
		return err
	}
	if ptr == 0 {
		return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("the library cannot allocate %d bytes for the call's arguments", size)}
	}
	if in.scratch != 0 {
		if _, err := in.call("nl_wasm_free", uint64(in.scratch), uint64(in.scratchCap)); err != nil {
			return err
		}
	}
	in.scratch, in.scratchCap = uint32(ptr), size
	return nil
}

// The scratch region's layout: out-parameters first, then the call's strings.
const (
	outArea   = 256 // out-parameters: pointers, counts, a verdict, an outcome
	outPtr    = 0   // first pointer out-parameter (nl_bytes**, list**, options**, fleet**)
	outErr    = 8   // nl_error**
	outA      = 16  // a u64 or size_t out-parameter
	outB      = 24  // a second one
	outStruct = 32  // nl_verdict (40 bytes) or nl_container_outcome (16 bytes)
)

var zeroOutArea [outArea]byte

// args writes strings after the out area and returns each one's (pointer, length).
func (in *wasmInstance) args(strs ...string) ([]uint64, error) {
	total := uint32(outArea)
	for _, s := range strs {
		if uint64(len(s)) > math.MaxUint32-uint64(total) {
			return nil, &Error{Code: CodeInvalidArgument, Message: "argument too large for the WebAssembly backend (4 GiB)"}
		}
		total += uint32(len(s))
	}
	if err := in.reserve(total); err != nil {
		return nil, err
	}
	// Clear the out area so that a call that writes nothing leaves zeroes.
	in.mem.Write(in.scratch, zeroOutArea[:])
	out := in.argv[:0]
	if 2*len(strs) > len(in.argv) {
		out = make([]uint64, 0, 2*len(strs))
	}
	at := in.scratch + outArea
	for _, s := range strs {
		if len(s) == 0 {
			out = append(out, 0, 0)
			continue
		}
		in.mem.WriteString(at, s)
		out = append(out, uint64(at), uint64(len(s)))
		at += uint32(len(s))
	}
	return out, nil
}

func (in *wasmInstance) u32(off uint32) uint32 {
	v, _ := in.mem.ReadUint32Le(in.scratch + off)
	return v
}

func (in *wasmInstance) u64(off uint32) uint64 {
	v, _ := in.mem.ReadUint64Le(in.scratch + off)
	return v
}

func (in *wasmInstance) out(off uint32) uint64 { return uint64(in.scratch + off) }

// takeBytes copies an nl_bytes into Go memory and frees it.
func (in *wasmInstance) takeBytes(b uint32) ([]byte, error) {
	ptr, err := in.call("nl_bytes_data", uint64(b))
	if err != nil {
		return nil, err
	}
	n, err := in.call("nl_bytes_len", uint64(b))
	if err != nil {
		return nil, err
	}
	view, ok := in.mem.Read(uint32(ptr), uint32(n))
	if !ok {
		// The instance is broken: a trap, which poisons the fleet.
		return nil, trapError{fmt.Errorf("the library returned a buffer outside its memory (%d bytes at %#x)", n, ptr)}
	}
	data := append([]byte(nil), view...)
	_, err = in.call("nl_bytes_free", uint64(b))
	return data, err
}

// result turns a call's result code into an error, reading (and freeing) the nl_error the
// call left in the out area.
func (in *wasmInstance) result(code uint64, err error) error {
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	var detail []byte
	if cerr := in.u32(outErr); cerr != 0 {
		if r, err := in.call("nl_error_detail_json", uint64(cerr), in.out(outPtr)); err == nil && r == 0 {
			detail, _ = in.takeBytes(in.u32(outPtr))
		}
		if _, err := in.call("nl_error_free", uint64(cerr)); err != nil {
			return err
		}
	}
	e := libraryError(uint32(code), detail)
	switch e.Code {
	case CodeStorage, CodeLocked, CodeUnsupportedFormat, CodeCorrupt, CodePoisoned:
		e.Message = in.hostErrno.reword(in.hostPaths(e.Message))
	}
	return e
}

// hostPaths rewrites the guest paths of the mounted directories in a storage message or
// report to the host's (the library sees /data; the caller gave a directory of its own).
func (in *wasmInstance) hostPaths(s string) string {
	for guest, host := range in.mounts {
		s = strings.ReplaceAll(s, guest+"/", host+string(filepath.Separator))
		if strings.HasSuffix(s, guest) {
			s = strings.TrimSuffix(s, guest) + host
		}
	}
	return s
}

// hostPathsJSON does the same in a JSON document (the storage report), escaping the host's
// path as JSON.
func (in *wasmInstance) hostPathsJSON(doc []byte) []byte {
	for guest, host := range in.mounts {
		quoted, _ := json.Marshal(host)
		sep, _ := json.Marshal(string(filepath.Separator))
		doc = bytes.ReplaceAll(doc, []byte(`"`+guest+`"`), quoted)
		doc = bytes.ReplaceAll(doc, []byte(`"`+guest+`/`), append(quoted[:len(quoted)-1:len(quoted)-1], sep[1:len(sep)-1]...))
	}
	return doc
}

// cString reads a NUL-terminated static string.
func (in *wasmInstance) cString(ptr uint64) string {
	var b []byte
	for p := uint32(ptr); ; p++ {
		c, ok := in.mem.ReadByte(p)
		if !ok || c == 0 || len(b) > 4096 {
			return string(b)
		}
		b = append(b, c)
	}
}

// ----- the backend -------------------------------------------------------------------------

type wasmBackend struct {
	mu       sync.Mutex
	in       *wasmInstance
	fleet    uint64 // the nl_fleet handle inside the instance
	poisoned error
	unlock   func() // releases the data directory's lock
}

func openBackend(optionsJSON []byte) (backend, error) {
	// The data directory is the host's: mount it at /data, take its lock here (WASI has no
	// locks), and tell the library the guest path.
	var opts map[string]json.RawMessage
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: "options: " + err.Error()}
	}
	mounts := map[string]string{}
	unlock := func() {}
	if raw, ok := opts["data_dir"]; ok {
		var dir string
		if err := json.Unmarshal(raw, &dir); err != nil {
			return nil, &Error{Code: CodeInvalidArgument, Message: "data_dir: " + err.Error()}
		}
		abs, err := filepath.Abs(dir)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err != nil {
			return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: creating data directory %s: %v", dir, err)}
		}
		release, err := lockDir(abs)
		if err != nil {
			return nil, err
		}
		unlock = release
		mounts["/data"] = abs
		opts["data_dir"] = json.RawMessage(`"/data"`)
		if optionsJSON, err = json.Marshal(opts); err != nil {
			unlock()
			return nil, err
		}
	}
	b, err := newWasmBackend(mounts, optionsJSON)
	if err != nil {
		unlock()
		return nil, err
	}
	b.unlock = unlock
	return b, nil
}

func newWasmBackend(mounts map[string]string, optionsJSON []byte) (*wasmBackend, error) {
	return newWasmBackendFS(mounts, newDiskFS, optionsJSON)
}

func newWasmBackendFS(mounts map[string]string, fsFor mountFS, optionsJSON []byte) (*wasmBackend, error) {
	in, err := instantiateFS(mounts, fsFor)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*wasmBackend, error) {
		_ = in.mod.Close(context.Background())
		return nil, trapped(err)
	}
	a, err := in.args(string(optionsJSON))
	if err != nil {
		return fail(err)
	}
	if err := in.result(in.call("nl_options_from_json", a[0], a[1], in.out(outPtr), in.out(outErr))); err != nil {
		return fail(err)
	}
	opts := in.u32(outPtr)
	err = in.result(in.call("nl_fleet_new", uint64(opts), in.out(outPtr), in.out(outErr)))
	fleet := in.u32(outPtr)
	if _, ferr := in.call("nl_options_free", uint64(opts)); err == nil {
		err = ferr
	}
	if err != nil {
		return fail(err)
	}
	return &wasmBackend{in: in, fleet: uint64(fleet)}, nil
}

// trapped turns a trap into the typed error callers see.
func trapped(err error) error {
	if t, ok := err.(trapError); ok {
		return &Error{Code: CodePoisoned, Message: "the library trapped (a panic inside it); the fleet refuses work until it is reopened: " + t.err.Error()}
	}
	return err
}

// enter locks the instance for one call; a poisoned backend refuses.
func (b *wasmBackend) enter() error {
	b.mu.Lock()
	if b.in == nil {
		b.mu.Unlock()
		return &Error{Code: CodeUseAfterFree, Message: "fleet is closed"}
	}
	if b.poisoned != nil {
		err := b.poisoned
		b.mu.Unlock()
		return err
	}
	return nil
}

// leave unlocks; a trap during the call poisons the backend and closes the instance (its
// memory may hold a half-applied mutation; the data directory holds only what was
// acknowledged).
func (b *wasmBackend) leave(err error) error {
	defer b.mu.Unlock()
	if t, ok := err.(trapError); ok {
		b.poisoned = trapped(t)
		_ = b.in.mod.Close(context.Background())
		return b.poisoned
	}
	return err
}

func (b *wasmBackend) call(request []byte) (out []byte, err error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	a, err := in.args(string(request))
	if err != nil {
		return nil, err
	}
	if err := in.result(in.call("nl_fleet_call", b.fleet, a[0], a[1], in.out(outPtr), in.out(outErr))); err != nil {
		return nil, err
	}
	out, err = in.takeBytes(in.u32(outPtr))
	if err == nil && len(in.mounts) > 0 && bytes.Contains(request, []byte(`"op":"storage"`)) {
		out = in.hostPathsJSON(out)
	}
	return out, err
}

func (b *wasmBackend) evaluate(node string) (v flatVerdict, err error) {
	if err := b.enter(); err != nil {
		return flatVerdict{}, err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	a, err := in.args(node)
	if err != nil {
		return flatVerdict{}, err
	}
	if err := in.result(in.call("nl_fleet_evaluate", b.fleet, a[0], a[1], in.out(outStruct), in.out(outErr))); err != nil {
		return flatVerdict{}, err
	}
	raw, _ := in.mem.Read(in.scratch+outStruct, sizeofVerdict)
	return decodeVerdict(raw), nil
}

func (b *wasmBackend) containerEvent(add bool, node, container string, ramMB uint64) (o ContainerOutcome, err error) {
	if err := b.enter(); err != nil {
		return ContainerOutcome{}, err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	a, err := in.args(node, container)
	if err != nil {
		return ContainerOutcome{}, err
	}
	var code uint64
	if add {
		code, err = in.call("nl_fleet_add_container", b.fleet, a[0], a[1], a[2], a[3], ramMB, in.out(outStruct), in.out(outErr))
	} else {
		code, err = in.call("nl_fleet_remove_container", b.fleet, a[0], a[1], a[2], a[3], in.out(outStruct), in.out(outErr))
	}
	if err := in.result(code, err); err != nil {
		return ContainerOutcome{}, err
	}
	raw, _ := in.mem.Read(in.scratch+outStruct, 16)
	return ContainerOutcome{Changed: raw[0] != 0, State: State(binary.LittleEndian.Uint32(raw[4:])), CurrentContainers: int(binary.LittleEndian.Uint64(raw[8:]))}, nil
}

func (b *wasmBackend) recordAudit(rec *AuditRecord) (seq uint64, err error) {
	if err := b.enter(); err != nil {
		return 0, err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	a, err := in.args(rec.NodeID, rec.ContainerID, rec.Reason, rec.DecisionBy, rec.Error)
	if err != nil {
		return 0, err
	}
	code, err := in.call("nl_fleet_audit_record", b.fleet, uint64(rec.Action), uint64(rec.Result),
		a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], in.out(outA), in.out(outErr))
	if err := in.result(code, err); err != nil {
		return 0, err
	}
	return in.u64(outA), nil
}

func (b *wasmBackend) evaluateAll(read func(items, ids []byte)) (err error) {
	if err := b.enter(); err != nil {
		return err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	if _, err := in.args(); err != nil {
		return err
	}
	if err := in.result(in.call("nl_fleet_evaluate_all", b.fleet, in.out(outPtr), in.out(outErr))); err != nil {
		return err
	}
	return in.readList(uint64(in.u32(outPtr)), "nl_verdict_list", "ids", sizeofNodeVerdict, read)
}

// readList hands a list the library returned (its fixed-size items and the blob of strings
// they point into, both in module memory) to read, then frees it. prefix names the list's
// exports: <prefix>_items, <prefix>_<blob> and <prefix>_free. Memory the module points
// outside of itself is a broken instance: a trap, which poisons the fleet.
func (in *wasmInstance) readList(list uint64, prefix, blob string, itemSize uint32, read func(items, blob []byte)) error {
	items, err := in.call(prefix+"_items", list, in.out(outA))
	if err != nil {
		return err
	}
	count := in.u32(outA)
	blobAt, err := in.call(prefix+"_"+blob, list, in.out(outB))
	if err != nil {
		return err
	}
	itemBytes, ok1 := in.mem.Read(uint32(items), count*itemSize)
	blobBytes, ok2 := in.mem.Read(uint32(blobAt), in.u32(outB))
	if !ok1 || !ok2 {
		return trapError{fmt.Errorf("%s: the list lies outside the module's memory", prefix)}
	}
	read(itemBytes, blobBytes)
	_, err = in.call(prefix+"_free", list)
	return err
}

func (b *wasmBackend) auditList(q auditListQuery, read func(items, strs []byte, missed, next uint64)) (err error) {
	if err := b.enter(); err != nil {
		return err
	}
	defer func() { err = b.leave(err) }()
	in := b.in
	limit := min(q.limit, math.MaxUint32) // size_t is 32 bits in the module
	var code uint64
	if q.since {
		if _, err := in.args(); err != nil {
			return err
		}
		code, err = in.call("nl_fleet_audit_since_list", b.fleet, q.cursor, limit, in.out(outPtr), in.out(outA), in.out(outB), in.out(outErr))
	} else {
		a, aerr := in.args(q.text)
		if aerr != nil {
			return aerr
		}
		code, err = in.call("nl_fleet_audit_query_list", b.fleet, uint64(q.filter), a[0], a[1], uint64(q.value), limit, in.out(outPtr), in.out(outErr))
	}
	if err := in.result(code, err); err != nil {
		return err
	}
	missed, next := in.u64(outA), in.u64(outB)
	if !q.since {
		missed, next = 0, 0
	}
	return in.readList(uint64(in.u32(outPtr)), "nl_audit_list", "strings", sizeofAuditItem, func(items, strs []byte) {
		read(items, strs, missed, next)
	})
}

func (b *wasmBackend) noop() uint32 {
	if b.enter() != nil {
		return 0
	}
	r, err := b.in.call("nl_noop")
	_ = b.leave(err)
	return uint32(r)
}

func (b *wasmBackend) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.in == nil {
		return nil
	}
	var err error
	if b.poisoned == nil {
		var code uint64
		if code, err = b.in.call("nl_fleet_free", b.fleet); err == nil && code != 0 {
			err = libraryError(uint32(code), nil)
		}
		err = trapped(err)
	}
	_ = b.in.mod.Close(context.Background())
	b.in = nil
	if b.unlock != nil {
		b.unlock()
	}
	return err
}

// ----- calls without a fleet ---------------------------------------------------------------

func queryLibrary() libraryInfo {
	in, err := instantiate(nil)
	if err != nil {
		return libraryInfo{version: "unavailable", err: err}
	}
	defer in.mod.Close(context.Background())
	v, _ := in.call("nl_version")
	f, _ := in.call("nl_source_fingerprint")
	return libraryInfo{version: in.cString(v), fingerprint: in.cString(f)}
}

func salvage(from, to string) ([]byte, error) {
	fromAbs, err := filepath.Abs(from)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	toAbs, err := filepath.Abs(to)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	if _, err := os.Stat(fromAbs); err != nil {
		return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: reading %s: %v", from, err)}
	}
	parent := filepath.Dir(toAbs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: creating %s: %v", parent, err)}
	}
	in, err := instantiate(map[string]string{"/from": fromAbs, "/to": parent})
	if err != nil {
		return nil, err
	}
	defer in.mod.Close(context.Background())
	a, err := in.args("/from", "/to/"+filepath.Base(toAbs))
	if err != nil {
		return nil, trapped(err)
	}
	if err := in.result(in.call("nl_salvage", a[0], a[1], a[2], a[3], in.out(outPtr), in.out(outErr))); err != nil {
		return nil, trapped(err)
	}
	report, err := in.takeBytes(in.u32(outPtr))
	if err != nil {
		return nil, trapped(err)
	}
	// The report names the guest's paths (/from, /to/...): give the caller theirs.
	return in.hostPathsJSON(report), nil
}
