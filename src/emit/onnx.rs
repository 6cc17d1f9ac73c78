//! An ONNX graph as a chain: one float input, nodes that each take the running activation and
//! constants, one output.

use std::collections::HashMap;
use std::path::Path;

use tract_onnx::pb;
use tract_onnx::prelude::*;

use super::{Act, Chain, Layer};

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_f(n: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map(|a| a.f).unwrap_or(default)
}

fn attr_i(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map(|a| a.i).unwrap_or(default)
}

/// A constant: its shape and values as f32.
#[derive(Clone)]
struct Const {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn to_const(t: Tensor) -> Result<Const, crate::emit::Unemittable> {
    let shape = t.shape().to_vec();
    let f = t.cast_to::<f32>().map_err(|e| e.to_string())?;
    let values = f
        .to_plain_array_view::<f32>()
        .map_err(|e| e.to_string())?
        .iter()
        .copied()
        .collect();
    Ok(Const { shape, values })
}

/// A per-feature vector of length `n` from a constant that broadcasts to it (scalar, `[n]`,
/// `[1, n]`).
fn broadcast(c: &Const, n: usize, what: &str) -> Result<Vec<f32>, crate::emit::Unemittable> {
    match c.values.len() {
        1 => Ok(vec![c.values[0]; n]),
        m if m == n && c.shape.iter().rev().skip(1).all(|d| *d == 1) => Ok(c.values.clone()),
        _ => Err(format!(
            "{what}: constant of shape {:?} does not broadcast over {n} features",
            c.shape
        )
        .into()),
    }
}

/// Widest sample generated code takes (2^24 features): a declared input shape is not trusted
/// for the allocations that follow it.
const MAX_FEATURES: i64 = 1 << 24;

/// Reads an ONNX model as a [`Chain`], node by node from its one input to its one output, each
/// operator through `OPERATORS`. Errors are one line, without the file name.
pub fn read(path: &Path) -> Result<Chain, crate::emit::Unemittable> {
    let onnx = tract_onnx::onnx();
    let proto = onnx.proto_model_for_path(path).map_err(|e| e.to_string())?;
    let graph = proto.graph.as_ref().ok_or("no graph")?;
    let dir = crate::backends::tract::dir_of(path);
    let consts = initializers(&onnx, graph, dir)?;
    let (input, output) = endpoints(graph, &consts)?;
    let (rank, n_in) = sample_size(input)?;
    let mut r = Reader {
        onnx: &onnx,
        dir,
        consts,
        rank,
        cur: input.name.clone(),
        n: n_in,
        cur_rank: Some(rank),
        layers: Vec::new(),
    };
    let mut ops = std::collections::BTreeMap::new();
    for node in &graph.node {
        *ops.entry(node.op_type.clone()).or_default() += 1;
        r.node(node)?;
    }
    if r.cur != output.name {
        return Err(format!(
            "the chain ends at `{}`, not at the output `{}`",
            r.cur, output.name
        )
        .into());
    }
    Ok(Chain {
        input_name: input.name.clone(),
        output_name: output.name.clone(),
        n_in,
        n_out: r.n,
        layers: r.layers,
        ops,
    })
}

/// The graph's initializers as constants, by name.
fn initializers(
    onnx: &tract_onnx::Onnx,
    graph: &pb::GraphProto,
    dir: Option<&str>,
) -> Result<HashMap<String, Const>, crate::emit::Unemittable> {
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        let loaded = tract_onnx::tensor::load_tensor(&*onnx.provider, t, dir)
            .map_err(|e| format!("initializer `{}`: {e}", t.name))?;
        consts.insert(t.name.clone(), to_const(loaded)?);
    }
    Ok(consts)
}

/// The graph's one input that is not an initializer, and its one output.
fn endpoints<'g>(
    graph: &'g pb::GraphProto,
    consts: &HashMap<String, Const>,
) -> Result<(&'g pb::ValueInfoProto, &'g pb::ValueInfoProto), crate::emit::Unemittable> {
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(format!("{} inputs; generated code takes one", inputs.len()).into());
    };
    let [output] = graph.output.as_slice() else {
        return Err(format!("{} outputs; generated code gives one", graph.output.len()).into());
    };
    Ok((input, output))
}

/// The declared dimensions of an input (-1 where unknown).
fn input_dims(input: &pb::ValueInfoProto) -> Result<Vec<i64>, crate::emit::Unemittable> {
    match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => Ok(t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => *v,
                        _ => -1,
                    })
                    .collect()
            })
            .unwrap_or_default()),
        _ => Err("input is not a tensor".into()),
    }
}

/// The input's rank and its features per sample, within [`MAX_FEATURES`].
fn sample_size(input: &pb::ValueInfoProto) -> Result<(usize, usize), crate::emit::Unemittable> {
    let dims = input_dims(input)?;
    // [batch?, features]: every dimension but the first must be known; their product is a sample.
    let sample: Vec<i64> = if dims.len() > 1 {
        dims[1..].to_vec()
    } else {
        dims.clone()
    };
    if sample.is_empty() || sample.iter().any(|d| *d <= 0) {
        return Err(format!(
            "input `{}` has shape {dims:?}; generated code needs static sample dimensions",
            input.name
        )
        .into());
    }
    let n_in = sample
        .iter()
        .try_fold(1i64, |a, d| a.checked_mul(*d))
        .filter(|n| *n <= MAX_FEATURES)
        .ok_or_else(|| {
            format!(
                "input `{}` has shape {dims:?}: more than {MAX_FEATURES} features per sample, beyond generated code",
                input.name
            )
        })? as usize;
    // Rank of a sample: softmax over the last axis of a rank-1 sample is over all features.
    Ok((dims.len(), n_in))
}

/// A node being read, with the name its errors give.
struct Node<'a> {
    proto: &'a pb::NodeProto,
    name: String,
}

impl Node<'_> {
    /// An error about this node.
    fn ctx(&self, m: &str) -> crate::emit::Unemittable {
        format!("node `{}` ({}): {m}", self.name, self.proto.op_type).into()
    }
}

/// Reads a node of a supported operator into the chain.
type Handler = fn(&mut Reader, &Node) -> Result<(), crate::emit::Unemittable>;

/// The operators generated code implements, and their handlers.
const OPERATORS: &[(&str, Handler)] = &[
    ("Gemm", dense),
    ("MatMul", dense),
    ("Add", elementwise),
    ("Sub", elementwise),
    ("Mul", elementwise),
    ("Div", elementwise),
    ("BatchNormalization", batch_norm),
    ("Relu", relu),
    ("LeakyRelu", leaky_relu),
    ("Sigmoid", sigmoid),
    ("Tanh", tanh),
    ("Elu", elu),
    ("Softplus", softplus),
    ("HardSigmoid", hard_sigmoid),
    ("Gelu", gelu),
    ("Clip", clip),
    ("Softmax", softmax),
    ("LogSoftmax", softmax),
    ("Concat", concat),
    ("Identity", pass_through),
    ("Dropout", pass_through),
    ("Flatten", flatten),
    ("Reshape", reshape),
    ("Squeeze", reshape),
    ("Unsqueeze", reshape),
];

/// The chain read so far: constants by name, the running activation, the layers.
struct Reader<'a> {
    onnx: &'a tract_onnx::Onnx,
    dir: Option<&'a str>,
    consts: HashMap<String, Const>,
    /// Rank of the input.
    rank: usize,
    /// Name of the running activation.
    cur: String,
    /// Features of the running activation.
    n: usize,
    /// Rank of the running activation where it is known (a reshape makes it unknown): a
    /// concatenation must be along its last axis, the features.
    cur_rank: Option<usize>,
    layers: Vec<Layer>,
}

impl Reader<'_> {
    /// Reads one node: a constant, or an operator on the running activation, whose output
    /// becomes the running activation.
    fn node(&mut self, proto: &pb::NodeProto) -> Result<(), crate::emit::Unemittable> {
        let node = Node {
            proto,
            name: crate::model::node_display_name(&proto.name, &proto.output),
        };
        if proto.op_type == "Constant" {
            return self.constant(&node);
        }
        // Shape plumbing that only constants feed stays out of the chain.
        if proto
            .input
            .iter()
            .all(|i| self.consts.contains_key(i) || i.is_empty())
        {
            return Err(node.ctx("computes on constants only; simplify the model (onnxsim) first"));
        }
        // A concatenation takes the running activation anywhere among its parts.
        if proto.op_type != "Concat" && proto.input.first() != Some(&self.cur) {
            return Err(node.ctx("takes something other than the running activation as its first input (not a chain)"));
        }
        let handler = OPERATORS
            .iter()
            .find(|(op, _)| *op == proto.op_type)
            .map(|(_, h)| *h)
            .ok_or_else(|| node.ctx(&format!("operator {} is not generated", proto.op_type)))?;
        handler(self, &node)?;
        self.cur = proto
            .output
            .first()
            .cloned()
            .ok_or_else(|| node.ctx("no output"))?;
        Ok(())
    }

    /// A `Constant` node: its tensor joins the constants.
    fn constant(&mut self, node: &Node) -> Result<(), crate::emit::Unemittable> {
        let t = attr(node.proto, "value")
            .and_then(|a| a.t.as_ref())
            .ok_or_else(|| node.ctx("Constant without a tensor value"))?;
        let loaded = tract_onnx::tensor::load_tensor(&*self.onnx.provider, t, self.dir)
            .map_err(|e| node.ctx(&e.to_string()))?;
        let out = node
            .proto
            .output
            .first()
            .ok_or_else(|| node.ctx("Constant without an output"))?;
        self.consts.insert(out.clone(), to_const(loaded)?);
        Ok(())
    }

    /// Input `k` of a node, which must be a constant.
    fn arg(&self, node: &Node, k: usize) -> Result<&Const, crate::emit::Unemittable> {
        let i = node
            .proto
            .input
            .get(k)
            .ok_or_else(|| node.ctx(&format!("missing input {k}")))?;
        self.consts
            .get(i)
            .ok_or_else(|| node.ctx(&format!("input `{i}` is not a constant")))
    }

    /// Adds a layer to the chain.
    fn push(&mut self, layer: Layer) -> Result<(), crate::emit::Unemittable> {
        self.layers.push(layer);
        Ok(())
    }
}

/// `Gemm` and `MatMul`: a dense layer (weights output-major, times alpha; bias times beta).
fn dense(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let (proto, gemm) = (node.proto, node.proto.op_type == "Gemm");
    let w = r.arg(node, 1)?;
    if w.shape.len() != 2 {
        return Err(node.ctx(&format!("weight of shape {:?}", w.shape)));
    }
    let trans_b = gemm && attr_i(proto, "transB", 0) == 1;
    if gemm && attr_i(proto, "transA", 0) != 0 {
        return Err(node.ctx("transA is not supported"));
    }
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let (w_in, w_out) = if trans_b { (cols, rows) } else { (rows, cols) };
    if w_in != r.n {
        return Err(node.ctx(&format!(
            "weight expects {w_in} inputs, the activation has {}",
            r.n
        )));
    }
    let alpha = if gemm {
        attr_f(proto, "alpha", 1.0)
    } else {
        1.0
    };
    let mut wt = vec![0f32; w_in * w_out];
    for o in 0..w_out {
        for i in 0..w_in {
            let v = if trans_b {
                w.values[o * cols + i]
            } else {
                w.values[i * cols + o]
            };
            wt[o * w_in + i] = alpha * v;
        }
    }
    let mut b = vec![0f32; w_out];
    if gemm && proto.input.len() > 2 && !proto.input[2].is_empty() {
        let beta = attr_f(proto, "beta", 1.0);
        b = broadcast(r.arg(node, 2)?, w_out, &node.ctx("bias").0)?
            .iter()
            .map(|v| v * beta)
            .collect();
    }
    r.layers.push(Layer::Dense {
        n_in: w_in,
        n_out: w_out,
        w: wt,
        b,
    });
    r.n = w_out;
    if gemm {
        r.cur_rank = Some(2);
    }
    Ok(())
}

/// `Add`, `Sub`, `Mul`, `Div` by a constant: an affine step.
fn elementwise(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let n = r.n;
    let c = broadcast(r.arg(node, 1)?, n, &node.ctx("operand").0)?;
    let (scale, shift) = match node.proto.op_type.as_str() {
        "Add" => (vec![1.0; n], c),
        "Sub" => (vec![1.0; n], c.iter().map(|v| -v).collect()),
        "Mul" => (c, vec![0.0; n]),
        _ => (c.iter().map(|v| 1.0 / v).collect(), vec![0.0; n]),
    };
    r.push(Layer::Affine { scale, shift })
}

/// `BatchNormalization` (inference): an affine step.
fn batch_norm(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let n = r.n;
    // Errors name the node, as the other operators' do.
    let operand =
        |r: &Reader, i: usize, what: &str| -> Result<Vec<f32>, crate::emit::Unemittable> {
            broadcast(r.arg(node, i)?, n, what).map_err(|m| node.ctx(&m.0))
        };
    let (s, bias, mean, var) = (
        operand(r, 1, "scale")?,
        operand(r, 2, "B")?,
        operand(r, 3, "mean")?,
        operand(r, 4, "var")?,
    );
    let eps = attr_f(node.proto, "epsilon", 1e-5);
    let scale: Vec<f32> = (0..n).map(|i| s[i] / (var[i] + eps).sqrt()).collect();
    let shift = (0..n).map(|i| bias[i] - mean[i] * scale[i]).collect();
    r.push(Layer::Affine { scale, shift })
}

fn relu(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::Relu))
}

fn leaky_relu(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::LeakyRelu(attr_f(
        node.proto, "alpha", 0.01,
    ))))
}

fn sigmoid(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::Sigmoid))
}

fn tanh(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::Tanh))
}

fn elu(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::Elu(attr_f(node.proto, "alpha", 1.0))))
}

fn softplus(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::Softplus))
}

fn hard_sigmoid(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    r.push(Layer::Act(Act::HardSigmoid(
        attr_f(node.proto, "alpha", 0.2),
        attr_f(node.proto, "beta", 0.5),
    )))
}

/// `Gelu`, exact or with the tanh approximation.
fn gelu(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let tanh = attr(node.proto, "approximate").is_some_and(|a| a.s == b"tanh");
    r.push(Layer::Act(if tanh { Act::GeluTanh } else { Act::Gelu }))
}

/// `Clip`, its bounds from constant inputs (opset 11+) or attributes (before).
fn clip(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let bound =
        |k: usize, attr_name: &str, default: f32| -> Result<f32, crate::emit::Unemittable> {
            match node.proto.input.get(k).filter(|i| !i.is_empty()) {
                Some(_) => Ok(r.arg(node, k)?.values.first().copied().unwrap_or(default)),
                None => Ok(attr_f(node.proto, attr_name, default)),
            }
        };
    let act = Act::Clip(
        bound(1, "min", f32::NEG_INFINITY)?,
        bound(2, "max", f32::INFINITY)?,
    );
    r.push(Layer::Act(act))
}

/// `Softmax` and `LogSoftmax` over the features.
fn softmax(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let rank = r.rank;
    let axis = attr_i(node.proto, "axis", -1);
    let last = axis == -1 || axis == rank as i64 - 1 || (rank == 2 && axis == 1);
    if !last {
        return Err(node.ctx(&format!(
            "axis {axis}: generated code normalises over the features (last axis)"
        )));
    }
    r.push(if node.proto.op_type == "Softmax" {
        Layer::Softmax
    } else {
        Layer::LogSoftmax
    })
}

/// `Concat` of the running activation with constants, along the features.
fn concat(r: &mut Reader, node: &Node) -> Result<(), crate::emit::Unemittable> {
    let axis = attr_i(node.proto, "axis", 0);
    let features = match r.cur_rank {
        Some(rank @ (1 | 2)) => axis == -1 || axis == rank as i64 - 1,
        _ => false,
    };
    if !features {
        let of = match r.cur_rank {
            Some(rank) => format!("a rank-{rank} activation"),
            None => "an activation of unknown rank (after a reshape)".into(),
        };
        return Err(node.ctx(&format!(
            "axis {axis} of {of}: generated code concatenates features (the last axis of [batch, features])"
        )));
    }
    let (mut before, mut after, mut seen) = (Vec::new(), Vec::new(), false);
    for i in &node.proto.input {
        if *i == r.cur {
            if seen {
                return Err(node.ctx("takes the running activation twice; generated code concatenates it with constants only"));
            }
            seen = true;
            continue;
        }
        let c = r.consts.get(i).ok_or_else(|| {
            node.ctx(&format!("concatenates `{i}`, a second computed tensor; generated code keeps one running activation"))
        })?;
        let rank = r.cur_rank.unwrap_or(0);
        if c.shape.len() != rank || c.shape[..rank - 1].iter().any(|d| *d != 1) {
            return Err(node.ctx(&format!(
                "constant part `{i}` of shape {:?} is not one sample's features",
                c.shape
            )));
        }
        if seen {
            after.extend_from_slice(&c.values);
        } else {
            before.extend_from_slice(&c.values);
        }
    }
    if !seen {
        return Err(node.ctx("does not take the running activation (not a chain)"));
    }
    r.n += before.len() + after.len();
    r.push(Layer::Concat { before, after })
}

/// `Identity` and `Dropout` (inference): nothing to do.
fn pass_through(_: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    Ok(())
}

/// `Flatten`: the activation becomes `[batch, features]`.
fn flatten(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.cur_rank = Some(2);
    Ok(())
}

/// `Reshape`, `Squeeze`, `Unsqueeze`: the features stay, the rank is no longer known.
fn reshape(r: &mut Reader, _: &Node) -> Result<(), crate::emit::Unemittable> {
    r.cur_rank = None;
    Ok(())
}
