//! The WGSL sources, embedded at build time.

/// The declarations every shader file shares (parameters and bindings), prepended to each.
pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");

/// Every shader file: (name, source without the common header).
pub const SHADERS: &[(&str, &str)] = &[
    ("conv", include_str!("../../../shaders/conv.wgsl")),
    ("linear", include_str!("../../../shaders/linear.wgsl")),
    (
        "rectifiers",
        include_str!("../../../shaders/rectifiers.wgsl"),
    ),
    ("pooling", include_str!("../../../shaders/pooling.wgsl")),
    ("layout", include_str!("../../../shaders/layout.wgsl")),
    (
        "reductions",
        include_str!("../../../shaders/reductions.wgsl"),
    ),
    ("normalize", include_str!("../../../shaders/normalize.wgsl")),
    ("resize", include_str!("../../../shaders/resize.wgsl")),
    ("fusion", include_str!("../../../shaders/fusion.wgsl")),
    ("lrn", include_str!("../../../shaders/lrn.wgsl")),
];

/// The complete source of shader file `name`.
pub fn source(name: &str) -> Option<String> {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| format!("{COMMON}\n{s}"))
}
