/* tp-onnx.h — models in and out as ONNX.
 *
 * Import takes the forms PyTorch's exporter produces for VGG-, ResNet-,
 * DenseNet-, GoogLeNet-, SqueezeNet- and ShuffleNet-style classifiers,
 * opsets 6 to 17: Conv, BatchNormalization (inference form), Relu, MaxPool,
 * AveragePool, GlobalAveragePool, Flatten, Reshape with a constant shape (to
 * [batch, features], [batch, C, H, W], or a channel shuffle with the
 * Transpose after it), Gemm, MatMul followed by Add as a linear layer, Add,
 * Dropout, Identity, Concat, Split, Slice, Transpose and Gather (constant
 * indices) on activations, and a final Softmax.
 * Weights come from initializers (raw_data or float_data) or Constant nodes,
 * also through Identity nodes (PyTorch shares equal initializers that way);
 * external data only from files inside the model's folder. A graph with op
 * types taskprune does not import is refused with one message listing each
 * type, its node count and first node; anything else is refused with a
 * message naming the node and the op.
 *
 * Export writes opset 13 with the graph as the engine holds it and weights
 * as raw_data; it imports back to a model with bit-identical outputs. Class
 * names, a specialized model's original class indices and input
 * normalization travel in metadata_props ("taskprune.classes",
 * "taskprune.class_indices", "taskprune.mean", "taskprune.std").
 */
#ifndef TP_ONNX_H
#define TP_ONNX_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

#define TP_ONNX_ERROR (tp_onnx_error_quark())
GQuark tp_onnx_error_quark(void);

typedef enum {
    TP_ONNX_ERROR_IO,          /* the file cannot be read or written */
    TP_ONNX_ERROR_PARSE,       /* not a valid ONNX protobuf (truncated, corrupt) */
    TP_ONNX_ERROR_UNSUPPORTED, /* an op, attribute or form taskprune does not run */
    TP_ONNX_ERROR_INVALID,     /* inconsistent: shapes, missing tensors, bad data */
} TpOnnxError;

/* Loads path into a new model on backend. Errors start with the path. */
TpModel *tp_onnx_load(TpBackend *backend, const char *path, GError **error);

/* The same from memory. source names the data in messages; dir is the folder
 * external data may come from (NULL: none allowed). */
TpModel *tp_onnx_load_data(TpBackend *backend, const guint8 *data, gsize length, const char *source,
                           const char *dir, GError **error);

/* Writes model to path atomically (a temporary file renamed into place). */
gboolean tp_onnx_save(TpModel *model, const char *path, GError **error);

G_END_DECLS

#endif /* TP_ONNX_H */
