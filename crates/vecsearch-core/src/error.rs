//! The one error type every backend returns.

use std::path::Path;

/// What went wrong, phrased so the caller knows what to fix.
///
/// Every backend maps its failures onto these variants: C++ exceptions, HTTP
/// errors and damaged files alike. No backend panics, aborts or exits on input.
/// New variants may come in minor releases: match with a `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector does not have the index's dimension.
    #[error("dimension mismatch: the index holds vectors of {expected} components, got {got}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length of the vector that was passed.
        got: usize,
    },
    /// A vector's values cannot be indexed (NaN, infinity, a zero vector for
    /// cosine, a negative component for Jaccard).
    #[error("invalid vector: {0}")]
    InvalidVector(String),
    /// An argument other than a vector is out of range (an id the backend
    /// cannot hold, a zero dimension, mismatched batch lengths, a bad URI).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend cannot serve this (a metric, a feature); raised when the
    /// index is created, never later.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A file is damaged, truncated, foreign or inconsistent.
    #[error("corrupt index file: {0}")]
    Corrupt(String),
    /// A file or operating-system call failed: opening, reading, writing,
    /// renaming or syncing an index file (or the temporary file a save
    /// writes first, or the folder it is renamed in), mapping an i8 index's
    /// originals file. Not a damaged file's contents (that is
    /// [`Error::Corrupt`]). A local URI whose path has no file, without
    /// `?mode=rwc`, is this error with `source.kind()` `NotFound`.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done, naming the path it was done to (for a save,
        /// the target path and the temporary file or folder that failed).
        context: String,
        /// The operating system's error: its `kind()` says `NotFound`,
        /// `PermissionDenied`, `StorageFull`, ...; for a missing index file,
        /// a `NotFound` whose message says how to create one instead.
        #[source]
        source: std::io::Error,
    },
    /// A server answered with an error.
    #[error("server error (status {status}): {message}")]
    Remote {
        /// HTTP status, or the server's own error code where it answers 200.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A server could not be reached or timed out, after the retries.
    #[error("server unavailable: {0}")]
    Unavailable(String),
    /// A bug or a failure inside a backend's engine (a C++ exception such as
    /// out-of-memory, a panic caught on a worker thread): not the caller's
    /// input, not a server. The index is left as the failed call found it
    /// where the engine allows; report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] that names the action and the path.
    pub fn io(action: &str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            context: format!("{action} {}", path.display()),
            source,
        }
    }

    /// An [`Error::Corrupt`] from anything printable.
    pub fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }
}
