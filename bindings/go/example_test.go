package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

func ExampleFleet_BeginDecommission() {
	fleet, _ := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	defer fleet.Close()
	_ = fleet.RegisterCloudNode("worker-1", 8192)
	_, _ = fleet.Transition("worker-1", lifecycle.StateInitializing, "cloud_init_started")
	_, _ = fleet.Transition("worker-1", lifecycle.StateReady, "cloud_init_completed")

	_, err := fleet.BeginDecommission("worker-1", "reactive_policy")
	var e *lifecycle.Error
	if errors.As(err, &e) {
		fmt.Println(e.Reason(), "- retry after", e.Verdict.RetryAfter.UTC().Format(time.TimeOnly))
	}
	// Output: ready_too_young - retry after 00:30:00
}

func ExampleFleet_Decommission() {
	fleet, _ := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	defer fleet.Close()
	_ = fleet.RegisterCloudNode("worker-1", 8192)
	_, _ = fleet.Transition("worker-1", lifecycle.StateInitializing, "cloud_init_started")
	_, _ = fleet.Transition("worker-1", lifecycle.StateReady, "cloud_init_completed")
	_, _ = fleet.AddContainer("worker-1", "mc-1", 2048)
	_, _ = fleet.RemoveContainer("worker-1", "mc-1")
	_ = fleet.Advance(30 * time.Minute)

	_, err := fleet.Decommission(context.Background(), "worker-1", "reactive_policy",
		func(ctx context.Context, nodeID string) error {
			fmt.Println("deleting", nodeID, "at the provider")
			return nil
		})
	node, _ := fleet.Node("worker-1")
	fmt.Println(err, node.State)
	// Output:
	// deleting worker-1 at the provider
	// <nil> decommissioned
}

func ExampleFleet_Reserve() {
	fleet, _ := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	defer fleet.Close()
	_ = fleet.RegisterCloudNode("worker-1", 8192)
	_, _ = fleet.Transition("worker-1", lifecycle.StateInitializing, "cloud_init_started")
	_, _ = fleet.Transition("worker-1", lifecycle.StateReady, "cloud_init_completed")

	// Placement reserves first; the reservation protects the node from deletion.
	_, _ = fleet.Reserve("worker-1", "mc-7", 4096)
	v, _ := fleet.Evaluate("worker-1")
	fmt.Println(v.Allowed, v.Reasons)
	out, _ := fleet.ConfirmReservation("worker-1", "mc-7")
	fmt.Println(out.State, out.CurrentContainers)
	// Output:
	// false [has_reservations ready_too_young]
	// active 1
}

func ExampleFleet_AuditSince() {
	fleet, _ := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	defer fleet.Close()
	_ = fleet.RegisterSystemNode("local-node", 0)
	_, _ = fleet.BeginDecommission("local-node", "manual")

	// A sink reads everything after its cursor and remembers the next one.
	page, _ := fleet.AuditSince(0, 100)
	for _, e := range page.Entries {
		fmt.Println(e.Seq, e.Action, e.Result, e.Reason)
	}
	fmt.Println("next cursor", page.NextCursor, "missed", page.Missed)
	// Output:
	// 1 node_provision success registered_system_node
	// 2 node_decommission rejected cannot decommission system node
	// next cursor 2 missed 0
}
