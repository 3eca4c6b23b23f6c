//! Test doubles for the storage seam, kept out of the shipped library (the `testing` feature):
//! a simulated file system that models what survives a crash, and a fault injector that makes
//! the Nth operation fail, write short or "crash" (the approach of SQLite's test VFS).
//!
//! [`SimFs`] keeps, per file, what reads see and what survives a power loss (only what was
//! synced: file contents by `sync_data`, directory entries by `sync_dir`), and can keep a torn
//! prefix of unsynced appends. Like a real disk it writes as much as fits when it is full and
//! then fails. [`FaultFs`] wraps any [`Fs`] (also the real one) and injects one fault.

use super::fs::{Fs, FsFile, LockGuard};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
struct SimInode {
    /// What reads see.
    data: Vec<u8>,
    /// What survives a crash.
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: BTreeMap<u64, SimInode>,
    next_inode: u64,
    /// Directory entries as they are now, and as they would be after a crash.
    entries: BTreeMap<PathBuf, u64>,
    durable_entries: BTreeMap<PathBuf, u64>,
    dirs: std::collections::BTreeSet<PathBuf>,
    locked: std::collections::BTreeSet<PathBuf>,
    /// Bytes written in all, and a cap (a full disk).
    capacity: Option<u64>,
}

impl SimState {
    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }
}

/// An in-memory file system with a crash model. Cheap to clone (shared state).
#[derive(Debug, Default, Clone)]
pub struct SimFs {
    state: Arc<parking_lot::Mutex<SimState>>,
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    inode: u64,
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", p.display()),
    )
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// Limits the bytes all files may hold together, as a full disk does.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Simulates a power loss: every file keeps only what was synced, plus (when `torn` is set)
    /// the first half of what was appended since, and directories keep only synced entries.
    pub fn crash(&self, torn: bool) {
        let mut s = self.state.lock();
        let durable_entries = s.durable_entries.clone();
        s.entries = durable_entries;
        for inode in s.inodes.values_mut() {
            let mut data = inode.durable.clone();
            if torn && inode.data.len() > data.len() && inode.data.starts_with(&data) {
                let extra = &inode.data[data.len()..];
                data.extend_from_slice(&extra[..extra.len() / 2]);
            }
            inode.data = data;
        }
        let live: std::collections::BTreeSet<u64> = s.entries.values().copied().collect();
        s.inodes.retain(|k, _| live.contains(k));
        s.locked.clear();
    }

    /// The current bytes of a file (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state.lock();
        s.entries.get(path).map(|i| s.inodes[i].data.clone())
    }

    /// Replaces a file's bytes, durably (for tests that damage files).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut s = self.state.lock();
        let inode = match s.entries.get(path) {
            Some(i) => *i,
            None => {
                let i = s.next_inode;
                s.next_inode += 1;
                s.entries.insert(path.to_path_buf(), i);
                s.durable_entries.insert(path.to_path_buf(), i);
                i
            }
        };
        s.inodes.insert(
            inode,
            SimInode {
                durable: data.clone(),
                data,
            },
        );
    }

    /// Removes a file durably (for tests that delete files).
    pub fn delete_file(&self, path: &Path) {
        let mut s = self.state.lock();
        s.entries.remove(path);
        s.durable_entries.remove(path);
    }

    /// Every file name under `dir`.
    pub fn files(&self, dir: &Path) -> Vec<String> {
        self.list(dir).unwrap_or_default()
    }
}

impl FsFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.fs.state.lock();
        // A full disk takes what fits and then fails, as write(2) does: a short write.
        let room = s
            .capacity
            .map_or(u64::MAX, |cap| cap.saturating_sub(s.used()));
        let fits = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        let inode = s
            .inodes
            .get_mut(&self.inode)
            .ok_or_else(|| io::Error::other("file was removed"))?;
        inode.data.extend_from_slice(&buf[..fits]);
        if fits < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "no space left on device (simulated; {fits} of {} bytes written)",
                    buf.len()
                ),
            ));
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.fs.state.lock();
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.durable = inode.data.clone();
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.state.lock();
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.data.resize(len as usize, 0);
        }
        Ok(())
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.lock().dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        Ok(s.entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let s = self.state.lock();
        let i = s.entries.get(path).ok_or_else(|| not_found(path))?;
        Ok(s.inodes[i].data.len() as u64)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let data = self.read_file(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(io::Cursor::new(data)))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.state.lock();
        let inode = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(inode, SimInode::default());
        s.entries.insert(path.to_path_buf(), inode);
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let s = self.state.lock();
        let inode = *s.entries.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let inode = s.entries.remove(from).ok_or_else(|| not_found(from))?;
        s.entries.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.entries.remove(path).ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let now: Vec<(PathBuf, u64)> = s
            .entries
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.durable_entries.retain(|p, _| p.parent() != Some(dir));
        s.durable_entries.extend(now);
        Ok(())
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Option<LockGuard>> {
        let mut s = self.state.lock();
        if !s.locked.insert(dir.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            fs: self.clone(),
            dir: dir.to_path_buf(),
        })))
    }
}

struct SimLock {
    fs: SimFs,
    dir: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.state.lock().locked.remove(&self.dir);
    }
}

// ----- fault injection -------------------------------------------------------------------------

/// What happens at the chosen operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with an I/O error (EIO; for writes, ENOSPC) and has no effect.
    Error,
    /// A write writes the first half of its bytes and then fails with ENOSPC, as a write on a
    /// disk that just filled up does; any other operation fails as with [`Fault::Error`].
    ShortWrite,
    /// The operation fails and every later one too: the process "died" there. Combine with
    /// [`SimFs::crash`] to see what survives.
    Crash,
}

/// Wraps a file system and injects one fault at the `at`-th operation (counting from 1) that
/// matches `kinds`, or never when `at` is 0. Counts every operation, so a test can first run a
/// workload to learn how many there are, then enumerate each.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Fs>,
    plan: Arc<FaultPlan>,
}

#[derive(Debug)]
struct FaultPlan {
    at: u64,
    fault: Fault,
    kinds: u32,
    count: AtomicU64,
    crashed: std::sync::atomic::AtomicBool,
}

/// Operation kinds, for [`FaultFs::new`]'s `kinds` mask.
pub mod op {
    pub const WRITE: u32 = 1;
    pub const SYNC: u32 = 2;
    pub const RENAME: u32 = 4;
    pub const SYNC_DIR: u32 = 8;
    pub const CREATE: u32 = 16;
    pub const REMOVE: u32 = 32;
    pub const SET_LEN: u32 = 64;
    pub const OPEN: u32 = 128;
    pub const ALL: u32 = 255;
}

impl FaultFs {
    pub fn new(inner: Arc<dyn Fs>, at: u64, fault: Fault, kinds: u32) -> FaultFs {
        FaultFs {
            inner,
            plan: Arc::new(FaultPlan {
                at,
                fault,
                kinds,
                count: AtomicU64::new(0),
                crashed: Default::default(),
            }),
        }
    }

    /// How many matching operations ran so far.
    pub fn count(&self) -> u64 {
        self.plan.count.load(Ordering::SeqCst)
    }

    /// Whether the injected fault has fired.
    pub fn fired(&self) -> bool {
        self.plan.at != 0 && self.count() >= self.plan.at
    }

    fn check(&self, kind: u32, what: &str) -> io::Result<()> {
        let p = &self.plan;
        if p.crashed.load(Ordering::SeqCst) {
            return Err(io::Error::other(format!(
                "{what}: the process crashed (injected)"
            )));
        }
        if kind & p.kinds == 0 {
            return Ok(());
        }
        let n = p.count.fetch_add(1, Ordering::SeqCst) + 1;
        if p.at != 0 && n == p.at {
            if p.fault == Fault::Crash {
                p.crashed.store(true, Ordering::SeqCst);
                return Err(io::Error::other(format!("{what}: crash (injected)")));
            }
            let kind = if kind == op::WRITE {
                io::ErrorKind::StorageFull
            } else {
                io::ErrorKind::Other
            };
            return Err(io::Error::new(
                kind,
                format!("{what}: I/O error (injected)"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultFile {
    fs: FaultFs,
    inner: Box<dyn FsFile>,
}

impl FsFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Err(e) = self.fs.check(op::WRITE, "write") {
            if self.fs.plan.fault == Fault::ShortWrite
                && !self.fs.plan.crashed.load(Ordering::SeqCst)
            {
                // The disk took half of it before it filled up.
                self.inner.write_all(&buf[..buf.len() / 2])?;
            }
            return Err(e);
        }
        self.inner.write_all(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.fs.check(op::SYNC, "fdatasync")?;
        self.inner.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.fs.check(op::SET_LEN, "ftruncate")?;
        self.inner.set_len(len)
    }
}

impl Fs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check(op::CREATE, "mkdir")?;
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check(op::OPEN, "readdir")?;
        self.inner.list(dir)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.check(op::OPEN, "stat")?;
        self.inner.len(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        self.check(op::OPEN, "open")?;
        self.inner.open_read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.check(op::CREATE, "create")?;
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            inner: self.inner.create(path)?,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.check(op::OPEN, "open")?;
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            inner: self.inner.open_append(path)?,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(op::RENAME, "rename")?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(op::REMOVE, "unlink")?;
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(op::SYNC_DIR, "fsync(dir)")?;
        self.inner.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<LockGuard>> {
        self.inner.lock_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_fs_keeps_only_synced_data_and_entries_across_a_crash() {
        let fs = SimFs::new();
        let dir = Path::new("/d");
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(dir).unwrap();
        f.write_all(b" world").unwrap();
        let b = dir.join("b");
        let mut g = fs.create(&b).unwrap();
        g.write_all(b"unsynced entry").unwrap();
        g.sync_data().unwrap();
        fs.crash(false);
        assert_eq!(fs.read_file(&a).unwrap(), b"hello");
        assert_eq!(
            fs.read_file(&b),
            None,
            "its directory entry was never synced"
        );
        // A torn crash keeps half of the unsynced tail.
        let mut f = fs.open_append(&a).unwrap();
        f.write_all(b"1234").unwrap();
        fs.crash(true);
        assert_eq!(fs.read_file(&a).unwrap(), b"hello12");
        // Renames are directory changes too.
        fs.rename(&a, &dir.join("c")).unwrap();
        fs.crash(false);
        assert!(fs.read_file(&a).is_some());
        fs.rename(&a, &dir.join("c")).unwrap();
        fs.sync_dir(dir).unwrap();
        fs.crash(false);
        assert_eq!(fs.files(dir), vec!["c".to_string()]);
    }

    #[test]
    fn faults_fire_at_the_chosen_operation_and_a_crash_stops_everything() {
        let sim = SimFs::new();
        let f = FaultFs::new(Arc::new(sim.clone()), 2, Fault::Error, op::WRITE);
        let mut file = f.create(Path::new("/d/x")).unwrap();
        file.write_all(b"1").unwrap();
        assert_eq!(
            file.write_all(b"2").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        file.write_all(b"3").unwrap();
        assert_eq!(sim.read_file(Path::new("/d/x")).unwrap(), b"13");
        let c = FaultFs::new(Arc::new(sim.clone()), 1, Fault::Crash, op::SYNC);
        let mut file = c.open_append(Path::new("/d/x")).unwrap();
        assert!(file.sync_data().is_err());
        assert!(file.write_all(b"4").is_err(), "nothing runs after a crash");
        assert!(c.fired());
    }

    #[test]
    fn a_full_simulated_disk_refuses_writes() {
        let fs = SimFs::new();
        fs.set_capacity(Some(4));
        let mut f = fs.create(Path::new("/d/x")).unwrap();
        f.write_all(b"1234").unwrap();
        assert_eq!(
            f.write_all(b"5").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
    }
}
