// Per-channel affine (inference batch norm), add, block copies (concat and slice) and softmax.

// dst = src0·src1[c] + src2[c]; a = (count, channels, plane).
KERNEL void channel_affine(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int c = (unsigned int)((i / p.a[2]) % p.a[1]);
    dst[i] = src0[i] * src1[c] + src2[c];
}

// dst = src0·src1[c] (the affine map's backward); a = (count, channels, plane).
KERNEL void channel_scale(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = src0[i] * src1[(i / p.a[2]) % p.a[1]];
}

// a = (count).
KERNEL void add(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = src0[i] + src1[i];
}

// a ⊙ b, each element of b multiplying a.y consecutive elements of a (1: elementwise).
// a = (count, plane).
KERNEL void mul(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = src0[i] * src1[i / p.a[1]];
}

// clamp(src0 + src1, f.x, f.y): a residual sum fused with its rectifier. a.x = count.
KERNEL void add_clamped(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = fminf(fmaxf(src0[i] + src1[i], p.f[0]), p.f[1]);
}

// Copies `len` elements of each block:
// dst[blk·dst_block + dst_off + j] = src0[blk·src_block + src_off + j].
// a = (count, len, src_block, src_off), b = (dst_block, dst_off).
KERNEL void copy_blocks(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned long long blk = i / p.a[1], j = i % p.a[1];
    dst[blk * p.b[0] + p.b[1] + j] = src0[blk * p.a[2] + p.a[3] + j];
}

// Row-wise softmax, one thread per row; a = (rows, cols).
KERNEL void softmax_forward(ARGS) {
    unsigned long long r = flat_index();
    if (r >= p.a[0]) return;
    unsigned int n = p.a[1];
    const float *x = src0 + r * n;
    float m = x[0];
    for (unsigned int j = 1; j < n; ++j) m = fmaxf(m, x[j]);
    float s = 0.0f;
    for (unsigned int j = 0; j < n; ++j) s += expf(x[j] - m);
    for (unsigned int j = 0; j < n; ++j) dst[r * n + j] = expf(x[j] - m) / s;
}

// Softmax backward from its output: src0 = y, src1 = dy; a = (rows, cols).
KERNEL void softmax_backward(ARGS) {
    unsigned long long r = flat_index();
    if (r >= p.a[0]) return;
    unsigned int n = p.a[1];
    unsigned long long base = r * n;
    float dot = 0.0f;
    for (unsigned int j = 0; j < n; ++j) dot += src0[base + j] * src1[base + j];
    for (unsigned int j = 0; j < n; ++j) dst[base + j] = src0[base + j] * (src1[base + j] - dot);
}
