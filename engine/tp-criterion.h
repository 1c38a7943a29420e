/* tp-criterion.h — the criterion interface: a plugin that scores every
 * prunable unit of a model on target-task data (docs/method.md §2), and the
 * context the engine hands it.
 *
 * A criterion never edits the model. It declares what it needs; the engine
 * runs only that: for NEEDS_DATA, eval-mode forward passes over the scoring
 * samples (tp_criterion_context_next()); with NEEDS_GRADIENT also the
 * backward pass of the mean cross-entropy of the target classes; with
 * NEEDS_RELEVANCE also an LRP pass (tp-lrp.h) with the plugin's rules. Scores
 * are written per producer node and unit into the context's double arrays;
 * the engine sums the producers of a coupled space, normalizes per space
 * and ranks globally.
 *
 * Rules of the calls, per scoring round (one pruning step):
 *  1. open() once per pipeline with the plugin's parsed parameters.
 *  2. score() once per step, with a fresh context; it may loop over
 *     tp_criterion_context_next() until it returns FALSE.
 *  3. close() at the end.
 *
 * Members are only ever appended (tp-plugin.h).
 */
#ifndef TP_CRITERION_H
#define TP_CRITERION_H

#include <glib.h>

#include "tp-loader.h"
#include "tp-lrp.h"
#include "tp-model.h"
#include "tp-params.h"
#include "tp-plugin.h"
#include "tp-prune.h"

G_BEGIN_DECLS

#define TP_CRITERION_ERROR (tp_criterion_error_quark())
GQuark tp_criterion_error_quark(void);

typedef enum {
    TP_CRITERION_ERROR_FAILED,
} TpCriterionError;

typedef enum {
    TP_CRITERION_NEEDS_WEIGHTS = 0,        /* the weights alone */
    TP_CRITERION_NEEDS_DATA = 1 << 0,      /* forward passes over the scoring samples */
    TP_CRITERION_NEEDS_GRADIENT = 1 << 1,  /* and the loss's backward pass (implies DATA) */
    TP_CRITERION_NEEDS_RELEVANCE = 1 << 2, /* and an LRP pass (implies DATA) */
} TpCriterionNeeds;

typedef enum {
    TP_NORMALIZE_NONE,
    TP_NORMALIZE_L1, /* divide by the space's sum of scores */
    TP_NORMALIZE_L2, /* divide by the space's Euclidean norm */
} TpNormalization;

/* How a criterion's scores aggregate over the scoring samples; with data
 * parallelism each rank scores its share and the engine combines the
 * shares accordingly (docs/scaling.md). */
typedef enum {
    TP_SCORES_MEAN = 0, /* the mean over the samples: shares weighted by their sample counts */
    TP_SCORES_SUM = 1,  /* the sum over the samples: shares added */
} TpScoreAggregate;

typedef struct _TpCriterionContext TpCriterionContext;

typedef struct {
    gpointer (*open)(const TpParams *params, GError **error);
    void (*close)(gpointer self);
    /* What score() needs, given the parameters open() saw. */
    TpCriterionNeeds (*needs)(gpointer self);
    /* The per-space normalization docs/method.md §2 names for this criterion. */
    TpNormalization (*normalization)(gpointer self);
    /* (optional) For NEEDS_RELEVANCE: the LRP settings (rules, start).
     * Default: composite rules, start at the true class, ε = 1e-6. */
    void (*lrp_config)(gpointer self, TpLrpConfig *out_config);
    /* Fills the scores (tp_criterion_context_get_scores()): finite, >= 0. */
    gboolean (*score)(gpointer self, TpCriterionContext *context, GError **error);
    /* (optional) How score() aggregates over samples. NULL: TP_SCORES_MEAN. */
    TpScoreAggregate (*aggregate)(gpointer self);
} TpCriterionVTable;

/* ---------------------------------------------------------------- for plugins */

TpModel *tp_criterion_context_get_model(TpCriterionContext *context);
const TpUnits *tp_criterion_context_get_units(TpCriterionContext *context);

/* The score array of producer `node` (its n_units doubles, zeroed at the
 * start of the round), or NULL if node produces no prunable space. */
double *tp_criterion_context_get_scores(TpCriterionContext *context, guint node);

/* A seed for this round (the pipeline seed and the step): random draws. */
guint64 tp_criterion_context_get_seed(TpCriterionContext *context);

/* Runs the next batch of scoring samples: an eval forward, then what the
 * plugin needs (gradient, relevance). Afterwards the tape holds the batch's
 * values (tp_model_get_value()) and gradients (tp_model_get_grad()).
 * Returns FALSE with no error when every sample has been seen. */
gboolean tp_criterion_context_next(TpCriterionContext *context, GError **error);

/* The batch size of the last tp_criterion_context_next(). */
int tp_criterion_context_get_batch(TpCriterionContext *context);

/* With NEEDS_RELEVANCE, after tp_criterion_context_next(): the relevance of
 * value `value` of the model (the shape of its value tensor). Borrowed. */
TpTensor *tp_criterion_context_get_relevance(TpCriterionContext *context, int value,
                                             GError **error);

/* ---------------------------------------------------------------- for the engine */

/* An open criterion plugin. */
typedef struct {
    const TpPluginInfo *info;
    TpCriterionVTable vt;
    gpointer self;
} TpCriterion;

gboolean tp_criterion_vtable_check(const TpPluginInfo *info, GError **error);
TpCriterion *tp_criterion_new(const TpPluginInfo *info, const TpParams *params, GError **error);
void tp_criterion_free(TpCriterion *criterion);

/* Scores every prunable unit of model on the samples of loader (NULL for a
 * criterion that needs no data): per producer node, n_units doubles.
 * Returns a new context holding the scores (read them with
 * tp_criterion_context_get_scores(); free with
 * tp_criterion_context_free()). seed: see tp_criterion_context_get_seed(). */
TpCriterionContext *tp_criterion_score(TpCriterion *criterion, TpModel *model,
                                       const TpUnits *units, TpLoader *loader, guint64 seed,
                                       GError **error);
void tp_criterion_context_free(TpCriterionContext *context);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpCriterion, tp_criterion_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpCriterionContext, tp_criterion_context_free)

G_END_DECLS

#endif /* TP_CRITERION_H */
