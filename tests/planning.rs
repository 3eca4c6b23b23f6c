//! Planning: projection and consolidation, with hand-computed expectations and a property test.

use node_lifecycle::planning::*;
use node_lifecycle::*;
use proptest::prelude::*;
use std::time::Duration;

const MIN: u64 = 60_000;
const NOW: Moment = Moment {
    wall: Timestamp(10_000 * MIN as i64),
    mono: 10_000 * MIN as i64,
};

fn node(id: &str, cost: f64, ram: u64, containers: &[(&str, u64, bool)]) -> PlanNode {
    PlanNode {
        id: id.into(),
        origin: NodeOrigin::Cloud,
        state: if containers.is_empty() {
            LifecycleState::Idle
        } else {
            LifecycleState::Active
        },
        cordoned: false,
        instance_type: "cx".into(),
        total_ram_mb: ram,
        reserved_ram_mb: 0,
        hourly_cost_eur: cost,
        age_ms: 600 * MIN,
        idle_for_ms: if containers.is_empty() { 60 * MIN } else { 0 },
        containers: containers
            .iter()
            .map(|(id, ram, m)| PlanContainer {
                id: (*id).into(),
                ram_mb: *ram,
                migratable: *m,
            })
            .collect(),
        blocked_after_moves: None,
    }
}

fn input(nodes: Vec<PlanNode>) -> PlanInput {
    PlanInput {
        nodes,
        pending_placements: 0,
        last_consolidation_at: None,
    }
}

fn plan(i: &PlanInput) -> ConsolidationPlan {
    plan_consolidation(i, &ConsolidationPolicy::default(), NOW).unwrap()
}

fn removed(p: &ConsolidationPlan) -> Vec<&str> {
    p.remove.iter().map(|r| r.node_id.as_str()).collect()
}

fn kept_reason(p: &ConsolidationPlan, id: &str) -> KeepReason {
    p.kept
        .iter()
        .find(|k| k.node_id == id)
        .unwrap_or_else(|| panic!("{id} not kept"))
        .reason
}

#[test]
fn three_idle_nodes_keep_the_cheapest() {
    let p = plan(&input(vec![
        node("a", 0.10, 8192, &[]),
        node("b", 0.05, 8192, &[]),
        node("c", 0.20, 8192, &[]),
    ]));
    assert!(p.worthwhile, "{p:?}");
    assert_eq!(removed(&p), vec!["c", "a"], "most expensive first");
    assert!((p.savings_eur_per_hour - 0.30).abs() < 1e-12);
    assert_eq!(kept_reason(&p, "b"), KeepReason::MinWorkerNodes);
    assert!(p.moves.is_empty());
}

#[test]
fn two_empty_nodes_keep_one() {
    let p = plan(&input(vec![
        node("a", 0.10, 4096, &[]),
        node("b", 0.10, 4096, &[]),
    ]));
    assert!(p.worthwhile);
    assert_eq!(
        removed(&p),
        vec!["a"],
        "equal cost and idle time: the id decides"
    );
    assert_eq!(kept_reason(&p, "b"), KeepReason::MinWorkerNodes);
}

#[test]
fn savings_below_threshold_is_no_plan() {
    let p = plan(&input(vec![
        node("a", 0.05, 4096, &[]),
        node("b", 0.05, 4096, &[]),
    ]));
    assert!(!p.worthwhile);
    assert_eq!(p.refusal, Some(PlanRefusal::SavingsBelowThreshold));
    assert_eq!(
        p.refusal_detail,
        "saves 0.0500 EUR/h, below the minimum of 0.1000 EUR/h"
    );
    assert!(p.remove.is_empty() && p.moves.is_empty());
    assert_eq!(kept_reason(&p, "a"), KeepReason::PlanRefused);
    assert_eq!(p.kept.len(), 2);
}

#[test]
fn pending_placements_and_cooldown_refuse_the_plan() {
    let mut i = input(vec![node("a", 1.0, 4096, &[]), node("b", 1.0, 4096, &[])]);
    i.pending_placements = 2;
    let p = plan(&i);
    assert_eq!(p.refusal, Some(PlanRefusal::PendingPlacements));
    assert_eq!(p.refusal_detail, "2 placements are pending");
    i.pending_placements = 0;
    i.last_consolidation_at = Some(Moment::at(Timestamp(NOW.wall.0 - 60 * MIN as i64)));
    let p = plan(&i);
    assert_eq!(p.refusal, Some(PlanRefusal::Cooldown));
    assert_eq!(
        p.refusal_detail,
        "last consolidation 1h0m0s ago, cooldown 2h0m0s"
    );
}

#[test]
fn utilisation_limit_keeps_nodes() {
    // 800 of 2000 MB used (40%); removing either node gives 80% > 70%.
    let p = plan(&input(vec![
        node("a", 1.0, 1000, &[("x", 400, true)]),
        node("b", 1.0, 1000, &[("y", 400, true)]),
    ]));
    assert_eq!(p.refusal, Some(PlanRefusal::NothingToRemove));
    assert_eq!(kept_reason(&p, "a"), KeepReason::UtilisationLimit);
    assert_eq!(
        p.kept[0].detail,
        "utilisation would reach 80.0% (max 70.0%)"
    );
    assert!((p.utilisation_before - 0.4).abs() < 1e-12);
}

#[test]
fn non_migratable_container_pins_its_node() {
    let p = plan(&input(vec![
        node("a", 0.30, 8192, &[("x", 1000, false)]),
        node("b", 0.20, 8192, &[("y", 1000, true)]),
        node("c", 0.05, 8192, &[]),
    ]));
    assert!(p.worthwhile, "{p:?}");
    assert_eq!(kept_reason(&p, "a"), KeepReason::NonMigratableContainer);
    assert_eq!(removed(&p), vec!["b", "c"]);
    // y goes to the best fit: a has 7192 MB free, c 8192.
    assert_eq!(
        p.moves,
        vec![ContainerMove {
            container_id: "y".into(),
            ram_mb: 1000,
            from_node: "b".into(),
            to_node: "a".into()
        }]
    );
    assert!((p.savings_eur_per_hour - 0.25).abs() < 1e-12);
    assert!((p.utilisation_after - 2000.0 / 8192.0).abs() < 1e-12);
}

#[test]
fn protected_young_and_unsafe_nodes_stay() {
    let mut sys = node("sys", 5.0, 8192, &[]);
    sys.origin = NodeOrigin::System;
    let mut young = node("young", 5.0, 8192, &[]);
    young.age_ms = 10 * MIN;
    let mut held = node("held", 5.0, 8192, &[]);
    held.blocked_after_moves = Some(ReasonCode::HasHolds);
    let mut fresh_idle = node("fresh", 5.0, 8192, &[]);
    fresh_idle.idle_for_ms = 5 * MIN;
    let p = plan(&input(vec![
        sys,
        young,
        held,
        fresh_idle,
        node("w", 0.01, 8192, &[]),
    ]));
    assert_eq!(kept_reason(&p, "sys"), KeepReason::NotACandidate);
    assert_eq!(kept_reason(&p, "young"), KeepReason::TooYoung);
    assert_eq!(kept_reason(&p, "held"), KeepReason::FailsSafety);
    assert_eq!(kept_reason(&p, "fresh"), KeepReason::NotIdleLongEnough);
    // Only "w" could go, and it saves 0.01 EUR/h: the plan is refused and "w" stays too.
    assert_eq!(p.refusal, Some(PlanRefusal::SavingsBelowThreshold));
    assert!(removed(&p).is_empty());
    assert_eq!(kept_reason(&p, "w"), KeepReason::PlanRefused);
    assert_eq!(p.kept.len(), 5);
}

#[test]
fn bad_policy_is_refused() {
    let bad = ConsolidationPolicy {
        max_utilisation_after: 1.5,
        ..Default::default()
    };
    assert!(
        matches!(plan_consolidation(&input(vec![]), &bad, NOW), Err(Error::InvalidSetting { field, .. }) if field == "max_utilisation_after")
    );
    let bad = ConsolidationPolicy {
        min_savings_eur_per_hour: f64::NAN,
        ..Default::default()
    };
    assert!(
        matches!(plan_consolidation(&input(vec![]), &bad, NOW), Err(Error::InvalidSetting { field, .. }) if field == "min_savings_eur_per_hour")
    );
}

// ----- through the fleet ---------------------------------------------------------------------

fn fleet_with_idle_nodes() -> Fleet {
    let f = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap();
    for (id, cost) in [("cheap", 0.05), ("mid", 0.10), ("dear", 0.20)] {
        f.register(
            NodeSpec::cloud(id, 8192)
                .hourly_cost_eur(cost)
                .instance_type("cx32"),
        )
        .unwrap();
        f.transition(id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        f.transition(id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
        f.add_container(id, &format!("{id}-c"), 1024).unwrap();
    }
    f.advance_clock(Duration::from_secs(3600)).unwrap();
    f
}

#[test]
fn fleet_plan_checks_safety_and_is_deterministic() {
    let f = fleet_with_idle_nodes();
    f.place_hold("dear", "world:srv-1", "").unwrap();
    let req = ConsolidationRequest::default();
    let p = f.consolidation_plan(&req).unwrap();
    assert_eq!(kept_reason(&p, "dear"), KeepReason::FailsSafety);
    // The node that must stay anyway takes the containers, so both others can go.
    assert_eq!(removed(&p), vec!["mid", "cheap"]);
    let moves: Vec<(&str, &str)> = p
        .moves
        .iter()
        .map(|m| (m.container_id.as_str(), m.to_node.as_str()))
        .collect();
    assert_eq!(moves, vec![("mid-c", "dear"), ("cheap-c", "dear")]);
    let again = f.consolidation_plan(&req).unwrap();
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    // Pending reservations refuse the plan.
    f.reserve("cheap", "incoming", 100).unwrap();
    assert_eq!(
        f.consolidation_plan(&req).unwrap().refusal,
        Some(PlanRefusal::PendingPlacements)
    );
}

#[test]
fn migration_is_atomic_and_audited() {
    let f = fleet_with_idle_nodes();
    f.record_migration("mid-c", "mid", "cheap", "consolidation_policy")
        .unwrap();
    assert_eq!(f.node("mid").unwrap().state, LifecycleState::Idle);
    assert_eq!(f.node("cheap").unwrap().containers.len(), 2);
    let e = f
        .audit_by_action(AuditAction::ContainerMigrate, 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (
            e.node_id.as_str(),
            e.container_id.as_deref(),
            e.reason.as_str()
        ),
        ("mid", Some("mid-c"), "moved to cheap")
    );
    assert_eq!(e.decision_by, "consolidation_policy");
    // Refusals change nothing.
    let before = f.nodes().unwrap();
    assert!(
        matches!(f.record_migration("nope", "mid", "cheap", "x"), Err(Error::InvalidArgument(m)) if m.contains("does not run on node"))
    );
    assert!(
        matches!(f.record_migration("cheap-c", "cheap", "cheap", "x"), Err(Error::InvalidArgument(m)) if m.contains("two different nodes"))
    );
    f.register(NodeSpec::cloud("booting", 0)).unwrap();
    let before_boot = f.nodes().unwrap();
    assert!(matches!(
        f.record_migration("cheap-c", "cheap", "booting", "x"),
        Err(Error::NotSchedulable { .. })
    ));
    assert_eq!(f.nodes().unwrap(), before_boot);
    assert_eq!(before.len() + 1, before_boot.len());
}

#[test]
fn projection_counts_capacity_coming_and_leaving() {
    let f = fleet_with_idle_nodes(); // three active nodes, 8192 MB each, 1024 MB used each
    f.register(NodeSpec::cloud("booting", 16384)).unwrap();
    f.reserve("cheap", "r", 1024).unwrap();
    let p = f.projection().unwrap();
    assert_eq!(p.now.nodes, 3);
    assert_eq!(
        (
            p.now.total_ram_mb,
            p.now.allocated_ram_mb,
            p.now.reserved_ram_mb
        ),
        (24576, 3072, 1024)
    );
    assert_eq!(p.now.free_ram_mb, 24576 - 4096);
    assert_eq!(
        (p.coming.nodes, p.coming.total_ram_mb, p.coming.free_ram_mb),
        (1, 16384, 16384)
    );
    assert_eq!(
        p.coming_nodes[0].ready_deadline_ms,
        Some(Timestamp(3_600_000 + 15 * 60_000))
    );
    assert!((p.utilisation_now - 4096.0 / 24576.0).abs() < 1e-12);
    assert!((p.utilisation_projected - 4096.0 / 40960.0).abs() < 1e-12);
    // 20480 free now + 16384 coming = 36864; a demand of 40000 needs 1 more 8 GB node.
    assert_eq!(p.additional_nodes_needed(40_000, 8192).unwrap(), 1);
    assert_eq!(p.additional_nodes_needed(36_864, 8192).unwrap(), 0);
    assert_eq!(p.additional_nodes_needed(36_865 + 8192, 8192).unwrap(), 2);
    assert!(
        matches!(p.additional_nodes_needed(1, 0), Err(Error::InvalidArgument(m)) if m.contains("node_ram_mb"))
    );
}

#[test]
fn containers_go_to_nodes_that_stay_rather_than_to_nodes_worth_removing() {
    // b and c are expensive; a is cheap and big. Best fit alone would put b's container on c
    // (least free RAM) and then remove the cheap node instead of c.
    let p = plan_consolidation(
        &input(vec![
            node("a", 0.02, 16384, &[("a1", 4096, true)]),
            node("b", 0.10, 8192, &[("b1", 1024, true)]),
            node("c", 0.10, 8192, &[("c1", 1024, true)]),
        ]),
        &ConsolidationPolicy {
            max_utilisation_after: 1.0,
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    assert_eq!(removed(&p), vec!["b", "c"]);
    assert!(p.moves.iter().all(|m| m.to_node == "a"));
    assert!((p.savings_eur_per_hour - 0.20).abs() < 1e-12);
}

#[test]
fn cordoned_nodes_may_be_removed_but_never_receive_containers() {
    let mut cordoned = node("c", 0.30, 8192, &[("c1", 1024, true)]);
    cordoned.cordoned = true;
    let p = plan(&input(vec![
        node("a", 0.05, 8192, &[("a1", 1024, true)]),
        node("b", 0.10, 8192, &[]),
        cordoned,
    ]));
    assert_eq!(removed(&p), vec!["c", "b"]);
    assert_eq!(p.moves.len(), 1);
    assert_eq!(p.moves[0].to_node, "a");
    // The cordoned node's capacity was never schedulable: the utilisation counts only a and b.
    assert!((p.utilisation_before - 1024.0 / 16384.0).abs() < 1e-12);
    assert!((p.utilisation_after - 2048.0 / 8192.0).abs() < 1e-12);
}

// ----- property ------------------------------------------------------------------------------

fn arb_node(i: usize) -> impl Strategy<Value = PlanNode> {
    (
        prop_oneof![4 => Just(NodeOrigin::Cloud), 1 => Just(NodeOrigin::System), 1 => Just(NodeOrigin::Dedicated)],
        1000u64..16000,
        0u32..100,
        0u64..120,
        0u64..120,
        proptest::collection::vec((1u64..3000, any::<bool>()), 0..4),
        proptest::option::weighted(0.15, Just(ReasonCode::HasHolds)),
        proptest::bool::weighted(0.2),
    )
        .prop_map(move |(origin, ram, cost_cents, age_min, idle_min, cs, blocked, cordoned)| {
            // Keep the containers that fit on the node, in order.
            let mut used = 0;
            let mut containers = Vec::new();
            for (k, (r, m)) in cs.into_iter().enumerate() {
                if used + r <= ram {
                    used += r;
                    containers.push(PlanContainer { id: format!("n{i}-c{k}"), ram_mb: r, migratable: m });
                }
            }
            PlanNode {
                id: format!("n{i}"),
                origin,
                state: if containers.is_empty() { LifecycleState::Idle } else { LifecycleState::Active },
                cordoned,
                instance_type: String::new(),
                total_ram_mb: ram,
                reserved_ram_mb: 0,
                hourly_cost_eur: cost_cents as f64 / 100.0,
                age_ms: age_min * MIN,
                idle_for_ms: if containers.is_empty() { idle_min * MIN } else { 0 },
                containers,
                blocked_after_moves: blocked,
            }
        })
}

fn arb_input() -> impl Strategy<Value = PlanInput> {
    (1usize..9)
        .prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>())
        .prop_map(input)
}

proptest! {
    #[test]
    fn plans_never_overfill_drop_or_remove_unsafe_nodes(i in arb_input()) {
        let policy = ConsolidationPolicy { min_savings_eur_per_hour: f64::MIN_POSITIVE, ..Default::default() };
        let p = plan_consolidation(&i, &policy, NOW).unwrap();
        let by_id = |id: &str| i.nodes.iter().find(|n| n.id == id).unwrap();
        let removed: Vec<&str> = p.remove.iter().map(|r| r.node_id.as_str()).collect();
        // Every node is either removed or kept, never both.
        prop_assert_eq!(removed.len() + p.kept.len(), i.nodes.len());
        for r in &removed {
            let n = by_id(r);
            prop_assert!(n.blocked_after_moves.is_none() && n.origin == NodeOrigin::Cloud);
            prop_assert!(!p.kept.iter().any(|k| k.node_id == *r));
            // Every container of a removed node moves exactly once, off that node.
            for c in &n.containers {
                prop_assert!(c.migratable);
                prop_assert_eq!(p.moves.iter().filter(|m| m.container_id == c.id && m.from_node == *r).count(), 1);
            }
        }
        for m in &p.moves {
            prop_assert!(removed.contains(&m.from_node.as_str()), "moves only leave removed nodes");
            prop_assert!(!removed.contains(&m.to_node.as_str()), "never onto a removed node");
            prop_assert!(!by_id(&m.to_node).cordoned, "never onto a cordoned node");
        }
        // No target is overfilled.
        for n in &i.nodes {
            let incoming: u64 = p.moves.iter().filter(|m| m.to_node == n.id).map(|m| m.ram_mb).sum();
            let own: u64 = n.containers.iter().map(|c| c.ram_mb).sum();
            prop_assert!(own + incoming <= n.total_ram_mb, "{} overfilled", n.id);
        }
        let savings: f64 = p.remove.iter().map(|r| r.hourly_cost_eur).sum();
        prop_assert_eq!(savings, p.savings_eur_per_hour);
        if !removed.is_empty() {
            let schedulable = |n: &&PlanNode| n.origin != NodeOrigin::System && n.state.is_schedulable() && !n.cordoned;
            let left = i.nodes.iter().filter(schedulable).filter(|n| !removed.contains(&n.id.as_str())).count();
            prop_assert!(left as u64 >= policy.min_worker_nodes);
            prop_assert!(p.utilisation_after <= policy.max_utilisation_after + 1e-12);
        }
        let again = plan_consolidation(&i, &policy, NOW).unwrap();
        prop_assert_eq!(serde_json::to_string(&p).unwrap(), serde_json::to_string(&again).unwrap());
    }
}
