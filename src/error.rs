//! Errors the user can cause, and the exit codes they map to.
//!
//! Every variant renders as one line that names the file (when there is one) and what is wrong.
//! Anything else that goes wrong is a bug, not a user error.

use std::path::{Path, PathBuf};

/// Exit codes shared by every command (also part of the machine-readable contract).
pub mod exit {
    /// Everything asked for succeeded.
    pub const OK: i32 = 0;
    /// A check ran and failed (check only).
    pub const CHECK_FAILED: i32 = 1;
    /// Bad usage, unreadable or invalid input.
    pub const USAGE: i32 = 2;
}

/// A model file that cannot be read as what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ModelError {
    pub path: PathBuf,
    pub message: String,
}

impl ModelError {
    pub fn new(path: &Path, message: impl Into<String>) -> ModelError {
        ModelError {
            path: path.to_path_buf(),
            message: one_line(&message.into()),
        }
    }

    pub fn io(path: &Path, err: &std::io::Error) -> ModelError {
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::UnexpectedEof => {
                "file is truncated (unexpected end of file)".to_string()
            }
            _ => err.to_string(),
        };
        ModelError::new(path, message)
    }
}

/// Errors a command reports to the user; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Usage(String),
}

impl ExpectedError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ExpectedError::Model(_) | ExpectedError::Usage(_) => exit::USAGE,
        }
    }
}

/// Folds a message to one line, so that every error stays one line even when a library's message
/// (a protobuf or zip error, say) spans several.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(line);
    }
    out
}
