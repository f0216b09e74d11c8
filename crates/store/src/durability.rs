//! The fsyncs that sled 0.34 does not do, and the directory lock.
//!
//! sled's `flush()` ends in `sync_file_range`, which does not force file metadata or the
//! drive's cache (sled issue #1452), so after every flush that acknowledges a durable append
//! we `fsync` sled's files ourselves, in the order a crash needs: new blob files and their
//! directory first, then the data file that refers to them. When a ledger is created, its
//! parent directory, the ledger directory and sled's `conf` are fsynced at open, so its
//! entries are durable before anything is acknowledged in it; opening an existing ledger
//! fsyncs nothing. The power-loss harness
//! (`crates/store/tests/powerloss.rs`) checks this order against crash images.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::StoreError;

pub(crate) struct FileSync {
    dir: PathBuf,
    data: File,
    blobs_seen: Mutex<HashSet<PathBuf>>,
}

impl FileSync {
    /// With `fresh` (a ledger being created), sled's `conf`, the directory and its parent are
    /// fsynced now; an existing ledger's entries are durable already.
    pub(crate) fn new(dir: &Path, fresh: bool) -> Result<FileSync, StoreError> {
        let data_path = dir.join("db");
        let data = File::open(&data_path).map_err(StoreError::io(format!(
            "opening {} for fsync",
            data_path.display()
        )))?;
        let conf = dir.join("conf");
        if fresh && conf.exists() {
            File::open(&conf)
                .and_then(|f| f.sync_all())
                .map_err(StoreError::io(format!("fsync of {}", conf.display())))?;
        }
        let sync = FileSync {
            dir: dir.to_path_buf(),
            data,
            blobs_seen: Mutex::new(HashSet::new()),
        };
        if fresh {
            sync_dir(dir)?;
            if let Some(parent) = parent_of(dir) {
                sync_dir(&parent)?;
            }
        }
        Ok(sync)
    }

    /// fsync any blob file not yet synced and its directory, then the data file.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let blobs = self.dir.join("blobs");
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            let mut seen = self.blobs_seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut new_any = false;
            for entry in entries.flatten() {
                let p = entry.path();
                if seen.contains(&p) {
                    continue;
                }
                // Only sled's own blob files, which are regular files; anything else (a
                // planted FIFO or symlink) is not ours to open. A blob sled removed since the
                // listing needs no fsync.
                if !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                match File::open(&p).and_then(|f| f.sync_all()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(StoreError::Io {
                            context: format!("fsync of {}", p.display()),
                            source: e,
                        });
                    }
                }
                seen.insert(p);
                new_any = true;
            }
            if new_any {
                sync_dir(&blobs)?;
                sync_dir(&self.dir)?;
            }
        }
        self.data
            .sync_all()
            .map_err(StoreError::io("fsync of the ledger's data file"))
    }
}

/// Make a closed sled directory whole on disk: wait until sled has let go of it (its
/// background flusher can write, and on shutdown sled writes its page-table snapshot, a few
/// milliseconds after the last handle is dropped), then fsync every regular file in it and
/// in `blobs/`, and the directories. For an import, before its ledger is renamed into place:
/// after that, no crash can find a ledger whose files sled was still writing.
pub(crate) fn sync_closed_ledger(dir: &Path) -> Result<(), StoreError> {
    let data = dir.join("db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // sled holds an exclusive lock on its data file while it is open
        let free = File::open(&data)
            .map(|f| f.try_lock().is_ok())
            .unwrap_or(false);
        if free || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for sub in [dir.join("blobs"), dir.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let p = entry.path();
            match File::open(&p).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Io {
                        context: format!("fsync of {}", p.display()),
                        source: e,
                    });
                }
            }
        }
        sync_dir(&sub)?;
    }
    Ok(())
}

/// The directory that holds `dir` (`.` for a bare name).
pub(crate) fn parent_of(dir: &Path) -> Option<PathBuf> {
    match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(p) => Some(p.to_path_buf()),
        None => None,
    }
}

/// fsync a directory so the entries in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(format!(
            "fsync of directory {}",
            dir.display()
        )))
}

/// Create `dir` if it is missing (fsyncing its parent, so the new entry is durable) and take
/// an exclusive lock on it, retrying for up to a second. With `create` false a missing
/// directory is an error.
pub(crate) fn lock_dir(dir: &Path, create: bool) -> Result<File, StoreError> {
    if create && !dir.exists() {
        // Every directory made here is a new entry in its parent: each parent is fsynced,
        // from the outermost new one inwards, so the whole path survives a power cut.
        let mut missing = vec![];
        let mut at = Some(dir.to_path_buf());
        while let Some(p) = at {
            if p.exists() {
                break;
            }
            at = parent_of(&p);
            missing.push(p);
        }
        std::fs::create_dir_all(dir)
            .map_err(StoreError::io(format!("creating {}", dir.display())))?;
        for made in missing.iter().rev() {
            if let Some(parent) = parent_of(made) {
                sync_dir(&parent)?;
            }
        }
    }
    let f = File::open(dir).map_err(StoreError::io(format!("opening {}", dir.display())))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io {
                    context: format!("locking {}", dir.display()),
                    source: e,
                });
            }
        }
    }
}

/// sled writes its page-table snapshot as `snap.<16 hex>.generating`, syncs it and only then
/// renames it to `snap.<16 hex>` (and removes older ones after that). One left behind — a
/// full disk, a crash mid-write — was never renamed, so sled never relied on it; but its
/// recovery reads the newest `snap.*` by name, that one included, and refuses the ledger as
/// corrupt. Removed before sled opens, under the directory lock (no one else is inside sled
/// to be writing one); sled then recovers from the snapshot before it, or from its log.
pub(crate) fn remove_unfinished_sled_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let unfinished = name
            .to_str()
            .and_then(|n| n.strip_prefix("snap."))
            .and_then(|n| n.strip_suffix(".generating"))
            .is_some_and(|lsn| lsn.len() == 16 && lsn.bytes().all(|b| b.is_ascii_hexdigit()));
        if unfinished && entry.file_type().is_ok_and(|t| t.is_file()) {
            tracing::warn!(
                "removing {}, a page-table snapshot sled did not finish writing",
                entry.path().display()
            );
            if std::fs::remove_file(entry.path()).is_ok() {
                let _ = sync_dir(dir);
            }
        }
    }
}

/// Try once to lock `dir`: `Some` when no one else holds it.
pub(crate) fn try_lock_dir(dir: &Path) -> Option<File> {
    let f = File::open(dir).ok()?;
    f.try_lock().ok().map(|_| f)
}
