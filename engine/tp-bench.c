/* tp-bench.c — forward-pass latency: median and 90th percentile over timed
 * runs of the same batch, after warm-up runs that plan memory and fill
 * caches. */
#include "config.h"

#include <stdlib.h>

#include "tp-bench.h"

static int
compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

gboolean
tp_bench_latency(TpModel *model, int batch, int warmup, int runs, TpLatency *out_latency,
                 GError **error)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    gsize n = (gsize)batch * in->dim[0] * in->dim[1] * in->dim[2];
    g_autofree float *input = g_new(float, n);
    g_autofree double *ms = g_new(double, MAX(runs, 1));
    g_autofree float *output = NULL;
    g_autoptr(GRand) rand = g_rand_new_with_seed(1);

    g_return_val_if_fail(model != NULL && batch >= 1 && runs >= 1, FALSE);

    for (gsize i = 0; i < n; i++)
        input[i] = (float)g_rand_double_range(rand, -1, 1);
    for (int r = -MAX(warmup, 1); r < runs; r++) {
        gint64 start = g_get_monotonic_time();
        TpTensor *y;
        if (!tp_model_forward(model, input, batch, TP_MODE_EVAL, error))
            return FALSE;
        y = tp_model_get_value(model, tp_model_get_output(model));
        if (output == NULL)
            output = g_new(float, y->numel);
        if (!tp_tensor_download(y, output, error))
            return FALSE;
        if (r >= 0)
            ms[r] = (g_get_monotonic_time() - start) / 1000.0;
    }
    qsort(ms, (size_t)runs, sizeof(double), compare_doubles);
    out_latency->batch = batch;
    out_latency->runs = runs;
    out_latency->p50_ms = ms[runs / 2];
    out_latency->p90_ms = ms[MIN(runs - 1, (runs * 9) / 10)];
    out_latency->images_per_s = batch / (out_latency->p50_ms / 1000.0);
    return TRUE;
}
