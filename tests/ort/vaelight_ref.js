#!/usr/bin/env node
// tests/ort/vaelight_ref.js: the vaelight preview decoder as ONNX Runtime computes it, the
// reference that sdc's decoder is tested against.
//
//   node tests/ort/vaelight_ref.js VAEpreview.onnx LATENT.npy IMAGE.npy [BRANCH_DIR]
//
// 1. ONNX Runtime runs VAEpreview.onnx on LATENT [1, 4, h, w] (already divided by 0.18215): four
//    outputs [1, 3, s*h, s*w] for s = 1, 2, 4, 8 (told apart by their size).
// 2. ONNX Runtime runs a second model built here (a few lines of protobuf encoding, opset 13):
//    Resize(mode=linear, coordinate_transformation_mode=half_pixel) of the 1x, 2x and 4x outputs
//    to 8h x 8w, Sum of the four, Clip(-1, 1): the image, written to IMAGE.npy [1, 3, 8h, 8w].
// With BRANCH_DIR, the four raw outputs are also written as BRANCH_DIR/branch_{1,2,4,8}x.npy.
// So both the network and the resize/sum/clip come from ONNX Runtime, not from sdc's code.
'use strict';
const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy } = require('./npy');
const { loadOrt, runModel } = require('./run_onnx');

// ---- a minimal protobuf writer (proto2 wire format) ----
function varint(n) {
    const out = [];
    let v = BigInt(n);
    if (v < 0n) v += 1n << 64n;
    do {
        let b = Number(v & 0x7fn);
        v >>= 7n;
        if (v > 0n) b |= 0x80;
        out.push(b);
    } while (v > 0n);
    return Buffer.from(out);
}
const key = (num, wt) => varint((num << 3) | wt);
const fInt = (num, v) => Buffer.concat([key(num, 0), varint(v)]);
const fBytes = (num, b) => Buffer.concat([key(num, 2), varint(b.length), b]);
const fStr = (num, s) => fBytes(num, Buffer.from(s, 'utf8'));
const msg = parts => Buffer.concat(parts);

function attrStr(name, value) { // AttributeProto: name=1, s=4, type=20 (STRING = 3)
    return msg([fStr(1, name), fStr(4, value), fInt(20, 3)]);
}
function node(op, inputs, outputs, attrs = []) { // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
    return msg([...inputs.map(i => fStr(1, i)), ...outputs.map(o => fStr(2, o)), fStr(3, outputs[0]),
                fStr(4, op), ...attrs.map(a => fBytes(5, a))]);
}
function floatTensor(name, dims, values) { // TensorProto: dims=1, data_type=2 (FLOAT = 1), name=8, raw_data=9
    const raw = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => raw.writeFloatLE(v, 4 * i));
    return msg([...dims.map(d => fInt(1, d)), fInt(2, 1), fStr(8, name), fBytes(9, raw)]);
}
function valueInfo(name, dims) { // ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2}}}
    const shape = msg(dims.map(d => fBytes(1, fInt(1, d))));
    const tensor = msg([fInt(1, 1), fBytes(2, shape)]);
    return msg([fStr(1, name), fBytes(2, fBytes(1, tensor))]);
}

// The composition: image = Clip(Sum(Resize(b1), Resize(b2), Resize(b4), b8), -1, 1).
function composeModel(shapes) { // shapes[k]: [1, 3, H_k, W_k] for scales 1, 2, 4, 8
    const names = ['b1', 'b2', 'b4', 'b8'];
    const nodes = [], inits = [];
    const summands = [];
    for (let k = 0; k < 3; k++) {
        const s = 8 >> k;
        inits.push(floatTensor(`scales${k}`, [4], [1, 1, s, s]));
        nodes.push(node('Resize', [names[k], '', `scales${k}`], [`r${k}`],
                        [attrStr('mode', 'linear'), attrStr('coordinate_transformation_mode', 'half_pixel')]));
        summands.push(`r${k}`);
    }
    summands.push('b8');
    nodes.push(node('Sum', summands, ['sum']));
    inits.push(floatTensor('lo', [], [-1]), floatTensor('hi', [], [1]));
    nodes.push(node('Clip', ['sum', 'lo', 'hi'], ['image']));
    const [n, , H, W] = shapes[3];
    const graph = msg([...nodes.map(x => fBytes(1, x)), fStr(2, 'vaelight_compose'),
                       ...inits.map(x => fBytes(5, x)),
                       ...names.map((nm, k) => fBytes(11, valueInfo(nm, shapes[k]))),
                       fBytes(12, valueInfo('image', [n, 3, H, W]))]);
    const opset = msg([fStr(1, ''), fInt(2, 13)]);
    // ModelProto: ir_version=1, producer_name=2, graph=7, opset_import=8
    return msg([fInt(1, 7), fStr(2, 'sdc tests/ort/vaelight_ref.js'), fBytes(7, graph), fBytes(8, opset)]);
}

async function main(argv) {
    if (argv.length < 3 || argv.length > 4) {
        console.error('usage: node vaelight_ref.js VAEpreview.onnx LATENT.npy IMAGE.npy [BRANCH_DIR]');
        process.exit(2);
    }
    const ort = loadOrt();
    const latent = readNpy(argv[1]);
    if (latent.shape.length !== 4 || latent.shape[0] !== 1 || latent.shape[1] !== 4)
        throw new Error(`${argv[1]}: expected a [1, 4, h, w] latent, got [${latent.shape}]`);
    const h = latent.shape[2];
    const outs = await runModel(ort, argv[0], [latent]);
    const branches = [null, null, null, null];
    for (const o of outs) {
        const k = Math.log2(o.shape[2] / h);
        if (o.shape.length !== 4 || o.shape[1] !== 3 || !(k >= 0 && k <= 3 && Number.isInteger(k)) || branches[k])
            throw new Error(`${argv[0]}: unexpected output ${o.name} [${o.shape}]`);
        branches[k] = o;
    }
    if (branches.some(b => !b)) throw new Error(`${argv[0]}: expected outputs at 1x, 2x, 4x and 8x`);
    const model = composeModel(branches.map(b => b.shape));
    const [img] = await runModel(ort, model, branches);
    writeNpy(argv[2], img.shape, img.data);
    if (argv[3]) {
        fs.mkdirSync(argv[3], { recursive: true });
        branches.forEach((b, k) => writeNpy(path.join(argv[3], `branch_${1 << k}x.npy`), b.shape, b.data));
    }
    console.log(`vaelight_ref: image [${img.shape.join(', ')}] -> ${argv[2]}`);
}

main(process.argv.slice(2)).catch(e => { console.error(`vaelight_ref: ${e.message}`); process.exit(1); });
