/* cpu-layer-norm.c — the cpu backend's layer-norm family:
 * layer_norm_forward and layer_norm_backward (contract: TpLayerNormGeometry
 * in tp-backend.h). With x̂ = (x - mean) * invstd and g = dy * scale, per row
 *
 *     dx = invstd * (g - mean(g) - x̂ * mean(g * x̂))
 *
 * and dscale = sum over rows of dy * x̂, dbias = sum over rows of dy. Rows
 * are split over the pool; the statistics and every sum are accumulated in
 * double. dscale and dbias are a second pass split by column, so no two
 * threads write one element and the sums do not depend on the thread count.
 */
#include "config.h"

#include <math.h>

#include "cpu-kernels.h"

typedef struct {
    const TpLayerNormGeometry *g;
    const float *x, *dy, *scale, *bias, *mean, *invstd;
    float *y, *save_mean, *save_invstd, *dx, *dscale, *dbias;
} LayerNormJob;

static void
forward_rows(gpointer data, gsize begin, gsize end)
{
    const LayerNormJob *job = data;
    const gsize cols = (gsize)job->g->cols;

    for (gsize r = begin; r < end; r++) {
        const float *x = job->x + r * cols;
        float *y = job->y + r * cols;
        double sum = 0.0, sq = 0.0, mean, var;
        float m, invstd;

        for (gsize j = 0; j < cols; j++)
            sum += x[j];
        mean = sum / (double)cols;
        for (gsize j = 0; j < cols; j++)
            sq += (x[j] - mean) * (x[j] - mean);
        var = sq / (double)cols;
        m = (float)mean;
        invstd = (float)(1.0 / sqrt(var + job->g->epsilon));
        if (job->save_mean != NULL)
            job->save_mean[r] = m;
        if (job->save_invstd != NULL)
            job->save_invstd[r] = invstd;
        for (gsize j = 0; j < cols; j++) {
            float v = (x[j] - m) * invstd * job->scale[j];
            y[j] = job->bias != NULL ? v + job->bias[j] : v;
        }
    }
}

gboolean
cpu_layer_norm_forward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                       const float *scale, const float *bias, float *y, float *save_mean,
                       float *save_invstd, GError **error)
{
    LayerNormJob job = {.g = g, .x = x, .scale = scale, .bias = bias, .y = y,
                        .save_mean = save_mean, .save_invstd = save_invstd};

    cpu_pool_run(((CpuBackend *)self)->pool, (gsize)g->rows, cpu_grain((gsize)g->cols),
                 forward_rows, &job);
    return TRUE;
}

static void
backward_rows(gpointer data, gsize begin, gsize end)
{
    const LayerNormJob *job = data;
    const gsize cols = (gsize)job->g->cols;

    for (gsize r = begin; r < end; r++) {
        const float *x = job->x + r * cols, *dy = job->dy + r * cols;
        float *dx = job->dx + r * cols;
        const float m = job->mean[r], invstd = job->invstd[r];
        double sum_g = 0.0, sum_gx = 0.0;
        float mean_g, mean_gx;

        for (gsize j = 0; j < cols; j++) {
            float g = dy[j] * job->scale[j];
            sum_g += g;
            sum_gx += (double)g * ((x[j] - m) * invstd);
        }
        mean_g = (float)(sum_g / (double)cols);
        mean_gx = (float)(sum_gx / (double)cols);
        for (gsize j = 0; j < cols; j++) {
            float xhat = (x[j] - m) * invstd;
            dx[j] = invstd * (dy[j] * job->scale[j] - mean_g - xhat * mean_gx);
        }
    }
}

static void
parameter_columns(gpointer data, gsize begin, gsize end)
{
    const LayerNormJob *job = data;
    const gsize cols = (gsize)job->g->cols, rows = (gsize)job->g->rows;

    for (gsize j = begin; j < end; j++) {
        double ds = 0.0, db = 0.0;
        for (gsize r = 0; r < rows; r++) {
            float dy = job->dy[r * cols + j];
            ds += (double)dy * ((job->x[r * cols + j] - job->mean[r]) * job->invstd[r]);
            db += dy;
        }
        if (job->dscale != NULL)
            job->dscale[j] = (float)ds;
        if (job->dbias != NULL)
            job->dbias[j] = (float)db;
    }
}

gboolean
cpu_layer_norm_backward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                        const float *dy, const float *scale, const float *save_mean,
                        const float *save_invstd, float *dx, float *dscale, float *dbias,
                        GError **error)
{
    CpuPool *pool = ((CpuBackend *)self)->pool;
    LayerNormJob job = {.g = g, .x = x, .dy = dy, .scale = scale, .mean = save_mean,
                        .invstd = save_invstd, .dx = dx, .dscale = dscale, .dbias = dbias};

    cpu_pool_run(pool, (gsize)g->rows, cpu_grain((gsize)g->cols), backward_rows, &job);
    if (dscale != NULL || dbias != NULL)
        cpu_pool_run(pool, (gsize)g->cols, cpu_grain((gsize)g->rows), parameter_columns, &job);
    return TRUE;
}
