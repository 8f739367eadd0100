/*
 * --cache-to / --cache-from specs as buildx spells them (see the end of exp.h). Apart
 * from the rest of the cache so it depends on base/ only.
 */
#include "exp.h"

#include <strings.h>

#define CACHE_MOUNTS_MAX_DEFAULT (UINT64_C(1) << 30)

static int
parse_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	uint64_t mul = 1;
	if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
		mul = 1024;
	else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
		mul = 1024 * 1024;
	else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
		mul = 1024 * 1024 * 1024;
	else if (*end)
		return -EINVAL;
	*ret = (uint64_t)v * mul;
	return 0;
}

static int
parse_bool(const char *v, bool *ret)
{
	if (kiln_str_eq(v, "true") || kiln_str_eq(v, "1"))
		*ret = true;
	else if (kiln_str_eq(v, "false") || kiln_str_eq(v, "0"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

void
exp_cache_spec_release(struct exp_cache_spec *s)
{
	free(s->dir);
	free(s->ref);
	free(s->compression);
	*s = (struct exp_cache_spec){0};
}

int
exp_cache_spec_parse(const char *spec, bool to, struct exp_cache_spec *ret, struct kiln_err *err)
{
	const char *opt = to ? "--cache-to" : "--cache-from";
	struct exp_cache_spec s = {.cache_mounts_max = CACHE_MOUNTS_MAX_DEFAULT,
	                           .compression_level = -1};
	_cleanup_free_ char *copy = kiln_xstrdup(spec);
	const char *type = NULL, *mode = NULL;
	int r = 0;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
	     f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq) {
			/* buildx: --cache-from REF is type=registry,ref=REF */
			if (!to && !s.ref && !type) {
				type = "registry";
				s.ref = kiln_xstrdup(f);
				continue;
			}
			r = kiln_err_invalid(err, "%s %s: %s is not key=value", opt, spec, f);
			goto fail;
		}
		*eq = '\0';
		const char *k = f, *v = eq + 1;
		bool b;
		if (kiln_str_eq(k, "type")) {
			type = v;
		} else if (kiln_str_eq(k, to ? "dest" : "src")) {
			free(s.dir);
			s.dir = kiln_xstrdup(v);
		} else if (kiln_str_eq(k, "ref")) {
			free(s.ref);
			s.ref = kiln_xstrdup(v);
		} else if (to && kiln_str_eq(k, "mode")) {
			mode = v;
		} else if (to && kiln_str_eq(k, "compression")) {
			if (!kiln_str_eq(v, "gzip") && !kiln_str_eq(v, "zstd") &&
			    !kiln_str_eq(v, "uncompressed")) {
				r = kiln_err_invalid(
				        err,
				        "%s %s: compression must be gzip, zstd or uncompressed",
				        opt, spec);
				goto fail;
			}
			free(s.compression);
			s.compression = kiln_xstrdup(v);
		} else if (to && kiln_str_eq(k, "compression-level")) {
			uint64_t n;
			if (kiln_parse_u64(v, &n) < 0 || n > 22) {
				r = kiln_err_invalid(err, "%s %s: compression-level takes 0 to 22",
				                     opt, spec);
				goto fail;
			}
			s.compression_level = (int)n;
		} else if (to &&
		           (kiln_str_eq(k, "force-compression") ||
		            kiln_str_eq(k, "oci-mediatypes") || kiln_str_eq(k, "image-manifest"))) {
			/* Accepted as buildx takes them: kiln always writes an OCI image
			 * manifest, and layers are made for the cache in its compression. */
		} else if (to && kiln_str_eq(k, "cache-mounts")) {
			if (parse_bool(v, &s.cache_mounts) < 0) {
				r = kiln_err_invalid(err, "%s %s: cache-mounts takes true or false",
				                     opt, spec);
				goto fail;
			}
		} else if (to && kiln_str_eq(k, "cache-mounts-max-size")) {
			if (parse_size(v, &s.cache_mounts_max) < 0) {
				r = kiln_err_invalid(err, "%s %s: bad cache-mounts-max-size %s",
				                     opt, spec, v);
				goto fail;
			}
		} else if (kiln_str_eq(k, "ignore-error")) {
			if (parse_bool(v, &b) < 0) {
				r = kiln_err_invalid(err, "%s %s: ignore-error takes true or false",
				                     opt, spec);
				goto fail;
			}
			s.ignore_error = b;
		} else if (kiln_str_eq(k, "digest") || kiln_str_eq(k, "name")) {
			/* buildx's local cache keys kiln does not need */
		} else {
			r = kiln_err_invalid(err, "%s %s: unknown key %s", opt, spec, k);
			goto fail;
		}
	}
	if (!type) {
		r = kiln_err_invalid(err, "%s %s: type= is required", opt, spec);
		goto fail;
	}
	if (kiln_str_eq(type, "local")) {
		s.type = EXP_CACHE_LOCAL;
		if (!s.dir || !*s.dir) {
			r = kiln_err_invalid(err, "%s %s: %s= is required", opt, spec,
			                     to ? "dest" : "src");
			goto fail;
		}
	} else if (kiln_str_eq(type, "registry")) {
		s.type = EXP_CACHE_REGISTRY;
		if (!s.ref || !*s.ref) {
			r = kiln_err_invalid(err, "%s %s: ref= is required", opt, spec);
			goto fail;
		}
	} else if (to && kiln_str_eq(type, "inline")) {
		s.type = EXP_CACHE_INLINE;
	} else {
		r = kiln_err_invalid(err, "%s %s: type must be local, registry%s", opt, spec,
		                     to ? " or inline" : "");
		goto fail;
	}
	if (mode) {
		if (kiln_str_eq(mode, "max"))
			s.max = true;
		else if (!kiln_str_eq(mode, "min")) {
			r = kiln_err_invalid(err, "%s %s: mode must be min or max", opt, spec);
			goto fail;
		}
	}
	if (s.type == EXP_CACHE_INLINE && s.max) {
		r = kiln_err_invalid(err, "%s %s: type=inline supports mode=min only", opt, spec);
		goto fail;
	}
	if (s.cache_mounts && !s.max) {
		r = kiln_err_invalid(err, "%s %s: cache-mounts=true needs mode=max", opt, spec);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	exp_cache_spec_release(&s);
	return r;
}
