// SPDX-License-Identifier: GPL-2.0
/* How an EIF's metadata section is shown by describe-eif and describe-enclaves. */
#include "metadata.h"

static void write_flattened(struct json_writer *w, const struct json_value *meta)
{
	static const char *const groups[] = { "BuildMetadata", "CustomMetadata" };
	const struct json_value *v;
	size_t g, i;

	json_key(w, "Metadata");
	json_begin_object(w);
	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		v = json_get(meta, groups[g]);
		if (!v || v->type != JSON_OBJECT)
			continue;
		for (i = 0; i < v->count; i++) {
			json_key(w, v->keys[i]);
			json_tree(w, v->items[i]);
		}
	}
	v = json_get(meta, "DockerInfo");
	if (v) {
		json_key(w, "DockerInfo");
		json_tree(w, v);
	}
	json_end_object(w);
}

static void write_field(struct json_writer *w, const struct json_value *meta, const char *key)
{
	const struct json_value *v = json_get(meta, key);

	json_key(w, key);
	if (v)
		json_tree(w, v);
	else
		json_null(w);
}

void metadata_write_identity(struct json_writer *w, const struct json_value *meta)
{
	write_field(w, meta, "ImageName");
	write_field(w, meta, "ImageVersion");
	if (meta)
		write_flattened(w, meta);
}

void metadata_write_measurements(struct json_writer *w,
				 const struct eif_info *eif)
{
	const uint8_t *pcrs[] = { eif->pcr0, eif->pcr1, eif->pcr2 };
	static const char *const names[] = { "PCR0", "PCR1", "PCR2" };
	char hex[2 * SHA384_DIGEST_SIZE + 1];
	unsigned int i;

	json_key(w, "Measurements");
	json_begin_object(w);
	json_key(w, "HashAlgorithm");
	json_string(w, "Sha384 { ... }");
	for (i = 0; i < 3; i++) {
		eif_hex(pcrs[i], SHA384_DIGEST_SIZE, hex);
		json_key(w, names[i]);
		json_string(w, hex);
	}
	if (eif->has_pcr8) {
		eif_hex(eif->pcr8, SHA384_DIGEST_SIZE, hex);
		json_key(w, "PCR8");
		json_string(w, hex);
	}
	json_end_object(w);
}
