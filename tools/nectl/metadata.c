// SPDX-License-Identifier: GPL-2.0
/* How an EIF's metadata section is read, and shown by describe-eif and describe-enclaves. */
#include <stdarg.h>
#include <stdio.h>

#include "errors.h"
#include "metadata.h"

/* nitro-cli's EifBuildInfo, the only BuildMetadata keys it shows. */
static const char *const build_keys[] = {
	"BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion",
};

static int meta_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int meta_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return E_EIF;
}

/* A required key of the given type (JSON_NULL: any type). */
static int meta_key(const struct json_value *obj, const char *where, const char *key,
		    enum json_type type, char *err, size_t errlen)
{
	static const char *const wanted[] = {
		[JSON_STRING] = "a string", [JSON_OBJECT] = "an object",
	};
	const struct json_value *v = json_get(obj, key);

	if (!v)
		return meta_error(err, errlen, "the metadata has no %s%s (nitro-cli requires it)",
				  where, key);
	if (type != JSON_NULL && v->type != type)
		return meta_error(err, errlen, "the metadata's %s%s must be %s, not %s", where, key,
				  wanted[type], json_kind(v));
	return 0;
}

static int meta_check(const struct json_value *meta, char *err, size_t errlen)
{
	const struct json_value *custom;
	size_t i;
	int code;

	if (meta->type != JSON_OBJECT)
		return meta_error(err, errlen, "the metadata section must be a JSON object or null, not %s",
				  json_kind(meta));
	if ((code = meta_key(meta, "", "ImageName", JSON_STRING, err, errlen)) ||
	    (code = meta_key(meta, "", "ImageVersion", JSON_STRING, err, errlen)) ||
	    (code = meta_key(meta, "", "BuildMetadata", JSON_OBJECT, err, errlen)) ||
	    (code = meta_key(meta, "", "DockerInfo", JSON_NULL, err, errlen)) ||
	    (code = meta_key(meta, "", "CustomMetadata", JSON_NULL, err, errlen)))
		return code;
	for (i = 0; i < sizeof(build_keys) / sizeof(build_keys[0]); i++)
		if ((code = meta_key(json_get(meta, "BuildMetadata"), "BuildMetadata.",
				     build_keys[i], JSON_STRING, err, errlen)))
			return code;
	custom = json_get(meta, "CustomMetadata");
	if (custom->type != JSON_OBJECT && custom->type != JSON_NULL) {
		snprintf(err, errlen, "the metadata's CustomMetadata is %s: nitro-cli reads it but cannot show it (its keys are shown flattened, so it must be an object or null)",
			 json_kind(custom));
		return E_CONFIG_PARSE;
	}
	return 0;
}

int metadata_parse(const char *text, size_t len, struct json_value **meta,
		   char *err, size_t errlen)
{
	char perr[160];
	int code;

	*meta = json_parse(text, len, perr, sizeof(perr));
	if (!*meta)
		return meta_error(err, errlen, "the metadata section is not valid JSON: %s", perr);
	if ((*meta)->type == JSON_NULL) {
		json_free(*meta);
		*meta = NULL;
		return 0;
	}
	code = meta_check(*meta, err, errlen);
	if (code == E_EIF) {
		json_free(*meta);
		*meta = NULL;
	}
	return code;
}

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
	char hex[2 * SHA384_DIGEST_LENGTH + 1];
	unsigned int i;

	json_key(w, "Measurements");
	json_begin_object(w);
	json_key(w, "HashAlgorithm");
	json_string(w, "Sha384 { ... }");
	for (i = 0; i < 3; i++) {
		eif_hex(pcrs[i], SHA384_DIGEST_LENGTH, hex);
		json_key(w, names[i]);
		json_string(w, hex);
	}
	if (eif->has_pcr8) {
		eif_hex(eif->pcr8, SHA384_DIGEST_LENGTH, hex);
		json_key(w, "PCR8");
		json_string(w, hex);
	}
	json_end_object(w);
}
