/* cuda-kernels.cu — the cuda backend's own kernels: everything cuDNN and
 * cuBLAS do not cover with the exact contract of tp-backend.h (elementwise
 * ops, dropout, the SGD update, bias and row sums, padding for asymmetric
 * convolutions, evaluation batch norm, pooling, softmax and the loss).
 * Launchers and contracts: cuda-kernels.h.
 *
 * Elementwise kernels use a grid-stride loop over size_t indices. Reductions
 * that decide accuracy (row sums, pooling averages, softmax sums, the loss)
 * accumulate in double, as the cpu backend does, so the two agree to the
 * tolerances of tests/backends/test-conformance.c. Pooling backward is a
 * gather (one thread per input cell), so it needs no atomics, no zeroing
 * pass, and its sums do not depend on scheduling.
 *
 * The kernels are plain C++ but for CUDA's qualifiers, thread indices and
 * rounding intrinsics; everything that needs nvcc (the launchers) is under
 * __CUDACC__. tests/backends/test-cuda-kernels.cc includes this file with
 * host stand-ins for those names and runs each kernel as a grid of one
 * thread, whose grid-stride loop then visits every index: the kernels'
 * arithmetic and indexing are tested against the reference kernels on any
 * machine, a GPU only adds the parallel launch.
 */
#include <math.h>

#include "cuda-kernels.h"

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)blockDim.x * gridDim.x)

/* ------------------------------------------------------------ elementwise */

__global__ static void
fill_kernel(float *dst, float value, size_t n)
{
    GRID_STRIDE(i, n) dst[i] = value;
}

__global__ static void
relu_forward_kernel(size_t n, const float *x, float *y)
{
    GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ static void
relu_backward_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ static void
add_kernel(size_t n, const float *a, const float *b, float *y)
{
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ static void
mul_kernel(size_t n, const float *a, const float *b, float *y)
{
    GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

__global__ static void
axpby_kernel(size_t n, float alpha, const float *x, float beta, float *y)
{
    if (beta == 0.0f) {
        GRID_STRIDE(i, n) y[i] = alpha * x[i];
    } else {
        GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i];
    }
}

__global__ static void
clamp_kernel(size_t n, const float *x, float lo, float hi, float *y)
{
    GRID_STRIDE(i, n)
    {
        float v = x[i];
        y[i] = v < lo ? lo : v > hi ? hi : v;
    }
}

/* The divisor is formed in float, as every backend forms it; NaN stays NaN. */
__global__ static void
stabilized_divide_kernel(size_t n, const float *r, const float *z, float epsilon, float zero,
                         float *y)
{
    GRID_STRIDE(i, n)
    {
        float v = z[i];
        float d = v > 0.0f ? v + epsilon : v < 0.0f ? v - epsilon : v == 0.0f ? zero : v;
        y[i] = __fdiv_rn(r[i], d);
    }
}

/* tp_dropout_keep() of tp-backend.h, bit for bit. */
__device__ static bool
dropout_keep(uint64_t seed, uint64_t i, float ratio)
{
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) >= (double)ratio;
}

/* ratio = 1 keeps nothing, so the division never sees 0. */
__global__ static void
dropout_kernel(size_t n, float ratio, uint64_t seed, const float *x, float *y)
{
    GRID_STRIDE(i, n) y[i] = dropout_keep(seed, i, ratio) ? __fdiv_rn(x[i], 1.0f - ratio) : 0.0f;
}

/* Written as cpu_sgd_update() is, with explicit roundings so nvcc's fused
 * multiply-adds do not change the result. */
__global__ static void
sgd_update_kernel(size_t n, float *w, const float *g, float *v, float lr, float momentum,
                  float decay, int nesterov)
{
    GRID_STRIDE(i, n)
    {
        float grad = __fadd_rn(g[i], __fmul_rn(decay, w[i]));
        float vel = __fadd_rn(__fmul_rn(momentum, v[i]), grad);
        float step = nesterov ? __fadd_rn(grad, __fmul_rn(momentum, vel)) : vel;
        v[i] = vel;
        w[i] = __fsub_rn(w[i], __fmul_rn(lr, step));
    }
}

/* ------------------------------------------------------------ dense helpers */

__global__ static void
add_bias_kernel(size_t n, int cols, const float *bias, float *y)
{
    GRID_STRIDE(i, n) y[i] += bias[i % (size_t)cols];
}

__global__ static void
sum_rows_kernel(int rows, int cols, const float *x, float *y)
{
    GRID_STRIDE(j, (size_t)cols)
    {
        double acc = 0.0;
        for (int r = 0; r < rows; r++)
            acc += x[(size_t)r * cols + j];
        y[j] = (float)acc;
    }
}

/* ------------------------------------------------------------ padding */

__global__ static void
pad_kernel(size_t total, int h, int w, int pt, int pl, int hp, int wp, const float *x, float *xp)
{
    GRID_STRIDE(i, total)
    {
        size_t plane = i / ((size_t)hp * wp);
        int r = (int)(i / wp % hp) - pt;
        int col = (int)(i % wp) - pl;
        xp[i] = r >= 0 && r < h && col >= 0 && col < w ? x[(plane * h + r) * w + col] : 0.0f;
    }
}

__global__ static void
crop_kernel(size_t total, int h, int w, int pt, int pl, int hp, int wp, const float *dxp, float *dx)
{
    GRID_STRIDE(i, total)
    {
        size_t plane = i / ((size_t)h * w);
        int r = (int)(i / w % h) + pt;
        int col = (int)(i % w) + pl;
        dx[i] = dxp[(plane * hp + r) * wp + col];
    }
}

/* ------------------------------------------------------------ batch norm */

__global__ static void
batch_norm_eval_kernel(size_t total, int c, int hw, float epsilon, const float *x,
                       const float *scale, const float *bias, const float *mean, const float *var,
                       float *y)
{
    GRID_STRIDE(i, total)
    {
        int ch = (int)(i / hw % c);
        float a = scale[ch] / sqrtf(var[ch] + epsilon);
        y[i] = __fadd_rn(__fmul_rn(__fsub_rn(x[i], mean[ch]), a), bias[ch]);
    }
}

/* ------------------------------------------------------------ pooling */

__global__ static void
pool_forward_kernel(CudaPoolShape g, const float *x, float *y)
{
    size_t total = (size_t)g.n * g.c * g.out_h * g.out_w;

    GRID_STRIDE(o, total)
    {
        int ow = (int)(o % g.out_w);
        int oh = (int)(o / g.out_w % g.out_h);
        size_t nc = o / ((size_t)g.out_w * g.out_h);
        const float *src = x + nc * g.h * g.w;
        int hs = oh * g.stride_h - g.pad_t, ws = ow * g.stride_w - g.pad_l;
        int h0 = max(hs, 0), h1 = min(hs + g.kh, g.h);
        int w0 = max(ws, 0), w1 = min(ws + g.kw, g.w);

        if (g.max) {
            float m = -INFINITY;
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    m = fmaxf(m, src[ih * g.w + iw]);
            y[o] = m;
        } else {
            int divisor = g.count_include_pad ? g.kh * g.kw : max(h1 - h0, 0) * max(w1 - w0, 0);
            double sum = 0.0;
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    sum += src[ih * g.w + iw];
            y[o] = divisor > 0 ? (float)(sum / divisor) : 0.0f;
        }
    }
}

/* The first output row (or column) whose window, starting at o * stride -
 * pad and k wide, covers input coordinate i: ceil((i + pad - k + 1) / stride),
 * at least 0. */
__device__ static int
first_window(int i, int pad, int k, int stride)
{
    int num = i + pad - k + 1;
    return num <= 0 ? 0 : (num + stride - 1) / stride;
}

__global__ static void
pool_backward_kernel(CudaPoolShape g, const float *x, const float *y, const float *dy, float *dx)
{
    size_t total = (size_t)g.n * g.c * g.h * g.w;

    GRID_STRIDE(i, total)
    {
        int iw = (int)(i % g.w);
        int ih = (int)(i / g.w % g.h);
        size_t nc = i / ((size_t)g.w * g.h);
        const float *xs = x + nc * g.h * g.w;
        const float *ys = y + nc * g.out_h * g.out_w;
        const float *dys = dy + nc * g.out_h * g.out_w;
        int oh0 = first_window(ih, g.pad_t, g.kh, g.stride_h);
        int oh1 = min((ih + g.pad_t) / g.stride_h + 1, g.out_h);
        int ow0 = first_window(iw, g.pad_l, g.kw, g.stride_w);
        int ow1 = min((iw + g.pad_l) / g.stride_w + 1, g.out_w);
        float acc = 0.0f;

        for (int oh = oh0; oh < oh1; oh++) {
            for (int ow = ow0; ow < ow1; ow++) {
                int o = oh * g.out_w + ow;
                int hs = oh * g.stride_h - g.pad_t, ws = ow * g.stride_w - g.pad_l;
                int h0 = max(hs, 0), h1 = min(hs + g.kh, g.h);
                int w0 = max(ws, 0), w1 = min(ws + g.kw, g.w);

                if (g.max) {
                    /* Is (ih, iw) the first cell, row-major, that holds the max? */
                    int first = -1;
                    for (int r = h0; r < h1 && first < 0; r++)
                        for (int col = w0; col < w1; col++)
                            if (xs[r * g.w + col] == ys[o]) {
                                first = r * g.w + col;
                                break;
                            }
                    if (first == ih * g.w + iw)
                        acc += dys[o];
                } else {
                    int divisor =
                        g.count_include_pad ? g.kh * g.kw : max(h1 - h0, 0) * max(w1 - w0, 0);
                    if (divisor > 0)
                        acc += dys[o] / (float)divisor;
                }
            }
        }
        dx[i] = acc;
    }
}

/* ------------------------------------------------------------ softmax */

__global__ static void
softmax_forward_kernel(int rows, int cols, const float *x, float *y)
{
    GRID_STRIDE(r, (size_t)rows)
    {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = -INFINITY;
        double sum = 0.0;
        float inv;

        for (int j = 0; j < cols; j++)
            m = fmaxf(m, xr[j]);
        for (int j = 0; j < cols; j++) {
            yr[j] = expf(xr[j] - m);
            sum += yr[j];
        }
        inv = (float)(1.0 / sum);
        for (int j = 0; j < cols; j++)
            yr[j] *= inv;
    }
}

__global__ static void
softmax_backward_kernel(int rows, int cols, const float *y, const float *dy, float *dx)
{
    GRID_STRIDE(r, (size_t)rows)
    {
        const float *yr = y + r * cols;
        const float *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        double dot = 0.0;
        float d;

        for (int j = 0; j < cols; j++)
            dot += (double)yr[j] * dyr[j];
        d = (float)dot;
        for (int j = 0; j < cols; j++)
            dxr[j] = yr[j] * (dyr[j] - d);
    }
}

__global__ static void
softmax_cross_entropy_kernel(int rows, int cols, const float *logits, const int32_t *labels,
                             float smoothing, float *dlogits, double *row_loss)
{
    const double off = (double)smoothing / cols;
    const double on = 1.0 - smoothing + off;

    GRID_STRIDE(r, (size_t)rows)
    {
        const float *xr = logits + r * cols;
        const int label = labels[r];
        double m = -INFINITY, sum = 0.0, sum_x = 0.0, lse;

        for (int j = 0; j < cols; j++)
            m = fmax(m, (double)xr[j]);
        for (int j = 0; j < cols; j++) {
            sum += exp(xr[j] - m);
            sum_x += xr[j];
        }
        lse = m + log(sum);
        /* sum_j target_j * (lse - x_j), the target summing to 1. */
        row_loss[r] = lse - (1.0 - smoothing) * xr[label] - off * sum_x;
        if (dlogits != NULL) {
            float *dr = dlogits + r * cols;
            for (int j = 0; j < cols; j++) {
                double target = j == label ? on : off;
                dr[j] = (float)((exp(xr[j] - lse) - target) / rows);
            }
        }
    }
}

/* ------------------------------------------------------------ launchers */

#ifdef __CUDACC__

#define THREADS 256
#define MAX_BLOCKS 65535u

/* Blocks for n work items, at most MAX_BLOCKS (the loops stride past it). */
static unsigned int
blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned int)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

/* Queues kernel<<<blocks_for(n), THREADS, 0, stream>>>(args) unless n is 0. */
#define LAUNCH(kernel, stream, n, ...)                                                             \
    do {                                                                                           \
        if ((n) == 0)                                                                              \
            return cudaSuccess;                                                                    \
        kernel<<<blocks_for(n), THREADS, 0, (stream)>>>(__VA_ARGS__);                              \
        return cudaGetLastError();                                                                 \
    } while (0)

extern "C" {

cudaError_t
cuda_launch_fill(cudaStream_t stream, float *dst, float value, size_t n)
{
    LAUNCH(fill_kernel, stream, n, dst, value, n);
}

cudaError_t
cuda_launch_relu_forward(cudaStream_t stream, size_t n, const float *x, float *y)
{
    LAUNCH(relu_forward_kernel, stream, n, n, x, y);
}

cudaError_t
cuda_launch_relu_backward(cudaStream_t stream, size_t n, const float *y, const float *dy, float *dx)
{
    LAUNCH(relu_backward_kernel, stream, n, n, y, dy, dx);
}

cudaError_t
cuda_launch_add(cudaStream_t stream, size_t n, const float *a, const float *b, float *y)
{
    LAUNCH(add_kernel, stream, n, n, a, b, y);
}

cudaError_t
cuda_launch_mul(cudaStream_t stream, size_t n, const float *a, const float *b, float *y)
{
    LAUNCH(mul_kernel, stream, n, n, a, b, y);
}

cudaError_t
cuda_launch_axpby(cudaStream_t stream, size_t n, float alpha, const float *x, float beta, float *y)
{
    LAUNCH(axpby_kernel, stream, n, n, alpha, x, beta, y);
}

cudaError_t
cuda_launch_clamp(cudaStream_t stream, size_t n, const float *x, float lo, float hi, float *y)
{
    LAUNCH(clamp_kernel, stream, n, n, x, lo, hi, y);
}

cudaError_t
cuda_launch_stabilized_divide(cudaStream_t stream, size_t n, const float *r, const float *z,
                              float epsilon, float zero, float *y)
{
    LAUNCH(stabilized_divide_kernel, stream, n, n, r, z, epsilon, zero, y);
}

cudaError_t
cuda_launch_dropout(cudaStream_t stream, size_t n, float ratio, uint64_t seed, const float *x,
                    float *y)
{
    LAUNCH(dropout_kernel, stream, n, n, ratio, seed, x, y);
}

cudaError_t
cuda_launch_sgd_update(cudaStream_t stream, size_t n, float *w, const float *g, float *v, float lr,
                       float momentum, float weight_decay, int nesterov)
{
    LAUNCH(sgd_update_kernel, stream, n, n, w, g, v, lr, momentum, weight_decay, nesterov);
}

cudaError_t
cuda_launch_add_bias(cudaStream_t stream, int rows, int cols, const float *bias, float *y)
{
    size_t n = (size_t)rows * cols;
    LAUNCH(add_bias_kernel, stream, n, n, cols, bias, y);
}

cudaError_t
cuda_launch_sum_rows(cudaStream_t stream, int rows, int cols, const float *x, float *y)
{
    LAUNCH(sum_rows_kernel, stream, (size_t)cols, rows, cols, x, y);
}

cudaError_t
cuda_launch_pad(cudaStream_t stream, int n, int c, int h, int w, int pt, int pl, int pb, int pr,
                const float *x, float *xp)
{
    int hp = h + pt + pb, wp = w + pl + pr;
    size_t total = (size_t)n * c * hp * wp;
    LAUNCH(pad_kernel, stream, total, total, h, w, pt, pl, hp, wp, x, xp);
}

cudaError_t
cuda_launch_crop(cudaStream_t stream, int n, int c, int h, int w, int pt, int pl, int pb, int pr,
                 const float *dxp, float *dx)
{
    int hp = h + pt + pb, wp = w + pl + pr;
    size_t total = (size_t)n * c * h * w;
    LAUNCH(crop_kernel, stream, total, total, h, w, pt, pl, hp, wp, dxp, dx);
}

cudaError_t
cuda_launch_batch_norm_eval(cudaStream_t stream, int n, int c, int hw, float epsilon,
                            const float *x, const float *scale, const float *bias,
                            const float *mean, const float *var, float *y)
{
    size_t total = (size_t)n * c * hw;
    LAUNCH(batch_norm_eval_kernel, stream, total, total, c, hw, epsilon, x, scale, bias, mean, var,
           y);
}

cudaError_t
cuda_launch_pool_forward(cudaStream_t stream, const CudaPoolShape *shape, const float *x, float *y)
{
    size_t total = (size_t)shape->n * shape->c * shape->out_h * shape->out_w;
    LAUNCH(pool_forward_kernel, stream, total, *shape, x, y);
}

cudaError_t
cuda_launch_pool_backward(cudaStream_t stream, const CudaPoolShape *shape, const float *x,
                          const float *y, const float *dy, float *dx)
{
    size_t total = (size_t)shape->n * shape->c * shape->h * shape->w;
    LAUNCH(pool_backward_kernel, stream, total, *shape, x, y, dy, dx);
}

cudaError_t
cuda_launch_softmax_forward(cudaStream_t stream, int rows, int cols, const float *x, float *y)
{
    LAUNCH(softmax_forward_kernel, stream, (size_t)rows, rows, cols, x, y);
}

cudaError_t
cuda_launch_softmax_backward(cudaStream_t stream, int rows, int cols, const float *y,
                             const float *dy, float *dx)
{
    LAUNCH(softmax_backward_kernel, stream, (size_t)rows, rows, cols, y, dy, dx);
}

cudaError_t
cuda_launch_softmax_cross_entropy(cudaStream_t stream, int rows, int cols, const float *logits,
                                  const int32_t *labels, float smoothing, float *dlogits,
                                  double *row_loss)
{
    LAUNCH(softmax_cross_entropy_kernel, stream, (size_t)rows, rows, cols, logits, labels,
           smoothing, dlogits, row_loss);
}

} /* extern "C" */

#endif /* __CUDACC__ */
