//! `cargo xtask conformance DIR`: `cargo infer check --backend all` over the ONNX backend test
//! suite (written by ../shared/conformance/onnx-backend-suite.sh), tallied per back end.
//!
//! Models go to cargo-infer in chunks; a chunk whose process dies (a back end's C++ abort) or
//! hangs is re-run one model at a time, so one bad case costs only itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{root, run, target_dir, Result};

const CHUNK: usize = 150;
/// Tolerances of the reference figures (python onnxruntime, tract's CLI): rtol 1e-3, atol 1e-5.
const TOLERANCE: [&str; 4] = ["--rtol", "1e-3", "--atol", "1e-5"];
const KINDS: [&str; 4] = ["node", "simple", "pytorch-converted", "pytorch-operator"];

pub(crate) fn models(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in KINDS {
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else {
            continue;
        };
        let mut cases: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("model.onnx"))
            .filter(|p| p.is_file())
            .collect();
        cases.sort();
        out.extend(cases);
    }
    out
}

/// Runs a command with a deadline; `None` when it was killed or died by a signal.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Option<Vec<u8>> {
    let out_path = std::env::temp_dir().join(format!(
        "cargo-infer-conformance-{}.json",
        std::process::id()
    ));
    let file = std::fs::File::create(&out_path).ok()?;
    let mut child = cmd.stdout(file).stderr(Stdio::null()).spawn().ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let bytes = std::fs::read(&out_path).ok();
                let _ = std::fs::remove_file(&out_path);
                return if status.code().is_some() { bytes } else { None };
            }
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&out_path);
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
}

/// Per case: back end → status, and whether tract and ort disagreed.
struct Case {
    path: String,
    statuses: BTreeMap<String, String>,
    messages: BTreeMap<String, String>,
    disagree: bool,
}

fn parse(bytes: &[u8]) -> Option<Vec<Case>> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut out = Vec::new();
    for m in v["models"].as_array()? {
        let mut statuses = BTreeMap::new();
        let mut messages = BTreeMap::new();
        for b in m["backends"].as_array()? {
            let name = b["name"].as_str()?.to_string();
            statuses.insert(name.clone(), b["status"].as_str()?.to_string());
            messages.insert(name, b["message"].as_str().unwrap_or("").to_string());
        }
        if m["status"] == "error" {
            for b in ["tract", "ort"] {
                statuses.insert(b.into(), "error".into());
                messages.insert(b.into(), m["message"].as_str().unwrap_or("").to_string());
            }
        }
        let disagree = m["comparisons"]
            .as_array()?
            .iter()
            .any(|c| c["left"] == "tract" && c["right"] == "ort" && c["pass"] == false);
        out.push(Case {
            path: m["path"].as_str()?.to_string(),
            statuses,
            messages,
            disagree,
        });
    }
    Some(out)
}

fn check(tool: &Path, models: &[PathBuf], limit: Duration) -> Option<Vec<Case>> {
    let mut cmd = Command::new(tool);
    cmd.args([
        "check",
        "--no-cache",
        "--backend",
        "all",
        "--format",
        "json",
        "-j",
        "2",
    ])
    .args(TOLERANCE)
    .args(models);
    parse(&run_with_timeout(&mut cmd, limit)?)
}

fn crashed(path: &Path, why: &str) -> Case {
    let statuses = ["tract", "ort"]
        .iter()
        .map(|b| (b.to_string(), "crash".to_string()))
        .collect();
    let messages = ["tract", "ort"]
        .iter()
        .map(|b| (b.to_string(), why.to_string()))
        .collect();
    Case {
        path: path.display().to_string(),
        statuses,
        messages,
        disagree: false,
    }
}

/// Installs ONNX Runtime `version` (its wheel only) under target/ and returns its library.
pub(crate) fn onnxruntime_library(version: &str) -> Result<PathBuf> {
    let dir = root().join(format!("target/onnxruntime-{version}"));
    let capi = dir.join("onnxruntime/capi");
    let find = || {
        std::fs::read_dir(&capi)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so."))
            })
    };
    if let Some(lib) = find() {
        return Ok(lib);
    }
    crate::python::pip_install(Some(&dir), &[&format!("onnxruntime=={version}")])?;
    find().ok_or_else(|| format!("no libonnxruntime.so.* in {}", capi.display()))
}

pub fn conformance(dir: &Path, ort_version: &str, verbose: bool) -> Result {
    if !dir.join("node").is_dir() {
        let script = root().join("../shared/conformance/onnx-backend-suite.sh");
        run(Command::new("bash").arg(&script).arg(dir))?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["build", "--locked", "-p", "cargo-infer"]))?;
    let tool = target_dir().join("debug/cargo-infer");
    let lib = onnxruntime_library(ort_version)?;
    // SAFETY: single-threaded here; the variable is read by the child processes only.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    let models = models(dir);
    if models.is_empty() {
        return Err(format!("no */model.onnx under {}", dir.display()));
    }
    eprintln!("checking {} cases in chunks of {CHUNK}", models.len());
    let start = Instant::now();
    let mut cases = Vec::new();
    for (i, chunk) in models.chunks(CHUNK).enumerate() {
        match check(&tool, chunk, Duration::from_secs(900)) {
            Some(c) => cases.extend(c),
            None => {
                eprintln!("chunk {i} died or hung; re-running its cases one by one");
                for m in chunk {
                    cases.push(
                        match check(&tool, std::slice::from_ref(m), Duration::from_secs(120)) {
                            Some(mut c) => c.remove(0),
                            None => crashed(m, "the process died or hung on this case"),
                        },
                    );
                }
            }
        }
        eprintln!(
            "  {}/{} cases, {:.0} s",
            cases.len(),
            models.len(),
            start.elapsed().as_secs_f64()
        );
    }
    let elapsed = start.elapsed().as_secs_f64();

    let statuses = [
        "pass",
        "fail",
        "unsupported",
        "error",
        "crash",
        "unavailable",
    ];
    println!(
        "ONNX backend suite (onnx 1.23.2 generators): {} cases, rtol 1e-3 / atol 1e-5, tract-onnx 0.23.9, onnxruntime {ort_version}, {:.0} s on this machine\n",
        cases.len(),
        elapsed
    );
    println!("| back end | {} |", statuses.join(" | "));
    println!("|---|{}", "---:|".repeat(statuses.len()));
    for b in ["tract", "ort"] {
        let counts: Vec<String> = statuses
            .iter()
            .map(|s| {
                cases
                    .iter()
                    .filter(|c| c.statuses.get(b).map(String::as_str) == Some(*s))
                    .count()
                    .to_string()
            })
            .collect();
        println!("| {b} | {} |", counts.join(" | "));
    }
    let both = cases
        .iter()
        .filter(|c| c.statuses.values().all(|s| s == "pass"))
        .count();
    let either = cases
        .iter()
        .filter(|c| c.statuses.values().any(|s| s == "pass"))
        .count();
    println!("\nboth pass: {both}; at least one passes: {either}");
    let disagree: Vec<&Case> = cases.iter().filter(|c| c.disagree).collect();
    println!(
        "\ntract and ort disagree on {} cases (beyond rtol 1e-3 / atol 1e-5):",
        disagree.len()
    );
    for c in &disagree {
        let who: Vec<String> = c.statuses.iter().map(|(b, s)| format!("{b} {s}")).collect();
        println!("- {} ({})", short(&c.path, dir), who.join(", "));
    }
    if verbose {
        for b in ["tract", "ort"] {
            println!("\n{b}, not passing:");
            for c in cases
                .iter()
                .filter(|c| c.statuses.get(b).is_some_and(|s| s != "pass"))
            {
                println!(
                    "- {} {}: {}",
                    short(&c.path, dir),
                    c.statuses[b],
                    c.messages.get(b).map(String::as_str).unwrap_or("")
                );
            }
        }
    }
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| serde_json::json!({"case": short(&c.path, dir), "status": c.statuses, "message": c.messages, "disagree": c.disagree}))
        .collect();
    let out = target_dir().join("conformance.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap())
        .map_err(|e| e.to_string())?;
    eprintln!("per-case results: {}", out.display());
    Ok(())
}

fn short(path: &str, dir: &Path) -> String {
    let p = Path::new(path);
    let rel = p.strip_prefix(dir).unwrap_or(p);
    rel.parent().unwrap_or(rel).display().to_string()
}
