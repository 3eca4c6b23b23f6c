//! One node's record and the mutations that keep it consistent.
//!
//! The fleet owns every `Node` behind its lock; the methods here never read a clock or take a
//! lock, they are given `now`. They enforce the node-local invariants (transition table,
//! timestamps, idempotent container events, capacity, cordons); the fleet adds auditing and the
//! fleet-wide concerns (unique container ids, claims by id, the decommission protocol).

use crate::clock::{Moment, Timestamp};
use crate::error::{Error, Result};
use crate::ids::{ClaimId, TicketId};
use crate::metrics::NodeMetrics;
use crate::policy::Policy;
use crate::state::{is_allowed_transition, HealthStatus, LifecycleState, NodeOrigin};
use crate::text::{validate_detail, validate_name, MAX_NAME_LEN};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// RAM figures above this (1 PiB in MB) are refused as unit mistakes.
pub const MAX_RAM_MB: u64 = 1 << 30;
/// An hourly cost above this (EUR) is refused as a unit mistake.
pub const MAX_HOURLY_COST_EUR: f64 = 1_000_000.0;
/// Labels per node.
pub const MAX_LABELS: usize = 64;
/// Containers per node: far beyond what a VM runs, small enough that one node's record always
/// fits comfortably in memory and on disk.
pub const MAX_CONTAINERS_PER_NODE: usize = 100_000;
/// Claims, holds and cordons per node (each).
pub const MAX_MARKS_PER_NODE: usize = 1024;

/// The labels of every node that has none: one allocation for all of them.
static NO_LABELS: once_cell::sync::Lazy<Labels> =
    once_cell::sync::Lazy::new(|| Arc::new(BTreeMap::new()));

/// Labels as a node keeps them: the shared empty map when there are none.
pub(crate) fn shared_labels(labels: &BTreeMap<String, String>) -> Labels {
    if labels.is_empty() {
        NO_LABELS.clone()
    } else {
        Arc::new(labels.clone())
    }
}

fn deserialize_labels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Labels, D::Error> {
    let labels = BTreeMap::<String, String>::deserialize(d)?;
    Ok(if labels.is_empty() {
        NO_LABELS.clone()
    } else {
        Arc::new(labels)
    })
}

/// A node's free-form labels: key -> value. Shared with audit snapshots, so recording an entry
/// does not copy them.
pub type Labels = Arc<BTreeMap<String, String>>;

/// What a caller knows about a node when registering it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    pub origin: NodeOrigin,
    /// Usable RAM for containers; 0 means unknown (no capacity check on claims).
    #[serde(default)]
    pub total_ram_mb: u64,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub hourly_cost_eur: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Dedicated nodes: `active` (default) or `ready`. Cloud nodes: `ready` for a VM booted from
    /// a prepared image (no cloud-init): it counts as initialized at registration.
    #[serde(default)]
    pub initial_state: Option<LifecycleState>,
    /// Only for recovered nodes: the VM's creation time at the provider, if known.
    #[serde(default)]
    pub provisioned_at_ms: Option<Timestamp>,
    /// Only for cloud nodes: registered before its VM exists (so projections count it as
    /// capacity coming), under an id of the caller's. `rename` binds it to the provider's VM;
    /// until then `abandon_provisioning` retires it if the VM is never created.
    #[serde(default)]
    pub placeholder: bool,
}

impl NodeSpec {
    fn with_origin(id: impl Into<String>, origin: NodeOrigin, total_ram_mb: u64) -> Self {
        NodeSpec {
            id: id.into(),
            origin,
            total_ram_mb,
            instance_type: String::new(),
            hourly_cost_eur: 0.0,
            labels: BTreeMap::new(),
            initial_state: None,
            provisioned_at_ms: None,
            placeholder: false,
        }
    }

    /// A VM the conductor just asked the provider for (or a placeholder for one); starts in
    /// `provisioning`.
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

    /// A placeholder for a cloud VM not created yet (see [`NodeSpec::placeholder`]).
    pub fn placeholder(id: impl Into<String>, total_ram_mb: u64) -> Self {
        NodeSpec {
            placeholder: true,
            ..Self::with_origin(id, NodeOrigin::Cloud, total_ram_mb)
        }
    }

    /// A cloud node booted from a prepared image (no cloud-init): starts `ready`, initialized at
    /// registration, and the ready grace applies.
    pub fn booted_from_image(mut self) -> Self {
        self.initial_state = Some(LifecycleState::Ready);
        self
    }

    pub fn instance_type(mut self, t: impl Into<String>) -> Self {
        self.instance_type = t.into();
        self
    }

    pub fn hourly_cost_eur(mut self, eur: f64) -> Self {
        self.hourly_cost_eur = eur;
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
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
            (NodeOrigin::Cloud, Some(Ready)) => Ok(Ready),
            (_, Some(s)) if s == default => Ok(s),
            (o, Some(s)) => Err(Error::InvalidArgument(format!(
                "a {o} node cannot start in {s}"
            ))),
        }
    }

    /// The attributes this spec sets, as an update of an existing node.
    pub fn attributes(&self) -> NodeUpdate {
        NodeUpdate {
            total_ram_mb: Some(self.total_ram_mb),
            hourly_cost_eur: Some(self.hourly_cost_eur),
            instance_type: Some(self.instance_type.clone()),
            labels: Some(self.labels.clone()),
        }
    }

    /// What registering this spec again changes on the existing node: only what the spec gives.
    /// A zero RAM or cost, an empty instance type and no labels mean "not given" and leave the
    /// node's value as it is (an upsert merges; `update` sets any value explicitly).
    pub fn upsert(&self) -> NodeUpdate {
        NodeUpdate {
            total_ram_mb: (self.total_ram_mb > 0).then_some(self.total_ram_mb),
            hourly_cost_eur: (self.hourly_cost_eur != 0.0).then_some(self.hourly_cost_eur),
            instance_type: (!self.instance_type.is_empty()).then(|| self.instance_type.clone()),
            labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
        }
    }
}

/// New attributes for a node; `None` leaves one unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeUpdate {
    pub total_ram_mb: Option<u64>,
    pub hourly_cost_eur: Option<f64>,
    pub instance_type: Option<String>,
    /// Replaces every label.
    pub labels: Option<BTreeMap<String, String>>,
}

impl NodeUpdate {
    fn validate(&self) -> Result<()> {
        if let Some(ram) = self.total_ram_mb {
            validate_ram("total_ram_mb", ram)?;
        }
        if let Some(cost) = self.hourly_cost_eur {
            validate_cost(cost)?;
        }
        if let Some(t) = &self.instance_type {
            if t.len() > MAX_NAME_LEN || t.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "instance_type must be at most {MAX_NAME_LEN} bytes without control characters"
                )));
            }
        }
        if let Some(labels) = &self.labels {
            if labels.len() > MAX_LABELS {
                return Err(Error::InvalidArgument(format!(
                    "{} labels; the maximum is {MAX_LABELS}",
                    labels.len()
                )));
            }
            for (k, v) in labels {
                validate_name("label key", k)?;
                validate_detail("label value", v)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn validate_ram(what: &str, mb: u64) -> Result<()> {
    if mb > MAX_RAM_MB {
        return Err(Error::InvalidArgument(format!(
            "{what} = {mb} MB exceeds the maximum of {MAX_RAM_MB} MB"
        )));
    }
    Ok(())
}

fn validate_cost(eur: f64) -> Result<()> {
    if !eur.is_finite() || !(0.0..=MAX_HOURLY_COST_EUR).contains(&eur) {
        return Err(Error::InvalidArgument(format!(
            "hourly_cost_eur = {eur} must be a finite number from 0 to {MAX_HOURLY_COST_EUR}"
        )));
    }
    Ok(())
}

/// A named cordon: the node takes no new containers while it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cordon {
    pub reason: String,
    /// The node is being emptied on purpose: when its last container leaves while this cordon
    /// is in place, the idle grace does not apply.
    pub evacuate: bool,
    pub placed_at: Moment,
}

/// Capacity claimed by a placement that is not running yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub ram_mb: u64,
    /// Set for a keyed reservation (`reserve`) and once known.
    pub container_id: Option<String>,
    pub created_at: Moment,
    /// After how long it expires; [`OFF`] for never.
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
    pub decision_by: String,
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
    pub dropped: Vec<String>,
    /// Containers that are new on the node.
    pub added: Vec<String>,
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
    #[serde(deserialize_with = "deserialize_labels")]
    pub(crate) labels: Labels,
    /// container id -> RAM in MB.
    pub(crate) containers: BTreeMap<String, u64>,
    /// Claims and reservations not yet confirmed.
    pub(crate) claims: BTreeMap<ClaimId, Claim>,
    /// hold name -> free-form detail.
    pub(crate) holds: BTreeMap<String, String>,
    pub(crate) cordons: BTreeMap<String, Cordon>,
    pub(crate) allocated_ram_mb: u64,
    pub(crate) reserved_ram_mb: u64,
    pub(crate) consecutive_health_failures: u32,
    pub(crate) metrics: NodeMetrics,
    /// Boxed: a node rarely has one, and the fleet keeps a million nodes.
    pub(crate) drain: Option<Box<Drain>>,
    /// The evacuate cordon that was in place when the last container left, if any.
    pub(crate) evacuated_by: Option<String>,
    /// Set while the node is unhealthy and the provider confirmed its VM is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gone: Option<Box<GoneAtProvider>>,
    /// Registered before its VM existed and not bound to it yet (see [`NodeSpec::placeholder`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) placeholder: bool,
    /// When the last health result (healthy or not) was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) health_reported_at: Option<Timestamp>,
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
            metrics.recovered_at = Some(now.wall);
            metrics.container_sync_pending_since = Some(now);
        }
        if spec.origin == NodeOrigin::Cloud && state == LifecycleState::Ready {
            metrics.initialized_at = Some(now);
        }
        Ok(Node {
            id: spec.id.clone(),
            origin: spec.origin,
            state,
            health,
            total_ram_mb: spec.total_ram_mb,
            instance_type: spec.instance_type.clone(),
            hourly_cost_eur: spec.hourly_cost_eur,
            labels: shared_labels(&spec.labels),
            containers: BTreeMap::new(),
            claims: BTreeMap::new(),
            holds: BTreeMap::new(),
            cordons: BTreeMap::new(),
            allocated_ram_mb: 0,
            reserved_ram_mb: 0,
            consecutive_health_failures: 0,
            metrics,
            drain: None,
            evacuated_by: None,
            gone: None,
            placeholder: spec.placeholder,
            health_reported_at: None,
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
    /// Claims and keyed reservations not yet confirmed or released.
    pub fn reservation_count(&self) -> usize {
        self.claims.len()
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
    pub fn drain(&self) -> Option<&Drain> {
        self.drain.as_deref()
    }
    pub fn containers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.containers.iter().map(|(k, v)| (k.as_str(), *v))
    }
    pub fn claims(&self) -> impl Iterator<Item = (&ClaimId, &Claim)> {
        self.claims.iter()
    }
    pub fn holds(&self) -> impl Iterator<Item = (&str, &str)> {
        self.holds.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn cordons(&self) -> impl Iterator<Item = (&str, &Cordon)> {
        self.cordons.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn is_cordoned(&self) -> bool {
        !self.cordons.is_empty()
    }

    /// Whether the node is a placeholder not yet bound to its VM.
    pub fn is_placeholder(&self) -> bool {
        self.placeholder
    }

    /// The provider's confirmation that the VM is gone, while the node is unhealthy.
    pub fn gone_at_provider(&self) -> Option<&GoneAtProvider> {
        self.gone.as_deref()
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
        let name = self.evacuated_by.as_deref()?;
        match self.cordons.get(name) {
            Some(c) if c.evacuate && self.containers.is_empty() => Some(name),
            _ => None,
        }
    }

    /// Containers, claims or holds: anything that makes deleting the VM lose something.
    pub fn is_occupied(&self) -> bool {
        !self.containers.is_empty() || !self.claims.is_empty() || !self.holds.is_empty()
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
            node: self.id.clone(),
            state: self.state,
            cordons: self
                .cordons
                .iter()
                .map(|(name, c)| format!("{name}: {}", c.reason))
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
                    node: self.id.clone(),
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
                    node: self.id.clone(),
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
                    from: self.instance_type.clone(),
                    to: t.clone(),
                    audited: false,
                });
            }
        }
        if let Some(labels) = &u.labels {
            if labels != self.labels.as_ref() {
                changes.push(AttributeChange {
                    field: "labels",
                    from: format!("{} labels", self.labels.len()),
                    to: format!("{} labels", labels.len()),
                    audited: false,
                });
            }
        }
        // Everything is validated: apply.
        if let Some(ram) = u.total_ram_mb {
            self.total_ram_mb = ram;
        }
        if let Some(cost) = u.hourly_cost_eur {
            self.hourly_cost_eur = cost;
        }
        if let Some(t) = &u.instance_type {
            self.instance_type.clone_from(t);
        }
        if let Some(labels) = &u.labels {
            if labels != self.labels.as_ref() {
                self.labels = shared_labels(labels);
            }
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
                node: self.id.clone(),
                from,
                to,
            });
        }
        self.metrics.record_state_change(from, now);
        self.state = to;
        if from == LifecycleState::Initializing
            && to == LifecycleState::Ready
            && self.metrics.initialized_at.is_none()
        {
            self.metrics.initialized_at = Some(now);
        }
        if from == LifecycleState::Unhealthy && to == LifecycleState::Ready {
            // Containers may have come or gone while the node was unreachable: it only counts
            // as empty again once its container view has been re-synchronised.
            self.metrics.container_sync_pending_since = Some(now);
        }
        if from == LifecycleState::Unhealthy {
            // It answers again: whatever the provider said, the VM is there.
            self.gone = None;
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
        if self.containers.len() >= MAX_CONTAINERS_PER_NODE && !self.containers.contains_key(id) {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_CONTAINERS_PER_NODE} containers",
                self.id
            )));
        }
        Ok(())
    }

    /// Records a running container (or updates its RAM). Returns whether it is new. Callers have
    /// checked schedulability, the per-node bound and fleet-wide uniqueness.
    pub(crate) fn insert_container(&mut self, id: &str, ram_mb: u64, now: Moment) -> bool {
        self.evacuated_by = None;
        match self.containers.get_mut(id) {
            Some(ram) => {
                self.allocated_ram_mb = self.allocated_ram_mb - *ram + ram_mb;
                *ram = ram_mb;
                false
            }
            None => {
                self.containers.insert(id.to_owned(), ram_mb);
                self.allocated_ram_mb += ram_mb;
                self.metrics.total_containers_ever =
                    self.metrics.total_containers_ever.saturating_add(1);
                self.metrics.first_container_at.get_or_insert(now.wall);
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
        self.metrics.last_container_at = Some(now);
        // Containers an unhealthy node lost were not moved off it on purpose: that is no
        // evacuation, whatever cordon is in place.
        self.evacuated_by = if self.state == LifecycleState::Unhealthy {
            None
        } else {
            self.cordons
                .iter()
                .find(|(_, c)| c.evacuate)
                .map(|(name, _)| name.clone())
        };
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
        let stale: Vec<String> = self
            .containers
            .keys()
            .filter(|k| !actual.contains_key(*k))
            .cloned()
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
            if self.insert_container(id, *ram, now) {
                out.added.push(id.clone());
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
            self.metrics.container_sync_completed_at = Some(at);
            true
        } else {
            false
        }
    }

    // ----- claims ----------------------------------------------------------------------------

    /// The claim reserving capacity for `container_id`, if any.
    pub(crate) fn claim_for_container(&self, container_id: &str) -> Option<ClaimId> {
        self.claims
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
            .and_then(|r| self.claims.get(&r))
            .map_or(0, |c| c.ram_mb);
        self.require_room(claim.ram_mb, freed)?;
        if replaces.is_none() && self.claims.len() >= MAX_MARKS_PER_NODE {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} claims",
                self.id
            )));
        }
        if let Some(r) = replaces {
            self.take_claim(&r);
        }
        self.reserved_ram_mb += claim.ram_mb;
        self.claims.insert(id, claim);
        Ok(())
    }

    /// Removes a claim and frees its RAM.
    pub(crate) fn take_claim(&mut self, id: &ClaimId) -> Option<Claim> {
        let claim = self.claims.remove(id)?;
        self.reserved_ram_mb -= claim.ram_mb;
        Some(claim)
    }

    // ----- holds and cordons -----------------------------------------------------------------

    /// Places a named hold; refused on a node that is being deleted or gone, because the data
    /// the hold protects would be deleted with it.
    pub(crate) fn place_hold(&mut self, name: &str, detail: &str) -> Result<bool> {
        validate_name("hold name", name)?;
        validate_detail("hold detail", detail)?;
        if self.drain.is_some()
            || matches!(
                self.state,
                LifecycleState::Draining | LifecycleState::Decommissioned
            )
        {
            return Err(self.not_schedulable());
        }
        if self.holds.len() >= MAX_MARKS_PER_NODE && !self.holds.contains_key(name) {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} holds",
                self.id
            )));
        }
        Ok(self
            .holds
            .insert(name.to_owned(), detail.to_owned())
            .is_none())
    }

    pub(crate) fn release_hold(&mut self, name: &str) -> bool {
        self.holds.remove(name).is_some()
    }

    /// Places a named cordon. Returns whether it is new (an existing one is left as it is).
    pub(crate) fn cordon(
        &mut self,
        name: &str,
        reason: String,
        evacuate: bool,
        now: Moment,
    ) -> Result<bool> {
        validate_name("cordon name", name)?;
        if self.state.is_terminal() {
            return Err(self.not_schedulable());
        }
        if self.cordons.len() >= MAX_MARKS_PER_NODE && !self.cordons.contains_key(name) {
            return Err(Error::InvalidArgument(format!(
                "node {:?} already has {MAX_MARKS_PER_NODE} cordons",
                self.id
            )));
        }
        if self.cordons.contains_key(name) {
            // Left as it is: a caller that re-asserts its cordon every round (a disk-full check)
            // changes nothing and records nothing. To change a cordon, lift it first.
            return Ok(false);
        }
        self.cordons.insert(
            name.to_owned(),
            Cordon {
                reason,
                evacuate,
                placed_at: now,
            },
        );
        Ok(true)
    }

    /// Lifts a cordon. An evacuation waiver belongs to the cordon it happened under: lifting
    /// that cordon ends it, so a new cordon of the same name placed later on the already empty
    /// node waives nothing.
    pub(crate) fn uncordon(&mut self, name: &str) -> bool {
        if self.evacuated_by.as_deref() == Some(name) {
            self.evacuated_by = None;
        }
        self.cordons.remove(name).is_some()
    }

    /// A claim's TTL as given (0 = the policy's default, OFF = never).
    pub(crate) fn claim_ttl(requested_ms: u64, policy: &Policy) -> Result<u64> {
        crate::policy::duration_setting("ttl_ms", requested_ms, policy.claim_ttl_ms)
    }
}

#[cfg(test)]
mod tests {
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
            container_id: container.map(str::to_owned),
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
        assert_eq!(img.metrics.initialized_at, Some(t));
        let r = s(NodeSpec::recovered("a", 1).provisioned_at(Timestamp(1)));
        assert_eq!((r.state, r.health), (Ready, HealthStatus::Unknown));
        assert_eq!(r.metrics.provisioned_at, at(1));
        assert_eq!(r.metrics.recovered_at, Some(t.wall));
        assert_eq!(r.metrics.container_sync_pending_since, Some(t));
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
        assert_eq!(n.metrics.initialized_at, Some(at(20)));
        n.transition(Unhealthy, at(30)).unwrap();
        n.transition(Ready, at(40)).unwrap();
        assert_eq!(n.metrics.initialized_at, Some(at(20)));
        assert_eq!(n.metrics.container_sync_pending_since, Some(at(40)));
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
        assert!(n.insert_container("c1", 1024, at(30)));
        assert!(!n.insert_container("c1", 1024, at(31)));
        assert_eq!(n.metrics.total_containers_ever, 1);
        assert_eq!(n.allocated_ram_mb, 1024);
        assert_eq!(n.metrics.first_container_at, Some(Timestamp(30)));
        assert_eq!(
            n.occupancy_transition(),
            Some((Active, "first_container_added"))
        );
        assert_eq!(n.remove_container("nope", at(40)), None);
        assert_eq!(n.remove_container("c1", at(41)), Some(1024));
        assert_eq!(n.metrics.last_container_at, Some(at(41)));
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
        assert!(n.claims.is_empty());
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
            n.cordons["disk-full"].placed_at,
            at(30),
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
        n.insert_container("c1", 1, at(30));
        n.insert_container("c2", 1, at(30));
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
        m.insert_container("c", 1, at(30));
        m.remove_container("c", at(31));
        m.cordon("late", "x".into(), true, at(32)).unwrap();
        assert_eq!(m.evacuation(), None);
    }

    #[test]
    fn updates_refuse_ram_below_use_and_report_changes() {
        let mut n = ready_node();
        n.insert_container("c", 4000, at(30));
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
        n.insert_container("old", 100, at(30));
        n.add_claim(ClaimId([1; 8]), claim(200, Some("new")), None)
            .unwrap();
        n.metrics.container_sync_pending_since = Some(at(30));
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
        assert_eq!(n.metrics.container_sync_pending_since, Some(at(30)));
        assert_eq!(n.metrics.container_sync_completed_at, None);
        n.sync_containers(&BTreeMap::new(), at(50));
        assert_eq!(n.metrics.last_container_at, Some(at(50)));
        assert!(n.complete_sync(at(60)));
        assert_eq!(n.metrics.container_sync_completed_at, Some(at(60)));
        assert_eq!(n.metrics.container_sync_pending_since, None);
        assert!(!n.complete_sync(at(70)), "nothing pending any more");
    }
}
