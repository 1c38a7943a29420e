#!/bin/sh
# deb-check.sh — the Debian packaging, end to end, as root on Debian 12:
#  1. installs the packaging tools and the build dependencies;
#  2. builds the packages (dpkg-buildpackage -us -uc -b) from the committed
#     tree (git archive HEAD) in a scratch folder, so nothing lands in the
#     repository;
#  3. runs lintian on the result and fails on any error (E:);
#  4. makes a clean Debian 12 with mmdebstrap, installs the .debs there with
#     apt (which brings their dependencies; taskprune-cuda, which needs
#     NVIDIA's libraries, is only listed) and runs the installed taskprune:
#     its plugins with no environment set, the SDK example built against
#     libtaskprune-dev, and the demo (examples/demo.sh, from
#     /usr/share/taskprune) on Fashion-MNIST;
#  5. prints the lintian output and `dpkg -L` of every package.
#
# Usage: tools/deb-check.sh [--keep]
#   --keep           keep the scratch folder (its path is printed)
#   DEMO_EPOCHS=N    training epochs of the demo's base model (default 1)
#   MIRROR=URL       the Debian mirror for the clean system
#                    (default http://deb.debian.org/debian)
set -eu

keep=no
[ "${1:-}" = --keep ] && keep=yes
: "${DEMO_EPOCHS:=1}"
: "${MIRROR:=http://deb.debian.org/debian}"
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version 2>/dev/null || echo 0)
scratch=$(mktemp -d /tmp/taskprune-deb.XXXXXX)
cleanup() {
    if [ "$keep" = yes ]; then
        echo "deb-check: scratch folder kept: $scratch"
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT
step() { printf '\n== deb-check: %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive

step "packaging tools and build dependencies"
apt-get update -q
apt-get install -y -q --no-install-recommends \
    debhelper devscripts lintian dh-autoreconf fakeroot mmdebstrap git
src="$scratch/taskprune-$version"
mkdir "$src"
git -C "$root" archive HEAD | tar -x -C "$src"
echo "building $(git -C "$root" rev-parse --short HEAD) in $src"
apt-get build-dep -y -q --no-install-recommends "$src"

step "dpkg-buildpackage -us -uc -b"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b) >"$scratch/build.log" 2>&1 || {
    tail -n 60 "$scratch/build.log"
    echo "deb-check: FAIL: the package build failed ($scratch/build.log)"
    keep=yes
    exit 1
}
grep -E '^(PASS|SKIP|FAIL|ERROR|# )' "$scratch/build.log" || true
ls "$scratch"/*.deb
changes=$(ls "$scratch"/*.changes)

step "lintian"
lintian --info --display-info --pedantic "$changes" >"$scratch/lintian.log" 2>&1 || true
cat "$scratch/lintian.log"
errors=$(grep -c '^E: ' "$scratch/lintian.log" || true)
echo "lintian: $errors errors, $(grep -c '^W: ' "$scratch/lintian.log" || true) warnings"

step "a clean Debian 12 with the packages installed ($MIRROR)"
mkdir "$scratch/debs"
# taskprune-cuda needs NVIDIA's CUDA libraries, which a clean Debian lacks:
# its contents are listed here, the rest is installed and run there.
for deb in "$scratch"/*.deb; do
    case $deb in
    *taskprune-cuda*) echo "-- dpkg -c $(basename "$deb")"; dpkg -c "$deb" | awk '{ print $6 }' ;;
    *) cp "$deb" "$scratch/debs/" ;;
    esac
done
cp -r "$root/examples/my-criterion" "$scratch/sdk"
rm -f "$scratch/sdk/linf.so"
cat >"$scratch/in-chroot.sh" <<EOS
set -eu
export DEBIAN_FRONTEND=noninteractive TASKPRUNE_PLUGIN_PATH=
unset TASKPRUNE_PLUGIN_PATH
cd /tmp
echo "== installed files"
for deb in /tmp/debs/*.deb; do
    package=\$(dpkg-deb -f "\$deb" Package)
    echo "-- dpkg -L \$package"
    dpkg -L "\$package" | grep -v '^/\.\$'
done
echo "== taskprune --version, plugins (no environment set)"
taskprune --version
taskprune plugins
taskprune plugins --describe cpu | grep 'file:'
echo "== the SDK example against libtaskprune-dev"
make -C /tmp/sdk
make -C /tmp/sdk install
taskprune plugins --describe linf | head -3
rm "\$(pkg-config --variable=criteriadir taskprune-1)/linf.so"
echo "== bash completion"
bash -c '. /usr/share/bash-completion/completions/taskprune;
    COMP_WORDS=(taskprune specialize --criterion ""); COMP_CWORD=3; _taskprune;
    echo "taskprune specialize --criterion <TAB>: \${COMPREPLY[*]}"'
echo "== the demo (DEMO_EPOCHS=$DEMO_EPOCHS)"
mkdir -p /tmp/demo && cd /tmp/demo
DEMO_EPOCHS=$DEMO_EPOCHS sh /usr/share/taskprune/demo.sh
EOS
mmdebstrap --variant=apt bookworm "$scratch/chroot" "$MIRROR" \
    --customize-hook="copy-in $scratch/debs $scratch/sdk $scratch/in-chroot.sh /tmp" \
    --customize-hook='chroot "$1" sh -c "apt-get install -y -q --no-install-recommends /tmp/debs/*.deb dataset-fashion-mnist gcc make pkgconf libc6-dev"' \
    --customize-hook='chroot "$1" sh /tmp/in-chroot.sh' \
    >"$scratch/chroot.log" 2>&1 || {
    tail -n 80 "$scratch/chroot.log"
    echo "deb-check: FAIL: installing or running the packages on a clean system failed ($scratch/chroot.log)"
    keep=yes
    exit 1
}
sed -n '/^== installed files/,$p' "$scratch/chroot.log" | grep -v '^I: '

step "summary"
echo "packages: $(cd "$scratch" && ls *.deb | tr '\n' ' ')"
echo "lintian: $errors errors"
if [ "$errors" -ne 0 ]; then
    echo "deb-check: FAIL: lintian reports errors"
    exit 1
fi
echo "deb-check: ok"
