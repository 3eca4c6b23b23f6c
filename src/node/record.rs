//! A node as the journal and snapshots write it. The shape is the one 0.2 wrote (format 2),
//! field for field, so that the format stays readable by eye and a format-2 directory reads
//! into today's layout; what changed is listed on each field. Serialising borrows the node
//! (a commit copies nothing); reading builds the compact layout.

use super::{Claim, Containers, Cordon, Drain, GoneAtProvider, Hold, Labels, Marks, Node, Rare};
use crate::clock::{Moment, Timestamp};
use crate::ids::ClaimId;
use crate::metrics::NodeMetrics;
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use crate::text::Text;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// A cordon's fields under its name. Format 2 wrote `placed_at` as a moment (wall and
/// monotonic time); format 3 writes `placed_at_ms`, the only part that is ever shown.
#[derive(Serialize, Deserialize)]
struct CordonRecord {
    reason: Text,
    evacuate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    placed_at_ms: Option<Timestamp>,
    #[serde(default, skip_serializing)]
    placed_at: Option<Moment>,
}

/// The record as read.
#[derive(Deserialize)]
pub(crate) struct NodeRecord {
    id: String,
    origin: NodeOrigin,
    state: LifecycleState,
    health: HealthStatus,
    total_ram_mb: u64,
    instance_type: String,
    hourly_cost_eur: f64,
    labels: BTreeMap<String, String>,
    containers: BTreeMap<String, u64>,
    claims: BTreeMap<ClaimId, Claim>,
    holds: BTreeMap<String, String>,
    cordons: BTreeMap<String, CordonRecord>,
    allocated_ram_mb: u64,
    reserved_ram_mb: u64,
    consecutive_health_failures: u32,
    metrics: NodeMetrics,
    drain: Option<Drain>,
    evacuated_by: Option<String>,
    #[serde(default)]
    gone: Option<GoneAtProvider>,
    #[serde(default)]
    placeholder: bool,
}

impl From<NodeRecord> for Node {
    fn from(r: NodeRecord) -> Node {
        let mut containers = Containers::default();
        for (id, ram) in r.containers {
            containers.insert(&Text::from(id), ram);
        }
        let rare = Rare {
            claims: r.claims.into_iter().collect(),
            drain: r.drain,
            evacuated_by: r.evacuated_by.map(Text::from),
            gone: r.gone,
            placeholder: r.placeholder,
        };
        Node {
            id: Text::from(r.id),
            instance_type: Text::from(r.instance_type),
            labels: Labels::new(r.labels),
            containers,
            holds: Marks::from_iter_unsorted(r.holds.into_iter().map(|(name, detail)| Hold {
                name: Text::from(name),
                detail: Text::from(detail),
            })),
            cordons: Marks::from_iter_unsorted(r.cordons.into_iter().map(|(name, c)| {
                Cordon {
                    name: Text::from(name),
                    reason: c.reason,
                    evacuate: c.evacuate,
                    placed_at_ms: c
                        .placed_at_ms
                        .or(c.placed_at.map(|m| m.wall))
                        .unwrap_or(Timestamp(0)),
                }
            })),
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
            total_ram_mb: r.total_ram_mb,
            allocated_ram_mb: r.allocated_ram_mb,
            reserved_ram_mb: r.reserved_ram_mb,
            hourly_cost_eur: r.hourly_cost_eur,
            consecutive_health_failures: r.consecutive_health_failures,
            origin: r.origin,
            state: r.state,
            health: r.health,
            metrics: r.metrics,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        NodeRecord::deserialize(d).map(Node::from)
    }
}

/// A map serialised from an iterator of pairs.
struct MapOf<F>(F);

impl<F, I, K, V> Serialize for MapOf<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (K, V)>,
    K: Serialize,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in (self.0)() {
            m.serialize_entry(&k, &v)?;
        }
        m.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a, C, L, H, K> {
            id: &'a str,
            origin: NodeOrigin,
            state: LifecycleState,
            health: HealthStatus,
            total_ram_mb: u64,
            instance_type: &'a str,
            hourly_cost_eur: f64,
            labels: &'a BTreeMap<String, String>,
            containers: C,
            claims: L,
            holds: H,
            cordons: K,
            allocated_ram_mb: u64,
            reserved_ram_mb: u64,
            consecutive_health_failures: u32,
            metrics: &'a NodeMetrics,
            drain: Option<&'a Drain>,
            evacuated_by: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            gone: Option<&'a GoneAtProvider>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            placeholder: bool,
        }
        Out {
            id: &self.id,
            origin: self.origin,
            state: self.state,
            health: self.health,
            total_ram_mb: self.total_ram_mb,
            instance_type: &self.instance_type,
            hourly_cost_eur: self.hourly_cost_eur,
            labels: &self.labels,
            // Sorted, so that the same node always writes the same bytes.
            containers: MapOf(|| self.containers.sorted().into_iter()),
            claims: MapOf(|| self.claims()),
            holds: MapOf(|| self.holds.iter().map(|h| (&h.name, &h.detail))),
            cordons: MapOf(|| {
                self.cordons.iter().map(|c| {
                    (
                        &c.name,
                        CordonRecord {
                            reason: c.reason.clone(),
                            evacuate: c.evacuate,
                            placed_at_ms: Some(c.placed_at_ms),
                            placed_at: None,
                        },
                    )
                })
            }),
            allocated_ram_mb: self.allocated_ram_mb,
            reserved_ram_mb: self.reserved_ram_mb,
            consecutive_health_failures: self.consecutive_health_failures,
            metrics: &self.metrics,
            drain: self.drain(),
            evacuated_by: self.rare.as_ref().and_then(|r| r.evacuated_by.as_deref()),
            gone: self.gone_at_provider(),
            placeholder: self.is_placeholder(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeSpec;

    #[test]
    fn a_node_reads_back_as_it_was_written() {
        let now = Moment::at(Timestamp(1000));
        let mut n = Node::from_spec(
            &NodeSpec::cloud("n1", 8192)
                .label("zone", "fsn1")
                .instance_type("cx22"),
            now,
        )
        .unwrap();
        n.transition(LifecycleState::Initializing, now).unwrap();
        n.transition(LifecycleState::Ready, now).unwrap();
        n.insert_container(&Text::from("c1"), 1024, now);
        n.place_hold("world", "s3://x").unwrap();
        n.cordon("disk", Text::from("97%"), true, now).unwrap();
        n.add_claim(
            ClaimId([3; 8]),
            Claim {
                ram_mb: 10,
                container_id: Some(Text::from("c2")),
                created_at: now,
                ttl_ms: 5,
            },
            None,
        )
        .unwrap();
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["containers"], serde_json::json!({"c1": 1024}));
        assert_eq!(json["holds"], serde_json::json!({"world": "s3://x"}));
        assert_eq!(
            json["cordons"],
            serde_json::json!({"disk": {"reason": "97%", "evacuate": true, "placed_at_ms": 1000}})
        );
        let back: Node = serde_json::from_value(json).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn a_format_2_cordon_keeps_its_wall_time() {
        let c: CordonRecord = serde_json::from_value(
            serde_json::json!({"reason": "r", "evacuate": false, "placed_at": [1234, 99]}),
        )
        .unwrap();
        assert_eq!(c.placed_at.map(|m| m.wall), Some(Timestamp(1234)));
        assert_eq!(c.placed_at_ms, None);
    }
}
