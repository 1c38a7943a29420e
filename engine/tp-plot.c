/* tp-plot.c — a small SVG line plot writer (no dependencies): a frame, ticks
 * at round numbers, one polyline with markers per series and a legend, and
 * the guides of tp-plot.h (baseline, tolerance band, chosen points, a
 * minimum y span). */
#include "config.h"

#include <math.h>

#include "tp-plot.h"

#define WIDTH 720
#define HEIGHT 440
#define LEFT 70
#define RIGHT 180
#define TOP 40
#define BOTTOM 60

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

/* A round tick spacing for the range [lo, hi]. */
static double
tick_step(double lo, double hi)
{
    double raw = (hi - lo) / 6, base = pow(10, floor(log10(raw)));

    if (raw / base >= 5)
        return 5 * base;
    if (raw / base >= 2)
        return 2 * base;
    return base;
}

static void
escape(GString *out, const char *s)
{
    g_autofree char *e = g_markup_escape_text(s, -1);
    g_string_append(out, e);
}

char *
tp_plot_svg(const char *title, const char *x_label, const char *y_label, const TpPlotSeries *series,
            int n_series, const TpPlotGuides *guides)
{
    GString *svg = g_string_new(NULL);
    const gboolean baseline = guides != NULL && isfinite(guides->baseline);
    const double band = baseline && guides->tolerance > 0 ? guides->tolerance : 0;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const double pw = WIDTH - LEFT - RIGHT, ph = HEIGHT - TOP - BOTTOM;
    char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE];

    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            x0 = MIN(x0, series[s].x[i]);
            x1 = MAX(x1, series[s].x[i]);
            y0 = MIN(y0, series[s].y[i]);
            y1 = MAX(y1, series[s].y[i]);
        }
    if (!isfinite(x0)) {
        x0 = y0 = 0;
        x1 = y1 = 1;
    }
    if (baseline) {
        y0 = MIN(y0, guides->baseline - band);
        y1 = MAX(y1, guides->baseline);
    }
    if (guides != NULL && y1 - y0 < guides->min_y_span)
        y0 = y1 - guides->min_y_span;
    if (x1 - x0 < 1e-9)
        x1 = x0 + 1;
    if (y1 - y0 < 1e-9)
        y0 -= 1, y1 += 1;
    double xs = tick_step(x0, x1), ys = tick_step(y0, y1);
    x0 = floor(x0 / xs) * xs, x1 = ceil(x1 / xs) * xs;
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
#define PX(v) (LEFT + ((v)-x0) / (x1 - x0) * pw)
#define PY(v) (TOP + (1 - ((v)-y0) / (y1 - y0)) * ph)

    g_string_append_printf(svg,
                           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                           "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                           "font-size=\"12\">\n"
                           "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                           "<text x=\"%d\" y=\"24\" font-size=\"15\">",
                           WIDTH, HEIGHT, WIDTH, HEIGHT, LEFT);
    escape(svg, title);
    g_string_append(svg, "</text>\n");
    for (double v = x0; v <= x1 + xs / 2; v += xs)
        g_string_append_printf(svg,
                               "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                               "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                               PX(v), TOP, PX(v), HEIGHT - BOTTOM, PX(v), HEIGHT - BOTTOM + 16,
                               g_ascii_formatd(a, sizeof(a), "%g", v));
    for (double v = y0; v <= y1 + ys / 2; v += ys)
        g_string_append_printf(svg,
                               "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                               "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                               LEFT, PY(v), WIDTH - RIGHT, PY(v), LEFT - 6, PY(v) + 4,
                               g_ascii_formatd(b, sizeof(b), "%g", v));
    g_string_append_printf(svg,
                           "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                           "stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                           LEFT, TOP, pw, ph, LEFT + pw / 2, HEIGHT - 18);
    escape(svg, x_label);
    g_string_append_printf(svg,
                           "</text>\n<text transform=\"translate(18,%.1f) rotate(-90)\" "
                           "text-anchor=\"middle\">",
                           TOP + ph / 2);
    escape(svg, y_label);
    g_string_append(svg, "</text>\n");
    if (band > 0)
        g_string_append_printf(svg,
                               "<rect class=\"tolerance\" x=\"%d\" y=\"%.1f\" width=\"%.0f\" "
                               "height=\"%.1f\" fill=\"#2ca02c\" fill-opacity=\"0.12\"/>\n",
                               LEFT, PY(guides->baseline), pw,
                               PY(guides->baseline - band) - PY(guides->baseline));
    if (baseline)
        g_string_append_printf(svg,
                               "<line class=\"baseline\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                               "y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"6 4\"/>"
                               "<text x=\"%d\" y=\"%.1f\" fill=\"#2ca02c\">baseline</text>\n",
                               LEFT, PY(guides->baseline), WIDTH - RIGHT, PY(guides->baseline),
                               WIDTH - RIGHT + 6, PY(guides->baseline) + 4);
    for (int s = 0; s < n_series; s++) {
        const char *colour = colours[s % G_N_ELEMENTS(colours)];
        g_string_append_printf(svg,
                               "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                               "points=\"",
                               colour);
        for (int i = 0; i < series[s].n; i++)
            g_string_append_printf(svg, "%.1f,%.1f ", PX(series[s].x[i]), PY(series[s].y[i]));
        g_string_append(svg, "\"/>\n");
        for (int i = 0; i < series[s].n; i++)
            g_string_append_printf(svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                                   PX(series[s].x[i]), PY(series[s].y[i]), colour);
        if (guides != NULL && guides->marked != NULL && guides->marked[s] >= 0 &&
            guides->marked[s] < series[s].n)
            g_string_append_printf(svg,
                                   "<circle class=\"chosen\" cx=\"%.1f\" cy=\"%.1f\" r=\"8\" "
                                   "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                                   PX(series[s].x[guides->marked[s]]),
                                   PY(series[s].y[guides->marked[s]]), colour);
        g_string_append_printf(svg,
                               "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                               "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">",
                               WIDTH - RIGHT + 14, TOP + 10 + 20 * s, WIDTH - RIGHT + 40,
                               TOP + 10 + 20 * s, colour, WIDTH - RIGHT + 46, TOP + 14 + 20 * s);
        escape(svg, series[s].name);
        g_string_append(svg, "</text>\n");
    }
    g_string_append(svg, "</svg>\n");
#undef PX
#undef PY
    return g_string_free(svg, FALSE);
}

gboolean
tp_plot_write_svg(const char *path, const char *title, const char *x_label, const char *y_label,
                  const TpPlotSeries *series, int n_series, const TpPlotGuides *guides,
                  GError **error)
{
    g_autofree char *svg = tp_plot_svg(title, x_label, y_label, series, n_series, guides);

    return g_file_set_contents(path, svg, -1, error);
}
