//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code)]

use node_lifecycle::*;
use std::time::Duration;

pub const MIN: Duration = Duration::from_secs(60);

/// A fleet on a manual clock starting at the epoch, with the default policy.
pub fn fleet() -> Fleet {
    Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap()
}

/// Registers a node and plays cloud-init (started, completed): the node is ready.
pub fn init_node(f: &Fleet, spec: NodeSpec) {
    let id = spec.id.clone();
    f.register(spec).unwrap();
    f.transition(&id, LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    f.transition(&id, LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
}

/// A cloud node of 8 GiB that has been ready for an hour: past every grace.
pub fn ready_node(f: &Fleet, id: &str) {
    init_node(f, NodeSpec::cloud(id, 8192));
    f.advance_clock(60 * MIN).unwrap();
}
