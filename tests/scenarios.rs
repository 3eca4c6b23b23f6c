//! The four scenarios of SPEC.md, driven by the manual clock. Each asserts the exact state,
//! reason code and audit entry.

use node_lifecycle::*;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn fleet() -> Fleet {
    Fleet::with_manual_clock(FleetOptions::default(), Timestamp(1_700_000_000_000)).unwrap()
}

fn last_decommission_entry(f: &Fleet, node: &str) -> AuditEntry {
    f.audit_by_node(node, usize::MAX)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.action == AuditAction::NodeDecommission)
        .expect("a node_decommission entry")
}

fn rejection_code(err: &Error) -> ReasonCode {
    err.verdict().and_then(|v| v.primary).expect("a rejection")
}

#[test]
fn scenario_1_new_node_active_idle_decommission() {
    let f = fleet();
    let t0 = f.now();
    assert_eq!(
        f.register(NodeSpec::cloud("cloud-1", 8192)).unwrap().state,
        LifecycleState::Provisioning
    );
    f.transition(
        "cloud-1",
        LifecycleState::Initializing,
        "cloud_init_started",
    )
    .unwrap();
    f.advance_clock(3 * MIN).unwrap();
    f.transition("cloud-1", LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
    let ready_at = f.now();
    f.advance_clock(MIN).unwrap();
    assert_eq!(
        f.add_container("cloud-1", "mc-1", 2048).unwrap().state,
        LifecycleState::Active
    );
    f.advance_clock(60 * MIN).unwrap();
    let out = f.remove_container("cloud-1", "mc-1").unwrap();
    assert_eq!((out.changed, out.state), (true, LifecycleState::Idle));
    let stopped_at = f.now();

    // Inside the idle grace: rejected with the timer and when to retry.
    f.advance_clock(29 * MIN).unwrap();
    let err = f
        .begin_decommission("cloud-1", "reactive_policy")
        .unwrap_err();
    assert_eq!(rejection_code(&err), ReasonCode::IdleTooRecent);
    assert_eq!(
        err.verdict().unwrap().retry_after,
        Some(stopped_at.plus(30 * MIN))
    );

    f.advance_clock(MIN).unwrap();
    let ticket = f.begin_decommission("cloud-1", "reactive_policy").unwrap();
    assert_eq!(f.node("cloud-1").unwrap().state, LifecycleState::Draining);
    f.complete_decommission(&ticket).unwrap();

    let n = f.node("cloud-1").unwrap();
    assert_eq!(n.state, LifecycleState::Decommissioned);
    assert_eq!(n.provisioned_at_ms, t0);
    assert_eq!(n.initialized_at_ms, Some(ready_at));
    assert_eq!(n.total_containers_ever, 1);
    assert_eq!(n.last_container_at_ms, Some(stopped_at));
    assert_eq!(n.time_in_state_ms["active"], 60 * 60_000);

    let e = last_decommission_entry(&f, "cloud-1");
    assert_eq!(
        (e.result, e.decision_by.as_str()),
        (AuditResult::Success, "reactive_policy")
    );
    let snap = e.snapshot.unwrap();
    assert_eq!(snap.state, LifecycleState::Draining);
    assert_eq!(snap.current_containers, 0);
    assert_eq!(snap.idle_for_ms, Some(30 * 60_000));
    // The whole history is traceable: provision, 4 transitions, a rejection, the decision and
    // draining, success.
    let actions: Vec<(AuditAction, AuditResult)> = f
        .audit_by_node("cloud-1", 100)
        .unwrap()
        .iter()
        .map(|e| (e.action, e.result))
        .collect();
    use AuditAction::*;
    use AuditResult::*;
    assert_eq!(
        actions,
        vec![
            (NodeProvision, Success),
            (LifecycleTransition, Success), // -> initializing
            (LifecycleTransition, Success), // -> ready
            (LifecycleTransition, Success), // -> active
            (LifecycleTransition, Success), // -> idle
            (NodeDecommission, Rejected),
            (NodeDecommission, Success),    // decommission_started
            (LifecycleTransition, Success), // -> draining
            (NodeDecommission, Success),    // decommission_completed
            (LifecycleTransition, Success), // -> decommissioned
        ]
    );
}

#[test]
fn scenario_2_ready_node_too_young() {
    let f = fleet();
    f.register(NodeSpec::cloud("young", 4096)).unwrap();
    f.transition("young", LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    f.transition("young", LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
    let err = f
        .begin_decommission("young", "reactive_policy")
        .unwrap_err();
    assert_eq!(rejection_code(&err), ReasonCode::ReadyTooYoung);
    assert_eq!(err.code(), 106);
    assert!(err.to_string().contains("ready node too young"), "{err}");
    assert_eq!(f.node("young").unwrap().state, LifecycleState::Ready);

    let e = last_decommission_entry(&f, "young");
    assert_eq!(e.result, AuditResult::Rejected);
    assert_eq!(e.reason_code, ReasonCode::ReadyTooYoung.code());
    assert_eq!(
        e.reason,
        "ready node too young (0s since ready, wait 30m0s more)"
    );
    assert_eq!(e.snapshot.unwrap().since_initialized_ms, Some(0));
}

#[test]
fn scenario_3_node_has_containers() {
    let f = fleet();
    f.register(NodeSpec::cloud("busy", 16384)).unwrap();
    f.transition("busy", LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    f.transition("busy", LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
    f.add_container("busy", "mc-1", 2048).unwrap();
    f.add_container("busy", "mc-2", 4096).unwrap();
    f.advance_clock(120 * MIN).unwrap();
    let err = f
        .begin_decommission("busy", "consolidation_policy")
        .unwrap_err();
    assert_eq!(rejection_code(&err), ReasonCode::HasContainers);
    assert_eq!(f.node("busy").unwrap().state, LifecycleState::Active);

    let e = last_decommission_entry(&f, "busy");
    assert_eq!(e.result, AuditResult::Rejected);
    assert_eq!(e.reason, "node has 2 containers");
    assert_eq!(e.decision_by, "consolidation_policy");
    let snap = e.snapshot.unwrap();
    assert_eq!((snap.current_containers, snap.allocated_ram_mb), (2, 6144));
}

#[test]
fn scenario_4_system_nodes_are_protected() {
    let f = fleet();
    f.register(NodeSpec::system("local-node", 0)).unwrap();
    f.register(NodeSpec::system("proxy-node", 0)).unwrap();
    f.register(NodeSpec::dedicated("dedicated-1", 65536))
        .unwrap();
    f.advance_clock(24 * 60 * MIN).unwrap();
    for (id, code, msg) in [
        (
            "local-node",
            ReasonCode::SystemNode,
            "cannot decommission system node",
        ),
        (
            "proxy-node",
            ReasonCode::SystemNode,
            "cannot decommission system node",
        ),
        (
            "dedicated-1",
            ReasonCode::DedicatedNode,
            "cannot decommission dedicated node",
        ),
    ] {
        let err = f.begin_decommission(id, "manual").unwrap_err();
        assert_eq!(rejection_code(&err), code, "{id}");
        assert_eq!(f.node(id).unwrap().state, LifecycleState::Active);
        let e = last_decommission_entry(&f, id);
        assert_eq!(e.result, AuditResult::Rejected);
        assert!(e.reason.starts_with(msg), "{}", e.reason);
    }
    assert_eq!(
        f.audit_stats().unwrap().by_result[&AuditResult::Rejected],
        3
    );
}
