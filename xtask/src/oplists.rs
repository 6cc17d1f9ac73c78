//! `cargo xtask oplists`: the ONNX operators that candle-onnx and burn-import support, read from
//! those crates' sources (fetched by cargo into a scratch project), written to
//! `src/decide/oplists/` for `decide` to measure coverage without depending on the crates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, target_dir, Result};

pub const CANDLE_ONNX: &str = "0.11.1";
pub const BURN_IMPORT: &str = "0.22.0";

fn fetch() -> Result<PathBuf> {
    let dir = target_dir().join("oplists-fetch");
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"oplists-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n[dependencies]\ncandle-onnx = \"={CANDLE_ONNX}\"\nburn-import = \"={BURN_IMPORT}\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").map_err(|e| e.to_string())?;
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&dir)
            .arg("fetch"),
    )?;
    let out = Command::new("cargo")
        .current_dir(&dir)
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| e.to_string())?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let manifest = meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "candle-onnx"))
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("candle-onnx not in cargo metadata")?;
    Ok(Path::new(manifest)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf())
}

/// Quoted capitalised names that open a match arm: `"Add" =>`, `"Max" | "Min" =>`.
fn candle_ops(src: &str) -> Vec<String> {
    let mut ops = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if !t.starts_with('"') || !t.contains("=>") {
            continue;
        }
        let head = &t[..t.find("=>").unwrap()];
        for part in head.split('|') {
            let p = part.trim().trim_matches('"');
            if p.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && p.chars().all(|c| c.is_ascii_alphanumeric())
            {
                ops.push(p.to_string());
            }
        }
    }
    ops
}

/// `NodeType::Conv2d` registrations, mapped back to ONNX op names.
fn burn_ops(src: &str) -> Vec<String> {
    let mut ops = Vec::new();
    for (i, _) in src.match_indices("NodeType::") {
        let name: String = src[i + 10..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let base = name
            .trim_end_matches("1d")
            .trim_end_matches("2d")
            .trim_end_matches("3d");
        let onnx = match base {
            "Gru" => "GRU",
            "Lstm" => "LSTM",
            "Rnn" => "RNN",
            "Lrn" => "LRN",
            "Dft" => "DFT",
            "Stft" => "STFT",
            "Linear" | "Custom" => continue,
            b => b,
        };
        ops.push(onnx.to_string());
    }
    ops
}

pub fn oplists() -> Result {
    let registry = fetch()?;
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
    let mut candle = candle_ops(&read(
        registry.join(format!("candle-onnx-{CANDLE_ONNX}/src/eval.rs")),
    )?);
    let mut burn = burn_ops(&read(
        registry.join(format!("onnx-ir-{BURN_IMPORT}/src/registry.rs")),
    )?);
    let out = root().join("src/decide/oplists");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    for (file, ops, source) in [
        (
            format!("candle-onnx-{CANDLE_ONNX}.txt"),
            &mut candle,
            format!("candle-onnx {CANDLE_ONNX} src/eval.rs"),
        ),
        (
            format!("burn-import-{BURN_IMPORT}.txt"),
            &mut burn,
            format!("onnx-ir {BURN_IMPORT} (burn-import) src/registry.rs"),
        ),
    ] {
        ops.sort();
        ops.dedup();
        let text = format!(
            "# ONNX operators supported, read from {source} by `cargo xtask oplists`\n{}\n",
            ops.join("\n")
        );
        std::fs::write(out.join(&file), text).map_err(|e| e.to_string())?;
        eprintln!("{file}: {} operators", ops.len());
    }
    Ok(())
}
