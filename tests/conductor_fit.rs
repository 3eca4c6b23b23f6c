//! What the conductor needs beyond the first version: cordons, claims with a TTL,
//! placeholders (rename, abandon), upserts and updates, image-booted nodes, lost tickets, and
//! executing a consolidation plan.

use node_lifecycle::*;
use std::collections::BTreeMap;

mod common;
use common::{fleet, init_node, MIN};

fn ready_node(f: &Fleet, id: &str, ram: u64, cost: f64) {
    init_node(f, NodeSpec::cloud(id, ram).hourly_cost_eur(cost));
}

fn last(f: &Fleet, node: &str) -> AuditEntry {
    f.audit_by_node(node, 1).unwrap().pop().unwrap()
}

#[test]
fn a_cordon_stops_placement_without_touching_state_or_containers() {
    let f = fleet();
    ready_node(&f, "n", 8192, 0.0);
    f.add_container("n", "c1", 1024).unwrap();
    assert!(f.cordon("n", "disk-full", "disk 97% full", false).unwrap());
    assert_eq!(
        last(&f, "n").action,
        AuditAction::NodeCordon,
        "placing a cordon is audited"
    );
    let n = f.node("n").unwrap();
    assert_eq!(n.state, LifecycleState::Active);
    assert!(!n.schedulable);
    assert_eq!(n.cordons[0].name, "disk-full");
    let refused = Error::NotSchedulable {
        node: "n".into(),
        state: LifecycleState::Active,
        cordons: vec!["disk-full: disk 97% full".into()],
    };
    assert_eq!(f.add_container("n", "c2", 1), Err(refused.clone()));
    assert_eq!(f.reserve("n", "c2", 1), Err(refused.clone()));
    assert_eq!(f.claim("n", 1, 0), Err(refused.clone()));
    assert!(refused
        .to_string()
        .contains("cordoned (disk-full: disk 97% full)"));
    // The running container is untouched; it can stop and be reported again by a sync.
    assert!(
        !f.add_container("n", "c1", 1024).unwrap().changed,
        "already there"
    );
    // Health rounds re-asserting the cordon add no audit noise beyond an update entry.
    assert!(!f.cordon("n", "disk-full", "disk 97% full", false).unwrap());
    // The projection does not count cordoned capacity as schedulable.
    let p = f.projection().unwrap();
    assert_eq!((p.now.nodes, p.cordoned.nodes), (0, 1));
    assert!(f.uncordon("n", "disk-full").unwrap());
    assert_eq!(last(&f, "n").action, AuditAction::NodeUncordon);
    assert!(!f.uncordon("n", "disk-full").unwrap());
    f.add_container("n", "c2", 1).unwrap();
}

#[test]
fn claims_count_as_occupancy_and_expire_audited() {
    let f = fleet();
    ready_node(&f, "n", 8192, 0.0);
    f.advance_clock(60 * MIN).unwrap();
    let c = f.claim("n", 2048, 0).unwrap();
    let v = f.evaluate("n").unwrap();
    assert_eq!(v.primary, Some(ReasonCode::HasReservations));
    assert_eq!(f.node("n").unwrap().reserved_ram_mb, 2048);
    assert!(matches!(
        f.claim("n", 8000, 0),
        Err(Error::InsufficientCapacity { free_mb: 6144, .. })
    ));
    // A crashed placement: nobody confirms or releases. After the TTL, tick frees the node.
    f.advance_clock(29 * MIN).unwrap();
    assert!(f.tick().unwrap().expired_claims.is_empty());
    f.advance_clock(MIN).unwrap();
    let r = f.tick().unwrap();
    assert_eq!(r.expired_claims.len(), 1);
    let x = &r.expired_claims[0];
    assert_eq!(
        (x.node_id.as_str(), x.claim_id, x.ram_mb, x.age_ms),
        ("n", c, 2048, 30 * 60_000)
    );
    let e = last(&f, "n");
    assert_eq!(
        (e.action, e.ram_mb, e.age_ms),
        (
            AuditAction::ReservationExpired,
            Some(2048),
            Some(30 * 60_000)
        )
    );
    assert_eq!(
        e.reason,
        format!("claim {c} of 2048 MB expired after 30m0s")
    );
    assert_eq!(f.node("n").unwrap().reserved_ram_mb, 0);
    assert_eq!(
        f.confirm_claim(c, "mc"),
        Err(Error::ClaimNotFound(c.to_string()))
    );
    assert!(!f.release_claim(c).unwrap());
    assert!(f.evaluate("n").unwrap().allowed);
    // Keyed reservations expire the same way; a claim's own TTL wins; OFF never expires.
    f.reserve("n", "mc-9", 100).unwrap();
    let short = f.claim("n", 1, 60_000).unwrap();
    let forever = f.claim("n", 1, OFF).unwrap();
    f.advance_clock(MIN).unwrap();
    assert_eq!(
        f.tick()
            .unwrap()
            .expired_claims
            .iter()
            .map(|x| x.claim_id)
            .collect::<Vec<_>>(),
        vec![short]
    );
    f.advance_clock(30 * MIN).unwrap();
    let r = f.tick().unwrap();
    assert_eq!(r.expired_claims[0].container_id.as_deref(), Some("mc-9"));
    assert_eq!(f.node("n").unwrap().claims[0].id, forever);
    assert!(matches!(
        f.claim("n", 1, 400 * 24 * 60 * 60_000),
        Err(Error::InvalidSetting { field, .. }) if field == "ttl_ms"
    ));
}

#[test]
fn a_claim_becomes_a_container_once_its_id_is_known() {
    let f = fleet();
    ready_node(&f, "n", 8192, 0.0);
    let c = f.claim("n", 2048, 0).unwrap();
    // A cordon placed after the claim stops the placement: the start is refused, naming the
    // cordon, and the claim stays (released by its owner, or expired) until the cordon goes.
    f.cordon("n", "disk-full", "disk at 97%", false).unwrap();
    assert_eq!(
        f.confirm_claim(c, "mc-1"),
        Err(Error::NotSchedulable {
            node: "n".into(),
            state: LifecycleState::Ready,
            cordons: vec!["disk-full: disk at 97%".into()]
        })
    );
    let n = f.node("n").unwrap();
    assert_eq!(
        (n.containers.len(), n.reserved_ram_mb, n.claims.len()),
        (0, 2048, 1)
    );
    f.uncordon("n", "disk-full").unwrap();
    let out = f.confirm_claim(c, "mc-1").unwrap();
    assert_eq!(
        (out.changed, out.state, out.current_containers),
        (true, LifecycleState::Active, 1)
    );
    let n = f.node("n").unwrap();
    assert_eq!((n.allocated_ram_mb, n.reserved_ram_mb), (2048, 0));
    assert_eq!(
        f.confirm_claim(c, "mc-1"),
        Err(Error::ClaimNotFound(c.to_string()))
    );
    // Released claims free their RAM.
    let d = f.claim("n", 1000, 0).unwrap();
    assert!(f.release_claim(d).unwrap());
    assert_eq!(f.node("n").unwrap().reserved_ram_mb, 0);
    // A claim from another fleet is unknown here.
    let other = fleet();
    ready_node(&other, "n", 8192, 0.0);
    let foreign = other.claim("n", 1, 0).unwrap();
    assert_eq!(
        f.confirm_claim(foreign, "mc-2"),
        Err(Error::ClaimNotFound(foreign.to_string()))
    );
}

#[test]
fn registering_again_is_an_upsert_and_updates_are_audited() {
    let f = fleet();
    f.register(NodeSpec::cloud("n", 4096)).unwrap();
    f.transition("n", LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    let seq = f.audit_stats().unwrap().total_recorded;
    // The conductor registers again after loading from its database, learning the real RAM.
    let info = f
        .register(
            NodeSpec::cloud("n", 16384)
                .hourly_cost_eur(0.0536)
                .instance_type("cx42")
                .label("zone", "fsn1"),
        )
        .unwrap();
    assert_eq!(info.state, LifecycleState::Initializing, "no state change");
    assert_eq!(
        (info.total_ram_mb, info.instance_type.as_str()),
        (16384, "cx42")
    );
    assert_eq!(info.labels["zone"], "fsn1");
    let e = last(&f, "n");
    assert_eq!(e.action, AuditAction::NodeUpdate);
    assert_eq!(
        e.reason,
        "total_ram_mb 4096 -> 16384; hourly_cost_eur 0 -> 0.0536"
    );
    assert_eq!(e.snapshot.unwrap().labels["zone"], "fsn1");
    assert_eq!(f.audit_stats().unwrap().total_recorded, seq + 1);
    // The same attributes again change nothing and record nothing.
    f.register(
        NodeSpec::cloud("n", 16384)
            .hourly_cost_eur(0.0536)
            .instance_type("cx42")
            .label("zone", "fsn1"),
    )
    .unwrap();
    assert_eq!(f.audit_stats().unwrap().total_recorded, seq + 1);
    // A recovered registration of a known cloud node is the same node, and an upsert merges:
    // what the spec does not give (RAM 0, no cost, type or labels) stays as it was.
    let info = f.register(NodeSpec::recovered("n", 0)).unwrap();
    assert_eq!(
        (
            info.total_ram_mb,
            info.hourly_cost_eur,
            info.instance_type.as_str(),
            info.labels["zone"].as_str()
        ),
        (16384, 0.0536, "cx42", "fsn1")
    );
    assert_eq!(
        f.audit_stats().unwrap().total_recorded,
        seq + 1,
        "nothing changed"
    );
    // RAM below what is in use is refused.
    f.transition("n", LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
    f.add_container("n", "c", 8000).unwrap();
    f.claim("n", 4000, 0).unwrap();
    let before = f.node("n").unwrap();
    for ram in [11_999, 0] {
        assert_eq!(
            f.update(
                "n",
                &NodeUpdate {
                    total_ram_mb: Some(ram),
                    ..Default::default()
                }
            ),
            Err(Error::CapacityInUse {
                node: "n".into(),
                requested_mb: ram,
                in_use_mb: 12_000
            })
        );
        assert_eq!(f.node("n").unwrap(), before);
    }
    // Nor can a claim then land beyond the node's capacity.
    assert_eq!(
        f.claim("n", 100_000, 0),
        Err(Error::InsufficientCapacity {
            node: "n".into(),
            requested_mb: 100_000,
            free_mb: 4384
        })
    );
    let info = f
        .update(
            "n",
            &NodeUpdate {
                labels: Some(BTreeMap::from([("tier".into(), "premium".into())])),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(info.labels.len(), 1, "labels are replaced as a whole");
    assert_eq!(info.total_ram_mb, 16384);
}

#[test]
fn a_placeholder_is_renamed_to_the_providers_id_keeping_everything() {
    let f = fleet();
    f.register(NodeSpec::cloud("provisioning-1732", 8192).hourly_cost_eur(0.05))
        .unwrap();
    f.place_hold("provisioning-1732", "migration", "in flight")
        .unwrap();
    let p = f.projection().unwrap();
    assert_eq!(
        p.coming.nodes, 1,
        "the placeholder counts as capacity coming"
    );
    f.advance_clock(2 * MIN).unwrap();
    let info = f.rename("provisioning-1732", "hcloud-4711").unwrap();
    assert_eq!(info.id, "hcloud-4711");
    assert_eq!(info.state, LifecycleState::Provisioning);
    assert_eq!(info.provisioned_at_ms, Timestamp(0));
    assert_eq!(info.holds["migration"], "in flight");
    assert_eq!(
        f.node("provisioning-1732"),
        Err(Error::NodeNotFound("provisioning-1732".into()))
    );
    let history = f.audit_by_node("hcloud-4711", 10).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.action, e.node_id.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (AuditAction::NodeProvision, "provisioning-1732"),
            (AuditAction::NodeRenamed, "hcloud-4711")
        ],
        "the history follows the node"
    );
    assert_eq!(
        history[1].related_node_id.as_deref(),
        Some("provisioning-1732")
    );
    // Containers keep pointing at the node under its new name.
    f.transition("hcloud-4711", LifecycleState::Initializing, "x")
        .unwrap();
    f.transition("hcloud-4711", LifecycleState::Ready, "x")
        .unwrap();
    f.add_container("hcloud-4711", "mc", 1).unwrap();
    f.rename("hcloud-4711", "hcloud-4712").unwrap();
    assert!(matches!(
        f.add_container("other", "mc", 1),
        Err(Error::NodeNotFound(_))
    ));
    ready_node(&f, "other", 1024, 0.0);
    assert!(matches!(
        f.add_container("other", "mc", 1),
        Err(Error::ContainerElsewhere { node, .. }) if node == "hcloud-4712"
    ));
    assert!(matches!(
        f.rename("hcloud-4712", "other"),
        Err(Error::NodeExists { .. })
    ));
}

#[test]
fn a_vm_that_was_never_created_is_abandoned_with_a_failed_entry() {
    let f = fleet();
    f.register(NodeSpec::placeholder("provisioning-9", 8192))
        .unwrap();
    let info = f
        .abandon_provisioning("provisioning-9", b"hcloud: server limit reached \xff")
        .unwrap();
    assert_eq!(info.state, LifecycleState::Decommissioned);
    let entries = f.audit_by_node("provisioning-9", 10).unwrap();
    let failed = entries
        .iter()
        .find(|e| e.result == AuditResult::Failed)
        .unwrap();
    assert_eq!(failed.action, AuditAction::NodeProvision);
    assert_eq!(
        failed.error.as_deref(),
        Some("hcloud: server limit reached \u{fffd}")
    );
    f.forget("provisioning-9").unwrap();
    // Refused once the placeholder's node is up.
    f.register(NodeSpec::placeholder("up", 1)).unwrap();
    f.transition("up", LifecycleState::Initializing, "x")
        .unwrap();
    f.transition("up", LifecycleState::Ready, "x").unwrap();
    assert_eq!(
        f.abandon_provisioning("up", b"x").unwrap_err(),
        Error::InvalidTransition {
            node: "up".into(),
            from: LifecycleState::Ready,
            to: LifecycleState::Decommissioned
        }
    );
}

/// Every placeholder has a way out: bound to its VM (under a new id or its own), abandoned
/// when the VM was never created (also after a crash), and a VM that was created but never
/// came up is deleted through the protocol, so a failed delete keeps its ticket and is retried
/// instead of leaking the VM.
#[test]
fn a_placeholder_has_a_way_out_in_every_flow() {
    let f = fleet();
    // Bound in place: the VM got the id the conductor chose.
    f.register(NodeSpec::placeholder("pp-named", 4096)).unwrap();
    assert!(f.node("pp-named").unwrap().placeholder);
    assert_eq!(f.summary().unwrap().placeholders, 1);
    let info = f.rename("pp-named", "pp-named").unwrap();
    assert!(!info.placeholder);
    let e = last(&f, "pp-named");
    assert_eq!(
        (e.action, e.reason.as_str()),
        (
            AuditAction::NodeRenamed,
            "placeholder pp-named bound to its VM under the same id"
        )
    );
    // A node that is not a placeholder cannot be "renamed" to itself.
    assert!(matches!(
        f.rename("pp-named", "pp-named"),
        Err(Error::NodeExists { .. })
    ));
    // A bound node has a VM: abandoning it would lose track of it.
    assert_eq!(
        f.abandon_provisioning("pp-named", b"x").unwrap_err(),
        Error::InvalidArgument(
            "node \"pp-named\" is not a placeholder: its VM exists at the provider. Delete it \
             through the decommission protocol (a VM that never came up may be marked \
             unhealthy and decommissioned at once), so that a failed delete is retried \
             instead of leaking the VM"
                .into()
        )
    );
    // Created, but WaitForServerReady failed: mark it unhealthy; having never come up, it can
    // be decommissioned at once, and a failed delete keeps the ticket.
    f.register(NodeSpec::placeholder("pp-2", 4096)).unwrap();
    f.rename("pp-2", "hz-2").unwrap();
    f.transition("hz-2", LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    f.transition(
        "hz-2",
        LifecycleState::Unhealthy,
        "server_never_became_ready",
    )
    .unwrap();
    let t = f.begin_decommission("hz-2", "provisioner").unwrap();
    f.fail_decommission(&t, b"hetzner: 503").unwrap();
    assert_eq!(f.ticket_for("hz-2").unwrap(), Some(t.clone()));
    f.complete_decommission(&t).unwrap();
    assert_eq!(
        f.node("hz-2").unwrap().state,
        LifecycleState::Decommissioned
    );
    // Only cloud nodes that start provisioning can be placeholders.
    for spec in [
        NodeSpec {
            placeholder: true,
            ..NodeSpec::system("s", 1)
        },
        NodeSpec::placeholder("img", 1).booted_from_image(),
    ] {
        assert_eq!(
            f.register(spec),
            Err(Error::InvalidArgument(
                "only a cloud node that starts provisioning can be a placeholder".into()
            ))
        );
    }
}

#[test]
fn a_node_booted_from_an_image_starts_ready_with_the_ready_grace() {
    let f = fleet();
    let info = f
        .register(NodeSpec::cloud("img", 8192).booted_from_image())
        .unwrap();
    assert_eq!(
        (info.state, info.initialized_at_ms),
        (LifecycleState::Ready, Some(Timestamp(0)))
    );
    assert_eq!(
        f.evaluate("img").unwrap().primary,
        Some(ReasonCode::ReadyTooYoung)
    );
    f.advance_clock(30 * MIN).unwrap();
    assert!(f.evaluate("img").unwrap().allowed);
}

#[test]
fn a_lost_ticket_is_found_and_the_delete_retried() {
    let f = fleet();
    ready_node(&f, "n", 1, 0.0);
    f.advance_clock(60 * MIN).unwrap();
    let t = f.begin_decommission("n", "reactive_policy").unwrap();
    f.fail_decommission(&t, b"hetzner: 503").unwrap();
    drop(t); // the caller crashed and lost it
    let err = f.begin_decommission("n", "reactive_policy").unwrap_err();
    assert_eq!(err.code(), ReasonCode::DecommissionInProgress.code());
    let found = f.ticket_for("n").unwrap().unwrap();
    f.complete_decommission(&found).unwrap();
    assert_eq!(f.node("n").unwrap().state, LifecycleState::Decommissioned);
    assert_eq!(f.ticket_for("n").unwrap(), None);
}

/// Three nodes: `a` (cheap, busy), `b` and `c` (expensive, one small container each).
fn consolidation_fleet() -> Fleet {
    let f = fleet();
    ready_node(&f, "a", 16384, 0.02);
    ready_node(&f, "b", 8192, 0.10);
    ready_node(&f, "c", 8192, 0.10);
    f.add_container("a", "a1", 4096).unwrap();
    f.add_container("b", "b1", 1024).unwrap();
    f.add_container("c", "c1", 1024).unwrap();
    f.advance_clock(60 * MIN).unwrap();
    f
}

fn policy() -> ConsolidationPolicy {
    ConsolidationPolicy {
        max_utilisation_after: 1.0,
        ..Default::default()
    }
}

#[test]
fn a_plan_is_executed_end_to_end_within_the_consolidation_policy() {
    let f = consolidation_fleet();
    let plan = f
        .consolidation_plan(&ConsolidationRequest {
            policy: policy(),
            ..Default::default()
        })
        .unwrap();
    assert!(plan.worthwhile, "{plan:?}");
    let removed: Vec<&str> = plan.remove.iter().map(|r| r.node_id.as_str()).collect();
    assert_eq!(removed, vec!["b", "c"]);
    let exec = f.execute_plan(&plan, &policy()).unwrap();
    assert_eq!(exec.remove, vec!["b".to_string(), "c".to_string()]);
    assert!(exec.cordon.starts_with("consolidation:"));
    for id in ["b", "c"] {
        let n = f.node(id).unwrap();
        assert_eq!(n.cordons[0].name, exec.cordon);
        assert!(n.cordons[0].evacuate && !n.schedulable);
    }
    assert_eq!(f.last_consolidation(), Some(f.now()));
    // Migrate as told, five minutes in, then delete at once: no idle grace for evacuated nodes.
    f.advance_clock(5 * MIN).unwrap();
    for m in &exec.moves {
        f.record_migration(
            &m.container_id,
            &m.from_node,
            &m.to_node,
            "consolidation_policy",
        )
        .unwrap();
    }
    for id in &exec.remove {
        let v = f.evaluate(id).unwrap();
        assert!(v.allowed, "{id}: {}", v.message());
        assert_eq!(
            v.idle_grace_waived_by.as_deref(),
            Some(exec.cordon.as_str())
        );
        let t = f.begin_decommission(id, "consolidation_policy").unwrap();
        let started = f
            .audit_by_action(AuditAction::NodeDecommission, 1)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(
            started.reason,
            format!(
                "decommission_started: idle node may be decommissioned (idle grace waived: \
                 emptied by evacuate cordon {})",
                exec.cordon
            )
        );
        assert_eq!(started.decision_by, "consolidation_policy");
        f.complete_decommission(&t).unwrap();
    }
    assert_eq!(f.node("a").unwrap().containers.len(), 3);
    // The cooldown now refuses another plan.
    let again = f
        .consolidation_plan(&ConsolidationRequest {
            policy: policy(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.refusal, Some(planning::PlanRefusal::Cooldown));
}

#[test]
fn a_stale_plan_is_refused_with_the_reason_and_changes_nothing() {
    type Change = Box<dyn Fn(&Fleet)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "a container started",
            Box::new(|f: &Fleet| {
                f.add_container("b", "b2", 1).unwrap();
            }),
            "node b runs container b2 (1 MB), which the plan does not move",
        ),
        (
            "a container left",
            Box::new(|f: &Fleet| {
                f.remove_container("b", "b1").unwrap();
            }),
            "the plan moves container b1 off node b, which no longer runs it",
        ),
        (
            "a container was replaced by one of the same count",
            Box::new(|f: &Fleet| {
                f.remove_container("c", "c1").unwrap();
                f.add_container("c", "c9", 1024).unwrap();
            }),
            "node c runs container c9 (1024 MB), which the plan does not move",
        ),
        (
            "a container's RAM changed",
            Box::new(|f: &Fleet| {
                f.add_container("c", "c1", 2000).unwrap();
            }),
            "container c1 on node c now uses 2000 MB, the plan moves it as 1024 MB",
        ),
        (
            "a removed node's cost changed",
            Box::new(|f: &Fleet| {
                f.update(
                    "b",
                    &NodeUpdate {
                        hourly_cost_eur: Some(0.05),
                        ..Default::default()
                    },
                )
                .unwrap();
            }),
            "node b now costs 0.05 EUR/h, the plan counted 0.1 EUR/h (its savings would be \
             misreported)",
        ),
        (
            "a placement is pending",
            Box::new(|f: &Fleet| {
                f.claim("a", 1, 0).unwrap();
            }),
            "1 placement is pending",
        ),
        (
            "the target was cordoned",
            Box::new(|f: &Fleet| {
                f.cordon("a", "disk-full", "x", false).unwrap();
            }),
            "target node a takes no containers: it is cordoned (disk-full: x)",
        ),
        (
            "a hold appeared",
            Box::new(|f: &Fleet| {
                f.place_hold("c", "world", "").unwrap();
            }),
            "node c would still be refused: node has 1 hold: world",
        ),
        (
            "a node went away",
            Box::new(|f: &Fleet| {
                f.remove_container("c", "c1").unwrap();
                f.advance_clock(31 * MIN).unwrap();
                let t = f.begin_decommission("c", "reactive_policy").unwrap();
                f.complete_decommission(&t).unwrap();
            }),
            "node c is decommissioned",
        ),
        (
            "the target filled up",
            Box::new(|f: &Fleet| {
                f.add_container("a", "big", 11_000).unwrap();
            }),
            "target node a has 1288 MB free, the plan moves 2048 MB there",
        ),
    ];
    for (what, change, needle) in cases {
        let f = consolidation_fleet();
        let plan = f
            .consolidation_plan(&ConsolidationRequest {
                policy: policy(),
                ..Default::default()
            })
            .unwrap();
        change(&f);
        let before = f.nodes().unwrap();
        let seq = f.audit_stats().unwrap().total_recorded;
        match f.execute_plan(&plan, &policy()) {
            Err(Error::StalePlan(m)) => assert_eq!(m, needle, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(f.nodes().unwrap(), before, "{what}");
        assert_eq!(f.audit_stats().unwrap().total_recorded, seq, "{what}");
    }
}

#[test]
fn abandoning_a_plan_lifts_its_cordons_and_the_idle_grace_applies_again() {
    let f = consolidation_fleet();
    let plan = f
        .consolidation_plan(&ConsolidationRequest {
            policy: policy(),
            ..Default::default()
        })
        .unwrap();
    let exec = f.execute_plan(&plan, &policy()).unwrap();
    // Only b is migrated before the plan is abandoned.
    let m = exec.moves.iter().find(|m| m.from_node == "b").unwrap();
    f.record_migration(&m.container_id, "b", &m.to_node, "consolidation_policy")
        .unwrap();
    // The move refuses to overfill or to go to a node that does not run the container.
    assert!(matches!(
        f.record_migration("c1", "b", "a", "consolidation_policy"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(f.evaluate("b").unwrap().allowed);
    assert_eq!(
        f.abandon_plan(&exec.id).unwrap(),
        vec!["b".to_string(), "c".to_string()]
    );
    assert!(f.node("b").unwrap().cordons.is_empty());
    assert_eq!(
        f.evaluate("b").unwrap().primary,
        Some(ReasonCode::IdleTooRecent),
        "emptied on purpose, but the evacuation was called off"
    );
    assert_eq!(last(&f, "c").action, AuditAction::NodeUncordon);
    assert!(f.abandon_plan(&exec.id).unwrap().is_empty());
}
