// Min-max normalisation of each group: (x − min) / (max − min + eps), one workgroup per group.
// a = (groups, group size, groups per grid row), f.x = eps.

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn normalize_min_max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let grp = wid.x + wid.y * p.a.z;
    let n = p.a.y;
    let base = grp * n;
    let live = grp < p.a.x;
    var lo = 3.4028235e38;
    if (live) {
        for (var j = lid.x; j < n; j = j + 256u) { lo = min(lo, src0[base + j]); }
    }
    red[lid.x] = lo;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid.x < s) { red[lid.x] = min(red[lid.x], red[lid.x + s]); }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    var hi = -3.4028235e38;
    if (live) {
        for (var j = lid.x; j < n; j = j + 256u) { hi = max(hi, src0[base + j] - m); }
    }
    red[lid.x] = hi;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid.x < s) { red[lid.x] = max(red[lid.x], red[lid.x + s]); }
        workgroupBarrier();
    }
    let d = red[0] + p.f.x;
    if (live) {
        for (var j = lid.x; j < n; j = j + 256u) { dst[base + j] = (src0[base + j] - m) / d; }
    }
}
