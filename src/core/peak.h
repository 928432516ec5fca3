/* src/core/peak.h: the machine's FP32 FMA peak, measured by a short probe.
 *
 * The probe runs a register-resident loop of independent vector FMAs (enough accumulators to
 * cover the FMA latency of every core this targets: 16 chains on AVX-512 and NEON, 12 on AVX2)
 * on n_threads threads at once for about `seconds`, and returns the summed rate, counting an
 * FMA lane as 2 FLOPs. It is what the benchmark divides its achieved GFLOP/s by. The AVX-512 and
 * AVX2 loops are compiled with target attributes, so both can be measured from any build on an
 * x86-64 CPU that has them; sdc_peak_engine_isa() names the ISA the GEMM was compiled for. */
#ifndef SDC_CORE_PEAK_H
#define SDC_CORE_PEAK_H

typedef enum sdc_isa {
    SDC_ISA_SCALAR = 0, /* plain C float FMAs (fmaf), any target */
    SDC_ISA_AVX2,       /* 256-bit FMA3 */
    SDC_ISA_AVX512,     /* 512-bit AVX-512F */
    SDC_ISA_NEON,       /* AArch64 128-bit */
    SDC_ISA_COUNT
} sdc_isa;

const char *sdc_isa_name(sdc_isa isa); /* "scalar", "avx2", "avx512", "neon" */
/* 1 if this CPU can run the probe for isa. */
int sdc_isa_supported(sdc_isa isa);
/* The ISA of the GEMM micro-kernel in this build (chosen at compile time from the target). */
sdc_isa sdc_peak_engine_isa(void);

/* Peak GFLOP/s of `isa` on n_threads threads (>= 1) over about `seconds` (0.01..10); returns a
 * negative value when the ISA is not supported here or a thread cannot be started. */
double sdc_peak_gflops(sdc_isa isa, int n_threads, double seconds);

#endif
