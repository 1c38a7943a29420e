/* tp.h — libtaskprune, all public headers. */
#ifndef TP_H
#define TP_H

#include "tp-plugin.h"
#include "tp-params.h"
#include "tp-registry.h"
#include "tp-backend.h"
#include "tp-bench.h"
#include "tp-comm.h"
#include "tp-criterion.h"
#include "tp-dataset.h"
#include "tp-explain.h"
#include "tp-loader.h"
#include "tp-lock.h"
#include "tp-lrp.h"
#include "tp-tensor.h"
#include "tp-model.h"
#include "tp-normalization.h"
#include "tp-keyfile.h"
#include "tp-onnx.h"
#include "tp-pipeline.h"
#include "tp-plot.h"
#include "tp-report-html.h"
#include "tp-prune.h"
#include "tp-sgd.h"
#include "tp-sweep.h"
#include "tp-train.h"
#include "tp-zoo.h"

#endif /* TP_H */
