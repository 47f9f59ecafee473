// Strided GEMM for the linear layers: C [m × n] = A [m × k] · B [k × n] (+ bias[coff + j] when
// f.x = 1), element (i, j) of A at src0[a_off + i·a_rs + j·a_cs], of B at src1[i·b_rs + j·b_cs],
// C written at dst[i·ldc + coff + j], added to what is there when accumulate = 1.
// a = (m, n, k, vec4 A loads), b = (a_rs, a_cs, b_rs, b_cs), c = (ldc, coff, accumulate, 0),
// d = (a_off).
// 64×64 tiles, 4×4 per invocation. A weight split across buffers runs one dispatch per part.

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = p.a.x; let N = p.a.y; let KD = p.a.z;
    let row0 = wid.y * 64u; let col0 = wid.x * 64u;
    let tid = lid.y * 16u + lid.x;
    let ar = row0 + a_row(tid);
    let kb = b_depth(tid);
    let cols = vec4<u32>(col0 + b_quad(tid)) + vec4<u32>(0u, 16u, 32u, 48u);
    let live = cols < vec4<u32>(N);
    let boff = cols * p.b.w;
    var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < KD; k0 = k0 + 16u) {
        if (p.a.w == 1u) {
            // A rows contiguous and 16-byte aligned (a_cs = 1, a_rs, a_off and k multiples of 4).
            load_a_vec4(tid, row0, M, k0, KD, p.d.x, p.b.x, true);
        } else {
            let kc = k0 + 4u * a_quad(tid);
            let ok = ar < M;
            let at = p.d.x + ar * p.b.x + kc * p.b.y;
            ta[a_row(tid) * 4u + a_quad(tid)] = vec4<f32>(
                read0(ok && kc < KD, at), read0(ok && kc + 1u < KD, at + p.b.y),
                read0(ok && kc + 2u < KD, at + 2u * p.b.y), read0(ok && kc + 3u < KD, at + 3u * p.b.y));
        }
        let kr = k0 + kb;
        let ok = live & vec4<bool>(kr < KD);
        let at = boff + kr * p.b.z;
        tb[kb * 16u + b_quad(tid)] = vec4<f32>(read1(ok.x, at.x), read1(ok.y, at.y),
                                               read1(ok.z, at.z), read1(ok.w, at.w));
        workgroupBarrier();
        tile_multiply(&s0, &s1, &s2, &s3, lid);
        workgroupBarrier();
    }
    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x;
    gemm_store(s0, row, col);
    gemm_store(s1, row + 1u, col);
    gemm_store(s2, row + 2u, col);
    gemm_store(s3, row + 3u, col);
}

// Row `row` of a tile (columns `col` + 0, 16, 32, 48): plus the bias, plus what C holds when
// accumulating.
fn gemm_store(v: vec4<f32>, row: u32, col: u32) {
    if (row >= p.a.x) { return; }
    let N = p.a.y;
    let o = row * p.c.x + p.c.y + col;
    var s = v;
    if (p.f.x > 0.5) {
        s = s + vec4<f32>(read2(col < N, p.c.y + col), read2(col + 16u < N, p.c.y + col + 16u),
                          read2(col + 32u < N, p.c.y + col + 32u), read2(col + 48u < N, p.c.y + col + 48u));
    }
    if (p.c.z == 1u) {
        s = s + vec4<f32>(read_dst(col < N, o), read_dst(col + 16u < N, o + 16u),
                          read_dst(col + 32u < N, o + 32u), read_dst(col + 48u < N, o + 48u));
    }
    store4(s, true, o, col, N);
}

// dst[at] (C, when accumulating) where `ok`, else zero.
fn read_dst(ok: bool, at: u32) -> f32 {
    if (ok) { return dst[at]; }
    return 0.0;
}

// Column sums of a row-major [rows × cols] matrix (the linear bias gradient). a = (rows, cols).
@compute @workgroup_size(256)
fn column_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat(gid, nwg);
    if (j >= p.a.y) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.a.x; r = r + 1u) { s = s + src0[r * p.a.y + j]; }
    dst[j] = s;
}
