/* test-tensor.c — tensors on every backend: shapes and sizes, zero fill,
 * host round trips, reshaping within capacity and refusing beyond it. */
#include "config.h"

#include <string.h>

#include "tp-test.h"

static TpBackend *
open_backend(int i)
{
    return tp_test_backend_open(tp_test_backend_name(i));
}

START_TEST(test_new_shape)
{
    g_autoptr(TpBackend) backend = open_backend(_i);
    g_autoptr(GError) error = NULL;
    const int shape[4] = {2, 3, 4, 5};
    g_autoptr(TpTensor) t = tp_tensor_new(backend, 4, shape, &error);
    g_autofree char *str = NULL;

    ck_assert_msg(t != NULL, "%s", error ? error->message : "");
    ck_assert_ptr_eq(t->backend, backend);
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_int_eq(memcmp(t->shape, shape, sizeof shape), 0);
    ck_assert_uint_eq(t->numel, 120);
    ck_assert_uint_eq(t->capacity, 120);
    ck_assert_ptr_nonnull(t->data);
    str = tp_tensor_shape_to_string(t);
    ck_assert_str_eq(str, "[2, 3, 4, 5]");
}
END_TEST

START_TEST(test_zeros_fill_round_trip)
{
    g_autoptr(TpBackend) backend = open_backend(_i);
    g_autoptr(GError) error = NULL;
    const int shape[2] = {7, 3};
    g_autoptr(TpTensor) t = tp_tensor_new_zeros(backend, 2, shape, &error);
    float host[21], back[21];
    g_autofree float *dup = NULL;

    ck_assert_msg(t != NULL, "%s", error ? error->message : "");
    ck_assert(tp_tensor_download(t, back, &error));
    for (int i = 0; i < 21; i++)
        ck_assert_float_eq(back[i], 0.0f);

    ck_assert(tp_tensor_fill(t, -2.5f, &error));
    dup = tp_tensor_dup_host(t, &error);
    ck_assert_ptr_nonnull(dup);
    for (int i = 0; i < 21; i++)
        ck_assert_float_eq(dup[i], -2.5f);

    tp_test_fill_uniform(host, 21, -1.0f, 1.0f, 7);
    ck_assert(tp_tensor_upload(t, host, &error));
    ck_assert(tp_tensor_download(t, back, &error));
    ck_assert_int_eq(memcmp(host, back, sizeof host), 0);
}
END_TEST

START_TEST(test_reshape)
{
    g_autoptr(TpBackend) backend = open_backend(_i);
    g_autoptr(GError) error = NULL;
    const int shape[3] = {4, 2, 3};
    g_autoptr(TpTensor) t = tp_tensor_new(backend, 3, shape, &error);
    float host[24], back[24];
    g_autofree char *str = NULL;

    tp_test_fill_uniform(host, 24, 0.0f, 1.0f, 3);
    ck_assert(tp_tensor_upload(t, host, &error));

    /* Smaller: contents kept as a flat array, capacity unchanged. */
    ck_assert(tp_tensor_reshape(t, 2, (const int[]){2, 6}));
    ck_assert_uint_eq(t->numel, 12);
    ck_assert_uint_eq(t->capacity, 24);
    str = tp_tensor_shape_to_string(t);
    ck_assert_str_eq(str, "[2, 6]");
    ck_assert(tp_tensor_download(t, back, &error));
    ck_assert_int_eq(memcmp(host, back, 12 * sizeof(float)), 0);

    /* Back to the full size, and to a different 4-D view of it. */
    ck_assert(tp_tensor_reshape(t, 4, (const int[]){1, 2, 3, 4}));
    ck_assert_uint_eq(t->numel, 24);
    ck_assert(tp_tensor_download(t, back, &error));
    ck_assert_int_eq(memcmp(host, back, sizeof host), 0);

    /* Larger than the capacity, or malformed: refused, tensor unchanged. */
    ck_assert(!tp_tensor_reshape(t, 1, (const int[]){25}));
    ck_assert(!tp_tensor_reshape(t, 2, (const int[]){0, 3}));
    ck_assert(!tp_tensor_reshape(t, 5, (const int[]){1, 1, 1, 1, 1}));
    ck_assert_uint_eq(t->numel, 24);
    ck_assert_int_eq(t->ndim, 4);
}
END_TEST

int
main(void)
{
    Suite *suite;
    TCase *tc;
    int n;

    tp_test_init();
    n = tp_test_count_backends();

    suite = suite_create("tensor");
    tc = tcase_create("tensor");
    tcase_add_loop_test(tc, test_new_shape, 0, n);
    tcase_add_loop_test(tc, test_zeros_fill_round_trip, 0, n);
    tcase_add_loop_test(tc, test_reshape, 0, n);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
