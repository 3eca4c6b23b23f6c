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
//!   fleet lock is held only to capture the state and switch to a journal created beforehand:
//!   no disk I/O under the lock (the old journal is synced and sealed, the snapshot written and
//!   the next journal created, all after the lock is released);
//! - every reopen after writes starts a new journal generation whose header names where the
//!   previous journal ended, so a journal put back from an older copy breaks the chain;
//! - no size cliffs: records of any size are fragmented, snapshots are streamed;
//! - failures leave no temporary files, and reopening writes at most a new journal's header,
//!   a seal and a spare journal (each a small frame);
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

/// Journals since the last snapshot after which a compaction is due whatever their size: each
/// restart after writes starts one, and a process restarted often with few writes would
/// otherwise grow the chain (and the replay at open) without bound.
pub const MAX_JOURNALS_SINCE_SNAPSHOT: u64 = 16;

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
    /// Whether open started a new journal generation (it does after writes, so that the journal
    /// written before the restart is pinned by its successor; not on a full disk).
    #[serde(default)]
    pub new_generation: bool,
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
    /// A compaction began and has not finished: no other begins until it does.
    in_flight: bool,
    /// The next journal, created and synced ahead of time (outside the fleet lock), empty.
    spare: Option<Spare>,
    /// Set when a compaction could not sync the journal it retired: acknowledged records may
    /// be lost, so the storage stops accepting writes.
    failure: Option<String>,
    /// The generation of the newest snapshot.
    snapshot_generation: u64,
}

/// A journal created before it is needed: its header names no sequence number (0), so its
/// first record's says where it starts.
struct Spare {
    generation: u64,
    file: Box<dyn FsFile>,
    header_len: u64,
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spare")
            .field("generation", &self.generation)
            .finish()
    }
}

/// The journal a compaction switched away from, until the compaction syncs and seals it
/// (outside the fleet lock).
struct Retired {
    generation: u64,
    file: Box<dyn FsFile>,
    /// Where its records end (the seal goes there).
    bytes: u64,
    /// The sequence number its seal takes (the first of the next journal).
    seal_lsn: u64,
    /// It holds writes not yet synced (batched syncs): they must reach the disk before any
    /// record of the next journal does, or a power loss could keep a later record and lose an
    /// earlier one.
    unsynced: bool,
}

/// A journal's header frame.
fn header_frame(generation: u64, instance_id: InstanceId, lsn: u64) -> Vec<u8> {
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
    buf
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
    retired: Arc<Mutex<Option<Retired>>>,
    /// Whether the retired journal still holds unsynced writes (read without the mutex).
    retired_unsynced: Arc<std::sync::atomic::AtomicBool>,
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
        self.check_failure();
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
            if let Err(e) = self.sync_retired() {
                let _ = self.file.set_len(self.bytes);
                return Err(e);
            }
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
        self.check_failure();
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if self.unsynced_writes > 0 {
            self.sync_retired()?;
            if let Err(e) = self.file.sync_data() {
                let path = self.dir.join(journal_name(self.generation));
                return Err(self.poison(format!("fsync of {} failed: {e}", path.display())));
            }
            self.unsynced_writes = 0;
            self.last_sync = std::time::Instant::now();
        }
        Ok(())
    }

    /// Takes over a failure a compaction reported from outside the lock.
    fn check_failure(&mut self) {
        if self.poisoned.is_none() {
            let failure = self.shared.lock().failure.take();
            if let Some(why) = failure {
                let _ = self.poison(why);
            }
        }
    }

    /// Syncs the journal a compaction retired, if it still holds unsynced writes: they must
    /// be on disk before anything of the current journal is.
    fn sync_retired(&mut self) -> Result<()> {
        // The mutex is taken only when there is something to sync: the compaction holds it
        // while it syncs, and a mutation must not wait for that unless it has to.
        if !self
            .retired_unsynced
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Ok(());
        }
        let retired = self.retired.clone();
        let mut retired = retired.lock();
        let Some(old) = retired.as_mut().filter(|r| r.unsynced) else {
            // Still flagged but gone: the compaction's sync of it failed. Its writes may be
            // lost, so nothing after them may be acknowledged.
            drop(retired);
            self.check_failure();
            return match &self.poisoned {
                Some(p) => Err(Error::Poisoned(p.clone())),
                None => Ok(()),
            };
        };
        if let Err(e) = old.file.sync_data() {
            let path = self.dir.join(journal_name(old.generation));
            drop(retired);
            return Err(self.poison(format!("fsync of {} failed: {e}", path.display())));
        }
        old.unsynced = false;
        self.retired_unsynced
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    pub fn wants_compaction(&self) -> bool {
        if self.poisoned.is_some() || self.options.compact_after_records == OFF {
            return false;
        }
        let shared = self.shared.lock();
        let long_chain = self.generation.saturating_sub(shared.snapshot_generation)
            >= MAX_JOURNALS_SINCE_SNAPSHOT;
        !shared.in_flight && (self.records >= self.options.compact_after_records || long_chain)
    }

    /// Whether a compaction has begun and not finished.
    pub fn compaction_in_flight(&self) -> bool {
        self.shared.lock().in_flight
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

    /// Starts a compaction under the fleet lock: switches to the next journal (created
    /// beforehand, so this does no I/O), so that mutations go on while the snapshot is written.
    /// Returns the job that syncs and seals the old journal, writes the snapshot of `state` and
    /// creates the next spare journal, to run without the lock.
    pub fn begin_compaction(&mut self, state: FleetState) -> Result<CompactionJob> {
        if self.shared.lock().in_flight {
            return Err(Error::Storage("a compaction is already running".into()));
        }
        let result = self.switch_journal();
        if let Err(e) = &result {
            self.shared.lock().last_compaction_error = Some(e.to_string());
        }
        let old_generation = result?;
        self.shared.lock().in_flight = true;
        Ok(CompactionJob {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            generation: self.generation,
            old_generation,
            lsn: self.next_lsn,
            instance_id: self.instance_id,
            state,
            shared: self.shared.clone(),
            retired: self.retired.clone(),
            retired_unsynced: self.retired_unsynced.clone(),
            done: false,
        })
    }

    /// Moves appends to the next journal generation, which continues at `next_lsn`; the old
    /// journal is retired (synced and sealed by the compaction). Returns the old generation.
    fn switch_journal(&mut self) -> Result<u64> {
        self.check_failure();
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        let old = self.generation;
        let next = old + 1;
        let spare = self.shared.lock().spare.take();
        let (file, header_len) = match spare {
            Some(s) if s.generation == next => (s.file, s.header_len),
            _ => {
                // No spare (its creation failed, or none was made yet): create the journal
                // now, under the lock. Correct, only slower.
                let file = self.create_next(next)?;
                let len = header_frame(next, self.instance_id, self.next_lsn).len() as u64;
                (file, len)
            }
        };
        let retired = Retired {
            generation: old,
            file: std::mem::replace(&mut self.file, file),
            bytes: self.bytes,
            seal_lsn: self.next_lsn,
            unsynced: self.unsynced_writes > 0,
        };
        self.retired_unsynced
            .store(retired.unsynced, std::sync::atomic::Ordering::Release);
        *self.retired.lock() = Some(retired);
        self.generation = next;
        self.bytes = header_len;
        self.records = 0;
        self.unsynced_writes = 0;
        Ok(old)
    }

    /// Creates journal `next` starting at `next_lsn`; if a half-created one stays behind and
    /// cannot be removed, the storage stops writing (it would break the chain later).
    fn create_next(&mut self, next: u64) -> Result<Box<dyn FsFile>> {
        let path = self.dir.join(journal_name(next));
        match create_journal(&*self.fs, &self.dir, next, self.instance_id, self.next_lsn) {
            Ok(f) => Ok(f),
            Err(e) => {
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
                Err(e)
            }
        }
    }

    /// Switches to a new journal generation now, syncing and sealing the current one (under
    /// the caller's lock: used when the current journal is of an older format).
    pub(crate) fn rotate(&mut self) -> Result<u64> {
        // Everything acknowledged must be on disk before the chain moves on.
        self.sync()?;
        // No snapshot follows this switch: the records since the last one still count.
        let records = self.records;
        let old = self.switch_journal()?;
        self.records = records;
        let retired = self.retired.lock().take();
        if let Some(r) = retired {
            seal(r);
        }
        Ok(old)
    }

    /// Creates the spare journal for the generation after the current one, if there is none.
    pub(crate) fn prepare_spare(&self) {
        prepare_spare(
            &*self.fs,
            &self.dir,
            self.generation + 1,
            self.instance_id,
            &self.shared,
        );
    }
}

/// Writes a retired journal's seal (it is complete, and the next generation continues it) and
/// syncs it. Best effort: a journal that could not be sealed is still accepted at open (a
/// partial seal is cut off), and the sequence numbers still link the two.
fn seal(mut r: Retired) {
    let mut buf = Vec::new();
    let payload = serde_json::to_vec(&[RecordOut::Seal {
        next_generation: r.generation + 1,
    }])
    .expect("a seal serialises");
    frame::put_record(&mut buf, r.generation, r.seal_lsn, &payload);
    match r.file.write_all(&buf) {
        Ok(()) => {
            let _ = r.file.sync_data();
        }
        Err(_) => {
            let _ = r.file.set_len(r.bytes);
        }
    }
}

/// Creates an empty spare journal of `generation` (sequence number unknown), synced, and keeps
/// it in `shared` for the next switch. A failure leaves nothing behind (the switch then
/// creates the journal itself).
fn prepare_spare(
    fs: &dyn Fs,
    dir: &Path,
    generation: u64,
    instance_id: InstanceId,
    shared: &Mutex<Shared>,
) {
    let present = shared
        .lock()
        .spare
        .as_ref()
        .is_some_and(|s| s.generation == generation);
    if present {
        return;
    }
    let path = dir.join(journal_name(generation));
    match create_journal(fs, dir, generation, instance_id, 0) {
        Ok(file) => {
            let header_len = header_frame(generation, instance_id, 0).len() as u64;
            shared.lock().spare = Some(Spare {
                generation,
                file,
                header_len,
            });
        }
        Err(_) => {
            let _ = fs.remove(&path);
            let _ = fs.sync_dir(dir);
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = self.sync();
        // An unused spare journal is not data: leave the directory as tidy as it was.
        let spare = self.shared.lock().spare.take();
        if let Some(spare) = spare {
            drop(spare.file);
            let _ = self
                .fs
                .remove(&self.dir.join(journal_name(spare.generation)));
            let _ = self.fs.sync_dir(&self.dir);
        }
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
    let buf = header_frame(generation, instance_id, lsn);
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
    retired: Arc<Mutex<Option<Retired>>>,
    retired_unsynced: Arc<std::sync::atomic::AtomicBool>,
    done: bool,
}

impl CompactionJob {
    /// Syncs and seals the retired journal.
    fn finish_retired(&self) -> Result<()> {
        let old = {
            // Held while syncing what the retired journal still has unsynced: a mutation that
            // must sync the current journal waits for that, and only then (see sync_retired).
            let mut guard = self.retired.lock();
            let Some(mut old) = guard.take() else {
                return Ok(());
            };
            if old.unsynced {
                if let Err(e) = old.file.sync_data() {
                    let path = self.dir.join(journal_name(old.generation));
                    let why = format!("fsync of {} failed: {e}", path.display());
                    self.shared.lock().failure = Some(why.clone());
                    return Err(Error::Storage(why));
                }
                self.retired_unsynced
                    .store(false, std::sync::atomic::Ordering::Release);
            }
            old
        };
        // The seal needs no lock: nothing else writes this journal any more.
        seal(old);
        Ok(())
    }

    /// Syncs and seals the journal the compaction switched away from, writes the snapshot,
    /// removes what it supersedes and creates the next spare journal; the outcome is also kept
    /// in the storage status. A failure loses nothing: the older snapshot and both journals
    /// remain.
    pub fn run(mut self) -> Result<()> {
        self.done = true;
        let retired = self.finish_retired();
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
        let result = retired.and(result);
        prepare_spare(
            &*self.fs,
            &self.dir,
            self.generation + 1,
            self.instance_id,
            &self.shared,
        );
        let mut shared = self.shared.lock();
        shared.in_flight = false;
        match &result {
            Ok(()) => {
                shared.snapshot_generation = self.generation;
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

impl Drop for CompactionJob {
    /// A job that never ran (a panic, or a caller that dropped it) still finishes the retired
    /// journal and lets the next compaction begin.
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish_retired();
            self.shared.lock().in_flight = false;
        }
    }
}
