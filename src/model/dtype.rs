//! Dtype names across formats, mapped to the ONNX-style lower-case names of the JSON contract.

/// Name and storage bits of an ONNX `TensorProto.DataType`.
pub fn onnx(code: i32) -> (&'static str, u32) {
    match code {
        1 => ("float32", 32),
        2 => ("uint8", 8),
        3 => ("int8", 8),
        4 => ("uint16", 16),
        5 => ("int16", 16),
        6 => ("int32", 32),
        7 => ("int64", 64),
        8 => ("string", 0),
        9 => ("bool", 8),
        10 => ("float16", 16),
        11 => ("float64", 64),
        12 => ("uint32", 32),
        13 => ("uint64", 64),
        14 => ("complex64", 64),
        15 => ("complex128", 128),
        16 => ("bfloat16", 16),
        17 => ("float8e4m3fn", 8),
        18 => ("float8e4m3fnuz", 8),
        19 => ("float8e5m2", 8),
        20 => ("float8e5m2fnuz", 8),
        21 => ("uint4", 4),
        22 => ("int4", 4),
        23 => ("float4e2m1", 4),
        24 => ("float8e8m0", 8),
        25 => ("uint2", 2),
        26 => ("int2", 2),
        _ => ("undefined", 0),
    }
}

/// The ONNX `TensorProto.DataType` of a dtype name (`float32` → 1).
pub fn onnx_code(name: &str) -> Option<i32> {
    (1..=26).find(|c| onnx(*c).0 == name)
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
