/* test-abi.c — pins the layout of the public structs a plugin sees on
 * x86-64 (LP64), so that inserting, removing or retyping a field fails here
 * rather than in someone's out-of-tree plugin (HACKING.md house style rule 2,
 * docs/plugin-abi.md). A new field goes at the end of its struct: then only
 * that struct's size changes here. Anything else is an ABI break: bump
 * TP_PLUGIN_ABI_MAJOR (tp-plugin.h) and the soname, then update the tables.
 * The numbers were read off once and checked by hand against the headers
 * (pointers and gsize 8 bytes, int, enums, gboolean and float 4). */
#include "config.h"

#include <stddef.h>
#include <stdio.h>

#include "tp-test.h"
#include "tp.h"

typedef struct {
    const char *what;
    gsize got, want;
} Pin;

#define PIN(type, member, want)                                                                    \
    {                                                                                              \
#type "." #member, offsetof(type, member), want                                            \
    }
#define SIZE(type, want)                                                                           \
    {                                                                                              \
        "sizeof " #type, sizeof(type), want                                                        \
    }

/* The descriptor, the parameter table and the three vtables, member by
 * member: a vtable member's offset is its position, so the order is pinned. */
static const Pin pins[] = {
    PIN(TpPluginInfo, abi_major, 0),
    PIN(TpPluginInfo, struct_size, 4),
    PIN(TpPluginInfo, kind, 8),
    PIN(TpPluginInfo, name, 16),
    PIN(TpPluginInfo, version, 24),
    PIN(TpPluginInfo, description, 32),
    PIN(TpPluginInfo, license, 40),
    PIN(TpPluginInfo, vtable, 48),
    PIN(TpPluginInfo, vtable_size, 56),
    PIN(TpPluginInfo, params, 64),
    SIZE(TpPluginInfo, 72),

    PIN(TpParamSpec, key, 0),
    PIN(TpParamSpec, type, 8),
    PIN(TpParamSpec, default_value, 16),
    PIN(TpParamSpec, min, 24),
    PIN(TpParamSpec, max, 32),
    PIN(TpParamSpec, choices, 40),
    PIN(TpParamSpec, help, 48),
    SIZE(TpParamSpec, 56),

    PIN(TpCriterionVTable, open, 0),
    PIN(TpCriterionVTable, close, 8),
    PIN(TpCriterionVTable, needs, 16),
    PIN(TpCriterionVTable, normalization, 24),
    PIN(TpCriterionVTable, lrp_config, 32),
    PIN(TpCriterionVTable, score, 40),
    PIN(TpCriterionVTable, aggregate, 48),
    SIZE(TpCriterionVTable, 56),

    PIN(TpBackendVTable, open, 0),
    PIN(TpBackendVTable, close, 8),
    PIN(TpBackendVTable, alloc, 16),
    PIN(TpBackendVTable, free, 24),
    PIN(TpBackendVTable, upload, 32),
    PIN(TpBackendVTable, download, 40),
    PIN(TpBackendVTable, copy, 48),
    PIN(TpBackendVTable, fill, 56),
    PIN(TpBackendVTable, conv2d_forward, 64),
    PIN(TpBackendVTable, conv2d_backward_data, 72),
    PIN(TpBackendVTable, conv2d_backward_filter, 80),
    PIN(TpBackendVTable, gemm, 88),
    PIN(TpBackendVTable, add_bias, 96),
    PIN(TpBackendVTable, sum_rows, 104),
    PIN(TpBackendVTable, batch_norm_forward_train, 112),
    PIN(TpBackendVTable, batch_norm_forward_eval, 120),
    PIN(TpBackendVTable, batch_norm_backward, 128),
    PIN(TpBackendVTable, relu_forward, 136),
    PIN(TpBackendVTable, relu_backward, 144),
    PIN(TpBackendVTable, add, 152),
    PIN(TpBackendVTable, dropout_forward, 160),
    PIN(TpBackendVTable, dropout_backward, 168),
    PIN(TpBackendVTable, pool2d_forward, 176),
    PIN(TpBackendVTable, pool2d_backward, 184),
    PIN(TpBackendVTable, softmax_forward, 192),
    PIN(TpBackendVTable, softmax_backward, 200),
    PIN(TpBackendVTable, softmax_cross_entropy, 208),
    PIN(TpBackendVTable, sgd_update, 216),
    PIN(TpBackendVTable, synchronize, 224),
    PIN(TpBackendVTable, mul, 232),
    PIN(TpBackendVTable, axpby, 240),
    PIN(TpBackendVTable, clamp, 248),
    PIN(TpBackendVTable, stabilized_divide, 256),
    PIN(TpBackendVTable, conv2d_prepared_size, 264),
    PIN(TpBackendVTable, conv2d_prepare, 272),
    PIN(TpBackendVTable, conv2d_forward_prepared, 280),
    PIN(TpBackendVTable, conv2d_forward_relu, 288),
    PIN(TpBackendVTable, unary_forward, 296),
    PIN(TpBackendVTable, unary_backward, 304),
    PIN(TpBackendVTable, binary_forward, 312),
    PIN(TpBackendVTable, binary_backward, 320),
    PIN(TpBackendVTable, strided_copy, 328),
    PIN(TpBackendVTable, reduce_forward, 336),
    PIN(TpBackendVTable, reduce_backward, 344),
    PIN(TpBackendVTable, layer_norm_forward, 352),
    PIN(TpBackendVTable, layer_norm_backward, 360),
    SIZE(TpBackendVTable, 368),

    PIN(TpDatasetVTable, open, 0),
    PIN(TpDatasetVTable, close, 8),
    PIN(TpDatasetVTable, describe, 16),
    PIN(TpDatasetVTable, read, 24),
    PIN(TpCommVTable, open, 0),
    PIN(TpCommVTable, close, 8),
    PIN(TpCommVTable, rank, 16),
    PIN(TpCommVTable, size, 24),
    PIN(TpCommVTable, all_reduce_sum_float, 32),
    PIN(TpCommVTable, all_reduce_sum_double, 40),
    PIN(TpCommVTable, broadcast, 48),
    PIN(TpCommVTable, barrier, 56),
    PIN(TpCommVTable, abort, 64),
    PIN(TpCommVTable, all_reduce_sum_float_start, 72),
    PIN(TpCommVTable, test, 80),
    PIN(TpCommVTable, wait, 88),
    SIZE(TpCommVTable, 96),
    SIZE(TpDatasetVTable, 32),

    /* What the vtables pass: geometry, hyper-parameters, settings. */
    PIN(TpConvGeometry, n, 0),
    PIN(TpConvGeometry, out_c, 16),
    PIN(TpConvGeometry, kh, 28),
    PIN(TpConvGeometry, stride_h, 36),
    PIN(TpConvGeometry, pad_t, 44),
    PIN(TpConvGeometry, dil_h, 60),
    PIN(TpConvGeometry, groups, 68),
    SIZE(TpConvGeometry, 72),
    PIN(TpPoolGeometry, mode, 0),
    PIN(TpPoolGeometry, n, 4),
    PIN(TpPoolGeometry, out_h, 20),
    PIN(TpPoolGeometry, kh, 28),
    PIN(TpPoolGeometry, pad_t, 44),
    PIN(TpPoolGeometry, count_include_pad, 60),
    SIZE(TpPoolGeometry, 64),
    PIN(TpBatchNormGeometry, hw, 8),
    PIN(TpBatchNormGeometry, epsilon, 12),
    PIN(TpBatchNormGeometry, momentum, 16),
    SIZE(TpBatchNormGeometry, 20),
    PIN(TpSgdHyper, lr, 0),
    PIN(TpSgdHyper, weight_decay, 8),
    PIN(TpSgdHyper, nesterov, 12),
    SIZE(TpSgdHyper, 16),
    PIN(TpLrpConfig, rules, 0),
    PIN(TpLrpConfig, start, 4),
    PIN(TpLrpConfig, epsilon, 8),
    SIZE(TpLrpConfig, 16),
    PIN(TpDatasetInfo, n_samples, 0),
    PIN(TpDatasetInfo, channels, 8),
    PIN(TpDatasetInfo, n_classes, 20),
    PIN(TpDatasetInfo, class_names, 24),
    SIZE(TpDatasetInfo, 32),
    /* the kernel families' parameters (6 axes: TP_KERNEL_MAX_DIMS) */
    PIN(TpUnaryOp, function, 0),
    PIN(TpUnaryOp, alpha, 4),
    PIN(TpUnaryOp, beta, 8),
    PIN(TpUnaryOp, lo, 12),
    PIN(TpUnaryOp, hi, 16),
    SIZE(TpUnaryOp, 20),
    PIN(TpBroadcastGeometry, ndim, 0),
    PIN(TpBroadcastGeometry, y, 4),
    PIN(TpBroadcastGeometry, a, 28),
    PIN(TpBroadcastGeometry, b, 52),
    SIZE(TpBroadcastGeometry, 76),
    PIN(TpStridedCopy, ndim, 0),
    PIN(TpStridedCopy, shape, 4),
    PIN(TpStridedCopy, src_stride, 32),
    PIN(TpStridedCopy, dst_stride, 80),
    PIN(TpStridedCopy, src_offset, 128),
    PIN(TpStridedCopy, dst_offset, 136),
    PIN(TpStridedCopy, accumulate, 144),
    SIZE(TpStridedCopy, 152),
    PIN(TpReduceGeometry, ndim, 0),
    PIN(TpReduceGeometry, x, 4),
    PIN(TpReduceGeometry, y, 28),
    SIZE(TpReduceGeometry, 52),
    PIN(TpLayerNormGeometry, rows, 0),
    PIN(TpLayerNormGeometry, cols, 4),
    PIN(TpLayerNormGeometry, epsilon, 8),
    SIZE(TpLayerNormGeometry, 12),

    /* What plugins read from the engine's objects. */
    PIN(TpTensor, backend, 0),
    PIN(TpTensor, ndim, 8),
    PIN(TpTensor, shape, 12),
    PIN(TpTensor, numel, 32),
    PIN(TpTensor, capacity, 40),
    PIN(TpTensor, data, 48),
    PIN(TpTensor, version, 56),
    SIZE(TpTensor, 64),
    PIN(TpShape, dim, 4),
    SIZE(TpShape, 16),
    PIN(TpUnitSpace, name, 0),
    PIN(TpUnitSpace, n_units, 8),
    PIN(TpUnitSpace, n_producers, 12),
    PIN(TpUnitSpace, producers, 16),
    PIN(TpUnitSpace, linear, 24),
    SIZE(TpUnitSpace, 32),
    /* The open backend a tensor points at: its vtable last, so that the
     * vtable grows at the struct's end. */
    PIN(TpBackend, info, 0),
    PIN(TpBackend, self, 8),
    PIN(TpBackend, max_tensor_bytes, 16),
    PIN(TpBackend, vt, 24),
    SIZE(TpBackend, 24 + 368),
    PIN(TpNode, op, 0),
    PIN(TpNode, name, 8),
    PIN(TpNode, n_inputs, 16),
    PIN(TpNode, inputs, 20),
    PIN(TpNode, output, 28),
    /* TpNode: the attribute union is last, so a new op's larger attributes
     * change only its size (the union's size is the engine's to change). */
    PIN(TpNode, n_params, 32),
    PIN(TpNode, params, 40),
    PIN(TpNode, grads, 72),
    PIN(TpNode, attrs, 104),
    SIZE(TpNode, 160),
};

START_TEST(test_layout)
{
    ck_assert_msg(pins[_i].got == pins[_i].want,
                  "%s is %" G_GSIZE_FORMAT ", ABI 1 has %" G_GSIZE_FORMAT
                  ": append new fields at the end only (docs/plugin-abi.md)",
                  pins[_i].what, pins[_i].got, pins[_i].want);
}
END_TEST

/* The values a plugin compiles in. */
START_TEST(test_constants)
{
    ck_assert_int_eq(TP_PLUGIN_ABI_MAJOR, 1);
    ck_assert_int_eq(TP_PLUGIN_KIND_CRITERION, 1);
    ck_assert_int_eq(TP_PLUGIN_KIND_BACKEND, 2);
    ck_assert_int_eq(TP_PLUGIN_KIND_DATASET, 3);
    ck_assert_int_eq(TP_PLUGIN_KIND_COMM, 4);
    ck_assert_int_eq(TP_PARAM_INT, 1);
    ck_assert_int_eq(TP_PARAM_DOUBLE, 2);
    ck_assert_int_eq(TP_PARAM_BOOLEAN, 3);
    ck_assert_int_eq(TP_PARAM_STRING, 4);
    ck_assert_int_eq(TP_PARAM_CHOICE, 5);
    ck_assert_int_eq(TP_CRITERION_NEEDS_WEIGHTS, 0);
    ck_assert_int_eq(TP_CRITERION_NEEDS_DATA, 1);
    ck_assert_int_eq(TP_CRITERION_NEEDS_GRADIENT, 2);
    ck_assert_int_eq(TP_CRITERION_NEEDS_RELEVANCE, 4);
    ck_assert_int_eq(TP_NORMALIZE_NONE, 0);
    ck_assert_int_eq(TP_NORMALIZE_L1, 1);
    ck_assert_int_eq(TP_NORMALIZE_L2, 2);
    ck_assert_int_eq(TP_SCORES_MEAN, 0);
    ck_assert_int_eq(TP_SCORES_SUM, 1);
    ck_assert_int_eq(TP_SPLIT_TRAIN, 0);
    ck_assert_int_eq(TP_SPLIT_TEST, 1);
    ck_assert_int_eq(TP_LRP_RULES_COMPOSITE, 0);
    ck_assert_int_eq(TP_LRP_RULES_ZPLUS, 1);
    ck_assert_int_eq(TP_LRP_RULES_EPSILON, 2);
    ck_assert_int_eq(TP_LRP_RULES_ALPHA2BETA1, 3);
    ck_assert_int_eq(TP_LRP_START_UNIT, 0);
    ck_assert_int_eq(TP_LRP_START_LOGIT, 1);
    ck_assert_int_eq(TP_POOL_MAX, 1);
    ck_assert_int_eq(TP_POOL_AVERAGE, 2);
    ck_assert_int_eq(TP_TENSOR_MAX_DIMS, 4);
    ck_assert_int_eq(TP_KERNEL_MAX_DIMS, 6);
    ck_assert_int_eq(TP_KERNELS_UNARY, 1);
    ck_assert_int_eq(TP_KERNELS_BINARY, 2);
    ck_assert_int_eq(TP_KERNELS_STRIDED, 3);
    ck_assert_int_eq(TP_KERNELS_REDUCE, 4);
    ck_assert_int_eq(TP_KERNELS_LAYER_NORM, 5);
    ck_assert_int_eq(TP_UNARY_RELU, 1);
    ck_assert_int_eq(TP_UNARY_CLIP, 2);
    ck_assert_int_eq(TP_UNARY_SIGMOID, 3);
    ck_assert_int_eq(TP_UNARY_HARD_SIGMOID, 4);
    ck_assert_int_eq(TP_UNARY_HARD_SWISH, 5);
    ck_assert_int_eq(TP_UNARY_SILU, 6);
    ck_assert_int_eq(TP_UNARY_GELU, 7);
    ck_assert_int_eq(TP_UNARY_LEAKY_RELU, 8);
    ck_assert_int_eq(TP_UNARY_TANH, 9);
    ck_assert_int_eq(TP_UNARY_SQRT, 10);
    ck_assert_int_eq(TP_UNARY_ERF, 11);
    ck_assert_int_eq(TP_UNARY_EXP, 12);
    ck_assert_int_eq(TP_UNARY_RECIPROCAL, 13);
    ck_assert_int_eq(TP_UNARY_POW, 14);
    ck_assert_int_eq(TP_UNARY_LOG, 15);
    ck_assert_int_eq(TP_UNARY_NEG, 16);
    ck_assert_int_eq(TP_UNARY_ABS, 17);
    ck_assert_int_eq(TP_BINARY_ADD, 1);
    ck_assert_int_eq(TP_BINARY_SUB, 2);
    ck_assert_int_eq(TP_BINARY_MUL, 3);
    ck_assert_int_eq(TP_BINARY_DIV, 4);
    ck_assert_int_eq(TP_REDUCE_SUM, 1);
    ck_assert_int_eq(TP_REDUCE_MEAN, 2);
    ck_assert_int_eq(TP_SHAPE_MAX_DIMS, 3);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("abi");
    TCase *tc = tcase_create("abi");

#if !defined(__x86_64__) || !defined(__LP64__)
    puts("SKIP: the pinned layout is x86-64's (LP64)");
    return 77;
#endif
    tp_test_init();
    tcase_add_loop_test(tc, test_layout, 0, G_N_ELEMENTS(pins));
    tcase_add_test(tc, test_constants);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
