/* src/io/pickle_vm.h: the restricted pickle machine shared by pickle_dict.c (numpy arrays in a
 * dict) and torch_zip.c (torch.save's data.pkl). Nothing in a pickle is ever executed.
 *
 * Contract. sdc_pv_run() decodes one pickle stream (protocols 2 to 5, or 0 to 5 when the caller
 * says so) on a stack machine that knows only these opcodes:
 *     PROTO FRAME STOP MARK; memo: BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET;
 *     constants: NONE NEWTRUE NEWFALSE BININT1 BININT2 BININT LONG1 (at most 64 bits),
 *     BINUNICODE SHORT_BINUNICODE BINUNICODE8, SHORT_BINBYTES BINBYTES BINBYTES8;
 *     containers: EMPTY_TUPLE TUPLE TUPLE1-3, EMPTY_LIST APPEND APPENDS, EMPTY_DICT SETITEM SETITEMS;
 *     GLOBAL STACK_GLOBAL REDUCE BUILD;
 *     opted in by the caller (SDC_PV_OP_*): BINFLOAT, py2 SHORT_BINSTRING / BINSTRING (read as
 *     str), BYTEARRAY8 (read as bytes); BINPERSID and NEWOBJ when their hook is set.
 * Every other opcode is refused. A GLOBAL is only looked up in the caller's list (hooks.global);
 * anything not there is refused by name. What REDUCE, BUILD, NEWOBJ and BINPERSID make of the
 * allowed globals is up to the caller's hooks; the machine itself calls nothing.
 *
 * Objects (sdc_pv_obj) live in one list owned by the machine and are freed together by
 * sdc_pv_free(); the stack, the memo and containers hold pointers to them, and may share them
 * (the memo), but no opcode recurses. Strings and bytes point into the input buffer. Bounded by
 * the caller's limits: objects, stack depth, memo keys, dict entries; container items in all at
 * most 8 per allowed object; MARKs nested at most 256 deep; a string or bytes object can never run
 * past the end of the input.
 *
 * Every failure is one line, "<label>: <where> offset <N>: <what>", N the offset of the opcode
 * being run; hooks report through sdc_pv_fail() so theirs read the same.
 */
#ifndef SDC_IO_PICKLE_VM_H
#define SDC_IO_PICKLE_VM_H

#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sdc_pv_kind {
    SDC_PV_NONE,
    SDC_PV_BOOL,
    SDC_PV_INT,
    SDC_PV_FLOAT,
    SDC_PV_STR,    /* UTF-8 */
    SDC_PV_BYTES,
    SDC_PV_TUPLE,
    SDC_PV_LIST,
    SDC_PV_DICT,   /* items: key, value, key, value, ... in insertion order */
    SDC_PV_GLOBAL, /* i: the index hooks.global gave it */
    SDC_PV_EXT,    /* something a hook made: i is the caller's tag, ext its payload */
} sdc_pv_kind;

typedef struct sdc_pv_obj sdc_pv_obj;
struct sdc_pv_obj {
    sdc_pv_kind kind;
    int64_t i;              /* BOOL, INT; GLOBAL: the caller's index; EXT: the caller's tag */
    double f;               /* FLOAT */
    const uint8_t *p;       /* STR, BYTES: usually into the input, not NUL-terminated */
    size_t n;               /* their length in bytes */
    sdc_pv_obj **items;     /* TUPLE, LIST, DICT */
    size_t n_items, cap;
    void *ext;              /* malloc'd memory the object owns (an EXT payload, owned bytes) */
    size_t id;              /* its place in the machine's object list */
};

/* Opcodes beyond the common set, for sdc_pv_config.opcodes. */
enum {
    SDC_PV_OP_BINFLOAT = 1,    /* 'G' */
    SDC_PV_OP_BINSTRING = 2,   /* 'U', 'T': py2 strings, read as str */
    SDC_PV_OP_BYTEARRAY8 = 4,  /* 0x96, read as bytes */
};

typedef struct sdc_pv sdc_pv;

typedef struct sdc_pv_hooks {
    /* The index (>= 0) of the allowed global module.name, or -1 to refuse it. Required. */
    int (*global)(void *ctx, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn);
    /* REDUCE of an allowed global `fn` with the tuple's items: *out is pushed. Required. */
    sdc_status (*reduce)(sdc_pv *m, const sdc_pv_obj *fn, sdc_pv_obj **args, size_t n, sdc_pv_obj **out);
    /* BUILD: give `o` (left on the stack) its `state`. Required. */
    sdc_status (*build)(sdc_pv *m, sdc_pv_obj *o, sdc_pv_obj *state);
    /* NEWOBJ cls(*args) and BINPERSID pid: *out is pushed. NULL: the opcode is refused. */
    sdc_status (*newobj)(sdc_pv *m, sdc_pv_obj *cls, sdc_pv_obj *args, sdc_pv_obj **out);
    sdc_status (*persistent_load)(sdc_pv *m, sdc_pv_obj *pid, sdc_pv_obj **out);
} sdc_pv_hooks;

typedef struct sdc_pv_config {
    const char *label;      /* the file, first in every message */
    const char *where;      /* "pickle", "data.pkl": the stream, before "offset N" */
    const char *reads;      /* "only tensors in dicts are read": ends a refused opcode's message */
    const char *refused;    /* ", which is not a tensor container": follows a refused global's name */
    int min_proto;          /* 2, or 0 to accept PROTO 0 and 1 as well */
    unsigned opcodes;       /* SDC_PV_OP_* */
    size_t max_objects, max_stack, max_memo;
    size_t max_dict_items;  /* entries in one dict; 0: no limit but the others */
    bool str_keys_only;     /* a dict key that is not a str is refused */
    sdc_pv_hooks hooks;
    void *ctx;              /* the caller's, for its hooks */
} sdc_pv_config;

struct sdc_pv {
    const sdc_pv_config *cfg;
    const uint8_t *b;
    size_t len, pos, op_at;  /* op_at: the offset of the opcode being run, for messages */
    sdc_error *err;          /* never NULL */
    sdc_error local;
    sdc_pv_obj **objs;       /* every object, for freeing */
    size_t n_objs, cap_objs;
    sdc_pv_obj **stack;
    size_t sp, cap_stack;
    size_t marks[256];       /* stack heights at MARK */
    int n_marks;
    sdc_pv_obj **memo;
    size_t cap_memo, n_memo; /* n_memo: MEMOIZE's next key */
    size_t n_slots;          /* container items, all together */
};

/* Sets up a machine on len bytes at buf (which must outlive it); err may be NULL. */
void sdc_pv_init(sdc_pv *m, const sdc_pv_config *cfg, const void *buf, size_t len, sdc_error *err);
/* Runs to STOP; *result is what STOP popped. */
sdc_status sdc_pv_run(sdc_pv *m, sdc_pv_obj **result);
/* Frees every object and the machine's own memory. */
void sdc_pv_free(sdc_pv *m);

/* For hooks. */
sdc_status sdc_pv_fail(sdc_pv *m, sdc_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A new object (EXT: with a zeroed payload of `size` bytes in ext, tag in i); NULL with the error
 * set when a limit or memory runs out. */
sdc_pv_obj *sdc_pv_new(sdc_pv *m, sdc_pv_kind kind);
sdc_pv_obj *sdc_pv_new_ext(sdc_pv *m, int tag, size_t size);
/* Appends x to the tuple, list or dict c (counted against the item limit). */
sdc_status sdc_pv_add_item(sdc_pv *m, sdc_pv_obj *c, sdc_pv_obj *x);
/* The status of the failure just reported (SDC_E_NOMEM if none was). */
sdc_status sdc_pv_status(const sdc_pv *m);
/* 1 when o is a str equal to s; when n bytes at p equal s. */
bool sdc_pv_str_is(const sdc_pv_obj *o, const char *s);
bool sdc_pv_mem_is(const void *p, size_t n, const char *s);

#endif
