//! ONNX models built in tests with tract's protobuf types (no Python).

use prost::Message;
use tract_onnx::pb;

pub const FLOAT: i32 = 1;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const BOOL: i32 = 9;

/// A tensor's name, element type and fixed shape.
pub fn value(name: &str, elem: i32, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node named `{op}_{first output}`.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: outputs
            .first()
            .map(|o| format!("{op}_{o}"))
            .unwrap_or_default(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// An opset-17 model of this graph, encoded.
pub fn model(graph: pb::GraphProto) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "cargo-infer-tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// An ONNX `TensorProto` file (`.pb`), as test data sets hold them.
pub fn tensor_pb(name: &str, dtype: i32, dims: &[i64], raw: Vec<u8>) -> Vec<u8> {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dtype,
        raw_data: raw,
        ..Default::default()
    }
    .encode_to_vec()
}
