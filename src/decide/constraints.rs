//! Target constraints, merged: defaults → `[package.metadata.infer]` of the current package
//! (found with `cargo metadata`) → command-line flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Framework;
use crate::error::{ExpectedError, FileError};

/// The GPU a project must run on (`--gpu`, `gpu =` in the manifest); `none` is CPU only.
// The variants are `--gpu`'s possible values, named as the flag spells them; a doc comment on
// one would become its help text and change `--help`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Gpu {
    #[default]
    None,
    Cuda,
    Tensorrt,
    Rocm,
    Wgpu,
    Metal,
}

impl Gpu {
    /// The name as `--gpu` and the manifest spell it (`cuda`).
    pub fn as_str(self) -> &'static str {
        match self {
            Gpu::None => "none",
            Gpu::Cuda => "cuda",
            Gpu::Tensorrt => "tensorrt",
            Gpu::Rocm => "rocm",
            Gpu::Wgpu => "wgpu",
            Gpu::Metal => "metal",
        }
    }
}

/// What kind of target a triple names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// No `--target`, or the host's own triple.
    #[default]
    Host,
    /// `wasm*` triples (and plain `wasm`): WebAssembly.
    Wasm,
    /// `thumb*`, `*-none*`, `riscv32*` and `*-elf` triples: no operating system.
    BareMetal,
    /// Another OS target (cross-compiling, e.g. aarch64-linux-android).
    Other,
}

/// Classifies a `--target` triple; `None` (no target given) is the host.
pub fn target_kind(triple: Option<&str>) -> TargetKind {
    match triple {
        None => TargetKind::Host,
        // `wasm…` (the `wasm` alias included): WebAssembly, not some other target.
        Some(t) if t.starts_with("wasm") => TargetKind::Wasm,
        Some(t)
            if t.starts_with("thumb")
                || t.contains("-none")
                || t.starts_with("riscv32")
                || t.ends_with("-elf") =>
        {
            TargetKind::BareMetal
        }
        Some(t) if t == host_triple() => TargetKind::Host,
        Some(_) => TargetKind::Other,
    }
}

/// The triple this binary was built for (`CARGO_INFER_HOST`, set by build.rs).
pub fn host_triple() -> &'static str {
    env!("CARGO_INFER_HOST")
}

/// The merged constraints (the `constraints` object of `decide --format json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Constraints {
    /// Target triple; `None` is the host.
    pub target: Option<String>,
    /// Kind of `target` (`target_kind` in JSON: `host`, `wasm`, `bare-metal`, `other`).
    pub target_kind: TargetKind,
    /// GPU the project must use; `none` for CPU only.
    pub gpu: Gpu,
    /// Several GPUs at once (`X-TENSORRT` keeps only ort, with TensorRT).
    pub multi_gpu: bool,
    /// Only frameworks written in Rust (no C/C++ runtime: excludes ort, tch, fastembed).
    pub pure_rust: bool,
    /// Bytes.
    pub max_binary_size: Option<u64>,
    /// Exact precision: favours generated code, sized with float64 weights and no int8.
    pub exact_precision: bool,
    /// Production serving (scores ort up).
    pub serving: bool,
    /// The project trains as well as infers (only burn, candle, tch).
    pub training: bool,
    /// `--framework`: forces the choice (refused if a rule excludes it).
    pub framework: Option<Framework>,
    /// Where each value came from, when not the default: "Cargo.toml" or "flag".
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sources: std::collections::BTreeMap<String, String>,
}

/// Constraints as written in `[package.metadata.infer]` or given as flags; unset stays unset.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Partial {
    /// Target triple (`--target`, `target =`).
    pub target: Option<String>,
    /// GPU (`--gpu`, `gpu =`).
    pub gpu: Option<Gpu>,
    /// `--multi-gpu`, `multi-gpu =`.
    pub multi_gpu: Option<bool>,
    /// `--pure-rust`, `pure-rust =`.
    pub pure_rust: Option<bool>,
    /// `--max-binary-size`, `max-binary-size =`: bytes, or a size string such as `"1MB"`.
    #[serde(default, deserialize_with = "size_opt")]
    pub max_binary_size: Option<u64>,
    /// `--exact-precision`, `exact-precision =`.
    pub exact_precision: Option<bool>,
    /// `--serving`, `serving =`.
    pub serving: Option<bool>,
    /// `--training`, `training =`.
    pub training: Option<bool>,
    /// `--framework`, `framework =`: the framework to use regardless of scores.
    pub framework: Option<Framework>,
    /// Models `check` runs when none is given (manifest only): paths, globs or tables of
    /// settings, read by `check::plan::parse_declared` (which names a bad entry's key).
    pub models: Option<serde_json::Value>,
    /// Kept by `init`/`add` (manifest only); not a constraint.
    pub model: Option<PathBuf>,
    /// SHA-256 of `model` when `init`/`add` recorded it (manifest only); not a constraint.
    pub sha256: Option<String>,
    /// The framework `init`/`add` chose (manifest only); not a constraint.
    pub choice: Option<Framework>,
}

fn size_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(u64),
        S(String),
    }
    match Option::<V>::deserialize(d)? {
        None => Ok(None),
        Some(V::N(n)) => Ok(Some(n)),
        Some(V::S(s)) => parse_size(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

crate::error::message_error! {
    /// A size that is not one (`1XB`, `big`).
    SizeError
}

/// `1MB`, `300KB`, `2MiB`, `1500000`: bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| SizeError(format!("`{s}` is not a size (like 1MB, 300KB, 2MiB)")))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(SizeError(format!(
                "`{s}`: unknown unit `{u}` (use B, KB, MB, GB, KiB, MiB, GiB)"
            )))
        }
    };
    Ok((n * mult).round() as u64)
}

impl Constraints {
    /// `target host, gpu cuda, pure-rust, max binary 1.0 MB`: the constraints that are set.
    pub fn describe(&self) -> String {
        let mut v = vec![format!(
            "target {}",
            self.target.as_deref().unwrap_or("host")
        )];
        if self.gpu != Gpu::None {
            v.push(format!("gpu {}", self.gpu.as_str()));
        }
        for (on, name) in [
            (self.multi_gpu, "multi-gpu"),
            (self.pure_rust, "pure-rust"),
            (self.exact_precision, "exact-precision"),
            (self.serving, "serving"),
            (self.training, "training"),
        ] {
            if on {
                v.push(name.to_string());
            }
        }
        if let Some(m) = self.max_binary_size {
            v.push(format!("max binary {}", crate::output::human_bytes(m)));
        }
        v.join(", ")
    }

    /// Applies one layer of settings (manifest or flags) on top.
    pub fn apply(&mut self, p: &Partial, source: &str) {
        let mut set = |key: &str| {
            self.sources.insert(key.to_string(), source.to_string());
        };
        if p.target.is_some() {
            set("target");
        }
        if p.gpu.is_some() {
            set("gpu");
        }
        if p.multi_gpu.is_some() {
            set("multi-gpu");
        }
        if p.pure_rust.is_some() {
            set("pure-rust");
        }
        if p.max_binary_size.is_some() {
            set("max-binary-size");
        }
        if p.exact_precision.is_some() {
            set("exact-precision");
        }
        if p.serving.is_some() {
            set("serving");
        }
        if p.training.is_some() {
            set("training");
        }
        if p.framework.is_some() {
            set("framework");
        }
        if let Some(t) = &p.target {
            // `wasm` alone is what people type for the browser's target; projects need a triple
            // (`cargo build --target`, the `.cargo/config.toml` alias).
            self.target = Some(if t == "wasm" {
                "wasm32-unknown-unknown".to_string()
            } else {
                t.clone()
            });
        }
        self.gpu = p.gpu.unwrap_or(self.gpu);
        self.multi_gpu = p.multi_gpu.unwrap_or(self.multi_gpu);
        self.pure_rust = p.pure_rust.unwrap_or(self.pure_rust);
        self.max_binary_size = p.max_binary_size.or(self.max_binary_size);
        self.exact_precision = p.exact_precision.unwrap_or(self.exact_precision);
        self.serving = p.serving.unwrap_or(self.serving);
        self.training = p.training.unwrap_or(self.training);
        self.framework = p.framework.or(self.framework);
        self.target_kind = target_kind(self.target.as_deref());
    }
}

/// The `[package.metadata.infer]` table of the package at `manifest_path`, or of the package
/// whose directory holds the current one; `None` outside a Cargo project.
pub fn from_manifest(
    manifest_path: Option<&Path>,
) -> Result<Option<(Partial, PathBuf)>, ExpectedError> {
    let manifest = match manifest_path {
        Some(p) => {
            if !p.is_file() {
                return Err(FileError::new(p, "no such manifest").into());
            }
            p.to_path_buf()
        }
        None => {
            let cwd = std::env::current_dir().map_err(|e| ExpectedError::Usage(e.to_string()))?;
            match cwd
                .ancestors()
                .map(|d| d.join("Cargo.toml"))
                .find(|p| p.is_file())
            {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| FileError::new(&manifest, e.to_string()))?;
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let package = meta
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == manifest)
        .or_else(|| meta.root_package());
    let Some(package) = package else {
        return Ok(None);
    };
    let infer = &package.metadata["infer"];
    if infer.is_null() {
        return Ok(None);
    }
    let partial: Partial = serde_json::from_value(infer.clone()).map_err(|e| {
        FileError::new(
            package.manifest_path.as_std_path(),
            format!("[package.metadata.infer]: {e}"),
        )
    })?;
    Ok(Some((
        partial,
        package.manifest_path.clone().into_std_path_buf(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("300KB").unwrap(), 300_000);
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("1500").unwrap(), 1500);
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn targets_are_classified() {
        assert_eq!(
            target_kind(Some("wasm32-unknown-unknown")),
            TargetKind::Wasm
        );
        assert_eq!(
            target_kind(Some("thumbv7em-none-eabihf")),
            TargetKind::BareMetal
        );
        assert_eq!(
            target_kind(Some("riscv32imac-unknown-none-elf")),
            TargetKind::BareMetal
        );
        assert_eq!(
            target_kind(Some("aarch64-linux-android")),
            TargetKind::Other
        );
        assert_eq!(target_kind(None), TargetKind::Host);
        // What users type for WebAssembly without a full triple.
        assert_eq!(target_kind(Some("wasm")), TargetKind::Wasm);
        let mut c = Constraints::default();
        c.apply(
            &Partial {
                target: Some("wasm".into()),
                ..Default::default()
            },
            "flag",
        );
        assert_eq!(c.target.as_deref(), Some("wasm32-unknown-unknown"));
        assert_eq!(c.target_kind, TargetKind::Wasm);
    }

    #[test]
    fn unknown_manifest_keys_are_named() {
        let err = serde_json::from_value::<Partial>(serde_json::json!({"gpu": "cuda", "gpus": 2}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `gpus`"), "{err}");
        let err = serde_json::from_value::<Partial>(serde_json::json!({"gpu": "tpu"})).unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }
}
