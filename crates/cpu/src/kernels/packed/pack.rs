//! Packing the right-hand operand into panels.

use crate::kernels::Element;

/// Supplies rows `k0..k0+kc`, columns `j0..j0+nc` of the right-hand operand B in panels of
/// `nr` columns: element `(k0 + r, j0 + j)` goes to `dst[(j / nr)·kc·nr + r·nr + j % nr]`,
/// and the last panel's columns past `nc` are zero. `dst` holds exactly `⌈nc/nr⌉·kc·nr`.
pub trait Pack<T>: Sync {
    /// Packs one block.
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [T]);
    /// B itself, when its rows are contiguous: element `(i, j)` at `ptr + i·ld + j`, every
    /// `i < k`, `j < n` inside the memory the packer reads (an implementation must check it:
    /// the GEMM reads full panels through the pointer). Full panels are then read in place
    /// by the first row strip's kernel calls, which copy them into the packed block as they
    /// compute (`Kernel::run_packing`); by every row strip where B's rows are one panel wide.
    fn in_place(&self, _k: usize, _n: usize) -> Option<(*const T, usize)> {
        None
    }
}

/// Packs row by row: `row(r, j0, out)` fills `out` (length `nc`) with row `r`'s columns
/// `j0..j0+nc`; the rows are then laid out in panels.
pub fn pack_rows<T: Element>(
    k0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    dst: &mut [T],
    mut row: impl FnMut(usize, usize, &mut [T]),
) {
    let panels = nc.div_ceil(nr);
    debug_assert_eq!(dst.len(), panels * kc * nr);
    // Each panel's part of a row straight into place (no row buffer to copy from); the last
    // panel's columns past `nc` zero.
    for r in 0..kc {
        for p in 0..panels {
            let cols = nr.min(nc - p * nr);
            let at = p * kc * nr + r * nr;
            row(k0 + r, j0 + p * nr, &mut dst[at..at + cols]);
            dst[at + cols..at + nr].fill(T::zero());
        }
    }
}

/// A strided matrix as a packer: element `(i, j)` at `data[off + i·rs + j·cs]`.
pub struct Strided<'a, T> {
    /// Backing slice.
    pub data: &'a [T],
    /// Offset of element (0, 0).
    pub off: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<T: Element> Pack<T> for Strided<'_, T> {
    fn in_place(&self, k: usize, n: usize) -> Option<(*const T, usize)> {
        // Element (k − 1, n − 1), the last one read, inside the slice (else: packed, whose
        // indexing checks every element).
        let last = (k.checked_sub(1)?)
            .checked_mul(self.rs)?
            .checked_add(self.off)?
            .checked_add(n.checked_sub(1)?)?;
        (self.cs == 1 && last < self.data.len())
            .then(|| (self.data.as_ptr().wrapping_add(self.off), self.rs))
    }
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [T]) {
        if self.cs == 1 {
            return pack_contiguous(self, k0, kc, j0, nc, nr, dst);
        }
        pack_rows(k0, kc, j0, nc, nr, dst, |r, j0, out| {
            let start = self.off + r * self.rs + j0 * self.cs;
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.data[start + j * self.cs];
            }
        });
    }
}

/// [`Strided::pack`] for contiguous rows: each row's columns copied panel by panel, a full
/// panel's part of a row (16 or 64 values: the micro-kernels' widths) as one fixed-size copy.
/// Through `pack_rows`, each was a call to `memcpy`, whose overhead was most of the work at 16
/// values (6 % of ResNet-50's Guided Grad-CAM with the AVX2 kernel).
fn pack_contiguous<T: Element>(
    s: &Strided<'_, T>,
    k0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    dst: &mut [T],
) {
    let panels = nc.div_ceil(nr);
    debug_assert_eq!(dst.len(), panels * kc * nr);
    for r in 0..kc {
        let start = s.off + (k0 + r) * s.rs + j0;
        let row = &s.data[start..start + nc];
        for (p, src) in row.chunks(nr).enumerate() {
            let at = p * kc * nr + r * nr;
            let out = &mut dst[at..at + nr];
            match (nr, src.len()) {
                (16, 16) => copy_fixed::<T, 16>(src, out),
                (64, 64) => copy_fixed::<T, 64>(src, out),
                (_, cols) => {
                    out[..cols].copy_from_slice(src);
                    out[cols..].fill(T::zero());
                }
            }
        }
    }
}

/// Copies `N` values (`src` and `dst` hold exactly `N`) as one fixed-size copy.
#[inline(always)]
fn copy_fixed<T: Copy, const N: usize>(src: &[T], dst: &mut [T]) {
    if let (Ok(s), Ok(d)) = (<&[T; N]>::try_from(src), <&mut [T; N]>::try_from(dst)) {
        *d = *s;
    }
}
