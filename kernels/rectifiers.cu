// Rectifiers clamp(x, lo, hi) and their backward in three modes.
// a.x = count, a.y = mode (0 plain, 1 guided, 2 deconvnet); f.x = lo, f.y = hi.

KERNEL void rectifier_forward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = fminf(fmaxf(src0[i], p.f[0]), p.f[1]);
}

// src0 = the forward output y, src1 = dy.
KERNEL void rectifier_backward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    float y = src0[i];
    float g = src1[i];
    bool inside = y > p.f[0] && y < p.f[1];
    bool keep = inside;
    if (p.a[1] == 1u) keep = inside && g > 0.0f;
    if (p.a[1] == 2u) keep = g > 0.0f;
    dst[i] = keep ? g : 0.0f;
}
