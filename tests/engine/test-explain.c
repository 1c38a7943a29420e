/* test-explain.c — engine/tp-explain.c on every backend found in the build:
 *
 *  - with z⁺ everywhere on a bias-free ReLU net, the input heatmap of each
 *    sample sums to 1, the relevance started at the class (conservation);
 *  - with LRP-0 (rule set EPSILON, ε = 0) on a bias-free ReLU net, started
 *    at the logit's value, the heatmap is Σ_c x ⊙ ∂f_class/∂x, the gradient taken here by central
 *    finite differences of the original model's logit (a plain reference);
 *  - --predicted starts at the argmax of the original model's logits;
 *  - the class × filter sums are the per-channel sums of the relevance;
 *  - the colour map: white at 0, red at +scale, blue at -scale, saturating.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-explain.h"
#include "tp-test.h"

/* conv 3x3 (4) → relu → maxpool 2 → conv 3x3 (6) → relu → flatten → gemm 16
 * → relu → gemm 3, input [2, 10, 10], no biases, seeded weights. */
static TpModel *
build_net(TpBackend *backend)
{
    TpModel *model = tp_model_new(backend, 2, 10, 10);
    TpOpAttrs conv1 = {.conv = {.out_channels = 4, .kernel = {3, 3}, .stride = {1, 1}}};
    TpOpAttrs conv2 = {.conv = {.out_channels = 6, .kernel = {3, 3}, .stride = {1, 1}}};
    TpOpAttrs pool = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};
    TpOpAttrs fc1 = {.gemm = {.out_features = 16}};
    TpOpAttrs fc2 = {.gemm = {.out_features = 3}};
    int v;

    v = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &conv1);
    v = tp_test_add(model, TP_OP_RELU, "relu1", v, 0, NULL);
    v = tp_test_add(model, TP_OP_MAX_POOL, "pool1", v, 0, &pool);
    v = tp_test_add(model, TP_OP_CONV, "conv2", v, 0, &conv2);
    v = tp_test_add(model, TP_OP_RELU, "relu2", v, 0, NULL);
    v = tp_test_add(model, TP_OP_FLATTEN, "flatten", v, 0, NULL);
    v = tp_test_add(model, TP_OP_GEMM, "fc1", v, 0, &fc1);
    v = tp_test_add(model, TP_OP_RELU, "relu3", v, 0, NULL);
    tp_test_add(model, TP_OP_GEMM, "fc2", v, 0, &fc2);
    tp_test_randomize_model(model, 7);
    return model;
}

enum { BATCH = 3, PIXELS = 2 * 10 * 10, PLANE = 10 * 10 };

static TpLrp *
lrp_new_ok(TpModel *model, TpLrpRules rules, TpLrpStart start, double epsilon)
{
    g_autoptr(GError) error = NULL;
    TpLrpConfig config = {.rules = rules, .start = start, .epsilon = epsilon};
    TpLrp *lrp = tp_lrp_new(model, &config, &error);

    ck_assert_msg(lrp != NULL, "tp_lrp_new: %s", error ? error->message : "?");
    return lrp;
}

static float *
explain_ok(TpLrp *lrp, const float *x, gint32 *classes, gboolean predicted)
{
    g_autoptr(GError) error = NULL;
    float *map = tp_explain_input(lrp, x, BATCH, classes, predicted, &error);

    ck_assert_msg(map != NULL, "tp_explain_input: %s", error ? error->message : "?");
    return map;
}

/* The logits of the original model for one sample (host, 3 values). */
static void
logits_of(TpModel *model, const float *x, float *out)
{
    g_autoptr(GError) error = NULL;
    g_autofree float *host = NULL;

    ck_assert(tp_model_forward(model, x, 1, TP_MODE_EVAL, &error));
    host = tp_tensor_dup_host(tp_model_get_value(model, tp_model_get_logits(model)), &error);
    ck_assert(host != NULL);
    for (int c = 0; c < 3; c++)
        out[c] = host[c];
}

START_TEST(test_zplus_conserves)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpModel *model = build_net(backend);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_ZPLUS, TP_LRP_START_UNIT, 0.0);
    g_autofree float *x = g_new(float, BATCH *PIXELS);
    gint32 classes[BATCH] = {0, 1, 2};
    g_autofree float *map = NULL;
    double worst = 0.0;

    tp_test_fill_uniform(x, BATCH * PIXELS, 0.0f, 1.0f, 11);
    map = explain_ok(lrp, x, classes, FALSE);
    for (int n = 0; n < BATCH; n++) {
        double sum = 0.0;

        for (int i = 0; i < PLANE; i++)
            sum += map[n * PLANE + i];
        ck_assert_msg(fabs(sum - 1.0) <= 1e-5, "backend %s, sample %d: heatmap sums to %.9g, not 1",
                      backend_name, n, sum);
        worst = MAX(worst, fabs(sum - 1.0));
    }
    g_print("z+ heatmap conservation, backend %s: worst |sum - 1| %.3g\n", backend_name, worst);
    g_clear_pointer(&lrp, tp_lrp_free);
    tp_model_free(model);
}
END_TEST

/* A pixel whose one-sided differences disagree straddles a ReLU or MaxPool
 * kink within h, where the gradient is not defined: it is skipped, and the
 * test fails if more than a tenth of the pixels are. */
START_TEST(test_lrp0_finite_differences)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpModel *model = build_net(backend);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_EPSILON, TP_LRP_START_LOGIT, 0.0);
    g_autofree float *x = g_new(float, BATCH *PIXELS);
    gint32 classes[BATCH] = {2, 0, 1};
    g_autofree float *map = NULL;
    const float h = 1e-3f;
    double worst = 0.0;
    int skipped = 0;

    tp_test_fill_uniform(x, BATCH * PIXELS, 0.0f, 1.0f, 12);
    map = explain_ok(lrp, x, classes, FALSE);
    for (int n = 0; n < BATCH; n++) {
        const int k = classes[n];
        double want[PLANE] = {0};
        gboolean kink[PLANE] = {FALSE};
        float at[3];
        double scale = 0.0;

        logits_of(model, x + n * PIXELS, at);
        /* Σ_c x · (f(x + h e) − f(x − h e)) / 2h, f the class's logit */
        for (int i = 0; i < PIXELS; i++) {
            float sample[PIXELS], up[3], down[3];
            double forward, backward;

            memcpy(sample, x + n * PIXELS, sizeof(sample));
            sample[i] += h;
            logits_of(model, sample, up);
            sample[i] -= 2 * h;
            logits_of(model, sample, down);
            forward = ((double)up[k] - at[k]) / h;
            backward = ((double)at[k] - down[k]) / h;
            kink[i % PLANE] |= fabs(forward - backward) > 0.02 * MAX(fabs(forward), 0.05);
            want[i % PLANE] += x[n * PIXELS + i] * (forward + backward) / 2;
        }
        for (int i = 0; i < PLANE; i++)
            scale = MAX(scale, fabs(want[i]));
        for (int i = 0; i < PLANE; i++) {
            double err = fabs(map[n * PLANE + i] - want[i]) / scale;

            if (kink[i]) {
                skipped++;
                continue;
            }
            ck_assert_msg(err <= 1e-2,
                          "backend %s, sample %d, pixel %d: LRP-0 %.6g, x * gradient "
                          "%.6g (error %.3g of the largest)",
                          backend_name, n, i, map[n * PLANE + i], want[i], err);
            worst = MAX(worst, err);
        }
    }
    ck_assert_msg(skipped <= BATCH * PLANE / 10, "%d pixels at kinks", skipped);
    g_print("LRP-0 heatmap vs finite differences, backend %s: worst error / max %.3g (%d of %d "
            "pixels at kinks skipped)\n",
            backend_name, worst, skipped, BATCH * PLANE);
    g_clear_pointer(&lrp, tp_lrp_free);
    tp_model_free(model);
}
END_TEST

START_TEST(test_predicted)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    TpModel *model = build_net(backend);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6);
    g_autofree float *x = g_new(float, 8 * PIXELS);
    gint32 classes[BATCH] = {-1, -1, -1};
    int seen[3] = {0};

    /* draws until three samples cover at least two predicted classes */
    for (guint32 seed = 20; seed < 60; seed++) {
        g_autofree float *map = NULL;

        tp_test_fill_uniform(x, BATCH * PIXELS, -1.0f, 1.0f, seed);
        map = explain_ok(lrp, x, classes, TRUE);
        for (int n = 0; n < BATCH; n++) {
            float logits[3];
            int best = 0;

            logits_of(model, x + n * PIXELS, logits);
            for (int c = 1; c < 3; c++)
                if (logits[c] > logits[best])
                    best = c;
            ck_assert_msg(classes[n] == best, "backend %s, seed %u, sample %d: class %d, argmax %d",
                          backend_name, seed, n, classes[n], best);
            seen[best] = 1;
        }
        if (seen[0] + seen[1] + seen[2] >= 2)
            break;
    }
    ck_assert_msg(seen[0] + seen[1] + seen[2] >= 2, "every draw predicted the same class");
    g_clear_pointer(&lrp, tp_lrp_free);
    tp_model_free(model);
}
END_TEST

START_TEST(test_channel_sums)
{
    const char *backend_name = tp_test_backend_name(_i);
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(GError) error = NULL;
    TpModel *model = build_net(backend);
    g_autoptr(TpLrp) lrp = lrp_new_ok(model, TP_LRP_RULES_COMPOSITE, TP_LRP_START_UNIT, 1e-6);
    g_autofree float *x = g_new(float, BATCH *PIXELS);
    gint32 classes[BATCH] = {1, 1, 0};
    g_autofree float *map = NULL;
    g_autofree float *r = NULL;
    const int relu2 = 5; /* [6, 2, 2] */
    double sums[6] = {0}, want[6] = {0};

    tp_test_fill_uniform(x, BATCH * PIXELS, 0.0f, 1.0f, 13);
    map = explain_ok(lrp, x, classes, FALSE);
    ck_assert_msg(tp_explain_add_channels(lrp, model, relu2, sums, &error), "%s",
                  error ? error->message : "?");
    ck_assert_msg(tp_explain_add_channels(lrp, model, relu2, sums, &error), "%s",
                  error ? error->message : "?");
    r = tp_tensor_dup_host(tp_lrp_get_relevance(lrp, relu2), &error);
    ck_assert(r != NULL);
    for (int n = 0; n < BATCH; n++)
        for (int c = 0; c < 6; c++)
            for (int i = 0; i < 4; i++)
                want[c] += 2.0 * r[(n * 6 + c) * 4 + i]; /* added twice */
    for (int c = 0; c < 6; c++)
        ck_assert_msg(fabs(sums[c] - want[c]) <= 1e-6 * MAX(fabs(want[c]), 1.0),
                      "backend %s, channel %d: %.9g vs %.9g", backend_name, c, sums[c], want[c]);
    g_clear_pointer(&lrp, tp_lrp_free);
    tp_model_free(model);
}
END_TEST

START_TEST(test_colorize)
{
    const float map[] = {0.0f, 2.0f, -2.0f, 1.0f, -1.0f, 5.0f, -5.0f};
    const guint8 want[] = {255, 255, 255, 255, 0,   0, 0, 0, 255, 255, 128,
                           128, 128, 128, 255, 255, 0, 0, 0, 0,   255};
    guint8 rgb[G_N_ELEMENTS(want)];

    ck_assert_float_eq(tp_explain_scale(map, G_N_ELEMENTS(map)), 5.0f);
    tp_explain_colorize(map, G_N_ELEMENTS(map), 2.0f, rgb);
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++)
        ck_assert_msg(rgb[i] == want[i], "byte %zu: %u, want %u", i, rgb[i], want[i]);
}
END_TEST

static Suite *
explain_suite(void)
{
    Suite *suite = suite_create("explain");
    const int nb = tp_test_count_backends();
    TCase *tc = tcase_create("heatmaps");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_zplus_conserves, 0, nb);
    tcase_add_loop_test(tc, test_lrp0_finite_differences, 0, nb);
    tcase_add_loop_test(tc, test_predicted, 0, nb);
    tcase_add_loop_test(tc, test_channel_sums, 0, nb);
    tcase_add_test(tc, test_colorize);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(explain_suite());
}
