/* cuda-kernels.h — launchers of the cuda backend's own kernels
 * (cuda-kernels.cu), callable from C.
 *
 * Each launcher queues its kernel on `stream` and returns the launch status
 * (cudaGetLastError()); errors while the kernel runs surface at the next
 * synchronizing call. Pointers are device memory unless a comment says
 * otherwise; sizes are in elements. Every kernel implements the contract of
 * the TpBackendVTable member it serves (tp-backend.h), including the aliasing
 * that member allows; a launcher with n == 0 launches nothing.
 *
 * Plain C types only, so that nvcc compiles the .cu without GLib.
 */
#ifndef CUDA_KERNELS_H
#define CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A pooling window (TpPoolGeometry with plain types). */
typedef struct {
    int n, c, h, w;
    int out_h, out_w;
    int kh, kw;
    int stride_h, stride_w;
    int pad_t, pad_l;
    int max;               /* 1: MAX, 0: AVERAGE */
    int count_include_pad; /* AVERAGE divisor: kh * kw, else the cells inside the input */
} CudaPoolShape;

/* dst[i] = value. */
cudaError_t cuda_launch_fill(cudaStream_t stream, float *dst, float value, size_t n);

/* relu_forward (y may be x), relu_backward, add (y may be a or b), mul (y may
 * be a or b), axpby (beta = 0 does not read y; y may be x), clamp (y may be
 * x), stabilized_divide (y may be r or z). */
cudaError_t cuda_launch_relu_forward(cudaStream_t stream, size_t n, const float *x, float *y);
cudaError_t cuda_launch_relu_backward(cudaStream_t stream, size_t n, const float *y,
                                      const float *dy, float *dx);
cudaError_t cuda_launch_add(cudaStream_t stream, size_t n, const float *a, const float *b,
                            float *y);
cudaError_t cuda_launch_mul(cudaStream_t stream, size_t n, const float *a, const float *b,
                            float *y);
cudaError_t cuda_launch_axpby(cudaStream_t stream, size_t n, float alpha, const float *x,
                              float beta, float *y);
cudaError_t cuda_launch_clamp(cudaStream_t stream, size_t n, const float *x, float lo, float hi,
                              float *y);
/* stab(0) is `zero` (TP_STABILIZER_ZERO, passed in to keep GLib out). */
cudaError_t cuda_launch_stabilized_divide(cudaStream_t stream, size_t n, const float *r,
                                          const float *z, float epsilon, float zero, float *y);

/* y[i] = keep(seed, i, ratio) ? x[i] / (1 - ratio) : 0, with keep the
 * SplitMix64 draw of tp_dropout_keep(); serves forward (x) and backward (dy). */
cudaError_t cuda_launch_dropout(cudaStream_t stream, size_t n, float ratio, uint64_t seed,
                                const float *x, float *y);

/* One SGD step (TpSgdHyper's formula), w and v updated in place. */
cudaError_t cuda_launch_sgd_update(cudaStream_t stream, size_t n, float *w, const float *g,
                                   float *v, float lr, float momentum, float weight_decay,
                                   int nesterov);

/* y[r, j] += bias[j]; y[j] = sum over r of x[r, j] (accumulated in double). */
cudaError_t cuda_launch_add_bias(cudaStream_t stream, int rows, int cols, const float *bias,
                                 float *y);
cudaError_t cuda_launch_sum_rows(cudaStream_t stream, int rows, int cols, const float *x, float *y);

/* Zero padding of an NCHW tensor: xp[n, c, h + pt + pb, w + pl + pr] holds x
 * at offset (pt, pl) and 0 elsewhere. crop is its adjoint for gradients:
 * dx[n, c, h, w] = the (pt, pl)-offset window of dxp. */
cudaError_t cuda_launch_pad(cudaStream_t stream, int n, int c, int h, int w, int pt, int pl, int pb,
                            int pr, const float *x, float *xp);
cudaError_t cuda_launch_crop(cudaStream_t stream, int n, int c, int h, int w, int pt, int pl,
                             int pb, int pr, const float *dxp, float *dx);

/* Evaluation-mode batch norm over x[n, c, hw] with the given statistics. */
cudaError_t cuda_launch_batch_norm_eval(cudaStream_t stream, int n, int c, int hw, float epsilon,
                                        const float *x, const float *scale, const float *bias,
                                        const float *mean, const float *var, float *y);

/* Pooling forward; backward writes every dx (a gather: each input cell sums
 * the dy of the windows that take it, MAX only where it is the window's
 * first maximum in row-major order, recomputed from x and y). */
cudaError_t cuda_launch_pool_forward(cudaStream_t stream, const CudaPoolShape *shape,
                                     const float *x, float *y);
cudaError_t cuda_launch_pool_backward(cudaStream_t stream, const CudaPoolShape *shape,
                                      const float *x, const float *y, const float *dy, float *dx);

/* Softmax over the rows of [rows, cols], and its backward. */
cudaError_t cuda_launch_softmax_forward(cudaStream_t stream, int rows, int cols, const float *x,
                                        float *y);
cudaError_t cuda_launch_softmax_backward(cudaStream_t stream, int rows, int cols, const float *y,
                                         const float *dy, float *dx);

/* Cross-entropy of softmax(logits) against labels (device memory, each in
 * [0, cols), checked by the caller) with label smoothing: row_loss[r]
 * (double) gets row r's loss; dlogits, when not NULL, the gradient of the
 * mean, (softmax - target) / rows. */
cudaError_t cuda_launch_softmax_cross_entropy(cudaStream_t stream, int rows, int cols,
                                              const float *logits, const int32_t *labels,
                                              float smoothing, float *dlogits, double *row_loss);

/* ---------------------------------------------------------------- families */

/* The most axes of a family's geometry (TP_KERNEL_MAX_DIMS). */
#define CUDA_MAX_DIMS 6

/* unary_forward / unary_backward of tp-backend.h, with TpUnaryOp's members
 * passed one by one (function: a TpUnaryFunction value). Backward reads t,
 * which is y for the functions tp_unary_backward_from_y() names and x for
 * the others. y may be x, dx may be dy. */
cudaError_t cuda_launch_unary_forward(cudaStream_t stream, int function, float alpha, float beta,
                                      float lo, float hi, size_t n, const float *x, float *y);
cudaError_t cuda_launch_unary_backward(cudaStream_t stream, int function, float alpha, float beta,
                                       float lo, float hi, size_t n, const float *t,
                                       const float *dy, float *dx);

/* binary_forward / binary_backward over shapes y, a, b of ndim axes
 * (TpBroadcastGeometry; op: a TpBinaryOp value). da or db may be NULL. */
cudaError_t cuda_launch_binary_forward(cudaStream_t stream, int op, int ndim, const int *y_shape,
                                       const int *a_shape, const int *b_shape, const float *a,
                                       const float *b, float *y);
cudaError_t cuda_launch_binary_backward(cudaStream_t stream, int op, int ndim, const int *y_shape,
                                        const int *a_shape, const int *b_shape, const float *a,
                                        const float *b, const float *dy, float *da, float *db);

/* reduce_forward / reduce_backward (TpReduceGeometry; mean: 1 for MEAN, 0
 * for SUM). */
cudaError_t cuda_launch_reduce_forward(cudaStream_t stream, int mean, int ndim, const int *x_shape,
                                       const int *y_shape, const float *x, float *y);
cudaError_t cuda_launch_reduce_backward(cudaStream_t stream, int mean, int ndim,
                                        const int *x_shape, const int *y_shape, const float *dy,
                                        float *dx);

/* strided_copy (TpStridedCopy with plain types; src and dst already
 * offset by src_offset and dst_offset). */
typedef struct {
    int ndim;
    long long shape[CUDA_MAX_DIMS];
    long long src_stride[CUDA_MAX_DIMS], dst_stride[CUDA_MAX_DIMS];
    int accumulate;
} CudaStrided;
cudaError_t cuda_launch_strided_copy(cudaStream_t stream, const CudaStrided *g, const float *src,
                                     float *dst);

/* layer_norm_forward / layer_norm_backward (TpLayerNormGeometry); bias,
 * save_mean, save_invstd (forward) and dscale, dbias (backward) may be NULL. */
cudaError_t cuda_launch_layer_norm_forward(cudaStream_t stream, int rows, int cols, float epsilon,
                                           const float *x, const float *scale, const float *bias,
                                           float *y, float *save_mean, float *save_invstd);
cudaError_t cuda_launch_layer_norm_backward(cudaStream_t stream, int rows, int cols,
                                            const float *x, const float *dy, const float *scale,
                                            const float *mean, const float *invstd, float *dx,
                                            float *dscale, float *dbias);

#ifdef __cplusplus
}
#endif

#endif /* CUDA_KERNELS_H */
