package lifecycletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

var _ lifecycle.SharedStore = (*MemStore)(nil)

// MemStore is a SharedStore in memory with the fencing rules of pgstore: a change applies only
// under the live lease of its epoch, atomically with the check. ExpireLease ends a lease at once
// (a leader that stopped renewing); LoseCommits makes appends commit and report a failure.
type MemStore struct {
	mu          sync.Mutex
	lease       lifecycle.LeaseInfo
	files       map[string][]byte
	version     uint64
	writes      int // accepted changes
	lostCommits int
}

func NewMemStore() *MemStore { return &MemStore{files: map[string][]byte{}} }

func (m *MemStore) Acquire(_ context.Context, holder string, ttl time.Duration) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease.Holder != "" && m.lease.Holder != holder && time.Now().Before(m.lease.Expires) {
		return 0, false, nil
	}
	m.lease = lifecycle.LeaseInfo{Holder: holder, Epoch: m.lease.Epoch + 1, Expires: time.Now().Add(ttl)}
	return m.lease.Epoch, true, nil
}

func (m *MemStore) Renew(_ context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live(holder, epoch) {
		return false, nil
	}
	m.lease.Expires = time.Now().Add(ttl)
	return true, nil
}

func (m *MemStore) Release(_ context.Context, holder string, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(holder, epoch) {
		m.lease.Expires = time.Now()
	}
	return nil
}

func (m *MemStore) Lease(context.Context) (lifecycle.LeaseInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease, nil
}

func (m *MemStore) ExpireLease() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lease.Expires = time.Now().Add(-time.Millisecond)
}

func (m *MemStore) live(holder string, epoch uint64) bool {
	return m.lease.Holder == holder && m.lease.Epoch == epoch && time.Now().Before(m.lease.Expires)
}

func (m *MemStore) Load(context.Context) (map[string][]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.files))
	for k, v := range m.files {
		out[k] = bytes.Clone(v)
	}
	return out, m.version, nil
}

func (m *MemStore) Version(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

// change applies f under the lease, or refuses with lifecycle.ErrFenced.
func (m *MemStore) change(holder string, epoch uint64, f func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live(holder, epoch) {
		return fmt.Errorf("%w: epoch %d of %s is not the live lease (%+v)", lifecycle.ErrFenced, epoch, holder, m.lease)
	}
	if err := f(); err != nil {
		return err
	}
	m.version++
	m.writes++
	return nil
}

func (m *MemStore) Append(_ context.Context, holder string, epoch uint64, name string, off int64, data []byte) error {
	lost := m.takeLostCommit()
	err := m.change(holder, epoch, func() error {
		if int64(len(m.files[name])) != off {
			return fmt.Errorf("append to %s at %d, it holds %d bytes", name, off, len(m.files[name]))
		}
		m.files[name] = append(m.files[name], data...)
		return nil
	})
	if err == nil && lost {
		return errors.New("connection reset during COMMIT")
	}
	return err
}

// takeLostCommit reports whether this append is one whose commit outcome is to be lost.
func (m *MemStore) takeLostCommit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lostCommits > 0 {
		m.lostCommits--
		return true
	}
	return false
}

func (m *MemStore) Truncate(_ context.Context, holder string, epoch uint64, name string, size int64) error {
	return m.change(holder, epoch, func() error {
		if f, ok := m.files[name]; ok && int64(len(f)) > size {
			m.files[name] = f[:size]
		}
		return nil
	})
}

func (m *MemStore) Rename(_ context.Context, holder string, epoch uint64, from, to string) error {
	return m.change(holder, epoch, func() error {
		f, ok := m.files[from]
		if !ok {
			return fmt.Errorf("rename: %s does not exist", from)
		}
		m.files[to] = f
		delete(m.files, from)
		return nil
	})
}

func (m *MemStore) Remove(_ context.Context, holder string, epoch uint64, name string) error {
	return m.change(holder, epoch, func() error {
		delete(m.files, name)
		return nil
	})
}

// Writes counts the changes the store accepted.
func (m *MemStore) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// LoseCommits makes the next n appends commit and then report a failure, as when the
// connection breaks during COMMIT.
func (m *MemStore) LoseCommits(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lostCommits = n
}
