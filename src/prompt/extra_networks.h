/* src/prompt/extra_networks.h: webui's extra-network tags, <TYPE:ARG:ARG...>, in prompts.
 *
 * AUTOMATIC1111's modules/extra_networks.py parse_prompt() removes every match of the regex
 *     <(\w+):([^>]+)>
 * from the prompt text (\w is Python's Unicode word class) before the prompt syntax is parsed,
 * and gives each match to the extra network named TYPE ("lora", "hypernet", ...) as the list of
 * its arguments split at ':' (ExtraNetworkParams: an argument with one '=' is named, key=value,
 * the others positional). The infotext keeps the prompt as typed, tags included.
 *
 *   sdc_extra_networks x;
 *   SDC_TRY(sdc_extra_networks_parse("a cat <lora:film:0.8>", &x, err));
 *   x.prompt        -> "a cat "
 *   x.v[0].type     -> "lora", x.v[0].items -> {"film", "0.8"}
 *   sdc_extra_networks_free(&x);
 *
 * For "lora", webui's ExtraNetworkLora.activate reads the arguments as
 *     <lora:NAME[:TE[:UNET[:DYN]]]>  with named te=, unet=, dyn= overriding the positions;
 * TE defaults to 1 and UNET to TE (sdc_extra_network_lora). webui parses only the positive
 * prompt this way; a tag in the negative prompt stays there as text.
 */
#ifndef SDC_PROMPT_EXTRA_NETWORKS_H
#define SDC_PROMPT_EXTRA_NETWORKS_H

#include "core/error.h"

#include <stddef.h>

typedef struct sdc_extra_network {
    char *type;    /* the \w+ before the first ':' */
    char **items;  /* the arguments, split at ':' (never empty; an item may be "") */
    size_t n_items;
} sdc_extra_network;

typedef struct sdc_extra_networks {
    char *prompt;  /* the prompt with every tag removed */
    sdc_extra_network *v;
    size_t n;
} sdc_extra_networks;

/* Finds and removes the tags. SDC_E_LIMIT for a prompt over 1 MB; *out is empty on failure. */
sdc_status sdc_extra_networks_parse(const char *prompt, sdc_extra_networks *out, sdc_error *err);
void sdc_extra_networks_free(sdc_extra_networks *x); /* NULL-safe; leaves *x zeroed */

/* ExtraNetworkParams: the i-th positional argument (NULL past the end) and a named one (NULL if
 * absent; the last occurrence wins, as in a Python dict). */
const char *sdc_extra_network_positional(const sdc_extra_network *n, size_t i);
const char *sdc_extra_network_named(const sdc_extra_network *n, const char *key);

/* A <lora:...> tag's name and multipliers. Numbers are read as Python's float() does
 * (surrounding whitespace allowed); a value that is not a finite number is SDC_E_INVALID_ARG
 * naming the tag. The name points into n. */
typedef struct sdc_lora_tag {
    const char *name;
    float te, unet;
} sdc_lora_tag;
sdc_status sdc_extra_network_lora(const sdc_extra_network *n, sdc_lora_tag *out, sdc_error *err);

#endif
