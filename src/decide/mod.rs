//! `cargo infer decide`: the decision matrix as data — one table of frameworks and one ordered
//! list of rules — applied to this model's evidence and these constraints.
//!
//! A rule either excludes frameworks (hard constraints: the target, the GPU, pure Rust, binary
//! size, what the model is made of) or adds to their scores (what the matrix recommends). A new
//! framework is one row of [`FRAMEWORKS`]; a new rule is one row of [`RULES`].

pub mod constraints;
pub mod render;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{self, ArchClass, Format, ModelInfo};
use constraints::{Constraints, Gpu, TargetKind};

/// A framework `decide` can choose (`--framework`, `choice` in JSON), lower-case by name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
// The variants are `--framework`'s possible values, named as the flag spells them; a doc comment
// on one would become its help text and change `--help`.
#[allow(missing_docs)]
pub enum Framework {
    Candle,
    Ort,
    Tch,
    Tract,
    Burn,
    Fastembed,
    // Code `emit` generates for a trivial model: no framework at all.
    Custom,
}

impl Framework {
    /// Its id in the framework table (`tract`), as flags and JSON spell it.
    pub fn as_str(self) -> &'static str {
        row(self).id
    }
}

/// How proven a framework is (the matrix's maturity column; `S-MATURITY` scores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Maturity {
    /// Widely used in production (ort, tch).
    High,
    /// Used, still changing (candle, tract, fastembed).
    Medium,
    /// Young (burn).
    Early,
    /// Code we generate: as mature as the model is simple.
    Generated,
}

/// One row of the framework table (from ../shared/reference/decision-matrix.txt, plus what the
/// crates need: formats they read, smallest binary that runs a model).
#[derive(Debug, Serialize)]
pub struct FrameworkRow {
    /// The framework this row describes.
    pub framework: Framework,
    /// Its name in flags, JSON and messages (`candle`).
    pub id: &'static str,
    /// The crate a project depends on.
    pub krate: &'static str,
    /// The compute back ends it runs on, for people (`ONNX Runtime (C++)`).
    pub backend: &'static str,
    /// Written in Rust, with no C/C++ runtime to link.
    pub pure_rust: bool,
    /// The GPUs it can use; `X-GPU` excludes it when `--gpu` names another.
    pub gpus: &'static [Gpu],
    /// Builds for WebAssembly.
    pub wasm: bool,
    /// Builds for targets without an operating system.
    pub bare_metal: bool,
    /// Can train, not only infer.
    pub training: bool,
    /// How proven it is.
    pub maturity: Maturity,
    /// Model formats its projects load.
    pub formats: &'static [Format],
    /// Typical stripped release binary that runs a small model, bytes (order of magnitude).
    pub typical_binary: u64,
    /// What the matrix recommends it for, in a few words.
    pub best_for: &'static str,
    /// The back end (crate::backends::REGISTRY) that runs what this framework's projects run:
    /// `init` records the outputs their tests reproduce with it, and `check` proves the model on
    /// it. A back end named like a framework *is* that framework (`decide --probe` evidence).
    #[serde(skip)]
    pub checked_by: &'static str,
}

use Format::*;
use Gpu as G;

/// The framework table, one row per [`Framework`] (the decision matrix's columns).
pub const FRAMEWORKS: &[FrameworkRow] = &[
    FrameworkRow {
        framework: Framework::Candle,
        id: "candle",
        krate: "candle-core",
        backend: "Custom / CUDA / Metal",
        pure_rust: true,
        gpus: &[G::Cuda, G::Metal],
        wasm: true,
        bare_metal: false,
        training: true,
        maturity: Maturity::Medium,
        formats: &[Safetensors, Gguf, Pytorch, Onnx],
        typical_binary: 6_000_000,
        best_for: "Hugging Face models, LLMs",
        checked_by: "candle",
    },
    FrameworkRow {
        framework: Framework::Ort,
        id: "ort",
        krate: "ort",
        backend: "ONNX Runtime (C++)",
        pure_rust: false,
        gpus: &[G::Cuda, G::Tensorrt, G::Rocm],
        wasm: false,
        bare_metal: false,
        training: false,
        maturity: Maturity::High,
        formats: &[Onnx],
        typical_binary: 25_000_000,
        best_for: "Production, any ONNX model",
        checked_by: "ort",
    },
    FrameworkRow {
        framework: Framework::Tch,
        id: "tch",
        krate: "tch",
        backend: "LibTorch (C++)",
        pure_rust: false,
        gpus: &[G::Cuda, G::Rocm],
        wasm: false,
        bare_metal: false,
        training: true,
        maturity: Maturity::High,
        formats: &[Torchscript],
        typical_binary: 500_000_000,
        best_for: "PyTorch model portability",
        checked_by: "tch",
    },
    FrameworkRow {
        framework: Framework::Tract,
        id: "tract",
        krate: "tract-onnx",
        backend: "Custom Rust",
        pure_rust: true,
        gpus: &[],
        wasm: true,
        bare_metal: false,
        training: false,
        maturity: Maturity::Medium,
        formats: &[Onnx],
        typical_binary: 8_000_000,
        best_for: "Edge/embedded, no C++ deps",
        checked_by: "tract",
    },
    FrameworkRow {
        framework: Framework::Burn,
        id: "burn",
        krate: "burn",
        backend: "Custom / WGPU",
        pure_rust: true,
        gpus: &[G::Wgpu, G::Metal],
        wasm: true,
        bare_metal: false,
        training: true,
        maturity: Maturity::Early,
        formats: &[Onnx, Safetensors, Pytorch],
        typical_binary: 5_000_000,
        best_for: "Training + inference, pure Rust",
        checked_by: "tract",
    },
    FrameworkRow {
        framework: Framework::Fastembed,
        id: "fastembed",
        krate: "fastembed",
        backend: "ort wrapper",
        pure_rust: false,
        gpus: &[G::Cuda, G::Tensorrt],
        wasm: false,
        bare_metal: false,
        training: false,
        maturity: Maturity::Medium,
        formats: &[Onnx],
        typical_binary: 30_000_000,
        best_for: "Embedding models specifically",
        checked_by: "ort",
    },
    FrameworkRow {
        framework: Framework::Custom,
        id: "custom",
        krate: "(none: generated code)",
        backend: "generated Rust",
        pure_rust: true,
        gpus: &[],
        wasm: true,
        bare_metal: true,
        training: false,
        maturity: Maturity::Generated,
        formats: &[Onnx, Safetensors, Pytorch],
        typical_binary: 300_000,
        best_for: "Tiny models, no OS, < 1 MB, exact precision",
        checked_by: "tract",
    },
];

/// The framework a back end is, if it is one (`tract`, `ort`, `tch`, `candle`).
pub fn framework_named(id: &str) -> Option<Framework> {
    FRAMEWORKS.iter().find(|r| r.id == id).map(|r| r.framework)
}

/// The row of framework `f` in [`FRAMEWORKS`].
pub fn row(f: Framework) -> &'static FrameworkRow {
    FRAMEWORKS
        .iter()
        .find(|r| r.framework == f)
        .expect("every framework has a row")
}

/// ONNX Runtime 1.31 (what ort 2.0.0-rc.15 targets): newest IR and ai.onnx opset it loads.
pub const ORT_MAX_IR: i64 = 13;
/// Newest ai.onnx opset ONNX Runtime 1.31 supports (see [`ORT_MAX_IR`]).
pub const ORT_MAX_OPSET: i64 = 26;

/// What candle-onnx runs: its source's operators less those that pass none of their ONNX backend
/// suite cases (`cargo xtask conformance DIR --backend candle`; README, "candle-onnx").
const CANDLE_ONNX_OPS: &str = include_str!("oplists/candle-onnx-0.11.1.measured.txt");
const BURN_IMPORT_OPS: &str = include_str!("oplists/burn-import-0.22.0.txt");

/// What was measured on this model.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The model's format, as sniffed from its bytes.
    pub format: Format,
    /// Its architecture class (`model::classify`).
    pub class: ArchClass,
    /// Parameter count (elements of its weights).
    pub parameters: u64,
    /// Operators each framework lacks (ONNX), with the nodes that use them.
    pub missing_ops: BTreeMap<Framework, BTreeMap<String, Vec<String>>>,
    /// Why ONNX Runtime would refuse the file (IR or opset too new).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ort_version_problem: Option<String>,
    /// Triviality: the summary, or every reason it is not trivial.
    pub trivial: Result<String, model::trivial::NotTrivial>,
    /// An ONNX model not trivial only for its parameter count: `emit --max-params N` generates it
    /// (the budget is where the safe kernels stop beating tract, not a limit of `emit`). Weights
    /// files are left out: `emit` wants their activations named as well.
    #[serde(skip)]
    pub over_budget_only: bool,
    /// A sentence-embedding encoder (token ids in, embeddings out), which fastembed runs.
    pub embedding: bool,
    /// An encoder's files as fastembed would read them: why it would refuse them (no tokenizer
    /// beside the model, settings missing from its files, inputs it does not feed, a pooling it
    /// lacks); empty when it takes them or the model is no encoder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fastembed_refusals: Vec<String>,
    /// `--probe`: a real load on each back end available here.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub probe: BTreeMap<Framework, Result<String, String>>,
    /// ONNX whose operators tract has: the model loaded, typed and run in tract (prepared when
    /// it must be), so that tract is never chosen for a model it cannot load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tract_load: Option<TractLoad>,
}

/// What loading the model in tract showed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum TractLoad {
    /// It loaded and ran; `note`: what had to be prepared, if anything.
    Loaded {
        /// Time to load, type and run it once, milliseconds.
        ms: f64,
        /// What had to be prepared for tract, `; `-separated; empty when nothing.
        note: String,
    },
    /// The loader's one-line reason.
    Failed {
        /// Time until it failed, milliseconds.
        ms: f64,
        /// The loader's message, on one line.
        reason: String,
    },
    /// Not tried, or not conclusive, and why (size, files outside the model's directory,
    /// synthetic inputs that no back end runs).
    Skipped {
        /// Why it was not tried, or why the failure says nothing about tract.
        why: String,
    },
}

/// Models over this many bytes of weights are not loaded by `decide` unless `--probe` is given
/// (loading costs about as much as reading them; see README).
pub const TRACT_LOAD_MAX_BYTES: u64 = 512 << 20;

/// Loads, types and runs the model once in tract, on synthetic inputs, as `check` would.
fn tract_load(path: &Path, info: &ModelInfo) -> TractLoad {
    if info
        .details
        .external_data
        .iter()
        .any(|f| f.outside.is_some())
    {
        return TractLoad::Skipped {
            why: "its external data lies outside its directory; not loaded".into(),
        };
    }
    if info.weight_bytes > TRACT_LOAD_MAX_BYTES {
        return TractLoad::Skipped {
            why: format!(
                "{} MB of weights, over the {} MB decide loads by itself; `--probe` loads it",
                info.weight_bytes >> 20,
                TRACT_LOAD_MAX_BYTES >> 20
            ),
        };
    }
    let opts = crate::check::CheckOptions::default();
    let start = std::time::Instant::now();
    let r = crate::check::check_model(path, &[(&crate::backends::tract::Tract, true)], &opts);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let reason = match r.backends.first() {
        Some(b) if b.status == crate::check::BackendStatus::Pass => {
            return TractLoad::Loaded {
                ms,
                note: b.notes.join("; "),
            }
        }
        Some(b) if !b.message.is_empty() => crate::error::one_line(&b.message),
        _ => crate::error::one_line(&r.message),
    };
    // Synthetic inputs may not fit the model at all (a sample rate of 2 where 8000 or 16000 is
    // expected): when ONNX Runtime fails on them too, the failure says nothing about tract.
    let ort = crate::backends::ort::Ort::new(None);
    if crate::backends::Backend::availability(&ort).is_ok() {
        let r = crate::check::check_model(path, &[(&ort, true)], &opts);
        if let Some(b) = r
            .backends
            .first()
            .filter(|b| b.status != crate::check::BackendStatus::Pass)
        {
            return TractLoad::Skipped {
                why: format!(
                    "inconclusive: ONNX Runtime fails on the synthetic inputs too ({}); `check --input` with real inputs tells",
                    crate::error::one_line(&b.message)
                ),
            };
        }
    }
    TractLoad::Failed { ms, reason }
}

fn missing(info: &ModelInfo, list: &str) -> BTreeMap<String, Vec<String>> {
    let known: std::collections::HashSet<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::trim)
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &info.nodes {
        let standard = n.domain.is_empty() || n.domain == "ai.onnx";
        if !standard || !known.contains(n.op_type.as_str()) {
            let name = n.display_name();
            out.entry(model::onnx::op_key(&n.domain, &n.op_type))
                .or_default()
                .push(name);
        }
    }
    out
}

/// Sentence-embedding encoders: an encoder whose inputs are token ids (and a mask) and whose
/// outputs are hidden states or embeddings, not a task head.
fn is_embedding(info: &ModelInfo) -> bool {
    if info.architecture.class != ArchClass::TransformerEncoder {
        return false;
    }
    let has_in = |s: &str| info.inputs.iter().any(|i| i.name.contains(s));
    let has_out = |s: &str| info.outputs.iter().any(|o| o.name.contains(s));
    // fastembed takes a model's only output whatever its name, else one of these by name.
    let io = has_in("input_ids")
        && (info.outputs.len() == 1
            || has_out("last_hidden_state")
            || has_out("embedding")
            || has_out("pooler_output")
            || has_out("hidden_states"));
    let config = info.architecture.reasons.iter().any(|r| {
        r.contains("config.json")
            && (r.contains("Model`") || r.contains("SentenceTransformer"))
            && !r.contains("For")
    });
    io || config
}

/// `emit`'s verdict: the operator, dtype, shape and budget check, then for ONNX the reading of
/// the chain itself (an operator `emit` knows may still be used in a way it does not generate:
/// a concatenation of two computed tensors, a softmax over the batch axis…).
fn trivial_for_emit(info: &ModelInfo, budget: u64) -> Result<String, model::trivial::NotTrivial> {
    let verdict = model::trivial::check(info, budget)?;
    if info.format == Format::Onnx {
        crate::emit::onnx::read(Path::new(&info.path))
            .map_err(|e| model::trivial::NotTrivial(vec![e.0]))?;
    }
    Ok(verdict)
}

/// Why fastembed would refuse an encoder and the files beside it, as `check` judges them (nothing
/// is run: the tokenizer is loaded and its settings read).
fn fastembed_refusals(info: &ModelInfo) -> Vec<String> {
    use crate::check::text;
    let path = Path::new(&info.path);
    if !text::has_tokenizer(path) {
        return vec!["fastembed needs tokenizer.json next to the model".into()];
    }
    let mut why = match text::tokenizer(path) {
        Ok(t) => t.fastembed_refusals,
        Err(e) => return vec![e.to_string()],
    };
    match text::pooling(path) {
        Ok(p) => why.extend(text::fastembed_refusals(info, &p)),
        Err(e) => why.push(e.to_string()),
    }
    why
}

/// Gathers what `decide` measures on a model without running it (the tract load and `--probe` are
/// added by [`decide_model`]).
pub fn gather_evidence(info: &ModelInfo) -> Evidence {
    let mut missing_ops = BTreeMap::new();
    let mut ort_version_problem = None;
    if info.format == Format::Onnx {
        missing_ops.insert(
            Framework::Tract,
            crate::backends::tract::missing_operators(info),
        );
        missing_ops.insert(Framework::Candle, missing(info, CANDLE_ONNX_OPS));
        missing_ops.insert(Framework::Burn, missing(info, BURN_IMPORT_OPS));
        if let Some(ir) = info.details.ir_version.filter(|ir| *ir > ORT_MAX_IR) {
            ort_version_problem = Some(format!(
                "IR version {ir}; ONNX Runtime 1.31 loads up to {ORT_MAX_IR}"
            ));
        } else if let Some(op) = info.opsets.get("ai.onnx").filter(|o| **o > ORT_MAX_OPSET) {
            ort_version_problem = Some(format!(
                "opset {op}; ONNX Runtime 1.31 supports up to {ORT_MAX_OPSET}"
            ));
        }
    }
    let trivial = trivial_for_emit(info, model::trivial::DEFAULT_BUDGET);
    let over_budget_only = trivial.is_err()
        && info.format == Format::Onnx
        && info.parameters > model::trivial::DEFAULT_BUDGET
        && trivial_for_emit(info, u64::MAX).is_ok();
    Evidence {
        format: info.format,
        class: info.architecture.class,
        parameters: info.parameters,
        missing_ops,
        ort_version_problem,
        trivial,
        over_budget_only,
        embedding: is_embedding(info),
        // fastembed reads ONNX only (other formats are X-FORMAT's).
        fastembed_refusals: if is_embedding(info) && info.format == Format::Onnx {
            fastembed_refusals(info)
        } else {
            Vec::new()
        },
        probe: BTreeMap::new(),
        tract_load: None,
    }
}

/// What a rule sees.
pub struct Ctx<'a> {
    /// The merged constraints.
    pub c: &'a Constraints,
    /// The evidence gathered on the model.
    pub e: &'a Evidence,
}

/// A rule's effect on the frameworks it names.
pub enum Effect {
    /// Excludes these frameworks.
    Exclude(&'static [Framework]),
    /// Excludes every framework but these.
    Only(&'static [Framework]),
    /// Adds to scores.
    Score(&'static [(Framework, f64)]),
    /// Excludes the frameworks the closure names (evidence-dependent), with a reason per framework.
    ExcludeBy(fn(&Ctx) -> Vec<(Framework, String)>),
}

/// One rule of [`RULES`]: when it fires and what it does to the frameworks.
pub struct Rule {
    /// Stable id (`X-PURE-RUST`, `S-MATURITY`): `X-` excludes, `S-` scores.
    pub id: &'static str,
    /// What the rule says, as the matrix or the evidence puts it.
    pub says: &'static str,
    /// Whether it fires on a constraint of the user's (target, GPU, size…) rather than on what
    /// the model is alone. A framework excluded only by such rules would run the model without
    /// them, and the "no framework fits" message says so.
    pub constraint: bool,
    /// Whether the rule fires on these constraints and this evidence.
    pub when: fn(&Ctx) -> bool,
    /// What it does to the frameworks when it fires.
    pub effect: Effect,
}

use Framework as F;

const ALL: &[Framework] = &[
    F::Candle,
    F::Ort,
    F::Tch,
    F::Tract,
    F::Burn,
    F::Fastembed,
    F::Custom,
];

fn format_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    ALL.iter()
        .filter(|f| !row(**f).formats.contains(&x.e.format))
        .map(|f| {
            (
                *f,
                format!("{} does not read {} files", f.as_str(), x.e.format.as_str()),
            )
        })
        .collect()
}

fn op_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    x.e.missing_ops
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(f, m)| {
            (
                *f,
                format!(
                    "{} lacks {}",
                    f.as_str(),
                    crate::backends::tract::describe_missing(m)
                ),
            )
        })
        .collect()
}

/// Generated code's size with int8 weights (`emit --weights-dtype int8`, one byte a weight), when
/// that fits `--max-binary-size` (not with `--exact-precision`, which has no int8).
fn int8_fits(c: &Constraints, e: &Evidence) -> Option<u64> {
    let int8 = row(F::Custom).typical_binary.saturating_add(e.parameters);
    (!c.exact_precision && c.max_binary_size.is_some_and(|max| int8 <= max)).then_some(int8)
}

fn size_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    let Some(max) = x.c.max_binary_size else {
        return vec![];
    };
    // Generated code compiles the weights into the binary (float32, float64 for exact
    // precision); the frameworks load the model from its file.
    let compiled_in = |f: Framework| match f {
        Framework::Custom => {
            x.e.parameters
                .saturating_mul(if x.c.exact_precision { 8 } else { 4 })
        }
        _ => 0,
    };
    ALL.iter()
        .filter(|f| row(**f).typical_binary.saturating_add(compiled_in(**f)) > max)
        .map(|f| {
            let weights = compiled_in(*f);
            let size = row(*f).typical_binary.saturating_add(weights);
            let why = if weights > 0 {
                let smaller = match int8_fits(x.c, x.e) {
                    Some(int8) => format!(
                        "; with int8 weights (`cargo infer emit --weights-dtype int8`, an error `emit` reports) about {}, which fits",
                        crate::output::human_bytes(int8)
                    ),
                    None => String::new(),
                };
                format!(
                    "{} needs about {}: {} of code and {} of {} weights compiled in (limit {}){smaller}",
                    f.as_str(),
                    crate::output::human_bytes(size),
                    crate::output::human_bytes(row(*f).typical_binary),
                    crate::output::human_bytes(weights),
                    if x.c.exact_precision {
                        "float64"
                    } else {
                        "float32"
                    },
                    crate::output::human_bytes(max)
                )
            } else {
                format!(
                    "{} needs about {} (limit {})",
                    f.as_str(),
                    crate::output::human_bytes(size),
                    crate::output::human_bytes(max)
                )
            };
            (*f, why)
        })
        .collect()
}

fn gpu_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    let g = x.c.gpu;
    if g == Gpu::None {
        return vec![];
    }
    let mut out: Vec<(Framework, String)> = ALL
        .iter()
        .filter(|f| !row(**f).gpus.contains(&g))
        .map(|f| (*f, format!("{} has no {} support", f.as_str(), g.as_str())))
        .collect();
    // candle runs ONNX graphs through candle-onnx, which evaluates them on the CPU only.
    if x.e.format == Onnx && row(Framework::Candle).gpus.contains(&g) {
        out.push((
            Framework::Candle,
            format!(
                "candle runs ONNX through candle-onnx, which has no {} support (CPU only)",
                g.as_str()
            ),
        ));
    }
    out
}

fn load_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    match &x.e.tract_load {
        Some(TractLoad::Failed { reason, .. }) => {
            vec![(Framework::Tract, format!("tract cannot load it: {reason}"))]
        }
        _ => vec![],
    }
}

fn probe_exclusions(x: &Ctx) -> Vec<(Framework, String)> {
    x.e.probe
        .iter()
        .filter_map(|(f, r)| {
            r.as_ref()
                .err()
                .map(|e| (*f, format!("a real load failed: {e}")))
        })
        .collect()
}

fn not_trivial(x: &Ctx) -> Vec<(Framework, String)> {
    let why = x.e.trivial.as_ref().err().map(|w| {
        let w = &w.0;
        let shown: Vec<&str> = w.iter().take(3).map(String::as_str).collect();
        let more = if w.len() > 3 {
            format!(" (+{} more)", w.len() - 3)
        } else {
            String::new()
        };
        format!("not an MLP-family model: {}{more}", shown.join("; "))
    });
    why.map(|w| vec![(F::Custom, w)]).unwrap_or_default()
}

fn trivial(x: &Ctx) -> bool {
    x.e.trivial.is_ok()
}

fn weights_only(x: &Ctx) -> bool {
    matches!(x.e.format, Safetensors | Gguf | Pytorch)
}

/// The ordered rule list. Exclusions first (hard constraints, then evidence), then scores.
pub const RULES: &[Rule] = &[
    Rule {
        id: "X-FORMAT",
        says: "a framework must read the model's file format",
        constraint: false,
        when: |_| true,
        effect: Effect::ExcludeBy(format_exclusions),
    },
    Rule {
        id: "X-WASM",
        says: "WASM deployment → no C/C++ runtimes (ort, tch, fastembed)",
        constraint: true,
        when: |x| x.c.target_kind == TargetKind::Wasm,
        effect: Effect::Exclude(&[F::Ort, F::Tch, F::Fastembed]),
    },
    Rule {
        id: "X-BARE-METAL",
        says: "bare metal (no OS, no std) → only generated code",
        constraint: true,
        when: |x| x.c.target_kind == TargetKind::BareMetal,
        effect: Effect::Only(&[F::Custom]),
    },
    Rule {
        id: "X-PURE-RUST",
        says: "pure Rust → no C/C++ runtimes (ort, tch, fastembed)",
        constraint: true,
        when: |x| x.c.pure_rust,
        effect: Effect::Exclude(&[F::Ort, F::Tch, F::Fastembed]),
    },
    Rule {
        id: "X-GPU",
        says: "the GPU asked for must be supported",
        constraint: true,
        when: |x| x.c.gpu != Gpu::None,
        effect: Effect::ExcludeBy(gpu_exclusions),
    },
    Rule {
        id: "X-TENSORRT",
        says: "multi-GPU / TensorRT → ort with the TensorRT execution provider",
        constraint: true,
        when: |x| x.c.multi_gpu || x.c.gpu == Gpu::Tensorrt,
        effect: Effect::Only(&[F::Ort]),
    },
    Rule {
        id: "X-TRAINING",
        says: "training → a framework that trains (burn, candle, tch)",
        constraint: true,
        when: |x| x.c.training,
        effect: Effect::Only(&[F::Burn, F::Candle, F::Tch]),
    },
    Rule {
        id: "X-BINARY-SIZE",
        says: "the binary must fit --max-binary-size",
        constraint: true,
        when: |x| x.c.max_binary_size.is_some(),
        effect: Effect::ExcludeBy(size_exclusions),
    },
    Rule {
        id: "X-OPS",
        says: "every operator of the model must be implemented (measured on this model)",
        constraint: false,
        when: |x| x.e.format == Onnx,
        effect: Effect::ExcludeBy(op_exclusions),
    },
    Rule {
        id: "X-ORT-VERSION",
        says: "ONNX Runtime must know the model's IR version and opset",
        constraint: false,
        when: |x| x.e.ort_version_problem.is_some(),
        effect: Effect::Exclude(&[F::Ort, F::Fastembed]),
    },
    Rule {
        id: "X-NOT-TRIVIAL",
        says: "generated code only for trivial models (MLP family, budget)",
        constraint: false,
        when: |x| !trivial(x),
        effect: Effect::ExcludeBy(not_trivial),
    },
    Rule {
        id: "X-EMBEDDING-ONLY",
        says: "fastembed runs sentence-embedding models only",
        constraint: false,
        when: |x| !x.e.embedding,
        effect: Effect::Exclude(&[F::Fastembed]),
    },
    Rule {
        id: "X-FASTEMBED-FILES",
        says: "fastembed must take the encoder's tokenizer files, inputs and pooling",
        constraint: false,
        when: |x| x.e.embedding && !x.e.fastembed_refusals.is_empty(),
        effect: Effect::ExcludeBy(|x| {
            vec![(Framework::Fastembed, x.e.fastembed_refusals.join("; "))]
        }),
    },
    Rule {
        id: "X-LOAD",
        says: "a built-in back end must load the model (tract loaded and typed it, prepared if need be)",
        constraint: false,
        when: |x| matches!(x.e.tract_load, Some(TractLoad::Failed { .. })),
        effect: Effect::ExcludeBy(load_exclusions),
    },
    Rule {
        id: "X-PROBE",
        says: "--probe: a framework whose real load failed is out",
        constraint: false,
        when: |x| !x.e.probe.is_empty(),
        effect: Effect::ExcludeBy(probe_exclusions),
    },
    Rule {
        id: "S-TORCHSCRIPT",
        says: "Need PyTorch .pt models? → tch-rs (only LibTorch runs TorchScript)",
        constraint: false,
        when: |x| x.e.format == Torchscript,
        effect: Effect::Score(&[(F::Tch, 100.0)]),
    },
    Rule {
        id: "S-ONNX",
        says: "Need ONNX models? → ort (tract next, burn and candle-onnx after)",
        constraint: false,
        when: |x| x.e.format == Onnx,
        effect: Effect::Score(&[
            (F::Ort, 30.0),
            (F::Tract, 20.0),
            (F::Burn, 8.0),
            (F::Candle, 5.0),
        ]),
    },
    Rule {
        id: "S-LLM",
        says: "Running LLMs (GPT, LLaMA, Mistral)? → candle",
        constraint: false,
        when: |x| x.e.class == ArchClass::TransformerDecoder && weights_only(x),
        effect: Effect::Score(&[(F::Candle, 60.0)]),
    },
    Rule {
        id: "S-HF-WEIGHTS",
        says: "weights without a graph need architecture code: candle (Hugging Face models), burn",
        constraint: false,
        when: |x| weights_only(x),
        effect: Effect::Score(&[(F::Candle, 25.0), (F::Burn, 10.0)]),
    },
    Rule {
        id: "S-EMBEDDING",
        says: "sentence-embedding encoder → fastembed-rs",
        constraint: false,
        when: |x| x.e.embedding,
        effect: Effect::Score(&[(F::Fastembed, 45.0)]),
    },
    Rule {
        id: "S-CUDA",
        says: "CUDA required → ort or tch-rs (most stable GPU support)",
        constraint: true,
        when: |x| x.c.gpu == Gpu::Cuda,
        effect: Effect::Score(&[(F::Ort, 20.0), (F::Tch, 15.0), (F::Candle, 10.0)]),
    },
    Rule {
        id: "S-MULTI-GPU",
        says: "multi-GPU / TensorRT → ort with TensorRT EP",
        constraint: true,
        when: |x| x.c.multi_gpu || x.c.gpu == Gpu::Tensorrt,
        effect: Effect::Score(&[(F::Ort, 40.0)]),
    },
    Rule {
        id: "S-WASM",
        says: "Need WASM deployment? → candle or tract",
        constraint: true,
        when: |x| x.c.target_kind == TargetKind::Wasm,
        effect: Effect::Score(&[(F::Tract, 25.0), (F::Candle, 20.0)]),
    },
    Rule {
        id: "S-PURE-RUST",
        says: "Want pure Rust, no C++ deps? → tract or burn",
        constraint: true,
        when: |x| x.c.pure_rust,
        effect: Effect::Score(&[(F::Tract, 20.0), (F::Burn, 15.0)]),
    },
    Rule {
        id: "S-TRAINING",
        says: "training + inference, pure Rust → burn",
        constraint: true,
        when: |x| x.c.training,
        effect: Effect::Score(&[(F::Burn, 40.0), (F::Candle, 15.0), (F::Tch, 10.0)]),
    },
    Rule {
        id: "S-SERVING",
        says: "Production serving with SLA? → ort (most battle-tested)",
        constraint: true,
        when: |x| x.c.serving,
        effect: Effect::Score(&[(F::Ort, 30.0)]),
    },
    Rule {
        id: "S-EDGE",
        says: "Edge/embedded deployment? → tract (smallest binary, no system libs)",
        constraint: true,
        when: |x| x.c.max_binary_size.is_some() || x.c.target_kind == TargetKind::Other,
        effect: Effect::Score(&[(F::Tract, 20.0), (F::Custom, 10.0)]),
    },
    Rule {
        id: "S-TRIVIAL",
        says: "extremely simple model (small MLP) → custom inference",
        constraint: false,
        when: trivial,
        effect: Effect::Score(&[(F::Custom, 45.0)]),
    },
    Rule {
        id: "S-TRIVIAL-TARGET",
        says: "no OS, binary under 1 MB, or exact precision → custom inference",
        constraint: true,
        when: |x| {
            trivial(x)
                && (x.c.target_kind == TargetKind::BareMetal
                    || x.c.max_binary_size.is_some_and(|m| m <= 1_000_000)
                    || x.c.exact_precision)
        },
        effect: Effect::Score(&[(F::Custom, 40.0)]),
    },
    Rule {
        id: "S-MATURITY",
        says: "maturity: high +10, medium +5",
        constraint: false,
        when: |_| true,
        effect: Effect::Score(&[
            (F::Ort, 10.0),
            (F::Tch, 10.0),
            (F::Candle, 5.0),
            (F::Tract, 5.0),
            (F::Fastembed, 5.0),
        ]),
    },
    Rule {
        id: "S-PROBE",
        says: "--probe: a framework that really loaded the model",
        constraint: false,
        when: |x| x.e.probe.values().any(|r| r.is_ok()),
        effect: Effect::Score(&[(F::Tract, 15.0), (F::Ort, 15.0)]),
    },
];

/// Where a framework stands after the rules (`verdict` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The choice: the best-scoring framework left, or the one `--framework` forced.
    Recommended,
    /// Not excluded, not chosen.
    Viable,
    /// Excluded by at least one rule (its reasons say which).
    Excluded,
}

/// One framework's place in the ranking.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    /// The framework ranked.
    pub framework: Framework,
    /// Whether it was chosen, viable or excluded.
    pub verdict: Verdict,
    /// Sum of the scores rules gave it (excluded ones keep theirs).
    pub score: f64,
    /// `RULE-ID: what it says` for every rule that touched this framework.
    pub reasons: Vec<String>,
}

/// Every rule, and what it did (for `--explain`).
#[derive(Debug, Clone, Serialize)]
pub struct Fired {
    /// The rule's id.
    pub id: &'static str,
    /// What the rule says.
    pub says: &'static str,
    /// Whether it fired on this model and these constraints.
    pub fired: bool,
    /// What it did: "excluded ort, tch", "+30 ort, +20 tract".
    pub effect: String,
}

/// What `decide` chose and why (the whole `decide --format json` object).
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The framework chosen (`choice`).
    pub choice: Framework,
    /// Every framework: the recommended one first, the viable ones by score, the excluded last.
    pub ranking: Vec<Ranked>,
    /// The constraints it was decided under.
    pub constraints: Constraints,
    /// What was measured on the model.
    pub evidence: Evidence,
    /// Every rule in [`RULES`] order, fired or not.
    pub rules: Vec<Fired>,
    /// The model's path, as given.
    pub model: String,
}

/// Reads the model and decides; `probe` loads it on the back ends available here.
pub fn decide_model(
    path: &Path,
    c: &Constraints,
    probe: Probe,
) -> Result<Decision, crate::error::ExpectedError> {
    let info = model::inspect(path)?;
    let mut evidence = gather_evidence(&info);
    // Loading it would read external data outside its directory: no back end may try.
    if probe != Probe::No {
        model::refuse_outside(&info)?;
        evidence.probe = probe_backends(path, &info, probe == Probe::WithBurn);
    } else if info.format == Format::Onnx
        && evidence
            .missing_ops
            .get(&Framework::Tract)
            .is_some_and(|m| m.is_empty())
    {
        evidence.tract_load = Some(tract_load(path, &info));
    }
    decide(path, c, evidence).map_err(|e| crate::error::ExpectedError::Usage(e.message))
}

/// Which back ends `decide --probe` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// None: the evidence is what the file says (and tract's load).
    No,
    /// Every back end that runs unasked (`--probe`).
    Yes,
    /// Those and burn, whose harness takes minutes to build the first time (`--probe-burn`).
    WithBurn,
}

/// Loads the model on each back end of this build that is available here; burn too when
/// `burn`, checked against the others (it passes only where it agrees with them).
fn probe_backends(
    path: &Path,
    info: &ModelInfo,
    burn: bool,
) -> BTreeMap<Framework, Result<String, String>> {
    let mut out = BTreeMap::new();
    let opts = crate::check::CheckOptions::default();
    let unasked = crate::backends::unasked(None);
    let all = crate::backends::all(None);
    let runs = |b: &dyn crate::backends::Backend| {
        b.formats().contains(&info.format) && (burn || !crate::backends::by_name_only(b.name()))
    };
    for b in all.iter().map(|b| b.as_ref()).filter(|b| runs(*b)) {
        let Some(f) = framework_named(b.name()) else {
            continue;
        };
        if b.availability().is_err() {
            continue;
        }
        // A back end run by name only is probed against the others, as `check` runs it.
        let mut with: Vec<(&dyn crate::backends::Backend, bool)> = vec![(b, true)];
        if crate::backends::by_name_only(b.name()) {
            with.extend(unasked.iter().map(|o| (o.as_ref(), false)));
        }
        let r = crate::check::check_model(path, &with, &opts);
        let verdict = match r.backends.iter().find(|rep| rep.name == b.name()) {
            Some(rep) if rep.status == crate::check::BackendStatus::Pass => Ok(format!(
                "loaded and ran in {}",
                crate::output::human_ms(rep.load_ms + rep.run_ms)
            )),
            Some(rep) if !rep.message.is_empty() => Err(rep.message.clone()),
            _ => Err(r.message.clone()),
        };
        out.insert(f, verdict);
    }
    out
}

/// No framework fits: what excluded each, and which would run the model without the constraints.
#[derive(Debug, Clone)]
pub struct NoFit {
    /// Why each framework was excluded, and which would fit without the user's constraints.
    pub message: String,
}

/// Applies [`RULES`] to `evidence` under `c` and picks a framework; `path` is named in messages.
/// Fails when every framework is excluded, or when `--framework` names an excluded one.
pub fn decide(path: &Path, c: &Constraints, evidence: Evidence) -> Result<Decision, NoFit> {
    let ctx = Ctx { c, e: &evidence };
    let mut tally = Tally::new();
    let fired: Vec<Fired> = RULES.iter().map(|rule| tally.apply(rule, &ctx)).collect();
    if let Ok(trivial) = evidence.trivial.as_ref() {
        tally
            .reasons
            .entry(F::Custom)
            .or_default()
            .push(format!("evidence: {trivial}"));
    }
    let mut ranking = tally.ranking();
    // --framework forces the choice, still explained; an excluded one is refused.
    let choice = match c.framework {
        Some(f) => {
            if let Some(why) = tally.excluded.get(&f) {
                let past = if f == F::Custom {
                    past_the_budget(path, c, &evidence)
                } else {
                    String::new()
                };
                return Err(NoFit {
                    message: format!(
                        "--framework {} is excluded here: {}{past}",
                        f.as_str(),
                        why.join("; ")
                    ),
                });
            }
            f
        }
        None => match ranking.first().filter(|r| r.verdict != Verdict::Excluded) {
            Some(r) => r.framework,
            None => {
                let past = past_the_budget(path, c, &evidence);
                return Err(tally.no_fit(path, &evidence, &past));
            }
        },
    };
    recommend(&mut ranking, choice);
    Ok(Decision {
        choice,
        ranking,
        constraints: c.clone(),
        evidence,
        rules: fired,
        model: path.display().to_string(),
    })
}

/// What the rules did to the frameworks so far: scores, exclusions, reasons.
struct Tally {
    score: BTreeMap<Framework, f64>,
    /// `RULE-ID: why` for each rule that excluded a framework.
    excluded: BTreeMap<Framework, Vec<String>>,
    /// `RULE-ID (+N): says` for each rule that scored a framework.
    reasons: BTreeMap<Framework, Vec<String>>,
    /// Whether every rule that excluded a framework fired on a constraint of the user's.
    excluded_by_constraint: BTreeMap<Framework, bool>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            score: ALL.iter().map(|f| (*f, 0.0)).collect(),
            excluded: BTreeMap::new(),
            reasons: BTreeMap::new(),
            excluded_by_constraint: BTreeMap::new(),
        }
    }

    /// Applies one rule (when it fires) and says what it did.
    fn apply(&mut self, rule: &Rule, ctx: &Ctx) -> Fired {
        let on = (rule.when)(ctx);
        let effect = if on {
            self.effect(rule, ctx)
        } else {
            String::new()
        };
        Fired {
            id: rule.id,
            says: rule.says,
            fired: on,
            effect,
        }
    }

    /// Applies the effect of a rule that fired; its description for `--explain`.
    fn effect(&mut self, rule: &Rule, ctx: &Ctx) -> String {
        match &rule.effect {
            Effect::Exclude(fs) => {
                for f in *fs {
                    self.exclude(rule, *f, rule.says.to_string());
                }
                format!("excluded {}", names(fs.iter().copied()))
            }
            Effect::Only(keep) => {
                let out: Vec<Framework> =
                    ALL.iter().copied().filter(|f| !keep.contains(f)).collect();
                for f in &out {
                    self.exclude(rule, *f, rule.says.to_string());
                }
                format!("kept only {}", names(keep.iter().copied()))
            }
            Effect::ExcludeBy(by) => {
                let out = by(ctx);
                let effect = if out.is_empty() {
                    "excluded none".into()
                } else {
                    format!("excluded {}", names(out.iter().map(|(f, _)| *f)))
                };
                for (f, why) in out {
                    self.exclude(rule, f, why);
                }
                effect
            }
            Effect::Score(adds) => {
                for (f, s) in *adds {
                    *self.score.get_mut(f).unwrap() += s;
                    self.reasons
                        .entry(*f)
                        .or_default()
                        .push(format!("{} (+{s}): {}", rule.id, rule.says));
                }
                adds.iter()
                    .map(|(f, s)| format!("+{s} {}", f.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    }

    /// Excludes `f` by `rule`, for `why`.
    fn exclude(&mut self, rule: &Rule, f: Framework, why: String) {
        self.excluded
            .entry(f)
            .or_default()
            .push(format!("{}: {why}", rule.id));
        self.excluded_by_constraint.entry(f).or_insert(true);
        if !rule.constraint {
            self.excluded_by_constraint.insert(f, false);
        }
    }

    /// Every framework, the viable ones first, by score; each with its exclusions or its reasons.
    fn ranking(&self) -> Vec<Ranked> {
        let mut ranking: Vec<Ranked> = ALL
            .iter()
            .map(|f| {
                let ex = self.excluded.get(f);
                Ranked {
                    framework: *f,
                    verdict: if ex.is_some() {
                        Verdict::Excluded
                    } else {
                        Verdict::Viable
                    },
                    score: self.score[f],
                    reasons: ex
                        .cloned()
                        .unwrap_or_else(|| self.reasons.get(f).cloned().unwrap_or_default()),
                }
            })
            .collect();
        ranking.sort_by(|a, b| {
            (a.verdict == Verdict::Excluded)
                .cmp(&(b.verdict == Verdict::Excluded))
                .then(b.score.total_cmp(&a.score))
        });
        ranking
    }

    /// Every framework is excluded: the operators the model-fitting ones lack, which would run it
    /// without the user's constraints, and `past` (generated code past its budget, or empty).
    fn no_fit(&self, path: &Path, evidence: &Evidence, past: &str) -> NoFit {
        let ops: Vec<String> = evidence
            .missing_ops
            .iter()
            .filter(|(f, m)| !m.is_empty() && self.excluded_by_constraint.get(f) != Some(&true))
            .map(|(f, m)| {
                format!(
                    "{} lacks {}",
                    f.as_str(),
                    crate::backends::tract::describe_missing(m)
                )
            })
            .collect();
        // Each with what excluded it, so that the user sees which constraint binds.
        let would: Vec<String> = ALL
            .iter()
            .filter(|f| self.excluded_by_constraint.get(f) == Some(&true))
            .map(|f| match self.excluded.get(f).and_then(|w| w.first()) {
                Some(why) if why.starts_with(f.as_str()) => why.clone(),
                Some(why) => format!("{} ({why})", f.as_str()),
                None => f.as_str().to_string(),
            })
            .collect();
        let mut message = format!("no framework fits {}", path.display());
        if !ops.is_empty() {
            message += &format!(": {}", ops.join("; "));
        }
        if would.is_empty() {
            if past.is_empty() {
                message += "; no framework would run it under any constraints";
            }
        } else {
            message += &format!(
                "; without your constraints it would run on: {}",
                would.join("; ")
            );
        }
        message += past;
        NoFit { message }
    }
}

/// When nothing fits and only its parameter budget keeps generated code out: whether `emit`
/// past the budget would meet the constraints (as f32, or with int8 weights when only their
/// size binds), and the command; empty otherwise.
fn past_the_budget(path: &Path, c: &Constraints, e: &Evidence) -> String {
    if !e.over_budget_only {
        return String::new();
    }
    let past = Evidence {
        trivial: Ok(String::new()),
        ..e.clone()
    };
    let ctx = Ctx { c, e: &past };
    let mut tally = Tally::new();
    for rule in RULES {
        tally.apply(rule, &ctx);
    }
    let n = e.parameters;
    // A path that starts with `-` would read as a flag.
    let mut shown = path.display().to_string();
    if shown.starts_with('-') {
        shown.insert_str(0, "./");
    }
    let precision = if c.exact_precision {
        " --precision f64"
    } else {
        ""
    };
    let emit = format!(
        "cargo infer emit {} -o model.rs --max-params {n}{precision}",
        crate::escape::shell_word(&shown)
    );
    let budget = format!(
        "generated code is over its budget ({n} parameters, more than {}, where its safe kernels stop beating tract; its `--simd` kernels stay ahead on x86-64 with AVX2 and FMA)",
        model::trivial::DEFAULT_BUDGET
    );
    match (tally.excluded.get(&F::Custom), int8_fits(c, e)) {
        (None, _) => format!("; {budget} but would fit: `{emit}`"),
        (Some(why), Some(int8)) if why.iter().all(|w| w.starts_with("X-BINARY-SIZE:")) => {
            format!(
                "; {budget}, and with int8 weights (about {}; `emit` reports the error they add) it would fit: `{emit} --weights-dtype int8`",
                crate::output::human_bytes(int8)
            )
        }
        _ => String::new(),
    }
}

/// `ort, tract`: frameworks' names for `--explain`.
fn names(fs: impl Iterator<Item = Framework>) -> String {
    fs.map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
}

/// Marks the chosen framework recommended and puts it first.
fn recommend(ranking: &mut Vec<Ranked>, choice: Framework) {
    for r in ranking.iter_mut() {
        if r.framework == choice {
            r.verdict = Verdict::Recommended;
        }
    }
    if let Some(pos) = ranking.iter().position(|r| r.framework == choice) {
        let chosen = ranking.remove(pos);
        ranking.insert(0, chosen);
    }
}

#[cfg(test)]
mod tests {
    //! The rule table on made-up evidence: no model file, no back end.
    use super::*;

    /// An ONNX CNN every framework's operator list covers, trivial for none, tract loads it.
    fn onnx_cnn() -> Evidence {
        Evidence {
            format: Format::Onnx,
            class: ArchClass::Cnn,
            parameters: 1_000_000,
            missing_ops: ALL.iter().map(|f| (*f, BTreeMap::new())).collect(),
            ort_version_problem: None,
            trivial: Err(model::trivial::NotTrivial(vec![
                "node `conv`: operator Conv".into(),
            ])),
            over_budget_only: false,
            embedding: false,
            fastembed_refusals: Vec::new(),
            probe: BTreeMap::new(),
            tract_load: Some(TractLoad::Loaded {
                ms: 1.0,
                note: String::new(),
            }),
        }
    }

    fn run(c: &Constraints, e: Evidence) -> Result<Decision, NoFit> {
        decide(Path::new("model.onnx"), c, e)
    }

    fn verdict(d: &Decision, f: Framework) -> Verdict {
        d.ranking.iter().find(|r| r.framework == f).unwrap().verdict
    }

    fn fired(d: &Decision, id: &str) -> bool {
        d.ranking
            .iter()
            .any(|r| r.reasons.iter().any(|s| s.starts_with(id)))
    }

    #[test]
    fn wasm_excludes_the_cpp_runtimes_and_picks_pure_rust() {
        let c = Constraints {
            target: Some("wasm32-unknown-unknown".into()),
            target_kind: TargetKind::Wasm,
            ..Default::default()
        };
        let d = run(&c, onnx_cnn()).unwrap();
        for f in [Framework::Ort, Framework::Tch, Framework::Fastembed] {
            assert_eq!(verdict(&d, f), Verdict::Excluded, "{f:?}");
        }
        assert!(
            row(d.choice).wasm && row(d.choice).pure_rust,
            "{:?}",
            d.choice
        );
        assert!(fired(&d, "X-WASM"));
    }

    #[test]
    fn tract_is_excluded_when_it_cannot_load_the_model_and_the_next_choice_is_made() {
        let c = Constraints {
            pure_rust: true,
            ..Default::default()
        };
        let d = run(&c, onnx_cnn()).unwrap();
        assert_eq!(d.choice, Framework::Tract);
        let mut e = onnx_cnn();
        e.tract_load = Some(TractLoad::Failed {
            ms: 1.0,
            reason: "optimise: node `If_0` (If): …".into(),
        });
        let d = run(&c, e).unwrap();
        assert_eq!(verdict(&d, Framework::Tract), Verdict::Excluded);
        assert_ne!(d.choice, Framework::Tract);
        let tract = d
            .ranking
            .iter()
            .find(|r| r.framework == Framework::Tract)
            .unwrap();
        assert!(
            tract
                .reasons
                .iter()
                .any(|r| r.starts_with("X-LOAD") && r.contains("If_0")),
            "{:?}",
            tract.reasons
        );
    }

    #[test]
    fn candle_on_onnx_is_cpu_only_and_weights_keep_its_gpus() {
        let c = Constraints {
            gpu: Gpu::Metal,
            ..Default::default()
        };
        let d = run(&c, onnx_cnn()).unwrap();
        assert_eq!(verdict(&d, Framework::Candle), Verdict::Excluded);
        assert_ne!(d.choice, Framework::Candle);
        let mut e = onnx_cnn();
        e.format = Format::Safetensors;
        let d = run(&c, e).unwrap();
        assert_ne!(verdict(&d, Framework::Candle), Verdict::Excluded);
    }

    #[test]
    fn missing_operators_exclude_only_the_frameworks_that_lack_them() {
        let mut e = onnx_cnn();
        e.missing_ops.insert(
            Framework::Tract,
            BTreeMap::from([("com.microsoft::QLSTM".to_string(), vec!["lstm".to_string()])]),
        );
        e.tract_load = None;
        let d = run(&Constraints::default(), e).unwrap();
        assert_eq!(verdict(&d, Framework::Tract), Verdict::Excluded);
        assert_ne!(verdict(&d, Framework::Ort), Verdict::Excluded);
        assert!(fired(&d, "X-OPS"));
    }

    #[test]
    fn a_trivial_model_under_a_binary_size_bound_gets_generated_code() {
        let mut e = onnx_cnn();
        e.class = ArchClass::Mlp;
        e.parameters = 1_000;
        e.trivial = Ok("MLP 4-16-3".into());
        let c = Constraints {
            max_binary_size: Some(1_000_000),
            ..Default::default()
        };
        let d = run(&c, e).unwrap();
        assert_eq!(d.choice, Framework::Custom);
    }

    /// Past its budget (the model generated only with `--max-params`), generated code is offered
    /// when nothing else fits, or when asked for by name: with int8 weights when only their size
    /// binds, the model's path quoted for the shell (and not read as a flag); in float64 with
    /// `--exact-precision` when those weights fit (there is no int8 then); not when the user's
    /// constraints exclude it anyway.
    #[test]
    fn past_its_budget_generated_code_is_named_when_nothing_fits() {
        let mut e = onnx_cnn();
        e.class = ArchClass::Mlp;
        e.parameters = 530_442;
        e.trivial = Err(model::trivial::NotTrivial(vec![
            "530442 parameters, over the budget of 500000".into(),
        ]));
        e.over_budget_only = true;
        let small = Constraints {
            max_binary_size: Some(1_000_000),
            ..Default::default()
        };
        let no = decide(Path::new("my models/m.onnx"), &small, e.clone()).unwrap_err();
        let want = format!(
            "it would fit: `cargo infer emit {} -o model.rs --max-params 530442 --weights-dtype int8`",
            crate::escape::shell_word("my models/m.onnx")
        );
        assert!(no.message.ends_with(&want), "{}", no.message);
        let exact = Constraints {
            exact_precision: true,
            ..small.clone()
        };
        let no = run(&exact, e.clone()).unwrap_err();
        assert!(!no.message.contains("would fit"), "{}", no.message);
        // Float64 weights that fit (4.2 MB and the code, under 4.6 MB; every framework over it):
        // the command says so.
        let roomy = Constraints {
            max_binary_size: Some(4_600_000),
            ..exact
        };
        let no = decide(Path::new("-m.onnx"), &roomy, e.clone()).unwrap_err();
        assert!(
            no.message.ends_with(
                "but would fit: `cargo infer emit ./-m.onnx -o model.rs --max-params 530442 --precision f64`"
            ),
            "{}",
            no.message
        );
        // Asked for by name: the same line.
        let forced = Constraints {
            framework: Some(F::Custom),
            ..small.clone()
        };
        let no = run(&forced, e.clone()).unwrap_err();
        assert!(
            no.message
                .starts_with("--framework custom is excluded here")
                && no
                    .message
                    .ends_with("--max-params 530442 --weights-dtype int8`"),
            "{}",
            no.message
        );
        let gpu = Constraints {
            gpu: Gpu::Cuda,
            ..small
        };
        let no = run(&gpu, e.clone()).unwrap_err();
        assert!(!no.message.contains("would fit"), "{}", no.message);
        // Not only the budget: nothing said.
        e.over_budget_only = false;
        let no = run(
            &Constraints {
                max_binary_size: Some(1_000_000),
                ..Default::default()
            },
            e,
        )
        .unwrap_err();
        assert!(!no.message.contains("would fit"), "{}", no.message);
    }

    /// Generated code carries its weights: a 512-512-512-10 MLP (2.1 MB of float32 weights) does
    /// not fit 1 MB, though its code would.
    #[test]
    fn the_size_bound_counts_the_weights_generated_code_carries() {
        let mut e = onnx_cnn();
        e.class = ArchClass::Mlp;
        e.parameters = 512 * 512 * 2 + 512 * 10 + 512 * 2 + 10;
        e.trivial = Ok("MLP 512-512-512-10".into());
        let c = Constraints {
            max_binary_size: Some(1_000_000),
            ..Default::default()
        };
        let no = run(&c, e.clone()).unwrap_err();
        assert!(
            no.message.contains("custom") && no.message.contains("weights compiled in"),
            "{}",
            no.message
        );
        // int8 weights (a quarter of the bytes) would fit, and the message says so.
        assert!(
            no.message.contains("with int8 weights") && no.message.contains("which fits"),
            "{}",
            no.message
        );
        let roomy = Constraints {
            max_binary_size: Some(3_000_000),
            ..Default::default()
        };
        assert_eq!(run(&roomy, e).unwrap().choice, Framework::Custom);
    }

    #[test]
    fn constraints_no_framework_meets_are_a_no_fit_naming_them() {
        // TorchScript runs on tch only; WASM excludes tch.
        let mut e = onnx_cnn();
        e.format = Format::Torchscript;
        e.tract_load = None;
        let c = Constraints {
            target: Some("wasm32-unknown-unknown".into()),
            target_kind: TargetKind::Wasm,
            ..Default::default()
        };
        let no = run(&c, e).unwrap_err();
        assert!(no.message.contains("tch"), "{}", no.message);
    }
}
