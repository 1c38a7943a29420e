/* cpu-depthwise.c — depthwise convolutions by direct kernels (contracts:
 * tp-backend.h; when they apply: cpu-depthwise.h).
 *
 * Output channel o reads input channel o / mult (mult = out_c / c). Each
 * input plane is copied, zero-padded, into a buffer split by phase: for
 * strides (sh, sw), phase (a, b) holds the padded rows a, a + sh, ... and
 * columns b, b + sw, ..., each phase `rows` x `row` floats. In that layout
 * the input that tap (ki, kj) multiplies for output (oh, ow) is
 *
 *     buffer[offset(ki, kj) + oh * row + ow]
 *     offset(ki, kj) = phase(ki dh mod sh, kj dw mod sw)
 *                      + (ki dh div sh) * row + kj dw div sw
 *
 * so with the outputs numbered q = oh * row + ow (the columns ow >= out_w
 * of each row are junk, computed and dropped), a depthwise convolution of
 * any stride, padding and dilation is a one-dimensional correlation with
 * kh * kw fixed offsets, contiguous in q:
 *
 *     forward          out[q]             = b + sum_t w[t] buffer[offset_t + q]
 *     backward_data    buffer[offset_t + q] += w[t] dy[q]   (then unpadded)
 *     backward_filter  dw[t]             = sum over samples and q of
 *                                           dy[q] buffer[offset_t + q]
 *
 * where dy is laid out the same way with the junk columns 0. Each loop runs
 * over q in vectors of LANES (several at once, for independent sums); the
 * buffers have room past their end for the last, partial vector, and hold
 * finite values there, so no lane needs a scalar tail.
 *
 * Threads: the forward and backward_data split the (sample, input channel)
 * planes, backward_filter the input channels (each owning its mult rows of
 * dweights, all samples). Each part allocates its own buffers, one padded
 * plane and one output plane; no two parts write the same memory, so
 * results do not depend on the thread count.
 */
#include "config.h"

#include <string.h>

#include "cpu-depthwise.h"
#include "cpu-vector.h"

/* Fused multiply-adds, as in cpu-packed.c: fewer roundings, not more. */
#pragma GCC optimize("fp-contract=fast")

/* Vectors of q handled together (independent sums). */
#define UNROLL 4
#define BLOCK (UNROLL * LANES)

typedef int LaneMask __attribute__((vector_size(LANES * sizeof(int))));

/* One depthwise convolution as the kernels see it. */
typedef struct {
    const TpConvGeometry *g;
    int mult;        /* output channels per input channel */
    int taps;        /* kh * kw */
    int rows, row;   /* of each phase */
    gsize phase;     /* rows * row */
    gsize span;      /* (out_h - 1) * row + out_w: the outputs q */
    gsize padded;    /* span rounded up to BLOCK */
    gsize buffer;    /* floats of a padded plane, room past the end included */
    int *offsets;    /* [taps] */
    const float *x, *weights, *bias, *dy;
    float *y, *dx, *dweights;
    gboolean relu;
} Depthwise;

gboolean
cpu_depthwise_fits(const TpConvGeometry *g)
{
    return g->groups > 1 && g->groups == g->c && g->out_c % g->c == 0;
}

/* The layout of g (see the top of the file); free offsets with g_free. */
static Depthwise
depthwise_new(const TpConvGeometry *g)
{
    Depthwise d = {
        .g = g,
        .mult = g->out_c / g->c,
        .taps = g->kh * g->kw,
        .rows = (g->h + g->pad_t + g->pad_b + g->stride_h - 1) / g->stride_h,
        .row = (g->w + g->pad_l + g->pad_r + g->stride_w - 1) / g->stride_w,
    };

    d.phase = (gsize)d.rows * d.row;
    d.span = (gsize)(g->out_h - 1) * d.row + g->out_w;
    d.padded = (d.span + BLOCK - 1) / BLOCK * BLOCK;
    /* every offset is below the phases' total, and a loop reads at most
     * `padded` floats past its offset */
    d.buffer = (gsize)g->stride_h * g->stride_w * d.phase + d.padded;
    d.offsets = g_new(int, d.taps);
    for (int ki = 0; ki < g->kh; ki++) {
        for (int kj = 0; kj < g->kw; kj++) {
            int r = ki * g->dil_h, c = kj * g->dil_w;
            gsize phase = (gsize)(r % g->stride_h) * g->stride_w + c % g->stride_w;
            d.offsets[ki * g->kw + kj] =
                (int)(phase * d.phase + (gsize)(r / g->stride_h) * d.row + c / g->stride_w);
        }
    }
    return d;
}

/* Where row i of the input goes in the phase buffer: for each column phase
 * b < sw, the first input column j0[b] that lands in it (>= w when none
 * does) and the position of that pixel. Columns j0[b], j0[b] + sw, ... land
 * at consecutive positions. */
static void
row_phases(const Depthwise *d, int i, int *j0, gsize *at)
{
    const TpConvGeometry *g = d->g;
    int r = i + g->pad_t;

    for (int b = 0; b < g->stride_w; b++) {
        int j = ((b - g->pad_l) % g->stride_w + g->stride_w) % g->stride_w;
        int c = j + g->pad_l;
        j0[b] = j;
        at[b] = ((gsize)(r % g->stride_h) * g->stride_w + b) * d->phase +
                (gsize)(r / g->stride_h) * d->row + c / g->stride_w;
    }
}

/* buffer = the plane src [h, w], padded and split by phase; the rest 0. */
static void
fill_buffer(const Depthwise *d, const float *src, float *buffer)
{
    const TpConvGeometry *g = d->g;
    int j0[g->stride_w];
    gsize at[g->stride_w];

    memset(buffer, 0, d->buffer * sizeof(float));
    for (int i = 0; i < g->h; i++) {
        const float *in = src + (gsize)i * g->w;
        row_phases(d, i, j0, at);
        for (int b = 0; b < g->stride_w; b++) {
            float *out = buffer + at[b];
            for (int j = j0[b]; j < g->w; j += g->stride_w)
                *out++ = in[j];
        }
    }
}

/* dst [h, w] = the unpadded pixels of the phase buffer. */
static void
drain_buffer(const Depthwise *d, const float *buffer, float *dst)
{
    const TpConvGeometry *g = d->g;
    int j0[g->stride_w];
    gsize at[g->stride_w];

    for (int i = 0; i < g->h; i++) {
        float *out = dst + (gsize)i * g->w;
        row_phases(d, i, j0, at);
        for (int b = 0; b < g->stride_w; b++) {
            const float *in = buffer + at[b];
            for (int j = j0[b]; j < g->w; j += g->stride_w)
                out[j] = *in++;
        }
    }
}

/* flat [padded] = the plane src [out_h, out_w] at q = oh * row + ow, with
 * the junk columns and the room past the span 0. */
static void
spread_plane(const Depthwise *d, const float *src, float *flat)
{
    const TpConvGeometry *g = d->g;

    memset(flat, 0, d->padded * sizeof(float));
    for (int oh = 0; oh < g->out_h; oh++)
        memcpy(flat + (gsize)oh * d->row, src + (gsize)oh * g->out_w,
               (gsize)g->out_w * sizeof(float));
}

/* Vectors are moved with memcpy: unaligned, and no function takes or returns
 * one (that would depend on the vector extensions enabled). */
#define LOAD(v, p) memcpy(&(v), (p), sizeof(Lanes))
#define STORE(p, v) memcpy((p), &(v), sizeof(Lanes))

/* out[q] = b + sum_t w[t] src[offsets[t] + q] for q < padded, then
 * max(, 0) with relu. Inlined with a constant `taps`, so that the loop over
 * them unrolls. */
static inline __attribute__((always_inline)) void
correlate(int taps, const int *offsets, const float *w, float b, gboolean relu, const float *src,
          gsize padded, float *out)
{
    for (gsize q = 0; q < padded; q += BLOCK) {
        Lanes acc[UNROLL];

#pragma GCC unroll 4
        for (int u = 0; u < UNROLL; u++)
            acc[u] = (Lanes){0} + b;
#pragma GCC unroll 25
        for (int t = 0; t < taps; t++) {
            const float *p = src + offsets[t] + q;
#pragma GCC unroll 4
            for (int u = 0; u < UNROLL; u++) {
                Lanes v;
                LOAD(v, p + u * LANES);
                acc[u] += w[t] * v;
            }
        }
#pragma GCC unroll 4
        for (int u = 0; u < UNROLL; u++) {
            if (relu)
                acc[u] = (Lanes)((LaneMask)acc[u] & (acc[u] > 0.0f));
            STORE(out + q + u * LANES, acc[u]);
        }
    }
}

/* Planes [begin, end) of the forward, numbered (sample, input channel). */
VECTOR_CLONES static void
forward_planes(gpointer data, gsize begin, gsize end)
{
    const Depthwise *d = data;
    const TpConvGeometry *g = d->g;
    const gsize out_plane = (gsize)g->out_h * g->out_w;
    g_autofree float *buffer = g_new(float, d->buffer);
    g_autofree float *out = g_new(float, d->padded);

    for (gsize item = begin; item < end; item++) {
        gsize s = item / g->c, ci = item % g->c;

        fill_buffer(d, d->x + item * g->h * g->w, buffer);
        for (int m = 0; m < d->mult; m++) {
            gsize o = ci * d->mult + m;
            const float *w = d->weights + o * d->taps;
            float b = d->bias != NULL ? d->bias[o] : 0.0f;
            float *y = d->y + (s * g->out_c + o) * out_plane;

            /* one case per common kernel size, so that its taps unroll */
            if (d->taps == 9)
                correlate(9, d->offsets, w, b, d->relu, buffer, d->padded, out);
            else if (d->taps == 25)
                correlate(25, d->offsets, w, b, d->relu, buffer, d->padded, out);
            else
                correlate(d->taps, d->offsets, w, b, d->relu, buffer, d->padded, out);
            for (int oh = 0; oh < g->out_h; oh++)
                memcpy(y + (gsize)oh * g->out_w, out + (gsize)oh * d->row,
                       (gsize)g->out_w * sizeof(float));
        }
    }
}

/* Planes [begin, end) of backward_data, numbered (sample, input channel):
 * every output channel of the plane's input scatters into the buffer. */
VECTOR_CLONES static void
backward_data_planes(gpointer data, gsize begin, gsize end)
{
    const Depthwise *d = data;
    const TpConvGeometry *g = d->g;
    const gsize out_plane = (gsize)g->out_h * g->out_w;
    g_autofree float *buffer = g_new(float, d->buffer);
    g_autofree float *flat = g_new(float, d->padded);

    for (gsize item = begin; item < end; item++) {
        gsize s = item / g->c, ci = item % g->c;

        memset(buffer, 0, d->buffer * sizeof(float));
        for (int m = 0; m < d->mult; m++) {
            gsize o = ci * d->mult + m;
            const float *w = d->weights + o * d->taps;

            spread_plane(d, d->dy + (s * g->out_c + o) * out_plane, flat);
            for (int t = 0; t < d->taps; t++) {
                float *p = buffer + d->offsets[t];
                for (gsize q = 0; q < d->padded; q += LANES) {
                    Lanes v, f;
                    LOAD(v, p + q);
                    LOAD(f, flat + q);
                    v += w[t] * f;
                    STORE(p + q, v);
                }
            }
        }
        drain_buffer(d, buffer, d->dx + item * g->h * g->w);
    }
}

/* sum over q < padded of a[q] b[q], in float vectors, summed in double. */
static inline double
dot(const float *a, const float *b, gsize padded)
{
    Lanes acc[UNROLL] = {{0}};
    double sum = 0.0;

    for (gsize q = 0; q < padded; q += BLOCK) {
#pragma GCC unroll 4
        for (int u = 0; u < UNROLL; u++) {
            Lanes va, vb;
            LOAD(va, a + q + u * LANES);
            LOAD(vb, b + q + u * LANES);
            acc[u] += va * vb;
        }
    }
    for (int u = 0; u < UNROLL; u++)
        for (int l = 0; l < LANES; l++)
            sum += acc[u][l];
    return sum;
}

/* Input channels [begin, end) of backward_filter: the dweights of their
 * output channels, summed over every sample. */
VECTOR_CLONES static void
backward_filter_channels(gpointer data, gsize begin, gsize end)
{
    const Depthwise *d = data;
    const TpConvGeometry *g = d->g;
    const gsize out_plane = (gsize)g->out_h * g->out_w;
    g_autofree float *buffer = g_new(float, d->buffer);
    g_autofree float *flat = g_new(float, d->padded);
    g_autofree double *sums = g_new(double, (gsize)d->mult * d->taps);

    for (gsize ci = begin; ci < end; ci++) {
        memset(sums, 0, (gsize)d->mult * d->taps * sizeof(double));
        for (int s = 0; s < g->n; s++) {
            fill_buffer(d, d->x + ((gsize)s * g->c + ci) * g->h * g->w, buffer);
            for (int m = 0; m < d->mult; m++) {
                gsize o = ci * d->mult + m;
                spread_plane(d, d->dy + ((gsize)s * g->out_c + o) * out_plane, flat);
                for (int t = 0; t < d->taps; t++)
                    sums[m * d->taps + t] += dot(flat, buffer + d->offsets[t], d->padded);
            }
        }
        for (int i = 0; i < d->mult * d->taps; i++)
            d->dweights[ci * d->mult * d->taps + i] = (float)sums[i];
    }
}

/* Runs func over `items` parts of d's work, `work` multiply-adds each, on
 * cpu's threads; frees d's offsets. */
static void
depthwise_run(CpuBackend *cpu, Depthwise *d, gsize items, gsize work, CpuRangeFunc func)
{
    cpu_pool_run(cpu->pool, items, cpu_grain(work), func, d);
    g_free(d->offsets);
}

gboolean
cpu_depthwise_forward(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                      const float *weights, const float *bias, gboolean relu, float *y,
                      G_GNUC_UNUSED GError **error)
{
    Depthwise d;

    if (g->n == 0 || g->out_h == 0 || g->out_w == 0)
        return TRUE;
    d = depthwise_new(g);
    d.x = x;
    d.weights = weights;
    d.bias = bias;
    d.relu = relu;
    d.y = y;
    depthwise_run(cpu, &d, (gsize)g->n * g->c, (gsize)d.mult * d.taps * d.padded, forward_planes);
    return TRUE;
}

/* The caller has handled empty outputs (dx = 0). */
gboolean
cpu_depthwise_backward_data(CpuBackend *cpu, const TpConvGeometry *g, const float *dy,
                            const float *weights, float *dx, G_GNUC_UNUSED GError **error)
{
    Depthwise d = depthwise_new(g);

    d.dy = dy;
    d.weights = weights;
    d.dx = dx;
    depthwise_run(cpu, &d, (gsize)g->n * g->c, (gsize)d.mult * d.taps * d.padded,
                  backward_data_planes);
    return TRUE;
}

/* The caller has handled empty outputs (dweights = 0). */
gboolean
cpu_depthwise_backward_filter(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                              const float *dy, float *dweights, G_GNUC_UNUSED GError **error)
{
    Depthwise d = depthwise_new(g);

    d.x = x;
    d.dy = dy;
    d.dweights = dweights;
    depthwise_run(cpu, &d, (gsize)g->c, (gsize)g->n * d.mult * d.taps * d.padded,
                  backward_filter_channels);
    return TRUE;
}
