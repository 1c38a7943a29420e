/* tp-prune.h — what can be pruned in a model, and the surgery that removes it.
 *
 * Channel spaces. Every value of the graph indexes its channels (feature
 * maps) or features (after Flatten, per channel block) in some *space*: a
 * Conv or Gemm defines a new space for its output (it is a *producer* of
 * it); BatchNormalization, Relu, pooling, Dropout, Softmax and a depthwise
 * Conv (1 < groups = in channels = out channels) keep their input's space;
 * Add joins its two inputs' spaces into one (union-find), so a residual
 * stream is one space written by several producers (the stem, every block's
 * last conv, projection shortcuts). Flatten of a [C, H, W] value keeps the
 * space with H·W features per channel.
 *
 * A space is *prunable* when it is written only by Convs or only by hidden
 * Gemms (a Gemm is hidden when its output's space is not the model output's)
 * — Gemm neurons only when `prune_linear` — and it is neither the model
 * input's space nor the space of the model's output (the head's). Refused
 * as well, so never prunable: a space that mixes Conv and Gemm producers; a
 * space a grouped Conv (1 < groups, not depthwise) reads or writes (a cut
 * would unbalance its groups); a space a Softmax reads (it couples every
 * feature); an Add of values whose channel counts differ (two Flattens with
 * different H·W blocks). Its channels are its *units*; unit u of a space is
 * removed as one group, from every producer (its output row, bias, following
 * BatchNorm entries, a depthwise conv's filter) and every consumer (a Conv's
 * input slice W[:, u], a Gemm's input columns u·H·W … (u+1)·H·W − 1 after
 * Flatten, column u after GlobalAveragePool and Flatten). docs/method.md §3 has
 * the rules.
 */
#ifndef TP_PRUNE_H
#define TP_PRUNE_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

#define TP_PRUNE_ERROR (tp_prune_error_quark())
GQuark tp_prune_error_quark(void);

typedef enum {
    TP_PRUNE_ERROR_INVALID, /* a mask or class list that does not fit the model */
} TpPruneError;

/* One prunable space ("layer" in docs/method.md's sense). */
typedef struct {
    const char *name;       /* the first producer's node name */
    int n_units;            /* channels (Conv) or neurons (Gemm) now */
    guint n_producers;      /* Conv / Gemm nodes writing these channels */
    const guint *producers; /* their node indices, in graph order */
    gboolean linear;        /* produced by Gemms (neurons), else by Convs */
} TpUnitSpace;

typedef struct _TpUnits TpUnits;

/* Analyzes model (read-only; it must not change while the result lives).
 * prune_linear: whether hidden Gemm neurons are prunable. Fails
 * (TP_PRUNE_ERROR_INVALID) only for an op without a channel rule. */
TpUnits *tp_units_new(const TpModel *model, gboolean prune_linear, GError **error);
void tp_units_free(TpUnits *units);

/* The prunable spaces, in the order of their first producer. */
guint tp_units_get_n_spaces(const TpUnits *units);
const TpUnitSpace *tp_units_get_space(const TpUnits *units, guint space);

/* Total units over all spaces (each coupled group counted once). */
gsize tp_units_get_total(const TpUnits *units);

/* The prunable space node `node` produces, or -1 if it produces none (not a
 * Conv or Gemm, a depthwise Conv, or a space that is not prunable). */
int tp_units_get_space_of(const TpUnits *units, guint node);

/* The value that stands for the outputs of producer `node`'s units for
 * criteria: its output followed through a BatchNormalization that alone
 * reads it, then through a Relu that alone reads the result ("after the
 * nonlinearity"); each step is taken only where it applies (a residual
 * block's last conv stops at its BatchNorm, which the Add reads). -1 if node
 * is not a Conv or Gemm. */
int tp_units_get_unit_value(const TpUnits *units, guint node);

/* The BatchNormalization node that alone reads producer `node`'s output, or
 * -1 (magnitude folds it into the weights). -1 too if node is not a Conv or
 * Gemm. */
int tp_units_get_batch_norm(const TpUnits *units, guint node);

/* A new model on the same backend with, for every space s, the units u
 * where keep[s][u] is FALSE physically removed (keep[s] holds the space's
 * n_units flags; keep or keep[s] NULL removes nothing there), and — when
 * classes is not NULL — the output cut to the n_classes outputs listed (in
 * that order: head surgery), from every producer of the output's space (the
 * final Gemm's rows and biases). Node names, attributes (channel and feature
 * counts, a depthwise conv's groups adjusted), parameters, class names
 * (subset with the head), class indices (with the head: each kept output's
 * index in the model's origin, tp_model_get_class_indices()) and
 * normalization are carried over. The result computes exactly what the
 * original computes with the removed channels' slices zeroed at every
 * consumer (at the listed outputs with head surgery, where a final Softmax
 * normalizes over the kept outputs only). units must be tp_units_new() of
 * model. Fails (TP_PRUNE_ERROR_INVALID, the model untouched) if a space would
 * keep no unit (the message names the space), a class is out of range or
 * listed twice, n_classes < 1, or the output's space cannot be cut: it must
 * be written by Convs or Gemms and read by none, hold one output per
 * channel, and touch no grouped Conv. */
TpModel *tp_prune_apply(const TpModel *model, const TpUnits *units, const gboolean *const *keep,
                        const int *classes, int n_classes, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpUnits, tp_units_free)

G_END_DECLS

#endif /* TP_PRUNE_H */
