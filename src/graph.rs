//! An ONNX model's main graph as nodes in topological order (for `check`'s bisect), and as a
//! picture (`inspect --graph FILE.svg|FILE.dot`): nodes with their operators, edges with their
//! tensors' shapes, and runs of identical blocks (a transformer's layers) folded into one box so
//! that a thousand-node model stays readable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::path::Path;

use prost::Message;
use tract_onnx::pb;

use crate::error::{ExpectedError, ModelError};

/// The main graph's nodes, in topological order.
pub struct Graph {
    /// The nodes, producers before consumers (the file's order when the graph has a cycle).
    pub nodes: Vec<Node>,
    /// Tensor name → the node producing it.
    pub producer: HashMap<String, usize>,
    /// Initializer names.
    pub weights: HashSet<String>,
    /// Graph input names the caller feeds (initializers listed as inputs left out).
    pub inputs: Vec<String>,
    /// Graph output names, in the file's order.
    pub outputs: Vec<String>,
}

/// One node of a [`Graph`], with what a report or a picture shows of it.
pub struct Node {
    /// Its name, or its first output's when it has none.
    pub name: String,
    /// Operator as the file spells it (`Conv`), without its domain.
    pub op: String,
    /// Names of the tensors it reads, omitted optional inputs left out.
    pub inputs: Vec<String>,
    /// Names of the tensors it writes, omitted optional outputs left out.
    pub outputs: Vec<String>,
    /// `name=value` each, as [`attribute`] writes them.
    pub attributes: Vec<String>,
}

/// An attribute as `name=value` (lists cut after eight values; tensors and graphs named only).
pub fn attribute(a: &pb::AttributeProto) -> String {
    use pb::attribute_proto::AttributeType as T;
    let list = |v: Vec<String>| {
        let more = v.len() > 8;
        let mut s = v.into_iter().take(8).collect::<Vec<_>>().join(",");
        if more {
            s.push_str(",…");
        }
        format!("[{s}]")
    };
    let value = match T::try_from(a.r#type).unwrap_or(T::Undefined) {
        T::Float => a.f.to_string(),
        T::Int => a.i.to_string(),
        T::String => format!("{:?}", String::from_utf8_lossy(&a.s)),
        T::Floats => list(a.floats.iter().map(|f| f.to_string()).collect()),
        T::Ints => list(a.ints.iter().map(|i| i.to_string()).collect()),
        T::Strings => list(
            a.strings
                .iter()
                .map(|s| format!("{:?}", String::from_utf8_lossy(s)))
                .collect(),
        ),
        T::Tensor => "tensor".into(),
        T::Graph | T::Graphs => "graph".into(),
        _ => "…".into(),
    };
    format!("{}={value}", a.name)
}

impl Graph {
    /// The main graph of `g`, sorted topologically (Kahn's order); subgraphs are not entered.
    pub fn of(g: &pb::GraphProto) -> Graph {
        // Kahn's order over the nodes (files are meant to be sorted; some are not).
        let mut produced_by: HashMap<&str, usize> = HashMap::new();
        for (k, n) in g.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                produced_by.insert(o, k);
            }
        }
        let mut waiting = vec![0usize; g.node.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
        for (k, n) in g.node.iter().enumerate() {
            for p in n.input.iter().filter_map(|i| produced_by.get(i.as_str())) {
                waiting[k] += 1;
                users[*p].push(k);
            }
        }
        let mut ready: VecDeque<usize> = (0..g.node.len()).filter(|&k| waiting[k] == 0).collect();
        let mut order = Vec::with_capacity(g.node.len());
        while let Some(k) = ready.pop_front() {
            order.push(k);
            for &u in &users[k] {
                waiting[u] -= 1;
                if waiting[u] == 0 {
                    ready.push_back(u);
                }
            }
        }
        if order.len() != g.node.len() {
            order = (0..g.node.len()).collect();
        }
        let nodes: Vec<Node> = order
            .into_iter()
            .map(|k| {
                let n = &g.node[k];
                Node {
                    name: crate::model::node_display_name(&n.name, &n.output),
                    op: n.op_type.clone(),
                    inputs: n.input.iter().filter(|i| !i.is_empty()).cloned().collect(),
                    outputs: n.output.iter().filter(|o| !o.is_empty()).cloned().collect(),
                    attributes: n.attribute.iter().map(attribute).collect(),
                }
            })
            .collect();
        let mut producer = HashMap::new();
        for (k, n) in nodes.iter().enumerate() {
            for o in &n.outputs {
                producer.insert(o.clone(), k);
            }
        }
        let weights: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
        Graph {
            nodes,
            producer,
            inputs: g
                .input
                .iter()
                .map(|v| v.name.clone())
                .filter(|n| !weights.contains(n))
                .collect(),
            outputs: g.output.iter().map(|v| v.name.clone()).collect(),
            weights,
        }
    }

    /// The nodes reachable from node `k` through its outputs (itself included).
    pub fn downstream(&self, k: usize) -> HashSet<usize> {
        let mut seen = HashSet::from([k]);
        // Topological order: one pass forward suffices.
        let mut live: HashSet<&str> = self.nodes[k].outputs.iter().map(String::as_str).collect();
        for (j, n) in self.nodes.iter().enumerate().skip(k + 1) {
            if n.inputs.iter().any(|i| live.contains(i.as_str())) {
                seen.insert(j);
                live.extend(n.outputs.iter().map(String::as_str));
            }
        }
        seen
    }
}

/// A run of `reps` identical blocks of `len` nodes starting at node `start` (identical: the same
/// operators in the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// Index of the first node of the first block.
    pub start: usize,
    /// Nodes in one block (at least 2).
    pub len: usize,
    /// Blocks in the run (at least 3).
    pub reps: usize,
}

/// The runs of repeated blocks worth folding, left to right, not overlapping: greedily the one
/// that hides the most nodes, then the same in what is left on either side.
pub fn repeats(ops: &[&str]) -> Vec<Repeat> {
    fn best(ops: &[&str], from: usize, to: usize) -> Option<Repeat> {
        let n = to - from;
        let mut found: Option<Repeat> = None;
        for len in 2..=n / 2 {
            // Where op[i] == op[i + len] holds for a run of positions, blocks of `len` repeat.
            let mut run = 0;
            for i in from..to - len {
                if ops[i] == ops[i + len] {
                    run += 1;
                } else {
                    run = 0;
                }
                let reps = run / len + 1;
                if run >= len && reps >= 3 {
                    let start = i + 1 + len - (reps * len);
                    let hidden = (reps - 1) * len;
                    if found.is_none_or(|f| hidden > (f.reps - 1) * f.len) {
                        found = Some(Repeat { start, len, reps });
                    }
                }
            }
        }
        found
    }
    fn search(ops: &[&str], from: usize, to: usize, out: &mut Vec<Repeat>) {
        if to - from < 6 {
            return;
        }
        if let Some(r) = best(ops, from, to) {
            search(ops, from, r.start, out);
            out.push(r);
            search(ops, r.start + r.len * r.reps, to, out);
        }
    }
    let mut out = Vec::new();
    search(ops, 0, ops.len(), &mut out);
    out
}

/// Shapes of tensors as the file states them (graph inputs and outputs, annotations, weights),
/// `1×3×224×224`, symbolic dimensions by name.
fn declared_shapes(g: &pb::GraphProto) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        let Some(pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            continue;
        };
        let Some(shape) = &t.shape else { continue };
        let dims: Vec<String> = shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => v.to_string(),
                Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) => p.clone(),
                None => "?".into(),
            })
            .collect();
        out.insert(v.name.clone(), dims.join("×"));
    }
    for t in &g.initializer {
        let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
        out.insert(t.name.clone(), dims.join("×"));
    }
    out
}

/// Shapes tract infers for every tensor, for those the file does not annotate (nothing when tract
/// cannot analyse the graph; never a failure of the picture).
fn inferred_shapes(model: &Path) -> HashMap<String, String> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::Factoid;
    let infer = || -> TractResult<HashMap<String, String>> {
        let mut m = tract_onnx::onnx().model_for_path(model)?;
        // What analysis reaches before a node it cannot type is still worth showing.
        let _ = m.analyse(false);
        let mut out = HashMap::new();
        for node in m.nodes() {
            for (ix, o) in node.outputs.iter().enumerate() {
                let Some(label) = m.outlet_label(OutletId::new(node.id, ix)) else {
                    continue;
                };
                if let Some(dims) = o.fact.shape.concretize() {
                    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                    out.insert(label.to_string(), dims.join("×"));
                }
            }
        }
        Ok(out)
    };
    crate::backends::guarded("tract", infer)
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// What a picture of the graph holds: boxes and the edges between them, repeated blocks folded.
struct Picture {
    /// Label and kind (`node`, `input`, `output`, `folded`) of each box.
    boxes: Vec<(String, &'static str)>,
    /// From box, to box, label.
    edges: Vec<(usize, usize, String)>,
}

fn picture(g: &Graph, shapes: &HashMap<String, String>) -> Picture {
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.as_str()).collect();
    let folds = repeats(&ops);
    // Node → the box it is drawn in: its own, or its run's folded box (the first block of a run
    // is drawn node by node; the other blocks fold into one box).
    let mut boxes: Vec<(String, &'static str)> = Vec::new();
    let mut box_of: Vec<usize> = vec![usize::MAX; g.nodes.len()];
    let mut k = 0;
    let mut folds_at = folds.iter().peekable();
    while k < g.nodes.len() {
        match folds_at.peek() {
            Some(r) if r.start == k => {
                for (slot, n) in box_of[k..k + r.len].iter_mut().zip(&g.nodes[k..]) {
                    *slot = boxes.len();
                    boxes.push((format!("{}\n{}", n.name, n.op), "node"));
                }
                let folded = boxes.len();
                let ops: Vec<&str> = ops[k..k + r.len].iter().take(4).copied().collect();
                boxes.push((
                    format!(
                        "× {} more blocks like the one above\n{} nodes each: {}{}",
                        r.reps - 1,
                        r.len,
                        ops.join(" → "),
                        if r.len > 4 { " → …" } else { "" }
                    ),
                    "folded",
                ));
                box_of[k + r.len..k + r.len * r.reps].fill(folded);
                k += r.len * r.reps;
                folds_at.next();
            }
            _ => {
                box_of[k] = boxes.len();
                boxes.push((format!("{}\n{}", g.nodes[k].name, g.nodes[k].op), "node"));
                k += 1;
            }
        }
    }
    let mut named: HashMap<String, usize> = HashMap::new();
    for i in &g.inputs {
        named.insert(i.clone(), boxes.len());
        let shape = shapes.get(i).map(|s| format!("\n{s}")).unwrap_or_default();
        boxes.push((format!("input {i}{shape}"), "input"));
    }
    let shape_of = |t: &str| shapes.get(t).cloned().unwrap_or_default();
    let mut edges: Vec<(usize, usize, String)> = Vec::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for (j, n) in g.nodes.iter().enumerate() {
        for t in &n.inputs {
            let from = match g.producer.get(t) {
                Some(&p) => box_of[p],
                None => match named.get(t) {
                    Some(&b) => b,
                    None => continue, // a weight
                },
            };
            let to = box_of[j];
            if from != to && seen.insert((from, to)) {
                edges.push((from, to, shape_of(t)));
            }
        }
    }
    for o in &g.outputs {
        let b = boxes.len();
        boxes.push((format!("output {o}"), "output"));
        if let Some(&p) = g.producer.get(o) {
            edges.push((box_of[p], b, shape_of(o)));
        }
    }
    Picture { boxes, edges }
}

/// The graph in Graphviz's language (names escaped as DOT strings).
fn dot(p: &Picture) -> String {
    let mut out = String::from("digraph model {\n  node [shape=box, fontname=\"sans-serif\"];\n");
    for (k, (label, kind)) in p.boxes.iter().enumerate() {
        let style = match *kind {
            "input" | "output" => ", style=rounded",
            "folded" => ", style=\"dashed,filled\", fillcolor=\"#eeeeee\"",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  n{k} [label={}{style}];",
            crate::escape::dot_str(label)
        );
    }
    for (a, b, label) in &p.edges {
        let _ = writeln!(
            out,
            "  n{a} -> n{b} [label={}];",
            crate::escape::dot_str(label)
        );
    }
    out.push_str("}\n");
    out
}

/// layout-rs could not lay the graph out (it panicked, which is caught).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the graph layout failed")]
pub struct LayoutFailed;

/// Boxes (label, fill colour) and edges (from, to, label) laid out top to bottom by layout-rs, as
/// SVG (layout-rs escapes its text). Shared by `inspect --graph` and `check --report`.
pub fn layout_svg(
    boxes: &[(String, &str)],
    edges: &[(usize, usize, String)],
    font: usize,
) -> Result<String, LayoutFailed> {
    use layout::backends::svg::SVGWriter;
    use layout::core::base::Orientation;
    use layout::core::color::Color;
    use layout::core::style::StyleAttr;
    use layout::std_shapes::render::get_shape_size;
    use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
    use layout::topo::layout::VisualGraph;
    let draw = || {
        let dir = Orientation::TopToBottom;
        let mut vg = VisualGraph::new(dir);
        let handles: Vec<_> = boxes
            .iter()
            .map(|(label, fill)| {
                let shape = ShapeKind::new_box(label);
                let look =
                    StyleAttr::new(Color::fast("black"), 1, Some(Color::fast(fill)), 4, font);
                let size = get_shape_size(dir, &shape, font, false);
                vg.add_node(Element::create(shape, look, dir, size))
            })
            .collect();
        for (a, b, label) in edges {
            vg.add_edge(Arrow::simple(label), handles[*a], handles[*b]);
        }
        let mut svg = SVGWriter::new();
        vg.do_it(false, false, false, &mut svg);
        svg.finalize()
    };
    std::panic::catch_unwind(draw).map_err(|_| LayoutFailed)
}

/// The picture as SVG.
fn svg(p: &Picture) -> Result<String, LayoutFailed> {
    let boxes: Vec<(String, &str)> = p
        .boxes
        .iter()
        .map(|(label, kind)| {
            let fill = match *kind {
                "input" | "output" => "lightblue",
                "folded" => "lightgray",
                _ => "white",
            };
            (label.clone(), fill)
        })
        .collect();
    layout_svg(&boxes, &p.edges, 12)
}

/// Most boxes a picture is drawn with (after folding); beyond, layout takes too long to wait for.
const MAX_BOXES: usize = 1500;

/// `inspect --graph OUT`: the model's graph as `.svg` or `.dot`, by `out`'s extension.
pub fn render(model: &Path, out: &Path) -> Result<Vec<u8>, ExpectedError> {
    let svg_out = match out.extension().and_then(|e| e.to_str()) {
        Some("svg") => true,
        Some("dot") | Some("gv") => false,
        _ => {
            return Err(ExpectedError::Usage(format!(
                "--graph {}: the picture is FILE.svg or FILE.dot",
                out.display()
            )))
        }
    };
    let bytes = std::fs::read(model).map_err(|e| ModelError::io(model, &e))?;
    let proto = pb::ModelProto::decode(&bytes[..])
        .map_err(|e| ModelError::new(model, format!("not an ONNX model: {e}")))?;
    let g = proto.graph.unwrap_or_default();
    // What the file states wins (it keeps symbolic dimensions' names); tract fills in the rest.
    let mut shapes = inferred_shapes(model);
    shapes.extend(declared_shapes(&g));
    let picture = picture(&Graph::of(&g), &shapes);
    if svg_out && picture.boxes.len() > MAX_BOXES {
        return Err(ModelError::new(
            model,
            format!(
                "{} boxes even with repeated blocks folded; too many to lay out as SVG: write a .dot file and render it with Graphviz",
                picture.boxes.len()
            ),
        )
        .into());
    }
    Ok(if svg_out {
        svg(&picture)
            .map_err(|e| ModelError::new(model, e.to_string()))?
            .into_bytes()
    } else {
        dot(&picture).into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_blocks_are_found_and_do_not_overlap() {
        let mut ops = vec!["Conv", "Relu"];
        for _ in 0..5 {
            ops.extend(["MatMul", "Add", "Relu", "Mul"]);
        }
        ops.extend(["Softmax"]);
        assert_eq!(
            repeats(&ops),
            [Repeat {
                start: 2,
                len: 4,
                reps: 5
            }]
        );
        // Nothing repeats three times: nothing folds.
        assert!(repeats(&["A", "B", "A", "B", "C", "D"]).is_empty());
        // Two runs side by side.
        let mut two = Vec::new();
        for _ in 0..4 {
            two.extend(["A", "B", "C"]);
        }
        two.push("X");
        for _ in 0..3 {
            two.extend(["D", "E"]);
        }
        let found = repeats(&two);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0],
            Repeat {
                start: 0,
                len: 3,
                reps: 4
            }
        );
        assert_eq!(
            found[1],
            Repeat {
                start: 13,
                len: 2,
                reps: 3
            }
        );
    }
}
