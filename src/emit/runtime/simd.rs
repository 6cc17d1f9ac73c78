
/// The x86_64 kernels (`emit --simd`): AVX2 with fused multiply-adds, eight sums to a
/// register, chosen at run time when CPUID says the processor has them. The only `unsafe` in
/// this module; `predict` and `predict_batch` fall back to the safe kernels elsewhere.
#[cfg(all(target_arch = "x86_64", not(target_env = "sgx")))]
mod simd {
    use super::*;
    use core::arch::x86_64::*;
    use core::sync::atomic::{AtomicU8, Ordering};

    /// 0: not asked yet, 1: no, 2: yes.
    static FOUND: AtomicU8 = AtomicU8::new(0);

    /// Whether this processor and its OS run AVX2, FMA and F16C: CPUID once, then the cached
    /// answer (CPUID is slow under a hypervisor).
    #[inline]
    pub fn available() -> bool {
        if cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c")) {
            return true;
        }
        match FOUND.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = detect();
                FOUND.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }

    #[allow(unused_unsafe)]
    fn detect() -> bool {
        // SAFETY: every x86_64 processor has CPUID, and leaf 0 says which leaves exist.
        let top = unsafe { __cpuid(0) }.eax;
        if top < 7 {
            return false;
        }
        // SAFETY: leaves 1 and 7 exist (above).
        let (l1, l7) = unsafe { (__cpuid(1), __cpuid_count(7, 0)) };
        let has = |reg: u32, bit: u32| reg & (1 << bit) != 0;
        let cpu = has(l1.ecx, 12) && has(l1.ecx, 27) && has(l1.ecx, 28) && has(l1.ecx, 29) && has(l7.ebx, 5);
        // SAFETY: XGETBV exists when OSXSAVE (ecx bit 27) is set, checked first; the OS must
        // save the SSE and AVX registers (XCR0 bits 1 and 2).
        cpu && unsafe { xcr0() } & 6 == 6
    }

    #[target_feature(enable = "xsave")]
    #[allow(unused_unsafe)]
    unsafe fn xcr0() -> u64 {
        // SAFETY: the caller checked OSXSAVE.
        unsafe { _xgetbv(0) }
    }

    /// Eight weights from element `e` of a panel (its bytes at `p`), as f32.
    ///
    /// # Safety
    /// Elements `e..e + 8` lie in the panel; AVX2 and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, dead_code)]
    unsafe fn load(p: *const u8, e: usize) -> __m256 {
        unsafe { __LOAD__ }
    }

    /// `super::dense` for panels of `R` = 8, 16, 24 or 32 rows: the sums in `R / 8` registers
    /// per set, `U` sets over interleaved inputs, multiply-adds fused.
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, dead_code, clippy::needless_range_loop)]
    pub unsafe fn dense<const R: usize, const U: usize>(
        w: &[__W__],__SCALE_ARG__
        b: &[f32],
        x: &[f32],
        y: &mut [f32],
        f: impl Fn(Acc) -> Acc,
    ) {
        let n = x.len();
        let panels = w.chunks_exact(R * n__STEP__);
        __PANELS__
            let p = panel.as_ptr() as *const u8;
            let mut acc = [[unsafe { _mm256_setzero_ps() }; 4]; U];
            let mut i = 0;
            while i + U <= n {
                for u in 0..U {
                    let v = unsafe { _mm256_set1_ps(x[i + u]) };
                    for k in 0..R / 8 {
                        // SAFETY: column i + u < n of a panel of R · n weights.
                        acc[u][k] = unsafe { _mm256_fmadd_ps(load(p, (i + u) * R + 8 * k), v, acc[u][k]) };
                    }
                }
                i += U;
            }
            while i < n {
                let v = unsafe { _mm256_set1_ps(x[i]) };
                for k in 0..R / 8 {
                    // SAFETY: as above.
                    acc[0][k] = unsafe { _mm256_fmadd_ps(load(p, i * R + 8 * k), v, acc[0][k]) };
                }
                i += 1;
            }
            let mut sums = [0.0f32; 32];
            for k in 0..R / 8 {
                let mut t = acc[0][k];
                for a in &acc[1..] {
                    t = unsafe { _mm256_add_ps(t, a[k]) };
                }
                // SAFETY: 8 · k + 8 ≤ R ≤ 32.
                unsafe { _mm256_storeu_ps(sums.as_mut_ptr().add(8 * k), t) };
            }
            for j in 0..R {
                out[j] = f(bias[j] as Acc + __SCALE__sums[j]) as f32;
            }
        }
    }

    /// `super::dense_block` for panels of 16 or 32 rows: 16 rows at a time, two registers of
    /// sums per sample, six samples at a time (twelve registers), each pair of weight registers
    /// loaded once for the six, in tiles of 256 columns that stay in L1 for the whole block.
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, dead_code, clippy::needless_range_loop)]
    pub unsafe fn dense_block<const R: usize, const N: usize, const M: usize>(
        w: &[__W__],__SCALE_ARG__
        b: &[f32],
        x: [&[f32; N]; BLOCK],
        y: &mut [[f32; M]; BLOCK],
        first: usize,
        f: impl Fn(Acc) -> Acc,
    ) {
        for (p, (panel, bias)) in w.chunks_exact(R * N__STEP__).zip(b.chunks_exact(R)).enumerate() {
            let ptr = panel.as_ptr() as *const u8;
            for h in 0..R / 16 {
                // The 16 rows' weights go in tiles of 256 columns (16 KB, in L1 while all the
                // block's samples use them), six samples at a time with their sums in twelve
                // registers, kept in `sums` from one tile to the next.
                let mut sums = [[0.0f32; 16]; BLOCK];
                let mut start = 0;
                while start < N {
                    let end = (start + 256).min(N);
                    for g in (0..BLOCK).step_by(6) {
                        let mut acc = [[unsafe { _mm256_setzero_ps() }; 2]; 6];
                        for s in 0..6 {
                            // SAFETY: 16 floats into two registers.
                            unsafe {
                                acc[s][0] = _mm256_loadu_ps(sums[g + s].as_ptr());
                                acc[s][1] = _mm256_loadu_ps(sums[g + s].as_ptr().add(8));
                            }
                        }
                        for i in start..end {
                            // SAFETY: column i < N of a panel of R · N weights, rows 16·h..16·h + 16 ≤ R.
                            let (w0, w1) = unsafe { (load(ptr, i * R + 16 * h), load(ptr, i * R + 16 * h + 8)) };
                            for s in 0..6 {
                                let v = unsafe { _mm256_set1_ps(x[g + s][i]) };
                                acc[s][0] = unsafe { _mm256_fmadd_ps(w0, v, acc[s][0]) };
                                acc[s][1] = unsafe { _mm256_fmadd_ps(w1, v, acc[s][1]) };
                            }
                        }
                        for s in 0..6 {
                            // SAFETY: two registers into 16 floats.
                            unsafe {
                                _mm256_storeu_ps(sums[g + s].as_mut_ptr(), acc[s][0]);
                                _mm256_storeu_ps(sums[g + s].as_mut_ptr().add(8), acc[s][1]);
                            }
                        }
                    }
                    start = end;
                }
                for s in 0..BLOCK {
                    for j in 0..16 {
                        let r = 16 * h + j;
                        y[s][first + p * R + r] = f(bias[r] as Acc + __SCALE_BLOCK__sums[s][j]) as f32;
                    }
                }
            }
        }
    }
__ENTRIES__}
