//! Where an export is written: never over something that exists unless `--force` says so,
//! never inside a ledger's directory, and a regular file only once it is whole (written
//! beside, synced, then renamed; a run that fails leaves nothing).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Failure;

/// A directory is a ledger's when it holds sled's files (or is the ledger named by `--db`).
fn is_ledger_dir(dir: &Path, db: &Path) -> bool {
    dir == db || (dir.join("conf").is_file() && dir.join("db").is_file())
}

/// The absolute path `file` names, its parent resolved through links (the file itself may
/// not exist yet).
fn resolved(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => absolute,
    }
}

/// Refuse a target inside a ledger directory (always) or one that exists (unless `force`).
fn check(file: &Path, force: bool, db: &Path) -> Result<(), Failure> {
    let target = resolved(file);
    let db = db.canonicalize().unwrap_or_else(|_| resolved(db));
    if let Some(dir) = target.ancestors().skip(1).find(|d| is_ledger_dir(d, &db)) {
        return Err(Failure::Refused(format!(
            "{} is inside the ledger directory {}: an export is never written there (it could replace the ledger's own files); choose a file outside it",
            file.display(),
            dir.display()
        )));
    }
    if is_ledger_dir(&target, &db) {
        return Err(Failure::Refused(format!(
            "{} is a ledger directory; an export is a file outside it",
            file.display()
        )));
    }
    if !force && std::fs::symlink_metadata(file).is_ok() {
        return Err(Failure::Refused(format!(
            "{} already exists; nothing was written (pass --force to replace it)",
            file.display()
        )));
    }
    Ok(())
}

/// Write an export to `file` with `write`, as the module says. Returns what `write` did.
pub fn write_to<T>(
    file: &Path,
    force: bool,
    db: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, Failure>,
) -> Result<T, Failure> {
    check(file, force, db)?;
    // (with --force, what is not a regular file — a FIFO, a terminal — is written as it is)
    let plain = std::fs::metadata(file).map_or(true, |m| m.is_file());
    if !plain {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", file.display())))?;
        return write(&mut f);
    }
    // (named for this process: one a killed run left behind blocks nothing)
    let part = PathBuf::from(format!("{}.{}.part", file.display(), std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&part)
        .map_err(|e| Failure::Refused(format!("cannot create {}: {e}", part.display())))?;
    let mut out = std::io::BufWriter::new(f);
    let written = write(&mut out).and_then(|t| {
        let f = out
            .into_inner()
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", part.display())))?;
        f.sync_all()
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", part.display())))?;
        // (checked again: something may have appeared meanwhile)
        if !force && std::fs::symlink_metadata(file).is_ok() {
            return Err(Failure::Refused(format!(
                "{} appeared while the export was written; nothing was replaced (pass --force to replace it)",
                file.display()
            )));
        }
        std::fs::rename(&part, file)
            .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", file.display())))?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(t)
    });
    if written.is_err() {
        // (only the part this run created)
        let _ = std::fs::remove_file(&part);
    }
    written
}
