//! Dtype names across formats, mapped to the ONNX-style lower-case names of the JSON contract.

/// The element type of a tensor that passes through cargo-infer: ONNX's `TensorProto.DataType`
/// set, which every back end's and file format's types map into. Raw codes live only at the
/// edges (protobuf fields, a back end's enum); everything in between matches on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `float32` (ONNX 1): IEEE single precision.
    F32,
    /// `uint8` (ONNX 2).
    U8,
    /// `int8` (ONNX 3).
    I8,
    /// `uint16` (ONNX 4).
    U16,
    /// `int16` (ONNX 5).
    I16,
    /// `int32` (ONNX 6).
    I32,
    /// `int64` (ONNX 7).
    I64,
    /// `string` (ONNX 8): variable-length byte strings, no fixed size.
    String,
    /// `bool` (ONNX 9): one byte per element.
    Bool,
    /// `float16` (ONNX 10): IEEE half precision.
    F16,
    /// `float64` (ONNX 11): IEEE double precision.
    F64,
    /// `uint32` (ONNX 12).
    U32,
    /// `uint64` (ONNX 13).
    U64,
    /// `complex64` (ONNX 14): two `float32`s, real then imaginary.
    C64,
    /// `complex128` (ONNX 15): two `float64`s, real then imaginary.
    C128,
    /// `bfloat16` (ONNX 16): the upper half of a `float32`.
    BF16,
    /// `float8e4m3fn` (ONNX 17): 4-bit exponent, 3-bit mantissa, finite only (NaN, no infinities).
    F8E4M3FN,
    /// `float8e4m3fnuz` (ONNX 18): as `F8E4M3FN`, no negative zero.
    F8E4M3FNUZ,
    /// `float8e5m2` (ONNX 19): 5-bit exponent, 2-bit mantissa.
    F8E5M2,
    /// `float8e5m2fnuz` (ONNX 20): as `F8E5M2`, finite only, no negative zero.
    F8E5M2FNUZ,
    /// `uint4` (ONNX 21): two elements per byte.
    U4,
    /// `int4` (ONNX 22): two elements per byte.
    I4,
    /// `float4e2m1` (ONNX 23): 4-bit float, two elements per byte.
    F4E2M1,
    /// `float8e8m0` (ONNX 24): an 8-bit exponent only (block scales).
    F8E8M0,
    /// `uint2` (ONNX 25): four elements per byte.
    U2,
    /// `int2` (ONNX 26): four elements per byte.
    I2,
}

/// Every dtype with its ONNX code, its name in the JSON contract and its storage bits (0: no
/// fixed size). The one table the methods of [`DType`] read.
const TABLE: [(DType, i32, &str, u32); 26] = [
    (DType::F32, 1, "float32", 32),
    (DType::U8, 2, "uint8", 8),
    (DType::I8, 3, "int8", 8),
    (DType::U16, 4, "uint16", 16),
    (DType::I16, 5, "int16", 16),
    (DType::I32, 6, "int32", 32),
    (DType::I64, 7, "int64", 64),
    (DType::String, 8, "string", 0),
    (DType::Bool, 9, "bool", 8),
    (DType::F16, 10, "float16", 16),
    (DType::F64, 11, "float64", 64),
    (DType::U32, 12, "uint32", 32),
    (DType::U64, 13, "uint64", 64),
    (DType::C64, 14, "complex64", 64),
    (DType::C128, 15, "complex128", 128),
    (DType::BF16, 16, "bfloat16", 16),
    (DType::F8E4M3FN, 17, "float8e4m3fn", 8),
    (DType::F8E4M3FNUZ, 18, "float8e4m3fnuz", 8),
    (DType::F8E5M2, 19, "float8e5m2", 8),
    (DType::F8E5M2FNUZ, 20, "float8e5m2fnuz", 8),
    (DType::U4, 21, "uint4", 4),
    (DType::I4, 22, "int4", 4),
    (DType::F4E2M1, 23, "float4e2m1", 4),
    (DType::F8E8M0, 24, "float8e8m0", 8),
    (DType::U2, 25, "uint2", 2),
    (DType::I2, 26, "int2", 2),
];

impl DType {
    fn row(self) -> &'static (DType, i32, &'static str, u32) {
        // The table is in the enum's order (a unit test holds it to that).
        &TABLE[self as usize]
    }

    /// Every dtype, in ONNX code order.
    pub fn all() -> impl Iterator<Item = DType> {
        TABLE.iter().map(|r| r.0)
    }

    /// The dtype of an ONNX `TensorProto.DataType` code; `None` for 0 (undefined) and codes
    /// newer than this table.
    pub fn from_onnx(code: i32) -> Option<DType> {
        TABLE.iter().find(|r| r.1 == code).map(|r| r.0)
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx(self) -> i32 {
        self.row().1
    }

    /// The name in the JSON contract and in messages (`float32`).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The dtype of a name as [`DType::name`] gives it.
    pub fn from_name(name: &str) -> Option<DType> {
        TABLE.iter().find(|r| r.2 == name).map(|r| r.0)
    }

    /// Storage bits of one element (sub-byte types packed); 0 for strings.
    pub fn bits(self) -> u32 {
        self.row().3
    }

    /// Bytes `numel` elements take, sub-byte types packed.
    pub fn byte_len(self, numel: usize) -> usize {
        packed_bytes(numel as u64, self.bits()) as usize
    }

    /// Floating-point (real or complex) elements.
    pub fn is_float(self) -> bool {
        use DType::*;
        matches!(
            self,
            F32 | F16
                | F64
                | C64
                | C128
                | BF16
                | F8E4M3FN
                | F8E4M3FNUZ
                | F8E5M2
                | F8E5M2FNUZ
                | F4E2M1
                | F8E8M0
        )
    }

    /// float32, float16, bfloat16 and float64: the floats weights and activations are trained
    /// and stored in (not complex, not the float8/float4 formats of quantized deployment).
    pub fn is_plain_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }

    /// numpy's `descr` of the dtypes `.npy` files carry here (`<f4`, `|b1`, …), the ones
    /// [`crate::tensor::HostTensor::from_npy`] reads back.
    pub fn npy_descr(self) -> Option<&'static str> {
        use DType::*;
        Some(match self {
            F32 => "<f4",
            F64 => "<f8",
            F16 => "<f2",
            I8 => "|i1",
            I16 => "<i2",
            I32 => "<i4",
            I64 => "<i8",
            U8 => "|u1",
            U16 => "<u2",
            U32 => "<u4",
            U64 => "<u8",
            Bool => "|b1",
            _ => return None,
        })
    }
}

impl DType {
    /// The safetensors crate's dtype, for the dtypes safetensors stores.
    pub fn safetensors(self) -> Option<safetensors::Dtype> {
        use safetensors::Dtype as S;
        Some(match self {
            DType::F32 => S::F32,
            DType::U8 => S::U8,
            DType::I8 => S::I8,
            DType::U16 => S::U16,
            DType::I16 => S::I16,
            DType::I32 => S::I32,
            DType::I64 => S::I64,
            DType::Bool => S::BOOL,
            DType::F16 => S::F16,
            DType::F64 => S::F64,
            DType::U32 => S::U32,
            DType::U64 => S::U64,
            DType::C64 => S::C64,
            DType::BF16 => S::BF16,
            DType::F8E4M3FN => S::F8_E4M3,
            DType::F8E4M3FNUZ => S::F8_E4M3FNUZ,
            DType::F8E5M2 => S::F8_E5M2,
            DType::F8E5M2FNUZ => S::F8_E5M2FNUZ,
            DType::F8E8M0 => S::F8_E8M0,
            _ => return None,
        })
    }

    /// The dtype of a safetensors crate's dtype (`None` for the ones ONNX has no type for).
    pub fn from_safetensors(d: safetensors::Dtype) -> Option<DType> {
        DType::all().find(|t| t.safetensors() == Some(d))
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Name and storage bits of an ONNX `TensorProto.DataType` code as a model file holds it
/// (`undefined`, 0 bits for codes outside the table).
pub fn onnx(code: i32) -> (&'static str, u32) {
    DType::from_onnx(code).map_or(("undefined", 0), |d| (d.name(), d.bits()))
}

/// The ONNX `TensorProto.DataType` of a dtype name (`float32` → 1).
pub fn onnx_code(name: &str) -> Option<i32> {
    DType::from_name(name).map(DType::onnx)
}

/// Bytes taken by `n` elements of `bits` each, sub-byte types packed.
pub fn packed_bytes(n: u64, bits: u32) -> u64 {
    n.saturating_mul(bits as u64).div_ceil(8)
}

/// Name and bits of a safetensors dtype (`F32`, `BF16`, `F8_E4M3`, …).
pub fn safetensors(code: &str) -> Option<(&'static str, u32)> {
    Some(match code {
        "F64" => ("float64", 64),
        "F32" => ("float32", 32),
        "F16" => ("float16", 16),
        "BF16" => ("bfloat16", 16),
        "I64" => ("int64", 64),
        "I32" => ("int32", 32),
        "I16" => ("int16", 16),
        "I8" => ("int8", 8),
        "U64" => ("uint64", 64),
        "U32" => ("uint32", 32),
        "U16" => ("uint16", 16),
        "U8" => ("uint8", 8),
        "BOOL" => ("bool", 8),
        "F8_E5M2" => ("float8e5m2", 8),
        "F8_E4M3" => ("float8e4m3fn", 8),
        "F8_E8M0" => ("float8e8m0", 8),
        "F6_E2M3" => ("float6e2m3", 6),
        "F6_E3M2" => ("float6e3m2", 6),
        "F4" => ("float4e2m1", 4),
        "C64" => ("complex64", 64),
        _ => return None,
    })
}

/// Name and bytes per element of a torch storage class (`FloatStorage`) or, in torch ≥ 2.x
/// pickles, a dtype attribute name (`float32`).
pub fn torch(name: &str) -> Option<(&'static str, u64)> {
    Some(match name {
        "FloatStorage" | "float32" | "float" => ("float32", 4),
        "DoubleStorage" | "float64" | "double" => ("float64", 8),
        "HalfStorage" | "float16" | "half" => ("float16", 2),
        "BFloat16Storage" | "bfloat16" => ("bfloat16", 2),
        "LongStorage" | "int64" | "long" => ("int64", 8),
        "IntStorage" | "int32" | "int" => ("int32", 4),
        "ShortStorage" | "int16" | "short" => ("int16", 2),
        "CharStorage" | "int8" => ("int8", 1),
        "ByteStorage" | "uint8" => ("uint8", 1),
        "BoolStorage" | "bool" => ("bool", 1),
        "ComplexFloatStorage" | "complex64" => ("complex64", 8),
        "ComplexDoubleStorage" | "complex128" => ("complex128", 16),
        "Float8_e4m3fnStorage" | "float8_e4m3fn" => ("float8e4m3fn", 1),
        "Float8_e5m2Storage" | "float8_e5m2" => ("float8e5m2", 1),
        "UInt16Storage" | "uint16" => ("uint16", 2),
        "UInt32Storage" | "uint32" => ("uint32", 4),
        "UInt64Storage" | "uint64" => ("uint64", 8),
        "QInt8Storage" | "qint8" => ("qint8", 1),
        "QUInt8Storage" | "quint8" => ("quint8", 1),
        "QInt32Storage" | "qint32" => ("qint32", 4),
        _ => return None,
    })
}

/// A ggml tensor type: name, elements per block, bytes per block.
pub fn ggml(code: u32) -> Option<(&'static str, u64, u64)> {
    Some(match code {
        0 => ("float32", 1, 4),
        1 => ("float16", 1, 2),
        2 => ("q4_0", 32, 18),
        3 => ("q4_1", 32, 20),
        6 => ("q5_0", 32, 22),
        7 => ("q5_1", 32, 24),
        8 => ("q8_0", 32, 34),
        9 => ("q8_1", 32, 40),
        10 => ("q2_k", 256, 84),
        11 => ("q3_k", 256, 110),
        12 => ("q4_k", 256, 144),
        13 => ("q5_k", 256, 176),
        14 => ("q6_k", 256, 210),
        15 => ("q8_k", 256, 292),
        16 => ("iq2_xxs", 256, 66),
        17 => ("iq2_xs", 256, 74),
        18 => ("iq3_xxs", 256, 98),
        19 => ("iq1_s", 256, 50),
        20 => ("iq4_nl", 32, 18),
        21 => ("iq3_s", 256, 110),
        22 => ("iq2_s", 256, 82),
        23 => ("iq4_xs", 256, 136),
        24 => ("int8", 1, 1),
        25 => ("int16", 1, 2),
        26 => ("int32", 1, 4),
        27 => ("int64", 1, 8),
        28 => ("float64", 1, 8),
        29 => ("iq1_m", 256, 56),
        30 => ("bfloat16", 1, 2),
        34 => ("tq1_0", 256, 54),
        35 => ("tq2_0", 256, 66),
        39 => ("mxfp4", 32, 17),
        40 => ("nvfp4", 64, 36),
        41 => ("q1_0", 128, 18),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_enums_order_and_round_trips() {
        for (i, (d, code, name, _)) in TABLE.iter().enumerate() {
            assert_eq!(*d as usize, i, "{name}");
            assert_eq!(DType::from_onnx(*code), Some(*d));
            assert_eq!(DType::from_name(name), Some(*d));
            assert_eq!(d.onnx(), *code);
        }
        assert_eq!(DType::from_onnx(0), None);
        assert_eq!(DType::from_onnx(27), None);
        assert_eq!(DType::I4.byte_len(3), 2);
        assert_eq!(DType::F32.byte_len(3), 12);
    }
}
