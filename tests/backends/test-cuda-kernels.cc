/* test-cuda-kernels.cc — the cuda backend's own kernels
 * (backends/cuda/cuda-kernels.cu) against the reference kernels of
 * tests/tp-reference.c, run on the host: no GPU needed.
 *
 * The .cu file is included here with host stand-ins for CUDA's qualifiers,
 * thread indices and rounding intrinsics (its launchers, which need nvcc,
 * are left out by __CUDACC__). Each kernel runs as a grid of one thread, so
 * its grid-stride loop visits every index in order: what is tested is each
 * kernel's arithmetic and indexing (pooling's gather with the first maximum
 * on ties, asymmetric padding and ceil mode, padding and cropping, the
 * dropout hash, the rounding of the SGD update, ...), with the tolerances of
 * test-conformance.c. What a GPU adds, the parallel launch and the
 * libraries, is test-conformance's and test-cuda-parity's on a GPU machine.
 * C++ only because the .cu file is.
 */
#include "config.h"

#include <check.h>
#include <glib.h>
#include <math.h>
#include <string.h>

#include <cuda_runtime_api.h>

extern "C" {
#include "tp-reference.h"
#include "tp-test.h"
}

/* ---------------------------------------------------------------- host stand-ins */

#undef __global__
#undef __device__
#define __global__
#define __device__

struct HostDim {
    unsigned int x;
};
static const HostDim blockIdx = {0}, blockDim = {1}, gridDim = {1}, threadIdx = {0};

/* Round-to-nearest single operations: what plain host float arithmetic is. */
static inline float
__fadd_rn(float a, float b)
{
    return a + b;
}

static inline float
__fsub_rn(float a, float b)
{
    return a - b;
}

static inline float
__fmul_rn(float a, float b)
{
    return a * b;
}

static inline float
__fdiv_rn(float a, float b)
{
    return a / b;
}

static inline int
max(int a, int b)
{
    return a > b ? a : b;
}

static inline int
min(int a, int b)
{
    return a < b ? a : b;
}

#include "cuda-kernels.cu"

/* ---------------------------------------------------------------- helpers */

/* n floats uniform in [lo, hi) (owned, g_free). */
static float *
uniform(gsize n, float lo, float hi, guint32 seed)
{
    float *x = g_new(float, MAX(n, 1));

    tp_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* A host copy of n floats (owned, g_free). */
static float *
dup_floats(const float *x, gsize n)
{
    return (float *)g_memdup2(x, MAX(n, 1) * sizeof(float));
}

/* n floats, all NaN (owned): an output a kernel must write in full. */
static float *
nans(gsize n)
{
    float *x = g_new(float, MAX(n, 1));

    for (gsize i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

#define ELEMENTS 1001

/* ---------------------------------------------------------------- pooling */

typedef struct {
    const char *name;
    gboolean max;
    int n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr;
    gboolean ceil_mode, include_pad, ties;
} PoolCase;

/* clang-format off */
static const PoolCase pool_cases[] = {
    /* name                               max n   c  h   w kh kw sh sw pt pl pb pr  ceil  incl  ties */
    {"max 2x2 s2, ceil over the edge",      1, 3,  3, 7,  9, 2, 2, 2, 2, 0, 0, 0, 0, TRUE, FALSE, FALSE},
    {"max 3x3 s1 pad 1, ties",              1, 3,  3, 7,  9, 3, 3, 1, 1, 1, 1, 1, 1, FALSE, FALSE, TRUE},
    {"max 3x2 s2x1, pads 1,0,0,1, ties",    1, 1,  3, 7,  9, 3, 2, 2, 1, 1, 0, 0, 1, TRUE, FALSE, TRUE},
    {"max 3x3 s3, pads 1,2,2,1, ties",      1, 2,  4, 5,  5, 3, 3, 3, 3, 1, 2, 2, 1, TRUE, FALSE, TRUE},
    {"max 2x2 s3 (gaps between windows)",   1, 1,  3, 8,  8, 2, 2, 3, 3, 0, 0, 0, 0, FALSE, FALSE, TRUE},
    {"global max 7x9",                      1, 3,  3, 7,  9, 7, 9, 1, 1, 0, 0, 0, 0, FALSE, FALSE, FALSE},
    {"avg 3x3 s2 pad 1, ceil, incl",        0, 3,  3, 8, 10, 3, 3, 2, 2, 1, 1, 1, 1, TRUE, TRUE, FALSE},
    {"avg 3x3 s2 pad 1, ceil, not incl",    0, 3,  3, 8, 10, 3, 3, 2, 2, 1, 1, 1, 1, TRUE, FALSE, FALSE},
    {"avg 3x3 s1, pads 0,1,2,0",            0, 3,  3, 7,  9, 3, 3, 1, 1, 0, 1, 2, 0, FALSE, FALSE, FALSE},
    {"avg 3x3 s3, pads 1,2,2,1, incl",      0, 2,  4, 5,  5, 3, 3, 3, 3, 1, 2, 2, 1, TRUE, TRUE, FALSE},
    {"global average 7x9, c37",             0, 3, 37, 7,  9, 7, 9, 1, 1, 0, 0, 0, 0, FALSE, FALSE, FALSE},
    {"global average 1x1",                  0, 1,  3, 1,  1, 1, 1, 1, 1, 0, 0, 0, 0, FALSE, FALSE, FALSE},
};
/* clang-format on */

/* Output size as the engine computes it (test-conformance.c's pool_out). */
static int
pool_out(int size, int k, int stride, int pad_begin, int pad_end, gboolean ceil_mode)
{
    int span = size + pad_begin + pad_end - k;
    int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;

    if (ceil_mode && (out - 1) * stride >= size + pad_begin)
        out--;
    return out;
}

START_TEST(test_pool)
{
    const PoolCase *pc = &pool_cases[_i];
    TpPoolGeometry g;
    CudaPoolShape shape;

    memset(&g, 0, sizeof g);
    g.mode = pc->max ? TP_POOL_MAX : TP_POOL_AVERAGE;
    g.n = pc->n, g.c = pc->c, g.h = pc->h, g.w = pc->w, g.kh = pc->kh, g.kw = pc->kw;
    g.stride_h = pc->sh, g.stride_w = pc->sw;
    g.pad_t = pc->pt, g.pad_l = pc->pl, g.pad_b = pc->pb, g.pad_r = pc->pr;
    g.count_include_pad = pc->include_pad;
    g.out_h = pool_out(g.h, g.kh, g.stride_h, g.pad_t, g.pad_b, pc->ceil_mode);
    g.out_w = pool_out(g.w, g.kw, g.stride_w, g.pad_l, g.pad_r, pc->ceil_mode);
    shape = {g.n,  g.c,        g.h,        g.w,     g.out_h, g.out_w, g.kh,
             g.kw, g.stride_h, g.stride_w, g.pad_t, g.pad_l, pc->max, pc->include_pad};

    const gsize nx = (gsize)g.n * g.c * g.h * g.w, ny = (gsize)g.n * g.c * g.out_h * g.out_w;
    const double atol = 1e-6, rtol = pc->max ? 1e-6 : 1e-5; /* test-conformance.c's */
    g_autofree float *x = uniform(nx, -1.0f, 1.0f, 90);
    g_autofree float *dy = uniform(ny, -1.0f, 1.0f, 91);
    g_autofree float *y = g_new(float, ny);
    g_autofree float *dx = g_new(float, nx);
    g_autofree float *got_y = nans(ny);
    g_autofree float *got_dx = nans(nx);
    g_autofree char *fwd = g_strdup_printf("pool_forward_kernel, %s: y", pc->name);
    g_autofree char *bwd = g_strdup_printf("pool_backward_kernel, %s: dx", pc->name);

    if (pc->ties)
        for (gsize i = 0; i < nx; i++)
            x[i] = floorf(x[i] * 4.0f) / 4.0f;
    ref_pool2d_forward(&g, x, y);
    ref_pool2d_backward(&g, x, y, dy, dx);
    pool_forward_kernel(shape, x, got_y);
    pool_backward_kernel(shape, x, y, dy, got_dx);
    tp_test_assert_close(got_y, y, ny, atol, rtol, fwd);
    tp_test_assert_close(got_dx, dx, nx, atol, rtol, bwd);
}
END_TEST

/* ---------------------------------------------------------------- padding */

/* pad puts x at (pt, pl) of a zeroed [h + pt + pb, w + pl + pr] plane, and
 * crop takes it back out. */
START_TEST(test_pad_crop)
{
    const int n = 2, c = 3, h = 5, w = 4, pt = 0, pl = 1, pb = 2, pr = 1;
    const int hp = h + pt + pb, wp = w + pl + pr;
    const gsize nx = (gsize)n * c * h * w, np = (gsize)n * c * hp * wp;
    g_autofree float *x = uniform(nx, -1.0f, 1.0f, 5);
    g_autofree float *xp = nans(np);
    g_autofree float *back = nans(nx);

    pad_kernel(np, h, w, pt, pl, hp, wp, x, xp);
    for (int p = 0; p < n * c; p++)
        for (int r = 0; r < hp; r++)
            for (int q = 0; q < wp; q++) {
                int rr = r - pt, qq = q - pl;
                float want = rr >= 0 && rr < h && qq >= 0 && qq < w ? x[(p * h + rr) * w + qq] : 0;
                ck_assert_msg(xp[(p * hp + r) * wp + q] == want, "pad: plane %d row %d col %d", p,
                              r, q);
            }
    crop_kernel(nx, h, w, pt, pl, hp, wp, xp, back);
    tp_test_assert_close(back, x, nx, 0, 0, "crop_kernel: dx");
}
END_TEST

/* ---------------------------------------------------------------- softmax */

START_TEST(test_softmax)
{
    const int rows = 5, cols = 37;
    const gsize n = (gsize)rows * cols;
    g_autofree float *x = uniform(n, -60.0f, 60.0f, 100);
    g_autofree float *dy = uniform(n, -1.0f, 1.0f, 101);
    g_autofree float *y = g_new(float, n);
    g_autofree float *dx = g_new(float, n);
    g_autofree float *got_y = nans(n);
    g_autofree float *got_dx = nans(n);

    ref_softmax_forward(rows, cols, x, y);
    ref_softmax_backward(rows, cols, y, dy, dx);
    softmax_forward_kernel(rows, cols, x, got_y);
    softmax_backward_kernel(rows, cols, y, dy, got_dx);
    tp_test_assert_close(got_y, y, n, 1e-6, 1e-5, "softmax_forward_kernel: y");
    tp_test_assert_close(got_dx, dx, n, 1e-6, 1e-5, "softmax_backward_kernel: dx");
}
END_TEST

/* Loop index: smoothing 0 or 0.2. The row losses average to the loss. */
START_TEST(test_softmax_cross_entropy)
{
    const int rows = 8, cols = 10;
    const float smoothing = _i ? 0.2f : 0.0f;
    const gsize n = (gsize)rows * cols;
    g_autofree float *logits = uniform(n, -80.0f, 80.0f, 110);
    g_autofree gint32 *labels = g_new(gint32, rows);
    g_autofree float *dlogits = g_new(float, n);
    g_autofree float *got = nans(n);
    g_autofree double *row_loss = g_new(double, rows);
    double want, loss = 0.0;

    for (int r = 0; r < rows; r++)
        labels[r] = (r * 7 + 3) % cols;
    want = ref_softmax_cross_entropy(rows, cols, logits, labels, smoothing, dlogits);
    softmax_cross_entropy_kernel(rows, cols, logits, labels, smoothing, got, row_loss);
    for (int r = 0; r < rows; r++)
        loss += row_loss[r];
    loss /= rows;
    ck_assert_msg(fabs(loss - want) <= 1e-6 + 1e-5 * fabs(want), "loss %.9g, want %.9g", loss,
                  want);
    tp_test_assert_close(got, dlogits, n, 1e-7, 1e-5, "softmax_cross_entropy_kernel: dlogits");
}
END_TEST

/* ---------------------------------------------------------------- elementwise */

START_TEST(test_elementwise)
{
    g_autofree float *a = uniform(ELEMENTS, -2.0f, 2.0f, 130);
    g_autofree float *b = uniform(ELEMENTS, -2.0f, 2.0f, 131);
    g_autofree float *want = g_new(float, ELEMENTS);
    g_autofree float *got = nans(ELEMENTS);
    g_autofree float *want2 = g_new(float, ELEMENTS);
    g_autofree float *got2 = nans(ELEMENTS);

    a[0] = 0.0f;
    a[1] = -0.0f;
    ref_relu_forward(ELEMENTS, a, want);
    relu_forward_kernel(ELEMENTS, a, got);
    tp_test_assert_close(got, want, ELEMENTS, 0, 0, "relu_forward_kernel");
    ref_relu_backward(ELEMENTS, want, b, want2);
    relu_backward_kernel(ELEMENTS, want, b, got2);
    tp_test_assert_close(got2, want2, ELEMENTS, 0, 0, "relu_backward_kernel");
    ref_add(ELEMENTS, a, b, want);
    add_kernel(ELEMENTS, a, b, got);
    tp_test_assert_close(got, want, ELEMENTS, 0, 1e-6, "add_kernel");
    ref_mul(ELEMENTS, a, b, want);
    mul_kernel(ELEMENTS, a, b, got);
    tp_test_assert_close(got, want, ELEMENTS, 0, 1e-6, "mul_kernel");
    fill_kernel(got, -2.5f, ELEMENTS);
    for (gsize i = 0; i < ELEMENTS; i++)
        want[i] = -2.5f;
    tp_test_assert_close(got, want, ELEMENTS, 0, 0, "fill_kernel");
}
END_TEST

/* Loop index: beta 0 (y holds NaN and must not be read) or -0.5. */
START_TEST(test_axpby)
{
    const float beta = _i ? -0.5f : 0.0f;
    g_autofree float *x = uniform(ELEMENTS, -2.0f, 2.0f, 140);
    g_autofree float *y = _i ? uniform(ELEMENTS, -2.0f, 2.0f, 141) : nans(ELEMENTS);
    g_autofree float *want = dup_floats(y, ELEMENTS);

    ref_axpby(ELEMENTS, 1.5f, x, beta, want);
    axpby_kernel(ELEMENTS, 1.5f, x, beta, y);
    tp_test_assert_close(y, want, ELEMENTS, 1e-6, 1e-6, "axpby_kernel");
}
END_TEST

START_TEST(test_clamp_divide)
{
    static const float bounds[][2] = {{0.0f, INFINITY}, {-INFINITY, 0.0f}, {-0.5f, 0.25f}};
    g_autofree float *x = uniform(ELEMENTS, -1.0f, 1.0f, 150);
    g_autofree float *r = uniform(ELEMENTS, -1.0f, 1.0f, 160);
    g_autofree float *z = uniform(ELEMENTS, -1.0f, 1.0f, 161);
    g_autofree float *want = g_new(float, ELEMENTS);
    g_autofree float *got = nans(ELEMENTS);

    x[2] = 1e30f;
    x[3] = -1e30f;
    for (gsize k = 0; k < G_N_ELEMENTS(bounds); k++) {
        ref_clamp(ELEMENTS, x, bounds[k][0], bounds[k][1], want);
        clamp_kernel(ELEMENTS, x, bounds[k][0], bounds[k][1], got);
        tp_test_assert_close(got, want, ELEMENTS, 0, 0, "clamp_kernel");
    }
    z[0] = 0.0f;
    z[1] = -0.0f;
    z[2] = 1e-9f;
    z[3] = -1e-9f;
    static const float epsilons[] = {0.0f, 1e-6f, 0.25f};
    for (gsize k = 0; k < G_N_ELEMENTS(epsilons); k++) {
        ref_stabilized_divide(ELEMENTS, r, z, epsilons[k], want);
        stabilized_divide_kernel(ELEMENTS, r, z, epsilons[k], TP_STABILIZER_ZERO, got);
        tp_test_assert_close(got, want, ELEMENTS, 0, 1e-6, "stabilized_divide_kernel");
    }
}
END_TEST

/* Every ratio of test-conformance.c, bit for bit: the same hash. */
START_TEST(test_dropout)
{
    static const float ratios[] = {0.0f, 0.25f, 0.5f, 0.9f, 1.0f};
    g_autofree float *x = uniform(ELEMENTS, -1.0f, 1.0f, 80);
    g_autofree float *want = g_new(float, ELEMENTS);
    g_autofree float *got = nans(ELEMENTS);

    for (gsize k = 0; k < G_N_ELEMENTS(ratios); k++) {
        ref_dropout_forward(ELEMENTS, ratios[k], G_GUINT64_CONSTANT(0xdeadbeefcafe), x, want);
        dropout_kernel(ELEMENTS, ratios[k], G_GUINT64_CONSTANT(0xdeadbeefcafe), x, got);
        tp_test_assert_close(got, want, ELEMENTS, 0, 0, "dropout_kernel");
    }
}
END_TEST

/* Loop index: bit 0 nesterov; three steps, momentum and weight decay. */
START_TEST(test_sgd)
{
    TpSgdHyper hyper;
    g_autofree float *w = uniform(ELEMENTS, -1.0f, 1.0f, 120);
    g_autofree float *v = uniform(ELEMENTS, -0.1f, 0.1f, 121);
    g_autofree float *g = uniform(3 * ELEMENTS, -1.0f, 1.0f, 122);
    g_autofree float *want_w = dup_floats(w, ELEMENTS);
    g_autofree float *want_v = dup_floats(v, ELEMENTS);

    hyper.lr = 0.05f;
    hyper.momentum = 0.9f;
    hyper.weight_decay = 5e-4f;
    hyper.nesterov = _i & 1;
    for (int s = 0; s < 3; s++) {
        ref_sgd_update(ELEMENTS, want_w, g + s * ELEMENTS, want_v, &hyper);
        sgd_update_kernel(ELEMENTS, w, g + s * ELEMENTS, v, hyper.lr, hyper.momentum,
                          hyper.weight_decay, hyper.nesterov);
    }
    tp_test_assert_close(w, want_w, ELEMENTS, 1e-6, 1e-5, "sgd_update_kernel: w");
    tp_test_assert_close(v, want_v, ELEMENTS, 1e-6, 1e-5, "sgd_update_kernel: v");
}
END_TEST

/* ---------------------------------------------------------------- dense and batch norm */

START_TEST(test_bias_rows)
{
    const int rows = 300, cols = 37;
    const gsize n = (gsize)rows * cols;
    g_autofree float *x = uniform(n, -1.0f, 1.0f, 22);
    g_autofree float *bias = uniform(cols, -1.0f, 1.0f, 21);
    g_autofree float *want = g_new(float, cols);
    g_autofree float *got = nans(cols);
    g_autofree float *want_y = dup_floats(x, n);

    ref_sum_rows(rows, cols, x, want);
    sum_rows_kernel(rows, cols, x, got);
    tp_test_assert_close(got, want, cols, 1e-5, 1e-5, "sum_rows_kernel");
    ref_add_bias(rows, cols, bias, want_y);
    add_bias_kernel(n, cols, bias, x);
    tp_test_assert_close(x, want_y, n, 1e-5, 1e-5, "add_bias_kernel (in place)");
}
END_TEST

START_TEST(test_batch_norm_eval)
{
    TpBatchNormGeometry g;
    g.n = 3, g.c = 37, g.hw = 63, g.epsilon = 1e-5f, g.momentum = 0.9f;
    const gsize n = (gsize)g.n * g.c * g.hw;
    g_autofree float *x = uniform(n, 2.0f, 4.0f, 40);
    g_autofree float *scale = uniform(g.c, 0.5f, 1.5f, 41);
    g_autofree float *bias = uniform(g.c, -1.0f, 1.0f, 42);
    g_autofree float *mean = uniform(g.c, 2.5f, 3.5f, 43);
    g_autofree float *var = uniform(g.c, 0.1f, 1.5f, 44);
    g_autofree float *want = g_new(float, n);
    g_autofree float *got = nans(n);

    ref_batch_norm_forward_eval(&g, x, scale, bias, mean, var, want);
    batch_norm_eval_kernel(n, g.c, g.hw, g.epsilon, x, scale, bias, mean, var, got);
    tp_test_assert_close(got, want, n, 1e-4, 1e-4, "batch_norm_eval_kernel");
}
END_TEST

/* ---------------------------------------------------------------- kernel families */

/* Every unary function, forward and backward (from y or x as
 * tp_unary_backward_from_y() says), against the reference; test-conformance's
 * tolerances. Inputs in each function's domain, with its kinks included. */
START_TEST(test_unary)
{
    static const struct {
        TpUnaryFunction function;
        float alpha, beta, lo, hi; /* parameters */
        float from, to;            /* inputs */
    } cases[] = {
        {TP_UNARY_RELU, 0, 0, 0, 0, -4, 4},
        {TP_UNARY_CLIP, 0, 0, 0, 6, -2, 8},
        {TP_UNARY_SIGMOID, 0, 0, 0, 0, -8, 8},
        {TP_UNARY_HARD_SIGMOID, 0.2f, 0.5f, 0, 0, -4, 4},
        {TP_UNARY_HARD_SWISH, 0, 0, 0, 0, -5, 5},
        {TP_UNARY_SILU, 0, 0, 0, 0, -6, 6},
        {TP_UNARY_GELU, 0, 0, 0, 0, -5, 5},
        {TP_UNARY_LEAKY_RELU, 0.01f, 0, 0, 0, -4, 4},
        {TP_UNARY_TANH, 0, 0, 0, 0, -4, 4},
        {TP_UNARY_SQRT, 0, 0, 0, 0, 0.1f, 4},
        {TP_UNARY_ERF, 0, 0, 0, 0, -3, 3},
        {TP_UNARY_EXP, 0, 0, 0, 0, -4, 4},
        {TP_UNARY_RECIPROCAL, 0, 0, 0, 0, 0.5f, 2},
        {TP_UNARY_POW, 3, 0, 0, 0, -2, 2},
        {TP_UNARY_LOG, 0, 0, 0, 0, 0.1f, 4},
        {TP_UNARY_NEG, 0, 0, 0, 0, -4, 4},
        {TP_UNARY_ABS, 0, 0, 0, 0, -4, 4},
    };
    const auto &c = cases[_i];
    TpUnaryOp op = {c.function, c.alpha, c.beta, c.lo, c.hi};
    g_autofree float *x = uniform(ELEMENTS, c.from, c.to, 700 + _i);
    g_autofree float *dy = uniform(ELEMENTS, -1.0f, 1.0f, 750 + _i);
    g_autofree float *y = g_new(float, ELEMENTS);
    g_autofree float *dx = g_new(float, ELEMENTS);
    g_autofree float *got_y = nans(ELEMENTS);
    g_autofree float *got_dx = nans(ELEMENTS);
    g_autofree char *what = g_strdup_printf("unary function %d", (int)c.function);
    const float kinks[] = {0.0f, 6.0f, -3.0f, 3.0f, -2.5f, 2.5f};

    for (gsize k = 0; k < G_N_ELEMENTS(kinks); k++)
        if (kinks[k] >= c.from && kinks[k] <= c.to)
            x[k] = kinks[k];
    ref_unary_forward(&op, ELEMENTS, x, y);
    ref_unary_backward(&op, ELEMENTS, x, dy, dx);
    unary_forward_kernel(op.function, op.alpha, op.beta, op.lo, op.hi, ELEMENTS, x, got_y);
    tp_test_assert_close(got_y, y, ELEMENTS, 1e-6, 1e-5, what);
    unary_backward_kernel(op.function, op.alpha, op.beta, op.lo, op.hi, ELEMENTS,
                          tp_unary_backward_from_y(op.function) ? y : x, dy, got_dx);
    tp_test_assert_close(got_dx, dx, ELEMENTS, 1e-6, 1e-5, what);
}
END_TEST

/* One operand's gradient or a reduction as the launchers queue it
 * (launch_terms): a gather when the operand is broadcast, else rows. */
static void
run_terms(const CudaBroadcast *c, int b_shaped, size_t n_out, int term, float alpha,
          const float *p, const float *a, const float *b, float *out)
{
    if (broadcast_summed(c, b_shaped ? c->bs : c->as))
        gather_kernel(*c, b_shaped, n_out, term, alpha, p, a, b, out);
    else
        rows_kernel(*c, term, alpha, p, a, b, out);
}

static gsize
numel4(const int *shape)
{
    return (gsize)shape[0] * shape[1] * shape[2] * shape[3];
}

/* y [2, 3, 4, 5]; the loop index's bits 0-3 broadcast a along those axes,
 * bits 4-7 b: every pair of axis patterns, every op, forward and both
 * gradients, as cuda_launch_binary_forward / _backward run them. */
START_TEST(test_binary)
{
    TpBroadcastGeometry g;
    CudaBroadcast c;

    memset(&g, 0, sizeof g);
    g.ndim = 4;
    for (int d = 0; d < 4; d++) {
        static const int dims[] = {2, 3, 4, 5};
        g.y[d] = dims[d];
        g.a[d] = _i >> d & 1 ? 1 : dims[d];
        g.b[d] = _i >> (4 + d) & 1 ? 1 : dims[d];
    }
    broadcast_collapse(4, g.y, g.a, g.b, &c);

    const gsize na = numel4(g.a), nb = numel4(g.b), ny = numel4(g.y);
    g_autofree float *a = uniform(na, -1.0f, 1.0f, 800 + _i);
    g_autofree float *bv = uniform(nb, 0.5f, 2.0f, 1100 + _i);
    g_autofree float *dy = uniform(ny, -1.0f, 1.0f, 1400 + _i);

    for (int op = TP_BINARY_ADD; op <= TP_BINARY_DIV; op++) {
        g_autofree float *y = g_new(float, ny), *da = g_new(float, na), *db = g_new(float, nb);
        g_autofree float *got_y = nans(ny), *got_da = nans(na), *got_db = nans(nb);
        g_autofree char *what = g_strdup_printf("binary op %d, pattern %d", op, _i);
        int ta = op == TERM_MUL ? TERM_P_MUL_B : op == TERM_DIV ? TERM_P_DIV_B : TERM_P;
        int tb = op == TERM_MUL ? TERM_P_MUL_A : op == TERM_DIV ? TERM_P_DIV_DB : TERM_P;

        ref_binary_forward((TpBinaryOp)op, &g, a, bv, y);
        ref_binary_backward((TpBinaryOp)op, &g, a, bv, dy, da, db);
        rows_kernel(c, op, 1.0f, NULL, a, bv, got_y);
        run_terms(&c, 0, na, ta, 1.0f, dy, NULL, ta == TERM_P ? NULL : bv, got_da);
        run_terms(&c, 1, nb, tb, op == TERM_SUB ? -1.0f : 1.0f, dy, tb == TERM_P ? NULL : a,
                  op == TERM_DIV ? bv : NULL, got_db);
        tp_test_assert_close(got_y, y, ny, 1e-5, 1e-5, what);
        tp_test_assert_close(got_da, da, na, 1e-5, 1e-5, what);
        tp_test_assert_close(got_db, db, nb, 1e-5, 1e-5, what);
    }
}
END_TEST

/* x [2, 3, 4, 5] reduced over the axes of the loop index's bits, sum and
 * mean, forward and backward, as the reduce launchers run them. */
START_TEST(test_reduce)
{
    TpReduceGeometry g;
    CudaBroadcast c;

    memset(&g, 0, sizeof g);
    g.ndim = 4;
    for (int d = 0; d < 4; d++) {
        static const int dims[] = {2, 3, 4, 5};
        g.x[d] = dims[d];
        g.y[d] = _i >> d & 1 ? 1 : dims[d];
    }
    broadcast_collapse(4, g.x, g.y, NULL, &c);

    const gsize nx = numel4(g.x), ny = numel4(g.y);
    g_autofree float *x = uniform(nx, -1.0f, 1.0f, 1800 + _i);
    g_autofree float *dy = uniform(ny, -1.0f, 1.0f, 1900 + _i);

    for (int mean = 0; mean < 2; mean++) {
        TpReduceOp op = mean ? TP_REDUCE_MEAN : TP_REDUCE_SUM;
        float alpha = reduce_alpha(mean, 4, g.x, g.y);
        g_autofree float *y = g_new(float, ny), *dx = g_new(float, nx);
        g_autofree float *got_y = nans(ny), *got_dx = nans(nx);
        g_autofree char *what = g_strdup_printf("reduce %s, pattern %d", mean ? "mean" : "sum", _i);

        ref_reduce_forward(op, &g, x, y);
        ref_reduce_backward(op, &g, dy, dx);
        run_terms(&c, 0, ny, TERM_P, alpha, x, NULL, NULL, got_y);
        rows_kernel(c, TERM_A, alpha, NULL, dy, NULL, got_dx);
        tp_test_assert_close(got_y, y, ny, 1e-5, 1e-5, what);
        tp_test_assert_close(got_dx, dx, nx, 1e-5, 1e-5, what);
    }
}
END_TEST

/* A transpose with a reversed axis and a zero stride, copied and then
 * accumulated, against the reference. */
START_TEST(test_strided_copy)
{
    /* src [2,3,4] read as [3 (stride 4), 2 (stride 12), 4 (stride -1 from
     * the end)] plus a broadcast axis of 2 (stride 0): dst [2,3,2,4] */
    TpStridedCopy g;
    CudaStrided c;
    const gsize ns = 24, nd = 48;
    g_autofree float *src = uniform(ns, -1.0f, 1.0f, 2600);
    g_autofree float *want = uniform(nd, -1.0f, 1.0f, 2601);
    g_autofree float *got = dup_floats(want, nd);
    const int shape[] = {2, 3, 2, 4};
    const gssize ss[] = {0, 4, 12, -1}, ds[] = {24, 8, 4, 1};

    memset(&g, 0, sizeof g);
    memset(&c, 0, sizeof c);
    g.ndim = c.ndim = 4;
    g.src_offset = 3;
    for (int d = 0; d < 4; d++) {
        g.shape[d] = shape[d], c.shape[d] = shape[d];
        g.src_stride[d] = ss[d], c.src_stride[d] = ss[d];
        g.dst_stride[d] = ds[d], c.dst_stride[d] = ds[d];
    }
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        g.accumulate = c.accumulate = accumulate;
        ref_strided_copy(&g, src, want);
        strided_copy_kernel(c, 48, src + 3, got);
        tp_test_assert_close(got, want, nd, 0.0, 1e-6, accumulate ? "strided, accumulated"
                                                                  : "strided copy");
    }
}
END_TEST

/* Layer norm forward (with the saved statistics) and backward (dx,
 * dscale, dbias) against the reference; test-conformance's tolerances. */
START_TEST(test_layer_norm)
{
    const TpLayerNormGeometry g = {7, 37, 1e-5f};
    const gsize n = 7 * 37;
    g_autofree float *x = uniform(n, -2.0f, 3.0f, 2700);
    g_autofree float *scale = uniform(37, 0.5f, 1.5f, 2701);
    g_autofree float *bias = uniform(37, -1.0f, 1.0f, 2702);
    g_autofree float *dy = uniform(n, -1.0f, 1.0f, 2703);
    g_autofree float *y = g_new(float, n), *mean = g_new(float, 7), *invstd = g_new(float, 7);
    g_autofree float *dx = g_new(float, n), *ds = g_new(float, 37), *db = g_new(float, 37);
    g_autofree float *got_y = nans(n), *got_m = nans(7), *got_i = nans(7);
    g_autofree float *got_dx = nans(n), *got_ds = nans(37), *got_db = nans(37);

    ref_layer_norm_forward(&g, x, scale, bias, y, mean, invstd);
    ref_layer_norm_backward(&g, x, dy, scale, dx, ds, db);
    layer_norm_forward_kernel(7, 37, g.epsilon, x, scale, bias, got_y, got_m, got_i);
    layer_norm_backward_kernel(7, 37, x, dy, scale, got_m, got_i, got_dx);
    layer_norm_parameters_kernel(7, 37, x, dy, got_m, got_i, got_ds, got_db);
    tp_test_assert_close(got_y, y, n, 1e-5, 1e-4, "layer norm y");
    tp_test_assert_close(got_m, mean, 7, 1e-5, 1e-4, "layer norm mean");
    tp_test_assert_close(got_i, invstd, 7, 1e-5, 1e-4, "layer norm invstd");
    tp_test_assert_close(got_dx, dx, n, 1e-5, 1e-4, "layer norm dx");
    tp_test_assert_close(got_ds, ds, 37, 1e-5, 1e-4, "layer norm dscale");
    tp_test_assert_close(got_db, db, 37, 1e-5, 1e-4, "layer norm dbias");
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("cuda-kernels (host)");
    TCase *tc = tcase_create("kernels");

    tp_test_init();
    tcase_add_loop_test(tc, test_pool, 0, G_N_ELEMENTS(pool_cases));
    tcase_add_test(tc, test_pad_crop);
    tcase_add_test(tc, test_softmax);
    tcase_add_loop_test(tc, test_softmax_cross_entropy, 0, 2);
    tcase_add_test(tc, test_elementwise);
    tcase_add_loop_test(tc, test_axpby, 0, 2);
    tcase_add_test(tc, test_clamp_divide);
    tcase_add_test(tc, test_dropout);
    tcase_add_loop_test(tc, test_sgd, 0, 2);
    tcase_add_test(tc, test_bias_rows);
    tcase_add_test(tc, test_batch_norm_eval);
    tcase_add_loop_test(tc, test_unary, 0, 17);
    tcase_add_loop_test(tc, test_binary, 0, 256);
    tcase_add_loop_test(tc, test_reduce, 0, 16);
    tcase_add_test(tc, test_strided_copy);
    tcase_add_test(tc, test_layer_norm);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
