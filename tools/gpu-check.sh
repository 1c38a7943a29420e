#!/bin/sh
# gpu-check.sh pack DIR — packs what the GPU check needs from a build made
# here (configure with the cuda backend, then `make` and `make check`, which
# builds the test programs) into DIR, for a GPU machine that has the CUDA
# libraries, OpenBLAS and python3 with PyTorch, but neither GLib, Check nor
# protobuf-c nor libtool. There, `DIR/run.sh` runs the GPU tests and the
# benchmark (docs/cuda.md).
#
# DIR gets: run.sh; bin/ the real (not libtool wrapper) taskprune,
# test-conformance and test-cuda-parity; plugins/ every backend, criterion
# and dataset plugin but imagefolder (its image libraries are not needed
# there); lib/ libtaskprune and every shared object those need that is not
# part of the base system, the CUDA stack or OpenBLAS (found with ldd: GLib,
# GIO, PCRE2, protobuf-c, Check, ...); bench/gpu-peer.py, gpu-summary.py and
# torch_peer.py (the network gpu-peer.py times);
# MANIFEST.
#
# Run from the top of the build tree (it may differ from the source tree).
set -eu

usage() {
    echo "usage: $0 pack DIR   (from the top of a build tree with the cuda backend)" >&2
    exit 2
}

[ $# -eq 2 ] && [ "$1" = pack ] || usage
dir=$2
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(pwd)

# Libraries the GPU machine has (or must come from its own driver and CUDA
# installation): never packed.
system_libs='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libutil\.|libresolv\.|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcudnn|libnvrtc|libnvJitLink|libopenblas|libblas|libgfortran|libquadmath|libz\.)'

real_binary() {
    # The program libtool built behind its wrapper script (or the file itself).
    for candidate in "$(dirname "$1")/.libs/$(basename "$1")" "$(dirname "$1")/.libs/lt-$(basename "$1")" "$1"; do
        if [ -f "$candidate" ] && ! grep -q 'libtool' "$candidate" 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "gpu-check: no built $1 (run make and make check first)" >&2
    exit 1
}

need() {
    [ -e "$1" ] || { echo "gpu-check: $1 is missing: $2" >&2; exit 1; }
}

need backends/cuda/.libs/cuda.so "configure found no CUDA (see './configure --enable-cuda=yes')"
need tests/backends/test-cuda-parity "run 'make check' (or 'make check TESTS=') to build the tests"

rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/plugins" "$dir/bench"

cp "$(real_binary tools/taskprune)" "$dir/bin/taskprune"
cp "$(real_binary tests/backends/test-conformance)" "$dir/bin/test-conformance"
cp "$(real_binary tests/backends/test-cuda-parity)" "$dir/bin/test-cuda-parity"
cp -L engine/.libs/libtaskprune.so.1 "$dir/lib/"
for so in backends/*/.libs/*.so criteria/.libs/*.so plugins/.libs/*.so; do
    case $so in
    */imagefolder.so) ;;
    *) cp "$so" "$dir/plugins/" ;;
    esac
done
cp "$srcdir/tools/gpu-run.sh" "$dir/run.sh"
cp "$srcdir/bench/gpu-peer.py" "$srcdir/bench/gpu-summary.py" "$srcdir/bench/torch_peer.py" "$dir/bench/"
chmod +x "$dir/run.sh"

# Every shared object the packed files load, resolved here; those outside
# the system set are copied (dereferenced, under their soname).
for file in "$dir"/bin/* "$dir"/plugins/*.so; do
    LD_LIBRARY_PATH="$builddir/engine/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$file"
done | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u | while read -r name path; do
    if echo "$name" | grep -Eq "$system_libs"; then
        continue
    fi
    [ -e "$dir/lib/$name" ] || cp -L "$path" "$dir/lib/$name"
done

{
    echo "taskprune GPU check pack"
    echo "made:    $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "source:  $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "needs:   glibc >= $(for f in "$dir"/bin/* "$dir"/plugins/*.so "$dir"/lib/*; do
        objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'; done | sort -uV | tail -1 |
        sed 's/GLIBC_//'), the CUDA 13 runtime, cuBLAS, cuDNN 9, OpenBLAS, python3 + torch"
    echo "packed libraries:"
    ls "$dir/lib" | sed 's/^/  /'
} >"$dir/MANIFEST"
cat "$dir/MANIFEST"
echo "packed into $dir ($(du -sh "$dir" | cut -f1)); there, run: $dir/run.sh"
