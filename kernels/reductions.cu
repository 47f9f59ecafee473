// The Grad-CAM reductions: gradient GAP, weighted and elementwise channel sums, the Grad-CAM++
// and XGradCAM channel weights, and min-max normalisation. Plane reductions use one warp per
// plane (lanes stride the plane, then a shuffle tree), so a 7×7 or 14×14 plane costs one load
// per lane rather than one thread's serial loop.

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return __shfl_sync(0xffffffffu, v, 0);
}

// The warp's plane index for a launch of 8 warps per block.
__device__ __forceinline__ unsigned long long warp_plane() {
    return (unsigned long long)blockIdx.x * 8 + threadIdx.x / 32;
}

// Mean of each plane; a = (planes, plane).
KERNEL void gradient_gap(ARGS) {
    unsigned long long i = warp_plane();
    if (i >= p.a[0]) return;
    unsigned int P = p.a[1], lane = threadIdx.x % 32;
    float s = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) s += src0[i * P + j];
    s = warp_sum(s);
    if (lane == 0) dst[i] = s * (1.0f / (float)P);
}

// Σ dy·a over each plane (the gradient of a broadcast product's factor); src0 = dy, src1 = a;
// a = (planes, plane).
KERNEL void mul_plane_sum(ARGS) {
    unsigned long long i = warp_plane();
    if (i >= p.a[0]) return;
    unsigned int P = p.a[1], lane = threadIdx.x % 32;
    float s = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) s += src0[i * P + j] * src1[i * P + j];
    s = warp_sum(s);
    if (lane == 0) dst[i] = s;
}

// Σₖ w[n,k]·a[n,k,·], rectified when a.w = 1: src0 = a, src1 = w; a = (n·plane, k, plane, relu).
KERNEL void weighted_channel_sum(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int K = p.a[1], P = p.a[2];
    unsigned long long n = i / P, q = i % P;
    float s = 0.0f;
    for (unsigned int k = 0; k < K; ++k) s += src1[n * K + k] * src0[(n * K + k) * P + q];
    if (p.a[3] == 1u) s = fmaxf(s, 0.0f);
    dst[i] = s;
}

// Σₖ f(g)·a with f = ReLU when a.w = 1: src0 = a, src1 = g; a = (n·plane, k, plane, relu_grad).
KERNEL void elementwise_channel_sum(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    unsigned int K = p.a[1], P = p.a[2];
    unsigned long long n = i / P, q = i % P;
    float s = 0.0f;
    for (unsigned int k = 0; k < K; ++k) {
        unsigned long long j = (n * K + k) * P + q;
        float g = src1[j];
        if (p.a[3] == 1u) g = fmaxf(g, 0.0f);
        s += g * src0[j];
    }
    dst[i] = s;
}

// Grad-CAM++ weight of each plane; src0 = a, src1 = g; a = (planes, plane).
KERNEL void gradcampp_weights(ARGS) {
    unsigned long long i = warp_plane();
    if (i >= p.a[0]) return;
    unsigned int P = p.a[1], lane = threadIdx.x % 32;
    unsigned long long base = i * P;
    float sa = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) sa += src0[base + j];
    sa = warp_sum(sa);
    float s = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) {
        float g = src1[base + j];
        if (g == 0.0f) continue;
        float g2 = g * g;
        s += fmaxf(g, 0.0f) * (g2 / (g2 + g2 + sa * g2 * g + 1e-6f));
    }
    s = warp_sum(s);
    if (lane == 0) dst[i] = s;
}

// XGradCAM weight of each plane: Σ g·a / (Σ a + 1e-7); src0 = a, src1 = g; a = (planes, plane).
KERNEL void xgradcam_weights(ARGS) {
    unsigned long long i = warp_plane();
    if (i >= p.a[0]) return;
    unsigned int P = p.a[1], lane = threadIdx.x % 32;
    unsigned long long base = i * P;
    float sa = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) sa += src0[base + j];
    sa = warp_sum(sa);
    float s = 0.0f;
    for (unsigned int j = lane; j < P; j += 32) s += src1[base + j] * src0[base + j] / (sa + 1e-7f);
    s = warp_sum(s);
    if (lane == 0) dst[i] = s;
}

// Min-max normalisation of each group: (x − min) / (max − min + eps), one block of 256 threads
// per group. a = (groups, group size), f.x = eps.
KERNEL void normalize_min_max(ARGS) {
    __shared__ float red[256];
    unsigned long long base = (unsigned long long)blockIdx.x * p.a[1];
    unsigned int n = p.a[1];
    float lo = FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < n; j += 256) lo = fminf(lo, src0[base + j]);
    red[threadIdx.x] = lo;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fminf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    float m = red[0];
    __syncthreads();
    float hi = -FLT_MAX_;
    for (unsigned int j = threadIdx.x; j < n; j += 256) hi = fmaxf(hi, src0[base + j] - m);
    red[threadIdx.x] = hi;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    float d = red[0] + p.f[0];
    for (unsigned int j = threadIdx.x; j < n; j += 256) dst[base + j] = (src0[base + j] - m) / d;
}
