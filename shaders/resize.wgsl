// Bilinear resize of the last two dimensions. a = (planes·oh·ow, h, w, oh), b = (ow, mode):
// mode 0 = half-pixel centres with clamped edges (OpenCV INTER_LINEAR), 1 = aligned corners.

// (i0, i1) and λ of output o along one axis.
fn taps(o: u32, out: u32, size: u32) -> vec3<f32> {
    if (p.b.y == 0u) {
        let f = (f32(o) + 0.5) * (f32(size) / f32(out)) - 0.5;
        var s = floor(f);
        var l = f - s;
        if (s < 0.0) { s = 0.0; l = 0.0; }
        var i0 = u32(s);
        if (i0 >= size - 1u) { i0 = size - 1u; l = 0.0; }
        return vec3<f32>(f32(i0), f32(min(i0 + 1u, size - 1u)), l);
    }
    var scale = 0.0;
    if (out > 1u) { scale = f32(size - 1u) / f32(out - 1u); }
    let src = scale * f32(o);
    let i0 = min(u32(src), size - 1u);
    return vec3<f32>(f32(i0), f32(min(i0 + 1u, size - 1u)), src - f32(i0));
}

@compute @workgroup_size(256)
fn resize_bilinear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let H = p.a.y; let W = p.a.z; let OH = p.a.w; let OW = p.b.x;
    let plane = i / (OH * OW); let r = i % (OH * OW);
    let ty = taps(r / OW, OH, H);
    let tx = taps(r % OW, OW, W);
    let base = plane * H * W;
    let r0 = u32(ty.x) * W; let r1 = u32(ty.y) * W;
    let c0 = u32(tx.x); let c1 = u32(tx.y);
    let top = src0[base + r0 + c0] * (1.0 - tx.z) + src0[base + r0 + c1] * tx.z;
    let bot = src0[base + r1 + c0] * (1.0 - tx.z) + src0[base + r1 + c1] * tx.z;
    dst[i] = top * (1.0 - ty.z) + bot * ty.z;
}
