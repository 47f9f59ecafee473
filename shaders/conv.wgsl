// 2-D convolution. Parameters: a = (n, c, h, w), b = (k, kh, kw, oh), c = (ow, sh, sw, ph),
// d = (pw, dh, dw, groups), f.x = 1 when src2 holds a bias, f.y = 1 for vec4 weight loads,
// f.z = the tiled GEMMs' depth slices (split-K, `crates/wgpu/src/splitk.rs`; 0 or 1: none).
// src0 = x, src1 = weight [k, c/groups, kh, kw], src2 = bias.

// A tiled GEMM's workgroup z as (image, group, depth slice), and the slice's depths
// [kbeg, kend): `slices` (f.z; 0 or 1 meaning one) slices of whole 16-deep steps.
struct Slice { img: u32, g: u32, split: u32, slices: u32, kbeg: u32, kend: u32 }

fn slice_of(z: u32, groups: u32, depth: u32) -> Slice {
    let n = max(u32(p.f.z), 1u);
    let zi = z / n;
    let split = z % n;
    let chunk = (depth + 16u * n - 1u) / (16u * n) * 16u;
    let kbeg = split * chunk;
    return Slice(zi / groups, zi % groups, split, n, kbeg, min(kbeg + chunk, depth));
}

// Forward as an implicit GEMM per (image, group): y_g [kg × oh·ow] = w_g [kg × cg·kh·kw] · cols,
// the columns gathered on the fly. 64×64 workgroup tiles, 4×4 register tiles per invocation;
// workgroup z indexes image × group, so grouped and depthwise convs need one dispatch. Each
// invocation gathers the same four columns at every slice: their first taps' rows and columns
// are computed once, and its depth row's (channel, tap row, tap column) carried forward.
@compute @workgroup_size(16, 16)
fn conv_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let cg = C / G; let kg = K / G; let P = OH * OW; let KK = KH * KW; let depth = cg * KK;
    let sl = slice_of(wid.z, G, depth);
    let img = sl.img; let g = sl.g; let kbeg = sl.kbeg; let kend = sl.kend;
    let row0 = wid.y * 64u; let col0 = wid.x * 64u;
    let tid = lid.y * 16u + lid.x;
    let plane0 = (img * C + g * cg) * H;
    // B: depth row `kb` of each slice, four columns; where each column's window starts.
    let kb = b_depth(tid);
    let cols = vec4<u32>(col0 + b_quad(tid)) + vec4<u32>(0u, 16u, 32u, 48u);
    let live = cols < vec4<u32>(P);
    let oy0 = vec4<i32>((cols / OW) * SH) - i32(PH);
    let ox0 = vec4<i32>((cols % OW) * SW) - i32(PW);
    var pos = tap_of(kbeg + kb, KH, KW);
    let slice_step = tap_of(16u, KH, KW);
    // A: the weight's row `a_row`, four depths.
    let ar = row0 + a_row(tid);
    let wbase = (g * kg + ar) * depth;
    var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
    for (var k0 = kbeg; k0 < kend; k0 = k0 + 16u) {
        if (p.f.y > 0.5) {
            // Weight rows are 16-byte aligned when cg·kh·kw is a multiple of 4.
            load_a_vec4(tid, row0, kg, k0, depth, g * kg * depth, depth, false);
        } else {
            let kc = k0 + 4u * a_quad(tid);
            let ok = ar < kg;
            ta[a_row(tid) * 4u + a_quad(tid)] = vec4<f32>(
                read1(ok && kc < depth, wbase + kc),
                read1(ok && kc + 1u < depth, wbase + kc + 1u),
                read1(ok && kc + 2u < depth, wbase + kc + 2u),
                read1(ok && kc + 3u < depth, wbase + kc + 3u));
        }
        let iy = oy0 + i32(pos.y * DH);
        let ix = ox0 + i32(pos.z * DW);
        let inside = live & vec4<bool>(k0 + kb < depth) & (iy >= vec4<i32>(0))
            & (iy < vec4<i32>(i32(H))) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(W)));
        let at = vec4<u32>(iy * i32(W) + ix) + (plane0 + pos.x * H) * W;
        tb[kb * 16u + b_quad(tid)] = vec4<f32>(read0(inside.x, at.x), read0(inside.y, at.y),
                                               read0(inside.z, at.z), read0(inside.w, at.w));
        pos = advance(pos, slice_step, KH, KW);
        workgroupBarrier();
        tile_multiply(&s0, &s1, &s2, &s3, lid);
        workgroupBarrier();
    }
    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x;
    // Split, each slice's sums go to its own copy of the output, the bias to the sum's.
    let at = sl.split * p.a.x * K * P + (img * K + g * kg + row) * P + col;
    let has_bias = p.f.x > 0.5 && sl.slices == 1u;
    let bias = vec4<f32>(
        read2(has_bias && row < kg, g * kg + row),
        read2(has_bias && row + 1u < kg, g * kg + row + 1u),
        read2(has_bias && row + 2u < kg, g * kg + row + 2u),
        read2(has_bias && row + 3u < kg, g * kg + row + 3u));
    store4(s0 + bias.x, row < kg, at, col, P);
    store4(s1 + bias.y, row + 1u < kg, at + P, col, P);
    store4(s2 + bias.z, row + 2u < kg, at + 2u * P, col, P);
    store4(s3 + bias.w, row + 3u < kg, at + 3u * P, col, P);
}

// Backward-data as a gather: one invocation per input element sums the filter taps and output
// positions that read it. src0 = dy, src1 = weight. Only the taps that land on an output
// position are visited (at stride 2, a quarter of a 7×7 stem's): they recur every
// `S / gcd(S, D)` taps, from the first found, their output position moving by a constant.
// The same taps in the same order as a scan of every tap: the same sums.
@compute @workgroup_size(256)
fn conv_backward_data(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let N = p.a.x; let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let i = flat(gid, nwg);
    if (i >= N * C * H * W) { return; }
    let cg = C / G; let kg = K / G;
    let ix = i % W; var t = i / W; let iy = t % H; t = t / H; let ch = t % C; let img = t / C;
    let g = ch / cg; let cl = ch % cg;
    let ry = SH / gcd(SH, DH);
    let rx = SW / gcd(SW, DW);
    let ky0 = first_tap(i32(iy + PH), KH, ry, DH, SH);
    let kx0 = first_tap(i32(ix + PW), KW, rx, DW, SW);
    // Per filter: the weight moves by cg·KH·KW, dy by OH·OW.
    let wk = cg * KH * KW;
    let yk = OH * OW;
    var s = 0.0;
    for (var ki = ky0; ki < KH; ki = ki + ry) {
        let ty = i32(iy + PH) - i32(ki * DH);
        if (ty < 0) { break; }
        let oy = u32(ty) / SH;
        if (oy >= OH) { continue; }
        for (var kj = kx0; kj < KW; kj = kj + rx) {
            let tx = i32(ix + PW) - i32(kj * DW);
            if (tx < 0) { break; }
            let ox = u32(tx) / SW;
            if (ox >= OW) { continue; }
            var wi = ((g * kg * cg + cl) * KH + ki) * KW + kj;
            var yi = ((img * K + g * kg) * OH + oy) * OW + ox;
            for (var kl = 0u; kl < kg; kl = kl + 1u) {
                s = s + src1[wi] * src0[yi];
                wi = wi + wk;
                yi = yi + yk;
            }
        }
    }
    dst[i] = s;
}

fn gcd(a: u32, b: u32) -> u32 {
    var x = a;
    var y = b;
    while (y != 0u) {
        let r = x % y;
        x = y;
        y = r;
    }
    return x;
}

// The first tap k < n (of those that recur every r) with pt − k·d divisible by s, or n if none.
fn first_tap(pt: i32, n: u32, r: u32, d: u32, s: u32) -> u32 {
    for (var k = 0u; k < min(r, n); k = k + 1u) {
        if ((pt - i32(k * d)) % i32(s) == 0) { return k; }
    }
    return n;
}

// Backward-weight as a gather: one invocation per weight element. src0 = x, src1 = dy.
@compute @workgroup_size(256)
fn conv_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let N = p.a.x; let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let cg = C / G; let kg = K / G;
    let i = flat(gid, nwg);
    if (i >= K * cg * KH * KW) { return; }
    let kj = i % KW; var t = i / KW; let ki = t % KH; t = t / KH; let cl = t % cg; let k = t / cg;
    let ch = (k / kg) * cg + cl;
    var s = 0.0;
    for (var img = 0u; img < N; img = img + 1u) {
        for (var oy = 0u; oy < OH; oy = oy + 1u) {
            let iy = i32(oy * SH + ki * DH) - i32(PH);
            if (iy < 0 || iy >= i32(H)) { continue; }
            for (var ox = 0u; ox < OW; ox = ox + 1u) {
                let ix = i32(ox * SW + kj * DW) - i32(PW);
                if (ix < 0 || ix >= i32(W)) { continue; }
                s = s + src1[((img * K + k) * OH + oy) * OW + ox] * src0[((img * C + ch) * H + u32(iy)) * W + u32(ix)];
            }
        }
    }
    dst[i] = s;
}

// Bias gradient: one invocation per filter sums dy over batch and space. a = (n, k, plane, 0).
@compute @workgroup_size(256)
fn conv_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat(gid, nwg);
    if (k >= p.a.y) { return; }
    var s = 0.0;
    for (var img = 0u; img < p.a.x; img = img + 1u) {
        let base = (img * p.a.y + k) * p.a.z;
        for (var j = 0u; j < p.a.z; j = j + 1u) { s = s + src0[base + j]; }
    }
    dst[k] = s;
}

// Forward as a direct sum, one invocation per output element: for grouped convolutions with
// few filters per group (depthwise), where a 64-row GEMM tile would idle most of its rows.
@compute @workgroup_size(256)
fn conv_forward_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let N = p.a.x; let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let i = flat(gid, nwg);
    if (i >= N * K * OH * OW) { return; }
    let cg = C / G; let kg = K / G;
    let ox = i % OW; var t = i / OW; let oy = t % OH; t = t / OH; let k = t % K; let img = t / K;
    let g = k / kg;
    var s = 0.0;
    if (p.f.x > 0.5) { s = src2[k]; }
    for (var cl = 0u; cl < cg; cl = cl + 1u) {
        let xbase = (img * C + g * cg + cl) * H;
        let wbase = (k * cg + cl) * KH;
        for (var ki = 0u; ki < KH; ki = ki + 1u) {
            let iy = i32(oy * SH + ki * DH) - i32(PH);
            if (iy < 0 || iy >= i32(H)) { continue; }
            for (var kj = 0u; kj < KW; kj = kj + 1u) {
                let ix = i32(ox * SW + kj * DW) - i32(PW);
                if (ix < 0 || ix >= i32(W)) { continue; }
                s = s + src1[(wbase + ki) * KW + kj] * src0[(xbase + u32(iy)) * W + u32(ix)];
            }
        }
    }
    dst[i] = s;
}

// Backward-data as an implicit GEMM per (image, group): dx_g [cg × h·w] = w_gᵀ · dy columns,
// depth kg·kh·kw; the column element for tap (ki, kj) of input pixel (iy, ix) is the dy value
// at the output position that read it, or zero where the stride skips it. Same tiling and
// carried indices as the forward. src0 = dy, src1 = weight.
@compute @workgroup_size(16, 16)
fn conv_backward_data_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let cg = C / G; let kg = K / G; let P = H * W; let KK = KH * KW; let depth = kg * KK;
    let sl = slice_of(wid.z, G, depth);
    let img = sl.img; let g = sl.g; let kbeg = sl.kbeg; let kend = sl.kend;
    let row0 = wid.y * 64u; let col0 = wid.x * 64u;
    let tid = lid.y * 16u + lid.x;
    let strided = SH != 1u || SW != 1u;
    let dy0 = (img * K + g * kg) * OH;
    // B: depth row `kb` of each slice, four input pixels, padded coordinates.
    let kb = b_depth(tid);
    let cols = vec4<u32>(col0 + b_quad(tid)) + vec4<u32>(0u, 16u, 32u, 48u);
    let live = cols < vec4<u32>(P);
    let py = vec4<i32>(cols / W + PH);
    let px = vec4<i32>(cols % W + PW);
    var pos = tap_of(kbeg + kb, KH, KW);
    let slice_step = tap_of(16u, KH, KW);
    // A: input channel `a_row` of the weight's filters, four depths (filter, tap) from `apos`.
    let ar = row0 + a_row(tid);
    var apos = tap_of(kbeg + 4u * a_quad(tid), KH, KW);
    var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
    for (var k0 = kbeg; k0 < kend; k0 = k0 + 16u) {
        // The weight at (filter q.x, tap q.y·KW + q.z) for input channel `ar`, four taps on.
        let kc = k0 + 4u * a_quad(tid);
        let ok = ar < cg;
        let q0 = apos;
        let q1 = advance(q0, vec3<u32>(0u, 0u, 1u), KH, KW);
        let q2 = advance(q1, vec3<u32>(0u, 0u, 1u), KH, KW);
        let q3 = advance(q2, vec3<u32>(0u, 0u, 1u), KH, KW);
        let wrow = g * kg * cg + ar;
        ta[a_row(tid) * 4u + a_quad(tid)] = vec4<f32>(
            read1(ok && kc < depth, (wrow + q0.x * cg) * KK + q0.y * KW + q0.z),
            read1(ok && kc + 1u < depth, (wrow + q1.x * cg) * KK + q1.y * KW + q1.z),
            read1(ok && kc + 2u < depth, (wrow + q2.x * cg) * KK + q2.y * KW + q2.z),
            read1(ok && kc + 3u < depth, (wrow + q3.x * cg) * KK + q3.y * KW + q3.z));
        apos = advance(apos, slice_step, KH, KW);
        let ty = py - i32(pos.y * DH);
        let tx = px - i32(pos.z * DW);
        var oy = ty;
        var ox = tx;
        var hit = live & vec4<bool>(k0 + kb < depth) & (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0));
        if (strided) {
            let sh = vec4<i32>(i32(SH));
            let sw = vec4<i32>(i32(SW));
            hit = hit & (ty % sh == vec4<i32>(0)) & (tx % sw == vec4<i32>(0));
            oy = ty / sh;
            ox = tx / sw;
        }
        hit = hit & (oy < vec4<i32>(i32(OH))) & (ox < vec4<i32>(i32(OW)));
        let at = vec4<u32>(oy * i32(OW) + ox) + (dy0 + pos.x * OH) * OW;
        tb[kb * 16u + b_quad(tid)] = vec4<f32>(read0(hit.x, at.x), read0(hit.y, at.y),
                                               read0(hit.z, at.z), read0(hit.w, at.w));
        pos = advance(pos, slice_step, KH, KW);
        workgroupBarrier();
        tile_multiply(&s0, &s1, &s2, &s3, lid);
        workgroupBarrier();
    }
    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x;
    let at = sl.split * p.a.x * C * P + (img * C + g * cg + row) * P + col;
    store4(s0, row < cg, at, col, P);
    store4(s1, row + 1u < cg, at + P, col, P);
    store4(s2, row + 2u < cg, at + 2u * P, col, P);
    store4(s3, row + 3u < cg, at + 3u * P, col, P);
}

// Split-K's sum: dst[i] = Σ over the slices of src0[s·n + i], in slice order, plus the bias
// of i's channel (src1) when f.x = 1. a = (n, slices, plane, channels).
@compute @workgroup_size(256)
fn splitk_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    let n = p.a.x;
    if (i >= n) { return; }
    var s = src0[i];
    for (var j = 1u; j < p.a.y; j = j + 1u) { s = s + src0[j * n + i]; }
    if (p.f.x > 0.5) { s = s + src1[(i / p.a.z) % p.a.w]; }
    dst[i] = s;
}
