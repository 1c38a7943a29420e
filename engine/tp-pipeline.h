/* tp-pipeline.h — the specialization loop of docs/method.md §1, configured by a
 * GLib keyfile: load the base model, cut its head to the target classes,
 * record the specialized baseline, then score → rank → cut → fine-tune →
 * evaluate → checkpoint until the goal is met or accuracy leaves its
 * tolerance (then roll back), and write the pruned model, a JSON and CSV
 * report, a plot and batch-1 latencies.
 *
 * Groups and keys are documented in docs/pipeline-keys.md; every key is
 * checked (type, range, choices) and unknown groups or keys are errors naming
 * the file, the group, the key and what is valid.
 */
#ifndef TP_PIPELINE_H
#define TP_PIPELINE_H

#include <glib.h>

#include "tp-params.h"

G_BEGIN_DECLS

#define TP_PIPELINE_ERROR (tp_pipeline_error_quark())
GQuark tp_pipeline_error_quark(void);

typedef enum {
    TP_PIPELINE_ERROR_CONFIG,     /* an unknown, missing or impossible setting */
    TP_PIPELINE_ERROR_CHECKPOINT, /* a checkpoint that cannot be written or resumed */
    TP_PIPELINE_ERROR_FAILED,     /* the run failed (the message says where) */
    TP_PIPELINE_ERROR_INTERRUPTED, /* tp_pipeline_interrupt(): stopped at a checkpoint */
} TpPipelineError;

/* One row of the report: the state after a pruning step (step 0: the
 * specialized baseline, before any pruning). */
typedef struct {
    guint step;
    gsize units;           /* prunable units left */
    guint64 params, macs;  /* left */
    double params_removed; /* fraction of the base model's */
    double macs_removed;
    double accuracy;       /* validation accuracy of the target task */
    double loss;
    double score_s, prune_s, finetune_s, eval_s; /* time per phase */
    gboolean accepted;     /* within tolerance */
} TpPipelineRow;

/* Where a run stands, for progress reports. */
typedef struct {
    guint step;
    guint steps_expected;  /* an estimate from the goal and the step size */
    const char *phase;     /* "score", "fine-tune", "evaluate", ... */
    double params_left;    /* fraction of the base model's */
    double accuracy;       /* last validation accuracy */
    double eta_s;          /* < 0 while unknown */
} TpPipelineProgress;

typedef void (*TpPipelineProgressFunc)(const TpPipelineProgress *progress, gpointer data);

typedef struct _TpPipeline TpPipeline;

/* The keys of a pipeline group the engine reads ("pipeline", "model",
 * "task", "prune", "finetune", "output"), or NULL for another group. [dataset], [criterion]
 * and [backend] take their plugin's keys (plus `plugin`, and [criterion]
 * `samples`). */
const TpParamSpec *tp_pipeline_get_param_specs(const char *group);

/* Reads and checks a pipeline (the keyfile is copied). source names the
 * keyfile in messages. */
TpPipeline *tp_pipeline_new(GKeyFile *keyfile, const char *source, GError **error);
void tp_pipeline_free(TpPipeline *pipeline);

/* As tp_pipeline_new(), for tp_pipeline_plan() alone: [output] may name no
 * model (nothing is written); tp_pipeline_run() takes no such pipeline. */
TpPipeline *tp_pipeline_new_dry_run(GKeyFile *keyfile, const char *source, GError **error);

/* Runs the pipeline; with resume, continues from its checkpoint folder.
 * Writes the outputs [output] names. The rows stay readable afterwards. */
gboolean tp_pipeline_run(TpPipeline *pipeline, gboolean resume, TpPipelineProgressFunc progress,
                         gpointer data, GError **error);

/* Asks every run of this process to stop: at the next check (within a
 * fine-tuning batch, or between phases) the run drops the step in progress
 * and fails with TP_PIPELINE_ERROR_INTERRUPTED; its checkpoint holds the
 * last accepted step, for --resume. Async-signal-safe (for a SIGINT
 * handler); it cannot be undone. */
void tp_pipeline_interrupt(void);

/* After a run: the report rows (borrowed) and the result's figures. */
const GArray *tp_pipeline_get_rows(const TpPipeline *pipeline); /* TpPipelineRow */

typedef struct {
    guint step;                       /* the step the result was taken after */
    int base_classes, classes;        /* outputs of the base model and of the result */
    double baseline_accuracy;         /* specialized, validation */
    double base_accuracy;             /* N-class model on the same images, validation */
    double test_accuracy;             /* of the result, test split */
    guint64 base_params, base_macs;   /* the N-class model */
    guint64 params, macs;             /* the result */
    gsize base_bytes, bytes;          /* ONNX file sizes */
    double base_latency_ms, latency_ms; /* batch-1 p50 on the pipeline's backend */
    gboolean latency_within_noise;    /* the difference is within the runs' spread */
    double accuracy;                  /* of the result, validation (its step's row) */
    const char *stop_reason;          /* why the loop stopped, one sentence */
    const char *model_path, *report_path, *csv_path, *plot_path;
    double base_test_accuracy;        /* the specialized baseline (step 0), test split */
    double tolerance;                 /* [prune] tolerance, accuracy points */
    const char *html_path;            /* the report's page */
} TpPipelineResult;

const TpPipelineResult *tp_pipeline_get_result(const TpPipeline *pipeline);

/* The names, for reports and sweeps (borrowed). */
const char *tp_pipeline_get_criterion_name(const TpPipeline *pipeline);
const char *tp_pipeline_get_task_name(const TpPipeline *pipeline);

/* ---------------------------------------------------------------- dry run */

/* One space of prunable units (a layer, with the layers coupled to it) in a
 * step of a dry run. */
typedef struct {
    char *layer;    /* its first producer node's name */
    int n_units;    /* before the step */
    double *scores; /* n_units: as the step ranks them (summed over the
                     * space's producers, normalized per space) */
    int n_cut;
    int *cut; /* the units the step removes, ascending */
} TpPipelinePlanSpace;

/* One step of a dry run; step 0 is the specialized model (no spaces). */
typedef struct {
    guint step;
    guint n_spaces;
    TpPipelinePlanSpace *spaces;
    gsize units;                         /* prunable units left after the step */
    guint64 params, macs;                /* left after the step */
    double params_removed, macs_removed; /* fractions of the base model's */
} TpPipelinePlanStep;

typedef struct _TpPipelinePlan TpPipelinePlan;

/* A dry run: cuts the head, then scores, ranks and cuts as tp_pipeline_run()
 * does, without fine-tuning (warm-up included) or evaluation, until the goal
 * is met, nothing more can be cut, or max_steps steps (at most [prune]
 * max-steps) are done. Writes nothing. */
TpPipelinePlan *tp_pipeline_plan(TpPipeline *pipeline, guint max_steps, GError **error);
void tp_pipeline_plan_free(TpPipelinePlan *plan);

/* Step 0 (the specialized model) and the steps after it, borrowed. */
guint tp_pipeline_plan_get_n_steps(const TpPipelinePlan *plan);
const TpPipelinePlanStep *tp_pipeline_plan_get_step(const TpPipelinePlan *plan, guint step);
/* Why the dry run stopped, one sentence (borrowed). */
const char *tp_pipeline_plan_get_stop_reason(const TpPipelinePlan *plan);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpPipeline, tp_pipeline_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpPipelinePlan, tp_pipeline_plan_free)

G_END_DECLS

#endif /* TP_PIPELINE_H */
