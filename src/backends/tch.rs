//! TorchScript on libtorch through tch (cargo feature `tch`). Inputs are given positionally, as
//! TorchScript's `forward` takes them; outputs (a tensor, or a tuple/list of tensors) are named
//! after the model's outputs when the caller knows them (the ONNX twin of `--pair`), else
//! `output_0`, `output_1`, ….

use std::path::Path;

use tch::{CModule, Device as TchDevice, IValue, Kind, Tensor};

use super::{Backend, BackendError, Device, LoadNotes, Loaded, Named};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// The tch crate version this build links (pinned in Cargo.toml), shown in `availability`.
pub const VERSION: &str = "0.26.0";

/// The tch back end (`tch` in the registry): TorchScript on libtorch, CPU or CUDA.
pub struct Tch;

/// libtorch's errors carry a C++ backtrace (`Exception raised from … frame #0: …`) and, for errors
/// inside the TorchScript interpreter, the script traceback before the error itself. Keep the line
/// that says what went wrong.
pub fn tidy(msg: &str) -> String {
    let lines: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Exception raised from") && !l.starts_with("frame #"))
        .filter(|l| !l.is_empty())
        .collect();
    // The interpreter's own error is its last `SomethingError: …` line.
    let raised = lines.iter().rev().find(|l| {
        l.split_once(": ")
            .is_some_and(|(k, _)| k.ends_with("Error") && !k.contains(' '))
    });
    let line = raised
        .or(lines.first())
        .copied()
        .unwrap_or("unknown libtorch error");
    super::first_line(line)
}

/// libtorch's kind of a dtype, for the dtypes libtorch has.
fn kind_of(d: DType) -> Option<Kind> {
    Some(match d {
        DType::F32 => Kind::Float,
        DType::U8 => Kind::Uint8,
        DType::I8 => Kind::Int8,
        DType::I16 => Kind::Int16,
        DType::I32 => Kind::Int,
        DType::I64 => Kind::Int64,
        DType::Bool => Kind::Bool,
        DType::F16 => Kind::Half,
        DType::F64 => Kind::Double,
        DType::C64 => Kind::ComplexFloat,
        DType::C128 => Kind::ComplexDouble,
        DType::BF16 => Kind::BFloat16,
        DType::F8E4M3FN => Kind::Float8e4m3fn,
        DType::F8E5M2 => Kind::Float8e5m2,
        _ => return None,
    })
}

/// The dtype of a libtorch kind.
fn dtype_of(kind: Kind) -> Option<DType> {
    DType::all().find(|d| kind_of(*d) == Some(kind))
}

fn to_tensor(name: &str, t: &HostTensor, device: TchDevice) -> Result<Tensor, BackendError> {
    let kind = kind_of(t.dtype).ok_or_else(|| {
        BackendError::Unsupported(format!(
            "input `{name}` is {}, which libtorch has no type for",
            t.dtype_name()
        ))
    })?;
    let shape: Vec<i64> = t.shape.iter().map(|d| *d as i64).collect();
    let cpu = Tensor::f_from_data_size(&t.data, &shape, kind)
        .map_err(|e| BackendError::Failed(format!("input `{name}`: {}", tidy(&e.to_string()))))?;
    cpu.f_to_device(device)
        .map_err(|e| BackendError::Failed(format!("input `{name}`: {}", tidy(&e.to_string()))))
}

fn from_tensor(name: &str, t: &Tensor) -> Result<HostTensor, BackendError> {
    let fail = |e: tch::TchError| {
        BackendError::Failed(format!("output `{name}`: {}", tidy(&e.to_string())))
    };
    let t = t
        .f_to_device(TchDevice::Cpu)
        .map_err(fail)?
        .f_contiguous()
        .map_err(fail)?;
    let kind = t.f_kind().map_err(fail)?;
    let dtype = dtype_of(kind).ok_or_else(|| {
        BackendError::Unsupported(format!("output `{name}` is a libtorch {kind:?} tensor"))
    })?;
    let shape: Vec<usize> = t.size().iter().map(|d| *d as usize).collect();
    let numel: usize = shape.iter().product();
    let mut data = vec![0u8; dtype.byte_len(numel)];
    if numel > 0 {
        t.f_copy_data_u8(&mut data, numel).map_err(fail)?;
    }
    HostTensor::from_bytes(dtype, shape, data).map_err(BackendError::from)
}

/// The tensors of a `forward` result, flattened in order (a tensor, or tuples and lists of them).
fn flatten(v: IValue, out: &mut Vec<Tensor>) -> Result<(), BackendError> {
    match v {
        IValue::Tensor(t) => out.push(t),
        IValue::TensorList(ts) => out.extend(ts),
        IValue::Tuple(vs) | IValue::GenericList(vs) => {
            for v in vs {
                flatten(v, out)?;
            }
        }
        IValue::GenericDict(kv) => {
            for (_, v) in kv {
                flatten(v, out)?;
            }
        }
        other => {
            return Err(BackendError::Unsupported(format!(
                "forward returned a {}, not tensors",
                ivalue_kind(&other)
            )))
        }
    }
    Ok(())
}

fn ivalue_kind(v: &IValue) -> &'static str {
    match v {
        IValue::None => "None",
        IValue::Double(_) => "float",
        IValue::Int(_) => "int",
        IValue::Bool(_) => "bool",
        IValue::String(_) => "string",
        IValue::Object(_) => "script object",
        _ => "value",
    }
}

struct TchLoaded {
    module: CModule,
    device: TchDevice,
    output_names: Vec<String>,
}

impl Loaded for TchLoaded {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let _guard = tch::no_grad_guard();
        let args: Vec<IValue> = inputs
            .iter()
            .map(|(n, t)| to_tensor(n, t, self.device).map(IValue::Tensor))
            .collect::<Result<_, _>>()?;
        let result = self
            .module
            .forward_is(&args)
            .map_err(|e| BackendError::Failed(format!("forward: {}", tidy(&e.to_string()))))?;
        let mut tensors = Vec::new();
        flatten(result, &mut tensors)?;
        tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = self
                    .output_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("output_{i}"));
                let host = from_tensor(&name, t)?;
                Ok((name, host))
            })
            .collect()
    }
}

/// Where libtorch was loaded from (this process maps it once linked).
fn library_path() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libtorch_cpu"))
        .map(str::to_string)
}

impl Backend for Tch {
    fn name(&self) -> &'static str {
        "tch"
    }

    fn availability(&self) -> Result<String, super::Unavailable> {
        // Linking tch means libtorch was found when the process started.
        let lib = library_path().unwrap_or_else(|| "libtorch".into());
        Ok(format!("tch {VERSION} ({lib})"))
    }

    fn load(
        &self,
        path: &Path,
        info: &ModelInfo,
        _inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        let device = match device {
            Device::Cpu => TchDevice::Cpu,
            Device::Cuda => {
                if !tch::Cuda::is_available() {
                    return Err(BackendError::Failed(
                        "CUDA was asked for and libtorch finds no CUDA device here".into(),
                    ));
                }
                TchDevice::Cuda(0)
            }
            Device::Tensorrt => {
                return Err(BackendError::Unsupported(
                    "TensorRT is an ONNX Runtime execution provider; tch runs on cpu or cuda"
                        .into(),
                ))
            }
        };
        let mut module = CModule::load_on_device(path, device)
            .map_err(|e| BackendError::Failed(format!("load: {}", tidy(&e.to_string()))))?;
        module.set_eval();
        let output_names = info.outputs.iter().map(|o| o.name.clone()).collect();
        Ok((
            Box::new(TchLoaded {
                module,
                device,
                output_names,
            }),
            LoadNotes::default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy_keeps_the_error_line() {
        let load = "PytorchStreamReader failed locating file constants.pkl: file not found\nException raised from valid at /pytorch/caffe2/serialize/inline_container.cc:246 (most recent call first):\nframe #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x9e (0x7f in libc10.so)";
        assert_eq!(
            super::tidy(load),
            "PytorchStreamReader failed locating file constants.pkl: file not found"
        );
        let run = "The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript, serialized code (most recent call last):\n  File \"code/__torch__.py\", line 10, in forward\n    x = torch.linear(x, w, b)\nRuntimeError: mat1 and mat2 shapes cannot be multiplied (1x5 and 4x16)\n";
        assert_eq!(
            super::tidy(run),
            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x5 and 4x16)"
        );
    }
}
