//! The store's one error type.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in the store, in words for the person at the terminal.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the ledger open.
    #[error("ledger is in use by another process: {path}")]
    InUse {
        /// The ledger directory.
        path: PathBuf,
    },
    /// The ledger was written by a newer eduledger.
    #[error(
        "ledger at {path} has format version {found}; this eduledger reads up to version {supported}. Upgrade eduledger to open it"
    )]
    NewerFormat {
        /// The ledger directory.
        path: PathBuf,
        /// Version found in `meta`.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The caller's expected stream version did not hold.
    #[error("stream {stream} is at version {actual}, but the append expected {expected}")]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// What the caller expected, in words.
        expected: String,
        /// The stream's actual version.
        actual: u64,
    },
    /// An event id was reused for different content.
    #[error("event id {event_id} was already recorded at sequence {seq} with different content")]
    EventIdReused {
        /// The reused id.
        event_id: uuid::Uuid,
        /// Where it was first recorded.
        seq: u64,
    },
    /// The caller's input to the store was malformed (empty batch, oversize payload, bad stream id).
    #[error("{0}")]
    InvalidAppend(String),
    /// Stored bytes failed a check: the ledger is damaged at `seq`.
    #[error("ledger failed verification at sequence {seq}: {what}")]
    Corrupt {
        /// First bad sequence.
        seq: u64,
        /// What was wrong.
        what: String,
    },
    /// A digest noted earlier does not match the ledger.
    #[error("digest mismatch at sequence {seq}: noted {noted}, ledger has {actual}")]
    DigestMismatch {
        /// The sequence of the digest.
        seq: u64,
        /// The hash that was noted.
        noted: String,
        /// The hash the ledger has there (or "nothing" if it is shorter).
        actual: String,
    },
    /// An export line failed a check on import; nothing was written.
    #[error("import refused at line {line}: {reason}; nothing was written")]
    Import {
        /// 1-based line number in the export.
        line: u64,
        /// What was wrong.
        reason: String,
    },
    /// Import into a directory that is not empty.
    #[error(
        "import needs a new ledger: {path} already exists and is not an empty directory ({what}); nothing was touched"
    )]
    NotEmpty {
        /// The target directory.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// An fsync failed: the batch was not acknowledged, and this handle writes no more.
    #[error(
        "the ledger could not make a write durable ({0}); the last batch was not acknowledged and this process records nothing more. Reopen the ledger (it is rebuilt from what is on disk) and retry"
    )]
    SyncFailed(String),
    /// A write after a failed fsync.
    #[error(
        "an earlier write of this process could not be made durable, so it records nothing more; reopen the ledger and retry"
    )]
    Failed,
    /// Encoding failed (a bug or an oversize value).
    #[error("could not encode a record: {0}")]
    Encode(String),
    /// sled reported an error.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }

    /// True for errors that mean the ledger cannot be opened or trusted (CLI exit code 3).
    pub fn is_ledger_fault(&self) -> bool {
        matches!(
            self,
            StoreError::InUse { .. }
                | StoreError::NewerFormat { .. }
                | StoreError::Corrupt { .. }
                | StoreError::DigestMismatch { .. }
                | StoreError::Sled(_)
                | StoreError::SyncFailed(_)
                | StoreError::Failed
        )
    }
}
