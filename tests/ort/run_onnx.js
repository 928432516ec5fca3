#!/usr/bin/env node
// tests/ort/run_onnx.js: runs an ONNX model with ONNX Runtime (npm onnxruntime-node, CPU).
//
//   node tests/ort/run_onnx.js MODEL.onnx IN.npy [IN2.npy ...] -o OUTDIR
//
// The .npy files feed the model's inputs in order (float32). Every output is written as
// OUTDIR/NAME.npy (characters outside [A-Za-z0-9._-] in NAME become '_'), and its name, shape and
// file are printed, one line each. Single-threaded, so results are reproducible.
'use strict';
const path = require('path');
const fs = require('fs');
const { readNpy, writeNpy } = require('./npy');

function loadOrt() {
    try {
        return require('onnxruntime-node');
    } catch (e) {
        console.error('run_onnx: onnxruntime-node is not installed (run scripts/setup.sh, which installs it into ./node_modules)');
        process.exit(2);
    }
}

async function runModel(ort, model, inputs) {
    const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    if (inputs.length !== sess.inputNames.length)
        throw new Error(`${model}: takes ${sess.inputNames.length} inputs, ${inputs.length} given`);
    const feeds = {};
    sess.inputNames.forEach((name, i) => { feeds[name] = new ort.Tensor('float32', inputs[i].data, inputs[i].shape); });
    const res = await sess.run(feeds);
    return sess.outputNames.map(name => ({ name, shape: res[name].dims.slice(), data: res[name].data }));
}

async function main(argv) {
    const o = argv.indexOf('-o');
    if (argv.length < 4 || o < 2 || o !== argv.length - 2) {
        console.error('usage: node run_onnx.js MODEL.onnx IN.npy [IN2.npy ...] -o OUTDIR');
        process.exit(2);
    }
    const ort = loadOrt();
    const outDir = argv[o + 1];
    const inputs = argv.slice(1, o).map(readNpy);
    fs.mkdirSync(outDir, { recursive: true });
    for (const r of await runModel(ort, argv[0], inputs)) {
        const file = path.join(outDir, r.name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy');
        writeNpy(file, r.shape, r.data);
        console.log(`${r.name} [${r.shape.join(', ')}] ${file}`);
    }
}

if (require.main === module)
    main(process.argv.slice(2)).catch(e => { console.error(`run_onnx: ${e.message}`); process.exit(1); });

module.exports = { loadOrt, runModel };
