/* view.c — what the data-movement ops (Concat, Slice, Transpose, Gather,
 * Reshape) share: a strided view of one sample, and its copies through the
 * backend's strided family (TpStridedCopy), with the batch as the outer
 * axis. A view is read as a dense tensor of its shape (gather) or written
 * from one (scatter); the backward of a gather is a scatter into a zeroed
 * gradient, since every view here reads each element at most once.
 */
#include "config.h"

#include <string.h>

#include "tp-onnx.h"
#include "tp-op.h"

/* Row-major strides of a per-sample shape, in floats. */
void
tp_view_strides(const TpShape *shape, gssize *out_strides)
{
    gssize stride = 1;

    for (int d = shape->ndim - 1; d >= 0; d--) {
        out_strides[d] = stride;
        stride *= shape->dim[d];
    }
}

void
tp_view_begin(const TpTensor *x, TpShape *out_shape, gssize *out_strides, TpView *v)
{
    out_shape->ndim = x->ndim - 1;
    for (int d = 0; d < out_shape->ndim; d++)
        out_shape->dim[d] = x->shape[1 + d];
    tp_view_strides(out_shape, out_strides);
    memset(v, 0, sizeof *v);
    v->ndim = out_shape->ndim;
}

gboolean
tp_view_import_axis(TpOnnxReader *r, gint64 axis, const TpShape *in, int *out_axis,
                    GError **error)
{
    if (axis < 0)
        axis += 1 + in->ndim;
    if (axis < 1 || axis > in->ndim)
        return tp_onnx_reader_error(r, error, TP_ONNX_ERROR_UNSUPPORTED,
                                    "axis %" G_GINT64_FORMAT " is not supported (the batch axis "
                                    "or outside [batch, %d per-sample dimensions])",
                                    axis, in->ndim);
    *out_axis = (int)axis - 1;
    return TRUE;
}

/* The copy of v over `batch` samples, with the view on the src side
 * (gather) or on the dst side (scatter). */
static gboolean
view_copy(const TpNode *node, TpBackend *backend, const TpView *v, gsize view_numel, int batch,
          gboolean scatter, const float *src, float *dst, GError **error)
{
    TpStridedCopy g = {.ndim = v->ndim + 1};
    gssize dense = 1;

    if (!tp_backend_has_family(backend, TP_KERNELS_STRIDED, error)) {
        g_prefix_error(error, "%s '%s': ", tp_op_type_to_string(node->op), node->name);
        return FALSE;
    }
    g.shape[0] = batch;
    for (int d = v->ndim - 1; d >= 0; d--) {
        g.shape[d + 1] = v->shape[d];
        (scatter ? g.src_stride : g.dst_stride)[d + 1] = dense;
        (scatter ? g.dst_stride : g.src_stride)[d + 1] = v->stride[d];
        dense *= v->shape[d];
    }
    (scatter ? g.src_stride : g.dst_stride)[0] = dense;
    (scatter ? g.dst_stride : g.src_stride)[0] = (gssize)view_numel;
    if (scatter)
        g.dst_offset = v->offset;
    else
        g.src_offset = v->offset;
    return backend->vt.strided_copy(backend->self, &g, src, dst, error);
}

gboolean
tp_view_gather(const TpNode *node, TpBackend *backend, const TpView *v, const TpTensor *x,
               TpTensor *y, GError **error)
{
    int batch = x->shape[0];

    return view_copy(node, backend, v, x->numel / (gsize)batch, batch, FALSE, x->data, y->data,
                     error);
}

gboolean
tp_view_scatter(const TpNode *node, TpBackend *backend, const TpView *v, const TpTensor *x,
                TpTensor *y, GError **error)
{
    int batch = y->shape[0];

    return view_copy(node, backend, v, y->numel / (gsize)batch, batch, TRUE, x->data, y->data,
                     error);
}

gboolean
tp_view_gather_backward(const TpNode *node, TpBackend *backend, const TpView *v,
                        const TpTensor *dy, TpTensor *dx, GError **error)
{
    return tp_tensor_fill(dx, 0.0f, error) && tp_view_scatter(node, backend, v, dy, dx, error);
}
