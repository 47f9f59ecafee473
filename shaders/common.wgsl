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

// A rectifier's backward at one value, from its output y and incoming gradient g: mode 0 plain
// (lo < y < hi), 1 guided (and g > 0), 2 deconvnet (g > 0 alone).
fn rectified_gradient(y: f32, g: f32, mode: u32, lo: f32, hi: f32) -> f32 {
    let inside = y > lo && y < hi;
    var keep = inside;
    if (mode == 1u) { keep = inside && g > 0.0; }
    if (mode == 2u) { keep = g > 0.0; }
    return select(0.0, g, keep);
}

// The tiled GEMMs (conv forward and backward-data, linear): a 16-deep slice of a 64-row tile of A
// and a 64-column tile of B in workgroup memory, and each of the 16×16 invocations' 4 rows × 4
// columns (16 apart) of the product, in four vec4 registers (one per row). Both tiles are vec4s
// written whole by one invocation (no two invocations write parts of one vector) and read two
// per four multiply-adds of a row. The gathers carry their indices: no integer division in the
// loop (but for the strided backward-data's stride test).
var<workgroup> ta: array<vec4<f32>, 256>; // [row 0..63][depth quad 0..3]: four depths of a row
var<workgroup> tb: array<vec4<f32>, 256>; // [depth 0..15][j 0..15]: columns j, j+16, j+32, j+48

// This invocation's part of the A tile: row `tid / 4`, depths `4·(tid % 4)` .. +3 of the slice.
fn a_row(tid: u32) -> u32 { return tid / 4u; }
fn a_quad(tid: u32) -> u32 { return tid % 4u; }
// Its part of the B tile: depth `tid / 16` of the slice, columns `tid % 16` + 0, 16, 32, 48 (so
// that neighbouring invocations read neighbouring columns, and store them).
fn b_depth(tid: u32) -> u32 { return tid / 16u; }
fn b_quad(tid: u32) -> u32 { return tid % 16u; }

// Loads the A tile's vec4 of this invocation from `v` viewed as vec4s: row `row0 + a_row`,
// depths `k0 + 4·a_quad` .. +3 at `base + row·stride + depth`. The caller guarantees 16-byte
// alignment (row starts and depth multiples of 4), so a quad is whole or past the depth.
fn load_a_vec4(tid: u32, row0: u32, rows: u32, k0: u32, depth: u32, base: u32, stride: u32, from_src0: bool) {
    let r = row0 + a_row(tid);
    let kc = k0 + 4u * a_quad(tid);
    var v = vec4<f32>(0.0);
    if (r < rows && kc < depth) {
        let at = (base + r * stride + kc) / 4u;
        if (from_src0) { v = src0v[at]; } else { v = src1v[at]; }
    }
    ta[a_row(tid) * 4u + a_quad(tid)] = v;
}

// s_r += Σ over the slice's 16 depths of A[r][kk] · B[kk][4 columns], depth by depth in order:
// four vec4 accumulators, for the rows `4·lid.y` .. +3 and columns `lid.x` + 0, 16, 32, 48.
fn tile_multiply(s0: ptr<function, vec4<f32>>, s1: ptr<function, vec4<f32>>, s2: ptr<function, vec4<f32>>,
                 s3: ptr<function, vec4<f32>>, lid: vec3<u32>) {
    var r0 = *s0; var r1 = *s1; var r2 = *s2; var r3 = *s3;
    for (var q = 0u; q < 4u; q = q + 1u) {
        let b0 = tb[(4u * q) * 16u + lid.x];
        let b1 = tb[(4u * q + 1u) * 16u + lid.x];
        let b2 = tb[(4u * q + 2u) * 16u + lid.x];
        let b3 = tb[(4u * q + 3u) * 16u + lid.x];
        let a0 = ta[(lid.y * 4u) * 4u + q];
        let a1 = ta[(lid.y * 4u + 1u) * 4u + q];
        let a2 = ta[(lid.y * 4u + 2u) * 4u + q];
        let a3 = ta[(lid.y * 4u + 3u) * 4u + q];
        r0 = r0 + a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
        r1 = r1 + a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
        r2 = r2 + a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
        r3 = r3 + a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
    }
    *s0 = r0; *s1 = r1; *s2 = r2; *s3 = r3;
}

// src0[at] where `ok`, else zero (no vector or array indexed at run time: the gathers' four
// values are four calls).
fn read0(ok: bool, at: u32) -> f32 {
    if (ok) { return src0[at]; }
    return 0.0;
}

// src1[at] where `ok`, else zero.
fn read1(ok: bool, at: u32) -> f32 {
    if (ok) { return src1[at]; }
    return 0.0;
}

// src2[at] (the bias) where `ok`, else zero.
fn read2(ok: bool, at: u32) -> f32 {
    if (ok) { return src2[at]; }
    return 0.0;
}

// A tile row's four values (columns `col` + 0, 16, 32, 48) to dst[at + 0, 16, 32, 48], those of
// columns below `n`, if `ok`.
fn store4(v: vec4<f32>, ok: bool, at: u32, col: u32, n: u32) {
    if (!ok) { return; }
    if (col < n) { dst[at] = v.x; }
    if (col + 16u < n) { dst[at + 16u] = v.y; }
    if (col + 32u < n) { dst[at + 32u] = v.z; }
    if (col + 48u < n) { dst[at + 48u] = v.w; }
}

// A tap position (channel, tap row, tap column) of a convolution's GEMM depth, carried forward by
// a fixed step without division: `step` holds the step's (channels, rows, columns).
fn advance(pos: vec3<u32>, step: vec3<u32>, kh: u32, kw: u32) -> vec3<u32> {
    var n = pos + step;
    if (n.z >= kw) { n.z = n.z - kw; n.y = n.y + 1u; }
    if (n.y >= kh) { n.y = n.y - kh; n.x = n.x + 1u; }
    return n;
}

// The position of depth `d` (one division, outside the loops) and of the step `d` itself.
fn tap_of(d: u32, kh: u32, kw: u32) -> vec3<u32> {
    let kk = kh * kw;
    let t = d % kk;
    return vec3<u32>(d / kk, t / kw, t % kw);
}
