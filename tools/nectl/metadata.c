// SPDX-License-Identifier: GPL-2.0
/* How an EIF's metadata section is shown by describe-eif and describe-enclaves. */
#include "metadata.h"

/* nitro-cli's EifBuildInfo, the only BuildMetadata keys it shows. */
static const char *const build_keys[] = {
	"BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion",
};

/*
 * nitro-cli's MetadataDescribeInfo: the five build fields, DockerInfo, then
 * the CustomMetadata keys flattened (serde's flatten; none when it is null).
 */
static void write_flattened(struct json_writer *w, const struct json_value *meta)
{
	const struct json_value *build = json_get(meta, "BuildMetadata");
	const struct json_value *custom = json_get(meta, "CustomMetadata");
	const struct json_value *v;
	size_t i;

	json_key(w, "Metadata");
	json_begin_object(w);
	for (i = 0; i < sizeof(build_keys) / sizeof(build_keys[0]); i++) {
		v = json_get(build, build_keys[i]);
		if (v) {
			json_key(w, build_keys[i]);
			json_tree(w, v);
		}
	}
	json_key(w, "DockerInfo");
	v = json_get(meta, "DockerInfo");
	if (v)
		json_tree(w, v);
	else
		json_null(w);
	for (i = 0; custom && custom->type == JSON_OBJECT && i < custom->count; i++) {
		json_key(w, custom->keys[i]);
		json_tree(w, custom->items[i]);
	}
	json_end_object(w);
}

static void write_field(struct json_writer *w, const struct json_value *meta, const char *key)
{
	const struct json_value *v = json_get(meta, key);

	if (v) {
		json_key(w, key);
		json_tree(w, v);
	}
}

void metadata_write_identity(struct json_writer *w, const struct json_value *meta)
{
	if (!meta)
		return;		/* no metadata section: nitro-cli omits the three keys */
	write_field(w, meta, "ImageName");
	write_field(w, meta, "ImageVersion");
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
