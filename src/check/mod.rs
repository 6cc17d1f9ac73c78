//! `cargo infer check`: load and run each model on every selected back end, compare every pair of
//! back ends and each against expected outputs, time it, and report.

pub mod bisect;
pub mod cache;
pub mod compare;
pub mod html;
pub mod inputs;
pub mod merge;
pub mod plan;
pub mod report;
pub mod text;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backends::{Backend, BackendError, Device, Named};
use crate::model::{self, Format};
use crate::tensor::HostTensor;
use compare::{Comparison, ToleranceArgs};
use inputs::InputOptions;

/// `--backend`: `auto`, a back end's name from [`crate::backends::REGISTRY`] (built into this
/// build or not: one that is not is a usage error saying how to get it), or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Every back end available here; unavailable ones are reported, not failed.
    Auto,
    /// This back end, required to pass.
    One(&'static str),
    /// Every back end of this build, each required to pass.
    All,
}

impl clap::ValueEnum for BackendChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: std::sync::LazyLock<Vec<BackendChoice>> = std::sync::LazyLock::new(|| {
            std::iter::once(BackendChoice::Auto)
                .chain(
                    crate::backends::REGISTRY
                        .iter()
                        .map(|r| BackendChoice::One(r.name)),
                )
                .chain(std::iter::once(BackendChoice::All))
                .collect()
        });
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            BackendChoice::Auto => PossibleValue::new("auto")
                .help("Every back end available here; unavailable ones are reported, not failed"),
            BackendChoice::One(name) if crate::backends::by_name_only(name) => {
                PossibleValue::new(*name).help(
                    "The model as this framework's generated code, built once into a cached harness (minutes the first time), compared with the auto back ends",
                )
            }
            BackendChoice::One(name) => PossibleValue::new(*name),
            BackendChoice::All => PossibleValue::new("all")
                .help("Every back end of this build but burn, each required to pass"),
        })
    }
}

/// `--bisect`: when to look for the first node where two runs part ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Bisect {
    // No doc comment: it would become `never`'s help text and change `--help`.
    #[allow(missing_docs)]
    Never,
    /// When two runs of ONNX graphs disagree
    #[default]
    OnFailure,
    /// Also when they agree (then every intermediate tensor is shown to agree)
    Always,
}

/// How `check` runs one model: every setting its flags (or its declared entry) give.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `--backend`: which back ends run it and which must pass.
    pub backend: BackendChoice,
    /// `--device`: where the back ends run it.
    pub device: Device,
    /// Data sets: given inputs and expected outputs, or how to make synthetic ones.
    pub inputs: InputOptions,
    /// `--atol`/`--rtol` over the dtypes' default tolerances.
    pub tolerance: ToleranceArgs,
    /// Runs per data set for steady-state timing (the first run is timed apart).
    pub runs: usize,
    /// A twin of the model (TorchScript ↔ ONNX, or another ONNX graph), compared with it.
    pub pair: Option<PathBuf>,
    /// `--bisect`: when to look for the first diverging node.
    pub bisect: Bisect,
    /// `--text`: texts tokenised by the model's tokenizer as its inputs, its output pooled into
    /// embeddings.
    pub texts: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            backend: BackendChoice::Auto,
            device: Device::Cpu,
            inputs: InputOptions::default(),
            tolerance: ToleranceArgs::default(),
            runs: 1,
            pair: None,
            bisect: Bisect::OnFailure,
            texts: Vec::new(),
        }
    }
}

/// What happened to the model on one back end (`status` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendStatus {
    /// Ran, and every comparison it is part of passed.
    Pass,
    /// Ran, but its outputs disagree with another run's or with the expected ones.
    Fail,
    /// Not usable here (its library or device is missing); `message` says why.
    Unavailable,
    /// Cannot run this model: another format, or operators or dtypes it lacks.
    Unsupported,
    /// Loading or running failed (or the back end panicked).
    Error,
}

/// One back end's run of a model (an entry of `backends` in the JSON report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendReport {
    /// The run's label: the back end's name, or `NAME:pair` for its run of the `--pair` twin.
    pub name: String,
    /// How it went.
    pub status: BackendStatus,
    /// Why, in one line, when the status is not `pass`; empty otherwise.
    pub message: String,
    /// Time to load the model for the first data set, milliseconds.
    pub load_ms: f64,
    /// Time of the first run on the first data set, milliseconds.
    pub run_ms: f64,
    /// Median of the runs after the first (`--runs N`), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_median_ms: Option<f64>,
    /// 95th percentile of the runs after the first (`--runs N`), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_p95_ms: Option<f64>,
    /// The back end's version (its library's), when it is available here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Asked for by name (`--backend X` or `all`): then anything but `pass` fails the model.
    pub required: bool,
    /// What the first data set's run produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputFact>,
    /// What loading showed: rewrites it needed, inputs it held fixed, and the like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The back end's whole account of an error `message` sums up in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Text in: the texts it embedded, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<String>,
    /// Text in: one pooled, L2-normalised embedding per text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embeddings: Vec<Vec<f64>>,
}

/// A model's outcome (`status` in JSON); `fail` exits 1, `error` 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Every required back end passed, at least one ran, and every comparison passed.
    Pass,
    /// A required back end did not pass, a comparison failed, or no back end could run it.
    Fail,
    /// It could not be checked at all: unreadable, or no data set could be made.
    Error,
}

/// One model's check (an entry of `models` in the JSON report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    /// The model as reports name it (see [`plan::Job::name`]).
    pub path: String,
    /// Its outcome.
    pub status: ModelStatus,
    /// Why, in one line, when the status is not `pass`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Every back end selected for it, in the order they ran.
    pub backends: Vec<BackendReport>,
    /// Every comparison: pairs of runs and runs against expected outputs, per output and data set.
    pub comparisons: Vec<Comparison>,
    /// Names of the data sets it ran on (`test_data_set_0`, `synthetic`, `given`).
    pub data_sets: Vec<String>,
    /// What the check noted about the model: how inputs were made, cache and bisect notes.
    pub notes: Vec<String>,
    /// `--pair`: the model's twin in another format, run on its own back ends with the same inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// Served from the content cache: this is the report of an earlier run with the same key
    /// (timings are that run's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Text in: what the embeddings are (width, pooling, the paraphrase check, fastembed's view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<text::EmbeddingFacts>,
    /// Its place in the whole run, partitions included (`--report-json` files carry it, so that
    /// `--merge` restores one run's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
}

impl ModelReport {
    /// A report of a model nothing was done with yet (an error until something is).
    pub fn of(path: &str) -> ModelReport {
        ModelReport {
            path: path.to_string(),
            status: ModelStatus::Error,
            message: String::new(),
            backends: Vec::new(),
            comparisons: Vec::new(),
            data_sets: Vec::new(),
            notes: Vec::new(),
            pair: None,
            cached: false,
            embedding: None,
            order: None,
        }
    }
}

/// Counts of models by status, and the memory the run took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Models that passed.
    pub passed: usize,
    /// Models that failed (exit code 1).
    pub failed: usize,
    /// Models that could not be checked (exit code 2).
    pub errors: usize,
    /// Peak resident memory of the process, MB (the largest of partitions' when merged).
    pub peak_rss_mb: f64,
}

/// The whole `check` report: `--format json`, `--report-json` and what `--merge` reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// One report per model, in the run's order.
    pub models: Vec<ModelReport>,
    /// The counts over them.
    pub summary: Summary,
    /// `--partition`: which part of the whole run this is (`--merge` checks that every part is
    /// there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionFacts>,
}

/// A partition's place in the whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionFacts {
    /// `count:K/N` or `hash:K/N`.
    pub partition: String,
    /// Models in the whole run, before partitioning.
    pub total: usize,
}

impl Report {
    /// Exit code for this report: 2 if any model errored, else 1 if any failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.summary.errors > 0 {
            crate::error::exit::USAGE
        } else if self.summary.failed > 0 {
            crate::error::exit::CHECK_FAILED
        } else {
            crate::error::exit::OK
        }
    }
}

/// An output as a back end produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFact {
    /// The output's name.
    pub name: String,
    /// Its dtype as ONNX names it (`float32`).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl BackendReport {
    fn new(name: &str, required: bool) -> BackendReport {
        BackendReport {
            name: name.to_string(),
            status: BackendStatus::Pass,
            message: String::new(),
            load_ms: 0.0,
            run_ms: 0.0,
            steady_median_ms: None,
            steady_p95_ms: None,
            version: None,
            required,
            outputs: Vec::new(),
            notes: Vec::new(),
            detail: None,
            texts: Vec::new(),
            embeddings: Vec::new(),
        }
    }
}

/// Why no back end of this build runs a model of this kind, and what would.
fn no_backend_for(info: &model::ModelInfo) -> String {
    let needs: Vec<String> = crate::backends::REGISTRY
        .iter()
        .filter(|r| r.formats.contains(&info.format))
        .map(|r| match r.feature {
            Some(feat) => format!("{} (rebuild with `--features {feat}`)", r.name),
            None => r.name.to_string(),
        })
        .collect();
    if !needs.is_empty() {
        return format!(
            "a {} model runs on {}, which this build lacks",
            info.format.as_str(),
            needs.join(" or ")
        );
    }
    match info.format {
        Format::Pytorch => "a PyTorch state_dict holds weights without the code that uses them: nothing can run it as is; export TorchScript or ONNX to check it, or `cargo infer convert` it to safetensors".into(),
        f => format!(
            "a {} file holds weights only; checking it needs the candle back end, which this build lacks",
            f.as_str()
        ),
    }
}

/// Which of this build's back ends to run, and whether each is required.
pub fn select(
    all: &[Box<dyn Backend>],
    choice: BackendChoice,
) -> Result<Vec<(&dyn Backend, bool)>, crate::backends::Unavailable> {
    let unasked = || {
        all.iter()
            .map(|b| b.as_ref())
            .filter(|b| !crate::backends::by_name_only(b.name()))
    };
    Ok(match choice {
        BackendChoice::Auto => unasked().map(|b| (b, false)).collect(),
        BackendChoice::All => unasked().map(|b| (b, true)).collect(),
        BackendChoice::One(name) => match all.iter().find(|b| b.name() == name) {
            // A back end run by name only (burn) is checked against what the others compute:
            // they come along, not required.
            Some(b) if crate::backends::by_name_only(name) => std::iter::once((b.as_ref(), true))
                .chain(unasked().map(|b| (b, false)))
                .collect(),
            Some(b) => vec![(b.as_ref(), true)],
            None => return Err(crate::backends::lacking(name)),
        },
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Whether a model loaded for `loaded_for`, holding the inputs `fixed` as constants, runs `set`:
/// the same dtypes and shapes (symbolic dimensions were fixed by them), and the same values of
/// the inputs made constants (a data set with another sample rate needs its own graph).
fn runs_as_loaded(loaded_for: &[Named], fixed: &[usize], set: &[Named]) -> bool {
    loaded_for.len() == set.len()
        && loaded_for
            .iter()
            .zip(set)
            .all(|((_, a), (_, b))| a.dtype == b.dtype && a.shape == b.shape)
        && fixed.iter().all(|&k| loaded_for[k].1.data == set[k].1.data)
}

/// Checks one model.
pub fn check_model(
    path: &Path,
    backends: &[(&dyn Backend, bool)],
    opts: &CheckOptions,
) -> ModelReport {
    let mut report = ModelReport::of(&path.display().to_string());
    let plan = match ModelPlan::new(path, backends, opts, &mut report) {
        Ok(plan) => plan,
        Err(Stopped { status, message }) => {
            report.status = status;
            report.message = message;
            return report;
        }
    };
    let runs = execute(&plan, opts, &mut report);
    compare_runs(&plan, &runs, opts, &mut report);
    if let Some(t) = &plan.text {
        embed_runs(t, &runs, opts, &mut report);
    }
    blame_backends(&mut report, &plan.sets);
    if opts.bisect != Bisect::Never {
        locate_divergence(&mut report, &runs.ran_on, &plan.sets, opts);
    }
    (report.status, report.message) = verdict(&report);
    report
}

/// Why a model's check ended before any back end ran: the model's status and the message.
struct Stopped {
    status: ModelStatus,
    message: String,
}

/// A data set that cannot be made: a data file names itself; a flag's or the model's message
/// is the model's.
impl From<inputs::InputError> for Stopped {
    fn from(e: inputs::InputError) -> Stopped {
        Stopped::from(e.to_string())
    }
}

impl From<String> for Stopped {
    fn from(message: String) -> Stopped {
        Stopped {
            status: ModelStatus::Error,
            message,
        }
    }
}

/// Which file a run loads: the model, or its `--pair` twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Model,
    Twin,
}

/// The `--pair` twin: its path and what it is.
type TwinFile<'p> = (&'p Path, model::ModelInfo);

/// One run the check makes: a back end on one file, under the label reports give it.
struct Unit<'p> {
    label: String,
    backend: &'p dyn Backend,
    required: bool,
    file: File,
}

/// What one model's check runs, decided before anything runs (the plan step): the model and its
/// twin, which back end runs which file, and the data sets they all run.
struct ModelPlan<'p> {
    path: &'p Path,
    info: model::ModelInfo,
    pair: Option<TwinFile<'p>>,
    units: Vec<Unit<'p>>,
    /// The signature the inputs were made for (the ONNX twin's when the model declares none).
    sig_info: model::ModelInfo,
    sets: Vec<inputs::DataSet>,
    /// Text in: how the outputs become embeddings.
    text: Option<TextPlan>,
}

/// A check of text in: the texts, their attention mask (which pooling follows), the pooling, the
/// reference embeddings, what fastembed would refuse.
struct TextPlan {
    texts: Vec<String>,
    mask: Vec<u32>,
    pooling: text::Pooling,
    expected: Option<HostTensor>,
    /// `None` when the model is not ONNX (fastembed runs ONNX only).
    fastembed_refusals: Option<Vec<String>>,
}

impl<'p> ModelPlan<'p> {
    /// Reads the model and its twin, vets them, assigns the back ends and makes the data sets.
    /// Notes and the back ends that cannot run the model go to `report` on the way, even when the
    /// check stops.
    fn new(
        path: &'p Path,
        backends: &[(&'p dyn Backend, bool)],
        opts: &'p CheckOptions,
        report: &mut ModelReport,
    ) -> Result<ModelPlan<'p>, Stopped> {
        let (info, pair) = read_files(path, opts)?;
        report.pair = opts.pair.as_ref().map(|p| p.display().to_string());
        vet_pair(&info, pair.as_ref())?;
        vet_safety(path, &info, pair.as_ref(), &mut report.notes)?;
        if info.format == Format::Gguf && info.tensor_count == 0 {
            return Err(String::from(
                "a vocabulary-only GGUF (no tensors): there is no model in it to run",
            )
            .into());
        }
        let units = assign_units(backends, &info, pair.as_ref(), &mut report.backends);
        if units.is_empty() && report.backends.is_empty() {
            return Err(no_backend_for(&info).into());
        }
        let (sig_info, sets, text) = if takes_text(path, &info, opts) {
            text_data_set(path, &info, pair.as_ref(), opts, report)?
        } else {
            let (sig_info, sets) = make_data_sets(path, &info, pair.as_ref(), opts, report)?;
            (sig_info, sets, None)
        };
        Ok(ModelPlan {
            path,
            info,
            pair,
            units,
            sig_info,
            sets,
            text,
        })
    }

    /// The path and facts of the file a run loads.
    fn file(&self, file: File) -> (&'p Path, &model::ModelInfo) {
        match (file, &self.pair) {
            (File::Twin, Some((p, pi))) => (p, pi),
            _ => (self.path, &self.info),
        }
    }
}

/// The ONNX twin whose inputs stand for the model's, when the model declares none of its own (a
/// TorchScript module, weights).
fn declaring_twin<'a, 'p>(
    info: &model::ModelInfo,
    pair: Option<&'a TwinFile<'p>>,
) -> Option<&'a TwinFile<'p>> {
    pair.filter(|(_, pi)| info.format != Format::Onnx && pi.format == Format::Onnx)
}

/// The data sets every run takes, and the signature they were made for. The inputs come from the
/// file that declares them: an ONNX twin declares what a TorchScript module or a weights file does
/// not.
fn make_data_sets(
    path: &Path,
    info: &model::ModelInfo,
    pair: Option<&TwinFile>,
    opts: &CheckOptions,
    report: &mut ModelReport,
) -> Result<(model::ModelInfo, Vec<inputs::DataSet>), inputs::InputError> {
    let (sig_path, declared) = match declaring_twin(info, pair) {
        Some((p, pi)) => (*p, Some(pi)),
        None => (path, None),
    };
    let (sig_info, input_opts) = inputs::signature(info, declared, &opts.inputs)?;
    let (sets, notes) = inputs::data_sets(sig_path, &sig_info, &input_opts)?;
    report.notes.extend(notes);
    report.data_sets = sets.iter().map(|s| s.name.clone()).collect();
    Ok((sig_info, sets))
}

/// Whether the check feeds text: `--text` given, or a sentence encoder with a tokenizer beside it
/// and no inputs given (the fastembed path, on [`text::DEFAULT_TEXTS`]) — unless `--expected`
/// holds the model's outputs rather than reference embeddings (a tensor `embeddings`).
fn takes_text(path: &Path, info: &model::ModelInfo, opts: &CheckOptions) -> bool {
    let holds_embeddings = |p: &PathBuf| {
        inputs::read_tensor_file(p)
            .is_ok_and(|t| t.iter().any(|(n, _)| n.as_deref() == Some("embeddings")))
    };
    !opts.texts.is_empty()
        || (opts.inputs.given.is_empty()
            && opts.inputs.expected.as_ref().is_none_or(holds_embeddings)
            && opts.inputs.expected_files.is_empty()
            && opts.pair.is_none()
            && text::is_text_encoder(path, info)
            && !path.with_file_name("test_data_set_0").is_dir())
}

/// The one data set of a text check: the texts tokenised by the model's tokenizer, as the inputs
/// the model (or its ONNX twin) declares; and how its outputs become embeddings.
fn text_data_set(
    path: &Path,
    info: &model::ModelInfo,
    pair: Option<&TwinFile>,
    opts: &CheckOptions,
    report: &mut ModelReport,
) -> Result<(model::ModelInfo, Vec<inputs::DataSet>, Option<TextPlan>), Stopped> {
    let usage = |m: &str| Stopped::from(inputs::InputError::Usage(m.into()));
    if !opts.inputs.given.is_empty() {
        return Err(usage("--text and --input both give the inputs: give one"));
    }
    if !opts.inputs.expected_files.is_empty() {
        return Err(usage("with --text, expected = \"FILE\" holds the reference embeddings, not a table of outputs"));
    }
    let texts: Vec<String> = if opts.texts.is_empty() {
        text::DEFAULT_TEXTS.iter().map(|t| t.to_string()).collect()
    } else {
        opts.texts.clone()
    };
    let declared = declaring_twin(info, pair).map(|(_, pi)| pi);
    let (sig_info, _) = inputs::signature(info, declared, &opts.inputs)?;
    let tok = text::tokenizer(path)?;
    let pooling = text::pooling(path).map_err(inputs::InputError::from)?;
    let enc = tok.encode(&texts)?;
    let inputs = text::text_inputs(&sig_info.inputs, sig_info.format, &enc)?;
    let expected = match &opts.inputs.expected {
        None => None,
        Some(p) => Some(reference_embeddings(p)?),
    };
    report.notes.push(format!(
        "{} text(s){}; {}; pooled by {} ({}), L2-normalised as fastembed does",
        texts.len(),
        if opts.texts.is_empty() {
            " (built in: a sentence, its paraphrase, an unrelated one)"
        } else {
            ""
        },
        tok.settings,
        pooling
            .modes
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join("+"),
        pooling.source
    ));
    let mut refusals = tok.fastembed_refusals.clone();
    refusals.extend(text::fastembed_refusals(&sig_info, &pooling));
    report.data_sets = vec!["text".into()];
    let set = inputs::DataSet {
        name: "text".into(),
        inputs,
        expected: None,
    };
    let plan = TextPlan {
        texts,
        mask: enc.mask,
        pooling,
        expected,
        // About the model's own file: a weights directory paired with its ONNX export is not
        // what fastembed would load.
        fastembed_refusals: (info.format == Format::Onnx).then_some(refusals),
    };
    Ok((sig_info, vec![set], Some(plan)))
}

/// `--expected` of a text check: the reference embeddings, `[texts, width]`, named `embeddings`
/// (or the one tensor of an `.npy`).
fn reference_embeddings(p: &Path) -> Result<HostTensor, Stopped> {
    let tensors = inputs::read_tensor_file(p).map_err(inputs::InputError::from)?;
    let found = match &tensors[..] {
        [(None, t)] => Some(t.clone()),
        _ => tensors
            .iter()
            .find(|(n, _)| n.as_deref() == Some("embeddings"))
            .map(|(_, t)| t.clone()),
    };
    found.filter(|t| t.shape.len() == 2).ok_or_else(|| {
        Stopped::from(inputs::InputError::from(crate::error::FileError::new(
            p,
            "with --text, --expected holds the reference embeddings: a tensor `embeddings` of shape [texts, width]",
        )))
    })
}

/// The embed step of a text check: each run's output pooled into embeddings (on its back end's
/// report), judged finite and normalised, compared between back ends and with the reference.
fn embed_runs(t: &TextPlan, runs: &Runs, opts: &CheckOptions, report: &mut ModelReport) {
    let rows = t.texts.len();
    let mut pooled: Vec<(String, Vec<Named>)> = Vec::new();
    let mut facts: Option<text::EmbeddingFacts> = None;
    for (label, outs) in &runs.results {
        let Some(b) = report.backends.iter_mut().find(|b| &b.name == label) else {
            continue;
        };
        let made = outs
            .first()
            .ok_or_else(|| "no outputs".to_string())
            .and_then(|o| text::chosen_output(o))
            .and_then(|o| {
                if o.0 == "logits" {
                    return Err("its output is `logits`: text embeddings come from an encoder's hidden states".into());
                }
                let e = text::embeddings(o, &t.mask, rows, &t.pooling.modes)?;
                let dim = e.first().map_or(0, Vec::len);
                match t.pooling.width {
                    Some(w) if o.1.shape.len() == 3 && o.1.shape[2] != w => Err(format!(
                        "output `{}` is {} wide where 1_Pooling/config.json says {w}",
                        o.0, o.1.shape[2]
                    )),
                    _ => Ok((o.0.clone(), e, dim)),
                }
            });
        match made {
            Ok((output, e, dim)) => {
                let flat: Vec<f32> = e.iter().flatten().map(|v| *v as f32).collect();
                pooled.push((
                    label.clone(),
                    vec![(
                        "embeddings".into(),
                        HostTensor::from_f32(vec![rows, dim], &flat),
                    )],
                ));
                facts.get_or_insert_with(|| text::EmbeddingFacts {
                    dim,
                    output,
                    pooling: t.pooling.modes.clone(),
                    pooling_from: t.pooling.source.clone(),
                    normalized: true,
                    paraphrase: text::Paraphrase::of(&e),
                    fastembed_accepts: t.fastembed_refusals.as_ref().map(Vec::is_empty),
                    fastembed_refusals: t.fastembed_refusals.clone().unwrap_or_default(),
                });
                b.texts = t.texts.clone();
                b.embeddings = e;
            }
            Err(why) => {
                b.status = BackendStatus::Fail;
                b.message = why;
            }
        }
    }
    for i in 0..pooled.len() {
        for j in i + 1..pooled.len() {
            compare_sets(
                &mut report.comparisons,
                (&pooled[i].0, &pooled[i].1),
                (&pooled[j].0, &pooled[j].1),
                "text",
                &opts.tolerance,
            );
        }
        if let Some(want) = &t.expected {
            compare_sets(
                &mut report.comparisons,
                (&pooled[i].0, &pooled[i].1),
                ("expected", &[("embeddings".to_string(), want.clone())]),
                "text",
                &opts.tolerance,
            );
        }
    }
    report.embedding = facts;
}

/// Reads the model and its `--pair` twin.
fn read_files<'p>(
    path: &Path,
    opts: &'p CheckOptions,
) -> Result<(model::ModelInfo, Option<TwinFile<'p>>), String> {
    let info = model::inspect(path).map_err(|e| e.message)?;
    let pair = match &opts.pair {
        None => None,
        Some(p) => Some((p.as_path(), model::inspect(p).map_err(|e| e.message)?)),
    };
    Ok((info, pair))
}

/// Whether a twin can be compared with the model: another format, or another ONNX graph that
/// takes inputs of the same kinds (the two run on the same data).
fn vet_pair(info: &model::ModelInfo, pair: Option<&TwinFile>) -> Result<(), String> {
    let Some((p, pi)) = pair else { return Ok(()) };
    if pi.format == info.format && info.format != Format::Onnx {
        return Err(format!(
            "--pair {}: both files are {}; --pair compares a model with its twin in another format (TorchScript or weights with ONNX), or two ONNX graphs",
            p.display(),
            info.format.as_str()
        ));
    }
    if pi.format != info.format {
        return Ok(());
    }
    let kinds = |i: &model::ModelInfo| {
        i.inputs
            .iter()
            .map(|v| format!("{}: {}[rank {}]", v.name, v.dtype, v.shape.len()))
            .collect::<Vec<_>>()
    };
    let same = info.inputs.len() == pi.inputs.len()
        && info
            .inputs
            .iter()
            .zip(&pi.inputs)
            .all(|(a, b)| a.dtype == b.dtype && a.shape.len() == b.shape.len());
    if !same {
        return Err(format!(
            "--pair {}: its inputs ({}) are not the model's ({}); a twin takes the same inputs",
            p.display(),
            kinds(pi).join(", "),
            kinds(info).join(", ")
        ));
    }
    Ok(())
}

/// A pickle that would run code when Python loads it is a failed check, whatever else holds; one
/// that names code no tensor rebuild needs is a note.
fn vet_safety(
    path: &Path,
    info: &model::ModelInfo,
    pair: Option<&TwinFile>,
    notes: &mut Vec<String>,
) -> Result<(), Stopped> {
    for (p, i) in std::iter::once((path, info)).chain(pair.map(|(p, i)| (*p, i))) {
        if i.safety.verdict == model::Verdict::Unsafe {
            return Err(Stopped {
                status: ModelStatus::Fail,
                message: format!(
                    "{}: unsafe pickle, not loaded: {}",
                    p.display(),
                    i.safety.findings.join("; ")
                ),
            });
        }
        if i.safety.risk == model::Risk::Suspicious {
            notes.push(format!(
                "{}: the pickle names code that is not a known tensor-rebuild function (Python would import it): {}",
                p.display(),
                i.safety.findings.join("; ")
            ));
        }
    }
    Ok(())
}

/// Which back end runs which file: each runs the files of its formats; a required one that runs
/// neither is reported unsupported in `unsupported`. Two ONNX graphs: the model on every back end,
/// its twin on one (see [`twin_unit`]).
fn assign_units<'p>(
    backends: &[(&'p dyn Backend, bool)],
    info: &model::ModelInfo,
    pair: Option<&TwinFile>,
    unsupported: &mut Vec<BackendReport>,
) -> Vec<Unit<'p>> {
    let onnx_pair = pair.is_some_and(|(_, pi)| pi.format == info.format);
    let mut units = Vec::new();
    for &(backend, required) in backends {
        let fmts = backend.formats();
        let unit = |file| Unit {
            label: backend.name().to_string(),
            backend,
            required,
            file,
        };
        if fmts.contains(&info.format) {
            units.push(unit(File::Model));
        } else if pair.is_some_and(|(_, pi)| fmts.contains(&pi.format) && !onnx_pair) {
            units.push(unit(File::Twin));
        } else if required {
            unsupported.push(BackendReport {
                status: BackendStatus::Unsupported,
                message: format!(
                    "{} runs {} models, not {}",
                    backend.name(),
                    fmts.iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    info.format.as_str()
                ),
                ..BackendReport::new(backend.name(), required)
            });
        }
    }
    if onnx_pair {
        if let Some(twin) = twin_unit(&units) {
            units.push(twin);
        }
    }
    units
}

/// The run of an ONNX twin: on one back end that runs ONNX and is available (ONNX Runtime when it
/// is here), as `NAME:pair`.
fn twin_unit<'p>(units: &[Unit<'p>]) -> Option<Unit<'p>> {
    let runs_onnx = |u: &&Unit| u.backend.formats().contains(&Format::Onnx);
    units
        .iter()
        .filter(runs_onnx)
        .find(|u| u.backend.name() == "ort" && u.backend.availability().is_ok())
        .or_else(|| {
            units
                .iter()
                .filter(runs_onnx)
                .find(|u| u.backend.availability().is_ok())
        })
        .map(|u| Unit {
            label: format!("{}:pair", u.backend.name()),
            backend: u.backend,
            required: u.required,
            file: File::Twin,
        })
}

/// What the back ends produced (the execute step).
struct Runs<'p> {
    /// Outputs per run, per data set.
    results: Vec<(String, Vec<Vec<Named>>)>,
    /// Graphs a back end prepared for itself, by back end (first data set's).
    prepared_by: Vec<(String, Vec<u8>)>,
    ort: Option<&'p dyn Backend>,
    /// Which run is which (for bisect): label, back end, file.
    ran_on: Vec<(String, &'p dyn Backend, &'p Path)>,
}

/// Runs every unit of the plan, each back end's report going to `report`.
fn execute<'p>(plan: &ModelPlan<'p>, opts: &CheckOptions, report: &mut ModelReport) -> Runs<'p> {
    let mut runs = Runs {
        results: Vec::new(),
        prepared_by: Vec::new(),
        ort: None,
        ran_on: Vec::new(),
    };
    for unit in &plan.units {
        if unit.backend.name() == "ort" {
            runs.ort = Some(unit.backend);
        }
        report
            .backends
            .push(execute_unit(plan, unit, opts, &mut runs));
    }
    runs
}

/// Loads and runs one unit on every data set; what it produced goes to `runs`, its errors
/// (unavailable, unsupported, failed, panicked) to the back end's report it returns.
fn execute_unit<'p>(
    plan: &ModelPlan<'p>,
    unit: &Unit<'p>,
    opts: &CheckOptions,
    runs: &mut Runs<'p>,
) -> BackendReport {
    let backend = unit.backend;
    let (unit_path, unit_info) = plan.file(unit.file);
    let mut prepared = None;
    let mut b = BackendReport::new(&unit.label, unit.required);
    // A TorchScript module names no outputs: it gets the names of its ONNX twin.
    let named;
    let unit_info = if unit_info.format == Format::Torchscript && plan.pair.is_some() {
        named = model::ModelInfo {
            outputs: plan.sig_info.outputs.clone(),
            ..unit_info.clone()
        };
        &named
    } else {
        unit_info
    };
    let version = match backend.availability() {
        Err(why) => {
            b.status = BackendStatus::Unavailable;
            b.message = why.0;
            return b;
        }
        Ok(version) => version,
    };
    b.version = Some(version);
    // A back end that panics on a model (a bug of that back end) is reported as an error of that
    // back end; the other back ends and models go on.
    let ran = crate::backends::guarded(backend.name(), || {
        run_backend(
            backend,
            unit_path,
            unit_info,
            &plan.sets,
            opts,
            &mut b,
            &mut prepared,
        )
    })
    .unwrap_or_else(|panicked| Err(BackendError::from(panicked)));
    if let Some(p) = prepared.take() {
        runs.prepared_by.push((b.name.clone(), p));
    }
    match ran {
        Ok(mut outs) => {
            // A twin's outputs go by the model's names, by position.
            if unit_path != plan.path && unit_info.format == plan.info.format {
                for set in outs.iter_mut() {
                    for ((name, _), o) in set.iter_mut().zip(&plan.info.outputs) {
                        *name = o.name.clone();
                    }
                }
            }
            runs.results.push((b.name.clone(), outs));
            runs.ran_on.push((b.name.clone(), backend, unit_path));
        }
        Err(BackendError::Unsupported(m)) => {
            b.status = BackendStatus::Unsupported;
            b.message = m;
        }
        Err(BackendError::Failed(m)) => {
            b.status = BackendStatus::Error;
            b.message = m;
        }
        Err(BackendError::Explained { message, detail }) => {
            b.status = BackendStatus::Error;
            b.message = message;
            b.detail = Some(detail);
        }
    }
    b
}

/// The compare step: each prepared graph against the original on ONNX Runtime, every pair of runs,
/// then each run against the expected outputs.
fn compare_runs(plan: &ModelPlan, runs: &Runs, opts: &CheckOptions, report: &mut ModelReport) {
    compare_prepared(plan, runs, opts, report);
    let results = &runs.results;
    for (si, set) in plan.sets.iter().enumerate() {
        for i in 0..results.len() {
            for j in i + 1..results.len() {
                let (ln, lo) = (&results[i].0, &results[i].1[si]);
                let (rn, ro) = (&results[j].0, &results[j].1[si]);
                compare_sets(
                    &mut report.comparisons,
                    (ln, lo),
                    (rn, ro),
                    &set.name,
                    &opts.tolerance,
                );
            }
        }
        if let Some(expected) = &set.expected {
            for (name, outs) in results {
                compare_sets(
                    &mut report.comparisons,
                    (name, &outs[si]),
                    ("expected", expected),
                    &set.name,
                    &opts.tolerance,
                );
            }
        }
    }
}

/// A graph prepared for a back end is the model only if it computes what the model does: run on
/// ONNX Runtime, it must agree with ONNX Runtime on the original.
fn compare_prepared(plan: &ModelPlan, runs: &Runs, opts: &CheckOptions, report: &mut ModelReport) {
    let (Some(ort), Some(ort_outs)) = (
        runs.ort,
        runs.results
            .iter()
            .find(|(n, _)| n == "ort")
            .map(|(_, o)| o.clone()),
    ) else {
        return;
    };
    for (who, bytes) in &runs.prepared_by {
        let label = format!("ort on {who}'s prepared graph");
        match prepared_on(ort, bytes, &plan.sets) {
            Ok(outs) => {
                for (si, set) in plan.sets.iter().enumerate().take(outs.len()) {
                    compare_sets(
                        &mut report.comparisons,
                        (&label, &outs[si]),
                        ("ort", &ort_outs[si]),
                        &set.name,
                        &opts.tolerance,
                    );
                }
            }
            Err(e) => report.notes.push(format!("{label}: not run ({e})")),
        }
    }
}

/// Fails the back ends a failed comparison blames. With expected outputs, a back end is judged by
/// them alone (a disagreement between two back ends then fails the model, not both back ends);
/// without, both sides of a disagreement fail.
fn blame_backends(report: &mut ModelReport, sets: &[inputs::DataSet]) {
    // Expected outputs of the data set, or reference embeddings of a text check: anything the
    // runs were compared with as `expected`.
    let has_expected = |set: &str| {
        sets.iter().any(|s| s.name == set && s.expected.is_some())
            || report
                .comparisons
                .iter()
                .any(|c| c.data_set == set && c.right == "expected")
    };
    // A back end that agrees with another on this output is not the odd one out: with three or
    // more, the one that disagrees with all the others is blamed alone.
    let agrees = |who: &String, c: &Comparison| {
        report.comparisons.iter().any(|o| {
            o.pass
                && o.output == c.output
                && o.data_set == c.data_set
                && o.right != "expected"
                && (&o.left == who || &o.right == who)
        })
    };
    let mut blame: Vec<(String, usize)> = Vec::new();
    for (k, c) in report
        .comparisons
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.pass)
    {
        let sides: Vec<&String> = if c.right == "expected" {
            vec![&c.left]
        } else if has_expected(&c.data_set) {
            vec![]
        } else {
            let odd: Vec<&String> = [&c.left, &c.right]
                .into_iter()
                .filter(|s| !agrees(s, c))
                .collect();
            if odd.is_empty() {
                vec![&c.left, &c.right]
            } else {
                odd
            }
        };
        blame.extend(sides.into_iter().map(|s| (s.clone(), k)));
    }
    for (side, k) in blame {
        let c = &report.comparisons[k];
        let side = &side;
        {
            let other = if side == &c.left { &c.right } else { &c.left };
            let message = format!(
                "output `{}` disagrees with {other} ({}): {}",
                c.output,
                c.data_set,
                c.summary()
            );
            if let Some(b) = report
                .backends
                .iter_mut()
                .find(|b| &b.name == side && b.status == BackendStatus::Pass)
            {
                b.status = BackendStatus::Fail;
                b.message = message;
            }
        }
    }
}

/// The verdict step: the model's status and its one-line reason, from its back ends and
/// comparisons.
fn verdict(report: &ModelReport) -> (ModelStatus, String) {
    let failing_required: Vec<&BackendReport> = report
        .backends
        .iter()
        .filter(|b| b.required && b.status != BackendStatus::Pass)
        .collect();
    let passed = report
        .backends
        .iter()
        .filter(|b| b.status == BackendStatus::Pass)
        .count();
    // The failure bisect explained, if any, is the one to name.
    let bad_comparison = report
        .comparisons
        .iter()
        .find(|c| !c.pass && c.divergence.is_some())
        .or_else(|| report.comparisons.iter().find(|c| !c.pass));
    if let Some(b) = failing_required.first() {
        (
            ModelStatus::Fail,
            format!("{} {}: {}", b.name, status_word(b.status), b.message),
        )
    } else if let Some(c) = bad_comparison {
        (
            ModelStatus::Fail,
            format!(
                "{} vs {} on `{}` ({}): {}{}",
                c.left,
                c.right,
                c.output,
                c.data_set,
                c.summary(),
                c.divergence
                    .as_ref()
                    .map(|d| format!("; {}", d.one_line()))
                    .unwrap_or_default()
            ),
        )
    } else if let Some(b) = report
        .backends
        .iter()
        .find(|b| b.status == BackendStatus::Fail)
    {
        // A run that produced what cannot be right (text in: an embedding that is not finite).
        (
            ModelStatus::Fail,
            format!("{} {}: {}", b.name, status_word(b.status), b.message),
        )
    } else if passed == 0 {
        let why: Vec<String> = report
            .backends
            .iter()
            .map(|b| format!("{} {}", b.name, status_word(b.status)))
            .collect();
        (
            ModelStatus::Fail,
            format!("no back end could run it ({})", why.join(", ")),
        )
    } else {
        (ModelStatus::Pass, String::new())
    }
}

/// `--bisect`: for the first failing comparison of two runs (with `always`, the first comparison
/// of two runs), where they part ways; a note when they cannot be bisected or never part.
fn locate_divergence(
    report: &mut ModelReport,
    ran: &[(String, &dyn Backend, &Path)],
    sets: &[inputs::DataSet],
    opts: &CheckOptions,
) {
    let run = |label: &str| ran.iter().find(|(l, ..)| l == label);
    let two_runs = |c: &Comparison| run(&c.left).is_some() && run(&c.right).is_some();
    // A model against its twin on one back end first: then only the graphs differ.
    let one_backend = |c: &Comparison| match (run(&c.left), run(&c.right)) {
        (Some(l), Some(r)) => l.1.name() == r.1.name(),
        _ => false,
    };
    let failing = |c: &&Comparison| !c.pass && two_runs(c);
    let target = report
        .comparisons
        .iter()
        .position(|c| failing(&c) && one_backend(c))
        .or_else(|| report.comparisons.iter().position(|c| failing(&c)))
        .or_else(|| {
            (opts.bisect == Bisect::Always)
                .then(|| report.comparisons.iter().position(two_runs))
                .flatten()
        });
    let Some(i) = target else { return };
    let c = &report.comparisons[i];
    let (Some(l), Some(r)) = (run(&c.left), run(&c.right)) else {
        return;
    };
    for (label, backend, _) in [l, r] {
        if !backend.formats().contains(&Format::Onnx) {
            report.notes.push(format!(
                "bisect is not available for {label}: it runs {} models, whose intermediate tensors cannot be exposed; only ONNX graphs are bisected",
                backend.formats().iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
            ));
            return;
        }
    }
    let Some(set) = sets.iter().find(|s| s.name == c.data_set) else {
        return;
    };
    let failing = (!c.pass).then(|| c.output.clone());
    fn side<'a>(
        (label, backend, model): &'a (String, &'a dyn Backend, &'a Path),
    ) -> bisect::Side<'a> {
        bisect::Side {
            label: label.as_str(),
            backend: *backend,
            model,
        }
    }
    let (left, right) = (c.left.clone(), c.right.clone());
    match bisect::bisect(
        side(l),
        side(r),
        &set.inputs,
        failing.as_deref(),
        &set.name,
        &opts.tolerance,
    ) {
        Ok(bisect::Found::Divergence(d)) => {
            let said = d.one_line();
            for b in report
                .backends
                .iter_mut()
                .filter(|b| b.status == BackendStatus::Fail && (b.name == left || b.name == right))
            {
                b.message = format!("{}; {said}", b.message);
            }
            report.comparisons[i].divergence = Some(d);
        }
        Ok(bisect::Found::AllAgree { tensors, ms }) => report.notes.push(format!(
            "bisect: all {tensors} intermediate tensors of {left} and {right} agree ({})",
            crate::output::human_ms(ms)
        )),
        Err(e) => report
            .notes
            .push(format!("bisect of {left} and {right} not run: {e}")),
    }
}

/// `status` as a word for a sentence (`passed`, `unsupported`).
pub fn status_word(s: BackendStatus) -> &'static str {
    match s {
        BackendStatus::Pass => "passed",
        BackendStatus::Fail => "failed",
        BackendStatus::Unavailable => "unavailable",
        BackendStatus::Unsupported => "unsupported",
        BackendStatus::Error => "error",
    }
}

pub(crate) fn compare_sets(
    out: &mut Vec<Comparison>,
    left: (&str, &[Named]),
    right: (&str, &[Named]),
    set: &str,
    tol: &ToleranceArgs,
) {
    for (name, r) in right.1 {
        match left.1.iter().find(|(n, _)| n == name) {
            Some((_, l)) => out.push(compare::compare((left.0, l), (right.0, r), name, set, tol)),
            None => {
                let mut c = compare::compare((left.0, r), (right.0, r), name, set, tol);
                c.pass = false;
                c.problem = Some(format!("{} produced no output `{name}`", left.0));
                out.push(c);
            }
        }
    }
}

/// Runs a prepared graph (its own inputs taken by name from each data set) on `backend`.
fn prepared_on(
    backend: &dyn Backend,
    bytes: &[u8],
    sets: &[inputs::DataSet],
) -> Result<Vec<Vec<Named>>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("prepared.onnx");
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    let info = model::inspect(&path).map_err(|e| e.message)?;
    // The graph was prepared for the first data set (its shapes, its constants): it is that set's.
    let mut all = Vec::new();
    for set in sets.iter().take(1) {
        let fed: Vec<Named> = info
            .inputs
            .iter()
            .filter_map(|i| set.inputs.iter().find(|(n, _)| *n == i.name).cloned())
            .collect();
        let (mut l, _) = backend
            .load(&path, &info, &fed, Device::Cpu)
            .map_err(|e| e.to_string())?;
        all.push(l.run(&fed).map_err(|e| e.to_string())?);
    }
    Ok(all)
}

fn run_backend(
    backend: &dyn Backend,
    path: &Path,
    info: &model::ModelInfo,
    sets: &[inputs::DataSet],
    opts: &CheckOptions,
    b: &mut BackendReport,
    prepared: &mut Option<Vec<u8>>,
) -> Result<Vec<Vec<Named>>, BackendError> {
    let mut all = Vec::new();
    // The model as loaded last: the data set it was loaded for, and the inputs it holds fixed.
    type Session<'s> = (&'s [Named], Vec<usize>, Box<dyn crate::backends::Loaded>);
    let mut loaded: Option<Session> = None;
    for (si, set) in sets.iter().enumerate() {
        if loaded
            .as_ref()
            .is_none_or(|(was, fixed, _)| !runs_as_loaded(was, fixed, &set.inputs))
        {
            let t = Instant::now();
            let (l, notes) = backend.load(path, info, &set.inputs, opts.device)?;
            if si == 0 {
                b.load_ms = ms(t);
                *prepared = notes.prepared;
            }
            b.notes.extend(notes.notes);
            loaded = Some((&set.inputs, notes.fixed, l));
        }
        let session = &mut loaded.as_mut().unwrap().2;
        let t = Instant::now();
        let outs = session.run(&set.inputs)?;
        if si == 0 {
            b.run_ms = ms(t);
            b.outputs = outs
                .iter()
                .map(|(name, t)| OutputFact {
                    name: name.clone(),
                    dtype: t.dtype_name().to_string(),
                    shape: t.shape.clone(),
                })
                .collect();
            if opts.runs > 1 {
                let mut times = Vec::with_capacity(opts.runs - 1);
                for _ in 1..opts.runs {
                    let t = Instant::now();
                    session.run(&set.inputs)?;
                    times.push(ms(t));
                }
                times.sort_by(f64::total_cmp);
                b.steady_median_ms = Some(percentile(&times, 0.5));
                b.steady_p95_ms = Some(percentile(&times, 0.95));
            }
        }
        all.push(outs);
    }
    Ok(all)
}

/// Peak resident set of this process so far, in MB.
pub fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    usage.ru_maxrss as f64 / 1024.0
}

/// Checks every job (`threads` at a time), each on the back ends its options select from `all`;
/// reports in the jobs' order. With a cache, a job whose key is stored is served from it and a
/// job that passes is stored.
pub fn check_all(
    jobs: &[plan::Job],
    all: &[Box<dyn Backend>],
    cache: Option<&cache::Cache>,
    threads: usize,
    progress: bool,
) -> Report {
    crate::backends::quiet_backend_panics();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<ModelReport>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(jobs.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= jobs.len() {
                    break;
                }
                bar.set_message(jobs[i].name.clone());
                let r = check_job(&jobs[i], all, cache);
                *slots[i].lock().unwrap() = Some(r);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    if let Some(c) = cache {
        c.prune(cache::UNUSED);
    }
    let models: Vec<ModelReport> = slots
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect();
    summarise(models)
}

/// One job: served from the cache, or run (and stored when it passed).
fn check_job(
    job: &plan::Job,
    all: &[Box<dyn Backend>],
    cache: Option<&cache::Cache>,
) -> ModelReport {
    let backends = match select(all, job.opts.backend) {
        Ok(b) => b,
        Err(e) => {
            return ModelReport {
                message: e.0,
                ..ModelReport::of(&job.name)
            }
        }
    };
    let key = cache.and_then(|_| cache::key(job, &backends).ok());
    if let (Some(c), Some(k)) = (cache, &key) {
        if let Some(mut r) = c.get(k) {
            r.order = Some(job.order);
            return r;
        }
    }
    let mut r = check_model(&job.model, &backends, &job.opts);
    r.path = job.name.clone();
    if let (Some(c), Some(k)) = (cache, &key) {
        if r.status == ModelStatus::Pass {
            if let Err(e) = c.put(k, &r) {
                r.notes.push(format!("not stored in the cache: {e}"));
            }
        }
    }
    r.order = Some(job.order);
    r
}

/// A report of these models, with its summary.
pub fn summarise(models: Vec<ModelReport>) -> Report {
    let count = |s: ModelStatus| models.iter().filter(|m| m.status == s).count();
    let summary = Summary {
        passed: count(ModelStatus::Pass),
        failed: count(ModelStatus::Fail),
        errors: count(ModelStatus::Error),
        peak_rss_mb: peak_rss_mb(),
    };
    Report {
        models,
        summary,
        partition: None,
    }
}

/// Reads back a float that JSON wrote as `null` (serde_json writes infinities and NaN so): an
/// error that is not a number of the report's own is an infinite one.
pub(crate) fn null_is_inf<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}
