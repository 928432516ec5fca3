/* tests/unit/test_infotext.c: the A1111 infotext (src/pipeline/infotext.h), against exact strings
 * worked out from webui v1.10.1's create_infotext() and quote() (see infotext.c):
 * field order, omitted fields, quoting with JSON escapes, extra fields merged like a Python dict,
 * Python number formatting of CFG scale, and the final str.strip().
 */
#include "pipeline/infotext.h"

#include "test.h"

static void expect(const sdc_infotext_params *p, const char *want, const char *what) {
    char *got = sdc_infotext(p);
    CHECK(got && strcmp(got, want) == 0, "%s:\n  got  [%s]\n  want [%s]", what,
          got ? got : "(null)", want);
    free(got);
}

static sdc_infotext_params base(void) {
    sdc_infotext_params p = {0};
    p.prompt = "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh";
    p.negative = "easynegative,ng_deepnegative_v1_75t,(worst quality:2),(low quality:2)";
    p.steps = 20;
    p.sampler_name = "DPM++ 2M";
    p.schedule_name = "Karras";
    p.cfg = 7;
    p.seed = 1234;
    p.width = 320;
    p.height = 480;
    p.model_hash = "abcdef1234";
    p.model_name = "xxmix9realistic_v40";
    p.clip_skip = 1;
    return p;
}

static void test_basic(void) {
    sdc_infotext_params p = base();
    p.version = "sdc 0.1";
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Negative prompt: easynegative,ng_deepnegative_v1_75t,(worst quality:2),(low quality:2)\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: xxmix9realistic_v40, Version: sdc 0.1",
           "the usual txt2img infotext");

    p = base();
    p.negative = "";
    p.sampler_name = "Euler a";
    p.schedule_name = NULL;
    p.cfg = 7.5;
    p.seed = 4294967295LL;
    p.clip_skip = 2;
    p.rng = "CPU";
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 4294967295, Size: 320x480, "
           "Model hash: abcdef1234, Model: xxmix9realistic_v40, Clip skip: 2, RNG: CPU",
           "no negative, clip skip 2, RNG CPU");

    p = base();
    p.negative = NULL;
    p.model_hash = NULL;
    p.model_name = NULL;
    p.sampler_name = NULL;
    p.schedule_name = NULL;
    p.rng = "GPU"; /* webui's default is not written */
    p.clip_skip = 0;
    p.seed = -1;
    p.steps = 0;
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 0, CFG scale: 7, Seed: -1, Size: 320x480",
           "fields left out");

    p = base();
    p.vae_hash = "735e4c3a44";
    p.vae_name = "vae-ft-mse-840000-ema-pruned";
    p.negative = NULL;
    p.schedule_name = "Automatic";
    p.sampler_name = "DDIM";
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 20, Sampler: DDIM, Schedule type: Automatic, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: xxmix9realistic_v40, "
           "VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned",
           "VAE fields");
    CHECK(sdc_infotext(NULL) == NULL, "NULL params");
}

static void test_quoting(void) {
    sdc_infotext_params p = base();
    p.negative = NULL;
    p.model_name = "my,model:v2";
    sdc_infotext_field extra[] = {
        {"Lora hashes", "add_detail: 1a2b3c4d5e6f, more: 0123456789ab"},
        {"Q", "say \"hi\", C:\\dir"},
        {"Only quotes", "a \"b\" c"},
        {"Tab", "x:\ty"},
        {"Ctl", "a\x01:\x1f\r\n"},
        {"Unicode", "\xe5\xa5\xb3\xe5\xad\xa9:1.2, caf\xc3\xa9"},
        {"Slash", "a/b\\c"},
    };
    p.extra = extra;
    p.n_extra = sizeof extra / sizeof extra[0];
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: \"my,model:v2\", "
           "Lora hashes: \"add_detail: 1a2b3c4d5e6f, more: 0123456789ab\", "
           "Q: \"say \\\"hi\\\", C:\\\\dir\", Only quotes: a \"b\" c, Tab: \"x:\\ty\", "
           "Ctl: \"a\\u0001:\\u001f\\r\\n\", "
           "Unicode: \"\xe5\xa5\xb3\xe5\xad\xa9:1.2, caf\xc3\xa9\", Slash: a/b\\c",
           "quoting");
    /* prompts are never quoted, newlines in them stay */
    p = base();
    p.prompt = "a \"cat\", sitting:1\nsecond line";
    p.negative = "bad: \"x\"\nmore";
    expect(&p,
           "a \"cat\", sitting:1\nsecond line\nNegative prompt: bad: \"x\"\nmore\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: xxmix9realistic_v40",
           "prompts unquoted");
}

static void test_extra_merge(void) {
    sdc_infotext_params p = base();
    p.negative = NULL;
    p.clip_skip = 2;
    p.version = "sdc 0.1";
    sdc_infotext_field extra[] = {
        {"Hires upscale", "2"},
        {"Denoising strength", "0.7"},  /* webui's own slot: after VAE, before Clip skip */
        {"Schedule type", "Exponential"}, /* replaces the value in place */
        {"Hires upscaler", "Latent"},
        {"Hires upscale", "1.5"},       /* repeated: first place, last value */
        {NULL, "ignored"},
        {"Gone", NULL},                 /* None: left out */
        {"Tiled", "Tiled"},             /* value == key: the key alone */
        {"Version", "ignored too"},     /* webui sets Version after the extras */
    };
    p.extra = extra;
    p.n_extra = sizeof extra / sizeof extra[0];
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Exponential, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: xxmix9realistic_v40, "
           "Denoising strength: 0.7, Clip skip: 2, Hires upscale: 1.5, Hires upscaler: Latent, "
           "Tiled, Version: sdc 0.1",
           "extras merged like a dict");
    p.version = NULL; /* "Version": None after the extras drops the extras' Version too */
    expect(&p,
           "1girl, upper body, (huge Laughing),sweety,sun glare, bokeh\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Exponential, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model hash: abcdef1234, Model: xxmix9realistic_v40, "
           "Denoising strength: 0.7, Clip skip: 2, Hires upscale: 1.5, Hires upscaler: Latent, "
           "Tiled",
           "Version None");
}

static void test_numbers(void) {
    static const struct {
        double cfg;
        const char *want;
    } cases[] = {
        {7, "7"},
        {12.0, "12"},
        {0, "0"},
        {-0.0, "0"},
        {7.5, "7.5"},
        {6.1, "6.1"},
        {-3.25, "-3.25"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {2.5e-7, "2.5e-07"},
        {123456789.125, "123456789.125"},
        {1e16, "1e+16"},
        {1.5e300, "1.5e+300"},
        {NAN, "nan"},
        {INFINITY, "inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sdc_infotext_params p = base();
        p.prompt = "x";
        p.negative = NULL;
        p.model_hash = p.model_name = NULL;
        p.cfg = cases[i].cfg;
        char want[200];
        snprintf(want, sizeof want,
                 "x\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: %s, "
                 "Seed: 1234, Size: 320x480",
                 cases[i].want);
        expect(&p, want, cases[i].want);
    }
}

static void test_strip(void) {
    sdc_infotext_params p = base();
    p.negative = NULL;
    p.model_hash = NULL;
    p.prompt = "";
    p.model_name = "m";
    expect(&p,
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model: m",
           "empty prompt: the leading newline is stripped");
    /* leading whitespace of the prompt (here U+3000 and a tab) goes, trailing stays before \n */
    p.prompt = "\xe3\x80\x80\t cat  ";
    /* trailing whitespace of the last value (U+00A0, space, U+2029) goes too */
    p.model_name = "m \xc2\xa0 \xe2\x80\xa9";
    expect(&p,
           "cat  \nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model: m",
           "str.strip()");
    p.prompt = NULL; /* same as "" */
    p.model_name = "m";
    expect(&p,
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
           "Size: 320x480, Model: m",
           "NULL prompt");
}

int main(void) {
    test_basic();
    test_quoting();
    test_extra_merge();
    test_numbers();
    test_strip();
    TEST_MAIN_END();
}
