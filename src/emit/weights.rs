//! Linear layers from a weights-only file (safetensors, or a PyTorch state_dict): `<prefix>.weight` of shape `[out, in]`
//! and `<prefix>.bias`, ordered by the numbers in their prefixes (`fc1`, `fc2`; `layers.0`,
//! `layers.1`), with the activations the user names.

use std::collections::HashMap;
use std::path::Path;

use super::{Act, Chain, Layer};
use crate::model::ModelInfo;

/// Splits a name into text and number runs, so that `layers.10` sorts after `layers.9`.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(c);
        }
    }
    out.push((text, num.parse().unwrap_or(0)));
    out
}

/// One `--activations` name (`relu`, `log_softmax`, …) as the step it adds; `none` (or `identity`,
/// `linear`) adds none.
pub fn parse_activation(s: &str) -> Result<Option<Layer>, crate::emit::Unemittable> {
    Ok(Some(match s.trim().to_ascii_lowercase().as_str() {
        "none" | "identity" | "linear" => return Ok(None),
        "relu" => Layer::Act(Act::Relu),
        "sigmoid" => Layer::Act(Act::Sigmoid),
        "tanh" => Layer::Act(Act::Tanh),
        "gelu" => Layer::Act(Act::Gelu),
        "softmax" => Layer::Softmax,
        "log_softmax" | "logsoftmax" => Layer::LogSoftmax,
        "leaky_relu" | "leakyrelu" => Layer::Act(Act::LeakyRelu(0.01)),
        "elu" => Layer::Act(Act::Elu(1.0)),
        "softplus" => Layer::Act(Act::Softplus),
        other => return Err(format!("unknown activation `{other}` (relu, sigmoid, tanh, gelu, softmax, log_softmax, leaky_relu, elu, softplus, none)").into()),
    }))
}

fn to_f32(
    view: &safetensors::tensor::TensorView,
    name: &str,
) -> Result<Vec<f32>, crate::emit::Unemittable> {
    let d = view.data();
    Ok(match view.dtype() {
        safetensors::Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        safetensors::Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        safetensors::Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        other => return Err(format!("tensor `{name}` is {other:?}, not a float").into()),
    })
}

/// Tensors by name, as (shape, f32 values).
type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Every tensor of a safetensors file or a PyTorch state_dict.
fn load(path: &Path, info: &ModelInfo) -> Result<Tensors, crate::emit::Unemittable> {
    let mut out = HashMap::new();
    match info.format {
        crate::model::Format::Safetensors => {
            let map = crate::model::map_file(path).map_err(|e| e.message)?;
            let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| e.to_string())?;
            for (name, view) in st.tensors() {
                out.insert(name.clone(), (view.shape().to_vec(), to_f32(&view, &name)?));
            }
        }
        _ => {
            for w in crate::model::pytorch::read_weights(path).map_err(|e| e.message)? {
                out.insert(w.name, (w.shape, w.values));
            }
        }
    }
    Ok(out)
}

/// Reads the linear layers of a weights-only file into a chain, one activation per layer, in the
/// order of their prefixes' numbers.
pub fn read(
    path: &Path,
    info: &ModelInfo,
    activations: &[String],
) -> Result<Chain, crate::emit::Unemittable> {
    let tensors = load(path, info)?;
    let mut prefixes: Vec<String> = tensors
        .keys()
        .filter_map(|n| n.strip_suffix(".weight").map(str::to_string))
        .collect();
    prefixes.sort_by_key(|p| natural_key(p));
    if prefixes.is_empty() {
        return Err("no `<layer>.weight` tensors".into());
    }
    if let Some(n) = tensors
        .keys()
        .find(|n| !n.ends_with(".weight") && !n.ends_with(".bias"))
    {
        return Err(
            format!("tensor `{n}` is neither a weight nor a bias of a linear layer").into(),
        );
    }
    if activations.len() != prefixes.len() {
        return Err(format!(
            "{} linear layers ({}) but {} activations; give one per layer (`none` for no activation)",
            prefixes.len(),
            prefixes.join(", "),
            activations.len()
        ).into());
    }
    let mut layers = Vec::new();
    let mut n: Option<usize> = None;
    let mut first = None;
    let mut ops = std::collections::BTreeMap::new();
    for (prefix, act) in prefixes.iter().zip(activations) {
        let wname = format!("{prefix}.weight");
        let (shape, w) = &tensors[&wname];
        let [n_out, n_in] = shape.as_slice() else {
            return Err(format!(
                "`{wname}` has shape {shape:?}; a linear layer's weight is [out, in]"
            )
            .into());
        };
        let (n_out, n_in) = (*n_out, *n_in);
        if let Some(prev) = n.filter(|p| *p != n_in) {
            return Err(
                format!("`{wname}` takes {n_in} inputs but the layer before gives {prev}").into(),
            );
        }
        first.get_or_insert(n_in);
        let b = match tensors.get(&format!("{prefix}.bias")) {
            Some((s, b)) if s.as_slice() == [n_out] => b.clone(),
            Some((s, _)) => {
                return Err(format!("`{prefix}.bias` has shape {s:?}, expected [{n_out}]").into())
            }
            None => vec![0.0; n_out],
        };
        layers.push(Layer::Dense {
            n_in,
            n_out,
            w: w.clone(),
            b,
        });
        *ops.entry("Linear".to_string()).or_default() += 1;
        if let Some(l) = parse_activation(act)? {
            *ops.entry(act.trim().to_ascii_lowercase()).or_default() += 1;
            layers.push(l);
        }
        n = Some(n_out);
    }
    Ok(Chain {
        input_name: "input".into(),
        output_name: "output".into(),
        n_in: first.unwrap(),
        n_out: n.unwrap(),
        layers,
        ops,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn layers_sort_by_their_numbers() {
        let mut v = vec!["layers.10", "layers.2", "layers.1", "fc2", "fc10", "fc1"];
        v.sort_by_key(|p| super::natural_key(p));
        assert_eq!(
            v,
            ["fc1", "fc2", "fc10", "layers.1", "layers.2", "layers.10"]
        );
    }
}
