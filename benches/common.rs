//! Shared by the benchmarks: the backends present and seeded random tensors and models.
#![allow(dead_code)]

use gradcam::{arch, Graph};

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

/// ResNet-50 with seeded random weights in torchvision's layout.
pub fn resnet50() -> Graph {
    arch::build(
        "resnet50",
        &arch::random_weights("resnet50", 1000, 1).unwrap(),
    )
    .unwrap()
}
