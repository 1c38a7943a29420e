/* tp-reference.c — the reference kernels of tp-reference.h: direct loops over
 * every output and every window position, accumulation in double, nothing
 * clever. Written from the contracts in tp-backend.h alone; shares no code
 * with any backend. */
#include "config.h"

#include <math.h>

#include "tp-reference.h"

/* ------------------------------------------------------------ convolution */

/* Index of x[s, ch, i, j] in an NCHW tensor with c channels of h x w. */
static gsize
at4(int s, int ch, int i, int j, int c, int h, int w)
{
    return (((gsize)s * c + ch) * h + i) * w + j;
}

/* The input row (column) that output row o reads at kernel row k, or -1
 * when that falls in the padding. */
static int
conv_input_row(const TpConvGeometry *g, int oh, int ki)
{
    int ih = oh * g->stride_h - g->pad_t + ki * g->dil_h;
    return ih >= 0 && ih < g->h ? ih : -1;
}

static int
conv_input_col(const TpConvGeometry *g, int ow, int kj)
{
    int iw = ow * g->stride_w - g->pad_l + kj * g->dil_w;
    return iw >= 0 && iw < g->w ? iw : -1;
}

void
ref_conv2d_forward(const TpConvGeometry *g, const float *x, const float *weights, const float *bias,
                   float *y)
{
    int cg = g->c / g->groups, ocg = g->out_c / g->groups;

    for (int s = 0; s < g->n; s++)
        for (int oc = 0; oc < g->out_c; oc++) {
            int group = oc / ocg;
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    double sum = bias != NULL ? bias[oc] : 0.0;
                    for (int icg = 0; icg < cg; icg++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                int ih = conv_input_row(g, oh, ki);
                                int iw = conv_input_col(g, ow, kj);
                                if (ih < 0 || iw < 0)
                                    continue;
                                sum +=
                                    (double)x[at4(s, group * cg + icg, ih, iw, g->c, g->h, g->w)] *
                                    weights[at4(oc, icg, ki, kj, cg, g->kh, g->kw)];
                            }
                    y[at4(s, oc, oh, ow, g->out_c, g->out_h, g->out_w)] = (float)sum;
                }
        }
}

void
ref_conv2d_backward_data(const TpConvGeometry *g, const float *dy, const float *weights, float *dx)
{
    int cg = g->c / g->groups, ocg = g->out_c / g->groups;
    gsize nx = (gsize)g->n * g->c * g->h * g->w;
    double *acc = g_new0(double, MAX(nx, 1));

    /* Every output position sends dy * w back to each input it read. */
    for (int s = 0; s < g->n; s++)
        for (int oc = 0; oc < g->out_c; oc++) {
            int group = oc / ocg;
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    double d = dy[at4(s, oc, oh, ow, g->out_c, g->out_h, g->out_w)];
                    for (int icg = 0; icg < cg; icg++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                int ih = conv_input_row(g, oh, ki);
                                int iw = conv_input_col(g, ow, kj);
                                if (ih < 0 || iw < 0)
                                    continue;
                                acc[at4(s, group * cg + icg, ih, iw, g->c, g->h, g->w)] +=
                                    d * weights[at4(oc, icg, ki, kj, cg, g->kh, g->kw)];
                            }
                }
        }
    for (gsize i = 0; i < nx; i++)
        dx[i] = (float)acc[i];
    g_free(acc);
}

void
ref_conv2d_backward_filter(const TpConvGeometry *g, const float *x, const float *dy,
                           float *dweights, float *dbias)
{
    int cg = g->c / g->groups, ocg = g->out_c / g->groups;

    for (int oc = 0; oc < g->out_c; oc++) {
        int group = oc / ocg;
        for (int icg = 0; icg < cg; icg++)
            for (int ki = 0; ki < g->kh; ki++)
                for (int kj = 0; kj < g->kw; kj++) {
                    double sum = 0.0;
                    for (int s = 0; s < g->n; s++)
                        for (int oh = 0; oh < g->out_h; oh++)
                            for (int ow = 0; ow < g->out_w; ow++) {
                                int ih = conv_input_row(g, oh, ki);
                                int iw = conv_input_col(g, ow, kj);
                                if (ih < 0 || iw < 0)
                                    continue;
                                sum +=
                                    (double)dy[at4(s, oc, oh, ow, g->out_c, g->out_h, g->out_w)] *
                                    x[at4(s, group * cg + icg, ih, iw, g->c, g->h, g->w)];
                            }
                    dweights[at4(oc, icg, ki, kj, cg, g->kh, g->kw)] = (float)sum;
                }
        if (dbias != NULL) {
            double sum = 0.0;
            for (int s = 0; s < g->n; s++)
                for (int oh = 0; oh < g->out_h; oh++)
                    for (int ow = 0; ow < g->out_w; ow++)
                        sum += dy[at4(s, oc, oh, ow, g->out_c, g->out_h, g->out_w)];
            dbias[oc] = (float)sum;
        }
    }
}

/* ------------------------------------------------------------ dense algebra */

void
ref_gemm(gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha, const float *a,
         const float *b, float beta, float *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int p = 0; p < k; p++) {
                double av = trans_a ? a[(gsize)p * m + i] : a[(gsize)i * k + p];
                double bv = trans_b ? b[(gsize)j * k + p] : b[(gsize)p * n + j];
                sum += av * bv;
            }
            sum *= alpha;
            /* beta = 0: C is not read (it may hold NaN). */
            if (beta != 0.0f)
                sum += (double)beta * c[(gsize)i * n + j];
            c[(gsize)i * n + j] = (float)sum;
        }
}

void
ref_add_bias(int rows, int cols, const float *bias, float *y)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            y[(gsize)r * cols + j] = (float)((double)y[(gsize)r * cols + j] + bias[j]);
}

void
ref_sum_rows(int rows, int cols, const float *x, float *y)
{
    for (int j = 0; j < cols; j++) {
        double sum = 0.0;
        for (int r = 0; r < rows; r++)
            sum += x[(gsize)r * cols + j];
        y[j] = (float)sum;
    }
}

/* ------------------------------------------------------------ batch norm */

static double
bn_value(const TpBatchNormGeometry *g, const float *t, int s, int ch, int i)
{
    return t[((gsize)s * g->c + ch) * g->hw + i];
}

static float *
bn_slot(const TpBatchNormGeometry *g, float *t, int s, int ch, int i)
{
    return &t[((gsize)s * g->c + ch) * g->hw + i];
}

void
ref_batch_norm_forward_train(const TpBatchNormGeometry *g, const float *x, const float *scale,
                             const float *bias, float *running_mean, float *running_var, float *y,
                             float *save_mean, float *save_invstd)
{
    double count = (double)g->n * g->hw;

    for (int ch = 0; ch < g->c; ch++) {
        double mean = 0.0, var = 0.0, unbiased, invstd;

        for (int s = 0; s < g->n; s++)
            for (int i = 0; i < g->hw; i++)
                mean += bn_value(g, x, s, ch, i);
        mean /= count;
        for (int s = 0; s < g->n; s++)
            for (int i = 0; i < g->hw; i++) {
                double d = bn_value(g, x, s, ch, i) - mean;
                var += d * d;
            }
        /* A single value has no unbiased variance: the biased one (0) stands in. */
        unbiased = count > 1 ? var / (count - 1) : 0.0;
        var /= count;
        invstd = 1.0 / sqrt(var + (double)g->epsilon);

        for (int s = 0; s < g->n; s++)
            for (int i = 0; i < g->hw; i++)
                *bn_slot(g, y, s, ch, i) =
                    (float)((bn_value(g, x, s, ch, i) - mean) * invstd * scale[ch] + bias[ch]);
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        running_mean[ch] =
            (float)(g->momentum * (double)running_mean[ch] + (1.0 - g->momentum) * mean);
        running_var[ch] =
            (float)(g->momentum * (double)running_var[ch] + (1.0 - g->momentum) * unbiased);
    }
}

void
ref_batch_norm_forward_eval(const TpBatchNormGeometry *g, const float *x, const float *scale,
                            const float *bias, const float *mean, const float *var, float *y)
{
    for (int s = 0; s < g->n; s++)
        for (int ch = 0; ch < g->c; ch++)
            for (int i = 0; i < g->hw; i++) {
                double xhat = (bn_value(g, x, s, ch, i) - mean[ch]) /
                              sqrt((double)var[ch] + (double)g->epsilon);
                *bn_slot(g, y, s, ch, i) = (float)(xhat * scale[ch] + bias[ch]);
            }
}

void
ref_batch_norm_backward(const TpBatchNormGeometry *g, const float *x, const float *dy,
                        const float *scale, const float *save_mean, const float *save_invstd,
                        float *dx, float *dscale, float *dbias)
{
    double count = (double)g->n * g->hw;

    /* y = scale * xhat + bias with xhat = (x - mean) * invstd, mean and invstd
     * functions of every x of the channel:
     *   dL/dx = scale * invstd / count
     *           * (count * dy - sum(dy) - xhat * sum(dy * xhat)). */
    for (int ch = 0; ch < g->c; ch++) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;

        for (int s = 0; s < g->n; s++)
            for (int i = 0; i < g->hw; i++) {
                double xhat = (bn_value(g, x, s, ch, i) - save_mean[ch]) * save_invstd[ch];
                sum_dy += bn_value(g, dy, s, ch, i);
                sum_dy_xhat += bn_value(g, dy, s, ch, i) * xhat;
            }
        dbias[ch] = (float)sum_dy;
        dscale[ch] = (float)sum_dy_xhat;
        for (int s = 0; s < g->n; s++)
            for (int i = 0; i < g->hw; i++) {
                double xhat = (bn_value(g, x, s, ch, i) - save_mean[ch]) * save_invstd[ch];
                *bn_slot(g, dx, s, ch, i) =
                    (float)((double)scale[ch] * save_invstd[ch] / count *
                            (count * bn_value(g, dy, s, ch, i) - sum_dy - xhat * sum_dy_xhat));
            }
    }
}

/* ------------------------------------------------------------ elementwise */

void
ref_relu_forward(gsize n, const float *x, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void
ref_relu_backward(gsize n, const float *y, const float *dy, float *dx)
{
    for (gsize i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void
ref_add(gsize n, const float *a, const float *b, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = (float)((double)a[i] + (double)b[i]);
}

void
ref_dropout_forward(gsize n, float ratio, guint64 seed, const float *x, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = tp_dropout_keep(seed, i, ratio) ? (float)(x[i] / (1.0 - ratio)) : 0.0f;
}

void
ref_dropout_backward(gsize n, float ratio, guint64 seed, const float *dy, float *dx)
{
    for (gsize i = 0; i < n; i++)
        dx[i] = tp_dropout_keep(seed, i, ratio) ? (float)(dy[i] / (1.0 - ratio)) : 0.0f;
}

/* ------------------------------------------------------------ pooling */

/* Whether window cell (ki, kj) of output (oh, ow) lies inside the input;
 * its input coordinates in *ih, *iw. */
static gboolean
pool_cell(const TpPoolGeometry *g, int oh, int ow, int ki, int kj, int *ih, int *iw)
{
    *ih = oh * g->stride_h - g->pad_t + ki;
    *iw = ow * g->stride_w - g->pad_l + kj;
    return *ih >= 0 && *ih < g->h && *iw >= 0 && *iw < g->w;
}

/* The AVERAGE divisor of output (oh, ow). */
static int
pool_count(const TpPoolGeometry *g, int oh, int ow)
{
    int inside = 0, ih, iw;

    if (g->count_include_pad)
        return g->kh * g->kw;
    for (int ki = 0; ki < g->kh; ki++)
        for (int kj = 0; kj < g->kw; kj++)
            inside += pool_cell(g, oh, ow, ki, kj, &ih, &iw);
    return inside;
}

void
ref_pool2d_forward(const TpPoolGeometry *g, const float *x, float *y)
{
    for (int s = 0; s < g->n; s++)
        for (int ch = 0; ch < g->c; ch++)
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    double acc = g->mode == TP_POOL_MAX ? -INFINITY : 0.0;
                    int ih, iw;

                    for (int ki = 0; ki < g->kh; ki++)
                        for (int kj = 0; kj < g->kw; kj++) {
                            /* Padding: -inf for MAX, 0 for AVERAGE; neither changes acc. */
                            if (!pool_cell(g, oh, ow, ki, kj, &ih, &iw))
                                continue;
                            double v = x[at4(s, ch, ih, iw, g->c, g->h, g->w)];
                            if (g->mode == TP_POOL_MAX)
                                acc = v > acc ? v : acc;
                            else
                                acc += v;
                        }
                    if (g->mode == TP_POOL_AVERAGE) {
                        int count = pool_count(g, oh, ow);
                        acc = count > 0 ? acc / count : 0.0;
                    }
                    y[at4(s, ch, oh, ow, g->c, g->out_h, g->out_w)] = (float)acc;
                }
}

void
ref_pool2d_backward(const TpPoolGeometry *g, const float *x, const float *y, const float *dy,
                    float *dx)
{
    gsize nx = (gsize)g->n * g->c * g->h * g->w;
    double *acc = g_new0(double, MAX(nx, 1));

    for (int s = 0; s < g->n; s++)
        for (int ch = 0; ch < g->c; ch++)
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    gsize o = at4(s, ch, oh, ow, g->c, g->out_h, g->out_w);
                    gboolean sent = FALSE;
                    int count = g->mode == TP_POOL_AVERAGE ? pool_count(g, oh, ow) : 1;
                    int ih, iw;

                    for (int ki = 0; ki < g->kh; ki++)
                        for (int kj = 0; kj < g->kw; kj++) {
                            if (!pool_cell(g, oh, ow, ki, kj, &ih, &iw))
                                continue;
                            gsize i = at4(s, ch, ih, iw, g->c, g->h, g->w);
                            if (g->mode == TP_POOL_MAX) {
                                /* Only the first cell equal to the max. */
                                if (!sent && x[i] == y[o]) {
                                    acc[i] += dy[o];
                                    sent = TRUE;
                                }
                            } else if (count > 0) {
                                acc[i] += (double)dy[o] / count;
                            }
                        }
                }
    for (gsize i = 0; i < nx; i++)
        dx[i] = (float)acc[i];
    g_free(acc);
}

/* ------------------------------------------------------------ softmax */

/* log(sum_j exp(x_j)) of one row, shifted by its max for stability. */
static double
row_logsumexp(int cols, const float *x)
{
    double m = -INFINITY, sum = 0.0;

    for (int j = 0; j < cols; j++)
        if (x[j] > m)
            m = x[j];
    for (int j = 0; j < cols; j++)
        sum += exp(x[j] - m);
    return m + log(sum);
}

void
ref_softmax_forward(int rows, int cols, const float *x, float *y)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (gsize)r * cols;
        double lse = row_logsumexp(cols, xr);
        for (int j = 0; j < cols; j++)
            y[(gsize)r * cols + j] = (float)exp(xr[j] - lse);
    }
}

void
ref_softmax_backward(int rows, int cols, const float *y, const float *dy, float *dx)
{
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (gsize)r * cols;
        const float *dyr = dy + (gsize)r * cols;
        double dot = 0.0;
        for (int j = 0; j < cols; j++)
            dot += (double)yr[j] * dyr[j];
        for (int j = 0; j < cols; j++)
            dx[(gsize)r * cols + j] = (float)(yr[j] * (dyr[j] - dot));
    }
}

double
ref_softmax_cross_entropy(int rows, int cols, const float *logits, const gint32 *labels,
                          float smoothing, float *dlogits)
{
    double total = 0.0;

    for (int r = 0; r < rows; r++) {
        const float *xr = logits + (gsize)r * cols;
        double lse = row_logsumexp(cols, xr);
        for (int j = 0; j < cols; j++) {
            double target = (1.0 - smoothing) * (j == labels[r]) + (double)smoothing / cols;
            double log_p = xr[j] - lse;
            total -= target * log_p;
            if (dlogits != NULL)
                dlogits[(gsize)r * cols + j] = (float)((exp(log_p) - target) / rows);
        }
    }
    return rows > 0 ? total / rows : 0.0;
}

/* ------------------------------------------------------------ optimizer */

void
ref_sgd_update(gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper)
{
    for (gsize i = 0; i < n; i++) {
        double grad = (double)g[i] + (double)hyper->weight_decay * w[i];
        double vel = (double)hyper->momentum * v[i] + grad;
        double step = hyper->nesterov ? grad + (double)hyper->momentum * vel : vel;
        v[i] = (float)vel;
        w[i] = (float)(w[i] - (double)hyper->lr * step);
    }
}

/* ------------------------------------------------------------ relevance */

void
ref_mul(gsize n, const float *a, const float *b, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = (float)((double)a[i] * (double)b[i]);
}

/* beta = 0: y is not read. */
void
ref_axpby(gsize n, float alpha, const float *x, float beta, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = (float)((double)alpha * x[i] + (beta == 0.0f ? 0.0 : (double)beta * y[i]));
}

void
ref_clamp(gsize n, const float *x, float lo, float hi, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = fminf(fmaxf(x[i], lo), hi);
}

/* stab(z) = z + epsilon * sign(z), TP_STABILIZER_ZERO at z = 0 (docs/method.md). */
void
ref_stabilized_divide(gsize n, const float *r, const float *z, float epsilon, float *y)
{
    for (gsize i = 0; i < n; i++) {
        double zi = z[i];
        double stab =
            zi == 0.0 ? (double)TP_STABILIZER_ZERO : zi + (zi > 0.0 ? 1.0 : -1.0) * epsilon;

        y[i] = (float)((double)r[i] / stab);
    }
}

/* ------------------------------------------------------------ unary family */

double
ref_unary_value(const TpUnaryOp *op, double x)
{
    switch (op->function) {
    case TP_UNARY_RELU:
        return x > 0.0 ? x : 0.0;
    case TP_UNARY_CLIP:
        return x < op->lo ? op->lo : x > op->hi ? op->hi : x;
    case TP_UNARY_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case TP_UNARY_HARD_SIGMOID:
        return fmin(1.0, fmax(0.0, op->alpha * x + op->beta));
    case TP_UNARY_HARD_SWISH:
        return x * fmin(1.0, fmax(0.0, x / 6.0 + 0.5));
    case TP_UNARY_SILU:
        return x / (1.0 + exp(-x));
    case TP_UNARY_GELU:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case TP_UNARY_LEAKY_RELU:
        return x >= 0.0 ? x : op->alpha * x;
    case TP_UNARY_TANH:
        return tanh(x);
    case TP_UNARY_SQRT:
        return sqrt(x);
    case TP_UNARY_ERF:
        return erf(x);
    case TP_UNARY_EXP:
        return exp(x);
    case TP_UNARY_RECIPROCAL:
        return 1.0 / x;
    case TP_UNARY_POW:
        return pow(x, op->alpha);
    case TP_UNARY_LOG:
        return log(x);
    case TP_UNARY_NEG:
        return -x;
    case TP_UNARY_ABS:
        return fabs(x);
    }
    g_assert_not_reached();
}

double
ref_unary_derivative(const TpUnaryOp *op, double x)
{
    switch (op->function) {
    case TP_UNARY_RELU:
        return x > 0.0 ? 1.0 : 0.0;
    case TP_UNARY_CLIP:
        return x > op->lo && x < op->hi ? 1.0 : 0.0;
    case TP_UNARY_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 - s);
    }
    case TP_UNARY_HARD_SIGMOID: {
        double t = op->alpha * x + op->beta;
        return t > 0.0 && t < 1.0 ? op->alpha : 0.0;
    }
    case TP_UNARY_HARD_SWISH:
        return x < -3.0 ? 0.0 : x <= 3.0 ? 2.0 * x / 6.0 + 0.5 : 1.0;
    case TP_UNARY_SILU: {
        double s = 1.0 / (1.0 + exp(-x));
        return s + x * s * (1.0 - s);
    }
    case TP_UNARY_GELU:
        return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-x * x / 2.0) / sqrt(2.0 * G_PI);
    case TP_UNARY_LEAKY_RELU:
        return x >= 0.0 ? 1.0 : op->alpha;
    case TP_UNARY_TANH:
        return 1.0 - tanh(x) * tanh(x);
    case TP_UNARY_SQRT:
        return 0.5 / sqrt(x);
    case TP_UNARY_ERF:
        return 2.0 / sqrt(G_PI) * exp(-x * x);
    case TP_UNARY_EXP:
        return exp(x);
    case TP_UNARY_RECIPROCAL:
        return -1.0 / (x * x);
    case TP_UNARY_POW:
        return op->alpha * pow(x, op->alpha - 1.0);
    case TP_UNARY_LOG:
        return 1.0 / x;
    case TP_UNARY_NEG:
        return -1.0;
    case TP_UNARY_ABS:
        return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : 0.0;
    }
    g_assert_not_reached();
}

void
ref_unary_forward(const TpUnaryOp *op, gsize n, const float *x, float *y)
{
    for (gsize i = 0; i < n; i++)
        y[i] = (float)ref_unary_value(op, x[i]);
}

void
ref_unary_backward(const TpUnaryOp *op, gsize n, const float *x, const float *dy, float *dx)
{
    for (gsize i = 0; i < n; i++)
        dx[i] = (float)(ref_unary_derivative(op, x[i]) * dy[i]);
}

/* ------------------------------------------------------------ binary and reduce families */

/* The index into an operand of shape `shape` (each axis y[d] or 1) of the
 * element that y's element i (row-major over y) reads. */
static gsize
broadcast_index(int ndim, const int *y, const int *shape, gsize i)
{
    gsize index = 0, scale = 1;

    for (int d = ndim - 1; d >= 0; d--) {
        gsize coord = i % (gsize)y[d];
        i /= (gsize)y[d];
        if (shape[d] != 1)
            index += coord * scale;
        scale *= (gsize)shape[d];
    }
    return index;
}

static gsize
shape_numel(int ndim, const int *shape)
{
    gsize n = 1;

    for (int d = 0; d < ndim; d++)
        n *= (gsize)shape[d];
    return n;
}

static double
binary_value(TpBinaryOp op, double a, double b)
{
    switch (op) {
    case TP_BINARY_ADD:
        return a + b;
    case TP_BINARY_SUB:
        return a - b;
    case TP_BINARY_MUL:
        return a * b;
    case TP_BINARY_DIV:
        return a / b;
    }
    g_assert_not_reached();
}

void
ref_binary_forward(TpBinaryOp op, const TpBroadcastGeometry *g, const float *a, const float *b,
                   float *y)
{
    gsize n = shape_numel(g->ndim, g->y);

    for (gsize i = 0; i < n; i++)
        y[i] = (float)binary_value(op, a[broadcast_index(g->ndim, g->y, g->a, i)],
                                   b[broadcast_index(g->ndim, g->y, g->b, i)]);
}

void
ref_binary_backward(TpBinaryOp op, const TpBroadcastGeometry *g, const float *a, const float *b,
                    const float *dy, float *da, float *db)
{
    gsize n = shape_numel(g->ndim, g->y);
    gsize na = shape_numel(g->ndim, g->a), nb = shape_numel(g->ndim, g->b);
    g_autofree double *sa = g_new0(double, na);
    g_autofree double *sb = g_new0(double, nb);

    for (gsize i = 0; i < n; i++) {
        gsize ia = broadcast_index(g->ndim, g->y, g->a, i);
        gsize ib = broadcast_index(g->ndim, g->y, g->b, i);
        double av = a != NULL ? a[ia] : 0.0, bv = b != NULL ? b[ib] : 1.0;
        double ga = op == TP_BINARY_MUL ? bv : op == TP_BINARY_DIV ? 1.0 / bv : 1.0;
        double gb = op == TP_BINARY_MUL   ? av
                    : op == TP_BINARY_DIV ? -av / (bv * bv)
                    : op == TP_BINARY_SUB ? -1.0
                                          : 1.0;
        sa[ia] += dy[i] * ga;
        sb[ib] += dy[i] * gb;
    }
    for (gsize j = 0; da != NULL && j < na; j++)
        da[j] = (float)sa[j];
    for (gsize j = 0; db != NULL && j < nb; j++)
        db[j] = (float)sb[j];
}

void
ref_reduce_forward(TpReduceOp op, const TpReduceGeometry *g, const float *x, float *y)
{
    gsize nx = shape_numel(g->ndim, g->x), ny = shape_numel(g->ndim, g->y);
    g_autofree double *sum = g_new0(double, ny);

    for (gsize i = 0; i < nx; i++)
        sum[broadcast_index(g->ndim, g->x, g->y, i)] += x[i];
    for (gsize j = 0; j < ny; j++)
        y[j] = (float)(op == TP_REDUCE_MEAN ? sum[j] / (double)(nx / ny) : sum[j]);
}

void
ref_reduce_backward(TpReduceOp op, const TpReduceGeometry *g, const float *dy, float *dx)
{
    gsize nx = shape_numel(g->ndim, g->x), ny = shape_numel(g->ndim, g->y);

    for (gsize i = 0; i < nx; i++) {
        double v = dy[broadcast_index(g->ndim, g->x, g->y, i)];
        dx[i] = (float)(op == TP_REDUCE_MEAN ? v / (double)(nx / ny) : v);
    }
}

/* ------------------------------------------------------------ strided family */

void
ref_strided_copy(const TpStridedCopy *g, const float *src, float *dst)
{
    gsize n = 1;

    for (int d = 0; d < g->ndim; d++)
        n *= (gsize)g->shape[d];
    for (gsize i = 0; i < n; i++) {
        gssize s = (gssize)g->src_offset, t = (gssize)g->dst_offset;
        gsize rest = i;
        for (int d = g->ndim - 1; d >= 0; d--) {
            gssize coord = (gssize)(rest % (gsize)g->shape[d]);
            rest /= (gsize)g->shape[d];
            s += coord * g->src_stride[d];
            t += coord * g->dst_stride[d];
        }
        dst[t] = g->accumulate ? dst[t] + src[s] : src[s];
    }
}

/* ------------------------------------------------------------ layer-norm family */

/* Row r's mean and 1 / sqrt(biased variance + epsilon), in double. */
static void
layer_norm_row_stats(const TpLayerNormGeometry *g, const float *x, int r, double *mean,
                     double *invstd)
{
    double sum = 0.0, sq = 0.0;

    for (int j = 0; j < g->cols; j++)
        sum += x[(gsize)r * g->cols + j];
    *mean = sum / g->cols;
    for (int j = 0; j < g->cols; j++) {
        double d = x[(gsize)r * g->cols + j] - *mean;
        sq += d * d;
    }
    *invstd = 1.0 / sqrt(sq / g->cols + g->epsilon);
}

void
ref_layer_norm_forward(const TpLayerNormGeometry *g, const float *x, const float *scale,
                       const float *bias, float *y, float *save_mean, float *save_invstd)
{
    for (int r = 0; r < g->rows; r++) {
        double mean, invstd;
        layer_norm_row_stats(g, x, r, &mean, &invstd);
        if (save_mean != NULL)
            save_mean[r] = (float)mean;
        if (save_invstd != NULL)
            save_invstd[r] = (float)invstd;
        for (int j = 0; j < g->cols; j++) {
            gsize i = (gsize)r * g->cols + j;
            y[i] = (float)((x[i] - mean) * invstd * scale[j] + (bias != NULL ? bias[j] : 0.0));
        }
    }
}

/* The textbook gradient through the mean and the variance, in double:
 * dx_j = invstd * (g_j - mean(g) - x̂_j * mean(g * x̂)) with g = dy * scale. */
void
ref_layer_norm_backward(const TpLayerNormGeometry *g, const float *x, const float *dy,
                        const float *scale, float *dx, float *dscale, float *dbias)
{
    g_autofree double *ds = g_new0(double, MAX(g->cols, 1));
    g_autofree double *db = g_new0(double, MAX(g->cols, 1));

    for (int r = 0; r < g->rows; r++) {
        double mean, invstd, sum_g = 0.0, sum_gx = 0.0;
        layer_norm_row_stats(g, x, r, &mean, &invstd);
        for (int j = 0; j < g->cols; j++) {
            gsize i = (gsize)r * g->cols + j;
            double xhat = (x[i] - mean) * invstd;
            sum_g += (double)dy[i] * scale[j];
            sum_gx += (double)dy[i] * scale[j] * xhat;
            ds[j] += dy[i] * xhat;
            db[j] += dy[i];
        }
        for (int j = 0; j < g->cols; j++) {
            gsize i = (gsize)r * g->cols + j;
            double xhat = (x[i] - mean) * invstd;
            dx[i] = (float)(invstd * ((double)dy[i] * scale[j] - sum_g / g->cols -
                                      xhat * sum_gx / g->cols));
        }
    }
    for (int j = 0; j < g->cols; j++) {
        if (dscale != NULL)
            dscale[j] = (float)ds[j];
        if (dbias != NULL)
            dbias[j] = (float)db[j];
    }
}
