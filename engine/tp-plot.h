/* tp-plot.h — line plots as SVG files, for reports: accuracy against the
 * share of parameters removed, one line per criterion. */
#ifndef TP_PLOT_H
#define TP_PLOT_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    const char *name; /* the legend entry */
    int n;
    const double *x, *y;
} TpPlotSeries;

/* Writes an SVG line plot (axes with ticks, one coloured line with markers
 * per series, a legend) to path, atomically. x and y ranges cover the data;
 * labels name the axes. */
gboolean tp_plot_write_svg(const char *path, const char *title, const char *x_label,
                           const char *y_label, const TpPlotSeries *series, int n_series,
                           GError **error);

G_END_DECLS

#endif /* TP_PLOT_H */
