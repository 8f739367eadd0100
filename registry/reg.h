/*
 * kiln registry: OCI content — the content store, image references, manifests, indexes
 * and configs, the OCI image layout and docker archives, and the registry HTTP client.
 *
 * Calling sequence: see each section below.
 */
#ifndef KILN_REG_H
#define KILN_REG_H

#include "base/base.h"

#include <jansson.h>

/* ==== content store, references, manifests, layouts (owned by the store work) ==== */

/* ==== registry client: pull, push, auth (owned by the client work) ==== */

#endif
