//! Is a model trivial enough for generated, dependency-free code (`emit`)? An MLP-family graph
//! of float32 and static shapes (but for a batch dimension) under a parameter budget.

use super::{Dim, Format, ModelInfo};

/// Operators `emit` generates code for.
pub const EMIT_OPS: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "Gelu",
    "Softmax",
    "LogSoftmax",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Dropout",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Elu",
    "Softplus",
    "Constant",
];

/// The default parameter budget (`decide`'s rule for generated code, `emit --max-params`): the
/// size above which the generated code's safe kernels stop beating tract at batch 1 on this
/// machine class (`cargo xtask bench emit`, four runs on a 2-core AMD EPYC with AVX2: generated
/// ÷ tract 0.49–0.76 at 101,770 parameters, 0.66–1.07 at 530,442, 1.03–1.19 at 2,109,450). The
/// `--simd` kernels beat tract to 530,442 parameters in every run, at 2.1 M in three of four.
pub const DEFAULT_BUDGET: u64 = 500_000;

/// `Ok` with a one-line summary when trivial; otherwise every reason it is not (offending nodes
/// and operators, dtypes, dynamic shapes, size).
pub fn check(info: &ModelInfo, budget: u64) -> Result<String, NotTrivial> {
    let mut why = Vec::new();
    match info.format {
        Format::Onnx => {
            for n in &info.nodes {
                let standard = n.domain.is_empty() || n.domain == "ai.onnx";
                if !standard || !EMIT_OPS.contains(&n.op_type.as_str()) {
                    let name = n.display_name();
                    why.push(format!(
                        "node `{name}`: operator {}",
                        super::onnx::op_key(&n.domain, &n.op_type)
                    ));
                }
            }
            for v in info.inputs.iter().chain(&info.outputs) {
                if v.dtype != "float32" {
                    why.push(format!("`{}` is {}, not float32", v.name, v.dtype));
                }
                if !v.shape_known {
                    why.push(format!("`{}` has no declared shape", v.name));
                }
                if v.shape
                    .iter()
                    .skip(1)
                    .any(|d| matches!(d, Dim::Symbolic(_)))
                {
                    why.push(format!(
                        "`{}` has a dynamic dimension beyond the batch one",
                        v.name
                    ));
                }
            }
            if !info
                .nodes
                .iter()
                .any(|n| matches!(n.op_type.as_str(), "Gemm" | "MatMul"))
            {
                why.push("no dense layer (Gemm/MatMul)".into());
            }
        }
        Format::Safetensors | Format::Pytorch => {
            if info.architecture.class != super::ArchClass::Mlp {
                why.push(format!(
                    "weights of a {} model, not an MLP's linear layers",
                    info.architecture.class.as_str()
                ));
            }
            if let Some(t) = info
                .tensors
                .iter()
                .find(|t| t.dtype != "float32" && t.dtype != "float16" && t.dtype != "bfloat16")
            {
                why.push(format!("tensor `{}` is {}", t.name, t.dtype));
            }
        }
        f => why.push(format!("a {} file is not generated as code", f.as_str())),
    }
    if info.parameters > budget {
        why.push(format!(
            "{} parameters, over the budget of {budget}",
            info.parameters
        ));
    }
    if why.is_empty() {
        Ok(format!(
            "MLP-family graph, {} parameters (budget {budget})",
            info.parameters
        ))
    } else {
        Err(NotTrivial(why))
    }
}

/// Every reason a model is not generated as code (offending nodes and operators, dtypes, dynamic
/// shapes, size), each one line; shown joined by `; `.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct NotTrivial(pub Vec<String>);
