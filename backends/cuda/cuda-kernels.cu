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

/* ------------------------------------------------------------ unary family */

/* Values of TpUnaryFunction (tp-backend.h; kept in step by cuda-ops.c). */
enum {
    UNARY_RELU = 1,
    UNARY_CLIP,
    UNARY_SIGMOID,
    UNARY_HARD_SIGMOID,
    UNARY_HARD_SWISH,
    UNARY_SILU,
    UNARY_GELU,
    UNARY_LEAKY_RELU,
    UNARY_TANH,
    UNARY_SQRT,
    UNARY_ERF,
    UNARY_EXP,
    UNARY_RECIPROCAL,
    UNARY_POW,
    UNARY_LOG,
    UNARY_NEG,
    UNARY_ABS,
};

#define SQRT1_2 0.70710678118654752440
#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define ONE_OVER_SQRT_2PI 0.39894228040143267794

__device__ static float
unary_value(int function, float alpha, float beta, float lo, float hi, float v)
{
    switch (function) {
    case UNARY_RELU:
        return v > 0.0f ? v : 0.0f;
    case UNARY_CLIP:
        return v < lo ? lo : v > hi ? hi : v;
    case UNARY_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case UNARY_HARD_SIGMOID:
        return fminf(fmaxf(alpha * v + beta, 0.0f), 1.0f);
    case UNARY_HARD_SWISH:
        return v * fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) / 6.0f;
    case UNARY_SILU:
        return v / (1.0f + expf(-v));
    case UNARY_GELU:
        return (float)(0.5 * v * (1.0 + erf(v * SQRT1_2)));
    case UNARY_LEAKY_RELU:
        return v >= 0.0f ? v : alpha * v;
    case UNARY_TANH:
        return tanhf(v);
    case UNARY_SQRT:
        return sqrtf(v);
    case UNARY_ERF:
        return erff(v);
    case UNARY_EXP:
        return expf(v);
    case UNARY_RECIPROCAL:
        return 1.0f / v;
    case UNARY_POW:
        return powf(v, alpha);
    case UNARY_LOG:
        return logf(v);
    case UNARY_NEG:
        return -v;
    case UNARY_ABS:
        return fabsf(v);
    }
    return NAN;
}

/* f'(.) * g, with v = y or x as tp_unary_backward_from_y() says. */
__device__ static float
unary_gradient(int function, float alpha, float beta, float lo, float hi, float v, float g)
{
    switch (function) {
    case UNARY_RELU:
        return v > 0.0f ? g : 0.0f;
    case UNARY_CLIP:
        return v > lo && v < hi ? g : 0.0f;
    case UNARY_SIGMOID:
        return g * v * (1.0f - v);
    case UNARY_HARD_SIGMOID: {
        float t = alpha * v + beta;
        return t > 0.0f && t < 1.0f ? g * alpha : 0.0f;
    }
    case UNARY_HARD_SWISH:
        return v < -3.0f ? 0.0f : v <= 3.0f ? g * (v / 3.0f + 0.5f) : g;
    case UNARY_SILU: {
        float s = 1.0f / (1.0f + expf(-v));
        return g * s * (1.0f + v * (1.0f - s));
    }
    case UNARY_GELU:
        return (float)(g * (0.5 * (1.0 + erf(v * SQRT1_2)) +
                            v * ONE_OVER_SQRT_2PI * exp(-0.5 * (double)v * v)));
    case UNARY_LEAKY_RELU:
        return v >= 0.0f ? g : alpha * g;
    case UNARY_TANH:
        return g * (1.0f - v * v);
    case UNARY_SQRT:
        return g * 0.5f / v;
    case UNARY_ERF:
        return (float)(g * TWO_OVER_SQRT_PI * exp(-(double)v * v));
    case UNARY_EXP:
        return g * v;
    case UNARY_RECIPROCAL:
        return -g * v * v;
    case UNARY_POW:
        return g * alpha * powf(v, alpha - 1.0f);
    case UNARY_LOG:
        return g / v;
    case UNARY_NEG:
        return -g;
    case UNARY_ABS:
        return v > 0.0f ? g : v < 0.0f ? -g : 0.0f;
    }
    return NAN;
}

__global__ static void
unary_forward_kernel(int function, float alpha, float beta, float lo, float hi, size_t n,
                     const float *x, float *y)
{
    GRID_STRIDE(i, n) y[i] = unary_value(function, alpha, beta, lo, hi, x[i]);
}

__global__ static void
unary_backward_kernel(int function, float alpha, float beta, float lo, float hi, size_t n,
                      const float *t, const float *dy, float *dx)
{
    GRID_STRIDE(i, n) dx[i] = unary_gradient(function, alpha, beta, lo, hi, t[i], dy[i]);
}

/* ------------------------------------------------------------ binary and reduce families
 *
 * As on the cpu backend (backends/cpu/cpu-broadcast.c): the shapes are
 * collapsed on the host (axes of extent 1 dropped, neighbours broadcast
 * alike merged), then a result laid out like y is one thread per element
 * (rows_kernel), and a result summed over broadcast axes is a gather, one
 * thread per result element summing its terms in double (gather_kernel): no
 * atomics, the same sums on every run. */

/* A collapsed geometry: k axes, y's strides and each operand's (0 where
 * broadcast). */
typedef struct {
    int k;
    size_t extent[CUDA_MAX_DIMS];
    size_t ys[CUDA_MAX_DIMS], as[CUDA_MAX_DIMS], bs[CUDA_MAX_DIMS];
    size_t numel;
} CudaBroadcast;

/* Binary ops (TpBinaryOp values) and their gradient terms: how a result
 * element comes from p (laid out like y), a, b and alpha. */
enum {
    TERM_ADD = 1, /* a + b */
    TERM_SUB,     /* a - b */
    TERM_MUL,     /* a * b */
    TERM_DIV,     /* a / b */
    TERM_P,       /* alpha * p */
    TERM_A,       /* alpha * a */
    TERM_P_MUL_A, /* p * a */
    TERM_P_MUL_B, /* p * b */
    TERM_P_DIV_B, /* p / b */
    TERM_P_DIV_DB /* -p * a / (b * b) */
};

/* Collapses y against a and b (NULL: read as full) over ndim axes; host code. */
static void
broadcast_collapse(int ndim, const int *y, const int *a, const int *b, CudaBroadcast *c)
{
    size_t ext[CUDA_MAX_DIMS];
    int afull[CUDA_MAX_DIMS], bfull[CUDA_MAX_DIMS];
    int k = 0;
    size_t ys = 1, as = 1, bs = 1;

    for (int d = 0; d < ndim; d++) {
        int fa = a == NULL || a[d] != 1, fb = b == NULL || b[d] != 1;
        if (y[d] == 1)
            continue;
        if (k > 0 && afull[k - 1] == fa && bfull[k - 1] == fb) {
            ext[k - 1] *= (size_t)y[d];
            continue;
        }
        ext[k] = (size_t)y[d];
        afull[k] = fa;
        bfull[k] = fb;
        k++;
    }
    if (k == 0) {
        ext[0] = 1;
        afull[0] = bfull[0] = 1;
        k = 1;
    }
    c->k = k;
    for (int d = k - 1; d >= 0; d--) {
        c->extent[d] = ext[d];
        c->ys[d] = ys;
        c->as[d] = afull[d] ? as : 0;
        c->bs[d] = bfull[d] ? bs : 0;
        ys *= ext[d];
        if (afull[d])
            as *= ext[d];
        if (bfull[d])
            bs *= ext[d];
    }
    c->numel = ys;
}

/* 1 when the operand with strides os is broadcast along some axis. */
static int
broadcast_summed(const CudaBroadcast *c, const size_t *os)
{
    for (int d = 0; d < c->k; d++)
        if (os[d] == 0 && c->extent[d] > 1)
            return 1;
    return 0;
}

static size_t
numel_of(int ndim, const int *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

/* 1 / (terms per result element) for MEAN, 1 for SUM. */
static float
reduce_alpha(int mean, int ndim, const int *x_shape, const int *y_shape)
{
    size_t count = numel_of(ndim, x_shape) / numel_of(ndim, y_shape);
    return mean ? (float)(1.0 / (double)(count > 0 ? count : 1)) : 1.0f;
}

__device__ static double
term_value(int term, float alpha, float pv, float av, float bv)
{
    switch (term) {
    case TERM_ADD:
        return (double)av + bv;
    case TERM_SUB:
        return (double)av - bv;
    case TERM_MUL:
        return (double)av * bv;
    case TERM_DIV:
        return (double)av / bv;
    case TERM_P:
        return (double)alpha * pv;
    case TERM_A:
        return (double)alpha * av;
    case TERM_P_MUL_A:
        return (double)pv * av;
    case TERM_P_MUL_B:
        return (double)pv * bv;
    case TERM_P_DIV_B:
        return (double)pv / bv;
    case TERM_P_DIV_DB:
        return -(double)pv * av / ((double)bv * bv);
    }
    return NAN;
}

/* out[i] for every y index i: one term each. */
__global__ static void
rows_kernel(CudaBroadcast c, int term, float alpha, const float *p, const float *a,
            const float *b, float *out)
{
    GRID_STRIDE(i, c.numel)
    {
        size_t rest = i, ao = 0, bo = 0;
        for (int d = c.k - 1; d >= 0; d--) {
            size_t j = rest % c.extent[d];
            rest /= c.extent[d];
            ao += j * c.as[d];
            bo += j * c.bs[d];
        }
        out[i] = (float)term_value(term, alpha, p != NULL ? p[i] : 0.0f,
                                   a != NULL ? a[ao] : 0.0f, b != NULL ? b[bo] : 0.0f);
    }
}

/* out[j] for each of n_out elements of the operand with strides os (0 on
 * the axes it is summed over): the sum of its terms. */
__global__ static void
gather_kernel(CudaBroadcast c, int b_shaped, size_t n_out, int term, float alpha, const float *p,
              const float *a, const float *b, float *out)
{
    const size_t *os = b_shaped ? c.bs : c.as;

    GRID_STRIDE(j, n_out)
    {
        size_t rest = j, y0 = 0, a0 = 0, b0 = 0, total = 1;
        double sum = 0.0;

        for (int d = c.k - 1; d >= 0; d--) {
            if (os[d] == 0) {
                total *= c.extent[d];
                continue;
            }
            size_t i = rest % c.extent[d];
            rest /= c.extent[d];
            y0 += i * c.ys[d];
            a0 += i * c.as[d];
            b0 += i * c.bs[d];
        }
        for (size_t t = 0; t < total; t++) {
            size_t r = t, yo = y0, ao = a0, bo = b0;
            for (int d = c.k - 1; d >= 0; d--) {
                if (os[d] != 0)
                    continue;
                size_t i = r % c.extent[d];
                r /= c.extent[d];
                yo += i * c.ys[d];
                ao += i * c.as[d];
                bo += i * c.bs[d];
            }
            sum += term_value(term, alpha, p != NULL ? p[yo] : 0.0f, a != NULL ? a[ao] : 0.0f,
                              b != NULL ? b[bo] : 0.0f);
        }
        out[j] = (float)sum;
    }
}

/* ------------------------------------------------------------ strided family */

/* One thread per copied element. */
__global__ static void
strided_copy_kernel(CudaStrided g, size_t n, const float *src, float *dst)
{
    GRID_STRIDE(i, n)
    {
        size_t rest = i;
        long long so = 0, dof = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            long long j = (long long)(rest % (size_t)g.shape[d]);
            rest /= (size_t)g.shape[d];
            so += j * g.src_stride[d];
            dof += j * g.dst_stride[d];
        }
        if (g.accumulate)
            dst[dof] += src[so];
        else
            dst[dof] = src[so];
    }
}

/* ------------------------------------------------------------ layer-norm family */

/* One thread per row: statistics in double, then the row. */
__global__ static void
layer_norm_forward_kernel(int rows, int cols, float epsilon, const float *x, const float *scale,
                          const float *bias, float *y, float *save_mean, float *save_invstd)
{
    GRID_STRIDE(r, (size_t)rows)
    {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        double sum = 0.0, sq = 0.0, mean;
        float m, invstd;

        for (int j = 0; j < cols; j++)
            sum += xr[j];
        mean = sum / cols;
        for (int j = 0; j < cols; j++)
            sq += (xr[j] - mean) * (xr[j] - mean);
        m = (float)mean;
        invstd = (float)(1.0 / sqrt(sq / cols + epsilon));
        if (save_mean != NULL)
            save_mean[r] = m;
        if (save_invstd != NULL)
            save_invstd[r] = invstd;
        for (int j = 0; j < cols; j++) {
            float v = (xr[j] - m) * invstd * scale[j];
            yr[j] = bias != NULL ? v + bias[j] : v;
        }
    }
}

/* dx, one thread per row: invstd * (g - mean(g) - x̂ * mean(g * x̂)), g = dy * scale. */
__global__ static void
layer_norm_backward_kernel(int rows, int cols, const float *x, const float *dy,
                           const float *scale, const float *mean, const float *invstd, float *dx)
{
    GRID_STRIDE(r, (size_t)rows)
    {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        const float m = mean[r], s = invstd[r];
        double sum_g = 0.0, sum_gx = 0.0;
        float mean_g, mean_gx;

        for (int j = 0; j < cols; j++) {
            float g = dyr[j] * scale[j];
            sum_g += g;
            sum_gx += (double)g * ((xr[j] - m) * s);
        }
        mean_g = (float)(sum_g / cols);
        mean_gx = (float)(sum_gx / cols);
        for (int j = 0; j < cols; j++)
            dxr[j] = s * (dyr[j] * scale[j] - mean_g - (xr[j] - m) * s * mean_gx);
    }
}

/* dscale and dbias, one thread per column, summed over rows in double. */
__global__ static void
layer_norm_parameters_kernel(int rows, int cols, const float *x, const float *dy,
                             const float *mean, const float *invstd, float *dscale, float *dbias)
{
    GRID_STRIDE(j, (size_t)cols)
    {
        double ds = 0.0, db = 0.0;
        for (int r = 0; r < rows; r++) {
            float d = dy[(size_t)r * cols + j];
            ds += (double)d * ((x[(size_t)r * cols + j] - mean[r]) * invstd[r]);
            db += d;
        }
        if (dscale != NULL)
            dscale[j] = (float)ds;
        if (dbias != NULL)
            dbias[j] = (float)db;
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

cudaError_t
cuda_launch_unary_forward(cudaStream_t stream, int function, float alpha, float beta, float lo,
                          float hi, size_t n, const float *x, float *y)
{
    LAUNCH(unary_forward_kernel, stream, n, function, alpha, beta, lo, hi, n, x, y);
}

cudaError_t
cuda_launch_unary_backward(cudaStream_t stream, int function, float alpha, float beta, float lo,
                           float hi, size_t n, const float *t, const float *dy, float *dx)
{
    LAUNCH(unary_backward_kernel, stream, n, function, alpha, beta, lo, hi, n, t, dy, dx);
}

/* Queues one operand's gradient (or a reduction): a gather when the operand
 * with strides os is broadcast, else one term per y element. */
static cudaError_t
launch_terms(cudaStream_t stream, const CudaBroadcast *c, int b_shaped, size_t n_out, int term,
             float alpha, const float *p, const float *a, const float *b, float *out)
{
    if (broadcast_summed(c, b_shaped ? c->bs : c->as))
        LAUNCH(gather_kernel, stream, n_out, *c, b_shaped, n_out, term, alpha, p, a, b, out);
    LAUNCH(rows_kernel, stream, c->numel, *c, term, alpha, p, a, b, out);
}

cudaError_t
cuda_launch_binary_forward(cudaStream_t stream, int op, int ndim, const int *y_shape,
                           const int *a_shape, const int *b_shape, const float *a, const float *b,
                           float *y)
{
    CudaBroadcast c;

    broadcast_collapse(ndim, y_shape, a_shape, b_shape, &c);
    /* TpBinaryOp's values are TERM_ADD .. TERM_DIV */
    LAUNCH(rows_kernel, stream, c.numel, c, op, 1.0f, NULL, a, b, y);
}

cudaError_t
cuda_launch_binary_backward(cudaStream_t stream, int op, int ndim, const int *y_shape,
                            const int *a_shape, const int *b_shape, const float *a, const float *b,
                            const float *dy, float *da, float *db)
{
    CudaBroadcast c;
    cudaError_t status = cudaSuccess;

    broadcast_collapse(ndim, y_shape, a_shape, b_shape, &c);
    if (da != NULL) {
        int term = op == TERM_MUL ? TERM_P_MUL_B : op == TERM_DIV ? TERM_P_DIV_B : TERM_P;
        status = launch_terms(stream, &c, 0, numel_of(ndim, a_shape), term, 1.0f, dy, NULL,
                              term == TERM_P ? NULL : b, da);
    }
    if (status == cudaSuccess && db != NULL) {
        int term = op == TERM_MUL ? TERM_P_MUL_A : op == TERM_DIV ? TERM_P_DIV_DB : TERM_P;
        status = launch_terms(stream, &c, 1, numel_of(ndim, b_shape), term,
                              op == TERM_SUB ? -1.0f : 1.0f, dy, term == TERM_P ? NULL : a,
                              op == TERM_DIV ? b : NULL, db);
    }
    return status;
}

cudaError_t
cuda_launch_reduce_forward(cudaStream_t stream, int mean, int ndim, const int *x_shape,
                           const int *y_shape, const float *x, float *y)
{
    CudaBroadcast c;

    broadcast_collapse(ndim, x_shape, y_shape, NULL, &c);
    return launch_terms(stream, &c, 0, numel_of(ndim, y_shape), TERM_P,
                        reduce_alpha(mean, ndim, x_shape, y_shape), x, NULL, NULL, y);
}

cudaError_t
cuda_launch_reduce_backward(cudaStream_t stream, int mean, int ndim, const int *x_shape,
                            const int *y_shape, const float *dy, float *dx)
{
    CudaBroadcast c;

    broadcast_collapse(ndim, x_shape, y_shape, NULL, &c);
    LAUNCH(rows_kernel, stream, c.numel, c, TERM_A, reduce_alpha(mean, ndim, x_shape, y_shape),
           NULL, dy, NULL, dx);
}

cudaError_t
cuda_launch_strided_copy(cudaStream_t stream, const CudaStrided *g, const float *src, float *dst)
{
    size_t n = 1;
    for (int d = 0; d < g->ndim; d++)
        n *= (size_t)g->shape[d];
    LAUNCH(strided_copy_kernel, stream, n, *g, n, src, dst);
}

cudaError_t
cuda_launch_layer_norm_forward(cudaStream_t stream, int rows, int cols, float epsilon,
                               const float *x, const float *scale, const float *bias, float *y,
                               float *save_mean, float *save_invstd)
{
    LAUNCH(layer_norm_forward_kernel, stream, (size_t)rows, rows, cols, epsilon, x, scale, bias, y,
           save_mean, save_invstd);
}

cudaError_t
cuda_launch_layer_norm_backward(cudaStream_t stream, int rows, int cols, const float *x,
                                const float *dy, const float *scale, const float *mean,
                                const float *invstd, float *dx, float *dscale, float *dbias)
{
    cudaError_t status;

    if (rows == 0 || cols == 0)
        return cudaSuccess;
    layer_norm_backward_kernel<<<blocks_for((size_t)rows), THREADS, 0, stream>>>(
        rows, cols, x, dy, scale, mean, invstd, dx);
    if ((status = cudaGetLastError()) != cudaSuccess || (dscale == NULL && dbias == NULL))
        return status;
    LAUNCH(layer_norm_parameters_kernel, stream, (size_t)cols, rows, cols, x, dy, mean, invstd,
           dscale, dbias);
}

} /* extern "C" */

#endif /* __CUDACC__ */
