//! Graphs prepared for tract (src/prepare.rs), in the forms the review of that pass asked about:
//! data sets that differ only in the value of an input tract fixes, folded branches whose node
//! names the graph already has, and inputs a shipped model must not fix to a synthetic value.

use std::collections::HashSet;

use prost::Message;
use tract_onnx::pb;

use crate::common::onnx::{model, node, tensor_pb, value, FLOAT, INT64};
use crate::common::{cargo_infer, check_json, fixtures, one_line_error};

fn scalar_i64(name: &str, v: i64) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: INT64,
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn graph_attr(name: &str, g: pb::GraphProto) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 5,
        g: Some(g),
        ..Default::default()
    }
}

/// `y = flatten(If(sr == 16000, unsqueeze(x · 2), x · 3))`: branches of ranks 3 and 2, and in each
/// branch a node named `scale`, as the main graph's `scale` node is.
fn sample_rate_model() -> Vec<u8> {
    let mut then_nodes = vec![
        node("Mul", &["x", "two"], &["t2"]),
        node("Unsqueeze", &["t2", "axes"], &["t"]),
    ];
    then_nodes[0].name = "scale".into();
    let mut else_nodes = vec![node("Mul", &["x", "three"], &["e"])];
    else_nodes[0].name = "scale".into();
    let then_g = pb::GraphProto {
        name: "sr16k".into(),
        node: then_nodes,
        initializer: vec![
            floats("two", &[], &[2.0]),
            pb::TensorProto {
                name: "axes".into(),
                dims: vec![1],
                data_type: INT64,
                raw_data: 2i64.to_le_bytes().to_vec(),
                ..Default::default()
            },
        ],
        output: vec![value("t", FLOAT, &[1, 4, 1])],
        ..Default::default()
    };
    let else_g = pb::GraphProto {
        name: "other".into(),
        node: else_nodes,
        initializer: vec![floats("three", &[], &[3.0])],
        output: vec![value("e", FLOAT, &[1, 4])],
        ..Default::default()
    };
    let mut cond = node("Equal", &["sr", "rate"], &["is16k"]);
    cond.name = "is16k".into();
    let mut branch = node("If", &["is16k"], &["b"]);
    branch.name = "If_sr".into();
    branch.attribute = vec![
        graph_attr("then_branch", then_g),
        graph_attr("else_branch", else_g),
    ];
    let mut flat = node("Reshape", &["b", "flat"], &["y"]);
    flat.name = "scale".into();
    model(pb::GraphProto {
        name: "sample_rate".into(),
        node: vec![cond, branch, flat],
        input: vec![value("x", FLOAT, &[1, 4]), value("sr", INT64, &[])],
        output: vec![value("y", FLOAT, &[1, 4])],
        initializer: vec![
            scalar_i64("rate", 16000),
            pb::TensorProto {
                name: "flat".into(),
                dims: vec![2],
                data_type: INT64,
                raw_data: [1i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect(),
                ..Default::default()
            },
        ],
        ..Default::default()
    })
}

/// Two data sets of one shape that differ only in the sample rate: tract's graph prepared for
/// the first (sr fixed to 16000) must not run the second, whose expected outputs take the other
/// branch.
#[test]
fn a_graph_prepared_for_one_sample_rate_is_not_reused_for_another() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), sample_rate_model()).unwrap();
    let x = [0.5f32, -1.0, 2.0, 4.0];
    let raw = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    for (k, (sr, factor)) in [(16000i64, 2.0f32), (8000, 3.0)].iter().enumerate() {
        let set = dir.path().join(format!("test_data_set_{k}"));
        std::fs::create_dir(&set).unwrap();
        std::fs::write(
            set.join("input_0.pb"),
            tensor_pb("x", FLOAT, &[1, 4], raw(&x)),
        )
        .unwrap();
        std::fs::write(
            set.join("input_1.pb"),
            scalar_i64("sr", *sr).encode_to_vec(),
        )
        .unwrap();
        let y: Vec<f32> = x.iter().map(|v| v * factor).collect();
        std::fs::write(
            set.join("output_0.pb"),
            tensor_pb("y", FLOAT, &[1, 4], raw(&y)),
        )
        .unwrap();
    }
    let (code, v) = check_json(&[
        dir.path().join("model.onnx").to_str().unwrap(),
        "--backend",
        "tract",
    ]);
    assert_eq!(code, 0, "{v}");
    let comparisons = v["models"][0]["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "{v}");
    assert!(comparisons.iter().all(|c| c["pass"] == true), "{v}");
}

/// The taken branch's node named `scale` lands beside the main graph's `scale`: the written model
/// has no two nodes of one name (tract keeps node and tensor names in one namespace, and the
/// project that ships the file runs plain tract).
#[test]
fn folded_branches_keep_node_names_unique() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("sr.onnx");
    std::fs::write(&m, sample_rate_model()).unwrap();
    let out = dir.path().join("sr.tract.onnx");
    let o = cargo_infer()
        .arg("convert")
        .arg(&m)
        .arg(&out)
        .args(["--for", "tract", "--const", "sr=16000"])
        .output()
        .unwrap();
    crate::common::assert_success(&o, "convert --for tract");
    let written = pb::ModelProto::decode(&std::fs::read(&out).unwrap()[..]).unwrap();
    let g = written.graph.unwrap();
    let mut names = HashSet::new();
    let tensors: HashSet<&str> = g
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(g.input.iter().map(|i| i.name.as_str()))
        .collect();
    for n in &g.node {
        assert!(
            names.insert(n.name.as_str()),
            "two nodes named `{}`",
            n.name
        );
        assert!(
            !tensors.contains(n.name.as_str()),
            "node `{}` named like a tensor",
            n.name
        );
    }
    assert!(!g.node.iter().any(|n| n.op_type == "If"));
}

/// A project ships the model it was made with: an input tract needs as a constant is fixed only to
/// a value the user gave, never to a synthetic one; without it, `init` says which input and how.
#[test]
fn init_never_bakes_in_a_synthetic_constant() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("vad");
    let o = cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(fixtures().join("forms/if_rank.onnx"))
        .args(["--framework", "tract", "--dim", "n=8"])
        .output()
        .unwrap();
    let err = one_line_error(&o, "init without the sample rate");
    assert!(err.contains("`sr`") && err.contains("--input"), "{err}");
    assert!(!project.exists());
}

/// Writes `inputs` and `outputs` as the ONNX test data set 0 next to `model`.
fn data_set(model: &std::path::Path, inputs: &[pb::TensorProto], outputs: &[pb::TensorProto]) {
    let set = model.parent().unwrap().join("test_data_set_0");
    std::fs::create_dir_all(&set).unwrap();
    for (k, t) in inputs.iter().enumerate() {
        std::fs::write(set.join(format!("input_{k}.pb")), t.encode_to_vec()).unwrap();
    }
    for (k, t) in outputs.iter().enumerate() {
        std::fs::write(set.join(format!("output_{k}.pb")), t.encode_to_vec()).unwrap();
    }
}

/// The check of one model on tract, as JSON: its report, and tract's notes in one string.
fn tract_check(model: &std::path::Path) -> (i32, serde_json::Value, String) {
    let (code, v) = check_json(&[model.to_str().unwrap(), "--backend", "tract"]);
    let notes = v["models"][0]["backends"][0]["notes"].to_string();
    (code, v, notes)
}

/// Scalar operands written as one-element tensors (as the ONNX functions of the backend suite and
/// some exporters write them): `Range(0, limit[1], 1)` with `limit` computed from the input's
/// shape, and a `Pad` whose constant value is a `[1]` tensor. ONNX Runtime takes both; tract only
/// scalars. Prepared, tract runs them and agrees with the expected outputs.
#[test]
fn one_element_tensors_where_scalars_belong_become_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("range_pad.onnx");
    let ints = |name: &str, dims: &[i64], v: &[i64]| pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: INT64,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "range_pad".into(),
        node: vec![
            node("Shape", &["x"], &["shape"]),
            node("Slice", &["shape", "one", "two"], &["limit"]),
            node("Range", &["zero", "limit", "step"], &["r"]),
            node("Cast", &["r"], &["rf"]),
            node("Pad", &["rf", "pads", "fill"], &["y"]),
        ],
        input: vec![value("x", FLOAT, &[2, 3])],
        output: vec![value("y", FLOAT, &[5])],
        initializer: vec![
            ints("one", &[1], &[1]),
            ints("two", &[1], &[2]),
            scalar_i64("zero", 0),
            scalar_i64("step", 1),
            ints("pads", &[2], &[1, 1]),
            floats("fill", &[1], &[-7.0]),
        ],
        ..Default::default()
    };
    let mut g = graph;
    g.node[3].attribute.push(pb::AttributeProto {
        name: "to".into(),
        r#type: 2,
        i: FLOAT as i64,
        ..Default::default()
    });
    std::fs::write(&m, model(g)).unwrap();
    data_set(
        &m,
        &[floats("x", &[2, 3], &[0.0; 6])],
        &[floats("y", &[5], &[-7.0, 0.0, 1.0, 2.0, -7.0])],
    );
    let (code, v, notes) = tract_check(&m);
    assert_eq!(code, 0, "{v}");
    assert!(
        notes.contains("of Range") && notes.contains("of Pad") && notes.contains("a scalar"),
        "{notes}"
    );
    let comparisons = v["models"][0]["comparisons"].as_array().unwrap();
    assert!(
        !comparisons.is_empty() && comparisons.iter().all(|c| c["pass"] == true),
        "{v}"
    );
}

/// Operands tract needs constant (Resize's scales, here) fed as graph inputs, as the backend
/// suite feeds them: fixed to the data's values, tract runs the graph, and the outputs agree.
#[test]
fn inputs_tract_needs_constant_are_fixed_to_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("resize.onnx");
    let mut resize = node("Resize", &["x", "", "scales"], &["y"]);
    resize.attribute.push(pb::AttributeProto {
        name: "mode".into(),
        r#type: 3,
        s: b"nearest".to_vec(),
        ..Default::default()
    });
    let graph = pb::GraphProto {
        name: "resize".into(),
        node: vec![resize],
        input: vec![
            value("x", FLOAT, &[1, 1, 2, 2]),
            value("scales", FLOAT, &[4]),
        ],
        output: vec![value("y", FLOAT, &[1, 1, 4, 4])],
        ..Default::default()
    };
    std::fs::write(&m, model(graph)).unwrap();
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let mut y = Vec::new();
    for r in 0..4 {
        for c in 0..4 {
            y.push(x[(r / 2) * 2 + c / 2]);
        }
    }
    data_set(
        &m,
        &[
            floats("x", &[1, 1, 2, 2], &x),
            floats("scales", &[4], &[1.0, 1.0, 2.0, 2.0]),
        ],
        &[floats("y", &[1, 1, 4, 4], &y)],
    );
    let (code, v, notes) = tract_check(&m);
    assert_eq!(code, 0, "{v}");
    assert!(notes.contains("scales"), "{notes}");
    let comparisons = v["models"][0]["comparisons"].as_array().unwrap();
    assert!(
        !comparisons.is_empty() && comparisons.iter().all(|c| c["pass"] == true),
        "{v}"
    );
}
