//! tract (pure Rust, CPU), always built in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;

use super::{Backend, BackendError, Device, LoadNotes, Loaded, Named};
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// The tract-onnx version this build links (pinned in Cargo.toml).
pub const VERSION: &str = "0.23.9";

pub struct Tract;

/// Operators (by ONNX op_type; tract ignores the domain) that tract cannot build, with the nodes
/// that use them, main graph and subgraphs alike.
pub fn missing_operators(info: &ModelInfo) -> BTreeMap<String, Vec<String>> {
    let onnx = tract_onnx::onnx();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &info.nodes {
        if !onnx.op_register.0.contains_key(&n.op_type) {
            let key = crate::model::onnx::op_key(&n.domain, &n.op_type);
            let name = if n.name.is_empty() {
                n.outputs.first().cloned().unwrap_or_default()
            } else {
                n.name.clone()
            };
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

fn datum_type(code: i32) -> Option<DatumType> {
    Some(match code {
        1 => DatumType::F32,
        2 => DatumType::U8,
        3 => DatumType::I8,
        4 => DatumType::U16,
        5 => DatumType::I16,
        6 => DatumType::I32,
        7 => DatumType::I64,
        8 => DatumType::String,
        9 => DatumType::Bool,
        10 => DatumType::F16,
        11 => DatumType::F64,
        12 => DatumType::U32,
        13 => DatumType::U64,
        _ => return None,
    })
}

fn onnx_code(dt: DatumType) -> Option<i32> {
    Some(match dt.unquantized() {
        DatumType::F32 => 1,
        DatumType::U8 => 2,
        DatumType::I8 => 3,
        DatumType::U16 => 4,
        DatumType::I16 => 5,
        DatumType::I32 => 6,
        DatumType::I64 | DatumType::TDim => 7,
        DatumType::String => 8,
        DatumType::Bool => 9,
        DatumType::F16 => 10,
        DatumType::F64 => 11,
        DatumType::U32 => 12,
        DatumType::U64 => 13,
        _ => return None,
    })
}

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
    let code = onnx_code(dt)
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
            dtype: code,
            shape,
            data: vec![],
            strings,
        });
    }
    HostTensor::from_bytes(code, shape, t.as_bytes().to_vec()).map_err(BackendError::Failed)
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
        BackendError::Failed(msg)
    }
}

/// An error with its causes, on one line.
fn chain(e: &TractError) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    super::first_line(&parts.join(": "))
}

/// Parses the model for tract. tract keeps node and tensor names in one namespace, while ONNX
/// keeps them apart: a node named like an initializer (valid ONNX) makes tract refuse the graph,
/// so such nodes are renamed first. `drop_annotations`: the shapes the exporter recorded for
/// intermediate values (`value_info`) and outputs are left out — exporters that trace with batch
/// 1 record them so even when the batch is symbolic, and tract unifies them with the input shapes.
fn parse(path: &Path, drop_annotations: bool) -> TractResult<InferenceModel> {
    let onnx = tract_onnx::onnx();
    let mut proto = onnx.proto_model_for_path(path)?;
    if let Some(graph) = proto.graph.as_mut().filter(|_| drop_annotations) {
        graph.value_info.clear();
        for output in graph.output.iter_mut() {
            if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
                output.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.shape = None;
            }
        }
    }
    if let Some(graph) = proto.graph.as_mut() {
        let mut taken: std::collections::HashSet<String> =
            graph.initializer.iter().map(|t| t.name.clone()).collect();
        taken.extend(graph.input.iter().map(|i| i.name.clone()));
        for node in graph.node.iter_mut() {
            if !node.name.is_empty() && taken.contains(&node.name) {
                let mut k = 1;
                while taken.contains(&format!("{}#{k}", node.name)) {
                    k += 1;
                }
                node.name = format!("{}#{k}", node.name);
            }
            taken.insert(node.name.clone());
        }
    }
    let dir = path
        .parent()
        .and_then(|p| p.to_str())
        .map(|d| if d.is_empty() { "." } else { d });
    let parsed = onnx.parse(&proto, dir)?;
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

    fn formats(&self) -> &'static [crate::model::Format] {
        &[crate::model::Format::Onnx]
    }

    fn availability(&self) -> Result<String, String> {
        Ok(format!("tract-onnx {VERSION}"))
    }

    fn load(
        &self,
        path: &Path,
        info: &ModelInfo,
        inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
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
        let tensors: Vec<Tensor> = inputs
            .iter()
            .map(|(n, t)| to_tract(n, t))
            .collect::<Result<_, _>>()?;
        let typed = |drop_annotations: bool| -> Result<InferenceModel, BackendError> {
            let mut model = parse(path, drop_annotations).map_err(|e| failure("load", &e))?;
            for (i, t) in tensors.iter().enumerate() {
                model
                    .set_input_fact(i, InferenceFact::dt_shape(t.datum_type(), t.shape()))
                    .map_err(|e| BackendError::Failed(format!("input {i}: {}", chain(&e))))?;
            }
            Ok(model)
        };
        let outputs = info.outputs.iter().map(|o| o.name.clone()).collect();
        let all: Vec<usize> = (0..inputs.len()).collect();
        // The first try takes the model; the rare retry below parses it again (cheaper on the
        // common path than cloning the whole graph up front).
        let first = match build(typed(false)?) {
            Ok(plan) => {
                return Ok((
                    Box::new(TractLoaded {
                        plan,
                        fed: all,
                        outputs,
                    }),
                    LoadNotes::default(),
                ))
            }
            Err(e) => chain(&e),
        };
        // Shape annotations that contradict the shapes of the data being run (a batch recorded as
        // 1 beside a symbolic input): the data is what is checked, so try without them.
        let drop_annotations = first.contains("Impossible to unify");
        let dropped_note = || {
            format!("tract ran without the model's recorded intermediate and output shapes (value_info), which contradict the input shapes (first try: {first})")
        };
        if drop_annotations {
            if let Ok(plan) = build(typed(true)?) {
                let notes = LoadNotes {
                    notes: vec![dropped_note()],
                };
                return Ok((
                    Box::new(TractLoaded {
                        plan,
                        fed: all,
                        outputs,
                    }),
                    notes,
                ));
            }
        }
        // tract types a graph statically: shapes and axes that come from inputs must be known.
        // Retry with the integer, boolean and scalar inputs turned into constants, as tract's own
        // CLI does with --constantize.
        let constant: Vec<usize> = tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.datum_type().is_float() || t.rank() == 0)
            .map(|(i, _)| i)
            .collect();
        if constant.is_empty() {
            return Err(BackendError::Failed(format!("optimise: {first}")));
        }
        let mut model = typed(drop_annotations)?;
        let outlets = model
            .input_outlets()
            .map_err(|e| BackendError::Failed(chain(&e)))?
            .to_vec();
        for &i in &constant {
            let t = tensors[i].clone().into_arc_tensor();
            let op = tract_onnx::tract_hir::ops::konst::Const::new(t.clone())
                .map_err(|e| BackendError::Failed(chain(&e)))?;
            let node = model.node_mut(outlets[i].node);
            node.op = Box::new(op) as Box<dyn InferenceOp>;
            let fact = InferenceFact::try_from(t).map_err(|e| BackendError::Failed(chain(&e)))?;
            model
                .set_outlet_fact(outlets[i], fact)
                .map_err(|e| BackendError::Failed(chain(&e)))?;
        }
        let fed: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !constant.contains(i))
            .collect();
        let kept: Vec<OutletId> = fed.iter().map(|&i| outlets[i]).collect();
        model
            .set_input_outlets(&kept)
            .map_err(|e| BackendError::Failed(chain(&e)))?;
        match build(model) {
            Ok(plan) => {
                let names: Vec<&str> = constant.iter().map(|&i| inputs[i].0.as_str()).collect();
                let mut notes = LoadNotes {
                    notes: vec![format!("tract needed input{} {} as constant{} to type the graph (first try: {first})",
                        if names.len() == 1 { "" } else { "s" },
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                        if names.len() == 1 { "" } else { "s" })],
                };
                if drop_annotations {
                    notes.notes.push(dropped_note());
                }
                Ok((Box::new(TractLoaded { plan, fed, outputs }), notes))
            }
            Err(e) => Err(BackendError::Failed(format!(
                "optimise: {first} (and with constant inputs: {})",
                chain(&e)
            ))),
        }
    }
}
