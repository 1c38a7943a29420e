/* tp-onnx-fold.c — constant folding of shape arithmetic at ONNX import: one
 * small function per op type, looked up in folds[] (see tp-onnx-fold.h). */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "tp-onnx-fold.h"
#include "tp-onnx.h"

#define MAX_DIMS ((int)G_N_ELEMENTS(((TpOnnxConst *)NULL)->dims))

enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };

void
tp_onnx_const_free(gpointer data)
{
    TpOnnxConst *c = data;
    g_free(c->f);
    g_free(c->i64);
    g_free(c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpOnnxConst, tp_onnx_const_free)

/* Sets error: "<OpType> node '<name>': <message>"; returns NULL. */
G_GNUC_PRINTF(4, 5)
static TpOnnxConst *
fold_error(const TpOnnxFold *f, GError **error, int code, const char *format, ...)
{
    va_list args;
    g_autofree char *message = NULL;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, TP_ONNX_ERROR, code, "%s node '%s': %s", f->node->op_type,
                f->node->name && *f->node->name ? f->node->name : "(unnamed)", message);
    return NULL;
}

static TpOnnxConst *
batch_error(const TpOnnxFold *f, GError **error)
{
    return fold_error(f, error, TP_ONNX_ERROR_UNSUPPORTED,
                      "it computes with the batch size, which is not known at import (export "
                      "with a fixed batch size, or flatten with torch.flatten or "
                      "x.view(x.size(0), -1))");
}

/* A zeroed constant of the given shape, float or int64. */
static TpOnnxConst *
const_new(int ndim, const gint64 *dims, gboolean is_float)
{
    TpOnnxConst *c = g_new0(TpOnnxConst, 1);

    c->ndim = ndim;
    c->numel = 1;
    for (int i = 0; i < ndim; i++) {
        c->dims[i] = dims[i];
        c->numel *= (gsize)dims[i];
    }
    if (is_float)
        c->f = g_new0(float, MAX(c->numel, 1));
    else
        c->i64 = g_new0(gint64, MAX(c->numel, 1));
    return c;
}

/* Copies element si of src to element di of dst (both of one type). */
static void
copy_elem(TpOnnxConst *dst, gsize di, const TpOnnxConst *src, gsize si)
{
    if (dst->f != NULL)
        dst->f[di] = src->f[si];
    else
        dst->i64[di] = src->i64[si];
}

static const Onnx__AttributeProto *
find_attr(const TpOnnxFold *f, const char *name)
{
    for (gsize i = 0; i < f->node->n_attribute; i++)
        if (g_strcmp0(f->node->attribute[i]->name, name) == 0)
            return f->node->attribute[i];
    return NULL;
}

static gint64
attr_int(const TpOnnxFold *f, const char *name, gint64 fallback)
{
    const Onnx__AttributeProto *a = find_attr(f, name);
    return a != NULL ? a->i : fallback;
}

/* Input i, which must be present. */
static const TpOnnxConst *
input(const TpOnnxFold *f, gsize i, GError **error)
{
    if (i >= f->n_in || f->in[i] == NULL) {
        fold_error(f, error, TP_ONNX_ERROR_INVALID, "input %zu is missing", i);
        return NULL;
    }
    return f->in[i];
}

/* An axis in [-rank, rank) as [0, rank). */
static gboolean
norm_axis(const TpOnnxFold *f, gint64 axis, int rank, int *out, GError **error)
{
    if (axis < -rank || axis >= rank) {
        fold_error(f, error, TP_ONNX_ERROR_INVALID,
                   "axis %" G_GINT64_FORMAT " is out of range for rank %d", axis, rank);
        return FALSE;
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return TRUE;
}

/* The int64 list of input i (opset >= since) or of attribute name (before);
 * *n = -1 when neither is given. Borrowed. */
static gboolean
int_list(const TpOnnxFold *f, gsize i, gint64 since, const char *name, const gint64 **out,
         gssize *n, GError **error)
{
    *out = NULL;
    *n = -1;
    if (f->opset >= since) {
        if (i < f->n_in && f->in[i] != NULL) {
            if (f->in[i]->i64 == NULL) {
                fold_error(f, error, TP_ONNX_ERROR_INVALID, "input %zu must be int64", i);
                return FALSE;
            }
            *out = f->in[i]->i64;
            *n = (gssize)f->in[i]->numel;
        }
    } else {
        const Onnx__AttributeProto *a = find_attr(f, name);
        if (a != NULL) {
            *out = a->ints;
            *n = (gssize)a->n_ints;
        }
    }
    return TRUE;
}

/* ---------------------------------------------------------------- folds */

static TpOnnxConst *
fold_shape(const TpOnnxFold *f, GError **error)
{
    gint64 dims[MAX_DIMS];
    int rank;

    if (f->activation != NULL) {
        rank = f->activation->ndim + 1;
        dims[0] = TP_ONNX_BATCH;
        for (int i = 1; i < rank; i++)
            dims[i] = f->activation->dim[i - 1];
    } else {
        const TpOnnxConst *x = input(f, 0, error);
        if (x == NULL)
            return NULL;
        rank = x->ndim;
        memcpy(dims, x->dims, sizeof(gint64) * (gsize)rank);
    }
    gint64 start = CLAMP(attr_int(f, "start", 0), -rank, rank);
    gint64 end = CLAMP(attr_int(f, "end", rank), -rank, rank);
    start += start < 0 ? rank : 0;
    end += end < 0 ? rank : 0;
    gint64 n = MAX(end - start, 0);
    TpOnnxConst *c = const_new(1, &n, FALSE);
    memcpy(c->i64, dims + start, sizeof(gint64) * (gsize)n);
    return c;
}

static TpOnnxConst *
fold_gather(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error), *idx = x ? input(f, 1, error) : NULL;
    gint64 dims[MAX_DIMS];
    int axis;

    if (idx == NULL || !norm_axis(f, attr_int(f, "axis", 0), x->ndim, &axis, error))
        return NULL;
    if (idx->i64 == NULL)
        return fold_error(f, error, TP_ONNX_ERROR_INVALID, "the indices must be int64");
    int rank = x->ndim - 1 + idx->ndim;
    if (rank > MAX_DIMS)
        return fold_error(f, error, TP_ONNX_ERROR_UNSUPPORTED, "the result has rank %d", rank);
    memcpy(dims, x->dims, sizeof(gint64) * (gsize)axis);
    memcpy(dims + axis, idx->dims, sizeof(gint64) * (gsize)idx->ndim);
    memcpy(dims + axis + idx->ndim, x->dims + axis + 1, sizeof(gint64) * (gsize)(x->ndim - axis - 1));

    gsize outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= (gsize)x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= (gsize)x->dims[i];
    gint64 n = x->dims[axis];
    g_autoptr(TpOnnxConst) c = const_new(rank, dims, x->f != NULL);
    for (gsize j = 0; j < idx->numel; j++) {
        gint64 k = idx->i64[j] < 0 ? idx->i64[j] + n : idx->i64[j];
        if (k < 0 || k >= n)
            return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                              "index %" G_GINT64_FORMAT " is out of range for a dimension of %" G_GINT64_FORMAT,
                              idx->i64[j], n);
        for (gsize o = 0; o < outer; o++)
            for (gsize i = 0; i < inner; i++)
                copy_elem(c, (o * idx->numel + j) * inner + i, x, (o * (gsize)n + (gsize)k) * inner + i);
    }
    return g_steal_pointer(&c);
}

static TpOnnxConst *
fold_unsqueeze(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error);
    const gint64 *axes;
    gssize n_axes;
    gboolean added[MAX_DIMS] = {FALSE};
    gint64 dims[MAX_DIMS];

    if (x == NULL || !int_list(f, 1, 13, "axes", &axes, &n_axes, error))
        return NULL;
    if (n_axes < 0)
        return fold_error(f, error, TP_ONNX_ERROR_INVALID, "it has no axes");
    int rank = x->ndim + (int)n_axes;
    if (rank > MAX_DIMS)
        return fold_error(f, error, TP_ONNX_ERROR_UNSUPPORTED, "the result has rank %d", rank);
    for (gssize i = 0; i < n_axes; i++) {
        int a;
        if (!norm_axis(f, axes[i], rank, &a, error))
            return NULL;
        if (added[a])
            return fold_error(f, error, TP_ONNX_ERROR_INVALID, "axis %d is repeated", a);
        added[a] = TRUE;
    }
    for (int i = 0, j = 0; i < rank; i++)
        dims[i] = added[i] ? 1 : x->dims[j++];
    TpOnnxConst *c = const_new(rank, dims, x->f != NULL);
    for (gsize i = 0; i < x->numel; i++)
        copy_elem(c, i, x, i);
    return c;
}

static TpOnnxConst *
fold_squeeze(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error);
    const gint64 *axes;
    gssize n_axes;
    gboolean drop[MAX_DIMS] = {FALSE};
    gint64 dims[MAX_DIMS];
    int rank = 0;

    if (x == NULL || !int_list(f, 1, 13, "axes", &axes, &n_axes, error))
        return NULL;
    for (int i = 0; n_axes < 0 && i < x->ndim; i++)
        drop[i] = x->dims[i] == 1;
    for (gssize i = 0; i < n_axes; i++) {
        int a;
        if (!norm_axis(f, axes[i], x->ndim, &a, error))
            return NULL;
        if (x->dims[a] != 1)
            return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                              "axis %d has size %" G_GINT64_FORMAT ", not 1", a, x->dims[a]);
        drop[a] = TRUE;
    }
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i])
            dims[rank++] = x->dims[i];
    TpOnnxConst *c = const_new(rank, dims, x->f != NULL);
    for (gsize i = 0; i < x->numel; i++)
        copy_elem(c, i, x, i);
    return c;
}

static TpOnnxConst *
fold_concat(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error);
    gint64 dims[MAX_DIMS];
    int axis;

    if (x == NULL || !norm_axis(f, attr_int(f, "axis", 0), x->ndim, &axis, error))
        return NULL;
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = 0;
    for (gsize k = 0; k < f->n_in; k++) {
        const TpOnnxConst *y = input(f, k, error);
        if (y == NULL)
            return NULL;
        gboolean same = y->ndim == x->ndim && (y->f != NULL) == (x->f != NULL);
        for (int i = 0; same && i < x->ndim; i++)
            same = i == axis || y->dims[i] == x->dims[i];
        if (!same)
            return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                              "input %zu differs from input 0 in type or shape", k);
        dims[axis] += y->dims[axis];
    }
    gsize outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= (gsize)x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= (gsize)x->dims[i];
    TpOnnxConst *c = const_new(x->ndim, dims, x->f != NULL);
    gsize at = 0;
    for (gsize k = 0; k < f->n_in; k++) {
        gsize span = (gsize)f->in[k]->dims[axis] * inner;
        for (gsize o = 0; o < outer; o++)
            for (gsize i = 0; i < span; i++)
                copy_elem(c, o * (gsize)dims[axis] * inner + at + i, f->in[k], o * span + i);
        at += span;
    }
    return c;
}

typedef enum { ADD, SUB, MUL, DIV } Arith;

/* Add, Sub, Mul, Div with NumPy broadcasting; integer Div truncates. */
static TpOnnxConst *
fold_arith(const TpOnnxFold *f, Arith op, GError **error)
{
    const TpOnnxConst *a = input(f, 0, error), *b = a ? input(f, 1, error) : NULL;
    gint64 dims[MAX_DIMS], index[MAX_DIMS] = {0};

    if (b == NULL)
        return NULL;
    if ((a->f != NULL) != (b->f != NULL))
        return fold_error(f, error, TP_ONNX_ERROR_INVALID, "its inputs differ in type");
    int rank = MAX(a->ndim, b->ndim);
    for (int i = 0; i < rank; i++) {
        gint64 da = i - (rank - a->ndim) >= 0 ? a->dims[i - (rank - a->ndim)] : 1;
        gint64 db = i - (rank - b->ndim) >= 0 ? b->dims[i - (rank - b->ndim)] : 1;
        if (da != db && da != 1 && db != 1)
            return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                              "shapes do not broadcast (%" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                              " in dimension %d)",
                              da, db, i);
        dims[i] = da == 1 ? db : da;
    }
    g_autoptr(TpOnnxConst) c = const_new(rank, dims, a->f != NULL);
    for (gsize o = 0; o < c->numel; o++) {
        gsize ia = 0, ib = 0;
        for (int i = 0; i < rank; i++) {
            int ja = i - (rank - a->ndim), jb = i - (rank - b->ndim);
            if (ja >= 0)
                ia = ia * (gsize)a->dims[ja] + (a->dims[ja] == 1 ? 0 : (gsize)index[i]);
            if (jb >= 0)
                ib = ib * (gsize)b->dims[jb] + (b->dims[jb] == 1 ? 0 : (gsize)index[i]);
        }
        if (c->f != NULL) {
            float x = a->f[ia], y = b->f[ib];
            c->f[o] = op == ADD ? x + y : op == SUB ? x - y : op == MUL ? x * y : x / y;
        } else {
            gint64 x = a->i64[ia], y = b->i64[ib];
            if (x == TP_ONNX_BATCH || y == TP_ONNX_BATCH)
                return batch_error(f, error);
            if (op == DIV && y == 0)
                return fold_error(f, error, TP_ONNX_ERROR_INVALID, "it divides by zero");
            c->i64[o] = op == ADD ? x + y : op == SUB ? x - y : op == MUL ? x * y : x / y;
        }
        for (int i = rank - 1; i >= 0 && ++index[i] == dims[i]; i--)
            index[i] = 0;
    }
    return g_steal_pointer(&c);
}

static TpOnnxConst *
fold_add(const TpOnnxFold *f, GError **error)
{
    return fold_arith(f, ADD, error);
}

static TpOnnxConst *
fold_sub(const TpOnnxFold *f, GError **error)
{
    return fold_arith(f, SUB, error);
}

static TpOnnxConst *
fold_mul(const TpOnnxFold *f, GError **error)
{
    return fold_arith(f, MUL, error);
}

static TpOnnxConst *
fold_div(const TpOnnxFold *f, GError **error)
{
    return fold_arith(f, DIV, error);
}

/* Cast between float32 and int64 (float to int64 truncates). */
static TpOnnxConst *
fold_cast(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error);
    gint64 to = attr_int(f, "to", 0);

    if (x == NULL)
        return NULL;
    if (to != ONNX_FLOAT && to != ONNX_INT64)
        return fold_error(f, error, TP_ONNX_ERROR_UNSUPPORTED,
                          "cast to data type %" G_GINT64_FORMAT
                          " is not supported; taskprune folds float32 (1) and int64 (7)",
                          to);
    g_autoptr(TpOnnxConst) c = const_new(x->ndim, x->dims, to == ONNX_FLOAT);
    for (gsize i = 0; i < x->numel; i++) {
        if (x->i64 != NULL && x->i64[i] == TP_ONNX_BATCH && to == ONNX_FLOAT)
            return batch_error(f, error);
        if (c->f != NULL)
            c->f[i] = x->f != NULL ? x->f[i] : (float)x->i64[i];
        else
            c->i64[i] = x->i64 != NULL ? x->i64[i] : (gint64)x->f[i];
    }
    return g_steal_pointer(&c);
}

/* Slice with starts, ends, axes and steps as inputs (opset 10 on) or
 * attributes (before), clamped as ONNX says. */
static TpOnnxConst *
fold_slice(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *x = input(f, 0, error);
    const gint64 *starts, *ends, *axes, *steps;
    gssize n, n_ends, n_axes, n_steps;
    gint64 start[MAX_DIMS], step[MAX_DIMS], dims[MAX_DIMS], index[MAX_DIMS] = {0};

    if (x == NULL || !int_list(f, 1, 10, "starts", &starts, &n, error) ||
        !int_list(f, 2, 10, "ends", &ends, &n_ends, error) ||
        !int_list(f, 3, 10, "axes", &axes, &n_axes, error) ||
        !int_list(f, 4, 10, "steps", &steps, &n_steps, error))
        return NULL;
    if (n < 0 || n != n_ends || (n_axes >= 0 && n_axes != n) || (n_steps >= 0 && n_steps != n))
        return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                          "starts, ends, axes and steps must have one length");
    for (int i = 0; i < x->ndim; i++) {
        start[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    for (gssize k = 0; k < n; k++) {
        int a;
        if (!norm_axis(f, n_axes >= 0 ? axes[k] : k, x->ndim, &a, error))
            return NULL;
        gint64 d = x->dims[a], s = n_steps >= 0 ? steps[k] : 1, b = starts[k], e = ends[k];
        if (s == 0)
            return fold_error(f, error, TP_ONNX_ERROR_INVALID, "a step is 0");
        b += b < 0 ? d : 0;
        e += e < 0 ? d : 0;
        b = s > 0 ? CLAMP(b, 0, d) : CLAMP(b, 0, d - 1);
        e = s > 0 ? CLAMP(e, 0, d) : CLAMP(e, -1, d - 1);
        start[a] = b;
        step[a] = s;
        dims[a] = s > 0 ? MAX((e - b + s - 1) / s, 0) : MAX((b - e - s - 1) / -s, 0);
    }
    TpOnnxConst *c = const_new(x->ndim, dims, x->f != NULL);
    for (gsize o = 0; o < c->numel; o++) {
        gsize si = 0;
        for (int i = 0; i < x->ndim; i++)
            si = si * (gsize)x->dims[i] + (gsize)(start[i] + index[i] * step[i]);
        copy_elem(c, o, x, si);
        for (int i = x->ndim - 1; i >= 0 && ++index[i] == dims[i]; i--)
            index[i] = 0;
    }
    return c;
}

/* A tensor of the given shape filled with the one value of attribute
 * "value" (float32 or int64; float 0 when absent). */
static TpOnnxConst *
fold_constant_of_shape(const TpOnnxFold *f, GError **error)
{
    const TpOnnxConst *shape = input(f, 0, error);
    const Onnx__AttributeProto *a = find_attr(f, "value");
    const Onnx__TensorProto *t = a != NULL ? a->t : NULL;
    gint64 dims[MAX_DIMS];
    gint64 iv = 0;
    float fv = 0.0f;

    if (shape == NULL)
        return NULL;
    if (shape->i64 == NULL || shape->ndim != 1 || shape->numel > (gsize)MAX_DIMS)
        return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                          "the shape must be a 1-D int64 tensor of at most %d values", MAX_DIMS);
    gsize numel = 1;
    for (gsize i = 0; i < shape->numel; i++) {
        if (shape->i64[i] == TP_ONNX_BATCH)
            return batch_error(f, error);
        if (shape->i64[i] < 0 || (shape->i64[i] > 0 && numel > (G_MAXSIZE / 8) / (gsize)shape->i64[i]))
            return fold_error(f, error, TP_ONNX_ERROR_INVALID,
                              "dimension %" G_GINT64_FORMAT " is invalid", shape->i64[i]);
        numel *= (gsize)shape->i64[i];
        dims[i] = shape->i64[i];
    }
    gboolean is_float = t == NULL || t->data_type == ONNX_FLOAT;
    if (t != NULL) {
        gsize elsize = is_float ? 4 : 8;
        if (t->data_type != ONNX_FLOAT && t->data_type != ONNX_INT64)
            return fold_error(f, error, TP_ONNX_ERROR_UNSUPPORTED,
                              "the value has data type %d; taskprune folds float32 (1) and int64 (7)",
                              t->data_type);
        if (t->has_raw_data && t->raw_data.len == elsize)
            memcpy(is_float ? (void *)&fv : (void *)&iv, t->raw_data.data, elsize);
        else if (is_float && t->n_float_data == 1)
            fv = t->float_data[0];
        else if (!is_float && t->n_int64_data == 1)
            iv = t->int64_data[0];
        else
            return fold_error(f, error, TP_ONNX_ERROR_INVALID, "the value must hold one element");
    }
    TpOnnxConst *c = const_new((int)shape->numel, dims, is_float);
    for (gsize i = 0; i < c->numel; i++) {
        if (is_float)
            c->f[i] = fv;
        else
            c->i64[i] = iv;
    }
    return c;
}

static const struct {
    const char *op_type;
    TpOnnxFoldFunc fold;
} folds[] = {
    {"Shape", fold_shape},
    {"Gather", fold_gather},
    {"Unsqueeze", fold_unsqueeze},
    {"Squeeze", fold_squeeze},
    {"Concat", fold_concat},
    {"Add", fold_add},
    {"Sub", fold_sub},
    {"Mul", fold_mul},
    {"Div", fold_div},
    {"Cast", fold_cast},
    {"Slice", fold_slice},
    {"ConstantOfShape", fold_constant_of_shape},
};

TpOnnxFoldFunc
tp_onnx_fold_lookup(const char *op_type)
{
    for (gsize i = 0; i < G_N_ELEMENTS(folds); i++)
        if (g_strcmp0(folds[i].op_type, op_type) == 0)
            return folds[i].fold;
    return NULL;
}
