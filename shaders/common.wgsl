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
// The first two inputs again, seen as vec4s, for the GEMMs' aligned 16-byte loads.
@group(0) @binding(5) var<storage, read> src0v: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> src1v: array<vec4<f32>>;

// Flat index of a 256-wide 1-D dispatch laid out on a 2-D grid of workgroups.
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The tiled GEMMs (conv forward and backward-data, linear): a 16-deep slice of a 64-row tile of A
// and a 64-column tile of B in workgroup memory, and each of the 16×16 invocations' 4×4 block of
// the product, accumulated in registers.
var<workgroup> ta: array<f32, 1024>; // 16 (depth) × 64 (rows)
var<workgroup> tb: array<f32, 1024>; // 16 (depth) × 64 (columns)

// Loads the 64-row × 16-deep A tile with one 16-byte load per invocation: row `r0 + tid/4`,
// depth `k0 + 4·(tid%4)` .. +3, at `base(row) + depth` in `v` viewed as vec4s. The caller
// guarantees 16-byte alignment (row starts and depth multiples of 4).
fn load_a_vec4(tid: u32, row0: u32, rows: u32, k0: u32, depth: u32, row_base: u32, row_stride: u32, from_src0: bool) {
    let i = tid / 4u;
    let q = (tid % 4u) * 4u;
    let r = row0 + i;
    let kc = k0 + q;
    var v = vec4<f32>(0.0);
    if (r < rows && kc < depth) {
        let at = (row_base + r * row_stride + kc) / 4u;
        if (from_src0) { v = src0v[at]; } else { v = src1v[at]; }
    }
    ta[q * 64u + i] = v.x;
    ta[(q + 1u) * 64u + i] = v.y;
    ta[(q + 2u) * 64u + i] = v.z;
    ta[(q + 3u) * 64u + i] = v.w;
}

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
