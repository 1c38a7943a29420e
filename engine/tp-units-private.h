/* tp-units-private.h — INTERNAL (not installed): the analysis behind a
 * TpUnits, shared by tp-units.c, which builds it, and tp-prune.c, whose
 * surgery slices every value by it. Symbols here are G_GNUC_INTERNAL. */
#ifndef TP_UNITS_PRIVATE_H
#define TP_UNITS_PRIVATE_H

#include <glib.h>

#include "tp-model.h"
#include "tp-op.h"
#include "tp-prune.h"

G_BEGIN_DECLS

struct _TpUnits {
    const TpModel *model; /* borrowed, unchanged while this lives */
    guint n_values;
    GArray *spaces; /* TpUnitSpace; each owns its producers array */
    gsize total;    /* sum of the spaces' n_units */

    /* Per value. */
    int *root;       /* representative value of its channel space (union-find root) */
    int *block;      /* entries of its first dimension per channel (H·W after Flatten) */
    int *n_readers;  /* node inputs that read it */
    int *reader;     /* the last node reading it, or -1 */
    int *root_space; /* indexed by a root: its prunable space, or -1 */

    /* Per node. */
    int *space_of_node; /* prunable space a producer writes, or -1 */
    int *unit_value;    /* tp_units_get_unit_value() */
    int *batch_norm;    /* tp_units_get_batch_norm() */

    /* The output's space, which head surgery cuts, and whether it can be
     * (tp-units.c says when). */
    int head_root;
    gboolean head_sliceable;
};

/* The channel rule of node: its op class's (tp-op.h), for its input's shape. */
G_GNUC_INTERNAL void tp_units_rule(const TpModel *model, const TpNode *node,
                                   TpChannelRule *out_rule);

G_END_DECLS

#endif /* TP_UNITS_PRIVATE_H */
