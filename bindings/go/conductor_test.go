package lifecycle

// A conductor-shaped integration test: a small control plane written from scratch to the
// shape of the real conductor's flows (placeholder provisioning, bootstrap re-registration,
// health rounds with a disk-full path, RAM allocation before the container id is known,
// reactive scale-down, consolidation, failed deletes, restarts), driving a fleet on a manual
// clock against a fake cloud provider. No conductor code is copied; MIGRATION.md maps each
// flow to the conductor's own functions.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProvider is a cloud provider: servers by id, creation and deletion that can be made to
// fail.
type fakeProvider struct {
	mu         sync.Mutex
	next       int
	servers    map[string]string // id -> server type
	deleted    []string
	failCreate error
	failDelete error
}

func newFakeProvider() *fakeProvider { return &fakeProvider{servers: map[string]string{}} }

func (p *fakeProvider) CreateServer(serverType string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failCreate != nil {
		return "", p.failCreate
	}
	p.next++
	id := fmt.Sprintf("hz-%d", 1000+p.next)
	p.servers[id] = serverType
	return id, nil
}

func (p *fakeProvider) DeleteServer(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failDelete != nil {
		return p.failDelete
	}
	if _, ok := p.servers[id]; !ok {
		return fmt.Errorf("server %s not found", id)
	}
	delete(p.servers, id)
	p.deleted = append(p.deleted, id)
	return nil
}

// conductor is the control plane under test: it keeps no lifecycle state of its own.
type conductor struct {
	t        *testing.T
	fleet    *Fleet
	provider *fakeProvider
	seq      int
}

// The conductor's estimated RAM per server type, what the provider really gives, and its
// price (EUR per hour).
var estimatedRAM = map[string]int{"cx22": 4096, "cx32": 8192}
var realRAM = map[string]int{"cx22": 3800, "cx32": 7700}
var hourlyCost = map[string]float64{"cx22": 0.08, "cx32": 0.15}

// provision registers a placeholder before the slow provider call (so the capacity coming is
// counted at once), then binds it to the provider's id, or abandons it when creation fails.
func (c *conductor) provision(serverType string) (string, error) {
	c.seq++
	placeholder := fmt.Sprintf("provisioning-%d", c.seq)
	if _, err := c.fleet.Register(NodeSpec{
		ID: placeholder, Origin: OriginCloud, TotalRAMMB: estimatedRAM[serverType], InstanceType: serverType,
		Labels:      map[string]string{"managed_by": "payperplay", "status": "provisioning"},
		Placeholder: true,
	}); err != nil {
		return "", err
	}
	id, err := c.provider.CreateServer(serverType)
	if err != nil {
		if _, aerr := c.fleet.AbandonProvisioning(placeholder, err); aerr != nil {
			c.t.Fatalf("abandon %s: %v", placeholder, aerr)
		}
		return "", err
	}
	if _, err := c.fleet.Rename(placeholder, id); err != nil {
		return "", err
	}
	ram, cost := realRAM[serverType], hourlyCost[serverType]
	if _, err := c.fleet.Update(id, NodeUpdate{TotalRAMMB: &ram, HourlyCost: &cost, Labels: map[string]string{"managed_by": "payperplay"}}); err != nil {
		return "", err
	}
	return id, nil
}

// cloudInit plays cloud-init: started, then completed two minutes later.
func (c *conductor) cloudInit(id string) {
	c.ok(c.fleet.Transition(id, StateInitializing, "cloud_init_started"))
	must(c.t, c.fleet.Advance(2*time.Minute))
	c.ok(c.fleet.Transition(id, StateReady, "cloud_init_completed"))
}

// healthRound reports one health check and the disk usage; a full disk cordons the node, a
// recovered one lifts the cordon. Then the timers run.
func (c *conductor) healthRound(id string, healthy bool, diskPercent int) {
	_, err := c.fleet.ReportHealth(id, healthy)
	must(c.t, err)
	if diskPercent >= 90 {
		_, err = c.fleet.Cordon(id, "disk_full", fmt.Sprintf("disk at %d%%", diskPercent), false)
	} else {
		_, err = c.fleet.Uncordon(id, "disk_full")
	}
	must(c.t, err)
	_, err = c.fleet.Tick()
	must(c.t, err)
}

// startServer places a container the way the conductor does: allocate RAM first (the
// container id comes from Docker later), then start it, then confirm; a failed start releases.
func (c *conductor) startServer(node, container string, ramMB int, startErr error) error {
	claim, err := c.fleet.Claim(node, ramMB, 0)
	if err != nil {
		return err
	}
	if startErr != nil {
		_, _ = c.fleet.ReleaseClaim(claim)
		return startErr
	}
	_, err = c.fleet.ConfirmClaim(claim, container)
	return err
}

// scaleDown deletes every node the fleet allows, as the reactive policy would.
func (c *conductor) scaleDown(ctx context.Context) []string {
	verdicts, err := c.fleet.EvaluateAll()
	must(c.t, err)
	var deleted []string
	for _, v := range verdicts {
		if !v.Verdict.Allowed || v.Verdict.State == StateDraining {
			continue
		}
		if _, err := c.fleet.Decommission(ctx, v.NodeID, "reactive_policy", c.provider.DeleteServer); err == nil {
			deleted = append(deleted, v.NodeID)
		}
	}
	return deleted
}

// ok fails the test on a call's error, whatever else the call returns.
func (c *conductor) ok(_ any, err error) {
	c.t.Helper()
	must(c.t, err)
}

func newConductor(t *testing.T, opts Options) *conductor {
	opts.ManualClockStart = t0
	f, err := New(opts)
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return &conductor{t: t, fleet: f, provider: newFakeProvider()}
}

func TestConductorProvisioningPlaceholderAndFailure(t *testing.T) {
	c := newConductor(t, Options{})
	// A failed VM creation: the placeholder is abandoned with the provider's error.
	c.provider.failCreate = errors.New("hetzner: resource_limit_exceeded")
	if _, err := c.provision("cx32"); err == nil {
		t.Fatal("creation should fail")
	}
	n, err := c.fleet.Node("provisioning-1")
	must(t, err)
	if n.State != StateDecommissioned {
		t.Fatalf("abandoned placeholder: %s", n.State)
	}
	prov, err := c.fleet.AuditByAction(ActionNodeProvision, 10)
	must(t, err)
	last := prov[len(prov)-1]
	if last.Result != ResultFailed || last.Error != "hetzner: resource_limit_exceeded" {
		t.Fatalf("failed provision entry: %+v", last)
	}
	must(t, c.fleet.Forget("provisioning-1"))

	// While the provider works, the placeholder counts as capacity coming.
	c.provider.failCreate = nil
	c.seq++
	c.ok(c.fleet.Register(NodeSpec{ID: "provisioning-probe", Origin: OriginCloud, TotalRAMMB: 8192, Placeholder: true}))
	p, err := c.fleet.Projection()
	must(t, err)
	if p.Coming.Nodes != 1 || p.Coming.TotalRAMMB != 8192 {
		t.Fatalf("coming capacity: %+v", p.Coming)
	}
	c.ok(c.fleet.AbandonProvisioning("provisioning-probe", errors.New("test")))

	// Success: the placeholder becomes the provider's id with its history and real RAM.
	id, err := c.provision("cx32")
	must(t, err)
	n, err = c.fleet.Node(id)
	must(t, err)
	if n.State != StateProvisioning || n.TotalRAMMB != 7700 || n.Labels["status"] != "" || n.HourlyCost == 0 {
		t.Fatalf("renamed node: %+v", n)
	}
	if _, err := c.fleet.Node("provisioning-3"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("the placeholder id is gone: %v", err)
	}
	history, err := c.fleet.AuditByNode("provisioning-3", 10)
	must(t, err)
	if len(history) == 0 || history[len(history)-1].Action != ActionNodeUpdate {
		t.Fatalf("history by the old id: %+v", history)
	}
	renamed, err := c.fleet.AuditByAction(ActionNodeRenamed, 10)
	must(t, err)
	if len(renamed) != 1 || renamed[0].NodeID != id || renamed[0].RelatedNodeID != "provisioning-3" {
		t.Fatalf("rename entry: %+v", renamed)
	}
	if n.Placeholder {
		t.Fatalf("a renamed placeholder is bound to its VM: %+v", n)
	}
	c.cloudInit(id)
	// Abandoning is only for placeholders: this node has a VM, which must be deleted through
	// the protocol so that a failed delete is retried instead of leaking it.
	if _, err := c.fleet.AbandonProvisioning(id, errors.New("late")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("abandon a node with a VM: %v", err)
	}

	// A node booted from a prepared image starts ready; the ready grace runs from registration.
	img, err := c.fleet.Register(NodeSpec{ID: "img-1", Origin: OriginCloud, TotalRAMMB: 4096, BootedFromImage: true})
	must(t, err)
	if img.State != StateReady || !img.InitializedAt.Equal(c.fleet.Now()) {
		t.Fatalf("image-booted node: %+v", img)
	}
	v, err := c.fleet.Evaluate("img-1")
	must(t, err)
	if v.Primary != ReasonReadyTooYoung {
		t.Fatalf("image-booted node is protected by the ready grace: %+v", v)
	}
}

func TestConductorBootstrapReRegistersAndCorrectsRAM(t *testing.T) {
	c := newConductor(t, Options{})
	id, err := c.provision("cx22")
	must(t, err)
	c.cloudInit(id)
	must(t, c.startServer(id, "mc-1", 1024, nil))
	// Bootstrap after loading from the database registers the node again, knowing only its
	// id: the upsert merges, so the attributes it does not give stay (no wrapper needed), and
	// no state changes.
	before, err := c.fleet.Node(id)
	must(t, err)
	n, err := c.fleet.Register(NodeSpec{ID: id, Origin: OriginRecovered})
	must(t, err)
	if n.State != StateActive || n.TotalRAMMB != before.TotalRAMMB || n.HourlyCost != before.HourlyCost ||
		n.InstanceType != "cx22" || n.Labels["managed_by"] != "payperplay" || len(n.Containers) != 1 {
		t.Fatalf("a re-registration without attributes must keep them: %+v", n)
	}
	// With the fallback RAM the conductor uses when the type lookup fails, the RAM changes.
	n, err = c.fleet.Register(NodeSpec{ID: id, Origin: OriginCloud, TotalRAMMB: 4096, InstanceType: "cx22"})
	must(t, err)
	if n.State != StateActive || n.TotalRAMMB != 4096 || len(n.Containers) != 1 || n.HourlyCost != before.HourlyCost {
		t.Fatalf("upsert: %+v", n)
	}
	// The real RAM is learned later and corrected; below what runs is refused.
	ram := 3800
	n, err = c.fleet.Update(id, NodeUpdate{TotalRAMMB: &ram})
	must(t, err)
	if n.TotalRAMMB != 3800 {
		t.Fatalf("update: %+v", n)
	}
	for _, tiny := range []int{512, 0} {
		if _, err := c.fleet.Update(id, NodeUpdate{TotalRAMMB: &tiny}); !errors.Is(err, ErrCapacityInUse) {
			t.Fatalf("RAM %d below what runs: %v", tiny, err)
		}
	}
	// Capacity is never forgotten: a claim beyond what is free is refused.
	if _, err := c.fleet.Claim(id, 100_000, 0); !errors.Is(err, ErrInsufficientCapacity) {
		t.Fatalf("a claim on a full node: %v", err)
	}
	// The same id with another origin is a conflict, not an upsert.
	if _, err := c.fleet.Register(NodeSpec{ID: id, Origin: OriginDedicated}); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("origin conflict: %v", err)
	}
	updates, err := c.fleet.AuditByAction(ActionNodeUpdate, 10)
	must(t, err)
	if len(updates) == 0 {
		t.Fatal("RAM changes are audited")
	}
}

func TestConductorDiskFullCordon(t *testing.T) {
	c := newConductor(t, Options{AuditCapacity: 1000})
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	must(t, c.startServer(id, "mc-1", 2048, nil))
	// A full disk: no new containers, the running one stays, the state does not change.
	for round := 0; round < 360; round++ { // an hour of 10-second rounds
		c.healthRound(id, true, 97)
	}
	err = c.startServer(id, "mc-2", 1024, nil)
	if !errors.Is(err, ErrNotSchedulable) {
		t.Fatalf("placement on a full disk: %v", err)
	}
	n, err := c.fleet.Node(id)
	must(t, err)
	if n.State != StateActive || len(n.Containers) != 1 || n.Schedulable || len(n.Cordons) != 1 || n.Cordons[0].Name != "disk_full" {
		t.Fatalf("cordoned node: %+v", n)
	}
	p, err := c.fleet.Projection()
	must(t, err)
	if p.Now.Nodes != 0 || p.Cordoned.Nodes != 1 {
		t.Fatalf("cordoned capacity is not schedulable: %+v", p)
	}
	// 360 rounds put one cordon entry in the ring, not 360 rejections.
	cordons, err := c.fleet.AuditByAction(ActionNodeCordon, AllEntries)
	must(t, err)
	rejected, err := c.fleet.AuditByResult(ResultRejected, AllEntries)
	must(t, err)
	if len(cordons) != 1 || len(rejected) != 0 {
		t.Fatalf("cordon entries %d, rejections %d", len(cordons), len(rejected))
	}
	// The disk recovers: one uncordon, placement works again.
	c.healthRound(id, true, 40)
	c.healthRound(id, true, 40)
	must(t, c.startServer(id, "mc-2", 1024, nil))
	uncordons, err := c.fleet.AuditByAction(ActionNodeUncordon, AllEntries)
	must(t, err)
	if len(uncordons) != 1 {
		t.Fatalf("uncordon entries: %d", len(uncordons))
	}
	// Draining by hand is refused: deletions go through the protocol.
	if _, err := c.fleet.Transition(id, StateDraining, "disk_full"); !errors.Is(err, ErrProtocolOnly) {
		t.Fatalf("transition to draining: %v", err)
	}
}

func TestConductorClaimsAndStaleAllocations(t *testing.T) {
	c := newConductor(t, Options{IdleGrace: 10 * time.Minute})
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	// A start that fails releases its allocation; one that crashes leaves it to expire.
	if err := c.startServer(id, "mc-bad", 1024, errors.New("docker: image pull failed")); err == nil {
		t.Fatal("start should fail")
	}
	crashed, err := c.fleet.Claim(id, 2048, 0)
	must(t, err)
	if _, err := c.fleet.Claim(id, 6000, 0); !errors.Is(err, ErrInsufficientCapacity) {
		t.Fatalf("over-allocation: %v", err)
	}
	must(t, c.fleet.Advance(time.Hour))
	v, err := c.fleet.Evaluate(id)
	must(t, err)
	if !v.Has(ReasonHasReservations) {
		t.Fatalf("an allocation pins the node until it expires: %+v", v)
	}
	rep, err := c.fleet.Tick()
	must(t, err)
	if len(rep.ExpiredClaims) != 1 || rep.ExpiredClaims[0].ClaimID != crashed || rep.ExpiredClaims[0].RAMMB != 2048 {
		t.Fatalf("tick: %+v", rep)
	}
	expired, err := c.fleet.AuditByAction(ActionReservationExpired, 10)
	must(t, err)
	if len(expired) != 1 || *expired[0].RAMMB != 2048 || *expired[0].Age != time.Hour {
		t.Fatalf("expiry entry: %+v", expired)
	}
	if _, err := c.fleet.ConfirmClaim(crashed, "mc-late"); !errors.Is(err, ErrClaimNotFound) {
		t.Fatalf("confirming an expired claim: %v", err)
	}
	// A container id lives on one node only.
	other, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(other)
	must(t, c.startServer(id, "mc-1", 1024, nil))
	_, err = c.fleet.AddContainer(other, "mc-1", 1024)
	if !errors.Is(err, ErrContainerElsewhere) || asError(t, err).Node != id {
		t.Fatalf("same container id on a second node: %v", err)
	}
}

// The race the library exists to close: a placement that allocates RAM before it knows its
// container, against a scale-down of the same empty node. Never both.
func TestConductorPlacementRacesScaleDown(t *testing.T) {
	c := newConductor(t, Options{ReadyGrace: time.Minute})
	ctx := context.Background()
	var placed, deleted atomic.Int64
	for round := 0; round < 1000; round++ {
		id := fmt.Sprintf("race-%d", round)
		must(t, c.fleet.RegisterCloudNode(id, 8192))
		c.cloudInit(id)
		must(t, c.fleet.Advance(time.Minute))
		var wg sync.WaitGroup
		var placeErr, deleteErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			placeErr = c.startServer(id, "mc-"+id, 1024, nil)
		}()
		go func() {
			defer wg.Done()
			_, deleteErr = c.fleet.Decommission(ctx, id, "reactive_policy", c.provider.deleteAny)
		}()
		wg.Wait()
		switch {
		case placeErr == nil && deleteErr == nil:
			t.Fatalf("round %d: a container was placed on a node that was deleted", round)
		case placeErr == nil:
			placed.Add(1)
			if !errors.Is(deleteErr, ReasonHasContainers) && !errors.Is(deleteErr, ReasonHasReservations) {
				t.Fatalf("round %d: deletion refused for the wrong reason: %v", round, deleteErr)
			}
		case deleteErr == nil:
			deleted.Add(1)
			if !errors.Is(placeErr, ErrNotSchedulable) {
				t.Fatalf("round %d: placement refused for the wrong reason: %v", round, placeErr)
			}
		default:
			t.Fatalf("round %d: both failed: %v / %v", round, placeErr, deleteErr)
		}
	}
	nodes, err := c.fleet.Nodes()
	must(t, err)
	for _, n := range nodes {
		if n.State == StateDecommissioned && (len(n.Containers) > 0 || len(n.Claims) > 0) {
			t.Fatalf("%s decommissioned while occupied: %+v", n.ID, n)
		}
	}
	t.Logf("1000 rounds: %d placements won, %d deletions won", placed.Load(), deleted.Load())
	if placed.Load()+deleted.Load() != 1000 {
		t.Fatal("every round has exactly one winner")
	}
}

// deleteAny deletes whatever id it is given (the race test's nodes never went through
// CreateServer).
func (p *fakeProvider) deleteAny(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = append(p.deleted, id)
	return nil
}

func TestConductorReactiveScaleDownAndLostTicket(t *testing.T) {
	c := newConductor(t, Options{})
	ctx := context.Background()
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	must(t, c.startServer(id, "mc-1", 1024, nil))
	must(t, c.fleet.Advance(time.Hour))
	c.ok(c.fleet.RemoveContainer(id, "mc-1"))
	if got := c.scaleDown(ctx); len(got) != 0 {
		t.Fatalf("deleted within the idle grace: %v", got)
	}
	must(t, c.fleet.Advance(31*time.Minute))

	// The provider fails; the conductor "crashes" and loses the ticket.
	c.provider.failDelete = errors.New("hetzner: 503 service unavailable")
	if got := c.scaleDown(ctx); len(got) != 0 {
		t.Fatalf("a failed delete is not a deletion: %v", got)
	}
	if _, err := c.fleet.BeginDecommission(id, "reactive_policy"); !errors.Is(err, ReasonDecommissionInProgress) {
		t.Fatalf("retry without the ticket: %v", err)
	}
	ticket, ok, err := c.fleet.TicketFor(id)
	must(t, err)
	if !ok || ticket.NodeID != id {
		t.Fatalf("ticket_for: %+v %v", ticket, ok)
	}
	c.provider.failDelete = nil
	must(t, c.provider.DeleteServer(ctx, id))
	must(t, c.fleet.CompleteDecommission(ticket))
	entries, err := c.fleet.AuditByNode(id, AllEntries)
	must(t, err)
	var started, failed, completed int
	for _, e := range entries {
		if e.Action != ActionNodeDecommission {
			continue
		}
		switch {
		case e.Result == ResultFailed && e.Error == "hetzner: 503 service unavailable":
			failed++
		case e.Result == ResultSuccess && e.DecisionBy == "reactive_policy" && e.Reason == "decommission_completed":
			completed++
		case e.Result == ResultSuccess && e.DecisionBy == "reactive_policy":
			started++
		}
	}
	if started != 1 || failed != 1 || completed != 1 {
		t.Fatalf("decommission entries: started %d failed %d completed %d", started, failed, completed)
	}
	// A ticket with another node's id, or from another fleet, is refused.
	other := newConductor(t, Options{})
	if err := other.fleet.CompleteDecommission(ticket); !errors.Is(err, ErrTicketInvalid) {
		t.Fatalf("a ticket from another fleet: %v", err)
	}
}

// Consolidation carried out end to end within the policy's 15 minutes: plan, execute (evacuate
// cordons), migrate, delete the emptied nodes without waiting for the 30-minute idle grace.
func TestConductorConsolidationExecutesWithinFifteenMinutes(t *testing.T) {
	c := newConductor(t, Options{})
	ctx := context.Background()
	nodes := []string{}
	for i := 0; i < 3; i++ {
		id, err := c.provision("cx32")
		must(t, err)
		c.cloudInit(id)
		must(t, c.startServer(id, fmt.Sprintf("mc-%d", i), 1024, nil))
		nodes = append(nodes, id)
	}
	must(t, c.fleet.Advance(time.Hour))
	policy := ConsolidationPolicy{MinIdle: 15 * time.Minute}
	plan, err := c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: policy})
	must(t, err)
	if !plan.Worthwhile || len(plan.Remove) != 2 {
		t.Fatalf("plan: %+v", plan)
	}
	start := c.fleet.Now()
	exec, err := c.fleet.ExecutePlan(plan, policy)
	must(t, err)
	// The removed nodes take nothing new while their containers move.
	for _, r := range exec.Remove {
		if err := c.startServer(r, "mc-new-"+r, 128, nil); !errors.Is(err, ErrNotSchedulable) {
			t.Fatalf("placement on a node being evacuated: %v", err)
		}
	}
	for _, m := range exec.Moves {
		must(t, c.fleet.Advance(time.Minute)) // the migration itself takes a while
		must(t, c.fleet.RecordMigration(m.ContainerID, m.FromNode, m.ToNode, "consolidation_policy"))
	}
	for _, r := range exec.Remove {
		v, err := c.fleet.Explain(r)
		must(t, err)
		if !v.Allowed || v.Explanation.IdleGraceWaivedBy != exec.Cordon {
			t.Fatalf("emptied node %s: %+v", r, v)
		}
		_, err = c.fleet.Decommission(ctx, r, "consolidation_policy", c.provider.DeleteServer)
		must(t, err)
	}
	if took := c.fleet.Now().Sub(start); took > 15*time.Minute {
		t.Fatalf("consolidation took %v", took)
	}
	if len(c.provider.servers) != 1 {
		t.Fatalf("servers left: %v", c.provider.servers)
	}
	// A second plan within the cooldown is refused; a stale plan cannot be executed.
	again, err := c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: policy})
	must(t, err)
	if again.Worthwhile || again.Refusal != "cooldown" {
		t.Fatalf("within the cooldown: %+v", again)
	}
	if _, err := c.fleet.ExecutePlan(plan, policy); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("executing a plan twice: %v", err)
	}
}

func TestConductorAbandonedPlanLiftsCordonsAndStalePlanIsRefused(t *testing.T) {
	c := newConductor(t, Options{})
	for i := 0; i < 2; i++ {
		id, err := c.provision("cx32")
		must(t, err)
		c.cloudInit(id)
		must(t, c.startServer(id, fmt.Sprintf("mc-%d", i), 1024, nil))
	}
	must(t, c.fleet.Advance(time.Hour))
	policy := ConsolidationPolicy{}
	plan, err := c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: policy})
	must(t, err)
	if !plan.Worthwhile {
		t.Fatalf("plan: %+v", plan)
	}
	// The fleet changes under the plan: a new container on the node it removes.
	must(t, c.startServer(plan.Remove[0].NodeID, "mc-new", 512, nil))
	if _, err := c.fleet.ExecutePlan(plan, policy); !errors.Is(err, ErrStalePlan) {
		t.Fatalf("stale plan: %v", err)
	}
	plan, err = c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: policy})
	must(t, err)
	exec, err := c.fleet.ExecutePlan(plan, policy)
	must(t, err)
	lifted, err := c.fleet.AbandonPlan(exec.ID)
	must(t, err)
	if len(lifted) != len(exec.Remove) {
		t.Fatalf("lifted %v of %v", lifted, exec.Remove)
	}
	n, err := c.fleet.Node(exec.Remove[0])
	must(t, err)
	if !n.Schedulable || len(n.Cordons) != 0 {
		t.Fatalf("after abandon: %+v", n)
	}
}

// A restart in the middle of a consolidation: the cordons, the moves already recorded and the
// cooldown survive; the restored fleet finishes the job.
func TestConductorRestartDuringConsolidation(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir}
	c := newConductor(t, opts)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id, err := c.provision("cx32")
		must(t, err)
		c.cloudInit(id)
		must(t, c.startServer(id, fmt.Sprintf("mc-%d", i), 1024, nil))
	}
	must(t, c.fleet.Advance(time.Hour))
	policy := ConsolidationPolicy{MinIdle: 15 * time.Minute}
	plan, err := c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: policy})
	must(t, err)
	exec, err := c.fleet.ExecutePlan(plan, policy)
	must(t, err)
	must(t, c.fleet.RecordMigration(exec.Moves[0].ContainerID, exec.Moves[0].FromNode, exec.Moves[0].ToNode, "consolidation_policy"))
	last, err := c.fleet.LastConsolidation()
	must(t, err)
	must(t, c.fleet.Close())

	// The conductor restarts: same data directory, a clock that went on.
	f, err := New(Options{DataDir: dir, ManualClockStart: t0.Add(3 * time.Hour)})
	must(t, err)
	defer f.Close()
	c.fleet = f
	restoredLast, err := f.LastConsolidation()
	must(t, err)
	if !restoredLast.Equal(last) {
		t.Fatalf("last consolidation %v, restored %v", last, restoredLast)
	}
	for _, r := range exec.Remove {
		n, err := f.Node(r)
		must(t, err)
		if len(n.Cordons) != 1 || n.Cordons[0].Name != exec.Cordon || !n.Cordons[0].Evacuate {
			t.Fatalf("%s after restart: %+v", r, n.Cordons)
		}
	}
	// Restored nodes wait for their container sync: the conductor syncs what Docker reports.
	all, err := f.Nodes()
	must(t, err)
	for _, n := range all {
		if n.State == StateDecommissioned {
			continue
		}
		containers := []Container{}
		for cid, ram := range n.Containers {
			containers = append(containers, Container{ID: cid, RAMMB: ram})
		}
		c.ok(f.SyncContainers(n.ID, containers))
	}
	_, err = f.FinishRestore()
	must(t, err)
	for _, m := range exec.Moves[1:] {
		must(t, f.RecordMigration(m.ContainerID, m.FromNode, m.ToNode, "consolidation_policy"))
	}
	must(t, f.Advance(10*time.Minute)) // the post-sync grace after a restart
	for _, r := range exec.Remove {
		if _, err := f.Decommission(ctx, r, "consolidation_policy", c.provider.DeleteServer); err != nil {
			t.Fatalf("decommission %s after restart: %v", r, err)
		}
	}
	p, err := f.ConsolidationPlan(ConsolidationRequest{Policy: policy, LastConsolidation: time.Time{}})
	must(t, err)
	if p.Refusal != "cooldown" && p.Refusal != "nothing_to_remove" {
		t.Fatalf("after the restart: %+v", p)
	}
}

// The health checker's flow: a worker that hosted a server is unreachable for 30 seconds.
// The conductor reports each failed probe and drops the node's containers (handleNodeFailure);
// the scale-down must still refuse to delete it: the outage may be a blip. Only after the
// unhealthy grace, or once the provider confirms the VM is gone, may it be cleaned up. An
// unknown probe result is neither a success nor a failure.
func TestConductorHealthBlipNeverDeletesALiveWorker(t *testing.T) {
	c := newConductor(t, Options{})
	ctx := context.Background()
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	must(t, c.startServer(id, "mc-1", 2048, nil))
	must(t, c.fleet.Advance(2*time.Hour))
	// Probes that cannot tell (no address yet, a timeout) never count as failures.
	for i := 0; i < 5; i++ {
		h, err := c.fleet.ReportHealthStatus(id, HealthUnknown)
		must(t, err)
		if h.State != StateActive || h.ConsecutiveFailures != 0 || h.Health != HealthUnknown {
			t.Fatalf("an unknown probe changed the node: %+v", h)
		}
	}
	// Three failed probes ten seconds apart: unhealthy; the health checker drops its servers.
	for i := 0; i < 3; i++ {
		must(t, c.fleet.Advance(10*time.Second))
		c.ok(c.fleet.ReportHealth(id, false))
	}
	n, err := c.fleet.Node(id)
	must(t, err)
	if n.State != StateUnhealthy {
		t.Fatalf("after three failures: %s", n.State)
	}
	c.ok(c.fleet.RemoveContainer(id, "mc-1"))
	if got := c.scaleDown(ctx); len(got) != 0 {
		t.Fatalf("a worker deleted after a 30-second outage: %v", got)
	}
	v, err := c.fleet.Explain(id)
	must(t, err)
	if v.Primary != ReasonUnhealthyTooRecent || !v.Primary.IsTimer() || v.RetryAfter.IsZero() {
		t.Fatalf("verdict during the blip: %+v", v)
	}
	// Asked directly, the protocol refuses it, audited with the reason.
	if _, err := c.fleet.BeginDecommission(id, "reactive_policy"); !errors.Is(err, ReasonUnhealthyTooRecent) {
		t.Fatalf("begin during the blip: %v", err)
	}
	if e := lastDecommissionEntry(t, c.fleet, id); e.Result != ResultRejected || e.ReasonCode != ReasonUnhealthyTooRecent {
		t.Fatalf("the refusal is audited: %+v", e)
	}
	// It answers again: ready, its containers to be re-synchronised; still not deletable.
	c.ok(c.fleet.ReportHealth(id, true))
	c.ok(c.fleet.SyncContainers(id, []Container{{ID: "mc-1", RAMMB: 2048}}))
	c.ok(c.fleet.CompleteContainerSync(id))
	if got := c.scaleDown(ctx); len(got) != 0 {
		t.Fatalf("deleted after it recovered: %v", got)
	}
	if len(c.provider.servers) != 1 {
		t.Fatalf("servers: %v", c.provider.servers)
	}

	// A second worker dies for good: after the unhealthy grace it is cleaned up...
	dead, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(dead)
	must(t, c.startServer(dead, "mc-2", 1024, nil))
	for i := 0; i < 3; i++ {
		c.ok(c.fleet.ReportHealth(dead, false))
	}
	c.ok(c.fleet.RemoveContainer(dead, "mc-2"))
	if got := c.scaleDown(ctx); len(got) != 0 {
		t.Fatalf("deleted within the unhealthy grace: %v", got)
	}
	must(t, c.fleet.Advance(15*time.Minute))
	if got := c.scaleDown(ctx); len(got) != 1 || got[0] != dead {
		t.Fatalf("after the unhealthy grace: %v", got)
	}
	// ...and a third, which the provider reports gone, at once.
	gone, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(gone)
	must(t, c.startServer(gone, "mc-3", 1024, nil))
	c.ok(c.fleet.RemoveContainer(gone, "mc-3"))
	n, err = c.fleet.ConfirmGone(gone, "GET /servers/"+gone+": 404 not found")
	must(t, err)
	if n.State != StateUnhealthy || n.GoneAtProvider == nil || n.GoneAtProvider.Evidence != "GET /servers/"+gone+": 404 not found" {
		t.Fatalf("confirmed gone: %+v", n)
	}
	v, err = c.fleet.Explain(gone)
	must(t, err)
	if !v.Allowed || v.Explanation.UnhealthyGraceWaivedBy == "" {
		t.Fatalf("a VM the provider says is gone: %+v", v)
	}
	delete(c.provider.servers, gone) // it is gone: the provider's delete says 404
	_, err = c.fleet.Decommission(ctx, gone, "reactive_policy", func(context.Context, string) error { return nil })
	must(t, err)
}

// A placeholder left by a crash, and one whose VM never became ready: each has a way out, and
// a failed provider delete never leaks a VM.
func TestConductorPlaceholderCrashAndServerNeverReady(t *testing.T) {
	dir := t.TempDir()
	c := newConductor(t, Options{DataDir: dir})
	ctx := context.Background()
	// The conductor registers a placeholder, calls CreateServer and crashes before it returns.
	c.ok(c.fleet.Register(NodeSpec{ID: "provisioning-7", Origin: OriginCloud, TotalRAMMB: 8192, Placeholder: true}))
	must(t, c.fleet.Close())
	f, err := New(Options{DataDir: dir, ManualClockStart: t0.Add(time.Minute)})
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	c.fleet = f
	restoring, err := f.Restoring()
	must(t, err)
	s, err := f.Summary()
	must(t, err)
	if !restoring || s.Placeholders != 1 {
		t.Fatalf("after the restart: restoring %v, summary %+v", restoring, s)
	}
	// The restore pass finds placeholders without a VM at the provider and abandons them.
	nodes, err := f.Nodes()
	must(t, err)
	for _, n := range nodes {
		if n.Placeholder {
			c.ok(f.AbandonProvisioning(n.ID, errors.New("conductor restarted before the VM was created")))
		}
	}
	_, err = f.FinishRestore()
	must(t, err)
	if restoring, _ := f.Restoring(); restoring {
		t.Fatal("the restore pass ended")
	}
	n, err := f.Node("provisioning-7")
	must(t, err)
	if n.State != StateDecommissioned {
		t.Fatalf("abandoned placeholder: %+v", n)
	}

	// CreateServer succeeded but WaitForServerReady failed: the VM exists. Mark it unhealthy
	// (it never came up, so no grace protects it) and delete it through the protocol; a
	// failed delete keeps the ticket, and the retry finds it.
	id, err := c.provision("cx32")
	must(t, err)
	c.ok(f.Transition(id, StateInitializing, "cloud_init_started"))
	c.ok(f.Transition(id, StateUnhealthy, "server_never_became_ready"))
	c.provider.failDelete = errors.New("hetzner: 503")
	if _, err := f.Decommission(ctx, id, "provisioner", c.provider.DeleteServer); err == nil {
		t.Fatal("the delete failed")
	}
	ticket, ok, err := f.TicketFor(id)
	must(t, err)
	if !ok {
		t.Fatal("a failed delete keeps its ticket")
	}
	c.provider.failDelete = nil
	must(t, c.provider.DeleteServer(ctx, id))
	must(t, f.CompleteDecommission(ticket))
	if len(c.provider.servers) != 0 {
		t.Fatalf("leaked VMs: %v", c.provider.servers)
	}
}

// After a restart the conductor refreshes its container view as Docker answers, possibly many
// times, without ending the recovery protection; it ends it explicitly.
func TestConductorRefreshesWithoutEndingRecovery(t *testing.T) {
	dir := t.TempDir()
	c := newConductor(t, Options{DataDir: dir})
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	must(t, c.startServer(id, "mc-1", 1024, nil))
	must(t, c.fleet.Close())
	f, err := New(Options{DataDir: dir, ManualClockStart: t0.Add(time.Hour)})
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	for i := 0; i < 3; i++ {
		c.ok(f.SyncContainers(id, []Container{{ID: "mc-1", RAMMB: 1024}}))
		n, err := f.Node(id)
		must(t, err)
		if !n.ContainerSyncPending {
			t.Fatalf("refresh %d ended the recovery: %+v", i, n)
		}
	}
	c.ok(f.SyncContainers(id, nil)) // the server stopped meanwhile
	v, err := f.Evaluate(id)
	must(t, err)
	if !v.Has(ReasonContainerSyncPending) {
		t.Fatalf("an empty refreshed view is not yet known empty: %+v", v)
	}
	done, err := f.CompleteContainerSync(id)
	must(t, err)
	if !done {
		t.Fatal("the sync was pending")
	}
	if v, _ = f.Evaluate(id); v.Has(ReasonContainerSyncPending) || !v.Has(ReasonRecoveryGrace) {
		t.Fatalf("after completing: %+v", v)
	}
	// System nodes never count as capacity for game servers.
	c.ok(f.Register(NodeSpec{ID: "local-node", Origin: OriginSystem, TotalRAMMB: 65536}))
	p, err := f.Projection()
	must(t, err)
	if p.System.Nodes != 1 || p.System.TotalRAMMB != 65536 || p.Now.TotalRAMMB >= 65536 {
		t.Fatalf("projection with a system node: %+v", p)
	}
}

// What an attacker and a careless operator tried against 0.2.0, on either backend: a claim or
// reservation made before a cordon, a new evacuate cordon on an already empty node, a plan
// executed after a cost change.
func TestConductorCordonsAndPlansSayTheTruth(t *testing.T) {
	c := newConductor(t, Options{})
	id, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(id)
	claim, err := c.fleet.Claim(id, 1024, 0)
	must(t, err)
	_, err = c.fleet.Reserve(id, "mc-reserved", 512)
	must(t, err)
	c.ok(c.fleet.Cordon(id, "disk_full", "disk at 97%", false))
	if _, err := c.fleet.ConfirmClaim(claim, "mc-claimed"); !errors.Is(err, ErrNotSchedulable) {
		t.Fatalf("a claim made before the cordon started its container: %v", err)
	}
	if _, err := c.fleet.AddContainer(id, "mc-reserved", 512); !errors.Is(err, ErrNotSchedulable) {
		t.Fatalf("a reservation made before the cordon started its container: %v", err)
	}
	n, err := c.fleet.Node(id)
	must(t, err)
	if len(n.Containers) != 0 || len(n.Claims) != 2 {
		t.Fatalf("the claims stay until released or expired, nothing runs: %+v", n)
	}
	_, err = c.fleet.ReleaseClaim(claim)
	must(t, err)
	_, err = c.fleet.ReleaseReservation(id, "mc-reserved")
	must(t, err)
	c.ok(c.fleet.Uncordon(id, "disk_full"))

	// Emptied under an evacuate cordon: the idle grace is waived; the cordon is lifted, and a
	// new one of the same name placed on the empty node waives nothing.
	must(t, c.startServer(id, "mc-1", 1024, nil))
	c.ok(c.fleet.Cordon(id, "drain-me", "maintenance", true))
	c.ok(c.fleet.RemoveContainer(id, "mc-1"))
	if v, _ := c.fleet.Explain(id); !v.Allowed || v.Explanation.IdleGraceWaivedBy != "drain-me" {
		t.Fatalf("emptied by the evacuation: %+v", v)
	}
	c.ok(c.fleet.Uncordon(id, "drain-me"))
	c.ok(c.fleet.Cordon(id, "drain-me", "again", true))
	if v, _ := c.fleet.Explain(id); v.Allowed || v.Primary != ReasonIdleTooRecent {
		t.Fatalf("a new cordon of the same name on an empty node waived the idle grace: %+v", v)
	}
	c.ok(c.fleet.Uncordon(id, "drain-me"))

	// A plan executed after the cost of a node it removes changed is stale, naming why.
	other, err := c.provision("cx32")
	must(t, err)
	c.cloudInit(other)
	must(t, c.startServer(other, "mc-2", 512, nil))
	must(t, c.fleet.Advance(time.Hour))
	plan, err := c.fleet.ConsolidationPlan(ConsolidationRequest{Policy: ConsolidationPolicy{MaxUtilisationAfter: 1}})
	must(t, err)
	if !plan.Worthwhile {
		t.Fatalf("plan: %+v", plan)
	}
	removed := plan.Remove[0]
	cheaper := removed.HourlyCost / 2
	c.ok(c.fleet.Update(removed.NodeID, NodeUpdate{HourlyCost: &cheaper}))
	_, err = c.fleet.ExecutePlan(plan, ConsolidationPolicy{MaxUtilisationAfter: 1})
	want := fmt.Sprintf("lifecycle: stale consolidation plan: node %s now costs %v EUR/h, the plan counted %v EUR/h (its savings would be misreported)",
		removed.NodeID, cheaper, removed.HourlyCost)
	if !errors.Is(err, ErrStalePlan) || err.Error() != want {
		t.Fatalf("a plan whose figures changed:\ngot  %v\nwant %s", err, want)
	}
}
