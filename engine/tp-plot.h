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

/* What a report draws over the lines. */
typedef struct {
    double baseline;   /* a dashed horizontal line at this y (class "baseline"); NAN: none */
    double tolerance;  /* > 0 with a baseline: [baseline - tolerance, baseline] shaded
                        * (class "tolerance"), the band a step must stay in */
    const int *marked; /* per series, the index of the point to ring (class "chosen"),
                        * -1 for none; NULL: none */
    double min_y_span; /* the y axis spans at least this (0: the data's range), so that a
                        * change of a fraction of a point does not fill the plot */
} TpPlotGuides;

/* The SVG line plot (axes with ticks, one coloured line with markers per
 * series, a legend) as a string (owned). x and y ranges cover the data and
 * the guides (NULL: none); labels name the axes. */
char *tp_plot_svg(const char *title, const char *x_label, const char *y_label,
                  const TpPlotSeries *series, int n_series, const TpPlotGuides *guides);

/* Writes tp_plot_svg() to path, atomically. */
gboolean tp_plot_write_svg(const char *path, const char *title, const char *x_label,
                           const char *y_label, const TpPlotSeries *series, int n_series,
                           const TpPlotGuides *guides, GError **error);

G_END_DECLS

#endif /* TP_PLOT_H */
