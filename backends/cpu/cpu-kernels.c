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
 * with K = c / groups * kh * kw and P = out_h * out_w. 3x3 stride-1
 * convolutions with enough tiles and channels go to cpu-winograd.c instead,
 * which does a quarter of the multiplications, and depthwise convolutions
 * (groups = channels) to the direct kernels of cpu-depthwise.c. An
 * eval-mode forward with few output columns per chunk (batch 1 on small
 * maps) multiplies the weights packed once (cpu-packed.h) instead of
 * calling sgemm. The gathered
 * [out_c, nb*P] layout differs from NCHW only when nb > 1; a chunk of one
 * sample reads and writes y / dy in place.
 *
 * Threads: OpenBLAS runs single-threaded; the backend's pool
 * (cpu-parallel.h) splits every kernel over its threads instead: GEMMs along
 * the longer side of their output (each part a single-threaded sgemm) or by
 * sample (WIDE_PLANE), im2col and col2im by input channel, batch norm by
 * channel, pooling by plane, and elementwise kernels by index range. Parts
 * never write the same memory, so results do not depend on the thread
 * count.
 *
 * Reductions that decide accuracy (batch-norm statistics, the loss, bias
 * gradients, column sums) are accumulated in double.
 */
#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-depthwise.h"
#include "cpu-kernels.h"
#include "cpu-packed.h"
#include "cpu-parallel.h"
#include "cpu-winograd.h"

/* Upper bound on the conv scratch (col + gathered rows) for one chunk; a
 * single sample that needs more gets it anyway. */
#define CONV_SCRATCH_BYTES ((gsize)8 << 20)

#define ALIGNMENT 64

/* Smallest share of a GEMM's output rows or columns worth a thread of its
 * own, whatever its work (a thinner sgemm runs slower). */
#define GEMM_GRAIN 16

/* The grain of a GEMM split along rows or columns that cost `work`
 * multiply-adds each (cpu_grain()). */
static gsize
gemm_grain(gsize work)
{
    return MAX(cpu_grain(work), GEMM_GRAIN);
}

/* A convolution with fewer than SMALL_GEMM_COLUMNS output columns per chunk
 * calls sgemm on blocks of at most SMALL_GEMM_MNK multiply-adds, the size up
 * to which OpenBLAS takes its unpacked small-matrix path (measured: VGG-11
 * at batch 1 runs 1.5x faster single-threaded; blocks of a fifth that size,
 * or twice it, lose the gain). */
#define SMALL_GEMM_COLUMNS 64
#define SMALL_GEMM_MNK 1000000

/* A chunk of several samples whose output planes have at least WIDE_PLANE
 * pixels runs one sgemm per sample, writing y in place instead of gathered
 * rows that are then scattered (measured: VGG-11's first layer at batch 64,
 * 1.3x faster; 1.7x at 45% width). */
#define WIDE_PLANE 256

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

/* One chunk of a convolution kernel, samples [n0, n0 + nb), shared by the
 * parts of its parallel steps; each step writes rows no other part writes. */
typedef struct {
    const TpConvGeometry *g;
    int cg, ocg, k; /* channels per group in and out, K = cg * kh * kw */
    int n0, nb;
    gsize ld; /* nb * out_h * out_w: the columns of col and rows */
    const float *x, *weights, *bias, *dy;
    float *y, *dx, *dweights, *dbias;
    float *col;  /* [groups * k, ld] */
    /* [out_c, ld]: the chunk's y (forward) or dy (backward) as rows; when
     * nb = 1, the sample's own block of y or dy, read or written in place */
    float *rows;
    float beta;    /* backward_filter: 0 on the first chunk, then 1 */
    gboolean relu; /* forward: y = max(y, 0) after the bias */
} ConvJob;

/* Unfolds input channels [begin, end) of the chunk into col (see the top of
 * the file); cells that fall in the padding are 0. */
static void
im2col(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const TpConvGeometry *g = job->g;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = conv_out_plane(g);

    for (int ci = (int)begin; ci < (int)end; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            int row_off = ki * g->dil_h - g->pad_t;
            int oh_lo, oh_hi;
            valid_range(row_off, g->stride_h, g->h, g->out_h, &oh_lo, &oh_hi);

            for (int kj = 0; kj < g->kw; kj++) {
                int col_off = kj * g->dil_w - g->pad_l;
                int ow_lo, ow_hi;
                float *row = job->col + (((gsize)ci * g->kh + ki) * g->kw + kj) * job->ld;
                valid_range(col_off, g->stride_w, g->w, g->out_w, &ow_lo, &ow_hi);

                for (int s = 0; s < job->nb; s++) {
                    const float *src = job->x + ((gsize)(job->n0 + s) * g->c + ci) * plane;
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

/* The adjoint of im2col for input channels [begin, end): zeroes them in the
 * chunk's samples of dx, then adds every cell of col back to the input
 * position it was read from. Padding cells are dropped. */
static void
col2im(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const TpConvGeometry *g = job->g;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = conv_out_plane(g);

    for (int s = 0; s < job->nb; s++)
        memset(job->dx + ((gsize)(job->n0 + s) * g->c + begin) * plane, 0,
               (end - begin) * plane * sizeof(float));
    for (int ci = (int)begin; ci < (int)end; ci++) {
        for (int ki = 0; ki < g->kh; ki++) {
            int row_off = ki * g->dil_h - g->pad_t;
            int oh_lo, oh_hi;
            valid_range(row_off, g->stride_h, g->h, g->out_h, &oh_lo, &oh_hi);

            for (int kj = 0; kj < g->kw; kj++) {
                int col_off = kj * g->dil_w - g->pad_l;
                int ow_lo, ow_hi;
                const float *row = job->col + (((gsize)ci * g->kh + ki) * g->kw + kj) * job->ld;
                valid_range(col_off, g->stride_w, g->w, g->out_w, &ow_lo, &ow_hi);

                for (int s = 0; s < job->nb; s++) {
                    float *dst = job->dx + ((gsize)(job->n0 + s) * g->c + ci) * plane;
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

/* Copies output channels [begin, end) of the chunk's samples of dy into
 * rows[out_c, ld]. */
static void
gather_rows(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const gsize out_plane = conv_out_plane(job->g);

    for (gsize o = begin; o < end; o++)
        for (int s = 0; s < job->nb; s++)
            memcpy(job->rows + o * job->ld + s * out_plane,
                   job->dy + ((gsize)(job->n0 + s) * job->g->out_c + o) * out_plane,
                   out_plane * sizeof(float));
}

/* dst[p] = src[p] + b for n floats, then max(, 0) with relu; dst may be src. */
static void
finish_plane(const float *src, float b, gboolean relu, gsize n, float *dst)
{
    if (relu) {
        for (gsize p = 0; p < n; p++) {
            float v = src[p] + b;
            dst[p] = v > 0.0f ? v : 0.0f;
        }
    } else if (src != dst || b != 0.0f) {
        for (gsize p = 0; p < n; p++)
            dst[p] = src[p] + b;
    }
}

/* y = rows for output channels [begin, end), adding the bias (if any) and
 * applying the relu (if asked); in place when rows is y (a chunk of one
 * sample). */
static void
scatter_rows(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const gsize out_plane = conv_out_plane(job->g);

    for (gsize o = begin; o < end; o++)
        for (int s = 0; s < job->nb; s++)
            finish_plane(job->rows + o * job->ld + s * out_plane,
                         job->bias != NULL ? job->bias[o] : 0.0f, job->relu, out_plane,
                         job->y + ((gsize)(job->n0 + s) * job->g->out_c + o) * out_plane);
}

/* The rows [begin, end) of a range that stacks `per` rows per group, cut
 * where groups change: calls step(job, group, first row, rows) per piece. */
static void
for_group_rows(const ConvJob *job, gsize begin, gsize end, gsize per,
               void (*step)(const ConvJob *job, int gi, int r0, int nr))
{
    for (gsize i = begin; i < end;) {
        gsize r0 = i % per, nr = MIN(per - r0, end - i);
        step(job, (int)(i / per), (int)r0, (int)nr);
        i += nr;
    }
}

/* rows[o] = W[o] · col for output rows r0 .. r0 + nr of group gi. With few
 * columns (a batch of one), in blocks of rows small enough for OpenBLAS's
 * small-matrix kernels, which read the weights in place instead of packing
 * them first. */
static void
forward_step(const ConvJob *job, int gi, int r0, int nr)
{
    gsize o = (gsize)gi * job->ocg + r0;
    int block = job->ld < SMALL_GEMM_COLUMNS
                    ? (int)CLAMP(SMALL_GEMM_MNK / (job->ld * job->k), 1, (gsize)nr)
                    : nr;

    for (int b = 0; b < nr; b += block)
        sgemm(FALSE, FALSE, MIN(block, nr - b), (int)job->ld, job->k, 1.0f,
              job->weights + (o + b) * job->k, job->k, job->col + (gsize)gi * job->k * job->ld,
              (int)job->ld, 0.0f, job->rows + (o + b) * job->ld, (int)job->ld);
}

static void
forward_gemm(gpointer data, gsize begin, gsize end)
{
    for_group_rows(data, begin, end, ((ConvJob *)data)->ocg, forward_step);
}

/* Columns [begin, end) of every group's rows = W_g · col_g. */
static void
forward_gemm_columns(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;

    for (int gi = 0; gi < job->g->groups; gi++) {
        gsize o = (gsize)gi * job->ocg;
        sgemm(FALSE, FALSE, job->ocg, (int)(end - begin), job->k, 1.0f,
              job->weights + o * job->k, job->k,
              job->col + (gsize)gi * job->k * job->ld + begin, (int)job->ld, 0.0f,
              job->rows + o * job->ld + begin, (int)job->ld);
    }
}

/* Samples [begin, end) of the chunk: each sample's y = W_g · its columns of
 * col_g for every group, written in place, plus the bias (and the relu). */
static void
forward_gemm_samples(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const gsize out_plane = conv_out_plane(job->g);

    for (gsize s = begin; s < end; s++) {
        float *y = job->y + ((gsize)job->n0 + s) * job->g->out_c * out_plane;
        for (int gi = 0; gi < job->g->groups; gi++) {
            gsize o = (gsize)gi * job->ocg;
            sgemm(FALSE, FALSE, job->ocg, (int)out_plane, job->k, 1.0f, job->weights + o * job->k,
                  job->k, job->col + (gsize)gi * job->k * job->ld + s * out_plane, (int)job->ld,
                  0.0f, y + o * out_plane, (int)out_plane);
        }
        for (int o = 0; o < job->g->out_c; o++)
            finish_plane(y + o * out_plane, job->bias != NULL ? job->bias[o] : 0.0f, job->relu,
                         out_plane, y + o * out_plane);
    }
}

/* col rows r0 .. r0 + nr of group gi = (W_g^T · dy_g) rows. */
static void
backward_data_step(const ConvJob *job, int gi, int r0, int nr)
{
    sgemm(TRUE, FALSE, nr, (int)job->ld, job->ocg, 1.0f,
          job->weights + (gsize)gi * job->ocg * job->k + r0, job->k,
          job->rows + (gsize)gi * job->ocg * job->ld, (int)job->ld, 0.0f,
          job->col + ((gsize)gi * job->k + r0) * job->ld, (int)job->ld);
}

static void
backward_data_gemm(gpointer data, gsize begin, gsize end)
{
    for_group_rows(data, begin, end, ((ConvJob *)data)->k, backward_data_step);
}

/* dW rows r0 .. r0 + nr of group gi (+)= dy rows · col_g^T. */
static void
backward_filter_step(const ConvJob *job, int gi, int r0, int nr)
{
    gsize o = (gsize)gi * job->ocg + r0;

    sgemm(FALSE, TRUE, nr, job->k, (int)job->ld, 1.0f, job->rows + o * job->ld, (int)job->ld,
          job->col + (gsize)gi * job->k * job->ld, (int)job->ld, job->beta,
          job->dweights + o * job->k, job->k);
}

/* dW rows r0 .. r0 + nr of group gi (+)= the sum over the chunk's samples
 * of dy_s rows · (col_g's columns of sample s)^T, reading dy in place. */
static void
backward_filter_samples_step(const ConvJob *job, int gi, int r0, int nr)
{
    const gsize out_plane = conv_out_plane(job->g);
    gsize o = (gsize)gi * job->ocg + r0;

    for (int s = 0; s < job->nb; s++)
        sgemm(FALSE, TRUE, nr, job->k, (int)out_plane, 1.0f,
              job->dy + ((gsize)(job->n0 + s) * job->g->out_c + o) * out_plane, (int)out_plane,
              job->col + (gsize)gi * job->k * job->ld + s * out_plane, (int)job->ld,
              s == 0 ? job->beta : 1.0f, job->dweights + o * job->k, job->k);
}

static void
backward_filter_samples(gpointer data, gsize begin, gsize end)
{
    for_group_rows(data, begin, end, ((ConvJob *)data)->ocg, backward_filter_samples_step);
}

static void
backward_filter_gemm(gpointer data, gsize begin, gsize end)
{
    for_group_rows(data, begin, end, ((ConvJob *)data)->ocg, backward_filter_step);
}

/* Columns [begin, end) of every group's dW_g (+)= dy_g · (rows of col_g)^T. */
static void
backward_filter_gemm_columns(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;

    for (int gi = 0; gi < job->g->groups; gi++) {
        gsize o = (gsize)gi * job->ocg;
        sgemm(FALSE, TRUE, job->ocg, (int)(end - begin), (int)job->ld, 1.0f,
              job->rows + o * job->ld, (int)job->ld,
              job->col + ((gsize)gi * job->k + begin) * job->ld, (int)job->ld, job->beta,
              job->dweights + o * job->k + begin, job->k);
    }
}

/* dbias[o] = the sum of dy over samples and pixels, for o in [begin, end). */
static void
bias_gradient(gpointer data, gsize begin, gsize end)
{
    const ConvJob *job = data;
    const TpConvGeometry *g = job->g;
    const gsize out_plane = conv_out_plane(g);

    for (gsize o = begin; o < end; o++) {
        double sum = 0.0;
        for (int s = 0; s < g->n; s++) {
            const float *src = job->dy + ((gsize)s * g->out_c + o) * out_plane;
            for (gsize p = 0; p < out_plane; p++)
                sum += src[p];
        }
        job->dbias[o] = (float)sum;
    }
}

/* A job for the chunk [n0, n0 + nb) with the backend's scratch; rows is the
 * scratch when the chunk has several samples, else `single` (the sample's
 * own [out_c, out_h * out_w] block of y or dy). */
static ConvJob
conv_job(CpuBackend *cpu, const TpConvGeometry *g, int n0, int nb, float *single)
{
    ConvJob job = {
        .g = g,
        .cg = g->c / g->groups,
        .ocg = g->out_c / g->groups,
        .n0 = n0,
        .nb = nb,
        .ld = (gsize)nb * conv_out_plane(g),
        .col = cpu->col.data,
        .rows = nb > 1 ? cpu->rows.data : single,
    };
    job.k = job.cg * g->kh * g->kw;
    return job;
}

/* The forward by im2col and a GEMM per chunk: with the packed weights when
 * given and the chunk has few columns (or weights is NULL), else sgemm on
 * weights; with relu, y = max(y, 0) as well. */
static gboolean
conv_forward(CpuBackend *cpu, const TpConvGeometry *g, const float *x, const float *weights,
             const float *packed, const float *bias, gboolean relu, float *y, GError **error)
{
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (g->n == 0 || out_plane == 0)
        return TRUE;
    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        ConvJob job = conv_job(cpu, g, n0, cur, y + (gsize)n0 * g->out_c * out_plane);

        job.x = x;
        job.weights = weights;
        job.bias = bias;
        job.relu = relu;
        job.y = y;
        cpu_pool_run(cpu->pool, (gsize)g->c, cpu_grain((gsize)cur * g->kh * g->kw * out_plane),
                     im2col, &job);
        if (packed != NULL && (weights == NULL || job.ld <= CPU_PACKED_MAX_COLUMNS)) {
            cpu_packed_gemm(cpu->pool, g->out_c, (int)job.ld, job.k, packed, job.col, job.ld,
                            job.rows, job.ld);
        } else if (cur > 1 && out_plane >= WIDE_PLANE) {
            /* in place: nothing gathered to scatter */
            cpu_pool_run(cpu->pool, (gsize)cur, cpu_grain((gsize)g->out_c * out_plane * job.k),
                         forward_gemm_samples, &job);
            continue;
        } else if (job.ld > (gsize)job.ocg) {
            /* Split the longer side of each group's output, so that every
             * thread's sgemm keeps a wide shape. */
            cpu_pool_run(cpu->pool, job.ld, gemm_grain((gsize)g->out_c * job.k),
                         forward_gemm_columns, &job);
        } else {
            cpu_pool_run(cpu->pool, (gsize)g->out_c, gemm_grain(job.ld * job.k), forward_gemm,
                         &job);
        }
        cpu_pool_run(cpu->pool, (gsize)g->out_c, cpu_grain(job.ld), scatter_rows, &job);
    }
    return TRUE;
}

/* The prepared form (one group only, unless the `prepare` key is false) is
 * the weights packed for few columns (cpu-packed.h), followed by Winograd's
 * transformed filters where Winograd fits g, else by the weights as they
 * are, for the chunks with many columns. */
gsize
cpu_conv2d_prepared_size(gpointer self, const TpConvGeometry *g)
{
    const CpuBackend *cpu = self;
    gsize packed = cpu_packed_size(g->out_c, g->c * g->kh * g->kw);

    if (!cpu->prepare || g->groups != 1)
        return 0;
    if (cpu_winograd_fits(g))
        return packed + cpu_winograd_prepared_size(g);
    return packed + (gsize)g->out_c * g->c * g->kh * g->kw;
}

gboolean
cpu_conv2d_prepare(gpointer self, const TpConvGeometry *g, const float *weights, float *prepared,
                   GError **error)
{
    int depth = g->c * g->kh * g->kw;
    float *rest = prepared + cpu_packed_size(g->out_c, depth);

    cpu_packed_pack(g->out_c, depth, weights, prepared);
    if (cpu_winograd_fits(g))
        cpu_winograd_prepare(self, g, weights, rest);
    else
        memcpy(rest, weights, (gsize)g->out_c * depth * sizeof(float));
    return TRUE;
}

/* conv2d_forward from weights, or from prepared (then weights is NULL),
 * with relu as conv2d_forward_relu. */
static gboolean
convolve(CpuBackend *cpu, const TpConvGeometry *g, const float *x, const float *weights,
         const float *prepared, const float *bias, gboolean relu, float *y, GError **error)
{
    const float *rest;

    if (cpu_depthwise_fits(g)) /* no prepared form: groups > 1 */
        return cpu_depthwise_forward(cpu, g, x, weights, bias, relu, y, error);
    if (prepared == NULL)
        return cpu_winograd_suits(g)
                   ? cpu_winograd_forward(cpu, g, x, weights, NULL, bias, relu, y, error)
                   : conv_forward(cpu, g, x, weights, NULL, bias, relu, y, error);
    rest = prepared + cpu_packed_size(g->out_c, g->c * g->kh * g->kw);
    if (!cpu_winograd_fits(g))
        return conv_forward(cpu, g, x, rest, prepared, bias, relu, y, error);
    if (cpu_winograd_suits(g))
        return cpu_winograd_forward(cpu, g, x, NULL, rest, bias, relu, y, error);
    /* few tiles, hence few columns: the packed form serves alone */
    return conv_forward(cpu, g, x, NULL, prepared, bias, relu, y, error);
}

gboolean
cpu_conv2d_forward(gpointer self, const TpConvGeometry *g, const float *x, const float *weights,
                   const float *bias, float *y, GError **error)
{
    return convolve(self, g, x, weights, NULL, bias, FALSE, y, error);
}

gboolean
cpu_conv2d_forward_prepared(gpointer self, const TpConvGeometry *g, const float *x,
                            const float *prepared, const float *bias, float *y, GError **error)
{
    return convolve(self, g, x, NULL, prepared, bias, FALSE, y, error);
}

gboolean
cpu_conv2d_forward_relu(gpointer self, const TpConvGeometry *g, const float *x,
                        const float *weights, const float *prepared, const float *bias, float *y,
                        GError **error)
{
    return convolve(self, g, x, weights, prepared, bias, TRUE, y, error);
}

gboolean
cpu_conv2d_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                         const float *weights, float *dx, GError **error)
{
    CpuBackend *cpu = self;
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (g->n == 0)
        return TRUE;
    if (out_plane == 0) {
        memset(dx, 0, (gsize)g->n * g->c * g->h * g->w * sizeof(float));
        return TRUE;
    }
    if (cpu_depthwise_fits(g))
        return cpu_depthwise_backward_data(cpu, g, dy, weights, dx, error);
    if (cpu_winograd_suits(g))
        return cpu_winograd_backward_data(cpu, g, dy, weights, dx, error);
    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        ConvJob job = conv_job(cpu, g, n0, cur, (float *)dy + (gsize)n0 * g->out_c * out_plane);

        job.dy = dy;
        job.weights = weights;
        job.dx = dx;
        if (cur > 1)
            cpu_pool_run(cpu->pool, (gsize)g->out_c, cpu_grain(job.ld), gather_rows, &job);
        cpu_pool_run(cpu->pool, (gsize)g->groups * job.k, gemm_grain(job.ld * job.ocg),
                     backward_data_gemm, &job);
        cpu_pool_run(cpu->pool, (gsize)g->c, cpu_grain((gsize)cur * g->kh * g->kw * out_plane),
                     col2im, &job);
    }
    return TRUE;
}

gboolean
cpu_conv2d_backward_filter(gpointer self, const TpConvGeometry *g, const float *x, const float *dy,
                           float *dweights, float *dbias, GError **error)
{
    CpuBackend *cpu = self;
    const gsize out_plane = conv_out_plane(g);
    int nb;

    if (dbias != NULL) {
        ConvJob job = {.g = g, .dy = dy, .dbias = dbias};
        cpu_pool_run(cpu->pool, (gsize)g->out_c, cpu_grain((gsize)g->n * out_plane), bias_gradient,
                     &job);
    }
    if (g->n == 0 || out_plane == 0) {
        memset(dweights, 0, (gsize)g->out_c * (g->c / g->groups) * g->kh * g->kw * sizeof(float));
        return TRUE;
    }
    if (cpu_depthwise_fits(g))
        return cpu_depthwise_backward_filter(cpu, g, x, dy, dweights, error);
    if (cpu_winograd_suits(g))
        return cpu_winograd_backward_filter(cpu, g, x, dy, dweights, error);
    nb = conv_chunk(g);
    if (!conv_reserve(cpu, g, nb, error))
        return FALSE;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        int cur = MIN(nb, g->n - n0);
        ConvJob job = conv_job(cpu, g, n0, cur, (float *)dy + (gsize)n0 * g->out_c * out_plane);

        job.x = x;
        job.dy = dy;
        job.dweights = dweights;
        job.beta = n0 == 0 ? 0.0f : 1.0f;
        if (cur > 1 && out_plane >= WIDE_PLANE) {
            /* dy read in place, sample by sample: nothing gathered */
            cpu_pool_run(cpu->pool, (gsize)g->c, cpu_grain((gsize)cur * g->kh * g->kw * out_plane),
                         im2col, &job);
            cpu_pool_run(cpu->pool, (gsize)g->out_c, gemm_grain((gsize)cur * out_plane * job.k),
                         backward_filter_samples, &job);
            continue;
        }
        if (cur > 1)
            cpu_pool_run(cpu->pool, (gsize)g->out_c, cpu_grain(job.ld), gather_rows, &job);
        cpu_pool_run(cpu->pool, (gsize)g->c, cpu_grain((gsize)cur * g->kh * g->kw * out_plane),
                     im2col, &job);
        if (job.k > job.ocg)
            cpu_pool_run(cpu->pool, (gsize)job.k, gemm_grain((gsize)g->out_c * job.ld),
                         backward_filter_gemm_columns, &job);
        else
            cpu_pool_run(cpu->pool, (gsize)g->out_c, gemm_grain((gsize)job.k * job.ld),
                         backward_filter_gemm, &job);
    }
    return TRUE;
}

/* ------------------------------------------------------------ dense algebra */

/* A gemm() call, split by rows or columns of C. */
typedef struct {
    gboolean trans_a, trans_b;
    int m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
} GemmJob;

/* Columns [begin, end) of C when C has one row: op(B)^T times A's row
 * (contiguous whether A is transposed or not). */
static void
gemv_columns(gpointer data, gsize begin, gsize end)
{
    const GemmJob *j = data;

    if (j->trans_b) /* B: [n, k], rows [begin, end) times a */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(end - begin), j->k, j->alpha,
                    j->b + begin * j->k, j->k, j->a, 1, j->beta, j->c + begin, 1);
    else /* B: [k, n], columns [begin, end) */
        cblas_sgemv(CblasRowMajor, CblasTrans, j->k, (int)(end - begin), j->alpha, j->b + begin,
                    j->n, j->a, 1, j->beta, j->c + begin, 1);
}

/* Rows [begin, end) of C: those rows of op(A) times op(B). */
static void
gemm_rows(gpointer data, gsize begin, gsize end)
{
    const GemmJob *j = data;
    const float *a = j->a + (j->trans_a ? begin : begin * j->k);

    sgemm(j->trans_a, j->trans_b, (int)(end - begin), j->n, j->k, j->alpha, a,
          j->trans_a ? j->m : j->k, j->b, j->trans_b ? j->k : j->n, j->beta, j->c + begin * j->n,
          j->n);
}

/* Columns [begin, end) of C: op(A) times those columns of op(B). */
static void
gemm_columns(gpointer data, gsize begin, gsize end)
{
    const GemmJob *j = data;
    const float *b = j->b + (j->trans_b ? begin * j->k : begin);

    sgemm(j->trans_a, j->trans_b, j->m, (int)(end - begin), j->k, j->alpha, j->a,
          j->trans_a ? j->m : j->k, b, j->trans_b ? j->k : j->n, j->beta, j->c + begin, j->n);
}

gboolean
cpu_gemm(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha,
         const float *a, const float *b, float beta, float *c, GError **error)
{
    CpuBackend *cpu = self;

    if (m <= 0 || n <= 0)
        return TRUE;
    if (k <= 0) {
        /* No products: C = beta * C, which BLAS would refuse (lda < 1). */
        for (gsize i = 0; i < (gsize)m * n; i++)
            c[i] = beta == 0.0f ? 0.0f : beta * c[i];
        return TRUE;
    }
    GemmJob job = {trans_a, trans_b, m, n, k, alpha, beta, a, b, c};
    /* One row of C (a fully connected layer at batch 1) is a matrix-vector
     * product, bound by reading B once: sgemv streams it, where sgemm packs
     * it first (3x slower on a 4096 x 9216 layer). */
    if (m == 1)
        cpu_pool_run(cpu->pool, (gsize)n, gemm_grain((gsize)k), gemv_columns, &job);
    /* Split the longer side of C; OpenBLAS clears C instead of scaling it
     * when beta is 0, so C is not read then. */
    else if (m >= n)
        cpu_pool_run(cpu->pool, (gsize)m, gemm_grain((gsize)n * k), gemm_rows, &job);
    else
        cpu_pool_run(cpu->pool, (gsize)n, gemm_grain((gsize)m * k), gemm_columns, &job);
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

/* A batch-norm kernel's arguments, split by channel. */
typedef struct {
    const TpBatchNormGeometry *g;
    const float *x, *dy, *scale, *bias, *mean, *var, *invstd;
    float *y, *dx, *dscale, *dbias, *running_mean, *running_var, *save_mean, *save_invstd;
} BatchNormJob;

static void
batch_norm_train_channels(gpointer data, gsize begin, gsize end)
{
    const BatchNormJob *j = data;
    const TpBatchNormGeometry *g = j->g;
    const gsize count = (gsize)g->n * g->hw;

    for (int ch = (int)begin; ch < (int)end; ch++) {
        double sum = 0.0, sq = 0.0, mean, var, unbiased, invstd;
        float m, a;

        /* Two passes: the mean, then the squared deviations from it. */
        for (int s = 0; s < g->n; s++) {
            const float *src = j->x + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                sum += src[i];
        }
        mean = count > 0 ? sum / (double)count : 0.0;
        for (int s = 0; s < g->n; s++) {
            const float *src = j->x + bn_offset(g, s, ch);
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
        a = (float)(j->scale[ch] * invstd);
        for (int s = 0; s < g->n; s++) {
            const float *src = j->x + bn_offset(g, s, ch);
            float *dst = j->y + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                dst[i] = (src[i] - m) * a + j->bias[ch];
        }
        j->save_mean[ch] = (float)mean;
        j->save_invstd[ch] = (float)invstd;
        j->running_mean[ch] =
            (float)(g->momentum * (double)j->running_mean[ch] + (1.0 - g->momentum) * mean);
        j->running_var[ch] =
            (float)(g->momentum * (double)j->running_var[ch] + (1.0 - g->momentum) * unbiased);
    }
}

gboolean
cpu_batch_norm_forward_train(gpointer self, const TpBatchNormGeometry *g, const float *x,
                             const float *scale, const float *bias, float *running_mean,
                             float *running_var, float *y, float *save_mean, float *save_invstd,
                             GError **error)
{
    BatchNormJob job = {.g = g, .x = x, .scale = scale, .bias = bias, .y = y,
                        .running_mean = running_mean, .running_var = running_var,
                        .save_mean = save_mean, .save_invstd = save_invstd};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->c, cpu_grain((gsize)g->n * g->hw),
                 batch_norm_train_channels, &job);
    return TRUE;
}

static void
batch_norm_eval_channels(gpointer data, gsize begin, gsize end)
{
    const BatchNormJob *j = data;
    const TpBatchNormGeometry *g = j->g;

    for (int ch = (int)begin; ch < (int)end; ch++) {
        double invstd = 1.0 / sqrt((double)j->var[ch] + g->epsilon);
        float a = (float)(j->scale[ch] * invstd), m = j->mean[ch], b = j->bias[ch];

        for (int s = 0; s < g->n; s++) {
            const float *src = j->x + bn_offset(g, s, ch);
            float *dst = j->y + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++)
                dst[i] = (src[i] - m) * a + b;
        }
    }
}

gboolean
cpu_batch_norm_forward_eval(gpointer self, const TpBatchNormGeometry *g, const float *x,
                            const float *scale, const float *bias, const float *mean,
                            const float *var, float *y, GError **error)
{
    BatchNormJob job = {.g = g, .x = x, .scale = scale, .bias = bias, .mean = mean, .var = var,
                        .y = y};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->c, cpu_grain((gsize)g->n * g->hw),
                 batch_norm_eval_channels, &job);
    return TRUE;
}

/* With xhat = (x - mean) * invstd over the count values of a channel:
 *   dbias  = sum dy,  dscale = sum dy * xhat,
 *   dx     = scale * invstd * (dy - dbias / count - xhat * dscale / count). */
static void
batch_norm_backward_channels(gpointer data, gsize begin, gsize end)
{
    const BatchNormJob *j = data;
    const TpBatchNormGeometry *g = j->g;
    const gsize count = (gsize)g->n * g->hw;

    for (int ch = (int)begin; ch < (int)end; ch++) {
        const double mean = j->mean[ch], invstd = j->invstd[ch];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        double k, mean_dy, mean_dy_xhat;

        for (int s = 0; s < g->n; s++) {
            const float *xs = j->x + bn_offset(g, s, ch);
            const float *dys = j->dy + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++) {
                sum_dy += dys[i];
                sum_dy_xhat += dys[i] * ((xs[i] - mean) * invstd);
            }
        }
        j->dbias[ch] = (float)sum_dy;
        j->dscale[ch] = (float)sum_dy_xhat;
        if (count == 0)
            continue;

        k = j->scale[ch] * invstd;
        mean_dy = sum_dy / (double)count;
        mean_dy_xhat = sum_dy_xhat / (double)count;
        for (int s = 0; s < g->n; s++) {
            const float *xs = j->x + bn_offset(g, s, ch);
            const float *dys = j->dy + bn_offset(g, s, ch);
            float *dxs = j->dx + bn_offset(g, s, ch);
            for (int i = 0; i < g->hw; i++) {
                double xhat = (xs[i] - mean) * invstd;
                dxs[i] = (float)(k * (dys[i] - mean_dy - xhat * mean_dy_xhat));
            }
        }
    }
}

gboolean
cpu_batch_norm_backward(gpointer self, const TpBatchNormGeometry *g, const float *x,
                        const float *dy, const float *scale, const float *save_mean,
                        const float *save_invstd, float *dx, float *dscale, float *dbias,
                        GError **error)
{
    BatchNormJob job = {.g = g, .x = x, .dy = dy, .scale = scale, .mean = save_mean,
                        .invstd = save_invstd, .dx = dx, .dscale = dscale, .dbias = dbias};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->c, cpu_grain((gsize)g->n * g->hw),
                 batch_norm_backward_channels, &job);
    return TRUE;
}

/* ------------------------------------------------------------ elementwise */

/* An elementwise kernel's arguments, split by index range. Loops read each
 * input once into a local, so the compiler vectorizes them even where the
 * output may be an input. */
typedef struct {
    const float *a, *b;
    float *y, *v;
    float alpha, beta, lo, hi;
    guint64 seed;
    const TpSgdHyper *hyper;
} Map;

static gboolean
map(gpointer self, gsize n, CpuRangeFunc func, const Map *m)
{
    cpu_pool_run(((CpuBackend *)self)->pool, n, cpu_grain(1), func, (gpointer)m);
    return TRUE;
}

static void
relu_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++) {
        float x = m->a[i];
        m->y[i] = x > 0.0f ? x : 0.0f;
    }
}

gboolean
cpu_relu_forward(gpointer self, gsize n, const float *x, float *y, GError **error)
{
    return map(self, n, relu_range, &(Map){.a = x, .y = y});
}

static void
relu_backward_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++) {
        float y = m->a[i], dy = m->b[i];
        m->y[i] = y > 0.0f ? dy : 0.0f;
    }
}

gboolean
cpu_relu_backward(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                  GError **error)
{
    return map(self, n, relu_backward_range, &(Map){.a = y, .b = dy, .y = dx});
}

static void
add_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++) {
        float a = m->a[i], b = m->b[i];
        m->y[i] = a + b;
    }
}

gboolean
cpu_add(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    return map(self, n, add_range, &(Map){.a = a, .b = b, .y = y});
}

/* Inverted dropout of a (x or dy) into y; ratio = 1 keeps nothing, so the
 * division never sees 0. */
static void
dropout_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++)
        m->y[i] = tp_dropout_keep(m->seed, i, m->alpha) ? m->a[i] / (1.0f - m->alpha) : 0.0f;
}

gboolean
cpu_dropout_forward(gpointer self, gsize n, float ratio, guint64 seed, const float *x, float *y,
                    GError **error)
{
    return map(self, n, dropout_range, &(Map){.a = x, .y = y, .alpha = ratio, .seed = seed});
}

gboolean
cpu_dropout_backward(gpointer self, gsize n, float ratio, guint64 seed, const float *dy, float *dx,
                     GError **error)
{
    return map(self, n, dropout_range, &(Map){.a = dy, .y = dx, .alpha = ratio, .seed = seed});
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

/* 2x2 windows at stride 2 with no padding (VGG's and most CNNs' pooling):
 * every window lies inside the plane, so the max kernels take it directly
 * instead of working out each window (VGG-11's pools at batch 64: 4x faster
 * forward, 1.3x backward, which the memory traffic bounds). */
static gboolean
max_2x2(const TpPoolGeometry *g)
{
    return g->mode == TP_POOL_MAX && g->kh == 2 && g->kw == 2 && g->stride_h == 2 &&
           g->stride_w == 2 && g->pad_t == 0 && g->pad_l == 0 && 2 * g->out_h <= g->h &&
           2 * g->out_w <= g->w;
}

/* A pooling kernel's arguments, split by (sample, channel) plane. */
typedef struct {
    const TpPoolGeometry *g;
    const float *x, *y, *dy;
    float *out; /* y (forward) or dx (backward) */
} PoolJob;

static void
pool_forward_planes(gpointer data, gsize begin, gsize end)
{
    const PoolJob *job = data;
    const TpPoolGeometry *g = job->g;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = (gsize)g->out_h * g->out_w;
    const gboolean fast = max_2x2(g);

    for (gsize nc = begin; nc < end; nc++) {
        const float *src = job->x + nc * plane;
        float *dst = job->out + nc * out_plane;

        for (int oh = 0; oh < g->out_h && fast; oh++) {
            const float *r0 = src + (gsize)2 * oh * g->w, *r1 = r0 + g->w;
            float *out = dst + (gsize)oh * g->out_w;
            for (int ow = 0; ow < g->out_w; ow++) {
                float m = -INFINITY;
                m = MAX(m, r0[2 * ow]);
                m = MAX(m, r0[2 * ow + 1]);
                m = MAX(m, r1[2 * ow]);
                m = MAX(m, r1[2 * ow + 1]);
                out[ow] = m;
            }
        }
        for (int oh = 0; oh < g->out_h && !fast; oh++) {
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
}

/* The grain of pooling split by planes: each reads out_h * out_w windows. */
static gsize
pool_grain(const TpPoolGeometry *g)
{
    return cpu_grain((gsize)g->out_h * g->out_w * g->kh * g->kw);
}

gboolean
cpu_pool2d_forward(gpointer self, const TpPoolGeometry *g, const float *x, float *y, GError **error)
{
    PoolJob job = {.g = g, .x = x, .out = y};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->n * g->c, pool_grain(g), pool_forward_planes,
                 &job);
    return TRUE;
}

/* Max pooling backward over 2x2 windows at stride 2 (max_2x2()) for planes
 * [begin, end): each window's dy to its first cell, in row-major order,
 * that holds the max, zeros elsewhere. */
static void
pool_backward_max_2x2(const PoolJob *job, gsize begin, gsize end)
{
    const TpPoolGeometry *g = job->g;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = (gsize)g->out_h * g->out_w;

    for (gsize nc = begin; nc < end; nc++) {
        const float *xs = job->x + nc * plane;
        const float *ys = job->y + nc * out_plane, *dys = job->dy + nc * out_plane;
        float *dxs = job->out + nc * plane;

        /* the rows and columns past the last window get no gradient */
        if (2 * g->out_h < g->h || 2 * g->out_w < g->w)
            memset(dxs, 0, plane * sizeof(float));
        for (int oh = 0; oh < g->out_h; oh++) {
            const float *x0 = xs + (gsize)2 * oh * g->w, *x1 = x0 + g->w;
            float *d0 = dxs + (gsize)2 * oh * g->w, *d1 = d0 + g->w;
            for (int ow = 0; ow < g->out_w; ow++) {
                float m = ys[oh * g->out_w + ow], v = dys[oh * g->out_w + ow];
                gboolean a = x0[2 * ow] == m, b = !a && x0[2 * ow + 1] == m;
                gboolean c = !a && !b && x1[2 * ow] == m;
                gboolean d = !a && !b && !c && x1[2 * ow + 1] == m;
                d0[2 * ow] = a ? v : 0.0f;
                d0[2 * ow + 1] = b ? v : 0.0f;
                d1[2 * ow] = c ? v : 0.0f;
                d1[2 * ow + 1] = d ? v : 0.0f;
            }
        }
    }
}

static void
pool_backward_planes(gpointer data, gsize begin, gsize end)
{
    const PoolJob *job = data;
    const TpPoolGeometry *g = job->g;
    const gsize plane = (gsize)g->h * g->w;
    const gsize out_plane = (gsize)g->out_h * g->out_w;
    const float *y = job->y, *dy = job->dy;

    if (max_2x2(g)) {
        pool_backward_max_2x2(job, begin, end);
        return;
    }
    memset(job->out + begin * plane, 0, (end - begin) * plane * sizeof(float));
    for (gsize nc = begin; nc < end; nc++) {
        const float *xs = job->x + nc * plane;
        float *dxs = job->out + nc * plane;

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
}

gboolean
cpu_pool2d_backward(gpointer self, const TpPoolGeometry *g, const float *x, const float *y,
                    const float *dy, float *dx, GError **error)
{
    PoolJob job = {.g = g, .x = x, .y = y, .dy = dy, .out = dx};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->n * g->c, pool_grain(g),
                 pool_backward_planes, &job);
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

static void
sgd_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    const float lr = m->hyper->lr, momentum = m->hyper->momentum;
    const float decay = m->hyper->weight_decay;
    const gboolean nesterov = m->hyper->nesterov;

    for (gsize i = begin; i < end; i++) {
        float grad = m->a[i] + decay * m->y[i];
        float v = momentum * m->v[i] + grad;
        m->v[i] = v;
        m->y[i] -= lr * (nesterov ? grad + momentum * v : v);
    }
}

gboolean
cpu_sgd_update(gpointer self, gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper,
               GError **error)
{
    return map(self, n, sgd_range, &(Map){.a = g, .y = w, .v = v, .hyper = hyper});
}

/* ------------------------------------------------------------------ relevance */

static void
mul_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++) {
        float a = m->a[i], b = m->b[i];
        m->y[i] = a * b;
    }
}

gboolean
cpu_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    return map(self, n, mul_range, &(Map){.a = a, .b = b, .y = y});
}

/* beta = 0 writes alpha * x without reading y (which may hold NaN). */
static void
axpby_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    const float alpha = m->alpha, beta = m->beta;

    if (beta == 0.0f) {
        for (gsize i = begin; i < end; i++)
            m->y[i] = alpha * m->a[i];
        return;
    }
    for (gsize i = begin; i < end; i++) {
        float x = m->a[i], y = m->y[i];
        m->y[i] = alpha * x + beta * y;
    }
}

gboolean
cpu_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y, GError **error)
{
    return map(self, n, axpby_range, &(Map){.a = x, .y = y, .alpha = alpha, .beta = beta});
}

static void
clamp_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    for (gsize i = begin; i < end; i++) {
        float x = m->a[i];
        m->y[i] = x < m->lo ? m->lo : x > m->hi ? m->hi : x;
    }
}

gboolean
cpu_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y, GError **error)
{
    return map(self, n, clamp_range, &(Map){.a = x, .y = y, .lo = lo, .hi = hi});
}

/* The divisor is formed in float, as every backend forms it; a NaN z stays NaN. */
static void
stabilized_divide_range(gpointer data, gsize begin, gsize end)
{
    const Map *m = data;
    const float epsilon = m->alpha;

    for (gsize i = begin; i < end; i++) {
        float r = m->a[i], z = m->b[i];
        float d = z > 0.0f    ? z + epsilon
                  : z < 0.0f  ? z - epsilon
                  : z == 0.0f ? TP_STABILIZER_ZERO
                              : z;
        m->y[i] = r / d;
    }
}

gboolean
cpu_stabilized_divide(gpointer self, gsize n, const float *r, const float *z, float epsilon,
                      float *y, GError **error)
{
    return map(self, n, stabilized_divide_range, &(Map){.a = r, .b = z, .y = y, .alpha = epsilon});
}
