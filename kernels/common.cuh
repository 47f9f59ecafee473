// Shared by every kernel file (prepended when a file is compiled): the parameter block every
// kernel takes by value, and the signature convention — up to three read-only inputs and one
// output; absent inputs are bound to a one-element dummy buffer.
struct Params {
    unsigned int a[4];
    unsigned int b[4];
    unsigned int c[4];
    unsigned int d[4];
    unsigned int e[4];
    float f[4];
};

#define KERNEL extern "C" __global__
#define ARGS                                                                             \
    const Params p, const float *__restrict__ src0, const float *__restrict__ src1,   \
        const float *__restrict__ src2, float *__restrict__ dst
// The same with a second output, for kernels that write two tensors in one pass.
#define ARGS2 ARGS, float *__restrict__ dst2
#define FLT_MAX_ 3.4028235e38f

// Flat index of a 1-D launch (blocks of 256 along x).
__device__ __forceinline__ unsigned long long flat_index() {
    return (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
}
