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
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < KD; k0 = k0 + 16u) {
        if (p.a.w == 1u) {
            // A rows contiguous and 16-byte aligned (a_cs = 1, a_rs, a_off and k multiples of 4).
            load_a_vec4(tid, row0, M, k0, KD, p.d.x, p.b.x, true);
        } else {
            for (var e = 0u; e < 4u; e = e + 1u) {
                let idx = tid + e * 256u;
                let i = idx / 16u; let kk = idx % 16u;
                let r = row0 + i; let kc = k0 + kk;
                var v = 0.0;
                if (r < M && kc < KD) { v = src0[p.d.x + r * p.b.x + kc * p.b.y]; }
                ta[kk * 64u + i] = v;
            }
        }
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = tid + e * 256u;
            let kk = idx / 64u; let j = idx % 64u;
            let col = col0 + j; let kr = k0 + kk;
            var v = 0.0;
            if (col < N && kr < KD) { v = src1[kr * p.b.z + col * p.b.w]; }
            tb[kk * 64u + j] = v;
        }
        workgroupBarrier();
        tile_multiply(&acc, lid);
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + lid.y * 4u + r;
        if (row >= M) { continue; }
        for (var c = 0u; c < 4u; c = c + 1u) {
            let col = col0 + lid.x * 4u + c;
            if (col >= N) { continue; }
            var v = acc[r * 4u + c];
            if (p.f.x > 0.5) { v = v + src2[p.c.y + col]; }
            let o = row * p.c.x + p.c.y + col;
            if (p.c.z == 1u) { v = v + dst[o]; }
            dst[o] = v;
        }
    }
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
