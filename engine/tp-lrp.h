/* tp-lrp.h — layer-wise relevance propagation (docs/method.md §2, lrp): a
 * canonized copy of a model (each BatchNormalization folded into the Conv
 * before it), an eval-mode forward that keeps every op's input, and the
 * backward propagation of relevance with the rules below, all through
 * backend kernels.
 *
 * Rules (default composite): Gemm ε (ε = config->epsilon, bias in z); a Conv
 * reading the model input z^B with bounds from the model's normalization;
 * other Convs α1β0 (bias ignored); ReLU, Dropout, Flatten pass relevance
 * through; MaxPool winner-takes-all; AveragePool, GlobalAveragePool and Add
 * ε-proportional; a value read by several ops receives the sum. Rule sets:
 * ZPLUS (z⁺ for every Conv and Gemm), EPSILON (ε everywhere; with ε = 0 this
 * is LRP-0, equal to gradient × input on a bias-free ReLU network),
 * ALPHA2BETA1 (α2β1 for every Conv and Gemm).
 */
#ifndef TP_LRP_H
#define TP_LRP_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

typedef enum {
    TP_LRP_RULES_COMPOSITE, /* ε / α1β0 / z^B: the default */
    TP_LRP_RULES_ZPLUS,
    TP_LRP_RULES_EPSILON,
    TP_LRP_RULES_ALPHA2BETA1,
} TpLrpRules;

typedef enum {
    TP_LRP_START_UNIT,  /* 1 at the true class's logit, 0 elsewhere: the default */
    TP_LRP_START_LOGIT, /* the true class's logit value, 0 elsewhere */
} TpLrpStart;

typedef struct {
    TpLrpRules rules;
    TpLrpStart start;
    double epsilon; /* the ε of ε rules (docs/method.md: 1e-6); 0 gives LRP-0 */
} TpLrpConfig;

typedef struct _TpLrp TpLrp;

/* Prepares relevance propagation for model (borrowed; its weights must not
 * change while the result lives): builds the canonized copy on the same
 * backend. Fails for an op LRP has no rule for. */
TpLrp *tp_lrp_new(TpModel *model, const TpLrpConfig *config, GError **error);
void tp_lrp_free(TpLrp *lrp);

/* Runs the canonized model on a batch (host input, as tp_model_forward()) and
 * propagates relevance from the logits, starting at labels (host, one per
 * sample) as config->start says. */
gboolean tp_lrp_run(TpLrp *lrp, const float *input, int batch, const gint32 *labels,
                    GError **error);

/* The relevance of value `value` of the original model from the last run
 * ([batch, per-sample shape]; a BatchNormalization's output has its conv's
 * relevance). Borrowed; NULL if the value is not on the path to the logits. */
TpTensor *tp_lrp_get_relevance(TpLrp *lrp, int value);

/* The canonized copy (borrowed), for tests: its eval outputs equal the
 * original's within float rounding. */
TpModel *tp_lrp_get_canonized(TpLrp *lrp);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpLrp, tp_lrp_free)

G_END_DECLS

#endif /* TP_LRP_H */
