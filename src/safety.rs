//! The safety rules: may this node be deleted now, and if not, every reason why.
//!
//! [`decide`] is a pure function of (inputs, policy, now): no clock, no lock, no I/O. Its
//! inputs are [`VerdictInputs`], the few numbers of a node the rules read, packed so that the
//! fleet keeps them for every node in one array and a whole-fleet evaluation walks it at memory
//! speed. [`evaluate`] is the same decision for a node, with the names (holds, cordons, who
//! waived a grace) that explain it. Rule numbers refer to the specification
//! (docs/REFERENCE.md). The answers, [`Decision`] and [`Verdict`], are defined in
//! [`crate::verdict`].

pub use crate::clock::human_duration;
use crate::clock::Moment;
use crate::metrics::OptMoment;
use crate::node::Node;
use crate::policy::Policy;
use crate::reason::ReasonCode;
use crate::state::{LifecycleState, NodeOrigin};
pub use crate::verdict::{Blocker, Blockers, Decision, Verdict};

/// What the rules read of a node, and nothing else (48 bytes). Instants are monotonic
/// milliseconds: graces are measured on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictInputs {
    state: u8,
    origin: u8,
    flags: u8,
    pub containers: u32,
    pub reservations: u32,
    pub holds: u32,
    /// Rule 4: when cloud-init completed, or when the node was registered if it never did.
    ready_since: i64,
    /// Rule 5 and 6: when the last container left ([`NEVER`] if none ever did).
    last_container_at: i64,
    /// Rule 6: when the node entered its state.
    state_entered_at: i64,
    /// Rule 7: since when the container sync is pending ([`SYNC_PENDING`]), or when it
    /// completed; [`NEVER`] if the node never had to re-sync.
    sync_at: i64,
}

/// "Never happened" in a [`VerdictInputs`] instant.
const NEVER: i64 = i64::MIN;

const MAY_HAVE_HOSTED_WORK: u8 = 1;
const GONE_AT_PROVIDER: u8 = 2;
const EVACUATED: u8 = 4;
/// `sync_at` is when the pending sync started (else when the sync completed).
const SYNC_PENDING: u8 = 8;

fn mono_of(m: OptMoment) -> i64 {
    m.get().map_or(NEVER, |m| m.mono)
}

impl Default for VerdictInputs {
    fn default() -> Self {
        VerdictInputs {
            state: LifecycleState::Decommissioned as u8,
            origin: NodeOrigin::Cloud as u8,
            flags: 0,
            containers: 0,
            reservations: 0,
            holds: 0,
            ready_since: 0,
            last_container_at: NEVER,
            state_entered_at: 0,
            sync_at: NEVER,
        }
    }
}

impl VerdictInputs {
    pub fn of(node: &Node) -> VerdictInputs {
        let m = &node.metrics;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut flags = 0;
        if node.may_have_hosted_work() {
            flags |= MAY_HAVE_HOSTED_WORK;
        }
        // Both live in the node's out-of-line part, which most nodes do not have.
        if node.rare.is_some() {
            if node.gone_at_provider().is_some() {
                flags |= GONE_AT_PROVIDER;
            }
            if node.evacuation().is_some() {
                flags |= EVACUATED;
            }
        }
        let sync_at = match m.container_sync_pending_since.get() {
            Some(since) => {
                flags |= SYNC_PENDING;
                since.mono
            }
            None => mono_of(m.container_sync_completed_at),
        };
        VerdictInputs {
            state: node.state as u8,
            origin: node.origin as u8,
            flags,
            containers: count(node.container_count()),
            reservations: count(node.reservation_count()),
            holds: count(node.hold_count()),
            ready_since: m
                .initialized_at
                .get()
                .map_or(m.provisioned_at.mono, |t| t.mono),
            last_container_at: mono_of(m.last_container_at),
            state_entered_at: m.state_entered_at.mono,
            sync_at,
        }
    }

    pub fn state(&self) -> LifecycleState {
        LifecycleState::ALL[self.state as usize]
    }

    pub fn origin(&self) -> NodeOrigin {
        NodeOrigin::ALL[self.origin as usize]
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// If a grace started at `since` (monotonic ms) has not yet run at `now`, the blocker for it.
/// A grace that is off never blocks.
fn grace_blocker(code: ReasonCode, since: i64, grace_ms: u64, now: Moment) -> Option<Blocker> {
    let grace = Policy::grace(grace_ms);
    let elapsed = now.mono.saturating_sub(since).max(0) as u64;
    (elapsed < grace).then(|| Blocker::timer(code, elapsed, grace))
}

/// The monotonic instant a pending sync counts as completed by timing out, if it has.
fn sync_timed_out_at(pending_since: i64, policy: &Policy, now: Moment) -> Option<i64> {
    let timeout = Policy::timeout(policy.sync_timeout_ms)?;
    let elapsed = now.mono.saturating_sub(pending_since).max(0) as u64;
    (elapsed >= timeout)
        .then(|| pending_since.saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX)))
}

/// When the node's container sync completed, or counts as completed because it timed out.
/// `None` while it is genuinely pending (forever, if the sync timeout is off).
pub fn effective_sync_completion(node: &Node, policy: &Policy, now: Moment) -> Option<Moment> {
    let m = node.metrics();
    match m.container_sync_pending_since() {
        Some(since) => {
            let mono = sync_timed_out_at(since.mono, policy, now)?;
            Some(Moment {
                wall: since.wall.plus_ms(mono.saturating_sub(since.mono) as u64),
                mono,
            })
        }
        None => m.container_sync_completed_at(),
    }
}

/// Decides whether a node with these inputs may be deleted at `now` under `policy`,
/// collecting every blocking reason in rule order.
#[inline]
pub fn decide(n: &VerdictInputs, policy: &Policy, now: Moment) -> Decision {
    use LifecycleState::*;
    let state = n.state();
    // Rule 8: nothing else is meaningful about a node that is gone.
    if state == Decommissioned {
        return Decision::refused(state, ReasonCode::AlreadyDecommissioned);
    }
    let mut d = Decision::new(state);
    let blockers = &mut d.blockers;
    // Rule 1.
    let origin = n.origin();
    match origin {
        NodeOrigin::System => blockers.push(Blocker::new(ReasonCode::SystemNode)),
        NodeOrigin::Dedicated => blockers.push(Blocker::new(ReasonCode::DedicatedNode)),
        NodeOrigin::Cloud | NodeOrigin::Recovered => {}
    }
    // Rule 2.
    if state.is_starting() {
        blockers.push(Blocker::new(ReasonCode::StillStarting));
    }
    // Rule 3. Allocated RAM is the sum of the containers' RAM, so the container count covers it.
    if n.containers > 0 {
        blockers.push(Blocker::counted(ReasonCode::HasContainers, n.containers));
    }
    if n.reservations > 0 {
        blockers.push(Blocker::counted(
            ReasonCode::HasReservations,
            n.reservations,
        ));
    }
    if n.holds > 0 {
        blockers.push(Blocker::counted(ReasonCode::HasHolds, n.holds));
    }
    let empty = n.containers == 0;
    // Rules 4 and 5 describe a cloud node's life. System and dedicated nodes start active with
    // no history by design; rule 1 already refuses them, and "invalid state" would mislead.
    let protected = matches!(origin, NodeOrigin::System | NodeOrigin::Dedicated);
    match state {
        _ if protected => {}
        // Rule 4.
        Ready => {
            blockers.extend(grace_blocker(
                ReasonCode::ReadyTooYoung,
                n.ready_since,
                policy.ready_grace_ms,
                now,
            ));
        }
        // Rule 5, unless the node was emptied on purpose by an evacuation.
        Active | Idle if empty => {
            if n.last_container_at == NEVER {
                blockers.push(Blocker::new(ReasonCode::NoContainerHistory));
            } else if n.has(EVACUATED) {
                d.idle_grace_waived = true;
            } else {
                blockers.extend(grace_blocker(
                    ReasonCode::IdleTooRecent,
                    n.last_container_at,
                    policy.idle_grace_ms,
                    now,
                ));
            }
        }
        // Rule 6: an unhealthy node that may have hosted work waits out the unhealthy grace,
        // from when it became unhealthy or its last container left (the health checker may
        // have dropped them), unless the provider confirmed the VM is gone. A VM that never
        // came up (never ready, never a container) is cleaned up at once.
        Unhealthy if n.has(MAY_HAVE_HOSTED_WORK) => {
            if n.has(GONE_AT_PROVIDER) {
                d.unhealthy_grace_waived = true;
            } else {
                let since =
                    if n.last_container_at != NEVER && n.state_entered_at < n.last_container_at {
                        n.last_container_at
                    } else {
                        n.state_entered_at
                    };
                blockers.extend(grace_blocker(
                    ReasonCode::UnhealthyTooRecent,
                    since,
                    policy.unhealthy_grace_ms,
                    now,
                ));
            }
        }
        // Rule 6: draining and empty passes; rule 3 covers any node that is not empty.
        _ => {}
    }
    // Rule 7, for every node whose container view had to be re-synchronised.
    let done = if n.has(SYNC_PENDING) {
        Some(sync_timed_out_at(n.sync_at, policy, now))
    } else if n.sync_at != NEVER {
        Some(Some(n.sync_at))
    } else {
        None
    };
    match done {
        None => {}
        Some(None) => blockers.push(Blocker::new(ReasonCode::ContainerSyncPending)),
        Some(Some(done)) => blockers.extend(grace_blocker(
            ReasonCode::RecoveryGrace,
            done,
            policy.post_sync_grace_ms,
            now,
        )),
    }
    d.finish(now);
    d
}

/// Decides whether `node` may be deleted at `now` under `policy`, with the names that explain
/// the decision: the holds when they block, the cordons when anything blocks, and who waived a
/// grace.
pub fn evaluate(node: &Node, policy: &Policy, now: Moment) -> Verdict {
    explain(decide(&VerdictInputs::of(node), policy, now), node)
}

/// A decision about `node` with the names that explain it.
pub fn explain(d: Decision, node: &Node) -> Verdict {
    let holds = if d.blocks_with(ReasonCode::HasHolds) {
        node.holds()
            .map(|(n, d)| (n.to_owned(), d.to_owned()))
            .collect()
    } else {
        Vec::new()
    };
    let cordons = if !d.allowed() && node.is_cordoned() {
        node.cordons()
            .map(|(n, c)| (n.to_owned(), c.reason.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    Verdict {
        allowed: d.allowed(),
        state: d.state,
        primary: d.primary(),
        blockers: d.blockers,
        retry_after: d.retry_after,
        holds,
        cordons,
        idle_grace_waived_by: d
            .idle_grace_waived
            .then(|| node.evacuation().unwrap_or_default().to_owned()),
        unhealthy_grace_waived_by: d.unhealthy_grace_waived.then(|| {
            node.gone_at_provider()
                .map(|g| g.evidence.clone())
                .unwrap_or_default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::node::NodeSpec;
    use crate::policy::OFF;
    use crate::text::Text;
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
                n.insert_container(&Text::from("c"), 512, at(0));
                n.transition(Active, at(0)).unwrap();
            }
            Idle => {
                n.insert_container(&Text::from("c"), 512, at(0));
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
        n.insert_container(&Text::from("c2"), 512, at(0));
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
        u.insert_container(&Text::from("c2"), 1, at(0));
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
        u.set_gone(Some(crate::node::GoneAtProvider {
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
        u.set_gone(None);
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
