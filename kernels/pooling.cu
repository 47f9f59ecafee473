// Max, average and adaptive average pooling, forward and backward (backward as gathers: one
// thread per input element). a = (planes, h, w, oh), b = (ow, kh, kw, sh),
// c = (sw, ph, pw, dh), d = (dw, count_include_pad, 0, 0).

#define POOL_DIMS                                                                        \
    [[maybe_unused]] unsigned int H = p.a[1], W = p.a[2], OH = p.a[3], OW = p.b[0];      \
    [[maybe_unused]] unsigned int KH = p.b[1], KW = p.b[2], SH = p.b[3], SW = p.c[0];    \
    [[maybe_unused]] unsigned int PH = p.c[1], PW = p.c[2], DH = p.c[3], DW = p.d[0];

// First maximum of output (oy, ox)'s window in `plane`, as an index into the plane (or ~0u).
__device__ unsigned int window_argmax(const Params &p, const float *plane, unsigned int oy, unsigned int ox) {
    POOL_DIMS
    unsigned int best = 0xffffffffu;
    float m = 0.0f;
    for (unsigned int ki = 0; ki < KH; ++ki) {
        int iy = (int)(oy * SH + ki * DH) - (int)PH;
        if (iy < 0 || iy >= (int)H) continue;
        for (unsigned int kj = 0; kj < KW; ++kj) {
            int ix = (int)(ox * SW + kj * DW) - (int)PW;
            if (ix < 0 || ix >= (int)W) continue;
            unsigned int j = (unsigned int)iy * W + (unsigned int)ix;
            float v = plane[j];
            // The first maximum; a NaN wins (as PyTorch and the CPU backend).
            if (best == 0xffffffffu || v > m || (v != v && m == m)) { best = j; m = v; }
        }
    }
    return best;
}

// Output i's plane of x and the first maximum of its window there (or ~0u).
__device__ __forceinline__ unsigned int output_argmax(const Params &p, const float *x,
                                                      unsigned long long i, const float **plane) {
    POOL_DIMS
    *plane = x + i / (OH * OW) * H * W;
    unsigned int r = (unsigned int)(i % (OH * OW));
    return window_argmax(p, *plane, r / OW, r % OW);
}

KERNEL void max_forward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * OH * OW) return;
    const float *x;
    unsigned int j = output_argmax(p, src0, i, &x);
    dst[i] = j == 0xffffffffu ? __int_as_float(0xff800000) : x[j];  // −∞ for an empty window
}

// Output along one axis whose window tap `t` covers input coordinate v, or -1.
__device__ __forceinline__ int covers(unsigned int v, unsigned int t, unsigned int s, unsigned int pad,
                                      unsigned int dil, unsigned int out) {
    int q = (int)(v + pad) - (int)(t * dil);
    if (q < 0 || q % (int)s != 0) return -1;
    unsigned int o = (unsigned int)q / s;
    return o >= out ? -1 : (int)o;
}

// Each output's first maximum as an index into its plane (~0u for an empty window), stored in
// a float's bits for max_backward. src0 = x.
KERNEL void max_argmax(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * OH * OW) return;
    const float *x;
    dst[i] = __uint_as_float(output_argmax(p, src0, i, &x));
}

// One thread per input element sums dy over the windows whose maximum it is.
// src0 = max_argmax's output, src1 = dy.
KERNEL void max_backward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * H * W) return;
    unsigned long long plane = i / (H * W);
    unsigned int j = (unsigned int)(i % (H * W));
    unsigned int iy = j / W, ix = j % W;
    float s = 0.0f;
    for (unsigned int ki = 0; ki < KH; ++ki) {
        int oy = covers(iy, ki, SH, PH, DH, OH);
        if (oy < 0) continue;
        for (unsigned int kj = 0; kj < KW; ++kj) {
            int ox = covers(ix, kj, SW, PW, DW, OW);
            if (ox < 0) continue;
            unsigned long long o = (plane * OH + oy) * OW + ox;
            if (__float_as_uint(src0[o]) == j) s += src1[o];
        }
    }
    dst[i] = s;
}

// Average window along one axis: first, end and the divisor's span.
struct Span { int a, b, span; };
__device__ __forceinline__ Span avg_span(unsigned int o, unsigned int k, unsigned int s, unsigned int pad, unsigned int size) {
    int start = (int)(o * s) - (int)pad;
    int end = min(start + (int)k, (int)(size + pad));
    Span r;
    r.span = end - start;
    r.a = max(start, 0);
    r.b = max(min(end, (int)size), r.a);
    return r;
}

__device__ __forceinline__ float avg_divisor(const Params &p, Span y, Span x) {
    int d = (y.b - y.a) * (x.b - x.a);
    if (p.d[1] == 1u) d = y.span * x.span;
    return (float)max(d, 1);
}

KERNEL void avg_forward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * OH * OW) return;
    unsigned long long plane = i / (OH * OW);
    unsigned int r = (unsigned int)(i % (OH * OW));
    Span y = avg_span(r / OW, KH, SH, PH, H), x = avg_span(r % OW, KW, SW, PW, W);
    float s = 0.0f;
    for (int iy = y.a; iy < y.b; ++iy)
        for (int ix = x.a; ix < x.b; ++ix) s += src0[plane * H * W + iy * W + ix];
    dst[i] = s / avg_divisor(p, y, x);
}

// src0 = dy.
KERNEL void avg_backward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * H * W) return;
    unsigned long long plane = i / (H * W);
    unsigned int j = (unsigned int)(i % (H * W));
    int iy = (int)(j / W), ix = (int)(j % W);
    float s = 0.0f;
    for (unsigned int ki = 0; ki < KH; ++ki) {
        int oy = covers((unsigned int)iy, ki, SH, PH, 1u, OH);
        if (oy < 0) continue;
        Span y = avg_span((unsigned int)oy, KH, SH, PH, H);
        if (iy < y.a || iy >= y.b) continue;
        for (unsigned int kj = 0; kj < KW; ++kj) {
            int ox = covers((unsigned int)ix, kj, SW, PW, 1u, OW);
            if (ox < 0) continue;
            Span x = avg_span((unsigned int)ox, KW, SW, PW, W);
            if (ix < x.a || ix >= x.b) continue;
            s += src0[(plane * OH + oy) * OW + ox] / avg_divisor(p, y, x);
        }
    }
    dst[i] = s;
}

// PyTorch's adaptive window [floor(o·size/out), ceil((o+1)·size/out)).
__device__ __forceinline__ void adaptive(unsigned int o, unsigned int out, unsigned int size,
                                         unsigned int &a, unsigned int &b) {
    a = o * size / out;
    b = ((o + 1u) * size + out - 1u) / out;
}

KERNEL void adaptive_forward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * OH * OW) return;
    unsigned long long plane = i / (OH * OW);
    unsigned int r = (unsigned int)(i % (OH * OW));
    unsigned int y0, y1, x0, x1;
    adaptive(r / OW, OH, H, y0, y1);
    adaptive(r % OW, OW, W, x0, x1);
    float s = 0.0f;
    for (unsigned int iy = y0; iy < y1; ++iy)
        for (unsigned int ix = x0; ix < x1; ++ix) s += src0[(plane * H + iy) * W + ix];
    dst[i] = s / (float)((y1 - y0) * (x1 - x0));
}

KERNEL void adaptive_backward(ARGS) {
    POOL_DIMS
    unsigned long long i = flat_index();
    if (i >= (unsigned long long)p.a[0] * H * W) return;
    unsigned long long plane = i / (H * W);
    unsigned int j = (unsigned int)(i % (H * W));
    unsigned int iy = j / W, ix = j % W;
    float s = 0.0f;
    for (unsigned int oy = 0; oy < OH; ++oy) {
        unsigned int y0, y1;
        adaptive(oy, OH, H, y0, y1);
        if (iy < y0 || iy >= y1) continue;
        for (unsigned int ox = 0; ox < OW; ++ox) {
            unsigned int x0, x1;
            adaptive(ox, OW, W, x0, x1);
            if (ix < x0 || ix >= x1) continue;
            s += src0[(plane * OH + oy) * OW + ox] / (float)((y1 - y0) * (x1 - x0));
        }
    }
    dst[i] = s;
}
