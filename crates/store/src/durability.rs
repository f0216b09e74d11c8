//! The fsync that sled 0.34 does not do.
//!
//! sled's `flush()` ends in `sync_file_range`, which does not force file metadata or the
//! drive's cache (sled issue #1452), so after every flush that acknowledges a durable append
//! we `fsync` sled's data file ourselves. The directory is fsynced once at open (when sled
//! may have created its files) and whenever a new blob file appears, so the directory entries
//! of every file we depend on are durable too.

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
    pub(crate) fn new(dir: &Path) -> Result<FileSync, StoreError> {
        let data_path = dir.join("db");
        let data = File::open(&data_path).map_err(StoreError::io(format!(
            "opening {} for fsync",
            data_path.display()
        )))?;
        let sync = FileSync {
            dir: dir.to_path_buf(),
            data,
            blobs_seen: Mutex::new(HashSet::new()),
        };
        sync_dir(dir)?;
        Ok(sync)
    }

    /// fsync the data file, then any blob file not yet synced and its directory.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.data
            .sync_all()
            .map_err(StoreError::io("fsync of the ledger's data file"))?;
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut seen = self.blobs_seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut new_any = false;
        for entry in entries.flatten() {
            let p = entry.path();
            if !seen.contains(&p) {
                File::open(&p)
                    .and_then(|f| f.sync_all())
                    .map_err(StoreError::io(format!("fsync of {}", p.display())))?;
                seen.insert(p);
                new_any = true;
            }
        }
        if new_any {
            sync_dir(&blobs)?;
        }
        Ok(())
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
