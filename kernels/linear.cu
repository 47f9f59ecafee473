// Linear layers: the strided GEMM C [m × n] = A [m × depth] · B [depth × n] (+ bias[coff + j]),
// element (i, j) of A at src0[a_off + i·a_rs + j·a_cs], of B at src1[i·b_rs + j·b_cs], C at
// dst[i·ldc + coff + j] (gemm_tile.cuh), and the bias gradient's column sums.

KERNEL void __launch_bounds__(256) gemm_128(ARGS) {
    tile_gemm<MODE_GEMM, 128, 128, 8>(p, src0, src1, src2, dst);
}
KERNEL void __launch_bounds__(256) gemm_64(ARGS) {
    tile_gemm<MODE_GEMM, 64, 64, 16>(p, src0, src1, src2, dst);
}

// Column sums of a row-major [rows × cols] matrix (the linear bias gradient). a = (rows, cols).
KERNEL void column_sum(ARGS) {
    unsigned long long j = flat_index();
    if (j >= p.a[1]) return;
    float s = 0.0f;
    for (unsigned int r = 0; r < p.a[0]; ++r) s += src0[(unsigned long long)r * p.a[1] + j];
    dst[j] = s;
}
