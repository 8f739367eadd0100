/* Internal to registry/: the client's transport, shared by client.c and pullpush.c. */
#ifndef KILN_REG_CLIENT_INTERNAL_H
#define KILN_REG_CLIENT_INTERNAL_H

#include "registry/reg.h"

/* Fill `err` like kiln_err_invalid (no strerror in the text) but with code `code`. */
int regc_err(struct kiln_err *err, int code, const char *fmt, ...) KILN_PRINTF(3, 4);

/* The registry host as given to reg_client_new ("docker.io", "127.0.0.1:5000"). */
const char *regc_host(const struct reg_client *c);
/* Decide between https and http (GET /v2/) once; later calls return at once. */
int regc_ensure_base(struct reg_client *c, struct kiln_err *err);
const struct reg_client_opts *regc_opts(const struct reg_client *c);

#endif
