//! Cut and corrupted copies of every fixture through `decide`, `emit`, `check --backend tract`,
//! `convert` and `init`, as tests/inspect.rs does for `inspect` (in-process, with more cases): never a panic,
//! an abort or a hang; the exit code is 0, 1 or 2, and a refusal (exit 2) is exactly one line on
//! stderr (for `check`, whose refusals of a model are in its report, one line of message per
//! model in error).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{cargo_infer, fixtures};

/// Cases per fixture and command: half cuts, half corruptions (`NEVER_PANIC_CASES` for more).
fn cases() -> usize {
    std::env::var("NEVER_PANIC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Every fixture that reads (not the bad ones), with the name it is listed under.
fn regular_fixtures() -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    expected
        .into_iter()
        .filter(|(_, v)| v.get("error").is_none())
        .map(|(k, _)| {
            let p = fixtures().join(&k);
            (k, p)
        })
        .filter(|(_, p)| p.is_file())
        .collect()
}

/// xorshift64: deterministic corruption.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// [`cases`] damaged copies of `bytes`: cuts spread over the file (the first bytes, where the
/// framing is, more densely), then 1–4 random bytes replaced.
fn damaged(bytes: &[u8], rng: &mut Xorshift) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let cases = cases();
    let cuts = cases / 2;
    let step = (bytes.len() / cuts).max(1);
    let mut at: Vec<usize> = (0..bytes.len().min(cuts / 3)).collect();
    at.extend((0..bytes.len()).step_by(step).skip(1));
    at.push(bytes.len().saturating_sub(1));
    at.sort_unstable();
    at.dedup();
    for a in at.into_iter().take(cuts) {
        out.push((format!("cut at {a}"), bytes[..a].to_vec()));
    }
    while out.len() < cases {
        let mut b = bytes.to_vec();
        let mut what = Vec::new();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % b.len();
            b[i] = rng.next() as u8;
            what.push(format!("{i}={:#04x}", b[i]));
        }
        out.push((format!("bytes {}", what.join(",")), b));
    }
    out
}

/// Copies the files beside `src` (external data, shards, config) into `dir`.
fn copy_siblings(src: &Path, dir: &Path) {
    for sib in std::fs::read_dir(src.parent().unwrap()).unwrap() {
        let sib = sib.unwrap().path();
        if sib.is_file() && sib != src {
            std::fs::copy(&sib, dir.join(sib.file_name().unwrap())).unwrap();
        }
    }
}

/// What is wrong with one run, if anything.
fn problem(command: &str, out: &std::process::Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A panic of this process (`thread 'main' panicked at …`); a back end's panic caught and
    // reported as that back end's error (`tract panicked: …`) is a one-line refusal like others.
    if stderr.contains("' panicked at") || stderr.contains("RUST_BACKTRACE") {
        return Some(format!("panicked: {stderr}"));
    }
    let code = out.status.code();
    if !matches!(code, Some(0..=2)) {
        return Some(format!("exit {:?}: {stderr}", out.status));
    }
    if command == "check" && !out.stdout.is_empty() {
        let report: Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => return Some(format!("no JSON report ({e}): {stderr}")),
        };
        for m in report["models"].as_array().into_iter().flatten() {
            let msg = m["message"].as_str().unwrap_or("");
            if m["status"] == "error" && (msg.is_empty() || msg.lines().count() != 1) {
                return Some(format!(
                    "model error of {} lines: {msg:?}",
                    msg.lines().count()
                ));
            }
        }
        if stderr.lines().count() > 1 {
            return Some(format!("stderr of several lines: {stderr}"));
        }
    } else if code == Some(2) && stderr.lines().count() != 1 {
        return Some(format!(
            "exit 2 with {} stderr lines: {stderr}",
            stderr.lines().count()
        ));
    }
    None
}

/// Runs `args(model, scratch dir)` on every damaged copy of every fixture; reports every problem.
fn never_panics(command: &str, args: impl Fn(&Path, &Path) -> Vec<String>) {
    let mut rng = Xorshift(0x9e3779b97f4a7c15 ^ command.len() as u64);
    let mut runs = 0;
    let mut problems = Vec::new();
    for (name, src) in regular_fixtures() {
        let bytes = std::fs::read(&src).unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_siblings(&src, dir.path());
        let target = dir.path().join(src.file_name().unwrap());
        let scratch = tempfile::tempdir().unwrap();
        for (what, b) in damaged(&bytes, &mut rng) {
            std::fs::write(&target, &b).unwrap();
            let out = cargo_infer()
                .arg(command)
                .args(args(&target, scratch.path()))
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap();
            if let Some(p) = problem(command, &out) {
                problems.push(format!("{command} {name} ({what}): {p}"));
            }
            // `init` writes all or nothing: a refused model leaves no project behind.
            let project = scratch.path().join("project");
            if command == "init" && !out.status.success() && project.exists() {
                problems.push(format!(
                    "init {name} ({what}): exit {:?} but {} was written",
                    out.status.code(),
                    project.display()
                ));
            }
            let _ = std::fs::remove_dir_all(&project);
            runs += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {runs} runs:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(runs > 400, "{runs}");
}

#[test]
fn decide_never_panics_on_damaged_models() {
    never_panics("decide", |m, _| {
        vec![m.display().to_string(), "--format".into(), "json".into()]
    });
}

#[test]
fn emit_never_panics_on_damaged_models() {
    never_panics("emit", |m, dir| {
        vec![
            m.display().to_string(),
            "-o".into(),
            dir.join("model.rs").display().to_string(),
        ]
    });
}

#[test]
fn check_never_panics_on_damaged_models() {
    never_panics("check", |m, _| {
        vec![
            m.display().to_string(),
            "--backend".into(),
            "tract".into(),
            "--format".into(),
            "json".into(),
        ]
    });
}

#[test]
fn convert_never_panics_on_damaged_models() {
    never_panics("convert", |m, dir| {
        vec![
            m.display().to_string(),
            dir.join("out.safetensors").display().to_string(),
            "--force".into(),
        ]
    });
}

#[test]
fn init_never_panics_on_damaged_models_and_writes_nothing_when_it_fails() {
    never_panics("init", |m, dir| {
        vec![
            "--model".into(),
            m.display().to_string(),
            dir.join("project").display().to_string(),
            "--name".into(),
            "damaged".into(),
        ]
    });
}
