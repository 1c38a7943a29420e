/* test-conformance.c — every kernel of every backend found in the build,
 * against the reference kernels of tests/tp-reference.c, on seeded random
 * data moved with the backend's own alloc / upload / download / free.
 *
 * Generic: the backends come from tp_test_backend_names(), so a new backend
 * plugin is covered with no new test code; one whose device is absent (cuda
 * without a GPU) is skipped with a "skipped: backend 'cuda': ..." line in the
 * log. Each case table below names its edge shapes; each failure message
 * names the backend, the kernel, the case and the output. Pure outputs are
 * pre-filled with NaN, so an element a kernel forgets to write, or
 * accumulates into when it must overwrite, fails (tp_test_assert_close
 * rejects non-finite values). An allocation no machine can satisfy must be
 * a NO_MEMORY error, not a crash.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tp-reference.h"
#include "tp-test.h"

/* ------------------------------------------------------------ tolerances */

/* Per kernel: an output passes where |got - want| <= atol + rtol * |want|,
 * except convolutions, whose rtol scales the sums of the absolute values of
 * the terms instead (see expect_close_to_terms). Data are O(1); the
 * reference accumulates in double, a backend in float. */
typedef enum {
    TOL_MEMORY,
    TOL_CONV,
    TOL_GEMM,
    TOL_BIAS,
    TOL_BATCH_NORM,
    TOL_BATCH_NORM_RUNNING,
    TOL_EXACT,
    TOL_ADD,
    TOL_DROPOUT,
    TOL_POOL_MAX,
    TOL_POOL_AVERAGE,
    TOL_SOFTMAX,
    TOL_XENT_LOSS,
    TOL_XENT_GRAD,
    TOL_SGD,
    TOL_ELEMENTWISE,
    TOL_AXPBY,
    TOL_UNARY,
    TOL_BROADCAST,
    TOL_REDUCE,
    TOL_FINITE_DIFF,
    TOL_LAYER_NORM,
} TolKind;

/* clang-format off */
static const struct {
    const char *kernels;
    double atol, rtol;
} tolerances[] = {
    /*                         kernels                                    atol  rtol */
    [TOL_MEMORY] =             { "upload, download, copy, fill",            0.0,  0.0 },
    [TOL_CONV] =               { "conv2d_* (rtol of the sum of |terms|)",   1e-6, 2e-6 },
    [TOL_GEMM] =               { "gemm",                                    1e-5, 1e-5 },
    [TOL_BIAS] =               { "add_bias, sum_rows",                      1e-5, 1e-5 },
    [TOL_BATCH_NORM] =         { "batch_norm_* outputs and gradients",      1e-4, 1e-4 },
    [TOL_BATCH_NORM_RUNNING] = { "batch_norm running and saved statistics", 1e-5, 1e-5 },
    [TOL_EXACT] =              { "relu_forward, relu_backward",             0.0,  0.0 },
    [TOL_ADD] =                { "add",                                     0.0,  1e-6 },
    [TOL_DROPOUT] =            { "dropout_forward, dropout_backward",       0.0,  1e-6 },
    [TOL_POOL_MAX] =           { "pool2d MAX (backward sums overlaps)",     1e-6, 1e-6 },
    [TOL_POOL_AVERAGE] =       { "pool2d AVERAGE forward and backward",     1e-6, 1e-5 },
    [TOL_SOFTMAX] =            { "softmax_forward, softmax_backward",       1e-6, 1e-5 },
    [TOL_XENT_LOSS] =          { "softmax_cross_entropy loss",              1e-6, 1e-5 },
    [TOL_XENT_GRAD] =          { "softmax_cross_entropy dlogits",           1e-7, 1e-5 },
    [TOL_SGD] =                { "sgd_update",                              1e-6, 1e-5 },
    [TOL_ELEMENTWISE] =        { "mul, clamp, stabilized_divide",           0.0,  1e-6 },
    [TOL_AXPBY] =              { "axpby (cancels: absolute part)",          1e-6, 1e-6 },
    [TOL_UNARY] =              { "unary_* (float libm against double)",     1e-6, 1e-5 },
    [TOL_BROADCAST] =          { "binary_* (gradients sum broadcast axes)", 1e-5, 1e-5 },
    [TOL_REDUCE] =             { "reduce_*",                                1e-5, 1e-5 },
    [TOL_FINITE_DIFF] =        { "backward against central differences",    2e-3, 2e-3 },
    [TOL_LAYER_NORM] =         { "layer_norm_* outputs, statistics, gradients", 1e-5, 1e-4 },
};
/* clang-format on */

/* ------------------------------------------------------------ the rig */

/* One open backend and the buffers made on it (freed with it). */
typedef struct {
    const char *name;
    TpBackend *backend;
    GPtrArray *mems;
} Rig;

static Rig *
rig_open(const char *name)
{
    Rig *rig = g_new0(Rig, 1);

    rig->name = name;
    rig->backend = tp_test_backend_open(name);
    rig->mems = g_ptr_array_new();
    return rig;
}

static void
rig_close(Rig *rig)
{
    for (guint i = 0; i < rig->mems->len; i++)
        rig->backend->vt.free(rig->backend->self, g_ptr_array_index(rig->mems, i));
    g_ptr_array_unref(rig->mems);
    tp_backend_free(rig->backend);
    g_free(rig);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Rig, rig_close)

/* Fails the test unless a kernel call succeeded. */
static void
expect_ok(const Rig *rig, const char *kernel, const char *case_name, gboolean ok,
          const GError *error)
{
    ck_assert_msg(ok, "backend %s, %s, case \"%s\": returned FALSE: %s", rig->name, kernel,
                  case_name, error != NULL ? error->message : "(no error set)");
    ck_assert_msg(error == NULL, "backend %s, %s, case \"%s\": returned TRUE with an error: %s",
                  rig->name, kernel, case_name, error->message);
}

/* Calls the kernel `member` of rig's backend; its arguments after self and
 * before error follow. */
#define CALL(rig, member, case_name, ...)                                                          \
    do {                                                                                           \
        g_autoptr(GError) call_error = NULL;                                                       \
        gboolean call_ok =                                                                         \
            (rig)->backend->vt.member((rig)->backend->self, __VA_ARGS__, &call_error);             \
        expect_ok((rig), #member, (case_name), call_ok, call_error);                               \
    } while (0)

/* n floats of backend memory holding host[0..n). */
static float *
rig_upload(Rig *rig, const float *host, gsize n)
{
    g_autoptr(GError) error = NULL;
    float *mem = rig->backend->vt.alloc(rig->backend->self, n, &error);

    ck_assert_msg(mem != NULL, "backend %s: alloc of %" G_GSIZE_FORMAT " floats: %s", rig->name, n,
                  error ? error->message : "(no error set)");
    g_ptr_array_add(rig->mems, mem);
    CALL(rig, upload, "(rig)", mem, host, n);
    return mem;
}

/* n floats of backend memory for a kernel's output, all NaN. */
static float *
rig_output(Rig *rig, gsize n)
{
    g_autofree float *nan = g_new(float, MAX(n, 1));

    for (gsize i = 0; i < n; i++)
        nan[i] = NAN;
    return rig_upload(rig, nan, n);
}

/* A new host copy of n floats of backend memory. */
static float *
rig_fetch(Rig *rig, const float *mem, gsize n)
{
    float *host = g_new(float, MAX(n, 1));

    CALL(rig, download, "(rig)", host, mem, n);
    return host;
}

/* Downloads n floats of mem and compares them with want. */
static void
expect_close(Rig *rig, const char *kernel, const char *case_name, const char *output,
             const float *mem, const float *want, gsize n, TolKind tol)
{
    g_autofree float *got = rig_fetch(rig, mem, n);
    g_autofree char *what =
        g_strdup_printf("backend %s, %s, case \"%s\": %s", rig->name, kernel, case_name, output);

    tp_test_assert_close(got, want, n, tolerances[tol].atol, tolerances[tol].rtol, what);
}

/* Downloads n floats of mem and compares them with want, normwise per plane:
 * terms[i] is the sum of the absolute values of the terms that make want[i],
 * and each consecutive block of `plane` outputs (a channel's plane of one
 * sample, or one filter) is allowed atol + rtol times its largest terms[i].
 * A float sum rounds in proportion to its terms, not to |want[i]|, which
 * cancellation can make arbitrarily small; fast algorithms (Winograd's, FFT)
 * also spread the rounding of a tile over its neighbours. */
static void
expect_close_to_terms(Rig *rig, const char *kernel, const char *case_name, const char *output,
                      const float *mem, const float *want, const float *terms, gsize n,
                      gsize plane, TolKind tol)
{
    g_autofree float *got = rig_fetch(rig, mem, n);

    for (gsize p0 = 0; p0 < n; p0 += plane) {
        double largest = 0.0, bound;
        for (gsize i = p0; i < p0 + plane; i++)
            largest = MAX(largest, terms[i]);
        bound = tolerances[tol].atol + tolerances[tol].rtol * largest;
        for (gsize i = p0; i < p0 + plane; i++) {
            double diff = fabs((double)got[i] - (double)want[i]);
            ck_assert_msg(isfinite(got[i]) && diff <= bound,
                          "backend %s, %s, case \"%s\": %s: element %" G_GSIZE_FORMAT
                          " of %" G_GSIZE_FORMAT ": got %.9g, want %.9g (|diff| %.3g > atol %.3g "
                          "+ rtol %.3g * largest sum of |terms| in its plane %.6g)",
                          rig->name, kernel, case_name, output, i, n, got[i], want[i], diff,
                          tolerances[tol].atol, tolerances[tol].rtol, largest);
        }
    }
}

/* A new array of the absolute values of x[0, n). */
static float *
absolute(const float *x, gsize n)
{
    float *a = g_new(float, MAX(n, 1));

    for (gsize i = 0; i < n; i++)
        a[i] = fabsf(x[i]);
    return a;
}

/* n floats uniform in [lo, hi) (owned). */
static float *
random_floats(gsize n, float lo, float hi, guint32 seed)
{
    float *x = g_new(float, MAX(n, 1));

    tp_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* A host copy of n floats (owned). */
static float *
dup_floats(const float *x, gsize n)
{
    return g_memdup2(x, MAX(n, 1) * sizeof(float));
}

/* ------------------------------------------------------------ memory */

START_TEST(test_memory)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const gsize sizes[] = {1, 7, 1001, 65537};

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));

        for (gsize s = 0; s < G_N_ELEMENTS(sizes); s++) {
            gsize n = sizes[s];
            g_autofree char *name = g_strdup_printf("%" G_GSIZE_FORMAT " floats", n);
            g_autofree float *host = random_floats(n, -1.0f, 1.0f, 100 + (guint32)s);
            g_autofree float *filled = g_new(float, n);
            float *mem = rig_upload(rig, host, n);
            float *other = rig_output(rig, n);

            expect_close(rig, "upload + download", name, "round trip", mem, host, n, TOL_MEMORY);
            CALL(rig, copy, name, other, mem, n);
            expect_close(rig, "copy", name, "dst", other, host, n, TOL_MEMORY);
            CALL(rig, fill, name, other, -2.5f, n);
            for (gsize i = 0; i < n; i++)
                filled[i] = -2.5f;
            expect_close(rig, "fill", name, "dst", other, filled, n, TOL_MEMORY);
            /* copy of a part, and the rest left alone */
            CALL(rig, copy, name, other, mem, n / 2);
            memcpy(filled, host, n / 2 * sizeof(float));
            expect_close(rig, "copy (first half)", name, "dst", other, filled, n, TOL_MEMORY);
        }
        {
            g_autoptr(GError) error = NULL;
            gboolean ok = rig->backend->vt.synchronize(rig->backend->self, &error);
            expect_ok(rig, "synchronize", "(after memory)", ok, error);
        }
    }
}
END_TEST

/* Freeing and allocating again, in sizes that repeat (a backend may reuse
 * freed blocks): no allocation returns a block that is still live, and every
 * live block keeps what was uploaded to it. */
START_TEST(test_memory_reuse)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const gsize sizes[] = {1001, 37, 1001, 1001, 4096, 37};

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        TpBackend *backend = rig->backend;
        float *mems[3 * G_N_ELEMENTS(sizes)] = {NULL};
        float *hosts[G_N_ELEMENTS(mems)] = {NULL};

        for (gsize round = 0; round < 3; round++) {
            for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
                gsize k = round * G_N_ELEMENTS(sizes) + i, n = sizes[i];
                g_autoptr(GError) error = NULL;

                hosts[k] = random_floats(n, -1.0f, 1.0f, 200 + (guint32)k);
                mems[k] = backend->vt.alloc(backend->self, n, &error);
                ck_assert_msg(mems[k] != NULL, "backend %s: alloc: %s", rig->name,
                              error ? error->message : "(no error set)");
                for (gsize j = 0; j < k; j++)
                    ck_assert_msg(mems[j] != mems[k],
                                  "backend %s: allocation %" G_GSIZE_FORMAT
                                  " returned the live block of allocation %" G_GSIZE_FORMAT,
                                  rig->name, k, j);
                CALL(rig, upload, "reuse", mems[k], hosts[k], n);
            }
            /* free every other block of this round: the next round takes them back */
            for (gsize i = 0; i < G_N_ELEMENTS(sizes); i += 2) {
                gsize k = round * G_N_ELEMENTS(sizes) + i;
                backend->vt.free(backend->self, mems[k]);
                mems[k] = NULL;
            }
        }
        for (gsize k = 0; k < G_N_ELEMENTS(mems); k++) {
            gsize n = sizes[k % G_N_ELEMENTS(sizes)];
            if (mems[k] == NULL)
                continue;
            expect_close(rig, "upload + download after reuse", "reuse", "live block", mems[k],
                         hosts[k], n, TOL_MEMORY);
            backend->vt.free(backend->self, mems[k]);
        }
        for (gsize k = 0; k < G_N_ELEMENTS(hosts); k++)
            g_free(hosts[k]);
    }
}
END_TEST

/* A backend with a `prepare` key (cpu) offers a prepared form for a
 * 3x3 convolution with 64 channels over 14x14 maps by default, and none with
 * prepare = false; conv_cases runs the prepared forward itself. */
START_TEST(test_prepare_key)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const TpConvGeometry g = {.n = 4, .c = 64, .h = 14, .w = 14, .out_c = 64, .out_h = 14,
                              .out_w = 14, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                              .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .dil_h = 1,
                              .dil_w = 1, .groups = 1};

    for (guint b = 0; b < names->len; b++) {
        const char *name = g_ptr_array_index(names, b);
        g_autoptr(GError) error = NULL;
        const TpPlugin *plugin =
            tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, name, &error);
        g_autoptr(TpParams) params = tp_params_new(plugin->info->params);
        g_autoptr(TpBackend) on = NULL;
        g_autoptr(TpBackend) off = NULL;

        if (!tp_params_set(params, "prepare", "false", NULL)) {
            g_print("skipped: backend %s has no prepare key\n", name);
            continue;
        }
        off = tp_backend_new(plugin->info, params, &error);
        on = tp_test_backend_open(name);
        ck_assert_msg(off != NULL, "backend %s: %s", name, error ? error->message : "?");
        ck_assert_uint_gt(on->vt.conv2d_prepared_size(on->self, &g), 0);
        ck_assert_uint_eq(off->vt.conv2d_prepared_size(off->self, &g), 0);
    }
}
END_TEST

/* An allocation no machine can satisfy (2^61 bytes) is an error with
 * TP_BACKEND_ERROR_NO_MEMORY, not a crash, and the backend goes on working. */
START_TEST(test_out_of_memory)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const gsize huge = (gsize)1 << 59; /* floats */

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        g_autoptr(GError) error = NULL;
        float *mem = rig->backend->vt.alloc(rig->backend->self, huge, &error);
        g_autofree float *host = random_floats(7, -1.0f, 1.0f, 105);

        ck_assert_msg(mem == NULL, "backend %s: alloc of %" G_GSIZE_FORMAT " floats succeeded",
                      rig->name, huge);
        ck_assert_msg(g_error_matches(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY),
                      "backend %s: alloc of %" G_GSIZE_FORMAT " floats: %s", rig->name, huge,
                      error ? error->message : "(no error set)");
        expect_close(rig, "upload + download after a failed alloc", "7 floats", "round trip",
                     rig_upload(rig, host, 7), host, 7, TOL_MEMORY);
    }
}
END_TEST

/* ------------------------------------------------------------ convolution */

typedef struct {
    const char *name;
    int n, c, h, w, out_c, kh, kw;
    int stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups;
    gboolean bias;
} ConvCase;

/* clang-format off */
static const ConvCase conv_cases[] = {
    /* n    c     h     w   oc  kh  kw  sh  sw  pt  pl  pb  pr  dh  dw  grp   bias */
    { "1x1 pointwise, n3 c3->5 7x9",
       3,   3,    7,    9,   5,  1,  1,  1,  1,  0,  0,  0,  0,  1,  1,   1,  TRUE },
    { "1x1 pointwise groups 2, n1 c4->6 7x9",
       1,   4,    7,    9,   6,  1,  1,  1,  1,  0,  0,  0,  0,  1,  1,   2, FALSE },
    { "1x1 stride 2, n3 c37->8 7x9",
       3,  37,    7,    9,   8,  1,  1,  2,  2,  0,  0,  0,  0,  1,  1,   1,  TRUE },
    { "1x1 padded, n1 c3->4 7x9",
       1,   3,    7,    9,   4,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,   1, FALSE },
    { "3x3 pad 1, n3 c3->4 7x9",
       3,   3,    7,    9,   4,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "3x3 unpadded, n1 c1->1 7x9",
       1,   1,    7,    9,   1,  3,  3,  1,  1,  0,  0,  0,  0,  1,  1,   1, FALSE },
    { "3x3 stride 2, asymmetric pads 0,1,2,1, n1 c37->8 7x9",
       1,  37,    7,    9,   8,  3,  3,  2,  2,  0,  1,  2,  1,  1,  1,   1, FALSE },
    { "3x3 dilation 2 pad 2, n3 c3->6 9x7",
       3,   3,    9,    7,   6,  3,  3,  1,  1,  2,  2,  2,  2,  2,  2,   1,  TRUE },
    { "3x3 groups 2, n3 c4->6 7x9",
       3,   4,    7,    9,   6,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   2,  TRUE },
    { "depthwise 3x3 stride 2, n3 c37 groups 37 7x9",
       3,  37,    7,    9,  37,  3,  3,  2,  2,  1,  1,  1,  1,  1,  1,  37,  TRUE },
    { "depthwise multiplier 2, n1 c3->6 groups 3 7x9",
       1,   3,    7,    9,   6,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   3, FALSE },
    { "5x3 stride 2x1 dilation 1x2 pads 2,0,1,3, n3 c3->5",
       3,   3,    7,    9,   5,  5,  3,  2,  1,  2,  0,  1,  3,  1,  2,   1,  TRUE },
    { "kernel = whole 7x9 image, n3 c3->37",
       3,   3,    7,    9,  37,  7,  9,  1,  1,  0,  0,  0,  0,  1,  1,   1,  TRUE },
    { "3x3 stride 2 pad 3: outputs that see only padding",
       1,   3,    5,    5,   2,  3,  3,  2,  2,  3,  3,  3,  3,  1,  1,   1,  TRUE },
    { "VGG-like 3x3 pad 1 after pruning, n4 c37->64 14x14",
       4,  37,   14,   14,  64,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "large 256x256 image (scratch split in chunks), n3 c12->2",
       3,  12,  256,  256,   2,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "deep layer at batch 1 (the cpu GEMM in row blocks), n1 c256->100 3x3",
       1, 256,    3,    3, 100,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "3x3 asymmetric pads 1,2,0,1 (cpu Winograd, partial tiles), n2 c40->33 19x13",
       2,  40,   19,   13,  33,  3,  3,  1,  1,  1,  2,  0,  1,  1,  1,   1,  TRUE },
    { "first layer: 3x3 dilation 2 pad 2,1,0,2 on one channel, n2 c1->5 9x7",
       2,   1,    9,    7,   5,  3,  3,  1,  1,  2,  1,  0,  2,  2,  2,   1,  TRUE },
    { "first layer: 3x3 stride 2 pad 1 on one channel, n3 c1->4 9x8",
       3,   1,    9,    8,   4,  3,  3,  2,  2,  1,  1,  1,  1,  1,  1,   1, FALSE },
    { "3x5 stride 1 (not Winograd's 3x3), n3 c4->5 9x9",
       3,   4,    9,    9,   5,  3,  5,  1,  1,  1,  2,  1,  2,  1,  1,   1,  TRUE },
    { "3x3 pad 3 (cpu Winograd: outputs that see only padding), n2 c5->17 5x5",
       2,   5,    5,    5,  17,  3,  3,  1,  1,  3,  3,  3,  3,  1,  1,   1, FALSE },
    { "first layer at batch 3 (cpu: a GEMM per sample on planes of 256+), n3 c1->5 17x17",
       3,   1,   17,   17,   5,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "3x3 groups 2 on planes of 256+ (cpu: a GEMM per sample and group), n2 c4->6 16x16",
       2,   4,   16,   16,   6,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   2,  TRUE },
    { "VGG-like 3x3 pad 1 at batch 1 (cpu packed weights, 49 columns), n1 c64->40 7x7",
       1,  64,    7,    7,  40,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1,  TRUE },
    { "VGG-like 3x3 pad 1 at batch 64 (cpu Winograd), n64 c64->128 3x3",
      64,  64,    3,    3, 128,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   1, FALSE },
    { "depthwise 3x3 pad 1 (cpu direct: partial vectors), n2 c5 groups 5 13x11",
       2,   5,   13,   11,   5,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,   5,  TRUE },
    { "depthwise 3x3 stride 2 pad 1 on odd sizes, n3 c7 groups 7 15x17",
       3,   7,   15,   17,   7,  3,  3,  2,  2,  1,  1,  1,  1,  1,  1,   7, FALSE },
    { "depthwise 3x3 stride 2 pads 0,0,1,1 ('same' from TensorFlow), n1 c4 groups 4 16x16",
       1,   4,   16,   16,   4,  3,  3,  2,  2,  0,  0,  1,  1,  1,  1,   4,  TRUE },
    { "depthwise 5x5 stride 1 pad 2 (rows of several vectors), n1 c3 groups 3 9x37",
       1,   3,    9,   37,   3,  5,  5,  1,  1,  2,  2,  2,  2,  1,  1,   3,  TRUE },
    { "depthwise 5x5 stride 2 pad 2, n2 c6 groups 6 17x13",
       2,   6,   17,   13,   6,  5,  5,  2,  2,  2,  2,  2,  2,  1,  1,   6,  TRUE },
    { "depthwise 3x3 stride 2x1 dilation 2x1 pads 2,1,1,0, multiplier 3, n2 c3->9 11x10",
       2,   3,   11,   10,   9,  3,  3,  2,  1,  2,  1,  1,  0,  2,  1,   3,  TRUE },
    { "depthwise 3x3 pad 1 on many planes (cpu: threads split planes), n4 c32 groups 32 28x28",
       4,  32,   28,   28,  32,  3,  3,  1,  1,  1,  1,  1,  1,  1,  1,  32, FALSE },
};
/* clang-format on */

static TpConvGeometry
conv_geometry(const ConvCase *cc)
{
    TpConvGeometry g = {
        .n = cc->n,
        .c = cc->c,
        .h = cc->h,
        .w = cc->w,
        .out_c = cc->out_c,
        .kh = cc->kh,
        .kw = cc->kw,
        .stride_h = cc->stride_h,
        .stride_w = cc->stride_w,
        .pad_t = cc->pad_t,
        .pad_l = cc->pad_l,
        .pad_b = cc->pad_b,
        .pad_r = cc->pad_r,
        .dil_h = cc->dil_h,
        .dil_w = cc->dil_w,
        .groups = cc->groups,
    };

    g.out_h = (g.h + g.pad_t + g.pad_b - g.dil_h * (g.kh - 1) - 1) / g.stride_h + 1;
    g.out_w = (g.w + g.pad_l + g.pad_r - g.dil_w * (g.kw - 1) - 1) / g.stride_w + 1;
    return g;
}

/* Runs forward, backward_data and backward_filter of case cc on rig. */
static void
check_conv(Rig *rig, const ConvCase *cc)
{
    const TpConvGeometry g = conv_geometry(cc);
    const gsize nx = (gsize)g.n * g.c * g.h * g.w;
    const gsize ny = (gsize)g.n * g.out_c * g.out_h * g.out_w;
    const gsize nw = (gsize)g.out_c * (g.c / g.groups) * g.kh * g.kw;
    g_autofree float *x = random_floats(nx, -1.0f, 1.0f, 1);
    g_autofree float *w = random_floats(nw, -1.0f, 1.0f, 2);
    g_autofree float *bias = random_floats(g.out_c, -1.0f, 1.0f, 3);
    g_autofree float *dy = random_floats(ny, -1.0f, 1.0f, 4);
    g_autofree float *y = g_new(float, ny);
    g_autofree float *dx = g_new(float, nx);
    g_autofree float *dw = g_new(float, nw);
    g_autofree float *dbias = g_new(float, g.out_c);
    float *x_mem = rig_upload(rig, x, nx);
    float *w_mem = rig_upload(rig, w, nw);
    float *bias_mem = cc->bias ? rig_upload(rig, bias, g.out_c) : NULL;
    float *dy_mem = rig_upload(rig, dy, ny);
    float *y_mem = rig_output(rig, ny);
    float *dx_mem = rig_output(rig, nx);
    float *dw_mem = rig_output(rig, nw);
    float *dbias_mem = cc->bias ? rig_output(rig, g.out_c) : NULL;

    /* The same kernels of the reference on absolute values give each
     * output's sum of |terms|. */
    g_autofree float *ax = absolute(x, nx);
    g_autofree float *aw = absolute(w, nw);
    g_autofree float *abias = absolute(bias, g.out_c);
    g_autofree float *ady = absolute(dy, ny);
    g_autofree float *terms_y = g_new(float, ny);
    g_autofree float *terms_dx = g_new(float, nx);
    g_autofree float *terms_dw = g_new(float, nw);
    g_autofree float *terms_dbias = g_new(float, g.out_c);

    ref_conv2d_forward(&g, x, w, cc->bias ? bias : NULL, y);
    ref_conv2d_forward(&g, ax, aw, cc->bias ? abias : NULL, terms_y);
    /* the forward from weights prepared once, where the backend has a
     * prepared form for g (tp-backend.h); before the plain forward, so that
     * nothing that one leaves behind can stand in for the prepared form */
    gsize n_prepared = rig->backend->vt.conv2d_prepared_size(rig->backend->self, &g);
    if (n_prepared > 0) {
        float *prepared = rig_output(rig, n_prepared);
        float *y2_mem = rig_output(rig, ny);
        CALL(rig, conv2d_prepare, cc->name, &g, w_mem, prepared);
        CALL(rig, conv2d_forward_prepared, cc->name, &g, x_mem, prepared, bias_mem, y2_mem);
        expect_close_to_terms(rig, "conv2d_forward_prepared", cc->name, "y", y2_mem, y, terms_y,
                              ny, (gsize)g.out_h * g.out_w, TOL_CONV);
    }

    /* the forward with the relu fused (optional), from the weights and from
     * the prepared form; |relu(a) - relu(b)| <= |a - b| keeps the bound */
    if (rig->backend->vt.conv2d_forward_relu != NULL) {
        g_autofree float *y_relu = g_new(float, ny);
        float *y3_mem = rig_output(rig, ny);
        for (gsize i = 0; i < ny; i++)
            y_relu[i] = y[i] > 0.0f ? y[i] : 0.0f;
        CALL(rig, conv2d_forward_relu, cc->name, &g, x_mem, w_mem, NULL, bias_mem, y3_mem);
        expect_close_to_terms(rig, "conv2d_forward_relu", cc->name, "y", y3_mem, y_relu, terms_y,
                              ny, (gsize)g.out_h * g.out_w, TOL_CONV);
        if (n_prepared > 0) {
            float *prepared = rig_output(rig, n_prepared);
            CALL(rig, conv2d_prepare, cc->name, &g, w_mem, prepared);
            CALL(rig, conv2d_forward_relu, cc->name, &g, x_mem, NULL, prepared, bias_mem, y3_mem);
            expect_close_to_terms(rig, "conv2d_forward_relu (prepared)", cc->name, "y", y3_mem,
                                  y_relu, terms_y, ny, (gsize)g.out_h * g.out_w, TOL_CONV);
        }
    }

    CALL(rig, conv2d_forward, cc->name, &g, x_mem, w_mem, bias_mem, y_mem);
    expect_close_to_terms(rig, "conv2d_forward", cc->name, "y", y_mem, y, terms_y, ny,
                          (gsize)g.out_h * g.out_w, TOL_CONV);

    ref_conv2d_backward_data(&g, dy, w, dx);
    ref_conv2d_backward_data(&g, ady, aw, terms_dx);
    CALL(rig, conv2d_backward_data, cc->name, &g, dy_mem, w_mem, dx_mem);
    expect_close_to_terms(rig, "conv2d_backward_data", cc->name, "dx", dx_mem, dx, terms_dx, nx,
                          (gsize)g.h * g.w, TOL_CONV);

    ref_conv2d_backward_filter(&g, x, dy, dw, cc->bias ? dbias : NULL);
    ref_conv2d_backward_filter(&g, ax, ady, terms_dw, cc->bias ? terms_dbias : NULL);
    CALL(rig, conv2d_backward_filter, cc->name, &g, x_mem, dy_mem, dw_mem, dbias_mem);
    expect_close_to_terms(rig, "conv2d_backward_filter", cc->name, "dweights", dw_mem, dw,
                          terms_dw, nw, (gsize)g.kh * g.kw, TOL_CONV);
    if (cc->bias)
        expect_close_to_terms(rig, "conv2d_backward_filter", cc->name, "dbias", dbias_mem, dbias,
                              terms_dbias, g.out_c, 1, TOL_CONV);
}

/* Each case on a freshly opened backend. */
START_TEST(test_conv2d)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        check_conv(rig, &conv_cases[_i]);
    }
}
END_TEST

/* sum_i r[i] y[i] in double for y = conv2d_forward(x, w) on rig (bias none). */
static double
conv_loss(Rig *rig, const ConvCase *cc, const TpConvGeometry *g, const float *x, gsize nx,
          const float *w, gsize nw, const float *r, gsize ny)
{
    float *x_mem = rig_upload(rig, x, nx);
    float *w_mem = rig_upload(rig, w, nw);
    float *y_mem = rig_output(rig, ny);
    g_autofree float *y = NULL;
    double loss = 0.0;

    CALL(rig, conv2d_forward, cc->name, g, x_mem, w_mem, NULL, y_mem);
    y = rig_fetch(rig, y_mem, ny);
    for (gsize i = 0; i < ny; i++)
        loss += (double)r[i] * y[i];
    return loss;
}

/* The grouped and depthwise cases' gradients against central differences
 * of the backend's own forward: with L = sum r .* conv(x, w), dL/dx is
 * conv2d_backward_data(r) and dL/dw conv2d_backward_filter(x, r). L is
 * linear in each, so the differences are exact but for rounding; a few
 * elements of each, the last among them. */
static void
check_conv_differences(const ConvCase *cc)
{
    const TpConvGeometry g = conv_geometry(cc);
    const gsize nx = (gsize)g.n * g.c * g.h * g.w;
    const gsize ny = (gsize)g.n * g.out_c * g.out_h * g.out_w;
    const gsize nw = (gsize)g.out_c * (g.c / g.groups) * g.kh * g.kw;
    const float step = 0.25f;
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autofree float *x = random_floats(nx, -1.0f, 1.0f, 21);
    g_autofree float *w = random_floats(nw, -1.0f, 1.0f, 22);
    g_autofree float *r = random_floats(ny, -1.0f, 1.0f, 23);

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, nx);
        float *w_mem = rig_upload(rig, w, nw);
        float *r_mem = rig_upload(rig, r, ny);
        float *dx_mem = rig_output(rig, nx);
        float *dw_mem = rig_output(rig, nw);
        g_autofree float *dx = NULL, *dw = NULL;

        CALL(rig, conv2d_backward_data, cc->name, &g, r_mem, w_mem, dx_mem);
        CALL(rig, conv2d_backward_filter, cc->name, &g, x_mem, r_mem, dw_mem, NULL);
        dx = rig_fetch(rig, dx_mem, nx);
        dw = rig_fetch(rig, dw_mem, nw);
        for (int which = 0; which < 2; which++) {
            float *v = which == 0 ? x : w;
            const float *grad = which == 0 ? dx : dw;
            gsize n = which == 0 ? nx : nw;

            for (gsize k = 0; k < 6; k++) {
                gsize i = k == 5 ? n - 1 : (k * 7919 + 13) % n;
                float keep = v[i];
                double plus, minus, fd;

                v[i] = keep + step;
                plus = conv_loss(rig, cc, &g, x, nx, w, nw, r, ny);
                v[i] = keep - step;
                minus = conv_loss(rig, cc, &g, x, nx, w, nw, r, ny);
                v[i] = keep;
                fd = (plus - minus) / (2.0 * step);
                ck_assert_msg(fabs(grad[i] - fd) <= tolerances[TOL_FINITE_DIFF].atol +
                                                         tolerances[TOL_FINITE_DIFF].rtol *
                                                             fabs(fd),
                              "backend %s, case \"%s\": %s[%" G_GSIZE_FORMAT
                              "] = %.9g, central difference %.9g",
                              rig->name, cc->name, which == 0 ? "dx" : "dweights", i, grad[i],
                              fd);
            }
        }
    }
}

START_TEST(test_conv2d_finite_differences)
{
    for (gsize i = 0; i < G_N_ELEMENTS(conv_cases); i++)
        if (conv_cases[i].groups > 1)
            check_conv_differences(&conv_cases[i]);
}
END_TEST

/* Every case, largest first, on one backend: scratch memory kept from a
 * larger shape must not leak into a smaller one, nor the reverse. */
START_TEST(test_conv2d_one_backend)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        for (gsize i = G_N_ELEMENTS(conv_cases); i-- > 0;)
            check_conv(rig, &conv_cases[i]);
        check_conv(rig, &conv_cases[G_N_ELEMENTS(conv_cases) - 1]);
    }
}
END_TEST

/* ------------------------------------------------------------ dense */

static const struct {
    int m, n, k;
    float alpha;
} gemm_sizes[] = {
    {5, 7, 37, 1.0f},
    {1, 37, 3, 0.7f},
    {37, 1, 64, -1.3f},
    {1, 301, 1000, 0.9f}, /* one row, split over threads: matrix-vector products */
};

/* Loop index: bit 0 trans_a, bit 1 trans_b, bit 2 beta != 0, the rest the size. */
START_TEST(test_gemm)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const gboolean trans_a = _i & 1, trans_b = (_i >> 1) & 1;
    const float beta = (_i >> 2) & 1 ? 0.5f : 0.0f;
    const int m = gemm_sizes[_i >> 3].m, n = gemm_sizes[_i >> 3].n, k = gemm_sizes[_i >> 3].k;
    const float alpha = gemm_sizes[_i >> 3].alpha;
    g_autofree char *name = g_strdup_printf(
        "m %d n %d k %d, %s x %s, alpha %g, beta %g%s", m, n, k, trans_a ? "A^T" : "A",
        trans_b ? "B^T" : "B", alpha, beta, beta == 0.0f ? " (C holds NaN: must not be read)" : "");
    g_autofree float *a = random_floats((gsize)m * k, -1.0f, 1.0f, 10);
    g_autofree float *bm = random_floats((gsize)k * n, -1.0f, 1.0f, 11);
    g_autofree float *c = random_floats((gsize)m * n, -1.0f, 1.0f, 12);

    if (beta == 0.0f)
        for (gsize i = 0; i < (gsize)m * n; i++)
            c[i] = NAN;
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        g_autofree float *want = dup_floats(c, (gsize)m * n);
        float *a_mem = rig_upload(rig, a, (gsize)m * k);
        float *b_mem = rig_upload(rig, bm, (gsize)k * n);
        float *c_mem = rig_upload(rig, c, (gsize)m * n);

        ref_gemm(trans_a, trans_b, m, n, k, alpha, a, bm, beta, want);
        CALL(rig, gemm, name, trans_a, trans_b, m, n, k, alpha, a_mem, b_mem, beta, c_mem);
        expect_close(rig, "gemm", name, "C", c_mem, want, (gsize)m * n, TOL_GEMM);
    }
}
END_TEST

static const struct {
    int rows, cols;
} bias_sizes[] = {
    {3, 37}, {1, 1}, {64, 300}, {300, 37}, {3, 1000},
};

START_TEST(test_add_bias)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int rows = bias_sizes[_i].rows, cols = bias_sizes[_i].cols;
    const gsize n = (gsize)rows * cols;
    g_autofree char *name = g_strdup_printf("rows %d cols %d", rows, cols);
    g_autofree float *y = random_floats(n, -1.0f, 1.0f, 20);
    g_autofree float *bias = random_floats(cols, -1.0f, 1.0f, 21);

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        g_autofree float *want = dup_floats(y, n);
        float *y_mem = rig_upload(rig, y, n);
        float *bias_mem = rig_upload(rig, bias, cols);

        ref_add_bias(rows, cols, bias, want);
        CALL(rig, add_bias, name, rows, cols, bias_mem, y_mem);
        expect_close(rig, "add_bias", name, "y (accumulated in place)", y_mem, want, n, TOL_BIAS);
    }
}
END_TEST

START_TEST(test_sum_rows)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int rows = bias_sizes[_i].rows, cols = bias_sizes[_i].cols;
    const gsize n = (gsize)rows * cols;
    g_autofree char *name = g_strdup_printf("rows %d cols %d", rows, cols);
    g_autofree float *x = random_floats(n, -1.0f, 1.0f, 22);
    g_autofree float *want = g_new(float, cols);

    ref_sum_rows(rows, cols, x, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, n);
        float *y_mem = rig_output(rig, cols);

        CALL(rig, sum_rows, name, rows, cols, x_mem, y_mem);
        expect_close(rig, "sum_rows", name, "y", y_mem, want, cols, TOL_BIAS);
    }
}
END_TEST

/* ------------------------------------------------------------ batch norm */

static const struct {
    const char *name;
    int n, c, hw;
    float epsilon, momentum;
} bn_cases[] = {
    {"n3 c37 hw63", 3, 37, 63, 1e-5f, 0.9f},
    {"after a Gemm: n3 c5 hw1", 3, 5, 1, 1e-5f, 0.1f},
    {"n1 c3 hw63", 1, 3, 63, 1e-3f, 0.9f},
    {"two values a channel: n2 c1 hw1", 2, 1, 1, 1e-5f, 0.5f},
    {"n8 c16 hw49, momentum 0", 8, 16, 49, 1e-5f, 0.0f},
};

START_TEST(test_batch_norm_train)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = bn_cases[_i].name;
    const TpBatchNormGeometry g = {.n = bn_cases[_i].n,
                                   .c = bn_cases[_i].c,
                                   .hw = bn_cases[_i].hw,
                                   .epsilon = bn_cases[_i].epsilon,
                                   .momentum = bn_cases[_i].momentum};
    const gsize nx = (gsize)g.n * g.c * g.hw;
    /* Off-centre data: the mean must really be removed. */
    g_autofree float *x = random_floats(nx, 2.0f, 4.0f, 30);
    g_autofree float *scale = random_floats(g.c, 0.5f, 1.5f, 31);
    g_autofree float *bias = random_floats(g.c, -1.0f, 1.0f, 32);
    g_autofree float *rmean = random_floats(g.c, -1.0f, 1.0f, 33);
    g_autofree float *rvar = random_floats(g.c, 0.5f, 1.5f, 34);
    g_autofree float *want_rmean = dup_floats(rmean, g.c);
    g_autofree float *want_rvar = dup_floats(rvar, g.c);
    g_autofree float *y = g_new(float, nx);
    g_autofree float *save_mean = g_new(float, g.c);
    g_autofree float *save_invstd = g_new(float, g.c);

    ref_batch_norm_forward_train(&g, x, scale, bias, want_rmean, want_rvar, y, save_mean,
                                 save_invstd);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, nx);
        float *scale_mem = rig_upload(rig, scale, g.c);
        float *bias_mem = rig_upload(rig, bias, g.c);
        float *rmean_mem = rig_upload(rig, rmean, g.c);
        float *rvar_mem = rig_upload(rig, rvar, g.c);
        float *y_mem = rig_output(rig, nx);
        float *mean_mem = rig_output(rig, g.c);
        float *invstd_mem = rig_output(rig, g.c);

        CALL(rig, batch_norm_forward_train, name, &g, x_mem, scale_mem, bias_mem, rmean_mem,
             rvar_mem, y_mem, mean_mem, invstd_mem);
        expect_close(rig, "batch_norm_forward_train", name, "y", y_mem, y, nx, TOL_BATCH_NORM);
        expect_close(rig, "batch_norm_forward_train", name, "save_mean", mean_mem, save_mean, g.c,
                     TOL_BATCH_NORM_RUNNING);
        expect_close(rig, "batch_norm_forward_train", name, "save_invstd", invstd_mem, save_invstd,
                     g.c, TOL_BATCH_NORM_RUNNING);
        expect_close(rig, "batch_norm_forward_train", name, "running_mean (momentum update)",
                     rmean_mem, want_rmean, g.c, TOL_BATCH_NORM_RUNNING);
        expect_close(rig, "batch_norm_forward_train", name,
                     "running_var (momentum update, unbiased batch variance)", rvar_mem, want_rvar,
                     g.c, TOL_BATCH_NORM_RUNNING);
    }
}
END_TEST

START_TEST(test_batch_norm_eval)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = bn_cases[_i].name;
    const TpBatchNormGeometry g = {.n = bn_cases[_i].n,
                                   .c = bn_cases[_i].c,
                                   .hw = bn_cases[_i].hw,
                                   .epsilon = bn_cases[_i].epsilon,
                                   .momentum = bn_cases[_i].momentum};
    const gsize nx = (gsize)g.n * g.c * g.hw;
    g_autofree float *x = random_floats(nx, 2.0f, 4.0f, 40);
    g_autofree float *scale = random_floats(g.c, 0.5f, 1.5f, 41);
    g_autofree float *bias = random_floats(g.c, -1.0f, 1.0f, 42);
    g_autofree float *mean = random_floats(g.c, 2.5f, 3.5f, 43);
    g_autofree float *var = random_floats(g.c, 0.1f, 1.5f, 44);
    g_autofree float *y = g_new(float, nx);

    ref_batch_norm_forward_eval(&g, x, scale, bias, mean, var, y);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, nx);
        float *scale_mem = rig_upload(rig, scale, g.c);
        float *bias_mem = rig_upload(rig, bias, g.c);
        float *mean_mem = rig_upload(rig, mean, g.c);
        float *var_mem = rig_upload(rig, var, g.c);
        float *y_mem = rig_output(rig, nx);

        CALL(rig, batch_norm_forward_eval, name, &g, x_mem, scale_mem, bias_mem, mean_mem, var_mem,
             y_mem);
        expect_close(rig, "batch_norm_forward_eval", name, "y", y_mem, y, nx, TOL_BATCH_NORM);
    }
}
END_TEST

START_TEST(test_batch_norm_backward)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = bn_cases[_i].name;
    const TpBatchNormGeometry g = {.n = bn_cases[_i].n,
                                   .c = bn_cases[_i].c,
                                   .hw = bn_cases[_i].hw,
                                   .epsilon = bn_cases[_i].epsilon,
                                   .momentum = bn_cases[_i].momentum};
    const gsize nx = (gsize)g.n * g.c * g.hw;
    g_autofree float *x = random_floats(nx, 2.0f, 4.0f, 50);
    g_autofree float *dy = random_floats(nx, -1.0f, 1.0f, 51);
    g_autofree float *scale = random_floats(g.c, 0.5f, 1.5f, 52);
    g_autofree float *bias = random_floats(g.c, -1.0f, 1.0f, 53);
    g_autofree float *rmean = g_new0(float, g.c);
    g_autofree float *rvar = g_new0(float, g.c);
    g_autofree float *y = g_new(float, nx);
    g_autofree float *save_mean = g_new(float, g.c);
    g_autofree float *save_invstd = g_new(float, g.c);
    g_autofree float *dx = g_new(float, nx);
    g_autofree float *dscale = g_new(float, g.c);
    g_autofree float *dbias = g_new(float, g.c);

    /* The saved statistics come from the reference, so this tests backward alone. */
    ref_batch_norm_forward_train(&g, x, scale, bias, rmean, rvar, y, save_mean, save_invstd);
    ref_batch_norm_backward(&g, x, dy, scale, save_mean, save_invstd, dx, dscale, dbias);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, nx);
        float *dy_mem = rig_upload(rig, dy, nx);
        float *scale_mem = rig_upload(rig, scale, g.c);
        float *mean_mem = rig_upload(rig, save_mean, g.c);
        float *invstd_mem = rig_upload(rig, save_invstd, g.c);
        float *dx_mem = rig_output(rig, nx);
        float *dscale_mem = rig_output(rig, g.c);
        float *dbias_mem = rig_output(rig, g.c);

        CALL(rig, batch_norm_backward, name, &g, x_mem, dy_mem, scale_mem, mean_mem, invstd_mem,
             dx_mem, dscale_mem, dbias_mem);
        expect_close(rig, "batch_norm_backward", name, "dx", dx_mem, dx, nx, TOL_BATCH_NORM);
        expect_close(rig, "batch_norm_backward", name, "dscale", dscale_mem, dscale, g.c,
                     TOL_BATCH_NORM);
        expect_close(rig, "batch_norm_backward", name, "dbias", dbias_mem, dbias, g.c,
                     TOL_BATCH_NORM);
    }
}
END_TEST

/* ------------------------------------------------------------ elementwise */

#define ELEMENTS 1001

/* Random data with exact zeros and a negative zero at the front. */
static float *
relu_input(guint32 seed)
{
    float *x = random_floats(ELEMENTS, -1.0f, 1.0f, seed);

    x[0] = 0.0f;
    x[1] = -0.0f;
    return x;
}

START_TEST(test_relu)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autofree float *x = relu_input(60);
    g_autofree float *dy = random_floats(ELEMENTS, -1.0f, 1.0f, 61);
    g_autofree float *y = g_new(float, ELEMENTS);
    g_autofree float *dx = g_new(float, ELEMENTS);

    ref_relu_forward(ELEMENTS, x, y);
    ref_relu_backward(ELEMENTS, y, dy, dx);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, ELEMENTS);
        float *inplace_mem = rig_upload(rig, x, ELEMENTS);
        float *y_mem = rig_output(rig, ELEMENTS);
        float *ref_y_mem = rig_upload(rig, y, ELEMENTS);
        float *dy_mem = rig_upload(rig, dy, ELEMENTS);
        float *dx_mem = rig_output(rig, ELEMENTS);

        CALL(rig, relu_forward, "out of place", ELEMENTS, x_mem, y_mem);
        expect_close(rig, "relu_forward", "out of place", "y", y_mem, y, ELEMENTS, TOL_EXACT);
        expect_close(rig, "relu_forward", "out of place", "x (unchanged)", x_mem, x, ELEMENTS,
                     TOL_EXACT);
        CALL(rig, relu_forward, "in place", ELEMENTS, inplace_mem, inplace_mem);
        expect_close(rig, "relu_forward", "in place (y == x)", "y", inplace_mem, y, ELEMENTS,
                     TOL_EXACT);
        CALL(rig, relu_backward, "from y", ELEMENTS, ref_y_mem, dy_mem, dx_mem);
        expect_close(rig, "relu_backward", "from y", "dx", dx_mem, dx, ELEMENTS, TOL_EXACT);
    }
}
END_TEST

/* Loop index: 0 out of place, 1 y == a, 2 y == b, 3 y == a == b. */
START_TEST(test_add)
{
    static const char *const cases[] = {"out of place", "in place, y == a", "in place, y == b",
                                        "y == a == b"};
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = cases[_i];
    g_autofree float *a = random_floats(ELEMENTS, -1.0f, 1.0f, 70);
    g_autofree float *bv =
        _i == 3 ? dup_floats(a, ELEMENTS) : random_floats(ELEMENTS, -1.0f, 1.0f, 71);
    g_autofree float *want = g_new(float, ELEMENTS);

    ref_add(ELEMENTS, a, bv, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *a_mem = rig_upload(rig, a, ELEMENTS);
        float *b_mem = _i == 3 ? a_mem : rig_upload(rig, bv, ELEMENTS);
        float *y_mem = _i == 0 ? rig_output(rig, ELEMENTS) : _i == 2 ? b_mem : a_mem;

        CALL(rig, add, name, ELEMENTS, a_mem, b_mem, y_mem);
        expect_close(rig, "add", name, "y", y_mem, want, ELEMENTS, TOL_ADD);
    }
}
END_TEST

static const struct {
    float ratio;
    guint64 seed;
} dropout_cases[] = {
    {0.0f, 1}, {0.25f, 1}, {0.5f, G_GUINT64_CONSTANT(0xdeadbeefcafe)}, {0.9f, 42}, {1.0f, 7},
};

START_TEST(test_dropout)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const float ratio = dropout_cases[_i].ratio;
    const guint64 seed = dropout_cases[_i].seed;
    g_autofree char *name =
        g_strdup_printf("ratio %g seed %" G_GUINT64_FORMAT ", n %d", ratio, seed, ELEMENTS);
    g_autofree float *x = random_floats(ELEMENTS, -1.0f, 1.0f, 80);
    g_autofree float *dy = random_floats(ELEMENTS, -1.0f, 1.0f, 81);
    g_autofree float *y = g_new(float, ELEMENTS);
    g_autofree float *dx = g_new(float, ELEMENTS);

    ref_dropout_forward(ELEMENTS, ratio, seed, x, y);
    ref_dropout_backward(ELEMENTS, ratio, seed, dy, dx);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, ELEMENTS);
        float *dy_mem = rig_upload(rig, dy, ELEMENTS);
        float *y_mem = rig_output(rig, ELEMENTS);
        float *dx_mem = rig_output(rig, ELEMENTS);

        CALL(rig, dropout_forward, name, ELEMENTS, ratio, seed, x_mem, y_mem);
        expect_close(rig, "dropout_forward", name, "y", y_mem, y, ELEMENTS, TOL_DROPOUT);
        CALL(rig, dropout_backward, name, ELEMENTS, ratio, seed, dy_mem, dx_mem);
        expect_close(rig, "dropout_backward", name, "dx", dx_mem, dx, ELEMENTS, TOL_DROPOUT);
    }
}
END_TEST

/* ------------------------------------------------------------ pooling */

typedef struct {
    const char *name;
    TpPoolMode mode;
    int n, c, h, w, kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
    gboolean ceil_mode, count_include_pad;
    float lo, hi;  /* data range */
    gboolean ties; /* data rounded to quarters, so windows hold equal maxima */
} PoolCase;

/* Short names for the table. */
#define MAX_ TP_POOL_MAX
#define AVG_ TP_POOL_AVERAGE

/* clang-format off */
static const PoolCase pool_cases[] = {
    /*mode   n    c   h    w  kh  kw  sh  sw  pt  pl  pb  pr   ceil   incl      lo     hi   ties */
    { "max 2x2 stride 2, floor, n3 c3 7x9",
      MAX_,  3,   3,  7,   9,  2,  2,  2,  2,  0,  0,  0,  0, FALSE, FALSE,  -1.0f,  1.0f, FALSE },
    { "max 2x2 stride 2, 8x7 (last column in no window), ties (first max gets dy)",
      MAX_,  2,   5,  8,   7,  2,  2,  2,  2,  0,  0,  0,  0, FALSE, FALSE,   0.0f,  1.0f,  TRUE },
    { "max 2x2 stride 2, ceil: last window hangs over the edge",
      MAX_,  3,   3,  7,   9,  2,  2,  2,  2,  0,  0,  0,  0,  TRUE, FALSE,  -1.0f,  1.0f, FALSE },
    { "max 3x3 stride 2 pad 1, ceil, 8x10, negative data (pad = -inf)",
      MAX_,  1,  37,  8,  10,  3,  3,  2,  2,  1,  1,  1,  1,  TRUE, FALSE,  -2.0f, -1.0f, FALSE },
    { "max 3x3 stride 1 pad 1, ties (first max gets dy)",
      MAX_,  3,   3,  7,   9,  3,  3,  1,  1,  1,  1,  1,  1, FALSE, FALSE,   0.0f,  1.0f,  TRUE },
    { "max 3x2 stride 2x1, asymmetric pads 1,0,0,1, ties",
      MAX_,  1,   3,  7,   9,  3,  2,  2,  1,  1,  0,  0,  1,  TRUE, FALSE,   0.0f,  1.0f,  TRUE },
    { "avg 3x3 stride 2 pad 1, ceil, 8x10 (last window past the padding), count_include_pad",
      AVG_,  3,   3,  8,  10,  3,  3,  2,  2,  1,  1,  1,  1,  TRUE,  TRUE,  -1.0f,  1.0f, FALSE },
    { "avg 3x3 stride 2 pad 1, ceil, 8x10 (last window past the padding), pad not counted",
      AVG_,  3,   3,  8,  10,  3,  3,  2,  2,  1,  1,  1,  1,  TRUE, FALSE,  -1.0f,  1.0f, FALSE },
    { "avg 3x3 stride 2 pad 1, floor, n1 c3 7x9, count_include_pad",
      AVG_,  1,   3,  7,   9,  3,  3,  2,  2,  1,  1,  1,  1, FALSE,  TRUE,  -1.0f,  1.0f, FALSE },
    { "avg 2x2 stride 2, ceil over the edge, count_include_pad",
      AVG_,  1,  37,  7,   9,  2,  2,  2,  2,  0,  0,  0,  0,  TRUE,  TRUE,  -1.0f,  1.0f, FALSE },
    { "avg 2x2 stride 2, ceil over the edge, pad not counted",
      AVG_,  1,  37,  7,   9,  2,  2,  2,  2,  0,  0,  0,  0,  TRUE, FALSE,  -1.0f,  1.0f, FALSE },
    { "avg 3x3 stride 1, asymmetric pads 0,1,2,0, pad not counted",
      AVG_,  3,   3,  7,   9,  3,  3,  1,  1,  0,  1,  2,  0, FALSE, FALSE,  -1.0f,  1.0f, FALSE },
    { "global average 7x9, n3 c37",
      AVG_,  3,  37,  7,   9,  7,  9,  1,  1,  0,  0,  0,  0, FALSE, FALSE,  -1.0f,  1.0f, FALSE },
    { "global average 1x1, n1 c3",
      AVG_,  1,   3,  1,   1,  1,  1,  1,  1,  0,  0,  0,  0, FALSE, FALSE,  -1.0f,  1.0f, FALSE },
    { "global max 7x9, n3 c3",
      MAX_,  3,   3,  7,   9,  7,  9,  1,  1,  0,  0,  0,  0, FALSE, FALSE,  -1.0f,  1.0f, FALSE },
};
/* clang-format on */

/* Output size along one axis, floor or ceil; in ceil mode a last window
 * that would start in the end padding is dropped (as ONNX and PyTorch do). */
static int
pool_out(int size, int k, int stride, int pad_begin, int pad_end, gboolean ceil_mode)
{
    int span = size + pad_begin + pad_end - k;
    int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;

    if (ceil_mode && (out - 1) * stride >= size + pad_begin)
        out--;
    return out;
}

static TpPoolGeometry
pool_geometry(const PoolCase *pc)
{
    TpPoolGeometry g = {
        .mode = pc->mode,
        .n = pc->n,
        .c = pc->c,
        .h = pc->h,
        .w = pc->w,
        .kh = pc->kh,
        .kw = pc->kw,
        .stride_h = pc->stride_h,
        .stride_w = pc->stride_w,
        .pad_t = pc->pad_t,
        .pad_l = pc->pad_l,
        .pad_b = pc->pad_b,
        .pad_r = pc->pad_r,
        .count_include_pad = pc->count_include_pad,
    };

    g.out_h = pool_out(g.h, g.kh, g.stride_h, g.pad_t, g.pad_b, pc->ceil_mode);
    g.out_w = pool_out(g.w, g.kw, g.stride_w, g.pad_l, g.pad_r, pc->ceil_mode);
    return g;
}

START_TEST(test_pool2d)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const PoolCase *pc = &pool_cases[_i];
    const TpPoolGeometry g = pool_geometry(pc);
    const gsize nx = (gsize)g.n * g.c * g.h * g.w;
    const gsize ny = (gsize)g.n * g.c * g.out_h * g.out_w;
    const TolKind tol = g.mode == TP_POOL_MAX ? TOL_POOL_MAX : TOL_POOL_AVERAGE;
    g_autofree float *x = random_floats(nx, pc->lo, pc->hi, 90);
    g_autofree float *dy = random_floats(ny, -1.0f, 1.0f, 91);
    g_autofree float *y = g_new(float, ny);
    g_autofree float *dx = g_new(float, nx);

    if (pc->ties)
        for (gsize i = 0; i < nx; i++)
            x[i] = floorf(x[i] * 4.0f) / 4.0f;
    ref_pool2d_forward(&g, x, y);
    ref_pool2d_backward(&g, x, y, dy, dx);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, nx);
        float *dy_mem = rig_upload(rig, dy, ny);
        float *ref_y_mem = rig_upload(rig, y, ny);
        float *y_mem = rig_output(rig, ny);
        float *dx_mem = rig_output(rig, nx);

        CALL(rig, pool2d_forward, pc->name, &g, x_mem, y_mem);
        expect_close(rig, "pool2d_forward", pc->name, "y", y_mem, y, ny, tol);
        CALL(rig, pool2d_backward, pc->name, &g, x_mem, ref_y_mem, dy_mem, dx_mem);
        expect_close(rig, "pool2d_backward", pc->name, "dx", dx_mem, dx, nx, tol);
    }
}
END_TEST

/* ------------------------------------------------------------ softmax */

static const struct {
    const char *name;
    int rows, cols;
    float range; /* logits uniform in [-range, range) */
} softmax_cases[] = {
    {"rows 3 cols 37", 3, 37, 1.0f},
    {"rows 3 cols 37, logits up to +-60 (stability)", 3, 37, 60.0f},
    {"rows 1 cols 1", 1, 1, 1.0f},
    {"rows 5 cols 1000", 5, 1000, 4.0f},
};

START_TEST(test_softmax)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = softmax_cases[_i].name;
    const int rows = softmax_cases[_i].rows, cols = softmax_cases[_i].cols;
    const float range = softmax_cases[_i].range;
    const gsize n = (gsize)rows * cols;
    g_autofree float *x = random_floats(n, -range, range, 100);
    g_autofree float *dy = random_floats(n, -1.0f, 1.0f, 101);
    g_autofree float *y = g_new(float, n);
    g_autofree float *dx = g_new(float, n);

    ref_softmax_forward(rows, cols, x, y);
    ref_softmax_backward(rows, cols, y, dy, dx);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, n);
        float *ref_y_mem = rig_upload(rig, y, n);
        float *dy_mem = rig_upload(rig, dy, n);
        float *y_mem = rig_output(rig, n);
        float *dx_mem = rig_output(rig, n);

        CALL(rig, softmax_forward, name, rows, cols, x_mem, y_mem);
        expect_close(rig, "softmax_forward", name, "y", y_mem, y, n, TOL_SOFTMAX);
        CALL(rig, softmax_backward, name, rows, cols, ref_y_mem, dy_mem, dx_mem);
        expect_close(rig, "softmax_backward", name, "dx", dx_mem, dx, n, TOL_SOFTMAX);
    }
}
END_TEST

static const struct {
    const char *name;
    int rows, cols;
    float smoothing;
    gboolean gradient;
    float range;
} xent_cases[] = {
    {"rows 3 cols 37", 3, 37, 0.0f, TRUE, 1.0f},
    {"rows 3 cols 37, smoothing 0.1", 3, 37, 0.1f, TRUE, 1.0f},
    {"rows 3 cols 37, smoothing 0.1, dlogits NULL", 3, 37, 0.1f, FALSE, 1.0f},
    {"rows 1 cols 1", 1, 1, 0.0f, TRUE, 1.0f},
    {"rows 8 cols 10, smoothing 0.2, logits +-80", 8, 10, 0.2f, TRUE, 80.0f},
    {"rows 64 cols 5, dlogits NULL", 64, 5, 0.0f, FALSE, 3.0f},
};

START_TEST(test_softmax_cross_entropy)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = xent_cases[_i].name;
    const int rows = xent_cases[_i].rows, cols = xent_cases[_i].cols;
    const float smoothing = xent_cases[_i].smoothing;
    const gboolean gradient = xent_cases[_i].gradient;
    const gsize n = (gsize)rows * cols;
    g_autofree float *logits = random_floats(n, -xent_cases[_i].range, xent_cases[_i].range, 110);
    g_autofree gint32 *labels = g_new(gint32, rows);
    g_autofree float *dlogits = g_new(float, n);
    double want;

    for (int r = 0; r < rows; r++)
        labels[r] = (r * 7 + 3) % cols;
    want =
        ref_softmax_cross_entropy(rows, cols, logits, labels, smoothing, gradient ? dlogits : NULL);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *logits_mem = rig_upload(rig, logits, n);
        float *dlogits_mem = gradient ? rig_output(rig, n) : NULL;
        double loss = NAN;
        double limit = tolerances[TOL_XENT_LOSS].atol + tolerances[TOL_XENT_LOSS].rtol * fabs(want);

        CALL(rig, softmax_cross_entropy, name, rows, cols, logits_mem, labels, smoothing,
             dlogits_mem, &loss);
        ck_assert_msg(isfinite(loss) && fabs(loss - want) <= limit,
                      "backend %s, softmax_cross_entropy, case \"%s\": loss: got %.9g, want "
                      "%.9g (|diff| %.3g > %.3g)",
                      rig->name, name, loss, want, fabs(loss - want), limit);
        if (gradient)
            expect_close(rig, "softmax_cross_entropy", name, "dlogits", dlogits_mem, dlogits, n,
                         TOL_XENT_GRAD);
    }
}
END_TEST

/* ------------------------------------------------------------ relevance kernels */

/* The elementwise kernels relevance propagation uses (tp-lrp.h). */

/* Loop index: aliasing: 0 out of place,
 * 1 y == a, 2 y == b, 3 y == a == b. */
START_TEST(test_mul)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int alias = _i;
    static const char *const aliases[] = {"out of place", "y == a", "y == b", "y == a == b"};
    const char *name = aliases[alias];
    g_autofree float *a = random_floats(ELEMENTS, -2.0f, 2.0f, 130);
    g_autofree float *bv = random_floats(ELEMENTS, -2.0f, 2.0f, 131);
    g_autofree float *want = g_new(float, ELEMENTS);

    ref_mul(ELEMENTS, a, alias == 3 ? a : bv, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *a_mem = rig_upload(rig, a, ELEMENTS);
        float *b_mem = alias == 3 ? a_mem : rig_upload(rig, bv, ELEMENTS);
        float *y_mem = alias == 0 ? rig_output(rig, ELEMENTS) : alias == 2 ? b_mem : a_mem;

        CALL(rig, mul, name, ELEMENTS, a_mem, b_mem, y_mem);
        expect_close(rig, "mul", name, "y", y_mem, want, ELEMENTS, TOL_ELEMENTWISE);
    }
}
END_TEST

static const struct {
    const char *name;
    float alpha, beta;
    gboolean in_place; /* y == x */
} axpby_cases[] = {
    {"alpha 1.5 beta -0.5", 1.5f, -0.5f, FALSE},
    {"alpha -1 beta 1 (subtract)", -1.0f, 1.0f, FALSE},
    {"beta 0 (y holds NaN: must not be read)", 0.75f, 0.0f, FALSE},
    {"alpha 2 beta 0.5, y == x", 2.0f, 0.5f, TRUE},
    {"alpha 0 beta 1 (y unchanged)", 0.0f, 1.0f, FALSE},
};

/* Loop index: the case. */
START_TEST(test_axpby)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int c = _i;
    const char *name = axpby_cases[c].name;
    const float alpha = axpby_cases[c].alpha, beta = axpby_cases[c].beta;
    const gboolean in_place = axpby_cases[c].in_place;
    g_autofree float *x = random_floats(ELEMENTS, -2.0f, 2.0f, 140);
    g_autofree float *y = random_floats(ELEMENTS, -2.0f, 2.0f, 141);
    g_autofree float *want = NULL;

    if (in_place)
        memcpy(y, x, ELEMENTS * sizeof(float));
    if (beta == 0.0f)
        for (gsize i = 0; i < ELEMENTS; i++)
            y[i] = NAN;
    want = dup_floats(y, ELEMENTS);
    ref_axpby(ELEMENTS, alpha, x, beta, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *y_mem = rig_upload(rig, y, ELEMENTS);
        float *x_mem = in_place ? y_mem : rig_upload(rig, x, ELEMENTS);

        CALL(rig, axpby, name, ELEMENTS, alpha, x_mem, beta, y_mem);
        expect_close(rig, "axpby", name, "y", y_mem, want, ELEMENTS, TOL_AXPBY);
    }
}
END_TEST

static const struct {
    const char *name;
    float lo, hi;
    gboolean in_place;
} clamp_cases[] = {
    {"positive part [0, inf)", 0.0f, INFINITY, FALSE},
    {"negative part (-inf, 0], y == x", -INFINITY, 0.0f, TRUE},
    {"[-0.5, 0.25]", -0.5f, 0.25f, FALSE},
    {"(-inf, inf): a copy", -INFINITY, INFINITY, FALSE},
    {"lo == hi == 0.5", 0.5f, 0.5f, TRUE},
};

/* Loop index: the case. */
START_TEST(test_clamp)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int c = _i;
    const char *name = clamp_cases[c].name;
    g_autofree float *x = relu_input(150);
    g_autofree float *want = g_new(float, ELEMENTS);

    x[2] = 1e30f;
    x[3] = -1e30f;
    ref_clamp(ELEMENTS, x, clamp_cases[c].lo, clamp_cases[c].hi, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem = rig_upload(rig, x, ELEMENTS);
        float *y_mem = clamp_cases[c].in_place ? x_mem : rig_output(rig, ELEMENTS);

        CALL(rig, clamp, name, ELEMENTS, x_mem, clamp_cases[c].lo, clamp_cases[c].hi, y_mem);
        expect_close(rig, "clamp", name, "y", y_mem, want, ELEMENTS, TOL_ELEMENTWISE);
    }
}
END_TEST

static const struct {
    const char *name;
    float epsilon;
    int alias; /* 0 out of place, 1 y == r, 2 y == z */
} divide_cases[] = {
    {"epsilon 1e-6", 1e-6f, 0},
    {"epsilon 0 (LRP-0), y == r", 0.0f, 1},
    {"epsilon 0.25, y == z", 0.25f, 2},
};

/* Loop index: the case. z holds exact zeros
 * of both signs (stab = TP_STABILIZER_ZERO), tiny values and both signs. */
START_TEST(test_stabilized_divide)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const int c = _i;
    const char *name = divide_cases[c].name;
    const float epsilon = divide_cases[c].epsilon;
    const int alias = divide_cases[c].alias;
    g_autofree float *r = random_floats(ELEMENTS, -1.0f, 1.0f, 160);
    g_autofree float *z = relu_input(161);
    g_autofree float *want = g_new(float, ELEMENTS);

    z[2] = 1e-9f;
    z[3] = -1e-9f;
    r[4] = 0.0f;
    z[4] = 0.0f;
    ref_stabilized_divide(ELEMENTS, r, z, epsilon, want);
    ck_assert(want[0] == r[0] / TP_STABILIZER_ZERO && want[4] == 0.0f);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *r_mem = rig_upload(rig, r, ELEMENTS);
        float *z_mem = rig_upload(rig, z, ELEMENTS);
        float *y_mem = alias == 0 ? rig_output(rig, ELEMENTS) : alias == 1 ? r_mem : z_mem;

        CALL(rig, stabilized_divide, name, ELEMENTS, r_mem, z_mem, epsilon, y_mem);
        expect_close(rig, "stabilized_divide", name, "y", y_mem, want, ELEMENTS, TOL_ELEMENTWISE);
    }
}
END_TEST

/* ------------------------------------------------------------ optimizer */

/* Loop index: bit 0 nesterov, bit 1 weight decay, bit 2 momentum. */
START_TEST(test_sgd_update)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const TpSgdHyper hyper = {
        .lr = 0.05f,
        .momentum = (_i >> 2) & 1 ? 0.9f : 0.0f,
        .weight_decay = (_i >> 1) & 1 ? 5e-4f : 0.0f,
        .nesterov = _i & 1,
    };
    const int steps = 3;
    g_autofree char *name =
        g_strdup_printf("momentum %g, weight decay %g, nesterov %s, %d steps", hyper.momentum,
                        hyper.weight_decay, hyper.nesterov ? "on" : "off", steps);
    g_autofree float *w = random_floats(ELEMENTS, -1.0f, 1.0f, 120);
    g_autofree float *v = random_floats(ELEMENTS, -0.1f, 0.1f, 121);
    g_autofree float *grads = random_floats((gsize)steps * ELEMENTS, -1.0f, 1.0f, 122);
    g_autofree float *want_w = dup_floats(w, ELEMENTS);
    g_autofree float *want_v = dup_floats(v, ELEMENTS);

    for (int s = 0; s < steps; s++)
        ref_sgd_update(ELEMENTS, want_w, grads + (gsize)s * ELEMENTS, want_v, &hyper);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *w_mem = rig_upload(rig, w, ELEMENTS);
        float *v_mem = rig_upload(rig, v, ELEMENTS);
        float *g_mem = rig_upload(rig, grads, (gsize)steps * ELEMENTS);

        for (int s = 0; s < steps; s++)
            CALL(rig, sgd_update, name, ELEMENTS, w_mem, g_mem + (gsize)s * ELEMENTS, v_mem,
                 &hyper);
        expect_close(rig, "sgd_update", name, "w", w_mem, want_w, ELEMENTS, TOL_SGD);
        expect_close(rig, "sgd_update", name, "v", v_mem, want_v, ELEMENTS, TOL_SGD);
    }
}
END_TEST

/* ------------------------------------------------------------ unary family */

/* Step of the central differences the backward kernels are checked
 * against: float forwards, so not much smaller. */
#define FD_STEP 1e-2f

/* The families a backend lacks are reported and skipped: an older plugin
 * may lack them (tp_backend_has_family). */
static gboolean
rig_has_family(Rig *rig, TpKernelFamily family)
{
    g_autoptr(GError) error = NULL;

    if (tp_backend_has_family(rig->backend, family, &error))
        return TRUE;
    g_print("skipped: %s\n", error->message);
    return FALSE;
}

typedef struct {
    const char *name;
    TpUnaryOp op;
    float lo, hi; /* the inputs' range */
    gsize n;
} UnaryCase;

/* clang-format off */
static const UnaryCase unary_cases[] = {
    { "relu",                          { .function = TP_UNARY_RELU },                                 -4, 4, ELEMENTS },
    { "relu, 140001 floats (threads)", { .function = TP_UNARY_RELU },                                 -4, 4, 140001 },
    { "clip 0..6 (ReLU6)",             { .function = TP_UNARY_CLIP, .lo = 0, .hi = 6 },               -2, 8, ELEMENTS },
    { "clip -inf..0.5 (one-sided)",    { .function = TP_UNARY_CLIP, .lo = -INFINITY, .hi = 0.5f },    -2, 2, ELEMENTS },
    { "sigmoid",                       { .function = TP_UNARY_SIGMOID },                              -8, 8, ELEMENTS },
    { "hard-sigmoid 0.2, 0.5 (ONNX)",  { .function = TP_UNARY_HARD_SIGMOID, .alpha = 0.2f, .beta = 0.5f }, -4, 4, ELEMENTS },
    { "hard-sigmoid 1/6, 0.5 (torch)", { .function = TP_UNARY_HARD_SIGMOID, .alpha = 1.0f / 6, .beta = 0.5f }, -5, 5, ELEMENTS },
    { "hard-swish",                    { .function = TP_UNARY_HARD_SWISH },                           -5, 5, ELEMENTS },
    { "silu",                          { .function = TP_UNARY_SILU },                                 -6, 6, ELEMENTS },
    { "gelu",                          { .function = TP_UNARY_GELU },                                 -5, 5, ELEMENTS },
    { "gelu, 140001 floats (threads)", { .function = TP_UNARY_GELU },                                 -5, 5, 140001 },
    { "leaky-relu 0.01",               { .function = TP_UNARY_LEAKY_RELU, .alpha = 0.01f },           -4, 4, ELEMENTS },
    { "leaky-relu 0.2",                { .function = TP_UNARY_LEAKY_RELU, .alpha = 0.2f },            -4, 4, ELEMENTS },
    { "tanh",                          { .function = TP_UNARY_TANH },                                 -4, 4, ELEMENTS },
    { "sqrt",                          { .function = TP_UNARY_SQRT },                                 0.1f, 4, ELEMENTS },
    { "erf",                           { .function = TP_UNARY_ERF },                                  -3, 3, ELEMENTS },
    { "exp",                           { .function = TP_UNARY_EXP },                                  -4, 4, ELEMENTS },
    { "reciprocal, positive",          { .function = TP_UNARY_RECIPROCAL },                           0.5f, 2, ELEMENTS },
    { "reciprocal, negative",          { .function = TP_UNARY_RECIPROCAL },                           -2, -0.5f, ELEMENTS },
    { "pow 2, negative bases",         { .function = TP_UNARY_POW, .alpha = 2 },                      -2, 2, ELEMENTS },
    { "pow 3",                         { .function = TP_UNARY_POW, .alpha = 3 },                      -2, 2, ELEMENTS },
    { "pow 0.5",                       { .function = TP_UNARY_POW, .alpha = 0.5f },                   0.1f, 4, ELEMENTS },
    { "log",                           { .function = TP_UNARY_LOG },                                  0.1f, 4, ELEMENTS },
    { "neg",                           { .function = TP_UNARY_NEG },                                  -4, 4, ELEMENTS },
    { "abs",                           { .function = TP_UNARY_ABS },                                  -4, 4, ELEMENTS },
};
/* clang-format on */

/* The step of x's central difference: FD_STEP, smaller near 0, where log,
 * sqrt and the reciprocal curve most. */
static float
unary_step(float x)
{
    return FD_STEP * CLAMP(fabsf(x), 0.1f, 1.0f);
}

/* TRUE when f has a kink within h of x (central differences mean nothing
 * there). */
static gboolean
unary_near_kink(const TpUnaryOp *op, float x, float h)
{
    float kinks[2];
    int n = 0;

    switch (op->function) {
    case TP_UNARY_RELU:
    case TP_UNARY_LEAKY_RELU:
    case TP_UNARY_ABS:
        kinks[n++] = 0.0f;
        break;
    case TP_UNARY_CLIP:
        kinks[n++] = op->lo;
        kinks[n++] = op->hi;
        break;
    case TP_UNARY_HARD_SIGMOID:
        kinks[n++] = -op->beta / op->alpha;
        kinks[n++] = (1.0f - op->beta) / op->alpha;
        break;
    case TP_UNARY_HARD_SWISH:
        kinks[n++] = -3.0f;
        kinks[n++] = 3.0f;
        break;
    default:
        break;
    }
    for (int i = 0; i < n; i++)
        if (fabsf(x - kinks[i]) <= 2.0f * h)
            return TRUE;
    return FALSE;
}

/* Forward out of place and in place, backward from the operand
 * tp_unary_backward_from_y() names (the other passed as NULL) against the
 * reference and against central differences of the backend's own forward.
 * The inputs include the kinks themselves. */
START_TEST(test_unary)
{
    const UnaryCase *uc = &unary_cases[_i];
    const TpUnaryOp *op = &uc->op;
    const gsize n = uc->n;
    const gboolean from_y = tp_unary_backward_from_y(op->function);
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autofree float *x = random_floats(n, uc->lo, uc->hi, 400 + _i);
    g_autofree float *dy = random_floats(n, -1.0f, 1.0f, 450 + _i);
    g_autofree float *y = g_new(float, n);
    g_autofree float *dx = g_new(float, n);
    g_autofree float *xp = g_new(float, n);
    g_autofree float *xm = g_new(float, n);
    const float specials[] = {0.0f, -0.0f, op->lo, op->hi, -3.0f, 3.0f};

    for (gsize k = 0; k < G_N_ELEMENTS(specials); k++)
        if (isfinite(specials[k]) && specials[k] >= uc->lo && specials[k] <= uc->hi)
            x[k] = specials[k];
    ref_unary_forward(op, n, x, y);
    ref_unary_backward(op, n, x, dy, dx);
    for (gsize i = 0; i < n; i++) {
        xp[i] = x[i] + unary_step(x[i]);
        xm[i] = x[i] - unary_step(x[i]);
    }
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem, *inplace_mem, *y_mem, *dy_mem, *dx_mem, *yp_mem, *ym_mem;
        g_autofree float *got_dx = NULL, *yp = NULL, *ym = NULL;

        if (!rig_has_family(rig, TP_KERNELS_UNARY))
            continue;
        x_mem = rig_upload(rig, x, n);
        inplace_mem = rig_upload(rig, x, n);
        y_mem = rig_output(rig, n);
        dy_mem = rig_upload(rig, dy, n);
        dx_mem = rig_output(rig, n);
        CALL(rig, unary_forward, uc->name, op, n, x_mem, y_mem);
        expect_close(rig, "unary_forward", uc->name, "y", y_mem, y, n, TOL_UNARY);
        CALL(rig, unary_forward, uc->name, op, n, inplace_mem, inplace_mem);
        expect_close(rig, "unary_forward", uc->name, "y (in place)", inplace_mem, y, n,
                     TOL_UNARY);
        CALL(rig, unary_backward, uc->name, op, n, from_y ? NULL : x_mem, from_y ? y_mem : NULL,
             dy_mem, dx_mem);
        expect_close(rig, "unary_backward", uc->name, "dx", dx_mem, dx, n, TOL_UNARY);
        /* the same in place, dx == dy */
        CALL(rig, unary_backward, uc->name, op, n, from_y ? NULL : x_mem, from_y ? y_mem : NULL,
             dy_mem, dy_mem);
        expect_close(rig, "unary_backward", uc->name, "dx (dx == dy)", dy_mem, dx, n, TOL_UNARY);

        /* dx against dy * (f(x + h) - f(x - h)) / 2h, away from kinks */
        got_dx = rig_fetch(rig, dx_mem, n);
        yp_mem = rig_upload(rig, xp, n);
        ym_mem = rig_upload(rig, xm, n);
        CALL(rig, unary_forward, uc->name, op, n, yp_mem, yp_mem);
        CALL(rig, unary_forward, uc->name, op, n, ym_mem, ym_mem);
        yp = rig_fetch(rig, yp_mem, n);
        ym = rig_fetch(rig, ym_mem, n);
        for (gsize i = 0; i < n; i++) {
            double fd = dy[i] * ((double)yp[i] - ym[i]) / ((double)xp[i] - xm[i]);
            double bound = tolerances[TOL_FINITE_DIFF].atol +
                           tolerances[TOL_FINITE_DIFF].rtol * fabs(fd);
            if (unary_near_kink(op, x[i], unary_step(x[i])) || fabs(got_dx[i] - fd) <= bound)
                continue;
            ck_assert_msg(FALSE,
                          "backend %s, unary_backward, case \"%s\": dx[%" G_GSIZE_FORMAT
                          "] at x = %.9g is %.9g, central differences give %.9g",
                          rig->name, uc->name, i, x[i], got_dx[i], fd);
        }
    }
}
END_TEST

/* ------------------------------------------------------------ binary family */

static const char *const binary_names[] = {
    [TP_BINARY_ADD] = "add",
    [TP_BINARY_SUB] = "sub",
    [TP_BINARY_MUL] = "mul",
    [TP_BINARY_DIV] = "div",
};

/* Shapes of the explicit cases; the axis-pattern cases are made from a loop
 * index (binary_pattern). */
typedef struct {
    const char *name;
    int ndim;
    int y[TP_KERNEL_MAX_DIMS], a[TP_KERNEL_MAX_DIMS], b[TP_KERNEL_MAX_DIMS];
} BroadcastCase;

/* clang-format off */
static const BroadcastCase broadcast_cases[] = {
    { "1-D, [7] and a scalar [1]",            1, {7},  {7},  {1} },
    { "1-D, a scalar [1] and [7]",            1, {7},  {1},  {7} },
    { "scalar [1] and [1]",                   1, {1},  {1},  {1} },
    { "6-D, both broadcast on other axes",    6, {2, 3, 2, 3, 2, 3}, {2, 1, 2, 1, 2, 1}, {1, 3, 1, 3, 1, 3} },
    { "6-D, axes of extent 1 in y",           6, {1, 3, 1, 4, 1, 5}, {1, 3, 1, 1, 1, 5}, {1, 1, 1, 4, 1, 1} },
    /* 2 * CPU_PART_WORK outputs or more: split over threads */
    { "SE gate [4,32,32,32] x [4,32,1,1]",    4, {4, 32, 32, 32}, {4, 32, 32, 32}, {4, 32, 1, 1} },
    { "bias [4,32,32,32] + [1,32,1,1]",       4, {4, 32, 32, 32}, {4, 32, 32, 32}, {1, 32, 1, 1} },
    { "layer scale [4,100,384] x [384]",      3, {4, 100, 384}, {4, 100, 384}, {1, 1, 384} },
    { "outer [4,1,32,1] and [1,32,1,32]",     4, {4, 32, 32, 32}, {4, 1, 32, 1}, {1, 32, 1, 32} },
    { "same shape [4,32,32,32]",              4, {4, 32, 32, 32}, {4, 32, 32, 32}, {4, 32, 32, 32} },
};
/* clang-format on */

/* Pattern case p of 256: y [2, 3, 4, 5]; bit d of p (a) and of p >> 4 (b)
 * broadcasts that operand along axis d: every pair of axis patterns. */
static void
binary_pattern(int p, TpBroadcastGeometry *g, char *name, gsize size)
{
    static const int dims[] = {2, 3, 4, 5};

    memset(g, 0, sizeof *g);
    g->ndim = 4;
    for (int d = 0; d < 4; d++) {
        g->y[d] = dims[d];
        g->a[d] = p >> d & 1 ? 1 : dims[d];
        g->b[d] = p >> (4 + d) & 1 ? 1 : dims[d];
    }
    g_snprintf(name, size, "[2,3,4,5] from a [%d,%d,%d,%d] and b [%d,%d,%d,%d]", g->a[0], g->a[1],
               g->a[2], g->a[3], g->b[0], g->b[1], g->b[2], g->b[3]);
}

static gsize
geometry_numel(int ndim, const int *shape)
{
    gsize n = 1;

    for (int d = 0; d < ndim; d++)
        n *= (gsize)shape[d];
    return n;
}

/* Sum of dy * y, y = a op b on the backend: the loss whose gradients
 * binary_backward computes. */
static double
binary_loss(Rig *rig, TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
            const float *bv, const float *dy, float *y_mem)
{
    gsize na = geometry_numel(g->ndim, g->a), nb = geometry_numel(g->ndim, g->b);
    gsize ny = geometry_numel(g->ndim, g->y);
    float *a_mem = rig_upload(rig, a, na), *b_mem = rig_upload(rig, bv, nb);
    g_autofree float *y = NULL;
    double loss = 0.0;

    CALL(rig, binary_forward, "(finite differences)", op, g, a_mem, b_mem, y_mem);
    y = rig_fetch(rig, y_mem, ny);
    for (gsize i = 0; i < ny; i++)
        loss += (double)dy[i] * y[i];
    rig->backend->vt.free(rig->backend->self, a_mem);
    rig->backend->vt.free(rig->backend->self, b_mem);
    g_ptr_array_remove_fast(rig->mems, a_mem);
    g_ptr_array_remove_fast(rig->mems, b_mem);
    return loss;
}

/* One geometry, every op: forward (out of place, and in place where an
 * operand has y's shape), backward for both operands and for each alone,
 * against the reference; on small geometries the gradients also against
 * central differences of the backend's forward, element by element. */
static void
check_binary(const TpBroadcastGeometry *g, const char *case_name, guint32 seed)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    gsize na = geometry_numel(g->ndim, g->a), nb = geometry_numel(g->ndim, g->b);
    gsize ny = geometry_numel(g->ndim, g->y);
    g_autofree float *a = random_floats(na, -1.0f, 1.0f, seed);
    /* away from 0: it divides */
    g_autofree float *bv = random_floats(nb, 0.5f, 2.0f, seed + 1);
    g_autofree float *dy = random_floats(ny, -1.0f, 1.0f, seed + 2);
    g_autofree float *y = g_new(float, ny);
    g_autofree float *da = g_new(float, na);
    g_autofree float *db = g_new(float, nb);

    for (gsize k = 0; k < nb; k += 2)
        bv[k] = -bv[k];
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));

        if (!rig_has_family(rig, TP_KERNELS_BINARY))
            continue;
        for (TpBinaryOp op = TP_BINARY_ADD; op <= TP_BINARY_DIV; op++) {
            g_autofree char *name = g_strdup_printf("%s, %s", binary_names[op], case_name);
            float *a_mem, *b_mem, *dy_mem, *y_mem, *da_mem, *db_mem;

            ref_binary_forward(op, g, a, bv, y);
            ref_binary_backward(op, g, a, bv, dy, da, db);
            a_mem = rig_upload(rig, a, na);
            b_mem = rig_upload(rig, bv, nb);
            dy_mem = rig_upload(rig, dy, ny);
            y_mem = rig_output(rig, ny);
            da_mem = rig_output(rig, na);
            db_mem = rig_output(rig, nb);
            CALL(rig, binary_forward, name, op, g, a_mem, b_mem, y_mem);
            expect_close(rig, "binary_forward", name, "y", y_mem, y, ny, TOL_BROADCAST);
            CALL(rig, binary_backward, name, op, g, a_mem, b_mem, dy_mem, da_mem, db_mem);
            expect_close(rig, "binary_backward", name, "da", da_mem, da, na, TOL_BROADCAST);
            expect_close(rig, "binary_backward", name, "db", db_mem, db, nb, TOL_BROADCAST);
            /* each gradient alone, the other NULL */
            {
                float *da2 = rig_output(rig, na), *db2 = rig_output(rig, nb);
                CALL(rig, binary_backward, name, op, g, a_mem, b_mem, dy_mem, da2, NULL);
                expect_close(rig, "binary_backward", name, "da (db NULL)", da2, da, na,
                             TOL_BROADCAST);
                CALL(rig, binary_backward, name, op, g, a_mem, b_mem, dy_mem, NULL, db2);
                expect_close(rig, "binary_backward", name, "db (da NULL)", db2, db, nb,
                             TOL_BROADCAST);
            }
            if (na == ny) {
                float *inplace = rig_upload(rig, a, na);
                CALL(rig, binary_forward, name, op, g, inplace, b_mem, inplace);
                expect_close(rig, "binary_forward", name, "y (y == a)", inplace, y, ny,
                             TOL_BROADCAST);
            }
            if (nb == ny) {
                float *inplace = rig_upload(rig, bv, nb);
                CALL(rig, binary_forward, name, op, g, a_mem, inplace, inplace);
                expect_close(rig, "binary_forward", name, "y (y == b)", inplace, y, ny,
                             TOL_BROADCAST);
            }
            if (ny > 1000)
                continue;
            /* central differences, on up to 3 elements of each operand */
            for (int which = 0; which < 2; which++) {
                gsize n = which == 0 ? na : nb;
                const float *want = which == 0 ? da : db;
                for (gsize j = 0; j < n; j += MAX(n / 3, 1)) {
                    g_autofree float *ap = dup_floats(a, na), *am = dup_floats(a, na);
                    g_autofree float *bp = dup_floats(bv, nb), *bm = dup_floats(bv, nb);
                    double fd, bound;
                    (which == 0 ? ap : bp)[j] += FD_STEP;
                    (which == 0 ? am : bm)[j] -= FD_STEP;
                    fd = (binary_loss(rig, op, g, ap, bp, dy, y_mem) -
                          binary_loss(rig, op, g, am, bm, dy, y_mem)) /
                         (2.0 * FD_STEP);
                    bound = tolerances[TOL_FINITE_DIFF].atol +
                            tolerances[TOL_FINITE_DIFF].rtol * fabs(fd);
                    ck_assert_msg(fabs(want[j] - fd) <= bound,
                                  "backend %s, binary_backward, case \"%s\": d%s[%" G_GSIZE_FORMAT
                                  "] is %.9g, central differences give %.9g",
                                  rig->name, name, which == 0 ? "a" : "b", j, want[j], fd);
                }
            }
        }
    }
}

START_TEST(test_binary_patterns)
{
    TpBroadcastGeometry g;
    char name[96];

    binary_pattern(_i, &g, name, sizeof name);
    check_binary(&g, name, 500 + 3 * (guint32)_i);
}
END_TEST

START_TEST(test_binary_shapes)
{
    const BroadcastCase *bc = &broadcast_cases[_i];
    TpBroadcastGeometry g = {.ndim = bc->ndim};

    memcpy(g.y, bc->y, sizeof g.y);
    memcpy(g.a, bc->a, sizeof g.a);
    memcpy(g.b, bc->b, sizeof g.b);
    check_binary(&g, bc->name, 1400 + 3 * (guint32)_i);
}
END_TEST

/* ------------------------------------------------------------ reduce family */

typedef struct {
    const char *name;
    int ndim;
    int x[TP_KERNEL_MAX_DIMS], y[TP_KERNEL_MAX_DIMS];
} ReduceCase;

/* clang-format off */
static const ReduceCase reduce_cases[] = {
    /* 2 * CPU_PART_WORK inputs or more: split over threads */
    { "global average [4,32,32,32] -> [4,32,1,1]", 4, {4, 32, 32, 32}, {4, 32, 1, 1} },
    { "rows [4,100,384] -> [4,100,1]",             3, {4, 100, 384},   {4, 100, 1} },
    { "channels [4,32,32,32] -> [4,1,32,32]",      4, {4, 32, 32, 32}, {4, 1, 32, 32} },
    { "a long axis [1,100000] -> [1,1]",           2, {1, 100000},     {1, 1} },
    { "everything [5,7,9] -> [1,1,1]",             3, {5, 7, 9},       {1, 1, 1} },
    { "nothing [5,7] -> [5,7]",                    2, {5, 7},          {5, 7} },
    { "6-D, every other axis",                     6, {2, 3, 2, 3, 2, 3}, {2, 1, 2, 1, 2, 1} },
};
/* clang-format on */

/* Forward and backward of both ops against the reference; the backward
 * also against central differences of the forward (sum of dy * y) on small
 * geometries. */
static void
check_reduce(const TpReduceGeometry *g, const char *case_name, guint32 seed)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    gsize nx = geometry_numel(g->ndim, g->x), ny = geometry_numel(g->ndim, g->y);
    g_autofree float *x = random_floats(nx, -1.0f, 1.0f, seed);
    g_autofree float *dy = random_floats(ny, -1.0f, 1.0f, seed + 1);
    g_autofree float *y = g_new(float, ny);
    g_autofree float *dx = g_new(float, nx);

    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));

        if (!rig_has_family(rig, TP_KERNELS_REDUCE))
            continue;
        for (TpReduceOp op = TP_REDUCE_SUM; op <= TP_REDUCE_MEAN; op++) {
            g_autofree char *name =
                g_strdup_printf("%s, %s", op == TP_REDUCE_SUM ? "sum" : "mean", case_name);
            float *x_mem, *dy_mem, *y_mem, *dx_mem;

            ref_reduce_forward(op, g, x, y);
            ref_reduce_backward(op, g, dy, dx);
            x_mem = rig_upload(rig, x, nx);
            dy_mem = rig_upload(rig, dy, ny);
            y_mem = rig_output(rig, ny);
            dx_mem = rig_output(rig, nx);
            CALL(rig, reduce_forward, name, op, g, x_mem, y_mem);
            expect_close(rig, "reduce_forward", name, "y", y_mem, y, ny, TOL_REDUCE);
            CALL(rig, reduce_backward, name, op, g, dy_mem, dx_mem);
            expect_close(rig, "reduce_backward", name, "dx", dx_mem, dx, nx, TOL_REDUCE);
            if (nx > 1000)
                continue;
            for (gsize j = 0; j < nx; j += MAX(nx / 3, 1)) {
                double loss[2];
                for (int side = 0; side < 2; side++) {
                    g_autofree float *xs = dup_floats(x, nx);
                    g_autofree float *ys = NULL;
                    xs[j] += side == 0 ? FD_STEP : -FD_STEP;
                    CALL(rig, upload, name, x_mem, xs, nx);
                    CALL(rig, reduce_forward, name, op, g, x_mem, y_mem);
                    ys = rig_fetch(rig, y_mem, ny);
                    loss[side] = 0.0;
                    for (gsize i = 0; i < ny; i++)
                        loss[side] += (double)dy[i] * ys[i];
                }
                {
                    double fd = (loss[0] - loss[1]) / (2.0 * FD_STEP);
                    ck_assert_msg(fabs(dx[j] - fd) <= tolerances[TOL_FINITE_DIFF].atol +
                                                          tolerances[TOL_FINITE_DIFF].rtol *
                                                              fabs(fd),
                                  "backend %s, reduce_backward, case \"%s\": dx[%" G_GSIZE_FORMAT
                                  "] is %.9g, central differences give %.9g",
                                  rig->name, name, j, dx[j], fd);
                }
            }
        }
    }
}

/* x [2, 3, 4, 5] reduced over the axes of the 4 bits of the loop index:
 * every axis pattern. */
START_TEST(test_reduce_patterns)
{
    static const int dims[] = {2, 3, 4, 5};
    TpReduceGeometry g = {.ndim = 4};
    g_autofree char *name = NULL;

    for (int d = 0; d < 4; d++) {
        g.x[d] = dims[d];
        g.y[d] = _i >> d & 1 ? 1 : dims[d];
    }
    name = g_strdup_printf("[2,3,4,5] -> [%d,%d,%d,%d]", g.y[0], g.y[1], g.y[2], g.y[3]);
    check_reduce(&g, name, 1600 + 2 * (guint32)_i);
}
END_TEST

START_TEST(test_reduce_shapes)
{
    const ReduceCase *rc = &reduce_cases[_i];
    TpReduceGeometry g = {.ndim = rc->ndim};

    memcpy(g.x, rc->x, sizeof g.x);
    memcpy(g.y, rc->y, sizeof g.y);
    check_reduce(&g, rc->name, 1700 + 2 * (guint32)_i);
}
END_TEST

/* ------------------------------------------------------------ strided family */

typedef struct {
    const char *name;
    gsize src_n, dst_n; /* buffer sizes */
    TpStridedCopy g;
} StridedCase;

/* clang-format off */
static const StridedCase strided_cases[] = {
    { "transpose [2,3,4,5] -> [2,4,5,3]", 120, 120,
      { 4, {2, 3, 4, 5}, {60, 20, 5, 1}, {60, 1, 15, 3}, 0, 0, FALSE } },
    { "concat: [2,3,4,5] into channels 4..6 of [2,7,4,5]", 120, 280,
      { 4, {2, 3, 4, 5}, {60, 20, 5, 1}, {140, 20, 5, 1}, 0, 80, FALSE } },
    { "split backward: the same, accumulated", 120, 280,
      { 4, {2, 3, 4, 5}, {60, 20, 5, 1}, {140, 20, 5, 1}, 0, 80, TRUE } },
    { "slice w 1:8:2 of [2,3,4,9]", 216, 96,
      { 4, {2, 3, 4, 4}, {108, 36, 9, 2}, {48, 16, 4, 1}, 1, 0, FALSE } },
    { "channel shuffle [2,2,3,4,5] -> [2,3,2,4,5]", 240, 240,
      { 5, {2, 2, 3, 4, 5}, {120, 60, 20, 5, 1}, {120, 20, 40, 5, 1}, 0, 0, FALSE } },
    { "reflect pad: w 2,1 of [1,2,3,5] into w 0,1 of [1,2,3,9]", 30, 54,
      { 4, {1, 2, 3, 2}, {30, 15, 5, -1}, {54, 27, 9, 1}, 2, 0, FALSE } },
    { "expand [1,3,1,1] -> [2,3,4,5] (zero strides)", 3, 120,
      { 4, {2, 3, 4, 5}, {0, 1, 0, 0}, {60, 20, 5, 1}, 0, 0, FALSE } },
    { "6-D permutation (5,3,1,0,2,4) of [2,3,2,3,2,3]", 216, 216,
      { 6, {2, 3, 2, 3, 2, 3}, {108, 36, 18, 6, 3, 1}, {4, 8, 2, 24, 1, 72}, 0, 0, FALSE } },
    { "transpose [8,64,16,16] -> [8,16,16,64] (threads)", 131072, 131072,
      { 4, {8, 64, 16, 16}, {16384, 256, 16, 1}, {16384, 1, 1024, 64}, 0, 0, FALSE } },
    { "an empty axis", 8, 8,
      { 2, {0, 4}, {4, 1}, {4, 1}, 0, 0, FALSE } },
};
/* clang-format on */

/* The copy on a destination holding other data: what it addresses is
 * copied (or added), the rest is left alone; compared in full. */
START_TEST(test_strided_copy)
{
    const StridedCase *sc = &strided_cases[_i];
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autofree float *src = random_floats(sc->src_n, -1.0f, 1.0f, 2000 + _i);
    g_autofree float *before = random_floats(sc->dst_n, -1.0f, 1.0f, 2100 + _i);
    g_autofree float *want = dup_floats(before, sc->dst_n);

    ref_strided_copy(&sc->g, src, want);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *src_mem, *dst_mem;

        if (!rig_has_family(rig, TP_KERNELS_STRIDED))
            continue;
        src_mem = rig_upload(rig, src, sc->src_n);
        dst_mem = rig_upload(rig, before, sc->dst_n);
        CALL(rig, strided_copy, sc->name, &sc->g, src_mem, dst_mem);
        expect_close(rig, "strided_copy", sc->name, "dst", dst_mem, want, sc->dst_n,
                     sc->g.accumulate ? TOL_ADD : TOL_MEMORY);
    }
}
END_TEST

/* ------------------------------------------------------------ layer-norm family */

static const struct {
    const char *name;
    int rows, cols;
    float epsilon;
    gboolean bias;
} layer_norm_cases[] = {
    {"1 x 1 (zero variance)", 1, 1, 1e-5f, TRUE},
    {"3 x 7", 3, 7, 1e-5f, TRUE},
    {"5 x 384, no bias", 5, 384, 1e-6f, FALSE},
    {"1000 x 3, epsilon 0.1", 1000, 3, 0.1f, TRUE},
    {"1400 x 96 (threads)", 1400, 96, 1e-5f, TRUE},
};

/* The loss sum(dy * y) of the backend's forward with x, scale, bias. */
static double
layer_norm_loss(Rig *rig, const TpLayerNormGeometry *g, const float *x, const float *scale,
                const float *bias, const float *dy)
{
    gsize n = (gsize)g->rows * g->cols;
    float *x_mem = rig_upload(rig, x, n), *s_mem = rig_upload(rig, scale, g->cols);
    float *b_mem = bias != NULL ? rig_upload(rig, bias, g->cols) : NULL;
    float *y_mem = rig_output(rig, n);
    g_autofree float *y = NULL;
    double loss = 0.0;

    CALL(rig, layer_norm_forward, "(finite differences)", g, x_mem, s_mem, b_mem, y_mem, NULL,
         NULL);
    y = rig_fetch(rig, y_mem, n);
    for (gsize i = 0; i < n; i++)
        loss += (double)dy[i] * y[i];
    return loss;
}

/* Forward with and without the saved statistics, in place, backward with
 * and without the parameter gradients, against the reference; on small
 * cases every gradient also against central differences. */
START_TEST(test_layer_norm)
{
    const TpLayerNormGeometry g = {.rows = layer_norm_cases[_i].rows,
                                   .cols = layer_norm_cases[_i].cols,
                                   .epsilon = layer_norm_cases[_i].epsilon};
    const char *name = layer_norm_cases[_i].name;
    const gboolean has_bias = layer_norm_cases[_i].bias;
    const gsize n = (gsize)g.rows * g.cols;
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autofree float *x = random_floats(n, -2.0f, 3.0f, 2200 + _i);
    g_autofree float *scale = random_floats(g.cols, 0.5f, 1.5f, 2300 + _i);
    g_autofree float *bias = has_bias ? random_floats(g.cols, -1.0f, 1.0f, 2400 + _i) : NULL;
    g_autofree float *dy = random_floats(n, -1.0f, 1.0f, 2500 + _i);
    g_autofree float *y = g_new(float, n), *mean = g_new(float, g.rows);
    g_autofree float *invstd = g_new(float, g.rows), *dx = g_new(float, n);
    g_autofree float *dscale = g_new(float, g.cols), *dbias = g_new(float, g.cols);

    ref_layer_norm_forward(&g, x, scale, bias, y, mean, invstd);
    ref_layer_norm_backward(&g, x, dy, scale, dx, dscale, dbias);
    for (guint b = 0; b < names->len; b++) {
        g_autoptr(Rig) rig = rig_open(g_ptr_array_index(names, b));
        float *x_mem, *s_mem, *b_mem, *y_mem, *m_mem, *i_mem, *dy_mem, *dx_mem, *ds_mem, *db_mem;
        float *inplace;

        if (!rig_has_family(rig, TP_KERNELS_LAYER_NORM))
            continue;
        x_mem = rig_upload(rig, x, n);
        s_mem = rig_upload(rig, scale, g.cols);
        b_mem = has_bias ? rig_upload(rig, bias, g.cols) : NULL;
        y_mem = rig_output(rig, n);
        m_mem = rig_output(rig, g.rows);
        i_mem = rig_output(rig, g.rows);
        dy_mem = rig_upload(rig, dy, n);
        dx_mem = rig_output(rig, n);
        ds_mem = rig_output(rig, g.cols);
        db_mem = rig_output(rig, g.cols);
        CALL(rig, layer_norm_forward, name, &g, x_mem, s_mem, b_mem, y_mem, m_mem, i_mem);
        expect_close(rig, "layer_norm_forward", name, "y", y_mem, y, n, TOL_LAYER_NORM);
        expect_close(rig, "layer_norm_forward", name, "save_mean", m_mem, mean, g.rows,
                     TOL_LAYER_NORM);
        expect_close(rig, "layer_norm_forward", name, "save_invstd", i_mem, invstd, g.rows,
                     TOL_LAYER_NORM);
        inplace = rig_upload(rig, x, n);
        CALL(rig, layer_norm_forward, name, &g, inplace, s_mem, b_mem, inplace, NULL, NULL);
        expect_close(rig, "layer_norm_forward", name, "y (evaluation, in place)", inplace, y, n,
                     TOL_LAYER_NORM);
        CALL(rig, layer_norm_backward, name, &g, x_mem, dy_mem, s_mem, m_mem, i_mem, dx_mem,
             ds_mem, db_mem);
        expect_close(rig, "layer_norm_backward", name, "dx", dx_mem, dx, n, TOL_LAYER_NORM);
        expect_close(rig, "layer_norm_backward", name, "dscale", ds_mem, dscale, g.cols,
                     TOL_LAYER_NORM);
        expect_close(rig, "layer_norm_backward", name, "dbias", db_mem, dbias, g.cols,
                     TOL_LAYER_NORM);
        {
            float *dx2 = rig_output(rig, n);
            CALL(rig, layer_norm_backward, name, &g, x_mem, dy_mem, s_mem, m_mem, i_mem, dx2,
                 NULL, NULL);
            expect_close(rig, "layer_norm_backward", name, "dx (no parameter gradients)", dx2,
                         dx, n, TOL_LAYER_NORM);
        }
        if (n > 100)
            continue;
        /* central differences of sum(dy * y): the backend's gradients of x,
         * scale and bias, a few elements each */
        for (int which = 0; which < 3; which++) {
            gsize len = which == 0 ? n : (gsize)g.cols;
            g_autofree float *want =
                rig_fetch(rig, which == 0 ? dx_mem : which == 1 ? ds_mem : db_mem, len);
            if (which == 2 && !has_bias)
                continue;
            for (gsize j = 0; j < len; j += MAX(len / 4, 1)) {
                double loss[2], fd;
                for (int side = 0; side < 2; side++) {
                    g_autofree float *xs = dup_floats(x, n);
                    g_autofree float *ss = dup_floats(scale, g.cols);
                    g_autofree float *bs = has_bias ? dup_floats(bias, g.cols) : NULL;
                    float *v = which == 0 ? xs : which == 1 ? ss : bs;
                    v[j] += side == 0 ? FD_STEP : -FD_STEP;
                    loss[side] = layer_norm_loss(rig, &g, xs, ss, bs, dy);
                }
                fd = (loss[0] - loss[1]) / (2.0 * FD_STEP);
                if (fabs(want[j] - fd) <= tolerances[TOL_FINITE_DIFF].atol +
                                              tolerances[TOL_FINITE_DIFF].rtol * fabs(fd))
                    continue;
                ck_assert_msg(FALSE,
                              "backend %s, layer_norm_backward, case \"%s\": %s[%" G_GSIZE_FORMAT
                              "] is %.9g, central differences give %.9g",
                              rig->name, name, which == 0 ? "dx" : which == 1 ? "dscale" : "dbias",
                              j, want[j], fd);
            }
        }
    }
}
END_TEST

/* A backend plugin built before the families (a vtable that ends at
 * conv2d_forward_relu) loads, and asking it for a family is an error that
 * names the backend, the family and what to do. */
START_TEST(test_family_missing)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    const char *name = g_ptr_array_index(names, 0);
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_BACKEND, name, &error);
    TpPluginInfo old_info = *plugin->info;
    g_autoptr(TpBackend) backend = NULL;

    old_info.vtable_size = offsetof(TpBackendVTable, conv2d_forward_relu) + sizeof(gpointer);
    ck_assert_msg(tp_backend_vtable_check(&old_info, &error), "%s", error ? error->message : "");
    backend = tp_backend_new(&old_info, NULL, &error);
    ck_assert_msg(backend != NULL, "%s", error ? error->message : "");
    for (TpKernelFamily f = TP_KERNELS_UNARY; f <= TP_KERNELS_LAYER_NORM; f++) {
        g_clear_error(&error);
        ck_assert(!tp_backend_has_family(backend, f, &error));
        ck_assert(g_error_matches(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED));
        ck_assert_msg(strstr(error->message, name) != NULL && strstr(error->message, "rebuild"),
                      "%s", error->message);
    }
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *
conformance_suite(void)
{
    Suite *suite = suite_create("backend-conformance");
    TCase *tc;

    tc = tcase_create("memory");
    tcase_add_test(tc, test_memory);
    tcase_add_test(tc, test_memory_reuse);
    tcase_add_test(tc, test_prepare_key);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(suite, tc);

    tc = tcase_create("conv2d");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_conv2d, 0, G_N_ELEMENTS(conv_cases));
    tcase_add_test(tc, test_conv2d_one_backend);
    tcase_add_test(tc, test_conv2d_finite_differences);
    suite_add_tcase(suite, tc);

    tc = tcase_create("dense");
    tcase_add_loop_test(tc, test_gemm, 0, 8 * G_N_ELEMENTS(gemm_sizes));
    tcase_add_loop_test(tc, test_add_bias, 0, G_N_ELEMENTS(bias_sizes));
    tcase_add_loop_test(tc, test_sum_rows, 0, G_N_ELEMENTS(bias_sizes));
    suite_add_tcase(suite, tc);

    tc = tcase_create("batch_norm");
    tcase_add_loop_test(tc, test_batch_norm_train, 0, G_N_ELEMENTS(bn_cases));
    tcase_add_loop_test(tc, test_batch_norm_eval, 0, G_N_ELEMENTS(bn_cases));
    tcase_add_loop_test(tc, test_batch_norm_backward, 0, G_N_ELEMENTS(bn_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("elementwise");
    tcase_add_test(tc, test_relu);
    tcase_add_loop_test(tc, test_add, 0, 4);
    tcase_add_loop_test(tc, test_dropout, 0, G_N_ELEMENTS(dropout_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("pool2d");
    tcase_add_loop_test(tc, test_pool2d, 0, G_N_ELEMENTS(pool_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("softmax");
    tcase_add_loop_test(tc, test_softmax, 0, G_N_ELEMENTS(softmax_cases));
    tcase_add_loop_test(tc, test_softmax_cross_entropy, 0, G_N_ELEMENTS(xent_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("sgd");
    tcase_add_loop_test(tc, test_sgd_update, 0, 8);
    suite_add_tcase(suite, tc);

    tc = tcase_create("relevance");
    tcase_add_loop_test(tc, test_mul, 0, 4);
    tcase_add_loop_test(tc, test_axpby, 0, G_N_ELEMENTS(axpby_cases));
    tcase_add_loop_test(tc, test_clamp, 0, G_N_ELEMENTS(clamp_cases));
    tcase_add_loop_test(tc, test_stabilized_divide, 0, G_N_ELEMENTS(divide_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("families");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_unary, 0, G_N_ELEMENTS(unary_cases));
    tcase_add_loop_test(tc, test_binary_patterns, 0, 256);
    tcase_add_loop_test(tc, test_binary_shapes, 0, G_N_ELEMENTS(broadcast_cases));
    tcase_add_loop_test(tc, test_reduce_patterns, 0, 16);
    tcase_add_loop_test(tc, test_reduce_shapes, 0, G_N_ELEMENTS(reduce_cases));
    tcase_add_loop_test(tc, test_strided_copy, 0, G_N_ELEMENTS(strided_cases));
    tcase_add_loop_test(tc, test_layer_norm, 0, G_N_ELEMENTS(layer_norm_cases));
    tcase_add_test(tc, test_family_missing);
    suite_add_tcase(suite, tc);

    return suite;
}

int
main(void)
{
    tp_test_init();
    /* Probe every backend once, before Check forks a process per test: a
     * backend without its device is named once ("skipped: ...") and left
     * out of every loop below. */
    g_print("backends under test: %d\n", tp_test_count_backends());
    return tp_test_run(conformance_suite());
}
