// Command conductor plays the four lifecycle scenarios the way the Go conductor drives the
// library: the provisioner registers VMs, the health checker reports cloud-init completion, the
// container registry reports starts and stops, and the reactive scaling policy decommissions
// idle nodes through a fake cloud provider. It runs on a manual clock, so it finishes at once.
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
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// fakeProvider stands in for the cloud provider's API.
type fakeProvider struct{ vms map[string]bool }

func (p *fakeProvider) Create(id string) { p.vms[id] = true }

func (p *fakeProvider) Delete(_ context.Context, id string) error {
	if !p.vms[id] {
		return fmt.Errorf("vm %s not found", id)
	}
	delete(p.vms, id)
	return nil
}

type conductor struct {
	fleet    *lifecycle.Fleet
	provider *fakeProvider
	start    time.Time
}

func (c *conductor) logf(format string, args ...any) {
	fmt.Printf("  t+%-8s %s\n", c.fleet.Now().Sub(c.start), fmt.Sprintf(format, args...))
}

// provision is the provisioner: create the VM, register it, run cloud-init.
func (c *conductor) provision(id string) {
	c.provider.Create(id)
	must(c.fleet.RegisterCloudNode(id, 8192))
	_, err := c.fleet.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
	must(err)
	c.logf("provisioned %s", id)
}

// healthTick is the health checker: cloud-init completion, health results and timers.
func (c *conductor) healthTick(cloudInitDone ...string) {
	for _, id := range cloudInitDone {
		_, err := c.fleet.Transition(id, lifecycle.StateReady, "cloud_init_completed")
		must(err)
		c.logf("%s: cloud-init completed -> ready", id)
	}
	_, err := c.fleet.Tick()
	must(err)
}

// reactivePolicy decommissions every node the safety rules allow, and explains the others.
func (c *conductor) reactivePolicy() {
	verdicts, err := c.fleet.EvaluateAll()
	must(err)
	for _, nv := range verdicts {
		if !nv.Verdict.Allowed {
			continue
		}
		_, err := c.fleet.Decommission(context.Background(), nv.NodeID, "reactive_policy", c.provider.Delete)
		if err != nil {
			c.logf("decommission %s failed: %v", nv.NodeID, err)
			continue
		}
		c.logf("reactive_policy decommissioned %s (VM deleted)", nv.NodeID)
	}
}

// tryDecommission is an explicit request (manual or consolidation) and prints the outcome.
func (c *conductor) tryDecommission(id, by string) {
	_, err := c.fleet.Decommission(context.Background(), id, by, c.provider.Delete)
	var e *lifecycle.Error
	switch {
	case err == nil:
		c.logf("%s decommissioned %s", by, id)
	case errors.As(err, &e) && errors.Is(err, lifecycle.ErrRejected):
		c.logf("%s decommission of %s REJECTED [%d %s]: %s", by, id, e.Code, e.Reason(), e.Message)
	default:
		c.logf("%s decommission of %s failed: %v", by, id, err)
	}
}

func (c *conductor) auditTrail(id string) {
	entries, err := c.fleet.AuditByNode(id, 100)
	must(err)
	for _, e := range entries {
		move := ""
		if e.FromState != nil && e.ToState != nil && *e.FromState != *e.ToState {
			move = fmt.Sprintf(" %s -> %s", e.FromState, e.ToState)
		}
		fmt.Printf("      #%-3d %-21s %-8s%s  %s\n", e.Seq, e.Action, e.Result, move, e.Reason)
	}
}

func main() {
	start := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	fleet, err := lifecycle.New(lifecycle.Options{ManualClockStart: start})
	must(err)
	defer fleet.Close()
	c := &conductor{fleet: fleet, provider: &fakeProvider{vms: map[string]bool{}}, start: start}

	fmt.Println("Scenario 1: new node -> active -> idle -> decommission")
	c.provision("cloud-1")
	must(fleet.Advance(3 * time.Minute))
	c.healthTick("cloud-1")
	out, err := fleet.AddContainer("cloud-1", "mc-survival", 2048)
	must(err)
	c.logf("container mc-survival started on cloud-1 -> %s", out.State)
	must(fleet.Advance(90 * time.Minute))
	out, err = fleet.RemoveContainer("cloud-1", "mc-survival")
	must(err)
	c.logf("container mc-survival stopped -> %s", out.State)
	for i := 0; i < 4; i++ { // the scaling loop runs every 10 minutes
		must(fleet.Advance(10 * time.Minute))
		c.reactivePolicy()
	}
	c.auditTrail("cloud-1")

	fmt.Println("\nScenario 2: ready node too young")
	c.provision("cloud-2")
	c.healthTick("cloud-2")
	c.tryDecommission("cloud-2", "manual")

	fmt.Println("\nScenario 3: node has containers")
	c.provision("cloud-3")
	c.healthTick("cloud-3")
	for _, id := range []string{"mc-a", "mc-b"} {
		_, err := fleet.AddContainer("cloud-3", id, 2048)
		must(err)
	}
	must(fleet.Advance(time.Hour))
	c.tryDecommission("cloud-3", "consolidation_policy")

	fmt.Println("\nScenario 4: system nodes are protected")
	for _, id := range []string{"local-node", "proxy-node"} {
		must(fleet.RegisterSystemNode(id, 0))
		c.tryDecommission(id, "manual")
	}

	stats, err := fleet.AuditStats()
	must(err)
	vms := make([]string, 0, len(c.provider.vms))
	for id := range c.provider.vms {
		vms = append(vms, id)
	}
	sort.Strings(vms)
	fmt.Printf("\nVMs still running at the provider: %v\n", vms)
	fmt.Printf("audit: %d recorded, %d rejected, %d succeeded, %d failed\n",
		stats.TotalRecorded, stats.ByResult[lifecycle.ResultRejected], stats.ByResult[lifecycle.ResultSuccess], stats.ByResult[lifecycle.ResultFailed])
}

func must(err error) {
	if err != nil {
		log.SetOutput(os.Stderr)
		log.Fatal(err)
	}
}
