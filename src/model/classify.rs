//! Architecture class of a model, with the reasons that led to it: from operators for graphs,
//! from `config.json` or GGUF metadata when there is one, from tensor names and shapes otherwise.

use super::{ArchClass, Architecture, Format, ModelInfo};

/// Operators an MLP is made of besides those `emit` generates (shape plumbing, more activations).
const MLP_EXTRA: &[&str] = &[
    "Concat",
    "Cast",
    "Shape",
    "Gather",
    "Selu",
    "HardSwish",
    "PRelu",
];

fn mlp_op(op: &str) -> bool {
    super::trivial::EMIT_OPS.contains(&op) || MLP_EXTRA.contains(&op)
}

/// Sets `info.architecture`: from `config.json` when given and it names a model, else from GGUF
/// metadata, else from the ONNX operators, else from the tensors' names and shapes.
pub fn classify(info: &mut ModelInfo, config: Option<&serde_json::Value>) {
    let arch = config
        .and_then(from_config)
        .or_else(|| {
            (info.format == Format::Gguf)
                .then(|| from_gguf(info))
                .flatten()
        })
        .unwrap_or_else(|| match info.format {
            Format::Onnx => from_operators(info),
            _ => from_tensor_names(info),
        });
    info.architecture = arch;
}

fn arch(class: ArchClass, reasons: Vec<String>) -> Architecture {
    Architecture { class, reasons }
}

/// A Hugging Face `config.json`'s `model_type` (`llama`) and `architectures` (`LlamaForCausalLM`).
pub fn config_names(config: &serde_json::Value) -> (&str, Vec<&str>) {
    let model_type = config
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let archs = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    (model_type, archs)
}

/// The model families candle's bindings cover (the candle back end and candle projects): `bert`
/// or `llama`, from a `config.json`.
pub fn candle_family(config: &serde_json::Value) -> Option<&'static str> {
    let (model_type, archs) = config_names(config);
    if model_type == "bert" || archs.iter().any(|a| a.starts_with("Bert")) {
        Some("bert")
    } else if model_type == "llama" || archs.iter().any(|a| a.starts_with("Llama")) {
        Some("llama")
    } else {
        None
    }
}

/// Hugging Face `config.json`: `architectures` (`LlamaForCausalLM`) and `model_type`.
pub fn from_config(config: &serde_json::Value) -> Option<Architecture> {
    let (model_type, archs) = config_names(config);
    let named = archs.first().copied().unwrap_or(model_type);
    if named.is_empty() {
        return None;
    }
    let reason = if archs.is_empty() {
        format!("config.json model_type `{model_type}`")
    } else {
        format!("config.json architectures `{}`", archs.join(", "))
    };
    let decoder_types = [
        "llama",
        "mistral",
        "mixtral",
        "gpt2",
        "gpt_neox",
        "gptj",
        "gpt_bigcode",
        "qwen2",
        "qwen3",
        "phi",
        "phi3",
        "gemma",
        "gemma2",
        "falcon",
        "mpt",
        "opt",
        "bloom",
        "starcoder2",
        "olmo",
        "stablelm",
        "codegen",
    ];
    let encoder_types = [
        "bert",
        "roberta",
        "xlm-roberta",
        "distilbert",
        "albert",
        "electra",
        "deberta",
        "deberta-v2",
        "mpnet",
        "camembert",
        "nomic_bert",
        "jina_bert",
        "modernbert",
        "vit",
        "clip",
        "xlm_roberta",
    ];
    let class = if archs
        .iter()
        .any(|a| a.ends_with("ForCausalLM") || a.ends_with("LMHeadModel"))
        || decoder_types.contains(&model_type)
    {
        ArchClass::TransformerDecoder
    } else if encoder_types.contains(&model_type)
        || archs.iter().any(|a| {
            a.starts_with("Bert")
                || a.contains("Roberta")
                || a.ends_with("ForMaskedLM")
                || a.contains("SentenceTransformer")
        })
    {
        ArchClass::TransformerEncoder
    } else if [
        "resnet",
        "convnext",
        "efficientnet",
        "mobilenet_v2",
        "regnet",
    ]
    .contains(&model_type)
    {
        ArchClass::Cnn
    } else {
        return Some(arch(
            ArchClass::Unknown,
            vec![format!("{reason}: not a family cargo-infer knows")],
        ));
    };
    Some(arch(class, vec![reason]))
}

fn from_gguf(info: &ModelInfo) -> Option<Architecture> {
    let a = info.metadata.get("general.architecture")?;
    let reason = format!("GGUF general.architecture `{a}`");
    let class = match a.as_str() {
        "bert" | "nomic-bert" | "jina-bert-v2" | "t5encoder" | "clip" | "modern-bert" => {
            ArchClass::TransformerEncoder
        }
        "mamba" | "rwkv6" | "rwkv7" => ArchClass::Rnn,
        _ if info.tensor_count == 0 => {
            return Some(arch(
                ArchClass::Unknown,
                vec![format!(
                    "{reason}, but the file holds no tensors (vocabulary only)"
                )],
            ))
        }
        _ => ArchClass::TransformerDecoder,
    };
    Some(arch(class, vec![reason]))
}

fn from_operators(info: &ModelInfo) -> Architecture {
    let ops = &info.operators;
    let has = |op: &str| {
        ops.keys()
            .any(|k| k == op || k.ends_with(&format!("::{op}")))
    };
    let count = |op: &str| -> u64 {
        ops.iter()
            .filter(|(k, _)| *k == op || k.ends_with(&format!("::{op}")))
            .map(|(_, n)| n)
            .sum()
    };
    let mut reasons = Vec::new();
    let found = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| has(n))
            .map(|n| format!("{n} ×{}", count(n)))
            .collect()
    };

    let attention_ops = found(&[
        "Attention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "RotaryEmbedding",
    ]);
    // Attention built from primitives: a Softmax fed by a MatMul of two activations, with a
    // LayerNormalization (or its ReduceMean/Pow/Sqrt decomposition) around it.
    let softmax_of_matmul = softmax_of_activation_matmul(info);
    let layernorm = has("LayerNormalization")
        || has("SkipLayerNormalization")
        || (has("ReduceMean") && has("Sqrt"));
    if !attention_ops.is_empty() || (softmax_of_matmul && layernorm) {
        if !attention_ops.is_empty() {
            reasons.push(format!("attention operators: {}", attention_ops.join(", ")));
        } else {
            reasons.push(
                "Softmax over a MatMul of two activations (attention), with layer normalisation"
                    .into(),
            );
        }
        let io_names: Vec<&str> = info
            .inputs
            .iter()
            .chain(&info.outputs)
            .map(|v| v.name.as_str())
            .collect();
        let causal = has("Trilu") || has("GroupQueryAttention");
        let cache = io_names
            .iter()
            .any(|n| n.contains("past_key") || n.starts_with("present"));
        let logits = info.outputs.iter().any(|o| o.name.contains("logits"));
        if causal || cache {
            if causal {
                reasons.push("causal mask (Trilu or grouped-query attention)".into());
            }
            if cache {
                reasons.push("key/value cache inputs or outputs".into());
            }
            return arch(ArchClass::TransformerDecoder, reasons);
        }
        if logits && io_names.iter().any(|n| n.contains("input_ids")) && !has("Gather") {
            reasons.push("logits output".into());
            return arch(ArchClass::TransformerDecoder, reasons);
        }
        reasons.push("no causal mask or key/value cache".into());
        return arch(ArchClass::TransformerEncoder, reasons);
    }
    let rnn = found(&["LSTM", "GRU", "RNN", "Scan", "Loop"]);
    if !rnn.is_empty() {
        reasons.push(format!("recurrent operators: {}", rnn.join(", ")));
        return arch(ArchClass::Rnn, reasons);
    }
    let conv = found(&["Conv", "ConvTranspose", "QLinearConv", "ConvInteger"]);
    if !conv.is_empty() {
        reasons.push(format!("convolutions: {}", conv.join(", ")));
        let pools = found(&[
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "GlobalMaxPool",
        ]);
        if !pools.is_empty() {
            reasons.push(format!("pooling: {}", pools.join(", ")));
        }
        return arch(ArchClass::Cnn, reasons);
    }
    let dense = found(&["Gemm", "MatMul"]);
    let others: Vec<&String> = ops.keys().filter(|k| !mlp_op(k)).collect();
    if !dense.is_empty() && others.is_empty() {
        reasons.push(format!(
            "dense layers ({}) and element-wise operators only",
            dense.join(", ")
        ));
        return arch(ArchClass::Mlp, reasons);
    }
    if ops.is_empty() {
        reasons.push("the graph has no operators".into());
    } else if dense.is_empty() {
        reasons.push("no dense, convolution, recurrent or attention operators".into());
    } else {
        let list: Vec<&str> = others.iter().take(5).map(|s| s.as_str()).collect();
        reasons.push(format!(
            "dense layers with other operators ({})",
            list.join(", ")
        ));
    }
    arch(ArchClass::Unknown, reasons)
}

/// True when a Softmax consumes the output of a MatMul whose two inputs are both computed (not
/// weights), i.e. `softmax(Q·Kᵀ)`.
fn softmax_of_activation_matmul(info: &ModelInfo) -> bool {
    let weights: std::collections::HashSet<&str> =
        info.tensors.iter().map(|t| t.name.as_str()).collect();
    let producer: std::collections::HashMap<&str, &super::NodeSummary> = info
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
        .collect();
    // Walk back through scaling and masking (Div, Mul, Add, Where) to the MatMul.
    let is_qk = |start: &str| {
        let mut cur = start;
        for _ in 0..4 {
            let Some(n) = producer.get(cur) else {
                return false;
            };
            match n.op_type.as_str() {
                "MatMul" => return n.inputs.iter().all(|i| !weights.contains(i.as_str())),
                "Div" | "Mul" | "Add" | "Where" | "Cast" => {
                    match n.inputs.iter().find(|i| producer.contains_key(i.as_str())) {
                        Some(i) => cur = i,
                        None => return false,
                    }
                }
                _ => return false,
            }
        }
        false
    };
    info.nodes
        .iter()
        .filter(|n| n.op_type == "Softmax")
        .any(|n| n.inputs.first().is_some_and(|i| is_qk(i)))
}

fn from_tensor_names(info: &ModelInfo) -> Architecture {
    if info.tensors.is_empty() {
        let why = match info.format {
            Format::Torchscript | Format::Pytorch => "no tensors found in the pickle",
            _ => "the file holds no tensors",
        };
        return arch(ArchClass::Unknown, vec![why.into()]);
    }
    let names: Vec<String> = info.tensors.iter().map(|t| t.name.to_lowercase()).collect();
    let any = |pats: &[&str]| -> Option<String> {
        names
            .iter()
            .find(|n| pats.iter().any(|p| n.contains(p)))
            .cloned()
    };
    let mut reasons = Vec::new();
    if let Some(n) = any(&[
        "self_attn",
        "attention",
        ".attn.",
        "attn.c_attn",
        "q_proj",
        ".query.",
    ]) {
        reasons.push(format!("attention weights (`{n}`)"));
        if let Some(d) = any(&[
            "lm_head",
            "embed_tokens",
            "wte.",
            "c_attn",
            "gate_proj",
            "o_proj",
            "decoder.layers",
        ]) {
            reasons.push(format!("decoder-style names (`{d}`)"));
            return arch(ArchClass::TransformerDecoder, reasons);
        }
        if let Some(e) = any(&[
            "encoder.layer",
            "bert.",
            "embeddings.position_embeddings",
            "pooler",
        ]) {
            reasons.push(format!("encoder-style names (`{e}`)"));
        }
        return arch(ArchClass::TransformerEncoder, reasons);
    }
    if let Some(n) = any(&["weight_ih_l", "weight_hh_l", "lstm", "gru", ".rnn."]) {
        reasons.push(format!("recurrent weights (`{n}`)"));
        return arch(ArchClass::Rnn, reasons);
    }
    if let Some(t) = info
        .tensors
        .iter()
        .find(|t| t.shape.len() == 4 && t.name.to_lowercase().contains("weight"))
    {
        reasons.push(format!("4-D convolution kernel `{}` {:?}", t.name, t.shape));
        return arch(ArchClass::Cnn, reasons);
    }
    if info.tensors.iter().all(|t| t.shape.len() <= 2)
        && info.tensors.iter().any(|t| t.shape.len() == 2)
    {
        let layers = info.tensors.iter().filter(|t| t.shape.len() == 2).count();
        reasons.push(format!("{layers} 2-D weight matrices with 1-D biases only"));
        return arch(ArchClass::Mlp, reasons);
    }
    arch(
        ArchClass::Unknown,
        vec!["tensor names and shapes match no known family".into()],
    )
}
