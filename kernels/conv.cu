// 2-D convolution: forward and backward-data as implicit GEMMs (gemm_tile.cuh), direct kernels
// for grouped convolutions with few channels per group (depthwise), and the training-only
// weight and bias gradients. Parameters: a = (n, c, h, w), b = (k, kh, kw, oh),
// c = (ow, sh, sw, ph), d = (pw, dh, dw, groups), e = (splits, depth per split, vec4, count),
// f.x = 1 with a bias; f.z, f.w = the clamp's range in the `_clamp` tiles, and f.y = 1 for the
// direct kernel to clamp (a fused rectifier).
// src0 = x (or dy), src1 = weight [k, c/groups, kh, kw], src2 = bias.

// Forward tiles: f32 128×128 / 64×64, TF32 128×128 / 64×64, each also with the rectifier's
// clamp in its epilogue (`_clamp`, used without split-K; the plain kernels stay exactly the
// unfused code, whose registers a run-time flag would otherwise raise). The f32 64×64 tile is
// bounded to three blocks per multiprocessor (80 registers, 4 bytes spilled, by NVRTC 13's
// ptxas for sm_90): with the gather's offsets hoisted it would take 89 and fit only two (H200,
// batch 32, 3×3 128ch 28×28: 282 µs bounded; 306 µs at 79 registers without the hoisting;
// 322 µs before either).
#define CONV_FORWARD(name, bounds, BM, BK, TC)                                 \
    KERNEL void __launch_bounds__ bounds name(ARGS) {                          \
        tile_gemm<MODE_CONV_FWD, BM, BM, BK, TC>(p, src0, src1, src2, dst);    \
    }                                                                          \
    KERNEL void __launch_bounds__ bounds name##_clamp(ARGS) {                  \
        tile_gemm<MODE_CONV_FWD, BM, BM, BK, TC, true>(p, src0, src1, src2, dst); \
    }
CONV_FORWARD(conv_forward_128, (256, 2), 128, 8, false)
CONV_FORWARD(conv_forward_64, (256, 3), 64, 16, false)
CONV_FORWARD(conv_forward_tf32, (256, 2), 128, 8, true)
CONV_FORWARD(conv_forward_tf32_64, (256), 64, 16, true)

KERNEL void __launch_bounds__(256, 2) conv_backward_data_128(ARGS) {
    tile_gemm<MODE_CONV_BWD, 128, 128, 8>(p, src0, src1, src2, dst);
}
KERNEL void __launch_bounds__(256) conv_backward_data_64(ARGS) {
    tile_gemm<MODE_CONV_BWD, 64, 64, 16>(p, src0, src1, src2, dst);
}
KERNEL void __launch_bounds__(256, 2) conv_backward_data_tf32(ARGS) {
    tile_gemm<MODE_CONV_BWD, 128, 128, 8, true>(p, src0, src1, src2, dst);
}
KERNEL void __launch_bounds__(256) conv_backward_data_tf32_64(ARGS) {
    tile_gemm<MODE_CONV_BWD, 64, 64, 16, true>(p, src0, src1, src2, dst);
}

#define CONV_DIMS                                                                     \
    [[maybe_unused]] unsigned int N = p.a[0], C = p.a[1], H = p.a[2], W = p.a[3];     \
    [[maybe_unused]] unsigned int K = p.b[0], KH = p.b[1], KW = p.b[2], OH = p.b[3];  \
    [[maybe_unused]] unsigned int OW = p.c[0], SH = p.c[1], SW = p.c[2], PH = p.c[3]; \
    [[maybe_unused]] unsigned int PW = p.d[0], DH = p.d[1], DW = p.d[2], G = p.d[3];  \
    [[maybe_unused]] unsigned int cg = C / G, kg = K / G;

// Forward as a direct sum, one thread per output: few filters per group (depthwise).
KERNEL void conv_forward_direct(ARGS) {
    CONV_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)N * K * OH * OW) return;
    unsigned int ox = i % OW;
    unsigned long long t = i / OW;
    unsigned int oy = t % OH;
    t /= OH;
    unsigned int k = t % K;
    unsigned long long img = t / K;
    unsigned int g = k / kg;
    float s = p.f[0] > 0.5f ? src2[k] : 0.0f;
    for (unsigned int cl = 0; cl < cg; ++cl) {
        const float *x = src0 + (img * C + g * cg + cl) * H * W;
        const float *w = src1 + ((unsigned long long)k * cg + cl) * KH * KW;
        for (unsigned int ki = 0; ki < KH; ++ki) {
            int iy = (int)(oy * SH + ki * DH) - (int)PH;
            if (iy < 0 || iy >= (int)H) continue;
            for (unsigned int kj = 0; kj < KW; ++kj) {
                int ix = (int)(ox * SW + kj * DW) - (int)PW;
                if (ix < 0 || ix >= (int)W) continue;
                s = fmaf(w[ki * KW + kj], x[iy * W + ix], s);
            }
        }
    }
    if (p.f[1] > 0.5f) s = fminf(fmaxf(s, p.f[2]), p.f[3]);
    dst[i] = s;
}

// Backward-data as a gather for few channels per group (the RGB stem, depthwise): one thread
// per input pixel and group computes all of the group's cg (< 16) channels, so each dy value
// is read once for all of them. Threads run in the order (image, group, iy, phase px, mx) with
// ix = mx·SW + px: a warp shares iy and px, hence the same kernel taps, and with dilation 1
// only the taps of the pixel's stride phase are visited (no per-tap divisibility test fails).
// The sums run over (ki, kj, filter) in that order, as before. src0 = dy, src1 = weight.
#define DIRECT_MAX_CG 16
template <int CG>
__device__ __forceinline__ void backward_data_direct(const Params &p, const float *__restrict__ dy,
                                                     const float *__restrict__ wt, float *__restrict__ dst) {
    CONV_DIMS
    unsigned int MX = (W + SW - 1) / SW;
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)N * G * H * SW * MX) return;
    unsigned int mx = i % MX;
    unsigned long long t = i / MX;
    unsigned int px = t % SW;
    t /= SW;
    unsigned int iy = t % H;
    t /= H;
    unsigned int g = t % G;
    unsigned long long img = t / G;
    unsigned int ix = mx * SW + px;
    if (ix >= W) return;
    constexpr int R = CG > 0 ? CG : DIRECT_MAX_CG;
    float acc[R];
#pragma unroll
    for (int c = 0; c < R; ++c) acc[c] = 0.0f;
    unsigned int ki0 = DH == 1 ? (iy + PH) % SH : 0, ky_step = DH == 1 ? SH : 1;
    unsigned int kj0 = DW == 1 ? (ix + PW) % SW : 0, kx_step = DW == 1 ? SW : 1;
    const unsigned long long plane = (unsigned long long)OH * OW, wstride = (unsigned long long)cg * KH * KW;
    for (unsigned int ki = ki0; ki < KH; ki += ky_step) {
        int ty = (int)(iy + PH) - (int)(ki * DH);
        if (ty < 0) break;  // ty falls as ki grows
        if (ty % (int)SH != 0) continue;
        unsigned int oy = (unsigned int)ty / SH;
        if (oy >= OH) continue;
        for (unsigned int kj = kj0; kj < KW; kj += kx_step) {
            int tx = (int)(ix + PW) - (int)(kj * DW);
            if (tx < 0) break;
            if (tx % (int)SW != 0) continue;
            unsigned int ox = (unsigned int)tx / SW;
            if (ox >= OW) continue;
            const float *d = dy + ((img * K + (unsigned long long)g * kg) * OH + oy) * OW + ox;
            const float *w = wt + ((unsigned long long)g * kg * cg * KH + ki) * KW + kj;
            for (unsigned int kl = 0; kl < kg; ++kl) {
                float v = d[kl * plane];
                const float *wk = w + kl * wstride;
#pragma unroll
                for (int c = 0; c < R; ++c)
                    if (CG > 0 || c < (int)cg) acc[c] = fmaf(wk[(unsigned long long)c * KH * KW], v, acc[c]);
            }
        }
    }
    float *out = dst + ((img * C + (unsigned long long)g * cg) * H + iy) * W + ix;
#pragma unroll
    for (int c = 0; c < R; ++c)
        if (CG > 0 || c < (int)cg) out[(unsigned long long)c * H * W] = acc[c];
}

// Launched over N·G·H·SW·ceil(W/SW) threads.
KERNEL void conv_backward_data_direct(ARGS) {
    switch (p.a[1] / p.d[3]) {
    case 1: backward_data_direct<1>(p, src0, src1, dst); break;
    case 3: backward_data_direct<3>(p, src0, src1, dst); break;
    default: backward_data_direct<0>(p, src0, src1, dst); break;
    }
}

// The weights of backward-data as forward convolutions. a = (k, c, kh, kw), d.w = groups; one
// stride phase's taps: b = (ty, tx, cy, cx), c = (sy, sx): w' [c, k/groups, ty, tx] with
// w'[g·cg + c][kl][i][j] = w[g·kg + kl][c][sy·(ty−1−i) + cy][sx·(tx−1−j) + cx]. Stride 1
// (ty = kh, cy = 0, sy = 1) is the whole kernel flipped and transposed.
KERNEL void flip_transpose(ARGS) {
    unsigned int K = p.a[0], C = p.a[1], KH = p.a[2], KW = p.a[3], G = p.d[3];
    unsigned int TY = p.b[0], TX = p.b[1], CY = p.b[2], CX = p.b[3], SY = p.c[0], SX = p.c[1];
    unsigned int cg = C / G, kg = K / G;
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)C * kg * TY * TX) return;
    unsigned int tj = i % TX;
    unsigned long long t = i / TX;
    unsigned int ti = t % TY;
    t /= TY;
    unsigned int kl = t % kg;
    unsigned int o = (unsigned int)(t / kg);
    unsigned int g = o / cg, c = o % cg;
    unsigned int ki = SY * (TY - 1 - ti) + CY, kj = SX * (TX - 1 - tj) + CX;
    dst[i] = src0[((((unsigned long long)g * kg + kl) * cg + c) * KH + ki) * KW + kj];
}

// One stride phase of a strided backward-data into dx: dst[plane][my·sy + ry][mx·sx + rx] =
// src0[plane][my + skip_y][mx + skip_x] (src0 planes of part_h × part_w), or 0 with f.x = 0 (a
// phase that no kernel tap reaches). a = (planes, my, mx), b = (h, w, sy, sx), c = (ry, rx),
// d = (part_h, part_w, skip_y, skip_x).
KERNEL void scatter_phase(ARGS) {
    unsigned int MY = p.a[1], MX = p.a[2], H = p.b[0], W = p.b[1];
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * MY * MX) return;
    unsigned int mx = i % MX;
    unsigned long long t = i / MX;
    unsigned int my = t % MY;
    unsigned long long plane = t / MY;
    float v = 0.0f;
    if (p.f[0] > 0.5f) v = src0[(plane * p.d[0] + my + p.d[2]) * p.d[1] + mx + p.d[3]];
    dst[(plane * H + my * p.b[2] + p.c[0]) * W + mx * p.b[3] + p.c[1]] = v;
}

// Weight gradient (training only), one thread per weight element. src0 = x, src1 = dy.
KERNEL void conv_backward_weight(ARGS) {
    CONV_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)K * cg * KH * KW) return;
    unsigned int kj = i % KW;
    unsigned long long t = i / KW;
    unsigned int ki = t % KH;
    t /= KH;
    unsigned int cl = t % cg;
    unsigned int k = (unsigned int)(t / cg);
    unsigned int ch = (k / kg) * cg + cl;
    float s = 0.0f;
    for (unsigned int img = 0; img < N; ++img) {
        for (unsigned int oy = 0; oy < OH; ++oy) {
            int iy = (int)(oy * SH + ki * DH) - (int)PH;
            if (iy < 0 || iy >= (int)H) continue;
            for (unsigned int ox = 0; ox < OW; ++ox) {
                int ix = (int)(ox * SW + kj * DW) - (int)PW;
                if (ix < 0 || ix >= (int)W) continue;
                s = fmaf(src1[(((unsigned long long)img * K + k) * OH + oy) * OW + ox],
                         src0[(((unsigned long long)img * C + ch) * H + iy) * W + ix], s);
            }
        }
    }
    dst[i] = s;
}

// Bias gradient: one thread per filter sums dy over batch and space. a = (n, k, plane).
KERNEL void conv_backward_bias(ARGS) {
    unsigned long long k = flat_index();
    if (k >= p.a[1]) return;
    float s = 0.0f;
    for (unsigned int img = 0; img < p.a[0]; ++img) {
        const float *d = src0 + ((unsigned long long)img * p.a[1] + k) * p.a[2];
        for (unsigned int j = 0; j < p.a[2]; ++j) s += d[j];
    }
    dst[k] = s;
}
