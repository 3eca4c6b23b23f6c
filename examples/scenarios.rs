//! Plays the four scenarios of SPEC.md on a manual clock and prints a readable trace of states,
//! verdicts and audit entries. Run: `cargo run --example scenarios`.

use node_lifecycle::*;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

struct Trace<'a> {
    fleet: &'a Fleet,
    start: Timestamp,
}

impl Trace<'_> {
    fn clock(&self) -> String {
        let ms = self.fleet.now().millis_since(self.start);
        format!("t+{:>7}", safety_duration(ms))
    }

    fn step(&self, what: &str) {
        println!("  {}  {what}", self.clock());
    }

    fn state(&self, node: &str) {
        let n = self.fleet.node(node).expect("node exists");
        self.step(&format!(
            "{node}: state={} health={} containers={} total_ever={}",
            n.state,
            n.health,
            n.containers.len(),
            n.total_containers_ever
        ));
    }

    fn decommission(&self, node: &str, by: &str) {
        match self.fleet.begin_decommission(node, by) {
            Ok(ticket) => {
                self.step(&format!(
                    "{by} begins decommission of {node}: ticket #{}",
                    ticket.id
                ));
                self.step("  ... the cloud provider deletes the VM ...");
                self.fleet
                    .complete_decommission(&ticket)
                    .expect("a fresh ticket completes");
                self.step(&format!("decommission of {node} completed"));
            }
            Err(e) => self.step(&format!(
                "{by} decommission of {node} REJECTED [code {}]: {}",
                e.code(),
                e.verdict().map_or(e.to_string(), Verdict::message)
            )),
        }
    }

    fn audit(&self, node: &str) {
        println!("    audit trail of {node}:");
        for e in self.fleet.audit_by_node(node, 100).unwrap() {
            let states = match (e.from_state, e.to_state) {
                (Some(a), Some(b)) if a != b => format!(" {a} -> {b}"),
                _ => String::new(),
            };
            let by = if e.decision_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", e.decision_by)
            };
            println!(
                "      #{:<3} {:<21} {:<8}{states}{by}  ({})",
                e.seq,
                e.action.as_str(),
                e.result.as_str(),
                e.reason
            );
        }
    }
}

fn safety_duration(ms: u64) -> String {
    node_lifecycle::safety::human_duration(ms)
}

fn main() -> Result<()> {
    let fleet = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(1_767_225_600_000))?;
    let t = Trace {
        fleet: &fleet,
        start: fleet.now(),
    };

    println!("Scenario 1: new node -> active -> idle -> decommission");
    fleet.register(
        NodeSpec::cloud("cloud-1", 8192)
            .instance_type("cx32")
            .hourly_cost_eur(0.0119),
    )?;
    t.state("cloud-1");
    fleet.transition(
        "cloud-1",
        LifecycleState::Initializing,
        "cloud_init_started",
    )?;
    fleet.advance_clock(3 * MIN)?;
    fleet.transition("cloud-1", LifecycleState::Ready, "cloud_init_completed")?;
    t.state("cloud-1");
    fleet.add_container("cloud-1", "mc-survival", 2048)?;
    t.state("cloud-1");
    fleet.advance_clock(90 * MIN)?;
    fleet.remove_container("cloud-1", "mc-survival")?;
    t.state("cloud-1");
    fleet.advance_clock(10 * MIN)?;
    t.decommission("cloud-1", "reactive_policy");
    fleet.advance_clock(20 * MIN)?;
    t.step(&format!(
        "verdict now: {}",
        fleet.evaluate("cloud-1")?.message()
    ));
    t.decommission("cloud-1", "reactive_policy");
    t.state("cloud-1");
    t.audit("cloud-1");

    println!("\nScenario 2: ready node too young");
    fleet.register(NodeSpec::cloud("cloud-2", 8192))?;
    fleet.transition(
        "cloud-2",
        LifecycleState::Initializing,
        "cloud_init_started",
    )?;
    fleet.transition("cloud-2", LifecycleState::Ready, "cloud_init_completed")?;
    t.state("cloud-2");
    t.decommission("cloud-2", "reactive_policy");
    t.audit("cloud-2");

    println!("\nScenario 3: node has containers");
    fleet.register(NodeSpec::cloud("cloud-3", 16384))?;
    fleet.transition(
        "cloud-3",
        LifecycleState::Initializing,
        "cloud_init_started",
    )?;
    fleet.transition("cloud-3", LifecycleState::Ready, "cloud_init_completed")?;
    fleet.add_container("cloud-3", "mc-1", 4096)?;
    fleet.add_container("cloud-3", "mc-2", 4096)?;
    fleet.advance_clock(60 * MIN)?;
    t.state("cloud-3");
    t.decommission("cloud-3", "consolidation_policy");
    t.audit("cloud-3");

    println!("\nScenario 4: system nodes are protected");
    fleet.register(NodeSpec::system("local-node", 0))?;
    fleet.register(NodeSpec::system("proxy-node", 0))?;
    t.decommission("local-node", "manual");
    t.decommission("proxy-node", "manual");
    t.audit("local-node");

    let s = fleet.audit_stats().unwrap();
    println!(
        "\naudit: {} recorded, {} retained, {} evicted; {} rejected, {} succeeded",
        s.total_recorded,
        s.retained,
        s.evicted,
        s.by_result[&AuditResult::Rejected],
        s.by_result[&AuditResult::Success]
    );
    Ok(())
}
