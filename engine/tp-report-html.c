/* tp-report-html.c — a report JSON drawn as one self-contained HTML page
 * (tp-report-html.h): CSS for a laptop's width and for print, every figure
 * an inline SVG (tp-plot.c's curves, bars, heatmaps as BMP data URIs inside
 * SVG), no script and nothing fetched.
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "tp-explain.h"
#include "tp-plot.h"
#include "tp-report-html.h"

G_DEFINE_QUARK(tp-report-error-quark, tp_report_error)

/* Heatmaps larger than this on a side are averaged down to it. */
#define HEATMAP_MAX_SIDE 64

static const char style[] =
    "body{font-family:sans-serif;max-width:1100px;margin:0 auto;padding:0 16px;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f4f4f4}td.l,th.l{text-align:left}"
    "figure{display:inline-block;margin:8px;vertical-align:top;max-width:100%}"
    "figure svg{max-width:100%;height:auto}"
    "figcaption{font-size:.9em;color:#555;text-align:center}"
    ".confusion td{min-width:2.5em}.note{color:#666;font-size:.9em}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "@media print{body{max-width:none}figure,table{break-inside:avoid}h2{break-after:avoid}}";

/* ------------------------------------------------ reading the JSON */

typedef struct {
    const char *source;
    GError **error;
} Reader;

static gboolean
bad(Reader *rd, const char *where, const char *key, const char *what)
{
    g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                "%s: \"%s%s%s\" is missing or not %s", rd->source, where ? where : "",
                where ? "." : "", key, what);
    return FALSE;
}

static gboolean
get_number(Reader *rd, JsonObject *o, const char *where, const char *key, double *out)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) ||
        (json_node_get_value_type(n) != G_TYPE_INT64 &&
         json_node_get_value_type(n) != G_TYPE_DOUBLE))
        return bad(rd, where, key, "a number");
    *out = json_node_get_double(n);
    return TRUE;
}

static gboolean
get_string(Reader *rd, JsonObject *o, const char *where, const char *key, const char **out)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return bad(rd, where, key, "a string");
    *out = json_node_get_string(n);
    return TRUE;
}

static gboolean
get_array(Reader *rd, JsonObject *o, const char *where, const char *key, JsonArray **out)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n))
        return bad(rd, where, key, "an array");
    *out = json_node_get_array(n);
    return TRUE;
}

static gboolean
get_object(Reader *rd, JsonObject *o, const char *where, const char *key, JsonObject **out)
{
    JsonNode *n = json_object_get_member(o, key);

    if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n))
        return bad(rd, where, key, "an object");
    *out = json_node_get_object(n);
    return TRUE;
}

/* Element i of an array as a number (0 when it is not one; callers check
 * lengths, and a report's arrays are numbers throughout). */
static double
element(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);
    return n != NULL && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_double(n) : 0;
}

/* n numbers from member key of o (an array of exactly n numbers). */
static gboolean
get_floats(Reader *rd, JsonObject *o, const char *where, const char *key, guint n, float *out)
{
    JsonArray *a;

    if (!get_array(rd, o, where, key, &a))
        return FALSE;
    if (json_array_get_length(a) != n) {
        g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                    "%s: \"%s.%s\" has %u values, not %u", rd->source, where, key,
                    json_array_get_length(a), n);
        return FALSE;
    }
    for (guint i = 0; i < n; i++)
        out[i] = (float)element(a, i);
    return TRUE;
}

/* ------------------------------------------------ writing */

static void
escape(GString *out, const char *s)
{
    g_autofree char *e = g_markup_escape_text(s, -1);
    g_string_append(out, e);
}

/* v formatted with a printf format of one double, in the C locale. */
static const char *
num(char buf[G_ASCII_DTOSTR_BUF_SIZE], const char *format, double v)
{
    return g_ascii_formatd(buf, G_ASCII_DTOSTR_BUF_SIZE, format, v);
}

/* "1,234,567" */
static char *
thousands(double v)
{
    g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)MAX(v, 0));
    GString *s = g_string_new(NULL);
    int len = (int)strlen(digits);

    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            g_string_append_c(s, ',');
        g_string_append_c(s, digits[i]);
    }
    return g_string_free(s, FALSE);
}

/* Appends an SVG made by tp-plot.c without its XML declaration, scalable
 * (the width and height become a viewBox). */
static void
append_svg(GString *html, const char *svg)
{
    const char *start = strstr(svg, "<svg");
    g_string_append(html, start ? start : svg);
}

/* --- the summary */

static gboolean
summary(GString *h, Reader *rd, JsonObject *report, JsonObject *res)
{
    double base_classes, step, base_acc, baseline, acc, test, bp, p, bm, m, bb, b, bl, l;
    const char *stop;
    JsonArray *names = NULL;
    char x[G_ASCII_DTOSTR_BUF_SIZE], y[G_ASCII_DTOSTR_BUF_SIZE], z[G_ASCII_DTOSTR_BUF_SIZE];

    if (!get_number(rd, res, "result", "base_classes", &base_classes) ||
        !get_number(rd, res, "result", "step", &step) ||
        !get_number(rd, res, "result", "base_accuracy", &base_acc) ||
        !get_number(rd, res, "result", "baseline_accuracy", &baseline) ||
        !get_number(rd, res, "result", "accuracy", &acc) ||
        !get_number(rd, res, "result", "test_accuracy", &test) ||
        !get_number(rd, res, "result", "base_params", &bp) ||
        !get_number(rd, res, "result", "params", &p) ||
        !get_number(rd, res, "result", "base_macs", &bm) ||
        !get_number(rd, res, "result", "macs", &m) ||
        !get_number(rd, res, "result", "base_bytes", &bb) ||
        !get_number(rd, res, "result", "bytes", &b) ||
        !get_number(rd, res, "result", "base_latency_ms", &bl) ||
        !get_number(rd, res, "result", "latency_ms", &l) ||
        !get_string(rd, res, "result", "stop_reason", &stop) ||
        !get_array(rd, report, NULL, "class_names", &names))
        return FALSE;

    g_string_append(h, "<h2>Summary</h2>\n<table class=\"summary\">\n"
                       "<tr><th class=\"l\"></th><th>base model</th><th>specialist</th>"
                       "<th>change</th></tr>\n<tr><td class=\"l\">classes</td><td>");
    g_string_append_printf(h, "%.0f</td><td class=\"l\">%u: ", base_classes,
                           json_array_get_length(names));
    for (guint i = 0; i < json_array_get_length(names); i++) {
        g_string_append(h, i ? ", " : "");
        escape(h, json_array_get_string_element(names, i));
    }
    g_string_append(h, "</td><td></td></tr>\n");
    g_string_append_printf(h,
                           "<tr><td class=\"l\">validation accuracy, all classes' head (%%)</td>"
                           "<td>%s</td><td></td><td></td></tr>\n",
                           num(x, "%.2f", 100 * base_acc));
    g_string_append_printf(h,
                           "<tr><td class=\"l\">validation accuracy, the task's head (%%)</td>"
                           "<td>%s</td><td>%s</td><td>%s points</td></tr>\n",
                           num(x, "%.2f", 100 * baseline), num(y, "%.2f", 100 * acc),
                           num(z, "%+.2f", 100 * (acc - baseline)));
    if (json_object_has_member(res, "base_test_accuracy")) {
        double base_test;
        if (!get_number(rd, res, "result", "base_test_accuracy", &base_test))
            return FALSE;
        g_string_append_printf(h,
                               "<tr><td class=\"l\">test accuracy, the task's head (%%)</td>"
                               "<td>%s</td><td>%s</td><td>%s points</td></tr>\n",
                               num(x, "%.2f", 100 * base_test), num(y, "%.2f", 100 * test),
                               num(z, "%+.2f", 100 * (test - base_test)));
    } else {
        g_string_append_printf(h,
                               "<tr><td class=\"l\">test accuracy (%%)</td><td>not recorded</td>"
                               "<td>%s</td><td></td></tr>\n",
                               num(y, "%.2f", 100 * test));
    }
    const struct {
        const char *what;
        double base, now;
    } counts[] = {{"parameters", bp, p}, {"multiply-accumulates", bm, m}};
    for (gsize i = 0; i < G_N_ELEMENTS(counts); i++) {
        g_autofree char *a = thousands(counts[i].base), *c = thousands(counts[i].now);
        g_string_append_printf(h,
                               "<tr><td class=\"l\">%s</td><td>%s</td><td>%s</td><td>%s%%</td>"
                               "</tr>\n",
                               counts[i].what, a, c,
                               num(x, "%+.1f", 100 * (counts[i].now / MAX(counts[i].base, 1) - 1)));
    }
    g_autofree char *size_a = g_format_size((guint64)bb), *size_b = g_format_size((guint64)b);
    g_string_append_printf(h,
                           "<tr><td class=\"l\">ONNX file</td><td>%s</td><td>%s</td><td>%s%%</td>"
                           "</tr>\n",
                           size_a, size_b, num(x, "%+.1f", 100 * (b / MAX(bb, 1) - 1)));
    JsonNode *noise = json_object_get_member(res, "latency_within_noise");
    gboolean within = noise != NULL && JSON_NODE_HOLDS_VALUE(noise) &&
                      json_node_get_value_type(noise) == G_TYPE_BOOLEAN &&
                      json_node_get_boolean(noise);
    g_string_append_printf(h,
                           "<tr><td class=\"l\">latency, batch 1 (ms, median)</td><td>%s</td>"
                           "<td>%s</td><td>%s&times; as fast%s</td></tr>\n",
                           num(x, "%.3f", bl), num(y, "%.3f", l), num(z, "%.2f", bl / MAX(l, 1e-9)),
                           within ? " (within noise)" : "");
    g_string_append_printf(h, "</table>\n<p>The specialist is the model after step %.0f; the "
                              "run stopped with: ", step);
    escape(h, stop);
    g_string_append(h, ".</p>\n");
    return TRUE;
}

/* --- the curves */

typedef struct {
    char *name; /* the criterion */
    guint n;
    double *params, *macs, *accuracy; /* percent */
    int chosen;                       /* index of the result's step, -1: none */
    double baseline, tolerance;       /* percent, points */
} Curve;

static void
curve_clear(Curve *c)
{
    g_free(c->name);
    g_free(c->params);
    g_free(c->macs);
    g_free(c->accuracy);
}

static gboolean
read_curve(Reader *rd, JsonObject *report, Curve *c)
{
    JsonArray *steps;
    JsonObject *res;
    const char *criterion;
    double step, baseline, tolerance = 0;

    if (!get_string(rd, report, NULL, "criterion", &criterion) ||
        !get_array(rd, report, NULL, "steps", &steps) ||
        !get_object(rd, report, NULL, "result", &res) ||
        !get_number(rd, res, "result", "step", &step) ||
        !get_number(rd, res, "result", "baseline_accuracy", &baseline))
        return FALSE;
    if (json_object_has_member(res, "tolerance") &&
        !get_number(rd, res, "result", "tolerance", &tolerance))
        return FALSE;
    c->name = g_strdup(criterion);
    c->n = json_array_get_length(steps);
    c->params = g_new(double, MAX(c->n, 1));
    c->macs = g_new(double, MAX(c->n, 1));
    c->accuracy = g_new(double, MAX(c->n, 1));
    c->chosen = -1;
    c->baseline = 100 * baseline;
    c->tolerance = tolerance;
    for (guint i = 0; i < c->n; i++) {
        JsonNode *n = json_array_get_element(steps, i);
        JsonObject *s;
        double k, pr, mr, acc;

        if (!JSON_NODE_HOLDS_OBJECT(n))
            return bad(rd, NULL, "steps[]", "an object");
        s = json_node_get_object(n);
        if (!get_number(rd, s, "steps[]", "step", &k) ||
            !get_number(rd, s, "steps[]", "params_removed", &pr) ||
            !get_number(rd, s, "steps[]", "macs_removed", &mr) ||
            !get_number(rd, s, "steps[]", "accuracy", &acc))
            return FALSE;
        c->params[i] = 100 * pr;
        c->macs[i] = 100 * mr;
        c->accuracy[i] = 100 * acc;
        if (k == step)
            c->chosen = (int)i;
    }
    return TRUE;
}

/* Accuracy against parameters and against MACs removed, one line per curve
 * (all of one task: they share the baseline of the first). */
static void
curves(GString *h, const char *task, Curve *c, guint n)
{
    g_autofree TpPlotSeries *series = g_new0(TpPlotSeries, MAX(n, 1));
    g_autofree int *chosen = g_new(int, MAX(n, 1));
    TpPlotGuides guides = {.baseline = n ? c[0].baseline : NAN,
                           .tolerance = n ? c[0].tolerance : 0,
                           .marked = chosen,
                           .min_y_span = 10};

    for (int axis = 0; axis < 2; axis++) {
        g_autofree char *title = g_strdup_printf(
            "%s: validation accuracy against %s removed", task, axis ? "MACs" : "parameters");
        for (guint i = 0; i < n; i++) {
            series[i] = (TpPlotSeries){c[i].name, (int)c[i].n, axis ? c[i].macs : c[i].params,
                                       c[i].accuracy};
            chosen[i] = c[i].chosen;
        }
        g_autofree char *svg =
            tp_plot_svg(title, axis ? "MACs removed (%)" : "parameters removed (%)",
                        "validation accuracy (%)", series, (int)n, &guides);
        g_string_append(h, "<figure>");
        append_svg(h, svg);
        g_string_append(h, "<figcaption>Dashed: the specialized baseline; shaded: the "
                           "tolerance; ringed: the chosen step.</figcaption></figure>\n");
    }
}

/* --- channels kept per layer per step */

static gboolean
channels(GString *h, Reader *rd, JsonObject *report)
{
    JsonArray *layers, *steps;
    char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE], c[G_ASCII_DTOSTR_BUF_SIZE],
        d[G_ASCII_DTOSTR_BUF_SIZE];
    const int width = 720, height = 320, left = 60, right = 20, top = 20, bottom = 90;
    const double pw = width - left - right, ph = height - top - bottom;

    g_string_append(h, "<h2>Channels kept per layer</h2>\n");
    if (!json_object_has_member(report, "layers")) {
        g_string_append(h, "<p class=\"note\">This report does not record its layers.</p>\n");
        return TRUE;
    }
    if (!get_array(rd, report, NULL, "layers", &layers) ||
        !get_array(rd, report, NULL, "steps", &steps))
        return FALSE;
    guint nl = json_array_get_length(layers), ns = json_array_get_length(steps);
    if (nl == 0 || ns == 0)
        return TRUE;
    g_string_append_printf(h,
                           "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d "
                           "%d\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                           "font-size=\"11\"><rect width=\"100%%\" height=\"100%%\" "
                           "fill=\"white\"/>\n",
                           width, height, width, height);
    for (int t = 0; t <= 100; t += 25)
        g_string_append_printf(h,
                               "<line x1=\"%d\" x2=\"%d\" y1=\"%s\" y2=\"%s\" stroke=\"#ddd\"/>"
                               "<text x=\"%d\" y=\"%s\" text-anchor=\"end\">%d%%</text>\n",
                               left, width - right, num(a, "%.1f", top + ph * (1 - t / 100.0)),
                               num(b, "%.1f", top + ph * (1 - t / 100.0)), left - 4,
                               num(c, "%.1f", top + ph * (1 - t / 100.0) + 4), t);
    const double group = pw / nl, bar = group * 0.8 / ns;
    for (guint l = 0; l < nl; l++) {
        JsonNode *ln = json_array_get_element(layers, l);
        JsonObject *lo;
        const char *name;
        double units;

        if (!JSON_NODE_HOLDS_OBJECT(ln))
            return bad(rd, NULL, "layers[]", "an object");
        lo = json_node_get_object(ln);
        if (!get_string(rd, lo, "layers[]", "name", &name) ||
            !get_number(rd, lo, "layers[]", "units", &units))
            return FALSE;
        for (guint s = 0; s < ns; s++) {
            JsonObject *so = json_array_get_object_element(steps, s);
            JsonArray *kept;
            if (so == NULL || !get_array(rd, so, "steps[]", "channels", &kept))
                return FALSE;
            if (json_array_get_length(kept) != nl) {
                g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                            "%s: \"steps[%u].channels\" has %u values for %u layers", rd->source,
                            s, json_array_get_length(kept), nl);
                return FALSE;
            }
            double n = element(kept, l), f = n / MAX(units, 1);
            /* Light (first step) to dark (last). */
            int shade = ns > 1 ? (int)(200 - 170.0 * s / (ns - 1)) : 120;
            g_string_append_printf(h,
                                   "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" "
                                   "fill=\"rgb(%d,%d,255)\"><title>",
                                   num(a, "%.2f", left + group * l + group * 0.1 + bar * s),
                                   num(b, "%.2f", top + ph * (1 - f)), num(c, "%.2f", bar),
                                   num(d, "%.2f", ph * f), shade / 2, shade);
            escape(h, name);
            g_string_append_printf(h, ", step %u: %.0f of %.0f</title></rect>\n", s, n, units);
        }
        g_string_append_printf(h,
                               "<text transform=\"translate(%s,%d) rotate(-40)\" "
                               "text-anchor=\"end\">",
                               num(a, "%.1f", left + group * (l + 0.5)), top + (int)ph + 12);
        escape(h, name);
        g_string_append_printf(h, " (%.0f)</text>\n", units);
    }
    g_string_append_printf(h,
                           "<rect x=\"%d\" y=\"%d\" width=\"%s\" height=\"%s\" fill=\"none\" "
                           "stroke=\"black\"/></svg><figcaption>Share of each layer's channels "
                           "(original count in brackets) left after each step, step 0 light to "
                           "step %u dark.</figcaption></figure>\n",
                           left, top, num(a, "%.0f", pw), num(b, "%.0f", ph), ns - 1);
    return TRUE;
}

/* --- confusion matrices */

static gboolean
confusion(GString *h, Reader *rd, JsonObject *report, const char *key, const char *caption)
{
    JsonObject *cm;
    JsonArray *rows, *names;
    char x[G_ASCII_DTOSTR_BUF_SIZE];

    if (!get_object(rd, report, NULL, "confusion", &cm) ||
        !get_array(rd, cm, "confusion", key, &rows) ||
        !get_array(rd, report, NULL, "class_names", &names))
        return FALSE;
    guint k = json_array_get_length(names);
    if (json_array_get_length(rows) != k) {
        g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                    "%s: \"confusion.%s\" has %u rows for %u classes", rd->source, key,
                    json_array_get_length(rows), k);
        return FALSE;
    }
    g_string_append(h, "<figure><table class=\"confusion\"><tr><th class=\"l\">true \\ "
                       "predicted</th>");
    for (guint j = 0; j < k; j++) {
        g_string_append(h, "<th>");
        escape(h, json_array_get_string_element(names, j));
        g_string_append(h, "</th>");
    }
    g_string_append(h, "</tr>\n");
    for (guint i = 0; i < k; i++) {
        JsonNode *rn = json_array_get_element(rows, i);
        JsonArray *row = JSON_NODE_HOLDS_ARRAY(rn) ? json_node_get_array(rn) : NULL;
        double total = 0;

        if (row == NULL || json_array_get_length(row) != k) {
            g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                        "%s: \"confusion.%s[%u]\" is not an array of %u counts", rd->source, key,
                        i, k);
            return FALSE;
        }
        for (guint j = 0; j < k; j++)
            total += element(row, j);
        g_string_append(h, "<tr><th class=\"l\">");
        escape(h, json_array_get_string_element(names, i));
        g_string_append(h, "</th>");
        for (guint j = 0; j < k; j++) {
            double v = element(row, j);
            g_string_append_printf(h,
                                   "<td style=\"background:rgba(%s,%s)\">%.0f</td>",
                                   i == j ? "44,160,44" : "214,39,40",
                                   num(x, "%.3f", 0.75 * v / MAX(total, 1)), v);
        }
        g_string_append(h, "</tr>\n");
    }
    g_string_append(h, "</table><figcaption>");
    escape(h, caption);
    g_string_append(h, "</figcaption></figure>\n");
    return TRUE;
}

/* --- heatmaps */

/* An uncompressed 24-bit BMP of w × h RGB triples (rows top first) as a
 * base64 data URI (owned): every browser decodes it, and it needs no codec. */
static char *
bmp_data_uri(const guint8 *rgb, int w, int h)
{
    const int stride = (w * 3 + 3) & ~3;
    const gsize size = 54 + (gsize)stride * h;
    g_autofree guint8 *bmp = g_malloc0(size);
    const guint32 fields[] = {(guint32)size, 0, 54, 40, (guint32)w, (guint32)h};

    bmp[0] = 'B', bmp[1] = 'M';
    for (gsize i = 0; i < G_N_ELEMENTS(fields); i++)
        for (int b = 0; b < 4; b++)
            bmp[2 + 4 * i + b] = (guint8)(fields[i] >> (8 * b));
    bmp[26] = 1;  /* planes */
    bmp[28] = 24; /* bits per pixel; no compression, the rest 0 */
    for (int y = 0; y < h; y++)   /* bottom row first */
        for (int x = 0; x < w; x++) {
            const guint8 *p = rgb + 3 * ((gsize)(h - 1 - y) * w + x);
            guint8 *q = bmp + 54 + (gsize)y * stride + 3 * x;
            q[0] = p[2], q[1] = p[1], q[2] = p[0];
        }
    g_autofree char *b64 = g_base64_encode(bmp, size);
    return g_strconcat("data:image/bmp;base64,", b64, NULL);
}

/* map (h × w per channel, c channels) averaged down by an integer factor so
 * that no side exceeds HEATMAP_MAX_SIDE; writes the new sides. */
static float *
shrink(const float *map, int c, int h, int w, int *out_h, int *out_w)
{
    int f = MAX((MAX(h, w) + HEATMAP_MAX_SIDE - 1) / HEATMAP_MAX_SIDE, 1);
    int sh = h / f, sw = w / f;
    float *out = g_new0(float, (gsize)c * sh * sw);

    for (int k = 0; k < c; k++)
        for (int y = 0; y < sh * f; y++)
            for (int x = 0; x < sw * f; x++)
                out[((gsize)k * sh + y / f) * sw + x / f] +=
                    map[((gsize)k * h + y) * w + x] / (float)(f * f);
    *out_h = sh, *out_w = sw;
    return out;
}

static void
picture(GString *h, const guint8 *rgb, int w, int hh, const char *caption)
{
    g_autofree char *uri = bmp_data_uri(rgb, w, hh);
    const int side = 128;

    g_string_append_printf(h,
                           "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" "
                           "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\"><image href=\"%s\" "
                           "width=\"%d\" height=\"%d\" style=\"image-rendering:pixelated\"/></svg>"
                           "<figcaption>",
                           w, hh, side, side * hh / MAX(w, 1), uri, w, hh);
    escape(h, caption);
    g_string_append(h, "</figcaption></figure>");
}

static gboolean
heatmaps(GString *h, Reader *rd, JsonObject *report)
{
    JsonObject *hm;
    JsonArray *images, *names;
    double height, width, channels;

    g_string_append(h, "<h2>What the models look at</h2>\n");
    if (!json_object_has_member(report, "heatmaps")) {
        g_string_append(h, "<p class=\"note\">This report has no heatmaps (the run had no "
                           "relevance rules for its model).</p>\n");
        return TRUE;
    }
    if (!get_object(rd, report, NULL, "heatmaps", &hm) ||
        !get_number(rd, hm, "heatmaps", "height", &height) ||
        !get_number(rd, hm, "heatmaps", "width", &width) ||
        !get_number(rd, hm, "heatmaps", "channels", &channels) ||
        !get_array(rd, hm, "heatmaps", "images", &images) ||
        !get_array(rd, report, NULL, "class_names", &names))
        return FALSE;
    if (height < 1 || width < 1 || height * width > 1 << 22 || (channels != 1 && channels != 3)) {
        g_set_error(rd->error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                    "%s: \"heatmaps\" has an impossible size (%.0f × %.0f, %.0f channels)",
                    rd->source, height, width, channels);
        return FALSE;
    }
    const int H = (int)height, W = (int)width, C = (int)channels;
    const gsize n = (gsize)H * W;
    g_autofree float *image = g_new(float, n * C), *map = g_new(float, n);
    g_string_append(h, "<p>Relevance (layer-wise relevance propagation, the lrp criterion's "
                       "rules) at the input for the image's true class: red for, blue "
                       "against, each map scaled by its largest value.</p>\n");
    for (guint i = 0; i < json_array_get_length(images); i++) {
        JsonObject *im = json_array_get_object_element(images, i);
        double cls;
        int sh, sw;

        if (im == NULL)
            return bad(rd, "heatmaps", "images[]", "an object");
        if (!get_number(rd, im, "heatmaps.images[]", "class", &cls) ||
            !get_floats(rd, im, "heatmaps.images[]", "image", (guint)(n * C), image))
            return FALSE;
        if (cls < 0 || cls >= json_array_get_length(names))
            return bad(rd, "heatmaps.images[]", "class", "a class of the task");
        g_string_append(h, "<div class=\"heatmaps\">");
        g_autofree float *small = shrink(image, C, H, W, &sh, &sw);
        g_autofree guint8 *rgb = g_new(guint8, (gsize)sh * sw * 3);
        for (gsize p = 0; p < (gsize)sh * sw; p++)
            for (int k = 0; k < 3; k++) {
                float v = small[(C == 3 ? k : 0) * (gsize)sh * sw + p];
                rgb[3 * p + k] = (guint8)(CLAMP(v, 0, 1) * 255 + 0.5f);
            }
        g_autofree char *label =
            g_strdup_printf("%s (image %u)", json_array_get_string_element(names, (guint)cls), i);
        picture(h, rgb, sw, sh, label);
        const char *const which[] = {"base", "specialist"};
        for (int m = 0; m < 2; m++) {
            if (!get_floats(rd, im, "heatmaps.images[]", which[m], (guint)n, map))
                return FALSE;
            g_autofree float *s = shrink(map, 1, H, W, &sh, &sw);
            float scale = tp_explain_scale(s, (gsize)sh * sw);
            tp_explain_colorize(s, (gsize)sh * sw, scale > 0 ? scale : 1, rgb);
            picture(h, rgb, sw, sh, m ? "specialist" : "base model");
        }
        g_string_append(h, "</div>\n");
    }
    return TRUE;
}

/* --- settings */

static gboolean
settings(GString *h, Reader *rd, JsonObject *report)
{
    JsonObject *s;

    g_string_append(h, "<h2>Settings</h2>\n");
    if (!get_object(rd, report, NULL, "settings", &s))
        return FALSE;
    g_string_append(h, "<table class=\"settings\"><tr><th class=\"l\">key</th>"
                       "<th class=\"l\">value</th></tr>\n");
    g_autoptr(GList) keys = json_object_get_members(s);
    keys = g_list_sort(keys, (GCompareFunc)g_strcmp0);
    for (GList *k = keys; k != NULL; k = k->next) {
        JsonNode *v = json_object_get_member(s, k->data);
        g_string_append(h, "<tr><td class=\"l\">");
        escape(h, k->data);
        g_string_append(h, "</td><td class=\"l\">");
        if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
            escape(h, json_node_get_string(v));
        else {
            g_autofree char *text = json_to_string(v, FALSE);
            escape(h, text);
        }
        g_string_append(h, "</td></tr>\n");
    }
    g_string_append(h, "</table>\n");
    return TRUE;
}

/* ------------------------------------------------ pages */

static void
open_page(GString *h, const char *title)
{
    g_string_append(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, "
                       "initial-scale=1\"><title>");
    escape(h, title);
    g_string_append_printf(h, "</title><style>%s</style></head>\n<body>\n<h1>", style);
    escape(h, title);
    g_string_append(h, "</h1>\n");
}

static gboolean
run_page(GString *h, Reader *rd, JsonObject *report)
{
    const char *task, *criterion, *backend;
    JsonObject *res;
    Curve curve = {0};
    gboolean ok;

    if (!get_string(rd, report, NULL, "task", &task) ||
        !get_string(rd, report, NULL, "criterion", &criterion) ||
        !get_object(rd, report, NULL, "result", &res) ||
        !get_string(rd, res, "result", "backend", &backend))
        return FALSE;
    g_autofree char *title =
        g_strdup_printf("taskprune: %s, pruned by %s", task, criterion);
    open_page(h, title);
    if (!summary(h, rd, report, res))
        return FALSE;
    g_string_append(h, "<h2>Accuracy while pruning</h2>\n");
    ok = read_curve(rd, report, &curve);
    if (ok)
        curves(h, task, &curve, 1);
    curve_clear(&curve);
    if (!ok || !channels(h, rd, report))
        return FALSE;
    g_string_append(h, "<h2>Confusion on the test split</h2>\n");
    if (!confusion(h, rd, report, "base", "base model, the task's head (step 0)") ||
        !confusion(h, rd, report, "specialist", "specialist") || !heatmaps(h, rd, report) ||
        !settings(h, rd, report))
        return FALSE;
    g_string_append(h, "<p class=\"note\">Latency measured on the ");
    escape(h, backend);
    g_string_append(h, " backend.</p>\n</body></html>\n");
    return TRUE;
}

/* The runs of a sweep: a table, then the curves of each task. */
static gboolean
sweep_page(GString *h, Reader *rd, JsonArray *runs)
{
    guint n = json_array_get_length(runs);
    g_autoptr(GPtrArray) tasks = g_ptr_array_new();
    char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE], c[G_ASCII_DTOSTR_BUF_SIZE],
        d[G_ASCII_DTOSTR_BUF_SIZE], e[G_ASCII_DTOSTR_BUF_SIZE];

    open_page(h, "taskprune: sweep");
    g_string_append(h, "<h2>Runs</h2>\n<table><tr><th class=\"l\">task</th>"
                       "<th class=\"l\">criterion</th><th>step</th><th>validation accuracy "
                       "(%)</th><th>test accuracy (%)</th><th>parameters removed (%)</th>"
                       "<th>MACs removed (%)</th><th>latency (ms)</th><th class=\"l\">stopped"
                       "</th></tr>\n");
    for (guint i = 0; i < n; i++) {
        JsonObject *run = json_array_get_object_element(runs, i), *res;
        const char *task, *criterion, *stop;
        double step, acc, test, bp, p, bm, m, l;

        if (run == NULL)
            return bad(rd, NULL, "runs[]", "an object");
        if (!get_string(rd, run, "runs[]", "task", &task) ||
            !get_string(rd, run, "runs[]", "criterion", &criterion) ||
            !get_object(rd, run, "runs[]", "result", &res) ||
            !get_number(rd, res, "runs[].result", "step", &step) ||
            !get_number(rd, res, "runs[].result", "accuracy", &acc) ||
            !get_number(rd, res, "runs[].result", "test_accuracy", &test) ||
            !get_number(rd, res, "runs[].result", "base_params", &bp) ||
            !get_number(rd, res, "runs[].result", "params", &p) ||
            !get_number(rd, res, "runs[].result", "base_macs", &bm) ||
            !get_number(rd, res, "runs[].result", "macs", &m) ||
            !get_number(rd, res, "runs[].result", "latency_ms", &l) ||
            !get_string(rd, res, "runs[].result", "stop_reason", &stop))
            return FALSE;
        if (!g_ptr_array_find_with_equal_func(tasks, task, g_str_equal, NULL))
            g_ptr_array_add(tasks, (gpointer)task);
        g_string_append(h, "<tr><td class=\"l\">");
        escape(h, task);
        g_string_append(h, "</td><td class=\"l\">");
        escape(h, criterion);
        g_string_append_printf(h, "</td><td>%.0f</td><td>%s</td><td>%s</td><td>%s</td>"
                                  "<td>%s</td><td>%s</td><td class=\"l\">",
                               step, num(a, "%.2f", 100 * acc), num(b, "%.2f", 100 * test),
                               num(c, "%.1f", 100 * (1 - p / MAX(bp, 1))),
                               num(d, "%.1f", 100 * (1 - m / MAX(bm, 1))), num(e, "%.3f", l));
        escape(h, stop);
        g_string_append(h, "</td></tr>\n");
    }
    g_string_append(h, "</table>\n");
    for (guint t = 0; t < tasks->len; t++) {
        g_autoptr(GArray) cs = g_array_new(FALSE, TRUE, sizeof(Curve));
        gboolean ok = TRUE;

        g_string_append(h, "<h2>Task ");
        escape(h, tasks->pdata[t]);
        g_string_append(h, "</h2>\n");
        for (guint i = 0; i < n && ok; i++) {
            JsonObject *run = json_array_get_object_element(runs, i);
            if (g_strcmp0(json_object_get_string_member(run, "task"), tasks->pdata[t]) != 0)
                continue;
            g_array_set_size(cs, cs->len + 1);
            ok = read_curve(rd, run, &g_array_index(cs, Curve, cs->len - 1));
        }
        if (ok)
            curves(h, tasks->pdata[t], (Curve *)cs->data, cs->len);
        for (guint i = 0; i < cs->len; i++)
            curve_clear(&g_array_index(cs, Curve, i));
        if (!ok)
            return FALSE;
    }
    g_string_append(h, "</body></html>\n");
    return TRUE;
}

char *
tp_report_html_render(const char *json, gssize len, const char *source, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GString) h = g_string_new(NULL);
    Reader rd = {source, error};
    JsonNode *root;
    JsonObject *report;
    JsonArray *runs;

    if (!json_parser_load_from_data(parser, json, len, error)) {
        g_prefix_error(error, "%s: ", source);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, TP_REPORT_ERROR, TP_REPORT_ERROR_INVALID,
                    "%s: not a report (its top level is not an object)", source);
        return NULL;
    }
    report = json_node_get_object(root);
    if (json_object_has_member(report, "runs")) {
        if (!get_array(&rd, report, NULL, "runs", &runs) || !sweep_page(h, &rd, runs))
            return NULL;
    } else if (!run_page(h, &rd, report)) {
        return NULL;
    }
    return g_string_free(g_steal_pointer(&h), FALSE);
}

gboolean
tp_report_html_write(const char *json_path, const char *html_path, GError **error)
{
    g_autofree char *json = NULL, *html = NULL;
    gsize len;

    if (!g_file_get_contents(json_path, &json, &len, error))
        return FALSE;
    html = tp_report_html_render(json, (gssize)len, json_path, error);
    return html != NULL && g_file_set_contents(html_path, html, -1, error);
}
