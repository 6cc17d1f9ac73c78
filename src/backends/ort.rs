//! ONNX Runtime through `ort`, loaded at run time (`load-dynamic`): the binary builds and runs
//! without it and reports it unavailable, with the way to get it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::memory::Allocator;
use ort::session::Session;
use ort::value::{DynTensor, DynTensorValueType, Tensor, TensorElementType, ValueType};

use super::{Backend, BackendError, Device, LoadNotes, Loaded, Named, Unavailable};
use crate::model::dtype::DType;
use crate::model::ModelInfo;
use crate::tensor::HostTensor;

/// How to get ONNX Runtime when it is not found.
pub const HOW_TO_GET: &str =
    "install it with `pip install onnxruntime` (cargo-infer finds it through python3), or pass --ort-lib /path/to/libonnxruntime.so";

/// The ONNX Runtime back end (`ort` in the registry), CPU, CUDA or TensorRT.
pub struct Ort {
    explicit: Option<PathBuf>,
}

impl Ort {
    /// The back end with the library given by `--ort-lib`, if any; otherwise it is looked for as
    /// [`find_library`] says, when first needed.
    pub fn new(explicit: Option<&Path>) -> Ort {
        Ort {
            explicit: explicit.map(Path::to_path_buf),
        }
    }
}

/// The library and how it was found, in the order: `--ort-lib`, `ORT_DYLIB_PATH`, the
/// `onnxruntime` Python package of `python3`, the system library path.
pub fn find_library(explicit: Option<&Path>) -> Result<(PathBuf, &'static str), Unavailable> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok((p.to_path_buf(), "--ort-lib"))
        } else {
            Err(format!("--ort-lib {}: no such file", p.display()).into())
        };
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok((p, "ORT_DYLIB_PATH"))
        } else {
            Err(format!("ORT_DYLIB_PATH={} is not a file", p.display()).into())
        };
    }
    if let Some(p) = python_package_library() {
        return Ok((p, "the onnxruntime Python package"));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/local/lib",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    for d in dirs {
        if let Some(p) = newest_in(&d) {
            return Ok((p, "the system library path"));
        }
    }
    Err(format!("ONNX Runtime not found: {HOW_TO_GET}").into())
}

/// `libonnxruntime.so*` in a directory, preferring the most specific (versioned) name.
fn newest_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    found.sort_by_key(|p| p.as_os_str().len());
    found.pop()
}

/// Asks `python3` where its `onnxruntime` package is, without importing it.
fn python_package_library() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    if dir.is_empty() {
        return None;
    }
    newest_in(&Path::new(dir).join("capi"))
}

struct Runtime {
    env: Environment,
    version: String,
}

/// ONNX Runtime can be loaded once per process; the first library found is the one used.
static RUNTIME: OnceLock<Result<Runtime, Unavailable>> = OnceLock::new();

/// The process's ONNX Runtime environment (loading the library on first use).
pub fn environment(explicit: Option<&Path>) -> Result<&'static Environment, Unavailable> {
    runtime(explicit).map(|r| &r.env)
}

fn runtime(explicit: Option<&Path>) -> Result<&'static Runtime, Unavailable> {
    RUNTIME
        .get_or_init(|| {
            let (path, how) = find_library(explicit)?;
            let builder = ort::init_from(&path).map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {} (found through {how}): {e}",
                    path.display()
                )
            })?;
            // One thread pool for every session: `check` loads many models, and a session of its
            // own pool pays for creating and joining threads on every load.
            // ONNX Runtime's own log lines (coloured, on stderr) would break the rule that stderr
            // carries only our lines; every error it logs also comes back as a Result, which the
            // report carries as the back end's message.
            let env = builder
                .with_logger(std::sync::Arc::new(
                    |_, _: &str, _: &str, _: &str, _: &str| {},
                ))
                .with_name("cargo-infer")
                .with_global_thread_pool(ort::environment::GlobalThreadPoolOptions::default())
                .build()
                .map_err(|e| format!("ONNX Runtime: {e}"))?;
            let version = ort::info()
                .split(',')
                .find_map(|p| p.trim().strip_prefix("git-branch=rel-").map(str::to_string))
                .unwrap_or_else(|| {
                    // Builds without the branch in their info: the version the file is named for
                    // (libonnxruntime.so.1.31.1), else the file name.
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    name.split_once(".so.")
                        .map(|(_, v)| v.to_string())
                        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                        .unwrap_or(name)
                });
            Ok(Runtime {
                env,
                version: format!("onnxruntime {version} ({})", path.display()),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// ONNX Runtime's messages name the C++ source file and the full signature of the function that
/// failed; keep what it says, without them.
pub fn tidy(msg: &str) -> String {
    let mut s = msg.to_string();
    if let Some(i) = s.find("Load model from ") {
        if let Some(j) = s[i..].find(" failed:") {
            s.replace_range(i..i + j + " failed:".len(), "");
        }
    }
    while let Some(i) = s.find("/onnxruntime_src/") {
        let Some(open) = s[i..].find('(').map(|o| i + o) else {
            break;
        };
        let mut depth = 0;
        let mut end = None;
        for (k, c) in s[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + k + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let rest = s[end..].trim_start().to_string();
        s = format!("{}{}", &s[..i], rest);
    }
    super::first_line(&s)
}

/// ONNX Runtime's element type of a dtype: the same set, one to one.
fn element_type(d: DType) -> TensorElementType {
    use DType as D;
    use TensorElementType as T;
    match d {
        D::F32 => T::Float32,
        D::U8 => T::Uint8,
        D::I8 => T::Int8,
        D::U16 => T::Uint16,
        D::I16 => T::Int16,
        D::I32 => T::Int32,
        D::I64 => T::Int64,
        D::String => T::String,
        D::Bool => T::Bool,
        D::F16 => T::Float16,
        D::F64 => T::Float64,
        D::U32 => T::Uint32,
        D::U64 => T::Uint64,
        D::C64 => T::Complex64,
        D::C128 => T::Complex128,
        D::BF16 => T::Bfloat16,
        D::F8E4M3FN => T::Float8E4M3FN,
        D::F8E4M3FNUZ => T::Float8E4M3FNUZ,
        D::F8E5M2 => T::Float8E5M2,
        D::F8E5M2FNUZ => T::Float8E5M2FNUZ,
        D::U4 => T::Uint4,
        D::I4 => T::Int4,
        D::F4E2M1 => T::Float4E2M1,
        D::F8E8M0 => T::Float8E8M0,
        D::U2 => T::Uint2,
        D::I2 => T::Int2,
    }
}

/// The dtype of ONNX Runtime's element type (`None` for types newer than [`DType`]).
fn dtype_of(t: TensorElementType) -> Option<DType> {
    DType::all().find(|d| element_type(*d) == t)
}

/// Copies a host tensor into an ONNX Runtime value on the CPU; `name` (the graph input) is only
/// for the error message.
pub fn to_ort(name: &str, t: &HostTensor) -> Result<ort::value::DynValue, BackendError> {
    let fail =
        |e: ort::Error| BackendError::Failed(format!("input `{name}`: {}", tidy(&e.to_string())));
    let shape: Vec<i64> = t.shape.iter().map(|d| *d as i64).collect();
    let ty = element_type(t.dtype);
    if ty == TensorElementType::String {
        return Ok(Tensor::from_string_array((shape, t.strings.as_slice()))
            .map_err(fail)?
            .into_dyn());
    }
    let mut v = DynTensor::new(&Allocator::default(), ty, shape).map_err(fail)?;
    if !t.data.is_empty() {
        let dst = v.data_ptr_mut() as *mut u8;
        // SAFETY: the tensor was allocated on the CPU for exactly this dtype and shape, which is
        // what `t.data` holds (HostTensor checks its length); the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(t.data.as_ptr(), dst, t.data.len()) };
    }
    Ok(v.into_dyn())
}

fn from_ort(name: &str, v: ort::value::DynValue) -> Result<HostTensor, BackendError> {
    let (ty, shape) = match v.dtype() {
        ValueType::Tensor { ty, shape, .. } => (
            *ty,
            shape.iter().map(|d| *d as usize).collect::<Vec<usize>>(),
        ),
        other => {
            return Err(BackendError::Unsupported(format!(
                "output `{name}` is a {other}, not a tensor"
            )))
        }
    };
    let dtype = dtype_of(ty)
        .ok_or_else(|| BackendError::Unsupported(format!("output `{name}` has dtype {ty}")))?;
    if ty == TensorElementType::String {
        let (_, strings) = v
            .try_extract_strings()
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        return Ok(HostTensor {
            dtype,
            shape,
            data: vec![],
            strings,
        });
    }
    let numel: usize = shape.iter().product();
    let len = dtype.byte_len(numel);
    let t = v
        .downcast::<DynTensorValueType>()
        .map_err(|e| BackendError::Failed(e.to_string()))?;
    let mut data = vec![0u8; len];
    if len > 0 {
        // SAFETY: a CPU session's outputs live in CPU memory and hold `len` bytes for this dtype and shape.
        unsafe { std::ptr::copy_nonoverlapping(t.data_ptr() as *const u8, data.as_mut_ptr(), len) };
    }
    HostTensor::from_bytes(dtype, shape, data).map_err(BackendError::from)
}

struct OrtLoaded {
    session: Session,
}

impl Loaded for OrtLoaded {
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError> {
        let values: Vec<(String, ort::value::DynValue)> = inputs
            .iter()
            .map(|(n, t)| Ok((n.clone(), to_ort(n, t)?)))
            .collect::<Result<_, BackendError>>()?;
        let outputs = self
            .session
            .run(values)
            .map_err(|e| BackendError::Failed(format!("run: {}", tidy(&e.to_string()))))?;
        outputs
            .into_iter()
            .map(|(name, v)| Ok((name.to_string(), from_ort(name, v)?)))
            .collect()
    }
}

impl Backend for Ort {
    fn name(&self) -> &'static str {
        "ort"
    }

    fn availability(&self) -> Result<String, super::Unavailable> {
        runtime(self.explicit.as_deref()).map(|r| r.version.clone())
    }

    fn load(
        &self,
        path: &Path,
        _info: &ModelInfo,
        _inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError> {
        let rt = runtime(self.explicit.as_deref()).map_err(|e| BackendError::Failed(e.0))?;
        let fail = |what: &str, e: String| BackendError::Failed(format!("{what}: {}", tidy(&e)));
        let mut builder = Session::builder(&rt.env).map_err(|e| fail("session", e.to_string()))?;
        // A GPU that was asked for and not obtained is an error, never a silent CPU run.
        builder = match device {
            Device::Cpu => builder,
            Device::Cuda => builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(|e| fail("CUDA execution provider not available", e.to_string()))?,
            Device::Tensorrt => builder
                .with_execution_providers([ort::ep::TensorRT::default().build().error_on_failure()])
                .map_err(|e| fail("TensorRT execution provider not available", e.to_string()))?,
        };
        let session = builder.commit_from_file(path).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("NOT_IMPLEMENTED") || msg.contains("Could not find an implementation") {
                BackendError::Unsupported(tidy(&msg))
            } else {
                fail("load", msg)
            }
        })?;
        Ok((Box::new(OrtLoaded { session }), LoadNotes::default()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy_drops_source_locations_and_signatures() {
        let m = "Load model from /x/model.onnx failed:/onnxruntime_src/onnxruntime/core/graph/model.cc:256 onnxruntime::Model::Model(onnx::ModelProto&&, const onnxruntime::PathString&) Unsupported model IR version: 14, max supported IR version: 13";
        assert_eq!(
            super::tidy(m),
            "Unsupported model IR version: 14, max supported IR version: 13"
        );
        let m = "Non-zero status code returned while running Attention node. Name:'' Status Message: /onnxruntime_src/a/b.h:159 onnxruntime::common::Status f(const T*, bool) attn_mask was false.";
        assert_eq!(super::tidy(m), "Non-zero status code returned while running Attention node. Name:'' Status Message: attn_mask was false.");
    }
}
