/* tp-cli-input.c — image files and .npy tensors as model input
 * (tp-cli-input.h). */
#include "config.h"

#include <string.h>

#ifdef TP_HAVE_GDK_PIXBUF
#include <gdk-pixbuf/gdk-pixbuf.h>
#endif

#include "tp-cli-input.h"

/* The value of 'key': in a .npy header dict (the text after "'key':"), or
 * NULL. */
static const char *
header_value(const char *header, const char *key)
{
    g_autofree char *quoted = g_strdup_printf("'%s':", key);
    const char *at = strstr(header, quoted);

    if (at == NULL)
        return NULL;
    at += strlen(quoted);
    while (*at == ' ')
        at++;
    return at;
}

/* Parses the "(d0, d1, ...)" of a .npy header's shape. */
static gboolean
parse_shape(const char *text, int *out_ndim, int *dims, gsize *out_n)
{
    int ndim = 0;
    gsize n = 1;

    if (text == NULL || *text++ != '(')
        return FALSE;
    for (;;) {
        char *end;
        guint64 d;

        while (*text == ' ')
            text++;
        if (*text == ')')
            break;
        d = g_ascii_strtoull(text, &end, 10);
        if (end == text || ndim == TP_CLI_NPY_MAX_DIMS || d > G_MAXINT ||
            (d > 0 && n > G_MAXSIZE / sizeof(float) / d))
            return FALSE;
        dims[ndim++] = (int)d;
        n *= (gsize)d;
        text = end;
        while (*text == ' ')
            text++;
        if (*text == ',')
            text++;
        else if (*text != ')')
            return FALSE;
    }
    *out_ndim = ndim;
    *out_n = n;
    return TRUE;
}

float *
tp_cli_read_npy(const char *path, int *out_ndim, int out_dims[TP_CLI_NPY_MAX_DIMS], gsize *out_n,
                GError **error)
{
    g_autofree char *bytes = NULL;
    g_autofree char *header = NULL;
    gsize size, header_len, prefix, n;
    const char *descr, *order;
    int ndim, dims[TP_CLI_NPY_MAX_DIMS];
    float *out;

    if (!g_file_get_contents(path, &bytes, &size, error))
        return NULL;
    if (size < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0 || bytes[6] < 1 || bytes[6] > 3) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: not a NumPy .npy file (format 1.0 to 3.0)", path);
        return NULL;
    }
    if (bytes[6] == 1) {
        header_len = (guint8)bytes[8] | (gsize)(guint8)bytes[9] << 8;
        prefix = 10;
    } else {
        header_len = size < 12 ? G_MAXSIZE
                               : ((guint8)bytes[8] | (gsize)(guint8)bytes[9] << 8 |
                                  (gsize)(guint8)bytes[10] << 16 | (gsize)(guint8)bytes[11] << 24);
        prefix = 12;
    }
    if (header_len > size - prefix) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: the .npy header is cut short",
                    path);
        return NULL;
    }
    header = g_strndup(bytes + prefix, header_len);
    descr = header_value(header, "descr");
    order = header_value(header, "fortran_order");
    if (descr == NULL || !g_str_has_prefix(descr, "'<f4'")) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the array is not little-endian float32 ('<f4'); save it with "
                    "numpy.save(path, array.astype('<f4'))",
                    path);
        return NULL;
    }
    if (order == NULL || !g_str_has_prefix(order, "False")) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the array is in Fortran order; save it in C order "
                    "(numpy.ascontiguousarray)",
                    path);
        return NULL;
    }
    if (!parse_shape(header_value(header, "shape"), &ndim, dims, &n)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the .npy header's shape is not a tuple of at most %d sizes", path,
                    TP_CLI_NPY_MAX_DIMS);
        return NULL;
    }
    if (size - prefix - header_len != n * sizeof(float)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the header says %" G_GSIZE_FORMAT " floats, the file holds %" G_GSIZE_FORMAT
                    " bytes of data",
                    path, n, size - prefix - header_len);
        return NULL;
    }
    out = g_new(float, MAX(n, 1));
    memcpy(out, bytes + prefix + header_len, n * sizeof(float));
    if (G_BYTE_ORDER != G_LITTLE_ENDIAN)
        for (gsize i = 0; i < n; i++) {
            guint32 v;
            memcpy(&v, out + i, sizeof(v));
            v = GUINT32_SWAP_LE_BE(v);
            memcpy(out + i, &v, sizeof(v));
        }
    *out_ndim = ndim;
    memcpy(out_dims, dims, sizeof(int) * (gsize)ndim);
    *out_n = n;
    return out;
}

gboolean
tp_cli_write_npy(const char *path, const float *data, int ndim, const int *dims, GError **error)
{
    g_autoptr(GString) shape = g_string_new(NULL);
    g_autoptr(GString) out = g_string_new("\x93NUMPY\x01");
    g_autofree char *header = NULL;
    gsize n = 1, len;

    g_return_val_if_fail(ndim >= 1 && ndim <= TP_CLI_NPY_MAX_DIMS, FALSE);
    for (int i = 0; i < ndim; i++) {
        g_string_append_printf(shape, "%d,%s", dims[i], i + 1 < ndim ? " " : "");
        n *= (gsize)dims[i];
    }
    if (ndim > 1)
        g_string_truncate(shape, shape->len - 1); /* (a, b), but (a,) */
    header = g_strdup_printf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                             shape->str);
    /* The header, with its '\n', pads the prefix to a multiple of 64 bytes. */
    len = strlen(header) + 1;
    len += (64 - (10 + len) % 64) % 64;
    g_string_append_c(out, '\0');
    g_string_append_c(out, (char)(len & 0xff));
    g_string_append_c(out, (char)(len >> 8));
    g_string_append(out, header);
    while (out->len < 10 + len - 1)
        g_string_append_c(out, ' ');
    g_string_append_c(out, '\n');
    for (gsize i = 0; i < n; i++) {
        guint32 v;
        memcpy(&v, data + i, sizeof(v));
        v = GUINT32_TO_LE(v);
        g_string_append_len(out, (const char *)&v, sizeof(v));
    }
    /* g_file_set_contents() writes a temporary file and renames it. */
    return g_file_set_contents(path, out->str, (gssize)out->len, error);
}

#ifdef TP_HAVE_GDK_PIXBUF

gboolean
tp_cli_read_image(TpModel *model, const char *path, float *out, GError **error)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    const int C = in->dim[0], H = in->dim[1], W = in->dim[2];
    const gsize plane = (gsize)H * W;
    const float *mean = NULL, *std = NULL;
    gboolean normalized = tp_model_get_normalization(model, &mean, &std);
    g_autoptr(GdkPixbuf) decoded = NULL;
    g_autoptr(GdkPixbuf) turned = NULL;
    g_autoptr(GdkPixbuf) sized = NULL;
    const guint8 *px;
    int stride, step;

    if (in->ndim != 3 || (C != 1 && C != 3)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the model does not take images (it takes %d input channels; image files "
                    "give 1 or 3)",
                    path, C);
        return FALSE;
    }
    if (!(decoded = gdk_pixbuf_new_from_file(path, error)))
        return FALSE;
    turned = gdk_pixbuf_apply_embedded_orientation(decoded);
    sized = gdk_pixbuf_scale_simple(turned, W, H, GDK_INTERP_BILINEAR);
    if (gdk_pixbuf_get_bits_per_sample(sized) != 8 || gdk_pixbuf_get_n_channels(sized) < 3) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: not an 8-bit RGB image after decoding", path);
        return FALSE;
    }
    px = gdk_pixbuf_read_pixels(sized);
    stride = gdk_pixbuf_get_rowstride(sized);
    step = gdk_pixbuf_get_n_channels(sized);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const guint8 *p = px + (gsize)y * stride + (gsize)x * step;
            float *at = out + (gsize)y * W + x;

            for (int c = 0; c < C; c++) {
                guint v = C == 1 ? (299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u : p[c];
                float f = (float)v / 255.0f;

                at[c * plane] = normalized ? (f - mean[c]) / std[c] : f;
            }
        }
    return TRUE;
}

#endif
