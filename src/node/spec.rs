//! What a caller says about a node: the spec it registers, the attributes it updates, and the
//! bounds every figure is checked against.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::state::{LifecycleState, NodeOrigin};
use crate::text::{validate_detail, validate_name, MAX_NAME_LEN};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    pub(super) fn starting_state(&self) -> Result<LifecycleState> {
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
    pub(super) fn validate(&self) -> Result<()> {
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
