//! Shared by the benchmarks: the backends present and seeded random tensors and models.
#![allow(dead_code)]

use gradcam::core::HostTensor;
use gradcam::{arch, Graph, Weights};
use std::collections::BTreeMap;

/// SplitMix64 values in [-1, 1).
pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A torchvision-shaped ResNet-50 state dict with seeded random weights (He-scaled convs, unit
/// batch norms), so that activations keep a sensible range through 50 layers.
pub fn resnet50() -> Graph {
    let mut t: BTreeMap<String, HostTensor> = BTreeMap::new();
    let mut seed = 1u64;
    let mut conv =
        |t: &mut BTreeMap<String, HostTensor>, name: &str, k: usize, c: usize, kh: usize| {
            seed += 1;
            let scale = (6.0 / (c * kh * kh) as f32).sqrt();
            let v = random(k * c * kh * kh, seed, scale);
            t.insert(
                format!("{name}.weight"),
                HostTensor::new([k, c, kh, kh], v).unwrap(),
            );
        };
    let bn = |t: &mut BTreeMap<String, HostTensor>, name: &str, c: usize| {
        for (s, v) in [
            ("weight", 1.0),
            ("bias", 0.0),
            ("running_mean", 0.0),
            ("running_var", 1.0),
        ] {
            t.insert(
                format!("{name}.{s}"),
                HostTensor::new([c], vec![v; c]).unwrap(),
            );
        }
    };
    conv(&mut t, "conv1", 64, 3, 7);
    bn(&mut t, "bn1", 64);
    let mut inp = 64;
    for (l, (&blocks, &w)) in [3, 4, 6, 3].iter().zip(&[64, 128, 256, 512]).enumerate() {
        for b in 0..blocks {
            let p = format!("layer{}.{b}", l + 1);
            conv(&mut t, &format!("{p}.conv1"), w, inp, 1);
            bn(&mut t, &format!("{p}.bn1"), w);
            conv(&mut t, &format!("{p}.conv2"), w, w, 3);
            bn(&mut t, &format!("{p}.bn2"), w);
            conv(&mut t, &format!("{p}.conv3"), w * 4, w, 1);
            bn(&mut t, &format!("{p}.bn3"), w * 4);
            if b == 0 {
                conv(&mut t, &format!("{p}.downsample.0"), w * 4, inp, 1);
                bn(&mut t, &format!("{p}.downsample.1"), w * 4);
            }
            inp = w * 4;
        }
    }
    t.insert(
        "fc.weight".into(),
        HostTensor::new([1000, 2048], random(2048 * 1000, 99, 0.02)).unwrap(),
    );
    t.insert("fc.bias".into(), HostTensor::zeros([1000]));
    arch::build("resnet50", &Weights::from_map(t, "random resnet50")).unwrap()
}
