/* tp-backend.h — the backend interface: layer-level kernels a compute backend
 * provides, and the TpBackend handle the engine runs them through.
 *
 * Memory. Backend memory is a `float *` the engine never dereferences: host
 * memory for cpu, device memory for cuda. It moves to and from the host only
 * through upload() and download(). Every tensor layout is dense row-major:
 * images NCHW, matrices [rows, cols].
 *
 * Rules of the calls:
 *  1. open() is called once per TpBackend with the plugin's parsed parameters;
 *     its result is the `self` passed to every other member; close() ends it.
 *  2. Kernels may run asynchronously; download() and synchronize() return only
 *     when all earlier work is done.
 *  3. Outputs are overwritten, never accumulated into, unless a member says so.
 *     Output buffers never alias inputs unless a member says so.
 *  4. Every kernel returns FALSE and sets error on failure (out of memory, a
 *     driver error); the cpu backend never fails after open().
 *  5. Members marked (optional) may be NULL; the engine supplies the default.
 *     All others are required; the loader refuses a backend that lacks one.
 *
 * Members are only ever appended (tp-plugin.h).
 */
#ifndef TP_BACKEND_H
#define TP_BACKEND_H

#include <glib.h>

#include "tp-plugin.h"
#include "tp-params.h"

G_BEGIN_DECLS

#define TP_BACKEND_ERROR (tp_backend_error_quark())
GQuark tp_backend_error_quark(void);

typedef enum {
    TP_BACKEND_ERROR_FAILED,    /* a kernel or driver call failed */
    TP_BACKEND_ERROR_NO_MEMORY, /* an allocation failed */
    TP_BACKEND_ERROR_NO_DEVICE, /* the hardware the backend needs is absent */
} TpBackendError;

/* A 2-D convolution (cross-correlation, as ONNX Conv) over a batch.
 * x: [n, c, h, w]; weights: [out_c, c / groups, kh, kw]; y: [n, out_c, out_h, out_w].
 * out_h = (h + pad_t + pad_b - dil_h * (kh - 1) - 1) / stride_h + 1, likewise out_w;
 * the engine fills out_h and out_w. */
typedef struct {
    int n, c, h, w;
    int out_c, out_h, out_w;
    int kh, kw;
    int stride_h, stride_w;
    int pad_t, pad_l, pad_b, pad_r;
    int dil_h, dil_w;
    int groups; /* divides both c and out_c */
} TpConvGeometry;

typedef enum {
    TP_POOL_MAX = 1,
    TP_POOL_AVERAGE = 2,
} TpPoolMode;

/* A 2-D pooling window over a batch. x: [n, c, h, w]; y: [n, c, out_h, out_w].
 * Padding counts as -inf for MAX. For AVERAGE the divisor is kh * kw when
 * count_include_pad, else the number of window cells inside the (unpadded)
 * input. out_h and out_w are filled by the engine (floor or ceil mode decided
 * there); a window that starts in the bottom or right padding never occurs.
 * Global average pooling is AVERAGE with kh = h, kw = w, stride 1, no padding. */
typedef struct {
    TpPoolMode mode;
    int n, c, h, w;
    int out_h, out_w;
    int kh, kw;
    int stride_h, stride_w;
    int pad_t, pad_l, pad_b, pad_r;
    gboolean count_include_pad;
} TpPoolGeometry;

/* Batch normalization over x: [n, c, hw] (hw = h * w; 1 after a Gemm).
 * Normalizes with 1 / sqrt(var + epsilon). In training, var is the biased
 * batch variance, and the running statistics are updated as ONNX does:
 * running = momentum * running + (1 - momentum) * batch, where the batch
 * variance used for the running update is the unbiased one (n*hw / (n*hw - 1)),
 * as PyTorch does. */
typedef struct {
    int n, c, hw;
    float epsilon;
    float momentum;
} TpBatchNormGeometry;

/* Hyper-parameters of one SGD update (PyTorch's SGD, dampening 0):
 *     g' = g + weight_decay * w
 *     v  = momentum * v + g'
 *     w -= lr * (nesterov ? g' + momentum * v : v)          */
typedef struct {
    float lr;
    float momentum;
    float weight_decay;
    gboolean nesterov;
} TpSgdHyper;

/* ---------------------------------------------------------------- kernel families
 *
 * Generic kernels appended after ABI 1's first release, in families: a
 * backend sets every member of a family or none (the loader checks), and an
 * op that needs a family asks tp_backend_has_family() first, so a backend
 * built before the family existed fails with a message naming it instead
 * of a NULL call. */

/* The most axes a family's geometry describes. Shapes with fewer axes are
 * given with ndim < TP_KERNEL_MAX_DIMS; entries past ndim are not read. */
#define TP_KERNEL_MAX_DIMS 6

typedef enum {
    TP_KERNELS_UNARY = 1,    /* unary_forward, unary_backward */
    TP_KERNELS_BINARY = 2,   /* binary_forward, binary_backward */
    TP_KERNELS_STRIDED = 3,  /* strided_copy */
    TP_KERNELS_REDUCE = 4,   /* reduce_forward, reduce_backward */
    TP_KERNELS_LAYER_NORM = 5, /* layer_norm_forward, layer_norm_backward */
} TpKernelFamily;

/* A pointwise function y = f(x) of TpUnaryOp's parameters. */
typedef enum {
    TP_UNARY_RELU = 1,         /* max(x, 0) */
    TP_UNARY_CLIP = 2,         /* min(max(x, lo), hi) */
    TP_UNARY_SIGMOID = 3,      /* 1 / (1 + exp(-x)) */
    TP_UNARY_HARD_SIGMOID = 4, /* max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid) */
    TP_UNARY_HARD_SWISH = 5,   /* x * max(0, min(1, x / 6 + 1 / 2)) */
    TP_UNARY_SILU = 6,         /* x * sigmoid(x) */
    TP_UNARY_GELU = 7,         /* x / 2 * (1 + erf(x / sqrt 2)), the exact form */
    TP_UNARY_LEAKY_RELU = 8,   /* x >= 0 ? x : alpha * x */
    TP_UNARY_TANH = 9,         /* tanh(x) */
    TP_UNARY_SQRT = 10,        /* sqrt(x) */
    TP_UNARY_ERF = 11,         /* erf(x) */
    TP_UNARY_EXP = 12,         /* exp(x) */
    TP_UNARY_RECIPROCAL = 13,  /* 1 / x */
    TP_UNARY_POW = 14,         /* pow(x, alpha), a constant exponent */
    TP_UNARY_LOG = 15,         /* log(x) */
    TP_UNARY_NEG = 16,         /* -x */
    TP_UNARY_ABS = 17,         /* |x| */
} TpUnaryFunction;

/* One pointwise function and its parameters; members a function does not
 * name are not read. Derivatives at kinks (relu and leaky-relu at 0, clip
 * at lo and hi, hard-sigmoid and hard-swish where the clamp starts, abs at
 * 0) are those of the flat side: 0 for relu, clip, hard-sigmoid and abs,
 * 1 for leaky-relu at 0 (x >= 0 takes the identity), and hard-swish's
 * x / 3 + 1 / 2 at -3 and 3 (PyTorch's). */
typedef struct {
    TpUnaryFunction function;
    float alpha; /* leaky-relu's slope, hard-sigmoid's alpha, pow's exponent */
    float beta;  /* hard-sigmoid's beta */
    float lo, hi; /* clip's bounds, lo <= hi; either may be -INFINITY or INFINITY */
} TpUnaryOp;

/* TRUE for the functions whose derivative unary_backward reads from y
 * (relu, clip, sigmoid, tanh, sqrt, exp, reciprocal: cheaper, and the
 * forward may then run in place), FALSE for those it reads from x. */
static inline gboolean
tp_unary_backward_from_y(TpUnaryFunction function)
{
    switch (function) {
    case TP_UNARY_RELU:
    case TP_UNARY_CLIP:
    case TP_UNARY_SIGMOID:
    case TP_UNARY_TANH:
    case TP_UNARY_SQRT:
    case TP_UNARY_EXP:
    case TP_UNARY_RECIPROCAL:
        return TRUE;
    default:
        return FALSE;
    }
}

typedef enum {
    TP_BINARY_ADD = 1, /* a + b */
    TP_BINARY_SUB = 2, /* a - b */
    TP_BINARY_MUL = 3, /* a * b */
    TP_BINARY_DIV = 4, /* a / b */
} TpBinaryOp;

/* Numpy (ONNX multidirectional) broadcasting, with the shapes already
 * aligned by the engine: every operand has ndim axes (a shorter shape is
 * padded with leading 1s), and on each axis a[d] and b[d] are y[d] or 1.
 * All three are dense row-major. */
typedef struct {
    int ndim; /* 1 .. TP_KERNEL_MAX_DIMS */
    int y[TP_KERNEL_MAX_DIMS];
    int a[TP_KERNEL_MAX_DIMS];
    int b[TP_KERNEL_MAX_DIMS];
} TpBroadcastGeometry;

/* An N-d view copy: for every index (i_0, ..., i_{ndim-1}) below shape,
 *     dst[dst_offset + sum i_d * dst_stride[d]] (+)= src[src_offset + sum i_d * src_stride[d]]
 * with offsets and strides in floats. Strides may be 0 (src: a broadcast,
 * as Expand) or negative (a reversed axis, as reflect padding), as long as
 * every index stays inside its buffer; no two indices write the same dst
 * element, and src and dst do not overlap. Concat, split, slice (with
 * steps), transpose, channel shuffle and padding are each one call or one
 * per operand. */
typedef struct {
    int ndim; /* 1 .. TP_KERNEL_MAX_DIMS */
    int shape[TP_KERNEL_MAX_DIMS];
    gssize src_stride[TP_KERNEL_MAX_DIMS];
    gssize dst_stride[TP_KERNEL_MAX_DIMS];
    gsize src_offset, dst_offset;
    gboolean accumulate; /* TRUE: dst += src; FALSE: dst = src */
} TpStridedCopy;

typedef enum {
    TP_REDUCE_SUM = 1,
    TP_REDUCE_MEAN = 2,
} TpReduceOp;

/* A reduction over axes: x has shape x[0 .. ndim), y has the same axes with
 * y[d] = 1 on the reduced ones and y[d] = x[d] elsewhere (keepdims' layout;
 * without keepdims the elements are the same). Both dense row-major. */
typedef struct {
    int ndim; /* 1 .. TP_KERNEL_MAX_DIMS */
    int x[TP_KERNEL_MAX_DIMS];
    int y[TP_KERNEL_MAX_DIMS];
} TpReduceGeometry;

/* Layer normalization of x: [rows, cols] over each row (the trailing axes
 * from ONNX's `axis` on, flattened into cols):
 *     y = (x - mean) * invstd * scale + bias,   invstd = 1 / sqrt(var + epsilon)
 * with the biased variance of the row; scale and bias have cols elements. */
typedef struct {
    int rows, cols;
    float epsilon;
} TpLayerNormGeometry;

typedef struct _TpBackendVTable TpBackendVTable;

struct _TpBackendVTable {
    /* Lifecycle. */
    gpointer (*open)(const TpParams *params, GError **error);
    void (*close)(gpointer self);

    /* Memory. alloc() returns n floats of uninitialized backend memory. */
    float *(*alloc)(gpointer self, gsize n, GError **error);
    void (*free)(gpointer self, float *mem);
    gboolean (*upload)(gpointer self, float *dst, const float *host, gsize n, GError **error);
    gboolean (*download)(gpointer self, float *host, const float *src, gsize n, GError **error);
    gboolean (*copy)(gpointer self, float *dst, const float *src, gsize n, GError **error);
    gboolean (*fill)(gpointer self, float *dst, float value, gsize n, GError **error);

    /* Convolution. bias and dbias may be NULL (no bias). */
    gboolean (*conv2d_forward)(gpointer self, const TpConvGeometry *g, const float *x,
                               const float *weights, const float *bias, float *y, GError **error);
    /* dx = gradient of the input, given dy and weights. */
    gboolean (*conv2d_backward_data)(gpointer self, const TpConvGeometry *g, const float *dy,
                                     const float *weights, float *dx, GError **error);
    /* dweights (and dbias when not NULL) from x and dy. */
    gboolean (*conv2d_backward_filter)(gpointer self, const TpConvGeometry *g, const float *x,
                                       const float *dy, float *dweights, float *dbias,
                                       GError **error);

    /* Dense algebra, row-major: C[m, n] = alpha * op(A) op(B) + beta * C, where
     * op(A) is [m, k] (A stored [k, m] when trans_a) and op(B) is [k, n] (B stored
     * [n, k] when trans_b). With beta = 0, C is not read. */
    gboolean (*gemm)(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k,
                     float alpha, const float *a, const float *b, float beta, float *c,
                     GError **error);
    /* y[r, j] += bias[j] for a [rows, cols] matrix (accumulates, in place). */
    gboolean (*add_bias)(gpointer self, int rows, int cols, const float *bias, float *y,
                         GError **error);
    /* y[j] = sum over r of x[r, j]. */
    gboolean (*sum_rows)(gpointer self, int rows, int cols, const float *x, float *y,
                         GError **error);

    /* Batch normalization. save_mean and save_invstd ([c] each) are written in
     * training and read by backward; running_mean and running_var are updated
     * in place in training and read in evaluation. */
    gboolean (*batch_norm_forward_train)(gpointer self, const TpBatchNormGeometry *g,
                                         const float *x, const float *scale, const float *bias,
                                         float *running_mean, float *running_var, float *y,
                                         float *save_mean, float *save_invstd, GError **error);
    gboolean (*batch_norm_forward_eval)(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                        const float *scale, const float *bias, const float *mean,
                                        const float *var, float *y, GError **error);
    /* Backward of the training-mode forward (batch statistics). */
    gboolean (*batch_norm_backward)(gpointer self, const TpBatchNormGeometry *g, const float *x,
                                    const float *dy, const float *scale, const float *save_mean,
                                    const float *save_invstd, float *dx, float *dscale,
                                    float *dbias, GError **error);

    /* Elementwise over n floats. relu_forward may run in place (y == x). */
    gboolean (*relu_forward)(gpointer self, gsize n, const float *x, float *y, GError **error);
    /* dx = dy where y > 0, else 0. */
    gboolean (*relu_backward)(gpointer self, gsize n, const float *y, const float *dy, float *dx,
                              GError **error);
    /* y = a + b; y may be a or b. */
    gboolean (*add)(gpointer self, gsize n, const float *a, const float *b, float *y,
                    GError **error);
    /* Inverted dropout: y[i] = tp_dropout_keep(seed, i, ratio) ? x[i] / (1 - ratio) : 0. */
    gboolean (*dropout_forward)(gpointer self, gsize n, float ratio, guint64 seed, const float *x,
                                float *y, GError **error);
    gboolean (*dropout_backward)(gpointer self, gsize n, float ratio, guint64 seed, const float *dy,
                                 float *dx, GError **error);

    /* Pooling (see TpPoolGeometry). Max backward sends each dy to the first
     * maximum of its window in row-major order, recomputed from x and y. */
    gboolean (*pool2d_forward)(gpointer self, const TpPoolGeometry *g, const float *x, float *y,
                               GError **error);
    gboolean (*pool2d_backward)(gpointer self, const TpPoolGeometry *g, const float *x,
                                const float *y, const float *dy, float *dx, GError **error);

    /* Softmax over the last axis of [rows, cols]. */
    gboolean (*softmax_forward)(gpointer self, int rows, int cols, const float *x, float *y,
                                GError **error);
    /* dx = y * (dy - sum_j y_j dy_j), row by row. */
    gboolean (*softmax_backward)(gpointer self, int rows, int cols, const float *y, const float *dy,
                                 float *dx, GError **error);
    /* Mean over rows of the cross-entropy of softmax(logits) against labels
     * (host memory, each in [0, cols)), with label smoothing s: the target is
     * (1 - s) * onehot + s / cols. Writes the mean to *out_loss (host) and, when
     * dlogits is not NULL, the gradient of that mean: (softmax - target) / rows. */
    gboolean (*softmax_cross_entropy)(gpointer self, int rows, int cols, const float *logits,
                                      const gint32 *labels, float smoothing, float *dlogits,
                                      double *out_loss, GError **error);

    /* One SGD step over n weights w with gradient g and velocity v (both updated). */
    gboolean (*sgd_update)(gpointer self, gsize n, float *w, const float *g, float *v,
                           const TpSgdHyper *hyper, GError **error);

    /* (optional) Waits for all queued work. Default: nothing to wait for. */
    gboolean (*synchronize)(gpointer self, GError **error);

    /* Elementwise kernels for relevance propagation (tp-lrp.h), over n floats.
     * Required: they were appended before ABI 1 was released. */

    /* y = a ⊙ b; y may be a or b. */
    gboolean (*mul)(gpointer self, gsize n, const float *a, const float *b, float *y,
                    GError **error);
    /* y = alpha * x + beta * y; with beta = 0, y is not read. y may be x. */
    gboolean (*axpby)(gpointer self, gsize n, float alpha, const float *x, float beta, float *y,
                      GError **error);
    /* y = min(max(x, lo), hi), lo <= hi; either may be -INFINITY or
     * INFINITY (a one-sided clamp). y may be x. */
    gboolean (*clamp)(gpointer self, gsize n, const float *x, float lo, float hi, float *y,
                      GError **error);
    /* y = r / stab(z) with the LRP stabilizer (docs/method.md):
     * stab(z) = z + epsilon * sign(z) where z != 0, TP_STABILIZER_ZERO where
     * z = 0 (either sign of zero); epsilon >= 0. y may be r or z. */
    gboolean (*stabilized_divide)(gpointer self, gsize n, const float *r, const float *z,
                                  float epsilon, float *y, GError **error);

    /* (optional: all three or none) Convolution weights in a form of the
     * backend's own (transformed, reordered), made once and reused while the
     * weights do not change: the engine keeps it with the node for eval-mode
     * forwards and prepares it again after each change of the weights.
     * conv2d_prepared_size() is the floats that form takes for geometry g, 0
     * when the backend has none for g (the engine then calls conv2d_forward);
     * it depends on g's fields other than n only. conv2d_prepare() writes it
     * from weights [out_c, c / groups, kh, kw]. conv2d_forward_prepared() is
     * conv2d_forward reading it, for a g that differs from prepare()'s at
     * most in n. Default: no prepared form. */
    gsize (*conv2d_prepared_size)(gpointer self, const TpConvGeometry *g);
    gboolean (*conv2d_prepare)(gpointer self, const TpConvGeometry *g, const float *weights,
                               float *prepared, GError **error);
    gboolean (*conv2d_forward_prepared)(gpointer self, const TpConvGeometry *g, const float *x,
                                        const float *prepared, const float *bias, float *y,
                                        GError **error);

    /* (optional) conv2d_forward, or conv2d_forward_prepared when prepared is
     * not NULL (weights is then NULL), followed by relu_forward on y, in one
     * pass over y: the engine calls it for a Conv whose output only a Relu
     * reads, in inference. Default: the two calls. */
    gboolean (*conv2d_forward_relu)(gpointer self, const TpConvGeometry *g, const float *x,
                                    const float *weights, const float *prepared, const float *bias,
                                    float *y, GError **error);

    /* ------------------------------------------------------------ families
     * Everything below is optional by family (TpKernelFamily): all members
     * of a family or none. Default: none; an op that needs the family fails
     * at load with tp_backend_has_family()'s message. Reductions over many
     * terms accumulate in double on the cpu backend; a backend must meet
     * tests/backends/test-conformance.c's tolerances. */

    /* (optional, unary family) y = f(x) over n floats; y may be x. */
    gboolean (*unary_forward)(gpointer self, const TpUnaryOp *op, gsize n, const float *x,
                              float *y, GError **error);
    /* (optional, unary family) dx = f'(x) * dy over n floats, with f'
     * formed from y where tp_unary_backward_from_y(op->function) (x may then
     * be NULL), else from x (y may then be NULL). dx may be dy. */
    gboolean (*unary_backward)(gpointer self, const TpUnaryOp *op, gsize n, const float *x,
                               const float *y, const float *dy, float *dx, GError **error);

    /* (optional, binary family) y = a op b, broadcast as g says. y may be a
     * (b) when a (b) has y's shape. */
    gboolean (*binary_forward)(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                               const float *a, const float *b, float *y, GError **error);
    /* (optional, binary family) The gradients of y = a op b given dy (y's
     * shape): da (a's shape) is dy * dy/da summed over the axes a was
     * broadcast along, db likewise; either may be NULL (not wanted). ADD
     * and SUB read neither a nor b (they may be NULL), MUL reads the other
     * operand, DIV reads b, and a for db. Outputs do not alias inputs. */
    gboolean (*binary_backward)(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g,
                                const float *a, const float *b, const float *dy, float *da,
                                float *db, GError **error);

    /* (optional, strided family) The copy g describes (TpStridedCopy). */
    gboolean (*strided_copy)(gpointer self, const TpStridedCopy *g, const float *src, float *dst,
                             GError **error);

    /* (optional, reduce family) y = the sum (mean) of x over the axes g
     * reduces. */
    gboolean (*reduce_forward)(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                               const float *x, float *y, GError **error);
    /* (optional, reduce family) dx = dy broadcast back to x's shape (divided
     * by the number of terms for MEAN). */
    gboolean (*reduce_backward)(gpointer self, TpReduceOp op, const TpReduceGeometry *g,
                                const float *dy, float *dx, GError **error);

    /* (optional, layer-norm family) Layer normalization (TpLayerNormGeometry).
     * bias may be NULL (none). save_mean and save_invstd ([rows] each) are
     * written when not NULL, for the backward of a training pass; evaluation
     * passes NULL. y may be x. */
    gboolean (*layer_norm_forward)(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                   const float *scale, const float *bias, float *y,
                                   float *save_mean, float *save_invstd, GError **error);
    /* (optional, layer-norm family) dx from x, dy, scale and the saved
     * statistics; dscale and dbias ([cols], summed over rows, overwritten)
     * when not NULL. */
    gboolean (*layer_norm_backward)(gpointer self, const TpLayerNormGeometry *g, const float *x,
                                    const float *dy, const float *scale, const float *save_mean,
                                    const float *save_invstd, float *dx, float *dscale,
                                    float *dbias, GError **error);
};

/* The ε0 of stabilized_divide(): what stab(0) is, whatever epsilon. */
#define TP_STABILIZER_ZERO 1e-12f

/* The uniform draw dropout keeps element i by: a SplitMix64 hash of
 * (seed, i), so every backend makes the same mask with no state. */
static inline gboolean
tp_dropout_keep(guint64 seed, guint64 i, float ratio)
{
    guint64 z = seed + (i + 1) * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94D049BB133111EB);
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) >= ratio;
}

/* An open backend. `self` is what its open() returned; `vt` is the plugin's
 * table with optional members filled in. Engine code and plugins call
 * kernels as backend->vt.relu_forward(backend->self, ...). `vt` is the last
 * member, so that appending to TpBackendVTable moves nothing before it
 * (until ABI 1's first change it sat between `info` and `self`); a new
 * member of TpBackend goes before it. */
typedef struct {
    const TpPluginInfo *info;
    gpointer self;
    guint64 max_tensor_bytes; /* the largest tensor allowed (tp_backend_check_shape) */
    TpBackendVTable vt;
} TpBackend;

/* The default of max_tensor_bytes (4 GiB): a model file whose shapes ask for
 * more is refused before anything is allocated; [backend] max-tensor-bytes
 * raises it. */
#define TP_BACKEND_DEFAULT_MAX_TENSOR_BYTES (G_GUINT64_CONSTANT(1) << 32)

/* Checks that a backend descriptor's vtable is usable (all required members
 * present). Used by the loader; error names the first missing member. */
gboolean tp_backend_vtable_check(const TpPluginInfo *info, GError **error);

/* TRUE when backend has every member of family; otherwise FALSE with an
 * error (TP_BACKEND_ERROR_FAILED) naming the backend, the family and its
 * members. An op that needs the family calls it before its first kernel
 * and prefixes the node's name. */
gboolean tp_backend_has_family(const TpBackend *backend, TpKernelFamily family, GError **error);

/* Opens a backend from its descriptor with already-parsed params (NULL: the
 * defaults). Returns an owned handle, or NULL with error set. */
TpBackend *tp_backend_new(const TpPluginInfo *info, const TpParams *params, GError **error);

/* The number of floats of a tensor of shape dims[0..ndim) (each ≥ 1), into
 * *out_numel. The one place where sizes that come from files are multiplied:
 * FALSE with TP_BACKEND_ERROR_NO_MEMORY when the product overflows or its
 * bytes pass backend's max_tensor_bytes; `what` names the tensor. */
gboolean tp_backend_check_shape(const TpBackend *backend, int ndim, const int *dims,
                                const char *what, gsize *out_numel, GError **error);

/* Reads the engine's own key of a [backend] group, max-tensor-bytes (an
 * integer from 1 MiB to 2^62), into backend when keyfile has it; an invalid
 * value is an error naming source. */
gboolean tp_backend_load_limits(TpBackend *backend, GKeyFile *keyfile, const char *source,
                                GError **error);

/* Closes the backend. Every tensor made on it must be freed first. */
void tp_backend_free(TpBackend *backend);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpBackend, tp_backend_free)

G_END_DECLS

#endif /* TP_BACKEND_H */
