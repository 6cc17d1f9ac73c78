//! Command-line definition (clap derive) and dispatch. Parsing has no side effects; each command
//! gets its validated arguments and returns an exit code or an [`ExpectedError`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{exit, ExpectedError, FileError};
use crate::output::{ColorChoice, OutputFormat};

// The command line, parsed. A doc comment here or on its fields would become clap's help text and
// change `--help`; `about` above and the subcommands' docs describe it.
#[allow(missing_docs)]
#[derive(Debug, Parser)]
#[command(
    name = "cargo-infer",
    bin_name = "cargo infer",
    version,
    about = "Inspect a trained model, choose the Rust inference stack for it, prove it runs",
    after_help = "Examples:\n  cargo infer inspect model.onnx\n  cargo infer inspect --format json weights.safetensors"
)]
pub struct Cli {
    // The flags every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    // The subcommand and its own arguments.
    #[command(subcommand)]
    pub command: Command,
}

// Flags every subcommand takes (`--format`, `--color`, `-q`, `-v`, `--manifest-path`); a struct
// doc comment would become clap help text, so the fields' docs (their help) say it all.
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Output format (`--message-format` is accepted too, as cargo users type it)
    #[arg(
        long,
        global = true,
        value_enum,
        alias = "message-format",
        default_value = "human"
    )]
    pub format: OutputFormat,
    /// Colour: auto, always or never (also NO_COLOR and CARGO_TERM_COLOR)
    #[arg(long, global = true, value_enum)]
    pub color: Option<ColorChoice>,
    /// Say less
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say more (every tensor, every rule)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Path to Cargo.toml
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

// The subcommands; each variant's doc comment is its `--help` summary.
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What is this model? Format, inputs and outputs, operators, weights, architecture, safety
    #[command(
        after_help = "Examples:\n  cargo infer inspect model.onnx\n  cargo infer inspect --format json checkpoint.pt\n  cargo infer inspect ./my-hf-model/   (config.json + safetensors shards)"
    )]
    Inspect(InspectArgs),
    /// Does it load, run and agree? Runs each model on every back end and compares the outputs
    #[command(
        after_help = "Examples:\n  cargo infer check model.onnx\n  cargo infer check models/*.onnx --backend all --format junit > check.xml\n  cargo infer check model.onnx --input input=x.npy --expected outputs.npz --atol 1e-4\n\nExit codes: 0 every model passed, 1 a check failed, 2 bad input or usage."
    )]
    Check(Box<CheckArgs>),
    /// Which Rust inference stack should run this model on this target? Ranked, with reasons
    #[command(
        after_help = "Examples:\n  cargo infer decide model.onnx\n  cargo infer decide model.onnx --target wasm32-unknown-unknown --explain\n  cargo infer decide model.onnx --gpu cuda --format json\n  cargo infer decide llama.gguf --pure-rust\n\nConstraints merge: defaults, then [package.metadata.infer] of the current package, then flags."
    )]
    Decide(DecideArgs),
    /// Dependency-free, no_std Rust for a trivial model (MLP family); refuses others, naming why
    #[command(
        after_help = "Examples:\n  cargo infer emit model.onnx -o src/model.rs\n  cargo infer emit weights.safetensors --activations relu,relu,softmax -o src/model.rs\n  cargo infer emit model.onnx -o src/model.rs --precision f64 --weights file"
    )]
    Emit(EmitArgs),
    /// New Cargo project for the framework `decide` chooses; its own test runs the model
    #[command(
        after_help = "Examples:\n  cargo infer init my-app --model model.onnx\n  cargo infer init edge-app --model mlp.onnx --target thumbv7em-none-eabihf\n  cargo infer init server --model model.onnx --serving --gpu cuda\n\nNever writes into a non-empty directory without --force; a failure leaves nothing behind."
    )]
    Init(InitArgs),
    /// Adds the framework, the model and src/inference.rs to the current crate (Cargo.toml edited in place)
    #[command(
        after_help = "Examples:\n  cargo infer add model.onnx\n  cargo infer add model.onnx --framework tract --package my-crate"
    )]
    Add(AddArgs),
    /// Weights into .safetensors: from a PyTorch state_dict (never unpickled by Python), an ONNX
    /// model's initializers, or safetensors (to cast)
    #[command(
        after_help = "Examples:\n  cargo infer convert model.pt model.safetensors\n  cargo infer convert checkpoint.pt model.safetensors --key ema --dtype bf16\n  cargo infer convert model.onnx weights.safetensors\n\nUnsafe pickles are refused; __metadata__ records the source file and its sha256."
    )]
    Convert(ConvertArgs),
    /// Which back ends and toolchains are usable on this machine, and how to get the rest
    #[command(after_help = "Examples:\n  cargo infer doctor\n  cargo infer doctor --format json")]
    Doctor,
}

/// Target constraints (shared by decide, init and add).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConstraintArgs {
    /// Target triple (host, wasm32-unknown-unknown, thumbv7em-none-eabihf, riscv32imac-unknown-none-elf, …)
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Accelerator
    #[arg(long, value_enum)]
    pub gpu: Option<crate::decide::constraints::Gpu>,
    /// Several GPUs
    #[arg(long)]
    pub multi_gpu: bool,
    /// No C/C++ runtime
    #[arg(long)]
    pub pure_rust: bool,
    /// Largest acceptable binary (1MB, 300KB, 2MiB)
    #[arg(long, value_name = "SIZE", value_parser = crate::decide::constraints::parse_size)]
    pub max_binary_size: Option<u64>,
    /// Exact control over numerical precision
    #[arg(long)]
    pub exact_precision: bool,
    /// Production serving with an SLA
    #[arg(long)]
    pub serving: bool,
    /// The model will be trained, not only run
    #[arg(long)]
    pub training: bool,
    /// Force this framework (still explained; refused when a hard constraint excludes it)
    #[arg(long, value_enum)]
    pub framework: Option<crate::decide::Framework>,
}

impl ConstraintArgs {
    fn partial(&self) -> crate::decide::constraints::Partial {
        let flag = |b: bool| b.then_some(true);
        crate::decide::constraints::Partial {
            target: self.target.clone(),
            gpu: self.gpu,
            multi_gpu: flag(self.multi_gpu),
            pure_rust: flag(self.pure_rust),
            max_binary_size: self.max_binary_size,
            exact_precision: flag(self.exact_precision),
            serving: flag(self.serving),
            training: flag(self.training),
            framework: self.framework,
            ..Default::default()
        }
    }

    /// Defaults → `[package.metadata.infer]` → these flags.
    pub fn merged(
        &self,
        manifest_path: Option<&std::path::Path>,
    ) -> Result<crate::decide::constraints::Constraints, ExpectedError> {
        let mut c = crate::decide::constraints::Constraints::default();
        if let Some((from_manifest, path)) =
            crate::decide::constraints::from_manifest(manifest_path)?
        {
            c.apply(&from_manifest, &path.display().to_string());
        }
        c.apply(&self.partial(), "flag");
        Ok(c)
    }
}

// `init`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory of the new project (default: the current one, which must be empty)
    pub path: Option<PathBuf>,
    /// The model the project runs
    #[arg(long)]
    pub model: PathBuf,
    /// Package name (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Write into a non-empty directory, replacing files of the same names
    #[arg(long)]
    pub force: bool,
    /// Refer to the model where it is instead of copying it into models/
    #[arg(long)]
    pub link: bool,
    /// ort, fastembed: use ort's default features, which download and link a prebuilt ONNX
    /// Runtime at build time (instead of `load-dynamic`, which loads one at run time)
    #[arg(long)]
    pub ort_download: bool,
    /// Bind a symbolic input dimension for the recorded sample: NAME=N (default 1)
    #[arg(long, value_name = "NAME=N")]
    pub dim: Vec<crate::check::inputs::DimArg>,
    /// An input's shape for the recorded sample, NAME=1x3x224x224[:int64] (TorchScript files carry
    /// none; for ONNX it sets the symbolic dimensions)
    #[arg(long, value_name = "NAME=SHAPE[:DTYPE]")]
    pub input_shape: Vec<crate::check::inputs::ShapeArg>,
    /// A sample input to record instead of a synthetic one: NAME=FILE (.npy, .pb, .json) or
    /// ALL.npz holding every input by name
    #[arg(long, value_name = "NAME=FILE|FILE.npz")]
    pub input: Vec<crate::check::inputs::InputArg>,
    /// Write a CI workflow that checks every declared model in parallel partitions, with the
    /// check cache, and merges their reports (instead of the one-job workflow)
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub ci: Option<crate::scaffold::Ci>,
    // The target constraints (`--target`, `--gpu`, …), over `[package.metadata.infer]`'s.
    #[command(flatten)]
    pub constraints: ConstraintArgs,
}

// `add`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The model to add
    pub model: PathBuf,
    /// The package to edit, in a workspace
    #[arg(long, short)]
    pub package: Option<String>,
    /// Replace a different src/inference.rs or models/ file
    #[arg(long)]
    pub force: bool,
    /// ort, fastembed: use ort's default features, which download and link a prebuilt ONNX
    /// Runtime at build time (instead of `load-dynamic`)
    #[arg(long)]
    pub ort_download: bool,
    /// Bind a symbolic input dimension in the module's input shapes: NAME=N (default 1)
    #[arg(long, value_name = "NAME=N")]
    pub dim: Vec<crate::check::inputs::DimArg>,
    /// A sample input whose shape the module's input shapes take: NAME=FILE or ALL.npz
    #[arg(long, value_name = "NAME=FILE|FILE.npz")]
    pub input: Vec<crate::check::inputs::InputArg>,
    /// Also write a CI workflow (at the repository's root) that checks every declared model in
    /// parallel partitions, with the check cache, and merges their reports
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub ci: Option<crate::scaffold::Ci>,
    // The target constraints (`--target`, `--gpu`, …), over `[package.metadata.infer]`'s.
    #[command(flatten)]
    pub constraints: ConstraintArgs,
}

// `emit`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct EmitArgs {
    /// ONNX model, or safetensors weights of linear layers (with --activations)
    pub model: PathBuf,
    /// The Rust file to write
    #[arg(short, long, value_name = "FILE.rs")]
    pub output: PathBuf,
    /// Weights as static arrays, or in a little-endian file next to the module (include_bytes!)
    #[arg(long, value_enum, default_value = "auto")]
    pub weights: crate::emit::WeightsMode,
    /// Accumulate in f32, or in f64 for exactness
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: crate::emit::Precision,
    /// Largest model (parameters) generated as code
    #[arg(long, default_value_t = crate::model::trivial::DEFAULT_BUDGET)]
    pub max_params: u64,
    /// For weights-only files: the activation after each linear layer, in order (none for none)
    #[arg(long, value_delimiter = ',')]
    pub activations: Option<Vec<String>>,
    /// Store dense weights as f32, f16, or int8 with one scale per output row (decoded in the dot
    /// product); the largest output error against f32 is measured and reported
    #[arg(long, value_enum, default_value = "f32")]
    pub weights_dtype: crate::emit::WeightsDtype,
    /// Refuse f16/int8 weights that change an output by more than X (absolute)
    #[arg(long, value_name = "X")]
    pub max_error: Option<f64>,
    /// Samples to measure that error on as well (NAME=FILE or ALL.npz; .npy, .npz, .pb, JSON)
    #[arg(long, value_name = "NAME=FILE")]
    pub input: Vec<crate::check::inputs::InputArg>,
    /// Also write x86_64 kernels with AVX2, FMA and F16C, chosen at run time by CPUID (uses
    /// `unsafe` and core::arch; other processors run the safe kernels)
    #[arg(long)]
    pub simd: bool,
}

// `convert`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// PyTorch checkpoint (zip or legacy), TorchScript module, ONNX model or safetensors file
    pub input: PathBuf,
    /// The .safetensors file to write
    pub output: PathBuf,
    /// The nested dict of a checkpoint to take (default: the one every tensor is under, if any)
    #[arg(long)]
    pub key: Option<String>,
    /// Cast floating-point tensors (integers and bools are kept as they are)
    #[arg(long, value_enum)]
    pub dtype: Option<crate::convert::CastTo>,
    /// Replace OUTPUT if it exists
    #[arg(long)]
    pub force: bool,
    /// Write an ONNX model prepared for this framework instead (OUTPUT.onnx): shapes pinned to the
    /// data, constant Ifs folded, implicit Squeeze axes written; checked against the original
    #[arg(long = "for", value_enum, value_name = "FRAMEWORK", conflicts_with_all = ["key", "dtype"])]
    pub for_framework: Option<PrepareFor>,
    /// With --for: the data to prepare for, NAME=FILE (.npy, .pb, .json) or ALL.npz
    #[arg(
        long = "input",
        value_name = "NAME=FILE|FILE.npz",
        requires = "for_framework"
    )]
    pub data: Vec<crate::check::inputs::InputArg>,
    /// With --for: size of a symbolic dimension, NAME=N (default 1; given, it is written into the
    /// model, as --input-shape is)
    #[arg(long, value_name = "NAME=N", requires = "for_framework")]
    pub dim: Vec<crate::check::inputs::DimArg>,
    /// With --for: an input's shape, NAME=1x3x320x320 (sets its symbolic dimensions)
    #[arg(long, value_name = "NAME=SHAPE", requires = "for_framework")]
    pub input_shape: Vec<crate::check::inputs::ShapeArg>,
    /// With --for: an input fixed to a value, NAME=VALUE (a sample rate: sr=16000)
    #[arg(long = "const", value_name = "NAME=VALUE", value_parser = parse_const, requires = "for_framework")]
    pub consts: Vec<(String, String)>,
    /// With --for: the ONNX Runtime library the prepared model is checked with
    #[arg(long, value_name = "PATH", requires = "for_framework")]
    pub ort_lib: Option<PathBuf>,
}

/// Frameworks `convert --for` prepares a model for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrepareFor {
    // No doc comment: it would become `--for tract`'s help text and change `--help`.
    #[allow(missing_docs)]
    Tract,
}

fn parse_const(s: &str) -> Result<(String, String), String> {
    let (n, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    Ok((n.to_string(), v.to_string()))
}

// `decide`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// Model file or directory
    pub model: PathBuf,
    // The target constraints (`--target`, `--gpu`, …), over `[package.metadata.infer]`'s.
    #[command(flatten)]
    pub constraints: ConstraintArgs,
    /// Show every rule, whether it fired, and what it did
    #[arg(long)]
    pub explain: bool,
    /// Load the model on every back end available here and use the result as evidence
    #[arg(long)]
    pub probe: bool,
    /// --probe, and burn too: its generated code built and compared with the others (minutes
    /// the first time; its harness is cached)
    #[arg(long)]
    pub probe_burn: bool,
}

// `check`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Model files (ONNX) or quoted glob patterns ('models/**/*.onnx'); errors in one do not stop
    /// the others. None: the `models` declared in [package.metadata.infer], each with its own
    /// settings (the flags given here override them)
    pub models: Vec<PathBuf>,
    /// Back ends to run: `auto` (the default) runs those available here; naming one (or `all`)
    /// requires it to pass
    #[arg(long, value_enum)]
    pub backend: Option<crate::check::BackendChoice>,
    /// Path to the ONNX Runtime library (else ORT_DYLIB_PATH, python3's onnxruntime package, system paths)
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Device (default cpu); a GPU that is asked for and not obtained fails the check (never a
    /// silent CPU run)
    #[arg(long, value_enum)]
    pub device: Option<crate::backends::Device>,
    /// Input from a file: NAME=FILE (.npy, .pb, .json) or ALL.npz holding every input by name
    #[arg(long, value_name = "NAME=FILE|FILE.npz")]
    pub input: Vec<crate::check::inputs::InputArg>,
    /// Expected outputs: a directory of <output>.npy / output_N.pb files, or an .npz by output name
    /// (with --text: the reference embeddings, `embeddings` [texts, width])
    #[arg(long, value_name = "DIR|FILE.npz")]
    pub expected: Option<PathBuf>,
    /// A text to embed (repeat for more) with the tokenizer beside the model (tokenizer.json):
    /// tokenised as fastembed does, run, pooled as 1_Pooling/config.json says (else mean) and
    /// L2-normalised; three texts — a sentence, its paraphrase, an unrelated one — also get the
    /// paraphrase check. Without it, a sentence encoder with a tokenizer is checked on built-in texts
    #[arg(long, value_name = "STR", conflicts_with = "input")]
    pub text: Vec<String>,
    /// Absolute tolerance for floating-point outputs (default 1e-5 for float32; integers are exact)
    #[arg(long)]
    pub atol: Option<f64>,
    /// Relative tolerance for floating-point outputs (default 1e-5 for float32)
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Seed of the synthetic inputs (default 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Range of synthetic values: [lo,hi] for all inputs or NAME:[lo,hi] for one
    #[arg(long, value_name = "[LO,HI]|NAME:[LO,HI]")]
    pub val_range: Vec<crate::check::inputs::ValRange>,
    /// Size of a symbolic dimension: NAME=N (default 1)
    #[arg(long, value_name = "NAME=N")]
    pub dim: Vec<crate::check::inputs::DimArg>,
    /// An input's shape, NAME=1x3x224x224[:int64]: sets an ONNX input's symbolic dimensions;
    /// TorchScript records no shapes (dtype float32 unless given)
    #[arg(long, value_name = "NAME=SHAPE[:DTYPE]")]
    pub input_shape: Vec<crate::check::inputs::ShapeArg>,
    /// The same model in another form: a TorchScript module's ONNX export (or the reverse), or
    /// another ONNX graph of it (re-exported, optimised, quantised, prepared); both run on the same
    /// inputs and their outputs are compared, by position
    #[arg(long, value_name = "MODEL")]
    pub pair: Option<PathBuf>,
    /// When two runs of ONNX graphs disagree, find the first node whose inputs agree and whose
    /// outputs do not (every intermediate tensor exposed and compared); default on-failure
    #[arg(long, value_enum)]
    pub bisect: Option<crate::check::Bisect>,
    /// Also write the report as one self-contained HTML page (charts of the errors, the bisect)
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Runs per model and back end (default 1); with N > 1 the report adds the median and p95 of
    /// runs 2..N
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Models checked in parallel
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: u64,
    /// Check only this part of the models: count:K/N (every N-th by name, from the K-th) or
    /// hash:K/N (by a hash of the name); the same on every machine, for any order of arguments
    #[arg(long, value_name = "count:K/N|hash:K/N")]
    pub partition: Option<crate::check::plan::Partition>,
    /// Where passed checks are stored and served from (default: cargo-infer/check-cache in the
    /// package's target directory, else in ~/.cache; CARGO_INFER_CACHE_DIR when set)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Run every check, and store nothing (also when CARGO_INFER_NO_CACHE is set)
    #[arg(long)]
    pub no_cache: bool,
    /// Also write the report as JSON to FILE (a partition's part, for --merge)
    #[arg(long, value_name = "FILE.json")]
    pub report_json: Option<PathBuf>,
    /// Merge the --report-json files GLOB names (quote it) into the report of the whole run;
    /// nothing is checked
    #[arg(long, value_name = "GLOB.json", conflicts_with_all = ["models", "partition", "report_json", "pair"])]
    pub merge: Option<String>,
}

// `inspect`'s arguments; documented by their clap help (the `///` comments are `--help` text).
#[allow(missing_docs)]
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Model file (ONNX, safetensors or its index, PyTorch, TorchScript, GGUF) or model directory
    pub model: PathBuf,
    /// Also draw the ONNX graph: FILE.svg, or FILE.dot for Graphviz (shapes on the edges,
    /// repeated blocks folded)
    #[arg(long, value_name = "FILE.svg|FILE.dot")]
    pub graph: Option<PathBuf>,
}

/// Runs the tool with these arguments (as `std::env::args_os` gives them) and returns the exit code.
pub fn main(mut args: Vec<OsString>) -> i32 {
    // `cargo infer …` runs `cargo-infer infer …`.
    if args.get(1).is_some_and(|a| a == "infer") {
        args.remove(1);
    }
    // `--version -v`: the framework versions this release validated.
    let has = |f: &[&str]| args.iter().skip(1).any(|a| f.iter().any(|x| a == x));
    if has(&["--version", "-V"]) && has(&["-v", "--verbose"]) {
        let mut text = format!(
            "cargo-infer {}\nvalidated framework versions:\n",
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in crate::scaffold::VALIDATED {
            text += &format!("  {k} {v}\n");
        }
        crate::output::print(&text);
        return exit::OK;
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32, ExpectedError> {
    let global = &cli.global;
    if !matches!(cli.command, Command::Check(_)) {
        reject_junit(global)?;
    }
    match &cli.command {
        Command::Inspect(args) => crate::inspect::run(global, args),
        Command::Check(args) => run_check(global, args),
        Command::Decide(args) => run_decide(global, args),
        Command::Emit(args) => run_emit(global, args),
        Command::Init(args) => run_init(global, args),
        Command::Convert(args) if args.for_framework == Some(PrepareFor::Tract) => {
            run_prepare(global, args)
        }
        Command::Convert(args) => run_convert(global, args),
        Command::Add(args) => run_add(global, args),
        Command::Doctor => crate::doctor::run(global),
    }
}

fn reject_junit(global: &GlobalArgs) -> Result<(), ExpectedError> {
    if global.format == OutputFormat::Junit {
        return Err(ExpectedError::Usage(
            "--format junit is only for `check`".into(),
        ));
    }
    Ok(())
}

/// `decide`: the framework for a model under the constraints, with its reasons.
fn run_decide(global: &GlobalArgs, args: &DecideArgs) -> Result<i32, ExpectedError> {
    let c = args.constraints.merged(global.manifest_path.as_deref())?;
    let probe = match (args.probe_burn, args.probe) {
        (true, _) => crate::decide::Probe::WithBurn,
        (false, true) => crate::decide::Probe::Yes,
        (false, false) => crate::decide::Probe::No,
    };
    let d = crate::decide::decide_model(&args.model, &c, probe)?;
    let style = crate::output::Style {
        color: crate::output::use_color(global.color),
    };
    crate::output::print(&match global.format {
        OutputFormat::Json => crate::decide::render::json(&d),
        _ => crate::decide::render::human(&d, style, args.explain || global.verbose > 0),
    });
    Ok(exit::OK)
}

/// `emit`: a model as Rust code, its options checked first.
fn run_emit(global: &GlobalArgs, args: &EmitArgs) -> Result<i32, ExpectedError> {
    let opts = crate::emit::EmitOptions {
        precision: args.precision,
        weights: args.weights,
        max_params: args.max_params,
        activations: args.activations.clone(),
        weights_dtype: args.weights_dtype,
        simd: args.simd,
        max_error: args.max_error,
        inputs: args.input.clone(),
    };
    crate::emit::check_output(&args.output)?;
    if args.simd && args.precision == crate::emit::Precision::F64 {
        return Err(ExpectedError::Usage(crate::emit::SIMD_F64.into()));
    }
    if let Some(x) = args.max_error.filter(|x| x.is_nan() || *x < 0.0) {
        return Err(ExpectedError::Usage(format!(
            "--max-error {x}: give a number of 0 or more"
        )));
    }
    let (chain, error) = crate::emit::emit(&args.model, &args.output, &opts)?;
    if !global.quiet {
        eprintln!(
            "wrote {}: {} → {} values, {} layers, {} parameters{}",
            args.output.display(),
            chain.n_in,
            chain.n_out,
            chain.layers.len(),
            chain.parameters(),
            error
                .map(|e| format!("; {} weights: {}", e.dtype, e.describe()))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

/// `convert --for tract`: an ONNX graph tract loads, prepared from one it does not.
fn run_prepare(global: &GlobalArgs, args: &ConvertArgs) -> Result<i32, ExpectedError> {
    let opts = crate::prepare::ForTract {
        inputs: crate::check::inputs::InputOptions {
            given: args.data.clone(),
            dims: args.dim.clone(),
            shapes: args.input_shape.clone(),
            ..Default::default()
        },
        consts: args.consts.clone(),
        force: args.force,
        ort_lib: args.ort_lib.as_deref(),
        only_given_constants: false,
    };
    let done = crate::prepare::for_tract(&args.input, &args.output, &opts)?;
    print_done(global, &done, || crate::prepare::human(&done));
    Ok(exit::OK)
}

/// `convert`: weights into safetensors.
fn run_convert(global: &GlobalArgs, args: &ConvertArgs) -> Result<i32, ExpectedError> {
    let opts = crate::convert::ConvertOptions {
        key: args.key.clone(),
        dtype: args.dtype,
        force: args.force,
    };
    let done = crate::convert::convert(&args.input, &args.output, &opts)?;
    print_done(global, &done, || crate::convert::human(&done));
    Ok(exit::OK)
}

/// What a command that wrote a file did: as JSON on stdout, or for people on stderr unless
/// `--quiet`.
fn print_done<T: serde::Serialize>(global: &GlobalArgs, done: &T, human: impl FnOnce() -> String) {
    match global.format {
        OutputFormat::Json => {
            crate::output::print(&(serde_json::to_string_pretty(done).expect("plain data") + "\n"))
        }
        _ if global.quiet => {}
        _ => eprint!("{}", human()),
    }
}

/// `add`: a model and its framework added to an existing package (prepared for tract when tract
/// does not load it as it is).
fn run_add(global: &GlobalArgs, args: &AddArgs) -> Result<i32, ExpectedError> {
    let manifest = crate::scaffold::add::find_manifest(
        global.manifest_path.as_deref(),
        args.package.as_deref(),
    )?;
    let c = args.constraints.merged(Some(&manifest))?;
    crate::model::refuse_outside(&crate::model::inspect(&args.model)?)?;
    let d = crate::decide::decide_model(&args.model, &c, crate::decide::Probe::No)?;
    let inputs = crate::check::inputs::InputOptions {
        dims: args.dim.clone(),
        given: args.input.clone(),
        ..Default::default()
    };
    let info = crate::model::inspect(&args.model)?;
    let add_opts = crate::scaffold::add::AddOptions {
        force: args.force,
        ort_download: args.ort_download,
        ci: args.ci,
    };
    let scratch = tempfile::tempdir().map_err(|e| ExpectedError::Usage(e.to_string()))?;
    let prepared =
        crate::scaffold::prepare_for_tract(&args.model, &info, &d, &inputs, scratch.path())?;
    let changed = match &prepared {
        None => crate::scaffold::add::add(&manifest, &args.model, &d, &inputs, &add_opts, None),
        // Its shapes are pinned: the module's sample needs no input files.
        Some((model, from)) => crate::scaffold::add::add(
            &manifest,
            model,
            &d,
            &Default::default(),
            &add_opts,
            Some(from),
        )
        .map_err(|e| e.naming_model(model, &args.model)),
    }?;
    if !global.quiet {
        if changed.is_empty() {
            eprintln!(
                "nothing to do: {} is already set up for {}",
                manifest.display(),
                d.choice.as_str()
            );
        } else {
            eprintln!(
                "added {} to {}: {}",
                d.choice.as_str(),
                manifest.display(),
                changed.join(", ")
            );
        }
        if let Some((_, from)) = &prepared {
            eprintln!(
                "the model is prepared for tract, which does not load it as it is: {}",
                from.rewrites.join("; ")
            );
        }
    }
    Ok(exit::OK)
}

fn run_check(global: &GlobalArgs, args: &CheckArgs) -> Result<i32, ExpectedError> {
    use crate::check::{self, plan};
    if let Some(r) = &args.report {
        if !r.extension().is_some_and(|e| e == "html" || e == "htm") {
            return Err(ExpectedError::Usage(format!(
                "--report {}: the report is an HTML page; name it FILE.html",
                r.display()
            )));
        }
    }
    if let Some(pattern) = &args.merge {
        let report = check::merge::merge(pattern)?;
        return finish_check(global, args, &report);
    }
    let all = crate::backends::all(args.ort_lib.as_deref());
    let flags = plan::Flags {
        backend: args.backend,
        device: args.device,
        input: args.input.clone(),
        expected: args.expected.clone(),
        atol: args.atol,
        rtol: args.rtol,
        seed: args.seed,
        val_range: args.val_range.clone(),
        dim: args.dim.clone(),
        input_shape: args.input_shape.clone(),
        pair: args.pair.clone(),
        bisect: args.bisect,
        runs: args.runs,
        text: args.text.clone(),
    };
    // A back end named on the command line that this build lacks is a usage error up front.
    if let Some(choice) = args.backend {
        check::select(&all, choice).map_err(|e| ExpectedError::Usage(e.0))?;
    }
    let jobs = if args.models.is_empty() {
        declared_jobs(global.manifest_path.as_deref(), &flags)?
    } else {
        plan::from_args(&args.models, &flags)?
    };
    let total = jobs.len();
    let mut jobs = match args.partition {
        Some(p) => p.select(jobs),
        None => jobs,
    };
    if args.pair.is_some() && jobs.len() != 1 {
        return Err(ExpectedError::Usage(format!(
            "--pair compares one model with its twin; {} models were given",
            jobs.len()
        )));
    }
    vet_external_data(&mut jobs, args.jobs as usize)?;
    let cache = open_cache(args);
    let progress = global.format == OutputFormat::Human
        && !global.quiet
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && jobs.len() > 1;
    let mut report = check::check_all(&jobs, &all, cache.as_ref(), args.jobs as usize, progress);
    match args.partition {
        Some(p) => {
            report.partition = Some(check::PartitionFacts {
                partition: p.to_string(),
                total,
            })
        }
        None => report.models.iter_mut().for_each(|m| m.order = None),
    }
    if let Some(f) = &args.report_json {
        write_report(
            "--report-json",
            f,
            check::report::json(&report).into_bytes(),
        )?;
    }
    finish_check(global, args, &report)
}

/// External data outside a model's directory: refused before any back end reads it (a model that
/// does not read at all is left to the check, which reports it). Read in parallel on `threads`;
/// what was read serves the cache's keys.
fn vet_external_data(
    jobs: &mut [crate::check::plan::Job],
    threads: usize,
) -> Result<(), ExpectedError> {
    let threads = threads.clamp(1, jobs.len().max(1));
    let per = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for chunk in jobs.chunks_mut(per) {
            s.spawn(move || {
                for j in chunk {
                    j.info = crate::model::inspect(&j.model)
                        .ok()
                        .map(std::sync::Arc::new);
                }
            });
        }
    });
    for j in jobs.iter() {
        if let Some(info) = &j.info {
            crate::model::refuse_outside(info)?;
        }
        if let Some(p) = &j.opts.pair {
            if let Ok(info) = crate::model::inspect(p) {
                crate::model::refuse_outside(&info)?;
            }
        }
    }
    Ok(())
}

/// The content cache of check reports, unless `--no-cache` or `CARGO_INFER_NO_CACHE` turn it off.
fn open_cache(args: &CheckArgs) -> Option<crate::check::cache::Cache> {
    let no_cache =
        args.no_cache || std::env::var_os("CARGO_INFER_NO_CACHE").is_some_and(|v| !v.is_empty());
    (!no_cache).then(|| {
        crate::check::cache::Cache::new(
            args.cache_dir
                .clone()
                .or_else(|| std::env::var_os("CARGO_INFER_CACHE_DIR").map(PathBuf::from))
                .unwrap_or_else(crate::check::cache::default_dir),
        )
    })
}

/// Prints a check's report in the format asked for (and the HTML page, GitHub annotations).
fn finish_check(
    global: &GlobalArgs,
    args: &CheckArgs,
    report: &crate::check::Report,
) -> Result<i32, ExpectedError> {
    use crate::check::report;
    let text = match global.format {
        OutputFormat::Human => report::human(
            report,
            crate::output::Style {
                color: crate::output::use_color(global.color),
            },
            global.verbose,
        ),
        OutputFormat::Json => report::json(report),
        OutputFormat::Junit => report::junit(report),
    };
    if let Some(r) = &args.report {
        write_report("--report", r, crate::check::html::html(report).into_bytes())?;
    }
    // A partition's failures are annotated by the merge of the parts, once.
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") && args.partition.is_none() {
        eprint!("{}", report::github_annotations(report));
    }
    crate::output::print(&text);
    Ok(report.exit_code())
}

/// Writes a report file whole, making its directory (`reports/part-3.json` in CI) when missing.
fn write_report(flag: &str, path: &std::path::Path, bytes: Vec<u8>) -> Result<(), ExpectedError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| FileError::io(dir, "cannot create", &e).for_flag(flag))?;
    }
    crate::util::write_all_or_nothing(&[(path.to_path_buf(), bytes)])
        .map_err(|e| e.for_flag(flag).into())
}

/// The checks `models = [...]` of `[package.metadata.infer]` declares, flags over each.
fn declared_jobs(
    manifest_path: Option<&std::path::Path>,
    flags: &crate::check::plan::Flags,
) -> Result<Vec<crate::check::plan::Job>, ExpectedError> {
    use crate::check::plan;
    let none = || {
        ExpectedError::Usage(
            "no model given: name model files, or declare them as `models = [...]` in [package.metadata.infer]".into(),
        )
    };
    let found = crate::decide::constraints::from_manifest(manifest_path)?;
    let Some((partial, manifest)) = found else {
        return Err(none());
    };
    let Some(models) = partial
        .models
        .filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return Err(none());
    };
    let declared = plan::parse_declared(&manifest, &models)?;
    Ok(plan::from_declared(&manifest, &declared, flags)?)
}

fn run_init(global: &GlobalArgs, args: &InitArgs) -> Result<i32, ExpectedError> {
    use crate::scaffold;
    let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let info = crate::model::inspect(&args.model)?;
    crate::model::refuse_outside(&info)?;
    let mut c = crate::decide::constraints::Constraints::default();
    c.apply(&args.constraints.partial(), "flag");
    let d = crate::decide::decide_model(&args.model, &c, crate::decide::Probe::No)?;
    let inputs = crate::check::inputs::InputOptions {
        dims: args.dim.clone(),
        shapes: args.input_shape.clone(),
        given: args.input.clone(),
        ..Default::default()
    };
    let target = if path == std::path::Path::new(".") {
        std::env::current_dir().map_err(|e| ExpectedError::Usage(e.to_string()))?
    } else {
        path.clone()
    };
    // tract on an ONNX graph it does not load as it is: the project ships the graph prepared for
    // it, with the original beside it; the outputs to reproduce come from the original, on ONNX
    // Runtime first.
    let scratch = tempfile::tempdir().map_err(|e| ExpectedError::Usage(e.to_string()))?;
    let (model, prepared) =
        match scaffold::prepare_for_tract(&args.model, &info, &d, &inputs, scratch.path())? {
            Some((p, from)) => (p, Some(from)),
            None => (args.model.clone(), None),
        };
    // Errors about a prepared copy are about the model the user named.
    let prepared_copy = model.clone();
    let named = |e: ExpectedError| e.naming_model(&prepared_copy, &args.model);
    let mut info = info;
    let (pre, rec) = match &prepared {
        None => (
            scaffold::preflight(d.choice, &model, &info)?,
            scaffold::record(&model, &info, d.choice, &inputs)?,
        ),
        Some(_) => {
            let mut rec = scaffold::record_with(&args.model, &info, "ort", &inputs)?;
            info = crate::model::inspect(&model).map_err(|e| named(e.into()))?;
            // The inputs that became constants are not the prepared model's to take.
            rec.inputs
                .retain(|(n, _)| info.inputs.iter().any(|i| &i.name == n));
            (
                scaffold::preflight(d.choice, &model, &info).map_err(named)?,
                rec,
            )
        }
    };
    let opts = scaffold::InitOptions {
        ci: args.ci,
        path: target.clone(),
        model,
        name: args.name.clone(),
        link: args.link,
        ort_download: args.ort_download,
        prepared,
    };
    let files = scaffold::project_files(&opts, &info, &d, &pre, &rec).map_err(named)?;
    scaffold::write_project(&target, &files, args.force)?;
    if !global.quiet {
        eprintln!(
            "created {}: a {} project for {} ({} files; outputs recorded with {})\nnext: cd {} && cargo test",
            target.display(),
            d.choice.as_str(),
            args.model.display(),
            files.len(),
            rec.with,
            path.display()
        );
    }
    Ok(exit::OK)
}
