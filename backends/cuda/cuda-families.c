/* cuda-families.c — the cuda backend's generic kernel families (unary,
 * binary, strided, reduce, layer-norm: TpKernelFamily in tp-backend.h), each
 * a wrapper that
 * queues the launch of cuda-kernels.cu and turns its status into a GError
 * through CUDA_CHECK. Contracts: tp-backend.h.
 */
#include "config.h"

#include "cuda-backend.h"
#include "cuda-check.h"
#include "cuda-kernels.h"

/* The kernels take TpUnaryFunction and TpBinaryOp values as plain ints. */
G_STATIC_ASSERT(CUDA_MAX_DIMS == TP_KERNEL_MAX_DIMS);
G_STATIC_ASSERT(TP_UNARY_RELU == 1 && TP_UNARY_ABS == 17);
G_STATIC_ASSERT(TP_BINARY_ADD == 1 && TP_BINARY_DIV == 4);

#define STREAM(self) (((CudaBackend *)(self))->stream)

gboolean
cuda_unary_forward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, float *y,
                   GError **error)
{
    return CUDA_CHECK(cuda_launch_unary_forward(STREAM(self), op->function, op->alpha, op->beta,
                                                op->lo, op->hi, n, x, y),
                      error);
}

gboolean
cuda_unary_backward(gpointer self, const TpUnaryOp *op, gsize n, const float *x, const float *y,
                    const float *dy, float *dx, GError **error)
{
    const float *t = tp_unary_backward_from_y(op->function) ? y : x;

    return CUDA_CHECK(cuda_launch_unary_backward(STREAM(self), op->function, op->alpha, op->beta,
                                                 op->lo, op->hi, n, t, dy, dx),
                      error);
}

gboolean
cuda_binary_forward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                    const float *b, float *y, GError **error)
{
    return CUDA_CHECK(
        cuda_launch_binary_forward(STREAM(self), op, g->ndim, g->y, g->a, g->b, a, b, y), error);
}

gboolean
cuda_binary_backward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                     const float *b, const float *dy, float *da, float *db, GError **error)
{
    return CUDA_CHECK(cuda_launch_binary_backward(STREAM(self), op, g->ndim, g->y, g->a, g->b, a,
                                                  b, dy, da, db),
                      error);
}

gboolean
cuda_reduce_forward(gpointer self, TpReduceOp op, const TpReduceGeometry *g, const float *x,
                    float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_reduce_forward(STREAM(self), op == TP_REDUCE_MEAN, g->ndim, g->x,
                                                 g->y, x, y),
                      error);
}

gboolean
cuda_reduce_backward(gpointer self, TpReduceOp op, const TpReduceGeometry *g, const float *dy,
                     float *dx, GError **error)
{
    return CUDA_CHECK(cuda_launch_reduce_backward(STREAM(self), op == TP_REDUCE_MEAN, g->ndim,
                                                  g->x, g->y, dy, dx),
                      error);
}

gboolean
cuda_strided_copy(gpointer self, const TpStridedCopy *g, const float *src, float *dst,
                  GError **error)
{
    CudaStrided s = {.ndim = g->ndim, .accumulate = g->accumulate};

    for (int d = 0; d < g->ndim; d++) {
        s.shape[d] = g->shape[d];
        s.src_stride[d] = g->src_stride[d];
        s.dst_stride[d] = g->dst_stride[d];
    }
    return CUDA_CHECK(
        cuda_launch_strided_copy(STREAM(self), &s, src + g->src_offset, dst + g->dst_offset),
        error);
}

gboolean
cuda_layer_norm_forward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                        const float *scale, const float *bias, float *y, float *save_mean,
                        float *save_invstd, GError **error)
{
    return CUDA_CHECK(cuda_launch_layer_norm_forward(STREAM(self), g->rows, g->cols, g->epsilon, x,
                                                     scale, bias, y, save_mean, save_invstd),
                      error);
}

gboolean
cuda_layer_norm_backward(gpointer self, const TpLayerNormGeometry *g, const float *x,
                         const float *dy, const float *scale, const float *save_mean,
                         const float *save_invstd, float *dx, float *dscale, float *dbias,
                         GError **error)
{
    return CUDA_CHECK(cuda_launch_layer_norm_backward(STREAM(self), g->rows, g->cols, x, dy, scale,
                                                      save_mean, save_invstd, dx, dscale, dbias),
                      error);
}
