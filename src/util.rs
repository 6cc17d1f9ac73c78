//! Small helpers shared by the commands that write files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::FileError;

/// Hex sha256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes every file or none: each goes to a temporary sibling first and is renamed into place
/// only when all were written; on failure the temporaries are removed.
pub fn write_all_or_nothing(files: &[(PathBuf, Vec<u8>)]) -> Result<(), FileError> {
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, &Path)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".cargo-infer-")
            .tempfile_in(dir);
        let mut tmp = match tmp {
            Ok(t) => t,
            Err(e) => {
                cleanup(&temps);
                return Err(FileError::io(path, "cannot write", &e));
            }
        };
        if let Err(e) = tmp.write_all(bytes) {
            cleanup(&temps);
            return Err(FileError::io(path, "cannot write", &e));
        }
        // Temporary files are created owner-only; the result gets the usual 0644.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        match tmp.keep() {
            Ok((_, p)) => temps.push((p, path)),
            Err(e) => {
                cleanup(&temps);
                return Err(FileError::io(path, "cannot write", &e.error));
            }
        }
    }
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(FileError::io(path, "cannot write", &e));
        }
    }
    Ok(())
}
