// Package metrics exports a lifecycle.Fleet to Prometheus. Register the collector yourself:
//
//	prometheus.MustRegister(metrics.New(fleet))
//
// Gauges (nodes by state and health, audit ring size) are read at scrape time. Counters and the
// time-in-state histogram are derived from the audit log: every scrape reads the entries since
// the previous one through the sequence cursor, so nothing is counted twice; entries the ring
// evicted between two scrapes are counted in nl_audit_entries_missed_total.
package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// Buckets of nl_node_time_in_state_seconds: 1 minute to 1 week.
var timeInStateBuckets = []float64{60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600}

var (
	descNodes       = prometheus.NewDesc("nl_nodes", "Nodes by lifecycle state and health.", []string{"state", "health"}, nil)
	descTransitions = prometheus.NewDesc("nl_lifecycle_transitions_total", "Lifecycle transitions by from and to state.", []string{"from", "to"}, nil)
	descRejections  = prometheus.NewDesc("nl_verdict_rejections_total", "Decommissions and transitions refused by the safety rules, by primary reason.", []string{"reason"}, nil)
	descDecommiss   = prometheus.NewDesc("nl_decommissions_total", "Decommission protocol steps by outcome (started, completed, cancelled, rejected, failed) and decision_by.", []string{"result", "decision_by"}, nil)
	descTimeIn      = prometheus.NewDesc("nl_node_time_in_state_seconds", "How long nodes stayed in a state before leaving it.", []string{"state"}, nil)
	descRetained    = prometheus.NewDesc("nl_audit_ring_entries", "Audit entries retained in the ring.", nil, nil)
	descCapacity    = prometheus.NewDesc("nl_audit_ring_capacity", "Capacity of the audit ring.", nil, nil)
	descRecorded    = prometheus.NewDesc("nl_audit_entries_recorded_total", "Audit entries ever recorded.", nil, nil)
	descEvicted     = prometheus.NewDesc("nl_audit_entries_evicted_total", "Audit entries evicted from the ring.", nil, nil)
	descMissed      = prometheus.NewDesc("nl_audit_entries_missed_total", "Audit entries evicted before this collector saw them (its counters miss them).", nil, nil)
	descScrapeErr   = prometheus.NewDesc("nl_collector_errors_total", "Scrapes that could not read the fleet.", nil, nil)
	descCordoned    = prometheus.NewDesc("nl_nodes_cordoned", "Nodes with at least one cordon (no new containers).", nil, nil)
	descCordons     = prometheus.NewDesc("nl_cordons", "Cordons on all nodes.", nil, nil)
	descClaims      = prometheus.NewDesc("nl_claims_pending", "Claims and reservations not yet confirmed or released.", nil, nil)
	descHolds       = prometheus.NewDesc("nl_holds", "Holds on all nodes.", nil, nil)
	descContainers  = prometheus.NewDesc("nl_containers", "Running containers known to the fleet.", nil, nil)
	descInFlight    = prometheus.NewDesc("nl_decommissions_in_progress", "Nodes with an outstanding decommission ticket.", nil, nil)
	descRAM         = prometheus.NewDesc("nl_ram_bytes", "RAM over all nodes by kind (total, allocated, reserved).", []string{"kind"}, nil)
	descExpired     = prometheus.NewDesc("nl_claims_expired_total", "Claims and reservations released by their TTL.", nil, nil)
)

type pair struct{ a, b string }

type histogram struct {
	count   uint64
	sum     float64
	buckets []uint64
}

// Collector is a prometheus.Collector over one fleet. Safe for concurrent scrapes.
type Collector struct {
	fleet *lifecycle.Fleet

	mu          sync.Mutex
	cursor      uint64
	transitions map[pair]uint64
	rejections  map[string]uint64
	decommiss   map[pair]uint64
	timeIn      map[string]*histogram
	entered     map[string]float64 // node -> unix seconds it entered its current state
	missed      uint64
	errors      uint64
	expired     uint64
}

// New returns a collector for fleet. It counts from the fleet's first retained entry.
func New(fleet *lifecycle.Fleet) *Collector {
	return &Collector{
		fleet:       fleet,
		transitions: map[pair]uint64{},
		rejections:  map[string]uint64{},
		decommiss:   map[pair]uint64{},
		timeIn:      map[string]*histogram{},
		entered:     map[string]float64{},
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodes, descTransitions, descRejections, descDecommiss, descTimeIn, descRetained, descCapacity, descRecorded, descEvicted, descMissed, descScrapeErr,
		descCordoned, descCordons, descClaims, descHolds, descContainers, descInFlight, descRAM, descExpired} {
		ch <- d
	}
}

// update folds the audit entries since the last scrape into the counters.
func (c *Collector) update() error {
	for {
		page, err := c.fleet.AuditSince(c.cursor, 1000)
		if err != nil {
			return err
		}
		c.missed += page.Missed
		for _, e := range page.Entries {
			c.observe(e)
		}
		c.cursor = page.NextCursor
		if len(page.Entries) < 1000 {
			return nil
		}
	}
}

func (c *Collector) observe(e lifecycle.AuditEntry) {
	at := float64(e.Time.UnixMilli()) / 1000
	if e.Result == lifecycle.ResultRejected && e.ReasonCode != 0 {
		c.rejections[e.ReasonCode.String()]++
	}
	if e.Action == lifecycle.ActionReservationExpired {
		c.expired++
	}
	if e.Action == lifecycle.ActionNodeDecommission {
		c.decommiss[pair{decommissionOutcome(e), e.DecisionBy}]++
	}
	if e.Action == lifecycle.ActionNodeProvision && e.Result == lifecycle.ResultSuccess && e.ToState != nil {
		c.entered[e.NodeID] = at // a registration: the node entered its first state
		return
	}
	if e.Action != lifecycle.ActionLifecycleTransition || e.Result != lifecycle.ResultSuccess || e.FromState == nil || e.ToState == nil {
		return
	}
	c.transitions[pair{e.FromState.String(), e.ToState.String()}]++
	if since, ok := c.entered[e.NodeID]; ok {
		h := c.timeIn[e.FromState.String()]
		if h == nil {
			h = &histogram{buckets: make([]uint64, len(timeInStateBuckets))}
			c.timeIn[e.FromState.String()] = h
		}
		d := at - since
		h.count++
		h.sum += d
		for i, b := range timeInStateBuckets {
			if d <= b {
				h.buckets[i]++
			}
		}
	}
	if *e.ToState == lifecycle.StateDecommissioned {
		delete(c.entered, e.NodeID) // bounded by the live nodes
	} else {
		c.entered[e.NodeID] = at
	}
}

// decommissionOutcome names the protocol step a node_decommission entry records: the library
// records a success entry when a decommission starts, when it completes and when an unhealthy
// node's decommission is cancelled.
func decommissionOutcome(e lifecycle.AuditEntry) string {
	if e.Result != lifecycle.ResultSuccess {
		return e.Result.String()
	}
	for _, step := range []string{"started", "completed", "cancelled"} {
		if strings.HasPrefix(e.Reason, "decommission_"+step) {
			return step
		}
	}
	return "success"
}

// Collect reads the fleet and sends every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The gauges come from one summary the library counts without copying any node, so a
	// scrape costs little at any fleet size.
	summary, err := c.fleet.Summary()
	if err == nil {
		err = c.update()
	}
	if err != nil {
		c.errors++
		ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.CounterValue, float64(c.errors))
		return
	}
	counts := map[pair]int{}
	for _, row := range summary.ByStateAndHealth {
		counts[pair{row.State.String(), row.Health.String()}] += row.Nodes
	}
	for _, g := range []struct {
		d *prometheus.Desc
		v int
	}{
		{descCordoned, summary.CordonedNodes}, {descCordons, summary.Cordons}, {descClaims, summary.Claims},
		{descHolds, summary.Holds}, {descContainers, summary.Containers}, {descInFlight, summary.DecommissionsInProgress},
	} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, float64(g.v))
	}
	for kind, v := range map[string]int{"total": summary.TotalRAMMB, "allocated": summary.AllocatedRAMMB, "reserved": summary.ReservedRAMMB} {
		ch <- prometheus.MustNewConstMetric(descRAM, prometheus.GaugeValue, float64(v)*(1<<20), kind)
	}
	ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(c.expired))
	for _, s := range []lifecycle.State{lifecycle.StateProvisioning, lifecycle.StateInitializing, lifecycle.StateReady, lifecycle.StateActive, lifecycle.StateIdle, lifecycle.StateDraining, lifecycle.StateDecommissioned, lifecycle.StateUnhealthy} {
		for _, h := range []lifecycle.Health{lifecycle.HealthUnknown, lifecycle.HealthHealthy, lifecycle.HealthUnhealthy} {
			ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(counts[pair{s.String(), h.String()}]), s.String(), h.String())
		}
	}
	for k, v := range c.transitions {
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(v), k.a, k.b)
	}
	for k, v := range c.rejections {
		ch <- prometheus.MustNewConstMetric(descRejections, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range c.decommiss {
		ch <- prometheus.MustNewConstMetric(descDecommiss, prometheus.CounterValue, float64(v), k.a, k.b)
	}
	for state, h := range c.timeIn {
		buckets := make(map[float64]uint64, len(timeInStateBuckets))
		for i, b := range timeInStateBuckets {
			buckets[b] = h.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(descTimeIn, h.count, h.sum, buckets, state)
	}
	if stats, err := c.fleet.AuditStats(); err == nil {
		ch <- prometheus.MustNewConstMetric(descRetained, prometheus.GaugeValue, float64(stats.Retained))
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(stats.Capacity))
		ch <- prometheus.MustNewConstMetric(descRecorded, prometheus.CounterValue, float64(stats.TotalRecorded))
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(stats.Evicted))
	}
	ch <- prometheus.MustNewConstMetric(descMissed, prometheus.CounterValue, float64(c.missed))
	ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.CounterValue, float64(c.errors))
}
