//! Graph preparation for tract (ONNX → ONNX, on the model already read; no Python).
//!
//! Real exporters write graphs that ONNX Runtime runs and tract, which types the whole graph
//! statically before running it, refuses for their *form*: an `If` whose branches produce
//! different ranks (or whose untaken branch cannot be typed at these shapes), `Squeeze` before
//! opset 13 with its axes left implicit, shapes recorded while tracing with batch 1 beside a
//! symbolic batch. [`prepare`] rewrites such a graph into one tract accepts and that computes
//! the same outputs on the data it was prepared for:
//!
//! - input shapes are pinned to the data's shapes, and the inputs tract needs as constants
//!   (integer, boolean and scalar ones: a sample rate, a threshold) become initializers;
//! - an `If` whose condition is constant at those values is replaced by the branch taken (nested
//!   ones too: the pass runs until nothing changes);
//! - a `Squeeze` without axes (opset < 13) gets the axes its input's known shape implies;
//! - recorded intermediate and output shapes (`value_info`) are dropped when asked.
//!
//! Conditions and shapes are found by tract's own analysis of the part of the graph that leads
//! to them. Each rewrite is recorded: the node, what changed, and why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::{Factoid, InferenceOp};

use crate::backends::{Device, Named};
use crate::check::compare::Comparison;
use crate::error::{ExpectedError, FileError, ModelError};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// One change to the graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rewrite {
    /// The node or input changed.
    pub node: String,
    /// Its operator (`input` for a graph input, `graph` for the whole graph).
    pub op: String,
    /// What changed and why, in words.
    pub change: String,
}

impl Rewrite {
    /// A rewrite; its words are one line whatever the model's names hold.
    fn new(node: &str, op: &str, change: String) -> Rewrite {
        Rewrite {
            node: node.to_string(),
            op: op.to_string(),
            change: crate::error::one_line(&change),
        }
    }
}

impl std::fmt::Display for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.change)
    }
}

/// What to prepare for.
pub struct Pins<'a> {
    /// The data the model will be run on, in the graph's input order.
    pub inputs: &'a [Named],
    /// Which of them become constants.
    pub constant: &'a [usize],
    /// Drop recorded intermediate and output shapes.
    pub drop_annotations: bool,
}

/// Operands tract wants constant to type or build a node (the ONNX test suite feeds them as graph
/// inputs; real exporters write them as initializers): op type and input positions.
const CONSTANT_OPERANDS: &[(&str, &[usize])] = &[
    ("Resize", &[1, 2, 3]),
    ("Upsample", &[1]),
    ("QuantizeLinear", &[1, 2]),
    ("DequantizeLinear", &[1, 2]),
    ("QLinearMatMul", &[1, 2, 4, 5, 6, 7]),
    ("QLinearConv", &[1, 2, 4, 5, 6, 7]),
    ("MatMulInteger", &[2, 3]),
    ("ConvInteger", &[2, 3]),
    ("BatchNormalization", &[1, 2, 3, 4]),
    ("Pad", &[1, 2, 3]),
    ("STFT", &[1, 2, 3]),
    ("OneHot", &[1]),
];

/// The inputs tract may need as constants to type a graph: integer, boolean and scalar ones
/// (shapes, axes and branch conditions come from them), as tract's own CLI does with
/// `--constantize`, and those a node reads where tract wants a constant ([`CONSTANT_OPERANDS`]).
pub fn constant_candidates(graph: Option<&pb::GraphProto>, inputs: &[Named]) -> Vec<usize> {
    let operand = |name: &str| {
        graph.is_some_and(|g| {
            g.node.iter().any(|n| {
                CONSTANT_OPERANDS.iter().any(|(op, at)| {
                    n.op_type == *op
                        && is_onnx_domain(&n.domain)
                        && at
                            .iter()
                            .any(|&i| n.input.get(i).is_some_and(|x| x == name))
                })
            })
        })
    };
    inputs
        .iter()
        .enumerate()
        .filter(|(_, (name, t))| !t.dtype.is_plain_float() || t.shape.is_empty() || operand(name))
        .map(|(i, _)| i)
        .collect()
}

/// Rewrites `model` for tract (see the module's documentation); returns what it changed.
/// `dir` is the model's directory (for external data).
pub fn prepare(
    model: &mut pb::ModelProto,
    dir: Option<&str>,
    pins: &Pins,
) -> Result<Vec<Rewrite>, Unprepared> {
    rewrite(model, dir, pins).map_err(Unprepared::from)
}

crate::error::message_error! {
    /// Why a graph could not be prepared for tract (an input pinned to a shape it cannot take, a
    /// rewrite tract's analysis refuses): one line about the graph, without its path.
    Unprepared
}

fn rewrite(
    model: &mut pb::ModelProto,
    dir: Option<&str>,
    pins: &Pins,
) -> Result<Vec<Rewrite>, String> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| is_onnx_domain(&o.domain))
        .map(|o| o.version)
        .unwrap_or(0);
    let opsets = model.opset_import.clone();
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    let mut rewrites = Vec::new();
    pin_inputs(graph, pins, &mut rewrites)?;
    if pins.drop_annotations {
        drop_annotations(graph, &mut rewrites);
    }
    // Each round settles what the analysis of the graph as it stands can settle; a folded If can
    // make the conditions and shapes after it constant, hence the rounds.
    for _ in 0..64 {
        let targets = targets(graph, opset);
        if targets.is_empty() {
            break;
        }
        let facts = analyse(graph, &opsets, dir, &targets)?;
        if !rewrite_round(graph, opset, &facts, pins, &mut rewrites)? {
            break;
        }
    }
    node_names(graph, &mut rewrites);
    Ok(rewrites)
}

/// Drops the recorded shapes of intermediate values (`value_info`) and outputs, recorded when
/// there were any.
fn drop_annotations(graph: &mut pb::GraphProto, rewrites: &mut Vec<Rewrite>) {
    let n = graph.value_info.len();
    graph.value_info.clear();
    let mut outputs = 0;
    for o in graph.output.iter_mut() {
        if let Some(pb::type_proto::Value::TensorType(t)) =
            o.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            outputs += t.shape.take().is_some() as usize;
        }
    }
    if n + outputs > 0 {
        let plural = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        rewrites.push(Rewrite::new(
            &graph.name,
            "graph",
            format!(
                "dropped the recorded shapes (value_info) of {} and {}: they contradict the input shapes",
                plural(n, "intermediate value"),
                plural(outputs, "output")
            ),
        ));
    }
}

/// One pass over the nodes with what the analysis settled: each `If` of known condition folded,
/// each scalar operand known to be of shape [1] made a scalar, each implicit `Squeeze` of known
/// input shape given its axes. Returns whether anything changed.
fn rewrite_round(
    graph: &mut pb::GraphProto,
    opset: i64,
    facts: &HashMap<String, Known>,
    pins: &Pins,
    rewrites: &mut Vec<Rewrite>,
) -> Result<bool, String> {
    let mut changed = false;
    let mut k = 0;
    while k < graph.node.len() {
        let node = &graph.node[k];
        // How many nodes the rewrite leaves at `k` (the round goes on past them), if it made one.
        let step = if is_if(node) {
            fold_known_if(graph, k, facts, pins, rewrites)?
        } else if let Some(i) = one_element_operand(node, opset, facts) {
            Some(make_scalar(graph, k, i, rewrites))
        } else if is_implicit_squeeze(node, opset) {
            write_squeeze_axes(graph, k, opset, facts, rewrites)
        } else {
            None
        };
        match step {
            Some(n) => {
                k += n;
                changed = true;
            }
            None => k += 1,
        }
    }
    Ok(changed)
}

/// Folds the `If` at `k` when the analysis settled its condition; returns how many nodes now
/// stand where it stood.
fn fold_known_if(
    graph: &mut pb::GraphProto,
    k: usize,
    facts: &HashMap<String, Known>,
    pins: &Pins,
    rewrites: &mut Vec<Rewrite>,
) -> Result<Option<usize>, String> {
    let node = &graph.node[k];
    let Some(&Known::Bool(cond)) = node.input.first().and_then(|c| facts.get(c)) else {
        return Ok(None);
    };
    let why = because(graph, &node.input[0], pins);
    fold_if(graph, k, cond, &why, rewrites).map(Some)
}

/// The first scalar operand of `node` that the analysis found to be a one-element tensor of
/// shape [1].
fn one_element_operand(
    node: &pb::NodeProto,
    opset: i64,
    facts: &HashMap<String, Known>,
) -> Option<usize> {
    scalar_operands(node, opset)
        .iter()
        .copied()
        .find(|&i| node.input.get(i).and_then(|x| facts.get(x)) == Some(&Known::Shape(vec![1])))
}

/// Makes operand `i` of the node at `k` a scalar, recorded; returns 2 (the Reshape inserted and
/// the node itself).
fn make_scalar(
    graph: &mut pb::GraphProto,
    k: usize,
    i: usize,
    rewrites: &mut Vec<Rewrite>,
) -> usize {
    let node = &graph.node[k];
    rewrites.push(Rewrite::new(
        &name_of(node),
        &node.op_type,
        format!(
            "made operand {i} (`{}`) of {} `{}` a scalar: it is a one-element tensor of shape [1] where the operator takes a scalar",
            node.input[i],
            node.op_type,
            name_of(node)
        ),
    ));
    reshape_to_scalar(graph, k, i);
    2
}

/// Writes into the implicit `Squeeze` at `k` the axes its input's known shape implies
/// (its unit dimensions), recorded; returns 1 when it did.
fn write_squeeze_axes(
    graph: &mut pb::GraphProto,
    k: usize,
    opset: i64,
    facts: &HashMap<String, Known>,
    rewrites: &mut Vec<Rewrite>,
) -> Option<usize> {
    let node = &graph.node[k];
    let Some(Known::Shape(shape)) = node.input.first().and_then(|i| facts.get(i)) else {
        return None;
    };
    let axes: Vec<i64> = (0..shape.len() as i64)
        .filter(|&a| shape[a as usize] == 1)
        .collect();
    rewrites.push(Rewrite::new(
        &name_of(node),
        &node.op_type,
        format!(
            "wrote axes {axes:?} into Squeeze `{}` (opset {opset} leaves them implicit; its input is {shape:?})",
            name_of(node)
        ),
    ));
    graph.node[k].attribute.push(pb::AttributeProto {
        name: "axes".into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: axes,
        ..Default::default()
    });
    Some(1)
}

/// The default ONNX operator set (`""` or its long name).
fn is_onnx_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn is_if(n: &pb::NodeProto) -> bool {
    n.op_type == "If" && is_onnx_domain(&n.domain)
}

fn is_implicit_squeeze(n: &pb::NodeProto, opset: i64) -> bool {
    n.op_type == "Squeeze"
        && is_onnx_domain(&n.domain)
        && opset < 13
        && !n.attribute.iter().any(|a| a.name == "axes")
}

fn name_of(n: &pb::NodeProto) -> String {
    crate::model::node_display_name(&n.name, &n.output)
}

/// Sets each input's shape to its data's, and turns the constant ones into initializers.
fn pin_inputs(
    graph: &mut pb::GraphProto,
    pins: &Pins,
    rewrites: &mut Vec<Rewrite>,
) -> Result<(), String> {
    let initialized: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let real: Vec<usize> = (0..graph.input.len())
        .filter(|&i| !initialized.contains(&graph.input[i].name))
        .collect();
    if real.len() != pins.inputs.len() {
        return Err(format!(
            "{} inputs given for a graph of {}",
            pins.inputs.len(),
            real.len()
        ));
    }
    let mut drop = Vec::new();
    for (k, &gi) in real.iter().enumerate() {
        let (name, t) = &pins.inputs[k];
        let input = &mut graph.input[gi];
        if pins.constant.contains(&k) {
            graph.initializer.push(tensor_proto(&input.name, t));
            rewrites.push(Rewrite::new(
                &input.name,
                "input",
                format!("made input `{}` the constant {}", input.name, show(t)),
            ));
            drop.push(gi);
            continue;
        }
        let Some(pb::type_proto::Value::TensorType(tt)) =
            input.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        let dims: Vec<pb::tensor_shape_proto::Dimension> = t
            .shape
            .iter()
            .map(|&d| pb::tensor_shape_proto::Dimension {
                value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d as i64)),
                ..Default::default()
            })
            .collect();
        let was: Option<Vec<pb::tensor_shape_proto::Dimension>> =
            tt.shape.as_ref().map(|s| s.dim.clone());
        if was.as_ref() != Some(&dims) {
            tt.shape = Some(pb::TensorShapeProto { dim: dims });
            rewrites.push(Rewrite::new(
                name,
                "input",
                format!("pinned `{}` to {:?}", input.name, t.shape),
            ));
        }
    }
    for gi in drop.into_iter().rev() {
        graph.input.remove(gi);
    }
    Ok(())
}

/// A short rendering of a constant input: its value when it is a scalar, else its shape.
fn show(t: &HostTensor) -> String {
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    };
    match t.to_f64() {
        Some(v) if t.shape.is_empty() && v.len() == 1 => number(v[0]),
        Some(v) if v.len() <= 8 => format!(
            "[{}] ({} {:?})",
            v.into_iter().map(number).collect::<Vec<_>>().join(", "),
            t.dtype_name(),
            t.shape
        ),
        _ => format!("{} {:?}", t.dtype_name(), t.shape),
    }
}

fn tensor_proto(name: &str, t: &HostTensor) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_string(),
        dims: t.shape.iter().map(|&d| d as i64).collect(),
        data_type: t.dtype.onnx(),
        raw_data: t.data.clone(),
        string_data: t.strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// What the analysis settled about a value.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Bool(bool),
    Shape(Vec<i64>),
}

/// The values whose facts the next round needs: conditions of the main graph's `If`s, inputs of
/// its implicit `Squeeze`s, scalar operands (which may come as one-element tensors).
fn targets(graph: &pb::GraphProto, opset: i64) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for n in &graph.node {
        if let Some(first) = n.input.first().filter(|i| !i.is_empty()) {
            if is_if(n) {
                out.push((first.clone(), true));
            } else if is_implicit_squeeze(n, opset) {
                out.push((first.clone(), false));
            }
        }
        for &i in scalar_operands(n, opset) {
            if let Some(x) = n.input.get(i).filter(|x| !x.is_empty()) {
                out.push((x.clone(), false));
            }
        }
    }
    out
}

/// Operands the ONNX specification makes scalars, which exporters (and the ONNX functions the
/// suite expands) also write as one-element tensors of shape [1]: ONNX Runtime takes both, tract
/// only the scalar.
fn scalar_operands(n: &pb::NodeProto, opset: i64) -> &'static [usize] {
    if !is_onnx_domain(&n.domain) {
        return &[];
    }
    match n.op_type.as_str() {
        "Range" => &[0, 1, 2],
        "Pad" if opset >= 11 => &[2],
        _ => &[],
    }
}

/// The initializer holding the empty shape `[]` that Reshape makes scalars with.
const SCALAR_SHAPE: &str = "cargo_infer/scalar_shape";

/// Makes operand `i` of node `k` a scalar through a Reshape inserted before it (at `k`).
fn reshape_to_scalar(graph: &mut pb::GraphProto, k: usize, i: usize) {
    if !graph.initializer.iter().any(|t| t.name == SCALAR_SHAPE) {
        graph.initializer.push(pb::TensorProto {
            name: SCALAR_SHAPE.into(),
            dims: vec![0],
            data_type: DType::I64.onnx(),
            ..Default::default()
        });
    }
    let node = &graph.node[k];
    let was = node.input[i].clone();
    let name = format!("{}/scalar_operand_{i}", name_of(node));
    graph.node[k].input[i] = name.clone();
    graph.node.insert(
        k,
        pb::NodeProto {
            op_type: "Reshape".into(),
            name: name.clone(),
            input: vec![was, SCALAR_SHAPE.into()],
            output: vec![name],
            ..Default::default()
        },
    );
}

/// Every name a node reads, its subgraphs' reads of outer names included.
fn reads(n: &pb::NodeProto, out: &mut Vec<String>) {
    out.extend(n.input.iter().filter(|i| !i.is_empty()).cloned());
    for a in &n.attribute {
        for g in a.g.iter().chain(&a.graphs) {
            for sub in &g.node {
                reads(sub, out);
            }
        }
    }
}

/// The op tract is given for an implicit Squeeze while the graph is analysed: it squeezes the unit
/// dimensions of whatever shape comes, so that analysis can go past it.
fn squeeze_all(
    _ctx: &tract_onnx::model::ParsingContext,
    _node: &pb::NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((
        tract_onnx::tract_hir::ops::expandable::expand(
            tract_onnx::tract_hir::ops::array::Squeeze::new(None),
        ),
        vec![],
    ))
}

const SQUEEZE_ALL: &str = "CargoInferSqueezeAll";

/// tract's analysis of the part of the graph the targets depend on; what it settled about each.
fn analyse(
    graph: &pb::GraphProto,
    opsets: &[pb::OperatorSetIdProto],
    dir: Option<&str>,
    targets: &[(String, bool)],
) -> Result<HashMap<String, Known>, String> {
    // The nodes the targets depend on, in graph order.
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(k, n)| n.output.iter().map(move |o| (o.as_str(), k)))
        .collect();
    let mut keep = vec![false; graph.node.len()];
    let mut todo: Vec<String> = targets.iter().map(|(t, _)| t.clone()).collect();
    while let Some(name) = todo.pop() {
        if let Some(&k) = producer.get(name.as_str()) {
            if !keep[k] {
                keep[k] = true;
                reads(&graph.node[k], &mut todo);
            }
        }
    }
    let mut probe = pb::GraphProto {
        name: graph.name.clone(),
        input: graph.input.clone(),
        ..Default::default()
    };
    probe.node = graph
        .node
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(n, _)| {
            let mut n = n.clone();
            if n.op_type == "Squeeze"
                && !n.attribute.iter().any(|a| a.name == "axes")
                && n.input.len() < 2
            {
                n.op_type = SQUEEZE_ALL.into();
                n.domain.clear();
            }
            n
        })
        .collect();
    // Only the weights those nodes read (a large model is not copied whole for a condition).
    let mut read: Vec<String> = targets.iter().map(|(t, _)| t.clone()).collect();
    for n in &probe.node {
        reads(n, &mut read);
    }
    let read: HashSet<String> = read.into_iter().collect();
    probe.initializer = graph
        .initializer
        .iter()
        .filter(|t| read.contains(&t.name))
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    probe.output = targets
        .iter()
        .filter(|(t, _)| seen.insert(t.clone()))
        .map(|(t, _)| pb::ValueInfoProto {
            name: t.clone(),
            ..Default::default()
        })
        .collect();
    let mut onnx = tract_onnx::onnx();
    onnx.op_register.insert(SQUEEZE_ALL, squeeze_all);
    let proto = pb::ModelProto {
        ir_version: 8,
        opset_import: opsets.to_vec(),
        graph: Some(probe),
        ..Default::default()
    };
    let mut facts = HashMap::new();
    // A graph tract cannot parse or analyse settles nothing this round.
    let Ok(parsed) = onnx.parse(&proto, dir) else {
        return Ok(facts);
    };
    let mut model = parsed.model;
    let _ = model.analyse(true);
    for (t, is_cond) in targets {
        let Some(&outlet) = parsed.outlets_by_name.get(t) else {
            continue;
        };
        let Ok(fact) = model.outlet_fact(outlet) else {
            continue;
        };
        if *is_cond {
            if let Some(v) = fact.value.concretize().filter(|v| v.len() == 1) {
                if let Ok(b) = v.cast_to_scalar::<bool>() {
                    facts.insert(t.clone(), Known::Bool(b));
                }
            }
        } else if let Some(shape) = fact.shape.concretize() {
            let dims: Option<Vec<i64>> = shape.iter().map(|d| d.to_i64().ok()).collect();
            if let Some(dims) = dims {
                facts.insert(t.clone(), Known::Shape(dims));
            }
        }
    }
    Ok(facts)
}

/// "sr = 16000": the constant inputs the condition `cond` depends on.
fn because(graph: &pb::GraphProto, cond: &str, pins: &Pins) -> String {
    let producer: HashMap<&str, &pb::NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut seen = HashSet::new();
    let mut todo = vec![cond.to_string()];
    let mut found = Vec::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(&k) = pins.constant.iter().find(|&&k| pins.inputs[k].0 == name) {
            found.push(format!("{} = {}", name, show(&pins.inputs[k].1)));
        }
        if let Some(n) = producer.get(name.as_str()) {
            reads(n, &mut todo);
        }
    }
    found.sort();
    if found.is_empty() {
        "constant in the graph".into()
    } else {
        found.join(", ")
    }
}

/// Replaces the `If` at `k` by the nodes of the branch taken; returns how many nodes now stand
/// where it stood. Names the branch defines that the graph already uses are renamed.
fn fold_if(
    graph: &mut pb::GraphProto,
    k: usize,
    cond: bool,
    why: &str,
    rewrites: &mut Vec<Rewrite>,
) -> Result<usize, String> {
    let node = graph.node.remove(k);
    let which = if cond { "then_branch" } else { "else_branch" };
    let who = name_of(&node);
    let mut branch = node
        .attribute
        .iter()
        .find(|a| a.name == which)
        .and_then(|a| a.g.clone())
        .ok_or_else(|| format!("If `{who}` has no {which}"))?;
    if branch.output.len() != node.output.len() {
        return Err(format!(
            "If `{who}`: its {which} has {} outputs for the node's {}",
            branch.output.len(),
            node.output.len()
        ));
    }
    let renamed = branch_renames(graph, &node, &branch, &who, which);
    rename_in_branch(&mut branch, &renamed, &who, which);
    graph.initializer.append(&mut branch.initializer);
    graph
        .sparse_initializer
        .append(&mut branch.sparse_initializer);
    let mut nodes = branch.node;
    for (from, to) in branch.output.iter().zip(&node.output) {
        nodes.push(pb::NodeProto {
            name: format!("{who}/{which}/output/{to}"),
            op_type: "Identity".into(),
            input: vec![from.name.clone()],
            output: vec![to.clone()],
            ..Default::default()
        });
    }
    let added = nodes.len();
    rewrites.push(Rewrite::new(
        &who,
        "If",
        format!(
            "folded If `{who}` to its {} branch ({why})",
            if cond { "then" } else { "else" }
        ),
    ));
    graph.node.splice(k..k, nodes);
    Ok(added)
}

/// New names for what the branch `which` of the `If` node `who` defines that is defined outside
/// it already (in the graph and every subgraph in it, the node's outputs included).
fn branch_renames(
    graph: &pb::GraphProto,
    node: &pb::NodeProto,
    branch: &pb::GraphProto,
    who: &str,
    which: &str,
) -> HashMap<String, String> {
    let mut taken = HashSet::new();
    defined_in(graph, &mut taken);
    taken.extend(node.output.iter().cloned());
    let mut renamed: HashMap<String, String> = HashMap::new();
    let defined: Vec<String> = branch
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .chain(
            branch
                .sparse_initializer
                .iter()
                .filter_map(|t| t.values.as_ref().map(|v| v.name.clone())),
        )
        .chain(branch.node.iter().flat_map(|n| n.output.iter().cloned()))
        .filter(|n| !n.is_empty())
        .collect();
    for name in defined {
        if taken.contains(&name) {
            let mut j = 1;
            let mut fresh = format!("{who}/{which}/{name}");
            while taken.contains(&fresh) {
                j += 1;
                fresh = format!("{who}/{which}/{name}#{j}");
            }
            taken.insert(fresh.clone());
            renamed.insert(name, fresh);
        } else {
            taken.insert(name);
        }
    }
    renamed
}

/// Applies [`branch_renames`] throughout the branch (definitions, uses, outputs), and prefixes
/// its node names with the `If`'s.
fn rename_in_branch(
    branch: &mut pb::GraphProto,
    renamed: &HashMap<String, String>,
    who: &str,
    which: &str,
) {
    let rename = |s: &mut String| {
        if let Some(r) = renamed.get(s.as_str()) {
            *s = r.clone();
        }
    };
    for t in branch.initializer.iter_mut() {
        rename(&mut t.name);
    }
    for t in branch.sparse_initializer.iter_mut() {
        if let Some(v) = t.values.as_mut() {
            rename(&mut v.name);
        }
    }
    for n in branch.node.iter_mut() {
        rename_uses(n, renamed);
        n.output.iter_mut().for_each(rename);
        // Node names share one namespace with tensor names in tract: the branch's get a prefix.
        if !n.name.is_empty() {
            n.name = format!("{who}/{which}/{}", n.name);
        }
    }
    for o in branch.output.iter_mut() {
        rename(&mut o.name);
    }
}

/// Renames the uses of names in a node and in the subgraphs inside it; a subgraph that defines a
/// name itself keeps its own (it shadows the outer one there).
fn rename_uses(n: &mut pb::NodeProto, renamed: &HashMap<String, String>) {
    for i in n.input.iter_mut() {
        if let Some(r) = renamed.get(i.as_str()) {
            *i = r.clone();
        }
    }
    for a in n.attribute.iter_mut() {
        for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
            let mut own = HashSet::new();
            defined_in(g, &mut own);
            let inner: HashMap<String, String> = renamed
                .iter()
                .filter(|(k, _)| !own.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for sub in g.node.iter_mut() {
                rename_uses(sub, &inner);
            }
            for o in g.output.iter_mut() {
                if let Some(r) = inner.get(o.name.as_str()) {
                    o.name = r.clone();
                }
            }
        }
    }
}

/// Every name a graph defines (inputs, initializers, node outputs), its subgraphs' included.
fn defined_in(g: &pb::GraphProto, out: &mut HashSet<String>) {
    out.extend(g.input.iter().map(|v| v.name.clone()));
    out.extend(g.initializer.iter().map(|t| t.name.clone()));
    out.extend(
        g.sparse_initializer
            .iter()
            .filter_map(|t| t.values.as_ref().map(|v| v.name.clone())),
    );
    for n in &g.node {
        out.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                defined_in(sub, out);
            }
        }
    }
}

/// Gives every node of the graph a name no other node or tensor has: tract keeps both in one
/// namespace, while ONNX keeps them apart, so a node named like an initializer, or two nodes of one
/// name, are valid ONNX that tract refuses. Returns how many were renamed.
pub fn unique_node_names(graph: &mut pb::GraphProto) -> usize {
    let mut taken: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    taken.extend(graph.input.iter().map(|i| i.name.clone()));
    let mut renamed = 0;
    for node in graph.node.iter_mut() {
        if !node.name.is_empty() && taken.contains(&node.name) {
            let mut k = 1;
            while taken.contains(&format!("{}#{k}", node.name)) {
                k += 1;
            }
            node.name = format!("{}#{k}", node.name);
            renamed += 1;
        }
        taken.insert(node.name.clone());
    }
    renamed
}

/// [`unique_node_names`], recorded.
fn node_names(graph: &mut pb::GraphProto, rewrites: &mut Vec<Rewrite>) {
    let n = unique_node_names(graph);
    if n > 0 {
        rewrites.push(Rewrite::new(
            &graph.name,
            "graph",
            format!(
                "renamed {n} node{} whose names another node or a tensor has (tract keeps them in one namespace)",
                if n == 1 { "" } else { "s" }
            ),
        ));
    }
}

/// `convert MODEL.onnx OUT.onnx --for tract`: what to prepare for.
pub struct ForTract<'a> {
    /// The data to prepare for (`--input`, `--dim`, `--input-shape`; synthetic otherwise).
    pub inputs: crate::check::inputs::InputOptions,
    /// `--const NAME=VALUE`: inputs fixed to a value (a sample rate, a threshold).
    pub consts: Vec<(String, String)>,
    /// `--force`: replace an existing output file.
    pub force: bool,
    /// `--ort-lib`: the ONNX Runtime library to compare with the original on; looked for as
    /// usual when `None`.
    pub ort_lib: Option<&'a std::path::Path>,
    /// Only inputs whose values the user gave may become constants (a shipped model must not bake
    /// in a synthetic sample rate); `convert` takes synthetic ones, and says so.
    pub only_given_constants: bool,
}

/// What `convert --for tract` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prepared {
    /// The original model's path, as given.
    pub input: String,
    /// The path the prepared model was written to.
    pub output: String,
    /// Every change made to the graph, then one per external data file inlined.
    pub rewrites: Vec<Rewrite>,
    /// How the prepared model was checked against the original, on the data prepared for.
    pub comparisons: Vec<crate::check::compare::Comparison>,
    /// Checks that could not be made, and why.
    pub notes: Vec<String>,
    /// Size of the written file in bytes (external data inlined).
    pub bytes: u64,
}

/// Prepares an ONNX model for tract and writes it (external data inlined, so that the file stands
/// alone); proves on the data it was prepared for that tract loads it as it is and that it computes
/// what the original computes (on ONNX Runtime when it is available).
pub fn for_tract(input: &Path, output: &Path, opts: &ForTract) -> Result<Prepared, ExpectedError> {
    refuse_output(input, output, opts.force)?;
    let info = crate::model::inspect(input)?;
    crate::model::refuse_outside(&info)?;
    let (proto, inlined) = read_onnx(input, &info)?;
    let Data {
        inputs: data,
        constant,
        notes: data_notes,
    } = data_for(input, &info, opts)?;
    let scratch = tempfile::tempdir().map_err(|e| ExpectedError::Usage(e.to_string()))?;
    let tmp = scratch.path().join("prepared.onnx");
    let (tries, held_back) = attempts(proto.graph.as_ref(), &data, &constant, opts);
    let job = Preparation {
        input,
        info: &info,
        proto: &proto,
        data: &data,
        tmp: &tmp,
    };
    let loaded = job
        .first_loadable(&tries)?
        .map_err(|last| model_error(input, cannot_load(&last, &held_back, &data_notes)))?;
    let (comparisons, notes) = job.compare_with_original(&loaded, opts.ort_lib)?;
    if let Some(c) = comparisons.iter().find(|c| !c.pass) {
        return Err(model_error(
            input,
            format!(
                "the prepared model does not compute what the original does: {} vs {} `{}`: {}; nothing written",
                c.left,
                c.right,
                c.output,
                c.summary()
            ),
        ));
    }
    let Loadable {
        mut rewrites,
        encoded,
        ..
    } = loaded;
    rewrites.extend(inlined_rewrites(inlined));
    crate::util::write_all_or_nothing(&[(output.to_path_buf(), encoded.clone())])?;
    Ok(Prepared {
        input: input.display().to_string(),
        output: output.display().to_string(),
        rewrites,
        comparisons,
        notes,
        bytes: encoded.len() as u64,
    })
}

/// The error of a model `for_tract` cannot prepare.
fn model_error(input: &Path, message: String) -> ExpectedError {
    ExpectedError::Model(ModelError::new(input, message))
}

/// Refuses an output `for_tract` must not write: not named `.onnx`, already there (without
/// `--force`), or the input itself.
fn refuse_output(input: &Path, output: &Path, force: bool) -> Result<(), ExpectedError> {
    let usage = ExpectedError::Usage;
    if output.extension().is_none_or(|e| e != "onnx") {
        return Err(usage(format!(
            "{}: `--for tract` writes an ONNX model; name it .onnx",
            output.display()
        )));
    }
    if output.exists() && !force {
        return Err(
            ExpectedError::from(FileError::new(output, "already exists"))
                .with_hint("pass --force to replace it"),
        );
    }
    if crate::convert::same_file(input, output) {
        return Err(usage(format!(
            "{}: input and output are the same file",
            output.display()
        )));
    }
    Ok(())
}

/// The model's graph with its external data inlined, and the bytes inlined per file.
fn read_onnx(
    input: &Path,
    info: &ModelInfo,
) -> Result<(pb::ModelProto, BTreeMap<String, u64>), ExpectedError> {
    use prost::Message;
    let bad = |m: String| model_error(input, m);
    if info.format != crate::model::Format::Onnx {
        return Err(bad(format!(
            "`--for tract` prepares ONNX models; this is {}",
            info.format.as_str()
        )));
    }
    let bytes = std::fs::read(input).map_err(|e| ModelError::io(input, &e))?;
    let lite = crate::model::onnx::proto::Model::decode(&bytes[..])
        .map_err(|e| bad(format!("not a valid ONNX protobuf: {e}")))?;
    if !lite.functions.is_empty() {
        return Err(bad(
            "it defines model-local functions, which the ONNX writer here does not keep; refused rather than dropped".into(),
        ));
    }
    let mut proto = pb::ModelProto::decode(&bytes[..])
        .map_err(|e| bad(format!("not a valid ONNX protobuf: {e}")))?;
    let inlined = inline_external_data(input, &mut proto, INLINE_MAX)?.ok_or_else(|| {
        bad("more than 2 GiB of external data: an ONNX file cannot hold it inline".into())
    })?;
    Ok((proto, inlined))
}

/// The data a graph is prepared for.
struct Data {
    /// The first data set `check` would use, with the `--const` values in place.
    inputs: Vec<Named>,
    /// The inputs `--const` made constants.
    constant: Vec<usize>,
    /// How the data was made (symbolic dimensions defaulted …).
    notes: Vec<String>,
}

/// The data to prepare for ([`Data`]).
fn data_for(input: &Path, info: &ModelInfo, opts: &ForTract) -> Result<Data, ExpectedError> {
    let bad = |m: String| model_error(input, m);
    let (sets, notes) = crate::check::inputs::signature(info, None, &opts.inputs)
        .and_then(|(info, o)| crate::check::inputs::data_sets(input, &info, &o))
        .map_err(|e| e.into_expected(input))?;
    let mut inputs = sets
        .into_iter()
        .next()
        .ok_or_else(|| bad("no input data".into()))?
        .inputs;
    let mut constant = Vec::new();
    for (name, value) in &opts.consts {
        constant.push(set_const(&mut inputs, name, value)?);
    }
    Ok(Data {
        inputs,
        constant,
        notes,
    })
}

/// `--const NAME=VALUE`: input `name` of the data set to that single value; returns its position.
fn set_const(data: &mut [Named], name: &str, value: &str) -> Result<usize, ExpectedError> {
    let usage = ExpectedError::Usage;
    let k = data.iter().position(|(n, _)| n == name).ok_or_else(|| {
        let names: Vec<&str> = data.iter().map(|(n, _)| n.as_str()).collect();
        usage(format!(
            "--const {name}: the model has no input `{name}` (it has: {})",
            names.join(", ")
        ))
    })?;
    let was = &data[k].1;
    if was.numel() != 1 {
        return Err(usage(format!(
            "--const {name}: `{name}` takes {} values of shape {:?}; --const sets a single value (use --input for tensors)",
            was.numel(),
            was.shape
        )));
    }
    let number: f64 = value
        .parse()
        .map_err(|_| usage(format!("--const {name}={value}: not a number")))?;
    let json = serde_json::json!({"dtype": was.dtype_name(), "shape": was.shape, "data": [number]});
    data[k].1 = crate::check::inputs::tensor_from_json(json.to_string().as_bytes())
        .map_err(|e| usage(format!("--const {name}={value}: {e}")))?;
    Ok(k)
}

/// One way of preparing the graph: the inputs that become constants and whether the recorded
/// shapes are dropped ([`Pins`]); `None`: the graph as it is (its node names made unique).
type Attempt = Option<(Vec<usize>, bool)>;

/// The ways to try, fewest changes first, as the check does: annotations kept, then dropped; the
/// given constants, then the integer, boolean and scalar inputs too. Also the inputs held back
/// from those because their values were not given (for the hint when nothing loads).
fn attempts<'d>(
    graph: Option<&pb::GraphProto>,
    data: &'d [Named],
    constant: &[usize],
    opts: &ForTract,
) -> (Vec<Attempt>, Vec<&'d str>) {
    // Inputs fixed for a shipped model must hold the user's values, not synthetic ones.
    let given = |k: &usize| {
        !opts.only_given_constants
            || opts.inputs.given.iter().any(|g| match g {
                crate::check::inputs::InputArg::All(_) => true,
                crate::check::inputs::InputArg::Named(n, _)
                | crate::check::inputs::InputArg::Value(n, _) => *n == data[*k].0,
            })
    };
    let mut more: Vec<usize> = constant.to_vec();
    let candidates: Vec<usize> = constant_candidates(graph, data)
        .into_iter()
        .filter(|k| !constant.contains(k))
        .collect();
    let held_back: Vec<&str> = candidates
        .iter()
        .filter(|k| !given(k))
        .map(|k| data[*k].0.as_str())
        .collect();
    more.extend(candidates.iter().copied().filter(given));
    // None: the graph as it is, when no --const asks for a change — nor, for `convert`, a
    // --dim or --input-shape, which ask for shapes written in.
    let shapes_asked = !opts.only_given_constants
        && (!opts.inputs.dims.is_empty() || !opts.inputs.shapes.is_empty());
    let mut tries = vec![];
    if constant.is_empty() && !shapes_asked {
        tries.push(None);
    }
    tries.extend([
        Some((constant.to_vec(), false)),
        Some((constant.to_vec(), true)),
    ]);
    if more.len() > constant.len() {
        tries.push(Some((more.clone(), false)));
        tries.push(Some((more, true)));
    }
    (tries, held_back)
}

/// Why nothing tract loads came of the attempts: the last one's reason, and hints at what the
/// user may give.
fn cannot_load(last: &str, held_back: &[&str], data_notes: &[String]) -> String {
    let hint = if held_back.is_empty() {
        String::new()
    } else {
        format!(
            " (it may need {} as constant{}: give {} value{} with --input)",
            held_back
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if held_back.len() == 1 { "" } else { "s" },
            if held_back.len() == 1 { "its" } else { "their" },
            if held_back.len() == 1 { "" } else { "s" },
        )
    };
    let dims = crate::check::inputs::defaulted_dims_hint(data_notes)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    format!("tract cannot load it even prepared: {last}{hint}{dims}")
}

/// The inlining of external data, recorded (one rewrite per file).
fn inlined_rewrites(inlined: BTreeMap<String, u64>) -> impl Iterator<Item = Rewrite> {
    inlined.into_iter().map(|(location, n)| {
        Rewrite::new(
            &location,
            "external data",
            format!("inlined {n} bytes of external data from `{location}`, so that the file stands alone"),
        )
    })
}

/// What `for_tract`'s attempts and comparisons share: the original model, the data prepared for,
/// and the scratch file each prepared graph is written to.
struct Preparation<'a> {
    input: &'a Path,
    info: &'a ModelInfo,
    /// The original's graph, external data inlined.
    proto: &'a pb::ModelProto,
    data: &'a [Named],
    tmp: &'a Path,
}

/// A prepared graph that plain tract loads as it is, and what tract computed with it.
struct Loadable {
    rewrites: Vec<Rewrite>,
    encoded: Vec<u8>,
    /// The data without the inputs that became constants.
    fed: Vec<Named>,
    /// The prepared graph's, as written at the scratch path.
    info: ModelInfo,
    outputs: Vec<Named>,
}

impl Preparation<'_> {
    /// The first attempt whose graph tract loads and runs; else (inner `Err`) why the last one
    /// failed.
    fn first_loadable(&self, tries: &[Attempt]) -> Result<Result<Loadable, String>, ExpectedError> {
        let mut last = String::new();
        for attempt in tries {
            let (prepared, constant, rewrites) = match self.prepared(attempt) {
                Ok(p) => p,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match self.load(&prepared, constant, rewrites)? {
                Ok(loaded) => return Ok(Ok(loaded)),
                Err(why) => last = why,
            }
        }
        Ok(Err(last))
    }

    /// The graph prepared as the attempt says, the inputs it made constants, and its rewrites.
    fn prepared<'t>(
        &self,
        attempt: &'t Attempt,
    ) -> Result<(pb::ModelProto, &'t [usize], Vec<Rewrite>), String> {
        let mut prepared = self.proto.clone();
        match attempt {
            None => {
                let mut renamed = vec![];
                if let Some(g) = prepared.graph.as_mut() {
                    node_names(g, &mut renamed);
                }
                Ok((prepared, &[], renamed))
            }
            Some((constant, drop_annotations)) => {
                let pins = Pins {
                    inputs: self.data,
                    constant,
                    drop_annotations: *drop_annotations,
                };
                let dir = crate::backends::tract::dir_of(self.input);
                // tract's analysis runs inside: a panic there is tract's, and this try's failure.
                let rewrites =
                    crate::backends::guarded("tract", || prepare(&mut prepared, dir, &pins))
                        .map_err(|p| p.to_string())
                        .and_then(|r| r.map_err(|e| e.0))?;
                Ok((prepared, constant, rewrites))
            }
        }
    }

    /// The prepared graph written to the scratch file, loaded and run by plain tract on the data
    /// (less the inputs made constants); else (inner `Err`) why tract did not take it as it is.
    fn load(
        &self,
        prepared: &pb::ModelProto,
        constant: &[usize],
        rewrites: Vec<Rewrite>,
    ) -> Result<Result<Loadable, String>, ExpectedError> {
        use crate::backends::Backend;
        use prost::Message;
        let encoded = prepared.encode_to_vec();
        std::fs::write(self.tmp, &encoded).map_err(|e| ExpectedError::Usage(e.to_string()))?;
        let fed: Vec<Named> = self
            .data
            .iter()
            .enumerate()
            .filter(|(k, _)| !constant.contains(k))
            .map(|(_, d)| d.clone())
            .collect();
        let info =
            crate::model::inspect(self.tmp).map_err(|e| model_error(self.input, e.message))?;
        // It must load as it is: the project that ships it runs plain tract.
        let ran = crate::backends::guarded("tract", || {
            crate::backends::tract::Tract
                .load(self.tmp, &info, &fed, Device::Cpu)
                .and_then(|(mut loaded, notes)| Ok((loaded.run(&fed)?, notes)))
        });
        Ok(match ran {
            Ok(Ok((outputs, notes))) if notes.notes.is_empty() => Ok(Loadable {
                rewrites,
                encoded,
                fed,
                info,
                outputs,
            }),
            Ok(Ok((_, notes))) => Err(notes.notes.join("; ")),
            // tract's own retry on the prepared file says the same again.
            Ok(Err(e)) => Err(e
                .to_string()
                .split(" (and prepared: ")
                .next()
                .unwrap_or("")
                .to_string()),
            Err(panicked) => Err(panicked.to_string()),
        })
    }

    /// The same data on ONNX Runtime: the original, and the prepared graph (on tract and on ONNX
    /// Runtime) against it; a note instead when ONNX Runtime is not available.
    fn compare_with_original(
        &self,
        loaded: &Loadable,
        ort_lib: Option<&Path>,
    ) -> Result<(Vec<Comparison>, Vec<String>), ExpectedError> {
        use crate::backends::Backend;
        let mut comparisons = Vec::new();
        let mut notes = Vec::new();
        let tol = crate::check::compare::ToleranceArgs::default();
        let ort = crate::backends::ort::Ort::new(ort_lib);
        match ort.availability() {
            Err(why) => notes.push(format!(
                "not compared with the original: ONNX Runtime is not available here ({why})"
            )),
            Ok(_) => {
                let run = |path: &Path, info: &ModelInfo, inputs: &[Named]| {
                    ort.load(path, info, inputs, Device::Cpu)
                        .and_then(|(mut l, _)| l.run(inputs))
                        .map_err(|e| e.to_string())
                };
                let original = run(self.input, self.info, self.data).map_err(|e| {
                    model_error(
                        self.input,
                        format!("ONNX Runtime cannot run the original on this data: {e}"),
                    )
                })?;
                let prepared = run(self.tmp, &loaded.info, &loaded.fed).map_err(|e| {
                    model_error(
                        self.input,
                        format!("ONNX Runtime cannot run the prepared model: {e}"),
                    )
                })?;
                crate::check::compare_sets(
                    &mut comparisons,
                    ("tract prepared", &loaded.outputs),
                    ("ort original", &original),
                    "prepared data",
                    &tol,
                );
                crate::check::compare_sets(
                    &mut comparisons,
                    ("ort prepared", &prepared),
                    ("ort original", &original),
                    "prepared data",
                    &tol,
                );
            }
        }
        Ok((comparisons, notes))
    }
}

/// Most a prepared model holds once its external data is inlined (protobuf's 2 GiB limit).
pub(crate) const INLINE_MAX: u64 = (2 << 30) - (1 << 20);

/// Moves every external tensor's bytes into the model (read only inside its directory): the bytes
/// inlined per file, or `None` when there are more than `limit` of them (then `proto` is partly
/// inlined and should be read again).
pub(crate) fn inline_external_data(
    model: &Path,
    proto: &mut pb::ModelProto,
    limit: u64,
) -> Result<Option<BTreeMap<String, u64>>, ModelError> {
    inline_each(model, proto, limit).map_err(|e| ModelError::new(model, e))
}

fn inline_each(
    model: &Path,
    proto: &mut pb::ModelProto,
    limit: u64,
) -> Result<Option<BTreeMap<String, u64>>, String> {
    let mut too_large = false;
    let mut total = 0u64;
    let mut per_file = BTreeMap::new();
    let mut visit = |t: &mut pb::TensorProto| -> Result<(), String> {
        // EXTERNAL is what tract and ONNX Runtime go by; entries beside DEFAULT are ignored.
        if t.data_location != Some(1) {
            return Ok(());
        }
        let range = external_range(model, t)?;
        total += range.length;
        *per_file.entry(range.location.clone()).or_insert(0) += range.length;
        if total > limit {
            too_large = true;
            return Ok(());
        }
        t.raw_data = range.read()?;
        t.external_data.clear();
        t.data_location = None;
        Ok(())
    };
    if let Some(g) = proto.graph.as_mut() {
        each_tensor(g, &mut visit)?;
    }
    Ok((!too_large).then_some(per_file))
}

/// Where a tensor's external data lies: its file (as the model names it, and found inside the
/// model's directory) and the range of bytes in it.
struct ExternalRange {
    location: String,
    file: std::path::PathBuf,
    offset: u64,
    length: u64,
}

/// The external data of `t` (a tensor whose data is EXTERNAL), checked to lie inside its file.
fn external_range(model: &Path, t: &pb::TensorProto) -> Result<ExternalRange, String> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    let location = get("location")
        .ok_or_else(|| format!("tensor `{}`: external data without a location", t.name))?;
    let number = |k: &str| -> Result<Option<u64>, String> {
        get(k)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    format!(
                        "tensor `{}`: external data {k} `{v}` is not a number",
                        t.name
                    )
                })
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let file = crate::model::contained(model, &location).map_err(|o| o.to_string())?;
    let len = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let length = match number("length")? {
        Some(l) => l,
        None => {
            let numel = t
                .dims
                .iter()
                .try_fold(1usize, |a, d| {
                    usize::try_from(*d).ok().and_then(|d| a.checked_mul(d))
                })
                .ok_or_else(|| format!("tensor `{}`: dims {:?} hold no size", t.name, t.dims))?;
            DType::from_onnx(t.data_type).map_or(0, |d| d.byte_len(numel)) as u64
        }
    };
    if offset.checked_add(length).is_none_or(|end| end > len) {
        return Err(format!(
            "tensor `{}`: external data reaches past the end of {location}",
            t.name
        ));
    }
    Ok(ExternalRange {
        location,
        file,
        offset,
        length,
    })
}

impl ExternalRange {
    /// Its bytes.
    fn read(&self) -> Result<Vec<u8>, String> {
        use std::io::{Read, Seek};
        let mut f =
            std::fs::File::open(&self.file).map_err(|e| format!("{}: {e}", self.file.display()))?;
        f.seek(std::io::SeekFrom::Start(self.offset))
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; self.length as usize];
        f.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

/// Calls `visit` on every tensor of a graph: its initializers and its nodes' tensor attributes,
/// those of subgraphs included.
fn each_tensor(
    g: &mut pb::GraphProto,
    visit: &mut dyn FnMut(&mut pb::TensorProto) -> Result<(), String>,
) -> Result<(), String> {
    for t in g.initializer.iter_mut() {
        visit(t)?;
    }
    for n in g.node.iter_mut() {
        for a in n.attribute.iter_mut() {
            if let Some(t) = a.t.as_mut() {
                visit(t)?;
            }
            for t in a.tensors.iter_mut() {
                visit(t)?;
            }
            for sub in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                each_tensor(sub, visit)?;
            }
        }
    }
    Ok(())
}

/// `convert --for tract`'s report for people.
pub fn human(p: &Prepared) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "wrote {} ({} bytes): {} prepared for tract\n",
        p.output, p.bytes, p.input
    );
    if p.rewrites.is_empty() {
        out.push_str("  nothing to change: tract loads it as it is\n");
    }
    for r in &p.rewrites {
        let _ = writeln!(out, "  - {r}");
    }
    for c in &p.comparisons {
        let _ = writeln!(
            out,
            "  ok {} vs {} `{}`: {}",
            c.left,
            c.right,
            c.output,
            c.summary()
        );
    }
    for n in &p.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}
