/* tp-pipeline.c — the specialization loop of docs/method.md §1 (contract in
 * tp-pipeline.h; keys in docs/pipeline-keys.md). The keys are read in
 * tp-pipeline-config.c, checkpoints kept in tp-pipeline-checkpoint.c and the
 * reports written in tp-report.c.
 *
 *   base model ─ head surgery ─► specialized baseline (step 0)
 *   repeat: score (criterion) → normalize per space → rank globally →
 *           cut the lowest round(step × original units), no space below
 *           min-units → fine-tune → validate → count → checkpoint
 *   until the goal is met, nothing more can be cut, or accuracy falls more
 *   than the tolerance below the baseline (then the last step within it is
 *   the result). The result is saved, tested, timed and reported.
 *
 * A checkpoint (folder [output] checkpoint) holds the model after every
 * accepted step and state.ini with the rows so far; --resume reloads both.
 *
 * Across processes (docs/scaling.md): every loader is sharded by the default
 * communicator's rank and size, so training, scoring and evaluation are
 * data-parallel and every rank computes the same model; the replicas are
 * compared after each step. Only rank 0 writes files; nothing written
 * depends on the number of processes, so any number can resume.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "tp-bench.h"
#include "tp-comm.h"
#include "tp-lock.h"
#include "tp-normalization.h"
#include "tp-onnx.h"
#include "tp-pipeline-private.h"
#include "tp-prune.h"
#include "tp-train.h"

/* Set by tp_pipeline_interrupt() (from a signal handler); runs stop at the
 * next check. */
static volatile sig_atomic_t interrupted;

void
tp_pipeline_interrupt(void)
{
    interrupted = 1;
}

/* ---------------------------------------------------------------- the run */

void
tp_pipeline_run_clear(TpPipelineRun *r)
{
    g_clear_pointer(&r->fit, tp_loader_free);
    g_clear_pointer(&r->val, tp_loader_free);
    g_clear_pointer(&r->scoring, tp_loader_free);
    g_clear_pointer(&r->criterion, tp_criterion_free);
    if (r->accepted != r->model)
        g_clear_pointer(&r->accepted, tp_model_free);
    g_clear_pointer(&r->model, tp_model_free);
    g_clear_pointer(&r->base, tp_model_free);
    g_clear_pointer(&r->train, tp_dataset_free);
    g_clear_pointer(&r->test, tp_dataset_free);
    g_clear_pointer(&r->backend, tp_backend_free);
    g_clear_pointer(&r->classes, g_free);
    g_clear_pointer(&r->head, g_free);
    g_clear_pointer(&r->clock, g_timer_destroy);
    g_clear_pointer(&r->base_test, tp_evaluation_free);
    g_clear_pointer(&r->result_test, tp_evaluation_free);
}

static void
report_progress(TpPipelineRun *r, const char *phase, guint step, double accuracy)
{
    TpPipelineProgress progress = {0};
    TpCount count;
    double step_units = tp_params_get_double(r->p->prune, "step");
    double goal = tp_params_get_double(r->p->prune, "goal");

    if (r->progress == NULL)
        return;
    tp_model_count(r->model, &count);
    progress.step = step;
    progress.steps_expected =
        (guint)MIN(ceil(goal / step_units), tp_params_get_int(r->p->prune, "max-steps"));
    progress.phase = phase;
    progress.params_left = (double)count.params / MAX(r->base_count.params, 1);
    progress.accuracy = accuracy;
    progress.eta_s = step > 0 ? g_timer_elapsed(r->clock, NULL) / step *
                                    MAX((double)progress.steps_expected - step, 0)
                              : -1;
    r->progress(&progress, r->progress_data);
}

/* The dataset class of each entry of [task] classes (indices or names). */
static gboolean
resolve_classes(TpPipelineRun *r, GError **error)
{
    g_auto(GStrv) words = g_strsplit(tp_params_get_string(r->p->task, "classes"), ",", -1);
    int n = (int)g_strv_length(words);

    r->classes = g_new(int, MAX(n, 1));
    r->n_classes = n;
    for (int i = 0; i < n; i++) {
        char *word = g_strstrip(words[i]);
        guint64 index;
        int c = tp_dataset_find_class(r->train, word);
        if (c < 0 && g_ascii_string_to_unsigned(word, 10, 0, G_MAXINT, &index, NULL))
            c = (int)index;
        if (c < 0 || c >= r->train->meta.n_classes) {
            const char *const *names = r->train->meta.class_names;
            g_autofree char *valid =
                names != NULL ? g_strjoinv(", ", (char **)names) : g_strdup("no names");
            return tp_pipeline_config_error(
                error, r->p->source, "task", "classes",
                "'%s' is not a class of dataset '%s' (%d classes: indices 0 to "
                "%d, or their names: %s)",
                word, r->train->info->name, r->train->meta.n_classes, r->train->meta.n_classes - 1,
                valid);
        }
        for (int j = 0; j < i; j++)
            if (r->classes[j] == c)
                return tp_pipeline_config_error(error, r->p->source, "task", "classes",
                                                "class '%s' is listed twice", word);
        r->classes[i] = c;
    }
    if (n < 1)
        return tp_pipeline_config_error(error, r->p->source, "task", "classes", "no class given");
    return TRUE;
}

/* [task] class-map: the base model's output of each target class. */
static gboolean
read_class_map(TpPipelineRun *r, const char *map, int outputs, GError **error)
{
    g_auto(GStrv) words = g_strsplit(map, ",", -1);

    if ((int)g_strv_length(words) != r->n_classes)
        return tp_pipeline_config_error(
            error, r->p->source, "task", "class-map",
            "%u outputs for %d classes (give one output per class of [task] "
            "classes, in order)",
            g_strv_length(words), r->n_classes);
    for (int i = 0; i < r->n_classes; i++) {
        guint64 output;
        if (!g_ascii_string_to_unsigned(g_strstrip(words[i]), 10, 0, (guint64)outputs - 1, &output,
                                        NULL))
            return tp_pipeline_config_error(error, r->p->source, "task", "class-map",
                                            "'%s' is not an output of the base model (0 to %d)",
                                            words[i], outputs - 1);
        r->head[i] = (int)output;
    }
    return TRUE;
}

/* The base model's output for each target class: [task] class-map when
 * given; by name when the model and the dataset both name their classes;
 * else the dataset index, only when the model has as many outputs as the
 * dataset has classes (the rule of `taskprune eval`). */
static gboolean
resolve_head(TpPipelineRun *r, GError **error)
{
    const char *const *names = tp_model_get_class_names(r->base);
    int outputs = tp_model_get_shape(r->base, tp_model_get_logits(r->base))->dim[0];
    const char *map = tp_params_get_string(r->p->task, "class-map");

    r->head = g_new(int, r->n_classes);
    if (*map)
        return read_class_map(r, map, outputs, error);
    if ((names == NULL || r->train->meta.class_names == NULL) &&
        outputs != r->train->meta.n_classes)
        return tp_pipeline_config_error(
            error, r->p->source, "task", "class-map",
            "the base model %s has %d outputs and dataset '%s' %d classes, and names cannot "
            "match them (the %s no class names): give the base model's output of each target "
            "class, e.g. class-map = 1,2 (--set task.class-map=1,2)",
            tp_params_get_string(r->p->model, "path"), outputs, r->train->info->name,
            r->train->meta.n_classes, names == NULL ? "model has" : "dataset has");
    for (int i = 0; i < r->n_classes; i++) {
        const char *name =
            r->train->meta.class_names ? r->train->meta.class_names[r->classes[i]] : NULL;
        r->head[i] = r->classes[i];
        if (names != NULL && name != NULL) {
            r->head[i] = -1;
            for (int j = 0; names[j] != NULL; j++)
                if (g_str_equal(names[j], name))
                    r->head[i] = j;
        }
        if (r->head[i] < 0 || r->head[i] >= outputs)
            return tp_pipeline_config_error(error, r->p->source, "task", "classes",
                                            "class '%s' is not an output of the base model %s",
                                            name ? name : "?",
                                            tp_params_get_string(r->p->model, "path"));
    }
    return TRUE;
}

static TpLoader *
make_loader(TpPipelineRun *r, TpDataset *dataset, TpLoaderPart part, gboolean shuffle,
            int per_class, int batch, GError **error)
{
    TpLoaderConfig config = {0};

    config.classes = r->classes;
    config.n_classes = r->n_classes;
    config.part = part;
    config.validation_fraction = tp_params_get_double(r->p->task, "validation-fraction");
    config.seed = (guint64)tp_params_get_int(r->p->task, "seed");
    config.shuffle = shuffle;
    config.batch_size = batch;
    config.prefetch = TRUE;
    config.samples_per_class = per_class;
    config.shard_rank = tp_comm_rank();
    config.shard_count = tp_comm_size();
    tp_model_get_normalization(r->base, &config.mean, &config.std);
    return tp_loader_new(dataset, &config, error);
}

typedef struct {
    gsize done, target;
} StepBudget;

static gboolean
within_budget(const TpTrainProgress *progress, gpointer data)
{
    StepBudget *budget = data;
    return ++budget->done < budget->target && !interrupted;
}

/* Fine-tunes r->model at a constant learning rate for [finetune] steps SGD
 * steps, or else for `epochs` epochs of the target data (fractions allowed). */
static gboolean
finetune(TpPipelineRun *r, double epochs, guint64 seed, GError **error)
{
    gsize per_epoch = tp_loader_get_n_batches(r->fit);
    StepBudget budget = {0, (gsize)tp_params_get_int(r->p->finetune, "steps")};
    TpTrainConfig config = {0};

    if (budget.target == 0)
        budget.target = (gsize)llround(epochs * per_epoch);
    if (budget.target == 0)
        return TRUE;
    config.epochs = (int)((budget.target + per_epoch - 1) / per_epoch);
    config.batch_size = (int)tp_params_get_int(r->p->finetune, "batch-size");
    config.lr = tp_params_get_double(r->p->finetune, "lr");
    config.momentum = tp_params_get_double(r->p->finetune, "momentum");
    config.weight_decay = tp_params_get_double(r->p->finetune, "weight-decay");
    config.schedule = TP_SCHEDULE_CONSTANT;
    config.step_epochs = 1;
    config.gamma = 1;
    config.seed = seed;
    config.sync_batch_norm = tp_params_get_boolean(r->p->finetune, "sync-batch-norm");
    g_autoptr(TpTrainer) trainer = tp_trainer_new(r->model, &config, error);
    if (trainer == NULL)
        return FALSE;
    while (budget.done < budget.target && !interrupted) {
        gboolean stopped;
        if (!tp_trainer_run_epoch(trainer, r->fit, within_budget, &budget, &stopped, NULL, error))
            return FALSE;
        if (stopped)
            break;
    }
    return TRUE;
}

/* The N-class base model's accuracy on the validation images of the target
 * classes: its argmax over all N outputs against each image's class (E1). */
static gboolean
base_accuracy(TpPipelineRun *r, double *out_accuracy, GError **error)
{
    int outputs = tp_model_get_shape(r->base, tp_model_get_logits(r->base))->dim[0];
    g_autofree float *logits = NULL;
    gsize correct = 0, total = 0;
    const float *images;
    const gint32 *labels;
    int batch;

    tp_loader_start_epoch(r->val, 0);
    while (TRUE) {
        g_autoptr(GError) local = NULL;
        TpTensor *y;
        if (!tp_loader_next(r->val, &images, &labels, &batch, &local)) {
            if (local == NULL)
                break;
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (batch == 0) /* an empty slice of a sharded batch */
            continue;
        if (!tp_model_forward(r->base, images, batch, TP_MODE_INFER, error))
            return FALSE;
        y = tp_model_get_value(r->base, tp_model_get_logits(r->base));
        logits = g_renew(float, logits, y->numel);
        if (!tp_tensor_download(y, logits, error))
            return FALSE;
        for (int i = 0; i < batch; i++) {
            const float *row = logits + (gsize)i * outputs;
            int best = 0;
            for (int j = 1; j < outputs; j++)
                if (row[j] > row[best])
                    best = j;
            correct += best == r->head[labels[i]];
        }
        total += (gsize)batch;
    }
    if (tp_comm_get_parallel() != NULL) {
        double counts[2] = {(double)correct, (double)total};
        if (!tp_comm_all_reduce_double(tp_comm_get_parallel(), counts, 2, error))
            return FALSE;
        correct = (gsize)counts[0];
        total = (gsize)counts[1];
    }
    *out_accuracy = total ? (double)correct / total : 0;
    return TRUE;
}

/* Validation accuracy and loss of r->model on the target task. */
static gboolean
validate(TpPipelineRun *r, TpModel *model, double *out_accuracy, double *out_loss, GError **error)
{
    g_autoptr(TpEvaluation) e = tp_evaluate(model, r->val, error);

    if (e == NULL)
        return FALSE;
    *out_accuracy = tp_evaluation_accuracy(e);
    *out_loss = e->loss;
    return TRUE;
}

void
tp_pipeline_fill_counts(TpPipelineRun *r, TpModel *model, const TpUnits *units, TpPipelineRow *row)
{
    TpCount count;
    GArray *channels = g_array_new(FALSE, FALSE, sizeof(int));

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++)
        g_array_append_val(channels, tp_units_get_space(units, s)->n_units);
    g_ptr_array_add(r->p->channels, channels);

    tp_model_count(model, &count);
    row->units = tp_units_get_total(units);
    row->params = count.params;
    row->macs = count.macs;
    row->params_removed = 1.0 - (double)count.params / MAX(r->base_count.params, 1);
    row->macs_removed = 1.0 - (double)count.macs / MAX(r->base_count.macs, 1);
}

typedef struct {
    int space, unit;
    double score;
} Ranked;

static int
compare_ranked(gconstpointer a, gconstpointer b)
{
    const Ranked *x = a, *y = b;

    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    if (x->space != y->space)
        return x->space - y->space;
    return x->unit - y->unit;
}

static TpNormalization
normalization(TpPipelineRun *r)
{
    const char *key = tp_params_get_string(r->p->prune, "normalize");

    if (g_str_equal(key, "none"))
        return TP_NORMALIZE_NONE;
    if (g_str_equal(key, "l1"))
        return TP_NORMALIZE_L1;
    if (g_str_equal(key, "l2"))
        return TP_NORMALIZE_L2;
    return r->criterion->vt.normalization(r->criterion->self);
}

gssize
tp_pipeline_rank(TpPipelineRun *r, const TpUnits *units, guint step, double *out_score_s,
                 GPtrArray **out_scores, GPtrArray **out_keep, GError **error)
{
    int min_units = (int)tp_params_get_int(r->p->prune, "min-units");
    g_autoptr(GArray) ranked = g_array_new(FALSE, FALSE, sizeof(Ranked));
    g_autoptr(GTimer) timer = g_timer_new();
    g_autoptr(GPtrArray) space_scores = g_ptr_array_new_with_free_func(g_free);
    TpNormalization norm;
    gsize cut, budget;

    g_autoptr(TpCriterionContext) context =
        tp_criterion_score(r->criterion, r->model, units, r->scoring,
                           (guint64)tp_params_get_int(r->p->task, "seed") * 1000003 + step, error);
    if (context == NULL)
        return -1;
    if (out_score_s != NULL)
        *out_score_s = g_timer_elapsed(timer, NULL);

    norm = normalization(r);
    guint n_spaces = tp_units_get_n_spaces(units);
    g_autofree int *left = g_new(int, MAX(n_spaces, 1));
    for (guint s = 0; s < n_spaces; s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        double *sum = g_new0(double, MAX(space->n_units, 1));
        double total = 0;
        g_ptr_array_add(space_scores, sum);
        for (guint k = 0; k < space->n_producers; k++) {
            const double *scores = tp_criterion_context_get_scores(context, space->producers[k]);
            for (int u = 0; u < space->n_units; u++)
                sum[u] += scores[u];
        }
        for (int u = 0; u < space->n_units; u++)
            total += norm == TP_NORMALIZE_L2 ? sum[u] * sum[u] : sum[u];
        if (norm == TP_NORMALIZE_L2)
            total = sqrt(total);
        for (int u = 0; u < space->n_units; u++) {
            if (norm != TP_NORMALIZE_NONE && total > 0)
                sum[u] /= total;
            Ranked entry = {(int)s, u, sum[u]};
            g_array_append_val(ranked, entry);
        }
        left[s] = space->n_units;
    }
    g_array_sort(ranked, compare_ranked);

    budget = (gsize)llround(tp_params_get_double(r->p->prune, "step") * r->original_units);
    budget = MAX(budget, 1);
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
    for (guint s = 0; s < n_spaces; s++) {
        gboolean *mask = g_new(gboolean, tp_units_get_space(units, s)->n_units);
        for (int u = 0; u < tp_units_get_space(units, s)->n_units; u++)
            mask[u] = TRUE;
        g_ptr_array_add(keep, mask);
    }
    cut = 0;
    for (guint i = 0; i < ranked->len && cut < budget; i++) {
        const Ranked *entry = &g_array_index(ranked, Ranked, i);
        if (left[entry->space] <= min_units)
            continue;
        ((gboolean *)g_ptr_array_index(keep, entry->space))[entry->unit] = FALSE;
        left[entry->space]--;
        cut++;
    }
    if (out_scores != NULL)
        *out_scores = g_steal_pointer(&space_scores);
    *out_keep = g_steal_pointer(&keep);
    return (gssize)cut;
}

/* One pruning step on r->model: score, rank, and build the smaller model.
 * Returns NULL with no error when nothing more can be cut. */
static TpModel *
prune_step(TpPipelineRun *r, guint step, double *out_score_s, double *out_prune_s, GError **error)
{
    gboolean linear = tp_params_get_boolean(r->p->prune, "linear");
    g_autoptr(TpUnits) units = tp_units_new(r->model, linear, error);
    g_autoptr(GTimer) timer = g_timer_new();
    g_autoptr(GPtrArray) keep = NULL;

    if (units == NULL || tp_pipeline_rank(r, units, step, out_score_s, NULL, &keep, error) <= 0)
        return NULL;
    TpModel *pruned =
        tp_prune_apply(r->model, units, (const gboolean *const *)keep->pdata, NULL, 0, error);
    *out_prune_s = g_timer_elapsed(timer, NULL) - *out_score_s;
    return pruned;
}

double
tp_pipeline_removed(TpPipelineRun *r, const TpPipelineRow *row)
{
    const char *metric = tp_params_get_string(r->p->prune, "goal-metric");

    if (g_str_equal(metric, "macs"))
        return row->macs_removed;
    if (g_str_equal(metric, "units"))
        return 1.0 - (double)row->units / MAX(r->original_units, 1);
    return row->params_removed;
}

static gsize
file_size(const char *path)
{
    GStatBuf st;
    return g_stat(path, &st) == 0 ? (gsize)st.st_size : 0;
}

/* The result: save, test, time. */
static gboolean
finish(TpPipelineRun *r, GError **error)
{
    TpPipeline *p = r->p;
    TpPipelineResult *res = &p->result;
    g_autoptr(TpLoader) test = NULL;
    g_autoptr(TpUnits) base_units = NULL;
    g_autoptr(TpModel) head_only = NULL;
    TpLatency base, pruned;
    TpCount count;
    int runs = (int)tp_params_get_int(p->output, "latency-runs");
    gboolean writer = tp_comm_rank() == 0;

    if (writer && !tp_onnx_save(r->accepted, p->model_path, error))
        return FALSE;
    report_progress(r, "test", res->step, res->baseline_accuracy);
    test = make_loader(r, r->test, TP_LOADER_ALL, FALSE, 0, 256, error);
    if (test == NULL || !(r->result_test = tp_evaluate(r->accepted, test, error)))
        return FALSE;
    res->test_accuracy = tp_evaluation_accuracy(r->result_test);
    /* The base model with the task's head (step 0 before any warm-up). */
    if (!(base_units = tp_units_new(r->base, TRUE, error)) ||
        !(head_only = tp_prune_apply(r->base, base_units, NULL, r->head, r->n_classes, error)) ||
        !(r->base_test = tp_evaluate(head_only, test, error)))
        return FALSE;
    res->base_test_accuracy = tp_evaluation_accuracy(r->base_test);
    res->tolerance = tp_params_get_double(p->prune, "tolerance");
    for (guint i = 0; i < p->rows->len; i++) {
        const TpPipelineRow *row = &g_array_index(p->rows, TpPipelineRow, i);
        if (row->accepted && row->step == res->step)
            res->accuracy = row->accuracy;
    }
    res->stop_reason = p->stop_reason;
    tp_model_count(r->accepted, &count);
    res->params = count.params;
    res->macs = count.macs;
    res->base_params = r->base_count.params;
    res->base_classes = tp_model_get_shape(r->base, tp_model_get_logits(r->base))->dim[0];
    res->classes = r->n_classes;
    res->base_macs = r->base_count.macs;
    res->base_bytes = file_size(tp_params_get_string(p->model, "path"));
    res->bytes = file_size(p->model_path);
    res->model_path = p->model_path;
    res->report_path = p->report_path;
    res->csv_path = p->csv_path;
    res->plot_path = p->plot_path;
    res->html_path = p->html_path;
    if (!writer) /* latency and reports are rank 0's */
        return TRUE;
    report_progress(r, "latency", res->step, res->baseline_accuracy);
    if (!tp_bench_compare(r->base, r->accepted, TP_BENCH_INFER, 1, 3, runs, &base, &pruned, error))
        return FALSE;
    res->base_latency_ms = base.p50_ms;
    res->latency_ms = pruned.p50_ms;
    res->latency_within_noise = tp_latency_within_noise(&base, &pruned);
    return tp_pipeline_write_reports(r, error);
}

static gboolean
setup(TpPipelineRun *r, GError **error)
{
    TpPipeline *p = r->p;
    static const char *const skip[] = {"plugin", "max-tensor-bytes", NULL};
    g_autofree char *backend_name = g_key_file_get_string(p->keyfile, "backend", "plugin", NULL);
    const TpPlugin *plugin;
    g_autoptr(TpParams) backend_params = NULL;
    const TpPlugin *criterion;

    plugin = tp_registry_lookup(tp_pipeline_get_registry(p), TP_PLUGIN_KIND_BACKEND,
                                backend_name ? backend_name : "cpu", error);
    if (plugin == NULL)
        return FALSE;
    backend_params = tp_params_new(plugin->info->params);
    if (!tp_params_load(backend_params, p->keyfile, "backend", p->source, skip, error) ||
        !(r->backend = tp_backend_new(plugin->info, backend_params, error)) ||
        !tp_backend_load_limits(r->backend, p->keyfile, p->source, error) ||
        !(r->train = tp_dataset_new_from_registry(tp_pipeline_get_registry(p), p->keyfile,
                                                  "dataset", p->source, TP_SPLIT_TRAIN, error)) ||
        !(r->test = tp_dataset_new_from_registry(tp_pipeline_get_registry(p), p->keyfile, "dataset",
                                                 p->source, TP_SPLIT_TEST, error)) ||
        !(r->base = tp_onnx_load(r->backend, tp_params_get_string(p->model, "path"), error)) ||
        !tp_normalization_apply_keys(r->base, p->keyfile, "model", p->source, error) ||
        !resolve_classes(r, error) || !resolve_head(r, error))
        return FALSE;
    {
        /* A message, not a g_warning(): a model without normalization is
         * legitimate (one trained on raw pixels), so not fatal in tests. */
        g_autofree char *missing =
            tp_normalization_missing_message(r->base, tp_params_get_string(p->model, "path"));
        if (missing != NULL && tp_comm_rank() == 0)
            g_message("warning: %s", missing);
    }
    if (!*p->task_name) {
        GString *name = g_string_new(NULL);
        for (int i = 0; i < r->n_classes; i++) {
            const char *const *names = r->train->meta.class_names;
            if (names != NULL)
                g_string_append_printf(name, "%s%s", i ? ", " : "", names[r->classes[i]]);
            else
                g_string_append_printf(name, "%s%d", i ? "," : "", r->classes[i]);
        }
        g_free(p->task_name);
        p->task_name = g_string_free(name, FALSE);
    }
    tp_model_count(r->base, &r->base_count);

    criterion = tp_registry_lookup(tp_pipeline_get_registry(p), TP_PLUGIN_KIND_CRITERION,
                                   p->criterion_name, error);
    if (criterion == NULL ||
        !(r->criterion = tp_criterion_new(criterion->info, p->criterion_params, error)))
        return FALSE;
    int batch = (int)tp_params_get_int(p->finetune, "batch-size");
    if (!(r->fit = make_loader(r, r->train, TP_LOADER_TRAIN, TRUE, 0, batch, error)) ||
        !(r->val = make_loader(r, r->train, TP_LOADER_VALIDATION, FALSE, 0, 256, error)))
        return FALSE;
    if (r->criterion->vt.needs(r->criterion->self) != TP_CRITERION_NEEDS_WEIGHTS &&
        !(r->scoring =
              make_loader(r, r->train, TP_LOADER_TRAIN, FALSE, p->samples_per_class, 64, error)))
        return FALSE;
    return TRUE;
}

gboolean
tp_pipeline_run_start(TpPipelineRun *r, GError **error)
{
    if (!setup(r, error))
        return FALSE;
    /* Step 0: head surgery (tp_prune_apply records the class indices). */
    {
        g_autoptr(TpUnits) base_units = tp_units_new(r->base, TRUE, error);
        if (base_units == NULL ||
            !(r->model = tp_prune_apply(r->base, base_units, NULL, r->head, r->n_classes, error)))
            return FALSE;
    }
    g_autoptr(TpUnits) u =
        tp_units_new(r->model, tp_params_get_boolean(r->p->prune, "linear"), error);
    if (u == NULL)
        return FALSE;
    r->original_units = tp_units_get_total(u);
    return TRUE;
}

gboolean
tp_pipeline_run(TpPipeline *p, gboolean resume, TpPipelineProgressFunc progress, gpointer data,
                GError **error)
{
    TpPipelineRun r = {0};
    gboolean ok = FALSE;
    guint step = 0;
    double goal = tp_params_get_double(p->prune, "goal");
    double tolerance = tp_params_get_double(p->prune, "tolerance") / 100.0;
    guint max_steps = (guint)tp_params_get_int(p->prune, "max-steps");
    guint64 seed = (guint64)tp_params_get_int(p->task, "seed");
    g_autoptr(TpUnits) units = NULL;

    g_return_val_if_fail(p != NULL && p->model_path != NULL, FALSE);

    if (!tp_pipeline_check_before_work(p, resume, error))
        return FALSE;
    /* One run at a time per output (its checkpoint and report go with it),
     * held by rank 0, which writes them for every rank. */
    g_autoptr(TpLock) lock = NULL;
    g_autoptr(TpLock) checkpoint_lock = NULL;
    if (tp_comm_rank() == 0 &&
        ((lock = tp_lock_acquire(p->model_path, error)) == NULL ||
         (checkpoint_lock = tp_lock_acquire(p->checkpoint, error)) == NULL)) {
        g_prefix_error(error, "%s: ", p->source);
        return FALSE;
    }
    r.p = p;
    r.progress = progress;
    r.progress_data = data;
    r.clock = g_timer_new();
    memset(&p->result, 0, sizeof(p->result));
    g_clear_pointer(&p->stop_reason, g_free);
    if (!tp_pipeline_run_start(&r, error))
        goto out;
    double baseline_loss;
    if (!validate(&r, r.model, &p->result.baseline_accuracy, &baseline_loss, error) ||
        !base_accuracy(&r, &p->result.base_accuracy, error))
        goto out;
    report_progress(&r, "baseline", 0, p->result.baseline_accuracy);

    if (resume) {
        if (!tp_pipeline_load_checkpoint(&r, &step, error))
            goto out;
        r.accepted = r.model;
        for (guint i = 0; i < p->rows->len; i++) {
            const TpPipelineRow *row = &g_array_index(p->rows, TpPipelineRow, i);
            if (row->accepted)
                p->result.step = row->step;
        }
    } else {
        TpPipelineRow row = {0};
        double warmup = tp_params_get_double(p->finetune, "warmup-epochs");
        row.loss = baseline_loss;
        if (warmup > 0) {
            report_progress(&r, "warm-up", 0, p->result.baseline_accuracy);
            if (!finetune(&r, warmup, seed, error))
                goto out;
            if (interrupted) {
                g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_INTERRUPTED,
                            "interrupted before the first checkpoint (nothing to resume)");
                goto out;
            }
            if (!validate(&r, r.model, &p->result.baseline_accuracy, &row.loss, error))
                goto out;
        }
        units = tp_units_new(r.model, tp_params_get_boolean(p->prune, "linear"), error);
        if (units == NULL)
            goto out;
        tp_pipeline_fill_counts(&r, r.model, units, &row);
        row.accuracy = p->result.baseline_accuracy;
        row.accepted = TRUE;
        g_array_append_val(p->rows, row);
        r.accepted = r.model;
        if (!tp_pipeline_save_checkpoint(&r, 0, error))
            goto out;
    }

    while (step < max_steps) {
        const TpPipelineRow *last = &g_array_index(p->rows, TpPipelineRow, p->rows->len - 1);
        TpPipelineRow row = {0};
        g_autoptr(GTimer) timer = g_timer_new();
        TpModel *pruned;

        if (interrupted)
            break;
        if (tp_pipeline_removed(&r, last) >= goal) {
            p->stop_reason =
                g_strdup_printf("goal reached: %.1f%% of the %s removed at step %u",
                                100 * tp_pipeline_removed(&r, last),
                                tp_params_get_string(p->prune, "goal-metric"), last->step);
            break;
        }
        if (!last->accepted) {
            p->stop_reason = g_strdup_printf(
                "accuracy left the tolerance at step %u (%.2f%%, more than %g points below the "
                "baseline's %.2f%%); the result is step %u",
                last->step, 100 * last->accuracy, 100 * tolerance,
                100 * p->result.baseline_accuracy, p->result.step);
            break;
        }
        step++;
        report_progress(&r, "score", step, last->accuracy);
        pruned = prune_step(&r, step, &row.score_s, &row.prune_s, error);
        if (pruned == NULL) {
            if (error != NULL && *error != NULL)
                goto out;
            p->stop_reason = g_strdup_printf("nothing more to cut: every layer is at [prune] "
                                             "min-units after step %u",
                                             step - 1);
            break;
        }
        if (r.accepted != r.model)
            tp_model_free(r.model);
        r.model = pruned;
        report_progress(&r, "fine-tune", step, last->accuracy);
        g_timer_start(timer);
        if (!finetune(&r, tp_params_get_double(p->finetune, "epochs"), seed + step, error))
            goto out;
        if (interrupted)
            break; /* a step cut short is not kept: --resume redoes it */
        row.finetune_s = g_timer_elapsed(timer, NULL);
        {
            g_autofree char *when = g_strdup_printf("after pruning step %u", step);
            if (!tp_train_check_replicas(r.model, when, error))
                goto out;
        }
        g_timer_start(timer);
        report_progress(&r, "evaluate", step, last->accuracy);
        if (!validate(&r, r.model, &row.accuracy, &row.loss, error))
            goto out;
        row.eval_s = g_timer_elapsed(timer, NULL);
        g_clear_pointer(&units, tp_units_free);
        units = tp_units_new(r.model, tp_params_get_boolean(p->prune, "linear"), error);
        if (units == NULL)
            goto out;
        row.step = step;
        tp_pipeline_fill_counts(&r, r.model, units, &row);
        row.accepted = row.accuracy >= p->result.baseline_accuracy - tolerance;
        g_array_append_val(p->rows, row);
        if (row.accepted) {
            if (r.accepted != r.model)
                tp_model_free(r.accepted);
            r.accepted = r.model;
            p->result.step = step;
            if (!tp_pipeline_save_checkpoint(&r, step, error))
                goto out;
        }
        report_progress(&r, "done", step, row.accuracy);
    }
    if (interrupted) {
        g_set_error(error, TP_PIPELINE_ERROR, TP_PIPELINE_ERROR_INTERRUPTED,
                    "interrupted; the checkpoint in %s holds step %u", p->checkpoint,
                    p->result.step);
        goto out;
    }
    if (p->stop_reason == NULL)
        p->stop_reason = g_strdup_printf("[prune] max-steps (%u) reached", max_steps);
    ok = finish(&r, error);
out:
    /* Errors about a key of the keyfile name it already. */
    if (!ok && error != NULL && !g_str_has_prefix((*error)->message, p->source))
        g_prefix_error(error, "%s: ", p->source);
    tp_pipeline_run_clear(&r);
    return ok;
}
