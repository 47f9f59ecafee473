// Heatmap fusion (x ⊙ map, broadcast over channels), occlusion windows, bilinear resize, and the
// fused CAM post-processing: rectify, min-max normalise, bilinear resize, normalise again, one
// block per map.

// dst[(i·m + j)·c + ch] = src0[i·c + ch] ⊙ src1[i·m + j] per plane; a = (count, c, m, plane).
KERNEL void heatmap_fusion(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned long long C = p.a[1], M = p.a[2], P = p.a[3];
    unsigned long long q = i % P, r = i / P;
    unsigned long long ch = r % C, row = r / C;
    unsigned long long img = row / M, j = row % M;
    dst[i] = src0[(img * C + ch) * P + q] * src1[(img * M + j) * P + q];
}

// Copies of one image with window `o` set to the baseline; src1 holds the origins as (y, x)
// pairs. a = (count, c, h, w), b = (win_h, win_w), f.x = baseline.
KERNEL void occlude(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int H = p.a[2], W = p.a[3];
    unsigned long long img = (unsigned long long)p.a[1] * H * W;
    unsigned long long o = i / img, r = i % img;
    unsigned int y = (unsigned int)((r / W) % H), x = (unsigned int)(r % W);
    unsigned int oy = (unsigned int)src1[2 * o], ox = (unsigned int)src1[2 * o + 1];
    bool inside = y >= oy && y < oy + p.b[0] && x >= ox && x < ox + p.b[1];
    dst[i] = inside ? p.f[0] : src0[r];
}

// Block-wide min (is_max = false) or max of one value per thread (256 threads).
__device__ float block_reduce(float v, bool is_max, float *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float o = red[threadIdx.x + s];
            red[threadIdx.x] = is_max ? fmaxf(red[threadIdx.x], o) : fminf(red[threadIdx.x], o);
        }
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

// Bilinear resize of the last two dimensions. a = (planes·oh·ow, h, w, oh), b = (ow, mode):
// mode 0 = half-pixel centres with clamped edges (OpenCV INTER_LINEAR), 1 = aligned corners.
__device__ __forceinline__ void taps(unsigned int mode, unsigned int o, unsigned int out, unsigned int size,
                                     unsigned int &i0, unsigned int &i1, float &l) {
    if (mode == 0u) {
        float f = ((float)o + 0.5f) * ((float)size / (float)out) - 0.5f;
        float s = floorf(f);
        l = f - s;
        if (s < 0.0f) { s = 0.0f; l = 0.0f; }
        i0 = (unsigned int)s;
        if (i0 >= size - 1u) { i0 = size - 1u; l = 0.0f; }
    } else {
        float scale = out > 1u ? (float)(size - 1u) / (float)(out - 1u) : 0.0f;
        float src = scale * (float)o;
        i0 = min((unsigned int)src, size - 1u);
        l = src - (float)i0;
    }
    i1 = min(i0 + 1u, size - 1u);
}

KERNEL void resize_bilinear(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int H = p.a[1], W = p.a[2], OH = p.a[3], OW = p.b[0];
    unsigned long long plane = i / (OH * OW);
    unsigned int r = (unsigned int)(i % (OH * OW));
    unsigned int y0, y1, x0, x1;
    float ly, lx;
    taps(p.b[1], r / OW, OH, H, y0, y1, ly);
    taps(p.b[1], r % OW, OW, W, x0, x1, lx);
    const float *x = src0 + plane * H * W;
    float top = x[y0 * W + x0] * (1.0f - lx) + x[y0 * W + x1] * lx;
    float bot = x[y1 * W + x0] * (1.0f - lx) + x[y1 * W + x1] * lx;
    dst[i] = top * (1.0f - ly) + bot * ly;
}

// src0 = raw maps [n, h, w]; dst = maps [n, oh, ow]. a = (h, w, oh·ow), b = (oh, ow),
// f.x = eps. One block of 256 threads per map: five launches of the composed version in one.
KERNEL void cam_postprocess(ARGS) {
    __shared__ float red[256];
    unsigned int H = p.a[0], W = p.a[1], OP = p.a[2];
    unsigned int OH = p.b[0], OW = p.b[1];
    float eps = p.f[0];
    const float *raw = src0 + (unsigned long long)blockIdx.x * H * W;
    // Rectify and normalise the raw map.
    float lo = FLT_MAX_, hi = -FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < H * W; j += 256) lo = fminf(lo, fmaxf(raw[j], 0.0f));
    float m0 = block_reduce(lo, false, red);
    for (unsigned int j = threadIdx.x; j < H * W; j += 256) hi = fmaxf(hi, fmaxf(raw[j], 0.0f) - m0);
    float d0 = block_reduce(hi, true, red) + eps;
    // Resize on the fly; the second normalisation needs the resized map's range first.
    lo = FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < OP; j += 256) {
        unsigned int y0, y1, x0, x1;
        float ly, lx;
        taps(0u, j / OW, OH, H, y0, y1, ly);
        taps(0u, j % OW, OW, W, x0, x1, lx);
        float n00 = (fmaxf(raw[y0 * W + x0], 0.0f) - m0) / d0, n01 = (fmaxf(raw[y0 * W + x1], 0.0f) - m0) / d0;
        float n10 = (fmaxf(raw[y1 * W + x0], 0.0f) - m0) / d0, n11 = (fmaxf(raw[y1 * W + x1], 0.0f) - m0) / d0;
        float top = n00 * (1.0f - lx) + n01 * lx, bot = n10 * (1.0f - lx) + n11 * lx;
        float v = top * (1.0f - ly) + bot * ly;
        dst[(unsigned long long)blockIdx.x * OP + j] = v;
        lo = fminf(lo, v);
    }
    float m1 = block_reduce(lo, false, red);
    hi = -FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < OP; j += 256)
        hi = fmaxf(hi, dst[(unsigned long long)blockIdx.x * OP + j] - m1);
    float d1 = block_reduce(hi, true, red) + eps;
    for (unsigned int j = threadIdx.x; j < OP; j += 256) {
        unsigned long long at = (unsigned long long)blockIdx.x * OP + j;
        dst[at] = (dst[at] - m1) / d1;
    }
}
