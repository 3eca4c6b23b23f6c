//! One node's record and the mutations that keep it consistent.
//!
//! The fleet owns every `Node` behind its lock; the methods here never read a clock or take a
//! lock, they are given `now`. They enforce the node-local invariants (transition table,
//! timestamps, idempotent container events, capacity, cordons); the fleet adds auditing and the
//! fleet-wide concerns (unique container ids, claims by id, the decommission protocol).
//!
//! A fleet keeps a million nodes, so the layout is compact: texts are shared ([`Text`]), the
//! small collections are shaped for their usual size ([`marks`]), and what few nodes ever have
//! (claims, a decommission in progress, an evacuation, the provider's word that the VM is gone)
//! lives in one optional box. [`spec`] is what callers say about a node; [`record`] is how a
//! node is written to disk.

pub mod marks;
mod record;
mod spec;

pub use marks::{Containers, ContainersIter, Cordon, Hold, Labels, Marks};
pub(crate) use spec::validate_ram;
pub use spec::{
    NodeSpec, NodeUpdate, MAX_CONTAINERS_PER_NODE, MAX_HOURLY_COST_EUR, MAX_LABELS,
    MAX_MARKS_PER_NODE, MAX_RAM_MB,
};

use crate::clock::{Moment, Timestamp};
use crate::error::{Error, Result};
use crate::ids::{ClaimId, TicketId};
use crate::metrics::NodeMetrics;
use crate::policy::Policy;
use crate::state::{is_allowed_transition, HealthStatus, LifecycleState, NodeOrigin};
use crate::text::{validate_detail, validate_name, Text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Capacity claimed by a placement that is not running yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub ram_mb: u64,
    /// Set for a keyed reservation (`reserve`) and once known.
    pub container_id: Option<Text>,
    pub created_at: Moment,
    /// After how long it expires; [`crate::policy::OFF`] for never.
    pub ttl_ms: u64,
}

impl Claim {
    pub fn age_ms(&self, now: Moment) -> u64 {
        now.elapsed_since(self.created_at)
    }

    pub fn is_expired(&self, now: Moment) -> bool {
        Policy::timeout(self.ttl_ms).is_some_and(|ttl| self.age_ms(now) >= ttl)
    }
}

/// An outstanding two-phase decommission on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub ticket: TicketId,
    pub decision_by: Text,
    pub issued_at: Timestamp,
    /// The state before draining, restored by a cancelled decommission.
    pub pre_drain_state: LifecycleState,
}

/// The provider's word that a node's VM no longer exists (`confirm_gone`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneAtProvider {
    pub confirmed_at_ms: Timestamp,
    /// What the provider said (sanitised), e.g. "GET /servers/123: 404".
    pub evidence: String,
}

/// A change of lifecycle state that was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: LifecycleState,
    pub to: LifecycleState,
}

/// What a container sync changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncOutcome {
    /// Containers the node no longer runs.
    pub dropped: Vec<Text>,
    /// Containers that are new on the node.
    pub added: Vec<Text>,
    /// Claims consumed by containers that are now running.
    pub consumed_claims: Vec<ClaimId>,
}

/// One attribute that an update changed, for the audit entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AttributeChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
    /// RAM and cost changes are audited; the others are bookkeeping.
    pub audited: bool,
}

/// What few nodes have at any time, kept out of line (see the module comment). A node has the
/// box only while one of these is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rare {
    /// Claims and keyed reservations not yet confirmed, sorted by id.
    pub(crate) claims: Vec<(ClaimId, Claim)>,
    pub(crate) drain: Option<Drain>,
    /// The evacuate cordon that was in place when the last container left, if any.
    pub(crate) evacuated_by: Option<Text>,
    /// Set while the node is unhealthy and the provider confirmed its VM is gone.
    pub(crate) gone: Option<GoneAtProvider>,
    /// Registered before its VM existed and not bound to it yet (see [`NodeSpec::placeholder`]).
    pub(crate) placeholder: bool,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.claims.is_empty()
            && self.drain.is_none()
            && self.evacuated_by.is_none()
            && self.gone.is_none()
            && !self.placeholder
    }
}

/// A node. Written to disk in the shape [`record`] describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub(crate) id: Text,
    pub(crate) instance_type: Text,
    pub(crate) labels: Labels,
    /// container id -> RAM in MB.
    pub(crate) containers: Containers,
    pub(crate) holds: Marks<Hold>,
    pub(crate) cordons: Marks<Cordon>,
    pub(crate) rare: Option<Box<Rare>>,
    pub(crate) total_ram_mb: u64,
    pub(crate) allocated_ram_mb: u64,
    pub(crate) reserved_ram_mb: u64,
    pub(crate) hourly_cost_eur: f64,
    pub(crate) consecutive_health_failures: u32,
    pub(crate) origin: NodeOrigin,
    pub(crate) state: LifecycleState,
    pub(crate) health: HealthStatus,
    pub(crate) metrics: NodeMetrics,
}

impl Node {
    /// Builds the node a spec describes, registered at `now`.
    pub(crate) fn from_spec(spec: &NodeSpec, now: Moment) -> Result<Node> {
        validate_name("node id", &spec.id)?;
        spec.attributes().validate()?;
        if spec.provisioned_at_ms.is_some() && spec.origin != NodeOrigin::Recovered {
            return Err(Error::InvalidArgument(
                "provisioned_at_ms may only be given for a recovered node".into(),
            ));
        }
        if spec.placeholder && (spec.origin != NodeOrigin::Cloud || spec.initial_state.is_some()) {
            return Err(Error::InvalidArgument(
                "only a cloud node that starts provisioning can be a placeholder".into(),
            ));
        }
        let state = spec.starting_state()?;
        let health = match spec.origin {
            NodeOrigin::System | NodeOrigin::Dedicated => HealthStatus::Healthy,
            NodeOrigin::Cloud | NodeOrigin::Recovered => HealthStatus::Unknown,
        };
        // A creation time in the future would make the node look younger than it is for ever.
        let provisioned_at = match spec.provisioned_at_ms {
            Some(t) if t < now.wall => Moment {
                wall: t,
                mono: now.mono.saturating_sub(now.wall.millis_since(t) as i64),
            },
            _ => now,
        };
        let mut metrics = NodeMetrics::new(provisioned_at, now);
        if spec.origin == NodeOrigin::Recovered {
            metrics.recovered_at.set(Some(now.wall));
            metrics.container_sync_pending_since.set(Some(now));
        }
        if spec.origin == NodeOrigin::Cloud && state == LifecycleState::Ready {
            metrics.initialized_at.set(Some(now));
        }
        Ok(Node {
            id: Text::new(&spec.id),
            instance_type: Text::new(&spec.instance_type),
            labels: Labels::new(spec.labels.clone()),
            containers: Containers::default(),
            holds: Marks::default(),
            cordons: Marks::default(),
            rare: spec.placeholder.then(|| {
                Box::new(Rare {
                    placeholder: true,
                    ..Rare::default()
                })
            }),
            total_ram_mb: spec.total_ram_mb,
            allocated_ram_mb: 0,
            reserved_ram_mb: 0,
            hourly_cost_eur: spec.hourly_cost_eur,
            consecutive_health_failures: 0,
            origin: spec.origin,
            state,
            health,
            metrics,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    /// The id as the node keeps it (shared, not copied).
    pub fn id_text(&self) -> &Text {
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
    /// Claims and keyed reservations not yet confirmed or released.
    pub fn reservation_count(&self) -> usize {
        self.claim_list().len()
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
    pub fn labels(&self) -> &Labels {
        &self.labels
    }
    pub fn consecutive_health_failures(&self) -> u32 {
        self.consecutive_health_failures
    }
    pub fn drain(&self) -> Option<&Drain> {
        self.rare.as_ref()?.drain.as_ref()
    }
    pub fn containers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.containers.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// The RAM of a container the node runs.
    pub fn container_ram(&self, id: &str) -> Option<u64> {
        self.containers.get(id)
    }
    pub fn has_container(&self, id: &str) -> bool {
        self.containers.contains(id)
    }
    /// The containers with their ids as the node keeps them (shared, not copied).
    pub(crate) fn container_set(&self) -> &Containers {
        &self.containers
    }
    fn claim_list(&self) -> &[(ClaimId, Claim)] {
        self.rare.as_ref().map_or(&[], |r| r.claims.as_slice())
    }
    pub fn claims(&self) -> impl Iterator<Item = (&ClaimId, &Claim)> {
        self.claim_list().iter().map(|(id, c)| (id, c))
    }
    pub fn claim(&self, id: &ClaimId) -> Option<&Claim> {
        let list = self.claim_list();
        list.binary_search_by(|(c, _)| c.cmp(id))
            .ok()
            .map(|i| &list[i].1)
    }
    pub fn holds(&self) -> impl Iterator<Item = (&str, &str)> {
        self.holds
            .iter()
            .map(|h| (h.name.as_str(), h.detail.as_str()))
    }
    /// The holds as the node keeps them (an audit snapshot shares the list).
    pub fn hold_marks(&self) -> &Marks<Hold> {
        &self.holds
    }
    pub fn cordons(&self) -> impl Iterator<Item = (&str, &Cordon)> {
        self.cordons.iter().map(|c| (c.name.as_str(), c))
    }
    /// The cordons as the node keeps them (an audit snapshot shares the list).
    pub fn cordon_marks(&self) -> &Marks<Cordon> {
        &self.cordons
    }
    pub fn cordon_named(&self, name: &str) -> Option<&Cordon> {
        self.cordons.get(name)
    }
    pub fn is_cordoned(&self) -> bool {
        !self.cordons.is_empty()
    }

    /// Whether the node is a placeholder not yet bound to its VM.
    pub fn is_placeholder(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.placeholder)
    }

    /// Binds a placeholder to its VM: it is an ordinary node from then on.
    pub(crate) fn bind_placeholder(&mut self) {
        if self.is_placeholder() {
            self.edit_rare(|r| r.placeholder = false);
        }
    }

    /// The provider's confirmation that the VM is gone, while the node is unhealthy.
    pub fn gone_at_provider(&self) -> Option<&GoneAtProvider> {
        self.rare.as_ref()?.gone.as_ref()
    }

    /// The out-of-line part, created when first needed.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    /// Edits the out-of-line part and drops it again when nothing is left in it.
    pub(crate) fn edit_rare<R>(&mut self, f: impl FnOnce(&mut Rare) -> R) -> R {
        let out = f(self.rare_mut());
        if self.rare.as_ref().is_some_and(|r| r.is_empty()) {
            self.rare = None;
        }
        out
    }

    pub(crate) fn set_drain(&mut self, drain: Option<Drain>) {
        self.edit_rare(|r| r.drain = drain);
    }

    pub(crate) fn take_drain(&mut self) -> Option<Drain> {
        self.rare.as_ref()?.drain.as_ref()?;
        self.edit_rare(|r| r.drain.take())
    }

    pub(crate) fn set_gone(&mut self, gone: Option<GoneAtProvider>) {
        if gone.is_some() || self.gone_at_provider().is_some() {
            self.edit_rare(|r| r.gone = gone);
        }
    }

    fn set_evacuated_by(&mut self, by: Option<Text>) {
        if by.is_some() || self.rare.as_ref().is_some_and(|r| r.evacuated_by.is_some()) {
            self.edit_rare(|r| r.evacuated_by = by);
        }
    }

    /// Whether the node may have run work that deleting it would kill: it became ready once
    /// (cloud-init completed, or it booted ready), hosted a container, or was found after a
    /// restart (its containers are not known). A VM that never came up has none.
    pub fn may_have_hosted_work(&self) -> bool {
        let m = &self.metrics;
        m.initialized_at.is_some()
            || m.total_containers_ever > 0
            || self.origin == NodeOrigin::Recovered
            || m.container_sync_pending_since.is_some()
            || m.container_sync_completed_at.is_some()
    }

    /// The evacuate cordon that emptied this node, while it is still in place: the node was
    /// emptied on purpose and the idle grace does not apply.
    pub fn evacuation(&self) -> Option<&str> {
        self.evacuation_text().map(Text::as_str)
    }

    pub(crate) fn evacuation_text(&self) -> Option<&Text> {
        let name = self.rare.as_ref()?.evacuated_by.as_ref()?;
        match self.cordons.get(name) {
            Some(c) if c.evacuate && self.containers.is_empty() => Some(name),
            _ => None,
        }
    }

    /// Containers, claims or holds: anything that makes deleting the VM lose something.
    pub fn is_occupied(&self) -> bool {
        !self.containers.is_empty() || !self.claim_list().is_empty() || !self.holds.is_empty()
    }

    /// Whether placement may put a new container or claim here: a ready, active or idle node
    /// without cordons.
    pub fn is_schedulable(&self) -> bool {
        self.state.is_schedulable() && self.cordons.is_empty()
    }

    /// RAM neither allocated nor reserved; `None` when the node's capacity is unknown.
    pub fn free_ram_mb(&self) -> Option<u64> {
        (self.total_ram_mb > 0).then(|| {
            self.total_ram_mb
                .saturating_sub(self.allocated_ram_mb)
                .saturating_sub(self.reserved_ram_mb)
        })
    }

    pub(crate) fn not_schedulable(&self) -> Error {
        Error::NotSchedulable {
            node: self.id.to_string(),
            state: self.state,
            cordons: self
                .cordons
                .iter()
                .map(|c| format!("{}: {}", c.name, c.reason))
                .collect(),
        }
    }

    pub(crate) fn require_schedulable(&self) -> Result<()> {
        if self.is_schedulable() {
            Ok(())
        } else {
            Err(self.not_schedulable())
        }
    }

    /// Checks that `ram_mb` more fits; a node of unknown capacity takes anything.
    pub(crate) fn require_room(&self, ram_mb: u64, freed_mb: u64) -> Result<()> {
        match self.free_ram_mb() {
            Some(free) if ram_mb > free.saturating_add(freed_mb) => {
                Err(Error::InsufficientCapacity {
                    node: self.id.to_string(),
                    requested_mb: ram_mb,
                    free_mb: free.saturating_add(freed_mb),
                })
            }
            _ => Ok(()),
        }
    }

    // ----- attributes ------------------------------------------------------------------------

    /// Applies new attributes. RAM below what is allocated plus reserved is refused. Returns
    /// what changed.
    pub(crate) fn update(&mut self, u: &NodeUpdate) -> Result<Vec<AttributeChange>> {
        u.validate()?;
        let mut changes = Vec::new();
        if let Some(ram) = u.total_ram_mb {
            // 0 means "unknown" and switches capacity checks off: not while anything is placed,
            // or the next claim would land on a full node.
            let used = self.allocated_ram_mb.saturating_add(self.reserved_ram_mb);
            if ram < used {
                return Err(Error::CapacityInUse {
                    node: self.id.to_string(),
                    requested_mb: ram,
                    in_use_mb: used,
                });
            }
            if ram != self.total_ram_mb {
                changes.push(AttributeChange {
                    field: "total_ram_mb",
                    from: self.total_ram_mb.to_string(),
                    to: ram.to_string(),
                    audited: true,
                });
            }
        }
        if let Some(cost) = u.hourly_cost_eur {
            if cost != self.hourly_cost_eur {
                changes.push(AttributeChange {
                    field: "hourly_cost_eur",
                    from: self.hourly_cost_eur.to_string(),
                    to: cost.to_string(),
                    audited: true,
                });
            }
        }
        if let Some(t) = &u.instance_type {
            if *t != self.instance_type {
                changes.push(AttributeChange {
                    field: "instance_type",
                    from: self.instance_type.to_string(),
                    to: t.clone(),
                    audited: false,
                });
            }
        }
        let labels_change = u.labels.as_ref().filter(|labels| **labels != *self.labels);
        if let Some(labels) = labels_change {
            changes.push(AttributeChange {
                field: "labels",
                from: format!("{} labels", self.labels.len()),
                to: format!("{} labels", labels.len()),
                audited: false,
            });
        }
        // Everything is validated: apply.
        if let Some(ram) = u.total_ram_mb {
            self.total_ram_mb = ram;
        }
        if let Some(cost) = u.hourly_cost_eur {
            self.hourly_cost_eur = cost;
        }
        if let Some(t) = &u.instance_type {
            if *t != self.instance_type {
                self.instance_type = Text::new(t);
            }
        }
        if let Some(labels) = labels_change {
            self.labels = Labels::new(labels.clone());
        }
        Ok(changes)
    }

    // ----- lifecycle -------------------------------------------------------------------------

    /// Applies one table transition and its timestamp rules. A transition to the current state
    /// returns `Ok(None)` and changes nothing. Protocol-only states are the fleet's concern.
    pub(crate) fn transition(
        &mut self,
        to: LifecycleState,
        now: Moment,
    ) -> Result<Option<StateChange>> {
        let from = self.state;
        if from == to {
            return Ok(None);
        }
        if !is_allowed_transition(from, to) {
            return Err(Error::InvalidTransition {
                node: self.id.to_string(),
                from,
                to,
            });
        }
        self.metrics.record_state_change(from, now);
        self.state = to;
        if from == LifecycleState::Initializing
            && to == LifecycleState::Ready
            && !self.metrics.initialized_at.is_some()
        {
            self.metrics.initialized_at.set(Some(now));
        }
        if from == LifecycleState::Unhealthy && to == LifecycleState::Ready {
            // Containers may have come or gone while the node was unreachable: it only counts
            // as empty again once its container view has been re-synchronised.
            self.metrics.container_sync_pending_since.set(Some(now));
        }
        if from == LifecycleState::Unhealthy {
            // It answers again: whatever the provider said, the VM is there.
            self.set_gone(None);
        }
        Ok(Some(StateChange { from, to }))
    }

    /// Leaves `draining` for the state the node had before it (the cancel path, which the
    /// transition table deliberately does not contain). An empty node that was `active` goes
    /// back to `idle`, the state an empty productive node belongs in.
    pub(crate) fn restore_from_drain(
        &mut self,
        pre_drain: LifecycleState,
        now: Moment,
    ) -> Option<StateChange> {
        if self.state != LifecycleState::Draining {
            return None;
        }
        let to = match pre_drain {
            LifecycleState::Ready => LifecycleState::Ready,
            _ => LifecycleState::Idle,
        };
        self.metrics
            .record_state_change(LifecycleState::Draining, now);
        self.state = to;
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

    // ----- containers ------------------------------------------------------------------------

    /// Checks a container event's arguments.
    pub(crate) fn validate_container(id: &str, ram_mb: u64) -> Result<()> {
        validate_name("container id", id)?;
        validate_ram("ram_mb", ram_mb)
    }

    /// Whether one more container would exceed the per-node bound.
    pub(crate) fn require_container_slot(&self, id: &str) -> Result<()> {
        if self.containers.len() >= MAX_CONTAINERS_PER_NODE && !self.containers.contains(id) {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_CONTAINERS_PER_NODE} containers",
                self.id.as_str()
            )));
        }
        Ok(())
    }

    /// Records a running container (or updates its RAM). Returns whether it is new. Callers have
    /// checked schedulability, the per-node bound and fleet-wide uniqueness.
    pub(crate) fn insert_container(&mut self, id: &Text, ram_mb: u64, now: Moment) -> bool {
        self.set_evacuated_by(None);
        match self.containers.insert(id, ram_mb) {
            Some(old) => {
                self.allocated_ram_mb = self.allocated_ram_mb - old + ram_mb;
                false
            }
            None => {
                self.allocated_ram_mb += ram_mb;
                self.metrics.total_containers_ever =
                    self.metrics.total_containers_ever.saturating_add(1);
                if self.metrics.first_container_at.get().is_none() {
                    self.metrics.first_container_at.set(Some(now.wall));
                }
                true
            }
        }
    }

    /// Removes a container; `None` if the id was unknown (a reported no-op), else its RAM.
    pub(crate) fn remove_container(&mut self, id: &str, now: Moment) -> Option<u64> {
        let ram = self.containers.remove(id)?;
        self.allocated_ram_mb -= ram;
        if self.containers.is_empty() {
            self.emptied(now);
        }
        Some(ram)
    }

    /// The last container left at `now`: start the idle timer, and remember an evacuate cordon
    /// that was in place, because then the node was emptied on purpose.
    fn emptied(&mut self, now: Moment) {
        self.metrics.last_container_at.set(Some(now));
        // Containers an unhealthy node lost were not moved off it on purpose: that is no
        // evacuation, whatever cordon is in place.
        let by = if self.state == LifecycleState::Unhealthy {
            None
        } else {
            self.cordons
                .iter()
                .find(|c| c.evacuate)
                .map(|c| c.name.clone())
        };
        self.set_evacuated_by(by);
    }

    /// Replaces the container view with what the node really runs. Claims for containers that
    /// are now running are consumed. A pending container sync stays pending: completing it is
    /// its own step (`complete_sync`), so a caller can refresh its view during a restore pass
    /// without ending the protection the pass gives. Callers have validated the list and
    /// fleet-wide uniqueness.
    pub(crate) fn sync_containers(
        &mut self,
        actual: &BTreeMap<String, u64>,
        now: Moment,
    ) -> SyncOutcome {
        let had_containers = !self.containers.is_empty();
        let mut out = SyncOutcome::default();
        let stale: Vec<Text> = self
            .containers
            .iter()
            .filter(|(k, _)| !actual.contains_key(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for id in stale {
            if let Some(ram) = self.containers.remove(&id) {
                self.allocated_ram_mb -= ram;
            }
            out.dropped.push(id);
        }
        for (id, ram) in actual {
            if let Some(claim) = self.claim_for_container(id) {
                self.take_claim(&claim);
                out.consumed_claims.push(claim);
            }
            let id = Text::new(id);
            if self.insert_container(&id, *ram, now) {
                out.added.push(id);
            }
        }
        if had_containers && self.containers.is_empty() {
            self.emptied(now);
        }
        out
    }

    /// Marks a pending container sync as completed at `at`; `false` if none was pending.
    pub(crate) fn complete_sync(&mut self, at: Moment) -> bool {
        if self.metrics.container_sync_pending_since.take().is_some() {
            self.metrics.container_sync_completed_at.set(Some(at));
            true
        } else {
            false
        }
    }

    // ----- claims ----------------------------------------------------------------------------

    /// The claim reserving capacity for `container_id`, if any.
    pub(crate) fn claim_for_container(&self, container_id: &str) -> Option<ClaimId> {
        self.claim_list()
            .iter()
            .find(|(_, c)| c.container_id.as_deref() == Some(container_id))
            .map(|(id, _)| *id)
    }

    /// Adds a claim. Callers have checked schedulability; capacity is checked here, counting the
    /// RAM of a claim this one replaces (`replaces`).
    pub(crate) fn add_claim(
        &mut self,
        id: ClaimId,
        claim: Claim,
        replaces: Option<ClaimId>,
    ) -> Result<()> {
        validate_ram("ram_mb", claim.ram_mb)?;
        let freed = replaces
            .and_then(|r| self.claim(&r))
            .map_or(0, |c| c.ram_mb);
        self.require_room(claim.ram_mb, freed)?;
        if replaces.is_none() && self.claim_list().len() >= MAX_MARKS_PER_NODE {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} claims",
                self.id.as_str()
            )));
        }
        if let Some(r) = replaces {
            self.take_claim(&r);
        }
        self.reserved_ram_mb += claim.ram_mb;
        self.edit_rare(|r| match r.claims.binary_search_by(|(c, _)| c.cmp(&id)) {
            Ok(i) => r.claims[i].1 = claim,
            Err(i) => r.claims.insert(i, (id, claim)),
        });
        Ok(())
    }

    /// Removes a claim and frees its RAM.
    pub(crate) fn take_claim(&mut self, id: &ClaimId) -> Option<Claim> {
        let i = self
            .claim_list()
            .binary_search_by(|(c, _)| c.cmp(id))
            .ok()?;
        let (_, claim) = self.edit_rare(|r| r.claims.remove(i));
        self.reserved_ram_mb -= claim.ram_mb;
        Some(claim)
    }

    // ----- holds and cordons -----------------------------------------------------------------

    /// Places a named hold; refused on a node that is being deleted or gone, because the data
    /// the hold protects would be deleted with it.
    pub(crate) fn place_hold(&mut self, name: &str, detail: &str) -> Result<bool> {
        validate_name("hold name", name)?;
        validate_detail("hold detail", detail)?;
        if self.drain().is_some()
            || matches!(
                self.state,
                LifecycleState::Draining | LifecycleState::Decommissioned
            )
        {
            return Err(self.not_schedulable());
        }
        if self.holds.len() >= MAX_MARKS_PER_NODE && !self.holds.contains(name) {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} holds",
                self.id.as_str()
            )));
        }
        Ok(self
            .holds
            .insert(Hold {
                name: Text::new(name),
                detail: Text::new(detail),
            })
            .is_none())
    }

    pub(crate) fn release_hold(&mut self, name: &str) -> bool {
        self.holds.remove(name).is_some()
    }

    /// Places a named cordon. Returns whether it is new (an existing one is left as it is).
    pub(crate) fn cordon(
        &mut self,
        name: &str,
        reason: Text,
        evacuate: bool,
        now: Moment,
    ) -> Result<bool> {
        validate_name("cordon name", name)?;
        if self.state.is_terminal() {
            return Err(self.not_schedulable());
        }
        if self.cordons.contains(name) {
            // Left as it is: a caller that re-asserts its cordon every round (a disk-full check)
            // changes nothing and records nothing. To change a cordon, lift it first.
            return Ok(false);
        }
        if self.cordons.len() >= MAX_MARKS_PER_NODE {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} cordons",
                self.id.as_str()
            )));
        }
        self.cordons.insert(Cordon {
            name: Text::new(name),
            reason,
            evacuate,
            placed_at_ms: now.wall,
        });
        Ok(true)
    }

    /// Lifts a cordon. An evacuation waiver belongs to the cordon it happened under: lifting
    /// that cordon ends it, so a new cordon of the same name placed later on the already empty
    /// node waives nothing.
    pub(crate) fn uncordon(&mut self, name: &str) -> bool {
        let waived_by_it = self.rare.as_ref().and_then(|r| r.evacuated_by.as_deref()) == Some(name);
        if waived_by_it {
            self.set_evacuated_by(None);
        }
        self.cordons.remove(name).is_some()
    }

    /// A claim's TTL as given (0 = the policy's default, OFF = never).
    pub(crate) fn claim_ttl(requested_ms: u64, policy: &Policy) -> Result<u64> {
        crate::policy::duration_setting("ttl_ms", requested_ms, policy.claim_ttl_ms)
    }
}

#[cfg(test)]
mod tests;
