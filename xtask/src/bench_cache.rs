//! `cargo xtask bench cache DIR`: the README's "CI at scale" table — `check` over the ONNX backend
//! suite in DIR (generated when missing) with no cache, a cold cache and a warm one, the cases
//! that do not pass alone, the passes alone served from the warm cache (and one of them), the
//! suite without bisects, and a ~1 GiB model cold and warm. One run of
//! each (a cache's state changes with every run); wall time and peak RSS of the process.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{root, run, Result};

/// Runs the tool once; wall milliseconds, peak RSS in MB, and what it printed.
fn once(tool: &Path, args: &[String]) -> Result<(f64, f64, Vec<u8>)> {
    let out = std::env::temp_dir().join(format!(
        "cargo-infer-bench-cache-{}.out",
        std::process::id()
    ));
    let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let child = Command::new(tool)
        .args(args)
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    let mut status = 0;
    // SAFETY: plain FFI call on our own child's pid; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let printed = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    // Exit 1 and 2 are verdicts here (failed and unreadable cases), not a failed run.
    let code = std::process::ExitStatus::from_raw(status).code();
    if pid < 0 || !matches!(code, Some(0..=2)) {
        return Err(format!("{} {args:?} died", tool.display()));
    }
    Ok((ms, usage.ru_maxrss as f64 / 1024.0, printed))
}

pub fn cache(dir: &Path) -> Result {
    if !dir.join("node").is_dir() {
        let script = root().join("../shared/conformance/onnx-backend-suite.sh");
        run(Command::new("bash").arg(&script).arg(dir))?;
    }
    let tool = crate::bench::release_tool(&[])?;
    let lib = crate::conformance::onnxruntime_library("1.32.0")?;
    // SAFETY: single-threaded here; the variable is read by the child processes only.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    let models: Vec<String> = crate::conformance::models(dir)
        .iter()
        .map(|m| m.display().to_string())
        .collect();
    let scratch = tempfile_dir("cargo-infer-bench-cache")?;
    let store = |name: &str| scratch.join(name).display().to_string();
    let check = |extra: &[&str], models: &[String]| -> Vec<String> {
        let mut a: Vec<String> = [
            "check", "--format", "json", "-j", "2", "--rtol", "1e-3", "--atol", "1e-5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(models.iter().cloned());
        a
    };
    println!("| run | time | peak RSS |");
    println!("|---|---:|---:|");
    let row = |what: &str, (ms, mb, _): &(f64, f64, Vec<u8>)| {
        println!("| {what} | {:.2} s | {mb:.0} MB |", ms / 1e3);
    };
    let n = models.len();
    row(
        &format!("ONNX backend suite ({n} cases), no cache"),
        &once(&tool, &check(&["--no-cache"], &models))?,
    );
    let c = store("suite");
    row(
        "the same, first run with the cache",
        &once(&tool, &check(&["--cache-dir", &c], &models))?,
    );
    let warm = once(&tool, &check(&["--cache-dir", &c], &models))?;
    let v: serde_json::Value = serde_json::from_slice(&warm.2).map_err(|e| e.to_string())?;
    let failing: Vec<String> = v["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["status"] != "pass")
        .filter_map(|m| m["path"].as_str().map(str::to_string))
        .collect();
    row(
        &format!(
            "the same, warm cache ({} cases re-run: not passing)",
            failing.len()
        ),
        &warm,
    );
    row(
        &format!("the {} cases that do not pass, alone", failing.len()),
        &once(&tool, &check(&["--no-cache"], &failing))?,
    );
    // What serving costs: the passes alone from the warm cache (nothing re-runs), and one of them
    // (the process, loading ONNX Runtime for its version, which is part of the key).
    let passing: Vec<String> = models
        .iter()
        .filter(|m| !failing.contains(m))
        .cloned()
        .collect();
    row(
        &format!("the {} passes alone, warm cache", passing.len()),
        &once(&tool, &check(&["--cache-dir", &c], &passing))?,
    );
    row(
        "one pass alone, warm cache",
        &once(
            &tool,
            &check(&["--cache-dir", &c], &passing[..passing.len().min(1)]),
        )?,
    );
    row(
        "the suite with --bisect never, no cache",
        &once(&tool, &check(&["--no-cache", "--bisect", "never"], &models))?,
    );
    let c = store("suite-nobisect");
    let _ = once(
        &tool,
        &check(&["--cache-dir", &c, "--bisect", "never"], &models),
    )?;
    row(
        "the suite with --bisect never, warm cache",
        &once(
            &tool,
            &check(&["--cache-dir", &c, "--bisect", "never"], &models),
        )?,
    );
    let big = scratch.join("mlp-1gb.onnx");
    crate::bench::write_onnx(&big, 16, 4096)?;
    let c = store("big");
    let big_args = vec![
        "check".to_string(),
        "--cache-dir".into(),
        c,
        big.display().to_string(),
    ];
    row(
        "a ~1 GiB model (16 MatMuls of 4096², external data), cold",
        &once(&tool, &big_args)?,
    );
    row(
        "the same model, warm cache (hashing its weights)",
        &once(&tool, &big_args)?,
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn tempfile_dir(prefix: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}
