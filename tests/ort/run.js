// Runs an ONNX model in ONNX Runtime (onnxruntime-node) for tests/engine/test-onnx.c:
//     node run.js MODEL.onnx INPUT.bin NxCxHxW OUTPUT.bin
// INPUT.bin and OUTPUT.bin hold raw little-endian float32; one intra-op thread.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
    const [model, inputFile, dims, outputFile] = process.argv.slice(2);
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const bytes = fs.readFileSync(inputFile);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const input = new ort.Tensor('float32', data, dims.split('x').map(Number));
    const outputs = await session.run({ [session.inputNames[0]]: input });
    const y = outputs[session.outputNames[0]].data;
    fs.writeFileSync(outputFile, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}

main().catch((e) => {
    console.error(e.message);
    process.exit(1);
});
