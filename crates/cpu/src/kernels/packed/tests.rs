use super::*;

fn naive(m: usize, k: usize, n: usize, a: &[f32], ars: usize, acs: usize, b: &[f32]) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * ars + p * acs] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    c
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let v = (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed.wrapping_mul(40503));
            (v >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// A packer that hides [`Pack::in_place`], so every panel is copied.
struct Copying<'a>(Strided<'a, f32>);

impl Pack<f32> for Copying<'_> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        self.0.pack(k0, kc, j0, nc, nr, dst)
    }
}

fn check(
    kernel: Option<Kernel<f32>>,
    (m, k, n): (usize, usize, usize),
    transposed: bool,
    kc: usize,
) {
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let (ars, acs) = if transposed { (1, m) } else { (k, 1) };
    let ldc = n + 3;
    let mut c = values(m * ldc, 3);
    let before = c.clone();
    let strided = || Strided {
        data: &b,
        off: 0,
        rs: n,
        cs: 1,
    };
    let want = naive(m, k, n, &a, ars, acs, &b);
    // B read in place (full panels one panel wide, or packed by the first row strip's kernel
    // calls: `run_packing`) and B packed by a pass of its own: the same sums, so the same
    // bits.
    let (direct, copying) = (strided(), Copying(strided()));
    let mut results: Vec<(bool, Vec<u32>)> = Vec::new();
    for (accumulate, pack) in [
        (false, &direct as &dyn Pack<f32>),
        (true, &direct),
        (false, &copying),
        (true, &copying),
    ] {
        assert!(direct.in_place(k, n).is_some() || k == 0);
        assert!(copying.in_place(k, n).is_none());
        c.copy_from_slice(&before);
        // SAFETY: sizes match the allocations; c is distinct.
        unsafe {
            gemm_with(
                kernel,
                m,
                k,
                n,
                a.as_ptr(),
                ars,
                acs,
                pack,
                Epilogue::plain(accumulate),
                c.as_mut_ptr(),
                ldc,
                kc,
            )
        };
        for i in 0..m {
            for j in 0..ldc {
                let got = c[i * ldc + j] as f64;
                let expect = if j >= n {
                    before[i * ldc + j] as f64
                } else if accumulate {
                    want[i * n + j] + before[i * ldc + j] as f64
                } else {
                    want[i * n + j]
                };
                assert!(
                    (got - expect).abs() <= 1e-5 * (1.0 + k as f64).sqrt(),
                    "{} m{m} k{k} n{n} t{transposed} acc{accumulate} kc{kc} ({i},{j}): {got} vs {expect}",
                    kernel.map_or("portable", |k| k.name)
                );
            }
        }
        let bits = c.iter().map(|v| v.to_bits()).collect();
        if let Some((_, first)) = results.iter().find(|(acc, _)| *acc == accumulate) {
            assert!(
                *first == bits,
                "{}: B in place and B packed differ (m{m} k{k} n{n} t{transposed} acc{accumulate} kc{kc})",
                kernel.map_or("portable", |k| k.name)
            );
        }
        results.push((accumulate, bits));
    }
}

/// [`gemm_with`] on a row-major A (`m × k`) and B's packer into C (`m × n`, rows `n` apart); a
/// residual in `epi` must be laid out as C.
fn run_gemm(
    kernel: Option<Kernel<f32>>,
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    pack: &dyn Pack<f32>,
    epi: Epilogue<'_, f32>,
    c: &mut [f32],
) {
    assert!(a.len() >= m * k && c.len() >= m * n);
    // SAFETY: A and C hold their values (asserted); C is distinct from A and B; the caller
    // lays a residual out as C.
    unsafe {
        gemm_with(
            kernel,
            m,
            k,
            n,
            a.as_ptr(),
            k,
            1,
            pack,
            epi,
            c.as_mut_ptr(),
            n,
            KC,
        )
    }
}

#[test]
fn every_kernel_matches_a_plain_product_on_awkward_sizes() {
    let mut kernels: Vec<Option<Kernel<f32>>> = f32_kernels().into_iter().map(Some).collect();
    kernels.push(None);
    for kernel in kernels {
        for &(m, k, n) in &[
            (1, 1, 1),
            (6, 3, 64),
            (7, 13, 65),
            (13, 257, 130),
            (5, 600, 1031),
            (19, 7, 17),
            (2, 0, 5),
            // B exactly one panel wide (AVX-512, AVX2), read in place by every row strip.
            (13, 300, 64),
            (13, 40, 16),
        ] {
            check(kernel, (m, k, n), false, KC);
            check(kernel, (m, k, n), true, KC);
        }
        // Depth blocks other than KC (a convolution's, `direct::depth_block`): uneven, and
        // of a single step.
        check(kernel, (13, 257, 130), false, 100);
        check(kernel, (7, 13, 65), true, 1);
        // Several row strips, depth blocks and column blocks at once, the second block's
        // leftover columns (10 of 16) in one more wide panel, partly masked.
        check(kernel, (13, 300, 538), false, KC);
    }
}

#[test]
fn the_default_kernel_is_the_fastest_available_unless_overridden() {
    if std::env::var_os("GRADCAM_CPU_KERNEL").is_none() {
        assert_eq!(
            f32_default().map(|k| k.name),
            f32_kernels().first().map(|k| k.name)
        );
    }
}

#[test]
fn the_epilogue_adds_the_bias_once_and_clamps_the_final_sums() {
    let mut kernels: Vec<Option<Kernel<f32>>> = f32_kernels().into_iter().map(Some).collect();
    kernels.push(None);
    // k = 600 spans three depth blocks: a bias added per block or a clamp of a partial sum
    // would show.
    for kernel in kernels {
        let (mut cut, mut total) = (0, 0);
        for &(m, k, n) in &[(7, 600, 70), (13, 5, 1031), (6, 257, 64), (1, 1, 17)] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let bias = values(m, 4);
            let (lo, hi) = (-0.05f32, 0.1f32);
            let want = naive(m, k, n, &a, k, 1, &b);
            let mut c = values(m * n, 3);
            let pack = Strided {
                data: &b,
                off: 0,
                rs: n,
                cs: 1,
            };
            let epi = Epilogue {
                accumulate: false,
                bias: Some(&bias),
                clamp: Some((lo, hi)),
                residual: None,
            };
            run_gemm(kernel, (m, k, n), &a, &pack, epi, &mut c);
            let mut clamped = 0;
            for i in 0..m {
                for j in 0..n {
                    let exact = want[i * n + j] + bias[i] as f64;
                    let expect = exact.clamp(lo as f64, hi as f64);
                    clamped += usize::from(exact != expect);
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - expect).abs() <= 1e-5 * (1.0 + k as f64).sqrt(),
                        "{} m{m} k{k} n{n} ({i},{j}): {got} vs {expect}",
                        kernel.map_or("portable", |k| k.name)
                    );
                }
            }
            cut += clamped;
            total += m * n;
        }
        assert!(
            cut > 0 && cut < total,
            "the clamp bounds cut some sums, not all"
        );
    }
}

#[test]
fn a_nan_sum_clamps_to_the_lower_bound_as_f32_max_does() {
    for kernel in f32_kernels() {
        let (m, k, n) = (3, 4, 20);
        let mut a = values(m * k, 1);
        a[k + 2] = f32::NAN;
        let b = values(k * n, 2);
        let mut c = vec![0f32; m * n];
        let pack = Strided {
            data: &b,
            off: 0,
            rs: n,
            cs: 1,
        };
        let epi = Epilogue {
            accumulate: false,
            bias: None,
            clamp: Some((0.0, 6.0)),
            residual: None,
        };
        run_gemm(Some(kernel), (m, k, n), &a, &pack, epi, &mut c);
        assert!(
            c[n..2 * n].iter().all(|&v| v == f32::NAN.max(0.0)),
            "{}",
            kernel.name
        );
        assert!(c.iter().all(|v| (0.0..=6.0).contains(v)));
    }
}

#[test]
fn b_is_read_in_place_only_within_its_slice() {
    let b = values(12, 1);
    let s = |off: usize, rs: usize| Strided {
        data: &b,
        off,
        rs,
        cs: 1,
    };
    assert!(s(0, 4).in_place(3, 4).is_some());
    assert!(s(1, 4).in_place(3, 4).is_none(), "one past the end");
    assert!(s(0, 4).in_place(4, 4).is_none());
    assert!(s(0, usize::MAX).in_place(3, 4).is_none(), "overflow");
    assert!(s(0, 4).in_place(0, 4).is_none());
}

#[test]
fn the_rows_and_packing_kernels_give_the_plain_kernels_bits() {
    // Leftover columns 1–3 after full panels (49 = 3·16 + 1; 561 = 512 + 49: in the second
    // column block), rows that are no multiple of eight or of 24, depths within one block,
    // across blocks and with a remainder of fewer than eight steps; every kind of store. (A
    // NaN's payload aside: none here.) And the full panels packed by the first row strip's
    // kernel calls (`run_packing`) give the bits of a packing pass, with every kind of store
    // (every kernel: the AVX-512 one has no rows kernel, but packs as it computes).
    for kernel in f32_kernels() {
        let narrow = Kernel {
            rows: None,
            ..kernel
        };
        let packing_pass = Kernel {
            run_packing: None,
            ..narrow
        };
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 64, 49),
            (29, 515, 34),
            (50, 256, 195),
            (24, 9, 3),
            (61, 300, 51),
            (9, 40, 561),
        ] {
            assert!(
                kernel.rows.is_none() || n % kernel.nr > 0 && n % kernel.nr <= kernel.rows_cols
            );
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let bias = values(m, 4);
            let residual = values(m * n, 5);
            let before = values(m * n, 3);
            let pack = Strided {
                data: &b,
                off: 0,
                rs: n,
                cs: 1,
            };
            let epilogues = [
                Epilogue::plain(false),
                Epilogue::plain(true),
                Epilogue {
                    accumulate: false,
                    bias: Some(&bias),
                    clamp: Some((-0.05, 0.1)),
                    residual: None,
                },
                Epilogue {
                    accumulate: false,
                    bias: Some(&bias),
                    clamp: Some((0.0, f32::MAX)),
                    residual: Some(residual.as_ptr()),
                },
            ];
            for (e, epi) in epilogues.into_iter().enumerate() {
                let run = |kernel: Kernel<f32>| {
                    let mut c = before.clone();
                    run_gemm(Some(kernel), (m, k, n), &a, &pack, epi, &mut c);
                    c
                };
                let (got, want) = (run(kernel), run(narrow));
                let (fused, unfused) = (run(narrow), run(packing_pass));
                assert!(
                    fused.iter().zip(&unfused).all(|(f, u)| f.to_bits() == u.to_bits()),
                    "{} m{m} k{k} n{n} epilogue {e}: packed by the first row strip and by a pass differ",
                    kernel.name
                );
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{} m{m} k{k} n{n} epilogue {e} ({}, {}): {g} vs {w}",
                        kernel.name,
                        i / n,
                        i % n
                    );
                }
            }
        }
    }
}

/// Every gather kernel against a plain sum over any run of its steps: from a channel's first
/// tap or a later one, to a channel's last or an earlier one, through one tap, a 3×3 kernel's
/// runs of adjacent taps, nine other taps and four; six rows and two, every column and fewer.
/// (`direct::forward` asks for blocks of whole channels only: the general contract stays
/// tested.)
#[test]
fn gather_kernels_take_any_run_of_steps() {
    let pp = 150;
    let image = values(6 * pp, 5);
    let runs: Vec<usize> = (0..9).map(|t| t / 3 * 12 + t % 3).collect();
    let spread: Vec<usize> = (0..9).map(|t| t / 3 * 24 + t % 3 * 2).collect();
    for kernel in f32_kernels() {
        let nr = kernel.nr;
        for taps in [vec![0], runs.clone(), spread.clone(), vec![0, 3, 17, 40]] {
            let kk = taps.len();
            let starts = if kk == 1 { vec![0] } else { vec![0, 1, kk - 1] };
            for first in starts {
                for steps in [1, kk - first, 2 * kk + 1, 4 * kk - first] {
                    for (rows, cols) in [(MR, nr), (2, nr - 3)] {
                        let b = values(steps * nr, 6);
                        // Row i's pointer: positions i, 2i (a stride of 2) into the first channel.
                        let rowp = |i: usize| image[2 * i.min(rows - 1)..].as_ptr();
                        let a = [rowp(0), rowp(1), rowp(2), rowp(3), rowp(4), rowp(5)];
                        let mut c = vec![0f32; MR * nr];
                        let store = Store {
                            accumulate: false,
                            bias: std::ptr::null(),
                            by_column: true,
                            transposed: std::ptr::null_mut(),
                            ldt: 0,
                            clamp: None,
                            residual: std::ptr::null(),
                        };
                        // SAFETY: the farthest read, 2·5 + 5·pp + 40, lies in the image (6
                        // channels); B holds `steps` rows of `nr`; C is MR × nr, rows nr apart.
                        unsafe {
                            (kernel.gather)(
                                &taps,
                                first,
                                steps,
                                &a,
                                pp,
                                b.as_ptr(),
                                c.as_mut_ptr(),
                                nr,
                                rows,
                                cols,
                                &store,
                            )
                        };
                        for i in 0..MR {
                            for j in 0..nr {
                                let want: f64 = (0..steps)
                                    .map(|s| {
                                        let (ci, t) = ((first + s) / kk, (first + s) % kk);
                                        let x = image[2 * i + ci * pp + taps[t]];
                                        x as f64 * b[s * nr + j] as f64
                                    })
                                    .sum();
                                let got = c[i * nr + j] as f64;
                                let (name, ok) = (kernel.name, i < rows && j < cols);
                                let msg = format!("{name} {kk} taps from {first}, {steps} steps, ({i}, {j}) of {rows} × {cols}: {got} vs {want}");
                                if ok {
                                    assert!((got - want).abs() <= 1e-5, "{msg}");
                                } else {
                                    assert_eq!(got, 0.0, "{msg}: written outside the tile");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A gather kernel's run of steps taken in two calls, the first's sums stored as they are and
/// the second continuing them (`gather_from`), gives the bits of one call: a 3×3 kernel's
/// steps split after one channel, two, all but one, or within a channel, from a channel's
/// first tap or a later one; six rows and two, every column and fewer (the carried tile's
/// other values NaN: never reaching the output); the final store with a bias and a clamp, or
/// transposed (each kernel that has it).
#[test]
fn gather_from_continues_sums_bit_for_bit() {
    let pp = 150;
    let image = values(6 * pp, 7);
    let taps: Vec<usize> = (0..9).map(|t| t / 3 * 12 + t % 3).collect();
    for kernel in f32_kernels() {
        let Some(from) = kernel.gather_from else {
            continue;
        };
        let nr = kernel.nr;
        let bias = values(nr, 8);
        for (first, steps) in [(0, 54), (0, 27), (4, 50)] {
            for split in [9 - first, 18 - first, steps - 9, 13] {
                for (rows, cols) in [(MR, nr), (2, nr - 3)] {
                    for transposed in [false, true] {
                        let b = values(steps * nr, 9);
                        let rowp = |i: usize| image[2 * i.min(rows - 1)..].as_ptr();
                        let a = [rowp(0), rowp(1), rowp(2), rowp(3), rowp(4), rowp(5)];
                        let raw = Store {
                            accumulate: false,
                            bias: std::ptr::null(),
                            by_column: true,
                            transposed: std::ptr::null_mut(),
                            ldt: rows,
                            clamp: None,
                            residual: std::ptr::null(),
                        };
                        let mut one = vec![f32::NAN; MR * nr];
                        let mut two = vec![f32::NAN; MR * nr];
                        let mut carried = vec![f32::NAN; MR * nr];
                        let last = |out: &mut Vec<f32>| Store {
                            bias: bias.as_ptr(),
                            clamp: Some((-0.5, 0.5)),
                            transposed: if transposed {
                                out.as_mut_ptr()
                            } else {
                                std::ptr::null_mut()
                            },
                            ..raw
                        };
                        let (one_store, two_store) = (last(&mut one), last(&mut two));
                        let (co, ct) = (one.as_mut_ptr(), two.as_mut_ptr());
                        let k = first % 9;
                        // SAFETY: the farthest read, 2·5 + 5·pp + 26, lies in the image; B
                        // holds `steps` rows of `nr`; C and the carried sums are MR × nr,
                        // rows nr apart (transposed, `cols` rows of `rows`).
                        unsafe {
                            (kernel.gather)(
                                &taps,
                                k,
                                steps,
                                &a,
                                pp,
                                b.as_ptr(),
                                co,
                                nr,
                                rows,
                                cols,
                                &one_store,
                            );
                            (kernel.gather)(
                                &taps,
                                k,
                                split,
                                &a,
                                pp,
                                b.as_ptr(),
                                carried.as_mut_ptr(),
                                nr,
                                rows,
                                cols,
                                &raw,
                            );
                            // The second call's A from the split's channel and tap.
                            let at = first + split;
                            let next = a.map(|p| p.wrapping_add(at / 9 * pp));
                            from(
                                carried.as_ptr(),
                                &taps,
                                at % 9,
                                steps - split,
                                &next,
                                pp,
                                b[split * nr..].as_ptr(),
                                ct,
                                nr,
                                rows,
                                cols,
                                &two_store,
                            );
                        }
                        let same = one
                            .iter()
                            .zip(&two)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        let name = kernel.name;
                        assert!(same, "{name} from {first}, {steps} steps split after {split}, {rows} × {cols}, transposed {transposed}");
                        let written = one.iter().filter(|v| !v.is_nan()).count();
                        assert_eq!(written, rows * cols, "{name}: the tile's values stored");
                    }
                }
            }
        }
    }
}

/// The gather kernels' transposed store (each filter's positions `ldt` apart, as a
/// convolution's output lies) gives the bits of their plain store followed by the residual sum
/// and the clamp, for every count of rows and of columns (a whole sixteen, fewer, more), with
/// partial sums, a bias or neither, a NaN among the values, positions `ldt` apart as tightly as
/// the rows allow (a plane of one position: `ldt` 1) or loosely; and writes nothing outside the
/// tile, guard values before and after the output included.
#[test]
fn the_transposed_store_gives_the_plain_stores_bits() {
    let (pp, steps, guard) = (40, 5, 24);
    let mut image = values(steps * pp, 3);
    image[pp + 2] = f32::NAN;
    for kernel in f32_kernels() {
        let nr = kernel.nr;
        let b = values(steps * nr, 4);
        let partial = values(MR * nr, 5);
        let bias = values(nr, 6);
        let mut counts: Vec<usize> = vec![1, 5, 8, 15, 16, 17, 31, 33, 48, 49, nr - 1, nr];
        counts.retain(|&c| c <= nr);
        for rows in 1..=MR {
            for ldt in [rows, 11] {
                let residual = values(nr * ldt, 7);
                for &cols in &counts {
                    for (accumulate, with_bias, res, clamp) in [
                        (false, true, false, None),
                        (false, false, false, None),
                        (true, false, false, None),
                        (false, true, true, Some((-0.2f32, 0.3f32))),
                        (true, false, true, Some((-0.2, 0.3))),
                        (false, false, true, None),
                        (false, true, false, Some((0.0, 6.0))),
                    ] {
                        let rowp = |i: usize| image[i.min(rows - 1)..].as_ptr();
                        let a = [rowp(0), rowp(1), rowp(2), rowp(3), rowp(4), rowp(5)];
                        let plain_store = Store {
                            accumulate,
                            bias: if with_bias {
                                bias.as_ptr()
                            } else {
                                std::ptr::null()
                            },
                            by_column: true,
                            transposed: std::ptr::null_mut(),
                            ldt,
                            clamp: None,
                            residual: std::ptr::null(),
                        };
                        // The gather kernel over one tap into C (MR × nr, rows nr apart) with
                        // `store`. SAFETY (of each call): the farthest read, 5 + 4·pp, lies in
                        // the image; B holds `steps` rows of `nr`; a transposed output holds
                        // nr filters, ldt apart.
                        let gather = |c: *mut f32, store: &Store<f32>| unsafe {
                            (kernel.gather)(
                                &[0],
                                0,
                                steps,
                                &a,
                                pp,
                                b.as_ptr(),
                                c,
                                nr,
                                rows,
                                cols,
                                store,
                            )
                        };
                        // The plain store into C (partial sums added, or the bias, or neither),
                        // then the residual and the clamp by hand.
                        let mut plain = partial.clone();
                        gather(plain.as_mut_ptr(), &plain_store);
                        let mut got = vec![1234.5f32; guard + nr * ldt + guard];
                        let mut s = plain_store;
                        s.transposed = got[guard..].as_mut_ptr();
                        s.clamp = clamp;
                        if res {
                            s.residual = residual.as_ptr();
                        }
                        // C is read (accumulating), not written.
                        let c = partial.clone();
                        gather(c.as_ptr() as *mut f32, &s);
                        for (at, &g) in got.iter().enumerate() {
                            let inside = (guard..guard + nr * ldt).contains(&at);
                            let (j, i) = (
                                (at.wrapping_sub(guard)) / ldt,
                                (at.wrapping_sub(guard)) % ldt,
                            );
                            let want = if inside && i < rows && j < cols {
                                let mut v = plain[i * nr + j];
                                if res {
                                    v += residual[j * ldt + i];
                                }
                                clamp.map_or(v, |(lo, hi)| v.max(lo).min(hi))
                            } else {
                                1234.5
                            };
                            assert_eq!(
                                g.to_bits(),
                                want.to_bits(),
                                "{} {rows} × {cols}, ldt {ldt}, acc {accumulate} bias {with_bias} \
                                 res {res} {clamp:?}: value {at} ({g} vs {want})",
                                kernel.name,
                            );
                        }
                    }
                }
            }
        }
    }
}
