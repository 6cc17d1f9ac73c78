//! Command-line definition (clap derive) and dispatch. Parsing has no side effects; each command
//! gets its validated arguments and returns an exit code or an [`ExpectedError`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{exit, ExpectedError};
use crate::output::{ColorChoice, OutputFormat};

#[derive(Debug, Parser)]
#[command(
    name = "cargo-infer",
    bin_name = "cargo infer",
    version,
    about = "Inspect a trained model, choose the Rust inference stack for it, prove it runs",
    after_help = "Examples:\n  cargo infer inspect model.onnx\n  cargo infer inspect --format json weights.safetensors"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What is this model? Format, inputs and outputs, operators, weights, architecture, safety
    #[command(
        after_help = "Examples:\n  cargo infer inspect model.onnx\n  cargo infer inspect --format json checkpoint.pt\n  cargo infer inspect ./my-hf-model/   (config.json + safetensors shards)"
    )]
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Model file (ONNX, safetensors or its index, PyTorch, TorchScript, GGUF) or model directory
    pub model: PathBuf,
}

/// Runs the tool with these arguments (as `std::env::args_os` gives them) and returns the exit code.
pub fn main(mut args: Vec<OsString>) -> i32 {
    // `cargo infer …` runs `cargo-infer infer …`.
    if args.get(1).is_some_and(|a| a == "infer") {
        args.remove(1);
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
    match &cli.command {
        Command::Inspect(args) => crate::inspect::run(&cli.global, args),
    }
}
