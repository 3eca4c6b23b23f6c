package api

import (
	"sync"
	"time"
)

// planRate is a token bucket for consolidation plans: burst tokens, refilled at perMinute a
// minute. One mutex; a request takes a token or learns how long until the next one.
type planRate struct {
	mu       sync.Mutex
	tokens   float64
	burst    float64
	interval time.Duration // between two tokens
	last     time.Time
	now      func() time.Time
}

func newPlanRate(perMinute, burst int, now func() time.Time) *planRate {
	return &planRate{tokens: float64(burst), burst: float64(burst), interval: time.Minute / time.Duration(perMinute), last: now(), now: now}
}

// take takes a token if there is one (0), or says how long until there is (nothing taken).
func (r *planRate) take() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if elapsed := now.Sub(r.last); elapsed > 0 {
		r.tokens = min(r.burst, r.tokens+float64(elapsed)/float64(r.interval))
	}
	r.last = now
	if r.tokens >= 1 {
		r.tokens--
		return 0
	}
	return time.Duration((1 - r.tokens) * float64(r.interval))
}
