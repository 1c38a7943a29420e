/* tp-grad-buckets.c — gradients summed over the ranks in buckets that start
 * as the backward pass finishes their nodes (the contract and the layout are
 * in tp-grad-buckets.h). */
#include "config.h"

#include "tp-grad-buckets.h"
#include "tp-train.h"

/* One trainable gradient and where it sits in the host buffer. */
typedef struct {
    guint node;
    int param;
    gsize numel, offset;
} Slot;

typedef struct {
    guint first, end; /* its slots */
    gsize offset, count;
    TpCommRequest *request; /* in flight; NULL before the start and after the wait */
    gboolean done;          /* a test saw it finished */
} Bucket;

struct _TpGradBuckets {
    TpComm *comm;
    gsize bucket_floats;
    TpModel *model; /* between begin and finish */
    float scale;
    GArray *slots;   /* Slot, nodes last to first */
    GArray *buckets; /* Bucket, in the order they start */
    float *host;
    gsize host_capacity;
    guint copied;  /* slots copied to the host buffer */
    guint started; /* buckets started */
};

TpGradBuckets *
tp_grad_buckets_new(TpComm *comm, gsize bucket_floats)
{
    TpGradBuckets *buckets;

    g_return_val_if_fail(comm != NULL, NULL);
    buckets = g_new0(TpGradBuckets, 1);
    buckets->comm = comm;
    buckets->bucket_floats = bucket_floats > 0 ? bucket_floats : TP_GRAD_BUCKETS_DEFAULT_FLOATS;
    buckets->slots = g_array_new(FALSE, FALSE, sizeof(Slot));
    buckets->buckets = g_array_new(FALSE, FALSE, sizeof(Bucket));
    return buckets;
}

void
tp_grad_buckets_free(TpGradBuckets *buckets)
{
    if (buckets == NULL)
        return;
    if (buckets->model != NULL)
        tp_model_set_backward_hook(buckets->model, NULL, NULL);
    g_array_unref(buckets->slots);
    g_array_unref(buckets->buckets);
    g_free(buckets->host);
    g_free(buckets);
}

/* The gradient of a slot, or NULL (error set) when there is none yet. */
static TpTensor *
slot_grad(TpGradBuckets *buckets, const Slot *slot, GError **error)
{
    TpTensor *grad = tp_model_get_param_grad(buckets->model, slot->node, slot->param);

    if (grad == NULL)
        g_set_error(error, TP_TRAIN_ERROR, TP_TRAIN_ERROR_INVALID,
                    "rank %d has no gradient of node '%s' yet: its first batch was empty; use "
                    "fewer processes or a larger batch",
                    buckets->comm->rank, tp_model_get_node(buckets->model, slot->node)->name);
    return grad;
}

/* Copies (scaled) the gradients of nodes `index` and later, those the
 * backward pass has finished, that are not copied yet. */
static gboolean
copy_from(TpGradBuckets *buckets, guint index, GError **error)
{
    for (; buckets->copied < buckets->slots->len; buckets->copied++) {
        const Slot *slot = &g_array_index(buckets->slots, Slot, buckets->copied);
        float *to = buckets->host + slot->offset;
        TpTensor *grad;
        if (slot->node < index)
            break;
        if ((grad = slot_grad(buckets, slot, error)) == NULL ||
            !tp_tensor_download(grad, to, error))
            return FALSE;
        for (gsize k = 0; k < slot->numel; k++)
            to[k] *= buckets->scale;
    }
    return TRUE;
}

/* Starts every bucket whose slots are all copied, in order. */
static gboolean
start_ready(TpGradBuckets *buckets, GError **error)
{
    for (; buckets->started < buckets->buckets->len; buckets->started++) {
        Bucket *b = &g_array_index(buckets->buckets, Bucket, buckets->started);
        if (b->end > buckets->copied)
            break;
        b->request = tp_comm_all_reduce_float_start(buckets->comm, buckets->host + b->offset,
                                                    b->count, error);
        if (b->request == NULL)
            return FALSE;
    }
    return TRUE;
}

/* Moves the sums in flight on. */
static gboolean
progress(TpGradBuckets *buckets, GError **error)
{
    for (guint i = 0; i < buckets->started; i++) {
        Bucket *b = &g_array_index(buckets->buckets, Bucket, i);
        if (b->request != NULL && !b->done &&
            !tp_comm_test(buckets->comm, b->request, &b->done, error))
            return FALSE;
    }
    return TRUE;
}

/* The backward hook: node `index` and every later one are finished. */
static gboolean
on_node_final(TpModel *model, guint index, gpointer user_data, GError **error)
{
    TpGradBuckets *buckets = user_data;

    return copy_from(buckets, index, error) && start_ready(buckets, error) &&
           progress(buckets, error);
}

/* Closes the bucket being filled, if it has slots. */
static void
close_bucket(TpGradBuckets *buckets, Bucket *open)
{
    if (open->end == open->first)
        return;
    g_array_append_val(buckets->buckets, *open);
    open->first = open->end;
    open->offset += open->count;
    open->count = 0;
}

void
tp_grad_buckets_begin(TpGradBuckets *buckets, TpModel *model, float scale, gboolean overlap)
{
    Bucket open = {0};

    g_return_if_fail(buckets != NULL && model != NULL);
    g_return_if_fail(buckets->model == NULL);

    g_array_set_size(buckets->slots, 0);
    g_array_set_size(buckets->buckets, 0);
    for (guint i = tp_model_get_n_nodes(model); i-- > 0;) {
        const TpNode *node = tp_model_get_node(model, i);
        for (int p = 0; p < node->n_params; p++) {
            Slot slot = {i, p, node->params[p]->numel, 0};
            if (!tp_model_param_is_trainable(model, i, p))
                continue;
            if (open.count > 0 && open.count + slot.numel > buckets->bucket_floats)
                close_bucket(buckets, &open);
            slot.offset = open.offset + open.count;
            g_array_append_val(buckets->slots, slot);
            open.end = buckets->slots->len;
            open.count += slot.numel;
            if (open.count >= buckets->bucket_floats) /* full, or one large gradient */
                close_bucket(buckets, &open);
        }
    }
    close_bucket(buckets, &open);
    if (open.offset > buckets->host_capacity) {
        g_free(buckets->host);
        buckets->host = g_new(float, open.offset);
        buckets->host_capacity = open.offset;
    }
    buckets->model = model;
    buckets->scale = scale;
    buckets->copied = 0;
    buckets->started = 0;
    if (overlap)
        tp_model_set_backward_hook(model, on_node_final, buckets);
}

gboolean
tp_grad_buckets_finish(TpGradBuckets *buckets, GError **error)
{
    gboolean ok;

    g_return_val_if_fail(buckets != NULL && buckets->model != NULL, FALSE);

    tp_model_set_backward_hook(buckets->model, NULL, NULL);
    ok = copy_from(buckets, 0, error) && start_ready(buckets, error);
    for (guint i = 0; ok && i < buckets->buckets->len; i++) {
        Bucket *b = &g_array_index(buckets->buckets, Bucket, i);
        ok = tp_comm_wait(buckets->comm, g_steal_pointer(&b->request), error);
        for (guint s = b->first; ok && s < b->end; s++) {
            const Slot *slot = &g_array_index(buckets->slots, Slot, s);
            ok = tp_tensor_upload(slot_grad(buckets, slot, NULL), buckets->host + slot->offset,
                                  error);
        }
    }
    buckets->model = NULL;
    return ok;
}
