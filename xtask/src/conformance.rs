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

fn parse(bytes: &[u8], backends: &[&str]) -> Option<Vec<Case>> {
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
            for b in backends {
                statuses.insert(b.to_string(), "error".into());
                messages.insert(
                    b.to_string(),
                    m["message"].as_str().unwrap_or("").to_string(),
                );
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

/// `--backend all` (tract and ort), or one back end alone against the suite's expected outputs.
fn check(tool: &Path, backend: &str, models: &[PathBuf], limit: Duration) -> Option<Vec<Case>> {
    let mut cmd = Command::new(tool);
    cmd.args([
        "check",
        "--no-cache",
        "--backend",
        backend,
        "--format",
        "json",
        "-j",
        "2",
    ])
    .args(TOLERANCE)
    .args(models);
    parse(&run_with_timeout(&mut cmd, limit)?, &tallied(backend))
}

/// The back ends a run of `--backend NAME` reports.
fn tallied(backend: &str) -> Vec<&str> {
    match backend {
        "all" => vec!["tract", "ort"],
        "auto" => vec!["tract", "ort", "candle"],
        one => vec![one],
    }
}

fn crashed(path: &Path, backend: &str, why: &str) -> Case {
    let statuses = tallied(backend)
        .iter()
        .map(|b| (b.to_string(), "crash".to_string()))
        .collect();
    let messages = tallied(backend)
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

/// The suite in `dir` (generated when missing) and cargo-infer built with `features`.
fn prepare(dir: &Path, features: &[&str]) -> Result<(PathBuf, Vec<PathBuf>)> {
    if !dir.join("node").is_dir() {
        let script = root().join("../shared/conformance/onnx-backend-suite.sh");
        run(Command::new("bash").arg(&script).arg(dir))?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(root())
        .args(["build", "--locked", "-p", "cargo-infer"]);
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    run(&mut build)?;
    let models = models(dir);
    if models.is_empty() {
        return Err(format!("no */model.onnx under {}", dir.display()));
    }
    Ok((target_dir().join("debug/cargo-infer"), models))
}

/// Every case checked with `--backend backend`, in chunks; a chunk that dies or hangs is re-run
/// one case at a time.
fn run_cases(tool: &Path, backend: &str, models: &[PathBuf]) -> (Vec<Case>, f64) {
    eprintln!("checking {} cases in chunks of {CHUNK}", models.len());
    let start = Instant::now();
    let mut cases = Vec::new();
    for (i, chunk) in models.chunks(CHUNK).enumerate() {
        match check(tool, backend, chunk, Duration::from_secs(900)) {
            Some(c) => cases.extend(c),
            None => {
                eprintln!("chunk {i} died or hung; re-running its cases one by one");
                for m in chunk {
                    cases.push(
                        match check(
                            tool,
                            backend,
                            std::slice::from_ref(m),
                            Duration::from_secs(120),
                        ) {
                            Some(mut c) => c.remove(0),
                            None => crashed(m, backend, "the process died or hung on this case"),
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
    (cases, start.elapsed().as_secs_f64())
}

const STATUSES: [&str; 6] = [
    "pass",
    "fail",
    "unsupported",
    "error",
    "crash",
    "unavailable",
];

/// The table of statuses per back end.
fn print_table(cases: &[Case], backends: &[&str]) {
    println!("| back end | {} |", STATUSES.join(" | "));
    println!("|---|{}", "---:|".repeat(STATUSES.len()));
    for b in backends {
        let counts: Vec<String> = STATUSES
            .iter()
            .map(|s| {
                cases
                    .iter()
                    .filter(|c| c.statuses.get(*b).map(String::as_str) == Some(*s))
                    .count()
                    .to_string()
            })
            .collect();
        println!("| {b} | {} |", counts.join(" | "));
    }
}

fn write_cases(cases: &[Case], dir: &Path, file: &str) -> Result {
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| serde_json::json!({"case": short(&c.path, dir), "status": c.statuses, "message": c.messages, "disagree": c.disagree}))
        .collect();
    let out = target_dir().join(file);
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap())
        .map_err(|e| e.to_string())?;
    eprintln!("per-case results: {}", out.display());
    Ok(())
}

pub fn conformance(dir: &Path, ort_version: &str, verbose: bool) -> Result {
    let (tool, models) = prepare(dir, &[])?;
    let lib = onnxruntime_library(ort_version)?;
    // SAFETY: single-threaded here; the variable is read by the child processes only.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    let (cases, elapsed) = run_cases(&tool, "all", &models);
    println!(
        "ONNX backend suite (onnx 1.23.2 generators): {} cases, rtol 1e-3 / atol 1e-5, tract-onnx 0.23.9, onnxruntime {ort_version}, {:.0} s on this machine\n",
        cases.len(),
        elapsed
    );
    print_table(&cases, &["tract", "ort"]);
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
    write_cases(&cases, dir, "conformance.json")
}

/// `conformance DIR --backend candle`: candle-onnx alone against the suite's expected outputs,
/// and, for each operator candle-onnx's list claims, how many of the cases that use only claimed
/// operators pass (`inspect` names each case's operators).
pub fn candle(dir: &Path, ort_version: &str, verbose: bool) -> Result {
    let (tool, models) = prepare(dir, &["candle"])?;
    let (cases, elapsed) = run_cases(&tool, "candle", &models);
    // The repository's ONNX fixtures (exports of real layers: an LSTM with every input, …), on
    // candle compared with tract and ONNX Runtime: an operator that passes there runs in the form
    // exporters write, whatever the suite's minimal cases say.
    let lib = onnxruntime_library(ort_version)?;
    // SAFETY: single-threaded here; the variable is read by the child processes only.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    let fixtures: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    let (fixture_cases, _) = run_cases(&tool, "auto", &fixtures);
    println!(
        "ONNX backend suite (onnx 1.23.2 generators): {} cases, rtol 1e-3 / atol 1e-5, candle-onnx {}, against the suite's expected outputs, {:.0} s on this machine\n",
        cases.len(),
        crate::oplists::CANDLE_ONNX,
        elapsed
    );
    print_table(&cases, &["candle"]);
    let claimed_ops: Vec<String> = std::fs::read_to_string(root().join(format!(
        "src/decide/oplists/candle-onnx-{}.txt",
        crate::oplists::CANDLE_ONNX
    )))
    .map_err(|e| e.to_string())?
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(str::to_string)
    .collect();
    // Per operator: the cases whose every operator is claimed, and those of them that pass.
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut claimed, mut passed) = (0, 0);
    for c in cases.iter().chain(&fixture_cases) {
        let ops = operators(&tool, Path::new(&c.path));
        if ops.is_empty() || !ops.iter().all(|o| claimed_ops.contains(o)) {
            continue;
        }
        let pass = c.statuses.get("candle").is_some_and(|s| s == "pass");
        claimed += 1;
        passed += pass as usize;
        for o in ops {
            let e = per_op.entry(o).or_default();
            e.0 += 1;
            e.1 += pass as usize;
        }
    }
    println!(
        "\ncases whose every operator is in candle-onnx's list (the suite's, and {} fixtures of this repository compared with tract and ort): {claimed}; candle passes {passed} of them\n",
        fixtures.len()
    );
    let never: Vec<&String> = per_op
        .iter()
        .filter(|(_, (n, p))| *n > 0 && *p == 0)
        .map(|(o, _)| o)
        .collect();
    let untested: Vec<&String> = claimed_ops
        .iter()
        .filter(|o| !per_op.contains_key(*o))
        .collect();
    println!(
        "claimed operators no case of which passes ({}): {}",
        never.len(),
        listed(&never)
    );
    println!(
        "claimed operators no claimed case uses ({}): {}",
        untested.len(),
        listed(&untested)
    );
    // The list `decide` scores candle by: what its source handles, less what never passed here.
    let measured = root().join(format!(
        "src/decide/oplists/candle-onnx-{}.measured.txt",
        crate::oplists::CANDLE_ONNX
    ));
    let mut text = format!(
        "# ONNX operators candle-onnx {} runs: its source's list less those that pass in none of their\n# ONNX backend suite cases nor in a fixture of this repository (dropped: {}),\n# measured by `cargo xtask conformance DIR --backend candle`\n",
        crate::oplists::CANDLE_ONNX,
        listed(&never)
    );
    for o in claimed_ops.iter().filter(|o| !never.contains(o)) {
        text.push_str(o);
        text.push('\n');
    }
    std::fs::write(&measured, text).map_err(|e| e.to_string())?;
    eprintln!("measured list: {}", measured.display());
    println!("\n| operator | claimed cases | pass |\n|---|---:|---:|");
    for (o, (n, p)) in &per_op {
        println!("| {o} | {n} | {p} |");
    }
    if verbose {
        println!("\ncandle, not passing:");
        for c in cases
            .iter()
            .filter(|c| c.statuses.get("candle").is_some_and(|s| s != "pass"))
        {
            println!(
                "- {} {}: {}",
                short(&c.path, dir),
                c.statuses["candle"],
                c.messages.get("candle").map(String::as_str).unwrap_or("")
            );
        }
    }
    write_cases(&cases, dir, "conformance-candle.json")
}

/// Operator names, comma-separated.
fn listed(ops: &[&String]) -> String {
    ops.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The standard-domain operators of a model, as `inspect` reads them.
fn operators(tool: &Path, model: &Path) -> Vec<String> {
    let Ok(out) = Command::new(tool)
        .args(["inspect", "--format", "json"])
        .arg(model)
        .output()
    else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Vec::new();
    };
    v["operators"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn short(path: &str, dir: &Path) -> String {
    let p = Path::new(path);
    let rel = p.strip_prefix(dir).unwrap_or(p);
    rel.parent().unwrap_or(rel).display().to_string()
}
