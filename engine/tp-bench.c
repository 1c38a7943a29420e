/* tp-bench.c — measured speed: medians and 90th percentiles over timed runs
 * of the same batch, after warm-up runs that plan memory and fill caches. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tp-bench.h"
#include "tp-sgd.h"

static int
compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0 <= q <= 1, nearest rank) of n > 0 times; sorts them. */
static double
quantile(double *ms, int n, double q)
{
    qsort(ms, (size_t)n, sizeof(double), compare_doubles);
    return ms[MIN(n - 1, (int)(q * n))];
}

/* What timed runs of one model need: seeded random images and labels, an
 * optimizer for TRAIN, a host buffer for the output of INFER. */
typedef struct {
    TpModel *model;
    TpBenchTask task;
    int batch;
    float *images;
    gint32 *labels;
    TpSgd *sgd;
    float *output;
} Runner;

static gboolean
runner_init(Runner *r, TpModel *model, TpBenchTask task, int batch, GError **error)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    const TpShape *out = tp_model_get_shape(model, tp_model_get_logits(model));
    gsize n = (gsize)batch * in->dim[0] * in->dim[1] * in->dim[2];
    g_autoptr(GRand) rand = g_rand_new_with_seed(1);
    const TpSgdHyper hyper = {.lr = 1e-3f, .momentum = 0.9f};

    *r = (Runner){.model = model, .task = task, .batch = batch};
    r->images = g_new(float, n);
    r->labels = g_new(gint32, batch);
    for (gsize i = 0; i < n; i++)
        r->images[i] = (float)g_rand_double_range(rand, -1, 1);
    for (int i = 0; i < batch; i++)
        r->labels[i] = g_rand_int_range(rand, 0, out->dim[0]);
    return task != TP_BENCH_TRAIN || (r->sgd = tp_sgd_new(model, &hyper, error)) != NULL;
}

static void
runner_clear(Runner *r)
{
    g_free(r->images);
    g_free(r->labels);
    g_free(r->output);
    g_clear_pointer(&r->sgd, tp_sgd_free);
}

/* One run, timed into *out_ms. INFER downloads the output; TRAIN (forward,
 * loss, backward, update) brings the loss to the host. Either way every
 * kernel of the run has finished. */
static gboolean
runner_step(Runner *r, double *out_ms, GError **error)
{
    gint64 start = g_get_monotonic_time();
    TpModel *model = r->model;
    double loss;

    if (r->task == TP_BENCH_TRAIN) {
        if (!tp_model_forward(model, r->images, r->batch, TP_MODE_TRAIN, error) ||
            !tp_model_loss(model, r->labels, 0.0f, &loss, error) ||
            !tp_model_backward_params(model, tp_model_get_logits(model), error) ||
            !tp_sgd_step(r->sgd, error))
            return FALSE;
    } else {
        TpTensor *y;
        if (!tp_model_forward(model, r->images, r->batch, TP_MODE_INFER, error))
            return FALSE;
        y = tp_model_get_value(model, tp_model_get_output(model));
        if (r->output == NULL)
            r->output = g_new(float, y->numel);
        if (!tp_tensor_download(y, r->output, error))
            return FALSE;
    }
    *out_ms = (g_get_monotonic_time() - start) / 1000.0;
    return TRUE;
}

static void
latency_from(double *ms, int batch, int runs, TpLatency *out_latency)
{
    out_latency->batch = batch;
    out_latency->runs = runs;
    out_latency->p90_ms = quantile(ms, runs, 0.9);
    out_latency->p50_ms = quantile(ms, runs, 0.5);
    out_latency->images_per_s = batch / (out_latency->p50_ms / 1000.0);
}

gboolean
tp_bench_latency(TpModel *model, TpBenchTask task, int batch, int warmup, int runs,
                 double *out_ms, TpLatency *out_latency, GError **error)
{
    g_autofree double *ms = g_new(double, MAX(runs, 1));
    Runner r;
    gboolean ok;
    double untimed;

    g_return_val_if_fail(model != NULL && batch >= 1 && runs >= 1, FALSE);
    g_return_val_if_fail(task == TP_BENCH_INFER || task == TP_BENCH_TRAIN, FALSE);

    ok = runner_init(&r, model, task, batch, error);
    for (int i = -MAX(warmup, 1); ok && i < runs; i++)
        ok = runner_step(&r, i >= 0 ? &ms[i] : &untimed, error);
    runner_clear(&r);
    if (!ok)
        return FALSE;
    if (out_ms != NULL)
        memcpy(out_ms, ms, (gsize)runs * sizeof(double));
    latency_from(ms, batch, runs, out_latency);
    return TRUE;
}

gboolean
tp_bench_compare(TpModel *a, TpModel *b, TpBenchTask task, int batch, int warmup, int runs,
                 TpLatency *out_a, TpLatency *out_b, GError **error)
{
    g_autofree double *ms = g_new(double, 2 * (gsize)MAX(runs, 1));
    Runner r[2];
    gboolean ok;
    double untimed;

    g_return_val_if_fail(a != NULL && b != NULL && batch >= 1 && runs >= 1, FALSE);
    g_return_val_if_fail(task == TP_BENCH_INFER || task == TP_BENCH_TRAIN, FALSE);

    ok = runner_init(&r[0], a, task, batch, error) && runner_init(&r[1], b, task, batch, error);
    for (int i = -MAX(warmup, 1); ok && i < runs; i++)
        for (int m = 0; ok && m < 2; m++)
            ok = runner_step(&r[m], i >= 0 ? &ms[m * runs + i] : &untimed, error);
    runner_clear(&r[0]);
    runner_clear(&r[1]);
    if (!ok)
        return FALSE;
    latency_from(ms, batch, runs, out_a);
    latency_from(ms + runs, batch, runs, out_b);
    return TRUE;
}

/* One forward, loss and backward pass over every batch of the loader. */
gboolean
tp_latency_within_noise(const TpLatency *a, const TpLatency *b)
{
    double spread = MAX(a->p90_ms - a->p50_ms, b->p90_ms - b->p50_ms);

    return fabs(a->p50_ms - b->p50_ms) <= spread;
}

static gboolean
forward_backward_epoch(TpModel *model, TpLoader *loader, GError **error)
{
    GError *local = NULL;
    const float *images;
    const gint32 *labels;
    int batch;
    double loss;

    tp_loader_start_epoch(loader, 0);
    while (tp_loader_next(loader, &images, &labels, &batch, &local)) {
        if (!tp_model_forward(model, images, batch, TP_MODE_EVAL, error) ||
            !tp_model_loss(model, labels, 0.0f, &loss, error) ||
            !tp_model_backward(model, tp_model_get_logits(model), error))
            return FALSE;
    }
    if (local != NULL) { /* a read error, not the end of the epoch */
        g_propagate_error(error, local);
        return FALSE;
    }
    return TRUE;
}

gboolean
tp_bench_score(TpModel *model, TpCriterion *criterion, const TpUnits *units, TpLoader *loader,
               int runs, double *out_score_ms, double *out_pass_ms, GError **error)
{
    g_autofree double *score_ms = g_new(double, MAX(runs, 1));
    g_autofree double *pass_ms = g_new(double, MAX(runs, 1));

    g_return_val_if_fail(model != NULL && criterion != NULL && units != NULL, FALSE);
    g_return_val_if_fail(loader != NULL && runs >= 1, FALSE);

    for (int r = -1; r < runs; r++) {
        gint64 start = g_get_monotonic_time();
        TpCriterionContext *context = tp_criterion_score(criterion, model, units, loader, 0, error);

        if (context == NULL)
            return FALSE;
        tp_criterion_context_free(context);
        if (r >= 0)
            score_ms[r] = (g_get_monotonic_time() - start) / 1000.0;

        start = g_get_monotonic_time();
        if (!forward_backward_epoch(model, loader, error))
            return FALSE;
        if (r >= 0)
            pass_ms[r] = (g_get_monotonic_time() - start) / 1000.0;
    }
    *out_score_ms = quantile(score_ms, runs, 0.5);
    *out_pass_ms = quantile(pass_ms, runs, 0.5);
    return TRUE;
}
