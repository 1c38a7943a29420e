#!/bin/sh
# Installs what building and testing taskprune needs on Debian 12 (run as root).
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkgconf \
    libglib2.0-dev libopenblas-dev check
