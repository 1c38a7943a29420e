/* cmd-report.c — `taskprune report RUN.report.json [-o PAGE.html]`: rebuilds
 * the HTML page a run or sweep wrote from its report JSON
 * (engine/tp-report-html.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tp-cli.h"
#include "tp-report-html.h"

static char *output;

static const GOptionEntry options[] = {
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
     "Write the page here (default: the report's name with .html for .json)", "PAGE.html"},
    {NULL},
};

static int
run(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *page = NULL;

    if (!tp_cli_parse(&tp_cmd_report, &argc, &argv))
        return 2;
    if (argc != 2) {
        tp_cli_error("report: give one report JSON (see 'taskprune help report')");
        return 2;
    }
    if (output != NULL)
        page = g_strdup(output);
    else if (g_str_has_suffix(argv[1], ".json"))
        page = g_strdup_printf("%.*s.html", (int)strlen(argv[1]) - 5, argv[1]);
    else
        page = g_strconcat(argv[1], ".html", NULL);
    if (g_str_equal(page, argv[1])) {
        tp_cli_error("report: the page would replace its report %s; give another -o", argv[1]);
        return 2;
    }
    if (!tp_report_html_write(argv[1], page, &error))
        return tp_cli_fail(g_steal_pointer(&error));
    printf("page %s\n", page);
    return 0;
}

const TpCommand tp_cmd_report = {
    /* .name = */ "report",
    /* .summary = */ "Rebuild the HTML page of a run or sweep from its report JSON",
    /* .parameters = */ "REPORT.json",
    /* .description = */
    "Writes the self-contained page (no network: figures are inline SVG) that every\n"
    "specialize or run writes beside its report as NAME.report.html, and a sweep as\n"
    "FOLDER/comparison.html: the summary, accuracy against parameters and MACs removed,\n"
    "channels kept per layer, confusion matrices, heatmaps before and after, the settings.\n\n"
    "Example: taskprune report footwear.report.json -o footwear.html",
    /* .run = */ run,
    /* .options = */ options,
};
