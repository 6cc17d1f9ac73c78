//! Hostile models, built here at test time: external data outside the model's directory
//! (CVE-2024-27318), bool inputs whose bytes are not 0 or 1, a Constant node without an output,
//! `emit -o` naming a directory, a GGUF array of 2^60 elements and an ONNX graph nested 10^4
//! subgraphs deep. Each is reported (inspect) or refused with one line (exit 2) — in bounded
//! time and memory, and without reading what lies outside the model's directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tract_onnx::pb;

use crate::common::onnx::{model, node, tensor_pb, value, BOOL, FLOAT, INT32};
use crate::common::{assert_success, cargo_infer, check_json, fixtures, one_line_error};

fn entry(k: &str, v: &str) -> pb::StringStringEntryProto {
    pb::StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    }
}

/// `y = x · w`, x float32[1, 2], w float32[2, 2] in external data at `location` (16 bytes).
fn external_model(location: &str) -> Vec<u8> {
    let w = pb::TensorProto {
        name: "w".into(),
        dims: vec![2, 2],
        data_type: FLOAT,
        data_location: Some(1),
        external_data: vec![
            entry("location", location),
            entry("offset", "0"),
            entry("length", "16"),
        ],
        ..Default::default()
    };
    model(pb::GraphProto {
        name: "g".into(),
        node: vec![node("MatMul", &["x", "w"], &["y"])],
        input: vec![value("x", FLOAT, &[1, 2])],
        output: vec![value("y", FLOAT, &[1, 2])],
        initializer: vec![w],
        ..Default::default()
    })
}

/// Identity weights, as the 16 bytes of external data.
fn identity_bytes() -> Vec<u8> {
    [1f32, 0.0, 0.0, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// A scratch tree: `models/` is the model's directory; beside it, outside, `secret.bin` is a FIFO
/// (a reader that opens it blocks until a writer comes, so a command that opens it hangs and
/// times out) and `outside/` a directory holding a real `data.bin`.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    models: PathBuf,
    secret: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let models = root.join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::create_dir(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/data.bin"), identity_bytes()).unwrap();
    let secret = root.join("secret.bin");
    let made = std::process::Command::new("mkfifo")
        .arg(&secret)
        .status()
        .unwrap();
    assert!(made.success());
    Tree {
        _tmp: tmp,
        root,
        models,
        secret,
    }
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Runs a command with a deadline: one that opened the FIFO would hang.
fn run(cmd: &mut assert_cmd::Command, what: &str) -> std::process::Output {
    cmd.timeout(Duration::from_secs(60))
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Every command but inspect refuses `model` with one line naming it and `location`, without
/// opening what it names; inspect reports it unsafe.
fn refused_everywhere(model: &Path, location: &str) {
    let what = format!("{} ({location})", model.display());
    let out = run(
        cargo_infer()
            .args(["inspect", "--format", "json"])
            .arg(model),
        &what,
    );
    assert_success(&out, &what);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["safety"]["verdict"], "unsafe", "{what}: {v}");
    assert!(
        v["safety"]["findings"][0]
            .as_str()
            .unwrap()
            .contains(location),
        "{what}: {v}"
    );
    assert_eq!(v["external_data"][0]["file"], location, "{what}");
    assert_eq!(v["external_data"][0]["exists"], false, "{what}");
    assert!(v["external_data"][0]["outside"].is_string(), "{what}");
    let out = run(
        cargo_infer()
            .args(["inspect", "--color", "never"])
            .arg(model),
        &what,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("UNSAFE") && text.contains("OUTSIDE") && !text.contains("present"),
        "{what}: {text}"
    );

    let scratch = tempfile::tempdir().unwrap();
    let crate_dir = scratch.path().join("host");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    let manifest = "[package]\nname = \"host\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), "").unwrap();
    let st = scratch.path().join("out.safetensors");
    let rs = scratch.path().join("out.rs");
    let project = scratch.path().join("project");
    let commands: Vec<(&str, assert_cmd::Command)> = vec![
        ("check", {
            let mut c = cargo_infer();
            c.args(["check", "--backend", "tract"]).arg(model);
            c
        }),
        ("check (auto)", {
            let mut c = cargo_infer();
            c.arg("check").arg(model);
            c
        }),
        ("convert", {
            let mut c = cargo_infer();
            c.arg("convert").arg(model).arg(&st);
            c
        }),
        ("emit", {
            let mut c = cargo_infer();
            c.arg("emit").arg(model).arg("-o").arg(&rs);
            c
        }),
        ("decide --probe", {
            let mut c = cargo_infer();
            c.args(["decide", "--probe"]).arg(model);
            c
        }),
        ("init", {
            let mut c = cargo_infer();
            c.arg("init").arg(&project).arg("--model").arg(model);
            c
        }),
        ("add", {
            let mut c = cargo_infer();
            c.arg("add").arg(model).current_dir(&crate_dir);
            c
        }),
    ];
    for (name, mut cmd) in commands {
        let ctx = format!("{name} {what}");
        let out = run(&mut cmd, &ctx);
        let err = one_line_error(&out, &ctx);
        assert!(
            err.contains(&model.display().to_string())
                && err.contains(location)
                && err.contains("outside the model's directory"),
            "{ctx}: {err}"
        );
    }
    assert!(!st.exists() && !rs.exists() && !project.exists());
    assert_eq!(
        std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap(),
        manifest
    );
}

#[test]
fn external_data_that_climbs_out_or_is_absolute_is_refused_unread() {
    let t = tree();
    let m = t.models.join("parent.onnx");
    std::fs::write(&m, external_model("../secret.bin")).unwrap();
    refused_everywhere(&m, "../secret.bin");
    let m = t.models.join("sub-parent.onnx");
    std::fs::write(&m, external_model("./x/../../secret.bin")).unwrap();
    refused_everywhere(&m, "./x/../../secret.bin");
    let m = t.models.join("absolute.onnx");
    let abs = t.secret.display().to_string();
    std::fs::write(&m, external_model(&abs)).unwrap();
    refused_everywhere(&m, &abs);
    // A safetensors index naming a shard outside goes through the same rule: an error, unread.
    let index = t.models.join("model.safetensors.index.json");
    std::fs::write(&index, r#"{"weight_map": {"w": "../secret.bin"}}"#).unwrap();
    let out = run(cargo_infer().arg("inspect").arg(&index), "index");
    let err = one_line_error(&out, "index");
    assert!(err.contains("shard `../secret.bin` lies outside"), "{err}");
    // The committed fixtures (made by xtask/fixtures.py) say the same.
    for (name, location) in [
        ("unsafe/external-parent.onnx", "../secret.bin"),
        ("unsafe/external-absolute.onnx", "/etc/passwd"),
    ] {
        refused_everywhere(&fixtures().join(name), location);
    }
}

#[test]
fn symbolic_links_that_leave_the_directory_count_as_leaving() {
    let t = tree();
    // A link to the FIFO, relative and absolute; a directory link; a chain of links.
    symlink("../secret.bin", t.models.join("rel.bin"));
    symlink(&t.secret, t.models.join("abs.bin"));
    symlink("../outside", t.models.join("sub"));
    symlink("hop.bin", t.models.join("chain.bin"));
    symlink("rel.bin", t.models.join("hop.bin"));
    symlink("loop.bin", t.models.join("loop.bin"));
    for location in [
        "rel.bin",
        "abs.bin",
        "sub/data.bin",
        "chain.bin",
        "loop.bin",
    ] {
        let m = t
            .models
            .join(format!("via-{}.onnx", location.replace('/', "-")));
        std::fs::write(&m, external_model(location)).unwrap();
        refused_everywhere(&m, location);
    }
    // A link that stays inside is fine: inspect sees the data, check runs it.
    std::fs::create_dir(t.models.join("data")).unwrap();
    std::fs::write(t.models.join("data/w.bin"), identity_bytes()).unwrap();
    symlink("data/w.bin", t.models.join("inside.bin"));
    symlink(t.models.join("data"), t.models.join("absdata"));
    for location in ["inside.bin", "absdata/w.bin", "data/w.bin"] {
        let m = t.models.join("ok.onnx");
        std::fs::write(&m, external_model(location)).unwrap();
        let out = run(
            cargo_infer().args(["inspect", "--format", "json"]).arg(&m),
            location,
        );
        assert_success(&out, location);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["safety"]["verdict"], "not-applicable", "{location}: {v}");
        assert_eq!(v["external_data"][0]["exists"], true, "{location}: {v}");
        let (code, v) = check_json(&[m.to_str().unwrap(), "--backend", "tract"]);
        assert_eq!(code, 0, "{location}: {v}");
    }
    assert!(t.root.join("outside/data.bin").is_file());
}

/// Minimal `.npy` writer (version 1.0, C order).
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| format!("{d},")).collect();
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(" ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn bool_bytes_other_than_0_and_1_are_true_from_every_input_file() {
    let dir = tempfile::tempdir().unwrap();
    // not_b = Not(b), as_int = Cast<int32>(b): with every byte true, all false and all 1.
    let bytes: Vec<u8> = (2..=255).collect();
    let n = bytes.len();
    let mut cast = node("Cast", &["b"], &["as_int"]);
    cast.attribute.push(pb::AttributeProto {
        name: "to".into(),
        r#type: 2,
        i: INT32 as i64,
        ..Default::default()
    });
    let m = dir.path().join("bools.onnx");
    std::fs::write(
        &m,
        model(pb::GraphProto {
            name: "bools".into(),
            node: vec![node("Not", &["b"], &["not_b"]), cast],
            input: vec![value("b", BOOL, &[n as i64])],
            output: vec![
                value("not_b", BOOL, &[n as i64]),
                value("as_int", INT32, &[n as i64]),
            ],
            ..Default::default()
        }),
    )
    .unwrap();
    let expected = dir.path().join("expected");
    std::fs::create_dir(&expected).unwrap();
    let ones: Vec<u8> = (0..n).flat_map(|_| 1i32.to_le_bytes()).collect();
    std::fs::write(
        expected.join("output_0.pb"),
        tensor_pb("not_b", BOOL, &[n as i64], vec![0; n]),
    )
    .unwrap();
    std::fs::write(
        expected.join("output_1.pb"),
        tensor_pb("as_int", INT32, &[n as i64], ones.clone()),
    )
    .unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::write(inputs.join("b.npy"), npy("|b1", &[n], &bytes)).unwrap();
    std::fs::write(
        inputs.join("b.pb"),
        tensor_pb("b", BOOL, &[n as i64], bytes.clone()),
    )
    .unwrap();
    let json = serde_json::json!({"dtype": "bool", "shape": [n], "data": bytes});
    std::fs::write(inputs.join("b.json"), json.to_string()).unwrap();
    for file in ["b.npy", "b.pb", "b.json"] {
        let arg = format!("b={}", inputs.join(file).display());
        let (code, v) = check_json(&[
            m.to_str().unwrap(),
            "--backend",
            "tract",
            "--input",
            &arg,
            "--expected",
            expected.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{file}: {v}");
        assert_eq!(v["models"][0]["comparisons"].as_array().unwrap().len(), 2);
    }
    // An ONNX test data set next to the model.
    let set = dir.path().join("test_data_set_0");
    std::fs::create_dir(&set).unwrap();
    std::fs::copy(inputs.join("b.pb"), set.join("input_0.pb")).unwrap();
    std::fs::copy(expected.join("output_0.pb"), set.join("output_0.pb")).unwrap();
    std::fs::copy(expected.join("output_1.pb"), set.join("output_1.pb")).unwrap();
    let (code, v) = check_json(&[m.to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(code, 0, "test data set: {v}");
    assert_eq!(v["models"][0]["data_sets"][0], "test_data_set_0");
}

#[test]
fn emit_to_a_directory_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    for out in [".", "..", "/", dir.path().to_str().unwrap()] {
        let o = cargo_infer()
            .arg("emit")
            .arg(fixtures().join("mlp.onnx"))
            .args(["-o", out])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = one_line_error(&o, out);
        assert!(err.contains("is a directory"), "{out}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_constant_node_without_output_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("constant.onnx");
    let mut c = node("Constant", &[], &[]);
    c.name = "c".into();
    c.attribute.push(pb::AttributeProto {
        name: "value".into(),
        r#type: 4,
        t: Some(pb::TensorProto {
            dims: vec![2, 2],
            data_type: FLOAT,
            raw_data: identity_bytes(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let w = pb::TensorProto {
        name: "w".into(),
        dims: vec![2, 2],
        data_type: FLOAT,
        raw_data: identity_bytes(),
        ..Default::default()
    };
    std::fs::write(
        &m,
        model(pb::GraphProto {
            name: "g".into(),
            node: vec![c, node("MatMul", &["x", "w"], &["y"])],
            input: vec![value("x", FLOAT, &[1, 2])],
            output: vec![value("y", FLOAT, &[1, 2])],
            initializer: vec![w],
            ..Default::default()
        }),
    )
    .unwrap();
    let rs = dir.path().join("m.rs");
    for args in [
        vec!["inspect"],
        vec!["decide"],
        vec!["emit", "-o", rs.to_str().unwrap()],
        vec![
            "convert",
            dir.path().join("w.safetensors").to_str().unwrap(),
        ],
    ] {
        let out = cargo_infer()
            .arg(args[0])
            .arg(&m)
            .args(&args[1..])
            .output()
            .unwrap();
        let err = one_line_error(&out, args[0]);
        assert!(
            err.contains(&m.display().to_string())
                && err.contains("Constant")
                && err.contains("has no output"),
            "{}: {err}",
            args[0]
        );
    }
}

#[test]
fn names_no_node_defines_are_one_line_errors_before_any_back_end_sees_them() {
    // tract looks the graph's outputs up without asking and panicked on these.
    let dir = tempfile::tempdir().unwrap();
    let w = || pb::TensorProto {
        name: "w".into(),
        dims: vec![2, 2],
        data_type: FLOAT,
        raw_data: identity_bytes(),
        ..Default::default()
    };
    let cases = [
        (
            "output.onnx",
            vec![node("MatMul", &["x", "w"], &["y"])],
            "zz",
            "graph output `zz`",
        ),
        (
            "input.onnx",
            vec![node("MatMul", &["x", "nothing"], &["y"])],
            "y",
            "reads `nothing`",
        ),
    ];
    for (file, nodes, out_name, phrase) in cases {
        let m = dir.path().join(file);
        std::fs::write(
            &m,
            model(pb::GraphProto {
                name: "g".into(),
                node: nodes,
                input: vec![value("x", FLOAT, &[1, 2])],
                output: vec![value(out_name, FLOAT, &[1, 2])],
                initializer: vec![w()],
                ..Default::default()
            }),
        )
        .unwrap();
        let project = dir.path().join("project");
        for args in [
            vec!["inspect", m.to_str().unwrap()],
            vec!["decide", m.to_str().unwrap()],
            vec!["check", m.to_str().unwrap(), "--backend", "tract"],
            vec![
                "init",
                "--model",
                m.to_str().unwrap(),
                project.to_str().unwrap(),
            ],
        ] {
            let out = cargo_infer().args(&args).output().unwrap();
            // check reports a model it cannot read in its report, and exits 2.
            let err = if args[0] == "check" {
                assert_eq!(out.status.code(), Some(2));
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                one_line_error(&out, args[0])
            };
            assert!(
                err.contains(phrase) && err.contains(file),
                "{}: {err}",
                args[0]
            );
            assert!(!project.exists());
        }
    }
}

// --- hostile sizes ---------------------------------------------------------------------------

/// Memory a command may take for a hostile file (address space, so that an attempt to allocate
/// by a declared size fails at once instead of swapping).
const MEMORY_KB: u64 = 1 << 20;

/// Runs the binary under `ulimit -v` and a deadline; returns the output and the time taken.
fn bounded(args: &[&str]) -> (std::process::Output, Duration) {
    let bin = env!("CARGO_BIN_EXE_cargo-infer");
    let start = Instant::now();
    let out = assert_cmd::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KB} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    (out, start.elapsed())
}

/// `inspect`, `decide`, `emit`, `convert` refuse `model` with one line holding `phrase`, and
/// `check` reports it as an error with that line, each in bounded time and memory.
fn refused_in_bounds(model: &Path, phrase: &str) {
    let dir = tempfile::tempdir().unwrap();
    let m = model.to_str().unwrap();
    let rs = dir.path().join("m.rs");
    let st = dir.path().join("m.safetensors");
    for args in [
        vec!["inspect", m],
        vec!["decide", m],
        vec!["emit", m, "-o", rs.to_str().unwrap()],
        vec!["convert", m, st.to_str().unwrap()],
        vec!["check", m, "--backend", "tract", "--format", "json"],
    ] {
        let (out, took) = bounded(&args);
        let ctx = format!("{args:?}");
        assert!(took < Duration::from_secs(20), "{ctx}: took {took:?}");
        if args[0] == "check" {
            assert_eq!(out.status.code(), Some(2), "{ctx}");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let msg = v["models"][0]["message"].as_str().unwrap();
            assert!(
                msg.contains(phrase) && msg.lines().count() == 1,
                "{ctx}: {msg}"
            );
        } else {
            let err = one_line_error(&out, &ctx);
            assert!(err.contains(m) && err.contains(phrase), "{ctx}: {err}");
        }
    }
}

#[test]
fn a_gguf_array_of_2_to_the_60_elements_is_refused_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let key = b"tokenizer.ggml.tokens";
    for (name, item_type) in [("u8.gguf", 0u32), ("strings.gguf", 8), ("arrays.gguf", 9)] {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes()); // tensors
        b.extend(1u64.to_le_bytes()); // metadata keys
        b.extend((key.len() as u64).to_le_bytes());
        b.extend(key);
        b.extend(9u32.to_le_bytes()); // array
        b.extend(item_type.to_le_bytes());
        b.extend((1u64 << 60).to_le_bytes());
        b.extend([0u8; 64]);
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        refused_in_bounds(&p, "array claims 1152921504606846976 items");
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited field's tag and length (the payload follows).
fn delimited(field: u64, len: usize, out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(len as u64, out);
}

fn string_field(field: u64, s: &str, out: &mut Vec<u8>) {
    delimited(field, s.len(), out);
    out.extend(s.as_bytes());
}

/// An ONNX model whose graph holds an If whose `then_branch` holds an If … `depth` deep. Built
/// back to front — the bytes reversed, each level appending its header — so that a level costs
/// the size of its header, not of everything inside it.
fn nested_ifs(depth: usize) -> Vec<u8> {
    let mut rev: Vec<u8> = Vec::new();
    let wrap = |rev: &mut Vec<u8>, head: Vec<u8>| rev.extend(head.iter().rev());
    let mut leaf = Vec::new();
    string_field(2, "leaf", &mut leaf);
    wrap(&mut rev, leaf);
    for level in 0..depth {
        // AttributeProto { name: "then_branch", type: GRAPH, g: <the graph so far> }
        let mut h = Vec::new();
        string_field(1, "then_branch", &mut h);
        varint(20 << 3, &mut h);
        varint(5, &mut h);
        delimited(6, rev.len(), &mut h);
        wrap(&mut rev, h);
        // NodeProto { input: ["c"], output: ["y"], op_type: "If", attribute: [<it>] }
        let mut h = Vec::new();
        string_field(1, "c", &mut h);
        string_field(2, "y", &mut h);
        string_field(4, "If", &mut h);
        delimited(5, rev.len(), &mut h);
        wrap(&mut rev, h);
        // GraphProto { name: "g", node: [<it>] }, the outermost with its input `c` (a name it
        // reads must be one it defines).
        let mut h = Vec::new();
        string_field(2, "g", &mut h);
        if level + 1 == depth {
            let mut input = Vec::new();
            string_field(1, "c", &mut input);
            delimited(11, input.len(), &mut h);
            h.extend(input);
        }
        delimited(1, rev.len(), &mut h);
        wrap(&mut rev, h);
    }
    // ModelProto { ir_version: 8, opset_import: [{version: 17}], graph: <it> }
    let mut h = vec![1 << 3, 8];
    delimited(8, 2, &mut h);
    h.extend([2 << 3, 17]);
    delimited(7, rev.len(), &mut h);
    wrap(&mut rev, h);
    rev.reverse();
    rev
}

#[test]
fn an_onnx_graph_nested_ten_thousand_deep_is_refused_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("deep.onnx");
    std::fs::write(&p, nested_ifs(10_000)).unwrap();
    refused_in_bounds(&p, "nested too deeply");
    // What real models nest is read (20 levels), with every If counted.
    let p = dir.path().join("twenty.onnx");
    std::fs::write(&p, nested_ifs(20)).unwrap();
    let out = cargo_infer()
        .args(["inspect", "--format", "json"])
        .arg(&p)
        .output()
        .unwrap();
    assert_success(&out, "20 levels");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["operators"]["If"], 20);
}
