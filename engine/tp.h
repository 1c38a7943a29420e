/* tp.h — libtaskprune, all public headers. */
#ifndef TP_H
#define TP_H

#include "tp-plugin.h"
#include "tp-params.h"
#include "tp-registry.h"
#include "tp-backend.h"
#include "tp-tensor.h"
#include "tp-model.h"
#include "tp-onnx.h"
#include "tp-sgd.h"
#include "tp-zoo.h"

#endif /* TP_H */
