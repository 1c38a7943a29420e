/* tp-onnx-fold.h — constant folding of shape arithmetic at ONNX import.
 *
 * PyTorch exports `x.view(x.size(0), -1)`, `chunk` and the like as small
 * graphs of Shape, Gather, Unsqueeze, Concat, arithmetic and Slice on
 * constants. A node of such a type whose inputs are all constants (Shape:
 * whose input is an activation or a constant) becomes a constant here. The
 * batch size is not known at import: Shape's element 0 of an activation is
 * TP_ONNX_BATCH, which Gather, Unsqueeze, Squeeze, Concat, Slice and Cast to
 * int64 carry, Reshape reads as 0 ("copy that dimension"), and every other
 * fold refuses with a message naming the node.
 */
#ifndef TP_ONNX_FOLD_H
#define TP_ONNX_FOLD_H

#include <glib.h>

#include "onnx.pb-c.h"
#include "tp-op.h"

G_BEGIN_DECLS

/* The unknown batch size in a folded int64 constant. */
#define TP_ONNX_BATCH G_MININT64

/* What a fold reads: the node, the opset, its inputs as constants (NULL: an
 * absent optional input) and, for Shape of an activation, that activation's
 * per-sample shape. */
typedef struct {
    const Onnx__NodeProto *node;
    gint64 opset;
    const TpOnnxConst *const *in;
    gsize n_in;
    const TpShape *activation; /* Shape's input when it is an activation, else NULL */
} TpOnnxFold;

/* Computes the node's output; NULL with error naming the node when it
 * cannot. */
typedef TpOnnxConst *(*TpOnnxFoldFunc)(const TpOnnxFold *f, GError **error);

/* The fold of op_type, or NULL when taskprune folds no such op. */
G_GNUC_INTERNAL TpOnnxFoldFunc tp_onnx_fold_lookup(const char *op_type);

/* Frees a constant a fold (or the importer) made. */
G_GNUC_INTERNAL void tp_onnx_const_free(gpointer c);

G_END_DECLS

#endif /* TP_ONNX_FOLD_H */
