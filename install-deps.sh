#!/bin/sh
# Installs what building and testing taskprune needs on Debian 12 (run as
# root, from the source folder): compilers and libraries from Debian, ONNX's
# conformance cases, and ONNX Runtime (npm's onnxruntime-node, into
# tests/ort/node_modules) for the interoperability test.
set -e
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkgconf \
    libglib2.0-dev libjson-glib-dev libopenblas-dev check \
    protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata \
    libgdk-pixbuf-2.0-dev dataset-fashion-mnist \
    libopenmpi-dev openmpi-bin \
    strace
command -v npm >/dev/null || apt-get install -y --no-install-recommends nodejs npm
# The package carries its CPU binaries; skip its download step.
(cd tests/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save)
