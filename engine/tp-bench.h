/* tp-bench.h — measured speed of a model: the latency of inference and of
 * training steps, the time per layer, and the cost of scoring with a
 * criterion against a plain forward and backward pass. */
#ifndef TP_BENCH_H
#define TP_BENCH_H

#include <glib.h>

#include "tp-criterion.h"
#include "tp-loader.h"
#include "tp-model.h"

G_BEGIN_DECLS

/* What one timed run does, on a batch of seeded random images. */
typedef enum {
    TP_BENCH_INFER, /* an eval-mode forward pass, its output downloaded */
    TP_BENCH_TRAIN, /* a training step: train-mode forward, cross-entropy on seeded random
                       labels, backward (tp_model_backward_params), SGD update (lr 1e-3,
                       momentum 0.9), loss downloaded */
} TpBenchTask;

typedef struct {
    int batch;
    int runs;
    double p50_ms, p90_ms; /* per run */
    double images_per_s;   /* batch / p50 */
} TpLatency;

/* Times `runs` runs of `task` at `batch` images, after `warmup` untimed ones
 * (at least 1: they plan memory and fill caches). Every run ends with a
 * download, so asynchronous backends are timed to completion. out_ms, when
 * not NULL, receives the `runs` times in run order. TRAIN updates the
 * model's weights. */
gboolean tp_bench_latency(TpModel *model, TpBenchTask task, int batch, int warmup, int runs,
                          double *out_ms, TpLatency *out_latency, GError **error);

/* The same for two models (say, a base model and its pruned version) in
 * alternation, run for run, so both see the machine in the same state. */
gboolean tp_bench_compare(TpModel *a, TpModel *b, TpBenchTask task, int batch, int warmup,
                          int runs, TpLatency *out_a, TpLatency *out_b, GError **error);

/* Whether a and b (of tp_bench_compare) differ by no more than the spread
 * of their runs: |a.p50 - b.p50| <= the larger p90 - p50. Then neither is
 * measurably faster. */
gboolean tp_latency_within_noise(const TpLatency *a, const TpLatency *b);

/* Scores the units with criterion on the loader's samples (one epoch; the
 * loader's labels must fit the model's outputs), `runs` times after one
 * untimed round, and times an eval-mode forward, cross-entropy and backward
 * pass over the same batches as many times. Writes the medians in ms. */
gboolean tp_bench_score(TpModel *model, TpCriterion *criterion, const TpUnits *units,
                        TpLoader *loader, int runs, double *out_score_ms, double *out_pass_ms,
                        GError **error);

G_END_DECLS

#endif /* TP_BENCH_H */
