/* tp-backend.c — opening a backend plugin and completing its vtable (the
 * contract is in tp-backend.h). */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tp-backend.h"
#include "tp-registry.h"

G_DEFINE_QUARK(tp_backend_error, tp_backend_error)

/* Every member up to and including sgd_update is required; later ones are
 * optional and defaulted below. */
#define REQUIRED_END (offsetof(TpBackendVTable, sgd_update) + sizeof(gpointer))

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
#undef MEMBER
};

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

static gboolean
synchronize_nothing(gpointer self, GError **error)
{
    return TRUE;
}

/* ---------------------------------------------------------------- host defaults */

/* The defaults of the optional elementwise kernels run on the host: they
 * download their inputs, compute, and upload the result. A kernel is handed
 * only the plugin's `self`, so they find that plugin's download() and
 * upload() in this map (self -> HostIo), which tp_backend_new() fills for a
 * backend that lacks any of them and tp_backend_free() empties. It is the
 * only process-wide state besides the registry; its lock is held only for
 * the lookup. */
typedef struct {
    gboolean (*upload)(gpointer self, float *dst, const float *host, gsize n, GError **error);
    gboolean (*download)(gpointer self, float *host, const float *src, gsize n, GError **error);
    int refs; /* TpBackends sharing this self (a plugin may return one for every open) */
} HostIo;

static GMutex host_io_lock;
static GHashTable *host_io_map; /* gpointer self -> HostIo (owned) */

static void
host_io_add(const TpBackend *backend)
{
    HostIo *io;

    g_mutex_lock(&host_io_lock);
    if (host_io_map == NULL)
        host_io_map = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    io = g_hash_table_lookup(host_io_map, backend->self);
    if (io == NULL) {
        io = g_new0(HostIo, 1);
        io->upload = backend->vt.upload;
        io->download = backend->vt.download;
        g_hash_table_insert(host_io_map, backend->self, io);
    }
    io->refs++;
    g_mutex_unlock(&host_io_lock);
}

static void
host_io_remove(const TpBackend *backend)
{
    HostIo *io;

    g_mutex_lock(&host_io_lock);
    io = host_io_map != NULL ? g_hash_table_lookup(host_io_map, backend->self) : NULL;
    if (io != NULL && --io->refs == 0)
        g_hash_table_remove(host_io_map, backend->self);
    g_mutex_unlock(&host_io_lock);
}

/* Copies out the memory movers of the backend whose state is self (so the
 * lock is not held while they run). */
static gboolean
host_io_get(gpointer self, HostIo *out_io, GError **error)
{
    HostIo *found;

    g_mutex_lock(&host_io_lock);
    found = host_io_map != NULL ? g_hash_table_lookup(host_io_map, self) : NULL;
    if (found != NULL)
        *out_io = *found;
    g_mutex_unlock(&host_io_lock);
    if (found == NULL) { /* a default called with a self no TpBackend installed it for */
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_FAILED,
                    "host default kernel: unknown backend state %p", self);
        return FALSE;
    }
    return TRUE;
}

/* A new host buffer of n floats (owned), or NULL with error set. */
static float *
host_alloc(gsize n, GError **error)
{
    float *host = g_try_new(float, MAX(n, 1));

    if (host == NULL)
        g_set_error(error, TP_BACKEND_ERROR, TP_BACKEND_ERROR_NO_MEMORY,
                    "host default kernel: cannot allocate %" G_GSIZE_FORMAT " floats", n);
    return host;
}

/* A new host copy of n floats of backend memory src (owned), or NULL. */
static float *
host_fetch(const HostIo *io, gpointer self, const float *src, gsize n, GError **error)
{
    float *host = host_alloc(n, error);

    if (host != NULL && !io->download(self, host, src, n, error))
        g_clear_pointer(&host, g_free);
    return host;
}

static gboolean
default_mul(gpointer self, gsize n, const float *a, const float *b, float *y, GError **error)
{
    HostIo io;
    g_autofree float *ha = NULL;
    g_autofree float *hb = NULL;

    if (!host_io_get(self, &io, error) || (ha = host_fetch(&io, self, a, n, error)) == NULL ||
        (hb = host_fetch(&io, self, b, n, error)) == NULL)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        ha[i] *= hb[i];
    return io.upload(self, y, ha, n, error);
}

static gboolean
default_axpby(gpointer self, gsize n, float alpha, const float *x, float beta, float *y,
              GError **error)
{
    HostIo io;
    g_autofree float *hx = NULL;
    g_autofree float *hy = NULL;

    if (!host_io_get(self, &io, error) || (hx = host_fetch(&io, self, x, n, error)) == NULL)
        return FALSE;
    if (beta == 0.0f) { /* y is not read */
        for (gsize i = 0; i < n; i++)
            hx[i] *= alpha;
        return io.upload(self, y, hx, n, error);
    }
    hy = host_fetch(&io, self, y, n, error);
    if (hy == NULL)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        hy[i] = alpha * hx[i] + beta * hy[i];
    return io.upload(self, y, hy, n, error);
}

static gboolean
default_clamp(gpointer self, gsize n, const float *x, float lo, float hi, float *y, GError **error)
{
    HostIo io;
    g_autofree float *hx = NULL;

    if (!host_io_get(self, &io, error) || (hx = host_fetch(&io, self, x, n, error)) == NULL)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        hx[i] = hx[i] < lo ? lo : hx[i] > hi ? hi : hx[i];
    return io.upload(self, y, hx, n, error);
}

static gboolean
default_stabilized_divide(gpointer self, gsize n, const float *r, const float *z, float epsilon,
                          float *y, GError **error)
{
    HostIo io;
    g_autofree float *hr = NULL;
    g_autofree float *hz = NULL;

    if (!host_io_get(self, &io, error) || (hr = host_fetch(&io, self, r, n, error)) == NULL ||
        (hz = host_fetch(&io, self, z, n, error)) == NULL)
        return FALSE;
    for (gsize i = 0; i < n; i++) {
        float d = hz[i] > 0.0f    ? hz[i] + epsilon
                  : hz[i] < 0.0f  ? hz[i] - epsilon
                  : hz[i] == 0.0f ? TP_STABILIZER_ZERO
                                  : hz[i]; /* NaN stays NaN */
        hr[i] /= d;
    }
    return io.upload(self, y, hr, n, error);
}

/* Installs the host defaults of the optional kernels a plugin lacks;
 * returns whether it installed any (then the backend needs a HostIo). */
static gboolean
fill_host_defaults(TpBackendVTable *vt)
{
    gboolean any = FALSE;

#define DEFAULT(member, fn)                                                                        \
    do {                                                                                           \
        if (vt->member == NULL) {                                                                  \
            vt->member = fn;                                                                       \
            any = TRUE;                                                                            \
        }                                                                                          \
    } while (0)
    DEFAULT(mul, default_mul);
    DEFAULT(axpby, default_axpby);
    DEFAULT(clamp, default_clamp);
    DEFAULT(stabilized_divide, default_stabilized_divide);
#undef DEFAULT
    return any;
}

TpBackend *
tp_backend_new(const TpPluginInfo *info, const TpParams *params, GError **error)
{
    g_autoptr(TpParams) defaults = NULL;
    g_autoptr(GError) local = NULL;
    TpBackend *backend;
    gboolean host_defaults;

    g_return_val_if_fail(info != NULL && info->kind == TP_PLUGIN_KIND_BACKEND, NULL);

    if (params == NULL)
        params = defaults = tp_params_new(info->params);
    backend = g_new0(TpBackend, 1);
    backend->info = info;
    copy_vtable(info, &backend->vt);
    if (backend->vt.synchronize == NULL)
        backend->vt.synchronize = synchronize_nothing;
    host_defaults = fill_host_defaults(&backend->vt);
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
    if (host_defaults)
        host_io_add(backend);
    return backend;
}

void
tp_backend_free(TpBackend *backend)
{
    if (backend == NULL)
        return;
    host_io_remove(backend); /* nothing to do unless it got host defaults */
    backend->vt.close(backend->self);
    g_free(backend);
}
