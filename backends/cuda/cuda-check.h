/* cuda-check.h — the one way a CUDA, cuBLAS or cuDNN status becomes a GError
 * in the cuda backend (HACKING.md, house style rule 6).
 *
 *     if (!CUDA_CHECK(cudaMalloc(&mem, bytes), error))
 *         return NULL;
 *
 * CUDA_CHECK evaluates its call once and is TRUE when the status is success.
 * Otherwise it sets error in TP_BACKEND_ERROR, naming the call (its text up
 * to the first '('), the library's own name and description of the status,
 * and returns FALSE. Out-of-memory statuses map to TP_BACKEND_ERROR_NO_MEMORY,
 * "no device / no driver" to TP_BACKEND_ERROR_NO_DEVICE, the rest to
 * TP_BACKEND_ERROR_FAILED. Nothing here aborts.
 */
#ifndef CUDA_CHECK_H
#define CUDA_CHECK_H

#include <glib.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "tp-backend.h"

G_BEGIN_DECLS

#define CUDA_CHECK(call, error)                                                                    \
    _Generic((call), cudaError_t                                                                   \
             : cuda_check_runtime, cublasStatus_t                                                  \
             : cuda_check_cublas, cudnnStatus_t                                                    \
             : cuda_check_cudnn)((call), #call, (error))

/* The three parts of CUDA_CHECK (cuda-check.c); `what` is the text of the call. */
gboolean cuda_check_runtime(cudaError_t status, const char *what, GError **error);
gboolean cuda_check_cublas(cublasStatus_t status, const char *what, GError **error);
gboolean cuda_check_cudnn(cudnnStatus_t status, const char *what, GError **error);

G_END_DECLS

#endif /* CUDA_CHECK_H */
