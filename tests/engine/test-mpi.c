/* test-mpi.c — data parallelism across processes (docs/scaling.md), run by
 * tests/tools/test-mpi.sh as `mpirun -np 2 test-mpi` (Check without fork:
 * every rank runs every test, and the collectives line up).
 *
 * Each test computes the same thing twice in every process: once sharded
 * over the ranks through the mpi communicator, once alone (no default
 * communicator, an unsharded loader, the same global batches), and
 * compares. Summation order differs (per-rank partial sums, then the
 * all-reduce), so floats are compared within a stated tolerance; counts
 * and rankings exactly. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tp-comm.h"
#include "tp-test.h"

#define BATCH 14 /* 57 samples: batches of 14, 14, 14, 14, 1; rank 0's share of the last is empty */

static TpComm *comm;

static TpDataset *
open_dataset(void)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_DATASET, "synthetic", &error);
    g_autoptr(TpParams) params = NULL;
    TpDataset *dataset;

    ck_assert_msg(plugin != NULL, "%s", error ? error->message : "");
    params = tp_params_new(plugin->info->params);
    ck_assert(tp_params_set(params, "classes", "3", &error));
    ck_assert(tp_params_set(params, "samples", "19", &error));
    ck_assert(tp_params_set(params, "height", "12", &error));
    ck_assert(tp_params_set(params, "width", "12", &error));
    dataset = tp_dataset_new(plugin->info, params, TP_SPLIT_TRAIN, &error);
    ck_assert_msg(dataset != NULL, "%s", error ? error->message : "");
    ck_assert_int_eq(dataset->meta.n_samples, 57);
    return dataset;
}

/* A loader over every sample, shuffled, this rank's share when sharded. */
static TpLoader *
open_loader(TpDataset *dataset, gboolean sharded)
{
    g_autoptr(GError) error = NULL;
    TpLoaderConfig config = {0};
    TpLoader *loader;

    config.part = TP_LOADER_ALL;
    config.seed = 7;
    config.shuffle = TRUE;
    config.batch_size = BATCH;
    config.shard_rank = sharded ? comm->rank : 0;
    config.shard_count = sharded ? comm->size : 1;
    loader = tp_loader_new(dataset, &config, &error);
    ck_assert_msg(loader != NULL, "%s", error ? error->message : "");
    return loader;
}

/* A zoo model for 12x12 grey images of 3 classes (seed 3). */
static TpModel *
zoo(TpBackend *backend, const char *arch, double width)
{
    g_autoptr(GError) error = NULL;
    TpZooConfig config = {1, 12, 12, 3, width, 3};
    TpModel *model = tp_zoo_build(backend, arch, &config, &error);

    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    return model;
}

static TpModel *
lenet(TpBackend *backend)
{
    return zoo(backend, "lenet5", 0.5);
}

/* ResNet-20 at a quarter of its width: BatchNorm after every convolution,
 * at 12x12, 6x6 and 3x3. */
static TpModel *
resnet(TpBackend *backend)
{
    return zoo(backend, "resnet20", 0.25);
}

/* Trains model for two epochs, sharded over the ranks or alone; sync:
 * sync-batch-norm; after: gradients summed after the backward pass, not
 * during it; bucket_mib: 0 for the default. */
static void
train_buckets(TpModel *model, TpDataset *dataset, gboolean sharded, gboolean sync, gboolean after,
              double bucket_mib)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpLoader) loader = open_loader(dataset, sharded);
    TpTrainConfig config = {2, BATCH, 0.1, 0.9, 5e-4, FALSE, TP_SCHEDULE_COSINE, 0, 1, 1, 0.1, 7,
                            sync, after, bucket_mib};
    g_autoptr(TpTrainer) trainer = tp_trainer_new(model, &config, &error);

    ck_assert_msg(trainer != NULL, "%s", error ? error->message : "");
    tp_comm_set_default(sharded ? comm : NULL);
    for (int epoch = 0; epoch < config.epochs; epoch++) {
        gboolean stopped;
        ck_assert_msg(tp_trainer_run_epoch(trainer, loader, NULL, NULL, &stopped, NULL, &error),
                      "%s", error ? error->message : "");
    }
    tp_comm_set_default(comm);
}

static void
train_with(TpModel *model, TpDataset *dataset, gboolean sharded, gboolean sync)
{
    train_buckets(model, dataset, sharded, sync, FALSE, 0);
}

static void
train(TpModel *model, TpDataset *dataset, gboolean sharded)
{
    train_with(model, dataset, sharded, FALSE);
}

/* The largest |got − want| / (abs + rel·|want|) over every parameter,
 * running statistics included, of two models of one architecture. */
static double
param_excess(TpModel *got_model, TpModel *want_model, double abs, double rel,
             const char **out_where)
{
    g_autoptr(GError) error = NULL;
    double worst = 0;

    for (guint i = 0; i < tp_model_get_n_nodes(want_model); i++) {
        const TpNode *node = tp_model_get_node(want_model, i);
        for (int p = 0; p < node->n_params; p++) {
            g_autofree float *want = tp_tensor_dup_host(node->params[p], &error);
            g_autofree float *got =
                tp_tensor_dup_host(tp_model_get_param(got_model, i, p), &error);
            for (gsize k = 0; k < node->params[p]->numel; k++) {
                double e = fabs((double)got[k] - want[k]) / (abs + rel * fabs(want[k]));
                if (!(e <= worst)) {
                    worst = e;
                    *out_where = node->name;
                }
            }
        }
    }
    return worst;
}

/* Training on 2 ranks ends with the weights one process gets from the same
 * global batches: within 1e-5 + 1e-4 |w| after 10 steps (per-rank partial
 * sums and the all-reduce add in another order than one process). */
START_TEST(test_train_matches_one_process)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) dataset = open_dataset();
    g_autoptr(TpModel) parallel = lenet(backend);
    g_autoptr(TpModel) alone = lenet(backend);
    g_autoptr(GError) error = NULL;
    double moved = 0;

    train(parallel, dataset, TRUE);
    train(alone, dataset, FALSE);
    for (guint i = 0; i < tp_model_get_n_nodes(alone); i++) {
        const TpNode *node = tp_model_get_node(alone, i);
        for (int p = 0; p < node->n_params; p++) {
            g_autofree float *want = tp_tensor_dup_host(node->params[p], &error);
            g_autofree float *got =
                tp_tensor_dup_host(tp_model_get_param(parallel, i, p), &error);
            g_autofree char *what = g_strdup_printf("rank %d: %s parameter %d", comm->rank,
                                                    node->name, p);
            tp_test_assert_close(got, want, node->params[p]->numel, 1e-5, 1e-4, what);
        }
    }
    /* The weights did move: a run that skipped the update would pass above. */
    g_autoptr(TpModel) initial = lenet(backend);
    g_autofree float *w0 = tp_tensor_dup_host(tp_model_get_param(initial, 0, 0), &error);
    g_autofree float *w1 = tp_tensor_dup_host(tp_model_get_param(parallel, 0, 0), &error);
    for (gsize k = 0; k < tp_model_get_param(initial, 0, 0)->numel; k++)
        moved = MAX(moved, fabs(w1[k] - w0[k]));
    ck_assert_msg(moved > 1e-3, "training moved no weight by more than %g", moved);
    ck_assert_msg(tp_train_check_replicas(parallel, "after training", &error), "%s",
                  error ? error->message : "");
}
END_TEST

/* sync-batch-norm on 2 ranks: a ResNet trained for 10 steps (the last batch
 * of 1 sample leaves rank 0's slice empty: that step normalizes per rank, as
 * one process does) ends with the weights and running statistics of one
 * process on the same global batches, within 1e-4 + 1e-3 |w|. Without it
 * each rank normalizes its own 7 samples, and the result is far from one
 * process's. */
#define SYNC_ABS 1e-4
#define SYNC_REL 1e-3
START_TEST(test_sync_batch_norm)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) dataset = open_dataset();
    g_autoptr(TpModel) synced = resnet(backend);
    g_autoptr(TpModel) per_rank = resnet(backend);
    g_autoptr(TpModel) alone = resnet(backend);
    g_autoptr(GError) error = NULL;
    const char *where = NULL, *where_off = NULL;
    double excess, excess_off;

    train_with(synced, dataset, TRUE, TRUE);
    train_with(per_rank, dataset, TRUE, FALSE);
    train_with(alone, dataset, FALSE, TRUE); /* one process: nothing to synchronize */
    excess = param_excess(synced, alone, SYNC_ABS, SYNC_REL, &where);
    excess_off = param_excess(per_rank, alone, SYNC_ABS, SYNC_REL, &where_off);
    g_printerr("rank %d: sync-batch-norm: worst difference %.3g of the tolerance (%s); "
               "per-rank statistics: %.3g (%s)\n",
               comm->rank, excess, where, excess_off, where_off);
    ck_assert_msg(excess <= 1, "rank %d: %s differs from one process by %g tolerances",
                  comm->rank, where, excess);
    ck_assert_msg(excess_off > 10, "rank %d: per-rank statistics only %g tolerances off",
                  comm->rank, excess_off);
    ck_assert_msg(tp_train_check_replicas(synced, "after training", &error), "%s",
                  error ? error->message : "");
}
END_TEST

/* Whether two models of one architecture hold the same bits. */
static gboolean
same_bits(TpModel *a, TpModel *b, const char **out_where)
{
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < tp_model_get_n_nodes(a); i++) {
        const TpNode *node = tp_model_get_node(a, i);
        for (int p = 0; p < node->n_params; p++) {
            g_autofree float *x = tp_tensor_dup_host(node->params[p], &error);
            g_autofree float *y = tp_tensor_dup_host(tp_model_get_param(b, i, p), &error);
            if (memcmp(x, y, node->params[p]->numel * sizeof(float)) != 0) {
                *out_where = node->name;
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* Buckets summed while the backward pass runs give the bits of the same
 * buckets summed after it: a ResNet on 2 ranks with buckets of 2,000 floats
 * (about 20 of them), with sync-batch-norm (whose all-reduces run inside
 * the backward pass, while buckets are in flight) and without. The default
 * (one bucket, with overlap) gives them too: two ranks' sums are the same
 * in any grouping. */
START_TEST(test_overlap_same_bits)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) dataset = open_dataset();
    gboolean sync = _i;
    g_autoptr(TpModel) during = resnet(backend);
    g_autoptr(TpModel) after = resnet(backend);
    g_autoptr(TpModel) one_bucket = resnet(backend);
    g_autoptr(TpModel) initial = resnet(backend);
    const char *where = NULL;
    double bucket_mib = 2000.0 * sizeof(float) / (1 << 20);

    train_buckets(during, dataset, TRUE, sync, FALSE, bucket_mib);
    train_buckets(after, dataset, TRUE, sync, TRUE, bucket_mib);
    train_buckets(one_bucket, dataset, TRUE, sync, FALSE, 0);
    ck_assert_msg(same_bits(during, after, &where),
                  "rank %d, sync-batch-norm %d: %s differs when the buckets overlap backward",
                  comm->rank, sync, where);
    ck_assert_msg(same_bits(during, one_bucket, &where),
                  "rank %d, sync-batch-norm %d: %s differs with one bucket", comm->rank, sync,
                  where);
    ck_assert_msg(!same_bits(during, initial, &where), "training changed nothing");
}
END_TEST

/* The units of every space in ascending score order. */
static GArray *
ranking(TpCriterionContext *context, const TpUnits *units)
{
    GArray *order = g_array_new(FALSE, FALSE, sizeof(int));

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        const double *scores = tp_criterion_context_get_scores(context, space->producers[0]);
        g_autofree int *idx = g_new(int, space->n_units);
        for (int u = 0; u < space->n_units; u++)
            idx[u] = u;
        for (int a = 1; a < space->n_units; a++) /* insertion sort, ties by index */
            for (int b = a; b > 0 && scores[idx[b]] < scores[idx[b - 1]]; b--) {
                int t = idx[b];
                idx[b] = idx[b - 1];
                idx[b - 1] = t;
            }
        g_array_append_vals(order, idx, (guint)space->n_units);
    }
    return order;
}

static const char *const scoring_criteria[] = {"lrp", "taylor"};

/* Scoring on 2 ranks: each scores its share; the sums give the scores (within
 * 1e-5 relative: a batch's slice runs through other GEMM shapes than the
 * whole batch) and the ranking (exactly) of one process on every sample. */
START_TEST(test_scores_match_one_process)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) dataset = open_dataset();
    g_autoptr(TpModel) model = lenet(backend);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpUnits) units = tp_units_new(model, TRUE, &error);
    const char *name = scoring_criteria[_i];
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_CRITERION, name, &error);
    g_autoptr(TpCriterion) criterion = tp_criterion_new(plugin->info, NULL, &error);
    g_autoptr(TpLoader) shard = open_loader(dataset, TRUE);
    g_autoptr(TpLoader) whole = open_loader(dataset, FALSE);

    ck_assert_msg(criterion != NULL, "%s", error ? error->message : "");
    train(model, dataset, FALSE); /* scores of a trained model, not of noise */
    g_autoptr(TpCriterionContext) parallel =
        tp_criterion_score(criterion, model, units, shard, 1, &error);
    ck_assert_msg(parallel != NULL, "%s", error ? error->message : "");
    tp_comm_set_default(NULL);
    g_autoptr(TpCriterionContext) alone =
        tp_criterion_score(criterion, model, units, whole, 1, &error);
    tp_comm_set_default(comm);
    ck_assert_msg(alone != NULL, "%s", error ? error->message : "");

    for (guint s = 0; s < tp_units_get_n_spaces(units); s++) {
        const TpUnitSpace *space = tp_units_get_space(units, s);
        const double *got = tp_criterion_context_get_scores(parallel, space->producers[0]);
        const double *want = tp_criterion_context_get_scores(alone, space->producers[0]);
        for (int u = 0; u < space->n_units; u++)
            ck_assert_msg(fabs(got[u] - want[u]) <= 1e-12 + 1e-5 * fabs(want[u]),
                          "%s, rank %d: space %u unit %d scored %.17g, one process %.17g", name,
                          comm->rank, s, u, got[u], want[u]);
    }
    g_autoptr(GArray) a = ranking(parallel, units);
    g_autoptr(GArray) b = ranking(alone, units);
    ck_assert_int_eq(a->len, b->len);
    ck_assert_msg(memcmp(a->data, b->data, a->len * sizeof(int)) == 0,
                  "%s: the ranking on %d ranks differs from one process's", name, comm->size);
}
END_TEST

/* Evaluation on 2 ranks: the counts and the confusion of one process, exactly. */
START_TEST(test_evaluation_sums)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpDataset) dataset = open_dataset();
    g_autoptr(TpModel) model = lenet(backend);
    g_autoptr(GError) error = NULL;
    g_autoptr(TpLoader) shard = open_loader(dataset, TRUE);
    g_autoptr(TpLoader) whole = open_loader(dataset, FALSE);

    train(model, dataset, FALSE);
    g_autoptr(TpEvaluation) parallel = tp_evaluate(model, shard, &error);
    ck_assert_msg(parallel != NULL, "%s", error ? error->message : "");
    tp_comm_set_default(NULL);
    g_autoptr(TpEvaluation) alone = tp_evaluate(model, whole, &error);
    tp_comm_set_default(comm);
    ck_assert_int_eq(parallel->n_samples, 57);
    ck_assert_int_eq(parallel->n_samples, alone->n_samples);
    ck_assert_int_eq(parallel->correct, alone->correct);
    ck_assert(memcmp(parallel->confusion, alone->confusion, 9 * sizeof(guint64)) == 0);
    ck_assert_msg(fabs(parallel->loss - alone->loss) <= 1e-9 * fabs(alone->loss), "loss %g, %g",
                  parallel->loss, alone->loss);
}
END_TEST

/* A model that differs on one rank fails the replica check on every rank. */
START_TEST(test_replicas_differ)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) model = lenet(backend);
    g_autoptr(GError) error = NULL;

    ck_assert_msg(tp_train_check_replicas(model, "at first", &error), "%s",
                  error ? error->message : "");
    if (comm->rank == comm->size - 1) {
        TpTensor *w = tp_model_get_param(model, 0, 0);
        g_autofree float *host = tp_tensor_dup_host(w, &error);
        host[0] = nextafterf(host[0], 1.0f);
        ck_assert(tp_tensor_upload(w, host, &error));
    }
    ck_assert(!tp_train_check_replicas(model, "after the change", &error));
    ck_assert(g_error_matches(error, TP_COMM_ERROR, TP_COMM_ERROR_DIVERGED));
    ck_assert_msg(strstr(error->message, "the model after the change differs between ranks") &&
                      strstr(error->message, "rank 1 disagrees"),
                  "%s", error->message);
}
END_TEST

int
main(void)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin;
    int status;

    tp_test_init();
    plugin = tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_COMM, "mpi", &error);
    if (plugin == NULL) {
        g_printerr("skipped: %s\n", error->message);
        return 77;
    }
    comm = tp_comm_new(plugin->info, NULL, &error);
    if (comm == NULL) {
        g_printerr("%s\n", error->message);
        return 1;
    }
    if (comm->size != 2) {
        g_printerr("run under mpirun -np 2 (this is %d processes)\n", comm->size);
        tp_comm_free(comm);
        return 1;
    }
    tp_comm_set_default(comm);

    Suite *suite = suite_create("mpi");
    TCase *tc = tcase_create("data-parallel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_train_matches_one_process);
    tcase_add_loop_test(tc, test_scores_match_one_process, 0, G_N_ELEMENTS(scoring_criteria));
    tcase_add_test(tc, test_evaluation_sums);
    tcase_add_test(tc, test_replicas_differ);
    tcase_add_test(tc, test_sync_batch_norm);
    tcase_add_loop_test(tc, test_overlap_same_bits, 0, 2);
    suite_add_tcase(suite, tc);
    status = tp_test_run(suite);
    tp_comm_free(comm);
    return status;
}
