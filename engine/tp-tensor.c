/* tp-tensor.c — dense float32 tensors whose memory belongs to a backend:
 * allocation through the backend's alloc/free, host transfers through its
 * upload/download, reshaping within the allocated capacity. */
#include "config.h"

#include "tp-tensor.h"

/* TRUE if ndim and every dimension are in range (a programmer error otherwise). */
static gboolean
shape_is_valid(int ndim, const int *shape)
{
    if (ndim < 1 || ndim > TP_TENSOR_MAX_DIMS || shape == NULL)
        return FALSE;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return FALSE;
    }
    return TRUE;
}

/* Allocates numel floats of uninitialized backend memory for a tensor of
 * that shape; capacity is exactly numel. */
TpTensor *
tp_tensor_new(TpBackend *backend, int ndim, const int *shape, GError **error)
{
    g_autofree TpTensor *tensor = NULL;
    gsize numel;

    g_return_val_if_fail(backend != NULL, NULL);
    g_return_val_if_fail(shape_is_valid(ndim, shape), NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!tp_backend_check_shape(backend, ndim, shape, "a tensor", &numel, error))
        return NULL;

    tensor = g_new0(TpTensor, 1);
    tensor->backend = backend;
    tensor->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        tensor->shape[i] = shape[i];
    tensor->numel = numel;
    tensor->capacity = numel;
    tensor->version = 1;
    tensor->data = backend->vt.alloc(backend->self, numel, error);
    if (tensor->data == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                        "backend could not allocate %" G_GSIZE_FORMAT " floats", numel);
        return NULL;
    }
    return g_steal_pointer(&tensor);
}

void
tp_tensor_touch(TpTensor *tensor)
{
    g_return_if_fail(tensor != NULL);
    tensor->version++;
}

/* tp_tensor_new(), then every element set to 0. */
TpTensor *
tp_tensor_new_zeros(TpBackend *backend, int ndim, const int *shape, GError **error)
{
    g_autoptr(TpTensor) tensor = tp_tensor_new(backend, ndim, shape, error);

    if (tensor == NULL || !tp_tensor_fill(tensor, 0.0f, error))
        return NULL;
    return g_steal_pointer(&tensor);
}

/* Frees the backend memory and the tensor; NULL is allowed. */
void
tp_tensor_free(TpTensor *tensor)
{
    if (tensor == NULL)
        return;
    if (tensor->data != NULL)
        tensor->backend->vt.free(tensor->backend->self, tensor->data);
    g_free(tensor);
}

/* New shape, same memory: fails (tensor unchanged) if the new size exceeds the
 * capacity or the shape is malformed. */
gboolean
tp_tensor_reshape(TpTensor *tensor, int ndim, const int *shape)
{
    gsize numel = 1;

    g_return_val_if_fail(tensor != NULL, FALSE);

    if (!shape_is_valid(ndim, shape))
        return FALSE;
    for (int i = 0; i < ndim; i++) {
        if (!g_size_checked_mul(&numel, numel, (gsize)shape[i]))
            return FALSE;
    }
    if (numel > tensor->capacity)
        return FALSE;

    tensor->ndim = ndim;
    for (int i = 0; i < TP_TENSOR_MAX_DIMS; i++)
        tensor->shape[i] = i < ndim ? shape[i] : 0;
    tensor->numel = numel;
    return TRUE;
}

/* Copies numel floats from host into the tensor. */
gboolean
tp_tensor_upload(TpTensor *tensor, const float *host, GError **error)
{
    g_return_val_if_fail(tensor != NULL, FALSE);
    g_return_val_if_fail(host != NULL, FALSE);

    tensor->version++;
    return tensor->backend->vt.upload(tensor->backend->self, tensor->data, host, tensor->numel,
                                      error);
}

/* Copies numel floats of the tensor to host; returns when they are there. */
gboolean
tp_tensor_download(const TpTensor *tensor, float *host, GError **error)
{
    g_return_val_if_fail(tensor != NULL, FALSE);
    g_return_val_if_fail(host != NULL, FALSE);

    return tensor->backend->vt.download(tensor->backend->self, host, tensor->data, tensor->numel,
                                        error);
}

/* A g_malloc'ed host copy of the numel floats, or NULL with error set. */
float *
tp_tensor_dup_host(const TpTensor *tensor, GError **error)
{
    g_autofree float *host = NULL;

    g_return_val_if_fail(tensor != NULL, NULL);

    host = g_try_new(float, tensor->numel);
    if (host == NULL) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                    "no memory for a host copy of %" G_GSIZE_FORMAT " floats", tensor->numel);
        return NULL;
    }
    if (!tp_tensor_download(tensor, host, error))
        return NULL;
    return g_steal_pointer(&host);
}

/* Sets the numel elements to value. */
gboolean
tp_tensor_fill(TpTensor *tensor, float value, GError **error)
{
    g_return_val_if_fail(tensor != NULL, FALSE);

    tensor->version++;
    return tensor->backend->vt.fill(tensor->backend->self, tensor->data, value, tensor->numel,
                                    error);
}

/* "[2, 3, 8, 8]" (owned by the caller). */
char *
tp_tensor_shape_to_string(const TpTensor *tensor)
{
    GString *s;

    g_return_val_if_fail(tensor != NULL, NULL);

    s = g_string_new("[");
    for (int i = 0; i < tensor->ndim; i++)
        g_string_append_printf(s, i == 0 ? "%d" : ", %d", tensor->shape[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}
