/* cpu-packed.c — the product of packed weights with few columns
 * (cpu-packed.h).
 *
 * The output is cut into tiles of PANEL rows and at most MAX_WIDTH columns.
 * A tile keeps its PANEL x width sums in vector registers (two Lanes per
 * column) for the whole depth: each step loads one row of the panel (PANEL
 * weights, contiguous) and adds it times each column's b[k, j], broadcast.
 * Nothing is packed per call; the panel streams from memory once per column
 * tile, and the few columns of b stay in cache. Threads split the tiles.
 */
#include "config.h"

#include <string.h>

#include "cpu-packed.h"
#include "cpu-vector.h"

/* The compiler may fuse a multiply and an add into one instruction (ISO C
 * mode forbids it by default): the kernel needs fused multiply-adds to run
 * at the processor's peak, and each sum is rounded less, not more. */
#pragma GCC optimize("fp-contract=fast")

#define PANEL (2 * LANES) /* rows of a panel and of a tile */
#define MAX_WIDTH 12      /* columns of a tile: 24 vector sums */
#define PREFETCH 16       /* rows of a panel requested ahead of use (4% faster) */

typedef struct {
    int rows, columns, depth;
    int width;  /* columns per tile (the last may have fewer) */
    int strips; /* column tiles per panel */
    const float *packed, *b;
    gsize ldb, ldc;
    float *c;
} Job;

gsize
cpu_packed_size(int rows, int depth)
{
    return (gsize)(rows + PANEL - 1) / PANEL * PANEL * depth;
}

void
cpu_packed_pack(int rows, int depth, const float *w, float *packed)
{
    for (int r0 = 0; r0 < rows; r0 += PANEL) {
        float *panel = packed + (gsize)r0 * depth;
        for (int k = 0; k < depth; k++)
            for (int l = 0; l < PANEL; l++)
                panel[(gsize)k * PANEL + l] = r0 + l < rows ? w[(gsize)(r0 + l) * depth + k] : 0.0f;
    }
}

/* One tile: c[r0 + l, j] for l < nrows, j < width, from its panel and the
 * tile's columns of b. Inlined with a constant width, so that the sums stay
 * in registers. */
static inline __attribute__((always_inline)) void
tile(int width, int depth, const float *panel, const float *b, gsize ldb, float *c, gsize ldc,
     int nrows)
{
    Lanes lo[MAX_WIDTH], hi[MAX_WIDTH];

#pragma GCC unroll 16
    for (int j = 0; j < width; j++)
        lo[j] = hi[j] = (Lanes){0};
    for (int k = 0; k < depth; k++) {
        const float *bk = b + (gsize)k * ldb;
        Lanes w0, w1;

        __builtin_prefetch(panel + (gsize)(k + PREFETCH) * PANEL);
        __builtin_prefetch(panel + (gsize)(k + PREFETCH) * PANEL + LANES);
        memcpy(&w0, panel + (gsize)k * PANEL, sizeof w0);
        memcpy(&w1, panel + (gsize)k * PANEL + LANES, sizeof w1);
#pragma GCC unroll 16
        for (int j = 0; j < width; j++) {
            lo[j] += w0 * bk[j];
            hi[j] += w1 * bk[j];
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < width; j++) {
        for (int l = 0; l < MIN(nrows, LANES); l++)
            c[(gsize)l * ldc + j] = lo[j][l];
        for (int l = LANES; l < nrows; l++)
            c[(gsize)l * ldc + j] = hi[j][l - LANES];
    }
}

/* Tiles [begin, end), numbered strip by strip within each panel. */
VECTOR_CLONES static void
multiply(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;

    for (gsize t = begin; t < end; t++) {
        int r0 = (int)(t / job->strips) * PANEL, j0 = (int)(t % job->strips) * job->width;
        int width = MIN(job->width, job->columns - j0), nrows = MIN(PANEL, job->rows - r0);
        const float *panel = job->packed + (gsize)r0 * job->depth, *b = job->b + j0;
        float *c = job->c + (gsize)r0 * job->ldc + j0;

        /* one case per width, so that each inlined tile has a constant one */
        switch (width) {
        case 1:
            tile(1, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 2:
            tile(2, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 3:
            tile(3, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 4:
            tile(4, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 5:
            tile(5, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 6:
            tile(6, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 7:
            tile(7, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 8:
            tile(8, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 9:
            tile(9, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 10:
            tile(10, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 11:
            tile(11, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        case 12:
            tile(12, job->depth, panel, b, job->ldb, c, job->ldc, nrows);
            break;
        default:
            g_assert_not_reached();
        }
    }
}

void
cpu_packed_gemm(CpuPool *pool, int rows, int columns, int depth, const float *packed,
                const float *b, gsize ldb, float *c, gsize ldc)
{
    /* columns split evenly over the fewest tiles of at most MAX_WIDTH */
    int strips = (columns + MAX_WIDTH - 1) / MAX_WIDTH;
    Job job = {
        .rows = rows,
        .columns = columns,
        .depth = depth,
        .width = (columns + strips - 1) / strips,
        .packed = packed,
        .b = b,
        .ldb = ldb,
        .ldc = ldc,
        .c = c,
    };

    job.strips = (columns + job.width - 1) / job.width;
    cpu_pool_run(pool, (gsize)(rows + PANEL - 1) / PANEL * job.strips,
                 cpu_grain((gsize)PANEL * job.width * depth), multiply, &job);
}
