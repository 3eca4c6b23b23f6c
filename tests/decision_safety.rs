//! Decision safety: no input, clock or caller mistake makes the library allow a deletion it
//! should refuse, or leave a decision unaudited (one test per way it could).

use node_lifecycle::*;
use std::time::Duration;

mod common;
use common::{fleet, ready_node, MIN};

const MIN_MS: i64 = 60_000;

fn decommission_entries(f: &Fleet, node: &str) -> Vec<(AuditResult, String)> {
    f.audit_by_node(node, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::NodeDecommission)
        .map(|e| (e.result, e.reason.to_string()))
        .collect()
}

#[test]
fn a_ticket_from_another_fleet_is_invalid_and_changes_nothing() {
    let (a, b) = (fleet(), fleet());
    ready_node(&a, "n");
    ready_node(&b, "n");
    let ta = a.begin_decommission("n", "reactive_policy").unwrap();
    let tb = b.begin_decommission("n", "reactive_policy").unwrap();
    assert_ne!(ta.id, tb.id, "tickets are random, not 1, 2, ... per fleet");
    for r in [
        b.complete_decommission(&ta),
        b.fail_decommission(&ta, b"x"),
        b.cancel_decommission(&ta, "x").map(|_| ()),
    ] {
        assert!(
            matches!(&r, Err(Error::TicketInvalid(m)) if m.contains("is not the node's outstanding ticket")),
            "{r:?}"
        );
    }
    assert_eq!(b.node("n").unwrap().state, LifecycleState::Draining);
    assert_eq!(
        decommission_entries(&b, "n"),
        vec![(
            AuditResult::Success,
            "decommission_started: ready node may be decommissioned".to_string()
        )],
        "nothing was completed or failed with the foreign ticket"
    );
    b.complete_decommission(&tb).unwrap();
}

#[test]
fn a_ticket_is_bound_to_its_node() {
    let f = fleet();
    ready_node(&f, "a");
    ready_node(&f, "b");
    let t = f.begin_decommission("a", "reactive_policy").unwrap();
    let forged = DecommissionTicket {
        id: t.id,
        node_id: "b".into(),
    };
    assert!(matches!(
        f.complete_decommission(&forged),
        Err(Error::TicketInvalid(m)) if m.contains("for node \"b\" is not outstanding")
    ));
    let unknown = DecommissionTicket {
        id: t.id,
        node_id: "zz".into(),
    };
    assert!(matches!(
        f.complete_decommission(&unknown),
        Err(Error::TicketInvalid(m)) if m.contains("names a node this fleet does not know")
    ));
    assert_eq!(f.node("a").unwrap().state, LifecycleState::Draining);
    assert_eq!(f.node("b").unwrap().state, LifecycleState::Ready);
    f.complete_decommission(&t).unwrap();
    assert_eq!(f.node("a").unwrap().state, LifecycleState::Decommissioned);
}

#[test]
fn policy_zero_means_default_off_is_explicit_and_nonsense_is_refused() {
    let f = Fleet::with_manual_clock(
        FleetOptions {
            policy: Policy {
                idle_grace_ms: 0,
                ready_grace_ms: 0,
                ..Policy::default()
            },
            audit_capacity: 0,
        },
        Timestamp(0),
    )
    .unwrap();
    assert_eq!(f.policy(), Policy::DEFAULT);
    assert_eq!(f.audit_stats().unwrap().capacity, 1000);
    // Switching the ready grace off is explicit, and then a fresh ready node may go at once.
    f.set_policy(Policy {
        ready_grace_ms: OFF,
        ..Policy::default()
    })
    .unwrap();
    f.register(NodeSpec::cloud("n", 0).booted_from_image())
        .unwrap();
    assert!(f.evaluate("n").unwrap().allowed);
    assert_eq!(f.policy().ready_grace_ms, OFF);
    // A JSON policy can say so too; signs and fractions are refused.
    let o = FleetOptions::from_json(r#"{"policy":{"idle_grace_ms":"off"}}"#).unwrap();
    assert_eq!(o.policy.idle_grace_ms, OFF);
    assert!(FleetOptions::from_json(r#"{"policy":{"idle_grace_ms":-1800000}}"#).is_err());
    assert!(matches!(
        Fleet::new(FleetOptions {
            policy: Policy {
                idle_grace_ms: 366 * 24 * 60 * MIN_MS as u64,
                ..Policy::default()
            },
            ..Default::default()
        }),
        Err(Error::InvalidSetting { field, .. }) if field == "idle_grace_ms"
    ));
}

#[test]
fn a_wall_clock_step_never_shortens_a_grace() {
    let f = fleet();
    ready_node(&f, "n");
    let real_now = f.now();
    // The wall clock is stepped back two hours; a container comes and goes.
    f.set_clock(Timestamp(real_now.0 - 120 * MIN_MS)).unwrap();
    f.add_container("n", "c", 100).unwrap();
    f.remove_container("n", "c").unwrap();
    // The clock is corrected forward again; five real minutes pass.
    f.set_clock(real_now).unwrap();
    f.advance_clock(5 * MIN).unwrap();
    let err = f.begin_decommission("n", "reactive_policy").unwrap_err();
    let v = err.verdict().unwrap();
    assert_eq!(v.primary, Some(ReasonCode::IdleTooRecent));
    assert_eq!(v.blockers[0].elapsed_ms, 5 * MIN_MS as u64);
    assert_eq!(v.message(), "node idle for only 5m0s, wait 25m0s more");
    // Recorded timestamps stay wall-clock: the container left at the stepped-back time.
    assert_eq!(
        f.node("n").unwrap().last_container_at_ms,
        Some(Timestamp(real_now.0 - 120 * MIN_MS))
    );
    f.advance_clock(25 * MIN).unwrap();
    f.begin_decommission("n", "reactive_policy").unwrap();
}

#[test]
fn extreme_clocks_saturate_and_never_half_apply_a_mutation() {
    let f = fleet();
    ready_node(&f, "n");
    f.add_container("n", "c", 1).unwrap();
    // Far in the future, then past the end of time.
    assert_eq!(
        f.advance_clock(Duration::from_secs(u64::MAX)).unwrap(),
        Timestamp(i64::MAX)
    );
    f.advance_clock(Duration::MAX).unwrap();
    assert_eq!(f.now(), Timestamp(i64::MAX), "saturates, never wraps");
    f.remove_container("n", "c").unwrap();
    let n = f.node("n").unwrap();
    assert_eq!(n.last_container_at_ms, Some(Timestamp(i64::MAX)));
    assert!(n.time_in_state_ms["active"] > 0);
    // A wall clock stepped to the beginning of time: nothing panics.
    f.set_clock(Timestamp(i64::MIN)).unwrap();
    let v = f.evaluate("n").unwrap();
    assert_eq!(v.primary, Some(ReasonCode::IdleTooRecent));
    let _ = v.message();
    f.add_container("n", "d", 1).unwrap();
    f.register(NodeSpec::recovered("r", 0).provisioned_at(Timestamp(0)))
        .unwrap();
    assert!(f.tick().is_ok());
    let _ = f.audit_recent(usize::MAX).unwrap();
    let _ = serde_json::to_string(&f.nodes().unwrap()).unwrap();
}

#[test]
fn container_ids_are_unique_across_the_fleet_and_migrations_conserve_ram() {
    let f = fleet();
    ready_node(&f, "a");
    ready_node(&f, "b");
    f.add_container("a", "mc-1", 2048).unwrap();
    assert_eq!(
        f.add_container("b", "mc-1", 2048),
        Err(Error::ContainerElsewhere {
            container: "mc-1".into(),
            node: "a".into()
        })
    );
    assert_eq!(
        f.reserve("b", "mc-1", 2048),
        Err(Error::ContainerElsewhere {
            container: "mc-1".into(),
            node: "a".into()
        })
    );
    assert!(matches!(
        f.sync_containers("b", &[("mc-1".into(), 2048)]),
        Err(Error::ContainerElsewhere { node, .. }) if node == "a"
    ));
    let c = f.claim("b", 100, 0).unwrap();
    assert!(matches!(
        f.confirm_claim(c, "mc-1"),
        Err(Error::ContainerElsewhere { .. })
    ));
    assert!(matches!(
        f.record_migration("mc-1", "b", "a", "consolidation_policy"),
        Err(Error::InvalidArgument(m)) if m.contains("does not run on node \"b\"")
    ));
    f.release_claim(c).unwrap();
    f.record_migration("mc-1", "a", "b", "consolidation_policy")
        .unwrap();
    let (a, b) = (f.node("a").unwrap(), f.node("b").unwrap());
    assert_eq!((a.allocated_ram_mb, b.allocated_ram_mb), (0, 2048));
    assert!(a.containers.is_empty());
    assert_eq!(b.containers["mc-1"], 2048);
    // Now it runs on b: a may take another container of that name only after it leaves b.
    assert!(matches!(
        f.add_container("a", "mc-1", 1),
        Err(Error::ContainerElsewhere { node, .. }) if node == "b"
    ));
    f.remove_container("b", "mc-1").unwrap();
    f.add_container("a", "mc-1", 1).unwrap();
    // Removing it from the wrong node is a reported no-op.
    assert!(!f.remove_container("b", "mc-1").unwrap().changed);
    assert_eq!(f.node("a").unwrap().containers.len(), 1);
}

#[test]
fn any_provider_error_text_is_audited_sanitised() {
    let f = fleet();
    ready_node(&f, "n");
    let t = f.begin_decommission("n", "reactive_policy").unwrap();
    f.fail_decommission(&t, b"bad \xff\xfe utf8 and a \0 nul")
        .unwrap();
    f.fail_decommission(&t, &[b'x'; 100_000]).unwrap();
    f.fail_decommission(&t, b"").unwrap();
    let errors: Vec<String> = f
        .audit_by_result(AuditResult::Failed, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.error.unwrap().to_string())
        .collect();
    assert_eq!(errors[0], "bad \u{fffd}\u{fffd} utf8 and a \\x00 nul");
    assert_eq!(errors[1].len(), 4096);
    assert!(errors[1].ends_with(" [truncated: 100000 bytes in all]"));
    assert_eq!(errors[2], "unknown error (the caller gave no text)");
    assert!(errors.iter().all(|e| !e.contains('\0')));
    // Every other free text that reaches the ring is sanitised too.
    f.record_audit(
        AuditRecord::new(AuditAction::ScaleUp, "n", AuditResult::Failed)
            .reason(0, "why\0")
            .error("provider said \u{7}"),
    )
    .unwrap();
    let e = f.audit_recent(1).unwrap().pop().unwrap();
    assert_eq!(
        (e.reason.as_str(), e.error.as_deref()),
        ("why\\x00", Some("provider said \\x07"))
    );
}

#[test]
fn rejections_name_every_hold_and_cordon_in_error_message_and_audit() {
    let f = fleet();
    ready_node(&f, "n");
    f.place_hold("n", "world:srv-1", "stopped server").unwrap();
    f.cordon("n", "disk-full", "disk 97% full", false).unwrap();
    let err = f.begin_decommission("n", "reactive_policy").unwrap_err();
    let v = err.verdict().unwrap();
    assert_eq!(
        v.holds,
        vec![("world:srv-1".to_string(), "stopped server".to_string())]
    );
    assert_eq!(
        v.message(),
        "node has 1 hold: world:srv-1 (stopped server); cordoned: disk-full (disk 97% full)"
    );
    assert!(err.to_string().contains("world:srv-1 (stopped server)"));
    let e = f.audit_recent(1).unwrap().pop().unwrap();
    assert_eq!(e.reason, v.message());
    let snap = e.snapshot.unwrap();
    assert_eq!(snap.holds[0].detail, "stopped server");
    assert_eq!(snap.cordons[0].name, "disk-full");
    assert_eq!(snap.cordons[0].reason, "disk 97% full");
}
