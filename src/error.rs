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
    /// The model file (or model directory) as the user named it.
    pub path: PathBuf,
    /// What is wrong, one line, without the path.
    pub message: String,
}

impl ModelError {
    /// An error about the model at `path`; `message` is folded to one line ([`one_line`]).
    pub fn new(path: &Path, message: impl Into<String>) -> ModelError {
        ModelError {
            path: path.to_path_buf(),
            message: one_line(&message.into()),
        }
    }

    /// An I/O error reading the model at `path`, worded by [`io_message`].
    pub fn io(path: &Path, err: &std::io::Error) -> ModelError {
        ModelError::new(path, io_message(err))
    }
}

/// Any other file the user named or a command writes — a data set, a manifest, an output path,
/// a report — that cannot be read, parsed or written. The path is the file the message is
/// about, never the model's unless the model is that file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct FileError {
    /// The file the message is about.
    pub path: PathBuf,
    /// What is wrong, one line, without the path.
    pub message: String,
}

impl FileError {
    /// An error about the file at `path`; `message` is folded to one line ([`one_line`]).
    pub fn new(path: &Path, message: impl Into<String>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            message: one_line(&message.into()),
        }
    }

    /// The same error, saying which flag named the file (`cannot write: … (--report-json)`).
    pub fn for_flag(self, flag: &str) -> FileError {
        FileError {
            message: format!("{} ({flag})", self.message),
            ..self
        }
    }

    /// An I/O error on `path`, worded like every other (`cannot write: permission denied`).
    pub fn io(path: &Path, what: &str, err: &std::io::Error) -> FileError {
        FileError::new(path, format!("{what}: {}", io_message(err)))
    }
}

/// An I/O error in words that do not repeat a path (some errors, tempfile's, append the path of
/// a temporary file the user never named).
pub fn io_message(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::NotFound => "no such file or directory".to_string(),
        K::PermissionDenied => "permission denied".to_string(),
        K::UnexpectedEof => "file is truncated (unexpected end of file)".to_string(),
        K::AlreadyExists => "already exists".to_string(),
        K::IsADirectory => "is a directory".to_string(),
        K::NotADirectory => "a component of the path is not a directory".to_string(),
        K::ReadOnlyFilesystem => "read-only file system".to_string(),
        K::StorageFull => "no space left on the device".to_string(),
        _ => {
            let text = err.to_string();
            // `… (os error 2) at path "/dir/.cargo-infer-XXXX"`: the path is a temporary's.
            match text.split_once(" at path ") {
                Some((head, _)) => head.to_string(),
                None => text,
            }
        }
    }
}

/// Errors a command reports to the user; each maps to an exit code and renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// The model file is the problem.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Another file is the problem (data, manifest, output).
    #[error(transparent)]
    File(#[from] FileError),
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// Any of the above, with what to do about it: `… (hint: …)`.
    #[error("{error} (hint: {hint})")]
    Hinted {
        /// The error itself.
        error: Box<ExpectedError>,
        /// What the user can do about it, one line.
        hint: String,
    },
}

impl ExpectedError {
    /// The process exit code for this error: [`exit::USAGE`] (2) for all of them today.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExpectedError::Model(_) | ExpectedError::File(_) | ExpectedError::Usage(_) => {
                exit::USAGE
            }
            ExpectedError::Hinted { error, .. } => error.exit_code(),
        }
    }

    /// The same error, with a model at `from` reported as `to`: a copy prepared in a scratch
    /// directory is the model the user named, not a temporary path.
    pub fn naming_model(self, from: &Path, to: &Path) -> ExpectedError {
        match self {
            ExpectedError::Model(m) if m.path == from => ExpectedError::Model(ModelError {
                path: to.to_path_buf(),
                message: m.message,
            }),
            ExpectedError::Hinted { error, hint } => ExpectedError::Hinted {
                error: Box::new(error.naming_model(from, to)),
                hint,
            },
            e => e,
        }
    }

    /// This error with what the user can do about it.
    pub fn with_hint(self, hint: impl Into<String>) -> ExpectedError {
        ExpectedError::Hinted {
            error: Box::new(self),
            hint: one_line(&hint.into()),
        }
    }
}

/// Defines a module's own error: one line about what is wrong, without a path — a function that
/// reads bytes or a table does not know where they came from, and its caller names the file
/// (`FileError::new(path, e.0)`). Made from a `String` or `&str`, folded to one line.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<String> for $name {
            fn from(message: String) -> $name {
                $name($crate::error::one_line(&message))
            }
        }

        impl From<&str> for $name {
            fn from(message: &str) -> $name {
                $name::from(message.to_string())
            }
        }
    };
}
pub(crate) use message_error;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_follows_the_error_on_its_line_and_keeps_its_exit_code_and_file() {
        let e = ExpectedError::from(FileError::new(
            Path::new("out/p"),
            "exists\nand is not empty",
        ))
        .with_hint("pass --force\nto write into it");
        assert_eq!(
            e.to_string(),
            "out/p: exists; and is not empty (hint: pass --force; to write into it)"
        );
        assert_eq!(e.exit_code(), exit::USAGE);
        // A scratch copy's name is replaced inside a hinted error too.
        let e = ExpectedError::from(ModelError::new(Path::new("/tmp/x.onnx"), "bad"))
            .with_hint("h")
            .naming_model(Path::new("/tmp/x.onnx"), Path::new("model.onnx"));
        assert_eq!(e.to_string(), "model.onnx: bad (hint: h)");
    }
}
