//! Seeded random weights in torchvision's state-dict layout, for benchmarks and for explaining
//! an architecture without a weights file. Convolutions and linear layers are He-scaled uniform,
//! batch norms the identity, so activations keep their range through deep networks.

use crate::Weights;
use gradcam_core::{Error, HostTensor, Result, SplitMix64};
use std::collections::BTreeMap;

struct Gen {
    t: BTreeMap<String, HostTensor>,
    rng: SplitMix64,
}

impl Gen {
    fn uniform(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (self.rng.unit() * 2.0 - 1.0) * scale)
            .collect()
    }

    fn put(&mut self, name: String, dims: &[usize], data: Vec<f32>) {
        self.t.insert(
            name,
            HostTensor::new(dims.to_vec(), data).expect("sizes agree"),
        );
    }

    /// Conv `name` `[k, c, kh, kh]`, with a zero bias when `bias`.
    fn conv(&mut self, name: &str, k: usize, c: usize, kh: usize, bias: bool) {
        let scale = (6.0 / (c * kh * kh) as f32).sqrt();
        let w = self.uniform(k * c * kh * kh, scale);
        self.put(format!("{name}.weight"), &[k, c, kh, kh], w);
        if bias {
            self.put(format!("{name}.bias"), &[k], vec![0.0; k]);
        }
    }

    /// Identity batch norm over `c` channels.
    fn bn(&mut self, name: &str, c: usize) {
        for (s, v) in [
            ("weight", 1.0),
            ("bias", 0.0),
            ("running_mean", 0.0),
            ("running_var", 1.0),
        ] {
            self.put(format!("{name}.{s}"), &[c], vec![v; c]);
        }
    }

    fn linear(&mut self, name: &str, o: usize, i: usize) {
        let w = self.uniform(o * i, (3.0 / i as f32).sqrt());
        self.put(format!("{name}.weight"), &[o, i], w);
        self.put(format!("{name}.bias"), &[o], vec![0.0; o]);
    }
}

/// A torchvision-shaped state dict of `arch` (a named variant: resnet18..152, vgg11..19 (`_bn` too),
/// alexnet, squeezenet1_0/1_1, mobilenet_v2 at width 1.0, the demo CNN) with `classes` outputs.
pub fn random_weights(arch: &str, classes: usize, seed: u64) -> Result<Weights> {
    let mut g = Gen {
        t: BTreeMap::new(),
        rng: SplitMix64::new(seed),
    };
    match arch {
        "resnet18" => resnet(&mut g, false, [2, 2, 2, 2], classes),
        "resnet34" => resnet(&mut g, false, [3, 4, 6, 3], classes),
        "resnet50" => resnet(&mut g, true, [3, 4, 6, 3], classes),
        "resnet101" => resnet(&mut g, true, [3, 4, 23, 3], classes),
        "resnet152" => resnet(&mut g, true, [3, 8, 36, 3], classes),
        a if a.starts_with("vgg") => vgg(&mut g, a, classes)?,
        "alexnet" => alexnet(&mut g, classes),
        "squeezenet1_0" | "squeezenet1_1" => squeezenet(&mut g, arch == "squeezenet1_0", classes),
        "mobilenet_v2" => mobilenet_v2(&mut g, classes),
        "demo" => demo(&mut g, classes),
        other => {
            return Err(Error::Unsupported(format!(
                "no random weights for `{other}`; name a variant: resnet18..152, vgg11..19[_bn], alexnet, squeezenet1_0/1_1, mobilenet_v2, demo"
            )))
        }
    }
    Ok(Weights::from_map(
        g.t,
        &format!("random {arch} (seed {seed})"),
    ))
}

fn resnet(g: &mut Gen, bottleneck: bool, blocks: [usize; 4], classes: usize) {
    g.conv("conv1", 64, 3, 7, false);
    g.bn("bn1", 64);
    let exp = if bottleneck { 4 } else { 1 };
    let mut inp = 64;
    for (l, (&n, w)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{b}", l + 1);
            if bottleneck {
                g.conv(&format!("{p}.conv1"), w, inp, 1, false);
                g.bn(&format!("{p}.bn1"), w);
                g.conv(&format!("{p}.conv2"), w, w, 3, false);
                g.bn(&format!("{p}.bn2"), w);
                g.conv(&format!("{p}.conv3"), w * 4, w, 1, false);
                g.bn(&format!("{p}.bn3"), w * 4);
            } else {
                g.conv(&format!("{p}.conv1"), w, inp, 3, false);
                g.bn(&format!("{p}.bn1"), w);
                g.conv(&format!("{p}.conv2"), w, w, 3, false);
                g.bn(&format!("{p}.bn2"), w);
            }
            if b == 0 && (l > 0 || inp != w * exp) {
                g.conv(&format!("{p}.downsample.0"), w * exp, inp, 1, false);
                g.bn(&format!("{p}.downsample.1"), w * exp);
            }
            inp = w * exp;
        }
    }
    g.linear("fc", classes, 512 * exp);
}

fn vgg(g: &mut Gen, arch: &str, classes: usize) -> Result<()> {
    const M: usize = 0;
    let cfg: &[usize] = match arch.trim_end_matches("_bn") {
        "vgg11" => &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
        "vgg13" => &[
            64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M,
        ],
        "vgg16" => &[
            64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
        ],
        "vgg19" => &[
            64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512,
            512, M,
        ],
        _ => {
            return Err(Error::Unsupported(format!(
                "no random weights for `{arch}`"
            )))
        }
    };
    let bn = arch.ends_with("_bn");
    let (mut idx, mut c) = (0, 3);
    for &v in cfg {
        if v == M {
            idx += 1;
            continue;
        }
        g.conv(&format!("features.{idx}"), v, c, 3, true);
        if bn {
            g.bn(&format!("features.{}", idx + 1), v);
        }
        idx += if bn { 3 } else { 2 };
        c = v;
    }
    g.linear("classifier.0", 4096, 512 * 7 * 7);
    g.linear("classifier.3", 4096, 4096);
    g.linear("classifier.6", classes, 4096);
    Ok(())
}

/// The demo CNN at its trained widths (16, 32, 64, 64).
fn demo(g: &mut Gen, classes: usize) {
    let widths = [3, 16, 32, 64, 64];
    for i in 1..=4 {
        g.conv(&format!("conv{i}"), widths[i], widths[i - 1], 3, true);
    }
    g.linear("fc", classes, widths[4]);
}

fn alexnet(g: &mut Gen, classes: usize) {
    for (i, k, c, kh) in [
        (0, 64, 3, 11),
        (3, 192, 64, 5),
        (6, 384, 192, 3),
        (8, 256, 384, 3),
        (10, 256, 256, 3),
    ] {
        g.conv(&format!("features.{i}"), k, c, kh, true);
    }
    g.linear("classifier.1", 4096, 256 * 6 * 6);
    g.linear("classifier.4", 4096, 4096);
    g.linear("classifier.6", classes, 4096);
}

fn squeezenet(g: &mut Gen, v1_0: bool, classes: usize) {
    let fires: [(usize, usize, usize, usize); 8] = [
        (0, 16, 64, 64),
        (128, 16, 64, 64),
        (128, 32, 128, 128),
        (256, 32, 128, 128),
        (256, 48, 192, 192),
        (384, 48, 192, 192),
        (384, 64, 256, 256),
        (512, 64, 256, 256),
    ];
    let (stem, idx): (usize, [usize; 8]) = if v1_0 {
        (96, [3, 4, 5, 7, 8, 9, 10, 12])
    } else {
        (64, [3, 4, 6, 7, 9, 10, 11, 12])
    };
    g.conv("features.0", stem, 3, if v1_0 { 7 } else { 3 }, true);
    for (f, &(inp, s, e1, e3)) in idx.iter().zip(&fires) {
        let inp = if inp == 0 { stem } else { inp };
        g.conv(&format!("features.{f}.squeeze"), s, inp, 1, true);
        g.conv(&format!("features.{f}.expand1x1"), e1, s, 1, true);
        g.conv(&format!("features.{f}.expand3x3"), e3, s, 3, true);
    }
    g.conv("classifier.1", classes, 512, 1, true);
}

fn mobilenet_v2(g: &mut Gen, classes: usize) {
    g.conv("features.0.0", 32, 3, 3, false);
    g.bn("features.0.1", 32);
    let settings = [
        (1, 16, 1),
        (6, 24, 2),
        (6, 32, 3),
        (6, 64, 4),
        (6, 96, 3),
        (6, 160, 3),
        (6, 320, 1),
    ];
    let (mut inp, mut i) = (32, 1);
    for (t, c, n) in settings {
        for _ in 0..n {
            let p = format!("features.{i}.conv");
            let hidden = inp * t;
            let mut j = 0;
            if t != 1 {
                g.conv(&format!("{p}.0.0"), hidden, inp, 1, false);
                g.bn(&format!("{p}.0.1"), hidden);
                j = 1;
            }
            g.conv(&format!("{p}.{j}.0"), hidden, 1, 3, false);
            g.bn(&format!("{p}.{j}.1"), hidden);
            g.conv(&format!("{p}.{}", j + 1), c, hidden, 1, false);
            g.bn(&format!("{p}.{}", j + 2), c);
            inp = c;
            i += 1;
        }
    }
    g.conv("features.18.0", 1280, 320, 1, false);
    g.bn("features.18.1", 1280);
    g.linear("classifier.1", classes, 1280);
}

#[cfg(test)]
mod tests {
    use super::random_weights;

    #[test]
    fn every_named_variant_builds_from_its_random_weights() {
        for arch in crate::arch::ARCHITECTURES
            .iter()
            .filter(|a| **a != "resnet")
        {
            let w = random_weights(arch, 7, 1).unwrap_or_else(|e| panic!("{arch}: {e}"));
            let g = crate::arch::build(arch, &w).unwrap_or_else(|e| panic!("{arch}: {e}"));
            let shapes = g
                .infer_shapes(&gradcam_core::Shape::new([1, 3, 224, 224]))
                .unwrap();
            assert_eq!(shapes[g.output().0].dims(), [1, 7], "{arch}");
        }
        assert!(random_weights("resnet", 7, 1).is_err());
    }
}
