/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_METADATA_H
#define NECTL_METADATA_H

#include "json.h"

/*
 * Writes "ImageName", "ImageVersion" and, when there is metadata, "Metadata"
 * from an EIF metadata section (NULL: no metadata, names are null), the way
 * nitro-cli shows them: BuildMetadata and CustomMetadata flattened into one
 * Metadata object, plus DockerInfo.
 */
void metadata_write_identity(struct json_writer *w, const struct json_value *meta);

#endif
