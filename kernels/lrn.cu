// Local response normalisation across channels. a = (count, channels, plane, reach below),
// b.x = reach above, f = (α/size, β, bias). The normaliser s_c = bias + α/size·Σ_{W(c)} x²,
// W(c) = [c − below, c + above] clipped to the channels.

__device__ __forceinline__ float lrn_norm(const Params &p, const float *x, unsigned long long img,
                                          unsigned int ch, unsigned int q) {
    unsigned int C = p.a[1], P = p.a[2];
    unsigned int lo = ch >= p.a[3] ? ch - p.a[3] : 0u;
    unsigned int hi = min(ch + p.b[0], C - 1u);
    float s = 0.0f;
    for (unsigned int i = lo; i <= hi; ++i) {
        float v = x[(img * C + i) * P + q];
        s = fmaf(v, v, s);
    }
    return p.f[2] + p.f[0] * s;
}

// y = x / s^β; src0 = x.
KERNEL void lrn_forward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int C = p.a[1], P = p.a[2];
    unsigned int q = i % P, ch = (i / P) % C;
    unsigned long long img = i / ((unsigned long long)P * C);
    dst[i] = src0[i] * powf(lrn_norm(p, src0, img, ch, q), -p.f[1]);
}

// dx_j = dy_j·s_j^−β − 2αβ/size·x_j·Σ_{c ∈ [j − above, j + below]} dy_c·x_c·s_c^(−β−1);
// src0 = x, src1 = dy.
KERNEL void lrn_backward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int C = p.a[1], P = p.a[2];
    unsigned int q = i % P, j = (i / P) % C;
    unsigned long long img = i / ((unsigned long long)P * C);
    unsigned int lo = j >= p.b[0] ? j - p.b[0] : 0u;
    unsigned int hi = min(j + p.a[3], C - 1u);
    float sum = 0.0f;
    for (unsigned int ch = lo; ch <= hi; ++ch) {
        unsigned long long e = (img * C + ch) * P + q;
        sum += src1[e] * src0[e] * powf(lrn_norm(p, src0, img, ch, q), -p.f[1] - 1.0f);
    }
    dst[i] = src1[i] * powf(lrn_norm(p, src0, img, j, q), -p.f[1]) -
             2.0f * p.f[0] * p.f[1] * src0[i] * sum;
}
