//! ONNX graphs on candle (cargo feature `candle`), through `candle-onnx`: the path a project takes
//! when `decide` picks candle for an ONNX model. candle-onnx evaluates the graph node by node on
//! the CPU; what it lacks (operators, dtypes, external data) is reported as unsupported, every
//! operator it lacks named at once, before anything runs.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType as CType, Device as CDevice, Tensor};
use candle_onnx::onnx;

use super::{BackendError, LoadNotes, Loaded, Named};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// The operators candle-onnx evaluates (read from its source by `cargo xtask oplists`; the same
/// list `decide` scores candle by).
pub const OPERATORS: &str = include_str!("../decide/oplists/candle-onnx-0.11.1.txt");

/// A graph loaded for candle-onnx: the protobuf as candle-onnx reads it, with what it needs
/// to feed the inputs and return the outputs with the model's dtypes.
pub struct CandleOnnx {
    model: onnx::ModelProto,
    /// The declared dtype of each graph output (candle has no bool: it returns u8).
    outputs: Vec<(String, DType)>,
}

fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError::Failed(super::first_line(&e.to_string()))
}

/// The operators of the graph (its subgraphs included) that candle-onnx does not evaluate.
fn missing_operators(model: &onnx::ModelProto) -> Vec<String> {
    let known: Vec<&str> = OPERATORS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut missing = Vec::new();
    let mut graphs: Vec<&onnx::GraphProto> = model.graph.iter().collect();
    while let Some(g) = graphs.pop() {
        for n in &g.node {
            let standard = n.domain.is_empty() || n.domain == "ai.onnx";
            let op = if standard {
                n.op_type.clone()
            } else {
                format!("{}:{}", n.domain, n.op_type)
            };
            if (!standard || !known.contains(&n.op_type.as_str())) && !missing.contains(&op) {
                missing.push(op);
            }
            for a in &n.attribute {
                graphs.extend(a.g.iter());
                graphs.extend(a.graphs.iter());
            }
        }
    }
    missing.sort();
    missing
}

/// candle-onnx reads int32 initializers' raw bytes through a pointer cast that assumes their
/// alignment; the values are moved to `int32_data`, which it reads safely.
fn int32_to_field(model: &mut onnx::ModelProto) {
    let int32 = onnx::tensor_proto::DataType::Int32 as i32;
    let move_raw = |t: &mut onnx::TensorProto| {
        if t.data_type == int32 && t.int32_data.is_empty() && !t.raw_data.is_empty() {
            t.int32_data = t
                .raw_data
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            t.raw_data.clear();
        }
    };
    let mut graphs: Vec<&mut onnx::GraphProto> = model.graph.iter_mut().collect();
    while let Some(g) = graphs.pop() {
        g.initializer.iter_mut().for_each(move_raw);
        for n in g.node.iter_mut() {
            for a in n.attribute.iter_mut() {
                if let Some(t) = a.t.as_mut() {
                    move_raw(t);
                }
                graphs.extend(a.g.iter_mut());
                graphs.extend(a.graphs.iter_mut());
            }
        }
    }
}

/// The candle dtype a host tensor is fed as, and the bytes (bool as u8).
fn candle_dtype(d: DType) -> Option<CType> {
    Some(match d {
        DType::F32 => CType::F32,
        DType::F64 => CType::F64,
        DType::F16 => CType::F16,
        DType::BF16 => CType::BF16,
        DType::I64 => CType::I64,
        DType::U32 => CType::U32,
        DType::U8 | DType::Bool => CType::U8,
        _ => return None,
    })
}

fn to_candle(name: &str, t: &HostTensor) -> Result<Tensor, BackendError> {
    let dtype = candle_dtype(t.dtype).ok_or_else(|| {
        BackendError::Unsupported(format!(
            "input `{name}` is {}, which candle-onnx does not take",
            t.dtype
        ))
    })?;
    Tensor::from_raw_buffer(&t.data, dtype, &t.shape, &CDevice::Cpu).map_err(failed)
}

fn from_candle(t: &Tensor, declared: DType) -> Result<HostTensor, BackendError> {
    let shape = t.dims().to_vec();
    let t = t.flatten_all().map_err(failed)?;
    let (dtype, data): (DType, Vec<u8>) = match t.dtype() {
        CType::F32 => (
            DType::F32,
            bytes(t.to_vec1::<f32>().map_err(failed)?, f32::to_le_bytes),
        ),
        CType::F64 => (
            DType::F64,
            bytes(t.to_vec1::<f64>().map_err(failed)?, f64::to_le_bytes),
        ),
        CType::F16 => (
            DType::F16,
            bytes(
                t.to_vec1::<half::f16>().map_err(failed)?,
                half::f16::to_le_bytes,
            ),
        ),
        CType::BF16 => (
            DType::BF16,
            bytes(
                t.to_vec1::<half::bf16>().map_err(failed)?,
                half::bf16::to_le_bytes,
            ),
        ),
        CType::I64 => (
            DType::I64,
            bytes(t.to_vec1::<i64>().map_err(failed)?, i64::to_le_bytes),
        ),
        CType::U32 => (
            DType::U32,
            bytes(t.to_vec1::<u32>().map_err(failed)?, u32::to_le_bytes),
        ),
        // candle has no bool: a declared bool output comes back as u8.
        CType::U8 if declared == DType::Bool => (DType::Bool, t.to_vec1::<u8>().map_err(failed)?),
        CType::U8 => (DType::U8, t.to_vec1::<u8>().map_err(failed)?),
        other => {
            return Err(BackendError::Unsupported(format!(
                "candle returned {other:?}, which has no ONNX counterpart here"
            )))
        }
    };
    Ok(HostTensor::from_bytes(dtype, shape, data)?)
}

/// candle-onnx's words for an attribute, mode or dtype it has no code for (`Unsupported resize
/// mode: linear`, `AvgPool with pads != 0`, `only 2d MaxPool is supported`): unsupported, not a
/// failure of the model.
fn lacks_a_feature(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unsupported")
        || m.contains("not supported")
        || m.contains("is supported")
        || m.contains("currently not")
        || m.contains("only supports")
        || m.starts_with("avgpool with")
        || m.starts_with("maxpool with")
}

fn bytes<T: Copy, const N: usize>(v: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.into_iter().flat_map(f).collect()
}

/// Reads `path` for candle-onnx, refusing what it cannot evaluate: external data, and every
/// operator it lacks (named together).
pub fn load(path: &Path, info: &ModelInfo) -> Result<(CandleOnnx, LoadNotes), BackendError> {
    if !info.details.external_data.is_empty() {
        return Err(BackendError::Unsupported(
            "external data: candle-onnx reads only tensors stored in the .onnx file".into(),
        ));
    }
    let mut model = candle_onnx::read_file(path).map_err(failed)?;
    let missing = missing_operators(&model);
    if !missing.is_empty() {
        return Err(BackendError::Unsupported(format!(
            "candle-onnx {} lacks operator{} {}",
            super::candle::VERSION,
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    int32_to_field(&mut model);
    let outputs = super::declared_outputs(info);
    Ok((CandleOnnx { model, outputs }, LoadNotes::default()))
}

impl Loaded for CandleOnnx {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let mut feed = HashMap::new();
        for (name, t) in inputs {
            feed.insert(name.clone(), to_candle(name, t)?);
        }
        let mut out = candle_onnx::simple_eval(&self.model, feed).map_err(|e| {
            let text = e.to_string();
            match text.strip_prefix("unsupported op_type ") {
                // `unsupported op_type Foo for op NodeProto { … }`: the operator, not the node's dump.
                Some(rest) => BackendError::Unsupported(format!(
                    "candle-onnx lacks operator {}",
                    rest.split(' ').next().unwrap_or(rest)
                )),
                None if lacks_a_feature(&text) => {
                    BackendError::Unsupported(super::first_line(&text))
                }
                None => failed(text),
            }
        })?;
        self.outputs
            .iter()
            .map(|(name, dtype)| {
                let t = out
                    .remove(name)
                    .ok_or_else(|| BackendError::Failed(format!("no output `{name}`")))?;
                Ok((name.clone(), from_candle(&t, *dtype)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int32_raw_bytes_move_to_the_field_candle_reads_safely() {
        let t = onnx::TensorProto {
            name: "k".into(),
            data_type: onnx::tensor_proto::DataType::Int32 as i32,
            dims: vec![2],
            raw_data: [7i32, -3].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        let mut model = onnx::ModelProto {
            graph: Some(onnx::GraphProto {
                initializer: vec![t],
                ..Default::default()
            }),
            ..Default::default()
        };
        int32_to_field(&mut model);
        let t = &model.graph.as_ref().unwrap().initializer[0];
        assert_eq!(t.int32_data, [7, -3]);
        assert!(t.raw_data.is_empty());
        let v = candle_onnx::eval::get_tensor(t, "k").unwrap();
        assert_eq!(v.to_vec1::<i64>().unwrap(), [7, -3]);
    }

    #[test]
    fn what_candle_onnx_lacks_is_unsupported_and_the_rest_a_failure() {
        assert!(lacks_a_feature("Unsupported resize mode: linear"));
        assert!(lacks_a_feature(
            "only 2d MaxPool is supported, kernel shape [3]"
        ));
        assert!(lacks_a_feature(
            "AvgPool with pads != 0, Some([1, 1, 1, 1])"
        ));
        assert!(lacks_a_feature(
            "LSTM currently only supports direction == \"forward\""
        ));
        assert!(!lacks_a_feature(
            "shape mismatch in mul, lhs: [2, 3], rhs: [4]"
        ));
    }
}
