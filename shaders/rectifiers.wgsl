// Rectifiers clamp(x, lo, hi) and their backward in three modes.
// a.x = count, a.y = mode (0 plain, 1 guided, 2 deconvnet); f.x = lo, f.y = hi.

@compute @workgroup_size(256)
fn rectifier_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = min(max(src0[i], p.f.x), p.f.y);
}

// src0 = the forward output y, src1 = dy.
@compute @workgroup_size(256)
fn rectifier_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let y = src0[i];
    let g = src1[i];
    let inside = y > p.f.x && y < p.f.y;
    var keep = inside;
    if (p.a.y == 1u) { keep = inside && g > 0.0; }
    if (p.a.y == 2u) { keep = g > 0.0; }
    dst[i] = select(0.0, g, keep);
}
