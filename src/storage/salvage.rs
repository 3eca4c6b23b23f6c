//! Recovering what can be verified from a damaged data directory, into a new one.
//!
//! Open refuses damage and never rewrites it; salvage is the explicit repair. It reads every
//! snapshot and journal of the damaged directory (which it never modifies), keeps every frame
//! whose checksums verify (resynchronising after damaged bytes), rebuilds the fleet from the
//! newest readable snapshot and the journal records that follow it, and writes the result as a
//! fresh data directory. The report says exactly what was lost: the damaged byte ranges, the
//! snapshot records and the journal sequence numbers (mutations) that could not be verified.

use super::frame::{crc32, Kind, HEADER_LEN, MAX_PAYLOAD};
use super::fs::{Fs, OsFs};
use super::open::parse_name;
use super::records::{FileHeader, FileKind, Record, Replay};
use super::{create_journal, io_err, write_snapshot};
use crate::error::{Error, Result};
use crate::ids::InstanceId;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of one file that did not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedRange {
    pub file: String,
    pub offset: u64,
    pub length: u64,
}

/// What [`salvage`] recovered and what it lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalvageReport {
    pub files_read: Vec<String>,
    /// The generation of the snapshot the result is built on (0: none could be read).
    pub base_snapshot_generation: u64,
    /// Snapshot records (nodes, audit entries) that did not verify.
    pub snapshot_records_lost: u64,
    /// Journal records (mutations) applied after the snapshot.
    pub journal_records_recovered: u64,
    /// Ranges of journal sequence numbers (inclusive) that could not be verified: mutations
    /// lost. A node a lost mutation touched keeps its state from the last verified record.
    pub lost_sequence_ranges: Vec<(u64, u64)>,
    pub damaged_ranges: Vec<DamagedRange>,
    pub nodes_recovered: u64,
    pub audit_entries_recovered: u64,
    /// Audit entries recovered but older than a lost mutation's: the ring keeps a contiguous
    /// run of sequence numbers, so these count as evicted in the new directory.
    pub audit_entries_dropped_before_a_gap: u64,
    pub output_dir: String,
}

/// A verified frame.
struct Frame {
    kind: Kind,
    seq: u64,
    payload: Vec<u8>,
}

/// Every verified frame of `data`, and the ranges in between that did not verify.
fn scan(data: &[u8], file: &str, damaged: &mut Vec<DamagedRange>) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    let mut bad_start: Option<usize> = None;
    let mut close_bad = |bad_start: &mut Option<usize>, end: usize| {
        if let Some(s) = bad_start.take() {
            damaged.push(DamagedRange {
                file: file.to_owned(),
                offset: s as u64,
                length: (end - s) as u64,
            });
        }
    };
    while pos < data.len() {
        if let Some((frame, len)) = frame_at(data, pos) {
            close_bad(&mut bad_start, pos);
            frames.push(frame);
            pos += len;
        } else {
            bad_start.get_or_insert(pos);
            pos += 1;
        }
    }
    close_bad(&mut bad_start, data.len());
    frames
}

fn frame_at(data: &[u8], pos: usize) -> Option<(Frame, usize)> {
    let h = data.get(pos..pos + HEADER_LEN)?;
    if &h[0..4] != b"NLF2" {
        return None;
    }
    let header_crc = u32::from_le_bytes(h[32..36].try_into().ok()?);
    if crc32(&h[..32]) != header_crc {
        return None;
    }
    let kind = match h[4] {
        1 => Kind::Header,
        2 => Kind::Full,
        3 => Kind::First,
        4 => Kind::Middle,
        5 => Kind::Last,
        6 => Kind::End,
        _ => return None,
    };
    let len = u32::from_le_bytes(h[8..12].try_into().ok()?) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let seq = u64::from_le_bytes(h[20..28].try_into().ok()?);
    let crc = u32::from_le_bytes(h[28..32].try_into().ok()?);
    let payload = data.get(pos + HEADER_LEN..pos + HEADER_LEN + len)?;
    if crc32(payload) != crc {
        return None;
    }
    Some((
        Frame {
            kind,
            seq,
            payload: payload.to_vec(),
        },
        HEADER_LEN + len,
    ))
}

/// Joins fragments into records: (header, records by sequence number).
fn records(frames: Vec<Frame>) -> (Option<FileHeader>, BTreeMap<u64, Vec<u8>>) {
    let mut header = None;
    let mut out = BTreeMap::new();
    let mut partial: Option<(u64, Vec<u8>)> = None;
    for f in frames {
        match f.kind {
            Kind::Header => header = serde_json::from_slice(&f.payload).ok(),
            Kind::Full => {
                out.insert(f.seq, f.payload);
            }
            Kind::First => partial = Some((f.seq, f.payload)),
            Kind::Middle | Kind::Last => match &mut partial {
                Some((seq, buf)) if *seq == f.seq => {
                    buf.extend_from_slice(&f.payload);
                    if f.kind == Kind::Last {
                        let (seq, buf) = partial.take().expect("matched above");
                        out.insert(seq, buf);
                    }
                }
                _ => partial = None,
            },
            Kind::End => {}
        }
    }
    (header, out)
}

/// A file's header (if it verified) and its verified records by sequence number.
type FileRecords = (Option<FileHeader>, BTreeMap<u64, Vec<u8>>);

/// Salvages `from` into the new directory `to` (which must not exist or be empty), on the real
/// file system.
pub fn salvage(from: &Path, to: &Path) -> Result<SalvageReport> {
    // The real paths, so that a symbolic link or `..` cannot hide that the target is inside
    // the damaged directory. The target need not exist: its nearest existing ancestor is
    // resolved and the rest appended.
    let real = |p: &Path| -> PathBuf {
        let mut missing = Vec::new();
        let mut at = p.to_path_buf();
        loop {
            if let Ok(c) = std::fs::canonicalize(&at) {
                return missing.iter().rev().fold(c, |acc, part| acc.join(part));
            }
            match (at.file_name().map(|n| n.to_owned()), at.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name);
                    at = parent.to_path_buf();
                }
                _ => return lexical(p),
            }
        }
    };
    refuse_target_inside(&real(from), &real(to), from, to)?;
    salvage_with(Arc::new(OsFs), from, to)
}

/// `p` with `.` and `..` resolved by position (no file system access).
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Salvage writes a new directory and never the damaged one: a target that is the damaged
/// directory, or inside it, is refused.
fn refuse_target_inside(from: &Path, to: &Path, shown_from: &Path, shown_to: &Path) -> Result<()> {
    if to.starts_with(from) {
        return Err(Error::InvalidArgument(format!(
            "the salvage target {} is inside the damaged directory {}: salvage never writes \
             the directory it reads; choose a target outside it",
            shown_to.display(),
            shown_from.display()
        )));
    }
    Ok(())
}

/// [`salvage`] on any file system.
pub fn salvage_with(fs: Arc<dyn Fs>, from: &Path, to: &Path) -> Result<SalvageReport> {
    refuse_target_inside(&lexical(from), &lexical(to), from, to)?;
    let names = fs.list(from).map_err(|e| io_err(from, "listing", e))?;
    if fs.list(to).is_ok_and(|n| !n.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "{} is not empty: salvage writes a new data directory",
            to.display()
        )));
    }
    let mut report = SalvageReport {
        output_dir: to.display().to_string(),
        ..Default::default()
    };
    let mut snapshots: BTreeMap<u64, FileRecords> = BTreeMap::new();
    let mut journals: BTreeMap<u64, FileRecords> = BTreeMap::new();
    for name in names {
        let Some((kind, generation)) = parse_name(&name) else {
            continue;
        };
        let path = from.join(&name);
        let mut data = Vec::new();
        fs.open_read(&path)
            .and_then(|mut r| r.read_to_end(&mut data))
            .map_err(|e| io_err(&path, "reading", e))?;
        let (header, recs) = records(scan(&data, &name, &mut report.damaged_ranges));
        report.files_read.push(name);
        match kind {
            FileKind::Snapshot => snapshots.insert(generation, (header, recs)),
            FileKind::Journal => journals.insert(generation, (header, recs)),
        };
    }
    // The newest snapshot whose header verifies is the base.
    let mut replay = Replay::new(usize::MAX);
    let mut instance: Option<InstanceId> = None;
    let mut next_lsn = 1u64;
    let mut base_generation = 0u64;
    if let Some((g, (h, recs))) = snapshots.iter().rev().find(|(_, (h, _))| h.is_some()) {
        let h = h.as_ref().expect("found above");
        base_generation = *g;
        instance = Some(h.instance_id);
        next_lsn = h.lsn;
        let mut expected = 0u64;
        for (seq, payload) in recs {
            report.snapshot_records_lost += seq.saturating_sub(expected);
            expected = seq + 1;
            match serde_json::from_slice::<Record>(payload) {
                Ok(r) => replay.apply_lenient(r),
                Err(_) => report.snapshot_records_lost += 1,
            }
        }
        let _ = replay.end_snapshot();
    }
    report.base_snapshot_generation = base_generation;
    // Every journal record from the snapshot on, in sequence order, from every journal of that
    // generation or newer.
    let mut by_lsn: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (g, (h, recs)) in journals.range(base_generation..) {
        let _ = g;
        if let Some(h) = h {
            instance.get_or_insert(h.instance_id);
        }
        for (seq, payload) in recs {
            if *seq < next_lsn {
                continue;
            }
            // A seal carries the sequence number its successor starts at: where both are
            // present, the successor's record is the mutation, the seal only a link.
            match by_lsn.entry(*seq) {
                Entry::Vacant(v) => {
                    v.insert(payload.clone());
                }
                Entry::Occupied(mut o) => {
                    if is_seal(o.get()) && !is_seal(payload) {
                        o.insert(payload.clone());
                    }
                }
            }
        }
    }
    let mut expected = next_lsn;
    for (seq, payload) in by_lsn {
        if seq > expected {
            report.lost_sequence_ranges.push((expected, seq - 1));
        }
        expected = seq + 1;
        match serde_json::from_slice::<Vec<Record>>(&payload) {
            Ok(ops) => {
                let mutation = !matches!(ops.as_slice(), [Record::Seal { .. }]);
                for op in ops {
                    replay.apply_lenient(op);
                }
                if mutation {
                    report.journal_records_recovered += 1;
                }
            }
            Err(_) => report.lost_sequence_ranges.push((seq, seq)),
        }
    }
    let instance_id = match instance {
        Some(i) => i,
        None => InstanceId::random()?,
    };
    let mut state = replay.finish(instance_id);
    // The ring holds a contiguous run of sequence numbers: keep the newest one; entries before
    // a gap (a lost mutation's entries) count as evicted.
    let entries = &mut state.audit.entries;
    let seq = |i: usize| entries.get(i).map_or(0, |e| e.seq);
    if let Some(cut) = (1..entries.len()).rev().find(|&i| seq(i) != seq(i - 1) + 1) {
        entries.drop_oldest(cut);
        report.audit_entries_dropped_before_a_gap = cut as u64;
        state.audit.evicted += cut as u64;
    }
    report.nodes_recovered = state.nodes.len() as u64;
    report.audit_entries_recovered = state.audit.entries.len() as u64;
    fs.create_dir_all(to)
        .map_err(|e| io_err(to, "creating", e))?;
    create_journal(&*fs, to, 1, instance_id, expected)?;
    write_snapshot(&*fs, to, 1, expected, instance_id, &state)?;
    Ok(report)
}

/// Whether a journal record is only a seal (the link to the next generation).
fn is_seal(payload: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<Vec<Record>>(payload).as_deref(),
        Ok([Record::Seal { .. }])
    )
}
