//! `cargo xtask bench inspect`: wall time and peak RSS of `cargo infer inspect` against the
//! Python reference readers, on large generated files, in one run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{python, root, run, target_dir, Result};

const RUNS: usize = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

/// `ValueInfoProto` of a float tensor with a static shape.
fn value_info(name: &str, dims: &[u64]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        varint_field(&mut dim, 1, *d);
        bytes_field(&mut shape, 1, &dim);
    }
    let mut tensor_type = Vec::new();
    varint_field(&mut tensor_type, 1, 1);
    bytes_field(&mut tensor_type, 2, &shape);
    let mut ty = Vec::new();
    bytes_field(&mut ty, 1, &tensor_type);
    let mut v = Vec::new();
    bytes_field(&mut v, 1, name.as_bytes());
    bytes_field(&mut v, 2, &ty);
    v
}

/// Writes an ONNX MLP of `layers` MatMuls of `width`×`width` float32 weights, inline, streaming
/// the weight bytes (zeros) so that the generator itself stays small.
pub(crate) fn write_onnx(path: &Path, layers: usize, width: u64) -> Result {
    let payload = width * width * 4;
    let mut nodes = Vec::new();
    let mut heads = Vec::new();
    for i in 0..layers {
        let mut node = Vec::new();
        let input = if i == 0 {
            "input".to_string()
        } else {
            format!("h{}", i - 1)
        };
        let output = if i + 1 == layers {
            "output".to_string()
        } else {
            format!("h{i}")
        };
        bytes_field(&mut node, 1, input.as_bytes());
        bytes_field(&mut node, 1, format!("w{i}").as_bytes());
        bytes_field(&mut node, 2, output.as_bytes());
        bytes_field(&mut node, 3, format!("matmul{i}").as_bytes());
        bytes_field(&mut node, 4, b"MatMul");
        let mut n = Vec::new();
        bytes_field(&mut n, 1, &node);
        nodes.extend(n);

        // TensorProto header up to the raw_data length; the payload follows.
        let mut t = Vec::new();
        let mut dims = Vec::new();
        varint(&mut dims, width);
        varint(&mut dims, width);
        bytes_field(&mut t, 1, &dims);
        varint_field(&mut t, 2, 1);
        bytes_field(&mut t, 8, format!("w{i}").as_bytes());
        key(&mut t, 9, 2);
        varint(&mut t, payload);
        let mut head = Vec::new();
        key(&mut head, 5, 2);
        varint(&mut head, t.len() as u64 + payload);
        head.extend(t);
        heads.push(head);
    }
    let mut io = Vec::new();
    bytes_field(&mut io, 11, &value_info("input", &[1, width]));
    bytes_field(&mut io, 12, &value_info("output", &[1, width]));
    bytes_field(&mut io, 2, b"bench");
    let graph_len = nodes.len() as u64
        + io.len() as u64
        + heads.iter().map(|h| h.len() as u64 + payload).sum::<u64>();

    let mut f = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    let mut top = Vec::new();
    varint_field(&mut top, 1, 8);
    bytes_field(&mut top, 2, b"cargo-xtask-bench");
    key(&mut top, 7, 2);
    varint(&mut top, graph_len);
    let w = |f: &mut BufWriter<File>, b: &[u8]| f.write_all(b).map_err(|e| e.to_string());
    w(&mut f, &top)?;
    w(&mut f, &nodes)?;
    for head in &heads {
        w(&mut f, head)?;
        write_zeros(&mut f, payload)?;
    }
    w(&mut f, &io)?;
    let mut opset = Vec::new();
    varint_field(&mut opset, 2, 17);
    let mut tail = Vec::new();
    bytes_field(&mut tail, 8, &opset);
    w(&mut f, &tail)?;
    f.flush().map_err(|e| e.to_string())
}

fn write_zeros(f: &mut impl Write, mut left: u64) -> Result {
    let zeros = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes a safetensors file of `count` float32 tensors of `numel` elements each (zeros).
fn write_safetensors(path: &Path, count: usize, numel: u64) -> Result {
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    for i in 0..count {
        let (b, e) = (i as u64 * numel * 4, (i as u64 + 1) * numel * 4);
        header += &format!(",\"layers.{i}.weight\":{{\"dtype\":\"F32\",\"shape\":[{numel}],\"data_offsets\":[{b},{e}]}}");
    }
    header += "}";
    let mut f = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    f.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(|e| e.to_string())?;
    f.write_all(header.as_bytes()).map_err(|e| e.to_string())?;
    write_zeros(&mut f, count as u64 * numel * 4)?;
    f.flush().map_err(|e| e.to_string())
}

/// Writes a GGUF v3 file of `count` float32 tensors of `numel` elements each (zeros).
fn write_gguf(path: &Path, count: usize, numel: u64) -> Result {
    let mut h = Vec::new();
    let s = |h: &mut Vec<u8>, t: &str| {
        h.extend((t.len() as u64).to_le_bytes());
        h.extend(t.as_bytes());
    };
    h.extend(b"GGUF");
    h.extend(3u32.to_le_bytes());
    h.extend((count as u64).to_le_bytes());
    h.extend(1u64.to_le_bytes());
    s(&mut h, "general.architecture");
    h.extend(8u32.to_le_bytes());
    s(&mut h, "llama");
    for i in 0..count {
        s(&mut h, &format!("blk.{i}.ffn.weight"));
        h.extend(1u32.to_le_bytes());
        h.extend(numel.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend((i as u64 * numel * 4).to_le_bytes());
    }
    while h.len() % 32 != 0 {
        h.push(0);
    }
    let mut f = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    f.write_all(&h).map_err(|e| e.to_string())?;
    write_zeros(&mut f, count as u64 * numel * 4)?;
    f.flush().map_err(|e| e.to_string())
}

/// Median wall time (ms) and largest peak RSS (MB) of `RUNS` runs of a command.
fn measure(cmd: &[&str]) -> Result<(f64, f64)> {
    let mut times = Vec::new();
    let mut peak = 0i64;
    for _ in 0..RUNS {
        let start = Instant::now();
        let child = Command::new(cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", cmd[0]))?;
        let mut status = 0;
        // SAFETY: plain FFI call on our own child's pid; rusage is written by the kernel.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        if pid < 0 || !std::process::ExitStatus::from_raw(status).success() {
            return Err(format!("{cmd:?} failed"));
        }
        times.push(elapsed);
        peak = peak.max(usage.ru_maxrss);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[RUNS / 2], peak as f64 / 1024.0))
}

pub fn inspect() -> Result {
    let py = python::venv(python::BENCH_PACKAGES)?;
    let tool = release_tool(&[])?;
    let dir: PathBuf = std::env::temp_dir().join("cargo-infer-bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let onnx = dir.join("mlp-1gb.onnx");
    let st = dir.join("weights-4gb.safetensors");
    let gguf = dir.join("model-1gb.gguf");
    eprintln!(
        "writing ~1 GB ONNX, ~4 GB safetensors, ~1 GB GGUF under {}",
        dir.display()
    );
    write_onnx(&onnx, 16, 4096)?;
    write_safetensors(&st, 64, 16 * 1024 * 1024)?;
    write_gguf(&gguf, 16, 16 * 1024 * 1024)?;

    let (tool, py) = (tool.to_str().unwrap(), py.to_str().unwrap());
    let (o, s, g) = (
        onnx.to_str().unwrap(),
        st.to_str().unwrap(),
        gguf.to_str().unwrap(),
    );
    let onnx_load = format!("import onnx; onnx.load({o:?})");
    let safe_open = format!(
        "from safetensors import safe_open\nwith safe_open({s:?}, 'np') as f: f.metadata(); [f.get_slice(k).get_shape() for k in f.keys()]"
    );
    let gguf_read =
        format!("import gguf; r = gguf.GGUFReader({g:?}); [t.shape for t in r.tensors]");
    let rows: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "ONNX 1.07 GB",
            "cargo infer inspect",
            vec![tool, "inspect", "--format", "json", o],
        ),
        (
            "ONNX 1.07 GB",
            "python onnx.load",
            vec![py, "-c", &onnx_load],
        ),
        (
            "safetensors 4.3 GB",
            "cargo infer inspect",
            vec![tool, "inspect", "--format", "json", s],
        ),
        (
            "safetensors 4.3 GB",
            "python safe_open (metadata, shapes)",
            vec![py, "-c", &safe_open],
        ),
        (
            "GGUF 1.07 GB",
            "cargo infer inspect",
            vec![tool, "inspect", "--format", "json", g],
        ),
        (
            "GGUF 1.07 GB",
            "python gguf.GGUFReader",
            vec![py, "-c", &gguf_read],
        ),
        ("(none)", "python interpreter start", vec![py, "-c", "pass"]),
    ];
    // gguf is not among the bench packages; install it for its row.
    python::venv(&["gguf==0.19.0"])?;
    println!("| file | reader | median wall ({RUNS} runs) | peak RSS |");
    println!("|---|---|---:|---:|");
    for (file, who, cmd) in rows {
        let (ms, mb) = measure(&cmd)?;
        println!("| {file} | {who} | {} | {mb:.1} MB |", ns(ms * 1e6));
    }
    Ok(())
}

/// The suite's largest model (by file size) that both back ends pass, so that both can be timed.
fn largest_suite_model(dir: &Path, tool: &Path) -> Option<PathBuf> {
    let mut all: Vec<(u64, PathBuf)> = Vec::new();
    for kind in ["node", "simple", "pytorch-converted", "pytorch-operator"] {
        for e in std::fs::read_dir(dir.join(kind))
            .ok()?
            .filter_map(|e| e.ok())
        {
            let m = e.path().join("model.onnx");
            if let (Ok(meta), true) = (
                std::fs::metadata(&m),
                e.path().join("test_data_set_0").is_dir(),
            ) {
                all.push((meta.len(), m));
            }
        }
    }
    all.sort_by_key(|a| std::cmp::Reverse(a.0));
    all.into_iter().take(40).map(|(_, m)| m).find(|m| {
        Command::new(tool)
            .args([
                "check",
                "--no-cache",
                "--backend",
                "all",
                "--rtol",
                "1e-3",
                "--atol",
                "1e-5",
                "--format",
                "json",
            ])
            .arg(m)
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Criterion's mean estimates, by "group/function".
fn criterion_means() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![target_dir().join("criterion")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/benchmark.json") {
                let read = |f: &Path| {
                    std::fs::read(f)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                };
                let (Some(b), Some(est)) = (read(&p), read(&p.with_file_name("estimates.json")))
                else {
                    continue;
                };
                let id = format!(
                    "{}/{}",
                    b["group_id"].as_str().unwrap_or(""),
                    b["function_id"].as_str().unwrap_or("")
                );
                if let Some(ns) = est["mean"]["point_estimate"].as_f64() {
                    out.insert(id, ns / 1e6);
                }
            }
        }
    }
    out
}

/// Python onnxruntime's own load + first run (median ms of 20) for a model and its inputs.
fn python_onnxruntime(py: &Path, model: &Path, inputs: &Path) -> Result<f64> {
    let script = r#"
import sys, time, statistics, glob, os
import numpy as np, onnxruntime as ort
model, inputs = sys.argv[1], sys.argv[2]
if inputs.endswith(".npz"):
    feeds = dict(np.load(inputs))
else:
    import onnx
    from onnx import numpy_helper
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    files = sorted(glob.glob(os.path.join(inputs, "input_*.pb")))
    feeds = {}
    for n, f in zip(names, files):
        t = onnx.TensorProto(); t.ParseFromString(open(f, "rb").read())
        feeds[n] = numpy_helper.to_array(t)
times = []
for _ in range(20):
    t = time.perf_counter()
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    s.run(None, feeds)
    times.append((time.perf_counter() - t) * 1e3)
print(statistics.median(times))
"#;
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(model)
        .arg(inputs)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "python onnxruntime failed on {}: {}",
            model.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("{e}"))
}

pub fn check(suite: Option<&Path>) -> Result {
    let py = python::venv(&["onnx==1.23.2", "numpy==2.4.6", crate::ONNXRUNTIME])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let suite = suite
        .map(Path::to_path_buf)
        .unwrap_or_else(|| target_dir().join("onnx-suite"));
    if !suite.join("node").is_dir() {
        run(Command::new("bash")
            .arg(root().join("../shared/conformance/onnx-backend-suite.sh"))
            .arg(&suite))?;
    }
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["build", "--locked", "-p", "cargo-infer"]))?;
    let largest = largest_suite_model(&suite, &target_dir().join("debug/cargo-infer"))
        .ok_or("no suite model that both back ends pass")?;
    eprintln!("largest suite model: {}", largest.display());
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["bench", "--locked", "--bench", "check"])
        .env("CARGO_INFER_BENCH_EXTRA", &largest))?;
    let means = criterion_means();
    let extra = largest
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The reference is what the issue names: tract's own Rust API, and python onnxruntime for ort
    // (ort's Rust API in this process is shown too; it shares check's ONNX Runtime environment).
    println!("| model | back end | own API load+run | python onnxruntime load+run | `check` load+run+compare | `check` ÷ reference |");
    println!("|---|---|---:|---:|---:|---:|");
    for name in ["mlp", "cnn", "lstm", "transformer", extra.as_str()] {
        for backend in ["tract", "ort"] {
            let (Some(direct), Some(checked)) = (
                means.get(&format!("{name}/{backend}/direct")),
                means.get(&format!("{name}/{backend}/check")),
            ) else {
                continue;
            };
            let python = if backend == "ort" {
                let (model, inputs) = if name == extra {
                    (
                        largest.clone(),
                        largest.parent().unwrap().join("test_data_set_0"),
                    )
                } else {
                    (
                        root().join(format!("fixtures/{name}.onnx")),
                        root().join(format!("fixtures/check/{name}.inputs.npz")),
                    )
                };
                Some(python_onnxruntime(&py, &model, &inputs)?)
            } else {
                None
            };
            let reference = python.unwrap_or(*direct);
            println!(
                "| {name} | {backend} | {} | {} | {} | {:.2}× |",
                ns(direct * 1e6),
                python.map_or("—".to_string(), |p| ns(p * 1e6)),
                ns(checked * 1e6),
                checked / reference
            );
        }
    }
    Ok(())
}

/// Writes an ONNX MLP of Gemm+Relu layers with these widths (python onnx in the bench venv).
/// Builds cargo-infer in release with these features; returns its binary.
pub(crate) fn release_tool(features: &[&str]) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root())
        .args(["build", "--release", "--locked", "-p", "cargo-infer"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    run(&mut cmd)?;
    Ok(target_dir().join("release/cargo-infer"))
}

/// A time in nanoseconds, in the unit that fits it (`77 ns`, `4.40 µs`, `12.3 ms`, `1.20 s`).
pub(crate) fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

pub(crate) fn human(b: u64) -> String {
    if b >= 1_000_000 {
        format!("{:.1} MB", b as f64 / 1e6)
    } else {
        format!("{:.1} KB", b as f64 / 1000.0)
    }
}

/// `check` on the candle back end: the fixtures and a generated BERT of ≈ 110 MB (hidden 512,
/// 4 layers, a 30522-token vocabulary — random weights with real names and config), wall time of
/// the whole command (median of 5), load and first-run times, and peak RSS, from a release build.
pub fn candle() -> Result {
    let py = python::venv(python::BENCH_PACKAGES)?;
    let bin = release_tool(&["candle"])?;
    let big = target_dir().join("bench-candle/bert-110mb");
    if !big.join("model.safetensors").is_file() {
        std::fs::create_dir_all(&big).map_err(|e| e.to_string())?;
        let script = r#"
import json, sys, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
h, inter, layers, vocab, pos = 512, 2048, 4, 30522, 512
r = np.random.default_rng(0)
t = {}
def w(name, *shape): t[name] = (r.standard_normal(shape) * 0.05).astype(np.float32)
def ln(name): t[name + ".weight"] = np.ones(h, np.float32); t[name + ".bias"] = np.zeros(h, np.float32)
w("embeddings.word_embeddings.weight", vocab, h); w("embeddings.position_embeddings.weight", pos, h)
w("embeddings.token_type_embeddings.weight", 2, h); ln("embeddings.LayerNorm")
for i in range(layers):
    p = f"encoder.layer.{i}."
    for m in ("query", "key", "value"):
        w(p + f"attention.self.{m}.weight", h, h); w(p + f"attention.self.{m}.bias", h)
    w(p + "attention.output.dense.weight", h, h); w(p + "attention.output.dense.bias", h); ln(p + "attention.output.LayerNorm")
    w(p + "intermediate.dense.weight", inter, h); w(p + "intermediate.dense.bias", inter)
    w(p + "output.dense.weight", h, inter); w(p + "output.dense.bias", h); ln(p + "output.LayerNorm")
save_file(t, d + "/model.safetensors")
json.dump({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": h, "num_hidden_layers": layers,
           "num_attention_heads": 8, "intermediate_size": inter, "vocab_size": vocab, "max_position_embeddings": pos,
           "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}, open(d + "/config.json", "w"))
"#;
        run(Command::new(&py).args(["-c", script]).arg(&big))?;
    }
    let size_mb = |p: &Path| -> f64 {
        let files: Vec<PathBuf> = if p.is_dir() {
            std::fs::read_dir(p)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        } else {
            vec![p.to_path_buf()]
        };
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum::<u64>() as f64
            / 1e6
    };
    println!("| model | size | `check` wall time (median of 5) | load | first run | steady run (median) | peak RSS |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let fixtures = root().join("fixtures/candle");
    for (label, model) in [
        (
            "BERT, 2 layers, hidden 32 (safetensors)",
            fixtures.join("bert"),
        ),
        (
            "Llama, 2 layers, hidden 32 (safetensors)",
            fixtures.join("llama"),
        ),
        (
            "the same Llama, q8_0 GGUF",
            fixtures.join("llama-q8_0.gguf"),
        ),
        ("BERT, 4 layers, hidden 512, vocab 30522", big.clone()),
    ] {
        let mut walls = Vec::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..5 {
            let t = Instant::now();
            let out = Command::new(&bin)
                .args([
                    "check",
                    "--no-cache",
                    "--format",
                    "json",
                    "--backend",
                    "candle",
                    "--runs",
                    "5",
                ])
                .arg(&model)
                .output()
                .map_err(|e| e.to_string())?;
            walls.push(t.elapsed().as_secs_f64() * 1e3);
            if !out.status.success() {
                return Err(format!(
                    "check {} failed: {}",
                    model.display(),
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
            last = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        }
        walls.sort_by(f64::total_cmp);
        let b = &last["models"][0]["backends"][0];
        let ms = |k: &str| ns(b[k].as_f64().unwrap_or(0.0) * 1e6);
        println!(
            "| {label} | {:.1} MB | {} | {} | {} | {} | {:.0} MB |",
            size_mb(&model),
            ns(walls[2] * 1e6),
            ms("load_ms"),
            ms("run_ms"),
            ms("steady_median_ms"),
            last["summary"]["peak_rss_mb"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}
