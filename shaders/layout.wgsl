// Per-channel affine (inference batch norm), add, block copies (concat and slice) and softmax.

// dst = src0·src1[c] + src2[c]; a = (count, channels, plane).
@compute @workgroup_size(256)
fn channel_affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let c = (i / p.a.z) % p.a.y;
    dst[i] = src0[i] * src1[c] + src2[c];
}

// dst = src0·src1[c] (the affine map's backward); a = (count, channels, plane).
@compute @workgroup_size(256)
fn channel_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = src0[i] * src1[(i / p.a.z) % p.a.y];
}

// a = (count).
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = src0[i] + src1[i];
}

// a ⊙ b, each element of b multiplying a.y consecutive elements of a (1: elementwise).
// a = (count, plane).
@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = src0[i] * src1[i / p.a.y];
}

// Copies `len` elements of each block: dst[blk·dst_block + dst_off + j] = src0[blk·src_block + src_off + j].
// a = (count, len, src_block, src_off), b = (dst_block, dst_off).
@compute @workgroup_size(256)
fn copy_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let blk = i / p.a.y; let j = i % p.a.y;
    dst[blk * p.b.x + p.b.y + j] = src0[blk * p.a.z + p.a.w + j];
}

// Row-wise softmax; a = (rows, cols).
@compute @workgroup_size(256)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= p.a.x) { return; }
    let n = p.a.y; let base = r * n;
    var m = src0[base];
    for (var j = 1u; j < n; j = j + 1u) { m = max(m, src0[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < n; j = j + 1u) { s = s + exp(src0[base + j] - m); }
    for (var j = 0u; j < n; j = j + 1u) { dst[base + j] = exp(src0[base + j] - m) / s; }
}

// Softmax backward from its output: src0 = y, src1 = dy; a = (rows, cols).
@compute @workgroup_size(256)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= p.a.x) { return; }
    let n = p.a.y; let base = r * n;
    var dot = 0.0;
    for (var j = 0u; j < n; j = j + 1u) { dot = dot + src0[base + j] * src1[base + j]; }
    for (var j = 0u; j < n; j = j + 1u) { dst[base + j] = src0[base + j] * (src1[base + j] - dot); }
}
