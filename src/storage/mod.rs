//! Persistence: a data directory with journals and snapshots, under a written fault model.
//!
//! Layout: `journal-<generation>.nlj` files (a header frame, then one record per mutation, the
//! last one sealed when the next generation starts) and `snapshot-<generation>.nls` files (the
//! whole fleet at the start of that generation's journal). Every frame is checksummed and names
//! its generation (see [`frame`]); every file names the fleet it belongs to and the sequence
//! number (LSN) it starts at, so that a missing, swapped or rolled-back file breaks a chain that
//! open checks.
//!
//! The fault model (docs/RELIABILITY.md has the tests for each line):
//! - a mutation is acknowledged when its record is written and, under
//!   [`SyncPolicy::EveryWrite`], synced; an unacknowledged one is never visible;
//! - only an incomplete last record is a torn tail (cut off at open); a checksum failure, a
//!   damaged header, a missing file or a broken chain fails open with [`Error::Corrupt`] naming
//!   the file and offset, and open never rewrites damaged data ([`salvage`] recovers what can be
//!   verified, into a new directory);
//! - a failed fsync poisons the handle (no further mutation until reopen);
//! - compaction can fail or crash at any step without losing an acknowledged mutation, and the
//!   fleet lock is held only to capture the state and switch journals;
//! - no size cliffs: records of any size are fragmented, snapshots are streamed;
//! - failures leave no temporary files, and reopening writes only a small frame;
//! - exclusive access is an OS lock on the directory itself.

pub mod frame;
pub mod fs;
mod open;
mod records;
pub mod salvage;
#[cfg(feature = "testing")]
pub mod testing;

pub use frame::crc32;
pub use fs::{Fs, OsFs};
pub use records::FORMAT_VERSION;
pub use salvage::{salvage, SalvageReport};
#[cfg(feature = "testing")]
pub use testing::{Fault, FaultFs, SimFs};

pub(crate) use records::RecordOut;

pub use crate::audit::AuditState;

use crate::clock::Moment;
use crate::error::{Error, Result};
use crate::ids::InstanceId;
use crate::node::Node;
use crate::policy::OFF;
use fs::{FsFile, LockGuard};
use parking_lot::Mutex;
use records::{FileHeader, FileKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// When journal writes reach the disk (they always reach the operating system before a call
/// returns, so a crash of the process loses nothing; this is about power loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum SyncPolicy {
    /// fsync after every mutation: acknowledged means durable.
    EveryWrite,
    /// fsync after `max_writes` mutations or `max_delay_ms` since the last sync, whichever
    /// comes first (checked on each write), and on close. A power loss (or a failed fsync) can
    /// lose the acknowledged mutations of the current batch.
    Batched { max_writes: u32, max_delay_ms: u64 },
}

/// The default compaction threshold (journal records).
pub const DEFAULT_COMPACT_AFTER_RECORDS: u64 = 100_000;

/// How a fleet persists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageOptions {
    pub sync: SyncPolicy,
    /// Compact (snapshot and start a new journal generation) after this many journal records
    /// (0: the default, 100000; `"off"`: only when asked).
    #[serde(with = "crate::policy::setting_ms")]
    pub compact_after_records: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            sync: SyncPolicy::EveryWrite,
            compact_after_records: DEFAULT_COMPACT_AFTER_RECORDS,
        }
    }
}

/// What opening a data directory found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReport {
    pub snapshot_found: bool,
    pub snapshot_generation: u64,
    pub journals_replayed: u64,
    pub journal_records_replayed: u64,
    /// Bytes at the end of the last journal that were an incomplete record (a write cut short
    /// by a crash, never acknowledged); they were cut off.
    pub torn_tail_bytes: u64,
    pub nodes_restored: u64,
    pub audit_entries_restored: u64,
    /// Files superseded by a newer snapshot (left by an interrupted compaction), or temporary
    /// files, that open removed.
    pub obsolete_files_removed: u64,
    /// Whether the restart was recorded in the audit ring (it is not when the disk is full:
    /// opening never needs more space than the data already uses).
    pub recovery_recorded: bool,
}

/// Where a persistent fleet's storage stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub data_dir: String,
    pub generation: u64,
    pub journal_bytes: u64,
    pub journal_records: u64,
    /// The sequence number the next mutation's record gets.
    pub next_lsn: u64,
    /// Set when a failed fsync poisoned the storage: no mutation is accepted until reopen.
    pub poisoned: Option<String>,
    pub compactions: u64,
    /// Set when the last compaction failed (the journal keeps growing and compaction is
    /// retried; nothing acknowledged is at risk).
    pub last_compaction_error: Option<String>,
}

/// Fleet-level state persisted with the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetMeta {
    pub instance_id: InstanceId,
    /// When a consolidation plan was last executed (the cooldown runs from it).
    pub last_consolidation_at: Option<Moment>,
}

/// Everything a fleet persists. Nodes and entries are shared, so capturing it is cheap.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetState {
    pub meta: FleetMeta,
    pub nodes: Vec<Arc<Node>>,
    pub audit: AuditState,
}

pub(crate) fn journal_name(generation: u64) -> String {
    format!("journal-{generation:020}.nlj")
}

pub(crate) fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation:020}.nls")
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

/// Status shared between the storage and a compaction running outside the fleet lock.
#[derive(Debug, Default)]
struct Shared {
    compactions: u64,
    last_compaction_error: Option<String>,
}

/// An open data directory: the lock, the journal being appended, and its bookkeeping.
pub(crate) struct Storage {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: StorageOptions,
    _lock: LockGuard,
    file: Box<dyn FsFile>,
    generation: u64,
    instance_id: InstanceId,
    next_lsn: u64,
    bytes: u64,
    records: u64,
    unsynced_writes: u32,
    last_sync: std::time::Instant,
    poisoned: Option<String>,
    /// The live journal is of an older format: rotate before appending to it.
    needs_new_generation: bool,
    shared: Arc<Mutex<Shared>>,
}

/// The state found in a data directory, and the storage to continue it.
pub(crate) struct Opened {
    pub storage: Storage,
    pub state: Option<FleetState>,
    pub report: OpenReport,
}

impl Storage {
    /// Opens (creating if needed) `dir`, takes its lock and reads its state. `instance_id` is
    /// used for a new directory; an existing one keeps its own.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        options: StorageOptions,
        instance_id: InstanceId,
        audit_capacity: usize,
    ) -> Result<Opened> {
        open::open(fs, dir, options, instance_id, audit_capacity)
    }

    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn poison(&mut self, why: String) -> Error {
        let msg = format!(
            "{why}; no further mutation is accepted until the fleet is reopened (what was \
             acknowledged is on disk)"
        );
        self.poisoned = Some(msg.clone());
        Error::Poisoned(msg)
    }

    /// Appends one mutation's records. On error nothing may be considered written: the caller
    /// rolls its in-memory change back. A failed sync poisons the storage.
    pub fn append(&mut self, records: &[RecordOut<'_>]) -> Result<()> {
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if self.needs_new_generation {
            // Into a journal of the current format (see FORMAT_VERSION). If this fails nothing
            // was written and the mutation is refused; the next one tries again.
            self.rotate()?;
            self.needs_new_generation = false;
        }
        let payload = serde_json::to_vec(records)
            .map_err(|e| Error::Storage(format!("encoding a journal record: {e}")))?;
        let mut buf = Vec::with_capacity(payload.len() + frame::HEADER_LEN);
        frame::put_record(&mut buf, self.generation, self.next_lsn, &payload);
        let path = self.dir.join(journal_name(self.generation));
        if let Err(e) = self.file.write_all(&buf) {
            // A partial write would leave a torn record in the middle of the journal; cut it
            // off so later appends stay readable. If even that fails, stop writing.
            if let Err(cut) = self.file.set_len(self.bytes) {
                return Err(self.poison(format!(
                    "writing {} failed ({e}) and cutting the partial write failed ({cut})",
                    path.display()
                )));
            }
            return Err(io_err(&path, "writing", e));
        }
        let due = match self.options.sync {
            SyncPolicy::EveryWrite => true,
            SyncPolicy::Batched {
                max_writes,
                max_delay_ms,
            } => {
                self.unsynced_writes + 1 >= max_writes
                    || self.last_sync.elapsed().as_millis() as u64 >= max_delay_ms
            }
        };
        if due {
            if let Err(e) = self.file.sync_data() {
                // Never retried and assumed good (PostgreSQL's lesson): the record is not
                // acknowledged, so cut it off (best effort) and stop accepting writes.
                let _ = self.file.set_len(self.bytes);
                let _ = self.file.sync_data();
                return Err(self.poison(format!("fsync of {} failed: {e}", path.display())));
            }
            self.unsynced_writes = 0;
            self.last_sync = std::time::Instant::now();
        } else {
            self.unsynced_writes += 1;
        }
        self.bytes += buf.len() as u64;
        self.records += 1;
        self.next_lsn += 1;
        Ok(())
    }

    /// Forces written records to disk. A failure poisons the storage.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if self.unsynced_writes > 0 {
            if let Err(e) = self.file.sync_data() {
                let path = self.dir.join(journal_name(self.generation));
                return Err(self.poison(format!("fsync of {} failed: {e}", path.display())));
            }
            self.unsynced_writes = 0;
            self.last_sync = std::time::Instant::now();
        }
        Ok(())
    }

    pub fn wants_compaction(&self) -> bool {
        self.poisoned.is_none()
            && self.options.compact_after_records != OFF
            && self.records >= self.options.compact_after_records
    }

    pub fn status(&self) -> StorageStatus {
        let shared = self.shared.lock();
        StorageStatus {
            data_dir: self.dir.display().to_string(),
            generation: self.generation,
            journal_bytes: self.bytes,
            journal_records: self.records,
            next_lsn: self.next_lsn,
            poisoned: self.poisoned.clone(),
            compactions: shared.compactions,
            last_compaction_error: shared.last_compaction_error.clone(),
        }
    }

    /// Starts a compaction under the fleet lock: syncs the journal, starts the next journal
    /// generation (so mutations go on while the snapshot is written) and seals the current
    /// one. Returns the job that writes the snapshot of `state`, to run without the lock.
    pub fn begin_compaction(&mut self, state: FleetState) -> Result<CompactionJob> {
        let result = self.rotate();
        if let Err(e) = &result {
            self.shared.lock().last_compaction_error = Some(e.to_string());
        }
        let old_generation = result?;
        Ok(CompactionJob {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            generation: self.generation,
            old_generation,
            lsn: self.next_lsn,
            instance_id: self.instance_id,
            state,
            shared: self.shared.clone(),
        })
    }

    /// Switches to a new journal generation; returns the old generation.
    fn rotate(&mut self) -> Result<u64> {
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        // Everything acknowledged must be on disk before the chain moves on.
        self.sync()?;
        let old = self.generation;
        let next = old + 1;
        let path = self.dir.join(journal_name(next));
        let file = match create_journal(&*self.fs, &self.dir, next, self.instance_id, self.next_lsn)
        {
            Ok(f) => f,
            Err(e) => {
                // A journal of the next generation that stays behind would break the chain
                // once this one grows further: if it cannot be removed, stop writing.
                let removed = self
                    .fs
                    .remove(&path)
                    .and_then(|()| self.fs.sync_dir(&self.dir));
                if let Err(r) = removed {
                    if self.fs.len(&path).is_ok() {
                        return Err(self.poison(format!(
                            "starting journal generation {next} failed ({e}) and removing it \
                             failed ({r})"
                        )));
                    }
                }
                return Err(e);
            }
        };
        // Seal the old journal: it is complete, and `next` continues it. If this fails the
        // old journal stays unsealed (a partial seal is cut off, and open accepts one that could
        // not be); the LSN chain still links the two.
        let mut seal = Vec::new();
        let payload = serde_json::to_vec(&[RecordOut::Seal {
            next_generation: next,
        }])
        .expect("a seal serialises");
        frame::put_record(&mut seal, old, self.next_lsn, &payload);
        match self.file.write_all(&seal) {
            Ok(()) => {
                let _ = self.file.sync_data();
            }
            Err(_) => {
                let _ = self.file.set_len(self.bytes);
            }
        }
        let header_len = self.fs.len(&path).unwrap_or(0);
        self.file = file;
        self.generation = next;
        self.bytes = header_len;
        self.records = 0;
        self.unsynced_writes = 0;
        Ok(old)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// Creates journal `generation` starting at `lsn`, durably (file and directory synced).
fn create_journal(
    fs: &dyn Fs,
    dir: &Path,
    generation: u64,
    instance_id: InstanceId,
    lsn: u64,
) -> Result<Box<dyn FsFile>> {
    let path = dir.join(journal_name(generation));
    let header = FileHeader {
        format_version: FORMAT_VERSION,
        file: FileKind::Journal,
        generation,
        instance_id,
        lsn,
    };
    let mut buf = Vec::new();
    frame::put_header(
        &mut buf,
        generation,
        &serde_json::to_vec(&header).expect("a header serialises"),
    );
    let mut f = fs.create(&path).map_err(|e| io_err(&path, "creating", e))?;
    f.write_all(&buf).map_err(|e| io_err(&path, "writing", e))?;
    f.sync_data().map_err(|e| io_err(&path, "syncing", e))?;
    fs.sync_dir(dir).map_err(|e| io_err(dir, "syncing", e))?;
    Ok(f)
}

/// Writes `state` as snapshot `generation` (streamed, via a temporary file renamed into place)
/// and removes the files it supersedes. Leaves no temporary file behind on failure.
fn write_snapshot(
    fs: &dyn Fs,
    dir: &Path,
    generation: u64,
    lsn: u64,
    instance_id: InstanceId,
    state: &FleetState,
) -> Result<()> {
    let final_path = dir.join(snapshot_name(generation));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(generation)));
    let result = (|| {
        let mut f = fs.create(&tmp).map_err(|e| io_err(&tmp, "creating", e))?;
        let mut buf = Vec::with_capacity(1 << 20);
        let header = FileHeader {
            format_version: FORMAT_VERSION,
            file: FileKind::Snapshot,
            generation,
            instance_id,
            lsn,
        };
        frame::put_header(
            &mut buf,
            generation,
            &serde_json::to_vec(&header).expect("a header serialises"),
        );
        let mut index = 0u64;
        let mut put = |buf: &mut Vec<u8>, r: RecordOut<'_>| -> Result<()> {
            let payload = serde_json::to_vec(&r)
                .map_err(|e| Error::Storage(format!("encoding a snapshot record: {e}")))?;
            frame::put_record(buf, generation, index, &payload);
            index += 1;
            Ok(())
        };
        let flush = |f: &mut Box<dyn FsFile>, buf: &mut Vec<u8>| -> Result<()> {
            if buf.len() >= 1 << 20 {
                f.write_all(buf).map_err(|e| io_err(&tmp, "writing", e))?;
                buf.clear();
            }
            Ok(())
        };
        put(&mut buf, RecordOut::Meta { meta: &state.meta })?;
        for node in &state.nodes {
            put(&mut buf, RecordOut::Node { node })?;
            flush(&mut f, &mut buf)?;
        }
        let a = &state.audit;
        put(
            &mut buf,
            RecordOut::AuditHead {
                first_seq: a.entries.front().map_or(a.next_seq, |e| e.seq),
                next_seq: a.next_seq,
                evicted: a.evicted,
                by_action: &a.by_action,
                by_result: &a.by_result,
                aliases: &a.aliases,
            },
        )?;
        for entry in a.entries.iter() {
            put(&mut buf, RecordOut::Audit { entry })?;
            flush(&mut f, &mut buf)?;
        }
        frame::put_end(&mut buf, generation, index);
        f.write_all(&buf).map_err(|e| io_err(&tmp, "writing", e))?;
        f.sync_data().map_err(|e| io_err(&tmp, "syncing", e))?;
        drop(f);
        fs.rename(&tmp, &final_path)
            .map_err(|e| io_err(&final_path, "renaming into", e))?;
        fs.sync_dir(dir).map_err(|e| io_err(dir, "syncing", e))
    })();
    if result.is_err() {
        let _ = fs.remove(&tmp);
    }
    result
}

/// Removes the snapshots and journals older than `generation` (superseded by its snapshot).
fn remove_superseded(fs: &dyn Fs, dir: &Path, generation: u64) -> Result<u64> {
    let names = fs.list(dir).map_err(|e| io_err(dir, "listing", e))?;
    let mut removed = 0;
    for name in names {
        let old = open::parse_name(&name).is_some_and(|(_, g)| g < generation);
        if old {
            let p = dir.join(&name);
            fs.remove(&p).map_err(|e| io_err(&p, "removing", e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fs.sync_dir(dir).map_err(|e| io_err(dir, "syncing", e))?;
    }
    Ok(removed)
}

/// A snapshot to write outside the fleet lock.
pub(crate) struct CompactionJob {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// The new generation (its journal already receives mutations).
    generation: u64,
    old_generation: u64,
    lsn: u64,
    instance_id: InstanceId,
    state: FleetState,
    shared: Arc<Mutex<Shared>>,
}

impl CompactionJob {
    /// Writes the snapshot and removes what it supersedes; the outcome is also kept in the
    /// storage status. A failure loses nothing: the older snapshot and both journals remain.
    pub fn run(mut self) -> Result<()> {
        // Sorted here, outside the fleet's lock: a snapshot lists its nodes in id order.
        self.state.nodes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let result = write_snapshot(
            &*self.fs,
            &self.dir,
            self.generation,
            self.lsn,
            self.instance_id,
            &self.state,
        )
        .and_then(|()| remove_superseded(&*self.fs, &self.dir, self.generation).map(|_| ()));
        let mut shared = self.shared.lock();
        match &result {
            Ok(()) => {
                shared.compactions += 1;
                shared.last_compaction_error = None;
            }
            Err(e) => {
                shared.last_compaction_error = Some(format!(
                    "compaction to generation {} (from {}) failed: {e}",
                    self.generation, self.old_generation
                ))
            }
        }
        result
    }
}
