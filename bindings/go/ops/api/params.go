package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// query reads a request's query parameters strictly: each at most once, never empty, each
// checked for its type and range; the first problem is answered with a 400 naming the
// parameter, and later reads become no-ops. done() refuses parameters nobody read.
type query struct {
	w      http.ResponseWriter
	values map[string][]string
	read   map[string]bool
	failed bool
}

func params(w http.ResponseWriter, r *http.Request) *query {
	q := &query{w: w, read: map[string]bool{}}
	values, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		q.fail("", "the query string is malformed: %v", err)
	}
	q.values = values
	return q
}

func parseQuery(raw string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := unescape(k)
		if err != nil {
			return nil, err
		}
		val, err := unescape(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[key] = append(out[key], val)
	}
	return out, nil
}

func unescape(s string) (string, error) { return url.QueryUnescape(s) }

func (q *query) fail(name, format string, args ...any) {
	if q.failed {
		return
	}
	q.failed = true
	writeJSON(q.w, http.StatusBadRequest, errorDTO{Error: fmt.Sprintf(format, args...), Parameter: name})
}

// raw returns a parameter's single value; ok is false when it is absent or refused.
func (q *query) raw(name string) (string, bool) {
	q.read[name] = true
	if q.failed {
		return "", false
	}
	vs, present := q.values[name]
	switch {
	case !present:
		return "", false
	case len(vs) > 1:
		q.fail(name, "%s is given %d times; give it once", name, len(vs))
		return "", false
	case vs[0] == "":
		q.fail(name, "%s is empty; leave it out for the default", name)
		return "", false
	}
	return vs[0], true
}

// done refuses parameters the endpoint does not know (a typo must not silently return
// unfiltered data); it reports whether the request may go on.
func (q *query) done() bool {
	if q.failed {
		return false
	}
	for name := range q.values {
		if !q.read[name] {
			known := make([]string, 0, len(q.read))
			for k := range q.read {
				known = append(known, k)
			}
			if len(known) == 0 {
				q.fail(name, "unknown query parameter %q (this endpoint takes none)", name)
			} else {
				q.fail(name, "unknown query parameter %q (known: %s)", name, strings.Join(sorted(known), ", "))
			}
			return false
		}
	}
	return true
}

// integer reads an integer in [min, max], or def when absent.
func (q *query) integer(name string, def, min, max int64) int64 {
	s, ok := q.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		q.fail(name, "%s must be an integer from %d to %d, got %q", name, min, max, s)
		return def
	}
	return n
}

// number reads a finite number in [min, max] (exclusive of min when minExclusive), or def.
func (q *query) number(name string, def, min, max float64, minExclusive bool) float64 {
	s, ok := q.raw(name)
	if !ok {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	bad := err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v > max || v < min || (minExclusive && v == min)
	if bad {
		lower := "from"
		if minExclusive {
			lower = "above"
		}
		q.fail(name, "%s must be a finite number %s %g to %g, got %q", name, lower, min, max, s)
		return def
	}
	return v
}

// duration reads milliseconds (at least 1) or "off".
func (q *query) duration(name string) time.Duration {
	s, ok := q.raw(name)
	if !ok {
		return 0
	}
	if s == "off" {
		return lifecycle.Off
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > 366*24*3600*1000 {
		q.fail(name, `%s must be milliseconds from 1 to a year, or "off", got %q`, name, s)
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

func (q *query) timestamp(name string) time.Time {
	s, ok := q.raw(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail(name, "%s must be an RFC 3339 time, got %q", name, s)
		return time.Time{}
	}
	return t
}

func (q *query) str(name string) string {
	s, _ := q.raw(name)
	return s
}

func (q *query) state(name string) *lifecycle.State {
	s, ok := q.raw(name)
	if !ok {
		return nil
	}
	st, err := lifecycle.ParseState(s)
	if err != nil {
		q.fail(name, "%s: %q is not a lifecycle state", name, s)
		return nil
	}
	return &st
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
