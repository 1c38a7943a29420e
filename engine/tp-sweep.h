/* tp-sweep.h — one pipeline run over several criteria and/or target tasks,
 * with one comparison: the [sweep] group of a pipeline keyfile.
 *
 *   [sweep]
 *   criteria = magnitude,taylor,lrp,random
 *   tasks = footwear=Sandal,Sneaker,Ankle boot;tops=0,1
 *   folder = results/
 *
 * Each (task, criterion) runs the pipeline with [task] classes and
 * [criterion] plugin replaced (keys of a group [criterion NAME] are that
 * criterion's parameters), writing its outputs to FOLDER/TASK-CRITERION.*;
 * then FOLDER/comparison.json and .csv hold one row per run and
 * FOLDER/TASK.svg plots accuracy against parameters removed, one line per
 * criterion.
 */
#ifndef TP_SWEEP_H
#define TP_SWEEP_H

#include <glib.h>

#include "tp-pipeline.h"

G_BEGIN_DECLS

/* Runs the sweep keyfile describes (it must have a [sweep] group). Messages
 * name source. progress gets every run's progress; `label` (may be NULL)
 * is called with "task / criterion" before each run. */
gboolean tp_sweep_run(GKeyFile *keyfile, const char *source, gboolean resume,
                      void (*label)(const char *run, gpointer data),
                      TpPipelineProgressFunc progress, gpointer data, GError **error);

G_END_DECLS

#endif /* TP_SWEEP_H */
