/* test-report-html.c — engine/tp-report-html.c: a run's page escapes what
 * the report says, shades confusion cells by their row's share, embeds
 * heatmaps whose pixels are tp_explain_colorize()'s colours in BMP order
 * (rows bottom first, BGR), names the member a broken report lacks, and a
 * sweep's page draws each task once with all its criteria. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tp-explain.h"
#include "tp-report-html.h"
#include "tp-test.h"

/* A run's report: 2 classes, 2 layers, 3 steps, one 2 × 3 heatmap. @TASK@,
 * @RESULT@ and @CHANNELS@ are replaced by the tests. */
static const char run_template[] =
    "{\"task\": \"@TASK@\", \"criterion\": \"lrp\", \"classes\": [3, 1],"
    " \"class_names\": [\"cat\", \"dog <2>\"],"
    " \"layers\": [{\"name\": \"conv1\", \"units\": 8}, {\"name\": \"fc\", \"units\": 16}],"
    " \"steps\": ["
    "  {\"step\": 0, \"params_removed\": 0, \"macs_removed\": 0, \"accuracy\": 0.9,"
    "   \"channels\": [8, 16]},"
    "  {\"step\": 1, \"params_removed\": 0.2, \"macs_removed\": 0.3, \"accuracy\": 0.89,"
    "   \"channels\": @CHANNELS@},"
    "  {\"step\": 2, \"params_removed\": 0.4, \"macs_removed\": 0.5, \"accuracy\": 0.7,"
    "   \"channels\": [4, 8]}],"
    " \"confusion\": {\"base\": [[3, 1], [0, 4]], \"specialist\": [[2, 2], [1, 3]]},"
    " \"heatmaps\": {\"height\": 2, \"width\": 3, \"channels\": 1, \"images\": [{\"class\": 1,"
    "   \"image\": [0, 0.2, 0.4, 0.6, 0.8, 1],"
    "   \"base\": [1, -0.5, 0, 0.25, -1, 2], \"specialist\": [0, 0, 0, 0, 0, 0]}]},"
    " \"settings\": {\"prune.step\": \"0.05\"},"
    " \"result\": {@RESULT@\"step\": 1, \"base_classes\": 10, \"baseline_accuracy\": 0.9,"
    "   \"base_accuracy\": 0.85, \"base_test_accuracy\": 0.88, \"test_accuracy\": 0.87,"
    " \"base_params\": 1000,"
    "   \"params\": 800, \"base_macs\": 5000, \"macs\": 3500, \"base_bytes\": 4000,"
    "   \"bytes\": 3300, \"base_latency_ms\": 2, \"latency_ms\": 1.5,"
    "   \"latency_within_noise\": false, \"accuracy\": 0.89, \"tolerance\": 2,"
    "   \"stop_reason\": \"accuracy left the tolerance\", \"backend\": \"cpu\"}}";

static char *
replace(const char *text, const char *what, const char *with)
{
    g_auto(GStrv) parts = g_strsplit(text, what, -1);
    return g_strjoinv(with, parts);
}

static char *
run_report(const char *task, const char *result_extra, const char *channels)
{
    g_autofree char *a = replace(run_template, "@TASK@", task);
    g_autofree char *b = replace(a, "@RESULT@", result_extra);
    return replace(b, "@CHANNELS@", channels);
}

static char *
render(const char *json)
{
    g_autoptr(GError) error = NULL;
    char *html = tp_report_html_render(json, -1, "test.json", &error);

    ck_assert_msg(html != NULL, "%s", error ? error->message : "");
    return html;
}

static void
assert_fails(const char *json, const char *member)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *html = tp_report_html_render(json, -1, "test.json", &error);

    ck_assert_ptr_null(html);
    ck_assert_msg(error != NULL && strstr(error->message, "test.json") &&
                      strstr(error->message, member),
                  "the message names %s: %s", member, error ? error->message : "(none)");
}

/* The n-th BMP data URI of html, decoded (owned; NULL when there is none). */
static guint8 *
nth_bmp(const char *html, int n, gsize *len)
{
    const char *key = "data:image/bmp;base64,", *p = html;

    for (int i = 0; i <= n; i++) {
        p = strstr(p, key);
        if (p == NULL)
            return NULL;
        p += strlen(key);
    }
    g_autofree char *b64 = g_strndup(p, strcspn(p, "\""));
    return g_base64_decode(b64, len);
}

static guint32
le32(const guint8 *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (guint32)p[3] << 24;
}

START_TEST(test_run_page)
{
    g_autofree char *json = run_report("pets <b>&", "", "[6, 12]");
    g_autofree char *html = render(json);
    const char *sections[] = {"Summary", "Accuracy while pruning", "Channels kept per layer",
                              "Confusion on the test split", "What the models look at",
                              "Settings"};

    for (gsize i = 0; i < G_N_ELEMENTS(sections); i++) {
        g_autofree char *h2 = g_strdup_printf("<h2>%s</h2>", sections[i]);
        ck_assert_msg(strstr(html, h2) != NULL, "no section %s", sections[i]);
    }
    ck_assert_ptr_null(strstr(html, "<b>"));
    ck_assert_ptr_nonnull(strstr(html, "pets &lt;b&gt;&amp;"));
    ck_assert_ptr_nonnull(strstr(html, "dog &lt;2&gt;"));
    /* Nothing to fetch: no script, no link, no src. */
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_ptr_null(strstr(html, " src="));
    /* Two curves (parameters, MACs), each ringing step 1. */
    {
        int rings = 0;
        for (const char *p = html; (p = strstr(p, "class=\"chosen\"")) != NULL; p++)
            rings++;
        ck_assert_int_eq(rings, 2);
    }
    /* One bar per layer and step; step 1 keeps 6 of conv1's 8. */
    ck_assert_ptr_nonnull(strstr(html, "conv1, step 1: 6 of 8</title>"));
    ck_assert_ptr_nonnull(strstr(html, "fc, step 2: 8 of 16</title>"));
    /* Summary: the change in parameters is measured against the base. */
    ck_assert_ptr_nonnull(strstr(html, "<td>1,000</td><td>800</td><td>-20.0%</td>"));
    ck_assert_ptr_nonnull(strstr(html, "1.33&times; as fast"));
}
END_TEST

/* Each cell's shade is 0.75 times its share of the row, green on the
 * diagonal and red off it. */
START_TEST(test_confusion_shading)
{
    g_autofree char *json = run_report("t", "", "[6, 12]");
    g_autofree char *html = render(json);
    const double rows[2][2] = {{3, 1}, {0, 4}};

    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            char share[G_ASCII_DTOSTR_BUF_SIZE];
            g_ascii_formatd(share, sizeof(share), "%.3f",
                            0.75 * rows[i][j] / (rows[i][0] + rows[i][1]));
            g_autofree char *cell = g_strdup_printf("rgba(%s,%s)\">%.0f</td>",
                                                    i == j ? "44,160,44" : "214,39,40", share,
                                                    rows[i][j]);
            ck_assert_msg(strstr(html, cell) != NULL, "no cell %s", cell);
        }
}
END_TEST

/* Pictures: the image in grey, then the base model's heatmap in the
 * diverging map scaled by its largest |value|, as BMPs. */
START_TEST(test_heatmap_pixels)
{
    g_autofree char *json = run_report("t", "", "[6, 12]");
    g_autofree char *html = render(json);
    const float image[6] = {0, 0.2f, 0.4f, 0.6f, 0.8f, 1}, base[6] = {1, -0.5f, 0, 0.25f, -1, 2};
    guint8 want[18];
    gsize len;

    tp_explain_colorize(base, 6, 2, want);
    for (int pic = 0; pic < 2; pic++) {
        g_autofree guint8 *bmp = nth_bmp(html, pic, &len);
        ck_assert_ptr_nonnull(bmp);
        ck_assert_uint_eq(len, 54 + 2 * 12); /* rows of 9 bytes padded to 12 */
        ck_assert(bmp[0] == 'B' && bmp[1] == 'M');
        ck_assert_uint_eq(le32(bmp + 2), len);
        ck_assert_uint_eq(le32(bmp + 10), 54);
        ck_assert_uint_eq(le32(bmp + 18), 3);
        ck_assert_uint_eq(le32(bmp + 22), 2);
        ck_assert_uint_eq(bmp[28], 24);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++) {
                const guint8 *px = bmp + 54 + (1 - y) * 12 + 3 * x; /* bottom row first */
                for (int k = 0; k < 3; k++) {
                    int v = pic == 0 ? (int)(image[3 * y + x] * 255 + 0.5f)
                                     : want[3 * (3 * y + x) + k];
                    ck_assert_msg(px[2 - k] == v, "picture %d pixel (%d, %d) channel %d: %d, want %d",
                                  pic, x, y, k, px[2 - k], v);
                }
            }
    }
}
END_TEST

START_TEST(test_broken_reports)
{
    g_autofree char *good = run_report("t", "", "[6, 12]");
    g_autofree char *short_channels = run_report("t", "", "[6]");
    g_autoptr(GError) error = NULL;

    g_autofree char *renamed = replace(good, "\"base_accuracy\"", "\"base_acc\"");
    assert_fails(renamed, "result.base_accuracy");
    assert_fails(short_channels, "steps[1].channels");
    g_autofree char *string_task = replace(good, "\"task\": \"t\"", "\"task\": 7");
    assert_fails(string_task, "\"task\"");
    assert_fails("[1, 2]", "not a report");
    ck_assert_ptr_null(tp_report_html_render("{\"task\": ", -1, "test.json", &error));
    ck_assert_ptr_nonnull(strstr(error->message, "test.json"));
}
END_TEST

/* A sweep: two criteria on one task, one on another: a row per run, and one
 * pair of curves per task with a line per criterion. */
START_TEST(test_sweep_page)
{
    g_autofree char *a = run_report("shoes", "", "[6, 12]");
    g_autofree char *b0 = run_report("shoes", "", "[6, 12]");
    g_autofree char *b = replace(b0, "\"criterion\": \"lrp\"", "\"criterion\": \"taylor\"");
    g_autofree char *c = run_report("tops", "", "[6, 12]");
    g_autofree char *json = g_strdup_printf("{\"runs\": [%s, %s, %s]}", a, b, c);
    g_autofree char *html = render(json);
    int tasks = 0, rows = 0;

    for (const char *p = html; (p = strstr(p, "<h2>Task ")) != NULL; p++)
        tasks++;
    for (const char *p = html; (p = strstr(p, "<tr><td class=\"l\">")) != NULL; p++)
        rows++;
    ck_assert_int_eq(tasks, 2);
    ck_assert_int_eq(rows, 3);
    /* The shoes plots have both criteria in their legend. */
    const char *shoes = strstr(html, "<h2>Task shoes</h2>"), *tops = strstr(html, "<h2>Task tops");
    ck_assert(shoes != NULL && tops != NULL && shoes < tops);
    g_autofree char *section = g_strndup(shoes, (gsize)(tops - shoes));
    ck_assert_ptr_nonnull(strstr(section, ">lrp</text>"));
    ck_assert_ptr_nonnull(strstr(section, ">taylor</text>"));
}
END_TEST

static Suite *
report_suite(void)
{
    Suite *suite = suite_create("report-html");
    TCase *tc = tcase_create("pages");

    tcase_add_test(tc, test_run_page);
    tcase_add_test(tc, test_confusion_shading);
    tcase_add_test(tc, test_heatmap_pixels);
    tcase_add_test(tc, test_broken_reports);
    tcase_add_test(tc, test_sweep_page);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(report_suite());
}
