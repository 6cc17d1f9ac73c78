//! `cargo xtask bench emit`: the generated code against tract, timed the same way in the same
//! run on the same models (best of 15 loops of many calls, one thread), with the machine's
//! bounds measured beside them and the binaries' sizes.

use std::path::Path;
use std::process::Command;

use crate::bench::{human, ns};
use crate::{python, root, run, target_dir, Result};

/// Samples per call in the batch columns.
const BATCH: usize = 64;

/// The MLPs: the three of the README, then wider ones for the size where the generated code
/// stops winning (decide's budget for generated code).
const SIZES: [&[usize]; 6] = [
    &[4, 16, 3],
    &[784, 128, 10],
    &[512, 512, 512, 10],
    &[1024, 1024, 1024, 10],
    &[1536, 1536, 1536, 10],
    &[2048, 2048, 2048, 10],
];

/// Alternating rounds of `--simd` against tract, and the loops each side's best is taken of.
const ROUNDS: usize = 15;
const ROUND_LOOPS: usize = 5;

/// The median and the range of the rounds' ratios: `0.97 (0.91–1.04)`.
fn spread(ratios: &[f64]) -> String {
    let mut v = ratios.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => "-".into(),
        n => format!("{:.2} ({:.2}–{:.2})", v[n / 2], v[0], v[n - 1]),
    }
}

/// The ways `emit` writes each model, as module names and their `emit` flags.
const VARIANTS: [(&str, &[&str]); 5] = [
    ("safe_f32", &[]),
    ("simd_f32", &["--simd"]),
    ("simd_f16", &["--simd", "--weights-dtype", "f16"]),
    ("simd_int8", &["--simd", "--weights-dtype", "int8"]),
    ("safe_int8", &["--weights-dtype", "int8"]),
];

fn mlp_onnx(py: &Path, path: &Path, widths: &[usize]) -> Result {
    let script = r#"
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
path, widths = sys.argv[1], [int(w) for w in sys.argv[2].split("-")]
r = np.random.default_rng(0)
nodes, inits, cur = [], [], "input"
for i in range(len(widths) - 1):
    w = (r.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i])).astype(np.float32)
    b = (r.standard_normal(widths[i + 1]) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
    last = i == len(widths) - 2
    nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], ["output" if last else f"g{i}"], transB=1))
    if not last:
        nodes.append(helper.make_node("Relu", [f"g{i}"], [f"h{i}"]))
        cur = f"h{i}"
g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", widths[0]])],
                      [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", widths[-1]])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, path)
"#;
    let label = widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    run(Command::new(py).arg("-c").arg(script).arg(path).arg(label))
}

/// Times every variant's `predict` (batch 1) and `predict_batch` (per sample, `BATCH` at a time),
/// best of 15 loops; `runner VARIANT LOOPS` times only that variant, best of LOOPS.
const RUNNER: &str = r#"
#![allow(dead_code)]
use std::hint::black_box;
use std::time::Instant;

macro_rules! bench {
    ($m:ident, $only:expr, $loops:expr) => {'run: {
        if $only.map_or(false, |o: &str| o != stringify!($m)) {
            break 'run;
        }
        let mut x = [0f32; $m::INPUT_SIZE];
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i % 7) as f32 * 0.1 - 0.3;
        }
        let mut best = f64::MAX;
        let mut sink = 0f32;
        for _ in 0..$loops {
            let t = Instant::now();
            for _ in 0..ITERS {
                x[0] = sink * 1e-30;
                let y = $m::predict(black_box(&x));
                sink += y[0];
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e9 / ITERS as f64);
        }
        let xb: Vec<f32> = (0..BATCH * $m::INPUT_SIZE).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let mut yb = vec![0f32; BATCH * $m::OUTPUT_SIZE];
        let calls = (ITERS / BATCH).max(3);
        let mut best_batch = f64::MAX;
        for _ in 0..$loops {
            let t = Instant::now();
            for _ in 0..calls {
                let _ = $m::predict_batch(black_box(&xb), &mut yb);
                black_box(&yb);
            }
            best_batch = best_batch.min(t.elapsed().as_secs_f64() * 1e9 / (calls * BATCH) as f64);
        }
        println!("{} {best} {best_batch} {sink}", stringify!($m));
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args.get(1).map(String::as_str);
    let loops: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(15);
    MODULES_BENCH
}
MODULES_DECL
"#;

/// The smallest program that runs the generated module: `no_std`, `no_main`, libc's `write` for
/// its one output value. Its stripped size is what the module costs a deployed binary.
const NO_STD_RUNNER: &str = r#"#![no_std]
#![no_main]
#![allow(dead_code)]
mod model;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link(name = "c")]
extern "C" {
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
}

#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let x = [0.25f32; model::INPUT_SIZE];
    let y = model::predict(core::hint::black_box(&x));
    let b = y[0].to_bits().to_le_bytes();
    // SAFETY: writes 4 bytes this function owns to stdout.
    unsafe { write(1, b.as_ptr(), 4) };
    0
}
"#;

/// The machine's bounds, for code that may use what the processor has (as tract does, and the
/// `--simd` kernels): the peak rate of multiply-adds (fused, eight wide, twelve independent
/// sums; and SSE2 multiply then add, what the safe kernels get without `target-cpu`), and the
/// read bandwidth for a buffer of a given size read over and over, as a model's weights are —
/// the best of 1, 2 and 4 independent streams of 32-byte loads, four sums each. Best of 15 each.
const ROOFLINE: &str = r#"
use std::hint::black_box;
use std::time::Instant;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

fn best(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// SSE2 multiply and add, 48 independent sums (what the safe kernels can do).
fn peak_safe() -> f64 {
    let m = black_box([1.0f32; 48]);
    let mut s = black_box([0.5f32; 48]);
    let iters = 2_000_000u64;
    let t = best(|| {
        let mut v = black_box(1e-3f32);
        for _ in 0..iters {
            for j in 0..48 {
                s[j] += m[j] * v;
            }
            v += 1e-9;
        }
        s = black_box(s);
    });
    (iters * 96) as f64 / t
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop(iters: u64) -> f32 {
    let mut acc = [_mm256_set1_ps(0.5); 12];
    let w = _mm256_set1_ps(black_box(1.0));
    let mut v = _mm256_set1_ps(black_box(1e-3));
    let d = _mm256_set1_ps(1e-9);
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(w, v, *a);
        }
        v = _mm256_add_ps(v, d);
    }
    let mut out = [0f32; 8];
    for a in acc {
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(a, _mm256_loadu_ps(out.as_ptr())));
    }
    out.iter().sum()
}

fn peak_fma() -> f64 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        let iters = 2_000_000u64;
        let t = best(|| {
            black_box(unsafe { fma_loop(iters) });
        });
        return (iters * 12 * 8 * 2) as f64 / t;
    }
    peak_safe()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn read<const STREAMS: usize>(buf: &[f32]) -> f32 {
    let len = buf.len() / STREAMS / 32 * 32;
    let p = buf.as_ptr();
    let mut acc = [[_mm256_setzero_ps(); 4]; STREAMS];
    let mut k = 0;
    while k < len {
        for s in 0..STREAMS {
            let q = p.add(s * len + k);
            for j in 0..4 {
                acc[s][j] = _mm256_add_ps(acc[s][j], _mm256_loadu_ps(q.add(8 * j)));
            }
        }
        k += 32;
    }
    let mut out = [0f32; 8];
    for a in acc.iter().flatten() {
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(*a, _mm256_loadu_ps(out.as_ptr())));
    }
    out.iter().sum()
}

fn bandwidth(bytes: usize) -> f64 {
    let buf: Vec<f32> = (0..bytes / 4).map(|i| (i % 5) as f32).collect();
    let passes = (2_000_000_000 / bytes.max(1)).clamp(10, 100_000);
    let mut top = 0f64;
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        for streams in [1, 2, 4] {
            let read_bytes = buf.len() / streams / 32 * 32 * streams * 4;
            let t = best(|| {
                for _ in 0..passes {
                    black_box(unsafe {
                        match streams {
                            1 => read::<1>(black_box(&buf)),
                            2 => read::<2>(black_box(&buf)),
                            _ => read::<4>(black_box(&buf)),
                        }
                    });
                }
            });
            top = top.max((passes * read_bytes) as f64 / t);
        }
    }
    let t = best(|| {
        for _ in 0..passes {
            let mut acc = [0.0f32; 32];
            for c in black_box(&buf).chunks_exact(32) {
                for j in 0..32 {
                    acc[j] += c[j];
                }
            }
            black_box(acc);
        }
    });
    top.max((passes * (bytes / 128 * 128)) as f64 / t)
}

fn main() {
    let bytes: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    println!("{} {} {}", peak_safe(), peak_fma(), bandwidth(bytes));
}
"#;

/// tract on the same model, batch `B`: the optimised plan's `run`, best of 15 loops (or of the
/// fifth argument).
const TRACT_RUNNER: &str = r#"
use std::time::Instant;
use tract_onnx::prelude::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (path, n_in, iters, batch): (&str, usize, usize, usize) =
        (&a[1], a[2].parse().unwrap(), a[3].parse().unwrap(), a[4].parse().unwrap());
    let loops: usize = a.get(5).map_or(15, |l| l.parse().unwrap());
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact([batch, n_in]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x: Tensor = tract_ndarray::Array2::<f32>::from_shape_fn((batch, n_in), |(_, i)| (i % 7) as f32 * 0.1 - 0.3).into();
    let mut best = f64::MAX;
    for _ in 0..loops {
        let t = Instant::now();
        for _ in 0..iters {
            let out = plan.run(tvec!(x.clone().into_tvalue())).unwrap();
            std::hint::black_box(out);
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / (iters * batch) as f64);
    }
    println!("{best}");
}
"#;

const PROFILE: &str = "\n[profile.release]\nopt-level = 3\nlto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = true\n";

fn write(path: &Path, text: &str) -> Result {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds a small crate in `dir` into the shared target directory; returns its binary.
fn build(dir: &Path, name: &str, manifest_extra: &str) -> Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    write(
        &dir.join("Cargo.toml"),
        &format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n{manifest_extra}"),
    )?;
    run(Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", target_dir()))?;
    Ok(target_dir().join("release").join(name))
}

/// A variant's batch-1 and per-sample batch times from the runner's line `NAME BEST BATCH SINK`.
fn variant_times(text: &str, name: &str) -> (f64, f64) {
    let v: Vec<f64> = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    (
        v.first().copied().unwrap_or(0.0),
        v.get(1).copied().unwrap_or(0.0),
    )
}

fn numbers(out: &std::process::Output) -> Vec<f64> {
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn output(cmd: &mut Command) -> Result<std::process::Output> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// One model's measurements.
struct Row {
    label: String,
    params: usize,
    weight_bytes: usize,
    /// Per variant: batch-1 ns, per-sample ns at `BATCH`.
    emitted: Vec<(f64, f64)>,
    tract: f64,
    tract_batch: f64,
    /// `--simd` ÷ tract in each alternating round: batch 1, batch `BATCH` per sample.
    duel: [Vec<f64>; 2],
    tract_check: f64,
    ort_check: f64,
    bound: f64,
    /// Stripped no_std binaries: safe f32, f16, int8; and with --simd (f32).
    sizes: [u64; 4],
    /// Largest output error of f16 and int8 weights, as emit reports it.
    errors: [String; 2],
}

pub fn emit() -> Result {
    let py = python::venv(python::BENCH_PACKAGES)?;
    let tool = crate::bench::release_tool(&[])?;
    let dir = target_dir().join("bench-emit");
    // The tract runner keeps the default release profile, so that it reuses the release build of
    // tract that `cargo build --release` made; LTO would rebuild it all.
    let tract_dir = dir.join("tract-runner");
    write(&tract_dir.join("src/main.rs"), TRACT_RUNNER)?;
    std::fs::copy(root().join("Cargo.lock"), tract_dir.join("Cargo.lock"))
        .map_err(|e| e.to_string())?;
    let tract_bin = build(
        &tract_dir,
        "tract-runner",
        "[dependencies]\ntract-onnx = \"=0.23.9\"\n[profile.release]\nstrip = true\n",
    )?;
    let roof_dir = dir.join("roofline");
    write(&roof_dir.join("src/main.rs"), ROOFLINE)?;
    let roof_bin = build(&roof_dir, "roofline", PROFILE)?;

    let mut rows = Vec::new();
    let mut peaks = (0f64, 0f64);
    for widths in SIZES {
        let label = widths
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-");
        eprintln!("bench emit: {label}");
        let model = dir.join(format!("mlp-{label}.onnx"));
        mlp_onnx(&py, &model, widths)?;
        let params: usize = widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
        let flops: usize = widths.windows(2).map(|w| 2 * w[0] * w[1]).sum();
        let iters = (200_000_000 / flops.max(1)).clamp(100, 2_000_000);
        let crate_dir = dir.join(format!("emitted-{label}"));
        std::fs::create_dir_all(crate_dir.join("src")).map_err(|e| e.to_string())?;
        let mut errors = [String::new(), String::new()];
        for (name, flags) in VARIANTS {
            let out = output(
                Command::new(&tool)
                    .arg("emit")
                    .arg(&model)
                    .arg("-o")
                    .arg(crate_dir.join(format!("src/{name}.rs")))
                    .args(["--max-params", "100000000"])
                    .args(flags),
            )?;
            let said = String::from_utf8_lossy(&out.stderr);
            let err = said
                .split("largest output error against the f32 weights ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
                .to_string();
            match name {
                "simd_f16" => errors[0] = err,
                "simd_int8" => errors[1] = err,
                _ => {}
            }
        }
        let bench: String = VARIANTS
            .iter()
            .map(|(n, _)| format!("bench!({n}, only, loops);\n    "))
            .collect();
        let decl: String = VARIANTS
            .iter()
            .map(|(n, _)| format!("mod {n};\n"))
            .collect();
        write(
            &crate_dir.join("src/main.rs"),
            &RUNNER
                .replace("ITERS", &iters.to_string())
                .replace("BATCH", &BATCH.to_string())
                .replace("MODULES_BENCH", &bench)
                .replace("MODULES_DECL", &decl),
        )?;
        let bin = build(&crate_dir, &format!("emitted-{label}"), PROFILE)?;
        let out = output(&mut Command::new(&bin))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let emitted: Vec<(f64, f64)> = VARIANTS
            .iter()
            .map(|(n, _)| variant_times(&text, n))
            .collect();
        let tract = |batch: usize, loops: usize| -> Result<f64> {
            let n = ((iters / 10).max(10) / batch).max(3);
            let out = output(
                Command::new(&tract_bin)
                    .arg(&model)
                    .arg(widths[0].to_string())
                    .arg(n.to_string())
                    .arg(batch.to_string())
                    .arg(loops.to_string()),
            )?;
            Ok(numbers(&out).first().copied().unwrap_or(0.0))
        };
        // The duel: `--simd` and tract in alternating rounds, best of a few loops each, so that
        // the machine's drifts (other tenants, clocks) meet both sides alike; each round's ratio.
        let ours = || -> Result<(f64, f64)> {
            let out = output(Command::new(&bin).args(["simd_f32", &ROUND_LOOPS.to_string()]))?;
            Ok(variant_times(
                &String::from_utf8_lossy(&out.stdout),
                "simd_f32",
            ))
        };
        let theirs =
            || -> Result<(f64, f64)> { Ok((tract(1, ROUND_LOOPS)?, tract(BATCH, ROUND_LOOPS)?)) };
        let mut duel = [Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            let (a, b) = if round % 2 == 0 {
                let a = ours()?;
                (a, theirs()?)
            } else {
                let b = theirs()?;
                (ours()?, b)
            };
            duel[0].push(a.0 / b.0);
            duel[1].push(a.1 / b.1);
        }
        let check = |backend: &str| -> Result<f64> {
            let out = output(
                Command::new(&tool)
                    .args([
                        "check",
                        "--no-cache",
                        "--backend",
                        backend,
                        "--format",
                        "json",
                        "--runs",
                    ])
                    .arg((iters / 10).clamp(10, 20_000).to_string())
                    .arg(&model),
            )?;
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            Ok(v["models"][0]["backends"][0]["steady_median_ms"]
                .as_f64()
                .unwrap_or(0.0)
                * 1e6)
        };
        // Stripped no_std programs: safe f32, f16 and int8 weights, and f32 with --simd.
        let mut sizes = [0u64; 4];
        for (k, flags) in [
            &[][..],
            &["--weights-dtype", "f16"],
            &["--weights-dtype", "int8"],
            &["--simd"],
        ]
        .iter()
        .enumerate()
        {
            let small_dir = dir.join(format!("nostd-{label}-{k}"));
            std::fs::create_dir_all(small_dir.join("src")).map_err(|e| e.to_string())?;
            output(
                Command::new(&tool)
                    .arg("emit")
                    .arg(&model)
                    .arg("-o")
                    .arg(small_dir.join("src/model.rs"))
                    .args(["--max-params", "100000000"])
                    .args(*flags),
            )?;
            write(&small_dir.join("src/main.rs"), NO_STD_RUNNER)?;
            let bin = build(
                &small_dir,
                &format!("nostd-{label}-{k}"),
                &format!("{PROFILE}\n[profile.dev]\npanic = \"abort\"\n"),
            )?;
            sizes[k] = std::fs::metadata(bin).map_err(|e| e.to_string())?.len();
        }
        let weight_bytes: usize = 4 * params;
        let v = numbers(&output(
            Command::new(&roof_bin).arg(weight_bytes.to_string()),
        )?);
        let (peak_safe, peak_fma, bw) = (v[0], v[1], v[2]);
        peaks = (peak_safe, peak_fma);
        let bound = (flops as f64 / peak_fma).max(weight_bytes as f64 / bw) * 1e9;
        rows.push(Row {
            label,
            params,
            weight_bytes,
            emitted,
            tract: tract(1, 15)?,
            tract_batch: tract(BATCH, 15)?,
            duel,
            tract_check: check("tract")?,
            ort_check: check("ort")?,
            bound,
            sizes,
            errors,
        });
    }

    println!(
        "Batch 1 (peak multiply-add rate here: {:.1} GFLOP/s fused AVX2, {:.1} GFLOP/s SSE2 multiply then add)\n",
        peaks.1 / 1e9,
        peaks.0 / 1e9
    );
    println!("| MLP | parameters | f32 weights | generated (safe) | generated `--simd` | `--simd` f16 | `--simd` int8 | tract `plan.run` | tract `check` steady median | ONNX Runtime `check` (2 threads) | `--simd` ÷ tract | `--simd` ÷ tract, {ROUNDS} alternating rounds: median (range) | safe ÷ tract | bound (f32) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let beaten = r
            .emitted
            .iter()
            .take(2)
            .map(|e| e.0)
            .chain([r.tract])
            .any(|t| t < r.bound);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {} |",
            r.label,
            r.params,
            human(r.weight_bytes as u64),
            ns(r.emitted[0].0),
            ns(r.emitted[1].0),
            ns(r.emitted[2].0),
            ns(r.emitted[3].0),
            ns(r.tract),
            ns(r.tract_check),
            ns(r.ort_check),
            r.emitted[1].0 / r.tract,
            spread(&r.duel[0]),
            r.emitted[0].0 / r.tract,
            if beaten {
                format!("{} (beaten: dropped)", ns(r.bound))
            } else {
                ns(r.bound)
            }
        );
    }
    println!("\nBatch {BATCH} through `predict_batch` (per sample)\n");
    println!("| MLP | generated (safe) | safe int8 | `--simd` | `--simd` int8 | tract `plan.run` | `--simd` ÷ tract | `--simd` ÷ tract, {ROUNDS} alternating rounds: median (range) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            r.label,
            ns(r.emitted[0].1),
            ns(r.emitted[4].1),
            ns(r.emitted[1].1),
            ns(r.emitted[3].1),
            ns(r.tract_batch),
            r.emitted[1].1 / r.tract_batch,
            spread(&r.duel[1])
        );
    }
    println!("\nStripped `no_std` binaries and the error of stored weights\n");
    println!("| MLP | f32 | f16 | int8 | f32 `--simd` | f16 error | int8 error |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            human(r.sizes[0]),
            human(r.sizes[1]),
            human(r.sizes[2]),
            human(r.sizes[3]),
            r.errors[0],
            r.errors[1]
        );
    }
    Ok(())
}
