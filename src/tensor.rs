//! A host tensor of any ONNX dtype, as raw little-endian bytes, so that inputs and outputs of
//! every back end (and the ONNX test data) meet in one type — including bfloat16, float8 and the
//! sub-byte types that numpy cannot carry.

use std::path::Path;

use prost::Message;

use crate::model::dtype::DType;

crate::error::message_error! {
    /// Bytes that are not the tensor they claim to be (a truncated `.npy`, a shape that does not
    /// hold its data, a dtype without fixed-size elements). One line, without a path: the caller
    /// names the file (or the back end) the bytes came from.
    TensorError
}

/// A tensor in host memory, any dtype: what back ends are fed and return, and what data sets,
/// expected outputs and synthetic inputs are read into.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Little-endian element bytes, sub-byte types packed low nibble first; empty for strings.
    pub data: Vec<u8>,
    /// The elements of a `string` tensor, in row-major order; empty for every other dtype.
    pub strings: Vec<String>,
}

impl HostTensor {
    /// Number of elements: the product of `shape` (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The dtype's contract name (`float32`), for messages and JSON.
    pub fn dtype_name(&self) -> &'static str {
        self.dtype.name()
    }

    /// Floating-point elements (real or complex, any width): compared with tolerances.
    pub fn is_float(&self) -> bool {
        self.dtype.is_float()
    }

    /// THE constructor of every host tensor with fixed-size elements (readers of `.npy`, `.npz`,
    /// `.pb`, JSON and ONNX initializers, synthetic inputs, back-end outputs all end here). A bool
    /// byte other than 0 or 1 is made 1 (nonzero is true, as numpy and ONNX read it): the back
    /// ends take these bytes as Rust `bool`s, for which any other value is undefined behaviour.
    pub fn from_bytes(
        dtype: DType,
        shape: Vec<usize>,
        mut data: Vec<u8>,
    ) -> Result<HostTensor, TensorError> {
        if dtype == DType::Bool {
            for b in &mut data {
                *b = (*b != 0) as u8;
            }
        }
        let numel: usize = shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or_else(|| format!("shape {shape:?} overflows"))?;
        let want = dtype.byte_len(numel);
        if dtype.bits() == 0 {
            return Err(format!("dtype {dtype} has no fixed-size elements").into());
        }
        if data.len() != want {
            return Err(format!(
                "{dtype} of shape {shape:?} needs {want} bytes, got {}",
                data.len()
            )
            .into());
        }
        Ok(HostTensor {
            dtype,
            shape,
            data,
            strings: Vec::new(),
        })
    }

    /// A `float32` tensor of `v` in row-major order; `v.len()` must match `shape` (not checked).
    pub fn from_f32(shape: Vec<usize>, v: &[f32]) -> HostTensor {
        HostTensor {
            dtype: DType::F32,
            shape,
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            strings: vec![],
        }
    }

    /// Every element as f64 (complex: real and imaginary parts in turn); `None` for strings.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        let d = &self.data;
        macro_rules! le {
            ($t:ty, $n:expr) => {
                d.chunks_exact($n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect()
            };
        }
        let n = self.numel();
        Some(match self.dtype {
            DType::F32 | DType::C64 => le!(f32, 4),
            DType::F64 | DType::C128 => le!(f64, 8),
            DType::U8 => d.iter().map(|b| *b as f64).collect(),
            DType::I8 => d.iter().map(|b| *b as i8 as f64).collect(),
            DType::U16 => le!(u16, 2),
            DType::I16 => le!(i16, 2),
            DType::I32 => le!(i32, 4),
            DType::I64 => le!(i64, 8),
            DType::U32 => le!(u32, 4),
            DType::U64 => le!(u64, 8),
            DType::Bool => d.iter().map(|b| (*b != 0) as u8 as f64).collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
            DType::F8E4M3FN => d.iter().map(|b| f8(*b, 4, 3, 7, F8::Fn)).collect(),
            DType::F8E4M3FNUZ => d.iter().map(|b| f8(*b, 4, 3, 8, F8::Fnuz)).collect(),
            DType::F8E5M2 => d.iter().map(|b| f8(*b, 5, 2, 15, F8::Ieee)).collect(),
            DType::F8E5M2FNUZ => d.iter().map(|b| f8(*b, 5, 2, 16, F8::Fnuz)).collect(),
            DType::F8E8M0 => d
                .iter()
                .map(|b| {
                    if *b == 0xff {
                        f64::NAN
                    } else {
                        2f64.powi(*b as i32 - 127)
                    }
                })
                .collect(),
            DType::U4 | DType::I4 | DType::F4E2M1 => (0..n)
                .map(|i| {
                    let nib = (d[i / 2] >> ((i % 2) * 4)) & 0x0f;
                    match self.dtype {
                        DType::U4 => nib as f64,
                        DType::I4 => ((nib << 4) as i8 >> 4) as f64,
                        _ => f4e2m1(nib),
                    }
                })
                .collect(),
            DType::U2 | DType::I2 => (0..n)
                .map(|i| {
                    let v = (d[i / 4] >> ((i % 4) * 2)) & 0x03;
                    if self.dtype == DType::I2 {
                        ((v << 6) as i8 >> 6) as f64
                    } else {
                        v as f64
                    }
                })
                .collect(),
            DType::String => return None,
        })
    }

    /// Reads an ONNX `TensorProto` (`input_0.pb`, `output_0.pb`); returns its name too.
    pub fn from_pb(bytes: &[u8]) -> Result<(String, HostTensor), TensorError> {
        let t = TensorFull::decode(bytes).map_err(|e| format!("not a TensorProto: {e}"))?;
        Self::from_full(t, None)
    }

    /// A decoded `TensorProto`; external data is read next to the model file `model` when given.
    fn from_full(
        mut t: TensorFull,
        model: Option<&Path>,
    ) -> Result<(String, HostTensor), TensorError> {
        let shape: Vec<usize> = t
            .dims
            .iter()
            .map(|d| usize::try_from(*d).map_err(|_| format!("negative dimension {d}")))
            .collect::<Result<_, _>>()?;
        let numel = shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or("shape overflows")?;
        let name = t.name.clone();
        let dtype = DType::from_onnx(t.data_type)
            .ok_or_else(|| format!("unsupported TensorProto data_type {}", t.data_type))?;
        if dtype == DType::String {
            let strings: Vec<String> = t
                .string_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            if strings.len() != numel {
                return Err(
                    format!("string tensor of {numel} elements holds {}", strings.len()).into(),
                );
            }
            return Ok((
                name,
                HostTensor {
                    dtype: DType::String,
                    shape,
                    data: vec![],
                    strings,
                },
            ));
        }
        let data = if t.data_location == 1 {
            let model = model.ok_or("TensorProto with external data is not supported here")?;
            external_bytes(&t, model, dtype.byte_len(numel))?
        } else if !t.raw_data.is_empty() || numel == 0 {
            std::mem::take(&mut t.raw_data)
        } else {
            // The declared shape is not trusted for the allocation: the data decides, then is checked.
            let mut out = Vec::new();
            match dtype {
                DType::F32 | DType::C64 => t
                    .float_data
                    .iter()
                    .for_each(|v| out.extend(v.to_le_bytes())),
                DType::F64 | DType::C128 => t
                    .double_data
                    .iter()
                    .for_each(|v| out.extend(v.to_le_bytes())),
                DType::I64 => t
                    .int64_data
                    .iter()
                    .for_each(|v| out.extend(v.to_le_bytes())),
                DType::U32 => t
                    .uint64_data
                    .iter()
                    .for_each(|v| out.extend((*v as u32).to_le_bytes())),
                DType::U64 => t
                    .uint64_data
                    .iter()
                    .for_each(|v| out.extend(v.to_le_bytes())),
                DType::I32 => t
                    .int32_data
                    .iter()
                    .for_each(|v| out.extend(v.to_le_bytes())),
                DType::U16 | DType::I16 | DType::F16 | DType::BF16 => t
                    .int32_data
                    .iter()
                    .for_each(|v| out.extend((*v as u16).to_le_bytes())),
                // 8-bit types, and sub-byte types whose int32_data holds packed bytes.
                _ => t.int32_data.iter().for_each(|v| out.push(*v as u8)),
            }
            out
        };
        Ok((name, HostTensor::from_bytes(dtype, shape, data)?))
    }

    /// Reads a `.npy` array.
    pub fn from_npy(bytes: &[u8]) -> Result<HostTensor, TensorError> {
        let npy = npyz::NpyFile::new(bytes).map_err(|e| format!("not a .npy file: {e}"))?;
        from_npy_file(npy)
    }

    /// Reads every array of a `.npz` archive, by name (without the `.npy` suffix).
    pub fn from_npz(path: &Path) -> Result<Vec<(String, HostTensor)>, TensorError> {
        let mut npz =
            npyz::npz::NpzArchive::open(path).map_err(|e| format!("not a .npz archive: {e}"))?;
        let names: Vec<String> = npz.array_names().map(str::to_string).collect();
        let mut out = Vec::new();
        for name in names {
            let npy = npz
                .by_name(&name)
                .map_err(|e| format!("{name}: {e}"))?
                .ok_or_else(|| format!("{name}: missing"))?;
            out.push((
                name.clone(),
                from_npy_file(npy).map_err(|e| format!("{name}: {e}"))?,
            ));
        }
        Ok(out)
    }

    /// A short description for messages: `float32[1, 3]`.
    pub fn describe(&self) -> String {
        format!("{}{:?}", self.dtype_name(), self.shape)
    }

    /// The tensor as a `.npy` file (the dtypes numpy has; others are an error).
    pub fn to_npy(&self) -> Result<Vec<u8>, TensorError> {
        let descr = self
            .dtype
            .npy_descr()
            .ok_or_else(|| format!("{} cannot be stored as .npy", self.dtype_name()))?;
        let shape = match self.shape.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(&self.data);
        Ok(out)
    }

    /// The tensor as float64 (numbers only; strings are an error).
    pub fn as_f64(&self) -> Result<HostTensor, TensorError> {
        let v = self
            .to_f64()
            .ok_or_else(|| format!("{} values cannot be read as numbers", self.dtype_name()))?;
        HostTensor::from_bytes(
            DType::F64,
            self.shape.clone(),
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }
}

fn from_npy_file<R: std::io::Read>(npy: npyz::NpyFile<R>) -> Result<HostTensor, TensorError> {
    let shape: Vec<usize> = npy.shape().iter().map(|d| *d as usize).collect();
    if npy.order() == npyz::Order::Fortran && shape.len() > 1 {
        return Err(
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into(),
        );
    }
    let npyz::DType::Plain(ty) = npy.dtype() else {
        return Err("structured dtypes are not supported".into());
    };
    let err = |e: std::io::Error| format!("unreadable data: {e}");
    macro_rules! read {
        ($t:ty, $code:expr) => {{
            let v: Vec<$t> = npy.into_vec().map_err(err)?;
            (
                $code,
                v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
            )
        }};
    }
    let (code, bytes) = match (ty.type_char(), ty.size_field()) {
        (npyz::TypeChar::Float, 4) => read!(f32, DType::F32),
        (npyz::TypeChar::Float, 8) => read!(f64, DType::F64),
        (npyz::TypeChar::Float, 2) => read!(half::f16, DType::F16),
        (npyz::TypeChar::Int, 1) => read!(i8, DType::I8),
        (npyz::TypeChar::Int, 2) => read!(i16, DType::I16),
        (npyz::TypeChar::Int, 4) => read!(i32, DType::I32),
        (npyz::TypeChar::Int, 8) => read!(i64, DType::I64),
        (npyz::TypeChar::Uint, 1) => read!(u8, DType::U8),
        (npyz::TypeChar::Uint, 2) => read!(u16, DType::U16),
        (npyz::TypeChar::Uint, 4) => read!(u32, DType::U32),
        (npyz::TypeChar::Uint, 8) => read!(u64, DType::U64),
        // Read as stored bytes (npyz refuses any but 0 and 1); `from_bytes` makes nonzero true.
        (npyz::TypeChar::Bool, 1) => {
            let v: Vec<BoolByte> = npy.into_vec().map_err(err)?;
            (DType::Bool, v.iter().map(|b| b.0).collect())
        }
        (c, s) => return Err(format!("unsupported numpy dtype {c:?}{s}").into()),
    };
    HostTensor::from_bytes(code, shape, bytes)
}

/// A numpy bool element as its stored byte (numpy reads any nonzero byte as true).
struct BoolByte(u8);

struct BoolByteReader;

impl npyz::TypeRead for BoolByteReader {
    type Value = BoolByte;
    fn read_one<R: std::io::Read>(&self, mut r: R) -> std::io::Result<BoolByte> {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        Ok(BoolByte(b[0]))
    }
}

impl npyz::Deserialize for BoolByte {
    type TypeReader = BoolByteReader;
    fn reader(dtype: &npyz::DType) -> Result<BoolByteReader, npyz::DTypeError> {
        match dtype {
            npyz::DType::Plain(ty)
                if ty.type_char() == npyz::TypeChar::Bool && ty.size_field() == 1 =>
            {
                Ok(BoolByteReader)
            }
            _ => Err(npyz::DTypeError::custom("not a numpy bool array")),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum F8 {
    /// IEEE-like: infinities and NaNs at the top exponent.
    Ieee,
    /// `fn`: no infinities; only S.1111.111 is NaN.
    Fn,
    /// `fnuz`: no infinities, no negative zero; 0x80 is NaN.
    Fnuz,
}

fn f8(b: u8, ebits: u32, mbits: u32, bias: i32, kind: F8) -> f64 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((b >> mbits) & ((1 << ebits) - 1) as u8) as i32;
    let m = (b & ((1 << mbits) - 1) as u8) as f64;
    let emax = (1 << ebits) - 1;
    match kind {
        F8::Fnuz if b == 0x80 => return f64::NAN,
        F8::Fn if e == emax && m as u32 == (1 << mbits) - 1 => return f64::NAN,
        F8::Ieee if e == emax => {
            return if m == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => {}
    }
    let scale = (1u32 << mbits) as f64;
    if e == 0 {
        sign * (m / scale) * 2f64.powi(1 - bias)
    } else {
        sign * (1.0 + m / scale) * 2f64.powi(e - bias)
    }
}

fn f4e2m1(nib: u8) -> f64 {
    const V: [f64; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
    let v = V[(nib & 7) as usize];
    if nib & 8 != 0 {
        -v
    } else {
        v
    }
}

/// A whole `TensorProto` with its payload, for test data (`input_0.pb`), not for model weights.
#[derive(Clone, PartialEq, prost::Message)]
struct TensorFull {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    string_data: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    uint64_data: Vec<u64>,
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<crate::model::onnx::proto::StringStringEntry>,
    #[prost(int32, tag = "14")]
    data_location: i32,
}

/// The initializers of an ONNX model, with their payloads (for `convert`, not for inspecting).
#[derive(Clone, PartialEq, prost::Message)]
struct ModelInitializers {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphInitializers>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GraphInitializers {
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorFull>,
}

/// Every initializer of an ONNX model, by name, external data read from the files it names next
/// to the model.
pub fn onnx_initializers(
    path: &Path,
) -> Result<Vec<(String, HostTensor)>, crate::error::ModelError> {
    use crate::error::ModelError;
    let bytes = crate::model::map_file(path)?;
    let model = ModelInitializers::decode(&bytes[..])
        .map_err(|e| ModelError::new(path, format!("not an ONNX model: {e}")))?;
    model
        .graph
        .unwrap_or_default()
        .initializer
        .into_iter()
        .map(|t| {
            let name = t.name.clone();
            HostTensor::from_full(t, Some(path))
                .map_err(|e| ModelError::new(path, format!("initializer `{name}`: {e}")))
        })
        .collect()
}

/// The bytes of an external-data tensor: `location` (relative, inside the model's directory),
/// `offset`, `length`.
fn external_bytes(t: &TensorFull, model: &Path, expected: usize) -> Result<Vec<u8>, TensorError> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let location = get("location").ok_or("external data names no location")?;
    let file = crate::model::contained(model, location)
        .map_err(|o| format!("external data {o}; refused without reading it"))?;
    let num = |k: &str| -> Result<Option<u64>, String> {
        get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("bad external-data {k} `{v}`"))
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let length = num("length")?.unwrap_or(expected as u64);
    let mut f =
        std::fs::File::open(&file).map_err(|e| format!("external data {}: {e}", file.display()))?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!(
            "reads bytes {offset}..{} of `{location}`, which has {size} bytes",
            offset.saturating_add(length)
        )
        .into());
    }
    use std::io::{Read, Seek};
    f.seek(std::io::SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut out = vec![0u8; length as usize];
    f.read_exact(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Deterministic pseudo-random numbers (splitmix64) for synthetic inputs.
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed` (the commands' `--seed`).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Largest synthetic input (1 GiB): a declared shape is not trusted with more.
pub const MAX_SYNTHETIC_BYTES: usize = 1 << 30;

/// The bytes of `values` as `dtype`, each cast as Rust's `as` casts (any nonzero number is true,
/// as in numpy): for the dtypes made from plain numbers (float32/64/16, int64/32/8, uint8, bool);
/// `None` for the others.
pub fn number_bytes(dtype: DType, values: &[f64]) -> Option<Vec<u8>> {
    let mut data = Vec::with_capacity(dtype.byte_len(values.len()));
    for x in values {
        match dtype {
            DType::F32 => data.extend((*x as f32).to_le_bytes()),
            DType::F64 => data.extend(x.to_le_bytes()),
            DType::I64 => data.extend((*x as i64).to_le_bytes()),
            DType::I32 => data.extend((*x as i32).to_le_bytes()),
            DType::Bool => data.push((*x != 0.0) as u8),
            DType::U8 => data.push(*x as u8),
            DType::I8 => data.push(*x as i8 as u8),
            DType::F16 => data.extend(half::f16::from_f64(*x).to_le_bytes()),
            _ => return None,
        }
    }
    Some(data)
}

/// A synthetic tensor: floats uniform in `[lo, hi)`, integers uniform in `[lo, hi]` rounded,
/// booleans fair coins.
pub fn synthetic(
    dtype: DType,
    shape: Vec<usize>,
    lo: f64,
    hi: f64,
    rng: &mut Rng,
) -> Result<HostTensor, TensorError> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| dtype.byte_len(*n).max(*n) <= MAX_SYNTHETIC_BYTES)
        .ok_or_else(|| {
            format!(
                "a synthetic {dtype} input of shape {shape:?} would take more than {} MiB; give smaller --dim sizes or the input itself",
                MAX_SYNTHETIC_BYTES >> 20
            )
        })?;
    let mut data = Vec::with_capacity(dtype.byte_len(n));
    let float = |r: &mut Rng| lo + (hi - lo) * r.unit();
    let int = |r: &mut Rng| {
        (lo.ceil() + ((hi.floor() - lo.ceil() + 1.0).max(1.0) * r.unit()).floor()) as i64
    };
    for _ in 0..n {
        match dtype {
            DType::F32 => data.extend((float(rng) as f32).to_le_bytes()),
            DType::F64 => data.extend(float(rng).to_le_bytes()),
            DType::F16 => data.extend(half::f16::from_f64(float(rng)).to_le_bytes()),
            DType::BF16 => data.extend(half::bf16::from_f64(float(rng)).to_le_bytes()),
            DType::U8 => data.push(int(rng).clamp(0, 255) as u8),
            DType::I8 => data.push(int(rng).clamp(-128, 127) as i8 as u8),
            DType::U16 => data.extend((int(rng).clamp(0, 65535) as u16).to_le_bytes()),
            DType::I16 => data.extend((int(rng) as i16).to_le_bytes()),
            DType::I32 => data.extend((int(rng) as i32).to_le_bytes()),
            DType::I64 => data.extend(int(rng).to_le_bytes()),
            DType::U32 => data.extend((int(rng).max(0) as u32).to_le_bytes()),
            DType::U64 => data.extend((int(rng).max(0) as u64).to_le_bytes()),
            DType::Bool => data.push((rng.next_u64() & 1) as u8),
            DType::String => {}
            _ => return Err(format!("cannot synthesise {dtype} inputs").into()),
        }
    }
    if dtype == DType::String {
        let strings = (0..n).map(|i| format!("s{i}")).collect();
        return Ok(HostTensor {
            dtype,
            shape,
            data: vec![],
            strings,
        });
    }
    HostTensor::from_bytes(dtype, shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float8_decodes_reference_values() {
        // e4m3fn: 0x38 = 1.0, 0x7e = 448, 0x7f = NaN; e5m2: 0x3c = 1.0, 0x7c = inf.
        assert_eq!(f8(0x38, 4, 3, 7, F8::Fn), 1.0);
        assert_eq!(f8(0x7e, 4, 3, 7, F8::Fn), 448.0);
        assert!(f8(0x7f, 4, 3, 7, F8::Fn).is_nan());
        assert_eq!(f8(0x3c, 5, 2, 15, F8::Ieee), 1.0);
        assert_eq!(f8(0x7c, 5, 2, 15, F8::Ieee), f64::INFINITY);
        assert!(f8(0x80, 4, 3, 8, F8::Fnuz).is_nan());
    }

    #[test]
    fn int4_unpacks_low_nibble_first() {
        let t = HostTensor::from_bytes(DType::I4, vec![3], vec![0xf1, 0x07]).unwrap();
        assert_eq!(t.to_f64().unwrap(), vec![1.0, -1.0, 7.0]);
    }

    #[test]
    fn synthetic_is_deterministic_and_in_range() {
        let a = synthetic(DType::I64, vec![100], 0.0, 9.0, &mut Rng::new(1)).unwrap();
        let b = synthetic(DType::I64, vec![100], 0.0, 9.0, &mut Rng::new(1)).unwrap();
        assert_eq!(a, b);
        assert!(a.to_f64().unwrap().iter().all(|v| (0.0..=9.0).contains(v)));
        assert!(a.to_f64().unwrap().contains(&9.0));
    }

    #[test]
    fn every_bool_byte_is_0_or_1() {
        let t = HostTensor::from_bytes(DType::Bool, vec![256], (0..=255).collect()).unwrap();
        assert_eq!(t.data[0], 0);
        assert!(t.data[1..].iter().all(|b| *b == 1));
    }

    #[test]
    fn hostile_shapes_are_errors_not_overflows() {
        let huge = vec![1 << 40, 1 << 40];
        assert!(HostTensor::from_bytes(DType::F32, huge.clone(), vec![]).is_err());
        assert!(synthetic(DType::F32, huge, 0.0, 1.0, &mut Rng::new(0)).is_err());
        assert!(synthetic(DType::String, vec![1 << 31], 0.0, 1.0, &mut Rng::new(0)).is_err());
    }
}
