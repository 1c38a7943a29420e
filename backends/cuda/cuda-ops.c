/* cuda-ops.c — the cuda backend's kernels that run our own CUDA code
 * (cuda-kernels.cu): elementwise ops, dropout, the SGD update, bias and row
 * sums, evaluation batch norm, pooling, softmax and the loss. Contracts:
 * tp-backend.h; each wrapper queues one launch and turns its status into a
 * GError through CUDA_CHECK.
 *
 * Pooling is ours rather than cuDNN's because cuDNN cannot pad
 * asymmetrically (ceil mode) and does not promise the first maximum of a
 * window to take the gradient on ties; both are part of the contract.
 */
#include "config.h"

#include "cuda-backend.h"
#include "cuda-check.h"
#include "cuda-kernels.h"

/* The stream of backend self. */
#define STREAM(self) (((CudaBackend *)(self))->stream)

gboolean
cuda_fill(gpointer self, float *dst, float value, gsize n, GError **error)
{
    return CUDA_CHECK(cuda_launch_fill(STREAM(self), dst, value, n), error);
}

gboolean
cuda_add_bias(gpointer self, int rows, int cols, const float *bias, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_add_bias(STREAM(self), rows, cols, bias, y), error);
}

gboolean
cuda_sum_rows(gpointer self, int rows, int cols, const float *x, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_sum_rows(STREAM(self), rows, cols, x, y), error);
}

gboolean
cuda_batch_norm_forward_eval(gpointer self, const TpBatchNormGeometry *g, const float *x,
                             const float *scale, const float *bias, const float *mean,
                             const float *var, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_batch_norm_eval(STREAM(self), g->n, g->c, g->hw, g->epsilon, x,
                                                  scale, bias, mean, var, y),
                      error);
}

gboolean
cuda_relu_forward(gpointer self, gsize n, const float *x, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_relu_forward(STREAM(self), n, x, y), error);
}

gboolean
cuda_relu_backward(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                   GError **error)
{
    return CUDA_CHECK(cuda_launch_relu_backward(STREAM(self), n, y, dy, dx), error);
}

gboolean
cuda_add(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_add(STREAM(self), n, a, b, y), error);
}

gboolean
cuda_dropout_forward(gpointer self, gsize n, float ratio, guint64 seed, const float *x, float *y,
                     GError **error)
{
    return CUDA_CHECK(cuda_launch_dropout(STREAM(self), n, ratio, seed, x, y), error);
}

/* The same mask and scale as forward, applied to dy. */
gboolean
cuda_dropout_backward(gpointer self, gsize n, float ratio, guint64 seed, const float *dy, float *dx,
                      GError **error)
{
    return CUDA_CHECK(cuda_launch_dropout(STREAM(self), n, ratio, seed, dy, dx), error);
}

static CudaPoolShape
pool_shape(const TpPoolGeometry *g)
{
    CudaPoolShape shape = {
        .n = g->n,
        .c = g->c,
        .h = g->h,
        .w = g->w,
        .out_h = g->out_h,
        .out_w = g->out_w,
        .kh = g->kh,
        .kw = g->kw,
        .stride_h = g->stride_h,
        .stride_w = g->stride_w,
        .pad_t = g->pad_t,
        .pad_l = g->pad_l,
        .max = g->mode == TP_POOL_MAX,
        .count_include_pad = g->count_include_pad != FALSE,
    };
    return shape;
}

gboolean
cuda_pool2d_forward(gpointer self, const TpPoolGeometry *g, const float *x, float *y,
                    GError **error)
{
    CudaPoolShape shape = pool_shape(g);

    return CUDA_CHECK(cuda_launch_pool_forward(STREAM(self), &shape, x, y), error);
}

gboolean
cuda_pool2d_backward(gpointer self, const TpPoolGeometry *g, const float *x, const float *y,
                     const float *dy, float *dx, GError **error)
{
    CudaPoolShape shape = pool_shape(g);

    return CUDA_CHECK(cuda_launch_pool_backward(STREAM(self), &shape, x, y, dy, dx), error);
}

gboolean
cuda_softmax_forward(gpointer self, int rows, int cols, const float *x, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_softmax_forward(STREAM(self), rows, cols, x, y), error);
}

gboolean
cuda_softmax_backward(gpointer self, int rows, int cols, const float *y, const float *dy, float *dx,
                      GError **error)
{
    return CUDA_CHECK(cuda_launch_softmax_backward(STREAM(self), rows, cols, y, dy, dx), error);
}

/* Labels are checked on the host, copied into the labels scratch, and the
 * per-row losses (doubles, after the labels in the same scratch) come back
 * to be averaged here: the call waits for the stream, as it must to return
 * the loss. */
gboolean
cuda_softmax_cross_entropy(gpointer self, int rows, int cols, const float *logits,
                           const gint32 *labels, float smoothing, float *dlogits, double *out_loss,
                           GError **error)
{
    CudaBackend *cuda = self;
    gsize label_bytes = ((gsize)rows * sizeof(gint32) + 15) / 16 * 16;
    g_autofree double *row_loss = NULL;
    gint32 *dev_labels;
    double *dev_loss, total = 0.0;

    for (int r = 0; r < rows; r++) {
        if (labels[r] < 0 || labels[r] >= cols) {
            g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                        "softmax_cross_entropy: label %d of row %d is outside [0, %d)",
                        (int)labels[r], r, cols);
            return FALSE;
        }
    }
    if (rows == 0) {
        *out_loss = 0.0;
        return TRUE;
    }
    if (!cuda_scratch_reserve(&cuda->labels, label_bytes + (gsize)rows * sizeof(double),
                              "softmax_cross_entropy labels", error))
        return FALSE;
    dev_labels = cuda->labels.data;
    dev_loss = (double *)((char *)cuda->labels.data + label_bytes);
    row_loss = g_new(double, rows);
    if (!CUDA_CHECK(cudaMemcpyAsync(dev_labels, labels, (gsize)rows * sizeof(gint32),
                                    cudaMemcpyHostToDevice, cuda->stream),
                    error) ||
        !CUDA_CHECK(cuda_launch_softmax_cross_entropy(cuda->stream, rows, cols, logits, dev_labels,
                                                      smoothing, dlogits, dev_loss),
                    error) ||
        !CUDA_CHECK(cudaMemcpyAsync(row_loss, dev_loss, (gsize)rows * sizeof(double),
                                    cudaMemcpyDeviceToHost, cuda->stream),
                    error) ||
        !CUDA_CHECK(cudaStreamSynchronize(cuda->stream), error))
        return FALSE;
    for (int r = 0; r < rows; r++)
        total += row_loss[r];
    *out_loss = total / rows;
    return TRUE;
}

gboolean
cuda_sgd_update(gpointer self, gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper,
                GError **error)
{
    return CUDA_CHECK(cuda_launch_sgd_update(STREAM(self), n, w, g, v, hyper->lr, hyper->momentum,
                                             hyper->weight_decay, hyper->nesterov != FALSE),
                      error);
}

gboolean
cuda_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_mul(STREAM(self), n, a, b, y), error);
}

gboolean
cuda_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y,
           GError **error)
{
    return CUDA_CHECK(cuda_launch_axpby(STREAM(self), n, alpha, x, beta, y), error);
}

gboolean
cuda_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y, GError **error)
{
    return CUDA_CHECK(cuda_launch_clamp(STREAM(self), n, x, lo, hi, y), error);
}

gboolean
cuda_stabilized_divide(gpointer self, gsize n, const float *r, const float *z, float epsilon,
                       float *y, GError **error)
{
    return CUDA_CHECK(
        cuda_launch_stabilized_divide(STREAM(self), n, r, z, epsilon, TP_STABILIZER_ZERO, y),
        error);
}
