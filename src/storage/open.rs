//! Opening a data directory: find the newest snapshot, check the chain of journals that
//! continues it, replay, and only then change anything on disk (cut a torn tail, remove files
//! a finished compaction superseded). Damage anywhere fails with [`Error::Corrupt`] before a
//! single byte is written.

use super::frame::{Item, Reader, Stop};
use super::fs::Fs;
use super::records::{
    FileHeader, FileKind, Record, Replay, FORMAT_VERSION, OLDEST_READABLE_FORMAT,
};
use super::{
    create_journal, io_err, journal_name, snapshot_name, write_snapshot, FleetMeta, FleetState,
    OpenReport, Opened, Shared, Storage, StorageOptions,
};
use crate::error::{Error, Result};
use crate::ids::InstanceId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `(kind, generation)` of a data file's name; `None` for any other name.
pub(crate) fn parse_name(name: &str) -> Option<(FileKind, u64)> {
    let (kind, rest) = if let Some(r) = name.strip_prefix("journal-") {
        (FileKind::Journal, r.strip_suffix(".nlj")?)
    } else if let Some(r) = name.strip_prefix("snapshot-") {
        (FileKind::Snapshot, r.strip_suffix(".nls")?)
    } else {
        return None;
    };
    if rest.len() != 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok().map(|g| (kind, g))
}

fn corrupt_stop(path: &Path, stop: Stop) -> Error {
    match stop {
        Stop::Corrupt { offset, detail } => Error::corrupt(path, offset, detail),
        Stop::Torn { offset } => Error::corrupt(
            path,
            offset,
            "incomplete record in a file that is written atomically",
        ),
    }
}

/// Reads and checks a file's header frame.
fn read_header<R: std::io::Read>(
    path: &Path,
    reader: &mut Reader<R>,
    kind: FileKind,
    generation: u64,
) -> Result<FileHeader> {
    let item = reader.next_item().map_err(|s| corrupt_stop(path, s))?;
    let Some(Item::Header {
        generation: frame_gen,
        payload,
    }) = item
    else {
        return Err(Error::corrupt(path, 0, "no header frame"));
    };
    // The format version is read before anything else, so a newer format is reported as such.
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: u32,
    }
    let v: Version = serde_json::from_slice(&payload)
        .map_err(|e| Error::corrupt(path, 0, format!("header: {e}")))?;
    if !(OLDEST_READABLE_FORMAT..=FORMAT_VERSION).contains(&v.format_version) {
        return Err(Error::UnsupportedFormat {
            path: path.display().to_string(),
            found: v.format_version,
            supported: FORMAT_VERSION,
        });
    }
    let h: FileHeader = serde_json::from_slice(&payload)
        .map_err(|e| Error::corrupt(path, 0, format!("header: {e}")))?;
    if h.file != kind || h.generation != generation || frame_gen != generation {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "the file says it is {:?} generation {} (its name says {:?} {generation}): it \
                 was swapped or copied from elsewhere",
                h.file, h.generation, kind
            ),
        ));
    }
    Ok(h)
}

fn decode<T: serde::de::DeserializeOwned>(path: &Path, offset: u64, payload: &[u8]) -> Result<T> {
    serde_json::from_slice(payload)
        .map_err(|e| Error::corrupt(path, offset, format!("record does not decode: {e}")))
}

fn check_instance(path: &Path, found: InstanceId, expected: &mut Option<InstanceId>) -> Result<()> {
    match expected {
        Some(e) if *e != found => Err(Error::corrupt(
            path,
            0,
            format!("the file belongs to fleet {found}, this directory to fleet {e}"),
        )),
        Some(_) => Ok(()),
        None => {
            *expected = Some(found);
            Ok(())
        }
    }
}

/// Reads a whole snapshot into `replay`; returns its header.
fn read_snapshot(
    fs: &dyn Fs,
    path: &Path,
    generation: u64,
    replay: &mut Replay,
) -> Result<FileHeader> {
    let len = fs.len(path).map_err(|e| io_err(path, "reading", e))?;
    let file = fs.open_read(path).map_err(|e| io_err(path, "reading", e))?;
    let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 16, file), len);
    let header = read_header(path, &mut reader, FileKind::Snapshot, generation)?;
    let mut count = 0u64;
    loop {
        match reader.next_item().map_err(|s| corrupt_stop(path, s))? {
            Some(Item::Record {
                seq,
                payload,
                offset,
            }) => {
                if seq != count {
                    return Err(Error::corrupt(
                        path,
                        offset,
                        format!("record {seq} where {count} was expected"),
                    ));
                }
                let r: Record = decode(path, offset, &payload)?;
                replay
                    .apply(r)
                    .map_err(|d| Error::corrupt(path, offset, d))?;
                count += 1;
            }
            Some(Item::End { records }) if records == count => {
                replay
                    .end_snapshot()
                    .map_err(|d| Error::corrupt(path, reader.position(), d))?;
                if reader.position() != len {
                    return Err(Error::corrupt(
                        path,
                        reader.position(),
                        "data after the end of the snapshot",
                    ));
                }
                return Ok(header);
            }
            Some(Item::End { records }) => {
                return Err(Error::corrupt(
                    path,
                    reader.position(),
                    format!("the snapshot says {records} records, {count} were read"),
                ))
            }
            Some(Item::Header { .. }) => {
                return Err(Error::corrupt(path, reader.position(), "a second header"))
            }
            None => {
                return Err(Error::corrupt(
                    path,
                    reader.position(),
                    "the snapshot ends without its end frame",
                ))
            }
        }
    }
}

/// The header sequence number of a journal created before its first record's was known.
pub(crate) const SPARE_LSN: u64 = 0;

/// What scanning one journal found.
struct JournalScan {
    header: FileHeader,
    /// The last record's sequence number (start - 1 when empty).
    end_lsn: u64,
    records: u64,
    sealed: Option<u64>,
    /// Where an incomplete last record starts, if any.
    torn_at: Option<u64>,
    len: u64,
}

/// Where the chain says a journal starts, and what ends before it (for the message when the
/// journal starts elsewhere: it, or what precedes it, was truncated, rolled back or swapped).
struct ChainStart {
    lsn: u64,
    previous: String,
}

impl ChainStart {
    fn mismatch(&self, path: &Path, offset: u64, what: &str, found: u64) -> Error {
        Error::corrupt(
            path,
            offset,
            format!("{what} sequence number {found}, but {}", self.previous),
        )
    }
}

/// Reads a journal into `replay`, checking that it starts where the chain says: in its header,
/// or, for a journal created ahead of time (a spare, header sequence number 0), with its first
/// record.
fn scan_journal(
    fs: &dyn Fs,
    path: &Path,
    generation: u64,
    chain: &ChainStart,
    instance: &mut Option<InstanceId>,
    replay: &mut Replay,
) -> Result<JournalScan> {
    let len = fs.len(path).map_err(|e| io_err(path, "reading", e))?;
    let file = fs.open_read(path).map_err(|e| io_err(path, "reading", e))?;
    let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 16, file), len);
    let header = read_header(path, &mut reader, FileKind::Journal, generation)?;
    check_instance(path, header.instance_id, instance)?;
    if header.lsn != SPARE_LSN && header.lsn != chain.lsn {
        return Err(chain.mismatch(path, 0, "the journal starts at", header.lsn));
    }
    let spare = header.lsn == SPARE_LSN;
    let start = if spare { chain.lsn } else { header.lsn };
    let mut scan = JournalScan {
        end_lsn: start.saturating_sub(1),
        header,
        records: 0,
        sealed: None,
        torn_at: None,
        len,
    };
    loop {
        match reader.next_item() {
            Ok(None) => return Ok(scan),
            Err(Stop::Torn { offset }) => {
                scan.torn_at = Some(offset);
                return Ok(scan);
            }
            Err(stop) => return Err(corrupt_stop(path, stop)),
            Ok(Some(Item::Record {
                seq,
                payload,
                offset,
            })) => {
                if let Some(next) = scan.sealed {
                    return Err(Error::corrupt(
                        path,
                        offset,
                        format!("a record after the seal (continued by generation {next})"),
                    ));
                }
                let expected = scan.end_lsn + 1;
                if spare && scan.records == 0 && scan.sealed.is_none() && seq != expected {
                    return Err(chain.mismatch(path, offset, "the journal's first record is", seq));
                }
                if seq != expected {
                    return Err(Error::corrupt(
                        path,
                        offset,
                        format!("record {seq} where {expected} was expected"),
                    ));
                }
                let ops: Vec<Record> = decode(path, offset, &payload)?;
                if let [Record::Seal { next_generation }] = ops.as_slice() {
                    scan.sealed = Some(*next_generation);
                    continue;
                }
                for op in ops {
                    replay
                        .apply(op)
                        .map_err(|d| Error::corrupt(path, offset, d))?;
                }
                scan.end_lsn = seq;
                scan.records += 1;
            }
            Ok(Some(Item::Header { .. } | Item::End { .. })) => {
                return Err(Error::corrupt(
                    path,
                    reader.position(),
                    "an unexpected header or end frame in a journal",
                ))
            }
        }
    }
}

/// How long open waits for a lock held by someone else before it reports `Locked`. A lock is
/// on an open file description, which a child process forked by the embedding program shares
/// until it execs: a fleet closed and reopened while the program starts a process can find its
/// own lock still held for a moment. A real second owner still gets `Locked`, this much later.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn lock_dir(fs: &dyn Fs, dir: &Path) -> Result<super::fs::LockGuard> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match fs.lock_dir(dir).map_err(|e| io_err(dir, "locking", e))? {
            Some(lock) => return Ok(lock),
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            None => return Err(Error::Locked(dir.display().to_string())),
        }
    }
}

pub(super) fn open(
    fs: Arc<dyn Fs>,
    dir: &Path,
    options: StorageOptions,
    new_instance_id: InstanceId,
    audit_capacity: usize,
) -> Result<Opened> {
    fs.create_dir_all(dir)
        .map_err(|e| io_err(dir, "creating data directory", e))?;
    let lock = lock_dir(&*fs, dir)?;
    let names = fs.list(dir).map_err(|e| io_err(dir, "listing", e))?;
    let mut snapshots: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut journals: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut temporary: Vec<PathBuf> = Vec::new();
    let mut v1: Option<PathBuf> = None;
    for name in &names {
        match parse_name(name) {
            Some((FileKind::Snapshot, g)) => {
                snapshots.insert(g, dir.join(name));
            }
            Some((FileKind::Journal, g)) => {
                journals.insert(g, dir.join(name));
            }
            None if name.ends_with(".tmp") => temporary.push(dir.join(name)),
            None if name == "journal.log" || name == "snapshot.bin" => {
                v1 = Some(dir.join(name));
            }
            None => {}
        }
    }
    if let (Some(path), true) = (v1, snapshots.is_empty() && journals.is_empty()) {
        // Written by version 0.1 of this library, whose format this one does not read.
        return Err(Error::UnsupportedFormat {
            path: path.display().to_string(),
            found: 1,
            supported: FORMAT_VERSION,
        });
    }
    // A journal whose creation was cut short (its header incomplete) held nothing yet: the
    // generation before it is the live one. Such a journal can only be the newest file.
    if let Some((&g, path)) = journals.iter().next_back() {
        if header_is_torn(&*fs, path)? {
            temporary.push(path.clone());
            journals.remove(&g);
        }
    }

    let mut report = OpenReport::default();
    let mut replay = Replay::new(audit_capacity);
    let mut instance: Option<InstanceId> = None;
    let fresh = snapshots.is_empty() && journals.is_empty();
    if fresh {
        remove_all(&*fs, dir, &std::mem::take(&mut temporary), &mut report)?;
    }
    if fresh {
        // A new directory: the journal first, then the (empty) snapshot, so a crash in between
        // leaves an empty journal that the next open completes.
        let file = create_journal(&*fs, dir, 1, new_instance_id, 1)?;
        let state = Replay::new(audit_capacity).finish(new_instance_id);
        write_snapshot(&*fs, dir, 1, 1, new_instance_id, &state)?;
        remove_all(&*fs, dir, &temporary, &mut report)?;
        let storage = storage(
            fs.clone(),
            dir,
            options,
            lock,
            file,
            1,
            new_instance_id,
            1,
            0,
            0,
        );
        storage.shared.lock().snapshot_generation = 1;
        storage.prepare_spare();
        return Ok(Opened {
            storage,
            state: None,
            report,
        });
    }

    // The newest snapshot, and the journal chain from its generation on.
    let (base, snapshot_lsn) = match snapshots.iter().next_back() {
        Some((&g, path)) => {
            let h = read_snapshot(&*fs, path, g, &mut replay)?;
            check_instance(path, h.instance_id, &mut instance)?;
            report.snapshot_found = true;
            report.snapshot_generation = g;
            (g, h.lsn)
        }
        None => (1, 1),
    };
    if !report.snapshot_found {
        if let Some((&first, path)) = journals.iter().next() {
            if first > 1 {
                return Err(Error::corrupt(
                    path,
                    0,
                    format!(
                        "no snapshot exists, but the oldest journal is generation {first}: the \
                         snapshot of generation {first} is missing"
                    ),
                ));
            }
        }
    }
    let last = match journals.keys().next_back() {
        Some(&g) if g >= base => g,
        _ => {
            return Err(Error::corrupt(
                &dir.join(journal_name(base)),
                0,
                "the journal that continues the newest snapshot is missing",
            ))
        }
    };
    let mut scans: Vec<(u64, JournalScan)> = Vec::new();
    for g in base..=last {
        let prev = scans.last();
        let Some(path) = journals.get(&g) else {
            return Err(Error::corrupt(
                &dir.join(journal_name(g)),
                0,
                format!("journal generation {g} is missing from the chain {base}..{last}"),
            ));
        };
        let expected_start = match &prev {
            None => snapshot_lsn,
            Some((_, p)) => p.end_lsn + 1,
        };
        let chain = ChainStart {
            lsn: expected_start,
            previous: match &prev {
                None => format!("the snapshot ends at sequence number {}", snapshot_lsn - 1),
                Some((pg, p)) => format!(
                    "journal generation {pg} ends at sequence number {} (it was truncated or \
                     rolled back)",
                    p.end_lsn
                ),
            },
        };
        let scan = scan_journal(&*fs, path, g, &chain, &mut instance, &mut replay)?;
        if let Some(next) = scan.sealed {
            if next != g + 1 || g == last {
                return Err(Error::corrupt(
                    path,
                    scan.len,
                    format!("the journal is sealed and continued by generation {next}, which is missing"),
                ));
            }
        }
        report.journals_replayed += 1;
        report.journal_records_replayed += scan.records;
        scans.push((g, scan));
    }
    // A spare journal that was never switched to (a crash, or a close that could not remove
    // it) holds nothing: the journal before it is the live one, and the spare goes. A spare
    // after a sealed journal was switched to (the seal names it), even if nothing was written
    // to it yet: it is the live one.
    let mut unused_spare = None;
    if scans.len() > 1 {
        let (g, last_scan) = scans.last().expect("checked above");
        let predecessor_sealed = scans[scans.len() - 2].1.sealed.is_some();
        let unused = last_scan.header.lsn == SPARE_LSN
            && last_scan.records == 0
            && last_scan.sealed.is_none()
            && last_scan.torn_at.is_none()
            && !predecessor_sealed;
        if unused {
            unused_spare = Some(journals[g].clone());
            scans.pop();
            report.journals_replayed -= 1;
        }
    }
    let (live_generation, live) = scans.pop().expect("at least one journal");
    if !report.snapshot_found && (base != last || report.journal_records_replayed > 0) {
        return Err(Error::corrupt(
            &dir.join(snapshot_name(1)),
            0,
            "the journals hold records but no snapshot exists: a snapshot was removed",
        ));
    }
    let instance_id = instance.unwrap_or(new_instance_id);
    let state: FleetState = replay.finish(instance_id);
    report.nodes_restored = state.nodes.len() as u64;
    report.audit_entries_restored = state.audit.entries.len() as u64;

    // Everything checked out: now the directory may change.
    if !report.snapshot_found {
        // An interrupted creation: finish it.
        write_snapshot(&*fs, dir, 1, 1, instance_id, &state)?;
    }
    let live_path = journals[&live_generation].clone();
    let mut file = fs
        .open_append(&live_path)
        .map_err(|e| io_err(&live_path, "opening", e))?;
    let mut bytes = live.len;
    if let Some(at) = live.torn_at {
        file.set_len(at)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&live_path, "cutting the torn tail of", e))?;
        report.torn_tail_bytes = live.len - at;
        bytes = at;
    }
    let mut obsolete: Vec<PathBuf> = snapshots
        .iter()
        .filter(|(g, _)| **g < base)
        .chain(journals.iter().filter(|(g, _)| **g < base))
        .map(|(_, p)| p.clone())
        .collect();
    obsolete.extend(temporary);
    remove_all(&*fs, dir, &obsolete, &mut report)?;
    if let Some(spare) = unused_spare {
        fs.remove(&spare)
            .and_then(|()| fs.sync_dir(dir))
            .map_err(|e| io_err(&spare, "removing the unused spare journal", e))?;
    }
    let mut storage = storage(
        fs,
        dir,
        options,
        lock,
        file,
        live_generation,
        instance_id,
        live.end_lsn + 1,
        bytes,
        // Every record since the snapshot: that is what a reopen replays.
        report.journal_records_replayed,
    );
    storage.shared.lock().snapshot_generation = base;
    // A restart after writes starts a new generation, whose header says where the live journal
    // ended: a copy of that journal put back later with fewer records no longer passes for the
    // whole (the chain check at the next open catches it). A journal of an older format takes
    // no record of this one either. On a full disk this is left out (opening never needs more
    // space than the data uses): a journal of an older format then rotates at the first write.
    let older_format = live.header.format_version < FORMAT_VERSION;
    if live.records > 0 || live.header.lsn == SPARE_LSN || older_format {
        match storage.rotate() {
            Ok(_) => report.new_generation = true,
            Err(_) if storage.poisoned().is_none() => {
                storage.needs_new_generation = older_format;
            }
            Err(e) => return Err(e),
        }
    }
    // The journal the next compaction switches to, created now rather than under the lock.
    storage.prepare_spare();
    let state = FleetState {
        meta: FleetMeta {
            instance_id,
            ..state.meta
        },
        ..state
    };
    Ok(Opened {
        storage,
        state: Some(state),
        report,
    })
}

/// Whether a file is empty or ends inside its header frame: an interrupted creation. (A
/// journal's header is synced before its predecessor is sealed, so a sealed predecessor makes
/// such a file corruption instead: the chain check reports the missing generation.)
fn header_is_torn(fs: &dyn Fs, path: &Path) -> Result<bool> {
    let len = fs.len(path).map_err(|e| io_err(path, "reading", e))?;
    let file = fs.open_read(path).map_err(|e| io_err(path, "reading", e))?;
    let mut reader = Reader::new(std::io::BufReader::new(file), len);
    Ok(matches!(
        reader.next_item(),
        Ok(None) | Err(Stop::Torn { offset: 0 })
    ))
}

fn remove_all(fs: &dyn Fs, dir: &Path, paths: &[PathBuf], report: &mut OpenReport) -> Result<()> {
    for p in paths {
        fs.remove(p).map_err(|e| io_err(p, "removing", e))?;
        report.obsolete_files_removed += 1;
    }
    if !paths.is_empty() {
        fs.sync_dir(dir).map_err(|e| io_err(dir, "syncing", e))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn storage(
    fs: Arc<dyn Fs>,
    dir: &Path,
    options: StorageOptions,
    lock: super::fs::LockGuard,
    file: Box<dyn super::fs::FsFile>,
    generation: u64,
    instance_id: InstanceId,
    next_lsn: u64,
    bytes: u64,
    records: u64,
) -> Storage {
    let bytes = if bytes == 0 {
        fs.len(&dir.join(journal_name(generation))).unwrap_or(0)
    } else {
        bytes
    };
    Storage {
        fs,
        dir: dir.to_path_buf(),
        options,
        _lock: lock,
        file,
        generation,
        instance_id,
        next_lsn,
        bytes,
        records,
        unsynced_writes: 0,
        last_sync: std::time::Instant::now(),
        poisoned: None,
        needs_new_generation: false,
        shared: Arc::new(parking_lot::Mutex::new(Shared::default())),
        retired: Arc::new(parking_lot::Mutex::new(None)),
        retired_unsynced: Arc::default(),
    }
}
