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

fn to_const(t: Tensor) -> Result<Const, String> {
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
fn broadcast(c: &Const, n: usize, what: &str) -> Result<Vec<f32>, String> {
    match c.values.len() {
        1 => Ok(vec![c.values[0]; n]),
        m if m == n && c.shape.iter().rev().skip(1).all(|d| *d == 1) => Ok(c.values.clone()),
        _ => Err(format!(
            "{what}: constant of shape {:?} does not broadcast over {n} features",
            c.shape
        )),
    }
}

/// Widest sample generated code takes (2^24 features): a declared input shape is not trusted
/// for the allocations that follow it.
const MAX_FEATURES: i64 = 1 << 24;

pub fn read(path: &Path) -> Result<Chain, String> {
    let onnx = tract_onnx::onnx();
    let proto = onnx.proto_model_for_path(path).map_err(|e| e.to_string())?;
    let graph = proto.graph.as_ref().ok_or("no graph")?;
    let dir = crate::backends::tract::dir_of(path);
    let mut consts: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        let loaded = tract_onnx::tensor::load_tensor(&*onnx.provider, t, dir)
            .map_err(|e| format!("initializer `{}`: {e}", t.name))?;
        consts.insert(t.name.clone(), to_const(loaded)?);
    }
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(format!("{} inputs; generated code takes one", inputs.len()));
    };
    let [output] = graph.output.as_slice() else {
        return Err(format!(
            "{} outputs; generated code gives one",
            graph.output.len()
        ));
    };
    let dims: Vec<i64> = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t
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
            .unwrap_or_default(),
        _ => return Err("input is not a tensor".into()),
    };
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
        ));
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
    let rank = dims.len();

    let mut cur = input.name.clone();
    let mut n = n_in;
    // Rank of the running activation where it is known (a reshape makes it unknown): a
    // concatenation must be along its last axis, the features.
    let mut cur_rank = Some(rank);
    let mut layers = Vec::new();
    let mut ops = std::collections::BTreeMap::new();
    for node in &graph.node {
        *ops.entry(node.op_type.clone()).or_default() += 1;
        let name = crate::model::node_display_name(&node.name, &node.output);
        let ctx = |m: &str| format!("node `{name}` ({}): {m}", node.op_type);
        if node.op_type == "Constant" {
            let t = attr(node, "value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| ctx("Constant without a tensor value"))?;
            let loaded = tract_onnx::tensor::load_tensor(&*onnx.provider, t, dir)
                .map_err(|e| ctx(&e.to_string()))?;
            let out = node
                .output
                .first()
                .ok_or_else(|| ctx("Constant without an output"))?;
            consts.insert(out.clone(), to_const(loaded)?);
            continue;
        }
        // Shape plumbing that only constants feed stays out of the chain.
        if node
            .input
            .iter()
            .all(|i| consts.contains_key(i) || i.is_empty())
        {
            return Err(ctx(
                "computes on constants only; simplify the model (onnxsim) first",
            ));
        }
        // A concatenation takes the running activation anywhere among its parts.
        if node.op_type != "Concat" && node.input.first() != Some(&cur) {
            return Err(ctx("takes something other than the running activation as its first input (not a chain)"));
        }
        let arg = |k: usize| -> Result<&Const, String> {
            let i = node
                .input
                .get(k)
                .ok_or_else(|| ctx(&format!("missing input {k}")))?;
            consts
                .get(i)
                .ok_or_else(|| ctx(&format!("input `{i}` is not a constant")))
        };
        match node.op_type.as_str() {
            "Gemm" | "MatMul" => {
                let w = arg(1)?;
                if w.shape.len() != 2 {
                    return Err(ctx(&format!("weight of shape {:?}", w.shape)));
                }
                let trans_b = node.op_type == "Gemm" && attr_i(node, "transB", 0) == 1;
                if node.op_type == "Gemm" && attr_i(node, "transA", 0) != 0 {
                    return Err(ctx("transA is not supported"));
                }
                let (rows, cols) = (w.shape[0], w.shape[1]);
                let (w_in, w_out) = if trans_b { (cols, rows) } else { (rows, cols) };
                if w_in != n {
                    return Err(ctx(&format!(
                        "weight expects {w_in} inputs, the activation has {n}"
                    )));
                }
                let alpha = if node.op_type == "Gemm" {
                    attr_f(node, "alpha", 1.0)
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
                if node.op_type == "Gemm" && node.input.len() > 2 && !node.input[2].is_empty() {
                    let beta = attr_f(node, "beta", 1.0);
                    b = broadcast(arg(2)?, w_out, &ctx("bias"))?
                        .iter()
                        .map(|v| v * beta)
                        .collect();
                }
                layers.push(Layer::Dense {
                    n_in: w_in,
                    n_out: w_out,
                    w: wt,
                    b,
                });
                n = w_out;
                if node.op_type == "Gemm" {
                    cur_rank = Some(2);
                }
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let c = broadcast(arg(1)?, n, &ctx("operand"))?;
                let (scale, shift) = match node.op_type.as_str() {
                    "Add" => (vec![1.0; n], c),
                    "Sub" => (vec![1.0; n], c.iter().map(|v| -v).collect()),
                    "Mul" => (c, vec![0.0; n]),
                    _ => (c.iter().map(|v| 1.0 / v).collect(), vec![0.0; n]),
                };
                layers.push(Layer::Affine { scale, shift });
            }
            "BatchNormalization" => {
                let (s, bias, mean, var) = (
                    broadcast(arg(1)?, n, "scale")?,
                    broadcast(arg(2)?, n, "B")?,
                    broadcast(arg(3)?, n, "mean")?,
                    broadcast(arg(4)?, n, "var")?,
                );
                let eps = attr_f(node, "epsilon", 1e-5);
                let scale: Vec<f32> = (0..n).map(|i| s[i] / (var[i] + eps).sqrt()).collect();
                let shift = (0..n).map(|i| bias[i] - mean[i] * scale[i]).collect();
                layers.push(Layer::Affine { scale, shift });
            }
            "Relu" => layers.push(Layer::Act(Act::Relu)),
            "LeakyRelu" => layers.push(Layer::Act(Act::LeakyRelu(attr_f(node, "alpha", 0.01)))),
            "Sigmoid" => layers.push(Layer::Act(Act::Sigmoid)),
            "Tanh" => layers.push(Layer::Act(Act::Tanh)),
            "Elu" => layers.push(Layer::Act(Act::Elu(attr_f(node, "alpha", 1.0)))),
            "Softplus" => layers.push(Layer::Act(Act::Softplus)),
            "HardSigmoid" => layers.push(Layer::Act(Act::HardSigmoid(
                attr_f(node, "alpha", 0.2),
                attr_f(node, "beta", 0.5),
            ))),
            "Gelu" => {
                let tanh = attr(node, "approximate").is_some_and(|a| a.s == b"tanh");
                layers.push(Layer::Act(if tanh { Act::GeluTanh } else { Act::Gelu }));
            }
            "Clip" => {
                let bound = |k: usize, attr_name: &str, default: f32| -> Result<f32, String> {
                    match node.input.get(k).filter(|i| !i.is_empty()) {
                        Some(_) => Ok(arg(k)?.values.first().copied().unwrap_or(default)),
                        None => Ok(attr_f(node, attr_name, default)),
                    }
                };
                layers.push(Layer::Act(Act::Clip(
                    bound(1, "min", f32::NEG_INFINITY)?,
                    bound(2, "max", f32::INFINITY)?,
                )));
            }
            "Softmax" | "LogSoftmax" => {
                let axis = attr_i(node, "axis", -1);
                let last = axis == -1 || axis == rank as i64 - 1 || (rank == 2 && axis == 1);
                if !last {
                    return Err(ctx(&format!(
                        "axis {axis}: generated code normalises over the features (last axis)"
                    )));
                }
                layers.push(if node.op_type == "Softmax" {
                    Layer::Softmax
                } else {
                    Layer::LogSoftmax
                });
            }
            "Concat" => {
                let axis = attr_i(node, "axis", 0);
                let features = match cur_rank {
                    Some(r @ (1 | 2)) => axis == -1 || axis == r as i64 - 1,
                    _ => false,
                };
                if !features {
                    let of = match cur_rank {
                        Some(r) => format!("a rank-{r} activation"),
                        None => "an activation of unknown rank (after a reshape)".into(),
                    };
                    return Err(ctx(&format!(
                        "axis {axis} of {of}: generated code concatenates features (the last axis of [batch, features])"
                    )));
                }
                let (mut before, mut after, mut seen) = (Vec::new(), Vec::new(), false);
                for i in &node.input {
                    if *i == cur {
                        if seen {
                            return Err(ctx("takes the running activation twice; generated code concatenates it with constants only"));
                        }
                        seen = true;
                        continue;
                    }
                    let c = consts.get(i).ok_or_else(|| {
                        ctx(&format!("concatenates `{i}`, a second computed tensor; generated code keeps one running activation"))
                    })?;
                    let r = cur_rank.unwrap_or(0);
                    if c.shape.len() != r || c.shape[..r - 1].iter().any(|d| *d != 1) {
                        return Err(ctx(&format!(
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
                    return Err(ctx("does not take the running activation (not a chain)"));
                }
                n += before.len() + after.len();
                layers.push(Layer::Concat { before, after });
            }
            "Identity" | "Dropout" => {}
            "Flatten" => cur_rank = Some(2),
            "Reshape" | "Squeeze" | "Unsqueeze" => cur_rank = None,
            other => return Err(ctx(&format!("operator {other} is not generated"))),
        }
        cur = node
            .output
            .first()
            .cloned()
            .ok_or_else(|| ctx("no output"))?;
    }
    if cur != output.name {
        return Err(format!(
            "the chain ends at `{cur}`, not at the output `{}`",
            output.name
        ));
    }
    Ok(Chain {
        input_name: input.name.clone(),
        output_name: output.name.clone(),
        n_in,
        n_out: n,
        layers,
        ops,
    })
}
