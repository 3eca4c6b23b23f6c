//! Property tests: random sequences of every fleet operation, checking after each step that
//! - a node never enters draining or decommissioned with containers, reservations or holds;
//! - decommissioned is terminal;
//! - every decommission outcome has exactly one node_decommission audit entry;
//! - the ring never exceeds its capacity and retained + evicted == recorded.

use node_lifecycle::*;
use proptest::prelude::*;
use std::time::Duration;

const NODES: usize = 4;
const CAPACITY: usize = 16;

#[derive(Clone, Debug)]
enum Op {
    Register(usize, u8),
    Transition(usize, u32),
    Health(usize, bool),
    Add(usize, u8),
    Remove(usize, u8),
    Reserve(usize, u8),
    Release(usize, u8),
    Confirm(usize, u8),
    Hold(usize, u8),
    Unhold(usize, u8),
    Sync(usize, Vec<u8>),
    Advance(u16),
    Begin(usize),
    Complete(usize),
    Fail(usize),
    Cancel(usize),
    Tick,
    FinishRestore,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NODES;
    prop_oneof![
        (n.clone(), 0u8..4).prop_map(|(i, o)| Op::Register(i, o)),
        (n.clone(), 0u32..9).prop_map(|(i, s)| Op::Transition(i, s)),
        (n.clone(), any::<bool>()).prop_map(|(i, b)| Op::Health(i, b)),
        (n.clone(), 0u8..3).prop_map(|(i, c)| Op::Add(i, c)),
        (n.clone(), 0u8..3).prop_map(|(i, c)| Op::Remove(i, c)),
        (n.clone(), 0u8..3).prop_map(|(i, c)| Op::Reserve(i, c)),
        (n.clone(), 0u8..3).prop_map(|(i, c)| Op::Release(i, c)),
        (n.clone(), 0u8..3).prop_map(|(i, c)| Op::Confirm(i, c)),
        (n.clone(), 0u8..2).prop_map(|(i, h)| Op::Hold(i, h)),
        (n.clone(), 0u8..2).prop_map(|(i, h)| Op::Unhold(i, h)),
        (n.clone(), proptest::collection::vec(0u8..3, 0..3)).prop_map(|(i, v)| Op::Sync(i, v)),
        (0u16..45).prop_map(Op::Advance),
        n.clone().prop_map(Op::Begin),
        (0usize..6).prop_map(Op::Complete),
        (0usize..6).prop_map(Op::Fail),
        (0usize..6).prop_map(Op::Cancel),
        Just(Op::Tick),
        Just(Op::FinishRestore),
    ]
}

fn id(i: usize) -> String {
    format!("node-{i}")
}

#[derive(Default)]
struct Expected {
    rejected_or_failed_begin: u64,
    started: u64,
    completed: u64,
    failed: u64,
    /// Cancels of a ticket whose node kept its state (unhealthy): they record a
    /// node_decommission entry instead of a lifecycle transition.
    cancelled_in_place: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_sequences(ops in proptest::collection::vec(op(), 1..150)) {
        let fleet = Fleet::with_manual_clock(
            FleetOptions { audit_capacity: CAPACITY, ..Default::default() },
            Timestamp(0),
        ).unwrap();
        let mut tickets: Vec<DecommissionTicket> = Vec::new();
        let mut expected = Expected::default();
        for op in ops {
            let before: Vec<NodeInfo> = fleet.nodes().unwrap();
            match op {
                Op::Register(i, o) => {
                    let spec = match o {
                        0 => NodeSpec::cloud(id(i), 4096),
                        1 => NodeSpec::system(id(i), 4096),
                        2 => NodeSpec::dedicated(id(i), 4096),
                        _ => NodeSpec::recovered(id(i), 4096),
                    };
                    let _ = fleet.register(spec);
                }
                Op::Transition(i, s) => {
                    if let Some(s) = LifecycleState::from_u32(s) {
                        let _ = fleet.transition(&id(i), s, "random");
                    }
                }
                Op::Health(i, ok) => { let _ = fleet.report_health(&id(i), ok); }
                Op::Add(i, c) => { let _ = fleet.add_container(&id(i), &format!("c{c}"), 512); }
                Op::Remove(i, c) => { let _ = fleet.remove_container(&id(i), &format!("c{c}")); }
                Op::Reserve(i, c) => { let _ = fleet.reserve(&id(i), &format!("c{c}"), 512); }
                Op::Release(i, c) => { let _ = fleet.release_reservation(&id(i), &format!("c{c}")); }
                Op::Confirm(i, c) => { let _ = fleet.confirm_reservation(&id(i), &format!("c{c}")); }
                Op::Hold(i, h) => { let _ = fleet.place_hold(&id(i), &format!("h{h}"), ""); }
                Op::Unhold(i, h) => { let _ = fleet.release_hold(&id(i), &format!("h{h}")); }
                Op::Sync(i, cs) => {
                    let list: Vec<(String, u64)> = cs.iter().map(|c| (format!("c{c}"), 256)).collect();
                    let _ = fleet.sync_containers(&id(i), &list);
                }
                Op::Advance(m) => { fleet.advance_clock(Duration::from_secs(60 * m as u64)).unwrap(); }
                Op::Begin(i) => match fleet.begin_decommission(&id(i), "reactive_policy") {
                    Ok(t) => { expected.started += 1; tickets.push(t) }
                    Err(Error::Rejected { .. }) | Err(Error::NodeNotFound(_)) => expected.rejected_or_failed_begin += 1,
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                },
                Op::Complete(k) => if let Some(t) = tickets.get(k) {
                    if fleet.complete_decommission(t).is_ok() { expected.completed += 1; }
                },
                Op::Fail(k) => if let Some(t) = tickets.get(k) {
                    if fleet.fail_decommission(t, b"provider error").is_ok() { expected.failed += 1; }
                },
                Op::Cancel(k) => if let Some(t) = tickets.get(k) {
                    // A ticketed node is draining, or unhealthy (begin keeps an unhealthy node's
                    // state): only the latter is still unhealthy after the cancel.
                    if let Ok(LifecycleState::Unhealthy) = fleet.cancel_decommission(t, "random") {
                        expected.cancelled_in_place += 1;
                    }
                },
                Op::Tick => { fleet.tick().unwrap(); }
                Op::FinishRestore => { fleet.finish_restore().unwrap(); }
            }

            let after = fleet.nodes().unwrap();
            for n in &after {
                let old = before.iter().find(|o| o.id == n.id);
                let occupied = !n.containers.is_empty() || !n.claims.is_empty() || !n.holds.is_empty();
                for entered in [LifecycleState::Draining, LifecycleState::Decommissioned] {
                    if n.state == entered && old.is_some_and(|o| o.state != entered) {
                        prop_assert!(!occupied, "{} entered {entered} occupied: {n:?}", n.id);
                        prop_assert!(
                            n.origin == NodeOrigin::Cloud || n.origin == NodeOrigin::Recovered,
                            "protected node {} entered {entered}", n.id
                        );
                    }
                }
                if let Some(o) = old {
                    if o.state == LifecycleState::Decommissioned {
                        prop_assert_eq!(n.state, LifecycleState::Decommissioned);
                    }
                    prop_assert!(n.total_containers_ever >= o.total_containers_ever);
                }
                prop_assert_eq!(n.allocated_ram_mb, n.containers.values().sum::<u64>());
                prop_assert_eq!(n.reserved_ram_mb, n.claims.iter().map(|c| c.ram_mb).sum::<u64>());
            }
            let s = fleet.audit_stats().unwrap();
            prop_assert!(s.retained as usize <= CAPACITY);
            prop_assert_eq!(s.retained + s.evicted, s.total_recorded);
        }
        // Exactly one node_decommission entry per outcome. Begins (started, rejected or failed),
        // fails, completes and cancels of an unhealthy node are the only producers of
        // node_decommission entries. Every count comes from the calls' own results, never from
        // the ring: the ring evicts, so what it retains cannot be counted exactly.
        let s = fleet.audit_stats().unwrap();
        prop_assert_eq!(
            s.by_action[&AuditAction::NodeDecommission],
            expected.rejected_or_failed_begin
                + expected.started
                + expected.completed
                + expected.failed
                + expected.cancelled_in_place
        );
    }
}
