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

/* Writes "Measurements": the hash algorithm, PCR0-2 and PCR8 if known, as nitro-cli does. */
void metadata_write_measurements(struct json_writer *w,
				 const struct eif_info *eif);

#endif
