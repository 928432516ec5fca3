/* src/core/peak.c: the FMA peak probe (see peak.h).
 *
 * Each kernel keeps its accumulators in vector registers: acc = acc * m + c with m = 1 - 2^-20
 * and c small, so values stay finite for any run length, and the compiler cannot fold the chain
 * (no fast-math). One loop iteration issues one FMA per accumulator; all chains are independent,
 * so the loop is bound by FMA throughput, not latency. The accumulators are summed into the
 * return value at the end so that nothing is dead code. */
#include "core/peak.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SDC_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#define PEAK_M (1.0f - 1.0f / 1048576.0f)
#define PEAK_C (1.0f / 4096.0f)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- kernels: FMAs per iteration */

#define SCALAR_ACC 8
static float kern_scalar(uint64_t iters) {
    float a[SCALAR_ACC];
    for (int i = 0; i < SCALAR_ACC; i++) a[i] = (float)i;
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < SCALAR_ACC; i++) a[i] = fmaf(a[i], PEAK_M, PEAK_C);
    float s = 0.0f;
    for (int i = 0; i < SCALAR_ACC; i++) s += a[i];
    return s;
}

#if SDC_X86
#define AVX2_ACC 12 /* 16 ymm registers: 12 accumulators + the two constants */
__attribute__((target("avx2,fma"))) static float kern_avx2(uint64_t iters) {
    const __m256 m = _mm256_set1_ps(PEAK_M), c = _mm256_set1_ps(PEAK_C);
    __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f),
           a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f),
           a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f),
           a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
    for (uint64_t it = 0; it < iters; it++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

#define AVX512_ACC 16 /* 32 zmm registers: 16 accumulators + constants, no spills */
__attribute__((target("avx512f"))) static float kern_avx512(uint64_t iters) {
    const __m512 m = _mm512_set1_ps(PEAK_M), c = _mm512_set1_ps(PEAK_C);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f),
           a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f),
           a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f),
           a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f),
           a12 = _mm512_set1_ps(12.f), a13 = _mm512_set1_ps(13.f), a14 = _mm512_set1_ps(14.f),
           a15 = _mm512_set1_ps(15.f);
    for (uint64_t it = 0; it < iters; it++) {
        a0 = _mm512_fmadd_ps(a0, m, c);
        a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c);
        a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c);
        a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c);
        a11 = _mm512_fmadd_ps(a11, m, c);
        a12 = _mm512_fmadd_ps(a12, m, c);
        a13 = _mm512_fmadd_ps(a13, m, c);
        a14 = _mm512_fmadd_ps(a14, m, c);
        a15 = _mm512_fmadd_ps(a15, m, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                       _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
    return _mm512_reduce_add_ps(s);
}
#endif

#if defined(__aarch64__)
#define NEON_ACC 16 /* 32 v registers */
static float kern_neon(uint64_t iters) {
    const float32x4_t m = vdupq_n_f32(PEAK_M), c = vdupq_n_f32(PEAK_C);
    float32x4_t a[NEON_ACC];
    for (int i = 0; i < NEON_ACC; i++) a[i] = vdupq_n_f32((float)i);
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < NEON_ACC; i++) a[i] = vfmaq_f32(c, a[i], m); /* c + a*m */
    float32x4_t s = a[0];
    for (int i = 1; i < NEON_ACC; i++) s = vaddq_f32(s, a[i]);
    return vaddvq_f32(s);
}
#endif

/* ---------------------------------------------------------------- dispatch */

const char *sdc_isa_name(sdc_isa isa) {
    static const char *const names[SDC_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};
    return (unsigned)isa < SDC_ISA_COUNT ? names[isa] : "?";
}

int sdc_isa_supported(sdc_isa isa) {
    switch (isa) {
    case SDC_ISA_SCALAR: return 1;
#if SDC_X86
    case SDC_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SDC_ISA_AVX512: return __builtin_cpu_supports("avx512f");
#endif
#if defined(__aarch64__)
    case SDC_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

sdc_isa sdc_peak_engine_isa(void) {
#if defined(__AVX512F__)
    return SDC_ISA_AVX512; /* src/ops/gemm.c: 16 lanes, 14 x 32 tile */
#elif defined(__AVX2__) && defined(__FMA__)
    return SDC_ISA_AVX2;
#elif defined(__aarch64__)
    return SDC_ISA_NEON;
#else
    return SDC_ISA_SCALAR;
#endif
}

/* FMA lanes of one kernel iteration. */
static double lanes_per_iter(sdc_isa isa) {
    switch (isa) {
#if SDC_X86
    case SDC_ISA_AVX2: return AVX2_ACC * 8;
    case SDC_ISA_AVX512: return AVX512_ACC * 16;
#endif
#if defined(__aarch64__)
    case SDC_ISA_NEON: return NEON_ACC * 4;
#endif
    default: return SCALAR_ACC;
    }
}

static float run_kernel(sdc_isa isa, uint64_t iters) {
    switch (isa) {
#if SDC_X86
    case SDC_ISA_AVX2: return kern_avx2(iters);
    case SDC_ISA_AVX512: return kern_avx512(iters);
#endif
#if defined(__aarch64__)
    case SDC_ISA_NEON: return kern_neon(iters);
#endif
    default: return kern_scalar(iters);
    }
}

/* All threads start together: each waits for `go` (or `abort` when a thread could not start). */
typedef struct start_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go, abort;
} start_gate;

typedef struct probe {
    sdc_isa isa;
    double seconds;
    start_gate *gate;
    double elapsed;   /* out */
    uint64_t iters;   /* out */
    volatile float sink;
} probe;

static void *probe_thread(void *arg) {
    probe *p = arg;
    const uint64_t chunk = p->isa == SDC_ISA_SCALAR ? 1u << 16 : 1u << 14;
    run_kernel(p->isa, chunk); /* warm up: the clock ramps and the upper vector halves power on */
    pthread_mutex_lock(&p->gate->mu);
    while (!p->gate->go && !p->gate->abort) pthread_cond_wait(&p->gate->cv, &p->gate->mu);
    int abort = p->gate->abort;
    pthread_mutex_unlock(&p->gate->mu);
    if (abort) return NULL;
    double t0 = now_s(), t;
    uint64_t n = 0;
    float s = 0.0f;
    do {
        s += run_kernel(p->isa, chunk);
        n += chunk;
        t = now_s() - t0;
    } while (t < p->seconds);
    p->sink = s;
    p->elapsed = t;
    p->iters = n;
    return NULL;
}

#define MAX_PROBE_THREADS 1024

double sdc_peak_gflops(sdc_isa isa, int n_threads, double seconds) {
    if (!sdc_isa_supported(isa) || n_threads < 1 || n_threads > MAX_PROBE_THREADS ||
        !(seconds >= 0.01 && seconds <= 10.0))
        return -1.0;
    static probe pr[MAX_PROBE_THREADS]; /* one probe at a time: callers do not run probes concurrently */
    pthread_t th[MAX_PROBE_THREADS];
    start_gate gate = {.go = 0, .abort = 0};
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    int started = 1; /* the calling thread is probe 0 */
    for (int i = 0; i < n_threads; i++) {
        pr[i] = (probe){.isa = isa, .seconds = seconds, .gate = &gate};
        if (i > 0) {
            if (pthread_create(&th[i], NULL, probe_thread, &pr[i]) != 0) break;
            started++;
        }
    }
    pthread_mutex_lock(&gate.mu);
    if (started < n_threads) gate.abort = 1;
    else gate.go = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    if (!gate.abort) probe_thread(&pr[0]);
    for (int i = 1; i < started; i++) pthread_join(th[i], NULL);
    pthread_cond_destroy(&gate.cv);
    pthread_mutex_destroy(&gate.mu);
    if (started < n_threads) return -1.0;
    double flops = 0.0, t = 0.0;
    for (int i = 0; i < n_threads; i++) {
        flops += 2.0 * lanes_per_iter(isa) * (double)pr[i].iters;
        if (pr[i].elapsed > t) t = pr[i].elapsed;
    }
    return t > 0.0 ? flops / t / 1e9 : -1.0;
}
