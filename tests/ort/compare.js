#!/usr/bin/env node
// tests/ort/compare.js: compares two float32 .npy arrays of the same shape.
//
//   node tests/ort/compare.js GOT.npy REF.npy [--max-rel R] [--min-psnr DB] [--label TEXT]
//
// Prints one line: max |got - ref|, that divided by max |ref| ("rel"), and the PSNR of GOT
// against REF taken as images in [-1, 1] (peak-to-peak 2, i.e. the PSNR of the [0, 1] images).
// Exits 1 when the shapes differ, rel > R, or PSNR < DB (when given), else 0.
'use strict';
const { readNpy } = require('./npy');

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
if (argv.length < 2) {
    console.error('usage: node compare.js GOT.npy REF.npy [--max-rel R] [--min-psnr DB] [--label TEXT]');
    process.exit(2);
}
const got = readNpy(argv[0]), ref = readNpy(argv[1]);
const label = opt('--label') || argv[0];
if (got.shape.join(',') !== ref.shape.join(',')) {
    console.log(`${label}: shape [${got.shape}] vs reference [${ref.shape}]`);
    process.exit(1);
}
let maxAbs = 0, maxRef = 0, se = 0;
for (let i = 0; i < ref.data.length; i++) {
    const d = got.data[i] - ref.data[i];
    if (!(Math.abs(d) <= maxAbs)) maxAbs = Math.abs(d); // NaN propagates
    maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
    se += d * d;
}
const rel = maxAbs / Math.max(maxRef, 1e-30);
const psnr = 10 * Math.log10(4 / Math.max(se / ref.data.length, 1e-30));
console.log(`${label}: [${ref.shape.join(', ')}] max abs err ${maxAbs.toExponential(3)}, rel ${rel.toExponential(3)}, PSNR ${psnr.toFixed(2)} dB`);
const maxRel = opt('--max-rel'), minPsnr = opt('--min-psnr');
let ok = !Number.isNaN(maxAbs);
if (maxRel !== undefined && !(rel <= Number(maxRel))) { console.log(`${label}: rel ${rel.toExponential(3)} > ${maxRel}`); ok = false; }
if (minPsnr !== undefined && !(psnr >= Number(minPsnr))) { console.log(`${label}: PSNR ${psnr.toFixed(2)} dB < ${minPsnr} dB`); ok = false; }
process.exit(ok ? 0 : 1);
