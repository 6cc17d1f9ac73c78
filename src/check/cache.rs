//! The content cache of `check`: a model that passed is stored under a key made of everything that
//! decides the outcome — the bytes of the model and of every file it reads (external data, shards,
//! configuration, test data sets, the twin of `--pair`), the inputs and expected outputs given, every
//! option that changes the result, this tool's version (and a hash of the sources it was built
//! from) and each back end's name and version. The
//! same key later is served from the store (`"cached": true`, the original timings) and nothing
//! runs. Failures are never stored: they run again until they pass.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::inputs::InputArg;
use super::plan::Job;
use super::ModelReport;
use crate::backends::Backend;
use crate::error::FileError;

/// Entries unused for this long are removed at the end of a run.
pub const UNUSED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Bumped when what a key covers changes.
const SCHEMA: &str = "cargo-infer check cache 1";

/// Where passed checks are stored: one JSON file per key.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A store in `dir` (`--cache-dir`, `CARGO_INFER_CACHE_DIR` or [`default_dir`]); its
    /// directories are made when a report is stored.
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The stored report of `key`, marked as served from the cache. A damaged entry is a miss.
    /// A hit is marked as used (its modification time), which [`Cache::prune`] goes by.
    pub fn get(&self, key: &str) -> Option<ModelReport> {
        let file = self.file(key);
        let bytes = std::fs::read(&file).ok()?;
        let mut r: ModelReport = serde_json::from_slice(&bytes).ok()?;
        r.cached = true;
        if let Ok(f) = std::fs::File::options().append(true).open(&file) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(r)
    }

    /// Removes the entries no run has used for `unused` (models deleted or changed long ago), so
    /// that a store that CI carries from run to run does not grow without end.
    pub fn prune(&self, unused: std::time::Duration) {
        let now = std::time::SystemTime::now();
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for d in dirs.flatten() {
            let Ok(entries) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > unused);
                if old && e.path().extension().is_some_and(|x| x == "json") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Stores a passed report (written whole, then renamed into place, so a reader never sees
    /// half of one and two runs storing the same key do not mix).
    pub fn put(&self, key: &str, report: &ModelReport) -> Result<(), FileError> {
        let file = self.file(key);
        let dir = file.parent().expect("a key's directory");
        std::fs::create_dir_all(dir).map_err(|e| FileError::io(dir, "cannot create", &e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| FileError::io(dir, "cannot write", &e))?;
        serde_json::to_writer(&mut tmp, report)
            .map_err(|e| FileError::new(&file, format!("cannot write: {e}")))?;
        tmp.persist(&file)
            .map_err(|e| FileError::io(&file, "cannot write", &e.error))?;
        Ok(())
    }
}

/// The default store: `cargo-infer/check-cache` in the target directory of the package around the
/// current directory (`CARGO_TARGET_DIR` when set; the outermost workspace's `target/`) — where
/// CI caches already look; outside any package, the user's cache directory (`XDG_CACHE_HOME`, else
/// `~/.cache`), so that a check run elsewhere leaves no `target/` behind.
pub fn default_dir() -> PathBuf {
    tool_dir("check-cache")
}

/// `cargo-infer/NAME` where [`default_dir`] keeps the check cache (the burn harnesses live beside
/// it, in `burn-harness`).
pub fn tool_dir(name: &str) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let manifests: Vec<&Path> = cwd
                .ancestors()
                .filter(|d| d.join("Cargo.toml").is_file())
                .collect();
            let workspace = manifests.iter().rev().find(|d| {
                std::fs::read_to_string(d.join("Cargo.toml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
            });
            match workspace.or(manifests.first()) {
                Some(d) => d.join("target"),
                None => {
                    let user = std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .filter(|p| p.is_absolute())
                        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                        .unwrap_or_else(std::env::temp_dir);
                    return user.join("cargo-infer").join(name);
                }
            }
        }
    };
    target.join("cargo-infer").join(name)
}

/// The key of a job on these back ends: hex SHA-256. `Err`: a file it reads cannot be read (the
/// check itself will say so; such a job is not cached).
pub fn key(job: &Job, backends: &[(&dyn Backend, bool)]) -> Result<String, FileError> {
    let mut h = Sha256::new();
    let field = |h: &mut Sha256, tag: &str, value: &[u8]| {
        h.update(tag.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field(&mut h, "schema", SCHEMA.as_bytes());
    field(&mut h, "version", env!("CARGO_PKG_VERSION").as_bytes());
    field(&mut h, "source", env!("CARGO_INFER_SOURCE").as_bytes());
    field(&mut h, "name", job.name.as_bytes());
    // Every option, paths included (the files' bytes are hashed below).
    field(&mut h, "options", format!("{:?}", job.opts).as_bytes());
    for (b, required) in backends {
        let availability = match b.availability() {
            Ok(v) => format!("available {v}"),
            Err(why) => format!("unavailable {why}"),
        };
        field(
            &mut h,
            "backend",
            format!("{} {required} {availability}", b.name()).as_bytes(),
        );
    }
    for f in files_read(job) {
        field(&mut h, "file", f.display().to_string().as_bytes());
        hash_file(&mut h, &f)?;
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Streams a file (or every file under a directory, in order) into the hash, with its length.
fn hash_file(h: &mut Sha256, path: &Path) -> Result<(), FileError> {
    let err = |e: std::io::Error| FileError::io(path, "cannot read", &e);
    if path.is_dir() {
        for f in files_under(path) {
            h.update(f.display().to_string().as_bytes());
            hash_file(h, &f)?;
        }
        return Ok(());
    }
    let mut file = std::fs::File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    h.update(len.to_le_bytes());
    // Small files (most) in one read; large ones streamed through a buffer of 1 MiB.
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    loop {
        buf.clear();
        let n = (&mut file)
            .take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf);
    }
}

/// Regular files under `dir`, sorted, at most a few levels down.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            // Links followed: snapshot directories (Hugging Face, git-annex, DVC) are made of them.
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() && depth < 4 => stack.push((p, depth + 1)),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Every file the check of `job` reads: the model and its companions, the twin and its
/// companions, the inputs and expected outputs given.
fn files_read(job: &Job) -> Vec<PathBuf> {
    let mut out = model_files(&job.model, job.info.as_deref());
    if let Some(p) = &job.opts.pair {
        out.extend(model_files(p, None));
    }
    for g in &job.opts.inputs.given {
        match g {
            InputArg::Named(_, f) | InputArg::All(f) => out.push(f.clone()),
            InputArg::Value(..) => {}
        }
    }
    out.extend(job.opts.inputs.expected.clone());
    out.extend(
        job.opts
            .inputs
            .expected_files
            .iter()
            .map(|(_, f)| f.clone()),
    );
    out
}

/// Files beside a weights file that back ends (candle) and model directories read.
const COMPANIONS: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "1_Pooling/config.json",
];

/// A model's own files: itself (every file of a directory model), its external data and shards
/// (as its reader lists them), the test data sets beside an ONNX model, and the configuration and
/// tokenizer files beside a weights file, which back ends read.
fn model_files(model: &Path, info: Option<&crate::model::ModelInfo>) -> Vec<PathBuf> {
    let mut out = vec![model.to_path_buf()];
    if model.is_dir() {
        return out;
    }
    let dir = match model.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let read;
    let info = match info {
        Some(i) => Some(i),
        None => {
            read = crate::model::inspect(model).ok();
            read.as_ref()
        }
    };
    if let Some(info) = info {
        for r in &info.details.external_data {
            if r.outside.is_none() {
                out.push(dir.join(&r.file));
            }
        }
        for f in &info.details.files {
            let p = dir.join(f);
            if p != model {
                out.push(p);
            }
        }
    }
    // The ONNX test layout: data sets beside the model, which the check runs (for any format).
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut sets: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
                    && p.is_dir()
            })
            .collect();
        sets.sort();
        out.extend(sets);
    }
    if info.is_some_and(|i| i.format != crate::model::Format::Onnx) {
        // What back ends read beside a weights file (a directory of many models and their own
        // JSON files is not hashed whole for each).
        for name in COMPANIONS {
            let p = dir.join(name);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    /// Linked files are hashed (snapshot directories are made of links).
    #[cfg(unix)]
    #[test]
    fn links_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"weights").unwrap();
        let snap = dir.path().join("snapshot");
        std::fs::create_dir(&snap).unwrap();
        std::os::unix::fs::symlink(&blob, snap.join("model.safetensors")).unwrap();
        assert_eq!(super::files_under(&snap), [snap.join("model.safetensors")]);
    }
}
