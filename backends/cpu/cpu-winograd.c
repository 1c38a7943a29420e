/* cpu-winograd.c — 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3)
 * (contracts: tp-backend.h; when it applies: cpu-winograd.h).
 *
 * A 4x4 tile of one output channel is, for each 6x6 input window d and 3x3
 * filter g (Lavin and Gray 2016):
 *
 *     Y = A^T [ sum over input channels of (G g G^T) .* (B^T d B) ] A
 *
 * with the 36 products of the brackets independent: for every point xi of
 * the 6x6 domain, M[xi] = U[xi] · V[xi]^T is one sgemm,
 *
 *     U[xi] [out_c, in_c]   the filters, transformed once per call
 *     V[xi] [tiles, in_c]   the input windows, transformed per chunk of images
 *     M[xi] [out_c, tiles]  then A^T M A gives the chunk's output tiles.
 *
 * The transforms use the points 0, -1, 1, -2, 1/2 and infinity, which round
 * several times less in float than the usual 0, +-1, +-2 (Barabasz et al.
 * 2020, "Error analysis and improving the accuracy of Winograd convolution
 * for deep neural networks"); the algorithm is exact in real arithmetic, so
 * only rounding separates the result from the direct sum.
 *
 * backward_data is the same algorithm run on dy with the filters flipped and
 * their channels exchanged (a correlation with padding 2 - pad).
 * backward_filter is the adjoint of the forward algorithm: with
 * dM[xi] = A dY A^T per tile, dU[xi] = sum over chunks of dM[xi] · V[xi],
 * and dW = G^T dU G.
 *
 * Transforms work on LANES values at once, so that the compiler turns each
 * step into vector instructions: LANES input channels of one window (read
 * from a zero-padded, channel-blocked copy of the input), LANES tiles of one
 * output channel, or LANES filters. Threads split the transforms by channel
 * or tile and the 36 sgemms by point; no two parts write the same memory, so
 * results do not depend on the thread count.
 */
#include "config.h"

#include <cblas.h>
#include <string.h>

#include "cpu-vector.h"
#include "cpu-winograd.h"

#define TILE 4    /* outputs per tile side */
#define WINDOW 6  /* inputs per tile side: TILE + 3 - 1 */
#define POINTS 36 /* WINDOW * WINDOW */

/* Budget for a chunk's scratch; a chunk is whole images, at least
 * MIN_CHUNK_TILES tiles so that each sgemm keeps a wide shape. */
#define CHUNK_BYTES ((gsize)8 << 20)
#define MIN_CHUNK_TILES 64

/* Below this many output tiles, or channels in or out, the transforms (the
 * filters' done on every call) and the thin sgemms cost more than they save. */
#define MIN_TILES 16
#define MIN_CHANNELS 16

/* A convolution as the kernels see it: `in_c` channels of [h, w] read by
 * tiles whose 6x6 window starts at (4 ty - pad_t, 4 tx - pad_l), writing
 * `out_c` channels of [out_h, out_w]. */
typedef struct {
    int n;
    int in_c, h, w;
    int out_c, out_h, out_w;
    int pad_t, pad_l;
    int tiles_h, tiles_w;
    int per_image; /* tiles_h * tiles_w, numbered row by row */
    /* The input as the transform reads it: per image and block of LANES
     * channels, a [hp, wp] plane of LANES floats per cell, padded with zeros
     * so that every window lies inside (channels past in_c are zeros too). */
    int blocks, hp, wp;
} Plan;

/* One parallel step over a chunk of whole images, from n0. */
typedef struct {
    const Plan *p;
    int n0;
    int nt;               /* the chunk's tiles: per_image per image */
    gsize ld;             /* nt rounded up to LANES: the columns of m */
    const float *in;      /* the [n, in_c, h, w] input the windows read */
    const float *dout;    /* backward_filter: dy, [n, out_c, out_h, out_w] */
    float *out;           /* forward: [n, out_c, out_h, out_w] */
    const float *bias;    /* forward: [out_c] or NULL */
    gboolean relu;        /* forward: max(out, 0) */
    const float *weights; /* [out_c, in_c, 3, 3], or [in_c, out_c, 3, 3] when transposed */
    gboolean transposed;  /* flip the filters and exchange their channels */
    float *u;             /* [POINTS, out_c, in_c]: U as transformed here, or dU */
    const float *filters; /* the U that multiply() reads: u, or a prepared one */
    float *padded;        /* [nb, blocks, hp, wp, LANES] */
    float *v;             /* [POINTS, nt, blocks * LANES] */
    float *m;             /* [POINTS, out_c, ld] */
    float *dweights;      /* backward_filter: [out_c, in_c, 3, 3] */
    float beta;           /* backward_filter: 0 on the first chunk, then 1 */
} Job;

/* ------------------------------------------------------- 1-D transforms */

/* Each reads in[0], in[is], ... and writes out[0], out[os], ... */

/* B^T: a window row of 6 inputs to 6 points. */
static inline void
input_1d(const Lanes *in, int is, Lanes *out, int os)
{
    Lanes d0 = in[0], d1 = in[is], d2 = in[2 * is], d3 = in[3 * is], d4 = in[4 * is];
    Lanes d5 = in[5 * is];

    out[0] = d0 - 1.5f * d1 - 2.0f * d2 + 1.5f * d3 + d4;
    out[os] = d1 - 2.5f * d2 + 0.5f * d3 + d4;
    out[2 * os] = -d1 + 0.5f * d2 + 2.5f * d3 + d4;
    out[3 * os] = 0.5f * d1 - d2 - 0.5f * d3 + d4;
    out[4 * os] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
    out[5 * os] = d1 - 1.5f * d2 - 2.0f * d3 + 1.5f * d4 + d5;
}

/* A^T: 6 points to a tile row of 4 outputs. */
static inline void
output_1d(const Lanes *in, int is, Lanes *out, int os)
{
    Lanes m0 = in[0], m1 = in[is], m2 = in[2 * is], m3 = in[3 * is], m4 = in[4 * is];
    Lanes m5 = in[5 * is];

    out[0] = m0 + m1 + m2 + m3 + m4;
    out[os] = -m1 + m2 - 2.0f * m3 + 0.5f * m4;
    out[2 * os] = m1 + m2 + 4.0f * m3 + 0.25f * m4;
    out[3 * os] = -m1 + m2 - 8.0f * m3 + 0.125f * m4 + m5;
}

/* A, the adjoint of A^T: 4 output gradients to 6 points. */
static inline void
output_adjoint_1d(const Lanes *in, int is, Lanes *out, int os)
{
    Lanes y0 = in[0], y1 = in[is], y2 = in[2 * is], y3 = in[3 * is];

    out[0] = y0;
    out[os] = y0 - y1 + y2 - y3;
    out[2 * os] = y0 + y1 + y2 + y3;
    out[3 * os] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
    out[4 * os] = y0 + 0.5f * y1 + 0.25f * y2 + 0.125f * y3;
    out[5 * os] = y3;
}

/* G: a filter row of 3 taps to 6 points. */
static inline void
filter_1d(const Lanes *in, int is, Lanes *out, int os)
{
    const float third = 1.0f / 3.0f, fifteenth = 1.0f / 15.0f;
    Lanes g0 = in[0], g1 = in[is], g2 = in[2 * is];

    out[0] = g0;
    out[os] = (-g0 + g1 - g2) * third;
    out[2 * os] = (g0 + g1 + g2) * third;
    out[3 * os] = (g0 - 2.0f * g1 + 4.0f * g2) * fifteenth;
    out[4 * os] = (16.0f * g0 + 8.0f * g1 + 4.0f * g2) * -fifteenth;
    out[5 * os] = g2;
}

/* G^T, the adjoint of G: 6 point gradients to 3 tap gradients. */
static inline void
filter_adjoint_1d(const Lanes *in, int is, Lanes *out, int os)
{
    const float third = 1.0f / 3.0f, fifteenth = 1.0f / 15.0f;
    Lanes u0 = in[0], u1 = in[is], u2 = in[2 * is], u3 = in[3 * is], u4 = in[4 * is];
    Lanes u5 = in[5 * is];

    out[0] = u0 + (u2 - u1) * third + (u3 - 16.0f * u4) * fifteenth;
    out[os] = (u1 + u2) * third - (2.0f * u3 + 8.0f * u4) * fifteenth;
    out[2 * os] = (u2 - u1) * third + (4.0f * u3 - 4.0f * u4) * fifteenth + u5;
}

/* ------------------------------------------------------------ tiles */

/* Where each lane's tile lies: its image and the output row and column of its
 * top-left cell; img < 0 for lanes past the chunk's last tile. */
typedef struct {
    int img, row, col;
} Origin;

static void
lane_origins(const Job *job, gsize b, Origin origin[LANES])
{
    const Plan *p = job->p;

    for (int l = 0; l < LANES; l++) {
        int t = (int)b + l, r = t % p->per_image;
        if (t >= job->nt) {
            origin[l] = (Origin){-1, 0, 0};
            continue;
        }
        origin[l] =
            (Origin){job->n0 + t / p->per_image, r / p->tiles_w * TILE, r % p->tiles_w * TILE};
    }
}

/* Copies the chunk's images into `padded` (see Plan), for the (image, channel
 * block) pairs [begin, end). */
static void
pad_input(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize plane = (gsize)p->h * p->w;

    for (gsize item = begin; item < end; item++) {
        int s = (int)(item / p->blocks), c0 = (int)(item % p->blocks) * LANES;
        int lanes = MIN(LANES, p->in_c - c0);
        const float *src = job->in + ((gsize)(job->n0 + s) * p->in_c + c0) * plane;
        float *dst = job->padded + item * p->hp * p->wp * LANES;

        for (int r = 0; r < p->hp; r++) {
            int sr = r - p->pad_t;
            float *row = dst + (gsize)r * p->wp * LANES;
            if (sr < 0 || sr >= p->h) {
                memset(row, 0, (gsize)p->wp * LANES * sizeof(float));
                continue;
            }
            for (int col = 0; col < p->wp; col++) {
                int sc = col - p->pad_l;
                float *cell = row + (gsize)col * LANES;
                if (sc < 0 || sc >= p->w) {
                    memset(cell, 0, LANES * sizeof(float));
                    continue;
                }
                for (int l = 0; l < lanes; l++)
                    cell[l] = src[l * plane + (gsize)sr * p->w + sc];
                for (int l = lanes; l < LANES; l++)
                    cell[l] = 0.0f;
            }
        }
    }
}

/* V[xi][t][all channels] for the chunk's tiles t in [begin, end), one block
 * of LANES channels at a time. */
VECTOR_CLONES static void
transform_input(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize row_stride = (gsize)p->blocks * LANES;
    const gsize point_stride = (gsize)job->nt * row_stride;
    Lanes d[POINTS], t[POINTS], v[POINTS];

    for (gsize tile = begin; tile < end; tile++) {
        int s = (int)tile / p->per_image, r = (int)tile % p->per_image;
        int row = r / p->tiles_w * TILE, col = r % p->tiles_w * TILE;

        for (int cb = 0; cb < p->blocks; cb++) {
            const float *window =
                job->padded + ((((gsize)s * p->blocks + cb) * p->hp + row) * p->wp + col) * LANES;
            for (int i = 0; i < WINDOW; i++)
                for (int j = 0; j < WINDOW; j++)
                    memcpy(&d[i * WINDOW + j], window + ((gsize)i * p->wp + j) * LANES,
                           sizeof(Lanes));
            for (int j = 0; j < WINDOW; j++)
                input_1d(d + j, WINDOW, t + j, WINDOW);
            for (int i = 0; i < WINDOW; i++)
                input_1d(t + i * WINDOW, 1, v + i * WINDOW, 1);
            for (int xi = 0; xi < POINTS; xi++)
                memcpy(job->v + xi * point_stride + tile * row_stride + (gsize)cb * LANES, &v[xi],
                       sizeof(Lanes));
        }
    }
}

/* Copies the size x size block at (row, col) of a [h, w] plane into lane l
 * of block[i * size + j], zero where it leaves the plane. */
static inline void
gather_block(const float *plane, int h, int w, int row, int col, int size, Lanes *block, int l)
{
    for (int i = 0; i < size; i++)
        for (int j = 0; j < size; j++) {
            int r = row + i, c = col + j;
            block[i * size + j][l] =
                r >= 0 && r < h && c >= 0 && c < w ? plane[(gsize)r * w + c] : 0.0f;
        }
}

/* The output tiles of channels [begin, end) from M, plus the bias, then
 * max(, 0) with relu. */
VECTOR_CLONES static void
transform_output(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize plane = (gsize)p->out_h * p->out_w;
    const gsize point_stride = (gsize)p->out_c * job->ld;
    Origin origin[LANES];
    Lanes m[POINTS], s[TILE * WINDOW], y[TILE * TILE];

    for (gsize b = 0; b < job->ld; b += LANES) {
        lane_origins(job, b, origin);
        for (gsize k = begin; k < end; k++) {
            float bias = job->bias != NULL ? job->bias[k] : 0.0f;
            for (int xi = 0; xi < POINTS; xi++)
                memcpy(&m[xi], job->m + xi * point_stride + k * job->ld + b, sizeof(Lanes));
            for (int j = 0; j < WINDOW; j++)
                output_1d(m + j, WINDOW, s + j, WINDOW);
            for (int i = 0; i < TILE; i++)
                output_1d(s + i * WINDOW, 1, y + i * TILE, 1);
            for (int l = 0; l < LANES && origin[l].img >= 0; l++) {
                const Origin *o = &origin[l];
                float *dst = job->out + ((gsize)o->img * p->out_c + k) * plane +
                             (gsize)o->row * p->out_w + o->col;
                int rows = MIN(TILE, p->out_h - o->row), cols = MIN(TILE, p->out_w - o->col);
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++) {
                        float v = y[i * TILE + j][l] + bias;
                        dst[(gsize)i * p->out_w + j] = job->relu && !(v > 0.0f) ? 0.0f : v;
                    }
            }
        }
    }
}

/* dM[xi][k][lane block] = A dY A^T for output channels [begin, end) and
 * every tile of the chunk; cells past the output's edge count as 0. */
VECTOR_CLONES static void
transform_output_gradient(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize plane = (gsize)p->out_h * p->out_w;
    const gsize point_stride = (gsize)p->out_c * job->ld;
    Origin origin[LANES];
    Lanes dy[TILE * TILE], t[WINDOW * TILE], dm[POINTS];

    for (gsize b = 0; b < job->ld; b += LANES) {
        lane_origins(job, b, origin);
        for (gsize k = begin; k < end; k++) {
            for (int l = 0; l < LANES; l++) {
                if (origin[l].img < 0) {
                    for (int i = 0; i < TILE * TILE; i++)
                        dy[i][l] = 0.0f;
                    continue;
                }
                gather_block(job->dout + ((gsize)origin[l].img * p->out_c + k) * plane, p->out_h,
                             p->out_w, origin[l].row, origin[l].col, TILE, dy, l);
            }
            for (int j = 0; j < TILE; j++)
                output_adjoint_1d(dy + j, TILE, t + j, TILE);
            for (int i = 0; i < WINDOW; i++)
                output_adjoint_1d(t + i * TILE, 1, dm + i * WINDOW, 1);
            for (int xi = 0; xi < POINTS; xi++)
                memcpy(job->m + xi * point_stride + k * job->ld + b, &dm[xi], sizeof(Lanes));
        }
    }
}

/* ------------------------------------------------------------ filters */

/* U[xi][o][i] = (G g G^T)[xi] for output channels o in [begin, end), where g
 * is weights[o][i], or weights[i][o] flipped when transposed. */
VECTOR_CLONES static void
transform_filters(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize point_stride = (gsize)p->out_c * p->in_c;
    const gsize o_stride = job->transposed ? 9 : (gsize)p->in_c * 9;
    const gsize i_stride = job->transposed ? (gsize)p->out_c * 9 : 9;
    float block[LANES * 9];
    Lanes g[9], t[WINDOW * 3], u[POINTS];

    for (gsize o = begin; o < end; o++) {
        for (int i0 = 0; i0 < p->in_c; i0 += LANES) {
            int lanes = MIN(LANES, p->in_c - i0);
            float *dst = job->u + o * p->in_c + i0;
            for (int l = 0; l < lanes; l++)
                memcpy(block + l * 9, job->weights + o * o_stride + (i0 + l) * i_stride,
                       9 * sizeof(float));
            memset(block + lanes * 9, 0, (gsize)(LANES - lanes) * 9 * sizeof(float));
            for (int tap = 0; tap < 9; tap++) {
                int from = job->transposed ? 8 - tap : tap;
                for (int l = 0; l < LANES; l++)
                    g[tap][l] = block[l * 9 + from];
            }
            for (int j = 0; j < 3; j++)
                filter_1d(g + j, 3, t + j, 3);
            for (int i = 0; i < WINDOW; i++)
                filter_1d(t + i * 3, 1, u + i * WINDOW, 1);
            for (int xi = 0; xi < POINTS; xi++) {
                if (lanes == LANES)
                    memcpy(dst + xi * point_stride, &u[xi], sizeof(Lanes));
                else
                    memcpy(dst + xi * point_stride, &u[xi], (gsize)lanes * sizeof(float));
            }
        }
    }
}

/* dweights[o][i] = G^T dU[.][o][i] G for output channels o in [begin, end):
 * the adjoint of transform_filters (not transposed). */
VECTOR_CLONES static void
filter_gradients(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;
    const gsize point_stride = (gsize)p->out_c * p->in_c;
    Lanes du[POINTS], t[3 * WINDOW], dg[9];

    for (gsize o = begin; o < end; o++) {
        for (int i0 = 0; i0 < p->in_c; i0 += LANES) {
            int lanes = MIN(LANES, p->in_c - i0);
            float *dst = job->dweights + (o * p->in_c + i0) * 9;
            for (int xi = 0; xi < POINTS; xi++) {
                const float *src = job->u + xi * point_stride + o * p->in_c + i0;
                if (lanes == LANES) {
                    memcpy(&du[xi], src, sizeof(Lanes));
                } else {
                    du[xi] = (Lanes){0};
                    memcpy(&du[xi], src, (gsize)lanes * sizeof(float));
                }
            }
            for (int j = 0; j < WINDOW; j++)
                filter_adjoint_1d(du + j, WINDOW, t + j, WINDOW);
            for (int a = 0; a < 3; a++)
                filter_adjoint_1d(t + a * WINDOW, 1, dg + a * 3, 1);
            for (int l = 0; l < lanes; l++)
                for (int tap = 0; tap < 9; tap++)
                    dst[l * 9 + tap] = dg[tap][l];
        }
    }
}

/* ------------------------------------------------------------ products */

/* M[xi] = U[xi] · V[xi]^T for points [begin, end). */
static void
multiply(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;

    for (gsize xi = begin; xi < end; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->out_c, job->nt, p->in_c, 1.0f,
                    job->filters + xi * p->out_c * p->in_c, p->in_c,
                    job->v + xi * job->nt * p->blocks * LANES, p->blocks * LANES, 0.0f,
                    job->m + xi * p->out_c * job->ld, (int)job->ld);
}

/* dU[xi] (+)= dM[xi] · V[xi] for points [begin, end). */
static void
multiply_gradient(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Plan *p = job->p;

    for (gsize xi = begin; xi < end; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->out_c, p->in_c, job->nt, 1.0f,
                    job->m + xi * p->out_c * job->ld, (int)job->ld,
                    job->v + xi * job->nt * p->blocks * LANES, p->blocks * LANES, job->beta,
                    job->u + xi * p->out_c * p->in_c, p->in_c);
}

/* ------------------------------------------------------------ kernels */

static Plan
plan_new(int n, int in_c, int h, int w, int out_c, int out_h, int out_w, int pad_t, int pad_l)
{
    Plan p = {
        .n = n,
        .in_c = in_c,
        .h = h,
        .w = w,
        .out_c = out_c,
        .out_h = out_h,
        .out_w = out_w,
        .pad_t = pad_t,
        .pad_l = pad_l,
        .tiles_h = (out_h + TILE - 1) / TILE,
        .tiles_w = (out_w + TILE - 1) / TILE,
        .blocks = (in_c + LANES - 1) / LANES,
    };

    p.per_image = p.tiles_h * p.tiles_w;
    p.hp = p.tiles_h * TILE + WINDOW - TILE;
    p.wp = p.tiles_w * TILE + WINDOW - TILE;
    return p;
}

/* n rounded up to a whole number of LANES. */
static gsize
round_to_lanes(gsize n)
{
    return (n + LANES - 1) / LANES * LANES;
}

/* Images per chunk: as many as CHUNK_BYTES holds, at least MIN_CHUNK_TILES
 * tiles' worth and at least one. */
static int
chunk_images(const Plan *p)
{
    gsize per_image = ((gsize)p->blocks * LANES * (p->hp * p->wp + POINTS * p->per_image) +
                       (gsize)POINTS * p->out_c * p->per_image) *
                      sizeof(float);
    gsize nb =
        MAX(CHUNK_BYTES / per_image, (gsize)(MIN_CHUNK_TILES + p->per_image - 1) / p->per_image);

    return (int)CLAMP(nb, 1, (gsize)p->n);
}

/* Reserves U in the backend's winograd scratch (unless the filters come
 * prepared), a chunk of nb images' padded input and V in col, and its M in
 * rows; fills job's pointers. */
static gboolean
reserve(CpuBackend *cpu, const Plan *p, int nb, gboolean prepared, Job *job, GError **error)
{
    gsize tiles = (gsize)nb * p->per_image;
    gsize padded = (gsize)nb * p->blocks * p->hp * p->wp * LANES;
    gsize v = (gsize)POINTS * tiles * p->blocks * LANES;
    gsize ld = round_to_lanes(tiles);

    if ((!prepared &&
         !cpu_scratch_reserve(&cpu->winograd, (gsize)POINTS * p->out_c * p->in_c, error)) ||
        !cpu_scratch_reserve(&cpu->col, padded + v, error) ||
        !cpu_scratch_reserve(&cpu->rows, (gsize)POINTS * p->out_c * ld, error))
        return FALSE;
    job->u = prepared ? NULL : cpu->winograd.data;
    job->padded = cpu->col.data;
    job->v = cpu->col.data + padded;
    job->m = cpu->rows.data;
    return TRUE;
}

/* Points job at images [n0, n0 + nb) and transforms their input into V. */
static void
start_chunk(CpuBackend *cpu, Job *job, int n0, int nb)
{
    const Plan *p = job->p;

    job->n0 = n0;
    job->nt = nb * p->per_image;
    job->ld = round_to_lanes((gsize)job->nt);
    cpu_pool_run(cpu->pool, (gsize)nb * p->blocks, cpu_grain((gsize)p->hp * p->wp * LANES),
                 pad_input, job);
    cpu_pool_run(cpu->pool, (gsize)job->nt, cpu_grain((gsize)p->blocks * LANES * POINTS),
                 transform_input, job);
}

/* The forward algorithm on plan p: out = conv(in, weights) + bias (then
 * max(, 0) with relu), with the filters transformed here, or given as U
 * (prepared, then weights is NULL). */
static gboolean
run_forward(CpuBackend *cpu, const Plan *p, const float *in, const float *weights,
            gboolean transposed, const float *prepared, const float *bias, gboolean relu,
            float *out, GError **error)
{
    int nb = chunk_images(p);
    Job job = {
        .p = p,
        .in = in,
        .out = out,
        .bias = bias,
        .relu = relu,
        .weights = weights,
        .transposed = transposed,
    };

    if (!reserve(cpu, p, nb, prepared != NULL, &job, error))
        return FALSE;
    if (prepared == NULL)
        cpu_pool_run(cpu->pool, (gsize)p->out_c, cpu_grain((gsize)p->in_c * POINTS),
                     transform_filters, &job);
    job.filters = prepared != NULL ? prepared : job.u;
    for (int n0 = 0; n0 < p->n; n0 += nb) {
        start_chunk(cpu, &job, n0, MIN(nb, p->n - n0));
        cpu_pool_run(cpu->pool, POINTS, cpu_grain((gsize)p->out_c * job.ld * p->in_c), multiply,
                     &job);
        cpu_pool_run(cpu->pool, (gsize)p->out_c, cpu_grain(job.ld * POINTS), transform_output,
                     &job);
    }
    return TRUE;
}

gboolean
cpu_winograd_fits(const TpConvGeometry *g)
{
    return g->kh == 3 && g->kw == 3 && g->stride_h == 1 && g->stride_w == 1 && g->dil_h == 1 &&
           g->dil_w == 1 && g->groups == 1 && g->c >= MIN_CHANNELS && g->out_c >= MIN_CHANNELS;
}

gboolean
cpu_winograd_suits(const TpConvGeometry *g)
{
    gsize tiles = (gsize)g->n * ((g->out_h + TILE - 1) / TILE) * ((g->out_w + TILE - 1) / TILE);

    return cpu_winograd_fits(g) && tiles >= MIN_TILES;
}

gboolean
cpu_winograd_forward(CpuBackend *cpu, const TpConvGeometry *g, const float *x, const float *weights,
                     const float *prepared, const float *bias, gboolean relu, float *y,
                     GError **error)
{
    Plan p = plan_new(g->n, g->c, g->h, g->w, g->out_c, g->out_h, g->out_w, g->pad_t, g->pad_l);

    return run_forward(cpu, &p, x, weights, FALSE, prepared, bias, relu, y, error);
}

gsize
cpu_winograd_prepared_size(const TpConvGeometry *g)
{
    return (gsize)POINTS * g->out_c * g->c;
}

void
cpu_winograd_prepare(CpuBackend *cpu, const TpConvGeometry *g, const float *weights,
                     float *prepared)
{
    Plan p = plan_new(g->n, g->c, g->h, g->w, g->out_c, g->out_h, g->out_w, g->pad_t, g->pad_l);
    Job job = {.p = &p, .weights = weights, .u = prepared};

    cpu_pool_run(cpu->pool, (gsize)p.out_c, cpu_grain((gsize)p.in_c * POINTS), transform_filters,
                 &job);
}

gboolean
cpu_winograd_backward_data(CpuBackend *cpu, const TpConvGeometry *g, const float *dy,
                           const float *weights, float *dx, GError **error)
{
    /* dx[i] = sum over taps a of dy[i + pad - a] g[a]: a correlation of dy
     * with the flipped filter, padded 2 - pad. */
    Plan p =
        plan_new(g->n, g->out_c, g->out_h, g->out_w, g->c, g->h, g->w, 2 - g->pad_t, 2 - g->pad_l);

    return run_forward(cpu, &p, dy, weights, TRUE, NULL, NULL, FALSE, dx, error);
}

gboolean
cpu_winograd_backward_filter(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                             const float *dy, float *dweights, GError **error)
{
    Plan p = plan_new(g->n, g->c, g->h, g->w, g->out_c, g->out_h, g->out_w, g->pad_t, g->pad_l);
    int nb = chunk_images(&p);
    Job job = {
        .p = &p,
        .in = x,
        .dout = dy,
        .dweights = dweights,
    };

    if (!reserve(cpu, &p, nb, FALSE, &job, error))
        return FALSE;
    for (int n0 = 0; n0 < p.n; n0 += nb) {
        start_chunk(cpu, &job, n0, MIN(nb, p.n - n0));
        job.beta = n0 == 0 ? 0.0f : 1.0f;
        cpu_pool_run(cpu->pool, (gsize)p.out_c, cpu_grain(job.ld * POINTS),
                     transform_output_gradient, &job);
        cpu_pool_run(cpu->pool, POINTS, cpu_grain((gsize)p.out_c * job.ld * p.in_c),
                     multiply_gradient, &job);
    }
    cpu_pool_run(cpu->pool, (gsize)p.out_c, cpu_grain((gsize)p.in_c * POINTS), filter_gradients,
                 &job);
    return TRUE;
}
