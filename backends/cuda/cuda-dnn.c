/* cuda-dnn.c — the cuda backend's kernels that call the vendor libraries:
 * convolutions and training-mode batch norm through cuDNN, GEMM through
 * cuBLAS. Contracts: tp-backend.h.
 *
 * Convolution. Each geometry gets a plan, made on first use and kept for the
 * backend's life: the cuDNN descriptors (NCHW float, groups, dilation) and,
 * per direction, the algorithm cuDNN's heuristics (the _v7 queries) rank
 * first among those that run in FP32 arithmetic (TF32 only with the `tf32`
 * key) and need at most WORKSPACE_LIMIT bytes of workspace; the workspace is
 * the backend's grow-only scratch. cuDNN pads symmetrically only, so a
 * geometry with pad_t != pad_b or pad_l != pad_r, or a pad wider than the
 * dilated kernel, is run on an explicitly zero-padded copy of x with cuDNN
 * padding 0 (backward data then crops the padded gradient back to dx): the
 * output size is the same by the formula in TpConvGeometry.
 *
 * GEMM. The interface is row-major and cuBLAS column-major. A row-major
 * [r, c] matrix is the column-major [c, r] matrix of its transpose, so
 * C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T with the operands
 * swapped and their transpose flags kept: cublasSgemm(op_b, op_a, n, m, k,
 * B, ldb, A, lda, C, n), with lda = trans_a ? m : k, ldb = trans_b ? k : n.
 *
 * Batch norm. cudnnBatchNormalizationForwardTraining in spatial mode over
 * x viewed as [n, c, hw, 1] computes exactly the contract: it normalizes
 * with the biased batch variance, updates the running variance with the
 * unbiased one, and its moving-average factor is 1 - momentum; its saved
 * inverse variance is 1 / sqrt(var + epsilon). With a single value per
 * channel the unbiased variance does not exist, and cuDNN would divide by
 * zero; training there is refused with an error (as PyTorch refuses it).
 * Evaluation mode is our own kernel (cuda-ops.c).
 */
#include "config.h"

#include <string.h>

#include "cuda-backend.h"
#include "cuda-check.h"
#include "cuda-kernels.h"

/* The most workspace a convolution algorithm may ask for. */
#define WORKSPACE_LIMIT ((gsize)1 << 30)

static const float one = 1.0f, zero = 0.0f;

/* ------------------------------------------------------------ convolution plans */

typedef struct {
    TpConvGeometry key;
    gboolean padded; /* cuDNN sees an explicitly zero-padded x of [n, c, hp, wp] */
    int hp, wp;
    cudnnTensorDescriptor_t x_desc, y_desc, bias_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    gsize fwd_bytes, bwd_data_bytes, bwd_filter_bytes;
    /* The math type each algorithm was chosen with; set on conv_desc before
     * its call (cuDNN picks kernels by algorithm and math type together). */
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
} CudaConvPlan;

static void
conv_plan_free(gpointer data)
{
    CudaConvPlan *plan = data;

    if (plan->x_desc != NULL)
        cudnnDestroyTensorDescriptor(plan->x_desc);
    if (plan->y_desc != NULL)
        cudnnDestroyTensorDescriptor(plan->y_desc);
    if (plan->bias_desc != NULL)
        cudnnDestroyTensorDescriptor(plan->bias_desc);
    if (plan->w_desc != NULL)
        cudnnDestroyFilterDescriptor(plan->w_desc);
    if (plan->conv_desc != NULL)
        cudnnDestroyConvolutionDescriptor(plan->conv_desc);
    g_free(plan);
}

/* TpConvGeometry is all ints, with no padding between them. */
static guint
geometry_hash(gconstpointer key)
{
    const int *v = key;
    guint h = 2166136261u;

    for (gsize i = 0; i < sizeof(TpConvGeometry) / sizeof(int); i++)
        h = (h ^ (guint)v[i]) * 16777619u;
    return h;
}

static gboolean
geometry_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(TpConvGeometry)) == 0;
}

GHashTable *
cuda_conv_plans_new(void)
{
    G_STATIC_ASSERT(sizeof(TpConvGeometry) % sizeof(int) == 0);
    return g_hash_table_new_full(geometry_hash, geometry_equal, NULL, conv_plan_free);
}

/* Without tf32, an algorithm must compute in FP32 FMA arithmetic and not
 * be one whose FP32 rounding error exceeds the cpu backend's tolerances
 * (the FFT and non-fused Winograd transforms); with tf32, anything goes. */
static gboolean
fwd_exact(cudnnConvolutionFwdAlgo_t algo)
{
    return algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}

static gboolean
data_exact(cudnnConvolutionBwdDataAlgo_t algo)
{
    return algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}

static gboolean
filter_exact(cudnnConvolutionBwdFilterAlgo_t algo)
{
    return algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

#define N_ALGOS 16

/* The first of cuDNN's ranked algorithms in perf[0, count) that succeeded,
 * fits WORKSPACE_LIMIT and, without tf32, is exact(algo) in FP32 FMA
 * arithmetic: its index, or -1. The three perf structs share these fields,
 * so a macro serves all three. */
#define PICK_ALGO(cuda, perf, count, exact, out_index)                                             \
    do {                                                                                           \
        (out_index) = -1;                                                                          \
        for (int i_ = 0; i_ < (count); i_++) {                                                     \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS &&                                       \
                (perf)[i_].memory <= WORKSPACE_LIMIT &&                                            \
                ((cuda)->tf32 ||                                                                   \
                 ((perf)[i_].mathType == CUDNN_FMA_MATH && exact((perf)[i_].algo)))) {             \
                (out_index) = i_;                                                                  \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Makes plan's cuDNN descriptors: x as cuDNN sees it ([n, c, hp, wp]), y,
 * bias, weights and the convolution itself; checks that cuDNN's output size
 * is the geometry's. */
static gboolean
conv_plan_describe(CudaBackend *cuda, CudaConvPlan *plan, GError **error)
{
    const TpConvGeometry *g = &plan->key;
    int pad_h = plan->padded ? 0 : g->pad_t, pad_w = plan->padded ? 0 : g->pad_l;
    int dims[4];

    if (!CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->x_desc), error) ||
        !CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->y_desc), error) ||
        !CUDA_CHECK(cudnnCreateTensorDescriptor(&plan->bias_desc), error) ||
        !CUDA_CHECK(cudnnCreateFilterDescriptor(&plan->w_desc), error) ||
        !CUDA_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv_desc), error))
        return FALSE;
    if (!CUDA_CHECK(cudnnSetTensor4dDescriptor(plan->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               g->n, g->c, plan->hp, plan->wp),
                    error) ||
        !CUDA_CHECK(cudnnSetTensor4dDescriptor(plan->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               g->n, g->out_c, g->out_h, g->out_w),
                    error) ||
        !CUDA_CHECK(cudnnSetTensor4dDescriptor(plan->bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               1, g->out_c, 1, 1),
                    error) ||
        !CUDA_CHECK(cudnnSetFilter4dDescriptor(plan->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                               g->out_c, g->c / g->groups, g->kh, g->kw),
                    error) ||
        !CUDA_CHECK(cudnnSetConvolution2dDescriptor(plan->conv_desc, pad_h, pad_w, g->stride_h,
                                                    g->stride_w, g->dil_h, g->dil_w,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                    error) ||
        !CUDA_CHECK(cudnnSetConvolutionGroupCount(plan->conv_desc, g->groups), error) ||
        !CUDA_CHECK(cudnnSetConvolutionMathType(plan->conv_desc,
                                                cuda->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
                    error) ||
        !CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv_desc, plan->x_desc,
                                                          plan->w_desc, &dims[0], &dims[1],
                                                          &dims[2], &dims[3]),
                    error))
        return FALSE;
    if (dims[0] != g->n || dims[1] != g->out_c || dims[2] != g->out_h || dims[3] != g->out_w) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                    "cuDNN computes a %dx%dx%dx%d output where the geometry says %dx%dx%dx%d",
                    dims[0], dims[1], dims[2], dims[3], g->n, g->out_c, g->out_h, g->out_w);
        return FALSE;
    }
    return TRUE;
}

/* Chooses the three algorithms of plan (see the top of the file). */
static gboolean
conv_plan_choose(CudaBackend *cuda, CudaConvPlan *plan, GError **error)
{
    cudnnConvolutionFwdAlgoPerf_t fwd[N_ALGOS];
    cudnnConvolutionBwdDataAlgoPerf_t bwd_data[N_ALGOS];
    cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[N_ALGOS];
    int n_fwd = 0, n_data = 0, n_filter = 0, i_fwd, i_data, i_filter;

    if (!CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cuda->cudnn, plan->x_desc, plan->w_desc,
                                                           plan->conv_desc, plan->y_desc, N_ALGOS,
                                                           &n_fwd, fwd),
                    error) ||
        !CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
                        cuda->cudnn, plan->w_desc, plan->y_desc, plan->conv_desc, plan->x_desc,
                        N_ALGOS, &n_data, bwd_data),
                    error) ||
        !CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                        cuda->cudnn, plan->x_desc, plan->y_desc, plan->conv_desc, plan->w_desc,
                        N_ALGOS, &n_filter, bwd_filter),
                    error))
        return FALSE;
    PICK_ALGO(cuda, fwd, n_fwd, fwd_exact, i_fwd);
    PICK_ALGO(cuda, bwd_data, n_data, data_exact, i_data);
    PICK_ALGO(cuda, bwd_filter, n_filter, filter_exact, i_filter);
    if (i_fwd < 0 || i_data < 0 || i_filter < 0) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                    "cuDNN offers no %s algorithm for this convolution%s",
                    i_fwd < 0    ? "forward"
                    : i_data < 0 ? "backward-data"
                                 : "backward-filter",
                    cuda->tf32 ? "" : " in FP32 arithmetic (tf32 = false)");
        return FALSE;
    }
    plan->fwd = fwd[i_fwd].algo;
    plan->fwd_bytes = fwd[i_fwd].memory;
    plan->fwd_math = fwd[i_fwd].mathType;
    plan->bwd_data = bwd_data[i_data].algo;
    plan->bwd_data_bytes = bwd_data[i_data].memory;
    plan->bwd_data_math = bwd_data[i_data].mathType;
    plan->bwd_filter = bwd_filter[i_filter].algo;
    plan->bwd_filter_bytes = bwd_filter[i_filter].memory;
    plan->bwd_filter_math = bwd_filter[i_filter].mathType;
    g_debug("conv c%d->%d %dx%d k%dx%d s%d g%d%s: algos fwd %d, data %d, filter %d", plan->key.c,
            plan->key.out_c, plan->key.h, plan->key.w, plan->key.kh, plan->key.kw,
            plan->key.stride_h, plan->key.groups, plan->padded ? " (padded copy)" : "",
            (int)plan->fwd, (int)plan->bwd_data, (int)plan->bwd_filter);
    return TRUE;
}

/* The plan of geometry g, made on first use; NULL with error set. */
static CudaConvPlan *
conv_plan_get(CudaBackend *cuda, const TpConvGeometry *g, GError **error)
{
    CudaConvPlan *plan = g_hash_table_lookup(cuda->conv_plans, g);

    if (plan != NULL)
        return plan;
    plan = g_new0(CudaConvPlan, 1);
    plan->key = *g;
    plan->padded = g->pad_t != g->pad_b || g->pad_l != g->pad_r ||
                   g->pad_t > g->dil_h * (g->kh - 1) || g->pad_l > g->dil_w * (g->kw - 1);
    plan->hp = plan->padded ? g->h + g->pad_t + g->pad_b : g->h;
    plan->wp = plan->padded ? g->w + g->pad_l + g->pad_r : g->w;
    if (!conv_plan_describe(cuda, plan, error) || !conv_plan_choose(cuda, plan, error)) {
        g_prefix_error(error, "conv2d n%d c%d->%d %dx%d kernel %dx%d: ", g->n, g->c, g->out_c, g->h,
                       g->w, g->kh, g->kw);
        conv_plan_free(plan);
        return NULL;
    }
    g_hash_table_insert(cuda->conv_plans, &plan->key, plan);
    return plan;
}

/* x as cuDNN sees it under plan: x itself, or its zero-padded copy in the
 * padded scratch. NULL with error set. */
static const float *
conv_input(CudaBackend *cuda, const CudaConvPlan *plan, const float *x, GError **error)
{
    const TpConvGeometry *g = &plan->key;

    if (!plan->padded)
        return x;
    if (!cuda_scratch_reserve(&cuda->padded,
                              (gsize)g->n * g->c * plan->hp * plan->wp * sizeof(float),
                              "padded convolution input", error) ||
        !CUDA_CHECK(cuda_launch_pad(cuda->stream, g->n, g->c, g->h, g->w, g->pad_t, g->pad_l,
                                    g->pad_b, g->pad_r, x, cuda->padded.data),
                    error))
        return NULL;
    return cuda->padded.data;
}

gboolean
cuda_conv2d_forward(gpointer self, const TpConvGeometry *g, const float *x, const float *weights,
                    const float *bias, float *y, GError **error)
{
    CudaBackend *cuda = self;
    CudaConvPlan *plan;
    const float *xin;

    if (g->n == 0 || g->out_h == 0 || g->out_w == 0)
        return TRUE;
    if ((plan = conv_plan_get(cuda, g, error)) == NULL ||
        (xin = conv_input(cuda, plan, x, error)) == NULL ||
        !cuda_scratch_reserve(&cuda->workspace, plan->fwd_bytes, "cuDNN workspace", error) ||
        !CUDA_CHECK(cudnnSetConvolutionMathType(plan->conv_desc, plan->fwd_math), error))
        return FALSE;
    if (!CUDA_CHECK(cudnnConvolutionForward(cuda->cudnn, &one, plan->x_desc, xin, plan->w_desc,
                                            weights, plan->conv_desc, plan->fwd,
                                            cuda->workspace.data, plan->fwd_bytes, &zero,
                                            plan->y_desc, y),
                    error))
        return FALSE;
    if (bias != NULL &&
        !CUDA_CHECK(cudnnAddTensor(cuda->cudnn, &one, plan->bias_desc, bias, &one, plan->y_desc, y),
                    error))
        return FALSE;
    return TRUE;
}

gboolean
cuda_conv2d_backward_data(gpointer self, const TpConvGeometry *g, const float *dy,
                          const float *weights, float *dx, GError **error)
{
    CudaBackend *cuda = self;
    CudaConvPlan *plan;
    float *dxin;

    if (g->n == 0)
        return TRUE;
    if (g->out_h == 0 || g->out_w == 0)
        return cuda_fill(self, dx, 0.0f, (gsize)g->n * g->c * g->h * g->w, error);
    if ((plan = conv_plan_get(cuda, g, error)) == NULL ||
        !cuda_scratch_reserve(&cuda->workspace, plan->bwd_data_bytes, "cuDNN workspace", error) ||
        !CUDA_CHECK(cudnnSetConvolutionMathType(plan->conv_desc, plan->bwd_data_math), error))
        return FALSE;
    dxin = dx;
    if (plan->padded) {
        if (!cuda_scratch_reserve(&cuda->padded,
                                  (gsize)g->n * g->c * plan->hp * plan->wp * sizeof(float),
                                  "padded convolution gradient", error))
            return FALSE;
        dxin = cuda->padded.data;
    }
    if (!CUDA_CHECK(cudnnConvolutionBackwardData(cuda->cudnn, &one, plan->w_desc, weights,
                                                 plan->y_desc, dy, plan->conv_desc, plan->bwd_data,
                                                 cuda->workspace.data, plan->bwd_data_bytes, &zero,
                                                 plan->x_desc, dxin),
                    error))
        return FALSE;
    if (plan->padded && !CUDA_CHECK(cuda_launch_crop(cuda->stream, g->n, g->c, g->h, g->w, g->pad_t,
                                                     g->pad_l, g->pad_b, g->pad_r, dxin, dx),
                                    error))
        return FALSE;
    return TRUE;
}

gboolean
cuda_conv2d_backward_filter(gpointer self, const TpConvGeometry *g, const float *x, const float *dy,
                            float *dweights, float *dbias, GError **error)
{
    CudaBackend *cuda = self;
    const gsize nw = (gsize)g->out_c * (g->c / g->groups) * g->kh * g->kw;
    CudaConvPlan *plan;
    const float *xin;

    if (g->n == 0 || g->out_h == 0 || g->out_w == 0)
        return cuda_fill(self, dweights, 0.0f, nw, error) &&
               (dbias == NULL || cuda_fill(self, dbias, 0.0f, (gsize)g->out_c, error));
    if ((plan = conv_plan_get(cuda, g, error)) == NULL ||
        (xin = conv_input(cuda, plan, x, error)) == NULL ||
        !cuda_scratch_reserve(&cuda->workspace, plan->bwd_filter_bytes, "cuDNN workspace", error) ||
        !CUDA_CHECK(cudnnSetConvolutionMathType(plan->conv_desc, plan->bwd_filter_math), error))
        return FALSE;
    if (!CUDA_CHECK(
            cudnnConvolutionBackwardFilter(cuda->cudnn, &one, plan->x_desc, xin, plan->y_desc, dy,
                                           plan->conv_desc, plan->bwd_filter, cuda->workspace.data,
                                           plan->bwd_filter_bytes, &zero, plan->w_desc, dweights),
            error))
        return FALSE;
    if (dbias != NULL &&
        !CUDA_CHECK(cudnnConvolutionBackwardBias(cuda->cudnn, &one, plan->y_desc, dy, &zero,
                                                 plan->bias_desc, dbias),
                    error))
        return FALSE;
    return TRUE;
}

/* ------------------------------------------------------------ GEMM */

gboolean
cuda_gemm(gpointer self, gboolean trans_a, gboolean trans_b, int m, int n, int k, float alpha,
          const float *a, const float *b, float beta, float *c, GError **error)
{
    CudaBackend *cuda = self;

    if (m == 0 || n == 0)
        return TRUE;
    if (k == 0) {
        /* op(A) op(B) is the zero matrix: C = beta * C, not read when beta = 0. */
        if (beta == 0.0f)
            return cuda_fill(self, c, 0.0f, (gsize)m * n, error);
        return cuda_axpby(self, (gsize)m * n, beta, c, 0.0f, c, error);
    }
    return CUDA_CHECK(cublasSgemm(cuda->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                                  trans_b ? k : n, a, trans_a ? m : k, &beta, c, n),
                      error);
}

/* ------------------------------------------------------------ batch norm */

/* x viewed as [n, c, hw, 1] and the [1, c, 1, 1] statistics cuDNN derives
 * from it; destroy both with bn_descriptors_free(). */
static gboolean
bn_descriptors(const TpBatchNormGeometry *g, cudnnTensorDescriptor_t *x_desc,
               cudnnTensorDescriptor_t *stat_desc, GError **error)
{
    return CUDA_CHECK(cudnnCreateTensorDescriptor(x_desc), error) &&
           CUDA_CHECK(cudnnCreateTensorDescriptor(stat_desc), error) &&
           CUDA_CHECK(cudnnSetTensor4dDescriptor(*x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->n,
                                                 g->c, g->hw, 1),
                      error) &&
           CUDA_CHECK(cudnnDeriveBNTensorDescriptor(*stat_desc, *x_desc, CUDNN_BATCHNORM_SPATIAL),
                      error);
}

static void
bn_descriptors_free(cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t stat_desc)
{
    if (x_desc != NULL)
        cudnnDestroyTensorDescriptor(x_desc);
    if (stat_desc != NULL)
        cudnnDestroyTensorDescriptor(stat_desc);
}

gboolean
cuda_batch_norm_forward_train(gpointer self, const TpBatchNormGeometry *g, const float *x,
                              const float *scale, const float *bias, float *running_mean,
                              float *running_var, float *y, float *save_mean, float *save_invstd,
                              GError **error)
{
    CudaBackend *cuda = self;
    cudnnTensorDescriptor_t x_desc = NULL, stat_desc = NULL;
    gboolean ok;

    if (g->c == 0)
        return TRUE;
    if ((gsize)g->n * g->hw < 2) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                    "batch norm in training needs at least 2 values per channel, got %d "
                    "(batch %d of %d values); use a larger batch",
                    g->n * g->hw, g->n, g->hw);
        return FALSE;
    }
    ok = bn_descriptors(g, &x_desc, &stat_desc, error) &&
         CUDA_CHECK(cudnnBatchNormalizationForwardTraining(
                        cuda->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_desc, x, x_desc, y,
                        stat_desc, scale, bias, 1.0 - (double)g->momentum, running_mean,
                        running_var, (double)g->epsilon, save_mean, save_invstd),
                    error);
    bn_descriptors_free(x_desc, stat_desc);
    return ok;
}

gboolean
cuda_batch_norm_backward(gpointer self, const TpBatchNormGeometry *g, const float *x,
                         const float *dy, const float *scale, const float *save_mean,
                         const float *save_invstd, float *dx, float *dscale, float *dbias,
                         GError **error)
{
    CudaBackend *cuda = self;
    cudnnTensorDescriptor_t x_desc = NULL, stat_desc = NULL;
    gboolean ok;

    if (g->c == 0)
        return TRUE;
    if ((gsize)g->n * g->hw == 0)
        return cuda_fill(self, dscale, 0.0f, (gsize)g->c, error) &&
               cuda_fill(self, dbias, 0.0f, (gsize)g->c, error);
    ok = bn_descriptors(g, &x_desc, &stat_desc, error) &&
         CUDA_CHECK(cudnnBatchNormalizationBackward(cuda->cudnn, CUDNN_BATCHNORM_SPATIAL, &one,
                                                    &zero, &one, &zero, x_desc, x, x_desc, dy,
                                                    x_desc, dx, stat_desc, scale, dscale, dbias,
                                                    (double)g->epsilon, save_mean, save_invstd),
                    error);
    bn_descriptors_free(x_desc, stat_desc);
    return ok;
}
