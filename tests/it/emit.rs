//! `cargo infer emit`: generated code compiled in a `#![no_std]` library crate and run, against
//! tract and ONNX Runtime, on the trivial fixtures and on random MLPs (depths, widths,
//! activations, batch sizes drawn from a seeded generator).

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_infer::backends::{self, Backend, Device};
use cargo_infer::tensor::{HostTensor, Rng};
use prost::Message;
use tract_onnx::pb;

use crate::common::{assert_success, cargo_infer, fixtures, one_line_error};

fn tensor(name: &str, dims: &[usize], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: 1,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => D::DimValue(*n as i64),
                None => D::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr_f(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 1,
        f,
        ..Default::default()
    }
}

fn attr_i(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 2,
        i,
        ..Default::default()
    }
}

/// A random MLP: 1–4 dense layers (Gemm with transB, or MatMul + Add), random widths, an
/// activation after each hidden layer, sometimes a folded BatchNormalization, and a Softmax,
/// LogSoftmax or nothing at the end. Returns the model bytes and the input width.
fn random_mlp(rng: &mut Rng) -> (Vec<u8>, usize) {
    let pick = |rng: &mut Rng, n: u64| (rng.next_u64() % n) as usize;
    let depth = 1 + pick(rng, 4);
    // Up to 80 wide: layers of one or two full panels of rows plus a narrower one, and layers
    // narrower than a panel, in every mode.
    let mut widths = vec![1 + pick(rng, 80)];
    for _ in 0..depth {
        widths.push(1 + pick(rng, 80));
    }
    random_mlp_of(rng, &widths)
}

/// `random_mlp` with these widths (input first).
pub(crate) fn random_mlp_of(rng: &mut Rng, widths: &[usize]) -> (Vec<u8>, usize) {
    let pick = |rng: &mut Rng, n: u64| (rng.next_u64() % n) as usize;
    let depth = widths.len() - 1;
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut cur = "input".to_string();
    let uniform = |rng: &mut Rng, n: usize, scale: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((rng.unit() * 2.0 - 1.0) * scale) as f32)
            .collect()
    };
    for l in 0..depth {
        let (i, o) = (widths[l], widths[l + 1]);
        let scale = 1.5 / (i as f64).sqrt();
        let next = format!("d{l}");
        if pick(rng, 2) == 0 {
            inits.push(tensor(
                &format!("w{l}"),
                &[o, i],
                &uniform(rng, o * i, scale),
            ));
            inits.push(tensor(&format!("b{l}"), &[o], &uniform(rng, o, 0.3)));
            nodes.push(pb::NodeProto {
                op_type: "Gemm".into(),
                name: format!("gemm{l}"),
                input: vec![cur.clone(), format!("w{l}"), format!("b{l}")],
                output: vec![next.clone()],
                attribute: vec![attr_i("transB", 1)],
                ..Default::default()
            });
        } else {
            inits.push(tensor(
                &format!("w{l}"),
                &[i, o],
                &uniform(rng, o * i, scale),
            ));
            inits.push(tensor(&format!("b{l}"), &[o], &uniform(rng, o, 0.3)));
            nodes.push(pb::NodeProto {
                op_type: "MatMul".into(),
                input: vec![cur.clone(), format!("w{l}")],
                output: vec![format!("{next}m")],
                ..Default::default()
            });
            nodes.push(pb::NodeProto {
                op_type: "Add".into(),
                input: vec![format!("{next}m"), format!("b{l}")],
                output: vec![next.clone()],
                ..Default::default()
            });
        }
        cur = next;
        if pick(rng, 4) == 0 {
            let var: Vec<f32> = uniform(rng, o, 0.5).iter().map(|v| v.abs() + 0.5).collect();
            inits.push(tensor(&format!("bn{l}.s"), &[o], &uniform(rng, o, 1.0)));
            inits.push(tensor(&format!("bn{l}.b"), &[o], &uniform(rng, o, 0.5)));
            inits.push(tensor(&format!("bn{l}.m"), &[o], &uniform(rng, o, 0.5)));
            inits.push(tensor(&format!("bn{l}.v"), &[o], &var));
            let names = ["s", "b", "m", "v"].map(|k| format!("bn{l}.{k}"));
            let mut input = vec![cur.clone()];
            input.extend(names);
            nodes.push(pb::NodeProto {
                op_type: "BatchNormalization".into(),
                input,
                output: vec![format!("{cur}bn")],
                ..Default::default()
            });
            cur = format!("{cur}bn");
        }
        if l + 1 < depth {
            let (op, attrs) = match pick(rng, 8) {
                0 => ("Relu", vec![]),
                1 => ("LeakyRelu", vec![attr_f("alpha", 0.1)]),
                2 => ("Sigmoid", vec![]),
                3 => ("Tanh", vec![]),
                4 => (
                    "HardSigmoid",
                    vec![attr_f("alpha", 0.25), attr_f("beta", 0.4)],
                ),
                5 => ("Gelu", vec![]),
                // ONNX's default alpha, 1.0 (written `1.0`, not `1`, in the generated code).
                6 => ("Elu", vec![]),
                _ => ("Softplus", vec![]),
            };
            nodes.push(pb::NodeProto {
                op_type: op.into(),
                input: vec![cur.clone()],
                output: vec![format!("{cur}a")],
                attribute: attrs,
                ..Default::default()
            });
            cur = format!("{cur}a");
        }
    }
    match pick(rng, 3) {
        0 => nodes.push(pb::NodeProto {
            op_type: "Softmax".into(),
            input: vec![cur.clone()],
            output: vec!["output".into()],
            attribute: vec![attr_i("axis", -1)],
            ..Default::default()
        }),
        1 => nodes.push(pb::NodeProto {
            op_type: "LogSoftmax".into(),
            input: vec![cur.clone()],
            output: vec!["output".into()],
            attribute: vec![attr_i("axis", -1)],
            ..Default::default()
        }),
        _ => nodes.push(pb::NodeProto {
            op_type: "Identity".into(),
            input: vec![cur.clone()],
            output: vec!["output".into()],
            ..Default::default()
        }),
    }
    let model = encode(
        nodes,
        inits,
        value_info("input", &[None, Some(widths[0])]),
        value_info("output", &[None, Some(*widths.last().unwrap())]),
    );
    (model, widths[0])
}

/// An opset-20 model of these nodes and constants, from `input` to `output`.
fn encode(
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    input: pb::ValueInfoProto,
    output: pb::ValueInfoProto,
) -> Vec<u8> {
    let graph = pb::GraphProto {
        name: "test_graph".into(),
        node: nodes,
        initializer: inits,
        input: vec![input],
        output: vec![output],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 20,
        }],
        producer_name: "cargo-infer tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{}_{output}", op.to_lowercase()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// One generated module, the input batch it runs, and where the runner writes its output.
struct Case {
    name: String,
    model: PathBuf,
    n_in: usize,
    batch: usize,
    input: Vec<f32>,
}

/// Builds a crate whose library is `#![no_std]` with every module in it, and a runner binary
/// that feeds each module its batch through `predict_batch`; returns the outputs by case.
fn run_generated(dir: &Path, cases: &[Case], emit_args: &[&[&str]]) -> Vec<Vec<f32>> {
    run_generated_saying(dir, cases, emit_args).0
}

/// `run_generated`, also returning what `emit` said of each module. Modules without `--simd`
/// are compiled under `#[forbid(unsafe_code)]`.
fn run_generated_saying(
    dir: &Path,
    cases: &[Case],
    emit_args: &[&[&str]],
) -> (Vec<Vec<f32>>, Vec<String>) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"emitted\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    let mut lib = String::from("#![no_std]\n");
    let mut said = Vec::new();
    let mut main = String::from(
        "use std::io::Read;\nfn main() {\n    let dir = std::env::args().nth(1).unwrap();\n",
    );
    for (c, extra) in cases.iter().zip(emit_args) {
        let out = dir.join(format!("src/{}.rs", c.name));
        let run = cargo_infer()
            .arg("emit")
            .arg(&c.model)
            .arg("-o")
            .arg(&out)
            .args(*extra)
            .output()
            .unwrap();
        assert_success(&run, &format!("emit {}", c.name));
        said.push(String::from_utf8_lossy(&run.stderr).into_owned());
        if !extra.contains(&"--simd") {
            lib += "#[forbid(unsafe_code)]\n";
        }
        lib += &format!("pub mod {};\n", c.name);
        let mut names = vec![c.name.to_string()];
        if extra.contains(&"--simd") {
            main += &format!(
                "    assert_eq!(emitted::{}::simd_kernels(), is_x86_feature_detected!(\"avx2\") && is_x86_feature_detected!(\"fma\") && is_x86_feature_detected!(\"f16c\"), \"AVX2 kernels in use\");\n",
                c.name
            );
            // The same module as a processor without AVX2 runs it: the safe kernels on the
            // panels laid out for the AVX2 ones (filled up with rows of zeros).
            let code = std::fs::read_to_string(&out).unwrap();
            let calls = code.matches("if simd::available() {").count();
            assert_eq!(
                calls, 2,
                "{}: predict and predict_block ask for AVX2",
                c.name
            );
            let fallback = code.replace(
                "if simd::available() {",
                "if simd::available() && avx2_allowed() {",
            ) + "\nfn avx2_allowed() -> bool {\n    false\n}\n";
            let name = format!("{}_fallback", c.name);
            std::fs::write(dir.join(format!("src/{name}.rs")), fallback).unwrap();
            lib += &format!("pub mod {name};\n");
            names.push(name);
        }
        std::fs::write(
            dir.join(format!("{}.in", c.name)),
            c.input
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        for n in &names {
            main += &format!(
                "    {{\n        use emitted::{n} as m;\n        let mut b = Vec::new();\n        std::fs::File::open(format!(\"{{dir}}/{i}.in\")).unwrap().read_to_end(&mut b).unwrap();\n        let x: Vec<f32> = b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();\n        let mut y = vec![0f32; x.len() / m::INPUT_SIZE * m::OUTPUT_SIZE];\n        assert_eq!(m::predict_batch(&x, &mut y), Ok(x.len() / m::INPUT_SIZE));\n        assert!(m::predict_batch(&x[1..], &mut y).is_err() || m::INPUT_SIZE == 1);\n        // Shorter batches (1 to 13 samples: one alone, a rest alone, a group and a rest, two\n        // groups; and the whole less its last 1 to 6): each sample as in the whole batch.\n        let n = x.len() / m::INPUT_SIZE;\n        for k in (1..n).filter(|&k| k <= 13 || k + 7 > n) {{\n            let mut z = vec![0f32; k * m::OUTPUT_SIZE];\n            assert_eq!(m::predict_batch(&x[..k * m::INPUT_SIZE], &mut z), Ok(k));\n            for (j, (a, b)) in z.iter().zip(&y).enumerate() {{\n                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), \"{n}: output {{j}} of a batch of {{k}}: {{a}}, of the whole batch {{b}}\");\n            }}\n        }}\n        std::fs::write(format!(\"{{dir}}/{n}.out\"), y.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();\n    }}\n",
                i = c.name
            );
        }
    }
    main += "}\n";
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    let status = Command::new(env!("CARGO"))
        .arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--")
        .arg(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .unwrap();
    assert!(status.success(), "the generated crate did not build or run");
    // Generated code must not give its users warnings, from rustc or from clippy, in either
    // edition (2024 asks for `unsafe` blocks inside unsafe functions).
    for edition in ["2021", "2024"] {
        std::fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"emitted\"\nversion = \"0.0.0\"\nedition = \"{edition}\"\n\n[workspace]\n"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO"))
            .args(["clippy", "--quiet", "--lib", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .output()
            .unwrap();
        assert_success(
            &out,
            &format!("clippy on the generated code, edition {edition}"),
        );
    }
    let read = |name: &str| -> Vec<f32> {
        std::fs::read(dir.join(format!("{name}.out")))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let outputs: Vec<Vec<f32>> = cases.iter().map(|c| read(&c.name)).collect();
    // Where the AVX2 kernels ran, the safe ones on the same panels agree with them up to the
    // order of the additions.
    for ((c, extra), avx2) in cases.iter().zip(emit_args).zip(&outputs) {
        if !extra.contains(&"--simd") {
            continue;
        }
        let safe = read(&format!("{}_fallback", c.name));
        assert_eq!(safe.len(), avx2.len(), "{}", c.name);
        for (i, (s, a)) in safe.iter().zip(avx2).enumerate() {
            assert!(
                (s - a).abs() <= 1e-4 * a.abs().max(1.0),
                "{}: output {i}: safe kernels {s}, AVX2 kernels {a}",
                c.name
            );
        }
    }
    (outputs, said)
}

fn reference(
    backend: &dyn Backend,
    model: &Path,
    input: &[f32],
    batch: usize,
    n_in: usize,
) -> Vec<f32> {
    let info = cargo_infer::model::inspect(model).unwrap();
    let x = vec![(
        info.inputs[0].name.clone(),
        HostTensor::from_f32(vec![batch, n_in], input),
    )];
    let (mut loaded, _) = backend
        .load(model, &info, &x, Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
    let out = loaded.run(&x).unwrap();
    out[0]
        .1
        .to_f64()
        .unwrap()
        .iter()
        .map(|v| *v as f32)
        .collect()
}

fn assert_close(name: &str, who: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: lengths vs {who}");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = (a - b).abs() <= 1e-6 + 1e-5 * b.abs();
        assert!(ok, "{name}: element {k}: emitted {a} vs {who} {b}");
    }
}

#[test]
fn emitted_code_matches_tract_and_onnx_runtime_on_fixtures_and_random_mlps() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(2024);
    let mut cases = Vec::new();
    let mut args: Vec<&[&str]> = Vec::new();
    for (i, (name, model, n_in)) in [
        ("fixture_mlp", fixtures().join("mlp.onnx"), 4usize),
        ("fixture_external", fixtures().join("mlp_external.onnx"), 8),
    ]
    .into_iter()
    .enumerate()
    {
        let batch = if i == 0 { 5 } else { 1 };
        let input: Vec<f32> = (0..batch * n_in)
            .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
            .collect();
        cases.push(Case {
            name: name.into(),
            model,
            n_in,
            batch,
            input,
        });
        args.push(if i == 0 { &[] } else { &["--weights", "file"] });
    }
    for k in 0..12 {
        let (bytes, n_in) = random_mlp(&mut rng);
        let model = dir.path().join(format!("random{k}.onnx"));
        std::fs::write(&model, bytes).unwrap();
        // Blocks of 12 samples and a rest: predict_batch's two paths.
        let batch = 1 + (rng.next_u64() % 20) as usize;
        let input: Vec<f32> = (0..batch * n_in)
            .map(|_| (rng.unit() * 4.0 - 2.0) as f32)
            .collect();
        cases.push(Case {
            name: format!("random{k}"),
            model,
            n_in,
            batch,
            input,
        });
        args.push(match k % 3 {
            0 => &["--precision", "f64"],
            1 => &["--weights", "file"],
            _ => &[],
        });
    }
    let outputs = run_generated(&dir.path().join("crate"), &cases, &args);
    // Every mode met a layer split into full panels and a narrower rest.
    for (mode, full) in [
        (0, "dense::<16, 1>"),
        (1, "dense::<32, 1>"),
        (2, "dense::<32, 1>"),
    ] {
        assert!(
            (0..12).filter(|k| k % 3 == mode).any(|k| {
                let code =
                    std::fs::read_to_string(dir.path().join(format!("crate/src/random{k}.rs")))
                        .unwrap();
                code.lines().any(|l| l.contains(full) && l.contains("[0.."))
            }),
            "no random MLP in mode {mode} had a layer of full panels and a rest"
        );
    }
    let all = backends::unasked(None);
    for (c, got) in cases.iter().zip(&outputs) {
        for b in &all {
            assert!(
                b.availability().is_ok(),
                "{} unavailable: install it (cargo xtask ci does)",
                b.name()
            );
            let want = reference(b.as_ref(), &c.model, &c.input, c.batch, c.n_in);
            assert_close(&c.name, b.name(), got, &want);
        }
    }
}

/// The number `emit` reports as the largest output error of stored weights (0 for f32).
fn reported_error(said: &str) -> f64 {
    said.split("largest output error against the f32 weights ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

/// Weights stored as f16 or as int8 with a scale per row, and the `--simd` kernels (AVX2, FMA,
/// F16C; this machine has them): the generated code agrees with tract and ONNX Runtime within
/// the error `emit` reports for the stored weights, measured on these very inputs (given with
/// `--input`), in every storage mode, through predict_batch's blocks and its last, short block
/// (one sample, a rest of two alone, whole groups of six and a rest of three to five; and, in
/// the runner, every batch of 1 to 13 samples — rests of one to five after a group — and the
/// whole less its last 1 to 6 against the whole batch), inputs laid side by side (1024 wide)
/// and read where they are. With `--simd`, 16-row panels in pairs and alone, a rest of 8 rows
/// and rests of 4 and 10 (filled up with zero rows) meet the AVX2 kernels, and the safe kernels
/// meet the same panels as a processor without AVX2 runs them. `--max-error` under the reported error refuses and
/// writes nothing; int8 weights are a quarter of the f32 bytes.
#[test]
fn stored_weights_and_simd_kernels_agree_within_the_error_they_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let modes: [&[&str]; 8] = [
        &["--simd"],
        &["--weights-dtype", "f16"],
        &["--weights-dtype", "int8"],
        &["--simd", "--weights-dtype", "f16"],
        &["--simd", "--weights-dtype", "int8", "--weights", "file"],
        &[
            "--weights-dtype",
            "f16",
            "--weights",
            "file",
            "--precision",
            "f64",
        ],
        &["--simd", "--weights-dtype", "int8"],
        &["--simd", "--weights", "file"],
    ];
    // Every --simd mode meets AVX2 kernels of every width; the others also random widths.
    let structured = |k: usize| k % 2 == 0 || modes[k].contains(&"--simd");
    let mut cases = Vec::new();
    let mut args: Vec<Vec<String>> = Vec::new();
    for (k, mode) in modes.iter().enumerate() {
        let (bytes, n_in) = if structured(k) {
            // With --simd (16-row panels): two panels and 8 rows, three panels (a pair and
            // one) and 8 rows, one panel and 10 rows (filled up to 16), 4 rows (filled up to 8).
            // The last mode's inputs are 1024 wide: the block kernel lays them side by side.
            let n_in = if k == 7 { 1024 } else { 300 };
            random_mlp_of(&mut rng, &[n_in, 40, 56, 26, 4])
        } else {
            random_mlp(&mut rng)
        };
        let model = dir.path().join(format!("stored{k}.onnx"));
        std::fs::write(&model, bytes).unwrap();
        // With --simd (blocks of 72): a block and one sample; a block and a rest of two; ten
        // groups and a rest of four; nine and three; two blocks and a group and five. Without
        // (blocks of 12): four blocks and 2, 11 or 5 samples.
        let batch = [73, 50, 59, 74, 64, 53, 57, 155][k];
        let input: Vec<f32> = (0..batch * n_in)
            .map(|_| (rng.unit() * 4.0 - 2.0) as f32)
            .collect();
        let npy = dir.path().join(format!("stored{k}.npy"));
        crate::common::write_npy(&npy, &[batch, n_in], &input);
        let mut a: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
        a.push("--input".into());
        a.push(format!("input={}", npy.display()));
        args.push(a);
        cases.push(Case {
            name: format!("stored{k}"),
            model,
            n_in,
            batch,
            input,
        });
    }
    let arg_refs: Vec<Vec<&str>> = args
        .iter()
        .map(|a| a.iter().map(String::as_str).collect())
        .collect();
    let slices: Vec<&[&str]> = arg_refs.iter().map(|a| a.as_slice()).collect();
    let (outputs, said) = run_generated_saying(&dir.path().join("crate"), &cases, &slices);
    let all = backends::unasked(None);
    for (k, ((c, got), (mode, said))) in cases
        .iter()
        .zip(&outputs)
        .zip(modes.iter().zip(&said))
        .enumerate()
    {
        let code =
            std::fs::read_to_string(dir.path().join(format!("crate/src/{}.rs", c.name))).unwrap();
        let err = reported_error(said);
        let int8 = mode.contains(&"int8");
        if mode.contains(&"--simd") {
            assert!(
                code.contains("`unsafe` only in `mod simd`\n// and the two calls into it"),
                "{}: header",
                c.name
            );
            // Small layers: blocks of 72 samples, their activations within the stated stack.
            assert!(
                code.contains("const BLOCK: usize = 72;") && code.contains("KiB of stack"),
                "{}: block",
                c.name
            );
            if k == 7 {
                assert!(
                    code.contains("dense_block::<16, 1024, 40, 1024>"),
                    "{}: inputs side by side",
                    c.name
                );
            }
            if structured(k) {
                for call in [
                    "unsafe { dense::<16,",
                    "unsafe { dense::<8,",
                    "unsafe { dense_block::<16,",
                    "unsafe { dense_block::<8,",
                ] {
                    assert!(code.contains(call), "{}: no `{call}`", c.name);
                }
                // Rests of 4 and 10 rows are filled up to 8 and 16 with zeros: no safe kernel
                // inside the AVX2 pass.
                let avx2 = &code[code.find("mod simd {").unwrap()..];
                for call in ["super::dense::<", "super::dense_block::<"] {
                    assert!(
                        !avx2.contains(call),
                        "{}: a safe kernel in the AVX2 pass",
                        c.name
                    );
                }
            }
        } else {
            assert!(
                !code.contains("mod simd") && code.contains("const BLOCK: usize = 12;"),
                "{}: AVX2 kernels without --simd",
                c.name
            );
        }
        if mode.contains(&"f16") || int8 {
            assert!(err > 0.0, "{}: no error reported: {said}", c.name);
            assert!(code.contains("// Weights: "), "{}: header", c.name);
        } else {
            assert_eq!(err, 0.0, "{}: {said}", c.name);
        }
        if !mode.contains(&"file") {
            let ty = if int8 {
                "[i8;"
            } else if mode.contains(&"f16") {
                "[u16;"
            } else {
                "[f32;"
            };
            assert!(
                code.contains(&format!("static W0: {ty}")),
                "{}: weights not {ty}",
                c.name
            );
        }
        for b in &all {
            let want = reference(b.as_ref(), &c.model, &c.input, c.batch, c.n_in);
            let mut worst = 0f32;
            for (k, (a, w)) in got.iter().zip(&want).enumerate() {
                let d = (a - w).abs();
                worst = worst.max(d);
                assert!(
                    d as f64 <= err * 1.001 + 2e-6 + 2e-5 * w.abs() as f64,
                    "{} ({mode:?}): element {k}: emitted {a} vs {} {w}, reported error {err}",
                    c.name,
                    b.name()
                );
            }
            if int8 {
                assert!(worst > 1e-5, "{}: int8 weights changed nothing", c.name);
            }
        }
    }
    // --max-error: under the reported error refuses (nothing written), over it writes.
    let c = &cases[2];
    let err = reported_error(&said[2]);
    let out_path = dir.path().join("refused.rs");
    let int8_under = |max_error: f64| {
        cargo_infer()
            .arg("emit")
            .arg(&c.model)
            .arg("-o")
            .arg(&out_path)
            .args(["--weights-dtype", "int8", "--input"])
            .arg(format!(
                "input={}",
                dir.path().join("stored2.npy").display()
            ))
            .arg("--max-error")
            .arg(max_error.to_string())
            .output()
            .unwrap()
    };
    let out = int8_under(err / 2.0);
    assert_eq!(out.status.code(), Some(2));
    let line = one_line_error(&out, "emit --max-error");
    assert!(
        line.contains("over --max-error") && line.contains("int8"),
        "{line}"
    );
    assert!(!out_path.exists(), "a refused module was written");
    assert_success(&int8_under(err * 2.0), "emit under --max-error");
    // int8 in a weights file: a quarter of the f32 file (both laid out for the AVX2 kernels).
    let f32_path = dir.path().join("f32.rs");
    cargo_infer()
        .arg("emit")
        .arg(&cases[4].model)
        .arg("-o")
        .arg(&f32_path)
        .args(["--simd", "--weights", "file"])
        .assert()
        .success();
    let size = |p: PathBuf| std::fs::metadata(p).unwrap().len();
    assert_eq!(
        size(dir.path().join("crate/src/stored4.weights.bin")) * 4,
        size(dir.path().join("f32.weights.bin"))
    );
    // --simd with f64 accumulation is a usage error.
    let out = cargo_infer()
        .arg("emit")
        .arg(&c.model)
        .arg("-o")
        .arg(dir.path().join("f64.rs"))
        .args(["--simd", "--precision", "f64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line_error(&out, "--simd f64").contains("--simd accumulates in f32"));
}

/// Concat of the running activation with constant parts: folded into the dense layer after it
/// (the constants' products join its bias), or copied side by side when no dense layer follows;
/// the same results as tract and ONNX Runtime, in every mode. A concatenation of two computed
/// tensors is refused, naming the node.
#[test]
fn concatenations_of_constant_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let mut values =
        |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.unit() * 2.0 - 1.0) as f32).collect() };
    let inits = vec![
        tensor("head", &[1, 2], &values(2)),
        tensor("tail", &[1, 3], &values(3)),
        tensor("w", &[4, 10], &values(40)),
        tensor("b", &[4], &values(4)),
        tensor("end", &[1, 2], &values(2)),
    ];
    let nodes = vec![
        node(
            "Concat",
            &["head", "input", "tail"],
            "c0",
            vec![attr_i("axis", 1)],
        ),
        node("Gemm", &["c0", "w", "b"], "d0", vec![attr_i("transB", 1)]),
        node("Relu", &["d0"], "r0", vec![]),
        node("Concat", &["r0", "end"], "c1", vec![attr_i("axis", -1)]),
        node("Sigmoid", &["c1"], "output", vec![]),
    ];
    let model = dir.path().join("concat.onnx");
    std::fs::write(
        &model,
        encode(
            nodes,
            inits.clone(),
            value_info("input", &[Some(1), Some(5)]),
            value_info("output", &[Some(1), Some(6)]),
        ),
    )
    .unwrap();
    // The last mode runs 13 samples (a block of 12 through the AVX2 kernels, then one); the
    // model's batch is 1, so the references run them one by one.
    let modes: [&[&str]; 4] = [
        &[],
        &["--precision", "f64"],
        &["--weights", "file"],
        &["--simd"],
    ];
    let cases: Vec<Case> = (0..modes.len())
        .map(|k| {
            let batch = if k == 3 { 13 } else { 1 };
            Case {
                name: format!("concat{k}"),
                model: model.clone(),
                n_in: 5,
                batch,
                input: values(5 * batch),
            }
        })
        .collect();
    let outputs = run_generated(&dir.path().join("crate"), &cases, &modes);
    let code = std::fs::read_to_string(dir.path().join("crate/src/concat0.rs")).unwrap();
    assert!(
        !code.contains("_BEFORE")
            && !code.contains("_AFTER: [f32; 3]")
            && code.contains("_AFTER: [f32; 2]"),
        "the first concatenation is folded, the second copied:\n{code}"
    );
    for b in backends::unasked(None) {
        for (c, got) in cases.iter().zip(&outputs) {
            let want: Vec<f32> = c
                .input
                .chunks(5)
                .flat_map(|x| reference(b.as_ref(), &c.model, x, 1, 5))
                .collect();
            assert_close(&c.name, b.name(), got, &want);
        }
    }

    let two = dir.path().join("two.onnx");
    std::fs::write(
        &two,
        encode(
            vec![
                node("MatMul", &["input", "w5"], "d", vec![]),
                node("Concat", &["d", "input"], "output", vec![attr_i("axis", 1)]),
            ],
            vec![tensor("w5", &[5, 4], &values(20))],
            value_info("input", &[Some(1), Some(5)]),
            value_info("output", &[Some(1), Some(9)]),
        ),
    )
    .unwrap();
    let out = cargo_infer()
        .arg("emit")
        .arg(&two)
        .arg("-o")
        .arg(dir.path().join("two.rs"))
        .output()
        .unwrap();
    let err = one_line_error(&out, "emit of a concatenation of two computed tensors");
    assert!(
        err.contains("node `concat_output`") && err.contains("second computed tensor"),
        "{err}"
    );
    assert!(!dir.path().join("two.rs").exists());
    // `decide` reads the chain as `emit` does: generated code for the first, not the second.
    let custom = |model: &Path| -> String {
        let out = cargo_infer()
            .args(["decide", "--format", "json"])
            .arg(model)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = v["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["framework"] == "custom")
            .unwrap()
            .clone();
        format!("{} {}", row["verdict"], row["reasons"])
    };
    assert!(!custom(&model).contains("excluded"), "{}", custom(&model));
    let two = custom(&two);
    assert!(
        two.starts_with("\"excluded\"") && two.contains("second computed tensor"),
        "{two}"
    );
}

#[test]
fn safetensors_linear_layers_with_activations() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("mlp.safetensors");
    let input: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
    let cases = [Case {
        name: "weights".into(),
        model: model.clone(),
        n_in: 4,
        batch: 2,
        input: input.clone(),
    }];
    let got = run_generated(
        &dir.path().join("crate"),
        &cases,
        &[&["--activations", "relu,softmax"]],
    );
    // Reference in f64 from the file's own tensors.
    let map = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&map).unwrap();
    let f = |n: &str| -> Vec<f64> {
        let t = st.tensor(n).unwrap();
        match t.dtype() {
            safetensors::Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            _ => t
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
        }
    };
    let (w0, b0, w1, b1) = (
        f("layers.0.weight"),
        f("layers.0.bias"),
        f("layers.1.weight"),
        f("layers.1.bias"),
    );
    let mut want = Vec::new();
    for x in input.chunks(4) {
        let h: Vec<f64> = (0..16)
            .map(|o| (b0[o] + (0..4).map(|i| w0[o * 4 + i] * x[i] as f64).sum::<f64>()).max(0.0))
            .collect();
        let z: Vec<f64> = (0..3)
            .map(|o| b1[o] + (0..16).map(|i| w1[o * 16 + i] * h[i]).sum::<f64>())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        want.extend(z.iter().map(|v| ((v - m).exp() / s) as f32));
    }
    assert_close("weights", "f64 reference", &got[0], &want);
    // Wrong number of activations: refused, naming the layers.
    let out = cargo_infer()
        .arg("emit")
        .arg(&model)
        .args([
            "-o",
            dir.path().join("x.rs").to_str().unwrap(),
            "--activations",
            "relu",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layers.0, layers.1"));
}

#[test]
fn non_trivial_models_are_refused_naming_every_offending_operator() {
    let dir = tempfile::tempdir().unwrap();
    for (model, ops) in [
        (
            "cnn.onnx",
            &["Conv", "MaxPool", "GlobalAveragePool", "conv1", "conv2"][..],
        ),
        ("lstm.onnx", &["LSTM", "node `lstm`"][..]),
        (
            "transformer.onnx",
            &[
                "Gather",
                "Transpose",
                "LayerNormalization",
                "com.microsoft::Gelu",
            ][..],
        ),
    ] {
        let out_file = dir.path().join("model.rs");
        let out = cargo_infer()
            .arg("emit")
            .arg(fixtures().join(model))
            .arg("-o")
            .arg(&out_file)
            .output()
            .unwrap();
        let err = one_line_error(&out, model);
        for op in ops {
            assert!(err.contains(op), "{model}: `{op}` not named in: {err}");
        }
        assert!(err.contains("cargo infer decide"), "{err}");
        assert!(!out_file.exists(), "nothing is written for a refused model");
    }
}

#[test]
fn header_names_the_source_and_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rs");
    cargo_infer()
        .arg("emit")
        .arg(fixtures().join("mlp.onnx"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o644,
            "written like any source file"
        );
    }
    let code = std::fs::read_to_string(&out).unwrap();
    let sha = cargo_infer::util::sha256_file(&fixtures().join("mlp.onnx")).unwrap();
    assert!(
        code.contains(&sha) && code.contains("Gemm ×2") && code.contains(env!("CARGO_PKG_VERSION"))
    );
    let code_only: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for word in ["unsafe", "std::", "alloc", "Vec", "Box"] {
        assert!(!code_only.contains(word), "generated code uses `{word}`");
    }
}

/// PyTorch state_dicts (zip, legacy, nested under `state_dict`) are read without running their
/// pickles, value for value equal to the same tensors saved as safetensors; emitting from one
/// gives the same module numbers as from the other.
#[test]
fn pytorch_state_dicts_read_exactly_and_emit() {
    let st_bytes = std::fs::read(fixtures().join("check/state_dict.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    for file in ["state_dict.pt", "state_dict_legacy.pt", "checkpoint.pt"] {
        let weights = cargo_infer::model::pytorch::read_weights(&fixtures().join(file)).unwrap();
        assert_eq!(weights.len(), 4, "{file}");
        for w in weights {
            let t = st
                .tensor(&w.name)
                .unwrap_or_else(|_| panic!("{file}: unexpected tensor {}", w.name));
            assert_eq!(t.shape(), w.shape.as_slice(), "{file}: {}", w.name);
            let want: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(w.values, want, "{file}: {}", w.name);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let cases = [
        Case {
            name: "from_pt".into(),
            model: fixtures().join("checkpoint.pt"),
            n_in: 4,
            batch: 3,
            input: input.clone(),
        },
        Case {
            name: "from_st".into(),
            model: fixtures().join("check/state_dict.safetensors"),
            n_in: 4,
            batch: 3,
            input,
        },
    ];
    let acts: &[&str] = &["--activations", "relu,softmax"];
    let out = run_generated(&dir.path().join("crate"), &cases, &[acts, acts]);
    assert_eq!(out[0], out[1]);
    // A state_dict with a dangerous pickle is refused, and nothing is written.
    let target = dir.path().join("evil.rs");
    let res = cargo_infer()
        .arg("emit")
        .arg(fixtures().join("malicious_nested.pt"))
        .arg("-o")
        .arg(&target)
        .args(acts)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("unsafe pickle"));
    assert!(!target.exists());
}

/// Every refusal names the file it is about: the output path for what cannot be written, the
/// data file for data that does not fit, the model for what the model is — never the model's
/// path in front of another file's problem.
#[test]
fn errors_name_the_file_they_are_about() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("mlp.onnx");
    let emit = |extra: &[&std::ffi::OsStr]| {
        cargo_infer()
            .arg("emit")
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };

    let out = dir.path().join("no-such-dir").join("model.rs");
    let line = one_line_error(&emit(&["-o".as_ref(), out.as_os_str()]), "unwritable -o");
    assert!(
        line.starts_with(&format!("error: {}: cannot write", out.display()))
            && !line.contains("mlp.onnx")
            && !line.contains(".cargo-infer-"),
        "{line}"
    );

    // 5 numbers for a model of 4 inputs.
    let data = dir.path().join("five.json");
    std::fs::write(&data, "[1, 2, 3, 4, 5]").unwrap();
    let ok = dir.path().join("model.rs");
    let line = one_line_error(
        &emit(&[
            "-o".as_ref(),
            ok.as_os_str(),
            "--weights-dtype".as_ref(),
            "int8".as_ref(),
            "--input".as_ref(),
            data.as_os_str(),
        ]),
        "--input of the wrong size",
    );
    assert!(
        line.starts_with(&format!("error: {}: 5 values", data.display())),
        "{line}"
    );
    assert!(!ok.exists(), "nothing written");

    let line = one_line_error(
        &emit(&[
            "-o".as_ref(),
            ok.as_os_str(),
            "--weights-dtype".as_ref(),
            "int8".as_ref(),
            "--max-error".as_ref(),
            "0".as_ref(),
        ]),
        "--max-error 0",
    );
    assert!(
        line.starts_with(&format!("error: {}: int8 weights", model.display())),
        "{line}"
    );
}

/// A BatchNormalization whose constants do not fit the features: the refusal names the node, as
/// every other operator's does.
#[test]
fn a_batch_norm_that_does_not_broadcast_is_refused_naming_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("bn.onnx");
    let inits = vec![
        tensor("w", &[4, 4], &[0.5; 16]),
        tensor("s", &[3], &[1.0, 1.0, 1.0]),
        tensor("b", &[4], &[0.0; 4]),
        tensor("m", &[4], &[0.0; 4]),
        tensor("v", &[4], &[1.0; 4]),
    ];
    std::fs::write(
        &model,
        encode(
            vec![
                node("MatMul", &["input", "w"], "h", vec![]),
                node(
                    "BatchNormalization",
                    &["h", "s", "b", "m", "v"],
                    "output",
                    vec![],
                ),
            ],
            inits,
            value_info("input", &[None, Some(4)]),
            value_info("output", &[None, Some(4)]),
        ),
    )
    .unwrap();
    let out_file = dir.path().join("bn.rs");
    let out = cargo_infer()
        .arg("emit")
        .arg(&model)
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    let err = one_line_error(&out, "emit of a mis-shaped BatchNormalization");
    assert!(
        err.contains("node `batchnormalization_output` (BatchNormalization): scale:")
            && err.contains("does not broadcast over 4 features"),
        "{err}"
    );
    assert!(!out_file.exists());
}
