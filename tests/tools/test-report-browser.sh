#!/bin/sh
# The report page in a real browser: a specialization's page opened in
# headless Chromium through the DevTools protocol (report-browser.js): every
# figure laid out with a size, every embedded picture decodes, nothing
# fetched from a network, no console error, warning or exception, no
# horizontal scrolling at 1280 px, a PDF printed with the print style. The
# screenshot and the PDF are kept as tests/tools/report-page.png and .pdf in
# the build tree. Skipped, with the reason, without chromium or node.
. "$(dirname "$0")/cli-test.sh"

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIP: no chromium to render the page in (Debian: apt-get install chromium)"
    exit 77
fi
if ! command -v node >/dev/null; then
    echo "SKIP: no node to drive chromium (Debian: apt-get install nodejs)"
    exit 77
fi

data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 3 -t batch-size=16 -o "$dir/base.onnx"
expect 0 "parameters .*removed" -- specialize "$dir/base.onnx" $data --classes class-0,class-2,class-3 \
    --criterion lrp -p step=0.2 -p goal=0.5 -f steps=5 -o "$dir/s.onnx"
mkdir -p tests/tools
if node "$TP_SOURCE_DIR/tests/tools/report-browser.js" "$browser" "$dir/s.onnx.report.html" \
    tests/tools/report-page.png tests/tools/report-page.pdf; then
    echo "ok: the page in $browser (screenshot: tests/tools/report-page.png)"
else
    echo "FAIL: the page in $browser"
    status=1
fi
exit $status
