/// `predict_batch` was given slices whose lengths do not fit INPUT_SIZE and OUTPUT_SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthError {
    pub input: usize,
    pub output: usize,
}

__BLOCK__

/// Runs every sample of `input` (`n · INPUT_SIZE` values) into `out` (`n · OUTPUT_SIZE`);
/// returns `n`. Samples go through in blocks of `BLOCK` (with the AVX2 kernels each weight is
/// read once per block; the stack the block's activations take is stated at `BLOCK`); the last
/// block may be short.
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
