package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fleet: idle "a" (past grace), active "b", ready "c" (young), a system node, and a rejection.
func fleet(t *testing.T) *lifecycle.Fleet {
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0})
	must(t, err)
	t.Cleanup(func() { f.Close() })
	for _, id := range []string{"a", "b"} {
		_, err = f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, HourlyCost: 0.2})
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
	_, _ = f.Transition("c", lifecycle.StateInitializing, "cloud_init_started")
	_, _ = f.Transition("c", lifecycle.StateReady, "cloud_init_completed")
	must(t, f.RegisterSystemNode("local-node", 0))
	_, err = f.BeginDecommission("b", "reactive_policy")
	if !errors.Is(err, lifecycle.ReasonHasContainers) {
		t.Fatalf("setup: %v", err)
	}
	return f
}

func get(t *testing.T, h http.Handler, target string, wantStatus int) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", target, rec.Code, wantStatus, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", target, ct)
	}
	var body map[string]any
	must(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body
}

func TestNodes(t *testing.T) {
	h := New(fleet(t), Options{})
	body := get(t, h, "/nodes", 200)
	nodes := body["nodes"].([]any)
	if len(nodes) != 4 {
		t.Fatalf("nodes: %d", len(nodes))
	}
	a := nodes[0].(map[string]any)
	if a["id"] != "a" || a["state"] != "idle" || a["verdict"].(map[string]any)["allowed"] != true {
		t.Fatalf("node a: %v", a)
	}
	b := nodes[1].(map[string]any)
	reasons := b["verdict"].(map[string]any)["reasons"].([]any)
	first := reasons[0].(map[string]any)
	if first["name"] != "has_containers" || first["code"].(float64) != 103 || first["message"] != "node has 1 container" {
		t.Fatalf("node b verdict: %v", b["verdict"])
	}
	c := nodes[2].(map[string]any)
	if c["verdict"].(map[string]any)["retry_after"] != "2026-01-01T01:30:00Z" {
		t.Fatalf("node c retry: %v", c["verdict"])
	}
	idle := get(t, h, "/nodes?state=idle", 200)["nodes"].([]any)
	if len(idle) != 1 {
		t.Fatalf("state filter: %v", idle)
	}
	get(t, h, "/nodes?state=sleeping", 400)
	get(t, h, "/nodes?stat=idle", 400)
}

func TestNodeWithHistory(t *testing.T) {
	h := New(fleet(t), Options{})
	body := get(t, h, "/nodes/b", 200)
	if body["node"].(map[string]any)["total_containers_ever"].(float64) != 1 {
		t.Fatalf("node: %v", body["node"])
	}
	history := body["history"].([]any)
	newest := history[0].(map[string]any)
	if newest["action"] != "node_decommission" || newest["result"] != "rejected" || newest["reason_code"].(float64) != 103 {
		t.Fatalf("history newest first: %v", newest)
	}
	if len(get(t, h, "/nodes/b?history=2", 200)["history"].([]any)) != 2 {
		t.Fatal("history limit")
	}
	e := get(t, h, "/nodes/ghost", 404)
	if e["code"].(float64) != 4 || !strings.Contains(e["error"].(string), "ghost") {
		t.Fatalf("not found: %v", e)
	}
	get(t, h, "/nodes/b?history=0", 400)
	get(t, h, "/nodes/b?history=abc", 400)
	get(t, h, "/nodes/b?history=100000", 400)
}

func TestAuditFiltersAndPaging(t *testing.T) {
	h := New(fleet(t), Options{})
	all := get(t, h, "/audit?limit=1000", 200)["entries"].([]any)
	if len(all) < 10 {
		t.Fatalf("entries: %d", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].(map[string]any)["seq"].(float64) <= all[i].(map[string]any)["seq"].(float64) {
			t.Fatal("not newest first")
		}
	}
	rejected := get(t, h, "/audit?result=rejected", 200)["entries"].([]any)
	if len(rejected) != 1 || rejected[0].(map[string]any)["node_id"] != "b" {
		t.Fatalf("result filter: %v", rejected)
	}
	byNode := get(t, h, "/audit?node=a&action=lifecycle_transition", 200)["entries"].([]any)
	if len(byNode) != 4 {
		t.Fatalf("node+action filter: %d", len(byNode))
	}
	// Pages of 3, walked with next_before_seq, cover everything exactly once.
	seen := 0
	target := "/audit?limit=3"
	for {
		page := get(t, h, target, 200)
		seen += len(page["entries"].([]any))
		next, ok := page["next_before_seq"].(float64)
		if !ok {
			break
		}
		target = fmt.Sprintf("/audit?limit=3&before_seq=%d", int64(next))
	}
	if seen != len(all) {
		t.Fatalf("paging saw %d of %d", seen, len(all))
	}
	since := get(t, h, "/audit?since_seq=5&limit=1000", 200)["entries"].([]any)
	if len(since) != len(all)-5 {
		t.Fatalf("since_seq: %d", len(since))
	}
	window := get(t, h, "/audit?from="+url.QueryEscape("2026-01-01T00:30:00Z")+"&to="+url.QueryEscape("2026-01-01T02:00:00Z"), 200)["entries"].([]any)
	for _, e := range window {
		if e.(map[string]any)["time"] != "2026-01-01T01:00:00Z" {
			t.Fatalf("time window: %v", e)
		}
	}
	for _, bad := range []string{"action=explode", "result=maybe", "since_seq=-1", "before_seq=x", "from=yesterday", "to=2026-13-01T00:00:00Z", "limit=0", "limit=5000", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "nodes=a"} {
		body := get(t, h, "/audit?"+bad, 400)
		if body["error"] == "" {
			t.Fatalf("%s: no error text", bad)
		}
	}
}

func TestProjectionAndPlan(t *testing.T) {
	h := New(fleet(t), Options{})
	p := get(t, h, "/projection", 200)
	if p["now"].(map[string]any)["nodes"].(float64) != 4 {
		t.Fatalf("projection: %v", p)
	}
	get(t, h, "/projection?x=1", 400)
	// a (idle) and b (its container moves to c, young but a valid target) go; c stays.
	plan := get(t, h, "/consolidation-plan?min_savings_eur_per_hour=0.05", 200)
	moves := plan["moves"].([]any)
	if plan["worthwhile"] != true || len(plan["remove"].([]any)) != 2 || len(moves) != 1 ||
		moves[0].(map[string]any)["to_node"] != "c" || plan["savings_eur_per_hour"].(float64) != 0.4 {
		t.Fatalf("plan: %v", plan)
	}
	refused := get(t, h, "/consolidation-plan?last_consolidation="+url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339)), 200)
	if refused["refusal"] != "cooldown" {
		t.Fatalf("cooldown: %v", refused)
	}
	get(t, h, "/consolidation-plan?max_utilisation_after=lots", 400)
	get(t, h, "/consolidation-plan?max_utilisation_after=3", 400)
	get(t, h, "/consolidation-plan?last_consolidation=noon", 400)
}

func TestMutationsAreOffUnlessAuthorised(t *testing.T) {
	f := fleet(t)
	post := func(h http.Handler, target string, header string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, target, nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := post(New(f, Options{}), "/nodes/a/decommission", ""); rec.Code != 405 {
		t.Fatalf("read-only: %d", rec.Code)
	}
	var deleted []string
	h := New(f, Options{
		Delete: func(_ context.Context, id string) error { deleted = append(deleted, id); return nil },
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer ops" {
				return errors.New("not allowed")
			}
			return nil
		},
	})
	if rec := post(h, "/nodes/a/decommission", "Bearer nope"); rec.Code != 403 {
		t.Fatalf("unauthorised: %d", rec.Code)
	}
	rec := post(h, "/nodes/b/decommission", "Bearer ops")
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), `"has_containers"`) {
		t.Fatalf("rejection: %d %s", rec.Code, rec.Body)
	}
	rec = post(h, "/nodes/a/decommission", "Bearer ops")
	if rec.Code != 200 || len(deleted) != 1 || deleted[0] != "a" {
		t.Fatalf("decommission: %d %s %v", rec.Code, rec.Body, deleted)
	}
	entries, _ := f.AuditByAction(lifecycle.ActionNodeDecommission, 1)
	if entries[0].DecisionBy != "manual" || entries[0].Result != lifecycle.ResultSuccess {
		t.Fatalf("audit: %+v", entries[0])
	}
	if rec := post(h, "/nodes/ghost/decommission", "Bearer ops"); rec.Code != 404 {
		t.Fatalf("unknown node: %d", rec.Code)
	}
	// Methods the API does not serve.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/nodes/a", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", rec.Code)
	}
}

// The checked-in OpenAPI description names every route and every query parameter the handler
// accepts (the handler refuses any other parameter, so the two must not drift).
func TestOpenAPIDescribesEveryRouteAndParameter(t *testing.T) {
	spec, err := os.ReadFile("openapi.yaml")
	must(t, err)
	text := string(spec)
	for _, path := range []string{"/nodes:", "/nodes/{id}:", "/nodes/{id}/decommission:", "/audit:", "/projection:", "/consolidation-plan:"} {
		if !strings.Contains(text, "\n  "+path) {
			t.Errorf("openapi.yaml lacks path %s", path)
		}
	}
	for _, param := range []string{"state", "history", "node", "action", "result", "since_seq", "before_seq", "from", "to", "limit", "non_migratable", "last_consolidation", "min_savings_eur_per_hour", "max_utilisation_after"} {
		if !strings.Contains(text, "{name: "+param+", in: query") {
			t.Errorf("openapi.yaml lacks query parameter %s", param)
		}
	}
}
