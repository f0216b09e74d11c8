//! Reading the files a person names — a certificate, a key, a rules file, a batch, an
//! import, a roster: one bounded reader for all of them.
//!
//! A path can name something that is not a file: `/dev/zero` never ends, a FIFO blocks the
//! open until a writer comes, a directory reads as an error deep inside a parser. So a
//! named file is opened without blocking, must then be a regular file (a symbolic link is
//! followed to what it names), and is read to at most its limit whatever its metadata says
//! (a file can grow while it is read).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a named file was not read.
#[derive(Debug)]
pub enum FileError {
    /// It could not be opened or read.
    Io {
        /// The path named.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// It is not a regular file.
    NotAFile {
        /// The path named.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// It holds more than the limit.
    TooLarge {
        /// The path named.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            FileError::NotAFile { path, kind } => write!(
                f,
                "{} is {kind}, not a regular file; name a file",
                path.display()
            ),
            FileError::TooLarge { path, limit } => {
                write!(f, "{} is over the limit of {limit} bytes", path.display())
            }
        }
    }
}

impl std::error::Error for FileError {}

/// Open `path` for reading if it is a regular file, without blocking on a FIFO.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // (a FIFO's open waits for a writer unless it is non-blocking; a regular file's
        // reads never block either way)
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let kind = if kind.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_char_device() {
                "a character device"
            } else if kind.is_block_device() {
                "a block device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "not a file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a file"
        }
    };
    Err(FileError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// Read all of `reader`, at most `limit` bytes; `path` names it in errors.
pub fn read_to_limit(reader: impl Read, path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// The whole of the regular file `path`, if it holds at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    read_to_limit(open_regular(path)?, path, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_reads_whole_and_one_over_the_limit_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&p, 4),
            Err(FileError::TooLarge { limit: 4, .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_directories_and_links_to_them_are_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let link = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (p, kind) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (link.as_path(), "a character device"),
            (d.path(), "a directory"),
        ] {
            match read_bounded(p, 1 << 30) {
                Err(FileError::NotAFile { kind: k, .. }) => assert_eq!(k, kind, "{p:?}"),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }
}
