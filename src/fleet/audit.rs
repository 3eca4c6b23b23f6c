//! Reading the audit ring, and recording actions the caller performed itself.

use super::Fleet;
use crate::audit::{
    AuditAction, AuditEntry, AuditFilter, AuditNewestPage, AuditPage, AuditQuery, AuditRecord,
    AuditResult, AuditStats,
};
use crate::error::Result;
use crate::text::{sanitized, validate_name};

impl Fleet {
    /// Records an entry for an action the caller performed (scale up/down, a migration). The
    /// node's snapshot is attached when the node is known. Free texts (reason, error) are
    /// sanitised. Returns the sequence number.
    pub fn record_audit(&self, mut record: AuditRecord) -> Result<u64> {
        validate_name("node id", &record.node_id)?;
        if let Some(c) = &record.container_id {
            validate_name("container id", c)?;
        }
        if !record.decision_by.is_empty() {
            validate_name("decision_by", &record.decision_by)?;
        }
        if let Some(r) = &record.related_node_id {
            validate_name("related node id", r)?;
        }
        record.reason = sanitized(record.reason);
        record.error = record.error.map(sanitized);
        record.snapshot = None;
        self.mutate(|tx| {
            let seq = tx.inner.audit.next_seq();
            tx.stage_with_snapshot(record);
            Ok(seq)
        })
    }

    /// The newest `n` entries, oldest first.
    pub fn audit_recent(&self, n: usize) -> Result<Vec<AuditEntry>> {
        self.read(|g, _| g.audit.recent(n))
    }

    pub fn audit_by_node(&self, node_id: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|g, _| g.audit.by_node(node_id, limit))
    }

    pub fn audit_by_action(&self, action: AuditAction, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|g, _| g.audit.by_action(action, limit))
    }

    pub fn audit_by_result(&self, result: AuditResult, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|g, _| g.audit.by_result(result, limit))
    }

    /// A page of entries, newest first, filtered by one index: O(log n + limit).
    pub fn audit_page(&self, query: &AuditQuery) -> Result<AuditNewestPage> {
        self.read(|g, _| g.audit.page(query))
    }

    /// Calls `f` with the newest `limit` matching entries, oldest first, without copying them
    /// (the C ABI's flat lists).
    pub fn with_audit(
        &self,
        filter: &AuditFilter,
        limit: usize,
        f: impl FnMut(&AuditEntry),
    ) -> Result<()> {
        self.read(|g, _| g.audit.with_newest(filter, limit, f))
    }

    /// Entries after `cursor` (a sequence number), oldest first, with the reader's gap.
    pub fn audit_since(&self, cursor: u64, limit: usize) -> Result<AuditPage> {
        self.read(|g, _| g.audit.since(cursor, limit))
    }

    /// [`Fleet::audit_since`] without copying; returns (missed, next cursor).
    pub fn with_audit_since(
        &self,
        cursor: u64,
        limit: usize,
        f: impl FnMut(&AuditEntry),
    ) -> Result<(u64, u64)> {
        self.read(|g, _| g.audit.with_since(cursor, limit, f))
    }

    pub fn audit_stats(&self) -> Result<AuditStats> {
        self.read(|g, _| g.audit.stats())
    }
}
