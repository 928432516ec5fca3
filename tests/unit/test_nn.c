/* The CPU kernels of src/ops/nn.c against plain double-precision references (attention has
 * its own test, test_attention.c): group norm and layer norm vs double formulas; geglu,
 * upsample and transpose vs direct loops; the vectorized erf against libm on a dense sweep of
 * ~1e7 floats (in ulps), SiLU, quick GELU and GELU against double formulas. */
#include "core/threadpool.h"
#include "ops/nn.h"
#include "test.h"

#include <stdint.h>

int main(void) {
    sdc_pool *p1 = sdc_pool_new(1), *p3 = sdc_pool_new(3);
    /* group norm (+SiLU) and layer norm vs double formulas */
    {
        int64_t B = 2, C = 64, S = 37;
        int G = 32;
        float *x = test_rand_buf((size_t)(B * C * S), 4.0f), *g = test_rand_buf((size_t)C, 1.0f), *b = test_rand_buf((size_t)C, 1.0f);
        float *y = malloc((size_t)(B * C * S) * 4), *r = malloc((size_t)(B * C * S) * 4);
        for (int silu = 0; silu < 2; silu++) {
            sdc_group_norm(p3, x, y, B, C, S, G, 1e-5f, g, b, silu);
            for (int64_t n = 0; n < B; n++)
                for (int gi = 0; gi < G; gi++) {
                    int64_t cpg = C / G, base = (n * C + gi * cpg) * S, cnt = cpg * S;
                    double m = 0, var = 0;
                    for (int64_t i = 0; i < cnt; i++) m += x[base + i];
                    m /= cnt;
                    for (int64_t i = 0; i < cnt; i++) var += (x[base + i] - m) * (x[base + i] - m);
                    var /= cnt;
                    for (int64_t i = 0; i < cnt; i++) {
                        int64_t ch = gi * cpg + i / S;
                        double v = (x[base + i] - m) / sqrt(var + 1e-5) * g[ch] + b[ch];
                        r[base + i] = (float)(silu ? v / (1 + exp(-v)) : v);
                    }
                }
            CHECK_CLOSE(test_rel_err(y, r, (size_t)(B * C * S)), 2e-6, silu ? "group norm + SiLU" : "group norm");
        }
        int64_t R = 13, D = 64;
        sdc_layer_norm(p3, x, y, R, D, 1e-5f, g, b);
        for (int64_t i = 0; i < R; i++) {
            double m = 0, var = 0;
            for (int64_t j = 0; j < D; j++) m += x[i * D + j];
            m /= D;
            for (int64_t j = 0; j < D; j++) var += (x[i * D + j] - m) * (x[i * D + j] - m);
            var /= D;
            for (int64_t j = 0; j < D; j++) r[i * D + j] = (float)((x[i * D + j] - m) / sqrt(var + 1e-5) * g[j] + b[j]);
        }
        CHECK_CLOSE(test_rel_err(y, r, (size_t)(R * D)), 2e-6, "layer norm");
        /* geglu */
        int64_t F = 24;
        sdc_geglu(p3, x, y, 7, F);
        for (int64_t i = 0; i < 7; i++)
            for (int64_t f = 0; f < F; f++) {
                double gate = x[i * 2 * F + F + f];
                r[i * F + f] = (float)(x[i * 2 * F + f] * 0.5 * gate * (1 + erf(gate / sqrt(2.0))));
            }
        CHECK_CLOSE(test_rel_err(y, r, (size_t)(7 * F)), 2e-6, "geglu");
        /* nearest upsample 3x5 -> 7x11 with torch's floor(dst * in / out) */
        sdc_upsample_nearest(p3, x, y, 1, 2, 3, 5, 7, 11);
        int ok = 1;
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 7; i++)
                for (int j = 0; j < 11; j++)
                    ok &= y[(c * 7 + i) * 11 + j] == x[(c * 3 + (int)floorf(i * (3.0f / 7))) * 5 + (int)floorf(j * (5.0f / 11))];
        CHECK(ok, "nearest upsample index rule");
        /* transpose [B, C, S] -> [B, S, C] */
        sdc_transpose_cs(p3, x, y, 2, 5, 9);
        ok = 1;
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 5; c++)
                for (int s = 0; s < 9; s++) ok &= y[(n * 9 + s) * 5 + c] == x[(n * 5 + c) * 9 + s];
        CHECK(ok, "transpose");
        free(x), free(g), free(b), free(y), free(r);
    }
    /* erf vs libm on a dense sweep: every 211th float of [0, 4.5] (erf rounds to 1 beyond 3.92)
     * and the negatives, ~1e7 values; errors in ulps of the exact (double) result */
    {
        uint32_t top;
        float lim = 4.5f;
        memcpy(&top, &lim, 4);
        size_t n = 0, cap = 2 * (size_t)(top / 211 + 1) + 8;
        float *x = malloc(cap * 4), *y = malloc(cap * 4);
        for (uint32_t u = 0; u <= top; u += 211) {
            float f;
            memcpy(&f, &u, 4);
            x[n++] = f;
            x[n++] = -f;
        }
        const float special[] = {INFINITY, -INFINITY, 10.0f, -1e30f, 0.927734375f, 0.92773443f};
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[n++] = special[i];
        sdc_erf(p3, x, y, (int64_t)n);
        double worst = 0, worst_libm = 0, at = 0;
        for (size_t i = 0; i < n; i++) {
            double ref = erf((double)x[i]);
            int ex = ilogb((float)ref);
            double ulp = ldexp(1.0, (ex < -126 ? -126 : ex) - 23);
            double e = fabs(y[i] - ref) / ulp, el = fabs(erff(x[i]) - ref) / ulp;
            if (!(e <= worst)) worst = e, at = x[i];
            if (el > worst_libm) worst_libm = el;
        }
        printf("  erf: %zu values, max error %.3f ulp at %g (libm erff: %.3f ulp)\n", n, worst, at, worst_libm);
        CHECK_CLOSE(worst, 1.25, "erf max error in ulp, dense sweep");
        float nan_in = NAN, nan_out = 0, zero[2] = {0.0f, -0.0f}, zout[2];
        sdc_erf(NULL, &nan_in, &nan_out, 1);
        sdc_erf(NULL, zero, zout, 2);
        CHECK(nan_out != nan_out, "erf(NaN) is NaN");
        CHECK(zout[0] == 0 && !signbit(zout[0]) && zout[1] == 0 && signbit(zout[1]), "erf(+-0) = +-0");

        /* SiLU and quick GELU (x sigmoid(1.702 x)) over [-100, 100], ragged length */
        int64_t m = 20001;
        for (int64_t i = 0; i < m; i++) x[i] = (float)(i - 10000) * 0.01f;
        for (int quick = 0; quick < 2; quick++) {
            if (quick) sdc_quick_gelu(p3, x, y, m);
            else sdc_silu(p3, x, y, m);
            double err = 0;
            for (int64_t i = 0; i < m; i++) {
                double v = x[i], ref = v / (1 + exp(-(quick ? 1.702 : 1.0) * v));
                double e = fabs(y[i] - ref) / (fabs(ref) > 1 ? fabs(ref) : 1);
                if (!(e <= err)) err = e;
            }
            CHECK_CLOSE(err, 2e-7, quick ? "quick gelu vs double" : "silu vs double");
        }
        /* GELU through geglu (h = 1) on the same sweep: only float's own rounding of
         * 1 + erf for large negative inputs separates it from the double formula */
        float *hx = malloc((size_t)m * 2 * 4);
        for (int64_t i = 0; i < m; i++) hx[i] = 1.0f, hx[m + i] = x[i] * 0.1f;
        sdc_geglu(p3, hx, y, 1, m);
        double err = 0;
        for (int64_t i = 0; i < m; i++) {
            double g = hx[m + i], ref = 0.5 * g * (1 + erf(g / sqrt(2.0)));
            double e = fabs(y[i] - ref) / (fabs(ref) > 1 ? fabs(ref) : 1);
            if (!(e <= err)) err = e;
        }
        CHECK_CLOSE(err, 4e-7, "gelu (erf) over [-10, 10] vs double");
        free(x), free(y), free(hx);
    }
    sdc_pool_free(p1);
    sdc_pool_free(p3);
    TEST_MAIN_END();
}
