//! tract (pure Rust, CPU), always built in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{Backend, BackendError, Device, LoadNotes, Loaded, Named};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// The tract-onnx version this build links (pinned in Cargo.toml).
pub const VERSION: &str = "0.23.9";

/// The tract back end (`tract` in the registry): ONNX on the CPU.
pub struct Tract;

/// Operators (by ONNX op_type; tract ignores the domain) that tract cannot build, with the nodes
/// that use them, main graph and subgraphs alike.
pub fn missing_operators(info: &ModelInfo) -> BTreeMap<String, Vec<String>> {
    let onnx = tract_onnx::onnx();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &info.nodes {
        if !onnx.op_register.0.contains_key(&n.op_type) {
            let key = crate::model::onnx::op_key(&n.domain, &n.op_type);
            let name = n.display_name();
            missing.entry(key).or_default().push(name);
        }
    }
    missing
}

/// "Foo (nodes a, b); Bar (node c)".
pub fn describe_missing(missing: &BTreeMap<String, Vec<String>>) -> String {
    missing
        .iter()
        .map(|(op, nodes)| {
            let shown: Vec<&str> = nodes.iter().take(5).map(String::as_str).collect();
            let more = if nodes.len() > 5 {
                format!(", +{} more", nodes.len() - 5)
            } else {
                String::new()
            };
            let word = if nodes.len() == 1 { "node" } else { "nodes" };
            format!("{op} ({word} {}{more})", shown.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tract type of a dtype, for the dtypes tract has.
fn datum_type(d: DType) -> Option<DatumType> {
    Some(match d {
        DType::F32 => DatumType::F32,
        DType::U8 => DatumType::U8,
        DType::I8 => DatumType::I8,
        DType::U16 => DatumType::U16,
        DType::I16 => DatumType::I16,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::String => DatumType::String,
        DType::Bool => DatumType::Bool,
        DType::F16 => DatumType::F16,
        DType::F64 => DatumType::F64,
        DType::U32 => DatumType::U32,
        DType::U64 => DatumType::U64,
        _ => return None,
    })
}

/// The dtype of a tract type (symbolic dimensions come out as int64, quantized types as what
/// they store).
fn dtype_of(dt: DatumType) -> Option<DType> {
    match dt.unquantized() {
        DatumType::TDim => Some(DType::I64),
        u => DType::all().find(|d| datum_type(*d) == Some(u)),
    }
}

/// Copies a host tensor into a tract tensor; `Unsupported` for dtypes tract lacks. `name` (the
/// graph input) is only for the error message.
pub fn to_tract(name: &str, t: &HostTensor) -> Result<Tensor, BackendError> {
    let dt = datum_type(t.dtype).ok_or_else(|| {
        BackendError::Unsupported(format!(
            "tract has no {} tensors (input `{name}`)",
            t.dtype_name()
        ))
    })?;
    if dt == DatumType::String {
        let a = tract_ndarray::ArrayD::from_shape_vec(t.shape.clone(), t.strings.clone())
            .map_err(|e| BackendError::Failed(format!("input `{name}`: {e}")))?;
        return Ok(a.into_tensor());
    }
    // SAFETY: `from_raw_dt` copies `t.data`, whose length HostTensor guarantees matches dt × shape;
    // every byte pattern is a valid value of these plain types (bools are 0/1 from our readers).
    unsafe { Tensor::from_raw_dt(dt, &t.shape, &t.data) }
        .map_err(|e| BackendError::Failed(format!("input `{name}`: {e}")))
}

fn from_tract(t: &Tensor) -> Result<HostTensor, BackendError> {
    let t = if t.datum_type() == DatumType::TDim {
        t.cast_to::<i64>()
            .map_err(|e| BackendError::Failed(e.to_string()))?
            .into_owned()
    } else {
        t.clone()
    };
    let dt = t.datum_type();
    let dtype = dtype_of(dt)
        .ok_or_else(|| BackendError::Unsupported(format!("tract produced a {dt:?} output")))?;
    let shape = t.shape().to_vec();
    if dt == DatumType::String {
        let strings = t
            .to_plain_array_view::<String>()
            .map_err(|e| BackendError::Failed(e.to_string()))?
            .iter()
            .cloned()
            .collect();
        return Ok(HostTensor {
            dtype,
            shape,
            data: vec![],
            strings,
        });
    }
    HostTensor::from_bytes(dtype, shape, t.as_bytes().to_vec()).map_err(BackendError::from)
}

struct TractLoaded {
    plan: Arc<TypedRunnableModel>,
    /// Indices of the inputs still fed at run time (the others were made constants).
    fed: Vec<usize>,
    outputs: Vec<String>,
}

impl Loaded for TractLoaded {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let mut values: TVec<TValue> = tvec!();
        for &i in &self.fed {
            let (name, t) = &inputs[i];
            values.push(to_tract(name, t)?.into_tvalue());
        }
        let out = self
            .plan
            .run(values)
            .map_err(|e| BackendError::Failed(format!("run: {}", chain(&e))))?;
        out.iter()
            .enumerate()
            .map(|(i, t)| {
                let name = self
                    .outputs
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("output_{i}"));
                Ok((name, from_tract(t)?))
            })
            .collect()
    }
}

/// tract's words for what it does not implement (dtypes, attributes, modes) rather than a failure.
fn failure(stage: &str, e: &TractError) -> BackendError {
    let msg = format!("{stage}: {}", chain(e));
    let unsupported = [
        "not supported",
        "Unknown DatumType",
        "unknown ONNX TensorProto.DataType",
        "is not supported",
    ]
    .iter()
    .any(|p| msg.contains(p))
        || (msg.contains("translating to fact") && !msg.contains("elem_type: Float,"));
    if unsupported {
        BackendError::Unsupported(msg)
    } else {
        explained(stage, e)
    }
}

/// tract's account of a failed analysis is a chain of every node it was inside (`Failed analyse
/// for node #5 "If_sr" If: Infering facts: Failed analyse for node #2 …: Applying rule GivenRule
/// { … }: Unifying shapes …: Impossible to unify …`). This is the line people need: the innermost
/// node, its operator and the rule that failed; the whole chain goes to `detail`.
fn explained(stage: &str, e: &TractError) -> BackendError {
    let parts: Vec<String> = e
        .chain()
        .map(|c| super::first_line(&c.to_string()))
        .collect();
    let full = format!("{stage}: {}", parts.join(": "));
    let node = parts.iter().rev().find_map(|p| node_of(p));
    let last = parts.last().cloned().unwrap_or_default();
    let rule = match parts.len().checked_sub(2).map(|i| &parts[i]) {
        Some(prev) if prev.starts_with("Unifying") => format!("{prev}: {last}"),
        _ => last,
    };
    match node {
        Some((name, op)) => BackendError::Explained {
            message: format!("{stage}: node `{name}` ({op}): {rule}"),
            detail: full,
        },
        _ => BackendError::Failed(super::first_line(&full)),
    }
}

/// The node and operator a link of tract's error chain names, in the forms tract writes them:
/// `… node #2 "name" Op …` and `Building node name (Op)`.
fn node_of(part: &str) -> Option<(String, String)> {
    if part.contains("node #") {
        let mut q = part.splitn(3, '"');
        q.next()?;
        let name = q.next()?.to_string();
        let op = q.next()?.split_whitespace().next()?.to_string();
        return Some((name, op));
    }
    let rest = part.strip_prefix("Building node ")?;
    let (name, op) = rest.rsplit_once(" (")?;
    Some((name.to_string(), op.trim_end_matches(')').to_string()))
}

/// An error with its causes, on one line.
fn chain(e: &TractError) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    super::first_line(&parts.join(": "))
}

/// The model's protobuf, as tract reads it.
fn read_proto(path: &Path) -> TractResult<tract_onnx::pb::ModelProto> {
    tract_onnx::onnx().proto_model_for_path(path)
}

/// The directory a model's external data is read from, as tract's parser takes it.
pub(crate) fn dir_of(path: &Path) -> Option<&str> {
    path.parent()
        .and_then(|p| p.to_str())
        .map(|d| if d.is_empty() { "." } else { d })
}

/// Parses the model for tract. tract keeps node and tensor names in one namespace, while ONNX
/// keeps them apart: a node named like an initializer (valid ONNX) makes tract refuse the graph,
/// so such nodes are renamed first.
fn parse(mut proto: tract_onnx::pb::ModelProto, dir: Option<&str>) -> TractResult<InferenceModel> {
    if let Some(graph) = proto.graph.as_mut() {
        crate::prepare::unique_node_names(graph);
    }
    let parsed = tract_onnx::onnx().parse(&proto, dir)?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(TractError::msg(format!(
            "could not resolve inputs {:?}",
            parsed.unresolved_inputs
        )));
    }
    Ok(parsed.model)
}

fn build(model: InferenceModel) -> TractResult<Arc<TypedRunnableModel>> {
    model.into_optimized()?.into_runnable()
}

impl Backend for Tract {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn availability(&self) -> Result<String, super::Unavailable> {
        Ok(format!("tract-onnx {VERSION}"))
    }

    fn load(
        &self,
        path: &Path,
        info: &ModelInfo,
        inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        refuse(info, device)?;
        let loader = Loader::new(path, info, inputs)?;
        let all: Vec<usize> = (0..inputs.len()).collect();
        // The first try takes the graph as it is; preparation runs only when it fails (the
        // common path pays nothing for it).
        // The common path reads the model once and never copies it; preparation reads it again.
        let first = match loader.runnable(loader.read()?, &all) {
            Ok(plan) => return Ok((loader.loaded(plan, all), LoadNotes::default())),
            Err(e) => e,
        };
        loader.prepared(first)
    }
}

/// What tract cannot run before reading the model: another device, operators it lacks.
fn refuse(info: &ModelInfo, device: Device) -> Result<(), BackendError> {
    if device != Device::Cpu {
        return Err(BackendError::Unsupported(format!(
            "tract runs on the CPU only, not {}",
            format!("{device:?}").to_lowercase()
        )));
    }
    let missing = missing_operators(info);
    if !missing.is_empty() {
        return Err(BackendError::Unsupported(format!(
            "tract lacks {} operator{}: {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            describe_missing(&missing)
        )));
    }
    Ok(())
}

/// One load of a model on tract for one data set's inputs: as it is, else prepared.
struct Loader<'a> {
    path: &'a Path,
    dir: Option<&'a str>,
    info: &'a ModelInfo,
    inputs: &'a [Named],
    /// The inputs as tract's tensors.
    tensors: Vec<Tensor>,
    outputs: Vec<String>,
}

impl<'a> Loader<'a> {
    fn new(
        path: &'a Path,
        info: &'a ModelInfo,
        inputs: &'a [Named],
    ) -> Result<Loader<'a>, BackendError> {
        Ok(Loader {
            path,
            dir: dir_of(path),
            info,
            inputs,
            tensors: inputs
                .iter()
                .map(|(n, t)| to_tract(n, t))
                .collect::<Result<_, _>>()?,
            outputs: info.outputs.iter().map(|o| o.name.clone()).collect(),
        })
    }

    fn read(&self) -> Result<tract_onnx::pb::ModelProto, BackendError> {
        read_proto(self.path).map_err(|e| failure("load", &e))
    }

    /// The graph with these input facts (`fed`: which of the inputs it still takes).
    fn typed(
        &self,
        proto: tract_onnx::pb::ModelProto,
        fed: &[usize],
    ) -> Result<InferenceModel, BackendError> {
        let mut model = parse(proto, self.dir).map_err(|e| failure("load", &e))?;
        for (k, &i) in fed.iter().enumerate() {
            let t = &self.tensors[i];
            model
                .set_input_fact(k, InferenceFact::dt_shape(t.datum_type(), t.shape()))
                .map_err(|e| BackendError::Failed(format!("input {i}: {}", chain(&e))))?;
        }
        Ok(model)
    }

    /// The graph typed for the inputs `fed`, optimised and made runnable.
    fn runnable(
        &self,
        proto: tract_onnx::pb::ModelProto,
        fed: &[usize],
    ) -> Result<Arc<TypedRunnableModel>, BackendError> {
        self.typed(proto, fed)
            .and_then(|m| build(m).map_err(|e| explained("optimise", &e)))
    }

    fn loaded(self, plan: Arc<TypedRunnableModel>, fed: Vec<usize>) -> Box<dyn Loaded> {
        Box::new(TractLoaded {
            plan,
            fed,
            outputs: self.outputs,
        })
    }

    /// Prepared for the data being run (crate::prepare): pinned shapes, constant Ifs folded,
    /// implicit Squeeze axes written, contradicting shape annotations dropped — first with every
    /// input still fed, then with the integer, boolean and scalar ones as constants. Annotations
    /// that contradict the data are dropped first when tract says so, else last. `first` is how
    /// the graph as it is failed.
    fn prepared(self, first: BackendError) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        let unify = match &first {
            BackendError::Explained { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
        .contains("Impossible to unify");
        let proto = self.read()?;
        let candidates = crate::prepare::constant_candidates(proto.graph.as_ref(), self.inputs);
        let mut tries: Vec<(Vec<usize>, bool)> = vec![(vec![], unify), (vec![], !unify)];
        if !candidates.is_empty() {
            tries.push((candidates.clone(), unify));
            tries.push((candidates, !unify));
        }
        let mut last = String::new();
        for (constant, drop_annotations) in tries {
            match self.try_prepared(&proto, constant, drop_annotations, &first) {
                Ok((plan, fed, notes)) => return Ok((self.loaded(plan, fed), notes)),
                Err(e) => last = e,
            }
        }
        // What tract lacks stays what it lacks (a dtype, an attribute), prepared or not.
        Err(match first {
            BackendError::Unsupported(m) => BackendError::Unsupported(m),
            BackendError::Failed(m) => BackendError::Failed(format!("{m} (and prepared: {last})")),
            BackendError::Explained { message, detail } => BackendError::Explained {
                message: format!("{message} (and prepared: {last})"),
                detail,
            },
        })
    }

    /// One try of a prepared graph, with the inputs `constant` made constants: the runnable
    /// graph, the inputs it still takes, and the notes saying what was rewritten; or why not.
    fn try_prepared(
        &self,
        proto: &tract_onnx::pb::ModelProto,
        constant: Vec<usize>,
        drop_annotations: bool,
        first: &BackendError,
    ) -> Result<(Arc<TypedRunnableModel>, Vec<usize>, LoadNotes), String> {
        let mut prepared = proto.clone();
        let pins = crate::prepare::Pins {
            inputs: self.inputs,
            constant: &constant,
            drop_annotations,
        };
        let rewrites = crate::prepare::prepare(&mut prepared, self.dir, &pins).map_err(|e| e.0)?;
        // A graph with external data would need it beside a copy: not handed on.
        let bytes = self
            .info
            .details
            .external_data
            .is_empty()
            .then(|| prost::Message::encode_to_vec(&prepared));
        let fed: Vec<usize> = (0..self.inputs.len())
            .filter(|i| !constant.contains(i))
            .collect();
        let plan = self.runnable(prepared, &fed).map_err(|e| e.to_string())?;
        let said: Vec<String> = rewrites.iter().map(|r| r.to_string()).collect();
        let mut notes = LoadNotes {
            notes: vec![format!(
                "tract passes after preparation: {} (as is it failed: {first})",
                said.join("; ")
            )],
            prepared: None,
            fixed: constant,
        };
        match bytes {
            Some(b) => notes.prepared = Some(b),
            None => notes.notes.push(
                "the prepared graph is not run on ONNX Runtime: the model keeps its weights in external data".into(),
            ),
        }
        Ok((plan, fed, notes))
    }
}
