// Max, average and adaptive average pooling, forward and backward (backward as gathers: one
// invocation per input element). a = (planes, h, w, oh), b = (ow, kh, kw, sh),
// c = (sw, ph, pw, dh), d = (dw, count_include_pad, 0, 0).

// First maximum of output (oy, ox)'s window in plane `base`, as an index into the plane.
fn window_argmax(base: u32, oy: u32, ox: u32) -> u32 {
    let H = p.a.y; let W = p.a.z;
    let KH = p.b.y; let KW = p.b.z; let SH = p.b.w; let SW = p.c.x;
    let PH = p.c.y; let PW = p.c.z; let DH = p.c.w; let DW = p.d.x;
    var best = 0xffffffffu;
    var m = 0.0;
    for (var ki = 0u; ki < KH; ki = ki + 1u) {
        let iy = i32(oy * SH + ki * DH) - i32(PH);
        if (iy < 0 || iy >= i32(H)) { continue; }
        for (var kj = 0u; kj < KW; kj = kj + 1u) {
            let ix = i32(ox * SW + kj * DW) - i32(PW);
            if (ix < 0 || ix >= i32(W)) { continue; }
            let j = u32(iy) * W + u32(ix);
            let v = src0[base + j];
            if (best == 0xffffffffu || v > m) { best = j; m = v; }
        }
    }
    return best;
}

@compute @workgroup_size(256)
fn max_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let OH = p.a.w; let OW = p.b.x;
    let i = flat(gid, nwg);
    if (i >= p.a.x * OH * OW) { return; }
    let plane = i / (OH * OW); let r = i % (OH * OW);
    let base = plane * p.a.y * p.a.z;
    let j = window_argmax(base, r / OW, r % OW);
    dst[i] = select(src0[base + j], -3.4028235e38, j == 0xffffffffu);
}

// Candidate outputs whose window may cover input coordinate `v` along one axis: tap t gives
// output (v + pad − t·dil) / stride when divisible and in range.
fn covers(v: u32, t: u32, s: u32, pad: u32, dil: u32, out: u32) -> i32 {
    let q = i32(v + pad) - i32(t * dil);
    if (q < 0 || q % i32(s) != 0) { return -1; }
    let o = u32(q) / s;
    if (o >= out) { return -1; }
    return i32(o);
}

// src0 = x, src1 = dy.
@compute @workgroup_size(256)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x * p.a.y * p.a.z) { return; }
    dst[i] = max_gradient(i);
}

// max_backward, then the backward of the rectifier whose output x is (as rectifiers.wgsl's
// rectifier_backward): d.z = mode (0 plain, 1 guided, 2 deconvnet), f.x = lo, f.y = hi.
@compute @workgroup_size(256)
fn max_backward_rectified(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x * p.a.y * p.a.z) { return; }
    dst[i] = rectified_gradient(src0[i], max_gradient(i), p.d.z, p.f.x, p.f.y);
}

// The gradient of input element i: the sum, in window order, of dy over the windows whose
// first maximum it is.
fn max_gradient(i: u32) -> f32 {
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let KH = p.b.y; let KW = p.b.z; let SH = p.b.w; let SW = p.c.x;
    let PH = p.c.y; let PW = p.c.z; let DH = p.c.w; let DW = p.d.x;
    let plane = i / (H * W); let j = i % (H * W);
    let iy = j / W; let ix = j % W;
    let base = plane * H * W;
    var s = 0.0;
    for (var ki = 0u; ki < KH; ki = ki + 1u) {
        let oy = covers(iy, ki, SH, PH, DH, OH);
        if (oy < 0) { continue; }
        for (var kj = 0u; kj < KW; kj = kj + 1u) {
            let ox = covers(ix, kj, SW, PW, DW, OW);
            if (ox < 0) { continue; }
            if (window_argmax(base, u32(oy), u32(ox)) == j) {
                s = s + src1[(plane * OH + u32(oy)) * OW + u32(ox)];
            }
        }
    }
    return s;
}

// Average window along one axis: (first, end, divisor span).
fn avg_span(o: u32, k: u32, s: u32, pad: u32, size: u32) -> vec3<i32> {
    let start = i32(o * s) - i32(pad);
    let end = min(start + i32(k), i32(size + pad));
    let span = end - start;
    let a = max(start, 0);
    let b = max(min(end, i32(size)), a);
    return vec3<i32>(a, b, span);
}

fn avg_divisor(y: vec3<i32>, x: vec3<i32>) -> f32 {
    var d = (y.y - y.x) * (x.y - x.x);
    if (p.d.y == 1u) { d = y.z * x.z; }
    return f32(max(d, 1));
}

@compute @workgroup_size(256)
fn avg_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let i = flat(gid, nwg);
    if (i >= p.a.x * OH * OW) { return; }
    let plane = i / (OH * OW); let r = i % (OH * OW);
    let y = avg_span(r / OW, p.b.y, p.b.w, p.c.y, H);
    let x = avg_span(r % OW, p.b.z, p.c.x, p.c.z, W);
    var s = 0.0;
    for (var iy = y.x; iy < y.y; iy = iy + 1) {
        for (var ix = x.x; ix < x.y; ix = ix + 1) {
            s = s + src0[plane * H * W + u32(iy) * W + u32(ix)];
        }
    }
    dst[i] = s / avg_divisor(y, x);
}

// src0 = dy.
@compute @workgroup_size(256)
fn avg_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let KH = p.b.y; let KW = p.b.z; let SH = p.b.w; let SW = p.c.x; let PH = p.c.y; let PW = p.c.z;
    let i = flat(gid, nwg);
    if (i >= p.a.x * H * W) { return; }
    let plane = i / (H * W); let j = i % (H * W);
    let iy = i32(j / W); let ix = i32(j % W);
    var s = 0.0;
    for (var ki = 0u; ki < KH; ki = ki + 1u) {
        let oy = covers(u32(iy), ki, SH, PH, 1u, OH);
        if (oy < 0) { continue; }
        let y = avg_span(u32(oy), KH, SH, PH, H);
        if (iy < y.x || iy >= y.y) { continue; }
        for (var kj = 0u; kj < KW; kj = kj + 1u) {
            let ox = covers(u32(ix), kj, SW, PW, 1u, OW);
            if (ox < 0) { continue; }
            let x = avg_span(u32(ox), KW, SW, PW, W);
            if (ix < x.x || ix >= x.y) { continue; }
            s = s + src0[(plane * OH + u32(oy)) * OW + u32(ox)] / avg_divisor(y, x);
        }
    }
    dst[i] = s;
}

// PyTorch's adaptive window [floor(o·size/out), ceil((o+1)·size/out)).
fn adaptive(o: u32, out: u32, size: u32) -> vec2<u32> {
    return vec2<u32>(o * size / out, ((o + 1u) * size + out - 1u) / out);
}

@compute @workgroup_size(256)
fn adaptive_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let i = flat(gid, nwg);
    if (i >= p.a.x * OH * OW) { return; }
    let plane = i / (OH * OW); let r = i % (OH * OW);
    let y = adaptive(r / OW, OH, H);
    let x = adaptive(r % OW, OW, W);
    var s = 0.0;
    for (var iy = y.x; iy < y.y; iy = iy + 1u) {
        for (var ix = x.x; ix < x.y; ix = ix + 1u) { s = s + src0[(plane * H + iy) * W + ix]; }
    }
    dst[i] = s / f32((y.y - y.x) * (x.y - x.x));
}

@compute @workgroup_size(256)
fn adaptive_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let i = flat(gid, nwg);
    if (i >= p.a.x * H * W) { return; }
    let plane = i / (H * W); let j = i % (H * W);
    let iy = j / W; let ix = j % W;
    var s = 0.0;
    for (var oy = 0u; oy < OH; oy = oy + 1u) {
        let y = adaptive(oy, OH, H);
        if (iy < y.x || iy >= y.y) { continue; }
        for (var ox = 0u; ox < OW; ox = ox + 1u) {
            let x = adaptive(ox, OW, W);
            if (ix < x.x || ix >= x.y) { continue; }
            s = s + src0[(plane * OH + oy) * OW + ox] / f32((y.y - y.x) * (x.y - x.x));
        }
    }
    dst[i] = s;
}
