/* test-prune.c — the pruning analysis and the surgery (engine/tp-units.c,
 * engine/tp-prune.c), on every backend:
 *  - the channel spaces of the zoo's LeNet-5, VGG-11, ResNet-20 and
 *    ResNet-18, each residual stream's producers written out by hand from the
 *    architecture; prune_linear; unit values and BatchNorm mapping; depthwise,
 *    grouped, input-joined and mixed spaces in small hand-built graphs;
 *  - docs/method.md §3's equivalence: a physically pruned model computes what a
 *    masked copy of the original computes (consumers' input slices of the
 *    removed channels zeroed) within 1e-5 of the output scale, with and
 *    without head surgery, and its ONNX export reproduces it bit-exactly;
 *  - parameter and MAC counts of a pruned LeNet-5 against a formula;
 *  - bad masks and class lists. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tp-prune.h"
#include "tp-test.h"

#define SEED 1234
#define BATCH 3
#define EQUIV_RTOL 1e-5

/* ------------------------------------------------------------ helpers */

static TpModel *
zoo(TpBackend *backend, const char *arch, double width)
{
    g_autoptr(GError) error = NULL;
    TpZooConfig config = {1, 28, 28, 10, width, SEED};
    TpModel *model = tp_zoo_build(backend, arch, &config, &error);

    ck_assert_msg(model != NULL, "%s: %s", arch, error ? error->message : "");
    return model;
}

static TpUnits *
analyze(const TpModel *model, gboolean prune_linear)
{
    g_autoptr(GError) error = NULL;
    TpUnits *units = tp_units_new(model, prune_linear, &error);

    ck_assert_msg(units != NULL, "%s", error ? error->message : "");
    return units;
}

/* The index of the node called name; fails the test if there is none. */
static guint
node_named(const TpModel *model, const char *name)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (g_str_equal(tp_model_get_node(model, i)->name, name))
            return i;
    ck_abort_msg("no node '%s'", name);
    return 0;
}

/* Eval-mode output of model on input (batch samples), a new host array of
 * *out_n floats. */
static float *
run(TpModel *model, const float *input, int batch, gsize *out_n)
{
    g_autoptr(GError) error = NULL;
    TpTensor *y;

    ck_assert_msg(tp_model_forward(model, input, batch, TP_MODE_EVAL, &error), "%s",
                  error ? error->message : "");
    y = tp_model_get_value(model, tp_model_get_output(model));
    *out_n = y->numel;
    return tp_tensor_dup_host(y, NULL);
}

/* Checks space `s` of units: its name, unit count, kind and producers (a
 * NULL-terminated list of node names, in graph order). */
static void
assert_space(const TpModel *model, const TpUnits *units, guint s, const char *name, int n_units,
             gboolean linear, const char *const *producers)
{
    const TpUnitSpace *space = tp_units_get_space(units, s);
    guint n = g_strv_length((char **)producers);

    ck_assert_msg(space != NULL, "no space %u (%s)", s, name);
    ck_assert_str_eq(space->name, name);
    ck_assert_msg(space->n_units == n_units, "space %s: %d units, want %d", name, space->n_units,
                  n_units);
    ck_assert_int_eq(space->linear, linear);
    ck_assert_msg(space->n_producers == n, "space %s: %u producers, want %u", name,
                  space->n_producers, n);
    for (guint k = 0; k < n; k++) {
        guint node = node_named(model, producers[k]);

        ck_assert_msg(space->producers[k] == node, "space %s: producer %u is '%s', want '%s'", name,
                      k, tp_model_get_node(model, space->producers[k])->name, producers[k]);
        ck_assert_int_eq(tp_units_get_space_of(units, node), (int)s);
    }
}

#define P(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A model's expected spaces, in order. */
typedef struct {
    const char *name;
    int n_units;
    gboolean linear;
    const char *const *producers;
} Want;

static void
assert_spaces(const TpModel *model, const TpUnits *units, const Want *want, guint n_want)
{
    gsize total = 0;

    ck_assert_uint_eq(tp_units_get_n_spaces(units), n_want);
    for (guint s = 0; s < n_want; s++) {
        assert_space(model, units, s, want[s].name, want[s].n_units, want[s].linear,
                     want[s].producers);
        total += (gsize)want[s].n_units;
    }
    ck_assert_uint_eq(tp_units_get_total(units), total);
}

/* The unit value of `producer` is the output of node `value`, and its
 * BatchNorm is node `bn` (NULL: none). */
static void
assert_unit(const TpModel *model, const TpUnits *units, const char *producer, const char *value,
            const char *bn)
{
    guint node = node_named(model, producer);
    int want_value = tp_model_get_node(model, node_named(model, value))->output;

    ck_assert_msg(tp_units_get_unit_value(units, node) == want_value,
                  "%s: unit value %d, want %d (%s)", producer, tp_units_get_unit_value(units, node),
                  want_value, value);
    ck_assert_int_eq(tp_units_get_batch_norm(units, node),
                     bn != NULL ? (int)node_named(model, bn) : -1);
}

/* ------------------------------------------------------------ analysis */

/* LeNet-5 (width 1): conv1 6, conv2 16, fc1 120, fc2 84 are spaces; fc3,
 * the head, is not. No BatchNorm: unit values are the ReLUs. */
START_TEST(test_lenet5_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "lenet5", 1.0);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    g_autoptr(TpUnits) convs = analyze(model, FALSE);
    const Want want[] = {
        {"conv1", 6, FALSE, P("conv1")},
        {"conv2", 16, FALSE, P("conv2")},
        {"fc1", 120, TRUE, P("fc1")},
        {"fc2", 84, TRUE, P("fc2")},
    };

    assert_spaces(model, units, want, G_N_ELEMENTS(want));
    ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "fc3")), -1);
    ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "relu1")), -1);
    assert_spaces(model, convs, want, 2);
    ck_assert_int_eq(tp_units_get_space_of(convs, node_named(model, "fc1")), -1);

    assert_unit(model, units, "conv1", "relu1", NULL);
    assert_unit(model, units, "fc2", "relu4", NULL);
    assert_unit(model, units, "fc3", "fc3", NULL);
    ck_assert_int_eq(tp_units_get_unit_value(units, node_named(model, "pool1")), -1);
    ck_assert_int_eq(tp_units_get_batch_norm(units, node_named(model, "pool1")), -1);
}
END_TEST

/* VGG-11 (width 0.25 on 28x28): 8 conv spaces (64·w … 512·w) and the hidden
 * classifier.0; conv → BN → ReLU gives the unit value and BatchNorm. */
START_TEST(test_vgg11_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "vgg11", 0.25);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    g_autoptr(TpUnits) convs = analyze(model, FALSE);
    const Want want[] = {
        {"features.0", 16, FALSE, P("features.0")},
        {"features.4", 32, FALSE, P("features.4")},
        {"features.8", 64, FALSE, P("features.8")},
        {"features.11", 64, FALSE, P("features.11")},
        {"features.15", 128, FALSE, P("features.15")},
        {"features.18", 128, FALSE, P("features.18")},
        {"features.22", 128, FALSE, P("features.22")},
        {"features.25", 128, FALSE, P("features.25")},
        {"classifier.0", 128, TRUE, P("classifier.0")},
    };

    assert_spaces(model, units, want, G_N_ELEMENTS(want));
    assert_spaces(model, convs, want, 8);
    ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "classifier.3")), -1);
    assert_unit(model, units, "features.0", "features.2", "features.1");
    assert_unit(model, units, "features.25", "features.27", "features.26");
    assert_unit(model, units, "classifier.0", "classifier.1", NULL);
}
END_TEST

/* ResNet-20 (width 0.5: 8, 16, 32 channels). Stage 1 has identity
 * shortcuts only, so the stem and every block's conv2 write one stream;
 * stages 2 and 3 open with a projection (downsample.0), which joins their
 * streams. Each block's conv1 is a space of its own: 9 + 3 streams. */
START_TEST(test_resnet20_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "resnet20", 0.5);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    const Want want[] = {
        {"conv1", 8, FALSE, P("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2")},
        {"layer1.0.conv1", 8, FALSE, P("layer1.0.conv1")},
        {"layer1.1.conv1", 8, FALSE, P("layer1.1.conv1")},
        {"layer1.2.conv1", 8, FALSE, P("layer1.2.conv1")},
        {"layer2.0.conv1", 16, FALSE, P("layer2.0.conv1")},
        {"layer2.0.conv2", 16, FALSE,
         P("layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2", "layer2.2.conv2")},
        {"layer2.1.conv1", 16, FALSE, P("layer2.1.conv1")},
        {"layer2.2.conv1", 16, FALSE, P("layer2.2.conv1")},
        {"layer3.0.conv1", 32, FALSE, P("layer3.0.conv1")},
        {"layer3.0.conv2", 32, FALSE,
         P("layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2", "layer3.2.conv2")},
        {"layer3.1.conv1", 32, FALSE, P("layer3.1.conv1")},
        {"layer3.2.conv1", 32, FALSE, P("layer3.2.conv1")},
    };

    assert_spaces(model, units, want, G_N_ELEMENTS(want));
    ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "fc")), -1);
    /* The stem's ReLU alone reads bn1; a block's bn2 is read by the Add. */
    assert_unit(model, units, "conv1", "relu", "bn1");
    assert_unit(model, units, "layer1.0.conv1", "layer1.0.relu1", "layer1.0.bn1");
    assert_unit(model, units, "layer1.0.conv2", "layer1.0.bn2", "layer1.0.bn2");
    assert_unit(model, units, "layer2.0.downsample.0", "layer2.0.downsample.1",
                "layer2.0.downsample.1");
}
END_TEST

/* ResNet-18 (width 0.25: 16, 32, 64, 128): four streams, the first joined
 * by identity shortcuts only, the others opened by a projection. */
START_TEST(test_resnet18_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "resnet18", 0.25);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    g_autoptr(TpUnits) convs = analyze(model, FALSE);
    const Want want[] = {
        {"conv1", 16, FALSE, P("conv1", "layer1.0.conv2", "layer1.1.conv2")},
        {"layer1.0.conv1", 16, FALSE, P("layer1.0.conv1")},
        {"layer1.1.conv1", 16, FALSE, P("layer1.1.conv1")},
        {"layer2.0.conv1", 32, FALSE, P("layer2.0.conv1")},
        {"layer2.0.conv2", 32, FALSE,
         P("layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2")},
        {"layer2.1.conv1", 32, FALSE, P("layer2.1.conv1")},
        {"layer3.0.conv1", 64, FALSE, P("layer3.0.conv1")},
        {"layer3.0.conv2", 64, FALSE,
         P("layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2")},
        {"layer3.1.conv1", 64, FALSE, P("layer3.1.conv1")},
        {"layer4.0.conv1", 128, FALSE, P("layer4.0.conv1")},
        {"layer4.0.conv2", 128, FALSE,
         P("layer4.0.conv2", "layer4.0.downsample.0", "layer4.1.conv2")},
        {"layer4.1.conv1", 128, FALSE, P("layer4.1.conv1")},
    };

    assert_spaces(model, units, want, G_N_ELEMENTS(want));
    assert_spaces(model, convs, want, G_N_ELEMENTS(want)); /* no hidden Gemm */
    assert_unit(model, units, "layer4.1.conv2", "layer4.1.bn2", "layer4.1.bn2");
    assert_unit(model, units, "fc", "fc", NULL);
}
END_TEST

/* A graph with what the zoo lacks, on [3, 8, 8]:
 *   conv1 3→8 (bias) → bn1 → relu1 → dw (depthwise 3x3, 8 groups, bias)
 *   → bn2 → relu2 → pool → conv2 8→6 (bias) → relu3 → flatten (6·4·4)
 *   → fc1 →12 → relu4 → fc2 →5 → softmax.
 * The depthwise conv keeps conv1's space; flatten gives fc1 blocks of 16
 * columns; the softmax reads only the head's space. */
static TpModel *
build_depthwise(TpBackend *backend)
{
    TpModel *model = tp_model_new(backend, 3, 8, 8);
    TpOpAttrs c1 = {
        .conv = {.out_channels = 8, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .bias = TRUE}};
    TpOpAttrs dw = {
        .conv = {
            .out_channels = 8, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .groups = 8, .bias = TRUE}};
    TpOpAttrs c2 = {
        .conv = {.out_channels = 6, .kernel = {3, 3}, .pads = {1, 1, 1, 1}, .bias = TRUE}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};
    TpOpAttrs fc1 = {.gemm = {.out_features = 12, .bias = TRUE}};
    TpOpAttrs fc2 = {.gemm = {.out_features = 5, .bias = TRUE}};
    int v;

    v = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &c1);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_CONV, "dw", v, 0, &dw);
    v = tp_test_add(model, TP_OP_BATCH_NORM, "bn2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_MAX_POOL, "pool", v, 0, &pool);
    v = tp_test_add(model, TP_OP_CONV, "conv2", v, 0, &c2);
    v = tp_test_add(model, TP_OP_RELU, "relu3", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "fc1", v, 0, &fc1);
    v = tp_test_add(model, TP_OP_RELU, "relu4", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "fc2", v, 0, &fc2);
    tp_test_add(model, TP_OP_SOFTMAX, "softmax", v, 0, NULL);
    return model;
}

START_TEST(test_depthwise_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = build_depthwise(backend);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    const Want want[] = {
        {"conv1", 8, FALSE, P("conv1")},
        {"conv2", 6, FALSE, P("conv2")},
        {"fc1", 12, TRUE, P("fc1")},
    };

    assert_spaces(model, units, want, G_N_ELEMENTS(want));
    ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "dw")), -1);
    assert_unit(model, units, "conv1", "relu1", "bn1");
    assert_unit(model, units, "dw", "relu2", "bn2");
}
END_TEST

/* What is refused, on [3, 6, 6]:
 *  - a grouped conv (8→8, 2 groups): neither the space it reads nor the one
 *    it writes is prunable; the conv after it is;
 *  - a conv added to the model input: the input's space is never prunable;
 *  - an Add of a conv's pooled channels and a Gemm's neurons: mixed
 *    producers. */
START_TEST(test_refused_spaces)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    TpOpAttrs c8 = {.conv = {.out_channels = 8, .kernel = {1, 1}}};
    TpOpAttrs grouped = {.conv = {.out_channels = 8, .kernel = {3, 3}, .groups = 2}};
    TpOpAttrs c4 = {.conv = {.out_channels = 4, .kernel = {1, 1}}};
    TpOpAttrs c3 = {.conv = {.out_channels = 3, .kernel = {3, 3}, .pads = {1, 1, 1, 1}}};
    TpOpAttrs fc2 = {.gemm = {.out_features = 2, .bias = TRUE}};
    TpOpAttrs fc4 = {.gemm = {.out_features = 4, .bias = TRUE}};
    int v, a, b;

    {
        g_autoptr(TpModel) model = tp_model_new(backend, 3, 6, 6);
        g_autoptr(TpUnits) units = NULL;
        const Want want[] = {{"conv3", 4, FALSE, P("conv3")}};

        v = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &c8);
        v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
        v = tp_test_add(model, TP_OP_CONV, "grouped", v, 0, &grouped);
        v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
        v = tp_test_add(model, TP_OP_CONV, "conv3", v, 0, &c4);
        v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
        v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
        tp_test_add(model, TP_OP_GEMM, "fc", v, 0, &fc2);
        units = analyze(model, TRUE);
        assert_spaces(model, units, want, G_N_ELEMENTS(want));
    }
    {
        g_autoptr(TpModel) model = tp_model_new(backend, 3, 6, 6);
        g_autoptr(TpUnits) units = NULL;
        const Want want[] = {{"conv2", 4, FALSE, P("conv2")}};

        v = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &c3);
        v = tp_test_add(model, TP_OP_ADD, "add", v, 0, NULL);
        v = tp_test_add(model, TP_OP_CONV, "conv2", v, 0, &c4);
        v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
        v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
        tp_test_add(model, TP_OP_GEMM, "fc", v, 0, &fc2);
        units = analyze(model, TRUE);
        assert_spaces(model, units, want, G_N_ELEMENTS(want));
    }
    {
        g_autoptr(TpModel) model = tp_model_new(backend, 3, 6, 6);
        g_autoptr(TpUnits) units = NULL;

        a = tp_test_add(model, TP_OP_CONV, "conv", 0, 0, &c4);
        a = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", a, 0, NULL);
        a = tp_test_add(model, TP_OP_FLATTEN, "flatten1", a, 0, NULL);
        b = tp_test_add(model, TP_OP_FLATTEN, "flatten2", 0, 0, NULL);
        b = tp_test_add(model, TP_OP_GEMM, "fc1", b, 0, &fc4);
        v = tp_test_add(model, TP_OP_ADD, "add", a, b, NULL);
        v = tp_test_add(model, TP_OP_RELU, "relu", v, 0, NULL);
        tp_test_add(model, TP_OP_GEMM, "fc2", v, 0, &fc2);
        units = analyze(model, TRUE);
        ck_assert_uint_eq(tp_units_get_n_spaces(units), 0);
        ck_assert_uint_eq(tp_units_get_total(units), 0);
        ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "conv")), -1);
        ck_assert_int_eq(tp_units_get_space_of(units, node_named(model, "fc1")), -1);
    }
}
END_TEST

/* ------------------------------------------------------------ equivalence */

/* Random keep masks, one per space: each unit kept with probability 0.6, at
 * least one kept and (with two or more units) at least one removed. Owned
 * by a GPtrArray of arrays. */
static GPtrArray *
random_masks(const TpUnits *units, guint32 seed, guint *out_removed)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    GPtrArray *keep = g_ptr_array_new_with_free_func(g_free);

    *out_removed = 0;
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        int n = tp_units_get_space(units, s)->n_units, kept = 0;
        gboolean *mask = g_new(gboolean, n);

        for (int u = 0; u < n; u++) {
            mask[u] = g_rand_double(rand) < 0.6;
            kept += mask[u];
        }
        if (kept == 0)
            mask[g_rand_int_range(rand, 0, n)] = TRUE;
        else if (kept == n && n > 1)
            mask[g_rand_int_range(rand, 0, n)] = FALSE;
        for (int u = 0; u < n; u++)
            *out_removed += !mask[u];
        g_ptr_array_add(keep, mask);
    }
    return keep;
}

/* The index of the node writing value v. */
static guint
writer_of(const TpModel *model, int v)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (tp_model_get_node(model, i)->output == v)
            return i;
    ck_abort_msg("no node writes value %d", v);
    return 0;
}

/* The prunable space whose channels value v carries, found by walking back
 * to a producer through the ops that keep channels (independently of the
 * engine's union-find: an Add is followed through its first input). */
static int
space_of_value(const TpModel *model, const TpUnits *units, int v)
{
    while (v != 0) {
        guint index = writer_of(model, v);
        const TpNode *node = tp_model_get_node(model, index);

        if (node->op == TP_OP_GEMM || (node->op == TP_OP_CONV && node->attrs.conv.groups == 1))
            return tp_units_get_space_of(units, index);
        v = node->inputs[0];
    }
    return -1;
}

/* Zeroes, in every Conv and Gemm of masked, the input slices of the channels
 * keep removes: W[:, c] of a Conv, the block of columns of channel c of a
 * Gemm (block = in_features / the space's units). */
static void
mask_consumers(TpModel *masked, const TpUnits *units, GPtrArray *keep)
{
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < tp_model_get_n_nodes(masked); i++) {
        const TpNode *node = tp_model_get_node(masked, i);
        TpTensor *w;
        g_autofree float *host = NULL;
        const gboolean *mask;
        int s, n_units, rows, cols;
        gsize inner;

        if (node->op != TP_OP_GEMM && !(node->op == TP_OP_CONV && node->attrs.conv.groups == 1))
            continue;
        s = space_of_value(masked, units, node->inputs[0]);
        if (s < 0)
            continue;
        mask = g_ptr_array_index(keep, s);
        n_units = tp_units_get_space(units, (guint)s)->n_units;
        w = tp_model_get_param(masked, i, 0);
        host = tp_tensor_dup_host(w, &error);
        rows = w->shape[0];
        cols = w->shape[1];
        /* A Conv: [out, in, kh, kw], one column block of kh·kw per channel; a
         * Gemm: [out, in], in / n_units columns per channel. */
        inner = node->op == TP_OP_CONV ? w->numel / ((gsize)rows * (gsize)cols)
                                       : (gsize)(cols / n_units);
        ck_assert_int_eq(node->op == TP_OP_CONV ? n_units : (int)((gsize)n_units * inner), cols);
        for (int r = 0; r < rows; r++)
            for (int u = 0; u < n_units; u++)
                if (!mask[u])
                    memset(host + ((gsize)r * (gsize)n_units + (gsize)u) * inner, 0,
                           inner * sizeof(float));
        ck_assert(tp_tensor_upload(w, host, &error));
    }
}

/* Largest |a - b| over n floats, and largest |b| in *out_scale. */
static double
max_diff(const float *a, const float *b, gsize n, double *out_scale)
{
    double diff = 0.0, scale = 0.0;

    for (gsize i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    *out_scale = scale;
    return diff;
}

typedef struct {
    const char *name;
    const char *arch; /* a zoo architecture, or NULL: build_depthwise() */
    double width;
    gboolean head; /* also head surgery (a model without a final Softmax) */
} EquivCase;

static const EquivCase equiv_cases[] = {
    {"lenet5", "lenet5", 1.0, TRUE},     {"vgg11", "vgg11", 0.25, TRUE},
    {"resnet20", "resnet20", 0.5, TRUE}, {"resnet18", "resnet18", 0.125, TRUE},
    {"depthwise", NULL, 0.0, FALSE},
};

static TpModel *
equiv_model(TpBackend *backend, const EquivCase *c)
{
    TpModel *model = c->arch != NULL ? zoo(backend, c->arch, c->width) : build_depthwise(backend);

    tp_test_randomize_model(model, SEED);
    return model;
}

static const char *const class_names[] = {"zero", "one",   "two",   "three", "four", "five",
                                          "six",  "seven", "eight", "nine",  NULL};
static const int head_classes[] = {5, 7, 9};

/* Saves pruned as ONNX, loads it back and checks the outputs on input are
 * the same bits, and the metadata survived. */
static void
check_onnx_round_trip(TpBackend *backend, TpModel *pruned, const float *input, const char *what)
{
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "pruned.onnx", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpModel) back = NULL;
    g_autofree float *y1 = NULL, *y2 = NULL;
    gsize n1, n2;

    ck_assert_msg(tp_onnx_save(pruned, path, &error), "%s: %s", what, error->message);
    back = tp_onnx_load(backend, path, &error);
    ck_assert_msg(back != NULL, "%s: %s", what, error ? error->message : "");
    y1 = run(pruned, input, BATCH, &n1);
    y2 = run(back, input, BATCH, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(y1, y2, n1 * sizeof(float)) == 0, "%s: ONNX round trip differs", what);
}

/* docs/method.md §3: pruned ≡ masked, for every case and backend. */
START_TEST(test_equivalence)
{
    const EquivCase *c = &equiv_cases[_i % G_N_ELEMENTS(equiv_cases)];
    const char *backend_name = tp_test_backend_name(_i / (int)G_N_ELEMENTS(equiv_cases));
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = equiv_model(backend, c);
    g_autoptr(TpModel) masked = equiv_model(backend, c);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    g_autoptr(TpUnits) after = NULL;
    g_autoptr(GPtrArray) keep = NULL;
    g_autoptr(TpModel) pruned = NULL;
    g_autoptr(GError) error = NULL;
    const TpShape *in = tp_model_get_shape(model, 0);
    gsize n_in = (gsize)BATCH * in->dim[0] * in->dim[1] * in->dim[2], n_want, n_got;
    g_autofree float *input = g_new(float, n_in);
    g_autofree float *want = NULL, *got = NULL, *original = NULL;
    double diff, scale, changed, unused;
    guint removed;
    int n_out;

    keep = random_masks(units, SEED + (guint32)_i, &removed);
    ck_assert_uint_gt(removed, tp_units_get_total(units) / 4);
    pruned = tp_prune_apply(model, units, (const gboolean *const *)keep->pdata, NULL, 0, &error);
    ck_assert_msg(pruned != NULL, "%s: %s", c->name, error ? error->message : "");

    /* The pruned model has the same spaces, each with its kept units. */
    after = analyze(pruned, TRUE);
    ck_assert_uint_eq(tp_units_get_n_spaces(after), tp_units_get_n_spaces(units));
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const gboolean *mask = g_ptr_array_index(keep, s);
        int kept = 0;

        for (int u = 0; u < tp_units_get_space(units, s)->n_units; u++)
            kept += mask[u];
        ck_assert_str_eq(tp_units_get_space(after, s)->name, tp_units_get_space(units, s)->name);
        ck_assert_int_eq(tp_units_get_space(after, s)->n_units, kept);
    }
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        ck_assert_str_eq(tp_model_get_node(pruned, i)->name, tp_model_get_node(model, i)->name);

    mask_consumers(masked, units, keep);
    tp_test_fill_uniform(input, n_in, -1.0f, 1.0f, SEED + 7);
    want = run(masked, input, BATCH, &n_want);
    got = run(pruned, input, BATCH, &n_got);
    ck_assert_uint_eq(n_got, n_want);
    diff = max_diff(got, want, n_want, &scale);
    ck_assert_msg(scale > 1e-3, "%s: the output is trivial", c->name);
    ck_assert_msg(diff <= EQUIV_RTOL * scale, "%s on %s: max |diff| %g, output scale %g", c->name,
                  backend_name, diff, scale);
    /* The removed channels did matter: the unmasked original differs. */
    original = run(model, input, BATCH, &n_want);
    changed = max_diff(got, original, n_want, &unused);
    ck_assert_msg(changed > 1e3 * EQUIV_RTOL * scale, "%s: pruning changed nothing (%g)", c->name,
                  changed);
    printf("test-prune: %s on %s: %u of %" G_GSIZE_FORMAT " units removed, max |diff| %.3g "
           "(output scale %.3g; %.3g from the unmasked original)\n",
           c->name, backend_name, removed, tp_units_get_total(units), diff, scale, changed);
    check_onnx_round_trip(backend, pruned, input, c->name);
    if (!c->head)
        return;

    /* Head surgery: the kept outputs, in the order asked, of the masked model. */
    n_out = (int)(n_want / BATCH);
    tp_model_set_class_names(model, class_names);
    g_clear_pointer(&pruned, tp_model_free);
    pruned = tp_prune_apply(model, units, (const gboolean *const *)keep->pdata, head_classes,
                            G_N_ELEMENTS(head_classes), &error);
    ck_assert_msg(pruned != NULL, "%s: %s", c->name, error ? error->message : "");
    g_clear_pointer(&got, g_free);
    got = run(pruned, input, BATCH, &n_got);
    ck_assert_uint_eq(n_got, BATCH * G_N_ELEMENTS(head_classes));
    diff = 0.0;
    for (int n = 0; n < BATCH; n++)
        for (guint k = 0; k < G_N_ELEMENTS(head_classes); k++)
            diff = fmax(diff, fabs((double)got[n * G_N_ELEMENTS(head_classes) + k] -
                                   (double)want[n * n_out + head_classes[k]]));
    ck_assert_msg(diff <= EQUIV_RTOL * scale, "%s on %s, head: max |diff| %g, output scale %g",
                  c->name, backend_name, diff, scale);
    printf("test-prune: %s on %s with classes {5, 7, 9}: max |diff| %.3g\n", c->name, backend_name,
           diff);
    ck_assert_str_eq(tp_model_get_class_names(pruned)[0], "five");
    ck_assert_str_eq(tp_model_get_class_names(pruned)[2], "nine");
    ck_assert_ptr_null(tp_model_get_class_names(pruned)[3]);
    check_onnx_round_trip(backend, pruned, input, c->name);
}
END_TEST

/* Keeping everything copies the model: the same outputs, bit for bit, and
 * the metadata (class names, normalization, class indices). A second head
 * surgery composes class indices with the first. */
START_TEST(test_copy_and_metadata)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "lenet5", 0.5);
    g_autoptr(TpUnits) units = NULL;
    g_autoptr(TpModel) copy = NULL, head = NULL, again = NULL;
    g_autoptr(TpUnits) head_units = NULL;
    g_autoptr(GError) error = NULL;
    const float mean[] = {0.5f}, std[] = {0.25f};
    const int first[] = {9, 2, 4, 6}, second[] = {3, 1};
    float input[BATCH * 28 * 28];
    g_autofree float *y1 = NULL, *y2 = NULL;
    const float *m, *sd;
    const int *indices;
    int n_indices;
    gsize n1, n2;

    tp_test_randomize_model(model, SEED);
    tp_model_set_class_names(model, class_names);
    tp_model_set_normalization(model, mean, std);
    units = analyze(model, TRUE);
    copy = tp_prune_apply(model, units, NULL, NULL, 0, &error);
    ck_assert_msg(copy != NULL, "%s", error ? error->message : "");
    tp_test_fill_uniform(input, G_N_ELEMENTS(input), 0.0f, 1.0f, 3);
    y1 = run(model, input, BATCH, &n1);
    y2 = run(copy, input, BATCH, &n2);
    ck_assert(n1 == n2 && memcmp(y1, y2, n1 * sizeof(float)) == 0);
    ck_assert_uint_eq(g_strv_length((char **)tp_model_get_class_names(copy)), 10);
    ck_assert(tp_model_get_normalization(copy, &m, &sd));
    ck_assert(m[0] == 0.5f && sd[0] == 0.25f);
    ck_assert_ptr_null(tp_model_get_class_indices(copy, &n_indices));

    head = tp_prune_apply(model, units, NULL, first, G_N_ELEMENTS(first), &error);
    ck_assert_msg(head != NULL, "%s", error ? error->message : "");
    indices = tp_model_get_class_indices(head, &n_indices);
    ck_assert_int_eq(n_indices, 4);
    ck_assert(indices[0] == 9 && indices[1] == 2 && indices[2] == 4 && indices[3] == 6);
    ck_assert(tp_model_get_normalization(head, &m, &sd));

    head_units = analyze(head, TRUE);
    again = tp_prune_apply(head, head_units, NULL, second, G_N_ELEMENTS(second), &error);
    ck_assert_msg(again != NULL, "%s", error ? error->message : "");
    indices = tp_model_get_class_indices(again, &n_indices);
    ck_assert_int_eq(n_indices, 2);
    ck_assert(indices[0] == 6 && indices[1] == 2);
    ck_assert_str_eq(tp_model_get_class_names(again)[0], "six");
    ck_assert_str_eq(tp_model_get_class_names(again)[1], "two");
}
END_TEST

/* ------------------------------------------------------------ counts */

/* LeNet-5 (width 1, 28x28, 10 classes) without 2 of conv1's 6 channels:
 *   conv1 4@5x5 + bias on 28x28; conv2 16@5x5 over 4 channels on 14x14 → 10x10;
 *   fc1 400→120, fc2 120→84, fc3 84→10; then head surgery to 3 classes. */
START_TEST(test_counts)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "lenet5", 1.0);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    g_autoptr(TpModel) pruned = NULL, head = NULL;
    g_autoptr(GError) error = NULL;
    gboolean conv1[6] = {TRUE, FALSE, TRUE, TRUE, FALSE, TRUE};
    const gboolean *keep[4] = {conv1, NULL, NULL, NULL};
    TpCount count;

    pruned = tp_prune_apply(model, units, keep, NULL, 0, &error);
    ck_assert_msg(pruned != NULL, "%s", error ? error->message : "");
    tp_model_count(pruned, &count);
    ck_assert_uint_eq(count.params, (4 * 25 + 4) + (16 * 4 * 25 + 16) + (400 * 120 + 120) +
                                        (120 * 84 + 84) + (84 * 10 + 10));
    ck_assert_uint_eq(count.running_stats, 0);
    ck_assert_uint_eq(count.macs,
                      4 * 28 * 28 * 25 + 16 * 10 * 10 * (4 * 25) + 400 * 120 + 120 * 84 + 84 * 10);

    head = tp_prune_apply(model, units, keep, head_classes, 3, &error);
    ck_assert_msg(head != NULL, "%s", error ? error->message : "");
    tp_model_count(head, &count);
    ck_assert_uint_eq(count.params, (4 * 25 + 4) + (16 * 4 * 25 + 16) + (400 * 120 + 120) +
                                        (120 * 84 + 84) + (84 * 3 + 3));
    ck_assert_uint_eq(count.macs,
                      4 * 28 * 28 * 25 + 16 * 10 * 10 * (4 * 25) + 400 * 120 + 120 * 84 + 84 * 3);
}
END_TEST

/* ------------------------------------------------------------ errors */

/* tp_prune_apply() fails with TP_PRUNE_ERROR_INVALID and a message
 * containing `needle`. */
static void
apply_fails(const TpModel *model, const TpUnits *units, const gboolean *const *keep,
            const int *classes, int n_classes, const char *needle)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpModel) pruned = tp_prune_apply(model, units, keep, classes, n_classes, &error);

    ck_assert_ptr_null(pruned);
    ck_assert_msg(g_error_matches(error, TP_PRUNE_ERROR, TP_PRUNE_ERROR_INVALID), "%s",
                  error ? error->message : "no error");
    ck_assert_msg(strstr(error->message, needle) != NULL, "'%s' lacks '%s'", error->message,
                  needle);
}

START_TEST(test_errors)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = zoo(backend, "lenet5", 0.5);
    g_autoptr(TpUnits) units = analyze(model, TRUE);
    gboolean none[8] = {FALSE};
    const gboolean *keep[4] = {NULL, none, NULL, NULL};
    const int out_of_range[] = {3, 10}, negative[] = {-1}, twice[] = {2, 7, 2};

    ck_assert_int_eq(tp_units_get_space(units, 1)->n_units, 8);
    apply_fails(model, units, keep, NULL, 0, "'conv2'");
    apply_fails(model, units, NULL, out_of_range, 2, "class 10");
    apply_fails(model, units, NULL, negative, 1, "class -1");
    apply_fails(model, units, NULL, twice, 3, "class 2 is listed twice");
    apply_fails(model, units, NULL, twice, 0, "0 classes");

    /* A head written by a grouped conv (3→6, 3 groups) cannot be cut. */
    {
        g_autoptr(TpModel) grouped = tp_model_new(backend, 3, 4, 4);
        g_autoptr(TpUnits) grouped_units = NULL;
        TpOpAttrs attrs = {.conv = {.out_channels = 6, .kernel = {1, 1}, .groups = 3}};
        int v;

        v = tp_test_add(grouped, TP_OP_CONV, "conv", 0, 0, &attrs);
        v = tp_test_add(grouped, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
        tp_test_add(grouped, TP_OP_FLATTEN, "flatten", v, 0, NULL);
        grouped_units = analyze(grouped, TRUE);
        ck_assert_uint_eq(tp_units_get_n_spaces(grouped_units), 0);
        apply_fails(grouped, grouped_units, NULL, head_classes, 1, "head surgery needs");
    }
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

    suite = suite_create("prune");
    tc = tcase_create("analysis");
    tcase_add_loop_test(tc, test_lenet5_spaces, 0, n);
    tcase_add_loop_test(tc, test_vgg11_spaces, 0, n);
    tcase_add_loop_test(tc, test_resnet20_spaces, 0, n);
    tcase_add_loop_test(tc, test_resnet18_spaces, 0, n);
    tcase_add_loop_test(tc, test_depthwise_spaces, 0, n);
    tcase_add_loop_test(tc, test_refused_spaces, 0, n);
    suite_add_tcase(suite, tc);

    tc = tcase_create("surgery");
    tcase_add_loop_test(tc, test_equivalence, 0, n * (int)G_N_ELEMENTS(equiv_cases));
    tcase_add_loop_test(tc, test_copy_and_metadata, 0, n);
    tcase_add_loop_test(tc, test_counts, 0, n);
    tcase_add_loop_test(tc, test_errors, 0, n);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
