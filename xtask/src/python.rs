//! A virtualenv under `target/` for the Python side of fixtures and benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, target_dir, Result};

/// What `fixtures.py` imports, pinned.
pub const FIXTURE_PACKAGES: &[&str] = &[
    "onnx==1.23.2",
    "numpy==2.4.6",
    "safetensors==0.8.0",
    "gguf==0.19.0",
    "torch==2.13.0",
    // The encoders of the candle and sentence-embedding fixtures, their tokenizers, and the
    // reference embeddings (ONNX Runtime) check --text is compared with.
    "transformers==4.57.6",
    "tokenizers==0.22.1",
    "onnxruntime==1.31.1",
];

/// What the benchmarks time.
pub const BENCH_PACKAGES: &[&str] = &["onnx==1.23.2", "numpy==2.4.6", "safetensors==0.8.0"];

/// Installs a pinned package into the `python3` on PATH unless that version is there already.
pub fn ensure_system_package(spec: &str) -> Result {
    let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
    if installed(Path::new("python3"), name, version) {
        return Ok(());
    }
    pip_install(None, &[spec])
}

/// `python3 -m pip install` of these packages, quietly; into `target_dir` (wheels only, no
/// dependencies) when given, else into python3's own site-packages.
pub fn pip_install(target_dir: Option<&Path>, packages: &[&str]) -> Result {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--root-user-action=ignore",
    ]);
    if let Some(dir) = target_dir {
        cmd.args(["--no-deps", "--upgrade", "--target"]).arg(dir);
    }
    run(cmd.args(packages))
}

fn installed(py: &Path, name: &str, version: &str) -> bool {
    let out = Command::new(py).args(["-m", "pip", "show", name]).output();
    matches!(out, Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&format!("Version: {version}")))
}

/// libtorch for the tch back end, as tch 0.26 wants it: torch 2.13.0's wheel without its
/// dependencies, plus the two CUDA runtime libraries libtorch_cpu links even on a CPU-only machine,
/// installed under `target/` (PyPI is reachable where libtorch's own download site is not).
/// Returns the directory to give as LIBTORCH.
pub fn libtorch() -> Result<PathBuf> {
    const PACKAGES: &[&str] = &[
        "torch==2.13.0",
        "nvidia-cuda-runtime==13.0.96",
        "nvidia-cuda-cupti==13.0.85",
    ];
    let dir = target_dir().join("libtorch-2.13.0");
    let torch = dir.join("torch");
    if !torch.join("lib/libtorch_cpu.so").is_file()
        || !dir.join("nvidia/cu13/lib/libcudart.so.13").is_file()
    {
        pip_install(Some(&dir), PACKAGES)?;
    }
    Ok(torch)
}

/// Creates (once) `target/pyenv` and installs `packages` into it; returns its python.
pub fn venv(packages: &[&str]) -> Result<PathBuf> {
    let dir = target_dir().join("pyenv");
    let py = dir.join("bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let (name, version) = p.split_once("==").unwrap_or((p, ""));
            !installed(&py, name, version)
        })
        .collect();
    if !missing.is_empty() {
        run(Command::new(&py)
            .args(["-m", "pip", "install", "-q"])
            .args(&missing))?;
    }
    Ok(py)
}
