
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

    /// Asks for the cache line holding byte `e · __BYTES__` of `p` to be brought into L2: a hint,
    /// which never faults, so the address may lie anywhere (it is computed without `add`'s rules).
    #[inline(always)]
    #[allow(unused_unsafe, dead_code, clippy::identity_op)]
    unsafe fn prefetch(p: *const u8, e: usize) {
        // SAFETY: a prefetch reads nothing the program sees; SSE is available.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(__BYTES__ * e) as *const i8) }
    }

    /// `super::dense` for panels of `R` = 8 or 16 rows: two 16-row panels at a time (four
    /// registers of sums per set, read from two streams) while two are left, else one panel in
    /// `U` sets over interleaved inputs; multiply-adds fused.
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
        // A last panel may be filled up with rows of zeros: only its real rows are written.
        let count = b.len().div_ceil(R);
        let mut p = 0;
        while p < count {
            let c = if R == 16 && p + 1 < count { 2 } else { 1 };
            let panels = &w[p * R * n__STEP__..(p + c) * R * n__STEP__];
            let ptr = panels.as_ptr() as *const u8;
            // SAFETY: `panels` holds `c` panels of R · n weights; the caller's features.
            let sums = unsafe {
                if c == 2 {
                    pass::<R, 2, 2>(ptr, x)
                } else {
                    pass::<R, 1, U>(ptr, x)
                }
            };
            let rows = p * R..((p + c) * R).min(b.len());
            let (bias, out) = (&b[rows.clone()], &mut y[rows.clone()]);__SCALE_ROWS__
            for r in 0..rows.len() {
                out[r] = f(bias[r] as Acc + __SCALE_ROW__sums[r]) as f32;
            }
            p += c;
        }
    }

    /// The sums of `C` consecutive panels of `R` rows over the inputs `x`: register `k` of panel
    /// `c` holds rows `8k..8k + 8` of that panel, read from element `c·R·n + i·R + 8k`.
    ///
    /// # Safety
    /// `p` holds `C · R · x.len()` weights; AVX2, FMA and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, clippy::needless_range_loop)]
    unsafe fn pass<const R: usize, const C: usize, const U: usize>(p: *const u8, x: &[f32]) -> [f32; 32] {
        let n = x.len();
        let mut acc = [[unsafe { _mm256_setzero_ps() }; 4]; U];
        let mut i = 0;
        while i + U <= n {
            for u in 0..U {
                let v = unsafe { _mm256_set1_ps(x[i + u]) };
                for c in 0..C {
                    for k in 0..R / 8 {
                        // SAFETY: column i + u < n of panel c < C.
                        acc[u][c * (R / 8) + k] =
                            unsafe { _mm256_fmadd_ps(load(p, c * R * n + (i + u) * R + 8 * k), v, acc[u][c * (R / 8) + k]) };
                    }
                }
            }
            i += U;
        }
        while i < n {
            let v = unsafe { _mm256_set1_ps(x[i]) };
            for c in 0..C {
                for k in 0..R / 8 {
                    // SAFETY: as above.
                    acc[0][c * (R / 8) + k] =
                        unsafe { _mm256_fmadd_ps(load(p, c * R * n + i * R + 8 * k), v, acc[0][c * (R / 8) + k]) };
                }
            }
            i += 1;
        }
        let mut sums = [0.0f32; 32];
        for k in 0..C * R / 8 {
            let mut t = acc[0][k];
            for a in &acc[1..] {
                t = unsafe { _mm256_add_ps(t, a[k]) };
            }
            // SAFETY: 8 · k + 8 ≤ C · R ≤ 32.
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr().add(8 * k), t) };
        }
        sums
    }

    /// `super::dense_block` for panels of 8 or 16 rows, the block's first `m` samples, six at a
    /// time and the last one to five together (no sample computed for nothing): per panel and
    /// group, one or two registers of sums per sample (twelve registers for 16 rows and six
    /// samples), each weight register loaded once for the group, the panel read from memory
    /// once for the block (the later groups find it in cache; the last one meanwhile asks for
    /// the next panel). With `P` = `N` the first panel also lays the groups of six side by side
    /// per column, for the others to read as one stream; with `P` = 0 (and for the last few
    /// samples) every panel reads the samples where they are (the caller's choice: see where it
    /// calls this).
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, dead_code, clippy::needless_range_loop, clippy::identity_op, clippy::too_many_arguments)]
    pub unsafe fn dense_block<const R: usize, const N: usize, const M: usize, const P: usize>(
        w: &[__W__],__SCALE_ARG__
        b: &[f32],
        x: [&[f32; N]; BLOCK],
        y: &mut [[f32; M]; BLOCK],
        first: usize,
        m: usize,
        f: impl Fn(Acc) -> Acc,
    ) {
        // Whole groups of six, then the rest together: BLOCK is a multiple of six (asserted
        // here, written so for the Rust versions before `is_multiple_of`), so a rest is a group
        // g < BLOCK / 6 of its own.
        const _: () = assert!(BLOCK / 6 * 6 == BLOCK);
        let m = m.min(BLOCK);
        let (whole, rest) = (m / 6, m % 6);
        let groups = whole + usize::from(rest > 0);
        let pack = P == N;
        // The inputs six samples side by side per column, written as the first panel reads them
        // (when `pack`), read by the others; never read before it is written. Empty unless
        // `pack` (no stack for it).
        let mut xs = core::mem::MaybeUninit::<[[[f32; 6]; P]; BLOCK / 6]>::uninit();
        // A last panel may be filled up with rows of zeros: only its real rows are written.
        let count = b.len().div_ceil(R);
        for p in 0..count {
            let ptr = w[p * R * N__STEP__..(p + 1) * R * N__STEP__].as_ptr() as *const u8;
            // Past the last panel the hint is asked for memory nobody reads: it never faults.
            let next = ptr.wrapping_add(__BYTES__ * R * N);
            // Sliced first, so that the stores have no bounds checks and vectorise.
            let rows = p * R..((p + 1) * R).min(b.len());
            let bias = &b[rows.clone()];__SCALE_ROWS__
            for g in 0..groups {
                // Samples of this group: six, or the rest in the last one.
                let n = if g < whole { 6 } else { rest };
                // g < BLOCK / 6, so all six places are in the block (past the rest, unread).
                let rows_in: [*const f32; 6] = core::array::from_fn(|s| x[6 * g + s].as_ptr());
                // SAFETY: group g < BLOCK / 6 of `xs`, whose 6 · P floats start there.
                let xg = unsafe { (xs.as_mut_ptr() as *mut f32).add(6 * P * g) };
                // The last group asks for the next panel: the block's earlier groups find the
                // panel in cache, the next block's first group finds the next one.
                let prefetch = g + 1 == groups && p + 1 < count;
                // Only whole groups are laid side by side.
                let mode = match (pack && n == 6, p) {
                    (false, _) => ROWS,
                    (true, 0) => PACK,
                    (true, _) => PACKED,
                };
                // SAFETY: the panel holds R · N weights, each of the first `n` of `rows_in` N
                // inputs; with `pack` (P = N) `xg` has 6 · N floats, written by the first panel
                // (PACK) before the others read them (PACKED) — only whole groups, and a group
                // has the same samples on every panel —, and without it (ROWS) it is not touched;
                // the caller's features.
                let sums = unsafe {
                    match (n, mode, prefetch) {
                        (6, ROWS, false) => group::<R, N, false, ROWS, 6>(ptr, next, rows_in, xg),
                        (6, ROWS, true) => group::<R, N, true, ROWS, 6>(ptr, next, rows_in, xg),
                        (6, PACK, _) => group::<R, N, false, PACK, 6>(ptr, next, rows_in, xg),
                        (6, _, false) => group::<R, N, false, PACKED, 6>(ptr, next, rows_in, xg),
                        (6, _, true) => group::<R, N, true, PACKED, 6>(ptr, next, rows_in, xg),
                        (5, _, false) => group::<R, N, false, ROWS, 5>(ptr, next, rows_in, xg),
                        (5, _, true) => group::<R, N, true, ROWS, 5>(ptr, next, rows_in, xg),
                        (4, _, false) => group::<R, N, false, ROWS, 4>(ptr, next, rows_in, xg),
                        (4, _, true) => group::<R, N, true, ROWS, 4>(ptr, next, rows_in, xg),
                        (3, _, false) => group::<R, N, false, ROWS, 3>(ptr, next, rows_in, xg),
                        (3, _, true) => group::<R, N, true, ROWS, 3>(ptr, next, rows_in, xg),
                        (2, _, false) => group::<R, N, false, ROWS, 2>(ptr, next, rows_in, xg),
                        (2, _, true) => group::<R, N, true, ROWS, 2>(ptr, next, rows_in, xg),
                        (1, _, false) => group::<R, N, false, ROWS, 1>(ptr, next, rows_in, xg),
                        (1, _, true) => group::<R, N, true, ROWS, 1>(ptr, next, rows_in, xg),
                        _ => unreachable!("a group has one to six samples"),
                    }
                };
                for s in 0..n {
                    let out = &mut y[6 * g + s][first + rows.start..first + rows.end];
                    for r in 0..rows.len() {
                        out[r] = f(bias[r] as Acc + __SCALE_ROW__sums[s][r]) as f32;
                    }
                }
            }
        }
    }

    /// Where `group` reads its inputs: the six samples' vectors; those, also writing them side
    /// by side; the side-by-side copy.
    const ROWS: u8 = 0;
    const PACK: u8 = 1;
    const PACKED: u8 = 2;

    /// One panel of `R` = 8 or 16 rows times `S` ≤ 6 samples: the sums of each sample's rows
    /// (the first `S` of the six), kept in `R / 8` registers per sample. The inputs come from
    /// the samples' vectors (the first `S` of `rows`) with `MODE` `ROWS` or `PACK` (which also
    /// writes them side by side at `xg`; six samples only), from `xg` with `PACKED`; with
    /// `PREFETCH` the next panel (at `next`) is asked for as this one is read.
    ///
    /// # Safety
    /// `p` holds `R · N` weights, each of the first `S` of `rows` `N` floats, `xg` room for
    /// `6 · N` (written, when `PACKED` reads it); AVX2, FMA and F16C are available.
    #[inline(always)]
    #[allow(unused_unsafe, clippy::needless_range_loop)]
    unsafe fn group<const R: usize, const N: usize, const PREFETCH: bool, const MODE: u8, const S: usize>(
        p: *const u8,
        next: *const u8,
        rows: [*const f32; 6],
        xg: *mut f32,
    ) -> [[f32; 16]; 6] {
        let mut acc = [[unsafe { _mm256_setzero_ps() }; 2]; S];
        for i in 0..N {
            if PREFETCH {
                // SAFETY: a hint (see `prefetch`).
                unsafe { prefetch(next, i * R) };
            }
            // SAFETY: column i < N of the panel; the second register only for 16 rows.
            let w0 = unsafe { load(p, i * R) };
            let w1 = if R == 16 { unsafe { load(p, i * R + 8) } } else { w0 };
            for s in 0..S {
                // SAFETY: input i < N of sample s, and place 6 · i + s < 6 · N of `xg`.
                let v = unsafe {
                    match MODE {
                        ROWS => _mm256_broadcast_ss(&*rows[s].add(i)),
                        PACK => {
                            let v = _mm256_broadcast_ss(&*rows[s].add(i));
                            _mm_store_ss(xg.add(6 * i + s), _mm256_castps256_ps128(v));
                            v
                        }
                        _ => _mm256_broadcast_ss(&*xg.add(6 * i + s)),
                    }
                };
                acc[s][0] = unsafe { _mm256_fmadd_ps(w0, v, acc[s][0]) };
                if R == 16 {
                    acc[s][1] = unsafe { _mm256_fmadd_ps(w1, v, acc[s][1]) };
                }
            }
        }
        let mut sums = [[0.0f32; 16]; 6];
        for s in 0..S {
            // SAFETY: two registers into 16 floats.
            unsafe {
                _mm256_storeu_ps(sums[s].as_mut_ptr(), acc[s][0]);
                _mm256_storeu_ps(sums[s].as_mut_ptr().add(8), acc[s][1]);
            }
        }
        sums
    }
__ENTRIES__}
