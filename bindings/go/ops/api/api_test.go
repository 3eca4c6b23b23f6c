package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ----- the contract -----------------------------------------------------------------------

var (
	contractOnce   sync.Once
	contractDoc    *openapi3.T
	contractRouter routers.Router
	contractErr    error
)

// contract loads openapi.yaml with a real validator (kin-openapi): the document itself must be
// valid OpenAPI 3.0, and every response the tests see is checked against its schema.
func contract(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	contractOnce.Do(func() {
		loader := openapi3.NewLoader()
		contractDoc, contractErr = loader.LoadFromData(OpenAPI)
		if contractErr != nil {
			return
		}
		if contractErr = contractDoc.Validate(context.Background()); contractErr != nil {
			return
		}
		contractDoc.Servers = openapi3.Servers{{URL: "http://api.test"}}
		contractRouter, contractErr = gorillamux.NewRouter(contractDoc)
	})
	if contractErr != nil {
		t.Fatalf("openapi.yaml: %v", contractErr)
	}
	return contractDoc, contractRouter
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := contract(t)
	for _, p := range []string{"/nodes", "/nodes/{id}", "/audit", "/projection", "/consolidation-plan",
		"/nodes/{id}/decommission", "/nodes/{id}/ticket", "/nodes/{id}/ticket/complete",
		"/nodes/{id}/ticket/fail", "/nodes/{id}/ticket/cancel", "/openapi.yaml"} {
		if doc.Paths.Find(p) == nil {
			t.Errorf("openapi.yaml does not describe %s", p)
		}
	}
	// The served document is the file.
	h := New(fleet(t), Options{})
	rec := do(t, h, http.MethodGet, "/openapi.yaml", "", http.StatusOK)
	if !bytes.Equal(rec.Body.Bytes(), OpenAPI) {
		t.Fatal("GET /openapi.yaml does not serve openapi.yaml")
	}
}

// do sends a request and checks the status and that the response matches the contract (its
// status is described for the operation, its body validates against the schema).
func do(t testing.TB, h http.Handler, method, target, body string, wantStatus int) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://api.test"+target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, target, rec.Code, wantStatus, rec.Body)
	}
	validate(t, method, target, rec)
	return rec
}

func validate(t testing.TB, method, target string, rec *httptest.ResponseRecorder) {
	t.Helper()
	_, router := contract(t)
	req := httptest.NewRequest(method, "http://api.test"+target, nil)
	route, pathParams, err := router.FindRoute(req)
	if err != nil {
		// An unknown path or method: still JSON, with an error body.
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", method, target, ct)
		}
		var e errorDTO
		must(t, json.Unmarshal(rec.Body.Bytes(), &e))
		if e.Error == "" {
			t.Fatalf("%s %s: error body without a message: %s", method, target, rec.Body)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, ExcludeRequestQueryParams: true},
		},
		Status: rec.Code,
		Header: rec.Header(),
		Body:   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, // a status the contract does not list is an error
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: the %d response breaks openapi.yaml: %v\n%s", method, target, rec.Code, err, rec.Body)
	}
}

func decode(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var body map[string]any
	must(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body
}

// ----- the fixture ------------------------------------------------------------------------

// fleet: idle "a" (past grace), active "b", ready "c" (young, cordoned), a system node, and a
// rejection in the audit log.
func fleet(t testing.TB) *lifecycle.Fleet {
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0})
	must(t, err)
	t.Cleanup(func() { f.Close() })
	for _, id := range []string{"a", "b"} {
		_, err = f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, HourlyCost: 0.2,
			Labels: map[string]string{"zone": "fsn1"}})
		must(t, err)
		_, err = f.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
		must(t, err)
		_, err = f.Transition(id, lifecycle.StateReady, "cloud_init_completed")
		must(t, err)
		_, err = f.AddContainer(id, id+"-mc", 1024)
		must(t, err)
	}
	_, err = f.RemoveContainer("a", "a-mc")
	must(t, err)
	must(t, f.Advance(time.Hour))
	must(t, f.RegisterCloudNode("c", 4096))
	_, err = f.Transition("c", lifecycle.StateInitializing, "cloud_init_started")
	must(t, err)
	_, err = f.Transition("c", lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
	_, err = f.Cordon("c", "disk_full", "disk at 97%", false)
	must(t, err)
	_, err = f.Claim("b", 512, 0)
	must(t, err)
	_, err = f.PlaceHold("b", "world:srv-1", "stopped server data")
	must(t, err)
	must(t, f.RegisterSystemNode("local-node", 0))
	_, err = f.BeginDecommission("b", "reactive_policy")
	if !errors.Is(err, lifecycle.ReasonHasContainers) {
		t.Fatalf("setup: %v", err)
	}
	return f
}

// ----- reads --------------------------------------------------------------------------------

func TestNodesArePagedAndMatchTheContract(t *testing.T) {
	h := New(fleet(t), Options{})
	body := decode(t, do(t, h, http.MethodGet, "/nodes", "", http.StatusOK))
	nodes := body["nodes"].([]any)
	if len(nodes) != 4 || body["next_after"] != nil {
		t.Fatalf("nodes: %d, next_after %v", len(nodes), body["next_after"])
	}
	// Page by page: two of two, then the rest.
	var ids []string
	after := ""
	for pages := 0; pages < 5; pages++ {
		target := "/nodes?limit=2"
		if after != "" {
			target += "&after=" + after
		}
		page := decode(t, do(t, h, http.MethodGet, target, "", http.StatusOK))
		for _, n := range page["nodes"].([]any) {
			ids = append(ids, n.(map[string]any)["id"].(string))
		}
		next, _ := page["next_after"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(ids, ",") != "a,b,c,local-node" {
		t.Fatalf("paged ids: %v", ids)
	}
	idle := decode(t, do(t, h, http.MethodGet, "/nodes?state=idle", "", http.StatusOK))["nodes"].([]any)
	if len(idle) != 1 || idle[0].(map[string]any)["id"] != "a" {
		t.Fatalf("state filter: %v", idle)
	}
	none := decode(t, do(t, h, http.MethodGet, "/nodes?state=draining", "", http.StatusOK))
	if len(none["nodes"].([]any)) != 0 {
		t.Fatalf("no draining nodes: %v", none)
	}
	// A row's verdict names holds and cordons; a cordoned node is not schedulable.
	c := decode(t, do(t, h, http.MethodGet, "/nodes/c", "", http.StatusOK))["node"].(map[string]any)
	if c["schedulable"] != false || len(c["cordons"].([]any)) != 1 || c["verdict"].(map[string]any)["allowed"] != false {
		t.Fatalf("node c: %v", c)
	}
	b := decode(t, do(t, h, http.MethodGet, "/nodes/b?history=3", "", http.StatusOK))
	if len(b["history"].([]any)) != 3 || len(b["node"].(map[string]any)["claims"].([]any)) != 1 {
		t.Fatalf("node b: %v", b)
	}
	if h := b["history"].([]any)[0].(map[string]any); h["action"] != "node_decommission" || h["result"] != "rejected" {
		t.Fatalf("newest first: %v", h)
	}
	do(t, h, http.MethodGet, "/nodes/nope", "", http.StatusNotFound)
	do(t, h, http.MethodGet, "/projection", "", http.StatusOK)
	plan := decode(t, do(t, h, http.MethodGet, "/consolidation-plan", "", http.StatusOK))
	if _, ok := plan["kept"].([]any); !ok {
		t.Fatalf("plan: %v", plan)
	}
	do(t, h, http.MethodGet, "/consolidation-plan?min_savings_eur_per_hour=0.01&max_utilisation_after=1&min_idle_ms=off&non_migratable=b-mc,x", "", http.StatusOK)
}

func TestAuditIsPagedNewestFirstWithFilters(t *testing.T) {
	h := New(fleet(t), Options{})
	all := decode(t, do(t, h, http.MethodGet, "/audit?limit=1000", "", http.StatusOK))["entries"].([]any)
	if len(all) < 10 {
		t.Fatalf("entries: %d", len(all))
	}
	var seqs []float64
	before := ""
	for pages := 0; pages < 100; pages++ {
		page := decode(t, do(t, h, http.MethodGet, "/audit?limit=3"+before, "", http.StatusOK))
		for _, e := range page["entries"].([]any) {
			seqs = append(seqs, e.(map[string]any)["seq"].(float64))
		}
		next, ok := page["next_before_seq"].(float64)
		if !ok {
			break
		}
		before = fmt.Sprintf("&before_seq=%d", int(next))
	}
	if len(seqs) != len(all) {
		t.Fatalf("pages saw %d entries, the ring holds %d", len(seqs), len(all))
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] >= seqs[i-1] {
			t.Fatalf("not newest first: %v", seqs)
		}
	}
	rejected := decode(t, do(t, h, http.MethodGet, "/audit?result=rejected", "", http.StatusOK))["entries"].([]any)
	if len(rejected) != 1 || rejected[0].(map[string]any)["node_id"] != "b" {
		t.Fatalf("rejected: %v", rejected)
	}
	cordons := decode(t, do(t, h, http.MethodGet, "/audit?action=node_cordon", "", http.StatusOK))["entries"].([]any)
	if len(cordons) != 1 {
		t.Fatalf("cordons: %v", cordons)
	}
	byNode := decode(t, do(t, h, http.MethodGet, "/audit?node=a&after_seq=2", "", http.StatusOK))["entries"].([]any)
	for _, e := range byNode {
		if m := e.(map[string]any); m["node_id"] != "a" || m["seq"].(float64) <= 2 {
			t.Fatalf("node filter: %v", m)
		}
	}
	window := decode(t, do(t, h, http.MethodGet, "/audit?from=2026-01-01T00:30:00Z&to=2026-01-01T02:00:00Z", "", http.StatusOK))["entries"].([]any)
	for _, e := range window {
		if m := e.(map[string]any); m["time"].(string) < "2026-01-01T00:30:00Z" {
			t.Fatalf("time window: %v", m)
		}
	}
}

// Every kind of bad parameter (malformed, repeated, out of range, NaN, infinite) is a 400 that
// names the parameter.
func TestStrictParameters(t *testing.T) {
	h := New(fleet(t), Options{})
	cases := []struct{ target, param string }{
		{"/consolidation-plan?min_savings_eur_per_hour=Inf", "min_savings_eur_per_hour"},
		{"/consolidation-plan?min_savings_eur_per_hour=NaN", "min_savings_eur_per_hour"},
		{"/consolidation-plan?min_savings_eur_per_hour=-1", "min_savings_eur_per_hour"},
		{"/consolidation-plan?max_utilisation_after=0", "max_utilisation_after"},
		{"/consolidation-plan?max_utilisation_after=1.5", "max_utilisation_after"},
		{"/consolidation-plan?min_idle_ms=-5", "min_idle_ms"},
		{"/consolidation-plan?cooldown_ms=2h", "cooldown_ms"},
		{"/consolidation-plan?min_worker_nodes=0", "min_worker_nodes"},
		{"/consolidation-plan?non_migratable=a,,b", "non_migratable"},
		{"/consolidation-plan?last_consolidation=yesterday", "last_consolidation"},
		{"/nodes?limit=5&limit=100000", "limit"},
		{"/nodes?state=ready&state=idle", "state"},
		{"/nodes?state=", "state"},
		{"/nodes?state=sleeping", "state"},
		{"/nodes?limit=0", "limit"},
		{"/nodes?limit=100000", "limit"},
		{"/nodes?limit=1e2", "limit"},
		{"/nodes?after=", "after"},
		{"/nodes?sate=idle", "sate"},
		{"/nodes/a?history=-1", "history"},
		{"/audit?before_seq=0", "before_seq"},
		{"/audit?node=a&action=scale_up", "node"},
		{"/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"/audit?action=delete", "action"},
		{"/audit?result=ok", "result"},
		{"/projection?x=1", "x"},
	}
	for _, c := range cases {
		body := decode(t, do(t, h, http.MethodGet, c.target, "", http.StatusBadRequest))
		if body["parameter"] != c.param {
			t.Errorf("%s: parameter %v, want %q (%v)", c.target, body["parameter"], c.param, body["error"])
		}
	}
}

func TestUnknownPathsAndMethodsAnswerJSON(t *testing.T) {
	h := New(fleet(t), Options{})
	do(t, h, http.MethodGet, "/nope", "", http.StatusNotFound)
	rec := do(t, h, http.MethodDelete, "/nodes", "", http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") != "GET" {
		t.Fatalf("Allow: %q", rec.Header().Get("Allow"))
	}
	do(t, h, http.MethodPut, "/nodes/a/decommission", "", http.StatusMethodNotAllowed)
}

// Plans beyond the configured concurrency answer 429 with Retry-After instead of queueing.
func TestPlansAreBounded(t *testing.T) {
	api := New(fleet(t), Options{MaxConcurrentPlans: 1}).(*handler)
	api.plans <- struct{}{} // a plan in progress
	rec := do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusTooManyRequests)
	if rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After: %q", rec.Header().Get("Retry-After"))
	}
	<-api.plans
	do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusOK)
}

// Under concurrent mutation every row's state agrees with its verdict's state (they are read
// under one lock hold).
func TestRowsAgreeWithTheirVerdictsUnderConcurrency(t *testing.T) {
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0, IdleGrace: time.Minute})
	must(t, err)
	defer f.Close()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("n%02d", i)
		_, err := f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, BootedFromImage: true, TotalRAMMB: 8192})
		must(t, err)
	}
	h := New(f, Options{})
	stop := make(chan struct{})
	var writes atomic.Int64
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("n%02d", i%20)
			if i%2 == 0 {
				_, _ = f.AddContainer(id, "c-"+id, 64)
			} else {
				_, _ = f.RemoveContainer(id, "c-"+id)
			}
			writes.Add(1)
		}
	}()
	var wg sync.WaitGroup
	var rows atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nodes?limit=20", nil))
				var body struct {
					Nodes []struct {
						ID      string `json:"id"`
						State   string `json:"state"`
						Verdict struct {
							State string `json:"state"`
						} `json:"verdict"`
					} `json:"nodes"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Error(err)
					return
				}
				for _, n := range body.Nodes {
					rows.Add(1)
					if n.State != n.Verdict.State {
						t.Errorf("%s: state %s, verdict state %s", n.ID, n.State, n.Verdict.State)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if writes.Load() == 0 || rows.Load() != 8*100*20 {
		t.Fatalf("writes %d, rows %d", writes.Load(), rows.Load())
	}
}

// ----- decommissions and tickets ----------------------------------------------------------

// provider is a fake cloud: a delete can fail, block until released, or succeed.
type provider struct {
	mu      sync.Mutex
	deleted []string
	fail    error
	block   chan struct{}
	started chan struct{}
}

func (p *provider) Delete(ctx context.Context, id string) error {
	if p.block != nil {
		close(p.started)
		<-p.block
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.deleted = append(p.deleted, id)
	return nil
}

func allow(*http.Request) error { return nil }

func TestMutatingEndpointsNeedTheHook(t *testing.T) {
	f := fleet(t)
	do(t, New(f, Options{}), http.MethodPost, "/nodes/a/decommission", "", http.StatusMethodNotAllowed)
	do(t, New(f, Options{}), http.MethodGet, "/nodes/a/ticket", "", http.StatusMethodNotAllowed)
	deny := Options{Authorize: func(*http.Request) error { return errors.New("operators only") }, Delete: (&provider{}).Delete}
	rec := do(t, New(f, deny), http.MethodPost, "/nodes/a/decommission", "", http.StatusForbidden)
	if decode(t, rec)["error"] != "operators only" {
		t.Fatalf("403 body: %s", rec.Body)
	}
	do(t, New(f, deny), http.MethodGet, "/nodes/a/ticket", "", http.StatusForbidden)
	do(t, New(f, Options{Authorize: allow}), http.MethodPost, "/nodes/a/decommission", "", http.StatusMethodNotAllowed)
}

func TestManualDecommission(t *testing.T) {
	f := fleet(t)
	p := &provider{}
	h := New(f, Options{Authorize: allow, Delete: p.Delete})
	// Refused by the safety rules: the verdict names every reason.
	body := decode(t, do(t, h, http.MethodPost, "/nodes/b/decommission", "", http.StatusConflict))
	if body["name"] != "has_containers" || len(body["verdict"].(map[string]any)["reasons"].([]any)) != 3 {
		t.Fatalf("409 body: %v", body)
	}
	do(t, h, http.MethodPost, "/nodes/ghost/decommission", "", http.StatusNotFound)
	do(t, h, http.MethodPost, "/nodes/a/decommission", `{"x":1}`, http.StatusBadRequest)
	done := decode(t, do(t, h, http.MethodPost, "/nodes/a/decommission", "", http.StatusOK))
	if done["state"] != "decommissioned" || len(p.deleted) != 1 {
		t.Fatalf("200 body: %v, deleted %v", done, p.deleted)
	}
	entries, err := f.AuditByNode("a", 10)
	must(t, err)
	last := entries[len(entries)-2]
	if last.Action != lifecycle.ActionNodeDecommission || last.DecisionBy != "manual" || last.Reason != "decommission_completed" {
		t.Fatalf("audit: %+v", last)
	}
}

// A client that disconnects during the provider call does not leave the node half done: the
// delete runs to its end and its outcome is recorded; a failed delete is found again through
// the ticket endpoints, and retried, failed or cancelled there.
func TestInterruptedDecommissionIsRecoverable(t *testing.T) {
	f := fleet(t)
	p := &provider{block: make(chan struct{}), started: make(chan struct{})}
	h := New(f, Options{Authorize: allow, Delete: p.Delete})

	ctx, disconnect := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/nodes/a/decommission", nil).WithContext(ctx)
	finished := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		finished <- rec
	}()
	<-p.started
	disconnect() // the client goes away while the provider deletes
	close(p.block)
	<-finished
	n, err := f.Node("a")
	must(t, err)
	if n.State != lifecycle.StateDecommissioned {
		t.Fatalf("after a disconnect: %s", n.State)
	}

	// A provider failure: 502 with the ticket; the node stays draining.
	must(t, f.RegisterCloudNode("d", 4096))
	_, err = f.Transition("d", lifecycle.StateInitializing, "x")
	must(t, err)
	_, err = f.Transition("d", lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
	must(t, f.Advance(time.Hour))
	p2 := &provider{fail: errors.New("hetzner: 503")}
	h = New(f, Options{Authorize: allow, Delete: p2.Delete})
	body := decode(t, do(t, h, http.MethodPost, "/nodes/d/decommission", "", http.StatusBadGateway))
	ticket := body["ticket"].(map[string]any)["id"].(string)
	do(t, h, http.MethodPost, "/nodes/d/decommission", "", http.StatusConflict) // in progress

	info := decode(t, do(t, h, http.MethodGet, "/nodes/d/ticket", "", http.StatusOK))
	if info["ticket"].(map[string]any)["id"] != ticket || info["decision_by"] != "manual" || info["state"] != "draining" {
		t.Fatalf("ticket lookup: %v", info)
	}
	do(t, h, http.MethodGet, "/nodes/c/ticket", "", http.StatusNotFound)
	do(t, h, http.MethodGet, "/nodes/ghost/ticket", "", http.StatusNotFound)

	// Bad bodies.
	do(t, h, http.MethodPost, "/nodes/d/ticket/fail", `{"ticket":"xyz","error":"e"}`, http.StatusBadRequest)
	do(t, h, http.MethodPost, "/nodes/d/ticket/fail", `{"ticket":"`+ticket+`","error":"e","extra":1}`, http.StatusBadRequest)
	do(t, h, http.MethodPost, "/nodes/d/ticket/fail", `{"ticket":"`+ticket+`"}`, http.StatusBadRequest)
	do(t, h, http.MethodPost, "/nodes/d/ticket/cancel", `not json`, http.StatusBadRequest)
	do(t, h, http.MethodPost, "/nodes/d/ticket/complete", `{"ticket":"`+strings.Repeat("0", 32)+`"}`, http.StatusConflict)
	do(t, h, http.MethodPost, "/nodes/c/ticket/complete", `{"ticket":"`+ticket+`","delete":true}`, http.StatusConflict)

	// fail records; complete with delete retries the provider (still failing: 502 again).
	state := decode(t, do(t, h, http.MethodPost, "/nodes/d/ticket/fail", `{"ticket":"`+ticket+`","error":"operator: quota"}`, http.StatusOK))
	if state["state"] != "draining" {
		t.Fatalf("after fail: %v", state)
	}
	do(t, h, http.MethodPost, "/nodes/d/ticket/complete", `{"ticket":"`+ticket+`","delete":true}`, http.StatusBadGateway)
	p2.mu.Lock()
	p2.fail = nil
	p2.mu.Unlock()
	done := decode(t, do(t, h, http.MethodPost, "/nodes/d/ticket/complete", `{"ticket":"`+ticket+`","delete":true}`, http.StatusOK))
	if done["state"] != "decommissioned" || len(p2.deleted) != 1 {
		t.Fatalf("retried: %v, deleted %v", done, p2.deleted)
	}
	failed, err := f.AuditByResult(lifecycle.ResultFailed, 10)
	must(t, err)
	if len(failed) != 3 {
		t.Fatalf("failed entries (provider twice, operator once): %d", len(failed))
	}

	// cancel: back to the state before draining.
	must(t, f.RegisterCloudNode("e", 4096))
	_, err = f.Transition("e", lifecycle.StateInitializing, "x")
	must(t, err)
	_, err = f.Transition("e", lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
	must(t, f.Advance(time.Hour))
	body = decode(t, do(t, h, http.MethodPost, "/nodes/e/decommission", "", http.StatusOK))
	_ = body
	must(t, f.RegisterCloudNode("g", 4096))
	_, err = f.Transition("g", lifecycle.StateInitializing, "x")
	must(t, err)
	_, err = f.Transition("g", lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
	must(t, f.Advance(time.Hour))
	tk, err := f.BeginDecommission("g", "manual")
	must(t, err)
	back := decode(t, do(t, h, http.MethodPost, "/nodes/g/ticket/cancel", `{"ticket":"`+tk.ID.String()+`","reason":"kept for the tournament"}`, http.StatusOK))
	if back["state"] != "ready" {
		t.Fatalf("after cancel: %v", back)
	}
}

// Plans are limited in rate too (a plan is O(n log n)): back to back, the burst passes and the
// rest answer 429 with a Retry-After that is the wait for the next token, as described.
func TestPlansAreRateLimited(t *testing.T) {
	api := New(fleet(t), Options{}).(*handler)
	now := time.Unix(1_767_225_600, 0)
	api.rate = newPlanRate(6, 2, func() time.Time { return now })
	var ok, limited int
	for i := 0; i < 25; i++ {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/consolidation-plan", nil))
		validate(t, http.MethodGet, "/consolidation-plan", rec)
		switch rec.Code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if got := rec.Header().Get("Retry-After"); got != "10" {
				t.Fatalf("plan %d: Retry-After %q, want 10 (6 a minute)", i, got)
			}
			if msg := decode(t, rec)["error"]; msg != "consolidation plans are limited to 6 a minute (bursts of 2); retry in 10s" {
				t.Fatalf("plan %d: %v", i, msg)
			}
		default:
			t.Fatalf("plan %d: status %d", i, rec.Code)
		}
	}
	if ok != 2 || limited != 23 {
		t.Fatalf("25 back-to-back plans: %d answered, %d limited (want 2 and 23)", ok, limited)
	}
	now = now.Add(5 * time.Second)
	rec := do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusTooManyRequests)
	if got := rec.Header().Get("Retry-After"); got != "5" {
		t.Fatalf("halfway to the next token: Retry-After %q", got)
	}
	now = now.Add(5 * time.Second)
	do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusOK)
	// A malformed request costs no token.
	now = now.Add(time.Minute)
	for i := 0; i < 5; i++ {
		do(t, api, http.MethodGet, "/consolidation-plan?min_idle_ms=-1", "", http.StatusBadRequest)
	}
	do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusOK)
	do(t, api, http.MethodGet, "/consolidation-plan", "", http.StatusOK)
}

// A closed fleet answers 503 on every endpoint that reads or changes it, and the contract
// describes that answer for each of them.
func TestAClosedFleetAnswers503AsDescribed(t *testing.T) {
	f := fleet(t)
	api := New(f, Options{Authorize: allow, Delete: (&provider{}).Delete})
	must(t, f.Close())
	for _, c := range []struct{ method, target, body string }{
		{http.MethodGet, "/nodes", ""},
		{http.MethodGet, "/nodes/a", ""},
		{http.MethodGet, "/audit", ""},
		{http.MethodGet, "/projection", ""},
		{http.MethodGet, "/consolidation-plan", ""},
		{http.MethodPost, "/nodes/a/decommission", ""},
		{http.MethodGet, "/nodes/a/ticket", ""},
		{http.MethodPost, "/nodes/a/ticket/complete", `{"ticket":"00112233445566778899aabbccddeeff"}`},
		{http.MethodPost, "/nodes/a/ticket/fail", `{"ticket":"00112233445566778899aabbccddeeff","error":"x"}`},
		{http.MethodPost, "/nodes/a/ticket/cancel", `{"ticket":"00112233445566778899aabbccddeeff","reason":"x"}`},
	} {
		rec := do(t, api, c.method, c.target, c.body, http.StatusServiceUnavailable)
		if msg := decode(t, rec)["error"]; msg != "lifecycle: fleet is closed" {
			t.Fatalf("%s %s: %v", c.method, c.target, msg)
		}
	}
	// The contract itself does not need the fleet.
	do(t, api, http.MethodGet, "/openapi.yaml", "", http.StatusOK)
}
