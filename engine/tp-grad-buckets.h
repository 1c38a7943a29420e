/* tp-grad-buckets.h — summing a model's trainable gradients over the ranks
 * of a communicator, in buckets that start while the backward pass is still
 * running (data-parallel training, docs/scaling.md). Internal to the engine.
 *
 * The layout: every trainable parameter's gradient, nodes from last to first
 * (the order backward finishes them), each node's parameters in order, packed
 * into buckets of at most bucket_floats floats (a bucket closes when the next
 * gradient would not fit; a gradient larger than a bucket has one to itself).
 * Each bucket is a range of one host buffer: a node's gradients are copied
 * there (scaled) when the backward pass has finished them, so with a device
 * backend they go through host memory.
 *
 * A step:
 *  1. tp_grad_buckets_begin() lays the buckets out for the model as it is now
 *     and, with overlap, becomes the model's backward hook: each node that
 *     backward finishes is copied, and each bucket whose nodes are all
 *     finished starts its non-blocking sum at once; every finished node also
 *     moves the sums in flight on.
 *  2. the caller runs the backward pass (or none: a rank whose share of the
 *     batch is empty sends its gradients as they are, zeroed by the caller).
 *  3. tp_grad_buckets_finish() copies and starts what is left (everything,
 *     without overlap), waits for every bucket in order, writes the sums back
 *     into the gradients and removes the hook.
 * Overlap or not, the same buckets are summed with the same calls, so the
 * results are the same bits; only when the sums start differs. After a
 * failed step the job must end (a sum may still be in flight).
 */
#ifndef TP_GRAD_BUCKETS_H
#define TP_GRAD_BUCKETS_H

#include "tp-comm.h"
#include "tp-model.h"

G_BEGIN_DECLS

#define TP_GRAD_BUCKETS_DEFAULT_FLOATS ((gsize)4 << 20) /* 16 MiB */

typedef struct _TpGradBuckets TpGradBuckets;

/* Buckets of bucket_floats floats (0: the default) over comm (borrowed). */
TpGradBuckets *tp_grad_buckets_new(TpComm *comm, gsize bucket_floats);
void tp_grad_buckets_free(TpGradBuckets *buckets);

/* Step 1: lays out model's gradients (model borrowed until finish), each
 * rank's to be scaled by `scale`; with overlap, sets the model's backward
 * hook. */
void tp_grad_buckets_begin(TpGradBuckets *buckets, TpModel *model, float scale,
                           gboolean overlap);

/* Step 3: the gradients become the sums over the ranks. Fails when a
 * trainable parameter has no gradient (no backward pass ever ran: this
 * rank's first batch was empty). */
gboolean tp_grad_buckets_finish(TpGradBuckets *buckets, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpGradBuckets, tp_grad_buckets_free)

G_END_DECLS

#endif /* TP_GRAD_BUCKETS_H */
