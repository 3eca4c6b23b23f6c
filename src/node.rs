//! One node's record and the mutations that keep it consistent.
//!
//! The fleet owns every `Node` behind its lock; the methods here never read a clock or take a
//! lock, they are given `now`. They enforce the node-local invariants (transition table,
//! timestamps, idempotent container events); the fleet adds auditing and cross-node concerns.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::metrics::NodeMetrics;
use crate::state::{is_allowed_transition, HealthStatus, LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest node, container, hold or caller name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// RAM figures above this (1 PiB in MB) are refused as unit mistakes.
pub const MAX_RAM_MB: u64 = 1 << 30;

/// What a caller knows about a node when registering it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    pub origin: NodeOrigin,
    /// Usable RAM for containers; 0 means unknown (no capacity check on reservations).
    #[serde(default)]
    pub total_ram_mb: u64,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub hourly_cost_eur: f64,
    /// Only for dedicated nodes: `active` (default) or `ready`.
    #[serde(default)]
    pub initial_state: Option<LifecycleState>,
    /// Only for recovered nodes: the VM's creation time at the provider, if known.
    #[serde(default)]
    pub provisioned_at_ms: Option<Timestamp>,
}

impl NodeSpec {
    fn with_origin(id: impl Into<String>, origin: NodeOrigin, total_ram_mb: u64) -> Self {
        NodeSpec {
            id: id.into(),
            origin,
            total_ram_mb,
            instance_type: String::new(),
            hourly_cost_eur: 0.0,
            initial_state: None,
            provisioned_at_ms: None,
        }
    }

    /// A VM the conductor just asked the provider for; starts in `provisioning`.
    pub fn cloud(id: impl Into<String>, total_ram_mb: u64) -> Self {
        Self::with_origin(id, NodeOrigin::Cloud, total_ram_mb)
    }

    /// A node the control plane runs on; starts `active`, is never decommissioned.
    pub fn system(id: impl Into<String>, total_ram_mb: u64) -> Self {
        Self::with_origin(id, NodeOrigin::System, total_ram_mb)
    }

    /// A dedicated machine; starts `active` (or `ready` via `initial_state`), never decommissioned.
    pub fn dedicated(id: impl Into<String>, total_ram_mb: u64) -> Self {
        Self::with_origin(id, NodeOrigin::Dedicated, total_ram_mb)
    }

    /// A cloud node found again after a restart; starts `ready` with its container sync pending.
    pub fn recovered(id: impl Into<String>, total_ram_mb: u64) -> Self {
        Self::with_origin(id, NodeOrigin::Recovered, total_ram_mb)
    }

    pub fn instance_type(mut self, t: impl Into<String>) -> Self {
        self.instance_type = t.into();
        self
    }

    pub fn hourly_cost_eur(mut self, eur: f64) -> Self {
        self.hourly_cost_eur = eur;
        self
    }

    pub fn initial_state(mut self, s: LifecycleState) -> Self {
        self.initial_state = Some(s);
        self
    }

    pub fn provisioned_at(mut self, t: Timestamp) -> Self {
        self.provisioned_at_ms = Some(t);
        self
    }

    /// The state this spec starts in, or why the spec is inconsistent.
    fn starting_state(&self) -> Result<LifecycleState> {
        use LifecycleState::*;
        let default = match self.origin {
            NodeOrigin::Cloud => Provisioning,
            NodeOrigin::System | NodeOrigin::Dedicated => Active,
            NodeOrigin::Recovered => Ready,
        };
        match (self.origin, self.initial_state) {
            (_, None) => Ok(default),
            (NodeOrigin::Dedicated, Some(s @ (Active | Ready))) => Ok(s),
            (_, Some(s)) if s == default => Ok(s),
            (o, Some(s)) => Err(Error::InvalidArgument(format!(
                "a {o} node cannot start in {s}"
            ))),
        }
    }
}

/// Checks a caller-supplied name (node, container, hold, decision_by).
pub(crate) fn validate_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; the maximum is {MAX_NAME_LEN}",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{what} {s:?} contains control characters"
        )));
    }
    Ok(())
}

pub(crate) fn validate_ram(what: &str, mb: u64) -> Result<()> {
    if mb > MAX_RAM_MB {
        return Err(Error::InvalidArgument(format!(
            "{what} = {mb} MB exceeds the maximum of {MAX_RAM_MB} MB"
        )));
    }
    Ok(())
}

/// An outstanding two-phase decommission on a draining node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainTicket {
    pub ticket: u64,
    pub decision_by: String,
    pub issued_at_ms: Timestamp,
}

/// A change of lifecycle state that was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub from: LifecycleState,
    pub to: LifecycleState,
}

/// Serialised as is by the journal and snapshots (see [`crate::storage`]); field names are part
/// of the on-disk format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub(crate) id: String,
    pub(crate) origin: NodeOrigin,
    pub(crate) state: LifecycleState,
    pub(crate) health: HealthStatus,
    pub(crate) total_ram_mb: u64,
    pub(crate) instance_type: String,
    pub(crate) hourly_cost_eur: f64,
    /// container id -> RAM in MB.
    pub(crate) containers: BTreeMap<String, u64>,
    /// container id -> RAM in MB, reserved by placement and not yet confirmed.
    pub(crate) reservations: BTreeMap<String, u64>,
    /// hold name -> free-form detail.
    pub(crate) holds: BTreeMap<String, String>,
    pub(crate) allocated_ram_mb: u64,
    pub(crate) reserved_ram_mb: u64,
    pub(crate) consecutive_health_failures: u32,
    pub(crate) metrics: NodeMetrics,
    /// The state before `draining`, restored by a cancelled decommission.
    pub(crate) pre_drain_state: Option<LifecycleState>,
    pub(crate) drain: Option<DrainTicket>,
}

impl Node {
    /// Builds the node a spec describes, registered at `now`.
    pub(crate) fn from_spec(spec: &NodeSpec, now: Timestamp) -> Result<Node> {
        validate_name("node id", &spec.id)?;
        validate_ram("total_ram_mb", spec.total_ram_mb)?;
        if spec.instance_type.len() > MAX_NAME_LEN {
            return Err(Error::InvalidArgument("instance_type is too long".into()));
        }
        if !spec.hourly_cost_eur.is_finite() || spec.hourly_cost_eur < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "hourly_cost_eur = {} must be a finite, non-negative number",
                spec.hourly_cost_eur
            )));
        }
        if spec.provisioned_at_ms.is_some() && spec.origin != NodeOrigin::Recovered {
            return Err(Error::InvalidArgument(
                "provisioned_at_ms may only be given for a recovered node".into(),
            ));
        }
        let state = spec.starting_state()?;
        let health = match spec.origin {
            NodeOrigin::System | NodeOrigin::Dedicated => HealthStatus::Healthy,
            NodeOrigin::Cloud | NodeOrigin::Recovered => HealthStatus::Unknown,
        };
        // A creation time in the future would make the node look younger than it is for ever.
        let provisioned_at = spec.provisioned_at_ms.map_or(now, |t| t.min(now));
        let mut metrics = NodeMetrics::new(provisioned_at, now);
        if spec.origin == NodeOrigin::Recovered {
            metrics.recovered_at_ms = Some(now);
            metrics.container_sync_pending_since_ms = Some(now);
        }
        Ok(Node {
            id: spec.id.clone(),
            origin: spec.origin,
            state,
            health,
            total_ram_mb: spec.total_ram_mb,
            instance_type: spec.instance_type.clone(),
            hourly_cost_eur: spec.hourly_cost_eur,
            containers: BTreeMap::new(),
            reservations: BTreeMap::new(),
            holds: BTreeMap::new(),
            allocated_ram_mb: 0,
            reserved_ram_mb: 0,
            consecutive_health_failures: 0,
            metrics,
            pre_drain_state: None,
            drain: None,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn origin(&self) -> NodeOrigin {
        self.origin
    }
    pub fn state(&self) -> LifecycleState {
        self.state
    }
    pub fn health(&self) -> HealthStatus {
        self.health
    }
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }
    pub fn container_count(&self) -> usize {
        self.containers.len()
    }
    pub fn reservation_count(&self) -> usize {
        self.reservations.len()
    }
    pub fn hold_count(&self) -> usize {
        self.holds.len()
    }
    pub fn allocated_ram_mb(&self) -> u64 {
        self.allocated_ram_mb
    }
    pub fn reserved_ram_mb(&self) -> u64 {
        self.reserved_ram_mb
    }
    pub fn total_ram_mb(&self) -> u64 {
        self.total_ram_mb
    }
    pub fn hourly_cost_eur(&self) -> f64 {
        self.hourly_cost_eur
    }
    pub fn instance_type(&self) -> &str {
        &self.instance_type
    }
    pub fn drain_ticket(&self) -> Option<&DrainTicket> {
        self.drain.as_ref()
    }
    pub fn containers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.containers.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Containers, reservations or holds: anything that makes deleting the VM lose something.
    pub fn is_occupied(&self) -> bool {
        !self.containers.is_empty() || !self.reservations.is_empty() || !self.holds.is_empty()
    }

    /// RAM neither allocated nor reserved; `None` when the node's capacity is unknown.
    pub fn free_ram_mb(&self) -> Option<u64> {
        (self.total_ram_mb > 0).then(|| {
            self.total_ram_mb
                .saturating_sub(self.allocated_ram_mb)
                .saturating_sub(self.reserved_ram_mb)
        })
    }

    /// Applies one table transition and its timestamp rules. A transition to the current state
    /// returns `Ok(None)` and changes nothing.
    pub(crate) fn transition(
        &mut self,
        to: LifecycleState,
        now: Timestamp,
    ) -> Result<Option<StateChange>> {
        let from = self.state;
        if from == to {
            return Ok(None);
        }
        if !is_allowed_transition(from, to) {
            return Err(Error::InvalidTransition {
                node: self.id.clone(),
                from,
                to,
            });
        }
        self.metrics.record_state_change(from, now);
        self.state = to;
        if from == LifecycleState::Initializing
            && to == LifecycleState::Ready
            && self.metrics.initialized_at_ms.is_none()
        {
            self.metrics.initialized_at_ms = Some(now);
        }
        if to == LifecycleState::Draining {
            self.pre_drain_state = Some(from);
        }
        if from == LifecycleState::Draining {
            // Leaving draining by any path ends the outstanding decommission.
            self.drain = None;
            self.pre_drain_state = None;
        }
        if from == LifecycleState::Unhealthy && to == LifecycleState::Ready {
            // Containers may have come or gone while the node was unreachable: it only counts
            // as empty again once its container view has been re-synchronised.
            self.metrics.container_sync_pending_since_ms = Some(now);
        }
        Ok(Some(StateChange { from, to }))
    }

    /// Leaves `draining` for the state the node had before it (the cancel path, which the
    /// transition table deliberately does not contain). An empty node that was `active` goes back
    /// to `idle`, the state an empty productive node belongs in.
    pub(crate) fn restore_from_drain(&mut self, now: Timestamp) -> Option<StateChange> {
        if self.state != LifecycleState::Draining {
            return None;
        }
        let to = match self.pre_drain_state {
            Some(LifecycleState::Ready) | None => LifecycleState::Ready,
            Some(_) => LifecycleState::Idle,
        };
        self.metrics
            .record_state_change(LifecycleState::Draining, now);
        self.state = to;
        self.pre_drain_state = None;
        self.drain = None;
        Some(StateChange {
            from: LifecycleState::Draining,
            to,
        })
    }

    /// The transition that the container count implies (`ready`/`idle` with containers become
    /// `active`, an empty `active` becomes `idle`), with its audit reason.
    pub(crate) fn occupancy_transition(&self) -> Option<(LifecycleState, &'static str)> {
        match (self.state, self.containers.is_empty()) {
            (LifecycleState::Ready, false) => {
                Some((LifecycleState::Active, "first_container_added"))
            }
            (LifecycleState::Idle, false) => Some((LifecycleState::Active, "container_added")),
            (LifecycleState::Active, true) => {
                Some((LifecycleState::Idle, "last_container_removed"))
            }
            _ => None,
        }
    }

    fn require_schedulable(&self) -> Result<()> {
        if self.state.is_schedulable() {
            Ok(())
        } else {
            Err(Error::NotSchedulable {
                node: self.id.clone(),
                state: self.state,
            })
        }
    }

    /// Adds a container (or updates its RAM if already present). Consumes a reservation with the
    /// same id. Returns whether the container is new.
    pub(crate) fn add_container(&mut self, id: &str, ram_mb: u64, now: Timestamp) -> Result<bool> {
        validate_name("container id", id)?;
        validate_ram("ram_mb", ram_mb)?;
        self.require_schedulable()?;
        if let Some(reserved) = self.reservations.remove(id) {
            self.reserved_ram_mb -= reserved;
        }
        Ok(self.insert_container(id, ram_mb, now))
    }

    fn insert_container(&mut self, id: &str, ram_mb: u64, now: Timestamp) -> bool {
        match self.containers.get_mut(id) {
            Some(ram) => {
                self.allocated_ram_mb = self.allocated_ram_mb - *ram + ram_mb;
                *ram = ram_mb;
                false
            }
            None => {
                self.containers.insert(id.to_owned(), ram_mb);
                self.allocated_ram_mb += ram_mb;
                self.metrics.total_containers_ever += 1;
                self.metrics.first_container_at_ms.get_or_insert(now);
                true
            }
        }
    }

    /// Removes a container; `false` if the id was unknown (a reported no-op).
    pub(crate) fn remove_container(&mut self, id: &str, now: Timestamp) -> bool {
        match self.containers.remove(id) {
            Some(ram) => {
                self.allocated_ram_mb -= ram;
                if self.containers.is_empty() {
                    self.metrics.last_container_at_ms = Some(now);
                }
                true
            }
            None => false,
        }
    }

    /// Replaces the container view with what the node really runs, and completes a pending sync.
    pub(crate) fn sync_containers(
        &mut self,
        actual: &[(String, u64)],
        now: Timestamp,
    ) -> Result<()> {
        for (id, ram) in actual {
            validate_name("container id", id)?;
            validate_ram("ram_mb", *ram)?;
        }
        let had_containers = !self.containers.is_empty();
        let stale: Vec<String> = self
            .containers
            .keys()
            .filter(|k| !actual.iter().any(|(id, _)| id == *k))
            .cloned()
            .collect();
        for id in stale {
            if let Some(ram) = self.containers.remove(&id) {
                self.allocated_ram_mb -= ram;
            }
        }
        for (id, ram) in actual {
            if let Some(reserved) = self.reservations.remove(id.as_str()) {
                self.reserved_ram_mb -= reserved;
            }
            self.insert_container(id, *ram, now);
        }
        if had_containers && self.containers.is_empty() {
            self.metrics.last_container_at_ms = Some(now);
        }
        self.complete_sync(now);
        Ok(())
    }

    /// Marks a pending container sync as completed at `at`; `false` if none was pending.
    pub(crate) fn complete_sync(&mut self, at: Timestamp) -> bool {
        if self
            .metrics
            .container_sync_pending_since_ms
            .take()
            .is_some()
        {
            self.metrics.container_sync_completed_at_ms = Some(at);
            true
        } else {
            false
        }
    }

    /// Reserves capacity for a container about to be placed. Re-reserving the same id updates it.
    pub(crate) fn reserve(&mut self, id: &str, ram_mb: u64) -> Result<bool> {
        validate_name("container id", id)?;
        validate_ram("ram_mb", ram_mb)?;
        self.require_schedulable()?;
        if self.containers.contains_key(id) {
            return Err(Error::InvalidArgument(format!(
                "container {id:?} is already running on node {:?}",
                self.id
            )));
        }
        let previous = self.reservations.get(id).copied().unwrap_or(0);
        if let Some(free) = self.free_ram_mb() {
            let free = free + previous;
            if ram_mb > free {
                return Err(Error::InsufficientCapacity {
                    node: self.id.clone(),
                    requested_mb: ram_mb,
                    free_mb: free,
                });
            }
        }
        self.reserved_ram_mb = self.reserved_ram_mb - previous + ram_mb;
        Ok(self.reservations.insert(id.to_owned(), ram_mb).is_none())
    }

    pub(crate) fn release_reservation(&mut self, id: &str) -> bool {
        match self.reservations.remove(id) {
            Some(ram) => {
                self.reserved_ram_mb -= ram;
                true
            }
            None => false,
        }
    }

    /// The RAM reserved for `id`, if a reservation exists.
    pub(crate) fn reservation(&self, id: &str) -> Option<u64> {
        self.reservations.get(id).copied()
    }

    /// Places a named hold; refused on a node that is draining or gone, because the data the hold
    /// protects would be deleted with it.
    pub(crate) fn place_hold(&mut self, name: &str, detail: &str) -> Result<bool> {
        validate_name("hold name", name)?;
        if detail.len() > 4 * MAX_NAME_LEN {
            return Err(Error::InvalidArgument("hold detail is too long".into()));
        }
        if self.drain.is_some()
            || matches!(
                self.state,
                LifecycleState::Draining | LifecycleState::Decommissioned
            )
        {
            return Err(Error::NotSchedulable {
                node: self.id.clone(),
                state: self.state,
            });
        }
        Ok(self
            .holds
            .insert(name.to_owned(), detail.to_owned())
            .is_none())
    }

    pub(crate) fn release_hold(&mut self, name: &str) -> bool {
        self.holds.remove(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleState::*;

    fn ready_node() -> Node {
        let mut n = Node::from_spec(&NodeSpec::cloud("n1", 8192), Timestamp(0)).unwrap();
        n.transition(Initializing, Timestamp(10)).unwrap();
        n.transition(Ready, Timestamp(20)).unwrap();
        n
    }

    #[test]
    fn origins_start_where_the_spec_says() {
        let t = Timestamp(5);
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
        let r = s(NodeSpec::recovered("a", 1).provisioned_at(Timestamp(1)));
        assert_eq!((r.state, r.health), (Ready, HealthStatus::Unknown));
        assert_eq!(r.metrics.provisioned_at_ms, Timestamp(1));
        assert_eq!(r.metrics.recovered_at_ms, Some(t));
        assert_eq!(r.metrics.container_sync_pending_since_ms, Some(t));
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
            NodeSpec::cloud("a", 1).provisioned_at(t),
            "only be given for a recovered node",
        );
    }

    #[test]
    fn initialized_at_is_set_on_cloud_init_completion_and_only_once() {
        let mut n = ready_node();
        assert_eq!(n.metrics.initialized_at_ms, Some(Timestamp(20)));
        n.transition(Unhealthy, Timestamp(30)).unwrap();
        n.transition(Ready, Timestamp(40)).unwrap();
        assert_eq!(n.metrics.initialized_at_ms, Some(Timestamp(20)));
        assert_eq!(
            n.metrics.container_sync_pending_since_ms,
            Some(Timestamp(40))
        );
    }

    #[test]
    fn self_transition_is_a_no_op_and_invalid_changes_nothing() {
        let mut n = ready_node();
        let before = n.clone();
        assert_eq!(n.transition(Ready, Timestamp(99)).unwrap(), None);
        assert_eq!(n, before);
        let err = n.transition(Initializing, Timestamp(99)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node \"n1\": invalid lifecycle transition from ready to initializing"
        );
        assert_eq!(n, before);
    }

    #[test]
    fn container_events_are_idempotent_and_maintain_counters() {
        let mut n = ready_node();
        assert!(n.add_container("c1", 1024, Timestamp(30)).unwrap());
        assert!(!n.add_container("c1", 1024, Timestamp(31)).unwrap());
        assert_eq!(n.metrics.total_containers_ever, 1);
        assert_eq!(n.allocated_ram_mb, 1024);
        assert_eq!(n.metrics.first_container_at_ms, Some(Timestamp(30)));
        assert_eq!(
            n.occupancy_transition(),
            Some((Active, "first_container_added"))
        );
        assert!(!n.remove_container("nope", Timestamp(40)));
        assert!(n.remove_container("c1", Timestamp(41)));
        assert_eq!(n.metrics.last_container_at_ms, Some(Timestamp(41)));
        assert_eq!(n.allocated_ram_mb, 0);
    }

    #[test]
    fn reservations_respect_capacity_and_are_consumed_by_the_container() {
        let mut n = ready_node();
        n.reserve("c1", 8000).unwrap();
        let err = n.reserve("c2", 500).unwrap_err();
        assert_eq!(
            err,
            Error::InsufficientCapacity {
                node: "n1".into(),
                requested_mb: 500,
                free_mb: 192
            }
        );
        // Re-reserving the same id replaces its amount rather than adding to it.
        n.reserve("c1", 8192).unwrap();
        assert_eq!(n.reserved_ram_mb, 8192);
        n.add_container("c1", 8192, Timestamp(50)).unwrap();
        assert_eq!((n.reserved_ram_mb, n.allocated_ram_mb), (0, 8192));
        assert!(n.reservations.is_empty());
    }

    #[test]
    fn unschedulable_states_refuse_containers_reservations_and_holds() {
        let mut n = Node::from_spec(&NodeSpec::cloud("n1", 0), Timestamp(0)).unwrap();
        let err = n.add_container("c", 1, Timestamp(1)).unwrap_err();
        assert_eq!(
            err,
            Error::NotSchedulable {
                node: "n1".into(),
                state: Provisioning
            }
        );
        assert!(matches!(
            n.reserve("c", 1),
            Err(Error::NotSchedulable {
                state: Provisioning,
                ..
            })
        ));
        // Holds are allowed while starting (nothing is deleted then) but not once draining.
        assert!(n.place_hold("h", "").unwrap());
        let mut r = ready_node();
        r.transition(Draining, Timestamp(30)).unwrap();
        assert!(matches!(
            r.place_hold("h", ""),
            Err(Error::NotSchedulable {
                state: Draining,
                ..
            })
        ));
        assert!(matches!(
            r.add_container("c", 1, Timestamp(31)),
            Err(Error::NotSchedulable {
                state: Draining,
                ..
            })
        ));
    }

    #[test]
    fn sync_replaces_the_container_view() {
        let mut n = ready_node();
        n.add_container("old", 100, Timestamp(30)).unwrap();
        n.metrics.container_sync_pending_since_ms = Some(Timestamp(30));
        n.sync_containers(&[("new".into(), 200)], Timestamp(40))
            .unwrap();
        assert_eq!(n.containers().collect::<Vec<_>>(), vec![("new", 200)]);
        assert_eq!(n.allocated_ram_mb, 200);
        assert_eq!(n.metrics.total_containers_ever, 2);
        assert_eq!(
            n.metrics.container_sync_completed_at_ms,
            Some(Timestamp(40))
        );
        assert_eq!(n.metrics.container_sync_pending_since_ms, None);
        n.sync_containers(&[], Timestamp(50)).unwrap();
        assert_eq!(n.metrics.last_container_at_ms, Some(Timestamp(50)));
    }
}
