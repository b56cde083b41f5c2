/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_METADATA_H
#define NECTL_METADATA_H

#include "eif.h"
#include "json.h"

/*
 * Writes "ImageName", "ImageVersion" and "Metadata" from an EIF metadata
 * section the way nitro-cli shows them: Metadata holds the five
 * BuildMetadata fields, DockerInfo, then the CustomMetadata keys.  Without
 * metadata (NULL) nothing is written: nitro-cli omits the three keys.
 */
void metadata_write_identity(struct json_writer *w, const struct json_value *meta);

/*
 * Reads an EIF's metadata section as nitro-cli does (serde into its
 * EifIdentityInfo): null is no metadata (*meta NULL); otherwise an object
 * with the strings ImageName and ImageVersion, a BuildMetadata object of
 * five strings (BuildTime, BuildTool, BuildToolVersion, OperatingSystem,
 * KernelVersion), and DockerInfo and CustomMetadata of any type; other keys
 * are ignored.  Returns 0; E35 (err set) for what nitro-cli's reader
 * refuses; or E17 with *meta set for a CustomMetadata that is neither an
 * object nor null, which nitro-cli reads but cannot show (serde's flatten
 * fails, so its describe-eif fails with E17).
 */
int metadata_parse(const char *text, size_t len, struct json_value **meta,
		   char *err, size_t errlen);

/* Writes "Measurements": the hash algorithm, PCR0-2 and PCR8 if known, as nitro-cli does. */
void metadata_write_measurements(struct json_writer *w,
				 const struct eif_info *eif);

#endif
