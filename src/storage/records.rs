//! What the files hold: file headers, journal records (one per mutation) and snapshot records
//! (one per node and audit entry), and how they are replayed into a [`FleetState`].
//!
//! A journal record holds the full state of every node a mutation touched (not the operation),
//! so replay never re-runs the rules against another clock: the last record of a node wins.

use super::{AuditState, FleetMeta, FleetState};
use crate::audit::{AuditAction, AuditEntry, AuditResult};
use crate::ids::InstanceId;
use crate::node::Node;
use crate::text::Text;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The on-disk format this build writes.
///
/// 3 (0.3): node records may carry fields 0.2 does not know (placeholder, gone at provider,
/// last health report). 0.2 ignores unknown fields, so it must never read a file that may hold
/// them: every file this build writes says 3, which 0.2 refuses as `UnsupportedFormat`.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest on-disk format this build reads (0.2's). A directory of that format is read as
/// is, and the first mutation starts a new journal of the current format.
pub const OLDEST_READABLE_FORMAT: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Journal,
    Snapshot,
}

/// The payload of every file's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    pub format_version: u32,
    pub file: FileKind,
    pub generation: u64,
    /// The data directory's fleet: a file from another directory is refused.
    pub instance_id: InstanceId,
    /// Journal: the sequence number of its first record. Snapshot: the sequence number of the
    /// first record after the state it holds.
    pub lsn: u64,
}

/// A record as written: borrows what it writes, so a commit does not copy nodes. Same tags and
/// fields as [`Record`], which is how records are read back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub(crate) enum RecordOut<'a> {
    Node {
        node: &'a Node,
    },
    Forget {
        id: &'a str,
    },
    Meta {
        meta: &'a FleetMeta,
    },
    Audit {
        entry: &'a AuditEntry,
    },
    /// Snapshot only, before the retained entries: the audit ring's counters, and the
    /// sequence number of the first entry that follows.
    AuditHead {
        first_seq: u64,
        next_seq: u64,
        evicted: u64,
        by_action: &'a [(AuditAction, u64)],
        by_result: &'a [(AuditResult, u64)],
        aliases: &'a [(Text, Text, u64)],
    },
    /// Journal only, last: the journal is complete and `next_generation` continues it.
    Seal {
        next_generation: u64,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub(crate) enum Record {
    Node {
        node: Box<Node>,
    },
    Forget {
        id: String,
    },
    Meta {
        meta: FleetMeta,
    },
    Audit {
        entry: Box<AuditEntry>,
    },
    AuditHead {
        first_seq: u64,
        next_seq: u64,
        evicted: u64,
        by_action: Vec<(AuditAction, u64)>,
        by_result: Vec<(AuditResult, u64)>,
        aliases: Vec<(Text, Text, u64)>,
    },
    Seal {
        next_generation: u64,
    },
}

/// A fleet state being rebuilt from a snapshot and journals.
pub(crate) struct Replay {
    pub meta: Option<FleetMeta>,
    pub nodes: std::collections::HashMap<String, Arc<Node>>,
    pub audit: AuditState,
    /// Entries beyond this are evicted as they are replayed (memory stays bounded).
    pub audit_capacity: usize,
    /// A snapshot's final counters, applied once its entries are in: (by action, by result,
    /// next sequence number).
    head: Option<HeadCounts>,
}

/// A snapshot's audit counters: by action, by result, and the next sequence number.
type HeadCounts = (Vec<(AuditAction, u64)>, Vec<(AuditResult, u64)>, u64);

impl Replay {
    pub fn new(audit_capacity: usize) -> Replay {
        Replay {
            meta: None,
            nodes: Default::default(),
            audit: AuditState {
                next_seq: 1,
                ..Default::default()
            },
            audit_capacity: audit_capacity.max(1),
            head: None,
        }
    }

    /// Ends a snapshot's records: its counters replace those the entries bumped. An error when
    /// the snapshot's entries do not reach its next sequence number.
    pub fn end_snapshot(&mut self) -> Result<(), String> {
        if let Some((by_action, by_result, next_seq)) = self.head.take() {
            self.audit.by_action = by_action;
            self.audit.by_result = by_result;
            if self.audit.next_seq != next_seq {
                let found = self.audit.next_seq;
                self.audit.next_seq = found.max(next_seq);
                return Err(format!(
                    "the snapshot's audit entries end before {found}, its ring continues at {next_seq}"
                ));
            }
        }
        Ok(())
    }

    /// Applies what can be applied, skipping what does not fit (salvage): an audit entry that
    /// is already there is skipped, one after a gap is taken (the gap counts as evicted).
    pub fn apply_lenient(&mut self, r: Record) {
        match r {
            Record::Audit { entry } if entry.seq < self.audit.next_seq => {}
            Record::Audit { entry } => {
                self.audit.evicted += entry.seq - self.audit.next_seq;
                self.audit.next_seq = entry.seq;
                let _ = self.apply(Record::Audit { entry });
            }
            other => {
                let _ = self.apply(other);
            }
        }
    }

    /// Applies one record; an error names what does not fit (an audit entry out of sequence).
    pub fn apply(&mut self, r: Record) -> Result<(), String> {
        match r {
            Record::Node { node } => {
                self.nodes.insert(node.id().to_owned(), Arc::new(*node));
            }
            Record::Forget { id } => {
                self.nodes.remove(&id);
            }
            Record::Meta { meta } => self.meta = Some(meta),
            Record::Audit { entry } => {
                if entry.seq != self.audit.next_seq {
                    return Err(format!(
                        "audit entry {} where {} was expected",
                        entry.seq, self.audit.next_seq
                    ));
                }
                self.audit.next_seq = entry.seq + 1;
                if entry.action == AuditAction::NodeRenamed {
                    // The ring indexes a renamed node's older entries under its new id; a live
                    // ring learns that from `alias`, a replayed one from the rename's entry.
                    if let Some(old) = &entry.related_node_id {
                        let new = &entry.node_id;
                        for (_, target, _) in self.audit.aliases.iter_mut() {
                            if target == old {
                                *target = new.clone();
                            }
                        }
                        self.audit.aliases.retain(|(o, _, _)| o != old);
                        self.audit
                            .aliases
                            .push((old.clone(), new.clone(), entry.seq - 1));
                    }
                }
                bump(&mut self.audit.by_action, entry.action);
                bump(&mut self.audit.by_result, entry.result);
                if self.audit.entries.len() == self.audit_capacity {
                    self.audit.entries.pop_front();
                    self.audit.evicted += 1;
                }
                self.audit.entries.push_back(*entry);
            }
            Record::AuditHead {
                first_seq,
                next_seq,
                evicted,
                by_action,
                by_result,
                aliases,
            } => {
                self.audit.next_seq = first_seq;
                self.audit.evicted = evicted;
                self.audit.aliases = aliases;
                self.head = Some((by_action, by_result, next_seq));
            }
            Record::Seal { .. } => {}
        }
        Ok(())
    }

    pub fn finish(self, instance_id: InstanceId) -> FleetState {
        let mut nodes: Vec<Arc<Node>> = self.nodes.into_values().collect();
        nodes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        FleetState {
            meta: self.meta.unwrap_or(FleetMeta {
                instance_id,
                last_consolidation_at: None,
            }),
            nodes,
            audit: self.audit,
        }
    }
}

fn bump<K: PartialEq + Copy>(counts: &mut Vec<(K, u64)>, k: K) {
    match counts.iter_mut().find(|(x, _)| *x == k) {
        Some((_, n)) => *n += 1,
        None => counts.push((k, 1)),
    }
}
