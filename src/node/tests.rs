//! The node-local rules, one behaviour per test.

use super::*;
use crate::policy::OFF;
use LifecycleState::*;

fn at(ms: i64) -> Moment {
    Moment::at(Timestamp(ms))
}

fn ready_node() -> Node {
    let mut n = Node::from_spec(&NodeSpec::cloud("n1", 8192), at(0)).unwrap();
    n.transition(Initializing, at(10)).unwrap();
    n.transition(Ready, at(20)).unwrap();
    n
}

fn claim(ram_mb: u64, container: Option<&str>) -> Claim {
    Claim {
        ram_mb,
        container_id: container.map(Text::new),
        created_at: at(0),
        ttl_ms: 1000,
    }
}

#[test]
fn origins_start_where_the_spec_says() {
    let t = at(5);
    let s = |spec: NodeSpec| Node::from_spec(&spec, t).unwrap();
    assert_eq!(s(NodeSpec::cloud("a", 1)).state, Provisioning);
    assert_eq!(s(NodeSpec::cloud("a", 1)).health, HealthStatus::Unknown);
    assert_eq!(s(NodeSpec::system("a", 1)).state, Active);
    assert_eq!(s(NodeSpec::system("a", 1)).health, HealthStatus::Healthy);
    assert_eq!(s(NodeSpec::dedicated("a", 1)).state, Active);
    assert_eq!(
        s(NodeSpec::dedicated("a", 1).initial_state(Ready)).state,
        Ready
    );
    let img = s(NodeSpec::cloud("a", 1).booted_from_image());
    assert_eq!((img.state, img.health), (Ready, HealthStatus::Unknown));
    assert_eq!(img.metrics.initialized_at(), Some(t));
    let r = s(NodeSpec::recovered("a", 1).provisioned_at(Timestamp(1)));
    assert_eq!((r.state, r.health), (Ready, HealthStatus::Unknown));
    assert_eq!(r.metrics.provisioned_at(), at(1));
    assert_eq!(r.metrics.recovered_at(), Some(t.wall));
    assert_eq!(r.metrics.container_sync_pending_since(), Some(t));
    let refused = |spec: NodeSpec, needle: &str| match Node::from_spec(&spec, t) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("{spec:?}: {other:?}"),
    };
    refused(
        NodeSpec::cloud("a", 1).initial_state(Active),
        "a cloud node cannot start in active",
    );
    refused(
        NodeSpec::dedicated("a", 1).initial_state(Idle),
        "a dedicated node cannot start in idle",
    );
    refused(NodeSpec::cloud("", 1), "node id must not be empty");
    refused(
        NodeSpec::cloud("a", 1).hourly_cost_eur(f64::NAN),
        "hourly_cost_eur",
    );
    refused(
        NodeSpec::cloud("a", 1).hourly_cost_eur(-0.5),
        "hourly_cost_eur",
    );
    refused(
        NodeSpec::cloud("a", 1).provisioned_at(Timestamp(1)),
        "only be given for a recovered node",
    );
    refused(NodeSpec::cloud("a", 1).label("", "x"), "label key");
    refused(NodeSpec::cloud("a", 1).label("k", "a\0b"), "label value");
}

#[test]
fn initialized_at_is_set_on_cloud_init_completion_and_only_once() {
    let mut n = ready_node();
    assert_eq!(n.metrics.initialized_at(), Some(at(20)));
    n.transition(Unhealthy, at(30)).unwrap();
    n.transition(Ready, at(40)).unwrap();
    assert_eq!(n.metrics.initialized_at(), Some(at(20)));
    assert_eq!(n.metrics.container_sync_pending_since(), Some(at(40)));
}

#[test]
fn self_transition_is_a_no_op_and_invalid_changes_nothing() {
    let mut n = ready_node();
    let before = n.clone();
    assert_eq!(n.transition(Ready, at(99)).unwrap(), None);
    assert_eq!(n, before);
    let err = n.transition(Initializing, at(99)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node \"n1\": invalid lifecycle transition from ready to initializing"
    );
    assert_eq!(n, before);
}

#[test]
fn container_events_are_idempotent_and_maintain_counters() {
    let mut n = ready_node();
    assert!(n.insert_container(&Text::from("c1"), 1024, at(30)));
    assert!(!n.insert_container(&Text::from("c1"), 1024, at(31)));
    assert_eq!(n.metrics.total_containers_ever, 1);
    assert_eq!(n.allocated_ram_mb, 1024);
    assert_eq!(n.metrics.first_container_at(), Some(Timestamp(30)));
    assert_eq!(
        n.occupancy_transition(),
        Some((Active, "first_container_added"))
    );
    assert_eq!(n.remove_container("nope", at(40)), None);
    assert_eq!(n.remove_container("c1", at(41)), Some(1024));
    assert_eq!(n.metrics.last_container_at(), Some(at(41)));
    assert_eq!(n.allocated_ram_mb, 0);
}

#[test]
fn claims_respect_capacity_and_a_replacement_counts_its_old_ram() {
    let mut n = ready_node();
    let a = ClaimId([1; 8]);
    n.add_claim(a, claim(8000, Some("c1")), None).unwrap();
    let err = n
        .add_claim(ClaimId([2; 8]), claim(500, None), None)
        .unwrap_err();
    assert_eq!(
        err,
        Error::InsufficientCapacity {
            node: "n1".into(),
            requested_mb: 500,
            free_mb: 192
        }
    );
    // Replacing the claim for c1 frees its 8000 MB first.
    let b = ClaimId([3; 8]);
    n.add_claim(b, claim(8192, Some("c1")), Some(a)).unwrap();
    assert_eq!(n.reserved_ram_mb, 8192);
    assert_eq!(n.claim_for_container("c1"), Some(b));
    assert!(n.take_claim(&b).is_some());
    assert_eq!(n.reserved_ram_mb, 0);
    assert!(n.rare.is_none(), "no claim left, no box");
}

#[test]
fn claims_expire_after_their_ttl_only() {
    let mut n = ready_node();
    n.add_claim(ClaimId([1; 8]), claim(1, None), None).unwrap();
    n.add_claim(
        ClaimId([2; 8]),
        Claim {
            ttl_ms: OFF,
            ..claim(1, None)
        },
        None,
    )
    .unwrap();
    let expired = |now: Moment| -> Vec<ClaimId> {
        n.claims()
            .filter(|(_, c)| c.is_expired(now))
            .map(|(id, _)| *id)
            .collect()
    };
    assert!(expired(at(999)).is_empty());
    assert_eq!(expired(at(1000)), vec![ClaimId([1; 8])]);
    assert_eq!(expired(at(i64::MAX)), vec![ClaimId([1; 8])]);
}

#[test]
fn cordons_make_a_node_unschedulable_without_changing_its_state() {
    let mut n = ready_node();
    assert!(n
        .cordon("disk-full", "disk 97% full".into(), false, at(30))
        .unwrap());
    assert!(!n
        .cordon("disk-full", "disk 98% full".into(), false, at(40))
        .unwrap());
    assert_eq!(n.state, Ready);
    assert_eq!(
        n.cordon_named("disk-full").unwrap().placed_at_ms,
        Timestamp(30),
        "re-asserting a cordon leaves it as it was"
    );
    assert_eq!(
        n.require_schedulable().unwrap_err(),
        Error::NotSchedulable {
            node: "n1".into(),
            state: Ready,
            cordons: vec!["disk-full: disk 97% full".into()]
        }
    );
    assert!(n.uncordon("disk-full"));
    assert!(!n.uncordon("disk-full"));
    assert!(n.require_schedulable().is_ok());
}

#[test]
fn emptying_under_an_evacuate_cordon_is_remembered_while_the_cordon_stays() {
    let mut n = ready_node();
    n.insert_container(&Text::from("c1"), 1, at(30));
    n.insert_container(&Text::from("c2"), 1, at(30));
    n.cordon("plan-1", "consolidation".into(), true, at(31))
        .unwrap();
    n.cordon("disk", "disk full".into(), false, at(31)).unwrap();
    n.remove_container("c1", at(32));
    assert_eq!(n.evacuation(), None, "not empty yet");
    n.remove_container("c2", at(33));
    assert_eq!(n.evacuation(), Some("plan-1"));
    n.uncordon("plan-1");
    assert_eq!(
        n.evacuation(),
        None,
        "abandoning the evacuation ends the waiver"
    );
    // A cordon placed after the node was already empty does not waive anything.
    let mut m = ready_node();
    m.insert_container(&Text::from("c"), 1, at(30));
    m.remove_container("c", at(31));
    m.cordon("late", "x".into(), true, at(32)).unwrap();
    assert_eq!(m.evacuation(), None);
}

#[test]
fn updates_refuse_ram_below_use_and_report_changes() {
    let mut n = ready_node();
    n.insert_container(&Text::from("c"), 4000, at(30));
    n.add_claim(ClaimId([1; 8]), claim(1000, None), None)
        .unwrap();
    let before = n.clone();
    for (ram, message) in [
        (
            4999,
            "node \"n1\": total_ram_mb = 4999 is below the 5000 MB its containers and claims use",
        ),
        // "Unknown" would switch the capacity checks off under the placed containers.
        (
            0,
            "node \"n1\": total_ram_mb = 0 is below the 5000 MB its containers and claims use \
             (0 means unknown capacity, which is not accepted while anything is placed on it)",
        ),
    ] {
        let err = n
            .update(&NodeUpdate {
                total_ram_mb: Some(ram),
                hourly_cost_eur: Some(1.0),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            err,
            Error::CapacityInUse {
                node: "n1".into(),
                requested_mb: ram,
                in_use_mb: 5000
            }
        );
        assert_eq!(err.to_string(), message);
        assert_eq!(n, before, "a refused update changes nothing");
    }
    let changes = n
        .update(&NodeUpdate {
            total_ram_mb: Some(5000),
            hourly_cost_eur: Some(0.25),
            labels: Some(BTreeMap::from([("zone".into(), "fsn1".into())])),
            ..Default::default()
        })
        .unwrap();
    let fields: Vec<_> = changes.iter().map(|c| (c.field, c.audited)).collect();
    assert_eq!(
        fields,
        vec![
            ("total_ram_mb", true),
            ("hourly_cost_eur", true),
            ("labels", false)
        ]
    );
    assert_eq!(n.labels["zone"], "fsn1");
    assert!(n.update(&NodeUpdate::default()).unwrap().is_empty());
}

#[test]
fn unschedulable_states_refuse_holds_when_deleting() {
    let mut n = Node::from_spec(&NodeSpec::cloud("n1", 0), at(0)).unwrap();
    // Holds are allowed while starting (nothing is deleted then) but not once draining.
    assert!(n.place_hold("h", "").unwrap());
    let mut r = ready_node();
    r.state = Draining;
    assert!(matches!(
        r.place_hold("h", ""),
        Err(Error::NotSchedulable {
            state: Draining,
            ..
        })
    ));
}

#[test]
fn sync_replaces_the_container_view_and_consumes_claims() {
    let mut n = ready_node();
    n.insert_container(&Text::from("old"), 100, at(30));
    n.add_claim(ClaimId([1; 8]), claim(200, Some("new")), None)
        .unwrap();
    n.metrics.container_sync_pending_since.set(Some(at(30)));
    let out = n.sync_containers(&BTreeMap::from([("new".into(), 200)]), at(40));
    assert_eq!(
        out,
        SyncOutcome {
            dropped: vec!["old".into()],
            added: vec!["new".into()],
            consumed_claims: vec![ClaimId([1; 8])],
        }
    );
    assert_eq!(n.containers().collect::<Vec<_>>(), vec![("new", 200)]);
    assert_eq!((n.allocated_ram_mb, n.reserved_ram_mb), (200, 0));
    assert_eq!(n.metrics.total_containers_ever, 2);
    // Refreshing the view does not end a pending sync: completing it is its own step.
    assert_eq!(n.metrics.container_sync_pending_since(), Some(at(30)));
    assert_eq!(n.metrics.container_sync_completed_at(), None);
    n.sync_containers(&BTreeMap::new(), at(50));
    assert_eq!(n.metrics.last_container_at(), Some(at(50)));
    assert!(n.complete_sync(at(60)));
    assert_eq!(n.metrics.container_sync_completed_at(), Some(at(60)));
    assert_eq!(n.metrics.container_sync_pending_since(), None);
    assert!(!n.complete_sync(at(70)), "nothing pending any more");
}
