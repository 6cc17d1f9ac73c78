//! burn (`--backend burn`): the model as burn-onnx turns it into Rust — the code a burn project
//! `init` makes would run — built into a harness crate and run on the check's inputs. The
//! harnesses live in one cache directory with one target directory (`CARGO_TARGET_DIR` when set),
//! so burn's crates compile once and each model costs only its generated code. Asked for by name
//! only: the first build takes minutes.
//!
//! burn-onnx refuses what it cannot import by panicking in the build script; that panic's message
//! (it names the node or operator) is the back end's `unsupported` message. A generated model that
//! does not compile is an `error` with rustc's first error line.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BackendError, Device, LoadNotes, Loaded, Named};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// The burn-onnx version the harness (and `init`'s burn projects) build with.
pub const VERSION: &str = "0.22.0";

/// The burn back end. Where its harnesses go is found when one is built (or `doctor` asks), not
/// when the back-end list is made for every command.
pub struct Burn;

/// Harnesses under `cargo-infer/burn-harness` in the target directory (see
/// [`crate::check::cache::tool_dir`]).
fn harness_dir() -> PathBuf {
    crate::check::cache::tool_dir("burn-harness")
}

/// Whether burn's crates are compiled in the harnesses' target directory: a new harness then
/// builds in seconds (its generated model only) instead of minutes (`init` records a burn
/// project's outputs with burn only then).
pub fn is_warm() -> bool {
    let deps = target_dir(&harness_dir()).join("debug").join("deps");
    std::fs::read_dir(deps).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libburn-") && name.ends_with(".rlib")
        })
    })
}

/// A harness built for one model and input signature: its crate and binary.
struct Harness {
    krate: PathBuf,
    binary: PathBuf,
    /// The declared dtype of each output (the harness writes float64).
    outputs: Vec<(String, DType)>,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The target directory harnesses build in: the caller's `CARGO_TARGET_DIR`, else one of the
/// harness directory's own.
fn target_dir(dir: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"))
}

/// The crate name of a harness: the model's bytes and the inputs' kinds and ranks decide the
/// generated code (shapes do not: burn's tensors take any size of their rank).
fn harness_name(model: &[u8], inputs: &[Named]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(model);
    for (name, t) in inputs {
        h.update(format!("{name}:{}:{}\n", t.dtype, t.shape.len()).as_bytes());
    }
    let hex = format!("{:x}", h.finalize());
    format!("burn-harness-{}", &hex[..16])
}

/// burn-onnx's refusal in a failed build's output: the build script's panic message (with the
/// ONNX names of the nodes it names by its own), else rustc's first error, else the last line.
fn build_failure(stderr: &str, nodes: &[crate::model::NodeSummary]) -> BackendError {
    let lines: Vec<&str> = stderr.lines().collect();
    if let Some(k) = lines.iter().position(|l| l.contains("panicked at")) {
        // `thread 'main' panicked at …/burn-onnx-…/src/…rs:12:5:` then the message, which may
        // go on over several lines until cargo's `note:`.
        let message: Vec<&str> = lines[k + 1..]
            .iter()
            .map(|l| l.trim())
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty() && !l.starts_with("note:"))
            .collect();
        let message = if message.is_empty() {
            "the build script panicked".to_string()
        } else {
            message.join(" ")
        };
        return BackendError::Unsupported(format!(
            "burn-onnx {VERSION} cannot import it: {}",
            with_onnx_names(&message, nodes)
        ));
    }
    let first_error = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("error"))
        .or_else(|| lines.iter().rev().map(|l| l.trim()).find(|l| !l.is_empty()))
        .unwrap_or("cargo build failed");
    BackendError::Failed(format!(
        "the code burn-onnx {VERSION} generated does not build: {}",
        super::first_line(first_error)
    ))
}

/// `message` with each node burn-onnx names by operator and rank (`'conv2d1'`: the first Conv2d)
/// followed by the ONNX node it stands for: `'conv2d1' (ONNX node `conv`)`.
fn with_onnx_names(message: &str, nodes: &[crate::model::NodeSummary]) -> String {
    // burn's names: Conv with 2-D kernels is `conv2d`; compare without the dimension.
    let bare = |s: &str| {
        s.to_ascii_lowercase()
            .trim_end_matches("1d")
            .trim_end_matches("2d")
            .trim_end_matches("3d")
            .to_string()
    };
    let mut out = message.to_string();
    let quoted: Vec<&str> = message.split('\'').skip(1).step_by(2).collect();
    for q in quoted {
        let digits = q.len() - q.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (op, rank) = q.split_at(q.len() - digits);
        let Some(rank) = rank.parse::<usize>().ok().filter(|r| *r > 0) else {
            continue;
        };
        let node = nodes
            .iter()
            .filter(|n| bare(&n.op_type) == bare(op))
            .nth(rank - 1);
        if let Some(n) = node {
            let named = format!("'{q}' (ONNX node `{}`)", n.display_name());
            out = out.replacen(&format!("'{q}'"), &named, 1);
        }
    }
    out
}

fn io_error(what: &Path, e: std::io::Error) -> BackendError {
    BackendError::Failed(format!(
        "{}: {}",
        what.display(),
        crate::error::io_message(&e)
    ))
}

impl Burn {
    /// Writes the harness for `path` (unless it is there already) and builds it.
    fn build(
        &self,
        path: &Path,
        info: &ModelInfo,
        inputs: &[Named],
    ) -> Result<Harness, BackendError> {
        if !info.details.external_data.is_empty() {
            return Err(BackendError::Unsupported(
                "external data: the harness copies the .onnx file alone".into(),
            ));
        }
        let model = std::fs::read(path).map_err(|e| io_error(path, e))?;
        let name = harness_name(&model, inputs);
        let dir = harness_dir();
        let krate = dir.join(&name);
        let files = crate::scaffold::burn_harness(&name, inputs, &info.outputs)
            .map_err(|e| BackendError::Unsupported(e.0))?;
        std::fs::create_dir_all(krate.join("src")).map_err(|e| io_error(&krate, e))?;
        std::fs::create_dir_all(krate.join("tests/data")).map_err(|e| io_error(&krate, e))?;
        let mut all: Vec<(PathBuf, Vec<u8>)> =
            files.into_iter().map(|(p, b)| (krate.join(p), b)).collect();
        all.push((krate.join("model.onnx"), model));
        // A new harness resolves its dependencies as the package around the current directory
        // does: its Cargo.lock is the starting point (cargo adds what burn needs), so the
        // versions match the user's project and crates built for it are reused.
        if !krate.join("Cargo.lock").exists() {
            let cwd = std::env::current_dir().unwrap_or_default();
            if let Some(lock) = cwd
                .ancestors()
                .map(|d| d.join("Cargo.lock"))
                .find(|l| l.is_file())
            {
                let bytes = std::fs::read(&lock).map_err(|e| io_error(&lock, e))?;
                all.push((krate.join("Cargo.lock"), bytes));
            }
        }
        for (p, bytes) in &all {
            // Unchanged files keep their times: cargo rebuilds nothing.
            if std::fs::read(p).ok().as_deref() != Some(bytes.as_slice()) {
                std::fs::write(p, bytes).map_err(|e| io_error(p, e))?;
            }
        }
        let target = target_dir(&dir);
        let out = Command::new(cargo())
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--quiet", "--color", "never"])
            .output()
            .map_err(|e| BackendError::Failed(format!("cannot run cargo: {e}")))?;
        if !out.status.success() {
            return Err(build_failure(
                &String::from_utf8_lossy(&out.stderr),
                &info.nodes,
            ));
        }
        let outputs = super::declared_outputs(info);
        Ok(Harness {
            binary: target.join("debug").join(&name),
            krate,
            outputs,
        })
    }
}

/// A float64 output read back in the dtype the model declares.
fn declared(t: HostTensor, dtype: DType) -> Result<HostTensor, BackendError> {
    if dtype == DType::F64 {
        return Ok(t);
    }
    let v = t.to_f64().unwrap_or_default();
    let data = crate::tensor::number_bytes(dtype, &v).ok_or_else(|| {
        BackendError::Unsupported(format!("outputs of {dtype} are not read back from burn"))
    })?;
    Ok(HostTensor::from_bytes(dtype, t.shape, data)?)
}

impl Loaded for Harness {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let data = self.krate.join("tests/data");
        for (k, (_, t)) in inputs.iter().enumerate() {
            let file = data.join(format!("input_{k}.npy"));
            let bytes = t.to_npy().map_err(|e| BackendError::Unsupported(e.0))?;
            std::fs::write(&file, bytes).map_err(|e| io_error(&file, e))?;
        }
        let out = tempfile::tempdir().map_err(|e| io_error(&std::env::temp_dir(), e))?;
        let ran = Command::new(&self.binary)
            .arg(out.path())
            .output()
            .map_err(|e| BackendError::Failed(format!("cannot run the harness: {e}")))?;
        if !ran.status.success() {
            let stderr = String::from_utf8_lossy(&ran.stderr);
            let message = stderr
                .lines()
                .skip_while(|l| !l.contains("panicked at"))
                .nth(1)
                .or_else(|| stderr.lines().next())
                .unwrap_or("the harness failed");
            return Err(BackendError::Failed(format!(
                "burn: {}",
                super::first_line(message.trim())
            )));
        }
        self.outputs
            .iter()
            .enumerate()
            .map(|(k, (name, dtype))| {
                let file = out.path().join(format!("output_{k}.npy"));
                let bytes = std::fs::read(&file).map_err(|e| io_error(&file, e))?;
                let t = HostTensor::from_npy(&bytes)?;
                Ok((name.clone(), declared(t, *dtype)?))
            })
            .collect()
    }
}

impl super::Backend for Burn {
    fn name(&self) -> &'static str {
        "burn"
    }

    fn availability(&self) -> Result<String, super::Unavailable> {
        let ok = Command::new(cargo())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            Ok(format!(
                "burn-onnx {VERSION} (harness in {})",
                harness_dir().display()
            ))
        } else {
            Err(super::Unavailable(
                "the burn back end builds a harness with cargo, which is not on PATH".into(),
            ))
        }
    }

    fn load(
        &self,
        path: &Path,
        info: &ModelInfo,
        inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        if device != Device::Cpu {
            return Err(BackendError::Failed(format!(
                "{device:?} was asked for; the burn harness runs on burn's CPU back end"
            )));
        }
        let harness = self.build(path, info, inputs)?;
        Ok((Box::new(harness), LoadNotes::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_script_panic_is_burn_onnx_refusing_the_model() {
        let nodes = vec![crate::model::NodeSummary {
            name: "crop".into(),
            op_type: "CenterCropPad".into(),
            domain: String::new(),
            inputs: vec![],
            outputs: vec![],
            depth: 0,
        }];
        let stderr = "error: failed to run custom build command for `burn-harness-1 v0.0.0`\n\nCaused by:\n  process didn't exit successfully\n  --- stderr\n\n  thread 'main' panicked at /r/burn-onnx-0.22.0/src/x.rs:10:5:\n  Unsupported ONNX operation(s): CenterCropPad (node 'centercroppad1')\n  and more\n  note: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            build_failure(stderr, &nodes),
            BackendError::Unsupported(
                "burn-onnx 0.22.0 cannot import it: Unsupported ONNX operation(s): CenterCropPad (node 'centercroppad1' (ONNX node `crop`)) and more"
                    .into()
            )
        );
        let stderr = "error[E0308]: mismatched types\n --> model.rs:3:1\n";
        assert!(
            matches!(build_failure(stderr, &nodes), BackendError::Failed(m) if m.ends_with("error[E0308]: mismatched types"))
        );
    }
}
