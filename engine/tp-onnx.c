/* tp-onnx.c — ONNX import: a ModelProto parsed with protobuf-c (C generated at
 * build time from the system's onnx.proto) turned into a TpModel. The forms
 * accepted are listed in tp-onnx.h; every refusal names the node and op.
 * This file walks the graph and keeps the constants; a node whose type is an
 * engine op is read by that op's class (import(), engine/ops/) through the
 * TpOnnxReader below, and the few types that are no engine op are rewritten
 * here (rewrites[]). A node of a type tp-onnx-fold.c folds whose inputs are
 * constants becomes a constant first. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "tp-onnx-fold.h"
#include "tp-onnx.h"
#include "tp-op.h"

G_DEFINE_QUARK(tp_onnx_error, tp_onnx_error)

#define MIN_OPSET 6
#define MAX_OPSET 17
#define MAX_DIMS ((int)G_N_ELEMENTS(((Const *)NULL)->dims))

enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };

/* A constant: an initializer or a Constant node's value, on the host. */
typedef TpOnnxConst Const;

typedef struct {
    const char *source;
    const char *dir;
    gint64 opset;
    const Onnx__GraphProto *graph;
    TpModel *model;
    GHashTable *values; /* ONNX name -> engine value id + 1 */
    GHashTable *consts; /* ONNX name -> Const */
    GHashTable *done;   /* nodes already absorbed by an earlier one */
    GHashTable *pads;   /* ONNX name -> int[4] zero padding a Pad left to its consumer */
    int input_rank;     /* the graph input's rank (a rank-3 [N, C, L] is held as [C, L, 1]) */
} Importer;

static Const *
const_dup(const Const *c)
{
    Const *copy = g_memdup2(c, sizeof *c);

    copy->f = c->f != NULL ? g_memdup2(c->f, sizeof(float) * MAX(c->numel, 1)) : NULL;
    copy->i64 = c->i64 != NULL ? g_memdup2(c->i64, sizeof(gint64) * MAX(c->numel, 1)) : NULL;
    return copy;
}

/* Sets an error about node: "Conv node 'conv1': ...". */
G_GNUC_PRINTF(4, 5)
static gboolean
node_error(GError **error, int code, const Onnx__NodeProto *node, const char *format, ...)
{
    va_list args;
    g_autofree char *message = NULL;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, TP_ONNX_ERROR, code, "%s node '%s': %s", node->op_type,
                node->name && *node->name ? node->name : "(unnamed)", message);
    return FALSE;
}

char *
tp_onnx_dims_to_string(int ndim, const gint64 *dims)
{
    GString *s = g_string_new("[");
    for (int i = 0; i < ndim; i++)
        if (dims[i] == TP_ONNX_BATCH)
            g_string_append_printf(s, "%sbatch", i ? ", " : "");
        else
            g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", dims[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- tensors */

/* A tensor's name for messages (a Constant's value often has none). */
static const char *
tensor_name(const Onnx__TensorProto *t)
{
    return t->name != NULL && *t->name != '\0' ? t->name : "(unnamed)";
}

/* Reads an external-data tensor's bytes from a file inside im->dir. */
static guint8 *
read_external(Importer *im, const Onnx__TensorProto *t, gsize want, GError **error)
{
    const char *location = NULL;
    guint64 offset = 0, length = want;
    g_autofree char *path = NULL, *real_dir = NULL, *real_path = NULL;
    g_autoptr(GMappedFile) file = NULL;
    g_autoptr(GError) local = NULL;

    for (gsize i = 0; i < t->n_external_data; i++) {
        const char *key = t->external_data[i]->key, *value = t->external_data[i]->value;
        if (key == NULL || value == NULL)
            continue;
        if (g_str_equal(key, "location"))
            location = value;
        else if (g_str_equal(key, "offset"))
            offset = g_ascii_strtoull(value, NULL, 10);
        else if (g_str_equal(key, "length"))
            length = g_ascii_strtoull(value, NULL, 10);
    }
    if (location == NULL || im->dir == NULL || g_path_is_absolute(location) ||
        strstr(location, "..") != NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                    "tensor '%s': external data '%s' refused: it must be a relative path "
                    "inside the model's folder",
                    tensor_name(t), location ? location : "(no location)");
        return NULL;
    }
    path = g_build_filename(im->dir, location, NULL);
    real_dir = realpath(im->dir, NULL);
    real_path = realpath(path, NULL);
    if (real_dir == NULL || real_path == NULL || !g_str_has_prefix(real_path, real_dir) ||
        real_path[strlen(real_dir)] != '/') {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                    "tensor '%s': external data file %s is missing or outside the model's "
                    "folder",
                    tensor_name(t), path);
        return NULL;
    }
    file = g_mapped_file_new(real_path, FALSE, &local);
    if (file == NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO, "tensor '%s': %s", tensor_name(t),
                    local->message);
        return NULL;
    }
    if (length != want || offset > g_mapped_file_get_length(file) ||
        g_mapped_file_get_length(file) - offset < want) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                    "tensor '%s': external data in %s holds %" G_GSIZE_FORMAT
                    " bytes at offset %" G_GUINT64_FORMAT ", %" G_GSIZE_FORMAT " are needed",
                    tensor_name(t), path, g_mapped_file_get_length(file), offset, want);
        return NULL;
    }
    return g_memdup2(g_mapped_file_get_contents(file) + offset, want);
}

/* Copies a float32 or int64 TensorProto to the host. */
static Const *
read_tensor(Importer *im, const Onnx__TensorProto *t, GError **error)
{
    g_autoptr(GError) local = NULL;
    gsize elsize, numel = 1;
    g_autofree guint8 *bytes = NULL;
    Const *c;

    if (t->n_dims > MAX_DIMS) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "tensor '%s' has %zu dimensions (at most %d)", tensor_name(t), t->n_dims, MAX_DIMS);
        return NULL;
    }
    for (gsize i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] > 0 && numel > (G_MAXSIZE / 8) / (gsize)t->dims[i])) {
            g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                        "tensor '%s' has an invalid dimension %" G_GINT64_FORMAT, tensor_name(t),
                        t->dims[i]);
            return NULL;
        }
        numel *= (gsize)t->dims[i];
    }
    if (t->data_type == ONNX_FLOAT)
        elsize = 4;
    else if (t->data_type == ONNX_INT64)
        elsize = 8;
    else {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "tensor '%s' has data type %d; taskprune reads float32 (1) and int64 (7)",
                    tensor_name(t), t->data_type);
        return NULL;
    }

    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        bytes = read_external(im, t, numel * elsize, error);
        if (bytes == NULL)
            return NULL;
    } else if (t->has_raw_data && t->raw_data.len > 0) {
        if (t->raw_data.len != numel * elsize) {
            g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                        "tensor '%s' has %zu bytes of raw data, its shape needs %" G_GSIZE_FORMAT,
                        tensor_name(t), t->raw_data.len, numel * elsize);
            return NULL;
        }
        bytes = g_memdup2(t->raw_data.data, t->raw_data.len);
    } else {
        gsize have = elsize == 4 ? t->n_float_data : t->n_int64_data;
        const void *src = elsize == 4 ? (const void *)t->float_data : (const void *)t->int64_data;
        if (have != numel) {
            g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                        "tensor '%s' has %zu values, its shape needs %" G_GSIZE_FORMAT, tensor_name(t),
                        have, numel);
            return NULL;
        }
        bytes = g_memdup2(src, numel * elsize);
    }

    c = g_new0(Const, 1);
    c->ndim = (int)t->n_dims;
    for (int i = 0; i < c->ndim; i++)
        c->dims[i] = t->dims[i];
    c->numel = numel;
    /* ONNX stores little-endian; so does every host taskprune runs on. */
    G_STATIC_ASSERT(G_BYTE_ORDER == G_LITTLE_ENDIAN);
    if (elsize == 4)
        c->f = (float *)g_steal_pointer(&bytes);
    else
        c->i64 = (gint64 *)g_steal_pointer(&bytes);
    return c;
}

/* ---------------------------------------------------------------- attributes */

static const Onnx__AttributeProto *
find_attr(const Onnx__NodeProto *node, const char *name)
{
    for (gsize i = 0; i < node->n_attribute; i++)
        if (g_strcmp0(node->attribute[i]->name, name) == 0)
            return node->attribute[i];
    return NULL;
}

/* Refuses any attribute not in the NULL-terminated list `known`. */
static gboolean
check_attrs(const Onnx__NodeProto *node, const char *const *known, GError **error)
{
    for (gsize i = 0; i < node->n_attribute; i++)
        if (!g_strv_contains(known, node->attribute[i]->name))
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "attribute '%s' is not supported", node->attribute[i]->name);
    return TRUE;
}

static gboolean
attr_int(const Onnx__NodeProto *node, const char *name, gint64 fallback, gint64 *out,
         GError **error)
{
    const Onnx__AttributeProto *a = find_attr(node, name);

    if (a == NULL) {
        *out = fallback;
        return TRUE;
    }
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "attribute '%s' is not an int", name);
    *out = a->i;
    return TRUE;
}

static gboolean
attr_float(const Onnx__NodeProto *node, const char *name, float fallback, float *out,
           GError **error)
{
    const Onnx__AttributeProto *a = find_attr(node, name);

    if (a == NULL) {
        *out = fallback;
        return TRUE;
    }
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "attribute '%s' is not a float",
                          name);
    *out = a->f;
    return TRUE;
}

/* Reads an ints attribute of exactly `count` values, each at least `min`,
 * into out (as int), or leaves out alone when absent. */
static gboolean
attr_ints(const Onnx__NodeProto *node, const char *name, int count, int min, int *out,
          GError **error)
{
    const Onnx__AttributeProto *a = find_attr(node, name);

    if (a == NULL)
        return TRUE;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || a->n_ints != (gsize)count)
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "attribute '%s' must hold %d ints (2-D only)", name, count);
    for (int i = 0; i < count; i++) {
        if (a->ints[i] < min || a->ints[i] > G_MAXINT / 2)
            return node_error(error, TP_ONNX_ERROR_INVALID, node,
                              "attribute '%s' holds %" G_GINT64_FORMAT
                              ", outside %d to %d",
                              name, a->ints[i], min, G_MAXINT / 2);
        out[i] = (int)a->ints[i];
    }
    return TRUE;
}

/* Applies auto_pad (NOTSET, VALID, SAME_UPPER, SAME_LOWER) to pads. */
static gboolean
apply_auto_pad(const Onnx__NodeProto *node, const TpShape *in, const int *kernel, const int *stride,
               const int *dilation, int *pads, GError **error)
{
    const Onnx__AttributeProto *a = find_attr(node, "auto_pad");
    g_autofree char *mode = NULL;

    if (a == NULL)
        return TRUE;
    mode = g_strndup((const char *)a->s.data, a->s.len);
    if (g_str_equal(mode, "NOTSET"))
        return TRUE;
    if (g_str_equal(mode, "VALID")) {
        memset(pads, 0, 4 * sizeof(int));
        return TRUE;
    }
    if (!g_str_equal(mode, "SAME_UPPER") && !g_str_equal(mode, "SAME_LOWER"))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node, "auto_pad '%s' is not known",
                          mode);
    for (int d = 0; d < 2; d++) {
        int size = in->dim[1 + d];
        int out = (size + stride[d] - 1) / stride[d];
        int total = MAX(0, (out - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 - size);
        int small = total / 2, large = total - small;
        gboolean upper = g_str_equal(mode, "SAME_UPPER");
        pads[d] = upper ? small : large;
        pads[d + 2] = upper ? large : small;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- inputs */

static const char *
input_name(const Onnx__NodeProto *node, gsize i)
{
    return i < node->n_input && node->input[i][0] != '\0' ? node->input[i] : NULL;
}

/* The engine value behind input i of node. */
static gboolean
get_value(Importer *im, const Onnx__NodeProto *node, gsize i, int *out, GError **error)
{
    const char *name = input_name(node, i);
    gpointer id;

    if (name == NULL)
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "input %zu is missing", i);
    if (g_hash_table_lookup_extended(im->values, name, NULL, &id)) {
        *out = GPOINTER_TO_INT(id) - 1;
        return TRUE;
    }
    if (g_hash_table_contains(im->consts, name))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "input '%s' is a constant where taskprune needs an activation", name);
    return node_error(error, TP_ONNX_ERROR_INVALID, node,
                      "input '%s' is not produced by any earlier node", name);
}

/* The constant behind input i of node (NULL and no error when the input is
 * optional and absent). */
static gboolean
get_const(Importer *im, const Onnx__NodeProto *node, gsize i, gboolean optional, const Const **out,
          GError **error)
{
    const char *name = input_name(node, i);

    *out = NULL;
    if (name == NULL)
        return optional ? TRUE
                        : node_error(error, TP_ONNX_ERROR_INVALID, node, "input %zu is missing", i);
    *out = g_hash_table_lookup(im->consts, name);
    if (*out == NULL && g_hash_table_contains(im->values, name))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "input '%s' must be an initializer or Constant (weights computed at "
                          "run time are not supported)",
                          name);
    if (*out == NULL)
        return node_error(error, TP_ONNX_ERROR_INVALID, node,
                          "input '%s' is neither an initializer nor produced by a node", name);
    if ((*out)->f == NULL)
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "input '%s' must be float32", name);
    return TRUE;
}

/* Checks that constant c has exactly the given dims. */
static gboolean
check_dims(const Onnx__NodeProto *node, const char *what, const Const *c, int ndim,
           const gint64 *dims, GError **error)
{
    gboolean ok = c->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = c->dims[i] == dims[i];
    if (!ok) {
        g_autofree char *have = tp_onnx_dims_to_string(c->ndim, c->dims);
        g_autofree char *want = tp_onnx_dims_to_string(ndim, dims);
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "%s has shape %s, %s is needed", what,
                          have, want);
    }
    return TRUE;
}

static void
set_output(Importer *im, const Onnx__NodeProto *node, int value)
{
    g_hash_table_insert(im->values, node->output[0], GINT_TO_POINTER(value + 1));
}

/* Only output 0 may be used (Dropout's mask, MaxPool's indices may not). */
static gboolean
check_outputs(const Onnx__NodeProto *node, GError **error)
{
    if (node->n_output < 1 || node->output[0][0] == '\0')
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "it has no output");
    for (gsize i = 1; i < node->n_output; i++)
        if (node->output[i][0] != '\0')
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "output %zu ('%s') is not supported", i, node->output[i]);
    return TRUE;
}

/* Adds op to the model and uploads its parameters from host arrays (NULL
 * entries are skipped). */
static gboolean
add_op(Importer *im, const Onnx__NodeProto *node, TpOpType op, const int *inputs,
       const TpOpAttrs *attrs, const float *const *params, int n_params, GError **error)
{
    g_autoptr(GError) local = NULL;
    const char *name = node->name && *node->name ? node->name : NULL;
    int id = tp_model_add(im->model, op, name, inputs, attrs, &local);
    guint index;

    if (id < 0)
        return node_error(error, TP_ONNX_ERROR_INVALID, node, "%s", local->message);
    index = tp_model_get_n_nodes(im->model) - 1;
    for (int i = 0; i < n_params; i++) {
        if (params[i] == NULL)
            continue;
        if (!tp_tensor_upload(tp_model_get_param(im->model, index, i), params[i], error))
            return FALSE;
    }
    set_output(im, node, id);
    return TRUE;
}

/* ---------------------------------------------------------------- op import (tp-op.h) */

struct _TpOnnxReader {
    Importer *im;
    const Onnx__NodeProto *node;
    int alias;          /* the value the output is, without a node; -1: none */
    GPtrArray *scratch; /* host arrays from tp_onnx_reader_alloc() */
};

gboolean
tp_onnx_reader_attrs(TpOnnxReader *r, const char *const *known, GError **error)
{
    return check_attrs(r->node, known, error) && check_outputs(r->node, error);
}

gboolean
tp_onnx_reader_has_attr(TpOnnxReader *r, const char *name)
{
    return find_attr(r->node, name) != NULL;
}

gboolean
tp_onnx_reader_int(TpOnnxReader *r, const char *name, gint64 fallback, gint64 *out,
                   GError **error)
{
    return attr_int(r->node, name, fallback, out, error);
}

gboolean
tp_onnx_reader_float(TpOnnxReader *r, const char *name, float fallback, float *out,
                     GError **error)
{
    return attr_float(r->node, name, fallback, out, error);
}

int
tp_onnx_reader_rank(TpOnnxReader *r, int v)
{
    const TpShape *shape = tp_model_get_shape(r->im->model, v);

    return r->im->input_rank == 3 && shape->ndim == 3 ? 3 : shape->ndim + 1;
}

int
tp_onnx_reader_n_ints(TpOnnxReader *r, const char *name)
{
    const Onnx__AttributeProto *a = find_attr(r->node, name);

    if (a == NULL || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ||
        a->n_ints > G_MAXINT / 2)
        return -1;
    return (int)a->n_ints;
}

gboolean
tp_onnx_reader_ints(TpOnnxReader *r, const char *name, int count, int min, int *out,
                    GError **error)
{
    return attr_ints(r->node, name, count, min, out, error);
}

gboolean
tp_onnx_reader_auto_pad(TpOnnxReader *r, const TpShape *in, const int *kernel, const int *stride,
                        const int *dilation, int *pads, GError **error)
{
    return apply_auto_pad(r->node, in, kernel, stride, dilation, pads, error);
}

const int *
tp_onnx_reader_folded_pads(TpOnnxReader *r)
{
    const char *name = input_name(r->node, 0);

    return name != NULL ? g_hash_table_lookup(r->im->pads, name) : NULL;
}

gint64
tp_onnx_reader_opset(TpOnnxReader *r)
{
    return r->im->opset;
}

gboolean
tp_onnx_reader_value(TpOnnxReader *r, int i, int *out, GError **error)
{
    return get_value(r->im, r->node, (gsize)i, out, error);
}

const TpShape *
tp_onnx_reader_shape(TpOnnxReader *r, int v)
{
    return tp_model_get_shape(r->im->model, v);
}

gboolean
tp_onnx_reader_param(TpOnnxReader *r, int i, gboolean optional, const TpOnnxConst **out,
                     GError **error)
{
    return get_const(r->im, r->node, (gsize)i, optional, out, error);
}

const TpOnnxConst *
tp_onnx_reader_constant(TpOnnxReader *r, int i)
{
    const char *name = input_name(r->node, (gsize)i);

    return name != NULL ? g_hash_table_lookup(r->im->consts, name) : NULL;
}

gboolean
tp_onnx_reader_has_input(TpOnnxReader *r, int i)
{
    return input_name(r->node, (gsize)i) != NULL;
}

const char *
tp_onnx_reader_input_name(TpOnnxReader *r, int i)
{
    return input_name(r->node, (gsize)i);
}

gboolean
tp_onnx_reader_check_dims(TpOnnxReader *r, const char *what, const TpOnnxConst *c, int ndim,
                          const gint64 *dims, GError **error)
{
    return check_dims(r->node, what, c, ndim, dims, error);
}

float *
tp_onnx_reader_alloc(TpOnnxReader *r, gsize n)
{
    float *data = g_new0(float, MAX(n, 1));

    g_ptr_array_add(r->scratch, data);
    return data;
}

void
tp_onnx_reader_alias(TpOnnxReader *r, int v)
{
    r->alias = v;
}

gboolean
tp_onnx_reader_error(TpOnnxReader *r, GError **error, int code, const char *format, ...)
{
    va_list args;
    g_autofree char *message = NULL;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    return node_error(error, code, r->node, "%s", message);
}

/* Imports node as engine op `op` through its class's import(). */
static gboolean
import_op(Importer *im, const Onnx__NodeProto *node, TpOpType op, GError **error)
{
    g_autoptr(GPtrArray) scratch = g_ptr_array_new_with_free_func(g_free);
    TpOnnxReader r = {im, node, -1, scratch};
    TpOpAttrs attrs = {0};
    int inputs[TP_NODE_MAX_INPUTS] = {0};
    const float *params[TP_NODE_MAX_PARAMS] = {NULL};

    if (!tp_op_class_get(op)->import(&r, &attrs, inputs, params, error))
        return FALSE;
    if (r.alias >= 0) {
        set_output(im, node, r.alias);
        return TRUE;
    }
    return add_op(im, node, op, inputs, &attrs, params, TP_NODE_MAX_PARAMS, error);
}

/* ---------------------------------------------------------------- ops */

typedef gboolean (*ImportFunc)(Importer *im, const Onnx__NodeProto *node, GError **error);

/* Flattens x to [batch, features], or passes a value that is flat already. */
static gboolean
flatten_to(Importer *im, const Onnx__NodeProto *node, int x, GError **error)
{
    if (tp_model_get_shape(im->model, x)->ndim == 1) {
        set_output(im, node, x);
        return TRUE;
    }
    return add_op(im, node, TP_OP_FLATTEN, &x, NULL, NULL, 0, error);
}

static gboolean
import_reshape(Importer *im, const Onnx__NodeProto *node, GError **error)
{
    static const char *const known[] = {"allowzero", NULL};
    const char *shape_name = input_name(node, 1);
    const Const *shape = shape_name ? g_hash_table_lookup(im->consts, shape_name) : NULL;
    gint64 allowzero = 0;
    int x;

    if (!check_attrs(node, known, error) || !check_outputs(node, error) ||
        !get_value(im, node, 0, &x, error) || !attr_int(node, "allowzero", 0, &allowzero, error))
        return FALSE;
    if (shape == NULL || shape->i64 == NULL)
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "the shape must be a constant int64 tensor (a shape computed at run "
                          "time cannot be resolved; export with torch.flatten)");
    const TpShape *in = tp_model_get_shape(im->model, x);
    gint64 features = 1;
    for (int i = 0; i < in->ndim; i++)
        features *= in->dim[i];
    /* The batch size folded from a Shape: "copy that dimension". */
    gboolean batch = shape->numel >= 1 && shape->i64[0] == TP_ONNX_BATCH && !allowzero;
    if (shape->numel != 2 || (!batch && shape->i64[0] < -1) ||
        (shape->i64[1] != -1 && shape->i64[1] != features) ||
        (shape->i64[1] == -1 && shape->i64[0] == -1)) {
        g_autofree char *s = tp_onnx_dims_to_string((int)shape->numel, shape->i64);
        return node_error(
            error, TP_ONNX_ERROR_UNSUPPORTED, node,
            "reshape to %s is not supported: only flattening to [batch, %" G_GINT64_FORMAT "] is",
            s, features);
    }
    return flatten_to(im, node, x, error);
}

/* A linear layer y = x Wᵀ + b from W as [out, in] (already scaled) and an
 * optional bias, both host arrays. */
static gboolean
add_linear(Importer *im, const Onnx__NodeProto *node, int x, int out, const float *w,
           const float *b, GError **error)
{
    TpOpAttrs attrs = {0};
    const float *params[2] = {w, b};

    if (tp_model_get_shape(im->model, x)->ndim != 1)
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "its input must be [batch, features]; flatten it first");
    attrs.gemm.out_features = out;
    attrs.gemm.bias = b != NULL;
    return add_op(im, node, TP_OP_GEMM, &x, &attrs, params, 2, error);
}

/* The only node reading `name`, or NULL when there are none or several. */
static const Onnx__NodeProto *
sole_consumer(Importer *im, const char *name)
{
    const Onnx__NodeProto *found = NULL;

    for (gsize i = 0; i < im->graph->n_node; i++) {
        const Onnx__NodeProto *n = im->graph->node[i];
        for (gsize j = 0; j < n->n_input; j++) {
            if (g_strcmp0(n->input[j], name) == 0) {
                if (found != NULL)
                    return NULL;
                found = n;
            }
        }
    }
    for (gsize i = 0; i < im->graph->n_output; i++)
        if (g_strcmp0(im->graph->output[i]->name, name) == 0)
            return NULL;
    return found;
}

/* MatMul by a constant [in, out], with the Add of a constant [out] that
 * follows it (PyTorch's linear layer without Gemm) folded in as the bias. */
static gboolean
import_matmul(Importer *im, const Onnx__NodeProto *node, GError **error)
{
    static const char *const known[] = {NULL};
    const Onnx__NodeProto *add;
    const Const *b, *bias = NULL;
    int x;

    if (!check_attrs(node, known, error) || !check_outputs(node, error) ||
        !get_value(im, node, 0, &x, error) || !get_const(im, node, 1, FALSE, &b, error))
        return FALSE;
    const TpShape *in = tp_model_get_shape(im->model, x);
    if (b->ndim != 2 || in->ndim != 1 || b->dims[0] != in->dim[0])
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "only [batch, features] times a constant [features, out] is supported");
    gint64 k = b->dims[0], n = b->dims[1];
    g_autofree float *w = g_new(float, n *k);
    for (gint64 o = 0; o < n; o++)
        for (gint64 i = 0; i < k; i++)
            w[o * k + i] = b->f[i * n + o];

    add = sole_consumer(im, node->output[0]);
    if (add != NULL && g_strcmp0(add->op_type, "Add") == 0 && add->n_input == 2) {
        const char *other =
            g_strcmp0(add->input[0], node->output[0]) == 0 ? add->input[1] : add->input[0];
        bias = g_hash_table_lookup(im->consts, other);
        if (bias != NULL && (bias->f == NULL || bias->numel != (gsize)n))
            bias = NULL;
    }
    if (!add_linear(im, node, x, (int)n, w, bias ? bias->f : NULL, error))
        return FALSE;
    if (bias != NULL) {
        g_hash_table_add(im->done, (gpointer)add);
        g_hash_table_insert(im->values, add->output[0],
                            g_hash_table_lookup(im->values, node->output[0]));
    }
    return TRUE;
}

static gboolean
import_identity(Importer *im, const Onnx__NodeProto *node, GError **error)
{
    static const char *const known[] = {NULL};
    const char *name = input_name(node, 0);
    const Const *c = name != NULL ? g_hash_table_lookup(im->consts, name) : NULL;
    int x;

    if (!check_attrs(node, known, error) || !check_outputs(node, error))
        return FALSE;
    if (c != NULL) {
        /* PyTorch's exporter shares equal initializers through Identity. */
        g_hash_table_insert(im->consts, node->output[0], const_dup(c));
        return TRUE;
    }
    if (!get_value(im, node, 0, &x, error))
        return FALSE;
    set_output(im, node, x);
    return TRUE;
}

/* Pad with zeros: nothing when every pad is 0 (PyTorch puts one before each
 * AveragePool), else folded into the Conv or AveragePool that alone reads it. */
static gboolean
import_pad(Importer *im, const Onnx__NodeProto *node, GError **error)
{
    static const char *const known[] = {"mode", "pads", "value", NULL};
    const Onnx__AttributeProto *mode = find_attr(node, "mode");
    const char *pads_name = input_name(node, 1), *value_name = input_name(node, 2);
    const Onnx__NodeProto *consumer;
    gint64 pads[8] = {0};
    float value = 0.0f;
    int x;

    if (!check_attrs(node, known, error) || !check_outputs(node, error) ||
        !get_value(im, node, 0, &x, error) || !attr_float(node, "value", 0.0f, &value, error))
        return FALSE;
    if (mode != NULL && (mode->s.len != 8 || memcmp(mode->s.data, "constant", 8) != 0))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "only constant (zero) padding is supported");
    if (pads_name != NULL) {
        const Const *c = g_hash_table_lookup(im->consts, pads_name);
        if (c == NULL || c->i64 == NULL || c->numel != 8)
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "the pads must be a constant int64 tensor of 8 values");
        memcpy(pads, c->i64, sizeof(pads));
    } else {
        const Onnx__AttributeProto *a = find_attr(node, "pads");
        if (a == NULL || a->n_ints != 8)
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "the pads must hold 8 values ([N, C, H, W] begins and ends)");
        memcpy(pads, a->ints, sizeof(pads));
    }
    if (value_name != NULL) {
        const Const *c = g_hash_table_lookup(im->consts, value_name);
        if (c == NULL || c->f == NULL || c->numel != 1)
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "the padding value must be a constant float");
        value = c->f[0];
    }
    gboolean zero = TRUE;
    for (int i = 0; i < 8; i++)
        zero = zero && pads[i] == 0;
    if (value != 0.0f || pads[0] || pads[1] || pads[4] || pads[5] || pads[2] < 0 || pads[3] < 0 ||
        pads[6] < 0 || pads[7] < 0 || pads[2] > 64 || pads[3] > 64 || pads[6] > 64 || pads[7] > 64)
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "only small non-negative zero padding of H and W is supported");
    set_output(im, node, x);
    if (zero)
        return TRUE;
    consumer = sole_consumer(im, node->output[0]);
    if (consumer == NULL || (g_strcmp0(consumer->op_type, "Conv") != 0 &&
                             g_strcmp0(consumer->op_type, "AveragePool") != 0))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "zero padding is supported only before the one Conv or AveragePool "
                          "that reads it");
    int *fold = g_new(int, 4);
    fold[0] = (int)pads[2]; /* top, left, bottom, right */
    fold[1] = (int)pads[3];
    fold[2] = (int)pads[6];
    fold[3] = (int)pads[7];
    g_hash_table_insert(im->pads, node->output[0], fold);
    return TRUE;
}

static gboolean
import_constant(Importer *im, const Onnx__NodeProto *node, GError **error)
{
    const Onnx__AttributeProto *a;
    Const *c;

    if (!check_outputs(node, error))
        return FALSE;
    if (node->n_attribute != 1)
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node, "it needs one attribute");
    a = node->attribute[0];
    if (g_str_equal(a->name, "value") && a->t != NULL) {
        c = read_tensor(im, a->t, error);
        if (c == NULL) {
            g_prefix_error(error, "Constant node '%s': ", node->name ? node->name : "");
            return FALSE;
        }
    } else if (g_str_equal(a->name, "value_ints") || g_str_equal(a->name, "value_int")) {
        gboolean many = g_str_equal(a->name, "value_ints");
        c = g_new0(Const, 1);
        c->ndim = many ? 1 : 0;
        c->numel = many ? a->n_ints : 1;
        c->dims[0] = (gint64)c->numel;
        c->i64 = g_memdup2(many ? a->ints : &a->i, sizeof(gint64) * MAX(c->numel, 1));
    } else if (g_str_equal(a->name, "value_float")) {
        c = g_new0(Const, 1);
        c->numel = 1;
        c->f = g_memdup2(&a->f, sizeof(float));
    } else {
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node, "attribute '%s' is not supported",
                          a->name);
    }
    g_hash_table_insert(im->consts, node->output[0], c);
    return TRUE;
}

/* ONNX op types that are no engine op: each rewritten into ops (MatMul into
 * a Gemm, Reshape into a Flatten) or absorbed (Identity, Constant, Pad). An
 * engine op's own type is read by its class's import() (engine/ops/). */
static const struct {
    const char *op_type;
    ImportFunc import;
} rewrites[] = {
    {"Reshape", import_reshape}, {"MatMul", import_matmul}, {"Identity", import_identity},
    {"Constant", import_constant}, {"Pad", import_pad},
};

/* Folds node into a constant when its inputs are constants (Shape: also of
 * an activation); *folded says whether it did. A node that cannot be folded
 * is left to its op class or rewrite, or refused when it has none
 * (can_import FALSE). */
static gboolean
fold_node(Importer *im, const Onnx__NodeProto *node, TpOnnxFoldFunc fold, gboolean can_import,
          gboolean *folded, GError **error)
{
    const TpOnnxConst *in[16] = {NULL};
    TpOnnxFold f = {node, im->opset, in, node->n_input, NULL};
    TpOnnxConst *out;

    *folded = FALSE;
    if (node->n_input > G_N_ELEMENTS(in))
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node, "it has %zu inputs (at most %zu)",
                          node->n_input, G_N_ELEMENTS(in));
    for (gsize i = 0; i < node->n_input; i++) {
        const char *name = input_name(node, i);
        int x;

        if (name == NULL || (in[i] = g_hash_table_lookup(im->consts, name)) != NULL)
            continue;
        if (i == 0 && g_str_equal(node->op_type, "Shape")) {
            if (!get_value(im, node, 0, &x, error))
                return FALSE;
            f.activation = tp_model_get_shape(im->model, x);
            continue;
        }
        if (can_import)
            return TRUE;
        if (!g_hash_table_contains(im->values, name))
            return get_value(im, node, i, &x, error);
        return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                          "input '%s' is an activation: taskprune computes %s only on constants "
                          "(shape arithmetic, folded at import)",
                          name, node->op_type);
    }
    if (!check_outputs(node, error) || (out = fold(&f, error)) == NULL)
        return FALSE;
    g_hash_table_insert(im->consts, node->output[0], out);
    *folded = TRUE;
    return TRUE;
}

/* ---------------------------------------------------------------- graph */

static gboolean
read_opset(Importer *im, const Onnx__ModelProto *proto, GError **error)
{
    im->opset = -1;
    for (gsize i = 0; i < proto->n_opset_import; i++) {
        const char *domain = proto->opset_import[i]->domain;
        if (domain == NULL || *domain == '\0' || g_str_equal(domain, "ai.onnx"))
            im->opset = proto->opset_import[i]->version;
    }
    if (im->opset < MIN_OPSET || im->opset > MAX_OPSET) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "opset %" G_GINT64_FORMAT " is not supported (taskprune reads opsets %d to %d)",
                    im->opset, MIN_OPSET, MAX_OPSET);
        return FALSE;
    }
    return TRUE;
}

/* ONNX's fields are all optional, and protobuf-c leaves an absent string
 * NULL: refuses a graph whose initializers, inputs, outputs, nodes' op types
 * or attributes lack a name, naming what is missing, and one where two nodes
 * share a name (an exported model names its weights after its nodes). */
static gboolean
check_names(Importer *im, GError **error)
{
    const Onnx__GraphProto *g = im->graph;
    g_autoptr(GHashTable) nodes = g_hash_table_new(g_str_hash, g_str_equal);
    const char *missing = NULL;
    gsize index = 0;

    for (gsize i = 0; missing == NULL && i < g->n_initializer; i++)
        if (g->initializer[i]->name == NULL || *g->initializer[i]->name == '\0')
            missing = "initializer", index = i;
    for (gsize i = 0; missing == NULL && i < g->n_input; i++)
        if (g->input[i]->name == NULL || *g->input[i]->name == '\0')
            missing = "graph input", index = i;
    for (gsize i = 0; missing == NULL && i < g->n_output; i++)
        if (g->output[i]->name == NULL || *g->output[i]->name == '\0')
            missing = "graph output", index = i;
    for (gsize i = 0; missing == NULL && i < g->n_node; i++)
        if (g->node[i]->op_type == NULL || *g->node[i]->op_type == '\0')
            missing = "the op type of node", index = i;
    if (missing != NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID, "%s %" G_GSIZE_FORMAT " has no name",
                    missing, index);
        return FALSE;
    }
    for (gsize i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        for (gsize j = 0; j < node->n_attribute; j++)
            if (node->attribute[j]->name == NULL || *node->attribute[j]->name == '\0')
                return node_error(error, TP_ONNX_ERROR_INVALID, node,
                                  "attribute %" G_GSIZE_FORMAT " has no name", j);
        if (node->name == NULL || *node->name == '\0')
            continue;
        if (!g_hash_table_add(nodes, node->name))
            return node_error(error, TP_ONNX_ERROR_INVALID, node,
                              "an earlier node has the same name (node names must be unique)");
    }
    return TRUE;
}

/* Creates the model from the one graph input that is not an initializer:
 * float32 [N, C, H, W] ([N, F] and [N, C, L] read as [C, H, W] with size-1
 * trailing dimensions; a following Flatten makes [N, F] flat again). */
static gboolean
create_model(Importer *im, TpBackend *backend, GError **error)
{
    const Onnx__ValueInfoProto *input = NULL;
    int dims[3] = {1, 1, 1};

    for (gsize i = 0; i < im->graph->n_input; i++) {
        const Onnx__ValueInfoProto *v = im->graph->input[i];
        if (g_hash_table_contains(im->consts, v->name))
            continue;
        if (input != NULL) {
            g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                        "the graph has several inputs ('%s', '%s'); taskprune needs one",
                        input->name, v->name);
            return FALSE;
        }
        input = v;
    }
    if (input == NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "the graph has no input (taskprune needs one image input)");
        return FALSE;
    }
    const Onnx__TypeProto *type = input->type;
    if (type == NULL || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        type->tensor_type->elem_type != ONNX_FLOAT || type->tensor_type->shape == NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "input '%s' must be a float32 tensor of known rank", input->name);
        return FALSE;
    }
    const Onnx__TensorShapeProto *shape = type->tensor_type->shape;
    if (shape->n_dim < 2 || shape->n_dim > 4) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "input '%s' has rank %zu; taskprune reads [N, C, H, W] (or [N, F])",
                    input->name, shape->n_dim);
        return FALSE;
    }
    for (gsize i = 1; i < shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value < 1 || d->dim_value > G_MAXINT / 2) {
            g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                        "input '%s' dimension %zu is dynamic ('%s'); only the batch "
                        "dimension may be",
                        input->name, i,
                        d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                            ? d->dim_param
                            : "?");
            return FALSE;
        }
        dims[i - 1] = (int)d->dim_value;
    }
    gsize numel;
    g_autofree char *what = g_strdup_printf("input '%s' (one sample)", input->name);
    g_autoptr(GError) too_large = NULL;
    if (!tp_backend_check_shape(backend, 3, dims, what, &numel, &too_large)) {
        g_set_error_literal(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID, too_large->message);
        return FALSE;
    }
    im->model = tp_model_new(backend, dims[0], dims[1], dims[2]);
    im->input_rank = (int)shape->n_dim;
    g_hash_table_insert(im->values, input->name, GINT_TO_POINTER(1));
    if (shape->n_dim == 2) {
        /* [N, F]: the model sees [F, 1, 1], flattened once. */
        g_autoptr(GError) local = NULL;
        int zero = 0,
            flat = tp_model_add(im->model, TP_OP_FLATTEN, input->name, &zero, NULL, &local);
        if (flat < 0) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_hash_table_insert(im->values, input->name, GINT_TO_POINTER(flat + 1));
    }
    return TRUE;
}

/* How many nodes of one unsupported op type, and the first. */
typedef struct {
    const char *op_type;
    guint count;
    const Onnx__NodeProto *first;
} Unsupported;

/* TRUE when some op class (engine/ops/) or a rewrite imports op_type. */
static gboolean
is_supported(const char *op_type)
{
    for (int op = 0; op < TP_N_OPS; op++) {
        const TpOpClass *klass = tp_op_class_get((TpOpType)op);
        if (klass->import != NULL && g_strcmp0(klass->name, op_type) == 0)
            return TRUE;
    }
    for (gsize j = 0; j < G_N_ELEMENTS(rewrites); j++)
        if (g_strcmp0(rewrites[j].op_type, op_type) == 0)
            return TRUE;
    return tp_onnx_fold_lookup(op_type) != NULL;
}

/* Refuses a graph with op types taskprune does not import, listing every
 * one with its node count and first node, in the order they first appear. */
static gboolean
check_supported(Importer *im, GError **error)
{
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(Unsupported));
    g_autoptr(GString) list = NULL;
    guint n_nodes = 0;

    for (gsize i = 0; i < im->graph->n_node; i++) {
        const Onnx__NodeProto *node = im->graph->node[i];
        Unsupported *u = NULL;

        if (is_supported(node->op_type))
            continue;
        for (guint k = 0; u == NULL && k < found->len; k++)
            if (g_strcmp0(g_array_index(found, Unsupported, k).op_type, node->op_type) == 0)
                u = &g_array_index(found, Unsupported, k);
        if (u == NULL) {
            Unsupported fresh = {node->op_type, 0, node};
            g_array_append_val(found, fresh);
            u = &g_array_index(found, Unsupported, found->len - 1);
        }
        u->count++;
        n_nodes++;
    }
    if (found->len == 0)
        return TRUE;
    list = g_string_new(NULL);
    for (guint k = 0; k < found->len; k++) {
        const Unsupported *u = &g_array_index(found, Unsupported, k);
        g_string_append_printf(list, "%s%s (%u node%s; first: %s node '%s')", k ? ", " : "",
                               u->op_type, u->count, u->count == 1 ? "" : "s", u->op_type,
                               u->first->name && *u->first->name ? u->first->name : "(unnamed)");
    }
    g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                "%u node%s of %u op type%s not supported by taskprune: %s", n_nodes,
                n_nodes == 1 ? "" : "s", found->len, found->len == 1 ? " is" : "s are", list->str);
    return FALSE;
}

static gboolean
import_graph(Importer *im, GError **error)
{
    if (!check_supported(im, error))
        return FALSE;
    for (gsize i = 0; i < im->graph->n_node; i++) {
        const Onnx__NodeProto *node = im->graph->node[i];
        ImportFunc import = NULL;
        int engine_op = -1;

        if (g_hash_table_contains(im->done, node))
            continue;
        if (node->domain != NULL && *node->domain != '\0' && !g_str_equal(node->domain, "ai.onnx"))
            return node_error(error, TP_ONNX_ERROR_UNSUPPORTED, node,
                              "domain '%s' is not supported", node->domain);
        for (int op = 0; op < TP_N_OPS; op++) {
            const TpOpClass *klass = tp_op_class_get((TpOpType)op);
            if (klass->import != NULL && g_strcmp0(klass->name, node->op_type) == 0)
                engine_op = op;
        }
        for (gsize j = 0; j < G_N_ELEMENTS(rewrites); j++)
            if (g_strcmp0(rewrites[j].op_type, node->op_type) == 0)
                import = rewrites[j].import;
        TpOnnxFoldFunc fold = tp_onnx_fold_lookup(node->op_type);
        gboolean folded = FALSE;
        if (fold != NULL &&
            !fold_node(im, node, fold, engine_op >= 0 || import != NULL, &folded, error))
            return FALSE;
        if (folded)
            continue;
        if (engine_op >= 0 ? !import_op(im, node, (TpOpType)engine_op, error)
                           : !import(im, node, error))
            return FALSE;
    }
    if (im->graph->n_output < 1) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID, "the graph has no output");
        return FALSE;
    }
    const char *output = im->graph->output[0]->name;
    gpointer id;
    if (!g_hash_table_lookup_extended(im->values, output, NULL, &id) ||
        GPOINTER_TO_INT(id) - 1 != tp_model_get_output(im->model)) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED,
                    "the graph output '%s' is not the result of its last op", output);
        return FALSE;
    }
    return TRUE;
}

/* Class names and input normalization from metadata_props. */
static gboolean
read_metadata(Importer *im, const Onnx__ModelProto *proto, GError **error)
{
    const TpShape *input = tp_model_get_shape(im->model, 0);
    g_autofree float *mean = NULL, *std = NULL;

    for (gsize i = 0; i < proto->n_metadata_props; i++) {
        const char *key = proto->metadata_props[i]->key, *value = proto->metadata_props[i]->value;
        if (key == NULL || value == NULL)
            continue;
        if (g_str_equal(key, "taskprune.class_indices")) {
            g_auto(GStrv) words = g_strsplit(value, " ", -1);
            int n = (int)g_strv_length(words);
            g_autofree int *indices = g_new(int, MAX(n, 1));
            for (int j = 0; j < n; j++) {
                gint64 v;
                if (!g_ascii_string_to_signed(words[j], 10, 0, G_MAXINT, &v, NULL)) {
                    g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                                "metadata 'taskprune.class_indices' holds '%s', not a class index",
                                words[j]);
                    return FALSE;
                }
                indices[j] = (int)v;
            }
            tp_model_set_class_indices(im->model, indices, n);
        } else if (g_str_equal(key, "taskprune.classes")) {
            g_auto(GStrv) names = g_strsplit(value, "\n", -1);
            tp_model_set_class_names(im->model, (const char *const *)names);
        } else if (g_str_equal(key, "taskprune.mean") || g_str_equal(key, "taskprune.std")) {
            g_auto(GStrv) words = g_strsplit(value, " ", -1);
            float *out = g_new(float, input->dim[0]);
            gboolean ok = g_strv_length(words) == (guint)input->dim[0];
            for (int c = 0; ok && c < input->dim[0]; c++) {
                char *end;
                out[c] = (float)g_ascii_strtod(words[c], &end);
                ok = *words[c] != '\0' && *end == '\0';
            }
            if (!ok) {
                g_free(out);
                g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                            "metadata '%s' must hold %d numbers, one per input channel", key,
                            input->dim[0]);
                return FALSE;
            }
            if (g_str_equal(key, "taskprune.mean"))
                mean = out;
            else
                std = out;
        }
    }
    if ((mean == NULL) != (std == NULL)) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_INVALID,
                    "metadata has only one of taskprune.mean and taskprune.std");
        return FALSE;
    }
    if (mean != NULL)
        tp_model_set_normalization(im->model, mean, std);
    return TRUE;
}

TpModel *
tp_onnx_load_data(TpBackend *backend, const guint8 *data, gsize length, const char *source,
                  const char *dir, GError **error)
{
    Onnx__ModelProto *proto;
    Importer im = {0};
    gboolean ok = FALSE;

    g_return_val_if_fail(backend != NULL && (data != NULL || length == 0) && source != NULL, NULL);

    proto = length > 0 ? onnx__model_proto__unpack(NULL, length, data) : NULL;
    if (proto == NULL || proto->graph == NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_PARSE,
                    "%s: not a valid ONNX model (the protobuf data is truncated or corrupt)",
                    source);
        if (proto != NULL)
            onnx__model_proto__free_unpacked(proto, NULL);
        return NULL;
    }
    im.source = source;
    im.dir = dir;
    im.graph = proto->graph;
    im.values = g_hash_table_new(g_str_hash, g_str_equal);
    im.consts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, tp_onnx_const_free);
    im.done = g_hash_table_new(NULL, NULL);
    im.pads = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

    if (!read_opset(&im, proto, error) || !check_names(&im, error))
        goto out;
    for (gsize i = 0; i < im.graph->n_initializer; i++) {
        Const *c = read_tensor(&im, im.graph->initializer[i], error);
        if (c == NULL)
            goto out;
        g_hash_table_insert(im.consts, im.graph->initializer[i]->name, c);
    }
    ok = create_model(&im, backend, error) && import_graph(&im, error) &&
         read_metadata(&im, proto, error);
out:
    if (!ok) {
        g_prefix_error(error, "%s: ", source);
        g_clear_pointer(&im.model, tp_model_free);
    }
    g_hash_table_unref(im.values);
    g_hash_table_unref(im.consts);
    g_hash_table_unref(im.done);
    g_hash_table_unref(im.pads);
    onnx__model_proto__free_unpacked(proto, NULL);
    return im.model;
}

TpModel *
tp_onnx_load(TpBackend *backend, const char *path, GError **error)
{
    g_autoptr(GMappedFile) file = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *dir = NULL;

    g_return_val_if_fail(backend != NULL && path != NULL, NULL);

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO, "%s: is a folder, not an ONNX file",
                    path);
        return NULL;
    }
    file = g_mapped_file_new(path, FALSE, &local);
    if (file == NULL) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO, "%s", local->message);
        return NULL;
    }
    dir = g_path_get_dirname(path);
    return tp_onnx_load_data(backend, (const guint8 *)g_mapped_file_get_contents(file),
                             g_mapped_file_get_length(file), path, dir, error);
}
