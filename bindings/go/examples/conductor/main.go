// Command conductor drives the library the way the Go conductor does, on a manual clock (it
// finishes at once).
//
// Part 1 plays the four scenarios of the specification step for step as the Rust example
// (`cargo run --example scenarios`) does, and prints the same trace: `make demo` checks that
// both print the same outcomes. Part 2 plays the conductor's own flows against a fake cloud
// provider: a placeholder bound to the provider's id, RAM allocated before the container id is
// known, a disk-full cordon, a consolidation plan carried out, and a failed delete whose lost
// ticket is found again.
//
//	go run ./examples/conductor
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

const minute = time.Minute

type trace struct {
	fleet *lifecycle.Fleet
	start time.Time
}

func (t *trace) clock() string {
	return fmt.Sprintf("t+%7s", humanDuration(t.fleet.Now().Sub(t.start)))
}

func (t *trace) step(what string) { fmt.Printf("  %s  %s\n", t.clock(), what) }

func (t *trace) state(node string) {
	n, err := t.fleet.Node(node)
	must(err)
	t.step(fmt.Sprintf("%s: state=%s health=%s containers=%d total_ever=%d",
		node, n.State, n.Health, len(n.Containers), n.TotalContainersEver))
}

// decommission runs the protocol by hand, as the Rust example does.
func (t *trace) decommission(node, by string) {
	ticket, err := t.fleet.BeginDecommission(node, by)
	if err != nil {
		var e *lifecycle.Error
		must(asRejection(err, &e))
		t.step(fmt.Sprintf("%s decommission of %s REJECTED [code %d]: %s", by, node, e.Code, e.Verdict.Message()))
		return
	}
	t.step(fmt.Sprintf("%s begins decommission of %s: ticket #%s", by, node, ticket.ID))
	t.step("  ... the cloud provider deletes the VM ...")
	must(t.fleet.CompleteDecommission(ticket))
	t.step(fmt.Sprintf("decommission of %s completed", node))
}

func asRejection(err error, e **lifecycle.Error) error {
	if errors.As(err, e) && errors.Is(err, lifecycle.ErrRejected) && (*e).Verdict != nil {
		return nil
	}
	return err
}

func (t *trace) audit(node string) {
	fmt.Printf("    audit trail of %s:\n", node)
	entries, err := t.fleet.AuditByNode(node, 100)
	must(err)
	for _, e := range entries {
		states := ""
		if e.FromState != nil && e.ToState != nil && *e.FromState != *e.ToState {
			states = fmt.Sprintf(" %s -> %s", e.FromState, e.ToState)
		}
		by := ""
		if e.DecisionBy != "" {
			by = " by " + e.DecisionBy
		}
		fmt.Printf("      #%-3d %-21s %-8s%s%s  (%s)\n", e.Seq, e.Action, e.Result, states, by, e.Reason)
	}
}

// humanDuration prints a duration as the library's messages do ("1h3m0s").
func humanDuration(d time.Duration) string {
	return d.Truncate(time.Second).String()
}

func scenarios(fleet *lifecycle.Fleet) {
	t := &trace{fleet: fleet, start: fleet.Now()}
	cloudInit := func(id string) {
		_, err := fleet.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
		must(err)
	}
	ready := func(id string) {
		_, err := fleet.Transition(id, lifecycle.StateReady, "cloud_init_completed")
		must(err)
	}
	add := func(node, container string, ram int) {
		_, err := fleet.AddContainer(node, container, ram)
		must(err)
	}

	fmt.Println("Scenario 1: new node -> active -> idle -> decommission")
	_, err := fleet.Register(lifecycle.NodeSpec{ID: "cloud-1", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, InstanceType: "cx32", HourlyCost: 0.0119})
	must(err)
	t.state("cloud-1")
	cloudInit("cloud-1")
	must(fleet.Advance(3 * minute))
	ready("cloud-1")
	t.state("cloud-1")
	add("cloud-1", "mc-survival", 2048)
	t.state("cloud-1")
	must(fleet.Advance(90 * minute))
	_, err = fleet.RemoveContainer("cloud-1", "mc-survival")
	must(err)
	t.state("cloud-1")
	must(fleet.Advance(10 * minute))
	t.decommission("cloud-1", "reactive_policy")
	must(fleet.Advance(20 * minute))
	v, err := fleet.Explain("cloud-1")
	must(err)
	t.step("verdict now: " + v.Message())
	t.decommission("cloud-1", "reactive_policy")
	t.state("cloud-1")
	t.audit("cloud-1")

	fmt.Println("\nScenario 2: ready node too young")
	must(fleet.RegisterCloudNode("cloud-2", 8192))
	cloudInit("cloud-2")
	ready("cloud-2")
	t.state("cloud-2")
	t.decommission("cloud-2", "reactive_policy")
	t.audit("cloud-2")

	fmt.Println("\nScenario 3: node has containers")
	must(fleet.RegisterCloudNode("cloud-3", 16384))
	cloudInit("cloud-3")
	ready("cloud-3")
	add("cloud-3", "mc-1", 4096)
	add("cloud-3", "mc-2", 4096)
	must(fleet.Advance(60 * minute))
	t.state("cloud-3")
	t.decommission("cloud-3", "consolidation_policy")
	t.audit("cloud-3")

	fmt.Println("\nScenario 4: system nodes are protected")
	must(fleet.RegisterSystemNode("local-node", 0))
	must(fleet.RegisterSystemNode("proxy-node", 0))
	t.decommission("local-node", "manual")
	t.decommission("proxy-node", "manual")
	t.audit("local-node")

	s, err := fleet.AuditStats()
	must(err)
	fmt.Printf("\naudit: %d recorded, %d retained, %d evicted; %d rejected, %d succeeded\n",
		s.TotalRecorded, s.Retained, s.Evicted, s.ByResult[lifecycle.ResultRejected], s.ByResult[lifecycle.ResultSuccess])
}

// ----- part 2: the conductor's flows ---------------------------------------------------------

// provider stands in for the cloud provider's API.
type provider struct {
	next       int
	vms        map[string]string // id -> server type
	failDelete error
}

func (p *provider) create(serverType string) string {
	p.next++
	id := fmt.Sprintf("hz-%d", 4700+p.next)
	p.vms[id] = serverType
	return id
}

func (p *provider) delete(_ context.Context, id string) error {
	if p.failDelete != nil {
		return p.failDelete
	}
	if _, ok := p.vms[id]; !ok {
		return fmt.Errorf("server %s not found", id)
	}
	delete(p.vms, id)
	return nil
}

type conductor struct {
	*trace
	provider *provider
	seq      int
}

// provision registers a placeholder first (capacity coming is counted at once), creates the
// VM, binds the placeholder to the provider's id and corrects the RAM the provider reports.
func (c *conductor) provision(serverType string, ram int, cost float64) string {
	c.seq++
	placeholder := fmt.Sprintf("provisioning-%d", c.seq)
	_, err := c.fleet.Register(lifecycle.NodeSpec{ID: placeholder, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, InstanceType: serverType})
	must(err)
	id := c.provider.create(serverType)
	_, err = c.fleet.Rename(placeholder, id)
	must(err)
	_, err = c.fleet.Update(id, lifecycle.NodeUpdate{TotalRAMMB: &ram, HourlyCost: &cost})
	must(err)
	_, err = c.fleet.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
	must(err)
	must(c.fleet.Advance(2 * minute))
	_, err = c.fleet.Transition(id, lifecycle.StateReady, "cloud_init_completed")
	must(err)
	c.step(fmt.Sprintf("provisioned %s as %s (%d MB, %.2f EUR/h), cloud-init completed", placeholder, id, ram, cost))
	return id
}

// start places a game server: RAM first, the container id once Docker gave one.
func (c *conductor) start(node, container string, ram int) {
	claim, err := c.fleet.Claim(node, ram, 0)
	must(err)
	_, err = c.fleet.ConfirmClaim(claim, container)
	must(err)
	c.step(fmt.Sprintf("started %s on %s (claim %s confirmed)", container, node, claim))
}

func flows(fleet *lifecycle.Fleet) {
	c := &conductor{trace: &trace{fleet: fleet, start: fleet.Now()}, provider: &provider{vms: map[string]string{}}}
	ctx := context.Background()
	fmt.Println("\nThe conductor's flows")

	a := c.provision("cx32", 7700, 0.15)
	b := c.provision("cx32", 7700, 0.15)
	c.start(a, "mc-lobby", 2048)
	c.start(b, "mc-skyblock", 1024)

	// A placement that crashed between allocating and starting: its claim expires on tick.
	_, err := fleet.Claim(b, 1024, 0)
	must(err)
	must(fleet.Advance(31 * minute))
	rep, err := fleet.Tick()
	must(err)
	for _, x := range rep.ExpiredClaims {
		c.step(fmt.Sprintf("claim %s of %d MB on %s expired after %s", x.ClaimID, x.RAMMB, x.NodeID, humanDuration(x.Age)))
	}

	// Disk full: a cordon, not a transition. The server keeps running; nothing new lands.
	_, err = fleet.Cordon(a, "disk_full", "disk at 97%", false)
	must(err)
	_, err = fleet.Claim(a, 512, 0)
	c.step(fmt.Sprintf("disk full on %s: placement refused (%v)", a, errors.Is(err, lifecycle.ErrNotSchedulable)))
	_, err = fleet.Uncordon(a, "disk_full")
	must(err)
	c.step(fmt.Sprintf("disk freed on %s: cordon lifted", a))

	// Consolidation: the plan moves mc-skyblock and removes b without the idle grace.
	policy := lifecycle.ConsolidationPolicy{MinIdle: 15 * minute}
	plan, err := fleet.ConsolidationPlan(lifecycle.ConsolidationRequest{Policy: policy})
	must(err)
	c.step(fmt.Sprintf("consolidation plan: remove %v, %d moves, saves %.2f EUR/h", removed(plan), len(plan.Moves), plan.SavingsPerHour))
	exec, err := fleet.ExecutePlan(plan, policy)
	must(err)
	for _, m := range exec.Moves {
		must(fleet.Advance(minute))
		must(fleet.RecordMigration(m.ContainerID, m.FromNode, m.ToNode, "consolidation_policy"))
		c.step(fmt.Sprintf("migrated %s from %s to %s", m.ContainerID, m.FromNode, m.ToNode))
	}
	for _, node := range exec.Remove {
		v, err := fleet.Explain(node)
		must(err)
		c.step(fmt.Sprintf("%s: %s", node, v.Message()))
		// The provider fails the first time; the ticket is "lost" with the failed request.
		c.provider.failDelete = errors.New("hetzner: 503 service unavailable")
		_, err = fleet.Decommission(ctx, node, "consolidation_policy", c.provider.delete)
		c.step(fmt.Sprintf("deleting %s failed: %v", node, err))
		c.provider.failDelete = nil
		ticket, ok, err := fleet.TicketFor(node)
		must(err)
		if !ok {
			must(fmt.Errorf("no outstanding ticket for %s", node))
		}
		must(c.provider.delete(ctx, node))
		must(fleet.CompleteDecommission(ticket))
		c.step(fmt.Sprintf("retried with the recovered ticket: %s decommissioned", node))
	}
	c.audit(exec.Remove[0])

	vms := make([]string, 0, len(c.provider.vms))
	for id := range c.provider.vms {
		vms = append(vms, id)
	}
	sort.Strings(vms)
	fmt.Printf("\nVMs still running at the provider: %s\n", strings.Join(vms, ", "))
}

func removed(p lifecycle.ConsolidationPlan) []string {
	out := make([]string, 0, len(p.Remove))
	for _, r := range p.Remove {
		out = append(out, r.NodeID)
	}
	return out
}

func main() {
	start := time.UnixMilli(1_767_225_600_000) // 2026-01-01, as in the Rust example
	fleet, err := lifecycle.New(lifecycle.Options{ManualClockStart: start})
	must(err)
	defer fleet.Close()
	scenarios(fleet)
	if len(os.Args) > 1 && os.Args[1] == "-scenarios-only" {
		return
	}
	conductorFleet, err := lifecycle.New(lifecycle.Options{ManualClockStart: start})
	must(err)
	defer conductorFleet.Close()
	flows(conductorFleet)
}

func must(err error) {
	if err != nil {
		log.SetOutput(os.Stderr)
		log.Fatal(err)
	}
}
