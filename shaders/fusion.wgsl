// Heatmap fusion (x ⊙ map, broadcast over channels) and occlusion windows.

// dst[(i·m + j)·c + ch] = src0[i·c + ch] ⊙ src1[i·m + j] per plane; a = (count, c, m, plane).
@compute @workgroup_size(256)
fn heatmap_fusion(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let C = p.a.y; let M = p.a.z; let P = p.a.w;
    let q = i % P; let r = i / P;
    let ch = r % C; let row = r / C;
    let img = row / M; let j = row % M;
    dst[i] = src0[(img * C + ch) * P + q] * src1[(img * M + j) * P + q];
}

// Copies of one image with window `o` set to the baseline; src1 holds the origins as
// (y, x) pairs. a = (count, c, h, w), b = (win_h, win_w), f.x = baseline.
@compute @workgroup_size(256)
fn occlude(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let H = p.a.z; let W = p.a.w;
    let img = p.a.y * H * W;
    let o = i / img; let r = i % img;
    let y = (r / W) % H; let x = r % W;
    let oy = u32(src1[2u * o]); let ox = u32(src1[2u * o + 1u]);
    let inside = y >= oy && y < oy + p.b.x && x >= ox && x < ox + p.b.y;
    dst[i] = select(src0[r], p.f.x, inside);
}
