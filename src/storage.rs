//! Persistence: an append-only journal and snapshots in a data directory.
//!
//! Layout of a data directory:
//! - `LOCK`: held (advisory lock) by the one process that has the directory open;
//! - `snapshot.bin`: one frame holding the whole fleet at the start of a journal generation;
//! - `journal.log`: a header frame (format version, generation), then one frame per record.
//!
//! A frame is `u32 length (LE) | u32 CRC-32 of the payload (LE) | payload`, the payload a JSON
//! array of records. One mutation is one frame, so a torn write loses a whole mutation or
//! nothing of it, never half (a node without its audit entry). A record is the full state of a
//! node after a mutation (not the operation), so replay never re-runs the rules against another
//! clock: the last record of each node wins.
//!
//! Compaction writes `snapshot.tmp`, syncs it, renames it over `snapshot.bin`, then starts a
//! new journal generation the same way. A journal whose generation is older than the snapshot's
//! is already contained in it and is skipped, so a crash at any point of compaction leaves a
//! consistent pair.

use crate::audit::{AuditAction, AuditEntry, AuditResult};
use crate::error::{Error, Result};
use crate::node::Node;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The on-disk format this build writes and reads. A newer one is refused.
pub const FORMAT_VERSION: u32 = 1;
/// A frame larger than this is corruption, not data (a node record is a few KiB).
const MAX_FRAME_BYTES: u32 = 256 << 20;

const JOURNAL: &str = "journal.log";
const SNAPSHOT: &str = "snapshot.bin";
const LOCK: &str = "LOCK";

/// When journal writes reach the disk (they always reach the operating system before a call
/// returns, so a crash of the process loses nothing; this is about power loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum SyncPolicy {
    /// fsync after every mutation.
    EveryWrite,
    /// fsync after `max_writes` mutations or `max_delay_ms` since the last sync, whichever
    /// comes first (checked on each write), and on close.
    Batched { max_writes: u32, max_delay_ms: u64 },
}

/// How a fleet persists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageOptions {
    pub sync: SyncPolicy,
    /// Compact (snapshot and start a new journal) after this many journal records.
    pub compact_after_records: u64,
    /// Fault injection for tests: writes fail once the journal would exceed this many bytes,
    /// as on a full disk.
    #[doc(hidden)]
    pub fail_journal_beyond_bytes: Option<u64>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            sync: SyncPolicy::EveryWrite,
            compact_after_records: 100_000,
            fail_journal_beyond_bytes: None,
        }
    }
}

/// What reopening a data directory found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReport {
    pub snapshot_found: bool,
    pub journal_records_replayed: u64,
    /// Bytes at the end of the journal that failed their checksum or were cut short (a torn
    /// write from a crash); they were skipped and truncated.
    pub torn_tail_bytes: u64,
    pub nodes_restored: u64,
    pub audit_entries_restored: u64,
}

/// The audit ring as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditState {
    pub entries: Vec<AuditEntry>,
    pub next_seq: u64,
    pub evicted: u64,
    pub by_action: Vec<(AuditAction, u64)>,
    pub by_result: Vec<(AuditResult, u64)>,
}

/// Everything a fleet persists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub nodes: Vec<Node>,
    pub next_ticket: u64,
    pub audit: AuditState,
}

/// A record as written: borrows what it writes, so a commit does not copy nodes. Same tags and
/// fields as [`Record`], which is how records are read back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub(crate) enum RecordOut<'a> {
    Header {
        format_version: u32,
        generation: u64,
    },
    Snapshot {
        format_version: u32,
        generation: u64,
        state: &'a FleetState,
    },
    Node {
        node: &'a Node,
    },
    Forget {
        id: &'a str,
    },
    NextTicket {
        next_ticket: u64,
    },
    Audit {
        entry: &'a AuditEntry,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub(crate) enum Record {
    Header {
        format_version: u32,
        generation: u64,
    },
    Snapshot {
        format_version: u32,
        generation: u64,
        state: FleetState,
    },
    Node {
        node: Box<Node>,
    },
    Forget {
        id: String,
    },
    NextTicket {
        next_ticket: u64,
    },
    Audit {
        entry: Box<AuditEntry>,
    },
}

// ----- CRC-32 (IEEE 802.3, as zlib) ---------------------------------------------------------

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c = CRC_TABLE[((c ^ *b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ----- frames --------------------------------------------------------------------------------

fn encode_frame(out: &mut Vec<u8>, records: &[RecordOut<'_>]) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    serde_json::to_writer(&mut *out, records).expect("records always serialise");
    let len = (out.len() - start - 8) as u32;
    let crc = crc32(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes frames from `data`; returns each frame's records and how many bytes were valid.
fn decode_frames(data: &[u8]) -> (Vec<Vec<Record>>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= 8 {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        if len > MAX_FRAME_BYTES || data.len() - pos - 8 < len as usize {
            break;
        }
        let payload = &data[pos + 8..pos + 8 + len as usize];
        if crc32(payload) != crc {
            break;
        }
        match serde_json::from_slice::<Vec<Record>>(payload) {
            Ok(r) => records.push(r),
            // A payload that passes its checksum but does not decode was written by another
            // build; stop rather than misread it.
            Err(_) => break,
        }
        pos += 8 + len as usize;
    }
    (records, pos)
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, "syncing directory", e))
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync of the directory.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, "creating", e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, "writing", e))?;
    f.sync_all().map_err(|e| io_err(&tmp, "syncing", e))?;
    std::fs::rename(&tmp, &target).map_err(|e| io_err(&target, "renaming into", e))?;
    sync_dir(dir)
}

// ----- the open data directory -----------------------------------------------------------------

/// An open data directory: the lock, the journal being appended, and its bookkeeping.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    options: StorageOptions,
    _lock: File,
    file: File,
    generation: u64,
    bytes: u64,
    records: u64,
    unsynced_writes: u32,
    last_sync: std::time::Instant,
    last_compaction_error: Option<String>,
}

/// Where a persistent fleet's storage stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub data_dir: String,
    pub generation: u64,
    pub journal_bytes: u64,
    pub journal_records: u64,
    /// Set when the last automatic compaction failed (the journal keeps growing and compaction
    /// is retried; nothing acknowledged is at risk).
    pub last_compaction_error: Option<String>,
}

/// The state found in a data directory, and the journal to continue.
pub(crate) struct Opened {
    pub journal: Journal,
    pub state: Option<FleetState>,
    pub report: OpenReport,
}

impl Journal {
    /// Opens (creating if needed) `dir`, takes its lock and reads its state. The caller restores
    /// the fleet from `state` and then calls [`Journal::compact`] so the restore is durable.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<Opened> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "creating data directory", e))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, "opening", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked(dir.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "locking", e)),
        }

        let mut report = OpenReport::default();
        let mut state: Option<FleetState> = None;
        let mut snapshot_generation = 0;
        let snap_path = dir.join(SNAPSHOT);
        if snap_path.exists() {
            let data = std::fs::read(&snap_path).map_err(|e| io_err(&snap_path, "reading", e))?;
            let (frames, valid) = decode_frames(&data);
            let mut records: Vec<Record> = frames.into_iter().flatten().collect();
            if valid != data.len() || records.len() != 1 {
                return Err(Error::Corrupt(format!(
                    "{}: checksum or framing error (the snapshot is written atomically, so this is \
                     damage, not a crash)",
                    snap_path.display()
                )));
            }
            match records.pop() {
                Some(Record::Snapshot {
                    format_version,
                    generation,
                    state: s,
                }) => {
                    check_version(&snap_path, format_version)?;
                    snapshot_generation = generation;
                    state = Some(s);
                    report.snapshot_found = true;
                }
                _ => {
                    return Err(Error::Corrupt(format!(
                        "{}: not a snapshot",
                        snap_path.display()
                    )))
                }
            }
        }

        let journal_path = dir.join(JOURNAL);
        let mut data = Vec::new();
        if journal_path.exists() {
            File::open(&journal_path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|e| io_err(&journal_path, "reading", e))?;
        }
        let (frames, valid) = decode_frames(&data);
        report.torn_tail_bytes = (data.len() - valid) as u64;
        let mut frames = frames.into_iter();
        let header = frames
            .next()
            .map(|mut f| if f.len() == 1 { f.pop() } else { None });
        match header.flatten() {
            Some(Record::Header {
                format_version,
                generation,
            }) => {
                check_version(&journal_path, format_version)?;
                if generation > snapshot_generation {
                    return Err(Error::Corrupt(format!(
                        "{} is generation {generation} but the snapshot only {snapshot_generation}: \
                         the snapshot is missing or from another directory",
                        journal_path.display()
                    )));
                }
                if generation == snapshot_generation {
                    let s = state.get_or_insert_with(FleetState::default);
                    // Replay into a map: the last record of a node wins, in O(log n) each.
                    let mut nodes: std::collections::BTreeMap<String, Node> =
                        std::mem::take(&mut s.nodes)
                            .into_iter()
                            .map(|n| (n.id.clone(), n))
                            .collect();
                    for r in frames.flatten() {
                        replay(s, &mut nodes, r);
                        report.journal_records_replayed += 1;
                    }
                    s.nodes = nodes.into_values().collect();
                }
            }
            Some(_) => {
                return Err(Error::Corrupt(format!(
                    "{}: no header",
                    journal_path.display()
                )));
            }
            // Empty, missing, or torn inside its header: nothing was acknowledged.
            None if valid == 0 => {}
            None => {
                return Err(Error::Corrupt(format!(
                    "{}: no header",
                    journal_path.display()
                )));
            }
        }
        if let Some(s) = &state {
            report.nodes_restored = s.nodes.len() as u64;
            report.audit_entries_restored = s.audit.entries.len() as u64;
        }

        // Start the next generation at once; `compact` writes its snapshot and header.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| io_err(&journal_path, "opening", e))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            file,
            generation: snapshot_generation,
            bytes: valid as u64,
            records: 0,
            unsynced_writes: 0,
            last_sync: std::time::Instant::now(),
            last_compaction_error: None,
        };
        Ok(Opened {
            journal,
            state,
            report,
        })
    }

    /// Appends one mutation's records. On error nothing may be considered written: the caller
    /// rolls its in-memory change back.
    pub fn append(&mut self, records: &[RecordOut<'_>]) -> Result<()> {
        let mut buf = Vec::with_capacity(512 * records.len());
        encode_frame(&mut buf, records);
        let path = self.dir.join(JOURNAL);
        if let Some(limit) = self.options.fail_journal_beyond_bytes {
            if self.bytes + buf.len() as u64 > limit {
                return Err(Error::Storage(format!(
                    "writing {}: No space left on device (injected)",
                    path.display()
                )));
            }
        }
        if let Err(e) = self.file.write_all(&buf) {
            // A partial write leaves a torn frame; cut it off so later appends stay readable.
            let _ = self.file.set_len(self.bytes);
            return Err(io_err(&path, "writing", e));
        }
        self.bytes += buf.len() as u64;
        self.records += records.len() as u64;
        self.unsynced_writes += 1;
        let due = match self.options.sync {
            SyncPolicy::EveryWrite => true,
            SyncPolicy::Batched {
                max_writes,
                max_delay_ms,
            } => {
                self.unsynced_writes >= max_writes
                    || self.last_sync.elapsed().as_millis() as u64 >= max_delay_ms
            }
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    /// Forces written records to disk.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced_writes > 0 {
            self.file
                .sync_data()
                .map_err(|e| io_err(&self.dir.join(JOURNAL), "syncing", e))?;
            self.unsynced_writes = 0;
            self.last_sync = std::time::Instant::now();
        }
        Ok(())
    }

    pub fn wants_compaction(&self) -> bool {
        self.records >= self.options.compact_after_records
    }

    /// Compacts if due; a failure is remembered (see [`StorageStatus`]) rather than returned,
    /// because the mutation that triggered it is already durable in the journal.
    pub fn maybe_compact(&mut self, state: impl FnOnce() -> FleetState) {
        if self.wants_compaction() {
            self.last_compaction_error = self.compact(state()).err().map(|e| e.to_string());
        }
    }

    pub fn status(&self) -> StorageStatus {
        StorageStatus {
            data_dir: self.dir.display().to_string(),
            generation: self.generation,
            journal_bytes: self.bytes,
            journal_records: self.records,
            last_compaction_error: self.last_compaction_error.clone(),
        }
    }

    /// Writes `state` as the snapshot of the next generation and starts its empty journal.
    pub fn compact(&mut self, state: FleetState) -> Result<()> {
        let generation = self.generation + 1;
        let mut snap = Vec::new();
        encode_frame(
            &mut snap,
            &[RecordOut::Snapshot {
                format_version: FORMAT_VERSION,
                generation,
                state: &state,
            }],
        );
        write_atomically(&self.dir, SNAPSHOT, &snap)?;
        let mut header = Vec::new();
        encode_frame(
            &mut header,
            &[RecordOut::Header {
                format_version: FORMAT_VERSION,
                generation,
            }],
        );
        write_atomically(&self.dir, JOURNAL, &header)?;
        let path = self.dir.join(JOURNAL);
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, "opening", e))?;
        self.generation = generation;
        self.bytes = header.len() as u64;
        self.records = 0;
        self.unsynced_writes = 0;
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

fn check_version(path: &Path, found: u32) -> Result<()> {
    if found > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.display().to_string(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

fn replay(s: &mut FleetState, nodes: &mut std::collections::BTreeMap<String, Node>, r: Record) {
    match r {
        Record::Node { node } => {
            nodes.insert(node.id.clone(), *node);
        }
        Record::Forget { id } => {
            nodes.remove(&id);
        }
        Record::NextTicket { next_ticket } => s.next_ticket = s.next_ticket.max(next_ticket),
        Record::Audit { entry } => {
            if entry.seq >= s.audit.next_seq {
                s.audit.next_seq = entry.seq + 1;
                bump(&mut s.audit.by_action, entry.action);
                bump(&mut s.audit.by_result, entry.result);
                s.audit.entries.push(*entry);
            }
        }
        Record::Header { .. } | Record::Snapshot { .. } => {}
    }
}

fn bump<K: PartialEq + Copy>(counts: &mut Vec<(K, u64)>, k: K) {
    match counts.iter_mut().find(|(x, _)| *x == k) {
        Some((_, n)) => *n += 1,
        None => counts.push((k, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn frames_round_trip_and_a_torn_or_garbled_tail_is_cut() {
        let mut buf = Vec::new();
        encode_frame(
            &mut buf,
            &[RecordOut::Header {
                format_version: 1,
                generation: 3,
            }],
        );
        encode_frame(
            &mut buf,
            &[
                RecordOut::Forget { id: "n1" },
                RecordOut::NextTicket { next_ticket: 2 },
            ],
        );
        let whole = buf.len();
        let (r, valid) = decode_frames(&buf);
        assert_eq!((r.len(), r[1].len(), valid), (2, 2, whole));
        // Torn: the last frame cut short.
        let (r, valid) = decode_frames(&buf[..whole - 3]);
        assert_eq!(r.len(), 1);
        assert!(valid < whole - 3);
        // Garbled: one payload byte flipped.
        let mut bad = buf.clone();
        bad[whole - 2] ^= 0x20;
        let (r, _) = decode_frames(&bad);
        assert_eq!(r.len(), 1);
        // An absurd length is corruption, not a request to allocate 4 GiB.
        let mut huge = buf.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frames(&huge).0.len(), 0);
    }
}
