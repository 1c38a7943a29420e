/* cuda-backend.c — the `cuda` backend plugin: device memory, one stream, and
 * the kernels of cuda-dnn.c (cuDNN convolutions and batch norm, cuBLAS GEMM)
 * and cuda-ops.c (our own CUDA kernels for the rest).
 *
 * Keys:
 *   device  the CUDA device index (default 0).
 *   tf32    let cuDNN and cuBLAS use TF32 tensor cores (default false: FP32
 *           arithmetic, which keeps results within the conformance tolerances
 *           of the cpu backend; TF32 trades about three decimal digits for
 *           speed on Ampere and later).
 *
 * Without a usable device (no GPU, no driver) open() fails with
 * TP_BACKEND_ERROR_NO_DEVICE; loading the plugin itself needs only the CUDA
 * runtime, cuBLAS and cuDNN libraries, never a device.
 */
#include "config.h"

#include "cuda-backend.h"
#include "cuda-check.h"
#include "tp-backend.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec cuda_params[] = {
    {
        .key = "device",
        .type = TP_PARAM_INT,
        .default_value = "0",
        .min = 0,
        .max = 1023,
        .help = "CUDA device index",
    },
    {
        .key = "tf32",
        .type = TP_PARAM_BOOLEAN,
        .default_value = "false",
        .help = "allow TF32 tensor cores in cuDNN and cuBLAS (faster, less exact)",
    },
    {NULL},
};

/* ---------------------------------------------------------------- scratch */

gboolean
cuda_scratch_reserve(CudaScratch *scratch, gsize bytes, const char *what, GError **error)
{
    void *data = NULL;

    if (bytes <= scratch->bytes)
        return TRUE;
    if (!CUDA_CHECK(cudaMalloc(&data, bytes), error)) {
        g_prefix_error(error, "%s of %" G_GSIZE_FORMAT " bytes: ", what, bytes);
        return FALSE;
    }
    /* cudaFree waits for the work that may still read the old buffer. */
    cudaFree(scratch->data);
    scratch->data = data;
    scratch->bytes = bytes;
    return TRUE;
}

void
cuda_scratch_clear(CudaScratch *scratch)
{
    cudaFree(scratch->data);
    scratch->data = NULL;
    scratch->bytes = 0;
}

/* ---------------------------------------------------------------- lifecycle */

/* Frees whatever open() made; every handle may still be NULL. */
static void
cuda_close(gpointer self)
{
    CudaBackend *cuda = self;

    if (cuda == NULL)
        return;
    if (cuda->stream != NULL)
        cudaStreamSynchronize(cuda->stream);
    g_clear_pointer(&cuda->conv_plans, g_hash_table_unref);
    cuda_scratch_clear(&cuda->workspace);
    cuda_scratch_clear(&cuda->padded);
    cuda_scratch_clear(&cuda->labels);
    if (cuda->cudnn != NULL)
        cudnnDestroy(cuda->cudnn);
    if (cuda->cublas != NULL)
        cublasDestroy(cuda->cublas);
    if (cuda->stream != NULL)
        cudaStreamDestroy(cuda->stream);
    g_free(cuda);
}

/* A new CudaBackend on the `device` key's device; NULL with
 * TP_BACKEND_ERROR_NO_DEVICE when there is no such device (or no driver),
 * another error when a library cannot start. */
static gpointer
cuda_open(const TpParams *params, GError **error)
{
    int device = params != NULL ? (int)tp_params_get_int(params, "device") : 0;
    gboolean tf32 = params != NULL && tp_params_get_boolean(params, "tf32");
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    CudaBackend *cuda;

    if (status != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_DEVICE,
                    "no CUDA device (cudaGetDeviceCount: %s)",
                    status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
        return NULL;
    }
    if (device >= count) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_DEVICE,
                    "no CUDA device %d (devices 0 to %d are present)", device, count - 1);
        return NULL;
    }

    cuda = g_new0(CudaBackend, 1);
    cuda->device = device;
    cuda->tf32 = tf32;
    if (!CUDA_CHECK(cudaSetDevice(device), error) ||
        !CUDA_CHECK(cudaStreamCreateWithFlags(&cuda->stream, cudaStreamNonBlocking), error) ||
        !CUDA_CHECK(cublasCreate(&cuda->cublas), error) ||
        !CUDA_CHECK(cublasSetStream(cuda->cublas, cuda->stream), error) ||
        !CUDA_CHECK(cublasSetMathMode(cuda->cublas,
                                      tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                    error) ||
        !CUDA_CHECK(cudnnCreate(&cuda->cudnn), error) ||
        !CUDA_CHECK(cudnnSetStream(cuda->cudnn, cuda->stream), error)) {
        g_prefix_error(error, "device %d: ", device);
        cuda_close(cuda);
        return NULL;
    }
    cuda->conv_plans = cuda_conv_plans_new();
    {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, device) == cudaSuccess)
            g_debug("cuda backend: device %d: %s, compute %d.%d, cuDNN %zu, tf32 %s", device,
                    prop.name, prop.major, prop.minor, cudnnGetVersion(), tf32 ? "on" : "off");
    }
    return cuda;
}

/* ---------------------------------------------------------------- memory */

/* n floats of device memory (at least one, so the pointer is never NULL). */
static float *
cuda_alloc(gpointer self, gsize n, GError **error)
{
    CudaBackend *cuda = self;
    void *mem = NULL;

    if (n > G_MAXSIZE / sizeof(float)) {
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                    "cannot allocate %" G_GSIZE_FORMAT " floats: the size overflows", n);
        return NULL;
    }
    if (!CUDA_CHECK(cudaMalloc(&mem, MAX(n, 1) * sizeof(float)), error)) {
        g_prefix_error(error, "cannot allocate %" G_GSIZE_FORMAT " floats on CUDA device %d: ", n,
                       cuda->device);
        return NULL;
    }
    return mem;
}

/* cudaFree waits for the queued work, which may still use mem. */
static void
cuda_free(gpointer self, float *mem)
{
    cudaFree(mem);
}

/* Pageable host memory: the copy has left host for a staging buffer when
 * this returns, so the caller may reuse host at once. */
static gboolean
cuda_upload(gpointer self, float *dst, const float *host, gsize n, GError **error)
{
    CudaBackend *cuda = self;

    if (n == 0)
        return TRUE;
    return CUDA_CHECK(
        cudaMemcpyAsync(dst, host, n * sizeof(float), cudaMemcpyHostToDevice, cuda->stream), error);
}

/* Waits for every queued kernel, so it also reports their errors. */
static gboolean
cuda_download(gpointer self, float *host, const float *src, gsize n, GError **error)
{
    CudaBackend *cuda = self;

    if (n > 0 && !CUDA_CHECK(cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost,
                                             cuda->stream),
                             error))
        return FALSE;
    return CUDA_CHECK(cudaStreamSynchronize(cuda->stream), error);
}

static gboolean
cuda_copy(gpointer self, float *dst, const float *src, gsize n, GError **error)
{
    CudaBackend *cuda = self;

    if (n == 0 || dst == src)
        return TRUE;
    return CUDA_CHECK(
        cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda->stream),
        error);
}

static gboolean
cuda_synchronize(gpointer self, GError **error)
{
    CudaBackend *cuda = self;

    return CUDA_CHECK(cudaStreamSynchronize(cuda->stream), error);
}

/* ---------------------------------------------------------------- descriptor */

static const TpBackendVTable cuda_vtable = {
    /* .open =                     */ cuda_open,
    /* .close =                    */ cuda_close,
    /* .alloc =                    */ cuda_alloc,
    /* .free =                     */ cuda_free,
    /* .upload =                   */ cuda_upload,
    /* .download =                 */ cuda_download,
    /* .copy =                     */ cuda_copy,
    /* .fill =                     */ cuda_fill,
    /* .conv2d_forward =           */ cuda_conv2d_forward,
    /* .conv2d_backward_data =     */ cuda_conv2d_backward_data,
    /* .conv2d_backward_filter =   */ cuda_conv2d_backward_filter,
    /* .gemm =                     */ cuda_gemm,
    /* .add_bias =                 */ cuda_add_bias,
    /* .sum_rows =                 */ cuda_sum_rows,
    /* .batch_norm_forward_train = */ cuda_batch_norm_forward_train,
    /* .batch_norm_forward_eval =  */ cuda_batch_norm_forward_eval,
    /* .batch_norm_backward =      */ cuda_batch_norm_backward,
    /* .relu_forward =             */ cuda_relu_forward,
    /* .relu_backward =            */ cuda_relu_backward,
    /* .add =                      */ cuda_add,
    /* .dropout_forward =          */ cuda_dropout_forward,
    /* .dropout_backward =         */ cuda_dropout_backward,
    /* .pool2d_forward =           */ cuda_pool2d_forward,
    /* .pool2d_backward =          */ cuda_pool2d_backward,
    /* .softmax_forward =          */ cuda_softmax_forward,
    /* .softmax_backward =         */ cuda_softmax_backward,
    /* .softmax_cross_entropy =    */ cuda_softmax_cross_entropy,
    /* .sgd_update =               */ cuda_sgd_update,
    /* .synchronize =              */ cuda_synchronize,
    /* .mul =                      */ cuda_mul,
    /* .axpby =                    */ cuda_axpby,
    /* .clamp =                    */ cuda_clamp,
    /* .stabilized_divide =        */ cuda_stabilized_divide,
    /* .conv2d_prepared_size =     */ NULL,
    /* .conv2d_prepare =           */ NULL,
    /* .conv2d_forward_prepared =  */ NULL,
    /* .conv2d_forward_relu =      */ NULL,
    /* .unary_forward =            */ cuda_unary_forward,
    /* .unary_backward =           */ cuda_unary_backward,
    /* .binary_forward =           */ cuda_binary_forward,
    /* .binary_backward =          */ cuda_binary_backward,
    /* .strided_copy =             */ cuda_strided_copy,
    /* .reduce_forward =           */ cuda_reduce_forward,
    /* .reduce_backward =          */ cuda_reduce_backward,
    /* .layer_norm_forward =       */ cuda_layer_norm_forward,
    /* .layer_norm_backward =      */ cuda_layer_norm_backward,
};

static const TpPluginInfo cuda_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_BACKEND,
    /* .name =        */ "cuda",
    /* .version =     */ "1.0",
    /* .description = */ "NVIDIA GPU: cuDNN convolutions and batch norm, cuBLAS GEMM, own kernels",
    /* .license =     */ "MIT",
    /* .vtable =      */ &cuda_vtable,
    /* .vtable_size = */ sizeof(TpBackendVTable),
    /* .params =      */ cuda_params,
};

TP_PLUGIN_EXPORT const TpPluginInfo *tp_plugin_describe(void);

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &cuda_info;
}
