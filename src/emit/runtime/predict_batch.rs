/// `predict_batch` was given slices whose lengths do not fit INPUT_SIZE and OUTPUT_SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthError {
    pub input: usize,
    pub output: usize,
}

/// Samples run together by `predict_batch`: each weight is read from memory once per block of
/// samples (twelve: the AVX2 kernel takes them six at a time, whose sums of 16 rows fill twelve
/// of its sixteen registers, the panel's rows staying in cache for the next six).
const BLOCK: usize = 12;

/// Runs every sample of `input` (`n · INPUT_SIZE` values) into `out` (`n · OUTPUT_SIZE`);
/// returns `n`. Samples go through in blocks of `BLOCK` (with the AVX2 kernels each weight is
/// read once per block, and the block's activations take `BLOCK` times the stack of `predict`);
/// the rest one by one.
pub fn predict_batch(input: &[f32], out: &mut [f32]) -> Result<usize, LengthError> {
    let n = input.len() / INPUT_SIZE;
    if input.len() != n * INPUT_SIZE || out.len() != n * OUTPUT_SIZE {
        return Err(LengthError { input: input.len(), output: out.len() });
    }
    let mut xs = input.chunks_exact(INPUT_SIZE * BLOCK);
    let mut ys = out.chunks_exact_mut(OUTPUT_SIZE * BLOCK);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let rows: [Option<&[f32; INPUT_SIZE]>; BLOCK] = core::array::from_fn(|k| {
            x.get(k * INPUT_SIZE..(k + 1) * INPUT_SIZE).and_then(|r| r.try_into().ok())
        });
        if let [Some(a), Some(b), Some(c), Some(d), Some(e), Some(f), Some(g), Some(h), Some(i), Some(j), Some(k), Some(l)] = rows {
            let block = [a, b, c, d, e, f, g, h, i, j, k, l];
            for (r, y) in predict_block(block).iter().zip(y.chunks_exact_mut(OUTPUT_SIZE)) {
                y.copy_from_slice(r);
            }
        }
    }
    for (x, y) in xs.remainder().chunks_exact(INPUT_SIZE).zip(ys.into_remainder().chunks_exact_mut(OUTPUT_SIZE)) {
        if let Ok(x) = <&[f32; INPUT_SIZE]>::try_from(x) {
            y.copy_from_slice(&predict(x));
        }
    }
    Ok(n)
}
