/* tp-onnx-export.c — ONNX export (tp-onnx.h): the model's graph as it stands,
 * opset 13 (or the newest an op class asks for), weights as raw_data, class names and normalization in
 * metadata_props, written to a temporary file and renamed into place. Each
 * node's attributes and parameter names are its op class's (tp-op.h). */
#include "config.h"

#include <string.h>

#include "onnx.pb-c.h"
#include "tp-onnx.h"
#include "tp-op.h"

#define EXPORT_OPSET 13
#define EXPORT_IR_VERSION 7

/* Everything the ModelProto points at lives in one arena freed at the end. */
typedef struct {
    TpModel *model;
    GPtrArray *arena;
    GPtrArray *nodes;        /* Onnx__NodeProto */
    GPtrArray *initializers; /* Onnx__TensorProto */
    GHashTable *names;       /* node and initializer names used so far */
} Exporter;

static gpointer
keep(Exporter *ex, gpointer p)
{
    g_ptr_array_add(ex->arena, p);
    return p;
}

static char *keep_printf(Exporter *ex, const char *format, ...) G_GNUC_PRINTF(2, 3);

static char *
keep_printf(Exporter *ex, const char *format, ...)
{
    va_list args;
    char *s;

    va_start(args, format);
    s = g_strdup_vprintf(format, args);
    va_end(args);
    return keep(ex, s);
}

/* A GPtrArray's contents as a C array the arena owns. */
static gpointer
keep_array(Exporter *ex, GPtrArray *array)
{
    return keep(ex, g_memdup2(array->pdata, sizeof(gpointer) * MAX(array->len, 1)));
}

/* base, or base_2, base_3, ... when that is taken: node and initializer
 * names stay unique whatever the engine's node names are (two nodes may
 * share one, or an explicit name may equal a generated one). */
static char *
unique_name(Exporter *ex, const char *base)
{
    char *name = keep(ex, g_strdup(base));

    for (int k = 2; g_hash_table_contains(ex->names, name); k++)
        name = keep_printf(ex, "%s_%d", base, k);
    g_hash_table_add(ex->names, name);
    return name;
}

static char *
value_name(Exporter *ex, int value)
{
    if (value == 0)
        return "input";
    if (value == tp_model_get_output(ex->model))
        return "output";
    return keep_printf(ex, "v%d", value);
}

static Onnx__AttributeProto *
new_attribute(Exporter *ex, const char *name)
{
    Onnx__AttributeProto *a = keep(ex, g_new(Onnx__AttributeProto, 1));

    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = TRUE;
    return a;
}

/* The node export_node() is writing, for an op class's export(). */
struct _TpOnnxNodeWriter {
    Exporter *ex;
    Onnx__NodeProto *proto; /* its name is the node's unique one */
    GPtrArray *inputs; /* char *, the node's input names */
    GPtrArray *attrs;  /* Onnx__AttributeProto */
};

void
tp_onnx_writer_ints(TpOnnxNodeWriter *w, const char *name, const int *values, int count)
{
    Onnx__AttributeProto *a = new_attribute(w->ex, name);
    gint64 *ints = keep(w->ex, g_new(gint64, count));

    for (int i = 0; i < count; i++)
        ints[i] = values[i];
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = ints;
    g_ptr_array_add(w->attrs, a);
}

void
tp_onnx_writer_int(TpOnnxNodeWriter *w, const char *name, gint64 value)
{
    Onnx__AttributeProto *a = new_attribute(w->ex, name);

    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = TRUE;
    a->i = value;
    g_ptr_array_add(w->attrs, a);
}

void
tp_onnx_writer_float(TpOnnxNodeWriter *w, const char *name, float value)
{
    Onnx__AttributeProto *a = new_attribute(w->ex, name);

    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = TRUE;
    a->f = value;
    g_ptr_array_add(w->attrs, a);
}

/* Adds a float32 initializer holding host data (taken by the arena). */
static char *
add_initializer(Exporter *ex, char *name, int ndim, const int *shape, float *data, gsize numel)
{
    Onnx__TensorProto *t = keep(ex, g_new(Onnx__TensorProto, 1));
    gint64 *dims = keep(ex, g_new(gint64, MAX(ndim, 1)));

    onnx__tensor_proto__init(t);
    for (int i = 0; i < ndim; i++)
        dims[i] = shape[i];
    t->name = name;
    t->n_dims = (size_t)ndim;
    t->dims = dims;
    t->has_data_type = TRUE;
    t->data_type = 1; /* FLOAT */
    t->has_raw_data = TRUE;
    t->raw_data.len = numel * sizeof(float);
    t->raw_data.data = keep(ex, data);
    g_ptr_array_add(ex->initializers, t);
    return name;
}

void
tp_onnx_writer_scalar_input(TpOnnxNodeWriter *w, const char *suffix, float value)
{
    int scalar = 0;
    float *data = g_new(float, 1);
    char *name = unique_name(w->ex, keep_printf(w->ex, "%s.%s", w->proto->name, suffix));

    *data = value;
    g_ptr_array_add(w->inputs, add_initializer(w->ex, name, 0, &scalar, data, 1));
}

static gboolean
export_node(Exporter *ex, guint index, GError **error)
{
    const TpNode *node = tp_model_get_node(ex->model, index);
    const TpOpClass *klass = tp_op_class_get(node->op);
    Onnx__NodeProto *proto = keep(ex, g_new(Onnx__NodeProto, 1));
    g_autoptr(GPtrArray) inputs = g_ptr_array_new();
    g_autoptr(GPtrArray) attrs = g_ptr_array_new();

    onnx__node_proto__init(proto);
    proto->name = unique_name(ex, node->name);
    proto->op_type = (char *)tp_op_type_to_string(node->op);
    for (int i = 0; i < node->n_inputs; i++)
        g_ptr_array_add(inputs, value_name(ex, node->inputs[i]));
    for (int i = 0; i < node->n_params; i++) {
        const TpTensor *t = node->params[i];
        float *host = tp_tensor_dup_host(t, error);
        if (host == NULL)
            return FALSE;
        g_ptr_array_add(
            inputs,
            add_initializer(ex, unique_name(ex, keep_printf(ex, "%s.%s", proto->name,
                                                            klass->param_names[i])),
                            t->ndim, t->shape, host, t->numel));
    }

    if (klass->export != NULL) {
        TpOnnxNodeWriter writer = {ex, proto, inputs, attrs};

        klass->export(node, &writer);
    }

    proto->n_input = inputs->len;
    proto->input = keep_array(ex, inputs);
    proto->n_output = 1;
    proto->output = keep(ex, g_new(char *, 1));
    proto->output[0] = value_name(ex, node->output);
    proto->n_attribute = attrs->len;
    proto->attribute = keep_array(ex, attrs);
    g_ptr_array_add(ex->nodes, proto);
    return TRUE;
}

/* The node of a model whose output is its input (no ops): "output" must be
 * produced by a node for the graph to import again. */
static void
identity_node(Exporter *ex)
{
    Onnx__NodeProto *proto = keep(ex, g_new(Onnx__NodeProto, 1));

    onnx__node_proto__init(proto);
    proto->name = unique_name(ex, "identity");
    proto->op_type = "Identity";
    proto->n_input = 1;
    proto->input = keep(ex, g_new(char *, 1));
    proto->input[0] = "input";
    proto->n_output = 1;
    proto->output = keep(ex, g_new(char *, 1));
    proto->output[0] = "output";
    g_ptr_array_add(ex->nodes, proto);
}

/* A float32 tensor type [batch, dims...] with a symbolic batch. */
static Onnx__ValueInfoProto *
value_info(Exporter *ex, const char *name, const TpShape *shape)
{
    Onnx__ValueInfoProto *v = keep(ex, g_new(Onnx__ValueInfoProto, 1));
    Onnx__TypeProto *type = keep(ex, g_new(Onnx__TypeProto, 1));
    Onnx__TypeProto__Tensor *tensor = keep(ex, g_new(Onnx__TypeProto__Tensor, 1));
    Onnx__TensorShapeProto *tshape = keep(ex, g_new(Onnx__TensorShapeProto, 1));
    Onnx__TensorShapeProto__Dimension **dims =
        keep(ex, g_new(Onnx__TensorShapeProto__Dimension *, shape->ndim + 1));

    for (int i = 0; i <= shape->ndim; i++) {
        dims[i] = keep(ex, g_new(Onnx__TensorShapeProto__Dimension, 1));
        onnx__tensor_shape_proto__dimension__init(dims[i]);
        if (i == 0) {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[i]->dim_param = "batch";
        } else {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[i]->dim_value = shape->dim[i - 1];
        }
    }
    onnx__tensor_shape_proto__init(tshape);
    tshape->n_dim = (size_t)shape->ndim + 1;
    tshape->dim = dims;
    onnx__type_proto__tensor__init(tensor);
    tensor->has_elem_type = TRUE;
    tensor->elem_type = 1; /* FLOAT */
    tensor->shape = tshape;
    onnx__type_proto__init(type);
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    v->type = type;
    return v;
}

static Onnx__StringStringEntryProto *
metadata(Exporter *ex, const char *key, char *value)
{
    Onnx__StringStringEntryProto *e = keep(ex, g_new(Onnx__StringStringEntryProto, 1));

    onnx__string_string_entry_proto__init(e);
    e->key = (char *)key;
    e->value = keep(ex, value);
    return e;
}

static char *
join_floats(const float *values, int n)
{
    GString *s = g_string_new(NULL);
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s", i ? " " : "",
                               g_ascii_formatd(buf, sizeof(buf), "%.9g", values[i]));
    return g_string_free(s, FALSE);
}

gboolean
tp_onnx_save(TpModel *model, const char *path, GError **error)
{
    Exporter ex = {model, g_ptr_array_new_with_free_func(g_free), g_ptr_array_new(),
                   g_ptr_array_new(), g_hash_table_new(g_str_hash, g_str_equal)};
    Onnx__ModelProto proto;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__ValueInfoProto *input, *output;
    g_autoptr(GPtrArray) props = g_ptr_array_new();
    const char *const *classes = tp_model_get_class_names(model);
    const float *mean, *std;
    g_autofree guint8 *bytes = NULL;
    gsize length;
    gboolean ok = FALSE;
    g_autoptr(GError) local = NULL;

    g_return_val_if_fail(model != NULL && path != NULL, FALSE);

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (!export_node(&ex, i, error))
            goto out;
    if (tp_model_get_output(model) == 0)
        identity_node(&ex);

    input = value_info(&ex, "input", tp_model_get_shape(model, 0));
    output = value_info(&ex, "output", tp_model_get_shape(model, tp_model_get_output(model)));
    onnx__graph_proto__init(&graph);
    graph.name = "taskprune";
    graph.n_node = ex.nodes->len;
    graph.node = (Onnx__NodeProto **)ex.nodes->pdata;
    graph.n_initializer = ex.initializers->len;
    graph.initializer = (Onnx__TensorProto **)ex.initializers->pdata;
    graph.n_input = 1;
    graph.input = &input;
    graph.n_output = 1;
    graph.output = &output;

    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = TRUE;
    opset.version = EXPORT_OPSET;
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        opset.version =
            MAX(opset.version, tp_op_class_get(tp_model_get_node(model, i)->op)->export_opset);
    Onnx__OperatorSetIdProto *opsets[] = {&opset};

    if (classes != NULL)
        g_ptr_array_add(props,
                        metadata(&ex, "taskprune.classes", g_strjoinv("\n", (char **)classes)));
    int n_indices;
    const int *indices = tp_model_get_class_indices(model, &n_indices);
    if (indices != NULL) {
        GString *joined = g_string_new(NULL);
        for (int i = 0; i < n_indices; i++)
            g_string_append_printf(joined, "%s%d", i ? " " : "", indices[i]);
        g_ptr_array_add(props, metadata(&ex, "taskprune.class_indices",
                                        g_string_free(joined, FALSE)));
    }
    if (tp_model_get_normalization(model, &mean, &std)) {
        int channels = tp_model_get_shape(model, 0)->dim[0];
        g_ptr_array_add(props, metadata(&ex, "taskprune.mean", join_floats(mean, channels)));
        g_ptr_array_add(props, metadata(&ex, "taskprune.std", join_floats(std, channels)));
    }

    onnx__model_proto__init(&proto);
    proto.has_ir_version = TRUE;
    proto.ir_version = EXPORT_IR_VERSION;
    proto.n_opset_import = 1;
    proto.opset_import = opsets;
    proto.producer_name = PACKAGE_NAME;
    proto.producer_version = PACKAGE_VERSION;
    proto.graph = &graph;
    proto.n_metadata_props = props->len;
    proto.metadata_props = (Onnx__StringStringEntryProto **)props->pdata;

    length = onnx__model_proto__get_packed_size(&proto);
    bytes = g_malloc(length);
    onnx__model_proto__pack(&proto, bytes);
    if (!g_file_set_contents(path, (const char *)bytes, (gssize)length, &local)) {
        g_set_error(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO, "%s", local->message);
        goto out;
    }
    ok = TRUE;
out:
    g_ptr_array_unref(ex.nodes);
    g_ptr_array_unref(ex.initializers);
    g_hash_table_unref(ex.names);
    g_ptr_array_unref(ex.arena);
    return ok;
}
