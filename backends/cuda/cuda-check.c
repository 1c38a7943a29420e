/* cuda-check.c — CUDA, cuBLAS and cuDNN statuses as GErrors: the three
 * parts of CUDA_CHECK (contract: cuda-check.h). */
#include "config.h"

#include <string.h>

#include "cuda-check.h"

/* The call's name: what up to the first '(' (what is the stringified call). */
static int
call_name_length(const char *what)
{
    const char *paren = strchr(what, '(');

    return paren != NULL ? (int)(paren - what) : (int)strlen(what);
}

gboolean
cuda_check_runtime(cudaError_t status, const char *what, GError **error)
{
    TpBackendError code = TP_BACKEND_ERROR_FAILED;

    if (status == cudaSuccess)
        return TRUE;
    if (status == cudaErrorMemoryAllocation)
        code = TP_BACKEND_ERROR_NO_MEMORY;
    else if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver)
        code = TP_BACKEND_ERROR_NO_DEVICE;
    /* Clear the error unless it is sticky (then every later call reports it too). */
    (void)cudaGetLastError();
    g_set_error(error, TP_BACKEND_ERROR, code, "%.*s: %s (%s)", call_name_length(what), what,
                cudaGetErrorString(status), cudaGetErrorName(status));
    return FALSE;
}

gboolean
cuda_check_cublas(cublasStatus_t status, const char *what, GError **error)
{
    if (status == CUBLAS_STATUS_SUCCESS)
        return TRUE;
    g_set_error(error, TP_BACKEND_ERROR,
                status == CUBLAS_STATUS_ALLOC_FAILED ? TP_BACKEND_ERROR_NO_MEMORY
                                                     : TP_BACKEND_ERROR_FAILED,
                "%.*s: %s (%s)", call_name_length(what), what, cublasGetStatusString(status),
                cublasGetStatusName(status));
    return FALSE;
}

gboolean
cuda_check_cudnn(cudnnStatus_t status, const char *what, GError **error)
{
    if (status == CUDNN_STATUS_SUCCESS)
        return TRUE;
    g_set_error(error, TP_BACKEND_ERROR,
                status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                        status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED
                    ? TP_BACKEND_ERROR_NO_MEMORY
                    : TP_BACKEND_ERROR_FAILED,
                "%.*s: %s (status %d)", call_name_length(what), what, cudnnGetErrorString(status),
                (int)status);
    return FALSE;
}
