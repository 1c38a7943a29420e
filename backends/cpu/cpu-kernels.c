/* cpu-kernels.c — the cpu backend's kernels (contracts: tp-backend.h).
 *
 * Convolutions are im2col + OpenBLAS sgemm, batched: a chunk of nb samples is
 * unfolded into one matrix col[c * kh * kw, nb * out_h * out_w] (rows ordered
 * (channel, ki, kj), columns (sample, oh, ow)), so one sgemm per group covers
 * the whole chunk; nb is chosen so the scratch stays under CONV_SCRATCH_BYTES.
 * A group's rows of col are contiguous, as are its rows of the weights
 * [out_c, c / groups * kh * kw], so a group is just an offset.
 *
 *   forward          y_g[ocg, nb*P]  = W_g[ocg, K] · col_g[K, nb*P]   (+ bias)
 *   backward_data    col_g[K, nb*P]  = W_g^T · dy_g[ocg, nb*P], then col2im
 *                                      (overlapping windows accumulate)
 *   backward_filter  dW_g[ocg, K]   += dy_g[ocg, nb*P] · col_g^T  (beta = 1
 *                                      after the first chunk)
 *
 * with K = c / groups * kh * kw and P = out_h * out_w. The gathered
 * [out_c, nb*P] layout differs from NCHW only when nb > 1; a chunk of one
 * sample reads and writes y / dy in place. A 1x1, stride-1, unpadded
 * convolution needs no im2col at all: each sample's [c, h*w] block already is
 * its col matrix.
 *
 * Reductions that decide accuracy (batch-norm statistics, the loss, bias
 * gradients, column sums) are accumulated in double.
 */
#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-kernels.h"

/* Upper bound on the conv scratch (col + gathered rows) for one chunk; a
 * single sample that needs more gets it anyway. */
#define CONV_SCRATCH_BYTES ((gsize)64 << 20)

#define ALIGNMENT 64

/* ------------------------------------------------------------------ memory */

float *
cpu_alloc_floats(gsize n, GError **error)
{
    void *mem = NULL;
    gsize bytes;
    int rc;

    if (n > (G_MAXSIZE - ALIGNMENT) / sizeof(float)) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                    "cannot allocate %" G_GSIZE_FORMAT " floats: the size overflows", n);
        return NULL;
    }
    /* Round up to whole cache lines; never ask for 0 bytes, whose result
     * may be NULL. */
    bytes = MAX(n * sizeof(float), (gsize)ALIGNMENT);
    bytes = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    rc = posix_memalign(&mem, ALIGNMENT, bytes);
    if (rc != 0) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                    "cannot allocate %" G_GSIZE_FORMAT " floats (%" G_GSIZE_FORMAT
                    " bytes) of host memory: %s",
                    n, bytes, g_strerror(rc));
        return NULL;
    }
    return mem;
}

void
cpu_free_floats(float *mem)
{
    free(mem);
}

gboolean
cpu_scratch_reserve(CpuScratch *scratch, gsize n, GError **error)
{
    float *data;

    if (n <= scratch->capacity)
        return TRUE;
    data = cpu_alloc_floats(n, error);
    if (data == NULL) {
        g_prefix_error(error, "convolution scratch: ");
        return FALSE;
    }
    cpu_free_floats(scratch->data);
    scratch->data = data;
    scratch->capacity = n;
    return TRUE;
}

void
cpu_scratch_clear(CpuScratch *scratch)
{
    g_clear_pointer(&scratch->data, cpu_free_floats);
    scratch->capacity = 0;
}

/* ------------------------------------------------------------------ helpers */

/* C[m, n] = alpha * op(A) op(B) + beta * C, row-major with explicit leading
 * dimensions. */
static void
sgemm(gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha, const float *a, int lda,
      const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* The outputs o in [*lo, *hi) (within [0, out)) whose input coordinate
 * o * stride + off falls inside [0, size). */
static void
valid_range(int off, int stride, int size, int out, int *lo, int *hi)
{
    int first = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int end = size - off <= 0 ? 0 : (size - off - 1) / stride + 1;

    *lo = MIN(first, out);
    *hi = CLAMP(end, *lo, out);
}

/* ------------------------------------------------------------ convolution */

static gsize
conv_out_plane(const TpConvGeometry *g)
{
    return (gsize)g->out_h * g->out_w;
}

/* 1x1, stride 1, no padding: output pixel p reads input pixel p. */
static gboolean
conv_is_pointwise(const TpConvGeometry *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->pad_b == 0 && g->pad_r == 0 && g->out_h == g->h && g->out_w == g->w;
}

/* Samples per chunk: as many as fit in CONV_SCRATCH_BYTES, at least 1. */
static int
conv_chunk(const TpConvGeometry *g)
{
    gsize per_sample = ((gsize)g->c * g->kh * g->kw + (gsize)g->out_c) * conv_out_plane(g);
    gsize nb = CONV_SCRATCH_BYTES / sizeof(float) / MAX(per_sample, 1);

    return (int)CLAMP(nb, 1, (gsize)g->n);
}

/* Reserves col (and rows when a chunk has more than one sample). */
static gboolean
conv_reserve(CpuBackend *cpu, const TpConvGeometry *g, int nb, GError **error)
{
    gsize ld = (gsize)nb * conv_out_plane(g);

    if (!cpu_scratch_reserve(&cpu->col, (gsize)g->c * g->kh * g->kw * ld, error))
        return FALSE;
    if (nb > 1 && !cpu_scratch_reserve(&cpu->rows, (gsize)g->out_c * ld, error))
        return FALSE;
    return TRUE;
}

/* Unfolds samples [n0, n0 + nb) of x into col (see the top of the file);
 * cells that fall in the padding are 0. */
static void
im2col(const TpConvGeometry *g, const float *x, int n0, int nb, float *col)
{
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = conv_out_plane(g);
    const gsize ld = (gsize)nb * out_plane;

    for (int ci = 0; ci < g->c; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            int row_off = ki * g->dil_h - g->pad_t;
            int oh_lo, oh_hi;
            valid_range(row_off, g->stride_h, g->h, g->out_h, &oh_lo, &oh_hi);

            for (int kj = 0; kj < g->kw; kj++) {
                int col_off = kj * g->dil_w - g->pad_l;
                int ow_lo, ow_hi;
                float *row = col + (((gsize)ci * g->kh + ki) * g->kw + kj) * ld;
                valid_range(col_off, g->stride_w, g->w, g->out_w, &ow_lo, &ow_hi);

                for (int s = 0; s < nb; s++) {
                    const float *src = x + ((gsize)(n0 + s) * g->c + ci) * plane;
                    float *dst = row + (gsize)s * out_plane;

                    memset(dst, 0, (gsize)oh_lo * g->out_w * sizeof(float));
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        const float *in = src + (gsize)(oh * g->stride_h + row_off) * g->w;
                        float *out = dst + (gsize)oh * g->out_w;

                        for (int ow = 0; ow < ow_lo; ow++)
                            out[ow] = 0.0f;
                        if (g->stride_w == 1) {
                            memcpy(out + ow_lo, in + ow_lo + col_off,
                                   (gsize)(ow_hi - ow_lo) * sizeof(float));
                        } else {
                            for (int ow = ow_lo; ow < ow_hi; ow++)
                                out[ow] = in[ow * g->stride_w + col_off];
                        }
                        for (int ow = ow_hi; ow < g->out_w; ow++)
                            out[ow] = 0.0f;
                    }
                    memset(dst + (gsize)oh_hi * g->out_w, 0,
                           (gsize)(g->out_h - oh_hi) * g->out_w * sizeof(float));
                }
            }
        }
    }
}

/* The adjoint of im2col: adds every cell of col back to the input position
 * it was read from, into samples [n0, n0 + nb) of dx, which the caller has
 * zeroed. Padding cells are dropped. */
static void
col2im(const TpConvGeometry *g, const float *col, int n0, int nb, float *dx)
{
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = conv_out_plane(g);
    const gsize ld = (gsize)nb * out_plane;

    for (int ci = 0; ci < g->c; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            int row_off = ki * g->dil_h - g->pad_t;
            int oh_lo, oh_hi;
            valid_range(row_off, g->stride_h, g->h, g->out_h, &oh_lo, &oh_hi);

            for (int kj = 0; kj < g->kw; kj++) {
                int col_off = kj * g->dil_w - g->pad_l;
                int ow_lo, ow_hi;
                const float *row = col + (((gsize)ci * g->kh + ki) * g->kw + kj) * ld;
                valid_range(col_off, g->stride_w, g->w, g->out_w, &ow_lo, &ow_hi);

                for (int s = 0; s < nb; s++) {
                    float *dst = dx + ((gsize)(n0 + s) * g->c + ci) * plane;
                    const float *src = row + (gsize)s * out_plane;

                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        float *in = dst + (gsize)(oh * g->stride_h + row_off) * g->w;
                        const float *out = src + (gsize)oh * g->out_w;

                        for (int ow = ow_lo; ow < ow_hi; ow++)
                            in[ow * g->stride_w + col_off] += out[ow];
                    }
                }
            }
        }
    }
}

/* Copies samples [n0, n0 + nb) of an NCHW tensor with out_c channels into
 * rows[out_c, nb * P]. */
static void
gather_rows(const TpConvGeometry *g, const float *t, int n0, int nb, float *rows)
{
    const gsize out_plane = conv_out_plane(g);
    const gsize ld = (gsize)nb * out_plane;

    for (int o = 0; o < g->out_c; o++)
        for (int s = 0; s < nb; s++)
            memcpy(rows + o * ld + s * out_plane, t + ((gsize)(n0 + s) * g->out_c + o) * out_plane,
                   out_plane * sizeof(float));
}

/* The inverse of gather_rows, adding bias[o] (when not NULL) on the way. */
static void
scatter_rows(const TpConvGeometry *g, const float *rows, const float *bias, int n0, int nb,
             float *t)
{
    const gsize out_plane = conv_out_plane(g);
    const gsize ld = (gsize)nb * out_plane;

    for (int o = 0; o < g->out_c; o++) {
        float b = bias != NULL ? bias[o] : 0.0f;
        for (int s = 0; s < nb; s++) {
            const float *src = rows + o * ld + s * out_plane;
            float *dst = t + ((gsize)(n0 + s) * g->out_c + o) * out_plane;
            for (gsize p = 0; p < out_plane; p++)
                dst[p] = src[p] + b;
        }
    }
}

/* y[s, o, :] += bias[o] for samples [n0, n0 + nb). */
static void
add_channel_bias(const TpConvGeometry *g, const float *bias, int n0, int nb, float *y)
{
    const gsize out_plane = conv_out_plane(g);

    for (int s = n0; s < n0 + nb; s++) {
        for (int o = 0; o < g->out_c; o++) {
            float *dst = y + ((gsize)s * g->out_c + o) * out_plane;
            for (gsize p = 0; p < out_plane; p++)
                dst[p] += bias[o];
        }
    }
}

gboolean
cpu_conv2d_forward(gpointer self, const TpConvGeometry *g, const float *x, const float *weights,
                   const float *bias, float *y, GError **error)
{
    CpuBackend *cpu = self;
    const int cg = g->c / g->groups, ocg = g->out_c / g->groups;
    const int k = cg * g->kh * g->kw;
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (g->n == 0 || out_plane == 0)
        return TRUE;

    if (conv_is_pointwise(g)) {
        for (int s = 0; s < g->n; s++) {
            for (int gi = 0; gi < g->groups; gi++)
                sgemm(FALSE, FALSE, ocg, (int)out_plane, cg, 1.0f, weights + (gsize)gi * ocg * cg,
                      cg, x + ((gsize)s * g->c + (gsize)gi * cg) * out_plane, (int)out_plane, 0.0f,
                      y + ((gsize)s * g->out_c + (gsize)gi * ocg) * out_plane, (int)out_plane);
        }
        if (bias != NULL)
            add_channel_bias(g, bias, 0, g->n, y);
        return TRUE;
    }

    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        int ld = (int)(cur * out_plane);
        float *out = cur == 1 ? y + (gsize)n0 * g->out_c * out_plane : cpu->rows.data;

        im2col(g, x, n0, cur, cpu->col.data);
        for (int gi = 0; gi < g->groups; gi++)
            sgemm(FALSE, FALSE, ocg, ld, k, 1.0f, weights + (gsize)gi * ocg * k, k,
                  cpu->col.data + (gsize)gi * k * ld, ld, 0.0f, out + (gsize)gi * ocg * ld, ld);
        if (cur > 1)
            scatter_rows(g, out, bias, n0, cur, y);
        else if (bias != NULL)
            add_channel_bias(g, bias, n0, 1, y);
    }
    return TRUE;
}

gboolean
cpu_conv2d_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                         const float *weights, float *dx, GError **error)
{
    CpuBackend *cpu = self;
    const int cg = g->c / g->groups, ocg = g->out_c / g->groups;
    const int k = cg * g->kh * g->kw;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (g->n == 0)
        return TRUE;
    if (out_plane == 0) {
        memset(dx, 0, (gsize)g->n * g->c * plane * sizeof(float));
        return TRUE;
    }

    if (conv_is_pointwise(g)) {
        for (int s = 0; s < g->n; s++) {
            for (int gi = 0; gi < g->groups; gi++)
                sgemm(TRUE, FALSE, cg, (int)plane, ocg, 1.0f, weights + (gsize)gi * ocg * cg, cg,
                      dy + ((gsize)s * g->out_c + (gsize)gi * ocg) * plane, (int)plane, 0.0f,
                      dx + ((gsize)s * g->c + (gsize)gi * cg) * plane, (int)plane);
        }
        return TRUE;
    }

    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        int ld = (int)(cur * out_plane);
        const float *src = dy + (gsize)n0 * g->out_c * out_plane;

        if (cur > 1) {
            gather_rows(g, dy, n0, cur, cpu->rows.data);
            src = cpu->rows.data;
        }
        for (int gi = 0; gi < g->groups; gi++)
            sgemm(TRUE, FALSE, k, ld, ocg, 1.0f, weights + (gsize)gi * ocg * k, k,
                  src + (gsize)gi * ocg * ld, ld, 0.0f, cpu->col.data + (gsize)gi * k * ld, ld);
        memset(dx + (gsize)n0 * g->c * plane, 0, (gsize)cur * g->c * plane * sizeof(float));
        col2im(g, cpu->col.data, n0, cur, dx);
    }
    return TRUE;
}

gboolean
cpu_conv2d_backward_filter(gpointer self, const TpConvGeometry *g, const float *x, const float *dy,
                           float *dweights, float *dbias, GError **error)
{
    CpuBackend *cpu = self;
    const int cg = g->c / g->groups, ocg = g->out_c / g->groups;
    const int k = cg * g->kh * g->kw;
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (dbias != NULL) {
        for (int o = 0; o < g->out_c; o++) {
            double sum = 0.0;
            for (int s = 0; s < g->n; s++) {
                const float *src = dy + ((gsize)s * g->out_c + o) * out_plane;
                for (gsize p = 0; p < out_plane; p++)
                    sum += src[p];
            }
            dbias[o] = (float)sum;
        }
    }
    if (g->n == 0 || out_plane == 0) {
        memset(dweights, 0, (gsize)g->out_c * k * sizeof(float));
        return TRUE;
    }

    if (conv_is_pointwise(g)) {
        for (int s = 0; s < g->n; s++) {
            for (int gi = 0; gi < g->groups; gi++)
                sgemm(FALSE, TRUE, ocg, cg, (int)out_plane, 1.0f,
                      dy + ((gsize)s * g->out_c + (gsize)gi * ocg) * out_plane, (int)out_plane,
                      x + ((gsize)s * g->c + (gsize)gi * cg) * out_plane, (int)out_plane,
                      s == 0 ? 0.0f : 1.0f, dweights + (gsize)gi * ocg * cg, cg);
        }
        return TRUE;
    }

    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        int ld = (int)(cur * out_plane);
        const float *src = dy + (gsize)n0 * g->out_c * out_plane;

        if (cur > 1) {
            gather_rows(g, dy, n0, cur, cpu->rows.data);
            src = cpu->rows.data;
        }
        im2col(g, x, n0, cur, cpu->col.data);
        for (int gi = 0; gi < g->groups; gi++)
            sgemm(FALSE, TRUE, ocg, k, ld, 1.0f, src + (gsize)gi * ocg * ld, ld,
                  cpu->col.data + (gsize)gi * k * ld, ld, n0 == 0 ? 0.0f : 1.0f,
                  dweights + (gsize)gi * ocg * k, k);
    }
    return TRUE;
}

/* ------------------------------------------------------------ dense algebra */

gboolean
cpu_gemm(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha,
         const float *a, const float *b, float beta, float *c, GError **error)
{
    if (m <= 0 || n <= 0)
        return TRUE;
    if (k <= 0) {
        /* No products: C = beta * C, which BLAS would refuse (lda < 1). */
        for (gsize i = 0; i < (gsize)m * n; i++)
            c[i] = beta == 0.0f ? 0.0f : beta * c[i];
        return TRUE;
    }
    /* OpenBLAS clears C instead of scaling it when beta is 0, so C is not read. */
    sgemm(trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
    return TRUE;
}

gboolean
cpu_add_bias(gpointer self, int rows, int cols, const float *bias, float *y, GError **error)
{
    for (int r = 0; r < rows; r++) {
        float *row = y + (gsize)r * cols;
        for (int j = 0; j < cols; j++)
            row[j] += bias[j];
    }
    return TRUE;
}

gboolean
cpu_sum_rows(gpointer self, int rows, int cols, const float *x, float *y, GError **error)
{
    /* Columns in blocks, so the double accumulators stay on the stack and x
     * is read row by row. */
    enum { BLOCK = 256 };
    double acc[BLOCK];

    for (int j0 = 0; j0 < cols; j0 += BLOCK) {
        int nj = MIN(BLOCK, cols - j0);

        for (int j = 0; j < nj; j++)
            acc[j] = 0.0;
        for (int r = 0; r < rows; r++) {
            const float *row = x + (gsize)r * cols + j0;
            for (int j = 0; j < nj; j++)
                acc[j] += row[j];
        }
        for (int j = 0; j < nj; j++)
            y[j0 + j] = (float)acc[j];
    }
    return TRUE;
}

/* ------------------------------------------------------------ batch norm */

/* Channel ch of sample s in x[n, c, hw]. */
static inline gsize
bn_offset(const TpBatchNormGeometry *g, int s, int ch)
{
    return ((gsize)s * g->c + ch) * g->hw;
}

gboolean
cpu_batch_norm_forward_train(gpointer self, const TpBatchNormGeometry *g, const float *x,
                             const float *scale, const float *bias, float *running_mean,
                             float *running_var, float *y, float *save_mean, float *save_invstd,
                             GError **error)
{
    const gsize count = (gsize)g->n * g->hw;

    for (int ch = 0; ch < g->c; ch++) {
        double sum = 0.0, sq = 0.0, mean, var, unbiased, invstd;
        float m, a;

        /* Two passes: the mean, then the squared deviations from it. */
        for (int s = 0; s < g->n; s++) {
            const float *src = x + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                sum += src[i];
        }
        mean = count > 0 ? sum / (double)count : 0.0;
        for (int s = 0; s < g->n; s++) {
            const float *src = x + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++) {
                double d = src[i] - mean;
                sq += d * d;
            }
        }
        var = count > 0 ? sq / (double)count : 0.0;
        /* One value per channel has no unbiased variance; use the biased one (0). */
        unbiased = count > 1 ? sq / (double)(count - 1) : var;
        invstd = 1.0 / sqrt(var + g->epsilon);

        m = (float)mean;
        a = (float)(scale[ch] * invstd);
        for (int s = 0; s < g->n; s++) {
            const float *src = x + bn_offset(g, s, ch);
            float *dst = y + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                dst[i] = (src[i] - m) * a + bias[ch];
        }
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        running_mean[ch] =
            (float)(g->momentum * (double)running_mean[ch] + (1.0 - g->momentum) * mean);
        running_var[ch] =
            (float)(g->momentum * (double)running_var[ch] + (1.0 - g->momentum) * unbiased);
    }
    return TRUE;
}

gboolean
cpu_batch_norm_forward_eval(gpointer self, const TpBatchNormGeometry *g, const float *x,
                            const float *scale, const float *bias, const float *mean,
                            const float *var, float *y, GError **error)
{
    for (int ch = 0; ch < g->c; ch++) {
        double invstd = 1.0 / sqrt((double)var[ch] + g->epsilon);
        float a = (float)(scale[ch] * invstd);

        for (int s = 0; s < g->n; s++) {
            const float *src = x + bn_offset(g, s, ch);
            float *dst = y + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                dst[i] = (src[i] - mean[ch]) * a + bias[ch];
        }
    }
    return TRUE;
}

gboolean
cpu_batch_norm_backward(gpointer self, const TpBatchNormGeometry *g, const float *x,
                        const float *dy, const float *scale, const float *save_mean,
                        const float *save_invstd, float *dx, float *dscale, float *dbias,
                        GError **error)
{
    const gsize count = (gsize)g->n * g->hw;

    /* With xhat = (x - mean) * invstd over the count values of a channel:
     *   dbias  = sum dy,  dscale = sum dy * xhat,
     *   dx     = scale * invstd * (dy - dbias / count - xhat * dscale / count). */
    for (int ch = 0; ch < g->c; ch++) {
        const double mean = save_mean[ch], invstd = save_invstd[ch];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        double k, mean_dy, mean_dy_xhat;

        for (int s = 0; s < g->n; s++) {
            const float *xs = x + bn_offset(g, s, ch);
            const float *dys = dy + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++) {
                sum_dy += dys[i];
                sum_dy_xhat += dys[i] * ((xs[i] - mean) * invstd);
            }
        }
        dbias[ch] = (float)sum_dy;
        dscale[ch] = (float)sum_dy_xhat;
        if (count == 0)
            continue;

        k = scale[ch] * invstd;
        mean_dy = sum_dy / (double)count;
        mean_dy_xhat = sum_dy_xhat / (double)count;
        for (int s = 0; s < g->n; s++) {
            const float *xs = x + bn_offset(g, s, ch);
            const float *dys = dy + bn_offset(g, s, ch);
            float *dxs = dx + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++) {
                double xhat = (xs[i] - mean) * invstd;
                dxs[i] = (float)(k * (dys[i] - mean_dy - xhat * mean_dy_xhat));
            }
        }
    }
    return TRUE;
}

/* ------------------------------------------------------------ elementwise */

gboolean
cpu_relu_forward(gpointer self, gsize n, const float *x, float *y, GError **error)
{
    for (gsize i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return TRUE;
}

gboolean
cpu_relu_backward(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                  GError **error)
{
    for (gsize i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return TRUE;
}

gboolean
cpu_add(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    for (gsize i = 0; i < n; i++)
        y[i] = a[i] + b[i];
    return TRUE;
}

gboolean
cpu_dropout_forward(gpointer self, gsize n, float ratio, guint64 seed, const float *x, float *y,
                    GError **error)
{
    /* ratio = 1 keeps nothing, so the division never sees 0. */
    for (gsize i = 0; i < n; i++)
        y[i] = tp_dropout_keep(seed, i, ratio) ? x[i] / (1.0f - ratio) : 0.0f;
    return TRUE;
}

gboolean
cpu_dropout_backward(gpointer self, gsize n, float ratio, guint64 seed, const float *dy, float *dx,
                     GError **error)
{
    for (gsize i = 0; i < n; i++)
        dx[i] = tp_dropout_keep(seed, i, ratio) ? dy[i] / (1.0f - ratio) : 0.0f;
    return TRUE;
}

/* ------------------------------------------------------------ pooling */

/* The window of output (oh, ow), clipped to the input: rows [*h0, *h1),
 * columns [*w0, *w1). */
static void
pool_window(const TpPoolGeometry *g, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * g->stride_h - g->pad_t;
    int ws = ow * g->stride_w - g->pad_l;

    *h0 = MAX(hs, 0);
    *h1 = MIN(hs + g->kh, g->h);
    *w0 = MAX(ws, 0);
    *w1 = MIN(ws + g->kw, g->w);
}

/* The AVERAGE divisor of a window clipped to [h0, h1) x [w0, w1). */
static int
pool_divisor(const TpPoolGeometry *g, int h0, int h1, int w0, int w1)
{
    if (g->count_include_pad)
        return g->kh * g->kw;
    return MAX(h1 - h0, 0) * MAX(w1 - w0, 0);
}

gboolean
cpu_pool2d_forward(gpointer self, const TpPoolGeometry *g, const float *x, float *y, GError **error)
{
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = (gsize)g->out_h * g->out_w;

    for (gsize nc = 0; nc < (gsize)g->n * g->c; nc++) {
        const float *src = x + nc * plane;
        float *dst = y + nc * out_plane;

        for (int oh = 0; oh < g->out_h; oh++) {
            for (int ow = 0; ow < g->out_w; ow++) {
                int h0, h1, w0, w1;
                pool_window(g, oh, ow, &h0, &h1, &w0, &w1);

                if (g->mode == TP_POOL_MAX) {
                    float m = -INFINITY;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++)
                            m = MAX(m, src[(gsize)ih * g->w + iw]);
                    dst[oh * g->out_w + ow] = m;
                } else {
                    int divisor = pool_divisor(g, h0, h1, w0, w1);
                    double sum = 0.0;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++)
                            sum += src[(gsize)ih * g->w + iw];
                    dst[oh * g->out_w + ow] = divisor > 0 ? (float)(sum / divisor) : 0.0f;
                }
            }
        }
    }
    return TRUE;
}

gboolean
cpu_pool2d_backward(gpointer self, const TpPoolGeometry *g, const float *x, const float *y,
                    const float *dy, float *dx, GError **error)
{
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = (gsize)g->out_h * g->out_w;

    memset(dx, 0, (gsize)g->n * g->c * plane * sizeof(float));
    for (gsize nc = 0; nc < (gsize)g->n * g->c; nc++) {
        const float *xs = x + nc * plane;
        float *dxs = dx + nc * plane;

        for (int oh = 0; oh < g->out_h; oh++) {
            for (int ow = 0; ow < g->out_w; ow++) {
                gsize o = nc * out_plane + (gsize)oh * g->out_w + ow;
                int h0, h1, w0, w1;
                pool_window(g, oh, ow, &h0, &h1, &w0, &w1);

                if (g->mode == TP_POOL_MAX) {
                    /* The first cell, in row-major order, that holds the max. */
                    gboolean found = FALSE;
                    for (int ih = h0; ih < h1 && !found; ih++) {
                        for (int iw = w0; iw < w1; iw++) {
                            gsize i = (gsize)ih * g->w + iw;
                            if (xs[i] == y[o]) {
                                dxs[i] += dy[o];
                                found = TRUE;
                                break;
                            }
                        }
                    }
                } else {
                    int divisor = pool_divisor(g, h0, h1, w0, w1);
                    float share;
                    if (divisor == 0)
                        continue;
                    share = dy[o] / (float)divisor;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++)
                            dxs[(gsize)ih * g->w + iw] += share;
                }
            }
        }
    }
    return TRUE;
}

/* ------------------------------------------------------------ softmax */

static float
row_max(const float *x, int cols)
{
    float m = -INFINITY;

    for (int j = 0; j < cols; j++)
        m = MAX(m, x[j]);
    return m;
}

gboolean
cpu_softmax_forward(gpointer self, int rows, int cols, const float *x, float *y, GError **error)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (gsize)r * cols;
        float *yr = y + (gsize)r * cols;
        float m = row_max(xr, cols);
        double sum = 0.0;
        float inv;

        for (int j = 0; j < cols; j++) {
            yr[j] = expf(xr[j] - m);
            sum += yr[j];
        }
        inv = (float)(1.0 / sum);
        for (int j = 0; j < cols; j++)
            yr[j] *= inv;
    }
    return TRUE;
}

gboolean
cpu_softmax_backward(gpointer self, int rows, int cols, const float *y, const float *dy, float *dx,
                     GError **error)
{
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (gsize)r * cols;
        const float *dyr = dy + (gsize)r * cols;
        float *dxr = dx + (gsize)r * cols;
        double dot = 0.0;
        float d;

        for (int j = 0; j < cols; j++)
            dot += (double)yr[j] * dyr[j];
        d = (float)dot;
        for (int j = 0; j < cols; j++)
            dxr[j] = yr[j] * (dyr[j] - d);
    }
    return TRUE;
}

gboolean
cpu_softmax_cross_entropy(gpointer self, int rows, int cols, const float *logits,
                          const gint32 *labels, float smoothing, float *dlogits, double *out_loss,
                          GError **error)
{
    const double off = (double)smoothing / cols;
    const double on = 1.0 - smoothing + off;
    double total = 0.0;

    for (int r = 0; r < rows; r++) {
        if (labels[r] < 0 || labels[r] >= cols) {
            g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                        "softmax_cross_entropy: label %d of row %d is outside [0, %d)",
                        (int)labels[r], r, cols);
            return FALSE;
        }
    }
    for (int r = 0; r < rows; r++) {
        const float *xr = logits + (gsize)r * cols;
        const int label = labels[r];
        double m = row_max(xr, cols);
        double sum = 0.0, sum_x = 0.0, lse;

        for (int j = 0; j < cols; j++) {
            sum += exp(xr[j] - m);
            sum_x += xr[j];
        }
        lse = m + log(sum);
        /* sum_j target_j * (lse - x_j), the target summing to 1. */
        total += lse - (1.0 - smoothing) * xr[label] - off * sum_x;

        if (dlogits != NULL) {
            float *dr = dlogits + (gsize)r * cols;
            for (int j = 0; j < cols; j++) {
                double target = j == label ? on : off;
                dr[j] = (float)((exp(xr[j] - lse) - target) / rows);
            }
        }
    }
    *out_loss = rows > 0 ? total / rows : 0.0;
    return TRUE;
}

/* ------------------------------------------------------------ optimizer */

gboolean
cpu_sgd_update(gpointer self, gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper,
               GError **error)
{
    const float lr = hyper->lr, momentum = hyper->momentum, decay = hyper->weight_decay;

    for (gsize i = 0; i < n; i++) {
        float grad = g[i] + decay * w[i];
        v[i] = momentum * v[i] + grad;
        w[i] -= lr * (hyper->nesterov ? grad + momentum * v[i] : v[i]);
    }
    return TRUE;
}

/* ------------------------------------------------------------------ relevance */

gboolean
cpu_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    for (gsize i = 0; i < n; i++)
        y[i] = a[i] * b[i];
    return TRUE;
}

/* beta = 0 writes alpha * x without reading y (which may hold NaN). */
gboolean
cpu_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y, GError **error)
{
    if (beta == 0.0f) {
        for (gsize i = 0; i < n; i++)
            y[i] = alpha * x[i];
        return TRUE;
    }
    for (gsize i = 0; i < n; i++)
        y[i] = alpha * x[i] + beta * y[i];
    return TRUE;
}

gboolean
cpu_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y, GError **error)
{
    for (gsize i = 0; i < n; i++)
        y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    return TRUE;
}

/* The divisor is formed in float, as every backend forms it; a NaN z stays NaN. */
gboolean
cpu_stabilized_divide(gpointer self, gsize n, const float *r, const float *z, float epsilon,
                      float *y, GError **error)
{
    for (gsize i = 0; i < n; i++) {
        float d = z[i] > 0.0f    ? z[i] + epsilon
                  : z[i] < 0.0f  ? z[i] - epsilon
                  : z[i] == 0.0f ? TP_STABILIZER_ZERO
                                 : z[i];
        y[i] = r[i] / d;
    }
    return TRUE;
}
