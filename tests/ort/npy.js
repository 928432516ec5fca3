// tests/ort/npy.js: float32 .npy reading and writing for the ONNX Runtime reference scripts.
// Reads little-endian '<f4' (and '<f8', converted) C-order arrays, format versions 1-3; writes
// version 1.0 '<f4'. Anything else throws an Error naming the file.
'use strict';
const fs = require('fs');

function readNpy(path) {
    const b = fs.readFileSync(path);
    if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not an .npy file`);
    const major = b[6];
    const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
    const off = major === 1 ? 10 : 12;
    const hdr = b.toString('latin1', off, off + hlen);
    const descr = /'descr':\s*'([^']*)'/.exec(hdr);
    const shape = /'shape':\s*\(([^)]*)\)/.exec(hdr);
    if (!descr || !shape || /'fortran_order':\s*True/.test(hdr)) throw new Error(`${path}: unsupported .npy header ${hdr.trim()}`);
    const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
    const n = dims.reduce((a, d) => a * d, 1);
    const data = b.subarray(off + hlen);
    let out;
    if (descr[1] === '<f4') {
        if (data.length < 4 * n) throw new Error(`${path}: data too short`);
        out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = data.readFloatLE(4 * i);
    } else if (descr[1] === '<f8') {
        if (data.length < 8 * n) throw new Error(`${path}: data too short`);
        out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = data.readDoubleLE(8 * i);
    } else {
        throw new Error(`${path}: dtype ${descr[1]} (only <f4 and <f8 are read)`);
    }
    return { shape: dims, data: out };
}

function writeNpy(path, shape, data) {
    const sh = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
    let hdr = `{'descr': '<f4', 'fortran_order': False, 'shape': ${sh}, }`;
    const total = 10 + hdr.length + 1;
    hdr += ' '.repeat((64 - (total % 64)) % 64) + '\n';
    const head = Buffer.alloc(10);
    head.write('\x93NUMPY', 0, 'latin1');
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(hdr.length, 8);
    const body = Buffer.alloc(4 * data.length);
    for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
    fs.writeFileSync(path, Buffer.concat([head, Buffer.from(hdr, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy };
