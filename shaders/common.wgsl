// Shared by every shader file (prepended at load): one uniform block of parameters, up to three
// read-only inputs and one output. Each entry point uses the subset it needs.
struct Params {
    a: vec4<u32>,
    b: vec4<u32>,
    c: vec4<u32>,
    d: vec4<u32>,
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src0: array<f32>;
@group(0) @binding(2) var<storage, read> src1: array<f32>;
@group(0) @binding(3) var<storage, read> src2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Flat index of a 256-wide 1-D dispatch laid out on a 2-D grid of workgroups.
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The tiled GEMMs (conv forward and backward-data, linear): a 16-deep slice of a 64-row tile of A
// and a 64-column tile of B in workgroup memory, and each of the 16×16 invocations' 4×4 block of
// the product, accumulated in registers.
var<workgroup> ta: array<f32, 1024>; // 16 (depth) × 64 (rows)
var<workgroup> tb: array<f32, 1024>; // 16 (depth) × 64 (columns)

fn tile_multiply(acc: ptr<function, array<f32, 16>>, lid: vec3<u32>) {
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var r = 0u; r < 4u; r = r + 1u) { av[r] = ta[kk * 64u + lid.y * 4u + r]; }
        for (var c = 0u; c < 4u; c = c + 1u) { bv[c] = tb[kk * 64u + lid.x * 4u + c]; }
        for (var r = 0u; r < 4u; r = r + 1u) {
            for (var c = 0u; c < 4u; c = c + 1u) {
                (*acc)[r * 4u + c] = (*acc)[r * 4u + c] + av[r] * bv[c];
            }
        }
    }
}
