// Heatmap fusion (x ⊙ map, broadcast over channels), occlusion windows, bilinear resize, and the
// fused CAM post-processing (rectify, min-max normalise, bilinear resize, normalise again) in two
// kernels: the ranges, one block per map, then every output pixel at once, with Guided
// Grad-CAM's product where asked.

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

// Block-wide min and max of one pair per thread (blockDim.x a multiple of 32, at most 1024);
// every thread gets both. `slo`/`shi` hold one value per warp.
__device__ __forceinline__ void warp_min_max(float &lo, float &hi) {
    for (int o = 16; o > 0; o >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
    }
}

__device__ void block_min_max(float &lo, float &hi, float *slo, float *shi) {
    warp_min_max(lo, hi);
    unsigned int warp = threadIdx.x / 32u, lane = threadIdx.x % 32u;
    if (lane == 0u) {
        slo[warp] = lo;
        shi[warp] = hi;
    }
    __syncthreads();
    bool has = lane < blockDim.x / 32u;
    lo = has ? slo[lane] : FLT_MAX_;
    hi = has ? shi[lane] : -FLT_MAX_;
    warp_min_max(lo, hi);
    __syncthreads();
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

// Output pixel j of a CAM map resized to oh × ow (half-pixel centres): the bilinear tap of the
// rectified raw map, min-max normalised by (m0, d0).
__device__ __forceinline__ float cam_resized(const float *raw, unsigned int H, unsigned int W,
                                             unsigned int OH, unsigned int OW, unsigned int j,
                                             float m0, float d0) {
    unsigned int y0, y1, x0, x1;
    float ly, lx;
    taps(0u, j / OW, OH, H, y0, y1, ly);
    taps(0u, j % OW, OW, W, x0, x1, lx);
    float n00 = (fmaxf(raw[y0 * W + x0], 0.0f) - m0) / d0, n01 = (fmaxf(raw[y0 * W + x1], 0.0f) - m0) / d0;
    float n10 = (fmaxf(raw[y1 * W + x0], 0.0f) - m0) / d0, n11 = (fmaxf(raw[y1 * W + x1], 0.0f) - m0) / d0;
    float top = n00 * (1.0f - lx) + n01 * lx, bot = n10 * (1.0f - lx) + n11 * lx;
    return top * (1.0f - ly) + bot * ly;
}

// The CAM post-processing's ranges, one block per map: src0 = raw maps [n, h, w]; dst = [n, 4]
// = (m0, d0, m1, d1), the rectified map's minimum and range + eps, then the resized map's (its
// values computed, not stored). a = (h, w, oh·ow), b = (oh, ow), f.x = eps.
// (max(v − m) = max(v) − m exactly: rounding is monotonic.)
KERNEL void cam_stats(ARGS) {
    __shared__ float slo[32], shi[32];
    unsigned int H = p.a[0], W = p.a[1], OP = p.a[2], OH = p.b[0], OW = p.b[1];
    float eps = p.f[0];
    const float *raw = src0 + (unsigned long long)blockIdx.x * H * W;
    float lo = FLT_MAX_, hi = -FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < H * W; j += blockDim.x) {
        float r = fmaxf(raw[j], 0.0f);
        lo = fminf(lo, r);
        hi = fmaxf(hi, r);
    }
    block_min_max(lo, hi, slo, shi);
    float m0 = lo, d0 = (hi - lo) + eps;
    lo = FLT_MAX_;
    hi = -FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < OP; j += blockDim.x) {
        float v = cam_resized(raw, H, W, OH, OW, j, m0, d0);
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
    }
    block_min_max(lo, hi, slo, shi);
    if (threadIdx.x == 0u) {
        float *s = dst + 4ull * blockIdx.x;
        s[0] = m0;
        s[1] = d0;
        s[2] = lo;
        s[3] = (hi - lo) + eps;
    }
}

// The post-processed maps and, with c > 0, Guided Grad-CAM's product, one thread per output
// pixel: src0 = raw maps [n, h, w], src1 = cam_stats' [n, 4], src2 = guided gradients
// [n, c, oh, ow]; dst = maps [n, oh, ow], dst2 = guided ⊙ map [n, c, oh, ow].
// a = (h, w, oh·ow, c), b = (oh, ow, n).
KERNEL void cam_apply(ARGS2) {
    unsigned long long i = flat_index();
    unsigned int H = p.a[0], W = p.a[1], OP = p.a[2], C = p.a[3], OH = p.b[0], OW = p.b[1];
    if (i >= (unsigned long long)p.b[2] * OP) return;
    unsigned long long img = i / OP;
    unsigned int j = (unsigned int)(i % OP);
    const float *s = src1 + 4ull * img;
    float v = cam_resized(src0 + img * H * W, H, W, OH, OW, j, s[0], s[1]);
    float m = (v - s[2]) / s[3];
    dst[i] = m;
    for (unsigned int c = 0; c < C; ++c) {
        unsigned long long at = (img * C + c) * OP + j;
        dst2[at] = src2[at] * m;
    }
}
