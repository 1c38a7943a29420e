/* test-criteria.c — the criterion interface (engine/tp-criterion.c) and the
 * criterion plugins (criteria/<name>.c).
 *
 * Generic: test_conformance runs every criterion plugin the registry finds
 * on every backend (scores finite, >= 0, one per unit of every producer;
 * deterministic; the model untouched), and test_constructed runs every
 * criterion that reads data on the network constructed below, so a new
 * criterion plugin is covered with no new test code. Then each criterion
 * against its own reference: magnitude and random against values computed
 * here, taylor against a central difference of the loss (its exact value)
 * and the measured loss change of removing each unit (the ablation oracle,
 * Spearman rank correlation within each layer).
 *
 * Data: "bands", made up here: 12x12 images of 3 classes (a slightly
 * brighter left half, top half or centre square, under heavy uniform noise:
 * learnable, but not to a loss of 0 in a few epochs).
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "tp-criterion.h"
#include "tp-dataset.h"
#include "tp-loader.h"
#include "tp-prune.h"
#include "tp-test.h"
#include "tp-train.h"

#define SIDE 12
#define N_CLASSES 3
#define N_SAMPLES (N_CLASSES * 96)

/* ---------------------------------------------------------------- data */

static gpointer
bands_open(const TpParams *params, TpSplit split, GError **error)
{
    return GINT_TO_POINTER(split + 1);
}

static void
bands_close(gpointer self)
{
}

static void
bands_describe(gpointer self, TpDatasetInfo *out)
{
    static const char *const names[] = {"left", "top", "centre", NULL};

    out->n_samples = N_SAMPLES;
    out->channels = 1;
    out->height = out->width = SIDE;
    out->n_classes = N_CLASSES;
    out->class_names = names;
}

static gboolean
bands_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)(index * 7919 + GPOINTER_TO_INT(self)));
    const int label = (int)(index % N_CLASSES);

    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            const gboolean bright = label == 0   ? x < SIDE / 2
                                    : label == 1 ? y < SIDE / 2
                                                 : (x >= 3 && x < 9 && y >= 3 && y < 9);

            out[y * SIDE + x] = (float)((bright ? 0.3 : 0.2) + 0.6 * g_rand_double(rand));
        }
    *out_label = label;
    return TRUE;
}

static const TpDatasetVTable bands_vtable = {
    /* .open =     */ bands_open,
    /* .close =    */ bands_close,
    /* .describe = */ bands_describe,
    /* .read =     */ bands_read,
};

static const TpPluginInfo bands_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_DATASET,
    /* .name =        */ "bands",
    /* .version =     */ "0",
    /* .description = */ "test data",
    /* .license =     */ "MIT",
    /* .vtable =      */ &bands_vtable,
    /* .vtable_size = */ sizeof(bands_vtable),
    /* .params =      */ NULL,
};

static TpDataset *
bands(void)
{
    g_autoptr(GError) error = NULL;
    TpDataset *dataset = tp_dataset_new(&bands_info, NULL, TP_SPLIT_TRAIN, &error);

    ck_assert_msg(dataset != NULL, "%s", error ? error->message : "");
    return dataset;
}

/* A loader over dataset; classes NULL keeps all. Seeded, no prefetch. */
static TpLoader *
loader_new(TpDataset *dataset, const int *classes, int n_classes, TpLoaderPart part,
           gboolean shuffle, int batch_size)
{
    TpLoaderConfig config = {0};
    g_autoptr(GError) error = NULL;
    TpLoader *loader;

    config.classes = classes;
    config.n_classes = n_classes;
    config.part = part;
    config.validation_fraction = 0.25;
    config.seed = 1;
    config.shuffle = shuffle;
    config.batch_size = batch_size;
    loader = tp_loader_new(dataset, &config, &error);
    ck_assert_msg(loader != NULL, "%s", error ? error->message : "");
    return loader;
}

/* ---------------------------------------------------------------- models */

/* Appends an op reading in0 (and in1 for Add); returns its output value. */
static int
add2(TpModel *model, TpOpType op, int in0, int in1, const TpOpAttrs *attrs)
{
    g_autoptr(GError) error = NULL;
    const int inputs[2] = {in0, in1};
    int v = tp_model_add(model, op, NULL, inputs, attrs, &error);

    ck_assert_msg(v >= 0, "%s", error ? error->message : "");
    return v;
}

static int
add(TpModel *model, TpOpType op, int in, const TpOpAttrs *attrs)
{
    return add2(model, op, in, -1, attrs);
}

/* The index of the node added last. */
static guint
last_node(const TpModel *model)
{
    return tp_model_get_n_nodes(model) - 1;
}

static int
conv(TpModel *model, int in, int out_channels, int kernel, int pad, gboolean bias)
{
    TpOpAttrs a;

    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){out_channels, {kernel, kernel}, {1, 1}, {pad, pad, pad, pad}, {1, 1}, 1,
                           bias};
    return add(model, TP_OP_CONV, in, &a);
}

static int
gemm(TpModel *model, int in, int out_features)
{
    TpOpAttrs a;

    memset(&a, 0, sizeof(a));
    a.gemm = (TpGemmAttrs){out_features, TRUE};
    return add(model, TP_OP_GEMM, in, &a);
}

static int
max_pool(TpModel *model, int in)
{
    TpOpAttrs a;

    memset(&a, 0, sizeof(a));
    a.pool = (TpPoolAttrs){{2, 2}, {2, 2}, {0}, FALSE, FALSE};
    return add(model, TP_OP_MAX_POOL, in, &a);
}

static void
set_param(TpModel *model, guint node, int i, const float *host)
{
    g_autoptr(GError) error = NULL;
    TpTensor *t = tp_model_get_param(model, node, i);

    ck_assert_ptr_nonnull(t);
    ck_assert_msg(tp_tensor_upload(t, host, &error), "%s", error ? error->message : "");
}

static void
fill_param(TpModel *model, guint node, int i, float lo, float hi, guint32 seed)
{
    TpTensor *t = tp_model_get_param(model, node, i);
    g_autofree float *host = g_new(float, t->numel);

    tp_test_fill_uniform(host, t->numel, lo, hi, seed);
    set_param(model, node, i, host);
}

/* Seeded weights for every Conv and Gemm, BatchNorm statistics away from
 * their defaults (so that folding them matters). */
static void
randomize(TpModel *model, guint32 seed)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);

        if (node->op == TP_OP_BATCH_NORM) {
            fill_param(model, i, 0, 0.5f, 1.5f, seed + 100 * i);
            fill_param(model, i, 1, -0.2f, 0.2f, seed + 100 * i + 1);
            fill_param(model, i, 2, -0.1f, 0.1f, seed + 100 * i + 2);
            fill_param(model, i, 3, 0.5f, 1.5f, seed + 100 * i + 3);
        } else if (node->op == TP_OP_CONV || node->op == TP_OP_GEMM) {
            for (int p = 0; p < node->n_params; p++)
                fill_param(model, i, p, -0.5f, 0.5f, seed + 100 * i + p);
        }
    }
}

/* The conformance model, every kind of unit a criterion meets: a residual
 * stream written by two convs (one space, two producers), BatchNorm
 * before Relu and before Add, a conv with bias and no BatchNorm, a hidden
 * Gemm after Flatten and Dropout, the head.
 *   conv1 6 → BN → Relu ─┬─ conv2 6 → BN ─ Add → Relu → max-pool 2
 *                        └──────────────────┘
 *   → conv3 8 (3x3, bias) → Relu → Flatten → Dropout → Gemm 16 → Relu → Gemm 3 */
static TpModel *
residual_model(TpBackend *backend, guint32 seed)
{
    TpModel *model = tp_model_new(backend, 1, SIDE, SIDE);
    TpOpAttrs a;
    int x, y;

    x = conv(model, 0, 6, 3, 1, TRUE);
    x = add(model, TP_OP_BATCH_NORM, x, NULL);
    x = add(model, TP_OP_RELU, x, NULL);
    y = conv(model, x, 6, 3, 1, FALSE);
    y = add(model, TP_OP_BATCH_NORM, y, NULL);
    x = add2(model, TP_OP_ADD, x, y, NULL);
    x = add(model, TP_OP_RELU, x, NULL);
    x = max_pool(model, x);
    x = conv(model, x, 8, 3, 0, TRUE);
    x = add(model, TP_OP_RELU, x, NULL);
    x = add(model, TP_OP_FLATTEN, x, NULL);
    memset(&a, 0, sizeof(a));
    a.dropout.ratio = 0.1f;
    x = add(model, TP_OP_DROPOUT, x, &a);
    x = gemm(model, x, 16);
    x = add(model, TP_OP_RELU, x, NULL);
    gemm(model, x, N_CLASSES);
    randomize(model, seed);
    return model;
}

static TpUnits *
units_new(TpModel *model)
{
    g_autoptr(GError) error = NULL;
    TpUnits *units = tp_units_new(model, TRUE, &error);

    ck_assert_msg(units != NULL, "%s", error ? error->message : "");
    return units;
}

/* Every parameter and BatchNorm statistic, concatenated on the host. */
static GByteArray *
snapshot(TpModel *model)
{
    GByteArray *all = g_byte_array_new();

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        for (int p = 0; p < TP_NODE_MAX_PARAMS; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);

            if (t == NULL)
                continue;
            g_autofree float *host = tp_tensor_dup_host(t, NULL);
            g_byte_array_append(all, (const guint8 *)host, (guint)(t->numel * sizeof(float)));
        }
    return all;
}

/* ---------------------------------------------------------------- criteria */

/* The criterion plugins found, sorted by name (new array, borrowed plugins). */
static GPtrArray *
criterion_plugins(void)
{
    return tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_CRITERION);
}

/* Opens criterion `name` with its defaults and then the NULL-terminated
 * key, value pairs in kv (may be NULL). */
static TpCriterion *
criterion_open(const char *name, const char *const *kv)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_CRITERION, name, &error);
    g_autoptr(TpParams) params = NULL;
    TpCriterion *criterion;

    ck_assert_msg(plugin != NULL, "%s", error ? error->message : "");
    params = tp_params_new(plugin->info->params);
    for (int i = 0; kv != NULL && kv[i] != NULL; i += 2)
        ck_assert_msg(tp_params_set(params, kv[i], kv[i + 1], &error), "%s", error->message);
    criterion = tp_criterion_new(plugin->info, params, &error);
    ck_assert_msg(criterion != NULL, "%s", error ? error->message : "");
    return criterion;
}

static TpCriterionNeeds
needs_of(TpCriterion *criterion)
{
    return criterion->vt.needs(criterion->self);
}

static TpCriterionContext *
score(TpCriterion *criterion, TpModel *model, const TpUnits *units, TpLoader *loader, guint64 seed)
{
    g_autoptr(GError) error = NULL;
    TpCriterionContext *context = tp_criterion_score(criterion, model, units, loader, seed, &error);

    ck_assert_msg(context != NULL, "criterion %s: %s", criterion->info->name,
                  error ? error->message : "(no error)");
    ck_assert(error == NULL);
    return context;
}

/* Every score, spaces in order, their producers in order, units in order. */
static GArray *
flat_scores(TpCriterionContext *context, const TpUnits *units)
{
    GArray *all = g_array_new(FALSE, FALSE, sizeof(double));

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            const double *scores = tp_criterion_context_get_scores(context, space->producers[p]);

            ck_assert_ptr_nonnull(scores);
            g_array_append_vals(all, scores, (guint)space->n_units);
        }
    }
    return all;
}

static gboolean
same_scores(const GArray *a, const GArray *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len * sizeof(double)) == 0;
}

/* Criteria × backends, for loop tests; at least 1 (a build without any
 * criterion then fails instead of testing nothing). */
static int n_criteria_found;

static void
loop_case(int i, const char **out_criterion, const char **out_backend)
{
    g_autoptr(GPtrArray) plugins = criterion_plugins();
    const int n_backends = tp_test_count_backends();

    ck_assert_msg(plugins->len > 0, "no criterion plugin found on TASKPRUNE_PLUGIN_PATH");
    *out_criterion = ((const TpPlugin *)g_ptr_array_index(plugins, i / n_backends))->info->name;
    *out_backend = tp_test_backend_name(i % n_backends);
}

/* ---------------------------------------------------------------- generic */

/* Every criterion on every backend: one finite score >= 0 per unit of
 * every producer, not all zero; the same inputs give the same bytes; the
 * round's seed changes `random` only as intended; the model is untouched;
 * a data criterion without data fails cleanly. */
START_TEST(test_conformance)
{
    const char *name, *backend_name;
    loop_case(_i, &name, &backend_name);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = residual_model(backend, 7);
    g_autoptr(TpUnits) units = units_new(model);
    g_autoptr(TpDataset) data = bands();
    g_autoptr(TpLoader) loader = loader_new(data, NULL, 0, TP_LOADER_TRAIN, TRUE, 50);
    g_autoptr(TpCriterion) criterion = criterion_open(name, NULL);
    g_autoptr(GByteArray) before = snapshot(model);
    g_autoptr(GError) error = NULL;
    const TpNormalization normalization = criterion->vt.normalization(criterion->self);
    double total = 0.0;

    ck_assert_int_ge(normalization, TP_NORMALIZE_NONE);
    ck_assert_int_le(normalization, TP_NORMALIZE_L2);
    ck_assert_int_eq(tp_units_get_n_spaces(units), 3);

    g_autoptr(TpCriterionContext) first = score(criterion, model, units, loader, 11);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (tp_units_get_space_of(units, i) < 0)
            ck_assert_ptr_null(tp_criterion_context_get_scores(first, i));
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            const guint node = space->producers[p];
            const double *scores = tp_criterion_context_get_scores(first, node);

            ck_assert_msg(scores != NULL, "%s: no scores for producer %u", name, node);
            for (int u = 0; u < space->n_units; u++) {
                ck_assert_msg(isfinite(scores[u]) && scores[u] >= 0.0,
                              "%s on %s: node %u unit %d scored %g", name, backend_name, node, u,
                              scores[u]);
                total += scores[u];
            }
        }
    }
    ck_assert_msg(total > 0.0, "%s: every score is 0", name);

    /* Deterministic: a second round with the same seed gives the same bytes. */
    g_autoptr(GArray) a = flat_scores(first, units);
    g_autoptr(TpCriterionContext) second = score(criterion, model, units, loader, 11);
    g_autoptr(GArray) b = flat_scores(second, units);
    ck_assert_msg(same_scores(a, b), "%s: two rounds on the same inputs differ", name);
    if (g_str_equal(name, "random")) {
        g_autoptr(TpCriterionContext) other = score(criterion, model, units, loader, 12);
        g_autoptr(GArray) c = flat_scores(other, units);
        ck_assert_msg(!same_scores(a, c), "random: the round's seed changes nothing");
    }

    /* Without data: a weights-only criterion gives the same scores, one
     * that reads data refuses. */
    g_autoptr(TpCriterionContext) dataless =
        tp_criterion_score(criterion, model, units, NULL, 11, &error);
    if (needs_of(criterion) == TP_CRITERION_NEEDS_WEIGHTS) {
        ck_assert_msg(dataless != NULL, "%s: %s", name, error ? error->message : "");
        g_autoptr(GArray) c = flat_scores(dataless, units);
        ck_assert(same_scores(a, c));
    } else {
        ck_assert_ptr_null(dataless);
        ck_assert_ptr_nonnull(error);
        ck_assert_ptr_nonnull(strstr(error->message, name));
    }

    g_autoptr(GByteArray) after = snapshot(model);
    ck_assert_msg(before->len == after->len && memcmp(before->data, after->data, before->len) == 0,
                  "%s changed the model", name);
}
END_TEST

/* ---------------------------------------------------------------- the interface */

static int probe_mode;

enum {
    PROBE_NEGATIVE, /* writes -1 to unit 1 of the first producer */
    PROBE_NAN,      /* writes NaN there */
    PROBE_NEXT,     /* declares no data, asks for a batch anyway */
};

static gpointer
probe_open(const TpParams *params, GError **error)
{
    return GINT_TO_POINTER(1);
}

static void
probe_close(gpointer self)
{
}

static TpCriterionNeeds
probe_needs(gpointer self)
{
    return TP_CRITERION_NEEDS_WEIGHTS;
}

static TpNormalization
probe_normalization(gpointer self)
{
    return TP_NORMALIZE_NONE;
}

static gboolean
probe_score(gpointer self, TpCriterionContext *context, GError **error)
{
    const TpUnitSpace *space = tp_units_get_space(tp_criterion_context_get_units(context), 0);
    double *scores = tp_criterion_context_get_scores(context, space->producers[0]);

    if (probe_mode == PROBE_NEXT)
        return tp_criterion_context_next(context, error);
    scores[1] = probe_mode == PROBE_NAN ? NAN : -1.0;
    return TRUE;
}

static TpCriterionVTable probe_vtable = {
    /* .open =          */ probe_open,
    /* .close =         */ probe_close,
    /* .needs =         */ probe_needs,
    /* .normalization = */ probe_normalization,
    /* .lrp_config =    */ NULL,
    /* .score =         */ probe_score,
    /* .aggregate =     */ NULL,
};

static TpPluginInfo probe_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_CRITERION,
    /* .name =        */ "probe",
    /* .version =     */ "0",
    /* .description = */ "test criterion",
    /* .license =     */ "MIT",
    /* .vtable =      */ &probe_vtable,
    /* .vtable_size = */ sizeof(probe_vtable),
    /* .params =      */ NULL,
};

/* The vtable check: lrp_config and aggregate may be missing; the first
 * missing member is named; a table that ends before score is an ABI error,
 * one that ends before the appended aggregate (an older plugin) loads. */
START_TEST(test_vtable_check)
{
    g_autoptr(GError) error = NULL;
    const TpCriterionVTable good = probe_vtable;

    ck_assert_msg(tp_criterion_vtable_check(&probe_info, &error), "%s",
                  error ? error->message : "");

    probe_vtable.normalization = NULL;
    probe_vtable.score = NULL;
    ck_assert(!tp_criterion_vtable_check(&probe_info, &error));
    ck_assert(g_error_matches(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID));
    ck_assert_msg(strstr(error->message, "'probe'") && strstr(error->message, "normalization"),
                  "%s", error->message);
    g_clear_error(&error);

    probe_vtable = good;
    probe_info.vtable_size = offsetof(TpCriterionVTable, aggregate);
    ck_assert_msg(tp_criterion_vtable_check(&probe_info, &error), "%s",
                  error ? error->message : "");
    probe_info.vtable_size = offsetof(TpCriterionVTable, score);
    ck_assert(!tp_criterion_vtable_check(&probe_info, &error));
    ck_assert(g_error_matches(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI));
    probe_info.vtable_size = sizeof(probe_vtable);
}
END_TEST

/* A negative or NaN score fails the round, naming criterion, node and unit;
 * a weights-only criterion cannot pull batches. */
START_TEST(test_bad_scores)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(0));
    g_autoptr(TpModel) model = residual_model(backend, 7);
    g_autoptr(TpUnits) units = units_new(model);
    g_autoptr(TpCriterion) probe = NULL;
    g_autoptr(GError) error = NULL;
    const guint first = tp_units_get_space(units, 0)->producers[0];
    g_autofree char *node = g_strdup_printf("'%s'", tp_model_get_node(model, first)->name);

    probe = tp_criterion_new(&probe_info, NULL, &error);
    ck_assert_msg(probe != NULL, "%s", error ? error->message : "");
    for (probe_mode = PROBE_NEGATIVE; probe_mode <= PROBE_NEXT; probe_mode++) {
        g_autoptr(TpCriterionContext) context =
            tp_criterion_score(probe, model, units, NULL, 0, &error);

        ck_assert_ptr_null(context);
        ck_assert_ptr_nonnull(error);
        ck_assert(g_error_matches(error, TP_CRITERION_ERROR, TP_CRITERION_ERROR_FAILED));
        ck_assert_msg(strstr(error->message, "'probe'"), "%s", error->message);
        if (probe_mode == PROBE_NEXT)
            ck_assert_msg(strstr(error->message, "needs no data"), "%s", error->message);
        else
            ck_assert_msg(strstr(error->message, node) && strstr(error->message, "unit 1") &&
                              strstr(error->message, probe_mode == PROBE_NAN ? "nan" : "-1"),
                          "%s", error->message);
        g_clear_error(&error);
    }
}
END_TEST

/* ---------------------------------------------------------------- magnitude, random */

/* A tiny model with hand-set weights:
 *   conv 3@2x2 (bias) → BN (eps 1e-3) → Relu → Flatten → Gemm 2 → Relu → Gemm 2
 * on a 1x3x3 input. */
static TpModel *
hand_model(TpBackend *backend, guint *out_conv, guint *out_hidden)
{
    static const float w[3 * 4] = {1.0f,  -2.0f, 0.5f,  0.0f,  /* filter 0 */
                                   -1.0f, -1.0f, -1.0f, -1.0f, /* filter 1 */
                                   0.25f, 0.0f,  0.0f,  -3.0f};
    static const float b[3] = {5.0f, -5.0f, 50.0f};
    static const float gamma[3] = {2.0f, -0.5f, 1.0f}, beta[3] = {0.1f, 0.2f, 0.3f};
    static const float mean[3] = {0.5f, -1.0f, 0.0f}, var[3] = {3.0f, 0.25f, 0.0f};
    float hidden[2 * 12] = {0}, hidden_bias[2] = {7.0f, -7.0f};
    TpModel *model = tp_model_new(backend, 1, 3, 3);
    TpOpAttrs a;
    int x;

    x = conv(model, 0, 3, 2, 0, TRUE);
    *out_conv = last_node(model);
    set_param(model, *out_conv, 0, w);
    set_param(model, *out_conv, 1, b);
    memset(&a, 0, sizeof(a));
    a.batch_norm.epsilon = 1e-3f;
    x = add(model, TP_OP_BATCH_NORM, x, &a);
    set_param(model, last_node(model), 0, gamma);
    set_param(model, last_node(model), 1, beta);
    set_param(model, last_node(model), 2, mean);
    set_param(model, last_node(model), 3, var);
    x = add(model, TP_OP_RELU, x, NULL);
    x = add(model, TP_OP_FLATTEN, x, NULL);
    x = gemm(model, x, 2);
    *out_hidden = last_node(model);
    for (int i = 0; i < 12; i++)
        hidden[i] = 0.5f; /* neuron 0: all 0.5 */
    hidden[12] = hidden[13] = hidden[14] = -2.0f;
    hidden[15] = 1.0f; /* neuron 1: -2, -2, -2, 1, 0, ... */
    set_param(model, *out_hidden, 0, hidden);
    set_param(model, *out_hidden, 1, hidden_bias);
    x = add(model, TP_OP_RELU, x, NULL);
    gemm(model, x, 2);
    fill_param(model, last_node(model), 0, -1.0f, 1.0f, 3);
    return model;
}

static void
assert_scores(TpCriterionContext *context, guint node, const double *want, int n, const char *what)
{
    const double *got = tp_criterion_context_get_scores(context, node);

    ck_assert_ptr_nonnull(got);
    for (int u = 0; u < n; u++)
        ck_assert_msg(fabs(got[u] - want[u]) <= 1e-12 * fabs(want[u]),
                      "%s, unit %d: got %.17g, want %.17g", what, u, got[u], want[u]);
}

/* magnitude = the norm of each unit's incoming weights, times |γ| / sqrt(var +
 * eps) of the BatchNorm after it; biases do not count. */
START_TEST(test_magnitude_by_hand)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    guint conv_node, hidden_node;
    g_autoptr(TpModel) model = hand_model(backend, &conv_node, &hidden_node);
    g_autoptr(TpUnits) units = units_new(model);
    const double eps = (double)1e-3f;
    /* Filter norms: l1 3.5, 4, 3.25; l2 sqrt(5.25), 2, sqrt(9.0625). */
    const double fold[3] = {2.0 / sqrt(3.0 + eps), 0.5 / sqrt(0.25 + eps), 1.0 / sqrt(eps)};
    const double conv_l1[3] = {3.5 * fold[0], 4.0 * fold[1], 3.25 * fold[2]};
    const double conv_l2[3] = {sqrt(5.25) * fold[0], 2.0 * fold[1], sqrt(9.0625) * fold[2]};
    const double hidden_l1[2] = {6.0, 7.0}, hidden_l2[2] = {sqrt(3.0), sqrt(13.0)};
    static const char *const l2[] = {"norm", "l2", NULL};

    ck_assert_int_eq(tp_units_get_n_spaces(units), 2);

    g_autoptr(TpCriterion) mag = criterion_open("magnitude", NULL);
    ck_assert_int_eq(needs_of(mag), TP_CRITERION_NEEDS_WEIGHTS);
    ck_assert_int_eq(mag->vt.normalization(mag->self), TP_NORMALIZE_L1);
    g_autoptr(TpCriterionContext) c1 = score(mag, model, units, NULL, 0);
    assert_scores(c1, conv_node, conv_l1, 3, "magnitude l1, conv");
    assert_scores(c1, hidden_node, hidden_l1, 2, "magnitude l1, gemm");

    g_autoptr(TpCriterion) mag2 = criterion_open("magnitude", l2);
    g_autoptr(TpCriterionContext) c2 = score(mag2, model, units, NULL, 0);
    assert_scores(c2, conv_node, conv_l2, 3, "magnitude l2, conv");
    assert_scores(c2, hidden_node, hidden_l2, 2, "magnitude l2, gemm");
}
END_TEST

/* random = g_rand_double() draws from the documented seed array, spaces and
 * units in order, a coupled space's draw split evenly over its producers. */
START_TEST(test_random_by_hand)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = residual_model(backend, 7);
    g_autoptr(TpUnits) units = units_new(model);
    static const char *const kv[] = {"seed", "5", NULL};
    const guint64 round = G_GUINT64_CONSTANT(0x300000002);
    const guint32 seed[4] = {5, 0, 2, 3};
    g_autoptr(GRand) draws = g_rand_new_with_seed_array(seed, 4);
    g_autoptr(TpCriterion) rnd = criterion_open("random", kv);
    g_autoptr(TpCriterion) other = criterion_open("random", NULL);
    gboolean coupled = FALSE;

    ck_assert_int_eq(needs_of(rnd), TP_CRITERION_NEEDS_WEIGHTS);
    ck_assert_int_eq(rnd->vt.normalization(rnd->self), TP_NORMALIZE_NONE);
    g_autoptr(TpCriterionContext) context = score(rnd, model, units, NULL, round);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        coupled = coupled || space->n_producers == 2;
        for (int u = 0; u < space->n_units; u++) {
            const double want = g_rand_double(draws) / space->n_producers;

            for (guint p = 0; p < space->n_producers; p++)
                ck_assert_double_eq(
                    tp_criterion_context_get_scores(context, space->producers[p])[u], want);
        }
    }
    ck_assert_msg(coupled, "the residual model has no space with two producers");

    /* Another key seed, other draws. */
    g_autoptr(TpCriterionContext) c2 = score(other, model, units, NULL, round);
    g_autoptr(GArray) a = flat_scores(context, units);
    g_autoptr(GArray) b = flat_scores(c2, units);
    ck_assert(!same_scores(a, b));
}
END_TEST

/* ---------------------------------------------------------------- taylor */

/* Spearman's rank correlation of x and y (ties get their mean rank). */
static void
ranks(const double *x, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;

        for (int j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        out[i] = less + (equal - 1) / 2.0;
    }
}

static double
spearman(const double *x, const double *y, guint n)
{
    g_autofree double *rx = g_new(double, n);
    g_autofree double *ry = g_new(double, n);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;

    ranks(x, (int)n, rx);
    ranks(y, (int)n, ry);
    for (guint i = 0; i < n; i++) {
        mx += rx[i] / n;
        my += ry[i] / n;
    }
    for (guint i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

/* conv 12 → BN → Relu → max-pool → conv 16 → BN → Relu → max-pool →
 * Flatten → Gemm 24 → Relu → Gemm 3. */
static TpModel *
oracle_model(TpBackend *backend, guint32 seed)
{
    TpModel *model = tp_model_new(backend, 1, SIDE, SIDE);
    int x;

    x = conv(model, 0, 12, 3, 1, TRUE);
    x = add(model, TP_OP_BATCH_NORM, x, NULL);
    x = add(model, TP_OP_RELU, x, NULL);
    x = max_pool(model, x);
    x = conv(model, x, 16, 3, 1, TRUE);
    x = add(model, TP_OP_BATCH_NORM, x, NULL);
    x = add(model, TP_OP_RELU, x, NULL);
    x = max_pool(model, x);
    x = add(model, TP_OP_FLATTEN, x, NULL);
    x = gemm(model, x, 24);
    x = add(model, TP_OP_RELU, x, NULL);
    gemm(model, x, N_CLASSES);
    randomize(model, seed);
    /* BatchNorm as PyTorch starts it: scale 1, shift 0, statistics 0 and 1. */
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (tp_model_get_node(model, i)->op == TP_OP_BATCH_NORM) {
            static const float start[4] = {1.0f, 0.0f, 0.0f, 1.0f};

            for (int p = 0; p < 4; p++)
                fill_param(model, i, p, start[p], start[p], 0);
        }
    return model;
}

static void
train(TpModel *model, TpLoader *loader, int epochs)
{
    TpTrainConfig c = {0};
    g_autoptr(GError) error = NULL;
    gboolean stopped;

    c.epochs = epochs;
    c.batch_size = 16;
    c.lr = 0.05;
    c.momentum = 0.9;
    c.schedule = TP_SCHEDULE_CONSTANT;
    c.step_epochs = 30;
    c.gamma = 0.1;
    c.seed = 3;
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &c, &error);
    ck_assert_msg(trainer != NULL, "%s", error ? error->message : "");
    while ((int)tp_trainer_get_epoch(trainer) < epochs) {
        ck_assert_msg(tp_trainer_run_epoch(trainer, loader, NULL, NULL, &stopped, NULL, &error),
                      "%s", error ? error->message : "");
        ck_assert(!stopped);
    }
}

/* Each sample's cross-entropy over loader's samples (eval mode), appended
 * to out in loader order. */
static void
sample_losses(TpModel *model, TpLoader *loader, GArray *out)
{
    g_autoptr(GError) error = NULL;
    const float *images;
    const gint32 *labels;
    int batch;

    g_array_set_size(out, 0);
    tp_loader_start_epoch(loader, 0);
    while (tp_loader_next(loader, &images, &labels, &batch, &error)) {
        ck_assert_msg(tp_model_forward(model, images, batch, TP_MODE_EVAL, &error), "%s",
                      error->message);
        TpTensor *logits = tp_model_get_value(model, tp_model_get_logits(model));
        const int k = logits->shape[1];
        g_autofree float *host = tp_tensor_dup_host(logits, NULL);

        for (int n = 0; n < batch; n++) {
            const float *z = host + (gsize)n * k;
            double top = z[0], sum = 0.0, loss;

            for (int c = 1; c < k; c++)
                top = MAX(top, z[c]);
            for (int c = 0; c < k; c++)
                sum += exp(z[c] - top);
            loss = top + log(sum) - z[labels[n]];
            g_array_append_val(out, loss);
        }
    }
    ck_assert_msg(error == NULL, "%s", error->message);
}

/* Scales unit u of producer `node` after its nonlinearity by factor (its
 * BatchNorm's scale and shift, or its weight row and bias: Relu is
 * positively homogeneous, so factor 0 removes the unit's output), starting
 * from saved (the two params as they were; factor 1 restores them). */
static void
scale_unit(TpModel *model, const TpUnits *units, guint node, int u, float *const *saved,
           float factor)
{
    const int bn = tp_units_get_batch_norm(units, node);
    const guint target = bn >= 0 ? (guint)bn : node;

    for (int p = 0; p < 2; p++) {
        TpTensor *t = tp_model_get_param(model, target, p);
        const gsize row = t->numel / (gsize)t->shape[0];
        g_autofree float *host = g_memdup2(saved[p], t->numel * sizeof(float));

        for (gsize i = (gsize)u * row; i < (gsize)(u + 1) * row; i++)
            host[i] *= factor;
        set_param(model, target, p, host);
    }
}

/* mean over n of |a[n] - b[n]| / scale */
static double
mean_abs_difference(const GArray *a, const GArray *b, double scale)
{
    double sum = 0.0;

    ck_assert_int_eq(a->len, b->len);
    for (guint n = 0; n < a->len; n++)
        sum += fabs(g_array_index(a, double, n) - g_array_index(b, double, n));
    return sum / a->len / scale;
}

/* taylor on a briefly trained net, scoring its 216 training samples:
 *  - it is the derivative it claims: scaling a unit's output by 1 ± δ moves
 *    sample n's loss by ±δ·Σ_m A·G_n, so the central difference
 *    mean_n |C_n(1 + δ) − C_n(1 − δ)| / (2δ·M) must equal the score (this
 *    pins the per-sample gradient, i.e. the batch-size factor, and the 1/M);
 *  - it ranks each layer's units as removing them does (the ablation
 *    oracle, mean_n |C_n(unit removed) − C_n|): Spearman >= 0.6 within every
 *    layer (docs/method.md E5). The data are noisy enough that three epochs leave
 *    the loss well above 0: on a saturated net (mean loss < 0.05) first-order
 *    estimates degrade, and we measured conv-layer correlations down to 0.4;
 *  - `accumulate = batch` (|batch mean|) never exceeds `sample` (mean |.|). */
START_TEST(test_taylor_oracle)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = oracle_model(backend, 21);
    g_autoptr(TpDataset) data = bands();
    g_autoptr(TpLoader) train_loader = loader_new(data, NULL, 0, TP_LOADER_TRAIN, TRUE, 16);
    g_autoptr(TpLoader) scoring = loader_new(data, NULL, 0, TP_LOADER_TRAIN, FALSE, 64);
    static const char *const per_batch[] = {"accumulate", "batch", NULL};
    const float delta = 0.01f;
    g_autoptr(GArray) base = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) up = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) down = g_array_new(FALSE, FALSE, sizeof(double));

    train(model, train_loader, 3);
    g_autoptr(TpUnits) units = units_new(model);
    g_autoptr(TpCriterion) taylor = criterion_open("taylor", NULL);
    g_autoptr(TpCriterion) taylor_batch = criterion_open("taylor", per_batch);
    ck_assert_int_eq(needs_of(taylor), TP_CRITERION_NEEDS_DATA | TP_CRITERION_NEEDS_GRADIENT);
    ck_assert_int_eq(taylor->vt.normalization(taylor->self), TP_NORMALIZE_L2);
    g_autoptr(TpCriterionContext) context = score(taylor, model, units, scoring, 0);
    g_autoptr(TpCriterionContext) context_batch = score(taylor_batch, model, units, scoring, 0);

    sample_losses(model, scoring, base);
    ck_assert_int_eq(tp_units_get_n_spaces(units), 3);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        const guint node = space->producers[0];
        const int bn = tp_units_get_batch_norm(units, node);
        const guint target = bn >= 0 ? (guint)bn : node;
        const TpShape *shape = tp_model_get_shape(model, tp_units_get_unit_value(units, node));
        const double m = shape->ndim == 3 ? shape->dim[1] * shape->dim[2] : 1.0;
        const double *theta = tp_criterion_context_get_scores(context, node);
        const double *theta_batch = tp_criterion_context_get_scores(context_batch, node);
        g_autofree double *derivative = g_new0(double, space->n_units);
        g_autofree double *oracle = g_new0(double, space->n_units);
        g_autofree float *saved0 = tp_tensor_dup_host(tp_model_get_param(model, target, 0), NULL);
        g_autofree float *saved1 = tp_tensor_dup_host(tp_model_get_param(model, target, 1), NULL);
        float *const saved[2] = {saved0, saved1};
        double top = 0.0, worst = 0.0, rho;

        for (int u = 0; u < space->n_units; u++) {
            ck_assert_msg(theta_batch[u] <= theta[u] * (1.0 + 1e-12),
                          "%s unit %d: batch %g > sample %g", space->name, u, theta_batch[u],
                          theta[u]);
            scale_unit(model, units, node, u, saved, 1.0f + delta);
            sample_losses(model, scoring, up);
            scale_unit(model, units, node, u, saved, 1.0f - delta);
            sample_losses(model, scoring, down);
            derivative[u] = mean_abs_difference(up, down, 2.0 * delta * m);
            scale_unit(model, units, node, u, saved, 0.0f);
            sample_losses(model, scoring, up);
            oracle[u] = mean_abs_difference(up, base, 1.0);
            scale_unit(model, units, node, u, saved, 1.0f);
            top = MAX(top, theta[u]);
        }
        for (int u = 0; u < space->n_units; u++)
            worst = MAX(worst, fabs(theta[u] - derivative[u]) / top);
        rho = spearman(theta, oracle, (guint)space->n_units);
        printf("taylor, layer %s (%d units, %u samples): vs the central difference, largest "
               "error %.2g of the layer's top score; vs ablation, Spearman %.3f\n",
               space->name, space->n_units, base->len, worst, rho);
        fflush(stdout);
        ck_assert_msg(worst < 0.03, "layer %s: taylor is off the measured derivative by %.3g",
                      space->name, worst);
        ck_assert_msg(rho >= 0.6, "layer %s: Spearman %.3f < 0.6", space->name, rho);
    }
}
END_TEST

/* ---------------------------------------------------------------- constructed network */

/* A constructed network, on target classes {2, 0} of 3:
 *   conv1 4@3x3 → Relu → conv2 6@3x3 → Relu → GlobalAveragePool → Flatten → Gemm
 * conv2's filters 0-3 are always active (non-negative weights on non-negative
 * inputs, bias 0.1) and feed every class; filter 4 is as active but feeds only
 * logit 1, the class outside the task; filter 5 is dead (zero weights and
 * bias, so 0 after Relu). n_out 3 is the base model; n_out 2 the same after
 * head surgery (rows 2 and 0, in that order). */
static TpModel *
constructed_model(TpBackend *backend, int n_out, guint *out_conv2)
{
    static const int rows[2] = {2, 0};
    TpModel *model = tp_model_new(backend, 1, SIDE, SIDE);
    float w2[6 * 4 * 9], b2[6], head[3 * 6], head_out[3 * 6];
    int x;

    x = conv(model, 0, 4, 3, 1, TRUE);
    fill_param(model, last_node(model), 0, -0.5f, 0.5f, 41);
    fill_param(model, last_node(model), 1, 0.2f, 0.2f, 0);
    x = add(model, TP_OP_RELU, x, NULL);
    x = conv(model, x, 6, 3, 1, TRUE);
    *out_conv2 = last_node(model);
    tp_test_fill_uniform(w2, G_N_ELEMENTS(w2), 0.0f, 0.3f, 42);
    for (int f = 0; f < 6; f++)
        b2[f] = f == 5 ? 0.0f : 0.1f;
    memset(w2 + 5 * 36, 0, 36 * sizeof(float)); /* filter 5: dead */
    set_param(model, *out_conv2, 0, w2);
    set_param(model, *out_conv2, 1, b2);
    x = add(model, TP_OP_RELU, x, NULL);
    x = add(model, TP_OP_GLOBAL_AVERAGE_POOL, x, NULL);
    x = add(model, TP_OP_FLATTEN, x, NULL);
    gemm(model, x, n_out);
    tp_test_fill_uniform(head, G_N_ELEMENTS(head), -1.0f, 1.0f, 43);
    for (int c = 0; c < 3; c++)
        head[c * 6 + 4] = c == 1 ? 1.5f : 0.0f; /* filter 4 reaches logit 1 only */
    for (int r = 0; r < n_out; r++)
        memcpy(head_out + r * 6, head + (n_out == 3 ? r : rows[r]) * 6, 6 * sizeof(float));
    set_param(model, last_node(model), 0, head_out);
    return model;
}

/* Every criterion that reads data, scoring the specialized network on
 * target-class data only, ranks the non-target and the dead filter lowest
 * in their layer; taylor scores the dead one (and the cut-off one) 0. */
START_TEST(test_constructed)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    static const int target[2] = {2, 0};
    guint conv2;
    g_autoptr(TpModel) model = constructed_model(backend, 2, &conv2);
    g_autoptr(TpUnits) units = units_new(model);
    g_autoptr(TpDataset) data = bands();
    g_autoptr(TpLoader) loader = loader_new(data, target, 2, TP_LOADER_ALL, FALSE, 32);
    g_autoptr(GPtrArray) plugins = criterion_plugins();
    int tested = 0;

    ck_assert_int_ge(tp_units_get_space_of(units, conv2), 0);
    for (guint i = 0; i < plugins->len; i++) {
        const char *name = ((const TpPlugin *)g_ptr_array_index(plugins, i))->info->name;
        g_autoptr(TpCriterion) criterion = criterion_open(name, NULL);

        if (!(needs_of(criterion) & (TP_CRITERION_NEEDS_DATA | TP_CRITERION_NEEDS_GRADIENT |
                                     TP_CRITERION_NEEDS_RELEVANCE)))
            continue;
        g_autoptr(TpCriterionContext) context = score(criterion, model, units, loader, 0);
        const double *s = tp_criterion_context_get_scores(context, conv2);
        const double low = MAX(s[4], s[5]);

        printf("%s on the constructed network: conv2 scores %g %g %g %g | non-target %g, "
               "dead %g\n",
               name, s[0], s[1], s[2], s[3], s[4], s[5]);
        for (int f = 0; f < 4; f++)
            ck_assert_msg(s[f] > low, "%s: target filter %d scores %g, not above %g", name, f, s[f],
                          low);
        if (g_str_equal(name, "taylor"))
            ck_assert_msg(s[4] == 0.0 && s[5] == 0.0, "taylor: %g and %g, want 0", s[4], s[5]);
        tested++;
    }
    ck_assert_msg(tested > 0, "no criterion that reads data was found");
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *
criteria_suite(void)
{
    Suite *suite = suite_create("criteria");
    const int n_backends = tp_test_count_backends();
    TCase *tc;

    tc = tcase_create("interface");
    tcase_add_test(tc, test_vtable_check);
    tcase_add_test(tc, test_bad_scores);
    suite_add_tcase(suite, tc);

    tc = tcase_create("conformance");
    tcase_add_loop_test(tc, test_conformance, 0, n_criteria_found * n_backends);
    tcase_add_loop_test(tc, test_constructed, 0, n_backends);
    suite_add_tcase(suite, tc);

    tc = tcase_create("references");
    tcase_add_loop_test(tc, test_magnitude_by_hand, 0, n_backends);
    tcase_add_loop_test(tc, test_random_by_hand, 0, n_backends);
    tcase_add_loop_test(tc, test_taylor_oracle, 0, n_backends);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    g_autoptr(GPtrArray) plugins = NULL;

    tp_test_init();
    plugins = criterion_plugins();
    n_criteria_found = MAX((int)plugins->len, 1);
    return tp_test_run(criteria_suite());
}
