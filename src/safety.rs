//! The safety rules: may this node be deleted now, and if not, every reason why.
//!
//! [`evaluate`] is a pure function of (node, policy, now): no clock, no lock, no I/O. The fleet
//! calls it under its lock with the time it read once. Rule numbers refer to the specification
//! (docs/REFERENCE.md). The answer, a [`Verdict`], is defined in [`crate::verdict`].

pub use crate::clock::human_duration;
use crate::clock::Moment;
use crate::node::Node;
use crate::policy::Policy;
use crate::reason::ReasonCode;
use crate::state::{LifecycleState, NodeOrigin};
pub use crate::verdict::{Blocker, Blockers, Verdict};

/// The verdict that `blockers` make for `node` at `now`: the retry time when timers are the
/// only blockers, and the holds and cordons by name where they explain a refusal.
fn verdict_for(node: &Node, blockers: Blockers, now: Moment) -> Verdict {
    let timers_only = !blockers.is_empty() && blockers.iter().all(|b| b.code.is_timer());
    let retry_after = timers_only.then(|| {
        let wait = blockers.iter().map(|b| b.remaining_ms).max().unwrap_or(0);
        now.wall_in(wait)
    });
    let names = |it: &mut dyn Iterator<Item = (String, String)>| it.collect::<Vec<_>>();
    let holds = if blockers.iter().any(|b| b.code == ReasonCode::HasHolds) {
        names(&mut node.holds().map(|(n, d)| (n.to_owned(), d.to_owned())))
    } else {
        Vec::new()
    };
    let cordons = if !blockers.is_empty() && node.is_cordoned() {
        names(
            &mut node
                .cordons()
                .map(|(n, c)| (n.to_owned(), c.reason.clone())),
        )
    } else {
        Vec::new()
    };
    Verdict {
        allowed: blockers.is_empty(),
        state: node.state(),
        primary: blockers.first().map(|b| b.code),
        blockers,
        retry_after,
        holds,
        cordons,
        idle_grace_waived_by: None,
        unhealthy_grace_waived_by: None,
    }
}

/// If a grace started at `since` has not yet run at `now`, the blocker for it. A grace that is
/// off never blocks.
fn grace_blocker(code: ReasonCode, since: Moment, grace_ms: u64, now: Moment) -> Option<Blocker> {
    let grace = Policy::grace(grace_ms);
    let elapsed = now.elapsed_since(since);
    (elapsed < grace).then(|| Blocker::timer(code, elapsed, grace))
}

/// When the node's container sync completed, or counts as completed because it timed out.
/// `None` while it is genuinely pending (forever, if the sync timeout is off).
pub fn effective_sync_completion(node: &Node, policy: &Policy, now: Moment) -> Option<Moment> {
    let m = node.metrics();
    match m.container_sync_pending_since {
        Some(since) => {
            let timeout = Policy::timeout(policy.sync_timeout_ms)?;
            (now.elapsed_since(since) >= timeout).then(|| Moment {
                wall: since.wall.plus_ms(timeout),
                mono: since
                    .mono
                    .saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX)),
            })
        }
        None => m.container_sync_completed_at,
    }
}

/// Decides whether `node` may be deleted at `now` under `policy`, collecting every blocking
/// reason in rule order.
pub fn evaluate(node: &Node, policy: &Policy, now: Moment) -> Verdict {
    use LifecycleState::*;
    let state = node.state();
    // Rule 8: nothing else is meaningful about a node that is gone.
    if state == Decommissioned {
        return Verdict::refused(state, ReasonCode::AlreadyDecommissioned);
    }
    let mut blockers = Blockers::new();
    // Rule 1.
    match node.origin() {
        NodeOrigin::System => blockers.push(Blocker::new(ReasonCode::SystemNode)),
        NodeOrigin::Dedicated => blockers.push(Blocker::new(ReasonCode::DedicatedNode)),
        NodeOrigin::Cloud | NodeOrigin::Recovered => {}
    }
    // Rule 2.
    if state.is_starting() {
        blockers.push(Blocker::new(ReasonCode::StillStarting));
    }
    // Rule 3. Allocated RAM is the sum of the containers' RAM, so the container count covers it.
    if node.container_count() > 0 {
        blockers.push(Blocker::counted(
            ReasonCode::HasContainers,
            node.container_count(),
        ));
    }
    if node.reservation_count() > 0 {
        blockers.push(Blocker::counted(
            ReasonCode::HasReservations,
            node.reservation_count(),
        ));
    }
    if node.hold_count() > 0 {
        blockers.push(Blocker::counted(ReasonCode::HasHolds, node.hold_count()));
    }
    let m = node.metrics();
    let empty = node.container_count() == 0;
    // Rules 4 and 5 describe a cloud node's life. System and dedicated nodes start active with
    // no history by design; rule 1 already refuses them, and "invalid state" would mislead.
    let protected = matches!(node.origin(), NodeOrigin::System | NodeOrigin::Dedicated);
    let mut waived_by = None;
    let mut unhealthy_waived_by = None;
    match state {
        _ if protected => {}
        // Rule 4.
        Ready => {
            let since = m.initialized_at.unwrap_or(m.provisioned_at);
            blockers.extend(grace_blocker(
                ReasonCode::ReadyTooYoung,
                since,
                policy.ready_grace_ms,
                now,
            ));
        }
        // Rule 5, unless the node was emptied on purpose by an evacuation.
        Active | Idle if empty => match (m.last_container_at, node.evacuation()) {
            (Some(_), Some(cordon)) => waived_by = Some(cordon.to_owned()),
            (Some(last), None) => blockers.extend(grace_blocker(
                ReasonCode::IdleTooRecent,
                last,
                policy.idle_grace_ms,
                now,
            )),
            (None, _) => blockers.push(Blocker::new(ReasonCode::NoContainerHistory)),
        },
        // Rule 6: an unhealthy node that may have hosted work waits out the unhealthy grace,
        // from when it became unhealthy or its last container left (the health checker may
        // have dropped them), unless the provider confirmed the VM is gone. A VM that never
        // came up (never ready, never a container) is cleaned up at once.
        Unhealthy if node.may_have_hosted_work() => match node.gone_at_provider() {
            Some(gone) => unhealthy_waived_by = Some(gone.evidence.clone()),
            None => {
                let since = match m.last_container_at {
                    Some(last) if m.state_entered_at.before(last) => last,
                    _ => m.state_entered_at,
                };
                blockers.extend(grace_blocker(
                    ReasonCode::UnhealthyTooRecent,
                    since,
                    policy.unhealthy_grace_ms,
                    now,
                ));
            }
        },
        // Rule 6: draining and empty passes; rule 3 covers any node that is not empty.
        _ => {}
    }
    // Rule 7, for every node whose container view had to be re-synchronised.
    if m.container_sync_pending_since.is_some() || m.container_sync_completed_at.is_some() {
        match effective_sync_completion(node, policy, now) {
            None => blockers.push(Blocker::new(ReasonCode::ContainerSyncPending)),
            Some(done) => blockers.extend(grace_blocker(
                ReasonCode::RecoveryGrace,
                done,
                policy.post_sync_grace_ms,
                now,
            )),
        }
    }
    let mut v = verdict_for(node, blockers, now);
    v.idle_grace_waived_by = waived_by;
    v.unhealthy_grace_waived_by = unhealthy_waived_by;
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::node::NodeSpec;
    use crate::policy::OFF;
    use LifecycleState::*;

    const MIN: i64 = 60_000;

    fn at(ms: i64) -> Moment {
        Moment::at(Timestamp(ms))
    }

    fn policy() -> Policy {
        Policy::default()
    }

    fn cloud_at(state: LifecycleState) -> Node {
        let mut n = Node::from_spec(&NodeSpec::cloud("n", 4096), at(0)).unwrap();
        n.transition(Initializing, at(0)).unwrap();
        n.transition(Ready, at(0)).unwrap();
        match state {
            Ready => {}
            Active => {
                n.insert_container("c", 512, at(0));
                n.transition(Active, at(0)).unwrap();
            }
            Idle => {
                n.insert_container("c", 512, at(0));
                n.transition(Active, at(0)).unwrap();
                n.remove_container("c", at(0));
                n.transition(Idle, at(0)).unwrap();
            }
            other => panic!("no fixture for {other}"),
        }
        n
    }

    fn codes(v: &Verdict) -> Vec<ReasonCode> {
        v.blockers.iter().map(|b| b.code).collect()
    }

    #[test]
    fn rule1_system_and_dedicated_nodes_never() {
        for (spec, code) in [
            (NodeSpec::system("local-node", 0), ReasonCode::SystemNode),
            (NodeSpec::dedicated("ded", 0), ReasonCode::DedicatedNode),
        ] {
            let n = Node::from_spec(&spec, at(0)).unwrap();
            // Even a year later, and even though active with no history.
            let v = evaluate(&n, &policy(), at(525_600 * MIN));
            assert!(!v.allowed);
            assert_eq!(
                codes(&v),
                vec![code],
                "only rule 1 speaks for a protected node"
            );
            assert_eq!(v.retry_after, None);
        }
    }

    #[test]
    fn rule2_starting_nodes_never() {
        let mut n = Node::from_spec(&NodeSpec::cloud("n", 0), at(0)).unwrap();
        let v = evaluate(&n, &policy(), at(600 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::StillStarting]);
        assert_eq!(v.message(), "node is still starting up (provisioning)");
        n.transition(Initializing, at(1)).unwrap();
        assert_eq!(
            evaluate(&n, &policy(), at(600 * MIN)).primary,
            Some(ReasonCode::StillStarting)
        );
    }

    #[test]
    fn rule3_every_occupancy_reason_is_listed_and_holds_are_named() {
        let mut n = cloud_at(Active);
        n.insert_container("c2", 512, at(0));
        n.add_claim(
            crate::ids::ClaimId([1; 8]),
            crate::node::Claim {
                ram_mb: 10,
                container_id: None,
                created_at: at(0),
                ttl_ms: OFF,
            },
            None,
        )
        .unwrap();
        n.place_hold("world-data:srv1", "stopped server").unwrap();
        n.place_hold("dnd", "").unwrap();
        n.cordon("disk-full", "disk 97% full".into(), false, at(0))
            .unwrap();
        let v = evaluate(&n, &policy(), at(600 * MIN));
        assert_eq!(
            codes(&v),
            vec![
                ReasonCode::HasContainers,
                ReasonCode::HasReservations,
                ReasonCode::HasHolds
            ]
        );
        assert_eq!(
            v.message(),
            "node has 2 containers; node has 1 pending reservation; \
             node has 2 holds: dnd, world-data:srv1 (stopped server); \
             cordoned: disk-full (disk 97% full)"
        );
        assert_eq!(v.retry_after, None, "occupancy is not a timer");
        assert_eq!(v.reason_mask(), 0b111000);
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["holds"][1]["name"], "world-data:srv1");
        assert_eq!(j["holds"][1]["detail"], "stopped server");
        assert_eq!(j["cordons"][0]["name"], "disk-full");
        assert_eq!(
            j["reasons"][2]["message"],
            "node has 2 holds: dnd, world-data:srv1 (stopped server)"
        );
    }

    #[test]
    fn rule4_ready_grace_counts_from_initialized_at() {
        let n = cloud_at(Ready);
        let v = evaluate(&n, &policy(), at(5 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::ReadyTooYoung]);
        assert_eq!(v.retry_after, Some(Timestamp(30 * MIN)));
        assert_eq!(
            v.message(),
            "ready node too young (5m0s since ready, wait 25m0s more)"
        );
        assert!(evaluate(&n, &policy(), at(30 * MIN)).allowed);
    }

    #[test]
    fn rule4_falls_back_to_provisioned_at() {
        // A recovered node never saw cloud-init complete; its creation time stands in.
        let mut n = Node::from_spec(
            &NodeSpec::recovered("r", 0).provisioned_at(Timestamp(-25 * MIN)),
            at(0),
        )
        .unwrap();
        n.complete_sync(at(-20 * MIN));
        let v = evaluate(&n, &policy(), at(0));
        assert_eq!(codes(&v), vec![ReasonCode::ReadyTooYoung]);
        assert_eq!(v.retry_after, Some(Timestamp(5 * MIN)));
        assert!(evaluate(&n, &policy(), at(5 * MIN)).allowed);
    }

    #[test]
    fn rule5_idle_grace_and_invalid_history() {
        let n = cloud_at(Idle);
        let v = evaluate(&n, &policy(), at(29 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::IdleTooRecent]);
        assert_eq!(v.retry_after, Some(Timestamp(30 * MIN)));
        assert!(evaluate(&n, &policy(), at(30 * MIN)).allowed);

        let mut bogus = cloud_at(Ready);
        bogus.transition(Idle, at(0)).unwrap();
        let v = evaluate(&bogus, &policy(), at(600 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::NoContainerHistory]);
        assert_eq!(
            v.message(),
            "idle node with zero container history (invalid state)"
        );
    }

    #[test]
    fn rule5_is_waived_for_a_node_emptied_by_an_evacuation() {
        let mut n = cloud_at(Active);
        n.cordon("consolidation:p1", "plan p1".into(), true, at(0))
            .unwrap();
        n.remove_container("c", at(MIN));
        n.transition(Idle, at(MIN)).unwrap();
        let v = evaluate(&n, &policy(), at(MIN));
        assert!(v.allowed, "{}", v.message());
        assert_eq!(v.idle_grace_waived_by.as_deref(), Some("consolidation:p1"));
        assert_eq!(
            v.message(),
            "idle node may be decommissioned (idle grace waived: emptied by evacuate cordon consolidation:p1)"
        );
        // Without the cordon (the plan was abandoned) the grace applies again.
        n.uncordon("consolidation:p1");
        let v = evaluate(&n, &policy(), at(MIN));
        assert_eq!(codes(&v), vec![ReasonCode::IdleTooRecent]);
        assert_eq!(v.idle_grace_waived_by, None);
    }

    #[test]
    fn graces_are_measured_on_the_monotonic_clock() {
        // The wall clock was stepped back two hours while the container came and went, then
        // forward again: five real minutes have passed, and that is what counts.
        let mut n = cloud_at(Active);
        let emptied = Moment {
            wall: Timestamp(-120 * MIN),
            mono: 0,
        };
        n.remove_container("c", emptied);
        n.transition(Idle, emptied).unwrap();
        let now = Moment {
            wall: Timestamp(5 * MIN),
            mono: 5 * MIN,
        };
        let v = evaluate(&n, &policy(), now);
        assert_eq!(codes(&v), vec![ReasonCode::IdleTooRecent]);
        assert_eq!(v.blockers[0].elapsed_ms, 5 * MIN as u64);
        assert_eq!(
            v.retry_after,
            Some(Timestamp(30 * MIN)),
            "retry-after is wall time"
        );
    }

    #[test]
    fn graces_that_are_off_never_block_and_timeouts_that_are_off_never_fire() {
        let p = Policy {
            ready_grace_ms: OFF,
            sync_timeout_ms: OFF,
            ..policy()
        };
        assert!(evaluate(&cloud_at(Ready), &p, at(0)).allowed);
        let r = Node::from_spec(&NodeSpec::recovered("r", 0), at(0)).unwrap();
        let v = evaluate(&r, &p, at(i64::MAX));
        assert!(v.blocks_with(ReasonCode::ContainerSyncPending));
    }

    #[test]
    fn rule6_draining_and_unhealthy_pass_when_empty() {
        let mut n = cloud_at(Ready);
        n.state = Draining;
        assert!(evaluate(&n, &policy(), at(0)).allowed);
        let mut u = cloud_at(Active);
        u.transition(Unhealthy, at(0)).unwrap();
        assert_eq!(
            evaluate(&u, &policy(), at(0)).primary,
            Some(ReasonCode::HasContainers)
        );
        u.remove_container("c", at(0));
        // A worker that hosted a container: a health blip is not a reason to delete it. The
        // grace runs from when it became unhealthy or lost its last container, the later.
        u.insert_container("c2", 1, at(0));
        u.remove_container("c2", at(MIN));
        let v = evaluate(&u, &policy(), at(MIN + 30_000));
        assert_eq!(codes(&v), vec![ReasonCode::UnhealthyTooRecent]);
        assert_eq!(
            v.message(),
            "unhealthy for only 30s, wait 14m30s more (or confirm at the provider that the VM is gone)"
        );
        assert_eq!(v.retry_after, Some(Timestamp(16 * MIN)));
        let v = evaluate(&u, &policy(), at(16 * MIN));
        assert!(v.allowed, "{}", v.message());
        assert_eq!(v.primary, None);
        assert_eq!(v.message(), "unhealthy node may be decommissioned");
        // The provider's word that the VM is gone waives the grace.
        u.gone = Some(Box::new(crate::node::GoneAtProvider {
            confirmed_at_ms: Timestamp(MIN),
            evidence: "GET /servers/7: 404".into(),
        }));
        let v = evaluate(&u, &policy(), at(MIN));
        assert!(v.allowed, "{}", v.message());
        assert_eq!(
            v.message(),
            "unhealthy node may be decommissioned (unhealthy grace waived: the provider \
             confirmed the VM is gone: GET /servers/7: 404)"
        );
        // Off: no grace.
        u.gone = None;
        let off = Policy {
            unhealthy_grace_ms: OFF,
            ..policy()
        };
        assert!(evaluate(&u, &off, at(MIN)).allowed);
        // A VM that never came up (stuck provisioning, timed out) hosted nothing: at once.
        let mut stuck = Node::from_spec(&NodeSpec::cloud("s", 0), at(0)).unwrap();
        stuck.transition(Unhealthy, at(15 * MIN)).unwrap();
        let v = evaluate(&stuck, &policy(), at(15 * MIN));
        assert!(v.allowed, "{}", v.message());
    }

    #[test]
    fn rule7_sync_pending_then_post_sync_grace_then_timeout() {
        let n = Node::from_spec(&NodeSpec::recovered("r", 0), at(0)).unwrap();
        // Pending: never, even past ready grace; not a timer the caller can wait out exactly.
        let v = evaluate(&n, &policy(), at(29 * MIN));
        assert!(v.blocks_with(ReasonCode::ContainerSyncPending));
        assert_eq!(v.retry_after, None);
        // The sync timeout (30 min) counts as completion at the deadline, then 10 min grace.
        let v = evaluate(&n, &policy(), at(35 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::RecoveryGrace]);
        assert_eq!(v.retry_after, Some(Timestamp(40 * MIN)));
        assert!(evaluate(&n, &policy(), at(40 * MIN)).allowed);

        let mut synced = n.clone();
        synced.complete_sync(at(MIN));
        let v = evaluate(&synced, &policy(), at(5 * MIN));
        assert_eq!(
            codes(&v),
            vec![ReasonCode::ReadyTooYoung, ReasonCode::RecoveryGrace]
        );
        assert_eq!(
            v.retry_after,
            Some(Timestamp(30 * MIN)),
            "the later of both timers"
        );
    }

    #[test]
    fn rule8_decommissioned_says_so() {
        let mut n = cloud_at(Ready);
        n.state = Decommissioned;
        let v = evaluate(&n, &policy(), at(0));
        assert_eq!(codes(&v), vec![ReasonCode::AlreadyDecommissioned]);
        assert_eq!(v.message(), "node is already decommissioned");
    }

    #[test]
    fn configurable_graces_are_honoured() {
        let p = Policy {
            ready_grace_ms: 1000,
            ..Policy::default()
        };
        let n = cloud_at(Ready);
        assert!(!evaluate(&n, &p, at(999)).allowed);
        assert!(evaluate(&n, &p, at(1000)).allowed);
    }

    #[test]
    fn extreme_clocks_do_not_panic() {
        let n = cloud_at(Idle);
        for now in [i64::MIN, -1, 0, i64::MAX] {
            for wall in [i64::MIN, 0, i64::MAX] {
                let v = evaluate(
                    &n,
                    &policy(),
                    Moment {
                        wall: Timestamp(wall),
                        mono: now,
                    },
                );
                let _ = v.message();
                let _ = serde_json::to_string(&v).unwrap();
            }
        }
    }

    #[test]
    fn human_durations_read_like_go() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(250), "250ms");
        assert_eq!(human_duration(61_000), "1m1s");
        assert_eq!(human_duration(3_600_000), "1h0m0s");
        assert_eq!(human_duration(u64::MAX), "5124095576030h25m51s");
    }

    #[test]
    fn verdict_json_has_stable_keys() {
        let v = evaluate(&cloud_at(Ready), &policy(), at(0));
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["allowed"], false);
        assert_eq!(j["state"], "ready");
        assert_eq!(j["primary_code"], 106);
        assert_eq!(j["reasons"][0]["name"], "ready_too_young");
        assert_eq!(j["retry_after_ms"], 30 * MIN);
        assert_eq!(j["holds"], serde_json::json!([]));
        assert_eq!(j["idle_grace_waived_by"], serde_json::Value::Null);
    }
}
