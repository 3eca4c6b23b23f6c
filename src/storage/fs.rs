//! The one narrow layer all storage I/O goes through.
//!
//! [`OsFs`] is the real file system. Tests put other implementations behind the same seam: the
//! simulated, crash-modelling file system and the fault injector of [`super::testing`] (built
//! only with the `testing` feature, so they never ship in the library).

use std::any::Any;
use std::fmt::Debug;
use std::io::{self, Read};
use std::path::Path;

/// An open file being written. Every write appends: after [`FsFile::set_len`] cuts the file, the
/// next write continues exactly where the file now ends, so a write that failed part-way and
/// was cut off leaves the file as it was before, byte for byte.
pub trait FsFile: Send + Sync + Debug {
    /// Appends `buf`. On error an unknown prefix of it may have been written (a short write on
    /// a full disk); callers cut the file back with `set_len`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// A held directory lock; dropping it releases the lock.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// The file-system operations storage needs, and nothing more.
pub trait Fs: Send + Sync + Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn len(&self, path: &Path) -> io::Result<u64>;
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// Creates (or truncates) a file for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file to append to it.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of a data directory; `Ok(None)` when another holder has it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Option<LockGuard>>;
}

// ----- the real file system -------------------------------------------------------------------

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

#[derive(Debug)]
struct OsFile(std::fs::File);

impl FsFile for OsFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.0, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Fs for OsFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Ok(name) = e?.file_name().into_string() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        // Append mode, not a write position: after a failed write is cut back with set_len,
        // a file opened with a position would write the next record at the old position and
        // leave a hole of zeros where the failed write was (found on a full disk).
        // (std refuses `truncate` together with `append`, so the file is cut explicitly.)
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.set_len(0)?;
        Ok(Box::new(OsFile(f)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let f = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::fs::File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directory entries cannot be synced here (WASI, Windows); renames are atomic.
            let _ = dir;
            Ok(())
        }
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Option<LockGuard>> {
        // The lock is on the directory itself (an open descriptor), so deleting a file in it
        // cannot defeat it; it goes away when the process does.
        #[cfg(unix)]
        {
            let d = std::fs::File::open(dir)?;
            match d.try_lock() {
                Ok(()) => Ok(Some(Box::new(d))),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            // WASI has no locks: the host that mounts the directory holds it (the Go package
            // does). Elsewhere a LOCK file held open stands in.
            #[cfg(target_os = "wasi")]
            {
                let _ = dir;
                Ok(Some(Box::new(())))
            }
            #[cfg(not(target_os = "wasi"))]
            {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join("LOCK"))?;
                match f.try_lock() {
                    Ok(()) => Ok(Some(Box::new(f))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => Err(e),
                }
            }
        }
    }
}
