/* src/onnx/onnx_io.h: reading ONNX model files with the generated protobuf-c code.
 *
 * The message types (Onnx__ModelProto, Onnx__GraphProto, Onnx__NodeProto, ...) and their
 * pack/unpack functions come from "onnx.pb-c.h", generated at build time by protoc-c from the
 * onnx.proto that Debian's libonnx-dev ships (cmake/onnx.cmake). The ONNX writer uses the same
 * generated code: build the messages, then onnx__model_proto__pack().
 *
 *     Onnx__ModelProto *m;
 *     SDC_TRY(sdc_onnx_read(path, 16 << 20, &m, err));
 *     const Onnx__TensorProto *t = sdc_onnx_initializer(m->graph, "conv.weight");
 *     ... sdc_onnx_tensor_f32(t, path, dst, n, err) ...
 *     sdc_onnx_free(m);
 *
 * Hostile files: protobuf-c decodes recursively and allocates as the wire says, so before
 * decoding, the bytes are walked once with the message descriptors (no recursion deeper than
 * SDC_ONNX_MAX_DEPTH nested messages) and the memory the decoded messages will take is bounded
 * from above; a file over the caller's byte limit, nested too deep, malformed, or whose decoded
 * form would need more than twice its size plus 64 MiB (SDC_ONNX_MAX_DECODED at most) is refused
 * with one line. A real model decodes to about its own size (the weights are copied once).
 */
#ifndef SDC_ONNX_ONNX_IO_H
#define SDC_ONNX_ONNX_IO_H

#include "core/error.h"
#include "onnx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_ONNX_MAX_DEPTH 24
#define SDC_ONNX_MAX_DECODED ((size_t)1 << 30)

/* Reads and decodes the file at `path` (at most max_bytes long). *out is NULL on failure. */
sdc_status sdc_onnx_read(const char *path, size_t max_bytes, Onnx__ModelProto **out,
                         sdc_error *err);
/* Decodes an in-memory model; `label` names it in messages. */
sdc_status sdc_onnx_parse(const void *buf, size_t len, const char *label, Onnx__ModelProto **out,
                          sdc_error *err);
void sdc_onnx_free(Onnx__ModelProto *m); /* NULL is a no-op */

/* The named attribute of a node, or NULL. */
const Onnx__AttributeProto *sdc_onnx_attr(const Onnx__NodeProto *n, const char *name);
/* The named initializer of a graph, or NULL. */
const Onnx__TensorProto *sdc_onnx_initializer(const Onnx__GraphProto *g, const char *name);
/* Element count of a tensor (product of dims; 1 for a scalar); -1 on a negative dim or overflow. */
int64_t sdc_onnx_tensor_numel(const Onnx__TensorProto *t);
/* Copies a FLOAT tensor's `n` values (raw_data, little-endian, or float_data) into dst. Refuses
 * other element types, external data, and a count that disagrees with n. */
sdc_status sdc_onnx_tensor_f32(const Onnx__TensorProto *t, const char *label, float *dst,
                               int64_t n, sdc_error *err);
/* An ONNX element type's name ("FLOAT", "INT64", ...); "?" if unknown. */
const char *sdc_onnx_elem_type_name(int elem_type);

#endif
