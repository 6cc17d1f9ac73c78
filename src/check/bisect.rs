//! Where two runs of an ONNX graph part ways. Every tensor the main graph's nodes produce is made a
//! graph output; both runs compute them (in chunks that keep the exposed tensors under a memory
//! budget) on the same inputs; they are compared with the check's tolerances; the culprit is the
//! first node, in topological order, whose inputs agree and whose outputs do not.
//!
//! The two runs are two back ends on one model (tract against ONNX Runtime), or one back end on a
//! model and on its twin (`--pair`: re-exported, optimised, quantised, prepared), whose tensors are
//! matched by name, and by producing operator where the names changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use prost::Message;
use serde::{Deserialize, Serialize};
use tract_onnx::pb;

use super::compare::{self, ToleranceArgs};
use crate::backends::{Backend, Device, Named};
use crate::graph::Graph;

/// One run: a back end and the model file it runs.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The run's label in the report (`tract`, `ort:pair`).
    pub label: &'a str,
    /// The back end that runs it.
    pub backend: &'a dyn Backend,
    /// The ONNX file it runs: the model, or its twin.
    pub model: &'a Path,
}

/// The first node whose inputs agree and whose outputs do not (`divergence` in `check`'s JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Divergence {
    /// The culprit node's name, or its first output's when it has none.
    pub node: String,
    /// Its operator (`Conv`).
    pub op: String,
    /// Its output that disagrees most.
    pub output: String,
    /// That output's largest absolute error.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_abs: f64,
    /// The largest disagreement among its inputs that were compared (0 when they are the graph's
    /// inputs or weights).
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub inputs_max_abs: f64,
    /// From this node to the failing output, each node with its largest output disagreement: where
    /// the error grows.
    pub path: Vec<Step>,
    /// The node's attributes, `name=value`.
    pub attributes: Vec<String>,
    /// Each input and output of the node that was compared, with its shape and error.
    pub inputs: Vec<TensorError>,
    /// The same for its outputs.
    pub outputs: Vec<TensorError>,
    /// What feeds it (nodes, the graph's inputs, weights) and what reads its outputs.
    pub producers: Vec<Neighbour>,
    /// The nodes that read its outputs.
    pub consumers: Vec<Neighbour>,
    /// How many tensors were compared, in how many runs of each side, in how long.
    pub tensors: usize,
    /// Runs each side made (one per chunk of exposed tensors).
    pub runs: usize,
    /// Time the whole bisect took, milliseconds.
    pub ms: f64,
}

/// One node on the way from the culprit to the failing output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// The node's name.
    pub node: String,
    /// Its operator.
    pub op: String,
    /// Its largest output disagreement.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_abs: f64,
}

/// A node next to the culprit and the tensor between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Neighbour {
    /// The node's name, or the tensor's for a graph input or weight.
    pub node: String,
    /// Its operator, or `input` / `weight`.
    pub op: String,
    /// The tensor that links it to the culprit.
    pub tensor: String,
    /// That tensor's shape, as it was run (empty when unknown).
    pub shape: Vec<usize>,
    /// The node's largest output disagreement (0 for inputs and weights).
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_abs: f64,
}

/// One compared tensor of the culprit node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorError {
    /// The tensor's name in the model (the first side's graph).
    pub name: String,
    /// Its shape, as it was run.
    pub shape: Vec<usize>,
    /// Its largest absolute error between the two runs.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_abs: f64,
    /// Within the check's tolerances.
    pub pass: bool,
}

/// What a bisect found: the divergence, or that every compared tensor agrees.
#[derive(Debug, Clone)]
pub enum Found {
    /// A node whose inputs agree and whose outputs do not.
    Divergence(Box<Divergence>),
    /// Every compared tensor agrees.
    AllAgree {
        /// How many tensors were compared.
        tensors: usize,
        /// Time the bisect took, milliseconds.
        ms: f64,
    },
}

/// Most bytes of exposed tensors one run holds (each side holds its own); the tensors go in
/// chunks sized from the first chunk's measured sizes.
const BUDGET: usize = 1 << 30;
/// Tensors in the first chunk, whose sizes set the others'.
const FIRST_CHUNK: usize = 16;

/// Tensor names of `a` with the name the same tensor has in `b`: the same name when `b` produces
/// it, else the same output of the node of the same operator at the same rank among that
/// operator's nodes (when both graphs have as many of them).
fn counterparts(a: &Graph, b: &Graph) -> HashMap<String, String> {
    fn by_op(g: &Graph) -> HashMap<&str, Vec<usize>> {
        let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, n) in g.nodes.iter().enumerate() {
            m.entry(n.op.as_str()).or_default().push(k);
        }
        m
    }
    let (ops_a, ops_b) = (by_op(a), by_op(b));
    let mut out = HashMap::new();
    for (k, n) in a.nodes.iter().enumerate() {
        for (j, o) in n.outputs.iter().enumerate() {
            if b.producer.contains_key(o) {
                out.insert(o.clone(), o.clone());
                continue;
            }
            let (Some(la), Some(lb)) = (ops_a.get(n.op.as_str()), ops_b.get(n.op.as_str())) else {
                continue;
            };
            if la.len() != lb.len() {
                continue;
            }
            let rank = la.iter().position(|&x| x == k).unwrap_or(usize::MAX);
            if let Some(other) = lb.get(rank).and_then(|&kb| b.nodes[kb].outputs.get(j)) {
                out.insert(o.clone(), other.clone());
            }
        }
    }
    out
}

/// A model to expose tensors of: its protobuf, and where its probes are written.
struct Source {
    proto: pb::ModelProto,
    /// `None`: in the bisect's temporary directory, with the external data inlined. `Some(dir)`:
    /// beside the model (a hidden temporary file, removed after its run), because its external
    /// data is too large to inline and the runtimes read it only from the model's own directory.
    beside: Option<PathBuf>,
}

/// Reads a model for probes: external data inlined up to `inline_limit` bytes, else left where it
/// is.
fn read_model(path: &Path, inline_limit: u64) -> Result<Source, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| at(&e))?;
    let lite = crate::model::onnx::proto::Model::decode(&bytes[..]).map_err(|e| at(&e))?;
    if !lite.functions.is_empty() {
        return Err(at(
            &"it defines model-local functions, which a probe of it would not keep",
        ));
    }
    let mut proto = pb::ModelProto::decode(&bytes[..]).map_err(|e| at(&e))?;
    // More weights than a file can hold inline are not read to find that out.
    let fits = crate::model::inspect(path).is_ok_and(|i| i.weight_bytes <= inline_limit);
    if fits
        && crate::prepare::inline_external_data(path, &mut proto, inline_limit)
            .map_err(|e| e.message)?
            .is_some()
    {
        return Ok(Source {
            proto,
            beside: None,
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Source {
        proto: pb::ModelProto::decode(&bytes[..]).map_err(|e| at(&e))?,
        beside: Some(dir),
    })
}

/// The model with `names` as its outputs (types from the graph's annotations where it has them).
fn probe(proto: &pb::ModelProto, names: &[String]) -> Vec<u8> {
    let mut p = proto.clone();
    if let Some(g) = p.graph.as_mut() {
        let known: HashMap<&str, &pb::ValueInfoProto> = g
            .output
            .iter()
            .chain(&g.value_info)
            .map(|v| (v.name.as_str(), v))
            .collect();
        let outputs: Vec<pb::ValueInfoProto> = names
            .iter()
            .map(|n| match known.get(n.as_str()) {
                Some(v) => pb::ValueInfoProto {
                    name: n.clone(),
                    // Element type only: a stale shape would only be a reason to refuse.
                    r#type: v.r#type.clone().map(|mut t| {
                        if let Some(pb::type_proto::Value::TensorType(tt)) = t.value.as_mut() {
                            tt.shape = None;
                        }
                        t
                    }),
                    doc_string: String::new(),
                },
                None => pb::ValueInfoProto {
                    name: n.clone(),
                    ..Default::default()
                },
            })
            .collect();
        g.output = outputs;
    }
    p.encode_to_vec()
}

/// The model with `names` exposed, written as a temporary file (in `tmp`, or beside the model),
/// and what it declares.
fn write_probe(
    src: &Source,
    names: &[String],
    tmp: &Path,
) -> Result<(tempfile::TempPath, crate::model::ModelInfo), String> {
    let dir = src.beside.as_deref().unwrap_or(tmp);
    let file = tempfile::Builder::new()
        .prefix(".cargo-infer-probe-")
        .suffix(".onnx")
        .tempfile_in(dir)
        .map_err(|e| {
            format!(
                "cannot write a probe in {} (a model whose external data is too large to inline is probed beside it): {e}",
                dir.display()
            )
        })?;
    let path = file.into_temp_path();
    std::fs::write(&path, probe(&src.proto, names)).map_err(|e| e.to_string())?;
    let info = crate::model::inspect(&path).map_err(|e| e.message)?;
    Ok((path, info))
}

/// Runs `side` on a probe; the tensors by name.
fn run_exposed(
    side: &Side,
    (path, info): &(tempfile::TempPath, crate::model::ModelInfo),
    inputs: &[Named],
) -> Result<HashMap<String, crate::tensor::HostTensor>, String> {
    // Inputs by name, else by position (a twin may have renamed them).
    let fed: Vec<Named> = info
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(k, i)| {
            inputs
                .iter()
                .find(|(n, _)| *n == i.name)
                .or_else(|| inputs.get(k))
                .map(|(_, t)| (i.name.clone(), t.clone()))
        })
        .collect();
    let ran = crate::backends::guarded(side.backend.name(), || {
        let (mut loaded, _) = side
            .backend
            .load(path, info, &fed, Device::Cpu)
            .map_err(|e| e.to_string())?;
        loaded.run(&fed).map_err(|e| e.to_string())
    })
    .map_err(|p| p.to_string())??;
    Ok(ran.into_iter().collect())
}

crate::error::message_error! {
    /// Why a bisect could not run (a probe graph that does not load, a back end that fails on it):
    /// one line, reported as a note of the check.
    NotBisected
}

/// Finds where `a` and `b` part ways on `inputs`, for the failing graph output `failing` (named as
/// in `a`), or that they never do. `Err`: why no bisect could run.
pub fn bisect(
    a: Side,
    b: Side,
    inputs: &[Named],
    failing: Option<&str>,
    data_set: &str,
    tol: &ToleranceArgs,
) -> Result<Found, NotBisected> {
    bisect_inlining(
        a,
        b,
        inputs,
        failing,
        data_set,
        tol,
        crate::prepare::INLINE_MAX,
    )
    .map_err(NotBisected::from)
}

/// [`bisect`], with external data inlined into the probes up to `inline_limit` bytes per model.
fn bisect_inlining(
    a: Side,
    b: Side,
    inputs: &[Named],
    failing: Option<&str>,
    data_set: &str,
    tol: &ToleranceArgs,
    inline_limit: u64,
) -> Result<Found, String> {
    let started = Instant::now();
    // Two back ends on one model read it, and run each probe, once.
    let same_model = a.model == b.model;
    let source_a = read_model(a.model, inline_limit)?;
    let proto_a = &source_a.proto;
    let source_b = if same_model {
        None
    } else {
        Some(read_model(b.model, inline_limit)?)
    };
    let proto_b = source_b.as_ref().map(|s| &s.proto);
    let empty = pb::GraphProto::default();
    let graph_a = Graph::of(proto_a.graph.as_ref().unwrap_or(&empty));
    let graph_b = proto_b
        .as_ref()
        .map(|p| Graph::of(p.graph.as_ref().unwrap_or(&empty)));
    let names_b: HashMap<String, String> = match &graph_b {
        Some(gb) => counterparts(&graph_a, gb),
        None => graph_a
            .producer
            .keys()
            .map(|k| (k.clone(), k.clone()))
            .collect(),
    };
    // Every produced tensor with a counterpart, in topological order.
    let wanted: Vec<String> = graph_a
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter())
        .filter(|o| names_b.contains_key(*o))
        .cloned()
        .collect();
    if wanted.is_empty() {
        return Err("the graph has no intermediate tensors to compare".into());
    }
    let mut shapes: HashMap<String, Vec<usize>> = inputs
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    for t in proto_a.graph.iter().flat_map(|g| &g.initializer) {
        shapes.insert(
            t.name.clone(),
            t.dims.iter().map(|d| (*d).max(0) as usize).collect(),
        );
    }
    let probing = Probing {
        a,
        b,
        source_a: &source_a,
        source_b: source_b.as_ref(),
        inputs,
        data_set,
        tol,
    };
    let (compared, runs) = probing.compare_all(&wanted, &names_b, &mut shapes)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let fails = |t: &str| compared.get(t).is_some_and(|c| !c.pass);
    let culprit = graph_a
        .nodes
        .iter()
        .position(|n| n.outputs.iter().any(|o| fails(o)) && !n.inputs.iter().any(|i| fails(i)))
        .or_else(|| {
            graph_a
                .nodes
                .iter()
                .position(|n| n.outputs.iter().any(|o| fails(o)))
        });
    let Some(k) = culprit else {
        return Ok(Found::AllAgree {
            tensors: compared.len(),
            ms,
        });
    };
    Ok(Found::Divergence(Box::new(divergence_at(
        &graph_a, k, &compared, &shapes, failing, runs, ms,
    ))))
}

/// Two runs of probes and what they compare: the sides, the models' sources, the data.
struct Probing<'a> {
    a: Side<'a>,
    b: Side<'a>,
    source_a: &'a Source,
    /// `None`: both sides run `source_a` (two back ends on one model).
    source_b: Option<&'a Source>,
    inputs: &'a [Named],
    data_set: &'a str,
    tol: &'a ToleranceArgs,
}

impl Probing<'_> {
    /// Runs both sides on probes exposing `wanted` (named as in `a`; `names_b`: their names in
    /// `b`), in chunks of at most [`BUDGET`] bytes, and compares each tensor; the shapes seen go
    /// in `shapes`. The comparisons by tensor, and how many runs each side made.
    fn compare_all(
        &self,
        wanted: &[String],
        names_b: &HashMap<String, String>,
        shapes: &mut HashMap<String, Vec<usize>>,
    ) -> Result<(HashMap<String, compare::Comparison>, usize), String> {
        let (a, b, inputs) = (&self.a, &self.b, self.inputs);
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut compared: HashMap<String, compare::Comparison> = HashMap::new();
        let (mut at, mut chunk, mut runs) = (0, FIRST_CHUNK, 0);
        while at < wanted.len() {
            let names_a: Vec<String> = wanted[at..(at + chunk).min(wanted.len())].to_vec();
            let names_in_b: Vec<String> = names_a.iter().map(|n| names_b[n].clone()).collect();
            let exposed = |side: &Side, e: String| {
                format!("{} with its intermediate tensors exposed: {e}", side.label)
            };
            let probe_a =
                write_probe(self.source_a, &names_a, dir.path()).map_err(|e| exposed(a, e))?;
            let got_a = run_exposed(a, &probe_a, inputs).map_err(|e| exposed(a, e))?;
            let got_b = match self.source_b {
                None => run_exposed(b, &probe_a, inputs),
                Some(source_b) => write_probe(source_b, &names_in_b, dir.path())
                    .and_then(|probe_b| run_exposed(b, &probe_b, inputs)),
            }
            .map_err(|e| exposed(b, e))?;
            runs += 1;
            let mut bytes = 0usize;
            for (na, nb) in names_a.iter().zip(&names_in_b) {
                let (Some(ta), Some(tb)) = (got_a.get(na), got_b.get(nb)) else {
                    continue;
                };
                bytes += ta.data.len() + tb.data.len();
                shapes.insert(na.clone(), tb.shape.clone());
                compared.insert(
                    na.clone(),
                    compare::compare_verdict(
                        (a.label, ta),
                        (b.label, tb),
                        na,
                        self.data_set,
                        self.tol,
                    ),
                );
            }
            at += names_a.len();
            let per_tensor = (bytes / names_a.len().max(1)).max(1);
            chunk = (BUDGET / per_tensor).clamp(1, wanted.len());
        }
        Ok((compared, runs))
    }
}

/// The report of the culprit node `k` of `graph_a`: its errors, the path from it to the failing
/// output, its neighbours.
fn divergence_at(
    graph_a: &Graph,
    k: usize,
    compared: &HashMap<String, compare::Comparison>,
    shapes: &HashMap<String, Vec<usize>>,
    failing: Option<&str>,
    runs: usize,
    ms: f64,
) -> Divergence {
    let errors = Errors {
        graph: graph_a,
        compared,
        shapes,
    };
    let node = &graph_a.nodes[k];
    let outputs: Vec<TensorError> = node
        .outputs
        .iter()
        .filter_map(|t| errors.tensor(t))
        .collect();
    let inputs_err: Vec<TensorError> = node
        .inputs
        .iter()
        .filter_map(|t| errors.tensor(t))
        .collect();
    let worst = outputs
        .iter()
        .filter(|t| !t.pass)
        .max_by(|x, y| x.max_abs.total_cmp(&y.max_abs))
        .cloned();
    Divergence {
        node: node.name.clone(),
        op: node.op.clone(),
        output: worst.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        max_abs: worst.map_or(0.0, |t| t.max_abs),
        inputs_max_abs: inputs_err.iter().map(|t| t.max_abs).fold(0.0, f64::max),
        path: errors.path(k, failing),
        attributes: node.attributes.clone(),
        inputs: inputs_err,
        outputs,
        producers: errors.producers(k),
        consumers: errors.consumers(k),
        tensors: compared.len(),
        runs,
        ms,
    }
}

/// The compared tensors of a bisect over the nodes of its graph: what a divergence's report is
/// made of.
struct Errors<'a> {
    graph: &'a Graph,
    compared: &'a HashMap<String, compare::Comparison>,
    shapes: &'a HashMap<String, Vec<usize>>,
}

impl Errors<'_> {
    fn shape_of(&self, t: &String) -> Vec<usize> {
        self.shapes.get(t).cloned().unwrap_or_default()
    }

    /// A compared tensor's error.
    fn tensor(&self, t: &String) -> Option<TensorError> {
        self.compared.get(t).map(|c| TensorError {
            name: t.clone(),
            shape: self.shape_of(t),
            max_abs: c.max_abs,
            pass: c.pass,
        })
    }

    /// Node `j` with the largest error of its compared outputs.
    fn step(&self, j: usize) -> Step {
        let n = &self.graph.nodes[j];
        Step {
            node: n.name.clone(),
            op: n.op.clone(),
            max_abs: n
                .outputs
                .iter()
                .filter_map(|o| self.compared.get(o).map(|c| c.max_abs))
                .fold(0.0, f64::max),
        }
    }

    /// The path from the culprit `k` to the failing output: back from the output, through the
    /// worst input downstream of `k`; it starts at `k` whatever the way back found.
    fn path(&self, k: usize, failing: Option<&str>) -> Vec<Step> {
        let graph = self.graph;
        let down = graph.downstream(k);
        let mut path = Vec::new();
        let mut here = failing.and_then(|f| graph.producer.get(f).copied());
        while let Some(j) = here.filter(|j| down.contains(j)) {
            path.push(self.step(j));
            if j == k {
                break;
            }
            here = graph.nodes[j]
                .inputs
                .iter()
                .filter_map(|i| graph.producer.get(i).copied())
                .filter(|p| down.contains(p))
                .max_by(|x, y| self.step(*x).max_abs.total_cmp(&self.step(*y).max_abs));
        }
        path.reverse();
        if path.first().is_none_or(|s| s.node != graph.nodes[k].name) {
            path.insert(0, self.step(k));
        }
        path
    }

    /// What produces each input of node `k`: a node, or the graph's input or weight.
    fn producers(&self, k: usize) -> Vec<Neighbour> {
        let graph = self.graph;
        graph.nodes[k]
            .inputs
            .iter()
            .map(|i| match graph.producer.get(i) {
                Some(&p) => Neighbour {
                    node: graph.nodes[p].name.clone(),
                    op: graph.nodes[p].op.clone(),
                    tensor: i.clone(),
                    shape: self.shape_of(i),
                    max_abs: self.step(p).max_abs,
                },
                None => Neighbour {
                    node: i.clone(),
                    op: if graph.weights.contains(i) {
                        "weight"
                    } else {
                        "input"
                    }
                    .into(),
                    tensor: i.clone(),
                    shape: self.shape_of(i),
                    max_abs: 0.0,
                },
            })
            .collect()
    }

    /// The nodes that take an output of node `k`.
    fn consumers(&self, k: usize) -> Vec<Neighbour> {
        let node = &self.graph.nodes[k];
        self.graph
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(j, n)| {
                let t = n.inputs.iter().find(|i| node.outputs.contains(i))?;
                Some(Neighbour {
                    node: n.name.clone(),
                    op: n.op.clone(),
                    tensor: t.clone(),
                    shape: self.shape_of(t),
                    max_abs: self.step(j).max_abs,
                })
            })
            .collect()
    }
}

impl Divergence {
    /// For one-line messages: `first divergence at node `conv2` (Conv)`.
    pub fn one_line(&self) -> String {
        format!("first divergence at node `{}` ({})", self.node, self.op)
    }

    /// Two lines for people: the culprit, and the error along the path.
    pub fn human(&self) -> Vec<String> {
        let attrs = if self.attributes.is_empty() {
            String::new()
        } else {
            format!("; {}", self.attributes.join(", "))
        };
        let mut lines = vec![format!(
            "first divergence: node `{}` ({}{attrs}): output `{}` max_abs {:.2e} while its inputs agree within {:.2e}",
            self.node, self.op, self.output, self.max_abs, self.inputs_max_abs
        )];
        if self.path.len() > 1 {
            let steps: Vec<String> = self
                .path
                .iter()
                .map(|s| format!("{} {:.1e}", s.node, s.max_abs))
                .collect();
            lines.push(format!("error along the path: {}", steps.join(" → ")));
        }
        lines.push(format!(
            "bisect compared {} tensors in {} run{} of each side, {}",
            self.tensors,
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            crate::output::human_ms(self.ms)
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::HostTensor;

    /// A model whose external data is too large to inline is probed by a temporary file beside it
    /// (ONNX Runtime reads external data only from the model's own directory, symbolic links
    /// resolved), which is gone afterwards.
    #[test]
    fn models_too_large_to_inline_are_probed_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for f in ["mlp_external.onnx", "mlp_external.onnx.data"] {
            std::fs::copy(fixtures.join(f), dir.path().join(f)).unwrap();
        }
        let model = dir.path().join("mlp_external.onnx");
        let backends = crate::backends::all(None);
        let by = |name: &str| {
            backends
                .iter()
                .find(|b| b.name() == name)
                .map(|b| b.as_ref())
                .unwrap()
        };
        let (tract, ort) = (by("tract"), by("ort"));
        ort.availability()
            .expect("ONNX Runtime (cargo xtask ci installs it)");
        let side = |label, backend| Side {
            label,
            backend,
            model: &model,
        };
        let x: Vec<f32> = (0..8).map(|k| k as f32 / 8.0 - 0.5).collect();
        let inputs = vec![("input".to_string(), HostTensor::from_f32(vec![1, 8], &x))];
        let tol = ToleranceArgs {
            atol: None,
            rtol: None,
        };
        // Inlined (the default limit) and beside the model (no inlining at all) find the same.
        for limit in [crate::prepare::INLINE_MAX, 0] {
            let found = bisect_inlining(
                side("tract", tract),
                side("ort", ort),
                &inputs,
                None,
                "synthetic",
                &tol,
                limit,
            )
            .unwrap_or_else(|e| panic!("inline limit {limit}: {e}"));
            match found {
                Found::AllAgree { tensors, .. } => assert!(tensors >= 3, "{tensors} tensors"),
                Found::Divergence(d) => panic!("tract and ort part at {}", d.node),
            }
            let mut left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            left.sort();
            assert_eq!(left, ["mlp_external.onnx", "mlp_external.onnx.data"]);
        }
    }
}
