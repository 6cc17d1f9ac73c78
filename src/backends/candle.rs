//! Weights-only models on candle (cargo feature `candle`): safetensors bound to the architecture
//! their `config.json` names (BERT-family encoders, Llama-family decoders), and Llama-family GGUF
//! files through candle's quantized model. Before candle sees the weights, every tensor the
//! architecture needs is checked against the file's header, so that a missing, misnamed or
//! mis-shaped tensor is named — candle's own loaders stop at the first, or panic.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device as CDevice, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, llama, quantized_llama};

use super::{Backend, BackendError, Device, LoadNotes, Loaded, Named};
use crate::model::{Format, ModelInfo};
use crate::tensor::HostTensor;

/// The candle crates' version this build links (pinned in Cargo.toml), shown in `availability`.
pub const VERSION: &str = "0.11.1";

/// The architectures this back end binds, as `config.json` names them.
pub const SUPPORTED: &str =
    "bert (BertModel and other BERT encoders), llama (LlamaForCausalLM, LlamaModel); GGUF: llama";

/// The candle back end (`candle` in the registry): safetensors and GGUF models, CPU only.
pub struct Candle;

fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError::Failed(super::first_line(&e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arch {
    Bert,
    Llama,
}

fn arch_of(config: &serde_json::Value) -> Result<Arch, BackendError> {
    let (model_type, archs) = crate::model::classify::config_names(config);
    match crate::model::classify::candle_family(config) {
        Some("bert") => Ok(Arch::Bert),
        Some("llama") => Ok(Arch::Llama),
        _ => Err(BackendError::Unsupported(format!(
            "architecture {} (model_type `{model_type}`) is not one the candle back end binds; supported: {SUPPORTED}",
            if archs.is_empty() { "unnamed".to_string() } else { format!("`{}`", archs.join(", ")) },
        ))),
    }
}

fn usize_of(config: &serde_json::Value, key: &str) -> Result<usize, BackendError> {
    config
        .get(key)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .ok_or_else(|| BackendError::Failed(format!("config.json has no `{key}`")))
}

/// Every tensor the architecture reads, with the shape config.json implies.
fn expected_tensors(
    arch: Arch,
    c: &serde_json::Value,
) -> Result<Vec<(String, Vec<u64>)>, BackendError> {
    let h = usize_of(c, "hidden_size")? as u64;
    let inter = usize_of(c, "intermediate_size")? as u64;
    let vocab = usize_of(c, "vocab_size")? as u64;
    let layers = usize_of(c, "num_hidden_layers")?;
    let mut out: Vec<(String, Vec<u64>)> = Vec::new();
    let mut add = |name: String, shape: &[u64]| out.push((name, shape.to_vec()));
    match arch {
        Arch::Bert => {
            let pos = usize_of(c, "max_position_embeddings")? as u64;
            let types = c
                .get("type_vocab_size")
                .and_then(|v| v.as_u64())
                .unwrap_or(2);
            add("embeddings.word_embeddings.weight".into(), &[vocab, h]);
            add("embeddings.position_embeddings.weight".into(), &[pos, h]);
            add(
                "embeddings.token_type_embeddings.weight".into(),
                &[types, h],
            );
            add("embeddings.LayerNorm.weight".into(), &[h]);
            add("embeddings.LayerNorm.bias".into(), &[h]);
            for i in 0..layers {
                let p = format!("encoder.layer.{i}.");
                for m in ["query", "key", "value"] {
                    add(format!("{p}attention.self.{m}.weight"), &[h, h]);
                    add(format!("{p}attention.self.{m}.bias"), &[h]);
                }
                add(format!("{p}attention.output.dense.weight"), &[h, h]);
                add(format!("{p}attention.output.dense.bias"), &[h]);
                add(format!("{p}attention.output.LayerNorm.weight"), &[h]);
                add(format!("{p}attention.output.LayerNorm.bias"), &[h]);
                add(format!("{p}intermediate.dense.weight"), &[inter, h]);
                add(format!("{p}intermediate.dense.bias"), &[inter]);
                add(format!("{p}output.dense.weight"), &[h, inter]);
                add(format!("{p}output.dense.bias"), &[h]);
                add(format!("{p}output.LayerNorm.weight"), &[h]);
                add(format!("{p}output.LayerNorm.bias"), &[h]);
            }
        }
        Arch::Llama => {
            let heads = usize_of(c, "num_attention_heads")? as u64;
            let kv = c
                .get("num_key_value_heads")
                .and_then(|v| v.as_u64())
                .unwrap_or(heads);
            let head_dim = h / heads.max(1);
            add("model.embed_tokens.weight".into(), &[vocab, h]);
            for i in 0..layers {
                let p = format!("model.layers.{i}.");
                add(format!("{p}self_attn.q_proj.weight"), &[h, h]);
                add(format!("{p}self_attn.k_proj.weight"), &[kv * head_dim, h]);
                add(format!("{p}self_attn.v_proj.weight"), &[kv * head_dim, h]);
                add(format!("{p}self_attn.o_proj.weight"), &[h, h]);
                add(format!("{p}mlp.gate_proj.weight"), &[inter, h]);
                add(format!("{p}mlp.up_proj.weight"), &[inter, h]);
                add(format!("{p}mlp.down_proj.weight"), &[h, inter]);
                add(format!("{p}input_layernorm.weight"), &[h]);
                add(format!("{p}post_attention_layernorm.weight"), &[h]);
            }
            add("model.norm.weight".into(), &[h]);
            let tied = c
                .get("tie_word_embeddings")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if !tied {
                add("lm_head.weight".into(), &[vocab, h]);
            }
        }
    }
    Ok(out)
}

/// Checks the file set's tensors against what the architecture reads; names every problem.
fn verify(
    arch: Arch,
    config: &serde_json::Value,
    have: &[(String, Vec<u64>)],
) -> Result<String, BackendError> {
    // BERT checkpoints of a task model keep the encoder under `bert.`.
    let prefix =
        if arch == Arch::Bert && have.iter().any(|(n, _)| n.starts_with("bert.embeddings.")) {
            "bert."
        } else {
            ""
        };
    let expected = expected_tensors(arch, config)?;
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (name, shape) in &expected {
        let full = format!("{prefix}{name}");
        match have.iter().find(|(n, _)| *n == full) {
            None => missing.push(full),
            Some((_, got)) if got != shape => problems.push(format!(
                "tensor `{full}` has shape {got:?}, but config.json implies {shape:?}"
            )),
            Some(_) => {}
        }
    }
    let read: std::collections::HashSet<String> = expected
        .iter()
        .map(|(n, _)| format!("{prefix}{n}"))
        .collect();
    for m in &missing {
        // The nearest name the file has that the architecture does not read: the likely rename.
        let unread = have
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !read.contains(*n))
            .min_by_key(|n| edit_distance(n, m));
        problems.push(match unread {
            Some(n) if edit_distance(n, m) <= m.len() / 3 => {
                format!("tensor `{m}` is missing (the file has `{n}` instead)")
            }
            _ => format!("tensor `{m}` is missing"),
        });
    }
    if problems.is_empty() {
        Ok(prefix.to_string())
    } else {
        let more = problems.len().saturating_sub(4);
        let mut msg = problems.into_iter().take(4).collect::<Vec<_>>().join("; ");
        if more > 0 {
            msg += &format!("; and {more} more");
        }
        Err(BackendError::Failed(msg))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The safetensors files and config.json of a model given as a directory, a weights file, or an
/// index.
fn files_of(path: &Path) -> Result<(Vec<PathBuf>, PathBuf), BackendError> {
    let (dir, files) = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(failed)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        (path.to_path_buf(), files)
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if path.to_string_lossy().ends_with(".index.json") {
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).map_err(failed)?).map_err(failed)?;
            let mut files: Vec<PathBuf> = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.values()
                        .filter_map(|v| v.as_str())
                        .map(|f| dir.join(f))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            files.dedup();
            (dir, files)
        } else {
            (dir, vec![path.to_path_buf()])
        }
    };
    let config = dir.join("config.json");
    if !config.is_file() {
        return Err(BackendError::Unsupported(format!(
            "no config.json next to the weights ({}): candle needs the architecture to bind them to",
            dir.display()
        )));
    }
    if files.is_empty() {
        return Err(BackendError::Failed(format!(
            "no .safetensors file in {}",
            dir.display()
        )));
    }
    Ok((files, config))
}

enum Model {
    Bert(bert::BertModel),
    Llama(llama::Llama, llama::Config),
    Quantized(quantized_llama::ModelWeights),
}

struct CandleLoaded {
    model: Model,
    vocab: usize,
    /// BERT's `type_vocab_size` (segment ids below it); 2 elsewhere.
    type_vocab: usize,
}

/// The token ids: the input named `input_ids`, else the first.
fn ids_tensor(inputs: &[Named], vocab: usize) -> Result<Tensor, BackendError> {
    let named = inputs.iter().find(|(n, _)| n == "input_ids");
    let (name, t) = named
        .or(inputs.first())
        .ok_or_else(|| BackendError::Failed("no input_ids given".into()))?;
    integer_tensor(name, t, vocab)
}

/// A BERT's other token inputs, by name (text in gives them): `attention_mask`, `token_type_ids`.
fn token_tensor(
    inputs: &[Named],
    name: &str,
    bound: usize,
) -> Result<Option<Tensor>, BackendError> {
    inputs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(n, t)| integer_tensor(n, t, bound))
        .transpose()
}

/// An integer [batch, sequence] input as u32 ids, each below `bound`.
fn integer_tensor(name: &str, t: &HostTensor, vocab: usize) -> Result<Tensor, BackendError> {
    if t.shape.len() != 2 {
        return Err(BackendError::Failed(format!(
            "input `{name}` must be token ids [batch, sequence], not {}",
            t.describe()
        )));
    }
    let values = t
        .to_f64()
        .filter(|_| {
            use crate::model::dtype::DType as D;
            matches!(
                t.dtype,
                D::U8 | D::I8 | D::U16 | D::I16 | D::I32 | D::I64 | D::U32 | D::U64
            )
        })
        .ok_or_else(|| {
            BackendError::Failed(format!(
                "input `{name}` must hold integer token ids, not {}",
                t.dtype_name()
            ))
        })?;
    let ids: Vec<u32> = values
        .iter()
        .map(|v| {
            if *v >= 0.0 && (*v as usize) < vocab {
                Ok(*v as u32)
            } else {
                Err(BackendError::Failed(format!(
                    "input `{name}` holds token id {v}, outside the vocabulary of {vocab}"
                )))
            }
        })
        .collect::<Result<_, _>>()?;
    Tensor::from_vec(ids, (t.shape[0], t.shape[1]), &CDevice::Cpu).map_err(failed)
}

fn host(t: &Tensor) -> Result<HostTensor, BackendError> {
    let shape = t.dims().to_vec();
    let values: Vec<f32> = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(failed)?;
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    HostTensor::from_bytes(crate::model::dtype::DType::F32, shape, data).map_err(BackendError::from)
}

impl Loaded for CandleLoaded {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let ids = ids_tensor(inputs, self.vocab)?;
        match &mut self.model {
            Model::Bert(m) => {
                // Synthetic inputs are ids only: no padding, one segment.
                let types = match token_tensor(inputs, "token_type_ids", self.type_vocab)? {
                    Some(t) => t,
                    None => ids.zeros_like().map_err(failed)?,
                };
                let mask = token_tensor(inputs, "attention_mask", 2)?;
                let hidden = m.forward(&ids, &types, mask.as_ref()).map_err(failed)?;
                let mut outs = vec![("last_hidden_state".into(), host(&hidden)?)];
                // Unpadded ids: their mean over the sequence. With a mask (text in, padded to
                // the longest text) pooling is the check's, over the tokens the mask keeps.
                if mask.is_none() {
                    let pooled = hidden.mean(1).map_err(failed)?;
                    outs.push(("pooled".into(), host(&pooled)?));
                }
                Ok(outs)
            }
            Model::Llama(m, cfg) => {
                let mut cache =
                    llama::Cache::new(false, DType::F32, cfg, &CDevice::Cpu).map_err(failed)?;
                let logits = m.forward(&ids, 0, &mut cache).map_err(failed)?;
                Ok(vec![("logits".into(), host(&logits)?)])
            }
            Model::Quantized(m) => {
                m.clear_kv_cache();
                let logits = m.forward(&ids, 0).map_err(failed)?;
                Ok(vec![("logits".into(), host(&logits)?)])
            }
        }
    }
}

fn load_safetensors(path: &Path) -> Result<(CandleLoaded, LoadNotes), BackendError> {
    let (files, config_path) = files_of(path)?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).map_err(failed)?)
            .map_err(|e| BackendError::Failed(format!("{}: {e}", config_path.display())))?;
    let arch = arch_of(&config)?;
    let mut have = Vec::new();
    for f in &files {
        let header = crate::model::safetensors::read_header(f)
            .map_err(|e| BackendError::Failed(e.message))?;
        have.extend(header.tensors.into_iter().map(|t| (t.name, t.shape)));
    }
    let prefix = verify(arch, &config, &have)?;
    let vocab = usize_of(&config, "vocab_size")?;
    // SAFETY: the files are mapped read-only for the life of the model, as any mapped read.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, &CDevice::Cpu) }
        .map_err(failed)?;
    let mut notes = LoadNotes::default();
    let model = match arch {
        Arch::Bert => {
            // Keys a minimal config may leave out get BERT's defaults.
            let mut full = crate::model::hf::bert_defaults();
            if let (Some(f), Some(c)) = (full.as_object_mut(), config.as_object()) {
                for (k, v) in c {
                    f.insert(k.clone(), v.clone());
                }
            }
            let cfg: bert::Config = serde_json::from_value(full)
                .map_err(|e| BackendError::Failed(format!("config.json: {e}")))?;
            let vb = if prefix.is_empty() { vb } else { vb.pp("bert") };
            notes.notes.push(format!(
                "bound to candle's BERT ({} layers, hidden {}); outputs last_hidden_state, and its mean over the sequence when no attention_mask is given",
                cfg.num_hidden_layers, cfg.hidden_size
            ));
            Model::Bert(bert::BertModel::load(vb, &cfg).map_err(failed)?)
        }
        Arch::Llama => {
            let lc: llama::LlamaConfig = serde_json::from_value(config.clone())
                .map_err(|e| BackendError::Failed(format!("config.json: {e}")))?;
            let cfg = lc.into_config(false);
            notes.notes.push(format!(
                "bound to candle's Llama ({} layers, hidden {}); outputs the last position's logits",
                cfg.num_hidden_layers, cfg.hidden_size
            ));
            let m = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                llama::Llama::load(vb, &cfg)
            }))
            .map_err(|_| BackendError::Failed("candle's Llama loader panicked".into()))?
            .map_err(failed)?;
            Model::Llama(m, cfg)
        }
    };
    let type_vocab = config["type_vocab_size"].as_u64().map_or(2, |t| t as usize);
    Ok((
        CandleLoaded {
            model,
            vocab,
            type_vocab,
        },
        notes,
    ))
}

fn load_gguf(path: &Path, info: &ModelInfo) -> Result<(CandleLoaded, LoadNotes), BackendError> {
    use candle_core::quantized::gguf_file;
    if info.tensors.is_empty() {
        return Err(BackendError::Unsupported(
            "this GGUF holds no tensors (a vocabulary-only file): there is no model to run".into(),
        ));
    }
    let arch = info
        .metadata
        .get("general.architecture")
        .cloned()
        .unwrap_or_default();
    if arch != "llama" {
        return Err(BackendError::Unsupported(format!(
            "GGUF architecture `{arch}` is not one the candle back end binds; supported: {SUPPORTED}"
        )));
    }
    let mut f = std::fs::File::open(path).map_err(failed)?;
    let content = gguf_file::Content::read(&mut f).map_err(failed)?;
    let vocab = info
        .details
        .sizes
        .get("vocab_size")
        .copied()
        .map(|v| v as usize)
        .or_else(|| {
            content
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
        })
        .ok_or_else(|| {
            BackendError::Failed("the vocabulary size is unknown (no token_embd.weight)".into())
        })?;
    let model =
        quantized_llama::ModelWeights::from_gguf(content, &mut f, &CDevice::Cpu).map_err(|e| {
            BackendError::Failed(format!("GGUF: {}", super::first_line(&e.to_string())))
        })?;
    let mut notes = LoadNotes::default();
    notes
        .notes
        .push("bound to candle's quantized Llama; outputs the last position's logits".into());
    Ok((
        CandleLoaded {
            model: Model::Quantized(model),
            vocab,
            type_vocab: 2,
        },
        notes,
    ))
}

impl Backend for Candle {
    fn name(&self) -> &'static str {
        "candle"
    }

    fn availability(&self) -> Result<String, super::Unavailable> {
        Ok(format!("candle {VERSION} (cpu)"))
    }

    fn load(
        &self,
        path: &Path,
        info: &ModelInfo,
        _inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        if device != Device::Cpu {
            return Err(BackendError::Failed(format!(
                "{device:?} was asked for; this build of candle runs on the CPU only (its `cuda` feature needs the CUDA toolkit)"
            )));
        }
        if info.format == Format::Onnx {
            let (loaded, notes) = super::candle_onnx::load(path, info)?;
            return Ok((Box::new(loaded), notes));
        }
        let (loaded, notes) = match info.format {
            Format::Gguf => load_gguf(path, info)?,
            _ => load_safetensors(path)?,
        };
        Ok((Box::new(loaded), notes))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_distance_finds_renames() {
        assert_eq!(
            super::edit_distance("model.norm.weight", "model.norm.weight"),
            0
        );
        assert_eq!(super::edit_distance("q_prj", "q_proj"), 1);
    }
}
