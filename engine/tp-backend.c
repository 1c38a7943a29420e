/* tp-backend.c — opening a backend plugin and completing its vtable (the
 * contract is in tp-backend.h). */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tp-backend.h"
#include "tp-registry.h"

G_DEFINE_QUARK(tp_backend_error, tp_backend_error)

/* Every member but synchronize, the prepared-weights trio,
 * conv2d_forward_relu and the kernel families is required (the members[]
 * below); the table must reach at least the last of them. */
#define REQUIRED_END (offsetof(TpBackendVTable, stabilized_divide) + sizeof(gpointer))

static const struct {
    const char *name;
    gsize offset;
} members[] = {
/* clang-format off */
#define MEMBER(m) { #m, offsetof(TpBackendVTable, m) }
    /* clang-format on */
    MEMBER(open),
    MEMBER(close),
    MEMBER(alloc),
    MEMBER(free),
    MEMBER(upload),
    MEMBER(download),
    MEMBER(copy),
    MEMBER(fill),
    MEMBER(conv2d_forward),
    MEMBER(conv2d_backward_data),
    MEMBER(conv2d_backward_filter),
    MEMBER(gemm),
    MEMBER(add_bias),
    MEMBER(sum_rows),
    MEMBER(batch_norm_forward_train),
    MEMBER(batch_norm_forward_eval),
    MEMBER(batch_norm_backward),
    MEMBER(relu_forward),
    MEMBER(relu_backward),
    MEMBER(add),
    MEMBER(dropout_forward),
    MEMBER(dropout_backward),
    MEMBER(pool2d_forward),
    MEMBER(pool2d_backward),
    MEMBER(softmax_forward),
    MEMBER(softmax_backward),
    MEMBER(softmax_cross_entropy),
    MEMBER(sgd_update),
    MEMBER(mul),
    MEMBER(axpby),
    MEMBER(clamp),
    MEMBER(stabilized_divide),
#undef MEMBER
};

/* The families (TpKernelFamily, indexed by its value): each member's offset,
 * ending at 0. */
static const struct {
    const char *name;
    const char *members;
    gsize offsets[3];
} families[] = {
/* clang-format off */
#define AT(m) offsetof(TpBackendVTable, m)
    /* clang-format on */
    [TP_KERNELS_UNARY] = {"unary", "unary_forward, unary_backward",
                          {AT(unary_forward), AT(unary_backward)}},
    [TP_KERNELS_BINARY] = {"binary", "binary_forward, binary_backward",
                           {AT(binary_forward), AT(binary_backward)}},
    [TP_KERNELS_STRIDED] = {"strided", "strided_copy", {AT(strided_copy)}},
    [TP_KERNELS_REDUCE] = {"reduce", "reduce_forward, reduce_backward",
                           {AT(reduce_forward), AT(reduce_backward)}},
    [TP_KERNELS_LAYER_NORM] = {"layer-norm", "layer_norm_forward, layer_norm_backward",
                               {AT(layer_norm_forward), AT(layer_norm_backward)}},
#undef AT
};

/* How many of family f's members vt sets. */
static int
family_members_set(const TpBackendVTable *vt, TpKernelFamily f, int *out_total)
{
    int set = 0, total = 0;

    for (int i = 0; i < 3 && families[f].offsets[i] != 0; i++) {
        gpointer fn;
        memcpy(&fn, (const char *)vt + families[f].offsets[i], sizeof(fn));
        set += fn != NULL;
        total++;
    }
    *out_total = total;
    return set;
}

/* The plugin's table copied into a full-size one: members a plugin built
 * against an older header lacks read as NULL. */
static void
copy_vtable(const TpPluginInfo *info, TpBackendVTable *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, info->vtable, MIN(info->vtable_size, sizeof(*out)));
}

gboolean
tp_backend_vtable_check(const TpPluginInfo *info, GError **error)
{
    TpBackendVTable vt;

    if (info->vtable == NULL || info->vtable_size < REQUIRED_END) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_ABI,
                    "backend '%s' has a vtable of %zu bytes, ABI %d needs at least %zu: "
                    "rebuild it against the installed tp-backend.h",
                    info->name, (size_t)(info->vtable ? info->vtable_size : 0), TP_PLUGIN_ABI_MAJOR,
                    (size_t)REQUIRED_END);
        return FALSE;
    }
    copy_vtable(info, &vt);
    if ((vt.conv2d_prepared_size == NULL) != (vt.conv2d_prepare == NULL) ||
        (vt.conv2d_prepare == NULL) != (vt.conv2d_forward_prepared == NULL)) {
        g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                    "backend '%s' sets some of conv2d_prepared_size, conv2d_prepare and "
                    "conv2d_forward_prepared: set all three or none",
                    info->name);
        return FALSE;
    }
    for (TpKernelFamily f = TP_KERNELS_UNARY; f < G_N_ELEMENTS(families); f++) {
        int total, set = family_members_set(&vt, f, &total);
        if (set != 0 && set != total) {
            g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                        "backend '%s' sets some of the %s family's kernels (%s): set all or none",
                        info->name, families[f].name, families[f].members);
            return FALSE;
        }
    }
    for (gsize i = 0; i < G_N_ELEMENTS(members); i++) {
        gpointer fn;
        memcpy(&fn, (const char *)&vt + members[i].offset, sizeof(fn));
        if (fn == NULL) {
            g_set_error(error, TP_PLUGIN_ERROR, TP_PLUGIN_ERROR_INVALID,
                        "backend '%s' lacks the required kernel '%s'", info->name, members[i].name);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
tp_backend_has_family(const TpBackend *backend, TpKernelFamily family, GError **error)
{
    int total;

    g_return_val_if_fail(backend != NULL, FALSE);
    g_return_val_if_fail(family >= TP_KERNELS_UNARY && family < G_N_ELEMENTS(families), FALSE);

    if (family_members_set(&backend->vt, family, &total) == total)
        return TRUE;
    g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                "backend '%s' lacks the %s kernel family (%s), which this model needs: "
                "rebuild the plugin against a taskprune that has it, or choose another backend",
                backend->info->name, families[family].name, families[family].members);
    return FALSE;
}

static gboolean
synchronize_nothing(gpointer self, GError **error)
{
    return TRUE;
}

static gsize
no_prepared_form(gpointer self, const TpConvGeometry *g)
{
    return 0;
}

TpBackend *
tp_backend_new(const TpPluginInfo *info, const TpParams *params, GError **error)
{
    g_autoptr(TpParams) defaults = NULL;
    g_autoptr(GError) local = NULL;
    TpBackend *backend;

    g_return_val_if_fail(info != NULL && info->kind == TP_PLUGIN_KIND_BACKEND, NULL);

    if (params == NULL)
        params = defaults = tp_params_new(info->params);
    backend = g_new0(TpBackend, 1);
    backend->info = info;
    copy_vtable(info, &backend->vt);
    if (backend->vt.synchronize == NULL)
        backend->vt.synchronize = synchronize_nothing;
    if (backend->vt.conv2d_prepared_size == NULL)
        backend->vt.conv2d_prepared_size = no_prepared_form;
    backend->self = backend->vt.open(params, &local);
    if (backend->self == NULL) {
        g_set_error(error, TP_BACKEND_ERROR,
                    local && local->domain == TP_BACKEND_ERROR ? local->code
                                                               : TP_BACKEND_ERROR_FAILED,
                    "backend '%s': %s", info->name,
                    local ? local->message : "open() failed without a reason");
        g_free(backend);
        return NULL;
    }
    return backend;
}

void
tp_backend_free(TpBackend *backend)
{
    if (backend == NULL)
        return;
    backend->vt.close(backend->self);
    g_free(backend);
}
