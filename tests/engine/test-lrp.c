/* test-lrp.c — engine/tp-lrp.c against the properties of docs/method.md §2
 * (lrp, "Properties to test"), on every backend found in the build:
 *
 *  - per layer, rules that ignore biases conserve relevance, Σ R_in = Σ R_out
 *    to 1e-5 relative (α1β0 / z⁺, α2β1, z^B, pools, Add, pass-through);
 *  - the Gemm ε rule with bias: Σ R_in = Σ R_out − Σ_j (b_j + ε sign z_j) / stab(z_j) · R_j;
 *  - LRP-0 (rule set EPSILON, ε = 0) on a bias-free ReLU net is gradient ×
 *    input at every value, and Σ R at the input is the logit;
 *  - BatchNorm folding changes eval outputs by < 1e-5; a BatchNorm not after
 *    a Conv is refused with its name;
 *  - residual Adds (a hand-built block and resnet20) conserve relevance;
 *  - a batch gives each sample the relevance it gets alone;
 *  - the `lrp` criterion plugin (criteria/lrp.c) maps its keys to the LRP
 *    settings and scores Σ_n Σ_m |R| (or |Σ R|) at each unit's value.
 *
 * Models are tiny and random (seeded); sums are taken per sample in double.
 * Every test prints the worst error it measured.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-criterion.h"
#include "tp-loader.h"
#include "tp-lrp.h"
#include "tp-prune.h"
#include "tp-test.h"

/* ------------------------------------------------------------ model helpers */

/* Sets parameter p of node `index` to uniform [lo, hi) values. */
static void
randomize_param(TpModel *model, guint index, int p, float lo, float hi, guint32 seed)
{
    g_autoptr(GError) error = NULL;
    TpTensor *param = tp_model_get_param(model, index, p);
    g_autofree float *host = g_new(float, param->numel);

    tp_test_fill_uniform(host, param->numel, lo, hi, seed);
    ck_assert_msg(tp_tensor_upload(param, host, &error), "upload: %s",
                  error ? error->message : "?");
}

/* A Conv with He-uniform weights (and a small random bias). */
static int
add_conv(TpModel *model, const char *name, int in, int out_c, int k, int stride, int pad,
         gboolean bias, guint32 seed)
{
    TpOpAttrs attrs = {.conv = {.out_channels = out_c,
                                .kernel = {k, k},
                                .stride = {stride, stride},
                                .pads = {pad, pad, pad, pad},
                                .bias = bias}};
    int v = tp_test_add(model, TP_OP_CONV, name, in, 0, &attrs);
    const TpShape *shape = tp_model_get_shape(model, in);
    float bound = sqrtf(6.0f / (float)(shape->dim[0] * k * k));

    randomize_param(model, (guint)v - 1, 0, -bound, bound, seed);
    if (bias)
        randomize_param(model, (guint)v - 1, 1, -0.1f, 0.1f, seed + 1);
    return v;
}

static int
add_gemm(TpModel *model, const char *name, int in, int out, gboolean bias, guint32 seed)
{
    TpOpAttrs attrs = {.gemm = {.out_features = out, .bias = bias}};
    int v = tp_test_add(model, TP_OP_GEMM, name, in, 0, &attrs);
    float bound = sqrtf(6.0f / (float)tp_model_get_shape(model, in)->dim[0]);

    randomize_param(model, (guint)v - 1, 0, -bound, bound, seed);
    if (bias)
        randomize_param(model, (guint)v - 1, 1, -0.5f, 0.5f, seed + 1);
    return v;
}

/* A BatchNormalization with random scale, bias and running statistics. */
static int
add_batch_norm(TpModel *model, const char *name, int in, guint32 seed)
{
    int v = tp_test_add(model, TP_OP_BATCH_NORM, name, in, 0, NULL);

    randomize_param(model, (guint)v - 1, 0, 0.5f, 1.5f, seed);
    randomize_param(model, (guint)v - 1, 1, -0.3f, 0.3f, seed + 1);
    randomize_param(model, (guint)v - 1, 2, -0.3f, 0.3f, seed + 2);
    randomize_param(model, (guint)v - 1, 3, 0.5f, 2.0f, seed + 3);
    return v;
}

static int
add_pool(TpModel *model, TpOpType op, const char *name, int in, int k, int stride)
{
    TpOpAttrs attrs = {.pool = {.kernel = {k, k}, .stride = {stride, stride}}};

    return tp_test_add(model, op, name, in, 0, &attrs);
}

/* The chain CNN of the conservation tests, input [2, 16, 16]:
 * conv 3x3 → relu → maxpool 2/2 → conv 3x3 stride 2 (8x8 → 3x3: its last
 * input row and column are read by no window, so convᵀ must still write
 * them) → relu → avgpool 2/1 → flatten → gemm 32 → relu → gemm 3. Every
 * value is read by one op. */
static TpModel *
build_chain(TpBackend *backend, gboolean bias, gboolean normalized)
{
    TpModel *model = tp_model_new(backend, 2, 16, 16);
    int v;

    v = add_conv(model, "conv1", 0, 4, 3, 1, 1, bias, 10);
    v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
    v = add_pool(model, TP_OP_MAX_POOL, "pool1", v, 2, 2);
    v = add_conv(model, "conv2", v, 6, 3, 2, 0, bias, 20);
    v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
    v = add_pool(model, TP_OP_AVERAGE_POOL, "pool2", v, 2, 1);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    v = add_gemm(model, "fc1", v, 32, bias, 30);
    v = tp_test_add(model, TP_OP_RELU, "relu3", v, 0, NULL);
    add_gemm(model, "fc2", v, 3, bias, 40);
    if (normalized) {
        static const float mean[2] = {0.5f, 0.4f}, std[2] = {0.25f, 0.3f};

        tp_model_set_normalization(model, mean, std);
    }
    return model;
}

/* batch images of the model's input: pixels uniform in [0, 1], normalized
 * when the model says so (so they lie inside the z^B bounds). Owned. */
static float *
make_input(TpModel *model, int batch, guint32 seed)
{
    const TpShape *shape = tp_model_get_shape(model, 0);
    const gsize plane = (gsize)shape->dim[1] * shape->dim[2];
    const gsize per_sample = (gsize)shape->dim[0] * plane;
    float *x = g_new(float, per_sample *batch);
    const float *mean, *std;

    tp_test_fill_uniform(x, per_sample * batch, 0.0f, 1.0f, seed);
    if (tp_model_get_normalization(model, &mean, &std))
        for (gsize i = 0; i < per_sample * batch; i++) {
            int c = (int)(i % per_sample / plane);

            x[i] = (x[i] - mean[c]) / std[c];
        }
    return x;
}

static TpLrp *
lrp_new_ok(TpModel *model, TpLrpRules rules, TpLrpStart start, double epsilon)
{
    g_autoptr(GError) error = NULL;
    TpLrpConfig config = {.rules = rules, .start = start, .epsilon = epsilon};
    TpLrp *lrp = tp_lrp_new(model, &config, &error);

    ck_assert_msg(lrp != NULL, "tp_lrp_new: %s", error ? error->message : "?");
    return lrp;
}

static void
lrp_run_ok(TpLrp *lrp, const float *x, int batch, const gint32 *labels)
{
    g_autoptr(GError) error = NULL;

    ck_assert_msg(tp_lrp_run(lrp, x, batch, labels, &error), "tp_lrp_run: %s",
                  error ? error->message : "?");
}

/* Per-sample sums of a tensor, in double (owned, batch entries). */
static double *
sample_sums(const TpTensor *t, int batch)
{
    g_autoptr(GError) error = NULL;
    g_autofree float *host = tp_tensor_dup_host(t, &error);
    double *sums = g_new0(double, batch);
    const gsize per = t->numel / (gsize)batch;

    ck_assert_msg(host != NULL, "download: %s", error ? error->message : "?");
    for (int n = 0; n < batch; n++)
        for (gsize i = 0; i < per; i++)
            sums[n] += host[(gsize)n * per + i];
    return sums;
}

/* Relevance of value v (must exist). */
static TpTensor *
relevance(TpLrp *lrp, int v)
{
    TpTensor *r = tp_lrp_get_relevance(lrp, v);

    ck_assert_msg(r != NULL, "value %d has no relevance", v);
    return r;
}

/* |got - want| / |want| per sample, the worst; fails above tol. */
static double
expect_sums(const double *got, const double *want, int batch, double tol, const char *backend,
            const char *what)
{
    double worst = 0.0;

    for (int n = 0; n < batch; n++) {
        double rel = fabs(got[n] - want[n]) / MAX(fabs(want[n]), 1e-30);

        ck_assert_msg(rel <= tol, "backend %s, %s, sample %d: %.9g vs %.9g (relative %.3g > %.3g)",
                      backend, what, n, got[n], want[n], rel, tol);
        worst = MAX(worst, rel);
    }
    return worst;
}

/* Layer by layer on a chain model (every value read once): Σ R_in = Σ R_out
 * for every node but those of op `skip` (TP_N_OPS: none). Returns the worst
 * relative error. */
static double
check_chain(TpLrp *lrp, TpModel *model, int batch, TpOpType skip, double tol, const char *backend,
            const char *rules)
{
    double worst = 0.0;

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        g_autofree double *in = NULL;
        g_autofree double *out = NULL;
        g_autofree char *what = NULL;

        if (node->op == skip || tp_lrp_get_relevance(lrp, node->output) == NULL)
            continue;
        in = sample_sums(relevance(lrp, node->inputs[0]), batch);
        out = sample_sums(relevance(lrp, node->output), batch);
        what = g_strdup_printf("%s, %s '%s': sum R_in vs sum R_out", rules,
                               tp_op_type_to_string(node->op), node->name);
        worst = MAX(worst, expect_sums(in, out, batch, tol, backend, what));
    }
    return worst;
}

static const gint32 labels3[] = {0, 2, 1, 2};

/* ------------------------------------------------------------ conservation */

/* ε = 0 where the rule has no other reason to lose relevance: with ε > 0
 * each output keeps ε / stab(z) of its relevance, which exceeds 1e-5 where
 * z is below 0.1 (the composite case shows the default ε on the layers
 * whose z are large). α2β1 conserves only at outputs that have both
 * positive and negative contributions (else its β part is empty): the
 * chain's layers are wide enough that every output has both. */
static const struct {
    const char *name;
    TpLrpRules rules;
    double epsilon;
    gboolean normalized; /* signed input: the a⁻ terms and z^B bounds matter */
    TpOpType skip;       /* a node kind whose rule keeps ε in z (checked elsewhere) */
} conservation_cases[] = {
    {"zplus", TP_LRP_RULES_ZPLUS, 0.0, FALSE, TP_N_OPS},
    {"zplus, signed input", TP_LRP_RULES_ZPLUS, 0.0, TRUE, TP_N_OPS},
    {"alpha2beta1", TP_LRP_RULES_ALPHA2BETA1, 0.0, FALSE, TP_N_OPS},
    {"alpha2beta1, signed input", TP_LRP_RULES_ALPHA2BETA1, 0.0, TRUE, TP_N_OPS},
    {"composite eps 1e-6 (z^B, alpha1beta0, pools; Gemm eps skipped)", TP_LRP_RULES_COMPOSITE, 1e-6,
     TRUE, TP_OP_GEMM},
    {"composite eps 0 (Gemm eps = LRP-0 without biases)", TP_LRP_RULES_COMPOSITE, 0.0, TRUE,
     TP_N_OPS},
};

/* Loop index: case × backend. */
START_TEST(test_conservation)
{
    const int n_backends = tp_test_count_backends();
    const char *backend_name = tp_test_backend_name(_i % n_backends);
    const int c = _i / n_backends;
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_chain(backend, FALSE, conservation_cases[c].normalized);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, conservation_cases[c].rules, TP_LRP_START_UNIT,
                                      conservation_cases[c].epsilon);
    g_autofree float *x = make_input(model, 4, 1);
    double worst;

    lrp_run_ok(lrp, x, 4, labels3);
    worst = check_chain(lrp, model, 4, conservation_cases[c].skip, 1e-5, backend_name,
                        conservation_cases[c].name);
    g_print("conservation, %s, backend %s: worst relative error %.3g\n", conservation_cases[c].name,
            backend_name, worst);
    tp_model_free(g_steal_pointer(&model)); /* before the lrp: it is borrowed */
}
END_TEST

/* ------------------------------------------------------------ Gemm ε with bias */

/* Σ R_in = Σ R_out − Σ_j (b_j + ε sign z_j) / stab(z_j) · R_j for both Gemms
 * of the chain with biases (composite: Gemm ε), at a large ε. */
START_TEST(test_gemm_epsilon_bias)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_chain(backend, TRUE, TRUE);
    const double eps = 0.05;
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, eps);
    TpModel *canon = tp_lrp_get_canonized(lrp);
    g_autofree float *x = make_input(model, 4, 2);
    double worst = 0.0;

    lrp_run_ok(lrp, x, 4, labels3);
    /* without BatchNorm the canonized model has the original's value ids */
    ck_assert_uint_eq(tp_model_get_n_values(canon), tp_model_get_n_values(model));
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        g_autoptr(GError) error = NULL;
        g_autofree double *in = NULL;
        g_autofree double *want = NULL;
        g_autofree float *z = NULL;
        g_autofree float *r = NULL;
        g_autofree float *b = NULL;
        int out;

        if (node->op != TP_OP_GEMM)
            continue;
        out = tp_model_get_shape(model, node->output)->dim[0];
        in = sample_sums(relevance(lrp, node->inputs[0]), 4);
        want = sample_sums(relevance(lrp, node->output), 4);
        z = tp_tensor_dup_host(tp_model_get_value(canon, node->output), &error);
        r = tp_tensor_dup_host(relevance(lrp, node->output), &error);
        b = tp_tensor_dup_host(tp_model_get_param(model, i, 1), &error);
        ck_assert(z != NULL && r != NULL && b != NULL);
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < out; j++) {
                double zj = z[n * out + j], sign = zj > 0 ? 1.0 : zj < 0 ? -1.0 : 0.0;
                double stab = zj == 0.0 ? 1e-12 : zj + eps * sign;

                want[n] -= (b[j] + eps * sign) / stab * r[n * out + j];
            }
        worst =
            MAX(worst, expect_sums(in, want, 4, 1e-5, backend_name, "Gemm eps identity with bias"));
    }
    g_print("gemm epsilon with bias identity, backend %s: worst relative error %.3g\n",
            backend_name, worst);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* ------------------------------------------------------------ LRP-0 */

/* With ε = 0 everywhere on a bias-free ReLU net, started at the logit: R =
 * a ⊙ ∂f_c/∂a at every value, and Σ R at the input is the logit f_c.
 * Checked on model (which it frees) and its LRP pass lrp. */
static void
check_lrp0(const char *backend_name, TpModel *model, TpLrp *lrp)
{
    g_autoptr(GError) error = NULL;
    const int batch = 4, logits = tp_model_get_logits(model);
    const int classes = tp_model_get_shape(model, logits)->dim[0];
    g_autofree float *x = make_input(model, batch, 3);
    g_autofree float *onehot = g_new0(float, batch *classes);
    g_autofree float *logit_values = NULL;
    g_autofree double *input_sums = NULL;
    double worst = 0.0, worst_sum = 0.0;
    TpTensor *seed;

    lrp_run_ok(lrp, x, batch, labels3);

    /* the gradient of the label's logit, on the original model */
    ck_assert(tp_model_forward(model, x, batch, TP_MODE_EVAL, &error));
    for (int n = 0; n < batch; n++)
        onehot[n * classes + labels3[n]] = 1.0f;
    seed = tp_model_ensure_grad(model, logits, &error);
    ck_assert(seed != NULL && tp_tensor_upload(seed, onehot, &error));
    ck_assert_msg(tp_model_backward(model, logits, &error), "backward: %s",
                  error ? error->message : "?");

    for (int v = 0; v <= logits; v++) {
        TpTensor *a = tp_model_get_value(model, v);
        g_autofree float *av = tp_tensor_dup_host(a, &error);
        g_autofree float *gv = tp_tensor_dup_host(tp_model_get_grad(model, v), &error);
        g_autofree float *rv = tp_tensor_dup_host(relevance(lrp, v), &error);
        g_autofree char *what =
            g_strdup_printf("backend %s, LRP-0 vs gradient x input at value %d", backend_name, v);
        double scale = 0.0;

        ck_assert(av != NULL && gv != NULL && rv != NULL);
        for (gsize i = 0; i < a->numel; i++) {
            av[i] *= gv[i];
            scale = MAX(scale, fabs(av[i]));
        }
        for (gsize i = 0; i < a->numel; i++)
            worst = MAX(worst, fabs(rv[i] - av[i]) / MAX(scale, 1e-30));
        tp_test_assert_close(rv, av, a->numel, 1e-5 * scale, 1e-4, what);
    }

    /* Σ R at the input = the logit (Euler: f is positively homogeneous) */
    logit_values = tp_tensor_dup_host(tp_model_get_value(model, logits), &error);
    input_sums = sample_sums(relevance(lrp, 0), batch);
    for (int n = 0; n < batch; n++) {
        double want = logit_values[n * classes + labels3[n]];
        double rel = fabs(input_sums[n] - want) / fabs(want);

        ck_assert_msg(rel <= 1e-5, "backend %s, sample %d: sum R at the input %.9g, logit %.9g",
                      backend_name, n, input_sums[n], want);
        worst_sum = MAX(worst_sum, rel);
    }
    g_print("LRP-0, backend %s: worst |R - a*grad| / max|a*grad| %.3g; sum R(input) vs logit "
            "%.3g\n",
            backend_name, worst, worst_sum);
    tp_model_free(model);
}

START_TEST(test_lrp0_gradient_times_input)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpModel *model = build_chain(backend, FALSE, TRUE);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_EPSILON, TP_LRP_START_LOGIT, 0.0);

    check_lrp0(backend_name, model, lrp);
}
END_TEST

/* Convs with dead kernel taps are canonized with them cut off (a 5x5 pad 2
 * on a 2x3 map keeps kernel rows 1-3; a 3x3 pad 1 on a 1x1 map keeps its
 * centre), and the relevance is still exactly LRP-0's gradient x input. */
START_TEST(test_lrp0_dead_taps)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpModel *model = tp_model_new(backend, 2, 2, 3);
    g_autoptr(TpLrp) lrp = NULL;
    const TpNode *wide, *centre;
    int v;

    v = add_conv(model, "wide", 0, 4, 5, 1, 2, FALSE, 80);
    v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
    v = add_conv(model, "centre", v, 5, 3, 1, 1, FALSE, 81);
    v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    add_gemm(model, "fc", v, 3, FALSE, 82);
    lrp = lrp_new_ok(model, TP_LRP_RULES_EPSILON, TP_LRP_START_LOGIT, 0.0);
    wide = tp_model_get_node(tp_lrp_get_canonized(lrp), 0);
    centre = tp_model_get_node(tp_lrp_get_canonized(lrp), 3);
    ck_assert_int_eq(wide->attrs.conv.kernel[0], 3);
    ck_assert_int_eq(wide->attrs.conv.kernel[1], 5);
    ck_assert_int_eq(wide->attrs.conv.pads[0], 1);
    ck_assert_int_eq(centre->attrs.conv.kernel[0], 1);
    ck_assert_int_eq(centre->attrs.conv.kernel[1], 1);
    ck_assert_int_eq(centre->attrs.conv.pads[1], 0);
    check_lrp0(backend_name, model, lrp);
}
END_TEST

/* ------------------------------------------------------------ BatchNorm */

/* conv (bias) → BN → relu → conv (no bias) → BN → relu → GAP → flatten → gemm,
 * random BatchNorm statistics: the canonized model computes the same. */
START_TEST(test_batch_norm_folding)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = tp_model_new(backend, 3, 9, 9);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpLrp) lrp = NULL;
    g_autofree float *x = NULL;
    g_autofree float *want = NULL;
    g_autofree float *got = NULL;
    int v, conv1, bn1, conv2, bn2, out;
    double worst = 0.0, scale = 0.0;

    conv1 = add_conv(model, "conv1", 0, 5, 3, 1, 1, TRUE, 50);
    bn1 = add_batch_norm(model, "bn1", conv1, 51);
    v = tp_test_add(model, TP_OP_RELU, "relu1", bn1, 0, NULL);
    conv2 = add_conv(model, "conv2", v, 7, 3, 2, 1, FALSE, 52);
    bn2 = add_batch_norm(model, "bn2", conv2, 53);
    v = tp_test_add(model, TP_OP_RELU, "relu2", bn2, 0, NULL);
    v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    out = add_gemm(model, "fc", v, 4, TRUE, 54);

    lrp = lrp_new_ok(model, TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6);
    ck_assert_uint_eq(tp_model_get_n_nodes(tp_lrp_get_canonized(lrp)),
                      tp_model_get_n_nodes(model) - 2);
    x = make_input(model, 3, 5);
    ck_assert(tp_model_forward(model, x, 3, TP_MODE_EVAL, &error));
    want = tp_tensor_dup_host(tp_model_get_value(model, out), &error);
    lrp_run_ok(lrp, x, 3, labels3);
    got = tp_tensor_dup_host(tp_model_get_value(tp_lrp_get_canonized(lrp),
                                                tp_model_get_output(tp_lrp_get_canonized(lrp))),
                             &error);
    ck_assert(want != NULL && got != NULL);
    for (int i = 0; i < 3 * 4; i++) {
        worst = MAX(worst, fabs(got[i] - want[i]));
        scale = MAX(scale, fabs(want[i]));
    }
    ck_assert_msg(worst < 1e-5 * MAX(scale, 1.0),
                  "backend %s: folding changed the outputs by %.3g (largest output %.3g)",
                  backend_name, worst, scale);
    /* a folded BN's output has its conv's relevance */
    ck_assert_ptr_eq(tp_lrp_get_relevance(lrp, bn1), tp_lrp_get_relevance(lrp, conv1));
    ck_assert_ptr_eq(tp_lrp_get_relevance(lrp, bn2), tp_lrp_get_relevance(lrp, conv2));
    g_print("BN folding, backend %s: largest output change %.3g (outputs up to %.3g)\n",
            backend_name, worst, scale);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* A BatchNorm that does not alone follow a Conv is refused, by name. */
START_TEST(test_batch_norm_refused)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpLrpConfig config = {TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6};

    for (int kind = 0; kind < 3; kind++) {
        g_autoptr(TpModel) model = tp_model_new(backend, 1, 6, 6);
        g_autoptr(GError) error = NULL;
        TpLrp *lrp;
        int v;

        if (kind == 0) { /* reads the input */
            v = tp_test_add(model, TP_OP_BATCH_NORM, "bn-odd", 0, 0, NULL);
            v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
        } else if (kind == 1) { /* after a Gemm */
            v = tp_test_add(model, TP_OP_FLATTEN, "flatten", 0, 0, NULL);
            v = add_gemm(model, "fc", v, 4, TRUE, 60);
            v = tp_test_add(model, TP_OP_BATCH_NORM, "bn-odd", v, 0, NULL);
        } else { /* the conv's output is read by another op too */
            int c = add_conv(model, "conv", 0, 2, 3, 1, 1, FALSE, 61);
            int bn = tp_test_add(model, TP_OP_BATCH_NORM, "bn-odd", c, 0, NULL);

            v = tp_test_add(model, TP_OP_ADD, "add", c, bn, NULL);
            v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
        }
        add_gemm(model, "head", v, 2, FALSE, 62);
        lrp = tp_lrp_new(model, &config, &error);
        ck_assert_msg(lrp == NULL, "case %d: a misplaced BatchNorm was accepted", kind);
        ck_assert_msg(error != NULL && strstr(error->message, "bn-odd") != NULL,
                      "case %d: the error does not name the node: %s", kind,
                      error ? error->message : "(none)");
        /* Its input is named by what produces it, never by an internal
         * value number. */
        ck_assert_msg(strstr(error->message, "value") == NULL &&
                          strstr(error->message, kind == 0   ? "the model input"
                                                 : kind == 1 ? "Gemm 'fc'"
                                                             : "Conv 'conv'") != NULL,
                      "case %d: the error does not name the input's producer: %s", kind,
                      error->message);
    }
}
END_TEST

/* Labels outside [0, classes) fail the run. */
START_TEST(test_bad_label)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_chain(backend, FALSE, FALSE);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6);
    g_autofree float *x = make_input(model, 1, 6);
    g_autoptr(GError) error = NULL;
    const gint32 bad = 3;

    ck_assert(!tp_lrp_run(lrp, x, 1, &bad, &error));
    ck_assert(error != NULL && strstr(error->message, "label 3") != NULL);
    ck_assert_ptr_null(tp_lrp_get_relevance(lrp, 0));
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* ------------------------------------------------------------ residual */

/* input → conv A → relu (v2) → {conv B, conv C 1x1} → Add → relu → GAP →
 * flatten → gemm, bias-free, ε = 0. v2 is read by two convs (its relevance
 * is their sum); each Add input only by the Add. Composite: the Add and z^B
 * conserve (α1β0 need not: the Add hands relevance to negative conv outputs
 * whose every contribution is negative, z⁺ = 0, and α1β0 drops it). LRP-0
 * (EPSILON): every step conserves, the sum over two readers included. */
START_TEST(test_residual_block)
{
    const char *backend_name = tp_test_backend_name(_i % tp_test_count_backends());
    const gboolean lrp0 = _i / tp_test_count_backends() == 1;
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = tp_model_new(backend, 2, 8, 8);
    g_autoptr(TpLrp) lrp = NULL;
    g_autofree float *x = NULL;
    g_autofree double *r0 = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL, *r5 = NULL;
    g_autofree double *r_fc = NULL;
    int v1, v2, v3, v4, v5, v;
    double worst = 0.0;

    v1 = add_conv(model, "convA", 0, 4, 3, 1, 1, FALSE, 70);
    v2 = tp_test_add(model, TP_OP_RELU, "reluA", v1, 0, NULL);
    v3 = add_conv(model, "convB", v2, 4, 3, 1, 1, FALSE, 71);
    v4 = add_conv(model, "convC", v2, 4, 1, 1, 0, FALSE, 72);
    v5 = tp_test_add(model, TP_OP_ADD, "add", v3, v4, NULL);
    v = tp_test_add(model, TP_OP_RELU, "relu", v5, 0, NULL);
    v = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    add_gemm(model, "fc", v, 3, FALSE, 73);

    lrp = lrp_new_ok(model, lrp0 ? TP_LRP_RULES_EPSILON : TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT,
                     0.0);
    x = make_input(model, 4, 7);
    lrp_run_ok(lrp, x, 4, labels3);
    r0 = sample_sums(relevance(lrp, 0), 4);
    r1 = sample_sums(relevance(lrp, v1), 4);
    r2 = sample_sums(relevance(lrp, v2), 4);
    r3 = sample_sums(relevance(lrp, v3), 4);
    r4 = sample_sums(relevance(lrp, v4), 4);
    r5 = sample_sums(relevance(lrp, v5), 4);
    r_fc = sample_sums(relevance(lrp, v), 4);
    for (int n = 0; n < 4; n++) {
        ck_assert(fabs(r4[n]) > 1e-3 * fabs(r3[n])); /* both Add inputs matter */
        r3[n] += r4[n]; /* what the Add hands down, what the two convs take */
    }
    worst = MAX(worst, expect_sums(r3, r5, 4, 1e-5, backend_name, "Add: R_in0 + R_in1 vs R_out"));
    worst = MAX(worst, expect_sums(r0, r1, 4, 1e-5, backend_name, "first conv"));
    if (lrp0) {
        worst = MAX(worst, expect_sums(r2, r3, 4, 1e-5, backend_name,
                                       "value read by two convs: its R vs theirs summed"));
        worst =
            MAX(worst, expect_sums(r0, r_fc, 4, 1e-5, backend_name, "input vs the Gemm's input"));
    }
    g_print("residual block (%s, eps 0), backend %s: worst relative error %.3g\n",
            lrp0 ? "epsilon" : "composite", backend_name, worst);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* The nodes whose output value is read by exactly one op (owned array,
 * per value: the number of reading inputs). */
static int *
count_readers(const TpModel *model)
{
    int *readers = g_new0(int, tp_model_get_n_values(model));

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);

        for (int k = 0; k < node->n_inputs; k++)
            readers[node->inputs[k]]++;
    }
    return readers;
}

static TpModel *
build_resnet20(TpBackend *backend, gboolean random_batch_norm)
{
    g_autoptr(GError) error = NULL;
    TpZooConfig zc = {.channels = 1,
                      .height = 16,
                      .width = 16,
                      .classes = 3,
                      .width_multiplier = 0.25,
                      .seed = 80};
    TpModel *model = tp_zoo_build(backend, "resnet20", &zc, &error);

    ck_assert_msg(model != NULL, "resnet20: %s", error ? error->message : "?");
    for (guint i = 0; random_batch_norm && i < tp_model_get_n_nodes(model); i++) {
        if (tp_model_get_node(model, i)->op != TP_OP_BATCH_NORM)
            continue;
        randomize_param(model, i, 0, 0.5f, 1.5f, 90 + i * 4);
        randomize_param(model, i, 1, -0.2f, 0.2f, 91 + i * 4);
        randomize_param(model, i, 2, -0.2f, 0.2f, 92 + i * 4);
        randomize_param(model, i, 3, 0.5f, 2.0f, 93 + i * 4);
    }
    return model;
}

/* resnet20 at width 0.25 on 1x16x16, ε = 0.
 * Loop bit 1 clear: composite, random BatchNorm statistics (folded: the
 * convs get biases, which α1β0 ignores): every Add whose two inputs only it
 * reads (the projection blocks) conserves. The loss between the input and
 * the Gemm (α1β0 at z⁺ = 0, see test_residual_block) is printed.
 * Loop bit 1 set: LRP-0 with PyTorch's BatchNorm initialization (folded
 * biases 0): Σ R at the input equals Σ R at the Gemm's input, through all
 * nine Adds and the shortcuts' sums. */
START_TEST(test_resnet20)
{
    const char *backend_name = tp_test_backend_name(_i % tp_test_count_backends());
    const gboolean lrp0 = _i / tp_test_count_backends() == 1;
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_resnet20(backend, !lrp0);
    g_autofree int *readers = count_readers(model);
    g_autoptr(TpLrp) lrp = NULL;
    g_autofree float *x = NULL;
    g_autofree double *r_in = NULL;
    g_autofree double *r_fc = NULL;
    const TpNode *last = tp_model_get_node(model, tp_model_get_n_nodes(model) - 1);
    guint n_add = 0, n_checked = 0;
    double worst = 0.0, end_to_end = 0.0;

    ck_assert_int_eq(last->op, TP_OP_GEMM);
    lrp = lrp_new_ok(model, lrp0 ? TP_LRP_RULES_EPSILON : TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT,
                     0.0);
    x = make_input(model, 4, 8);
    lrp_run_ok(lrp, x, 4, labels3);

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);
        g_autofree double *a = NULL;
        g_autofree double *b = NULL;
        g_autofree double *out = NULL;

        if (node->op != TP_OP_ADD)
            continue;
        n_add++;
        if (readers[node->inputs[0]] != 1 || readers[node->inputs[1]] != 1)
            continue;
        a = sample_sums(relevance(lrp, node->inputs[0]), 4);
        b = sample_sums(relevance(lrp, node->inputs[1]), 4);
        out = sample_sums(relevance(lrp, node->output), 4);
        for (int n = 0; n < 4; n++)
            a[n] += b[n];
        worst = MAX(worst, expect_sums(a, out, 4, 1e-5, backend_name,
                                       "resnet20 Add: R_in0 + R_in1 vs R_out"));
        n_checked++;
    }
    ck_assert_uint_eq(n_add, 9);
    ck_assert_uint_eq(n_checked, 2);

    r_in = sample_sums(relevance(lrp, 0), 4);
    r_fc = sample_sums(relevance(lrp, last->inputs[0]), 4);
    for (int n = 0; n < 4; n++)
        end_to_end = MAX(end_to_end, fabs(r_in[n] - r_fc[n]) / fabs(r_fc[n]));
    if (lrp0)
        worst =
            MAX(worst, expect_sums(r_in, r_fc, 4, 1e-5, backend_name,
                                   "resnet20 LRP-0: sum R at the input vs at the Gemm's input"));
    g_print("resnet20 (%s, eps 0), backend %s: Adds worst relative error %.3g; input vs "
            "Gemm input %.3g\n",
            lrp0 ? "epsilon, bias-free" : "composite, random BN", backend_name, worst, end_to_end);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* ------------------------------------------------------------ batching */

/* A batch of 4, then each sample alone on the same TpLrp (a smaller batch:
 * the plan is reshaped), then the batch again: equal relevance everywhere. */
START_TEST(test_batch_equals_single)
{
    const char *backend_name = tp_test_backend_name(_i % tp_test_count_backends());
    const TpLrpRules rules =
        _i / tp_test_count_backends() == 0 ? TP_LRP_RULES_COMPOSITE : TP_LRP_RULES_ALPHA2BETA1;
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_chain(backend, TRUE, TRUE);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, rules, TP_LRP_START_LOGIT, 1e-6);
    const int batch = 4;
    const TpShape *in_shape = tp_model_get_shape(model, 0);
    const gsize per_sample = (gsize)in_shape->dim[0] * in_shape->dim[1] * in_shape->dim[2];
    const guint n_values = tp_model_get_n_values(model);
    g_autofree float *x = make_input(model, batch, 9);
    g_autoptr(GPtrArray) whole = g_ptr_array_new_with_free_func(g_free);
    double worst = 0.0;

    lrp_run_ok(lrp, x, batch, labels3);
    for (guint v = 0; v < n_values; v++) {
        TpTensor *r = tp_lrp_get_relevance(lrp, (int)v);
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(whole, r != NULL ? tp_tensor_dup_host(r, &error) : NULL);
    }
    for (int pass = 0; pass < 2; pass++)
        for (int n = 0; n < batch; n++) {
            int b = pass == 0 ? 1 : batch;
            int s = pass == 0 ? n : 0;

            if (pass == 1 && n > 0)
                break;
            lrp_run_ok(lrp, x + (gsize)s * per_sample, b, labels3 + s);
            for (guint v = 0; v < n_values; v++) {
                TpTensor *r = tp_lrp_get_relevance(lrp, (int)v);
                const float *want = g_ptr_array_index(whole, v);
                g_autoptr(GError) error = NULL;
                g_autofree float *got = NULL;
                g_autofree char *what = NULL;
                gsize per, scale_n;
                double scale = 0.0;

                ck_assert((r == NULL) == (want == NULL));
                if (r == NULL)
                    continue;
                ck_assert_int_eq(r->shape[0], b);
                got = tp_tensor_dup_host(r, &error);
                per = r->numel / (gsize)b;
                want += (gsize)s * per;
                scale_n = per * (gsize)b;
                for (gsize i = 0; i < scale_n; i++)
                    scale = MAX(scale, fabs(want[i]));
                for (gsize i = 0; i < scale_n; i++)
                    worst = MAX(worst, fabs(got[i] - want[i]) / MAX(scale, 1e-30));
                what = g_strdup_printf("backend %s, value %u, sample %d run %s", backend_name, v, s,
                                       b == 1 ? "alone" : "in the batch again");
                tp_test_assert_close(got, want, scale_n, 1e-6 * scale, 1e-5, what);
            }
        }
    g_print("batch vs single (%s), backend %s: worst |diff| / max|R| %.3g\n",
            rules == TP_LRP_RULES_COMPOSITE ? "composite" : "alpha2beta1", backend_name, worst);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* ------------------------------------------------------------ the criterion plugin */

static const struct {
    const char *keys[4][2]; /* key, value; NULL ends */
    TpLrpConfig want;
    gboolean signed_sum;
} plugin_cases[] = {
    {{{NULL, NULL}}, {TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6}, FALSE},
    {{{"rule", "alpha2beta1"}, {"start", "logit"}, {"aggregate", "signed"}, {"epsilon", "0"}},
     {TP_LRP_RULES_ALPHA2BETA1, TP_LRP_START_LOGIT, 0.0},
     TRUE},
    {{{"rule", "zplus"}, {"epsilon", "0.01"}, {NULL, NULL}},
     {TP_LRP_RULES_ZPLUS, TP_LRP_START_UNIT, 0.01},
     FALSE},
    {{{"rule", "epsilon"}, {NULL, NULL}}, {TP_LRP_RULES_EPSILON, TP_LRP_START_UNIT, 1e-6}, FALSE},
};

/* The plugin through tp_criterion_score() on 9 synthetic samples in batches
 * of 4, 4 and 1, against the same sums over a TpLrp of the settings the keys
 * name, batch by batch. Loop index: case × backend. */
START_TEST(test_criterion_plugin)
{
    const int n_backends = tp_test_count_backends();
    const char *backend_name = tp_test_backend_name(_i % n_backends);
    const int c = _i / n_backends;
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = build_chain(backend, TRUE, FALSE);
    g_autoptr(GError) error = NULL;
    const TpPlugin *synthetic =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_DATASET, "synthetic", &error);
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_CRITERION, "lrp", &error);
    g_autoptr(TpParams) data_params = NULL;
    g_autoptr(TpParams) params = NULL;
    g_autoptr(TpDataset) dataset = NULL;
    g_autoptr(TpLoader) loader = NULL;
    g_autoptr(TpUnits) units = NULL;
    g_autoptr(TpCriterion) criterion = NULL;
    g_autoptr(TpCriterionContext) context = NULL;
    g_autoptr(TpLrp) lrp = NULL;
    TpLoaderConfig lc = {.part = TP_LOADER_ALL, .seed = 1, .batch_size = 4};
    TpLrpConfig got;
    const float *images;
    const gint32 *labels;
    int batch;
    gsize checked = 0;
    double **want, total = 0.0;

    ck_assert_msg(synthetic != NULL && plugin != NULL, "%s", error ? error->message : "?");
    data_params = tp_params_new(synthetic->info->params);
    ck_assert(tp_params_set(data_params, "classes", "3", &error) &&
              tp_params_set(data_params, "samples", "3", &error) &&
              tp_params_set(data_params, "channels", "2", &error) &&
              tp_params_set(data_params, "height", "16", &error) &&
              tp_params_set(data_params, "width", "16", &error));
    dataset = tp_dataset_new(synthetic->info, data_params, TP_SPLIT_TRAIN, &error);
    ck_assert_msg(dataset != NULL, "%s", error ? error->message : "?");
    loader = tp_loader_new(dataset, &lc, &error);
    ck_assert_msg(loader != NULL, "%s", error ? error->message : "?");
    units = tp_units_new(model, TRUE, &error);
    ck_assert_msg(units != NULL, "%s", error ? error->message : "?");

    params = tp_params_new(plugin->info->params);
    for (int k = 0; k < 4 && plugin_cases[c].keys[k][0] != NULL; k++)
        ck_assert_msg(
            tp_params_set(params, plugin_cases[c].keys[k][0], plugin_cases[c].keys[k][1], &error),
            "%s", error ? error->message : "?");
    criterion = tp_criterion_new(plugin->info, params, &error);
    ck_assert_msg(criterion != NULL, "%s", error ? error->message : "?");
    ck_assert_int_eq(criterion->vt.needs(criterion->self) & TP_CRITERION_NEEDS_RELEVANCE,
                     TP_CRITERION_NEEDS_RELEVANCE);
    ck_assert_int_eq(criterion->vt.normalization(criterion->self), TP_NORMALIZE_L1);
    criterion->vt.lrp_config(criterion->self, &got);
    ck_assert_int_eq(got.rules, plugin_cases[c].want.rules);
    ck_assert_int_eq(got.start, plugin_cases[c].want.start);
    ck_assert(got.epsilon == plugin_cases[c].want.epsilon);

    context = tp_criterion_score(criterion, model, units, loader, 0, &error);
    ck_assert_msg(context != NULL, "scoring: %s", error ? error->message : "?");

    /* the same batches through a TpLrp of the same settings */
    lrp = lrp_new_ok(model, got.rules, got.start, got.epsilon);
    want = g_new0(double *, tp_model_get_n_nodes(model));
    tp_loader_start_epoch(loader, 0);
    while (tp_loader_next(loader, &images, &labels, &batch, &error)) {
        lrp_run_ok(lrp, images, batch, labels);
        for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
            const TpUnitSpace *space = tp_units_get_space(units, s);

            for (guint p = 0; p < space->n_producers; p++) {
                const guint node = space->producers[p];
                TpTensor *r = relevance(lrp, tp_units_get_unit_value(units, node));
                g_autofree float *host = tp_tensor_dup_host(r, &error);
                const gsize m = r->numel / ((gsize)batch * (gsize)space->n_units);

                if (want[node] == NULL)
                    want[node] = g_new0(double, space->n_units);
                for (int n = 0; n < batch; n++)
                    for (int u = 0; u < space->n_units; u++) {
                        const float *at = host + ((gsize)n * space->n_units + (gsize)u) * m;
                        double sum = 0.0;

                        for (gsize i = 0; i < m; i++)
                            sum += plugin_cases[c].signed_sum ? (double)at[i] : fabs(at[i]);
                        want[node][u] += sum;
                    }
            }
        }
    }
    ck_assert_msg(error == NULL, "%s", error->message);
    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);

        for (guint p = 0; p < space->n_producers; p++) {
            const guint node = space->producers[p];
            const double *scores = tp_criterion_context_get_scores(context, node);

            for (int u = 0; u < space->n_units; u++) {
                double w = plugin_cases[c].signed_sum ? fabs(want[node][u]) : want[node][u];

                ck_assert_msg(fabs(scores[u] - w) <= 1e-12 * fabs(w),
                              "backend %s, case %d, node %u unit %d: score %.17g, want %.17g",
                              backend_name, c, node, u, scores[u], w);
                checked++;
                total += w;
            }
        }
    }
    ck_assert_uint_eq(checked, 4 + 6 + 32); /* conv1, conv2, fc1 */
    ck_assert(total > 0.0);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        g_free(want[i]);
    g_free(want);
    g_clear_pointer(&context, tp_criterion_context_free);
    g_clear_pointer(&lrp, tp_lrp_free);
    tp_model_free(g_steal_pointer(&model));
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *
lrp_suite(void)
{
    Suite *suite = suite_create("lrp");
    const int nb = tp_test_count_backends();
    TCase *tc;

    tc = tcase_create("conservation");
    tcase_add_loop_test(tc, test_conservation, 0, nb * (int)G_N_ELEMENTS(conservation_cases));
    tcase_add_loop_test(tc, test_gemm_epsilon_bias, 0, nb);
    tcase_add_loop_test(tc, test_lrp0_gradient_times_input, 0, nb);
    tcase_add_loop_test(tc, test_lrp0_dead_taps, 0, nb);
    suite_add_tcase(suite, tc);

    tc = tcase_create("canonization");
    tcase_add_loop_test(tc, test_batch_norm_folding, 0, nb);
    tcase_add_loop_test(tc, test_batch_norm_refused, 0, nb);
    tcase_add_loop_test(tc, test_bad_label, 0, nb);
    suite_add_tcase(suite, tc);

    tc = tcase_create("residual");
    tcase_add_loop_test(tc, test_residual_block, 0, 2 * nb);
    tcase_add_loop_test(tc, test_resnet20, 0, 2 * nb);
    suite_add_tcase(suite, tc);

    tc = tcase_create("batch");
    tcase_add_loop_test(tc, test_batch_equals_single, 0, 2 * nb);
    suite_add_tcase(suite, tc);

    tc = tcase_create("criterion");
    tcase_add_loop_test(tc, test_criterion_plugin, 0, nb * (int)G_N_ELEMENTS(plugin_cases));
    suite_add_tcase(suite, tc);

    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(lrp_suite());
}
