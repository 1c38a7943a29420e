/* tp-tensor.h — a dense float32 tensor of up to four dimensions (NCHW for
 * images), whose memory is owned by the backend that allocated it. */
#ifndef TP_TENSOR_H
#define TP_TENSOR_H

#include <glib.h>

#include "tp-backend.h"

G_BEGIN_DECLS

#define TP_TENSOR_MAX_DIMS 4

/* Fields are read-only outside tp-tensor.c. `data` is backend memory (see
 * tp-backend.h): never dereference it unless the backend is cpu. */
typedef struct {
    TpBackend *backend; /* the owner of data */
    int ndim;
    int shape[TP_TENSOR_MAX_DIMS];
    gsize numel;    /* product of shape */
    gsize capacity; /* floats allocated; >= numel */
    float *data;
    /* Grows with every change of the contents made through this API or
     * announced by tp_tensor_touch(); >= 1. Something derived from a tensor
     * (a reordered copy of weights) is current while the version is the one
     * it was made at. */
    guint64 version;
} TpTensor;

/* An uninitialized tensor of the given shape on backend. NULL on failure. */
TpTensor *tp_tensor_new(TpBackend *backend, int ndim, const int *shape, GError **error);

/* The same, filled with zeros. */
TpTensor *tp_tensor_new_zeros(TpBackend *backend, int ndim, const int *shape, GError **error);

void tp_tensor_free(TpTensor *tensor);

/* Changes the shape; the new size must fit the allocated capacity (it never
 * reallocates). Contents are kept as a flat array. Returns FALSE if it does not fit. */
gboolean tp_tensor_reshape(TpTensor *tensor, int ndim, const int *shape);

/* Copies numel floats from / to host memory. */
gboolean tp_tensor_upload(TpTensor *tensor, const float *host, GError **error);
gboolean tp_tensor_download(const TpTensor *tensor, float *host, GError **error);

/* A newly allocated host copy of the contents (g_free it). */
float *tp_tensor_dup_host(const TpTensor *tensor, GError **error);

/* Sets every element to value. */
gboolean tp_tensor_fill(TpTensor *tensor, float value, GError **error);

/* Records that a kernel wrote the tensor's data directly (bumps version).
 * Code that writes `data` through the backend must call it. */
void tp_tensor_touch(TpTensor *tensor);

/* "[2, 3, 8, 8]" for messages; the result is owned by the caller. */
char *tp_tensor_shape_to_string(const TpTensor *tensor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpTensor, tp_tensor_free)

G_END_DECLS

#endif /* TP_TENSOR_H */
