//! The fleet's protocol and its behaviour on bad input: every error is typed and changes nothing.

use node_lifecycle::*;
use std::sync::Arc;

mod common;
use common::{fleet, ready_node, MIN};

fn assert_unchanged(f: &Fleet, before: &[NodeInfo], audit_before: u64) {
    assert_eq!(f.nodes().unwrap(), before);
    assert_eq!(f.audit_stats().unwrap().total_recorded, audit_before);
}

fn ticket(id: TicketId, node: &str) -> DecommissionTicket {
    DecommissionTicket {
        id,
        node_id: node.into(),
    }
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let f = fleet();
    ready_node(&f, "n1");
    let before = f.nodes().unwrap();
    let seq = f.audit_stats().unwrap().total_recorded;

    assert_eq!(
        f.transition("nope", LifecycleState::Ready, "x"),
        Err(Error::NodeNotFound("nope".into()))
    );
    assert_eq!(
        f.transition("n1", LifecycleState::Initializing, "x"),
        Err(Error::InvalidTransition {
            node: "n1".into(),
            from: LifecycleState::Ready,
            to: LifecycleState::Initializing,
        })
    );
    assert!(matches!(
        f.transition("n1", LifecycleState::Active, ""),
        Err(Error::InvalidArgument(m)) if m == "reason must not be empty"
    ));
    assert!(
        matches!(f.begin_decommission("n1", ""), Err(Error::InvalidArgument(m)) if m == "decision_by must not be empty")
    );
    assert_eq!(
        f.register(NodeSpec::system("n1", 1)).unwrap_err(),
        Error::NodeExists {
            node: "n1".into(),
            detail: "it is registered as a cloud node, not a system node".into()
        }
    );
    let bogus = ticket(TicketId([7; 16]), "n1");
    for r in [
        f.complete_decommission(&bogus),
        f.fail_decommission(&bogus, b"boom"),
        f.cancel_decommission(&bogus, "x").map(|_| ()),
    ] {
        assert!(
            matches!(&r, Err(Error::TicketInvalid(m)) if m.contains("is not outstanding")),
            "{r:?}"
        );
    }
    assert!(
        matches!(f.add_container("n1", "", 1), Err(Error::InvalidArgument(m)) if m == "container id must not be empty")
    );
    assert!(
        matches!(f.add_container("n1", "c", u64::MAX), Err(Error::InvalidArgument(m)) if m.contains("ram_mb ="))
    );
    assert_eq!(
        f.reserve("n1", "c", 8193),
        Err(Error::InsufficientCapacity {
            node: "n1".into(),
            requested_mb: 8193,
            free_mb: 8192
        })
    );
    assert!(matches!(
        f.set_policy(Policy { unhealthy_threshold: 1001, ..Policy::default() }),
        Err(Error::InvalidSetting { field, .. }) if field == "unhealthy_threshold"
    ));
    assert!(
        matches!(f.register(NodeSpec::cloud("x".repeat(300), 1)), Err(Error::InvalidArgument(m)) if m.contains("300 bytes"))
    );
    assert!(
        matches!(f.forget("n1"), Err(Error::InvalidArgument(m)) if m.contains("only decommissioned"))
    );
    assert_eq!(
        f.transition("n1", LifecycleState::Ready, "again"),
        Ok(None),
        "self-transition is a no-op"
    );
    assert_unchanged(&f, &before, seq);

    let sys = Fleet::new(FleetOptions::default()).unwrap();
    assert_eq!(sys.advance_clock(MIN), Err(Error::NotManualClock));
    assert!(matches!(
        Fleet::new(FleetOptions { audit_capacity: 10_000_001, ..Default::default() }),
        Err(Error::InvalidSetting { field, .. }) if field == "audit_capacity"
    ));
}

#[test]
fn unknown_node_decommission_is_a_failed_audit_entry() {
    let f = fleet();
    assert_eq!(
        f.begin_decommission("ghost", "manual"),
        Err(Error::NodeNotFound("ghost".into()))
    );
    let e = f.audit_recent(1).unwrap().pop().unwrap();
    assert_eq!(
        (e.action, e.result),
        (AuditAction::NodeDecommission, AuditResult::Failed)
    );
    assert_eq!(e.reason_code, ReasonCode::NodeNotFound.code());
    assert_eq!(e.decision_by, "manual");
    assert_eq!(e.error.as_deref(), Some("node \"ghost\" not found"));
}

#[test]
fn tickets_are_single_use_and_fail_keeps_the_node_draining() {
    let f = fleet();
    ready_node(&f, "n1");
    let t = f.begin_decommission("n1", "reactive_policy").unwrap();
    assert_eq!(t.node_id, "n1");
    // A second begin while one is in flight is rejected and audited; the ticket can be found.
    let err = f.begin_decommission("n1", "manual").unwrap_err();
    assert_eq!(err.code(), ReasonCode::DecommissionInProgress.code());
    assert_eq!(f.ticket_for("n1").unwrap(), Some(t.clone()));
    // Placement cannot touch a draining node.
    assert_eq!(
        f.reserve("n1", "c", 1),
        Err(Error::NotSchedulable {
            node: "n1".into(),
            state: LifecycleState::Draining,
            cordons: vec![]
        })
    );
    assert!(matches!(
        f.claim("n1", 1, 0),
        Err(Error::NotSchedulable {
            state: LifecycleState::Draining,
            ..
        })
    ));
    assert!(matches!(
        f.place_hold("n1", "h", ""),
        Err(Error::NotSchedulable {
            state: LifecycleState::Draining,
            ..
        })
    ));
    // Generic transitions cannot bypass the ticket.
    assert_eq!(
        f.transition("n1", LifecycleState::Unhealthy, "x")
            .unwrap_err()
            .code(),
        ReasonCode::DecommissionInProgress.code()
    );
    // Containers discovered on it must be dealt with by cancelling first.
    assert!(matches!(
        f.sync_containers("n1", &[("c".into(), 1)]),
        Err(Error::NotSchedulable { .. })
    ));

    f.fail_decommission(&t, b"provider 503").unwrap();
    assert_eq!(f.node("n1").unwrap().state, LifecycleState::Draining);
    let e = f
        .audit_by_result(AuditResult::Failed, 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(e.error.as_deref(), Some("provider 503"));
    assert_eq!(e.decision_by, "reactive_policy");

    f.complete_decommission(&t).unwrap();
    assert!(matches!(
        f.complete_decommission(&t),
        Err(Error::TicketInvalid(m)) if m.contains("is not outstanding")
    ));
    assert!(matches!(
        f.cancel_decommission(&t, "x"),
        Err(Error::TicketInvalid(_))
    ));
    assert_eq!(f.ticket_for("n1").unwrap(), None);
    let outcomes: Vec<(AuditResult, String)> = f
        .audit_by_action(AuditAction::NodeDecommission, 10)
        .unwrap()
        .iter()
        .map(|e| (e.result, e.reason.to_string()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (
                AuditResult::Success,
                "decommission_started: ready node may be decommissioned".to_string()
            ),
            (
                AuditResult::Rejected,
                "a decommission of this node is already in progress".to_string()
            ),
            (AuditResult::Failed, "provider deletion failed".to_string()),
            (AuditResult::Success, "decommission_completed".to_string()),
        ]
    );
    // Only decommissioned nodes can be forgotten; their audit stays.
    f.forget("n1").unwrap();
    assert_eq!(f.node("n1"), Err(Error::NodeNotFound("n1".into())));
    assert_eq!(f.audit_by_node("n1", 100).unwrap().len(), 10);
}

#[test]
fn cancel_returns_to_the_state_before_draining() {
    let f = fleet();
    ready_node(&f, "r");
    let t = f.begin_decommission("r", "manual").unwrap();
    assert_eq!(
        f.cancel_decommission(&t, "operator changed mind").unwrap(),
        LifecycleState::Ready
    );

    ready_node(&f, "i");
    f.add_container("i", "c", 1).unwrap();
    f.remove_container("i", "c").unwrap();
    f.advance_clock(30 * MIN).unwrap();
    let t = f.begin_decommission("i", "manual").unwrap();
    assert_eq!(
        f.cancel_decommission(&t, "demand spike").unwrap(),
        LifecycleState::Idle
    );
    let e = f.audit_by_node("i", 1).unwrap().pop().unwrap();
    assert_eq!(
        (e.from_state, e.to_state),
        (Some(LifecycleState::Draining), Some(LifecycleState::Idle))
    );
    assert_eq!(e.reason, "decommission_cancelled: demand spike");
    // Schedulable again.
    f.reserve("i", "c2", 100).unwrap();
}

#[test]
fn reservations_and_holds_block_and_release() {
    let f = fleet();
    ready_node(&f, "n1");
    assert!(f.reserve("n1", "c1", 1024).unwrap());
    assert!(
        !f.reserve("n1", "c1", 2048).unwrap(),
        "re-reserving updates"
    );
    assert_eq!(f.node("n1").unwrap().reserved_ram_mb, 2048);
    assert_eq!(
        f.evaluate("n1").unwrap().primary,
        Some(ReasonCode::HasReservations)
    );
    assert_eq!(
        f.node("n1").unwrap().state,
        LifecycleState::Ready,
        "a reservation is not a container yet"
    );
    let out = f.confirm_reservation("n1", "c1").unwrap();
    assert_eq!(
        (out.state, out.current_containers),
        (LifecycleState::Active, 1)
    );
    let n = f.node("n1").unwrap();
    assert_eq!((n.reserved_ram_mb, n.allocated_ram_mb), (0, 2048));
    assert!(n.claims.is_empty());
    f.remove_container("n1", "c1").unwrap();
    assert!(f
        .place_hold("n1", "world:srv-7", "stopped server data")
        .unwrap());
    assert!(!f.place_hold("n1", "world:srv-7", "again").unwrap());
    f.advance_clock(60 * MIN).unwrap();
    let err = f.begin_decommission("n1", "reactive_policy").unwrap_err();
    assert_eq!(err.code(), ReasonCode::HasHolds.code());
    assert_eq!(
        err.to_string(),
        "node \"n1\" may not be decommissioned: node has 1 hold: world:srv-7 (again)"
    );
    let e = f.audit_recent(1).unwrap().pop().unwrap();
    assert_eq!(e.reason, "node has 1 hold: world:srv-7 (again)");
    assert_eq!(e.snapshot.unwrap().holds[0].name, "world:srv-7");
    assert!(f.release_hold("n1", "world:srv-7").unwrap());
    assert!(!f.release_hold("n1", "world:srv-7").unwrap());
    assert!(f.evaluate("n1").unwrap().allowed);
    assert!(
        matches!(f.confirm_reservation("n1", "nope"), Err(Error::InvalidArgument(m)) if m.contains("no reservation"))
    );
}

#[test]
fn health_threshold_recovery_and_resync() {
    let f = fleet();
    ready_node(&f, "n1");
    f.add_container("n1", "c", 100).unwrap();
    for i in 1..3 {
        let h = f.report_health("n1", false).unwrap();
        assert_eq!(
            (h.state, h.consecutive_failures),
            (LifecycleState::Active, i)
        );
    }
    let h = f.report_health("n1", false).unwrap();
    assert_eq!(
        (h.state, h.health),
        (LifecycleState::Unhealthy, HealthStatus::Unhealthy)
    );
    let h = f.report_health("n1", true).unwrap();
    assert_eq!(
        (h.state, h.health, h.consecutive_failures),
        (LifecycleState::Ready, HealthStatus::Healthy, 0)
    );
    // Back from unhealthy: the container view must be re-synchronised before it counts as
    // empty. Refreshing the view is one step, declaring it complete another.
    f.sync_containers("n1", &[]).unwrap();
    assert!(f.node("n1").unwrap().container_sync_pending);
    assert_eq!(
        f.evaluate("n1").unwrap().primary,
        Some(ReasonCode::ContainerSyncPending)
    );
    assert!(f.complete_container_sync("n1").unwrap());
    assert!(!f.complete_container_sync("n1").unwrap(), "nothing pending");
    let n = f.node("n1").unwrap();
    assert!(!n.container_sync_pending);
    let v = f.evaluate("n1").unwrap();
    assert_eq!(v.primary, Some(ReasonCode::RecoveryGrace));
}

#[test]
fn unhealthy_cleanup_keeps_its_state_until_completed() {
    let f = fleet();
    ready_node(&f, "n1");
    f.transition("n1", LifecycleState::Unhealthy, "disk_failed")
        .unwrap();
    // A ready worker that just became unhealthy may be back in a minute: not yet.
    let err = f.begin_decommission("n1", "reactive_policy").unwrap_err();
    assert_eq!(err.code(), ReasonCode::UnhealthyTooRecent.code());
    f.advance_clock(15 * MIN).unwrap();
    let t = f.begin_decommission("n1", "reactive_policy").unwrap();
    assert_eq!(f.node("n1").unwrap().state, LifecycleState::Unhealthy);
    // A health success while the deletion is in flight does not resurrect it.
    assert_eq!(
        f.report_health("n1", true).unwrap().state,
        LifecycleState::Unhealthy
    );
    f.complete_decommission(&t).unwrap();
    assert_eq!(f.node("n1").unwrap().state, LifecycleState::Decommissioned);
}

#[test]
fn provisioning_timeout_and_sync_timeout_fire_on_tick() {
    let f = fleet();
    f.register(NodeSpec::cloud("stuck", 0)).unwrap();
    f.register(NodeSpec::recovered("back", 0)).unwrap();
    f.advance_clock(14 * MIN).unwrap();
    assert_eq!(f.tick().unwrap(), TickReport::default());
    f.advance_clock(MIN).unwrap();
    let r = f.tick().unwrap();
    assert_eq!(r.provisioning_timeouts, vec!["stuck".to_string()]);
    assert_eq!(f.node("stuck").unwrap().state, LifecycleState::Unhealthy);
    f.advance_clock(15 * MIN).unwrap();
    let r = f.tick().unwrap();
    assert_eq!(r.sync_timeouts, vec!["back".to_string()]);
    let e = f.audit_by_node("back", 1).unwrap().pop().unwrap();
    assert_eq!(
        (e.action, e.reason.as_str()),
        (AuditAction::Recovery, "container_sync_timeout")
    );
    // Completion counts from the deadline, not from when tick ran.
    assert_eq!(
        f.node("back").unwrap().container_sync_completed_at_ms,
        Some(Timestamp(30 * 60_000))
    );
    assert!(f.tick().unwrap().sync_timeouts.is_empty(), "fires once");
}

#[test]
fn finish_restore_completes_every_pending_sync() {
    let f = fleet();
    f.register(NodeSpec::recovered("a", 0)).unwrap();
    f.register(NodeSpec::recovered("b", 0)).unwrap();
    f.add_container("b", "c1", 10).unwrap();
    let v = f.evaluate("a").unwrap();
    assert_eq!(
        v.blockers.iter().map(|b| b.code).collect::<Vec<_>>(),
        vec![ReasonCode::ReadyTooYoung, ReasonCode::ContainerSyncPending]
    );
    assert_eq!(v.retry_after, None, "sync pending is not a timer");
    assert_eq!(f.finish_restore().unwrap(), 2);
    assert_eq!(f.finish_restore().unwrap(), 0);
    f.advance_clock(31 * MIN).unwrap();
    assert!(f.evaluate("a").unwrap().allowed);
    assert_eq!(
        f.evaluate("b").unwrap().primary,
        Some(ReasonCode::HasContainers)
    );
}

#[test]
fn draining_and_decommissioned_are_entered_only_through_the_protocol() {
    let f = fleet();
    ready_node(&f, "n1");
    let seq = f.audit_stats().unwrap().total_recorded;
    assert_eq!(
        f.transition("n1", LifecycleState::Draining, "disk_full"),
        Err(Error::ProtocolOnly {
            node: "n1".into(),
            to: LifecycleState::Draining,
            call: "begin_decommission",
        })
    );
    let err = f
        .transition("n1", LifecycleState::Decommissioned, "x")
        .unwrap_err();
    assert_eq!(err.code(), 19);
    assert!(err.to_string().contains("complete_decommission"), "{err}");
    assert_eq!(f.node("n1").unwrap().state, LifecycleState::Ready);
    assert_eq!(
        f.audit_stats().unwrap().total_recorded,
        seq,
        "a refused plain transition is not an audit entry (it decides nothing)"
    );
    // Even from unhealthy, where the table has the edge.
    f.transition("n1", LifecycleState::Unhealthy, "broken")
        .unwrap();
    assert!(matches!(
        f.transition("n1", LifecycleState::Decommissioned, "x"),
        Err(Error::ProtocolOnly { .. })
    ));
}

#[test]
fn exactly_one_of_concurrent_claim_and_decommission_wins() {
    for round in 0..200 {
        let f = Arc::new(fleet());
        ready_node(&f, "n");
        let a = {
            let f = f.clone();
            std::thread::spawn(move || {
                if round % 2 == 0 {
                    f.reserve("n", "c", 10).is_ok()
                } else {
                    f.claim("n", 10, 0).is_ok()
                }
            })
        };
        let b = {
            let f = f.clone();
            std::thread::spawn(move || f.begin_decommission("n", "reactive_policy").is_ok())
        };
        let (claimed, began) = (a.join().unwrap(), b.join().unwrap());
        assert!(
            claimed ^ began,
            "round {round}: claimed={claimed} began={began}"
        );
        let n = f.node("n").unwrap();
        assert_eq!(n.state == LifecycleState::Draining, began);
        assert_eq!(n.claims.len() == 1, claimed);
    }
}

#[test]
fn audit_cursor_reports_gaps_after_eviction() {
    let f = Fleet::with_manual_clock(
        FleetOptions {
            audit_capacity: 3,
            ..Default::default()
        },
        Timestamp(0),
    )
    .unwrap();
    for i in 0..5 {
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
    }
    let page = f.audit_since(0, 10).unwrap();
    assert_eq!(page.missed, 2);
    assert_eq!(
        page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let s = f.audit_stats().unwrap();
    assert_eq!((s.total_recorded, s.retained, s.evicted), (5, 3, 2));
    // A registration is recorded as entering its first state, not as a transition to itself.
    let e = &page.entries[0];
    assert_eq!(
        (e.action, e.from_state, e.to_state),
        (
            AuditAction::NodeProvision,
            None,
            Some(LifecycleState::Provisioning)
        )
    );
}

#[test]
fn the_summary_counts_what_the_nodes_hold() {
    let f = fleet();
    ready_node(&f, "a");
    ready_node(&f, "b");
    f.register(NodeSpec::system("local-node", 4096)).unwrap();
    f.add_container("a", "c1", 1024).unwrap();
    f.claim("a", 512, 0).unwrap();
    f.place_hold("b", "world", "data").unwrap();
    f.cordon("b", "disk_full", "97%", false).unwrap();
    f.cordon("b", "maintenance", "kernel", false).unwrap();
    f.report_health("local-node", true).unwrap();
    let s = f.summary().unwrap();
    assert_eq!(
        (
            s.nodes,
            s.containers,
            s.claims,
            s.holds,
            s.cordoned_nodes,
            s.cordons
        ),
        (3, 1, 1, 1, 1, 2)
    );
    assert_eq!(
        (s.total_ram_mb, s.allocated_ram_mb, s.reserved_ram_mb),
        (8192 * 2 + 4096, 1024, 512)
    );
    let rows: Vec<_> = s
        .by_state_and_health
        .iter()
        .map(|r| (r.state, r.health, r.nodes))
        .collect();
    assert_eq!(
        rows,
        vec![
            (LifecycleState::Ready, HealthStatus::Unknown, 1),
            (LifecycleState::Active, HealthStatus::Unknown, 1),
            (LifecycleState::Active, HealthStatus::Healthy, 1),
        ]
    );
    let _ = f.begin_decommission("b", "manual").unwrap_err();
    assert_eq!(f.summary().unwrap().decommissions_in_progress, 0);
    ready_node(&f, "c");
    f.begin_decommission("c", "manual").unwrap();
    assert_eq!(f.summary().unwrap().decommissions_in_progress, 1);
}
