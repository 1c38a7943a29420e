/* tp-reference.h — plain reference kernels, written for clarity only: direct
 * loops, double accumulation, host memory. Each mirrors one member of
 * TpBackendVTable with the same geometry and the same contract; backends and
 * engine ops are tested against these and against finite differences. */
#ifndef TP_REFERENCE_H
#define TP_REFERENCE_H

#include <glib.h>

#include "tp-backend.h"

void ref_conv2d_forward(const TpConvGeometry *g, const float *x, const float *weights,
                        const float *bias, float *y);
void ref_conv2d_backward_data(const TpConvGeometry *g, const float *dy, const float *weights,
                              float *dx);
void ref_conv2d_backward_filter(const TpConvGeometry *g, const float *x, const float *dy,
                                float *dweights, float *dbias);

void ref_gemm(gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha, const float *a,
              const float *b, float beta, float *c);
void ref_add_bias(int rows, int cols, const float *bias, float *y);
void ref_sum_rows(int rows, int cols, const float *x, float *y);

void ref_batch_norm_forward_train(const TpBatchNormGeometry *g, const float *x, const float *scale,
                                  const float *bias, float *running_mean, float *running_var,
                                  float *y, float *save_mean, float *save_invstd);
void ref_batch_norm_forward_eval(const TpBatchNormGeometry *g, const float *x, const float *scale,
                                 const float *bias, const float *mean, const float *var, float *y);
void ref_batch_norm_backward(const TpBatchNormGeometry *g, const float *x, const float *dy,
                             const float *scale, const float *save_mean, const float *save_invstd,
                             float *dx, float *dscale, float *dbias);

void ref_relu_forward(gsize n, const float *x, float *y);
void ref_relu_backward(gsize n, const float *y, const float *dy, float *dx);
void ref_add(gsize n, const float *a, const float *b, float *y);
void ref_dropout_forward(gsize n, float ratio, guint64 seed, const float *x, float *y);
void ref_dropout_backward(gsize n, float ratio, guint64 seed, const float *dy, float *dx);

void ref_pool2d_forward(const TpPoolGeometry *g, const float *x, float *y);
void ref_pool2d_backward(const TpPoolGeometry *g, const float *x, const float *y, const float *dy,
                         float *dx);

void ref_softmax_forward(int rows, int cols, const float *x, float *y);
void ref_softmax_backward(int rows, int cols, const float *y, const float *dy, float *dx);
/* Returns the mean loss; dlogits may be NULL. */
double ref_softmax_cross_entropy(int rows, int cols, const float *logits, const gint32 *labels,
                                 float smoothing, float *dlogits);

void ref_sgd_update(gsize n, float *w, const float *g, float *v, const TpSgdHyper *hyper);

void ref_mul(gsize n, const float *a, const float *b, float *y);
void ref_axpby(gsize n, float alpha, const float *x, float beta, float *y);
void ref_clamp(gsize n, const float *x, float lo, float hi, float *y);
void ref_stabilized_divide(gsize n, const float *r, const float *z, float epsilon, float *y);

/* The kernel families. ref_unary_value() and ref_unary_derivative() are
 * f(x) and f'(x) in double (at kinks, the one-sided value tp-backend.h
 * names); the kernels apply them elementwise. */
double ref_unary_value(const TpUnaryOp *op, double x);
double ref_unary_derivative(const TpUnaryOp *op, double x);
void ref_unary_forward(const TpUnaryOp *op, gsize n, const float *x, float *y);
void ref_unary_backward(const TpUnaryOp *op, gsize n, const float *x, const float *dy, float *dx);

void ref_binary_forward(TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                        const float *b, float *y);
/* da, db may be NULL. */
void ref_binary_backward(TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                         const float *b, const float *dy, float *da, float *db);

void ref_reduce_forward(TpReduceOp op, const TpReduceGeometry *g, const float *x, float *y);
void ref_reduce_backward(TpReduceOp op, const TpReduceGeometry *g, const float *dy, float *dx);

void ref_strided_copy(const TpStridedCopy *g, const float *src, float *dst);

/* save_mean, save_invstd, bias, dscale and dbias may be NULL. */
void ref_layer_norm_forward(const TpLayerNormGeometry *g, const float *x, const float *scale,
                            const float *bias, float *y, float *save_mean, float *save_invstd);
void ref_layer_norm_backward(const TpLayerNormGeometry *g, const float *x, const float *dy,
                             const float *scale, float *dx, float *dscale, float *dbias);

#endif /* TP_REFERENCE_H */
