/* test-pipeline.c — the specialization pipeline end to end on the synthetic
 * dataset: head surgery and its metadata, monotone pruning to the goal,
 * reports, roll-back past the tolerance, resumption to the same model,
 * configuration errors that name file, group and key, the dry run against a
 * plain magnitude reference and against a run without fine-tuning, and the
 * key reference in docs/pipeline-keys.md. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-bench.h"
#include "tp-onnx.h"
#include "tp-pipeline.h"
#include "tp-prune.h"
#include "tp-test.h"
#include "tp-train.h"
#include "tp-zoo.h"

#define DATA "[dataset]\nplugin=synthetic\nclasses=4\nsamples=48\nheight=16\nwidth=16\n"

static TpBackend *backend;
static char *folder, *base_path;

/* A LeNet-5 trained for a few epochs on the synthetic classes, saved once
 * per test program with the dataset's class names. */
static void
make_base(void)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    TpZooConfig zoo = {1, 16, 16, 4, 0.5, 1};
    TpTrainConfig train = {0};
    TpLoaderConfig lc = {0};
    gboolean stopped;

    ck_assert(g_key_file_load_from_data(kf, DATA, -1, 0, NULL));
    g_autoptr(TpDataset) data =
        tp_dataset_new_from_keyfile(kf, "dataset", "t", TP_SPLIT_TRAIN, &error);
    ck_assert_msg(data != NULL, "%s", error ? error->message : "");
    g_autoptr(TpModel) model = tp_zoo_build(backend, "lenet5", &zoo, &error);
    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    tp_model_set_class_names(model, data->meta.class_names);
    lc.batch_size = 16;
    lc.shuffle = TRUE;
    lc.seed = 2;
    g_autoptr(TpLoader) loader = tp_loader_new(data, &lc, &error);
    train.epochs = 4;
    train.batch_size = 16;
    train.lr = 0.05;
    train.momentum = 0.9;
    train.step_epochs = 1;
    train.gamma = 1;
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &train, &error);
    for (int e = 0; e < train.epochs; e++)
        ck_assert(tp_trainer_run_epoch(trainer, loader, NULL, NULL, &stopped, NULL, &error));
    base_path = g_build_filename(folder, "base.onnx", NULL);
    ck_assert_msg(tp_onnx_save(model, base_path, &error), "%s", error ? error->message : "");
}

static void
setup(void)
{
    tp_test_init();
    backend = tp_test_backend_open("cpu");
    folder = tp_test_make_temp_dir();
    make_base();
}

static void
teardown(void)
{
    tp_test_remove_dir(folder);
    g_clear_pointer(&folder, g_free);
    g_clear_pointer(&base_path, g_free);
    g_clear_pointer(&backend, tp_backend_free);
}

/* A pipeline keyfile over the base model with `extra` appended. */
static GKeyFile *
pipeline_keyfile(const char *name, const char *extra)
{
    GKeyFile *kf = g_key_file_new();
    g_autofree char *text =
        g_strdup_printf("[model]\npath=%s\n" DATA "[task]\nclasses=class-0,2\n"
                        "[criterion]\nplugin=magnitude\n"
                        "[prune]\nstep=0.1\ngoal=0.5\n[finetune]\nsteps=10\nlr=0.02\n"
                        "[output]\nmodel=%s/%s.onnx\nlatency-runs=3\n%s",
                        base_path, folder, name, extra);
    g_autoptr(GError) error = NULL;

    ck_assert_msg(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error), "%s",
                  error ? error->message : "");
    return kf;
}

static TpPipeline *
run(const char *name, const char *extra, gboolean resume)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile(name, extra);
    g_autoptr(GError) error = NULL;
    TpPipeline *p = tp_pipeline_new(kf, "p.ini", &error);

    ck_assert_msg(p != NULL, "%s", error ? error->message : "");
    ck_assert_msg(tp_pipeline_run(p, resume, NULL, NULL, &error), "%s",
                  error ? error->message : "");
    return p;
}

START_TEST(test_specializes)
{
    g_autoptr(TpPipeline) p = run("a", "", FALSE);
    const GArray *rows = tp_pipeline_get_rows(p);
    const TpPipelineResult *res = tp_pipeline_get_result(p);
    g_autoptr(GError) error = NULL;

    ck_assert_uint_ge(rows->len, 2);
    for (guint i = 1; i < rows->len; i++) {
        const TpPipelineRow *a = &g_array_index(rows, TpPipelineRow, i - 1);
        const TpPipelineRow *b = &g_array_index(rows, TpPipelineRow, i);
        ck_assert_uint_eq(b->step, a->step + 1);
        ck_assert_uint_lt(b->units, a->units);
        ck_assert_uint_lt(b->params, a->params);
        ck_assert(b->params_removed > a->params_removed);
    }
    /* The goal stops it, and every step is within tolerance here. */
    const TpPipelineRow *last = &g_array_index(rows, TpPipelineRow, rows->len - 1);
    ck_assert_msg(last->params_removed >= 0.5 || !last->accepted, "stopped at %.3f",
                  last->params_removed);
    ck_assert(res->baseline_accuracy >= res->base_accuracy - 1e-9);
    ck_assert(res->test_accuracy > 0.5);
    ck_assert_uint_lt(res->params, res->base_params);
    ck_assert(res->latency_ms > 0 && res->base_latency_ms > 0);
    /* The result's validation accuracy is its own step's, not step 0's. */
    gboolean found = FALSE;
    for (guint i = 0; i < rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(rows, TpPipelineRow, i);
        if (row->step == res->step && row->accepted) {
            ck_assert(res->accuracy == row->accuracy);
            found = TRUE;
        }
    }
    ck_assert(found && res->step > 0);
    ck_assert_ptr_nonnull(res->stop_reason);
    ck_assert_msg(g_str_has_prefix(res->stop_reason, "goal reached"), "%s", res->stop_reason);

    /* The specialized model: two outputs, named and indexed as the task says. */
    g_autoptr(TpModel) out = tp_onnx_load(backend, res->model_path, &error);
    ck_assert_msg(out != NULL, "%s", error ? error->message : "");
    ck_assert_int_eq(tp_model_get_shape(out, tp_model_get_output(out))->dim[0], 2);
    const char *const *names = tp_model_get_class_names(out);
    ck_assert_str_eq(names[0], "class-0");
    ck_assert_str_eq(names[1], "class-2");
    int n;
    const int *indices = tp_model_get_class_indices(out, &n);
    ck_assert(n == 2 && indices[0] == 0 && indices[1] == 2);

    /* Reports: one CSV line per row, JSON with the steps, an SVG. */
    g_autofree char *csv = NULL, *json = NULL, *svg = NULL;
    ck_assert(g_file_get_contents(res->csv_path, &csv, NULL, NULL));
    g_auto(GStrv) lines = g_strsplit(g_strstrip(csv), "\n", -1);
    ck_assert_uint_eq(g_strv_length(lines), rows->len + 1);
    ck_assert(g_file_get_contents(res->report_path, &json, NULL, NULL));
    ck_assert_ptr_nonnull(strstr(json, "\"steps\" : ["));
    ck_assert_ptr_nonnull(strstr(json, "\"test_accuracy\""));
    ck_assert(g_file_get_contents(res->plot_path, &svg, NULL, NULL));
    ck_assert_ptr_nonnull(strstr(svg, "<polyline"));
}
END_TEST

/* With no tolerance, no fine-tuning and an aggressive step, a step falls
 * below the baseline: it is reported, and the result is the step before. */
START_TEST(test_rolls_back)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("c", "");
    g_autoptr(GError) error = NULL;

    g_key_file_set_string(kf, "prune", "tolerance", "0");
    g_key_file_set_string(kf, "prune", "step", "0.3");
    g_key_file_set_string(kf, "prune", "goal", "0.99");
    g_key_file_set_string(kf, "finetune", "steps", "0");
    g_key_file_set_string(kf, "finetune", "epochs", "0");
    g_key_file_set_string(kf, "criterion", "plugin", "random");
    g_autoptr(TpPipeline) q = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(q != NULL && tp_pipeline_run(q, FALSE, NULL, NULL, &error), "%s",
                  error ? error->message : "");
    const GArray *rows = tp_pipeline_get_rows(q);
    const TpPipelineRow *last = &g_array_index(rows, TpPipelineRow, rows->len - 1);
    const TpPipelineResult *res = tp_pipeline_get_result(q);
    if (!last->accepted) {
        ck_assert_uint_eq(res->step, last->step - 1);
        ck_assert(last->accuracy < res->baseline_accuracy);
    } else {
        ck_assert_uint_eq(res->step, last->step);
    }
    for (guint i = 0; i + 1 < rows->len; i++)
        ck_assert(g_array_index(rows, TpPipelineRow, i).accepted);
}
END_TEST

/* Stopping after two steps and resuming gives the model of a run that went
 * straight to four. */
START_TEST(test_resume)
{
    g_autoptr(TpPipeline) straight = run("d", "", FALSE);
    g_autoptr(GKeyFile) kf = pipeline_keyfile("e", "");
    g_autoptr(GError) error = NULL;
    g_autofree char *want = NULL, *got = NULL;
    gsize want_len, got_len;

    g_key_file_set_integer(kf, "prune", "max-steps", 2);
    g_autoptr(TpPipeline) first = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert(tp_pipeline_run(first, FALSE, NULL, NULL, &error));
    g_key_file_set_integer(kf, "prune", "max-steps", 100);
    g_autoptr(TpPipeline) second = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(tp_pipeline_run(second, TRUE, NULL, NULL, &error), "%s",
                  error ? error->message : "");
    ck_assert_uint_eq(tp_pipeline_get_rows(second)->len, tp_pipeline_get_rows(straight)->len);
    ck_assert(
        g_file_get_contents(tp_pipeline_get_result(straight)->model_path, &want, &want_len, NULL));
    ck_assert(
        g_file_get_contents(tp_pipeline_get_result(second)->model_path, &got, &got_len, NULL));
    ck_assert(want_len == got_len && memcmp(want, got, want_len) == 0);
}
END_TEST

/* The magnitude (l1) score of each unit of the base model's layer `name`,
 * by the formula, from the weights: Σ|W[f]| · |γ_f| / sqrt(var_f + eps) with
 * a BatchNorm after it; per layer divided by their sum. The head surgery
 * leaves every hidden layer's incoming weights as they are. */
static double *
reference_magnitude(TpModel *base, const TpUnits *units, const char *name, int n_units)
{
    double *scores = g_new0(double, n_units);
    double total = 0;

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        if (!g_str_equal(space->name, name))
            continue;
        ck_assert_int_eq(space->n_units, n_units);
        for (guint k = 0; k < space->n_producers; k++) {
            guint node = space->producers[k];
            TpTensor *w = tp_model_get_param(base, node, 0);
            gsize row = w->numel / (gsize)n_units;
            g_autofree float *host = g_new(float, w->numel);
            int bn = tp_units_get_batch_norm(units, node);
            g_autofree float *gamma = g_new(float, n_units), *var = g_new(float, n_units);
            ck_assert(tp_tensor_download(w, host, NULL));
            if (bn >= 0) {
                ck_assert(tp_tensor_download(tp_model_get_param(base, (guint)bn, 0), gamma, NULL));
                ck_assert(tp_tensor_download(tp_model_get_param(base, (guint)bn, 3), var, NULL));
            }
            for (int f = 0; f < n_units; f++) {
                double sum = 0;
                for (gsize i = 0; i < row; i++)
                    sum += fabs(host[(gsize)f * row + i]);
                if (bn >= 0)
                    sum *= fabs(gamma[f]) /
                           sqrt(var[f] + tp_model_get_node(base, (guint)bn)->attrs.batch_norm.epsilon);
                scores[f] += sum;
            }
        }
    }
    for (int f = 0; f < n_units; f++)
        total += scores[f];
    for (int f = 0; f < n_units; f++)
        scores[f] /= total;
    return scores;
}

/* The dry run scores as the formula says, cuts the lowest-scored units, and
 * matches, step by step, a run without fine-tuning (tolerance wide open). */
START_TEST(test_plan)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("plan", "");
    g_autoptr(GError) error = NULL;
    g_autoptr(TpModel) base = tp_onnx_load(backend, base_path, &error);
    g_autoptr(TpUnits) units = tp_units_new(base, TRUE, &error);

    g_key_file_set_string(kf, "finetune", "steps", "0");
    g_key_file_set_string(kf, "finetune", "epochs", "0");
    g_key_file_set_string(kf, "prune", "tolerance", "100");
    g_key_file_remove_key(kf, "output", "model", NULL);
    ck_assert_ptr_null(tp_pipeline_new(kf, "p.ini", NULL));
    g_autoptr(TpPipeline) dry = tp_pipeline_new_dry_run(kf, "p.ini", &error);
    ck_assert_msg(dry != NULL, "%s", error ? error->message : "");
    g_autoptr(TpPipelinePlan) plan = tp_pipeline_plan(dry, G_MAXUINT, &error);
    ck_assert_msg(plan != NULL, "%s", error ? error->message : "");
    ck_assert_uint_ge(tp_pipeline_plan_get_n_steps(plan), 3);
    ck_assert_ptr_nonnull(strstr(tp_pipeline_plan_get_stop_reason(plan), "goal reached"));

    const TpPipelinePlanStep *first = tp_pipeline_plan_get_step(plan, 1);
    double highest_cut = 0, lowest_kept = G_MAXDOUBLE;
    for (guint s = 0; s < first->n_spaces; s++) {
        const TpPipelinePlanSpace *space = &first->spaces[s];
        g_autofree double *want =
            reference_magnitude(base, units, space->layer, space->n_units);
        for (int u = 0, c = 0; u < space->n_units; u++) {
            gboolean cut = c < space->n_cut && space->cut[c] == u;
            ck_assert_msg(fabs(space->scores[u] - want[u]) <= 1e-6 * want[u], "%s unit %d: %g, want %g",
                          space->layer, u, space->scores[u], want[u]);
            c += cut;
            if (cut)
                highest_cut = MAX(highest_cut, space->scores[u]);
            else if (space->n_units - space->n_cut > 1)
                lowest_kept = MIN(lowest_kept, space->scores[u]);
        }
    }
    ck_assert_double_le(highest_cut, lowest_kept);

    g_autofree char *out = g_build_filename(folder, "plan.onnx", NULL);
    g_key_file_set_string(kf, "output", "model", out);
    g_autoptr(TpPipeline) p = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(p != NULL && tp_pipeline_run(p, FALSE, NULL, NULL, &error), "%s",
                  error ? error->message : "");
    const GArray *rows = tp_pipeline_get_rows(p);
    ck_assert_uint_eq(rows->len, tp_pipeline_plan_get_n_steps(plan));
    for (guint i = 0; i < rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(rows, TpPipelineRow, i);
        const TpPipelinePlanStep *step = tp_pipeline_plan_get_step(plan, i);
        ck_assert_uint_eq(row->step, step->step);
        ck_assert_uint_eq(row->units, step->units);
        ck_assert_uint_eq(row->params, step->params);
        ck_assert_uint_eq(row->macs, step->macs);
    }
}
END_TEST

static const struct {
    const char *extra;
    const char *expect;
} bad[] = {
    {"[pruning]\nstep=0.1\n", "p.ini: unknown group [pruning]"},
    {"[prune]\nstpe=0.1\n", "p.ini: [prune] unknown key 'stpe'"},
    {"[prune]\nstep=2\n", "p.ini: [prune] step: 2 is out of range"},
    {"[prune]\ngoal-metric=flops\n", "p.ini: [prune] goal-metric: 'flops' is not one of"},
    {"[finetune]\nlr=fast\n", "p.ini: [finetune] lr: 'fast' is not a number"},
    {"[criterion]\nplugin=entropy\n", "p.ini: [criterion] plugin: no criterion plugin named"},
    {"[criterion]\nnorm=l3\n", "p.ini: [criterion] norm: 'l3' is not one of l1|l2"},
    {"[criterion]\nsamples=some\n", "p.ini: [criterion] samples: 'some' is neither"},
    {"[output]\nmodel=\n", "p.ini: [output] model: missing"},
    {"[pipeline]\nplugin-path=/nonexistent/plugins\n",
     "p.ini: [pipeline] plugin-path: '/nonexistent/plugins' is not a folder"},
    {"[pipeline]\nplugins=.\n", "p.ini: [pipeline] unknown key 'plugins'"},
    {"[task]\nclasses=class-2\n", "p.ini: [task] classes: 'class-2' is one class"},
    {"[criterion lpr]\nrule=zplus\n", "p.ini: group [criterion lpr]: only a [sweep]"},
};

START_TEST(test_config_errors)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("x", "");
    g_autoptr(GKeyFile) extra = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) groups = NULL;

    ck_assert(g_key_file_load_from_data(extra, bad[_i].extra, -1, 0, NULL));
    groups = g_key_file_get_groups(extra, NULL);
    for (int g = 0; groups[g] != NULL; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(extra, groups[g], NULL, NULL);
        for (int k = 0; keys[k] != NULL; k++) {
            g_autofree char *v = g_key_file_get_value(extra, groups[g], keys[k], NULL);
            g_key_file_set_value(kf, groups[g], keys[k], v);
        }
    }
    ck_assert_ptr_null(tp_pipeline_new(kf, "p.ini", &error));
    ck_assert(g_error_matches(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CONFIG));
    ck_assert_msg(strstr(error->message, bad[_i].expect) != NULL, "'%s' lacks '%s'", error->message,
                  bad[_i].expect);
}
END_TEST

/* A resume with other settings is refused, naming each key that differs;
 * where the loop stops (max-steps, goal) may change. */
START_TEST(test_resume_other_settings)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("g", "");
    g_autoptr(GError) error = NULL;

    g_key_file_set_integer(kf, "prune", "max-steps", 1);
    g_autoptr(TpPipeline) first = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert(tp_pipeline_run(first, FALSE, NULL, NULL, &error));
    g_key_file_set_string(kf, "prune", "step", "0.2");
    g_key_file_set_string(kf, "criterion", "plugin", "random");
    g_autoptr(TpPipeline) second = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert(!tp_pipeline_run(second, TRUE, NULL, NULL, &error));
    ck_assert(g_error_matches(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_CHECKPOINT));
    ck_assert_msg(strstr(error->message, "[prune] step: 0.1 in the checkpoint, 0.2 now") &&
                      strstr(error->message, "[criterion] plugin: magnitude in the checkpoint, "
                                             "random now"),
                  "%s", error->message);
}
END_TEST

/* A latency difference inside the spread of the runs is noise: neither
 * model is faster. */
START_TEST(test_latency_noise)
{
    TpLatency a = {1, 30, 1.00, 1.20, 0}, b = {1, 30, 1.10, 1.15, 0}, c = {1, 30, 0.50, 0.52, 0};

    ck_assert(tp_latency_within_noise(&a, &b));
    ck_assert(tp_latency_within_noise(&b, &a));
    ck_assert(!tp_latency_within_noise(&a, &c));
    ck_assert(!tp_latency_within_noise(&c, &b));
}
END_TEST

/* An output that is the base model is refused before any work. */
START_TEST(test_output_is_input)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("h", "");
    g_autoptr(GError) error = NULL;
    g_autofree char *before = NULL, *after = NULL;
    gsize before_len, after_len;

    ck_assert(g_file_get_contents(base_path, &before, &before_len, NULL));
    g_key_file_set_string(kf, "output", "model", base_path);
    g_autoptr(TpPipeline) p = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert(!tp_pipeline_run(p, FALSE, NULL, NULL, &error));
    ck_assert_msg(strstr(error->message, "is the input") != NULL, "%s", error->message);
    ck_assert(g_file_get_contents(base_path, &after, &after_len, NULL));
    ck_assert(before_len == after_len && memcmp(before, after, before_len) == 0);
}
END_TEST

/* Errors only the run finds: a class the dataset lacks, a missing model. */
START_TEST(test_run_errors)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("y", "");
    g_autoptr(GError) error = NULL;

    g_key_file_set_string(kf, "task", "classes", "class-0,Sandal");
    g_autoptr(TpPipeline) p = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(p != NULL, "%s", error ? error->message : "");
    ck_assert(!tp_pipeline_run(p, FALSE, NULL, NULL, &error));
    ck_assert_msg(strstr(error->message, "[task] classes: 'Sandal' is not a class of dataset "
                                         "'synthetic'") != NULL,
                  "%s", error->message);
    g_clear_error(&error);

    g_key_file_set_string(kf, "task", "classes", "1,1");
    g_autoptr(TpPipeline) q = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(q != NULL, "%s", error ? error->message : "");
    ck_assert(!tp_pipeline_run(q, FALSE, NULL, NULL, &error));
    ck_assert_ptr_nonnull(strstr(error->message, "listed twice"));
    g_clear_error(&error);

    g_key_file_set_string(kf, "task", "classes", "1,2");
    g_key_file_set_string(kf, "model", "path", "/nonexistent/base.onnx");
    g_autoptr(TpPipeline) r = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(r != NULL, "%s", error ? error->message : "");
    ck_assert(!tp_pipeline_run(r, FALSE, NULL, NULL, &error));
    ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent/base.onnx"));
}
END_TEST

/* [pipeline] plugin-path: a criterion found only there (the SDK example,
 * built by `make check` outside $TASKPRUNE_PLUGIN_PATH) is unknown without
 * the key and runs with it. */
START_TEST(test_plugin_path)
{
    g_autoptr(GKeyFile) kf = pipeline_keyfile("linf", "");
    g_autoptr(GError) error = NULL;
    const char *sdk = g_getenv("TP_TEST_SDK_DIR");
    g_autofree char *path = NULL;

    ck_assert_msg(sdk != NULL, "TP_TEST_SDK_DIR is not set (run through make check)");
    g_key_file_set_string(kf, "criterion", "plugin", "linf");
    ck_assert_ptr_null(tp_pipeline_new(kf, "p.ini", &error));
    ck_assert_msg(strstr(error->message, "no criterion plugin named 'linf'") != NULL, "%s",
                  error->message);
    g_clear_error(&error);

    /* An empty entry is skipped, as in $TASKPRUNE_PLUGIN_PATH. */
    path = g_strconcat(folder, "::", sdk, NULL);
    g_key_file_set_string(kf, "pipeline", "plugin-path", path);
    g_key_file_set_string(kf, "criterion", "bias", "true");
    g_autoptr(TpPipeline) p = tp_pipeline_new(kf, "p.ini", &error);
    ck_assert_msg(p != NULL, "%s", error ? error->message : "");
    ck_assert_str_eq(tp_pipeline_get_criterion_name(p), "linf");
    ck_assert_msg(tp_pipeline_run(p, FALSE, NULL, NULL, &error), "%s", error ? error->message : "");
    ck_assert_uint_lt(tp_pipeline_get_result(p)->params, tp_pipeline_get_result(p)->base_params);
}
END_TEST

/* docs/pipeline-keys.md names every key the engine reads, in its group. */
START_TEST(test_documented)
{
    static const char *const groups[] = {"pipeline", "model",    "task",
                                         "prune",    "finetune", "output"};
    g_autofree char *path = NULL, *doc = NULL;

    path = g_build_filename(g_getenv("TP_TEST_DATA"), "..", "..", "docs", "pipeline-keys.md", NULL);
    ck_assert_msg(g_file_get_contents(path, &doc, NULL, NULL), "cannot read %s", path);
    for (gsize g = 0; g < G_N_ELEMENTS(groups); g++) {
        g_autofree char *heading = g_strdup_printf("## [%s]", groups[g]);
        const char *section = strstr(doc, heading);
        ck_assert_msg(section != NULL, "docs/pipeline-keys.md lacks %s", heading);
        const char *end = strstr(section + 3, "\n## ");
        g_autofree char *body = g_strndup(section, end ? (gsize)(end - section) : strlen(section));
        const TpParamSpec *specs = tp_pipeline_get_param_specs(groups[g]);
        for (int k = 0; specs[k].key != NULL; k++) {
            g_autofree char *cell = g_strdup_printf("| `%s` |", specs[k].key);
            ck_assert_msg(strstr(body, cell) != NULL, "docs/pipeline-keys.md: %s lacks `%s`",
                          heading, specs[k].key);
        }
    }
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");

    tp_test_init();
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_specializes);
    tcase_add_test(tc, test_rolls_back);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_plan);
    tcase_add_loop_test(tc, test_config_errors, 0, G_N_ELEMENTS(bad));
    tcase_add_test(tc, test_run_errors);
    tcase_add_test(tc, test_resume_other_settings);
    tcase_add_test(tc, test_output_is_input);
    tcase_add_test(tc, test_latency_noise);
    tcase_add_test(tc, test_plugin_path);
    tcase_add_test(tc, test_documented);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
