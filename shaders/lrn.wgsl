// Local response normalisation across channels. a = (count, channels, plane, reach below),
// b.x = reach above, f = (α/size, β, bias). The normaliser s_c = bias + α/size·Σ_{W(c)} x²,
// W(c) = [c − below, c + above] clipped to the channels.

fn lrn_norm(img: u32, ch: u32, q: u32) -> f32 {
    let C = p.a.y; let P = p.a.z;
    let lo = select(0u, ch - p.a.w, ch >= p.a.w);
    let hi = min(ch + p.b.x, C - 1u);
    var s = 0.0;
    for (var i = lo; i <= hi; i = i + 1u) {
        let v = src0[(img * C + i) * P + q];
        s = s + v * v;
    }
    return p.f.z + p.f.x * s;
}

// y = x / s^β; src0 = x.
@compute @workgroup_size(256)
fn lrn_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let C = p.a.y; let P = p.a.z;
    let q = i % P; let ch = (i / P) % C; let img = i / (P * C);
    dst[i] = src0[i] * pow(lrn_norm(img, ch, q), -p.f.y);
}

// dx_j = dy_j·s_j^−β − 2αβ/size·x_j·Σ_{c ∈ [j − above, j + below]} dy_c·x_c·s_c^(−β−1);
// src0 = x, src1 = dy.
@compute @workgroup_size(256)
fn lrn_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let C = p.a.y; let P = p.a.z;
    let q = i % P; let j = (i / P) % C; let img = i / (P * C);
    let lo = select(0u, j - p.b.x, j >= p.b.x);
    let hi = min(j + p.a.w, C - 1u);
    var sum = 0.0;
    for (var ch = lo; ch <= hi; ch = ch + 1u) {
        let e = (img * C + ch) * P + q;
        sum = sum + src1[e] * src0[e] * pow(lrn_norm(img, ch, q), -p.f.y - 1.0);
    }
    dst[i] = src1[i] * pow(lrn_norm(img, j, q), -p.f.y) - 2.0 * p.f.x * p.f.y * src0[i] * sum;
}
