#!/usr/bin/env node
// tests/ort/run_export.js: runs one model written by `sdc export` with ONNX Runtime and compares
// its output with sdc's own result for the same inputs.
//
//   node tests/ort/run_export.js MODEL.onnx REF.npy NAME=IN.npy [NAME=IN.npy ...] [--label TEXT]
//
// Each NAME=IN.npy feeds input NAME; an input the model declares as int32 gets the .npy's values
// (float32 holding integers) converted. Prints one line with max |ort - ref| and max |ref|, and
// exits 1 unless the shapes match and max |ort - ref| <= 1e-4 * max(1, max |ref|) (the deploy
// contract's tolerance), 2 on a usage or runtime error. Single-threaded, reproducible.
'use strict';
const { readNpy } = require('./npy');
const { loadOrt } = require('./run_onnx');

async function main(argv) {
    const li = argv.indexOf('--label');
    const label = li >= 0 ? argv[li + 1] : argv[0];
    if (li >= 0) argv.splice(li, 2);
    if (argv.length < 3) {
        console.error('usage: node run_export.js MODEL.onnx REF.npy NAME=IN.npy [...] [--label TEXT]');
        process.exit(2);
    }
    const ort = loadOrt();
    const sess = await ort.InferenceSession.create(argv[0], { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const ref = readNpy(argv[1]);
    const feeds = {};
    for (const a of argv.slice(2)) {
        const eq = a.lastIndexOf('=');
        const name = a.slice(0, eq), x = readNpy(a.slice(eq + 1));
        if (!sess.inputNames.includes(name)) throw new Error(`${argv[0]} has no input '${name}' (has ${sess.inputNames.join(', ')})`);
        feeds[name] = name === 'input_ids'
            ? new ort.Tensor('int32', Int32Array.from(x.data, Math.round), x.shape)
            : new ort.Tensor('float32', x.data, x.shape);
    }
    for (const n of sess.inputNames) if (!(n in feeds)) throw new Error(`input '${n}' not given`);
    if (sess.outputNames.length !== 1) throw new Error(`${sess.outputNames.length} outputs, want 1`);
    const out = (await sess.run(feeds))[sess.outputNames[0]];
    if (out.dims.join(',') !== ref.shape.join(',')) {
        console.log(`${label}: output ${sess.outputNames[0]} [${out.dims}] vs reference [${ref.shape}]`);
        process.exit(1);
    }
    let maxDiff = 0, maxRef = 0;
    for (let i = 0; i < ref.data.length; i++) {
        const d = Math.abs(out.data[i] - ref.data[i]);
        if (!(d <= maxDiff)) maxDiff = d; // NaN propagates
        maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
    }
    const bound = 1e-4 * Math.max(1, maxRef);
    const ok = maxDiff <= bound;
    console.log(`${label}: ${sess.outputNames[0]} [${ref.shape.join(', ')}] max|diff| ${maxDiff.toExponential(3)}, ` +
                `max|ref| ${maxRef.toExponential(3)}, bound ${bound.toExponential(3)}${ok ? '' : ' EXCEEDED'}`);
    process.exit(ok ? 0 : 1);
}

main(process.argv.slice(2)).catch(e => { console.error(`run_export: ${e.message}`); process.exit(2); });
