//! A model directory, Hugging Face style: `config.json` beside the weights (one safetensors file,
//! shards with an index, a PyTorch checkpoint, or an ONNX file). It is read as one model, and the
//! config decides the architecture class.

use std::path::{Path, PathBuf};

use super::ModelInfo;
use crate::error::ModelError;

/// Config keys worth showing, under the names the summary uses.
const SIZE_KEYS: &[(&str, &str)] = &[
    ("hidden_size", "hidden_size"),
    ("n_embd", "hidden_size"),
    ("d_model", "hidden_size"),
    ("num_hidden_layers", "layers"),
    ("n_layer", "layers"),
    ("num_attention_heads", "attention_heads"),
    ("n_head", "attention_heads"),
    ("num_key_value_heads", "kv_heads"),
    ("intermediate_size", "intermediate_size"),
    ("vocab_size", "vocab_size"),
    ("max_position_embeddings", "context_length"),
    ("n_positions", "context_length"),
];

/// Reads a model directory (a Hugging Face snapshot): a safetensors index, else its
/// `.safetensors` shards, else the first `.onnx`, `.gguf` or `.bin`/`.pt`/`.pth` file; with
/// `config.json`'s sizes and architecture when there is one. The `path` reported is the directory.
pub fn inspect_dir(dir: &Path) -> Result<ModelInfo, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, &e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let named = |suffix: &str| {
        files
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .cloned()
            .collect::<Vec<_>>()
    };

    let index = named(".safetensors.index.json");
    let shards = named(".safetensors");
    let onnx = named(".onnx");
    let pytorch: Vec<PathBuf> = [".bin", ".pt", ".pth"]
        .iter()
        .flat_map(|s| named(s))
        .collect();
    let gguf = named(".gguf");
    let mut info = if let Some(index) = index.first() {
        super::safetensors::inspect_index(index)?
    } else if !shards.is_empty() {
        super::safetensors::inspect_shards(dir, &shards)?
    } else if let Some(f) = onnx.first().or(gguf.first()).or(pytorch.first()) {
        super::inspect(f)?
    } else {
        return Err(ModelError::new(
            dir,
            "directory holds no model (no .safetensors, .onnx, .gguf, .bin/.pt/.pth file)",
        ));
    };
    info.path = dir.display().to_string();

    let config_path = dir.join("config.json");
    let config = if config_path.is_file() {
        let text = std::fs::read(&config_path).map_err(|e| ModelError::io(&config_path, &e))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| ModelError::new(&config_path, format!("not valid JSON: {e}")))?;
        for (key, name) in SIZE_KEYS {
            if let Some(n) = v.get(key).and_then(|n| n.as_u64()) {
                info.details.sizes.entry(name.to_string()).or_insert(n);
            }
        }
        info.details
            .files
            .insert(0, config_path.display().to_string());
        Some(v)
    } else {
        None
    };
    super::classify::classify(&mut info, config.as_ref());
    Ok(info)
}

/// BERT's config defaults (transformers' `BertConfig`), for configs that leave keys out: the
/// candle back end fills them in before binding, and candle projects carry the same values.
pub fn bert_defaults() -> serde_json::Value {
    serde_json::json!({
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "max_position_embeddings": 512,
    })
}
