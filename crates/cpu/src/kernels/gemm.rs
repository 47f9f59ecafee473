//! A bounds-checked front to the strided GEMM.

use super::Element;

/// A read-only strided matrix view: element `(i, j)` is `data[off + i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    /// Backing slice.
    pub data: &'a [T],
    /// Offset of element (0, 0).
    pub off: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major matrix with `cols` columns starting at `off`.
    pub fn rows(data: &'a [T], off: usize, cols: usize) -> Self {
        Mat {
            data,
            off,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns starting at `off`.
    pub fn rows_t(data: &'a [T], off: usize, cols: usize) -> Self {
        Mat {
            data,
            off,
            rs: 1,
            cs: cols,
        }
    }
    fn check(&self, r: usize, c: usize) {
        if r > 0 && c > 0 {
            let last = self.off + (r - 1) * self.rs + (c - 1) * self.cs;
            assert!(last < self.data.len(), "gemm operand out of bounds");
        }
    }
}

/// A mutable strided matrix view.
pub struct MatMut<'a, T> {
    /// Backing slice.
    pub data: &'a mut [T],
    /// Offset of element (0, 0).
    pub off: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A row-major matrix with row stride `rs` starting at `off`.
    pub fn rows(data: &'a mut [T], off: usize, rs: usize) -> Self {
        MatMut {
            data,
            off,
            rs,
            cs: 1,
        }
    }
}

/// `C (m×n) = A (m×k) · B (k×n) + β·C`.
pub fn gemm<T: Element>(m: usize, k: usize, n: usize, a: Mat<T>, b: Mat<T>, beta: T, c: MatMut<T>) {
    if m == 0 || n == 0 {
        return;
    }
    a.check(m, k);
    b.check(k, n);
    let last = c.off + (m - 1) * c.rs + (n - 1) * c.cs;
    assert!(last < c.data.len(), "gemm output out of bounds");
    // SAFETY: all three operands were bounds-checked above; `c` is a distinct &mut borrow.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            T::one(),
            a.data.as_ptr().add(a.off),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.off),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr().add(c.off),
            c.rs as isize,
            c.cs as isize,
        )
    }
}
