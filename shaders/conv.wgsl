// 2-D convolution. Parameters: a = (n, c, h, w), b = (k, kh, kw, oh), c = (ow, sh, sw, ph),
// d = (pw, dh, dw, groups), f.x = 1 when src2 holds a bias, f.y = 1 for vec4 weight loads.
// src0 = x, src1 = weight [k, c/groups, kh, kw], src2 = bias.


// Forward as an implicit GEMM per (image, group): y_g [kg × oh·ow] = w_g [kg × cg·kh·kw] · cols,
// the columns gathered on the fly. 64×64 workgroup tiles, 4×4 register tiles per invocation;
// workgroup z indexes image × group, so grouped and depthwise convs need one dispatch.
@compute @workgroup_size(16, 16)
fn conv_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let cg = C / G; let kg = K / G; let P = OH * OW; let KK = KH * KW; let depth = cg * KK;
    let img = wid.z / G; let g = wid.z % G;
    let row0 = wid.y * 64u; let col0 = wid.x * 64u;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < depth; k0 = k0 + 16u) {
        if (p.f.y > 0.5) {
            // Weight rows are 16-byte aligned when cg·kh·kw is a multiple of 4.
            load_a_vec4(tid, row0, kg, k0, depth, g * kg * depth, depth, false);
        } else {
            for (var e = 0u; e < 4u; e = e + 1u) {
                let idx = tid + e * 256u;
                let i = idx / 16u; let kk = idx % 16u;
                let r = row0 + i; let kc = k0 + kk;
                var v = 0.0;
                if (r < kg && kc < depth) { v = src1[(g * kg + r) * depth + kc]; }
                ta[kk * 64u + i] = v;
            }
        }
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = tid + e * 256u;
            let kk = idx / 64u; let j = idx % 64u;
            let col = col0 + j; let kr = k0 + kk;
            var v = 0.0;
            if (col < P && kr < depth) {
                let ci = kr / KK; let t = kr % KK; let ki = t / KW; let kj = t % KW;
                let iy = i32((col / OW) * SH + ki * DH) - i32(PH);
                let ix = i32((col % OW) * SW + kj * DW) - i32(PW);
                if (iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
                    v = src0[((img * C + g * cg + ci) * H + u32(iy)) * W + u32(ix)];
                }
            }
            tb[kk * 64u + j] = v;
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + lid.y * 4u + r;
        if (row >= kg) { continue; }
        var bias = 0.0;
        if (p.f.x > 0.5) { bias = src2[g * kg + row]; }
        for (var c = 0u; c < 4u; c = c + 1u) {
            let col = col0 + lid.x * 4u + c;
            if (col < P) { dst[(img * K + g * kg + row) * P + col] = acc[r * 4u + c] + bias; }
        }
    }
}

// Backward-data as a gather: one invocation per input element sums the filter taps and output
// positions that read it. src0 = dy, src1 = weight.
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
    var s = 0.0;
    for (var ki = 0u; ki < KH; ki = ki + 1u) {
        let ty = i32(iy + PH) - i32(ki * DH);
        if (ty < 0 || ty % i32(SH) != 0) { continue; }
        let oy = u32(ty) / SH;
        if (oy >= OH) { continue; }
        for (var kj = 0u; kj < KW; kj = kj + 1u) {
            let tx = i32(ix + PW) - i32(kj * DW);
            if (tx < 0 || tx % i32(SW) != 0) { continue; }
            let ox = u32(tx) / SW;
            if (ox >= OW) { continue; }
            for (var kl = 0u; kl < kg; kl = kl + 1u) {
                let k = g * kg + kl;
                s = s + src1[((k * cg + cl) * KH + ki) * KW + kj] * src0[((img * K + k) * OH + oy) * OW + ox];
            }
        }
    }
    dst[i] = s;
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
// at the output position that read it, or zero where the stride skips it. Same tiling as the
// forward. src0 = dy, src1 = weight.
@compute @workgroup_size(16, 16)
fn conv_backward_data_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let C = p.a.y; let H = p.a.z; let W = p.a.w;
    let K = p.b.x; let KH = p.b.y; let KW = p.b.z; let OH = p.b.w;
    let OW = p.c.x; let SH = p.c.y; let SW = p.c.z; let PH = p.c.w;
    let PW = p.d.x; let DH = p.d.y; let DW = p.d.z; let G = p.d.w;
    let cg = C / G; let kg = K / G; let P = H * W; let KK = KH * KW; let depth = kg * KK;
    let img = wid.z / G; let g = wid.z % G;
    let row0 = wid.y * 64u; let col0 = wid.x * 64u;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < depth; k0 = k0 + 16u) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = tid + e * 256u;
            let i = idx / 16u; let kk = idx % 16u;
            let r = row0 + i; let kc = k0 + kk;
            var v = 0.0;
            if (r < cg && kc < depth) {
                let kl = kc / KK; let t = kc % KK;
                v = src1[((g * kg + kl) * cg + r) * KK + t];
            }
            ta[kk * 64u + i] = v;
        }
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = tid + e * 256u;
            let kk = idx / 64u; let j = idx % 64u;
            let col = col0 + j; let kr = k0 + kk;
            var v = 0.0;
            if (col < P && kr < depth) {
                let kl = kr / KK; let t = kr % KK; let ki = t / KW; let kj = t % KW;
                let ty = i32(col / W + PH) - i32(ki * DH);
                let tx = i32(col % W + PW) - i32(kj * DW);
                if (ty >= 0 && tx >= 0 && ty % i32(SH) == 0 && tx % i32(SW) == 0) {
                    let oy = u32(ty) / SH; let ox = u32(tx) / SW;
                    if (oy < OH && ox < OW) {
                        v = src0[((img * K + g * kg + kl) * OH + oy) * OW + ox];
                    }
                }
            }
            tb[kk * 64u + j] = v;
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + lid.y * 4u + r;
        if (row >= cg) { continue; }
        for (var c = 0u; c < 4u; c = c + 1u) {
            let col = col0 + lid.x * 4u + c;
            if (col < P) { dst[(img * C + g * cg + row) * P + col] = acc[r * 4u + c]; }
        }
    }
}
