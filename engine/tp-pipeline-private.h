/* tp-pipeline-private.h — INTERNAL (not installed): the pipeline's state,
 * shared by the files it is split into: tp-pipeline-config.c (its keys,
 * read and checked into a TpPipeline), tp-pipeline.c (the loop),
 * tp-pipeline-checkpoint.c (the checkpoint folder and the checks before any
 * work) and tp-report.c (the JSON and CSV reports and the plot). Symbols here
 * are G_GNUC_INTERNAL. */
#ifndef TP_PIPELINE_PRIVATE_H
#define TP_PIPELINE_PRIVATE_H

#include <glib.h>

#include "tp-backend.h"
#include "tp-criterion.h"
#include "tp-dataset.h"
#include "tp-loader.h"
#include "tp-model.h"
#include "tp-params.h"
#include "tp-pipeline.h"
#include "tp-registry.h"
#include "tp-train.h"

G_BEGIN_DECLS

struct _TpPipeline {
    GKeyFile *keyfile;
    char *source;
    TpRegistry *registry; /* with [pipeline] plugin-path; NULL: the default registry */
    TpParams *model, *task, *prune, *finetune, *output;
    char *criterion_name;
    TpParams *criterion_params;
    int samples_per_class; /* 0: all */
    char *task_name;
    char *model_path, *report_path, *csv_path, *plot_path, *checkpoint;
    char *html_path;    /* the report's page, beside it */
    GKeyFile *settings; /* (tp-settings.h) what a checkpoint must have been made with */
    char *stop_reason;
    GArray *rows;
    GPtrArray *channels; /* per row: a GArray of int, the channels of each unit space */
    TpPipelineResult result;
};

/* The state of one tp_pipeline_run(). */
typedef struct {
    TpPipeline *p;
    TpBackend *backend;
    TpDataset *train, *test;
    TpModel *base;     /* the N-class model */
    TpModel *model;    /* current */
    TpModel *accepted; /* the last model within tolerance */
    int *classes;      /* dataset class of each target output */
    int n_classes;
    int *head; /* the base model's output of each target class */
    TpCount base_count;
    gsize original_units;
    TpLoader *fit, *val, *scoring;
    TpCriterion *criterion;
    TpPipelineProgressFunc progress;
    gpointer progress_data;
    GTimer *clock;
    TpEvaluation *base_test, *result_test; /* the test split: head surgery only, the result */
} TpPipelineRun;

/* Sets a TP_PIPELINE_ERROR_CONFIG error "SOURCE: [GROUP] KEY: message";
 * returns FALSE. */
G_GNUC_INTERNAL gboolean tp_pipeline_config_error(GError **error, const char *source,
                                                  const char *group, const char *key,
                                                  const char *format, ...) G_GNUC_PRINTF(5, 6);

/* The registry the pipeline's plugins come from (borrowed). */
G_GNUC_INTERNAL TpRegistry *tp_pipeline_get_registry(const TpPipeline *p);

/* Writes r->model as step STEP, and state.ini with the rows so far and the
 * settings, into the checkpoint folder (rank 0 only; other ranks return
 * TRUE). */
G_GNUC_INTERNAL gboolean tp_pipeline_save_checkpoint(TpPipelineRun *r, guint step, GError **error);

/* Replaces r->model with the checkpoint's model and the pipeline's rows with
 * its rows; *out_step is its step. */
G_GNUC_INTERNAL gboolean tp_pipeline_load_checkpoint(TpPipelineRun *r, guint *out_step,
                                                     GError **error);

/* Before any work: every output can be written and none is the base model;
 * with resume, the checkpoint exists and was made with these settings. */
G_GNUC_INTERNAL gboolean tp_pipeline_check_before_work(TpPipeline *p, gboolean resume,
                                                       GError **error);

/* Opens what a run needs (backend, datasets, base model, classes, head,
 * criterion, loaders) and cuts the head: r->model is the specialized model
 * of step 0 and r->original_units its units. r->p must be set; undo with
 * tp_pipeline_run_clear(). */
G_GNUC_INTERNAL gboolean tp_pipeline_run_start(TpPipelineRun *r, GError **error);
G_GNUC_INTERNAL void tp_pipeline_run_clear(TpPipelineRun *r);

/* Scores the units of r->model (the seed of round `step`), sums each space's
 * producers, normalizes per space and ranks globally; *out_keep (new, one
 * gboolean mask per space) keeps all but the lowest round(step × original
 * units), no space below min-units. With out_scores: *out_scores (new, one
 * double array per space) holds the scores as ranked; with out_score_s, the
 * scoring's seconds. Returns the number of units cut (0: nothing more can be
 * cut), or -1 with error set. */
G_GNUC_INTERNAL gssize tp_pipeline_rank(TpPipelineRun *r, const TpUnits *units, guint step,
                                        double *out_score_s, GPtrArray **out_scores,
                                        GPtrArray **out_keep, GError **error);

/* Fills row's units, params, MACs and the fractions removed from the base
 * model's, and records the row's channels per unit space in r->p->channels
 * (the caller appends the row next). */
G_GNUC_INTERNAL void tp_pipeline_fill_counts(TpPipelineRun *r, TpModel *model, const TpUnits *units,
                                             TpPipelineRow *row);

/* The fraction of [prune] goal-metric that row has removed. */
G_GNUC_INTERNAL double tp_pipeline_removed(TpPipelineRun *r, const TpPipelineRow *row);

/* Writes the JSON and CSV reports and the plot of a finished run (rank 0). */
G_GNUC_INTERNAL gboolean tp_pipeline_write_reports(TpPipelineRun *r, GError **error);

G_END_DECLS

#endif /* TP_PIPELINE_PRIVATE_H */
