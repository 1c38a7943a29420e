// ONNX Runtime's side of bench/run.py: eval-mode inference of an ONNX model.
//     node ort-peer.js MODEL.onnx BATCH RUNS [THREADS [C,H,W]]
// Looks for onnxruntime-node in NODE_PATH (bench/run.py points it at
// tests/ort/node_modules). The input is BATCH x C x H x W (C,H,W default
// 1,28,28). Prints one JSON object: every timed run in ms (after warm-up
// runs) and the peak RSS in KiB.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
    const [model, batch, runs, threads, chw] = process.argv.slice(2);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: Number(threads || 2),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
    });
    const dims = [Number(batch), ...(chw || '1,28,28').split(',').map(Number)];
    const data = new Float32Array(dims.reduce((a, b) => a * b));
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
    const ms = [];
    for (let r = 0; r < 3 + Number(runs); r++) {
        const start = process.hrtime.bigint();
        await session.run(feeds);
        if (r >= 3) ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    console.log(JSON.stringify({ ms, peak_rss_kib: Math.round(process.resourceUsage().maxRSS) }));
}

main().catch((e) => {
    console.error(`ort-peer.js: ${e.message}`);
    process.exit(1);
});
