// The tiled GEMM behind convolution (forward and backward-data, as implicit GEMMs with the
// columns gathered on the fly) and the linear layers (strided operands). Prepended to conv.cu
// and linear.cu.
//
// A block of 256 threads computes a BM×BN tile of C = A·B over a slice of the depth: BK-deep
// tiles of A (BM×BK) and B (BK×BN) staged through two shared-memory buffers (the next tile is
// fetched into registers while the current one is multiplied: double buffering), each thread
// accumulating a TM×TN register tile (8×8 for 128×128 tiles, 4×4 for 64×64), read from shared
// memory as 16-byte vectors. Weight rows are read as 16-byte vectors when aligned. A
// convolution's B gather divides by the kernel's taps once per thread, before the loop: each
// thread carries its depth row's (channel, tap row, tap column) forward by BK, and in the
// forward keeps its four columns' first-tap offsets, to which a load adds one row offset.
// (Backward-data's weight load and stride tests still divide per element: it runs only where
// the flipped weight cannot, e.g. with dilation.)
//
// TC (tensor cores): the same tiles multiplied by mma.sync m16n8k8 in TF32 (operands rounded
// to 10-bit mantissas, f32 accumulation), the 8 warps as 2 × 4 blocks of the tile (64×32 of a
// 128×128 tile, 32×16 of a 64×64 one); shared-memory rows padded by 8 floats so the fragment
// reads hit distinct banks.
//
// Epilogue: bias (f.x = 1), then with CLAMP clamp(v, f.z, f.w) (a convolution fused with the
// rectifier after it, bit-identical to the two kernels; launched without split-K, where
// `splitk_reduce` clamps after the sum when f.y = 1).
//
// Split-K: blockIdx.z = group·splits + slice; with splits > 1 each slice writes its partial
// tile to dst + slice·count and `splitk_reduce` sums them in a fixed order (deterministic).
//
// Parameters: conv modes a = (n, c, h, w), b = (k, kh, kw, oh), c = (ow, sh, sw, ph),
// d = (pw, dh, dw, groups); GEMM mode a = (m, n, depth, a_off), b = (a_rs, a_cs, b_rs, b_cs),
// c = (ldc, coff). All: e = (splits, depth per split, vec4 A loads, count), f.x = 1 with a bias
// in src2.

#define MODE_CONV_FWD 0
#define MODE_CONV_BWD 1
#define MODE_GEMM 2

// Rounds an f32 to TF32 (round to nearest, ties away), as the tensor cores read it.
__device__ __forceinline__ unsigned int to_tf32(float f) {
    unsigned int r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f));
    return r;
}

// d += a·b for one m16n8k8 TF32 fragment triple.
__device__ __forceinline__ void mma_tf32(float *d, const unsigned int *a, const unsigned int *b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int MODE, int BM, int BN, int BK, bool TC = false, bool CLAMP = false>
__device__ __forceinline__ void tile_gemm(const Params &p, const float *__restrict__ src0,
                                          const float *__restrict__ src1,
                                          const float *__restrict__ src2, float *__restrict__ dst) {
    constexpr int TM = BM / 16, TN = BN / 16;
    constexpr int A_TPR = BK / 4;  // threads per A row (4 depth values each)
    constexpr int B_TPR = BN / 4;  // threads per B depth row (4 columns each)
    static_assert(!TC || (BM % 32 == 0 && BN % 32 == 0 && BK % 8 == 0), "TF32 tile shape");
    // Tensor-core warp blocks: WTM × WTN per warp, FM × FN fragments of 16×8.
    constexpr int WTM = BM / 2, WTN = BN / 4, FM = WTM / 16, FN = WTN / 8;
    constexpr int PAD = TC ? 8 : 0;
    __shared__ __align__(16) float As[2][BK][BM + PAD];
    __shared__ __align__(16) float Bs[2][BK][BN + PAD];

    const int tid = threadIdx.x;
    // Geometry.
    const unsigned int N = p.a[0], C = p.a[1], H = p.a[2], W = p.a[3];
    const unsigned int K = p.b[0], KH = p.b[1], KW = p.b[2], OH = p.b[3];
    const unsigned int OW = p.c[0], SH = p.c[1], SW = p.c[2], PH = p.c[3];
    const unsigned int PW = p.d[0], DH = p.d[1], DW = p.d[2], G = p.d[3];
    const unsigned int KK = KH * KW;
    unsigned int M, NC, depth, P;
    unsigned int cg = 1, kg = 1;
    if (MODE == MODE_GEMM) {
        M = p.a[0]; NC = p.a[1]; depth = p.a[2]; P = 1;
    } else {
        cg = C / G; kg = K / G;
        if (MODE == MODE_CONV_FWD) { M = kg; P = OH * OW; depth = cg * KK; }
        else { M = cg; P = H * W; depth = kg * KK; }
        NC = N * P;
    }
    const unsigned int splits = p.e[0], per = p.e[1];
    const unsigned int g = blockIdx.z / splits, slice = blockIdx.z % splits;
    const unsigned int k_begin = slice * per;
    const unsigned int k_end = min(depth, k_begin + per);
    const unsigned int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    const bool vec_a = p.e[2] != 0u;

    // This thread's A row and depth offset, B depth row and four columns.
    const unsigned int a_row = row0 + tid / A_TPR, a_d = (tid % A_TPR) * 4;
    const unsigned int b_k = tid / B_TPR, b_c = (tid % B_TPR) * 4;
    long long cbase[4];
    int cy[4], cx[4];
    unsigned int cmask = 0;  // bit j: column j exists (col < NC)
    auto cvalid = [&](int j) { return ((cmask >> j) & 1u) != 0u; };
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        unsigned int col = col0 + b_c + j;
        cbase[j] = 0;
        cy[j] = 0; cx[j] = 0;
        if (col < NC) {
            cmask |= 1u << j;
            if (MODE == MODE_GEMM) {
                cbase[j] = (long long)col * p.b[3];
            } else {
                unsigned int img = col / P, q = col % P;
                if (MODE == MODE_CONV_FWD) {
                    cy[j] = (int)((q / OW) * SH) - (int)PH;
                    cx[j] = (int)((q % OW) * SW) - (int)PW;
                    // The column's first tap's offset (outside the image where padded): a
                    // load adds its row's offset, once for all four columns.
                    cbase[j] = ((long long)img * C + g * cg) * H * W + (long long)cy[j] * W + cx[j];
                } else {
                    cbase[j] = ((long long)img * K + g * kg) * OH * OW;
                    cy[j] = (int)(q / W + PH);
                    cx[j] = (int)(q % W + PW);
                }
            }
        }
    }

    // This thread's B depth row as (channel, tap row, tap column), for the depth the next load
    // reads; each load advances it by BK with carries instead of dividing by the taps.
    unsigned int bci = 0, bki = 0, bkj = 0, sci = 0, ski = 0, skj = 0;
    if (MODE != MODE_GEMM) {
        const unsigned int d = k_begin + b_k, t = d % KK, st = BK % KK;
        bci = d / KK; bki = t / KW; bkj = t % KW;
        sci = BK / KK; ski = st / KW; skj = st % KW;
    }

    float ra[4], rb[4];
    auto load = [&](unsigned int k0) {
        // A: four consecutive depth values of one row.
        unsigned int d0 = k0 + a_d;
        if (MODE != MODE_CONV_BWD && vec_a && a_row < M && d0 < k_end) {
            const float *base = MODE == MODE_GEMM
                                    ? src0 + p.a[3] + (unsigned long long)a_row * p.b[0] + d0
                                    : src1 + ((unsigned long long)g * kg + a_row) * depth + d0;
            float4 v = *reinterpret_cast<const float4 *>(base);
            ra[0] = v.x; ra[1] = v.y; ra[2] = v.z; ra[3] = v.w;
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                unsigned int d = d0 + i;
                float v = 0.0f;
                if (a_row < M && d < k_end) {
                    if (MODE == MODE_GEMM)
                        v = src0[p.a[3] + (unsigned long long)a_row * p.b[0] + (unsigned long long)d * p.b[1]];
                    else if (MODE == MODE_CONV_FWD)
                        v = src1[((unsigned long long)g * kg + a_row) * depth + d];
                    else
                        v = src1[(((unsigned long long)g * kg + d / KK) * cg + a_row) * KK + d % KK];
                }
                ra[i] = v;
            }
        }
        // B: one depth row, four columns, gathered.
        unsigned int d = k0 + b_k;
        bool live = d < k_end;
        const unsigned int ci = bci, ki = bki, kj = bkj;
        if (MODE != MODE_GEMM) {
            bkj += skj;
            if (bkj >= KW) { bkj -= KW; ++bki; }
            bki += ski;
            if (bki >= KH) { bki -= KH; ++bci; }
            bci += sci;
        }
        // Forward: this depth row's offset from a column's first tap, and its tap's shift.
        const int oy = (int)(ki * DH), ox = (int)(kj * DW);
        const long long roff = (long long)ci * H * W + (long long)oy * W + ox;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            float v = 0.0f;
            if (live && cvalid(j)) {
                if (MODE == MODE_GEMM) {
                    v = src1[(unsigned long long)d * p.b[2] + cbase[j]];
                } else if (MODE == MODE_CONV_FWD) {
                    if ((unsigned int)(cy[j] + oy) < H && (unsigned int)(cx[j] + ox) < W)
                        v = src0[cbase[j] + roff];
                } else {
                    int ty = cy[j] - (int)(ki * DH), tx = cx[j] - (int)(kj * DW);
                    if (ty >= 0 && tx >= 0 && ty % (int)SH == 0 && tx % (int)SW == 0) {
                        unsigned int oy = (unsigned int)ty / SH, ox = (unsigned int)tx / SW;
                        if (oy < OH && ox < OW)
                            v = src0[cbase[j] + ((long long)ci * OH + oy) * OW + ox];
                    }
                }
            }
            rb[j] = v;
        }
    };
    auto store = [&](int buf) {
        const unsigned int r = tid / A_TPR;
#pragma unroll
        for (int i = 0; i < 4; ++i) As[buf][a_d + i][r] = ra[i];
        *reinterpret_cast<float4 *>(&Bs[buf][b_k][b_c]) = make_float4(rb[0], rb[1], rb[2], rb[3]);
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    const int ty = tid / 16, tx = tid % 16;
    // Tensor-core layout: warp (wm, wn) owns rows wm..wm+WTM-1 and columns wn..wn+WTN-1 of the
    // tile as FM×FN fragments of 16×8, fragment (i, j)'s c0..c3 at flat acc[4·(FN·i + j) + r]
    // (FM·FN·4 = TM·TN; indexing acc[i][4·j + r] in the 2-D array would overlap rows).
    const int lane = tid % 32, gid = lane / 4, tig = lane % 4;
    const int wm = (tid / 32 / 4) * WTM, wn = (tid / 32 % 4) * WTN;
    if (k_begin < k_end) {
        load(k_begin);
        store(0);
        __syncthreads();
        int buf = 0;
        for (unsigned int k = k_begin; k < k_end; k += BK) {
            const bool more = k + BK < k_end;
            if (more) load(k + BK);
            if constexpr (TC) {
#pragma unroll
                for (int k8 = 0; k8 < BK; k8 += 8) {
                    unsigned int fa[FM][4], fb[FN][2];
#pragma unroll
                    for (int i = 0; i < FM; ++i) {
                        const int m0 = wm + i * 16 + gid;
                        fa[i][0] = to_tf32(As[buf][k8 + tig][m0]);
                        fa[i][1] = to_tf32(As[buf][k8 + tig][m0 + 8]);
                        fa[i][2] = to_tf32(As[buf][k8 + tig + 4][m0]);
                        fa[i][3] = to_tf32(As[buf][k8 + tig + 4][m0 + 8]);
                    }
#pragma unroll
                    for (int j = 0; j < FN; ++j) {
                        const int n0 = wn + j * 8 + gid;
                        fb[j][0] = to_tf32(Bs[buf][k8 + tig][n0]);
                        fb[j][1] = to_tf32(Bs[buf][k8 + tig + 4][n0]);
                    }
#pragma unroll
                    for (int i = 0; i < FM; ++i)
#pragma unroll
                        for (int j = 0; j < FN; ++j)
                            mma_tf32(&acc[0][0] + 4 * (FN * i + j), fa[i], fb[j]);
                }
            } else
#pragma unroll
            for (int kk = 0; kk < BK; ++kk) {
                float a[TM], b[TN];
#pragma unroll
                for (int h = 0; h < TM / 4; ++h) {
                    float4 v = *reinterpret_cast<const float4 *>(&As[buf][kk][h * (BM / 2) + ty * 4]);
                    a[h * 4] = v.x; a[h * 4 + 1] = v.y; a[h * 4 + 2] = v.z; a[h * 4 + 3] = v.w;
                }
#pragma unroll
                for (int h = 0; h < TN / 4; ++h) {
                    float4 v = *reinterpret_cast<const float4 *>(&Bs[buf][kk][h * (BN / 2) + tx * 4]);
                    b[h * 4] = v.x; b[h * 4 + 1] = v.y; b[h * 4 + 2] = v.z; b[h * 4 + 3] = v.w;
                }
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            if (more) store(buf ^ 1);
            __syncthreads();
            buf ^= 1;
        }
    }

    const bool bias = p.f[0] > 0.5f && splits == 1u;
    float *out = dst + (unsigned long long)slice * p.e[3];
    auto emit = [&](unsigned int row, unsigned int col, float v) {
        if (row >= M || col >= NC) return;
        if (MODE == MODE_GEMM) {
            if (bias) v += src2[p.c[1] + col];
            out[(unsigned long long)row * p.c[0] + p.c[1] + col] = v;
        } else {
            unsigned int img = col / P, q = col % P;
            if (MODE == MODE_CONV_FWD) {
                if (bias) v += src2[g * kg + row];
                if constexpr (CLAMP) v = fminf(fmaxf(v, p.f[2]), p.f[3]);
                out[((unsigned long long)img * K + g * kg + row) * P + q] = v;
            } else {
                out[((unsigned long long)img * C + g * cg + row) * P + q] = v;
            }
        }
    };
    if constexpr (TC) {
#pragma unroll
        for (int i = 0; i < FM; ++i)
#pragma unroll
            for (int j = 0; j < FN; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r)
                    emit(row0 + wm + i * 16 + gid + 8 * (r / 2), col0 + wn + j * 8 + 2 * tig + r % 2,
                         (&acc[0][0])[4 * (FN * i + j) + r]);
    } else {
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j)
                emit(row0 + (i / 4) * (BM / 2) + ty * 4 + (i % 4),
                     col0 + (j / 4) * (BN / 2) + tx * 4 + (j % 4), acc[i][j]);
    }
}

// Sums the split-K partials in slice order and adds the bias: a = (count, splits, bias_div,
// bias_mod), f.x = 1 with a bias in src2 at (i / bias_div) % bias_mod; then clamp(s, f.z, f.w)
// when f.y = 1.
KERNEL void splitk_reduce(ARGS) {
    unsigned long long i = flat_index();
    if (i >= p.a[0]) return;
    float s = 0.0f;
    for (unsigned int k = 0; k < p.a[1]; ++k) s += src0[(unsigned long long)k * p.a[0] + i];
    if (p.f[0] > 0.5f) s += src2[(i / p.a[2]) % p.a[3]];
    if (p.f[1] > 0.5f) s = fminf(fmaxf(s, p.f[2]), p.f[3]);
    dst[i] = s;
}
