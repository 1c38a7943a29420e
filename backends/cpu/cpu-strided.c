/* cpu-strided.c — the cpu backend's strided family: strided_copy (contract:
 * TpStridedCopy in tp-backend.h).
 *
 * Neighbouring axes that are contiguous in both src and dst are merged, so
 * a concat or a channel slice is a few long rows; the copy then runs row by
 * row over the last axis, split over the pool by rows, a plain loop (a
 * vectorized one when both strides are 1).
 */
#include "config.h"

#include "cpu-kernels.h"

typedef struct {
    int k;
    gssize extent[TP_KERNEL_MAX_DIMS];
    gssize ss[TP_KERNEL_MAX_DIMS], ds[TP_KERNEL_MAX_DIMS];
    const float *src; /* at src_offset */
    float *dst;       /* at dst_offset */
    gboolean accumulate;
} StridedJob;

static void
rows_range(gpointer data, gsize begin, gsize end)
{
    const StridedJob *job = data;
    const int k = job->k;
    const gssize inner = job->extent[k - 1], ss = job->ss[k - 1], ds = job->ds[k - 1];

    for (gsize r = begin; r < end; r++) {
        gssize rest = (gssize)r, so = 0, dof = 0;
        const float *s;
        float *d;

        for (int a = k - 2; a >= 0; a--) {
            gssize i = rest % job->extent[a];
            rest /= job->extent[a];
            so += i * job->ss[a];
            dof += i * job->ds[a];
        }
        s = job->src + so;
        d = job->dst + dof;
        if (ss == 1 && ds == 1) {
            if (job->accumulate)
                for (gssize i = 0; i < inner; i++)
                    d[i] += s[i];
            else
                for (gssize i = 0; i < inner; i++)
                    d[i] = s[i];
        } else if (job->accumulate) {
            for (gssize i = 0; i < inner; i++)
                d[i * ds] += s[i * ss];
        } else {
            for (gssize i = 0; i < inner; i++)
                d[i * ds] = s[i * ss];
        }
    }
}

gboolean
cpu_strided_copy(gpointer self, const TpStridedCopy *g, const float *src, float *dst,
                 GError **error)
{
    StridedJob job = {.src = src + g->src_offset, .dst = dst + g->dst_offset,
                      .accumulate = g->accumulate};
    gsize rows = 1;

    /* drop axes of extent 1, merge an axis into the one before it when both
     * buffers step over it contiguously */
    for (int a = 0; a < g->ndim; a++) {
        if (g->shape[a] == 0)
            return TRUE;
        if (g->shape[a] == 1)
            continue;
        if (job.k > 0 && job.ss[job.k - 1] == g->src_stride[a] * g->shape[a] &&
            job.ds[job.k - 1] == g->dst_stride[a] * g->shape[a]) {
            job.extent[job.k - 1] *= g->shape[a];
            job.ss[job.k - 1] = g->src_stride[a];
            job.ds[job.k - 1] = g->dst_stride[a];
            continue;
        }
        job.extent[job.k] = g->shape[a];
        job.ss[job.k] = g->src_stride[a];
        job.ds[job.k] = g->dst_stride[a];
        job.k++;
    }
    if (job.k == 0) {
        job.extent[0] = 1;
        job.ss[0] = job.ds[0] = 1;
        job.k = 1;
    }
    for (int a = 0; a < job.k - 1; a++)
        rows *= (gsize)job.extent[a];
    cpu_pool_run(((CpuBackend *)self)->pool, rows, cpu_grain((gsize)job.extent[job.k - 1]),
                 rows_range, &job);
    return TRUE;
}
