//! ONNX reader: `prost` messages for the parts of `onnx.proto` that describe a model, which skip
//! every weight payload (`raw_data`, typed data) without copying or touching it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::Message;

use super::{dtype, Dim, FileRef, Format, ModelInfo, NodeSummary, TensorSummary, ValueSpec};
use crate::error::ModelError;

pub mod proto {
    //! The subset of `onnx.proto3` that `inspect` reads, field numbers as in the ONNX spec.
    // Mirrors of onnx.proto's messages: every type and field is onnx.proto's, by the same name
    // (`Model` is `ModelProto`, `Graph` is `GraphProto`, …); the spec documents them.
    #![allow(missing_docs)]
    use super::TensorLite;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetId>,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(string, tag = "4")]
        pub domain: String,
        #[prost(int64, tag = "5")]
        pub model_version: i64,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntry>,
        #[prost(message, repeated, tag = "25")]
        pub functions: Vec<Function>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetId {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorLite>,
        #[prost(message, repeated, tag = "15")]
        pub sparse_initializer: Vec<SparseTensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(string, tag = "7")]
        pub domain: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<Attribute>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorLite>,
        #[prost(message, optional, tag = "6")]
        pub g: Option<Graph>,
        #[prost(message, repeated, tag = "10")]
        pub tensors: Vec<TensorLite>,
        #[prost(message, repeated, tag = "11")]
        pub graphs: Vec<Graph>,
        #[prost(message, optional, tag = "22")]
        pub sparse_tensor: Option<SparseTensor>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SparseTensor {
        #[prost(message, optional, tag = "1")]
        pub values: Option<TensorLite>,
        #[prost(message, optional, tag = "2")]
        pub indices: Option<TensorLite>,
        #[prost(int64, repeated, tag = "3")]
        pub dims: Vec<i64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(oneof = "type_value::Value", tags = "1, 4, 5, 8, 9")]
        pub value: Option<type_value::Value>,
    }

    pub mod type_value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(message, tag = "1")]
            Tensor(super::TensorType),
            #[prost(message, tag = "4")]
            Sequence(super::ElemType),
            #[prost(message, tag = "5")]
            Map(super::MapType),
            #[prost(message, tag = "8")]
            SparseTensor(super::TensorType),
            #[prost(message, tag = "9")]
            Optional(super::ElemType),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorType {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<Shape>,
    }

    /// `TypeProto.Sequence` and `TypeProto.Optional`: one element type.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ElemType {
        #[prost(message, optional, boxed, tag = "1")]
        pub elem_type: Option<Box<Type>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MapType {
        #[prost(int32, tag = "1")]
        pub key_type: i32,
        #[prost(message, optional, boxed, tag = "2")]
        pub value_type: Option<Box<Type>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Shape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    pub mod dimension {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "10")]
        pub domain: String,
        #[prost(message, repeated, tag = "7")]
        pub node: Vec<Node>,
        #[prost(message, repeated, tag = "9")]
        pub opset_import: Vec<OperatorSetId>,
    }
}

/// `TensorProto` without its payload: the payload's length is recorded, its bytes skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorLite {
    /// Shape as the file declares it (`dims`); empty for a scalar.
    pub dims: Vec<i64>,
    /// Element type as an ONNX `TensorProto.DataType` code (1 `float`, 7 `int64`, …; 0 unset).
    pub data_type: i32,
    /// Initializer name, as node inputs refer to it.
    pub name: String,
    /// Length of `raw_data`, when present.
    pub raw_data_len: Option<u64>,
    /// Number of values in the typed fields (`float_data`, `int64_data`, …, `string_data`).
    pub typed_values: u64,
    /// `external_data` key/value pairs (`location`, `offset`, `length`, `checksum`) when the
    /// payload lives in another file.
    pub external_data: Vec<proto::StringStringEntry>,
    /// `data_location`: 0 `DEFAULT` (payload in this file), 1 `EXTERNAL` (see `external_data`).
    pub data_location: i32,
}

impl Message for TensorLite {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encoding::int64::encode_packed(1, &self.dims, buf);
        if self.data_type != 0 {
            encoding::int32::encode(2, &self.data_type, buf);
        }
        if !self.name.is_empty() {
            encoding::string::encode(8, &self.name, buf);
        }
        encoding::message::encode_repeated(13, &self.external_data, buf);
        if self.data_location != 0 {
            encoding::int32::encode(14, &self.data_location, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => encoding::int64::merge_repeated(wire_type, &mut self.dims, buf, ctx),
            2 => encoding::int32::merge(wire_type, &mut self.data_type, buf, ctx),
            8 => encoding::string::merge(wire_type, &mut self.name, buf, ctx),
            13 => encoding::message::merge_repeated(wire_type, &mut self.external_data, buf, ctx),
            14 => encoding::int32::merge(wire_type, &mut self.data_location, buf, ctx),
            9 => {
                let len = skip_bytes(wire_type, buf)?;
                self.raw_data_len = Some(self.raw_data_len.unwrap_or(0) + len);
                Ok(())
            }
            // float_data and double_data: fixed-width, packed or one by one.
            4 | 10 => {
                let width = if tag == 4 { 4 } else { 8 };
                self.typed_values += match wire_type {
                    WireType::LengthDelimited => skip_bytes(wire_type, buf)? / width,
                    _ => {
                        encoding::skip_field(wire_type, tag, buf, ctx)?;
                        1
                    }
                };
                Ok(())
            }
            // int32_data, int64_data, uint64_data: varints, packed or one by one.
            5 | 7 | 11 => {
                self.typed_values += match wire_type {
                    WireType::LengthDelimited => {
                        let len = encoding::decode_varint(buf)?;
                        if len > buf.remaining() as u64 {
                            return Err(decode_error("buffer underflow"));
                        }
                        let mut n = 0u64;
                        let mut left = len as usize;
                        while left > 0 {
                            let chunk = buf.chunk();
                            let take = chunk.len().min(left);
                            n += chunk[..take].iter().filter(|b| **b < 0x80).count() as u64;
                            buf.advance(take);
                            left -= take;
                        }
                        n
                    }
                    _ => {
                        encoding::skip_field(wire_type, tag, buf, ctx)?;
                        1
                    }
                };
                Ok(())
            }
            6 => {
                skip_bytes(wire_type, buf)?;
                self.typed_values += 1;
                Ok(())
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::int64::encoded_len_packed(1, &self.dims)
            + if self.data_type != 0 {
                encoding::int32::encoded_len(2, &self.data_type)
            } else {
                0
            }
            + if self.name.is_empty() {
                0
            } else {
                encoding::string::encoded_len(8, &self.name)
            }
            + encoding::message::encoded_len_repeated(13, &self.external_data)
            + if self.data_location != 0 {
                encoding::int32::encoded_len(14, &self.data_location)
            } else {
                0
            }
    }

    fn clear(&mut self) {
        *self = TensorLite::default();
    }
}

#[allow(deprecated)] // prost offers no other way for a hand-written Message to report an error
fn decode_error(msg: &'static str) -> prost::DecodeError {
    prost::DecodeError::new(msg)
}

/// Skips a length-delimited field without reading it, returning its length.
fn skip_bytes(wire_type: WireType, buf: &mut impl Buf) -> Result<u64, prost::DecodeError> {
    if wire_type != WireType::LengthDelimited {
        return Err(decode_error("invalid wire type for a bytes field"));
    }
    let len = encoding::decode_varint(buf)?;
    if len > buf.remaining() as u64 {
        return Err(decode_error("buffer underflow"));
    }
    buf.advance(len as usize);
    Ok(len)
}

/// Standard operator domains; anything else is a custom domain that most runtimes lack.
const STANDARD_DOMAINS: &[&str] = &["", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training"];

/// Reads an ONNX file (weight payloads skipped) into a [`ModelInfo`]: inputs, outputs, operators,
/// parameters, opsets, external data files. Corrupt protobuf, no graph, or undefined names: error.
pub fn inspect(path: &Path) -> Result<ModelInfo, ModelError> {
    let map = super::map_file(path)?;
    let model = proto::Model::decode(&map[..]).map_err(|e| {
        // prost stops at 100 nested messages: a subgraph costs three (graph, node, attribute), so
        // about 33 levels of If/Loop/Scan inside one another. Its own message would list all 100.
        if e.to_string().contains("recursion limit reached") {
            return ModelError::new(
                path,
                "ONNX graph nested too deeply: more than 100 nested messages (about 33 levels of subgraphs inside subgraphs, If inside If …); refused",
            );
        }
        ModelError::new(
            path,
            format!("not a valid ONNX protobuf (truncated or corrupt): {e}"),
        )
    })?;
    from_proto(path, &model, map.len() as u64)
}

fn from_proto(path: &Path, model: &proto::Model, file_len: u64) -> Result<ModelInfo, ModelError> {
    let graph = model.graph.as_ref().ok_or_else(|| {
        ModelError::new(
            path,
            "ONNX model has no graph (truncated or not an ONNX model)",
        )
    })?;
    if model.opset_import.is_empty() && model.ir_version >= 3 {
        return Err(ModelError::new(
            path,
            "ONNX model has no opset_import (truncated, or not a valid ONNX model)",
        ));
    }
    if model.ir_version <= 0 || model.ir_version > 100 {
        return Err(ModelError::new(
            path,
            format!("not an ONNX model (ir_version {})", model.ir_version),
        ));
    }
    let mut info = ModelInfo::new(path, Format::Onnx);
    info.details.ir_version = Some(model.ir_version);
    let producer = [
        model.producer_name.as_str(),
        model.producer_version.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    info.details.producer = (!producer.is_empty()).then_some(producer);
    info.details.graph_name = (!graph.name.is_empty()).then(|| graph.name.clone());
    for op in &model.opset_import {
        let domain = if op.domain.is_empty() {
            "ai.onnx"
        } else {
            op.domain.as_str()
        };
        info.opsets.insert(domain.to_string(), op.version);
    }
    for p in &model.metadata_props {
        info.metadata.insert(p.key.clone(), p.value.clone());
    }

    let mut walk = Walk {
        path,
        tensors: Vec::new(),
        nodes: Vec::new(),
        external: BTreeMap::new(),
    };
    walk.graph(graph, 0)?;
    undefined_names(path, graph)?;
    for f in &model.functions {
        walk.nodes(&f.node, 1)?;
    }
    let functions: HashSet<(&str, &str)> = model
        .functions
        .iter()
        .map(|f| (f.domain.as_str(), f.name.as_str()))
        .collect();

    let initializer_names: HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    info.inputs = graph
        .input
        .iter()
        .filter(|v| !initializer_names.contains(v.name.as_str()))
        .map(value_spec)
        .collect();
    info.outputs = graph.output.iter().map(value_spec).collect();

    info.operators = histogram(&walk.nodes);
    let mut custom = BTreeSet::new();
    for n in &walk.nodes {
        if !STANDARD_DOMAINS.contains(&n.domain.as_str())
            && !functions.contains(&(n.domain.as_str(), n.op_type.as_str()))
        {
            custom.insert(n.domain.clone());
        }
    }
    info.details.custom_domains = custom.into_iter().collect();
    info.details.node_count = Some(walk.nodes.len() as u64);
    info.details.external_data = walk
        .external
        .iter()
        .map(|(f, at)| FileRef {
            file: f.clone(),
            exists: at.as_ref().is_ok_and(|p| p.is_file()),
            outside: at.as_ref().err().map(|o| o.why.clone()),
        })
        .collect();
    let findings: Vec<String> = walk
        .external
        .values()
        .filter_map(|at| at.as_ref().err())
        .map(|o| format!("external data {o}: not opened; loading the model would read that file"))
        .collect();
    if !findings.is_empty() {
        info.safety = super::Safety {
            verdict: super::Verdict::Unsafe,
            risk: super::Risk::Dangerous,
            findings,
        };
    }
    let inline: u64 = walk
        .tensors
        .iter()
        .filter(|(_, ext)| !ext)
        .map(|(t, _)| t.bytes)
        .sum();
    if inline > file_len {
        return Err(ModelError::new(
            path,
            "tensor sizes exceed the file size (corrupt file)",
        ));
    }
    info.nodes = walk.nodes;
    info.set_tensors(walk.tensors.into_iter().map(|(t, _)| t).collect());
    Ok(info)
}

/// `Op` for the standard domain, `domain::Op` otherwise (the contract's operator key).
pub fn op_key(domain: &str, op_type: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        op_type.to_string()
    } else {
        format!("{domain}::{op_type}")
    }
}

/// Every name the main graph reads (node inputs, graph outputs) must be one it defines (an input,
/// an initializer or a node output): back ends look names up without asking (tract panics).
/// Subgraphs may read names of the graphs around them and are left to the back ends.
fn undefined_names(path: &Path, g: &proto::Graph) -> Result<(), ModelError> {
    let defined: std::collections::HashSet<&str> = g
        .input
        .iter()
        .map(|v| v.name.as_str())
        .chain(g.initializer.iter().map(|t| t.name.as_str()))
        .chain(
            g.sparse_initializer
                .iter()
                .filter_map(|s| s.values.as_ref().map(|v| v.name.as_str())),
        )
        .chain(
            g.node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    // An empty name is an optional input left out.
    let missing = |name: &str| !name.is_empty() && !defined.contains(name);
    for n in &g.node {
        if let Some(i) = n.input.iter().find(|i| missing(i)) {
            let who = if n.name.is_empty() {
                format!("a {} node", n.op_type)
            } else {
                format!("node `{}` ({})", n.name, n.op_type)
            };
            return Err(ModelError::new(
                path,
                format!("{who} reads `{i}`, which no input, initializer or node defines: not a valid ONNX graph"),
            ));
        }
    }
    if let Some(o) = g
        .output
        .iter()
        .find(|o| o.name.is_empty() || missing(&o.name))
    {
        return Err(ModelError::new(
            path,
            format!("graph output `{}` is produced by no node, input or initializer: not a valid ONNX graph", o.name),
        ));
    }
    Ok(())
}

struct Walk<'a> {
    path: &'a Path,
    /// Tensors, and whether each lives in external data.
    tensors: Vec<(TensorSummary, bool)>,
    nodes: Vec<NodeSummary>,
    /// External-data locations, each resolved inside the model's directory or refused.
    external: BTreeMap<String, Result<std::path::PathBuf, super::Outside>>,
}

impl Walk<'_> {
    fn graph(&mut self, g: &proto::Graph, depth: u32) -> Result<(), ModelError> {
        for t in &g.initializer {
            self.tensor(t)?;
        }
        for s in &g.sparse_initializer {
            self.sparse(s)?;
        }
        self.nodes(&g.node, depth)
    }

    fn nodes(&mut self, nodes: &[proto::Node], depth: u32) -> Result<(), ModelError> {
        for n in nodes {
            // Its value is a weight named after its output: without one it is no valid graph.
            if n.op_type == "Constant"
                && STANDARD_DOMAINS.contains(&n.domain.as_str())
                && n.output.first().is_none_or(|o| o.is_empty())
            {
                let who = if n.name.is_empty() {
                    "a Constant node".to_string()
                } else {
                    format!("node `{}` (Constant)", n.name)
                };
                return Err(ModelError::new(
                    self.path,
                    format!("{who} has no output: not a valid ONNX graph"),
                ));
            }
            self.nodes.push(NodeSummary {
                name: n.name.clone(),
                op_type: n.op_type.clone(),
                domain: n.domain.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                depth,
            });
            for a in &n.attribute {
                // A Constant node's value is a weight like an initializer (named after its output).
                if let Some(t) = &a.t {
                    let mut t = t.clone();
                    if t.name.is_empty() {
                        t.name = n.output.first().cloned().unwrap_or_default();
                    }
                    self.tensor(&t)?;
                }
                for t in &a.tensors {
                    self.tensor(t)?;
                }
                if let Some(s) = &a.sparse_tensor {
                    self.sparse(s)?;
                }
                for g in a.g.iter().chain(&a.graphs) {
                    self.graph(g, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn sparse(&mut self, s: &proto::SparseTensor) -> Result<(), ModelError> {
        for t in s.values.iter().chain(&s.indices) {
            self.tensor(t)?;
        }
        Ok(())
    }

    fn tensor(&mut self, t: &TensorLite) -> Result<(), ModelError> {
        let path = self.path;
        if t.dims.iter().any(|d| *d < 0) {
            return Err(ModelError::new(
                path,
                format!("tensor `{}` has a negative dimension {:?}", t.name, t.dims),
            ));
        }
        let dims: Vec<u64> = t.dims.iter().map(|d| *d as u64).collect();
        let numel = super::checked_numel(path, &t.name, &dims)?;
        let (dtype, bits) = dtype::onnx(t.data_type);
        let expected = dtype::packed_bytes(numel, bits);
        let external = t.data_location == 1;
        let bytes = if external {
            let get = |k: &str| {
                t.external_data
                    .iter()
                    .find(|e| e.key == k)
                    .map(|e| e.value.as_str())
            };
            let location = get("location").ok_or_else(|| {
                ModelError::new(
                    path,
                    format!("tensor `{}` is external but names no location", t.name),
                )
            })?;
            let parse = |k: &str| -> Result<Option<u64>, ModelError> {
                get(k)
                    .map(|v| {
                        v.parse::<u64>().map_err(|_| {
                            ModelError::new(
                                path,
                                format!("tensor `{}` has a bad external-data {k} `{v}`", t.name),
                            )
                        })
                    })
                    .transpose()
            };
            let offset = parse("offset")?.unwrap_or(0);
            let length = parse("length")?.unwrap_or(expected);
            let at = self
                .external
                .entry(location.to_string())
                .or_insert_with(|| super::contained(path, location));
            // A location outside the directory is never stat'ed: it is reported as unsafe.
            if let Some(meta) = at.as_ref().ok().and_then(|f| std::fs::metadata(f).ok()) {
                if offset
                    .checked_add(length)
                    .is_none_or(|end| end > meta.len())
                {
                    return Err(ModelError::new(
                        path,
                        format!(
                            "tensor `{}` reads bytes {offset}..{} of external file `{location}`, which has {} bytes",
                            t.name,
                            offset.saturating_add(length),
                            meta.len()
                        ),
                    ));
                }
            }
            length
        } else if let Some(len) = t.raw_data_len {
            if bits > 0 && len != expected {
                return Err(ModelError::new(
                    path,
                    format!(
                        "tensor `{}` declares shape {:?} of {dtype} ({expected} bytes) but carries {len} bytes",
                        t.name, t.dims
                    ),
                ));
            }
            len
        } else {
            if numel > 0 && t.typed_values == 0 && bits > 0 {
                return Err(ModelError::new(
                    path,
                    format!(
                        "tensor `{}` declares shape {:?} but carries no data",
                        t.name, t.dims
                    ),
                ));
            }
            expected
        };
        self.tensors.push((
            TensorSummary {
                name: t.name.clone(),
                dtype: dtype.to_string(),
                shape: dims,
                bytes,
            },
            external,
        ));
        Ok(())
    }
}

fn value_spec(v: &proto::ValueInfo) -> ValueSpec {
    let (dtype, shape) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(proto::type_value::Value::Tensor(t) | proto::type_value::Value::SparseTensor(t)) => (
            dtype::onnx(t.elem_type).0.to_string(),
            t.shape.as_ref().map(dims),
        ),
        _ => (type_name(v.r#type.as_ref()), None),
    };
    ValueSpec {
        name: v.name.clone(),
        dtype,
        shape_known: shape.is_some(),
        shape: shape.unwrap_or_default(),
    }
}

fn dims(s: &proto::Shape) -> Vec<Dim> {
    s.dim
        .iter()
        .map(|d| match &d.value {
            Some(proto::dimension::Value::DimValue(n)) => Dim::Known(*n),
            Some(proto::dimension::Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
            _ => Dim::Symbolic("?".into()),
        })
        .collect()
}

/// `float32`, `sequence<float32>`, `map<int64,float32>`, `optional<…>`.
fn type_name(t: Option<&proto::Type>) -> String {
    use proto::type_value::Value;
    match t.and_then(|t| t.value.as_ref()) {
        Some(Value::Tensor(t) | Value::SparseTensor(t)) => dtype::onnx(t.elem_type).0.to_string(),
        Some(Value::Sequence(e)) => format!("sequence<{}>", type_name(e.elem_type.as_deref())),
        Some(Value::Optional(e)) => format!("optional<{}>", type_name(e.elem_type.as_deref())),
        Some(Value::Map(m)) => {
            format!(
                "map<{},{}>",
                dtype::onnx(m.key_type).0,
                type_name(m.value_type.as_deref())
            )
        }
        None => "undefined".to_string(),
    }
}

/// Operator histogram keyed as in the contract.
pub fn histogram(nodes: &[NodeSummary]) -> BTreeMap<String, u64> {
    let mut h = BTreeMap::new();
    for n in nodes {
        *h.entry(op_key(&n.domain, &n.op_type)).or_default() += 1;
    }
    h
}
