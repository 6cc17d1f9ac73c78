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
/// the last block may be short.
pub fn predict_batch(input: &[f32], out: &mut [f32]) -> Result<usize, LengthError> {
    let n = input.len() / INPUT_SIZE;
    if input.len() != n * INPUT_SIZE || out.len() != n * OUTPUT_SIZE {
        return Err(LengthError { input: input.len(), output: out.len() });
    }
    for (x, y) in input.chunks(INPUT_SIZE * BLOCK).zip(out.chunks_mut(OUTPUT_SIZE * BLOCK)) {
        let mut rows = x.chunks_exact(INPUT_SIZE).filter_map(|r| <&[f32; INPUT_SIZE]>::try_from(r).ok());
        let Some(head) = rows.next() else { continue };
        // A short block is filled with its first sample; those rows' outputs are not kept.
        let mut block = [head; BLOCK];
        let mut m = 1;
        for (slot, r) in block[1..].iter_mut().zip(rows) {
            *slot = r;
            m += 1;
        }
        for (r, y) in predict_block(block, m).iter().zip(y.chunks_exact_mut(OUTPUT_SIZE)) {
            y.copy_from_slice(r);
        }
    }
    Ok(n)
}
