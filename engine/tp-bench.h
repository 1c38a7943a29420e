/* tp-bench.h — measured latency of a model's forward pass. */
#ifndef TP_BENCH_H
#define TP_BENCH_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

typedef struct {
    int batch;
    int runs;
    double p50_ms, p90_ms; /* per forward pass */
    double images_per_s;   /* batch / p50 */
} TpLatency;

/* Times `runs` eval-mode forward passes of `batch` random images (after
 * `warmup` untimed ones, at least 1), downloading the output each time so
 * asynchronous backends are timed to completion. */
gboolean tp_bench_latency(TpModel *model, int batch, int warmup, int runs, TpLatency *out_latency,
                          GError **error);

G_END_DECLS

#endif /* TP_BENCH_H */
