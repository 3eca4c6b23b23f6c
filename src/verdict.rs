//! What a safety evaluation answers: may the node be deleted, every blocking reason with the
//! figures its message is built from, and the holds and cordons that explain it.
//!
//! A verdict is a value: it knows nothing of nodes or of the fleet, so errors can carry one
//! (`Error::Rejected`) without the error module depending on the rules. [`crate::safety`] builds
//! verdicts; this module only holds and words them.

use crate::clock::{human_duration, Timestamp};
use crate::reason::ReasonCode;
use crate::state::LifecycleState;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::fmt::Write as _;

/// One reason a node may not be deleted, with the figures its message is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub code: ReasonCode,
    /// Containers, reservations or holds counted by rule 3; 0 otherwise. (32 bits keep a
    /// verdict small: it is copied on every evaluation, and no node holds 4 billion of them.)
    pub count: u32,
    /// For timer rules: how long the node has waited so far (ms).
    pub elapsed_ms: u64,
    /// For timer rules: how long it still has to wait (ms).
    pub remaining_ms: u64,
}

impl Blocker {
    pub(crate) fn new(code: ReasonCode) -> Self {
        Blocker {
            code,
            count: 0,
            elapsed_ms: 0,
            remaining_ms: 0,
        }
    }

    pub(crate) fn counted(code: ReasonCode, count: u32) -> Self {
        Blocker {
            count,
            ..Self::new(code)
        }
    }

    pub(crate) fn timer(code: ReasonCode, elapsed_ms: u64, grace_ms: u64) -> Self {
        Blocker {
            elapsed_ms,
            remaining_ms: grace_ms - elapsed_ms,
            ..Self::new(code)
        }
    }

    /// The human message, e.g. "node has 2 containers".
    pub fn message(&self, state: LifecycleState) -> String {
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
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
            ReasonCode::UnhealthyTooRecent => format!(
                "unhealthy for only {}, wait {} more (or confirm at the provider that the VM is gone)",
                human_duration(self.elapsed_ms),
                human_duration(self.remaining_ms)
            ),
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

    pub(crate) fn push(&mut self, b: Blocker) {
        // Rules 1-7 add at most one blocker each (seven in all), so this always fits.
        debug_assert!(
            (self.len as usize) < Self::CAPACITY,
            "more blockers than rules"
        );
        if let Some(slot) = self.items.get_mut(self.len as usize) {
            *slot = b;
            self.len += 1;
        }
    }

    pub(crate) fn extend(&mut self, b: Option<Blocker>) {
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

/// What the rules decide about a node, without the names that explain it: the answer of
/// [`crate::safety::decide`], a plain value the whole-fleet walk produces per node without
/// allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The state the node was evaluated in.
    pub state: LifecycleState,
    /// Every blocking reason, in rule order.
    pub blockers: Blockers,
    /// When the node could next pass, if timers are the only blockers (wall clock).
    pub retry_after: Option<Timestamp>,
    /// The node was emptied by an evacuation: the idle grace did not apply.
    pub idle_grace_waived: bool,
    /// The provider confirmed the unhealthy node's VM is gone: the unhealthy grace did not
    /// apply.
    pub unhealthy_grace_waived: bool,
}

impl Decision {
    pub(crate) fn new(state: LifecycleState) -> Decision {
        Decision {
            state,
            blockers: Blockers::new(),
            retry_after: None,
            idle_grace_waived: false,
            unhealthy_grace_waived: false,
        }
    }

    pub(crate) fn refused(state: LifecycleState, code: ReasonCode) -> Decision {
        let mut d = Decision::new(state);
        d.blockers.push(Blocker::new(code));
        d
    }

    /// Sets the retry time: when timers are the only blockers, the wall time the longest one
    /// runs out.
    pub(crate) fn finish(&mut self, now: crate::clock::Moment) {
        let b = &self.blockers;
        let timers_only = !b.is_empty() && b.iter().all(|b| b.code.is_timer());
        self.retry_after = timers_only.then(|| {
            let wait = b.iter().map(|b| b.remaining_ms).max().unwrap_or(0);
            now.wall_in(wait)
        });
    }

    pub fn allowed(&self) -> bool {
        self.blockers.is_empty()
    }

    /// The first blocking reason in rule order; `None` when allowed.
    pub fn primary(&self) -> Option<ReasonCode> {
        self.blockers.first().map(|b| b.code)
    }

    /// Whether `code` is among the blocking reasons.
    pub fn blocks_with(&self, code: ReasonCode) -> bool {
        self.blockers.iter().any(|b| b.code == code)
    }

    /// Bit `code - 100` set for every blocking reason: the C ABI's flat form of the list.
    pub fn reason_mask(&self) -> u64 {
        mask_of(&self.blockers)
    }
}

fn mask_of(blockers: &[Blocker]) -> u64 {
    blockers
        .iter()
        .fold(0, |m, b| m | 1u64 << (b.code.code() - 100))
}

/// The answer of [`crate::safety::evaluate`]: a [`Decision`] with the names that explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The state the node was evaluated in.
    pub state: LifecycleState,
    /// The first blocking reason in rule order; `None` when allowed.
    pub primary: Option<ReasonCode>,
    /// Every blocking reason, in rule order.
    pub blockers: Blockers,
    /// When the node could next pass, if timers are the only blockers (wall clock).
    pub retry_after: Option<Timestamp>,
    /// The node's holds (name, detail) when they block: the audit says who blocked a deletion.
    pub holds: Vec<(String, String)>,
    /// The node's cordons (name, reason). They do not block a deletion, but a rejection names
    /// them so the reader sees the whole picture.
    pub cordons: Vec<(String, String)>,
    /// The evacuate cordon under which the node was emptied on purpose: the idle grace did not
    /// apply.
    pub idle_grace_waived_by: Option<String>,
    /// What the provider said when it confirmed an unhealthy node's VM is gone: the unhealthy
    /// grace did not apply.
    pub unhealthy_grace_waived_by: Option<String>,
}

impl Verdict {
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
            holds: Vec::new(),
            cordons: Vec::new(),
            idle_grace_waived_by: None,
            unhealthy_grace_waived_by: None,
        }
    }

    /// Whether `code` is among the blocking reasons.
    pub fn blocks_with(&self, code: ReasonCode) -> bool {
        self.blockers.iter().any(|b| b.code == code)
    }

    /// Bit `code - 100` set for every blocking reason: the C ABI's flat form of the list.
    pub fn reason_mask(&self) -> u64 {
        mask_of(&self.blockers)
    }

    /// The message for one blocking reason, naming holds where it is about them.
    pub fn reason_message(&self, b: &Blocker) -> String {
        let mut m = b.message(self.state);
        if b.code == ReasonCode::HasHolds && !self.holds.is_empty() {
            m.push_str(": ");
            push_named(&mut m, &self.holds);
        }
        m
    }

    /// One line for people: every blocking reason joined with "; ", then the cordons.
    pub fn message(&self) -> String {
        if self.allowed {
            let mut m = format!("{} node may be decommissioned", self.state);
            if let Some(c) = &self.idle_grace_waived_by {
                let _ = write!(m, " (idle grace waived: emptied by evacuate cordon {c})");
            }
            if let Some(e) = &self.unhealthy_grace_waived_by {
                let _ = write!(
                    m,
                    " (unhealthy grace waived: the provider confirmed the VM is gone: {e})"
                );
            }
            return m;
        }
        let mut out = String::new();
        for (i, b) in self.blockers.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            out.push_str(&self.reason_message(b));
        }
        if !self.cordons.is_empty() {
            out.push_str("; cordoned: ");
            push_named(&mut out, &self.cordons);
        }
        out
    }
}

/// Appends "name (detail), name (detail)" (the detail only when there is one).
fn push_named(out: &mut String, items: &[(String, String)]) {
    for (i, (name, detail)) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        if !detail.is_empty() {
            let _ = write!(out, " ({detail})");
        }
    }
}

impl Serialize for Verdict {
    fn serialize<'a, S: Serializer>(&'a self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reason {
            code: u32,
            name: ReasonCode,
            message: String,
        }
        #[derive(Serialize)]
        struct Named<'a> {
            name: &'a str,
            detail: &'a str,
        }
        let reasons: Vec<Reason> = self
            .blockers
            .iter()
            .map(|b| Reason {
                code: b.code.code(),
                name: b.code,
                message: self.reason_message(b),
            })
            .collect();
        let named = |v: &'a [(String, String)]| -> Vec<Named<'a>> {
            v.iter()
                .map(|(n, d)| Named { name: n, detail: d })
                .collect()
        };
        let mut st = s.serialize_struct("Verdict", 10)?;
        st.serialize_field("allowed", &self.allowed)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("primary_code", &self.primary.map_or(0, ReasonCode::code))?;
        st.serialize_field("reasons", &reasons)?;
        st.serialize_field("message", &self.message())?;
        st.serialize_field("retry_after_ms", &self.retry_after)?;
        st.serialize_field("holds", &named(&self.holds))?;
        st.serialize_field("cordons", &named(&self.cordons))?;
        st.serialize_field("idle_grace_waived_by", &self.idle_grace_waived_by)?;
        st.serialize_field("unhealthy_grace_waived_by", &self.unhealthy_grace_waived_by)?;
        st.end()
    }
}
