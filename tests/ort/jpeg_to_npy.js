#!/usr/bin/env node
// tests/ort/jpeg_to_npy.js: decodes a JPEG (npm jpeg-js, pure JavaScript) into an image .npy.
//
//   node tests/ort/jpeg_to_npy.js IN.jpg OUT.npy
//
// OUT is float32 [1, 3, H, W], RGB, x = pixel / 127.5 - 1 (the [-1, 1] range of SD images and of
// VAEencoder.onnx's input).
'use strict';
const fs = require('fs');
const { writeNpy } = require('./npy');

let jpeg;
try {
    jpeg = require('jpeg-js');
} catch (e) {
    console.error('jpeg_to_npy: jpeg-js is not installed (run scripts/setup.sh, which installs it into ./node_modules)');
    process.exit(2);
}
const argv = process.argv.slice(2);
if (argv.length !== 2) {
    console.error('usage: node jpeg_to_npy.js IN.jpg OUT.npy');
    process.exit(2);
}
const img = jpeg.decode(fs.readFileSync(argv[0]), { useTArray: true, formatAsRGBA: true });
const { width: W, height: H, data } = img;
const out = new Float32Array(3 * H * W);
for (let c = 0; c < 3; c++)
    for (let i = 0; i < H * W; i++) out[c * H * W + i] = data[4 * i + c] / 127.5 - 1;
writeNpy(argv[1], [1, 3, H, W], out);
console.log(`jpeg_to_npy: ${argv[0]} ${W}x${H} -> ${argv[1]}`);
