#!/usr/bin/env node
// tests/ort/run_export.js: runs one model written by `sdc export` with ONNX Runtime and compares
// its output with sdc's own result for the same inputs.
//
//   node tests/ort/run_export.js MODEL.onnx REF.npy NAME=IN.npy [NAME?=IN.npy ...] [--label TEXT]
//                                [--tol REL]
//
// Each NAME=IN.npy feeds input NAME (NAME?=IN.npy: only if the model has that input); input_ids
// gets the .npy's values (float32 holding integers) as int32, and an input the model declares as
// float16 gets them rounded to float16 (a float16 output is widened for the comparison). Prints
// one line with max |ort - ref|, max |ref| and rel = max |ort - ref| / max(1, max |ref|); exits 1
// unless the shapes match and rel <= REL (default 1e-4, the deploy contract's tolerance; 2e-2 for
// a model with float16 inputs or outputs), 2 on a usage or runtime error. Single-threaded, reproducible.
'use strict';
const { readNpy } = require('./npy');
const { loadOrt } = require('./run_onnx');

// IEEE half <-> float, round to nearest even (as numpy's astype(float16)).
function toHalf(f32) {
    const out = new Uint16Array(f32.length), f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i < f32.length; i++) {
        f[0] = f32[i];
        const x = u[0], sign = (x >>> 16) & 0x8000, e = (x >>> 23) & 0xff, m = x & 0x7fffff;
        let h;
        if (e === 0xff) h = sign | 0x7c00 | (m ? 0x200 : 0);
        else if (e > 142) h = sign | 0x7c00;
        else if (e < 102) h = sign;
        else if (e < 113) { // subnormal half
            const mm = m | 0x800000, shift = 126 - e, hm = mm >>> shift, rem = mm & ((1 << shift) - 1), half = 1 << (shift - 1);
            h = sign | (hm + (rem > half || (rem === half && (hm & 1)) ? 1 : 0));
        } else {
            const hm = m >>> 13, rem = m & 0x1fff;
            h = (sign | ((e - 112) << 10) | hm) + (rem > 0x1000 || (rem === 0x1000 && (hm & 1)) ? 1 : 0);
        }
        out[i] = h;
    }
    return out;
}
function fromHalf(h16) {
    const out = new Float32Array(h16.length);
    for (let i = 0; i < h16.length; i++) {
        const h = h16[i], s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
    return out;
}

// A float16 export (sdc export --fp16) rounds weights and activations to 11 significant bits.
const FP16_TOL = 2e-2;

async function main(argv) {
    const li = argv.indexOf('--label');
    const label = li >= 0 ? argv[li + 1] : argv[0];
    if (li >= 0) argv.splice(li, 2);
    const ti = argv.indexOf('--tol');
    let tol = ti >= 0 ? Number(argv[ti + 1]) : undefined;
    if (ti >= 0) argv.splice(ti, 2);
    if (argv.length < 3) {
        console.error('usage: node run_export.js MODEL.onnx REF.npy NAME=IN.npy [...] [--label TEXT]');
        process.exit(2);
    }
    const ort = loadOrt();
    const sess = await ort.InferenceSession.create(argv[0], { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const ref = readNpy(argv[1]);
    const feeds = {};
    const f16 = new Set((sess.inputMetadata || []).filter(m => m.isTensor && m.type === 'float16').map(m => m.name));
    const f16out = (sess.outputMetadata || []).some(m => m.isTensor && m.type === 'float16');
    if (tol === undefined) tol = f16.size || f16out ? FP16_TOL : 1e-4;
    for (const a of argv.slice(2)) {
        const eq = a.lastIndexOf('=');
        let name = a.slice(0, eq);
        const optional = name.endsWith('?');
        if (optional) name = name.slice(0, -1);
        if (!sess.inputNames.includes(name)) {
            if (optional) continue;
            throw new Error(`${argv[0]} has no input '${name}' (has ${sess.inputNames.join(', ')})`);
        }
        const x = readNpy(a.slice(eq + 1));
        feeds[name] = name === 'input_ids' ? new ort.Tensor('int32', Int32Array.from(x.data, Math.round), x.shape)
            : f16.has(name) ? new ort.Tensor('float16', toHalf(x.data), x.shape)
            : new ort.Tensor('float32', x.data, x.shape);
    }
    for (const n of sess.inputNames) if (!(n in feeds)) throw new Error(`input '${n}' not given`);
    if (sess.outputNames.length !== 1) throw new Error(`${sess.outputNames.length} outputs, want 1`);
    const res = (await sess.run(feeds))[sess.outputNames[0]];
    const out = { dims: res.dims, data: res.type === 'float16' ? fromHalf(res.data) : res.data };
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
    const rel = maxDiff / Math.max(1, maxRef);
    const ok = rel <= tol;
    console.log(`${label}: ${sess.outputNames[0]} [${ref.shape.join(', ')}] max|diff| ${maxDiff.toExponential(3)}, ` +
                `max|ref| ${maxRef.toExponential(3)}, rel ${rel.toExponential(3)} (tol ${tol})${ok ? '' : ' EXCEEDED'}`);
    process.exit(ok ? 0 : 1);
}

main(process.argv.slice(2)).catch(e => { console.error(`run_export: ${e.message}`); process.exit(2); });
