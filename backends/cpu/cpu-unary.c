/* cpu-unary.c — the cpu backend's pointwise unary family: unary_forward and
 * unary_backward (contracts and the functions: TpUnaryFunction in
 * tp-backend.h).
 *
 * The switch on the function sits outside the loops, so each loop is one
 * function over an index range; the pool splits n into ranges worth a thread
 * (cpu_grain(), cpu-parallel.h), like the other elementwise kernels. Each loop reads its inputs into locals before it writes, so
 * y == x (and dx == dy) is safe.
 */
#include "config.h"

#include <math.h>

#include "cpu-kernels.h"

#define SQRT1_2 0.70710678118654752440
#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define ONE_OVER_SQRT_2PI 0.39894228040143267794

typedef struct {
    const TpUnaryOp *op;
    const float *x, *y, *dy;
    float *out;
} UnaryJob;

static void
forward_range(gpointer data, gsize begin, gsize end)
{
    const UnaryJob *job = data;
    const float *x = job->x;
    float *y = job->out;
    const float alpha = job->op->alpha, beta = job->op->beta;
    const float lo = job->op->lo, hi = job->op->hi;

#define LOOP(expr)                                                                                 \
    for (gsize i = begin; i < end; i++) {                                                          \
        float v = x[i];                                                                            \
        y[i] = (expr);                                                                             \
    }                                                                                              \
    break

    switch (job->op->function) {
    case TP_UNARY_RELU:
        LOOP(v > 0.0f ? v : 0.0f);
    case TP_UNARY_CLIP:
        LOOP(v < lo ? lo : v > hi ? hi : v);
    case TP_UNARY_SIGMOID:
        LOOP(1.0f / (1.0f + expf(-v)));
    case TP_UNARY_HARD_SIGMOID:
        LOOP(fminf(fmaxf(alpha * v + beta, 0.0f), 1.0f));
    case TP_UNARY_HARD_SWISH:
        LOOP(v * fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) / 6.0f);
    case TP_UNARY_SILU:
        LOOP(v / (1.0f + expf(-v)));
    case TP_UNARY_GELU:
        LOOP((float)(0.5 * v * (1.0 + erf(v * SQRT1_2))));
    case TP_UNARY_LEAKY_RELU:
        LOOP(v >= 0.0f ? v : alpha * v);
    case TP_UNARY_TANH:
        LOOP(tanhf(v));
    case TP_UNARY_SQRT:
        LOOP(sqrtf(v));
    case TP_UNARY_ERF:
        LOOP(erff(v));
    case TP_UNARY_EXP:
        LOOP(expf(v));
    case TP_UNARY_RECIPROCAL:
        LOOP(1.0f / v);
    case TP_UNARY_POW:
        LOOP(powf(v, alpha));
    case TP_UNARY_LOG:
        LOOP(logf(v));
    case TP_UNARY_NEG:
        LOOP(-v);
    case TP_UNARY_ABS:
        LOOP(fabsf(v));
    }
#undef LOOP
}

/* dx[i] = f'(.) * dy[i], f' from y (`t` is y[i]) or from x (`t` is x[i]) as
 * tp_unary_backward_from_y() says. */
static void
backward_range(gpointer data, gsize begin, gsize end)
{
    const UnaryJob *job = data;
    const float *t = tp_unary_backward_from_y(job->op->function) ? job->y : job->x;
    const float *dy = job->dy;
    float *dx = job->out;
    const float alpha = job->op->alpha, beta = job->op->beta;
    const float lo = job->op->lo, hi = job->op->hi;

#define LOOP(expr)                                                                                 \
    for (gsize i = begin; i < end; i++) {                                                          \
        float v = t != NULL ? t[i] : 0.0f, g = dy[i];                                              \
        (void)v;                                                                                   \
        dx[i] = (expr);                                                                            \
    }                                                                                              \
    break

    switch (job->op->function) {
    case TP_UNARY_RELU:
        LOOP(v > 0.0f ? g : 0.0f);
    case TP_UNARY_CLIP:
        LOOP(v > lo && v < hi ? g : 0.0f);
    case TP_UNARY_SIGMOID:
        LOOP(g * v * (1.0f - v));
    case TP_UNARY_HARD_SIGMOID:
        LOOP(alpha * v + beta > 0.0f && alpha * v + beta < 1.0f ? g * alpha : 0.0f);
    case TP_UNARY_HARD_SWISH:
        LOOP(v < -3.0f ? 0.0f : v <= 3.0f ? g * (v / 3.0f + 0.5f) : g);
    case TP_UNARY_SILU:
        LOOP(g * (1.0f + v * (1.0f - 1.0f / (1.0f + expf(-v)))) / (1.0f + expf(-v)));
    case TP_UNARY_GELU:
        LOOP((float)(g * (0.5 * (1.0 + erf(v * SQRT1_2)) +
                          v * ONE_OVER_SQRT_2PI * exp(-0.5 * (double)v * v))));
    case TP_UNARY_LEAKY_RELU:
        LOOP(v >= 0.0f ? g : alpha * g);
    case TP_UNARY_TANH:
        LOOP(g * (1.0f - v * v));
    case TP_UNARY_SQRT:
        LOOP(g * 0.5f / v);
    case TP_UNARY_ERF:
        LOOP((float)(g * TWO_OVER_SQRT_PI * exp(-(double)v * v)));
    case TP_UNARY_EXP:
        LOOP(g * v);
    case TP_UNARY_RECIPROCAL:
        LOOP(-g * v * v);
    case TP_UNARY_POW:
        LOOP(g * alpha * powf(v, alpha - 1.0f));
    case TP_UNARY_LOG:
        LOOP(g / v);
    case TP_UNARY_NEG:
        LOOP(-g);
    case TP_UNARY_ABS:
        LOOP(v > 0.0f ? g : v < 0.0f ? -g : 0.0f);
    }
#undef LOOP
}

gboolean
cpu_unary_forward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, float *y,
                  GError **error)
{
    UnaryJob job = {.op = op, .x = x, .out = y};

    cpu_pool_run(((CpuBackend *)self)->pool, n, cpu_grain(1), forward_range, &job);
    return TRUE;
}

gboolean
cpu_unary_backward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, const float *y,
                   const float *dy, float *dx, GError **error)
{
    UnaryJob job = {.op = op, .x = x, .y = y, .dy = dy, .out = dx};

    cpu_pool_run(((CpuBackend *)self)->pool, n, cpu_grain(1), backward_range, &job);
    return TRUE;
}
