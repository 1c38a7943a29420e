/* test-cuda-check.c — backends/cuda/cuda-check.c: every CUDA, cuBLAS and
 * cuDNN status becomes the right GError through the one macro, CUDA_CHECK.
 * Needs the libraries, not a GPU: it runs wherever the cuda backend builds.
 */
#include "config.h"

#include "cuda-check.h"
#include "tp-test.h"

static int evaluations;

/* Returns status and counts how often it was called. */
static cudaError_t
counted(cudaError_t status)
{
    evaluations++;
    return status;
}

/* Typed statuses, as the libraries' calls return them (an enumeration
 * constant alone is an int in C, which CUDA_CHECK rightly refuses). */
static cublasStatus_t
cublas(cublasStatus_t status)
{
    return status;
}

static cudnnStatus_t
cudnn(cudnnStatus_t status)
{
    return status;
}

/* CUDA_CHECK(call) fails with domain TP_BACKEND_ERROR, want_code, and a message
 * that starts with the call's name. */
#define EXPECT_FAILURE(call, want_code, name)                                                      \
    do {                                                                                           \
        g_autoptr(GError) error = NULL;                                                            \
        ck_assert(!CUDA_CHECK(call, &error));                                                      \
        ck_assert_msg(g_error_matches(error, TP_BACKEND_ERROR, (want_code)),                       \
                      "%s: code %d, want %d", #call, error ? error->code : -1, (int)(want_code));  \
        ck_assert_msg(g_str_has_prefix(error->message, name ": "), "%s: message \"%s\"", #call,    \
                      error->message);                                                             \
    } while (0)

START_TEST(test_success)
{
    g_autoptr(GError) error = NULL;

    evaluations = 0;
    ck_assert(CUDA_CHECK(counted(cudaSuccess), &error));
    ck_assert_int_eq(evaluations, 1);
    ck_assert(CUDA_CHECK(cublas(CUBLAS_STATUS_SUCCESS), &error));
    ck_assert(CUDA_CHECK(cudnn(CUDNN_STATUS_SUCCESS), &error));
    ck_assert_ptr_null(error);
}
END_TEST

START_TEST(test_runtime)
{
    evaluations = 0;
    EXPECT_FAILURE(counted(cudaErrorMemoryAllocation), TP_BACKEND_ERROR_NO_MEMORY, "counted");
    ck_assert_int_eq(evaluations, 1);
    EXPECT_FAILURE(counted(cudaErrorNoDevice), TP_BACKEND_ERROR_NO_DEVICE, "counted");
    EXPECT_FAILURE(counted(cudaErrorInsufficientDriver), TP_BACKEND_ERROR_NO_DEVICE, "counted");
    EXPECT_FAILURE(counted(cudaErrorIllegalAddress), TP_BACKEND_ERROR_FAILED, "counted");
    EXPECT_FAILURE(counted(cudaErrorInvalidValue), TP_BACKEND_ERROR_FAILED, "counted");
}
END_TEST

START_TEST(test_cublas)
{
    EXPECT_FAILURE(cublas(CUBLAS_STATUS_ALLOC_FAILED), TP_BACKEND_ERROR_NO_MEMORY, "cublas");
    EXPECT_FAILURE(cublas(CUBLAS_STATUS_EXECUTION_FAILED), TP_BACKEND_ERROR_FAILED, "cublas");
    EXPECT_FAILURE(cublas(CUBLAS_STATUS_INVALID_VALUE), TP_BACKEND_ERROR_FAILED, "cublas");
}
END_TEST

START_TEST(test_cudnn)
{
    EXPECT_FAILURE(cudnn(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED),
                   TP_BACKEND_ERROR_NO_MEMORY, "cudnn");
    EXPECT_FAILURE(cudnn(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED),
                   TP_BACKEND_ERROR_NO_MEMORY, "cudnn");
    EXPECT_FAILURE(cudnn(CUDNN_STATUS_BAD_PARAM), TP_BACKEND_ERROR_FAILED, "cudnn");
    EXPECT_FAILURE(cudnn(CUDNN_STATUS_NOT_SUPPORTED), TP_BACKEND_ERROR_FAILED, "cudnn");
}
END_TEST

/* A NULL error is allowed, as everywhere in GLib. */
START_TEST(test_null_error)
{
    ck_assert(!CUDA_CHECK(counted(cudaErrorMemoryAllocation), NULL));
    ck_assert(!CUDA_CHECK(cublas(CUBLAS_STATUS_ALLOC_FAILED), NULL));
    ck_assert(!CUDA_CHECK(cudnn(CUDNN_STATUS_BAD_PARAM), NULL));
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("cuda-check");
    TCase *tc = tcase_create("statuses");

    tp_test_init();
    tcase_add_test(tc, test_success);
    tcase_add_test(tc, test_runtime);
    tcase_add_test(tc, test_cublas);
    tcase_add_test(tc, test_cudnn);
    tcase_add_test(tc, test_null_error);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
