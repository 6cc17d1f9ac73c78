//! `cargo xtask fuzz [--seconds N] [TARGET…]`: every `cargo fuzz` target under `fuzz/`, each for N
//! seconds (default 60), seeded from the fixtures. Needs the nightly toolchain and cargo-fuzz
//! (installed when missing: `cargo install cargo-fuzz`).
//!
//! Each target's corpus is `fuzz/corpus/<target>/` (kept in the repository, minimised with
//! `cargo fuzz cmin` after a run); the fixtures are added to it as seeds before every run, in
//! `target/fuzz-seeds/<target>/`, so that the repository does not hold them twice.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, target_dir, Result};

/// The targets, and the fixtures (by extension) that seed each. `tensor_files` takes a first
/// byte that chooses the file kind: its seeds get that byte in front.
pub const TARGETS: &[(&str, &[&str])] = &[
    ("onnx", &["onnx"]),
    ("safetensors", &["safetensors"]),
    ("pytorch", &["pt", "zip"]),
    ("pickle", &["pkl", "pt"]),
    ("gguf", &["gguf"]),
    ("tensor_files", &["npy", "npz", "pb", "json"]),
];

pub fn fuzz(args: &[&str]) -> Result {
    let mut seconds = 60u64;
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds takes a number")?
            }
            t if TARGETS.iter().any(|(n, _)| *n == t) => chosen.push(t.to_string()),
            other => return Err(format!("unknown target or flag `{other}`")),
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    }
    if Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz_dir = root().join("fuzz");
    for target in &chosen {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        let seeds = seed_dir(target)?;
        run(Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            // Bounded memory per input: a reader that allocates what a file claims fails here.
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=1048576"))?;
        run(Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["+nightly", "fuzz", "cmin", target])
            .arg(&corpus))?;
    }
    Ok(())
}

/// The fixtures under 1 MB whose extension seeds this target.
fn seed_dir(target: &str) -> Result<PathBuf> {
    let exts = TARGETS.iter().find(|(n, _)| *n == target).unwrap().1;
    let dir = target_dir().join("fuzz-seeds").join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    collect(&root().join("fixtures"), &mut files);
    for (k, f) in files.iter().enumerate() {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        let Some(kind) = exts.iter().position(|e| *e == ext) else {
            continue;
        };
        let mut bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if bytes.len() > 1 << 20 {
            continue;
        }
        if target == "tensor_files" {
            bytes.insert(0, kind as u8);
        }
        std::fs::write(dir.join(format!("seed-{k}")), bytes).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}
