// Rectifiers clamp(x, lo, hi) and their backward in three modes, and the other activations.
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

// Smooth and piecewise-linear activations and their derivatives (gradcam_core::Activation):
// a.x = count, a.y = kind (0 sigmoid, 1 tanh, 2 leaky ReLU, 3 ELU, 4 hard sigmoid,
// 5 hard swish, 6 reciprocal); f.x = α, f.y = β.
__device__ __forceinline__ float act_value(unsigned int kind, float v, float al, float be) {
    switch (kind) {
    case 0: return 1.0f / (1.0f + expf(-v));
    case 1: return tanhf(v);
    case 2: return v >= 0.0f ? v : al * v;
    case 3: return v > 0.0f ? v : al * (expf(v) - 1.0f);
    case 4: return fminf(fmaxf(al * v + be, 0.0f), 1.0f);
    case 6: return 1.0f / v;
    default: return v * fminf(fmaxf(v / 6.0f + 0.5f, 0.0f), 1.0f);
    }
}

__device__ __forceinline__ float act_slope(unsigned int kind, float v, float al, float be) {
    switch (kind) {
    case 0: {
        float s = 1.0f / (1.0f + expf(-v));
        return s * (1.0f - s);
    }
    case 1: {
        float t = tanhf(v);
        return 1.0f - t * t;
    }
    case 2: return v > 0.0f ? 1.0f : al;
    case 3: return v > 0.0f ? 1.0f : al * expf(v);
    case 4: {
        float u = al * v + be;
        return u > 0.0f && u < 1.0f ? al : 0.0f;
    }
    case 6: return -(1.0f / (v * v));
    default: return v < -3.0f ? 0.0f : (v <= 3.0f ? v / 3.0f + 0.5f : 1.0f);
    }
}

KERNEL void activation_forward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = act_value(p.a[1], src0[i], p.f[0], p.f[1]);
}

// src0 = the activation's input x, src1 = dy.
KERNEL void activation_backward(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    dst[i] = src1[i] * act_slope(p.a[1], src0[i], p.f[0], p.f[1]);
}
