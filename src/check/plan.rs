//! What one `check` run does, before anything runs (the dispatcher): the models, each with its own
//! options — from the command line, or declared in `[package.metadata.infer]` with the command
//! line's flags over them — and the partition of them this run takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

use super::inputs::{DimArg, InputArg, ShapeArg, ValRange};
use super::{Bisect, CheckOptions};
use crate::error::{ExpectedError, FileError};

/// One model to check, and how.
#[derive(Debug, Clone)]
pub struct Job {
    /// The model's path as opened (a declared one joined to the manifest's directory).
    pub model: PathBuf,
    /// The model as reports name it: as given on the command line, or relative to the manifest's
    /// directory when declared (the same on every machine, which partitions rely on).
    pub name: String,
    /// Its options: its declared settings with the command line's flags over them.
    pub opts: CheckOptions,
    /// Its place in the whole run (before partitioning), for merging partitions' reports.
    pub order: usize,
    /// What `inspect` read of the model, when it was read before the run (then the cache key
    /// does not read it again).
    pub info: Option<std::sync::Arc<crate::model::ModelInfo>>,
}

/// Flags of the command line that override a declared check's settings (`None`/empty: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--backend`.
    pub backend: Option<super::BackendChoice>,
    /// `--device`.
    pub device: Option<crate::backends::Device>,
    /// `--input` (replaces every declared input).
    pub input: Vec<InputArg>,
    /// `--expected` (replaces the declared expected outputs).
    pub expected: Option<PathBuf>,
    /// `--atol`.
    pub atol: Option<f64>,
    /// `--rtol`.
    pub rtol: Option<f64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--val-range` (replaces the declared ranges).
    pub val_range: Vec<ValRange>,
    /// `--dim`, each over the declared dimension of its name.
    pub dim: Vec<DimArg>,
    /// `--input-shape`, each over the declared shape of its input.
    pub input_shape: Vec<ShapeArg>,
    /// `--pair`.
    pub pair: Option<PathBuf>,
    /// `--bisect`.
    pub bisect: Option<Bisect>,
    /// `--runs`.
    pub runs: Option<u64>,
    /// `--text` (replaces the declared texts).
    pub text: Vec<String>,
}

impl Flags {
    /// The options of a model given on the command line.
    pub fn options(&self) -> CheckOptions {
        self.over(CheckOptions::default())
    }

    /// `base` with every flag that was given in place of its value.
    fn over(&self, mut o: CheckOptions) -> CheckOptions {
        if let Some(b) = self.backend {
            o.backend = b;
        }
        if let Some(d) = self.device {
            o.device = d;
        }
        if !self.input.is_empty() {
            o.inputs.given = self.input.clone();
        }
        if self.expected.is_some() {
            o.inputs.expected = self.expected.clone();
            o.inputs.expected_files.clear();
        }
        if self.atol.is_some() {
            o.tolerance.atol = self.atol;
        }
        if self.rtol.is_some() {
            o.tolerance.rtol = self.rtol;
        }
        if let Some(s) = self.seed {
            o.inputs.seed = s;
        }
        if !self.val_range.is_empty() {
            o.inputs.ranges = self.val_range.clone();
        }
        // Dimensions and shapes by name: a flag replaces the declared one of that name.
        for d in &self.dim {
            o.inputs.dims.retain(|x| x.0 != d.0);
            o.inputs.dims.push(d.clone());
        }
        for s in &self.input_shape {
            o.inputs.shapes.retain(|x| x.name != s.name);
            o.inputs.shapes.push(s.clone());
        }
        if self.pair.is_some() {
            o.pair = self.pair.clone();
        }
        if let Some(b) = self.bisect {
            o.bisect = b;
        }
        if let Some(r) = self.runs {
            o.runs = r as usize;
        }
        if !self.text.is_empty() {
            o.texts = self.text.clone();
        }
        o
    }
}

/// One entry of `models = [...]` in `[package.metadata.infer]`: a path or glob, or a table of the
/// path and the settings `check`'s flags have (same names; paths relative to the manifest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Declared {
    /// The model's path or glob, relative to the manifest.
    pub path: String,
    /// `ALL.npz`, or a table of input name → file (`.npy`, `.pb`, `.json`) or number (a constant
    /// scalar input).
    pub input: Option<DeclaredInput>,
    /// A directory of `<output>.npy`/`output_N.npy`/`output_N.pb`, an `.npz`, or a table of
    /// output name → file.
    pub expected: Option<DeclaredExpected>,
    /// `--dim`: symbolic dimension name → size.
    #[serde(default)]
    pub dim: BTreeMap<String, usize>,
    /// `NAME=1x3x224x224[:dtype]`, as `--input-shape`.
    #[serde(default)]
    pub input_shape: Vec<String>,
    /// `[lo,hi]` or `NAME:[lo,hi]`, as `--val-range`.
    #[serde(default)]
    pub val_range: Vec<String>,
    /// As `--atol`.
    pub atol: Option<f64>,
    /// As `--rtol`.
    pub rtol: Option<f64>,
    /// As `--seed`.
    pub seed: Option<u64>,
    /// As `--backend`: `auto`, a back end's name (required to pass), or `all`.
    pub backend: Option<String>,
    /// As `--device` (`cpu`, `cuda`, `tensorrt`).
    pub device: Option<String>,
    /// As `--pair`: the model's twin, relative to the manifest.
    pub pair: Option<String>,
    /// As `--bisect` (`never`, `on-failure`, `always`).
    pub bisect: Option<String>,
    /// As `--runs` (at least 1).
    pub runs: Option<u64>,
    /// As `--text`: texts the model's tokenizer makes its inputs of.
    #[serde(default)]
    pub text: Vec<String>,
}

/// A declared `input`: one `.npz` of every input, or a table by input name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DeclaredInput {
    /// `input = "ALL.npz"`.
    All(String),
    /// `input = { NAME = FILE or number, … }`.
    Named(BTreeMap<String, InputValue>),
}

/// A declared `expected`: a directory or `.npz` of every output, or a table by output name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DeclaredExpected {
    /// `expected = "DIR"` or `expected = "OUTPUTS.npz"`.
    All(String),
    /// `expected = { OUTPUT = FILE, … }`.
    Named(BTreeMap<String, String>),
}

/// One value of a declared `input` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputValue {
    /// A file of the input (`.npy`, `.pb`, `.json`), relative to the manifest.
    File(String),
    /// A constant scalar of the input's own dtype.
    Number(f64),
}

impl Declared {
    /// The options it declares, relative to `dir` (the manifest's directory), flags over them.
    fn options(&self, dir: &Path, flags: &Flags) -> Result<CheckOptions, String> {
        fn parsed<T: clap::ValueEnum>(key: &str, v: &str) -> Result<T, String> {
            T::from_str(v, false).map_err(|_| {
                let names: Vec<String> = T::value_variants()
                    .iter()
                    .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                format!("{key} = \"{v}\": expected one of {}", names.join(", "))
            })
        }
        let mut o = CheckOptions::default();
        match &self.input {
            None => {}
            Some(DeclaredInput::All(f)) => o.inputs.given = vec![InputArg::All(dir.join(f))],
            Some(DeclaredInput::Named(m)) => {
                o.inputs.given = m
                    .iter()
                    .map(|(name, v)| match v {
                        InputValue::File(f) => InputArg::Named(name.clone(), dir.join(f)),
                        InputValue::Number(x) => InputArg::Value(name.clone(), *x),
                    })
                    .collect()
            }
        }
        match &self.expected {
            None => {}
            Some(DeclaredExpected::All(e)) => o.inputs.expected = Some(dir.join(e)),
            Some(DeclaredExpected::Named(m)) => {
                o.inputs.expected_files = m.iter().map(|(n, f)| (n.clone(), dir.join(f))).collect()
            }
        }
        o.inputs.dims = self
            .dim
            .iter()
            .map(|(k, v)| DimArg(k.clone(), *v))
            .collect();
        o.inputs.shapes = self
            .input_shape
            .iter()
            .map(|s| s.parse().map_err(|e| format!("input-shape: {e}")))
            .collect::<Result<_, String>>()?;
        o.inputs.ranges = self
            .val_range
            .iter()
            .map(|s| s.parse().map_err(|e| format!("val-range: {e}")))
            .collect::<Result<_, String>>()?;
        o.tolerance.atol = self.atol;
        o.tolerance.rtol = self.rtol;
        if let Some(s) = self.seed {
            o.inputs.seed = s;
        }
        if let Some(b) = &self.backend {
            o.backend = parsed("backend", b)?;
        }
        if let Some(d) = &self.device {
            o.device = parsed("device", d)?;
        }
        if let Some(b) = &self.bisect {
            o.bisect = parsed("bisect", b)?;
        }
        o.pair = self.pair.as_ref().map(|p| dir.join(p));
        if let Some(r) = self.runs {
            if r == 0 {
                return Err("runs = 0: at least 1".into());
            }
            o.runs = r as usize;
        }
        o.texts = self.text.clone();
        Ok(flags.over(o))
    }
}

/// The `models` of `[package.metadata.infer]`: each entry a path or glob (a string) or a table
/// ([`Declared`]); an error names the manifest, the entry and the key.
pub fn parse_declared(
    manifest: &Path,
    models: &serde_json::Value,
) -> Result<Vec<Declared>, FileError> {
    let at = |k: usize, e: &dyn std::fmt::Display| {
        FileError::new(
            manifest,
            format!("[package.metadata.infer] models[{k}]: {e}"),
        )
    };
    let list = models.as_array().ok_or_else(|| {
        FileError::new(
            manifest,
            "[package.metadata.infer] models: expected a list of paths or tables",
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok(Declared {
                path: s.clone(),
                ..Declared::bare()
            }),
            serde_json::Value::Object(_) => {
                serde_json::from_value::<Declared>(v.clone()).map_err(|e| at(k, &e))
            }
            _ => Err(at(k, &"expected a path or a table with `path`")),
        })
        .collect()
}

impl Declared {
    fn bare() -> Declared {
        Declared {
            path: String::new(),
            input: None,
            expected: None,
            dim: BTreeMap::new(),
            input_shape: Vec::new(),
            val_range: Vec::new(),
            atol: None,
            rtol: None,
            seed: None,
            backend: None,
            device: None,
            pair: None,
            bisect: None,
            runs: None,
            text: Vec::new(),
        }
    }
}

crate::error::message_error! {
    /// A glob that is not one, or matches no file.
    PatternError
}

/// Expands a path that may be a glob into the files it names, sorted; a pattern that matches
/// nothing is an error. An existing path is itself even if it holds glob characters.
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, PatternError> {
    let text = pattern.to_string_lossy();
    if pattern.exists() || !text.contains(['*', '?', '[']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    // As shells do, `*` does not match a leading dot (hidden files, and the probes a bisect
    // writes beside a model).
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let mut found: Vec<PathBuf> = glob::glob_with(&text, options)
        .map_err(|e| PatternError(format!("bad pattern `{text}`: {e}")))?
        .filter_map(Result::ok)
        .collect();
    if found.is_empty() {
        return Err(PatternError(format!("`{text}` matches no file")));
    }
    found.sort();
    Ok(found)
}

/// The jobs for models named on the command line.
pub fn from_args(models: &[PathBuf], flags: &Flags) -> Result<Vec<Job>, ExpectedError> {
    let opts = flags.options();
    let mut jobs = Vec::new();
    for m in models {
        for model in expand(m).map_err(|e| ExpectedError::Usage(e.0))? {
            jobs.push(Job {
                name: model.display().to_string(),
                model,
                opts: opts.clone(),
                order: jobs.len(),
                info: None,
            });
        }
    }
    Ok(jobs)
}

/// The jobs the manifest declares, relative to its directory, flags over each.
pub fn from_declared(
    manifest: &Path,
    declared: &[Declared],
    flags: &Flags,
) -> Result<Vec<Job>, FileError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let is_glob = |p: &str| p.contains(['*', '?', '[']);
    // A model named by its own entry is checked as that entry says, even where a glob of an
    // earlier entry also matches it (`add` appends such entries to lists of globs).
    let exact: std::collections::HashSet<PathBuf> = declared
        .iter()
        .filter(|d| !is_glob(&d.path))
        .map(|d| dir.join(&d.path))
        .collect();
    // Names relative to where the check runs (annotations and partitions go by them), else to the
    // manifest.
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut jobs = Vec::new();
    for (k, d) in declared.iter().enumerate() {
        let at = |e: String| {
            FileError::new(
                manifest,
                format!("[package.metadata.infer] models[{k}] ({}): {e}", d.path),
            )
        };
        let opts = d.options(dir, flags).map_err(at)?;
        let glob = is_glob(&d.path);
        let pattern = if glob {
            // The manifest's directory is a path, not a pattern (it may hold `[`).
            PathBuf::from(format!(
                "{}/{}",
                glob::Pattern::escape(&dir.to_string_lossy()),
                d.path
            ))
        } else {
            dir.join(&d.path)
        };
        for model in expand(&pattern).map_err(|e| at(e.0))? {
            if glob && exact.contains(&model) {
                continue;
            }
            // The same file declared twice is checked as its first entry says.
            if jobs.iter().any(|j: &Job| j.model == model) {
                continue;
            }
            let name = model
                .strip_prefix(&cwd)
                .or_else(|_| model.strip_prefix(dir))
                .unwrap_or(&model)
                .display()
                .to_string();
            jobs.push(Job {
                name,
                model,
                opts: opts.clone(),
                order: jobs.len(),
                info: None,
            });
        }
    }
    Ok(jobs)
}

/// The most partitions a run is split into (a bound on what a report file can make `--merge`
/// allocate).
pub const MAX_PARTITIONS: u64 = 10_000;

/// `--partition count:K/N` (the K-th of every N models, in the order of their names) or
/// `hash:K/N` (the models whose name hashes to K modulo N), K from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// `hash:K/N` rather than `count:K/N`.
    pub by_hash: bool,
    /// Which part this run takes, from 1.
    pub k: u64,
    /// How many parts the run is split into (at most [`MAX_PARTITIONS`]).
    pub n: u64,
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}`: expected count:K/N or hash:K/N with 1 <= K <= N <= {MAX_PARTITIONS}")
        };
        let (kind, kn) = s.split_once(':').ok_or_else(bad)?;
        let by_hash = match kind {
            "count" => false,
            "hash" => true,
            _ => return Err(bad()),
        };
        let (k, n) = kn.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n || n > MAX_PARTITIONS {
            return Err(bad());
        }
        Ok(Partition { by_hash, k, n })
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.by_hash { "hash" } else { "count" };
        write!(f, "{kind}:{}/{}", self.k, self.n)
    }
}

impl Partition {
    /// The jobs of this partition, in their order. Decided on the names alone, so every machine,
    /// and any order of arguments, gives each model to the same partition.
    pub fn select(&self, jobs: Vec<Job>) -> Vec<Job> {
        let mut names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let take: std::collections::HashSet<String> = names
            .iter()
            .enumerate()
            .filter(|(i, name)| {
                let bucket = if self.by_hash {
                    let h = sha2::Sha256::digest(name.as_bytes());
                    u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % self.n
                } else {
                    *i as u64 % self.n
                };
                bucket == self.k - 1
            })
            .map(|(_, n)| n.to_string())
            .collect();
        jobs.into_iter()
            .filter(|j| take.contains(&j.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(names: &[&str]) -> Vec<Job> {
        names
            .iter()
            .enumerate()
            .map(|(order, n)| Job {
                model: PathBuf::from(n),
                name: n.to_string(),
                opts: CheckOptions::default(),
                order,
                info: None,
            })
            .collect()
    }

    #[test]
    fn partitions_cover_every_model_once_in_any_order() {
        let names: Vec<String> = (0..103).map(|i| format!("m/{i:03}/model.onnx")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut reversed = names.clone();
        reversed.reverse();
        for kind in ["count", "hash"] {
            let mut seen: Vec<String> = Vec::new();
            let mut sizes = Vec::new();
            for k in 1..=4 {
                let p: Partition = format!("{kind}:{k}/4").parse().unwrap();
                let part: Vec<String> =
                    p.select(jobs(&names)).into_iter().map(|j| j.name).collect();
                let mut again: Vec<String> = p
                    .select(jobs(&reversed))
                    .into_iter()
                    .map(|j| j.name)
                    .collect();
                again.sort();
                let mut sorted = part.clone();
                sorted.sort();
                assert_eq!(sorted, again, "{kind}:{k}/4 depends on the order");
                sizes.push(part.len());
                seen.extend(part);
            }
            seen.sort();
            let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            all.sort();
            assert_eq!(seen, all, "{kind}: not every model exactly once");
            if kind == "count" {
                assert_eq!(sizes, [26, 26, 26, 25]);
            } else {
                assert!(sizes.iter().all(|&s| s > 10), "{sizes:?}");
            }
        }
    }

    #[test]
    fn partitions_are_parsed_strictly() {
        assert_eq!(
            "hash:2/5".parse::<Partition>().unwrap(),
            Partition {
                by_hash: true,
                k: 2,
                n: 5
            }
        );
        for bad in [
            "count:0/3",
            "count:4/3",
            "hash:1",
            "slice:1/2",
            "count:a/b",
            "count:1/0",
            "hash:1/18446744073709551615",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn declared_checks_name_the_unknown_key_and_take_flags_over_them() {
        let manifest = Path::new("/p/Cargo.toml");
        let v = serde_json::json!([
            "a.onnx",
            {"path": "b.onnx", "atol": 0.01, "dim": {"batch": 4}, "input": {"sr": 16000, "x": "x.npy"},
             "backend": "ort", "bisect": "never"}
        ]);
        let d = parse_declared(manifest, &v).unwrap();
        assert_eq!(d[0].path, "a.onnx");
        let o = d[1].options(Path::new("/p"), &Flags::default()).unwrap();
        assert_eq!(o.tolerance.atol, Some(0.01));
        assert_eq!(o.backend, super::super::BackendChoice::One("ort"));
        assert_eq!(o.bisect, Bisect::Never);
        assert_eq!(o.inputs.dims[0].1, 4);
        assert!(o
            .inputs
            .given
            .iter()
            .any(|g| matches!(g, InputArg::Value(n, x) if n == "sr" && *x == 16000.0)));
        assert!(o
            .inputs
            .given
            .iter()
            .any(|g| matches!(g, InputArg::Named(n, f) if n == "x" && f == Path::new("/p/x.npy"))));
        let flags = Flags {
            atol: Some(0.5),
            dim: vec![DimArg("batch".into(), 8)],
            ..Flags::default()
        };
        let o = d[1].options(Path::new("/p"), &flags).unwrap();
        assert_eq!(o.tolerance.atol, Some(0.5));
        assert_eq!(o.inputs.dims.len(), 1);
        assert_eq!(o.inputs.dims[0].1, 8);
        assert_eq!(o.bisect, Bisect::Never);

        // Expected outputs by name; --expected replaces them.
        let d2 = parse_declared(
            manifest,
            &serde_json::json!([{"path": "c.onnx", "expected": {"y": "out/y.npy"}}]),
        )
        .unwrap();
        let o = d2[0].options(Path::new("/p"), &Flags::default()).unwrap();
        assert_eq!(
            o.inputs.expected_files,
            [("y".to_string(), PathBuf::from("/p/out/y.npy"))]
        );
        let flags = Flags {
            expected: Some(PathBuf::from("e.npz")),
            ..Flags::default()
        };
        let o = d2[0].options(Path::new("/p"), &flags).unwrap();
        assert!(o.inputs.expected_files.is_empty());
        assert_eq!(o.inputs.expected, Some(PathBuf::from("e.npz")));

        // Texts, as --text; the flag's replace them.
        let d3 = parse_declared(
            manifest,
            &serde_json::json!([{"path": "e.onnx", "text": ["a sentence", "another"]}]),
        )
        .unwrap();
        let o = d3[0].options(Path::new("/p"), &Flags::default()).unwrap();
        assert_eq!(o.texts, ["a sentence", "another"]);
        let flags = Flags {
            text: vec!["mine".into()],
            ..Flags::default()
        };
        assert_eq!(
            d3[0].options(Path::new("/p"), &flags).unwrap().texts,
            ["mine"]
        );

        let e = parse_declared(
            manifest,
            &serde_json::json!([{"path": "a.onnx", "atoll": 1}]),
        )
        .unwrap_err();
        assert_eq!(e.path, manifest);
        assert!(
            e.message.contains("models[0]") && e.message.contains("atoll"),
            "{e}"
        );
        let e = d[1].clone();
        let e = Declared {
            backend: Some("tensorflow".into()),
            ..e
        }
        .options(Path::new("/p"), &Flags::default())
        .unwrap_err();
        assert!(
            e.contains("backend = \"tensorflow\"") && e.contains("tract"),
            "{e}"
        );
    }

    /// A model's own entry beats a glob that also matches it; `*` skips hidden files (a bisect's
    /// probes); a manifest directory holding `[` is a path, not a pattern.
    #[test]
    fn declared_globs_and_exact_entries() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("crate [v2]");
        std::fs::create_dir_all(dir.join("models")).unwrap();
        for f in ["a.onnx", "b.onnx", ".cargo-infer-probe-x.onnx"] {
            std::fs::write(dir.join("models").join(f), b"x").unwrap();
        }
        let manifest = dir.join("Cargo.toml");
        let v = serde_json::json!(["models/*.onnx", {"path": "models/b.onnx", "atol": 0.5}]);
        let d = parse_declared(&manifest, &v).unwrap();
        let jobs = from_declared(&manifest, &d, &Flags::default()).unwrap();
        let names: Vec<&str> = jobs
            .iter()
            .map(|j| j.model.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.onnx", "b.onnx"]);
        assert_eq!(jobs[1].opts.tolerance.atol, Some(0.5));
        assert_eq!(jobs[0].opts.tolerance.atol, None);
    }
}
