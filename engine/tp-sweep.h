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
 * criterion. Each run also leaves FOLDER/TASK-CRITERION.run.ini (its rows
 * and result), from which the comparison is made.
 *
 * Runs are numbered tasks outer, criteria inner: with tasks A, B and
 * criteria x, y, run 0 is A-x, 1 A-y, 2 B-x, 3 B-y. In a job of several
 * processes (tp-comm.h) rank r makes runs r, r + size, ... each alone,
 * and rank 0 writes the comparison once all are done (docs/scaling.md).
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

/* With index >= 0: only run `index` (a Slurm job array's task), in this
 * process, writing its outputs and run file but no comparison; -1: the
 * whole sweep, as tp_sweep_run(). */
gboolean tp_sweep_run_index(GKeyFile *keyfile, const char *source, gboolean resume, int index,
                            void (*label)(const char *run, gpointer data),
                            TpPipelineProgressFunc progress, gpointer data, GError **error);

/* Checks the [sweep] group and every run's keys as tp_sweep_run() does
 * before its first run, making no folder and running nothing. */
gboolean tp_sweep_check(GKeyFile *keyfile, const char *source, GError **error);

/* Writes the comparison from the run files of every run (made by
 * tp_sweep_run_index() anywhere); fails naming the first run without one. */
gboolean tp_sweep_merge(GKeyFile *keyfile, const char *source, GError **error);

G_END_DECLS

#endif /* TP_SWEEP_H */
