// 2-D convolution: forward and backward-data as implicit GEMMs (gemm_tile.cuh), direct kernels
// for grouped convolutions with few channels per group (depthwise), and the training-only
// weight and bias gradients. Parameters: a = (n, c, h, w), b = (k, kh, kw, oh),
// c = (ow, sh, sw, ph), d = (pw, dh, dw, groups), e = (splits, depth per split, vec4, count),
// f.x = 1 with a bias; f.z, f.w = the clamp's range in the `_clamp` tiles, and f.y = 1 for the
// direct kernel to clamp (a fused rectifier).
// src0 = x (or dy), src1 = weight [k, c/groups, kh, kw], src2 = bias.

// Forward tiles: f32 128×128 / 64×64, TF32 128×128 / 64×64, each also with the rectifier's
// clamp in its epilogue (`_clamp`, used without split-K; the plain kernels stay exactly the
// unfused code, whose registers the epilogue would otherwise raise: 73 → 87 for the 64×64 tile).
#define CONV_FORWARD(name, bounds, BM, BK, TC)                                 \
    KERNEL void __launch_bounds__ bounds name(ARGS) {                          \
        tile_gemm<MODE_CONV_FWD, BM, BM, BK, TC>(p, src0, src1, src2, dst);    \
    }                                                                          \
    KERNEL void __launch_bounds__ bounds name##_clamp(ARGS) {                  \
        tile_gemm<MODE_CONV_FWD, BM, BM, BK, TC, true>(p, src0, src1, src2, dst); \
    }
CONV_FORWARD(conv_forward_128, (256, 2), 128, 8, false)
CONV_FORWARD(conv_forward_64, (256), 64, 16, false)
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

// Backward-data as a gather, one thread per input element: few channels per group.
// src0 = dy, src1 = weight.
KERNEL void conv_backward_data_direct(ARGS) {
    CONV_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)N * C * H * W) return;
    unsigned int ix = i % W;
    unsigned long long t = i / W;
    unsigned int iy = t % H;
    t /= H;
    unsigned int ch = t % C;
    unsigned long long img = t / C;
    unsigned int g = ch / cg, cl = ch % cg;
    float s = 0.0f;
    for (unsigned int ki = 0; ki < KH; ++ki) {
        int ty = (int)(iy + PH) - (int)(ki * DH);
        if (ty < 0 || ty % (int)SH != 0) continue;
        unsigned int oy = (unsigned int)ty / SH;
        if (oy >= OH) continue;
        for (unsigned int kj = 0; kj < KW; ++kj) {
            int tx = (int)(ix + PW) - (int)(kj * DW);
            if (tx < 0 || tx % (int)SW != 0) continue;
            unsigned int ox = (unsigned int)tx / SW;
            if (ox >= OW) continue;
            for (unsigned int kl = 0; kl < kg; ++kl) {
                unsigned int k = g * kg + kl;
                s = fmaf(src1[(((unsigned long long)k * cg + cl) * KH + ki) * KW + kj],
                         src0[((img * K + k) * OH + oy) * OW + ox], s);
            }
        }
    }
    dst[i] = s;
}

// The weight of backward-data as a forward convolution (stride 1): w' [c, k/groups, kh, kw] with
// w'[g·cg + c][kl][ki][kj] = w[g·kg + kl][c][kh−1−ki][kw−1−kj]. a = (k, c, kh, kw), d.w = groups.
KERNEL void flip_transpose(ARGS) {
    unsigned int K = p.a[0], C = p.a[1], KH = p.a[2], KW = p.a[3], G = p.d[3];
    unsigned int cg = C / G, kg = K / G;
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)C * kg * KH * KW) return;
    unsigned int kj = i % KW;
    unsigned long long t = i / KW;
    unsigned int ki = t % KH;
    t /= KH;
    unsigned int kl = t % kg;
    unsigned int o = (unsigned int)(t / kg);
    unsigned int g = o / cg, c = o % cg;
    dst[i] = src0[((((unsigned long long)g * kg + kl) * cg + c) * KH + (KH - 1 - ki)) * KW + (KW - 1 - kj)];
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
