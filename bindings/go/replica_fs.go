//go:build !cgo || nl_wasm

package lifecycle

// mirrorFS: a replica's files. The module reads and writes a local working copy (a temporary
// directory filled from the store's Load), and every step the core treats as durable reaches
// the store first, as one fenced call:
//
//	fsync of a file   -> Append of the bytes written since the last one
//	truncate          -> Truncate (also O_TRUNC at open)
//	rename, unlink    -> Rename, Remove
//
// If the store refuses (fenced, unreachable), the module sees EIO for that step and handles it
// as it handles a failing disk: a failed fsync poisons the fleet, so nothing the store does
// not hold is ever acknowledged. Writes between two fsyncs are not durable, exactly as on a
// disk. A standby's mirror is read-only towards the store: what the core writes while it
// opens (a new journal generation) stays local and is dropped with the copy.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// storeWriter is a mirror's link to the store: who writes, under which epoch, and how many
// bytes of each file the store holds.
type storeWriter struct {
	store    SharedStore
	holder   string
	epoch    uint64
	timeout  time.Duration
	readOnly bool // a standby's copy: writes stay local (the replica refuses its mutations)
	dir      string
	// retired is set on a leader's writer before its instance is replaced: from then on every
	// store step fails, so a call still running on the old instance is never acknowledged
	// and nothing of it reaches the store after the new instance loaded.
	retired atomic.Bool

	mu     sync.Mutex
	pushed map[string]int64 // files the store holds, and their length there
	// uncertain are appends whose outcome is unknown: the store failed (not fenced) and may
	// have committed before the connection broke. The core saw a failure, so whatever landed
	// was never acknowledged; before this replica reopens from the store it cuts them back.
	uncertain []uncertainAppend
	// fenced is set when the store refused a write for the lease; lastErr is the store's
	// last refusal, for the error the caller sees.
	fenced  atomic.Bool
	lastErr atomic.Pointer[error]
}

func (w *storeWriter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), w.timeout)
}

// refused records a store error and turns it into the errno the module sees.
func (w *storeWriter) refused(err error) experimentalsys.Errno {
	if errors.Is(err, ErrFenced) {
		w.fenced.Store(true)
	}
	w.lastErr.Store(&err)
	return experimentalsys.EIO
}

// storeError is the store's last refusal, if any.
func (w *storeWriter) storeError() error {
	if p := w.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// local reports whether a step stays in the copy (a standby) and fails when the writer is
// retired.
func (w *storeWriter) local() (bool, experimentalsys.Errno) {
	if w.retired.Load() {
		err := fmt.Errorf("this replica's instance was replaced (it stepped down or is reopening)")
		w.lastErr.Store(&err)
		return false, experimentalsys.EIO
	}
	return w.readOnly, 0
}

// push sends the bytes of name written since the last push (creating the file in the store
// if it holds none yet).
func (w *storeWriter) push(name string) experimentalsys.Errno {
	if local, errno := w.local(); local || errno != 0 {
		return errno
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	from, known := w.pushed[name]
	f, err := os.Open(filepath.Join(w.dir, name))
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if known && len(data) == 0 {
		return 0
	}
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.store.Append(ctx, w.holder, w.epoch, name, from, data); err != nil {
		if !errors.Is(err, ErrFenced) {
			w.uncertain = append(w.uncertain, uncertainAppend{name, from})
		}
		return w.refused(err)
	}
	w.pushed[name] = from + int64(len(data))
	return 0
}

type uncertainAppend struct {
	name string
	off  int64
}

// resolve cuts every uncertain append back in the store, under epoch (the caller checked that
// the lease is still this replica's). It fails if the store still fails.
func (w *storeWriter) resolve(epoch uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.uncertain) > 0 {
		u := w.uncertain[0]
		ctx, cancel := w.ctx()
		err := w.store.Truncate(ctx, w.holder, epoch, u.name, u.off)
		cancel()
		if err != nil {
			return err
		}
		w.uncertain = w.uncertain[1:]
	}
	return nil
}

// truncate cuts name in the store before the copy is cut.
func (w *storeWriter) truncate(name string, size int64) experimentalsys.Errno {
	if local, errno := w.local(); local || errno != 0 {
		return errno
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n, known := w.pushed[name]
	if !known || n <= size {
		return 0 // the store holds no bytes past size
	}
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.store.Truncate(ctx, w.holder, w.epoch, name, size); err != nil {
		return w.refused(err)
	}
	w.pushed[name] = size
	return 0
}

func (w *storeWriter) rename(from, to string) experimentalsys.Errno {
	if local, errno := w.local(); local || errno != 0 {
		return errno
	}
	if errno := w.push(from); errno != 0 {
		return errno
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.store.Rename(ctx, w.holder, w.epoch, from, to); err != nil {
		return w.refused(err)
	}
	w.pushed[to] = w.pushed[from]
	delete(w.pushed, from)
	return 0
}

func (w *storeWriter) remove(name string) experimentalsys.Errno {
	if local, errno := w.local(); local || errno != 0 {
		return errno
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, known := w.pushed[name]; !known {
		return 0
	}
	ctx, cancel := w.ctx()
	defer cancel()
	if err := w.store.Remove(ctx, w.holder, w.epoch, name); err != nil {
		return w.refused(err)
	}
	delete(w.pushed, name)
	return 0
}

// materialize writes the store's files into a new temporary directory.
func materialize(files map[string][]byte) (string, map[string]int64, error) {
	dir, err := os.MkdirTemp("", "nl-replica-")
	if err != nil {
		return "", nil, err
	}
	pushed := make(map[string]int64, len(files))
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if !filepath.IsLocal(name) {
			_ = os.RemoveAll(dir)
			return "", nil, fmt.Errorf("the store holds a file outside the fleet's directory: %q", name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, data, 0o644)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return "", nil, err
		}
		pushed[name] = int64(len(data))
	}
	return dir, pushed, nil
}

// mirrorFS is the mount; it embeds the host directory's file system (diskFS).
type mirrorFS struct {
	experimentalsys.FS
	w *storeWriter
}

func (m *mirrorFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&experimentalsys.O_TRUNC != 0 {
		if errno := m.w.truncate(path, 0); errno != 0 {
			return nil, errno
		}
	}
	f, errno := m.FS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, errno
	}
	return &mirrorFile{File: f, name: path, w: m.w}, 0
}

func (m *mirrorFS) Rename(from, to string) experimentalsys.Errno {
	if errno := m.w.rename(from, to); errno != 0 {
		return errno
	}
	return m.FS.Rename(from, to)
}

func (m *mirrorFS) Unlink(path string) experimentalsys.Errno {
	if errno := m.w.remove(path); errno != 0 {
		return errno
	}
	return m.FS.Unlink(path)
}

// mirrorFile is one open file of the copy.
type mirrorFile struct {
	experimentalsys.File
	name string
	w    *storeWriter
}

// Sync makes the file durable: in the store. The local copy is a cache and is not synced.
func (f *mirrorFile) Sync() experimentalsys.Errno {
	if dir, errno := f.IsDir(); errno != 0 || dir {
		return errno // a directory: every store call is durable on its own
	}
	return f.w.push(f.name)
}

func (f *mirrorFile) Datasync() experimentalsys.Errno { return f.Sync() }

func (f *mirrorFile) Truncate(size int64) experimentalsys.Errno {
	if errno := f.w.truncate(f.name, size); errno != 0 {
		return errno
	}
	return f.File.Truncate(size)
}

// Pwrite below what the store holds would change durable bytes without a store call; the
// core only appends, so it is refused rather than silently diverging.
func (f *mirrorFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	f.w.mu.Lock()
	held := f.w.pushed[f.name]
	f.w.mu.Unlock()
	if !f.w.readOnly && off < held {
		return 0, experimentalsys.ENOSYS
	}
	return f.File.Pwrite(buf, off)
}
