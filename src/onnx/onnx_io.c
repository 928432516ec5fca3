/* src/onnx/onnx_io.c: bounded ONNX decoding on top of protobuf-c (see onnx_io.h). */
#include "onnx/onnx_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ pre-decoding walk */

/* Walks one message's wire bytes: checks framing, nesting depth, and adds to *need an upper bound
 * of what protobuf-c will allocate for it (the struct, repeated-field arrays, string and bytes
 * copies, unknown fields). Returns 0, or -1 with *why set. */
typedef struct {
    size_t need;
    const char *why;
} walk_state;

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static void add_need(walk_state *s, size_t n) {
    s->need = s->need + n < s->need ? SIZE_MAX : s->need + n;
}

static int walk_message(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d,
                        int depth, walk_state *s) {
    if (depth > SDC_ONNX_MAX_DEPTH) {
        s->why = "messages nested too deeply";
        return -1;
    }
    add_need(s, d->sizeof_message);
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, v;
        if (read_varint(p, len, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
            s->why = "bad field tag";
            return -1;
        }
        unsigned wt = (unsigned)(tag & 7);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        int repeated = f && f->label == PROTOBUF_C_LABEL_REPEATED;
        size_t slot = repeated ? 8 : 0; /* one element of a repeated array, at most 8 bytes */
        if (!f) add_need(s, sizeof(ProtobufCMessageUnknownField) + 16);
        switch (wt) {
        case 0: /* varint */
            if (read_varint(p, len, &pos, &v)) {
                s->why = "truncated varint";
                return -1;
            }
            add_need(s, slot);
            break;
        case 1: /* 64-bit */
        case 5: /* 32-bit */
            if (len - pos < (wt == 1 ? 8u : 4u)) {
                s->why = "truncated fixed-size field";
                return -1;
            }
            pos += wt == 1 ? 8 : 4;
            add_need(s, slot);
            break;
        case 2: { /* length-delimited */
            if (read_varint(p, len, &pos, &v) || v > len - pos) {
                s->why = "field length runs past the end";
                return -1;
            }
            size_t n = (size_t)v;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                add_need(s, slot);
                if (walk_message(p + pos, n, f->descriptor, depth + 1, s)) return -1;
            } else if (!f || f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES) {
                add_need(s, n + 1 + slot);
            } else if (repeated) {
                add_need(s, sdc_mul_size(n, 8) ? n * 8 : SIZE_MAX); /* packed scalars */
            } else {
                s->why = "length-delimited data for a scalar field";
                return -1;
            }
            pos += n;
            break;
        }
        default:
            s->why = "unsupported wire type (groups)";
            return -1;
        }
    }
    return 0;
}

sdc_status sdc_onnx_parse(const void *buf, size_t len, const char *label, Onnx__ModelProto **out,
                          sdc_error *err) {
    *out = NULL;
    if (len == 0) return sdc_fail(err, SDC_E_FORMAT, "%s: empty file, not an ONNX model", label);
    walk_state s = {0, NULL};
    if (walk_message(buf, len, &onnx__model_proto__descriptor, 0, &s))
        return sdc_fail(err, SDC_E_FORMAT, "%s: not an ONNX model (protobuf: %s)", label, s.why);
    size_t limit = 2 * len + ((size_t)64 << 20);
    if (s.need > limit || s.need > SDC_ONNX_MAX_DECODED)
        return sdc_fail(err, SDC_E_LIMIT,
                        "%s: decoding would take %zu MiB for a %zu-byte file; refused", label,
                        s.need >> 20, len);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) return sdc_fail(err, SDC_E_FORMAT, "%s: not an ONNX model (protobuf decoding failed)", label);
    if (!m->graph) {
        onnx__model_proto__free_unpacked(m, NULL);
        return sdc_fail(err, SDC_E_FORMAT, "%s: ONNX model has no graph", label);
    }
    *out = m;
    return SDC_OK;
}

sdc_status sdc_onnx_read(const char *path, size_t max_bytes, Onnx__ModelProto **out,
                         sdc_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(err, SDC_E_IO, "%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return sdc_fail(err, SDC_E_LIMIT, "%s: %lld bytes, more than the %zu accepted here", path,
                        (long long)st.st_size, max_bytes);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory reading %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        free(buf);
        return sdc_fail(err, SDC_E_IO, "%s: read %zu of %zu bytes", path, got, len);
    }
    sdc_status st2 = sdc_onnx_parse(buf, len, path, out, err);
    free(buf); /* protobuf-c copied what it keeps */
    return st2;
}

void sdc_onnx_free(Onnx__ModelProto *m) {
    if (m) onnx__model_proto__free_unpacked(m, NULL);
}

/* ------------------------------------------------------------------ lookups */

const Onnx__AttributeProto *sdc_onnx_attr(const Onnx__NodeProto *n, const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}

const Onnx__TensorProto *sdc_onnx_initializer(const Onnx__GraphProto *g, const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

int64_t sdc_onnx_tensor_numel(const Onnx__TensorProto *t) {
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || __builtin_mul_overflow(n, t->dims[i], &n)) return -1;
    }
    return n;
}

const char *sdc_onnx_elem_type_name(int elem_type) {
    static const char *const names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
                                        "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
                                        "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (elem_type >= 0 && elem_type < (int)(sizeof names / sizeof names[0])) return names[elem_type];
    return "?";
}

sdc_status sdc_onnx_tensor_f32(const Onnx__TensorProto *t, const char *label, float *dst,
                               int64_t n, sdc_error *err) {
    const char *name = t->name ? t->name : "(unnamed)";
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: tensor %s: external data is not supported",
                        label, name);
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: tensor %s: element type %s, expected FLOAT",
                        label, name, sdc_onnx_elem_type_name(t->data_type));
    int64_t numel = sdc_onnx_tensor_numel(t);
    if (numel != n)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor %s: %lld elements, expected %lld", label,
                        name, (long long)numel, (long long)n);
    if (t->raw_data.len > 0 || t->n_float_data == 0) {
        if (t->raw_data.len != (size_t)n * sizeof(float))
            return sdc_fail(err, SDC_E_FORMAT, "%s: tensor %s: raw data holds %zu bytes, expected %lld",
                            label, name, t->raw_data.len, (long long)n * 4);
        /* raw_data is little-endian float32, as the hosts sdc runs on (x86-64, ARM64) */
        memcpy(dst, t->raw_data.data, (size_t)n * sizeof(float));
    } else {
        if (t->n_float_data != (size_t)n)
            return sdc_fail(err, SDC_E_FORMAT, "%s: tensor %s: %zu float_data values, expected %lld",
                            label, name, t->n_float_data, (long long)n);
        memcpy(dst, t->float_data, (size_t)n * sizeof(float));
    }
    return SDC_OK;
}
