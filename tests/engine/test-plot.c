/* test-plot.c — engine/tp-plot.c: the guides a report draws (baseline,
 * tolerance band, the chosen point) sit where their values say, and a
 * minimum y span keeps a fraction of a point from filling the plot. Positions
 * are read back from the SVG and checked against the linear map the axis
 * ticks define. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tp-plot.h"
#include "tp-test.h"

/* The y pixel of each "<circle cx=.. cy=.." marker (not the chosen ring),
 * in order; returns the count. */
static int
marker_ys(const char *svg, double *ys, int max)
{
    int n = 0;

    for (const char *p = svg; (p = strstr(p, "<circle cx=")) != NULL && n < max; p++) {
        double cx, cy;

        ck_assert(sscanf(p, "<circle cx=\"%lf\" cy=\"%lf\"", &cx, &cy) == 2);
        ys[n++] = cy;
    }
    return n;
}

/* The y pixel of attribute `attr` ("y1" or "y") of the element with class. */
static double
element_y(const char *svg, const char *class_name, const char *attr)
{
    g_autofree char *tag = g_strdup_printf("class=\"%s\"", class_name);
    g_autofree char *key = g_strdup_printf(" %s=\"", attr);
    const char *p = strstr(svg, tag);

    ck_assert_msg(p != NULL, "no element of class %s", class_name);
    p = strstr(p, key);
    ck_assert(p != NULL);
    return g_ascii_strtod(p + strlen(key), NULL);
}

START_TEST(test_one_point_is_no_cliff)
{
    const double x[] = {0, 10, 20}, y[] = {97.0, 96.9, 96.0};
    const TpPlotSeries series = {"lrp", 3, x, y};
    const TpPlotGuides flat = {.baseline = NAN};
    const TpPlotGuides spanned = {.baseline = NAN, .min_y_span = 10};
    g_autofree char *auto_svg = tp_plot_svg("t", "x", "y", &series, 1, &flat);
    g_autofree char *span_svg = tp_plot_svg("t", "x", "y", &series, 1, &spanned);
    double a[3], s[3];

    ck_assert_int_eq(marker_ys(auto_svg, a, 3), 3);
    ck_assert_int_eq(marker_ys(span_svg, s, 3), 3);
    /* the plot area is 340 px high: fit to the data, one point is most of it */
    ck_assert_msg(a[2] - a[0] > 150, "autoscaled drop %.1f px", a[2] - a[0]);
    /* at least 10 points on the axis: 1 point is at most a tenth of it */
    ck_assert_msg(s[2] - s[0] <= 34.5 && s[2] - s[0] > 20, "spanned drop %.1f px", s[2] - s[0]);
}
END_TEST

START_TEST(test_guides)
{
    const double x[] = {0, 20, 40, 60}, y[] = {97.0, 96.8, 96.2, 93.0};
    const int chosen = 2;
    const TpPlotSeries series = {"lrp", 4, x, y};
    const TpPlotGuides guides = {
        .baseline = 97.0, .tolerance = 1.0, .marked = &chosen, .min_y_span = 10};
    g_autofree char *svg = tp_plot_svg("t", "x", "y", &series, 1, &guides);
    double ys[4], base_y, band_top, band_height, ring_y;
    double per_point;

    ck_assert_int_eq(marker_ys(svg, ys, 4), 4);
    per_point = (ys[3] - ys[0]) / (97.0 - 93.0); /* pixels per accuracy point */
    base_y = element_y(svg, "baseline", "y1");
    band_top = element_y(svg, "tolerance", "y");
    band_height = element_y(svg, "tolerance", "height");
    ring_y = element_y(svg, "chosen", "cy");
    ck_assert_msg(fabs(base_y - ys[0]) < 0.2, "baseline at %.1f, 97%% at %.1f", base_y, ys[0]);
    ck_assert_msg(fabs(band_top - base_y) < 0.2, "band top %.1f", band_top);
    ck_assert_msg(fabs(band_height - per_point) < 0.3, "band %.1f px, 1 point is %.1f px",
                  band_height, per_point);
    ck_assert_msg(fabs(ring_y - ys[2]) < 0.2, "ring at %.1f, step 2 at %.1f", ring_y, ys[2]);
    ck_assert_ptr_null(strstr(svg, "NaN"));
}
END_TEST

static Suite *
plot_suite(void)
{
    Suite *suite = suite_create("plot");
    TCase *tc = tcase_create("guides");

    tcase_add_test(tc, test_one_point_is_no_cliff);
    tcase_add_test(tc, test_guides);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(plot_suite());
}
