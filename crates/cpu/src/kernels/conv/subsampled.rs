//! The columns of a 1×1 convolution with a stride (ResNet's downsampling shortcuts): B's row
//! `ci`, column `p` is the image's channel `ci` at output position `p`'s one input
//! `(oy·sh, ox·sw)`. That is im2col with a single tap and no padding, whose general packer
//! found each panel's part of a row by a call per 16 values (a division, the row's bounds,
//! then a strided loop): packing took 39 % of ResNet-18's 64 → 128 shortcut on one thread.
//! Here the task's source offsets are computed once and every row copies through them.

use super::ConvGeom;
use crate::kernels::packed::Pack;
use crate::kernels::Element;

/// One image's strided 1×1 columns for channels `c0..`, output positions `p0..p0 + width`.
pub(super) struct Subsampled<'a, T> {
    /// The image (all channels).
    img: &'a [T],
    /// Input values per channel.
    plane: usize,
    /// First channel (the group's).
    c0: usize,
    /// Each column's input within a channel's plane (inside it: the output shape was checked
    /// against the input's), computed once for the task's columns.
    offsets: Vec<usize>,
}

impl<'a, T> Subsampled<'a, T> {
    /// The packer for `g`'s output positions `p0..p0 + width`, where its kernel is 1×1 and
    /// unpadded (any stride or dilation).
    pub fn new(img: &'a [T], g: &ConvGeom, c0: usize, p0: usize, width: usize) -> Option<Self> {
        let one = [g.kh, g.kw] == [1, 1] && g.p.padding == [0, 0];
        let [sh, sw] = g.p.stride;
        one.then(|| Subsampled {
            img,
            plane: g.h * g.w,
            c0,
            offsets: (p0..p0 + width)
                .map(|p| (p / g.ow) * sh * g.w + (p % g.ow) * sw)
                .collect(),
        })
    }
}

impl<T: Element> Pack<T> for Subsampled<'_, T> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [T]) {
        let plane = self.plane;
        debug_assert_eq!(dst.len(), nc.div_ceil(nr) * kc * nr);
        let offsets = &self.offsets[j0..j0 + nc];
        for r in 0..kc {
            let at = (self.c0 + k0 + r) * plane;
            let src = &self.img[at..at + plane];
            for (p, offs) in offsets.chunks(nr).enumerate() {
                let row = &mut dst[p * kc * nr + r * nr..][..nr];
                for (d, &o) in row.iter_mut().zip(offs) {
                    *d = src[o];
                }
                row[offs.len()..].fill(T::zero());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Im2col;
    use super::*;
    use gradcam_core::Conv2dParams;

    /// The packed panels equal im2col's, value for value: strides 1–3 (unequal too), dilation,
    /// groups, odd planes, blocks starting past the first row and column, panels of 16 and 8.
    #[test]
    fn packs_what_im2col_packs() {
        let mut stride_2_3 = Conv2dParams::new(1, 0);
        stride_2_3.stride = [2, 3];
        let cases = [
            ([1, 16, 23, 23], [29, 16], Conv2dParams::new(2, 0)),
            ([1, 6, 17, 29], [10, 3], stride_2_3.with_groups(2)),
            (
                [1, 5, 13, 11],
                [7, 5],
                Conv2dParams::new(3, 0).with_dilation(2),
            ),
            ([1, 4, 9, 9], [3, 4], Conv2dParams::new(1, 0)),
        ];
        for (x, [k, cg], p) in cases {
            let out = p.output_shape(x, [k, cg, 1, 1], "x").unwrap();
            let g = ConvGeom::new(x, [k, cg, 1, 1], out, p);
            let img: Vec<f32> = (0..x.iter().product::<usize>()).map(|i| i as f32).collect();
            let plane = g.oh * g.ow;
            for gi in 0..p.groups {
                for (p0, k0, j0) in [(0, 0, 0), (3, 1, 5), (plane / 2, cg - 1, 1)] {
                    let (kc, nc) = (cg - k0, plane - p0 - j0);
                    for nr in [16, 8] {
                        let len = nc.div_ceil(nr) * kc * nr;
                        let (mut got, mut want) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                        let sub = Subsampled::new(&img, &g, gi * cg, p0, plane - p0)
                            .expect("1×1, unpadded");
                        sub.pack(k0, kc, j0, nc, nr, &mut got);
                        let im2col = Im2col {
                            img: &img,
                            g: &g,
                            c0: gi * cg,
                            p0,
                        };
                        im2col.pack(k0, kc, j0, nc, nr, &mut want);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{x:?} {p:?} group {gi} {p0} {k0} {j0} {nr}"
                        );
                    }
                }
            }
        }
        let padded = ConvGeom::new(
            [1, 2, 5, 5],
            [3, 2, 1, 1],
            [1, 3, 7, 7],
            Conv2dParams::new(1, 1),
        );
        assert!(Subsampled::new(&[0f32; 50], &padded, 0, 0, 49).is_none());
    }
}
