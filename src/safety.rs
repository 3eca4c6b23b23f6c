//! The safety rules: may this node be deleted now, and if not, every reason why.
//!
//! [`evaluate`] is a pure function of (node, policy, now): no clock, no lock, no I/O. The fleet
//! calls it under its lock with the time it read once. Rule numbers refer to SPEC.md.

use crate::clock::Timestamp;
use crate::node::Node;
use crate::policy::Policy;
use crate::reason::ReasonCode;
use crate::state::{LifecycleState, NodeOrigin};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::fmt::Write as _;

/// One reason a node may not be deleted, with the figures its message is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub code: ReasonCode,
    /// Containers, reservations or holds counted by rule 3; 0 otherwise.
    pub count: u64,
    /// For timer rules: how long the node has waited so far (ms).
    pub elapsed_ms: u64,
    /// For timer rules: how long it still has to wait (ms).
    pub remaining_ms: u64,
}

impl Blocker {
    fn new(code: ReasonCode) -> Self {
        Blocker {
            code,
            count: 0,
            elapsed_ms: 0,
            remaining_ms: 0,
        }
    }

    fn counted(code: ReasonCode, count: usize) -> Self {
        Blocker {
            count: count as u64,
            ..Self::new(code)
        }
    }

    fn timer(code: ReasonCode, elapsed_ms: u64, grace_ms: u64) -> Self {
        Blocker {
            elapsed_ms,
            remaining_ms: grace_ms - elapsed_ms,
            ..Self::new(code)
        }
    }

    /// The human message, e.g. "node has 2 containers".
    pub fn message(&self, state: LifecycleState) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match self.code {
            ReasonCode::SystemNode => "cannot decommission system node".into(),
            ReasonCode::DedicatedNode => "cannot decommission dedicated node".into(),
            ReasonCode::StillStarting => format!("node is still starting up ({state})"),
            ReasonCode::HasContainers => {
                format!("node has {}", plural(self.count, "container", "containers"))
            }
            ReasonCode::HasReservations => format!(
                "node has {}",
                plural(self.count, "pending reservation", "pending reservations")
            ),
            ReasonCode::HasHolds => format!("node has {}", plural(self.count, "hold", "holds")),
            ReasonCode::ReadyTooYoung => format!(
                "ready node too young ({} since ready, wait {} more)",
                human_duration(self.elapsed_ms),
                human_duration(self.remaining_ms)
            ),
            ReasonCode::IdleTooRecent => format!(
                "node idle for only {}, wait {} more",
                human_duration(self.elapsed_ms),
                human_duration(self.remaining_ms)
            ),
            ReasonCode::NoContainerHistory => {
                format!("{state} node with zero container history (invalid state)")
            }
            ReasonCode::ContainerSyncPending => {
                "container sync pending: the node's containers are not known yet".into()
            }
            ReasonCode::RecoveryGrace => format!(
                "recovered node in post-sync grace ({} since sync, wait {} more)",
                human_duration(self.elapsed_ms),
                human_duration(self.remaining_ms)
            ),
            ReasonCode::AlreadyDecommissioned => "node is already decommissioned".into(),
            ReasonCode::DecommissionInProgress => {
                "a decommission of this node is already in progress".into()
            }
            ReasonCode::NodeNotFound => "node not found".into(),
        }
    }
}

/// The blocking reasons of a verdict, stored inline: at most one reason per rule can apply at
/// once (7), so a verdict never allocates. Derefs to a slice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Blockers {
    items: [Blocker; Blockers::CAPACITY],
    len: u8,
}

impl Blockers {
    pub const CAPACITY: usize = 8;

    pub fn new() -> Self {
        Blockers {
            items: [Blocker::new(ReasonCode::SystemNode); Self::CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, b: Blocker) {
        // Rules 1-7 add at most one blocker each; more is a bug in `evaluate`.
        assert!(
            (self.len as usize) < Self::CAPACITY,
            "more blockers than rules"
        );
        self.items[self.len as usize] = b;
        self.len += 1;
    }

    fn extend(&mut self, b: Option<Blocker>) {
        if let Some(b) = b {
            self.push(b);
        }
    }
}

impl Default for Blockers {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for Blockers {
    type Target = [Blocker];
    fn deref(&self) -> &[Blocker] {
        &self.items[..self.len as usize]
    }
}

impl std::fmt::Debug for Blockers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The answer of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The state the node was evaluated in.
    pub state: LifecycleState,
    /// The first blocking reason in rule order; `None` when allowed.
    pub primary: Option<ReasonCode>,
    /// Every blocking reason, in rule order.
    pub blockers: Blockers,
    /// When the node could next pass, if timers are the only blockers.
    pub retry_after: Option<Timestamp>,
}

impl Verdict {
    fn from_blockers(state: LifecycleState, blockers: Blockers, now: Timestamp) -> Verdict {
        let timers_only = !blockers.is_empty() && blockers.iter().all(|b| b.code.is_timer());
        let retry_after = timers_only.then(|| {
            let wait = blockers.iter().map(|b| b.remaining_ms).max().unwrap_or(0);
            Timestamp(now.0.saturating_add(wait as i64))
        });
        Verdict {
            allowed: blockers.is_empty(),
            state,
            primary: blockers.first().map(|b| b.code),
            blockers,
            retry_after,
        }
    }

    /// A refusal for one reason (used by the fleet for reasons outside the pure rules).
    pub(crate) fn refused(state: LifecycleState, code: ReasonCode) -> Verdict {
        let mut blockers = Blockers::new();
        blockers.push(Blocker::new(code));
        Verdict {
            allowed: false,
            state,
            primary: Some(code),
            blockers,
            retry_after: None,
        }
    }

    /// Whether `code` is among the blocking reasons.
    pub fn blocks_with(&self, code: ReasonCode) -> bool {
        self.blockers.iter().any(|b| b.code == code)
    }

    /// Bit `code - 100` set for every blocking reason: the C ABI's flat form of the list.
    pub fn reason_mask(&self) -> u64 {
        self.blockers
            .iter()
            .fold(0, |m, b| m | 1u64 << (b.code.code() - 100))
    }

    /// One line for people: every blocking reason joined with "; ".
    pub fn message(&self) -> String {
        if self.allowed {
            return format!("{} node may be decommissioned", self.state);
        }
        let mut out = String::new();
        for (i, b) in self.blockers.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            out.push_str(&b.message(self.state));
        }
        out
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reason {
            code: u32,
            name: ReasonCode,
            message: String,
        }
        let reasons: Vec<Reason> = self
            .blockers
            .iter()
            .map(|b| Reason {
                code: b.code.code(),
                name: b.code,
                message: b.message(self.state),
            })
            .collect();
        let mut st = s.serialize_struct("Verdict", 6)?;
        st.serialize_field("allowed", &self.allowed)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("primary_code", &self.primary.map_or(0, ReasonCode::code))?;
        st.serialize_field("reasons", &reasons)?;
        st.serialize_field("message", &self.message())?;
        st.serialize_field("retry_after_ms", &self.retry_after)?;
        st.end()
    }
}

/// Formats milliseconds the way Go prints a rounded `time.Duration` ("1h2m3s", "250ms").
pub fn human_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

/// If a timer started at `since` has not yet run `grace_ms` at `now`, the blocker for it.
fn grace_blocker(
    code: ReasonCode,
    since: Timestamp,
    grace_ms: u64,
    now: Timestamp,
) -> Option<Blocker> {
    let elapsed = now.millis_since(since);
    (elapsed < grace_ms).then(|| Blocker::timer(code, elapsed, grace_ms))
}

/// When the node's container sync completed, or counts as completed because it timed out.
/// `None` while it is genuinely pending.
pub fn effective_sync_completion(
    node: &Node,
    policy: &Policy,
    now: Timestamp,
) -> Option<Timestamp> {
    let m = node.metrics();
    match m.container_sync_pending_since_ms {
        Some(since) => {
            let deadline = since.plus(std::time::Duration::from_millis(policy.sync_timeout_ms));
            (now >= deadline).then_some(deadline)
        }
        None => m.container_sync_completed_at_ms,
    }
}

/// Decides whether `node` may be deleted at `now` under `policy`, collecting every blocking
/// reason in rule order.
pub fn evaluate(node: &Node, policy: &Policy, now: Timestamp) -> Verdict {
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
    match state {
        _ if protected => {}
        // Rule 4.
        Ready => {
            let since = m.initialized_at_ms.unwrap_or(m.provisioned_at_ms);
            blockers.extend(grace_blocker(
                ReasonCode::ReadyTooYoung,
                since,
                policy.ready_grace_ms,
                now,
            ));
        }
        // Rule 5.
        Active | Idle if empty => match m.last_container_at_ms {
            Some(last) => blockers.extend(grace_blocker(
                ReasonCode::IdleTooRecent,
                last,
                policy.idle_grace_ms,
                now,
            )),
            None => blockers.push(Blocker::new(ReasonCode::NoContainerHistory)),
        },
        // Rule 6: draining or unhealthy and empty pass; rule 3 covers them when not empty.
        _ => {}
    }
    // Rule 7, for every node whose container view had to be re-synchronised.
    if m.container_sync_pending_since_ms.is_some() || m.container_sync_completed_at_ms.is_some() {
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
    Verdict::from_blockers(state, blockers, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeSpec;
    use LifecycleState::*;

    const MIN: i64 = 60_000;

    fn policy() -> Policy {
        Policy::default()
    }

    fn cloud_at(state: LifecycleState) -> Node {
        let mut n = Node::from_spec(&NodeSpec::cloud("n", 4096), Timestamp(0)).unwrap();
        n.transition(Initializing, Timestamp(0)).unwrap();
        n.transition(Ready, Timestamp(0)).unwrap();
        match state {
            Ready => {}
            Active => {
                n.add_container("c", 512, Timestamp(0)).unwrap();
                n.transition(Active, Timestamp(0)).unwrap();
            }
            Idle => {
                n.add_container("c", 512, Timestamp(0)).unwrap();
                n.transition(Active, Timestamp(0)).unwrap();
                n.remove_container("c", Timestamp(0));
                n.transition(Idle, Timestamp(0)).unwrap();
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
            let n = Node::from_spec(&spec, Timestamp(0)).unwrap();
            // Even a year later, and even though active with no history.
            let v = evaluate(&n, &policy(), Timestamp(525_600 * MIN));
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
        let mut n = Node::from_spec(&NodeSpec::cloud("n", 0), Timestamp(0)).unwrap();
        let v = evaluate(&n, &policy(), Timestamp(600 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::StillStarting]);
        assert_eq!(v.message(), "node is still starting up (provisioning)");
        n.transition(Initializing, Timestamp(1)).unwrap();
        assert_eq!(
            evaluate(&n, &policy(), Timestamp(600 * MIN)).primary,
            Some(ReasonCode::StillStarting)
        );
    }

    #[test]
    fn rule3_every_occupancy_reason_is_listed() {
        let mut n = cloud_at(Active);
        n.add_container("c2", 512, Timestamp(0)).unwrap();
        n.reserve("r", 10).unwrap();
        n.place_hold("world-data:srv1", "stopped server").unwrap();
        let v = evaluate(&n, &policy(), Timestamp(600 * MIN));
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
            "node has 2 containers; node has 1 pending reservation; node has 1 hold"
        );
        assert_eq!(v.retry_after, None, "occupancy is not a timer");
        assert_eq!(v.reason_mask(), 0b111000);
    }

    #[test]
    fn rule4_ready_grace_counts_from_initialized_at() {
        let n = cloud_at(Ready);
        let v = evaluate(&n, &policy(), Timestamp(5 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::ReadyTooYoung]);
        assert_eq!(v.retry_after, Some(Timestamp(30 * MIN)));
        assert_eq!(
            v.message(),
            "ready node too young (5m0s since ready, wait 25m0s more)"
        );
        assert!(evaluate(&n, &policy(), Timestamp(30 * MIN)).allowed);
    }

    #[test]
    fn rule4_falls_back_to_provisioned_at() {
        // A recovered node never saw cloud-init complete; its creation time stands in.
        let mut n = Node::from_spec(
            &NodeSpec::recovered("r", 0).provisioned_at(Timestamp(-25 * MIN)),
            Timestamp(0),
        )
        .unwrap();
        n.complete_sync(Timestamp(-20 * MIN));
        let v = evaluate(&n, &policy(), Timestamp(0));
        assert_eq!(codes(&v), vec![ReasonCode::ReadyTooYoung]);
        assert_eq!(v.retry_after, Some(Timestamp(5 * MIN)));
        assert!(evaluate(&n, &policy(), Timestamp(5 * MIN)).allowed);
    }

    #[test]
    fn rule5_idle_grace_and_invalid_history() {
        let n = cloud_at(Idle);
        let v = evaluate(&n, &policy(), Timestamp(29 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::IdleTooRecent]);
        assert_eq!(v.retry_after, Some(Timestamp(30 * MIN)));
        assert!(evaluate(&n, &policy(), Timestamp(30 * MIN)).allowed);

        let mut bogus = cloud_at(Ready);
        bogus.transition(Idle, Timestamp(0)).unwrap();
        let v = evaluate(&bogus, &policy(), Timestamp(600 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::NoContainerHistory]);
        assert_eq!(
            v.message(),
            "idle node with zero container history (invalid state)"
        );
    }

    #[test]
    fn rule6_draining_and_unhealthy_pass_when_empty() {
        let mut n = cloud_at(Ready);
        n.transition(Draining, Timestamp(0)).unwrap();
        assert!(evaluate(&n, &policy(), Timestamp(0)).allowed);
        let mut u = cloud_at(Active);
        u.transition(Unhealthy, Timestamp(0)).unwrap();
        assert_eq!(
            evaluate(&u, &policy(), Timestamp(0)).primary,
            Some(ReasonCode::HasContainers)
        );
        u.remove_container("c", Timestamp(0));
        let v = evaluate(&u, &policy(), Timestamp(0));
        assert!(v.allowed, "{}", v.message());
        assert_eq!(v.primary, None);
        assert_eq!(v.message(), "unhealthy node may be decommissioned");
    }

    #[test]
    fn rule7_sync_pending_then_post_sync_grace_then_timeout() {
        let n = Node::from_spec(&NodeSpec::recovered("r", 0), Timestamp(0)).unwrap();
        // Pending: never, even past ready grace; not a timer the caller can wait out exactly.
        let v = evaluate(&n, &policy(), Timestamp(29 * MIN));
        assert!(v.blocks_with(ReasonCode::ContainerSyncPending));
        assert_eq!(v.retry_after, None);
        // The sync timeout (30 min) counts as completion at the deadline, then 10 min grace.
        let v = evaluate(&n, &policy(), Timestamp(35 * MIN));
        assert_eq!(codes(&v), vec![ReasonCode::RecoveryGrace]);
        assert_eq!(v.retry_after, Some(Timestamp(40 * MIN)));
        assert!(evaluate(&n, &policy(), Timestamp(40 * MIN)).allowed);

        let mut synced = n.clone();
        synced.complete_sync(Timestamp(MIN));
        let v = evaluate(&synced, &policy(), Timestamp(5 * MIN));
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
        n.transition(Decommissioned, Timestamp(0)).unwrap();
        let v = evaluate(&n, &policy(), Timestamp(0));
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
        assert!(!evaluate(&n, &p, Timestamp(999)).allowed);
        assert!(evaluate(&n, &p, Timestamp(1000)).allowed);
    }

    #[test]
    fn human_durations_read_like_go() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(250), "250ms");
        assert_eq!(human_duration(61_000), "1m1s");
        assert_eq!(human_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn verdict_json_has_stable_keys() {
        let v = evaluate(&cloud_at(Ready), &policy(), Timestamp(0));
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["allowed"], false);
        assert_eq!(j["state"], "ready");
        assert_eq!(j["primary_code"], 106);
        assert_eq!(j["reasons"][0]["name"], "ready_too_young");
        assert_eq!(j["retry_after_ms"], 30 * MIN);
    }
}
