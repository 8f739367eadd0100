/*
 * OCI image manifests and indexes, Docker schema2 manifests and manifest lists, and
 * image configs, with limits for documents that come from the network.
 *
 * A manifest's digest is over its exact bytes, so callers keep the raw document and
 * never re-serialise a parsed one to name it; the writers here are for documents kiln
 * makes itself.
 */
#include "reg.h"

#include <ctype.h>
#include <sys/utsname.h>

static const struct {
	enum reg_kind kind;
	const char *mt;
} kinds[] = {
        {REG_KIND_OCI_MANIFEST, REG_MT_OCI_MANIFEST},
        {REG_KIND_OCI_INDEX, REG_MT_OCI_INDEX},
        {REG_KIND_DOCKER_MANIFEST, REG_MT_DOCKER_MANIFEST},
        {REG_KIND_DOCKER_LIST, REG_MT_DOCKER_LIST},
};

const char *
reg_kind_media_type(enum reg_kind k)
{
	for (size_t i = 0; i < KILN_ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == k)
			return kinds[i].mt;
	return NULL;
}

static enum reg_kind
kind_of(const char *mt)
{
	for (size_t i = 0; mt && i < KILN_ARRAY_SIZE(kinds); i++)
		if (kiln_str_eq(kinds[i].mt, mt))
			return kinds[i].kind;
	return REG_KIND_UNKNOWN;
}

/* jansson nests up to 2048 levels; we want a much lower bound, checked before parsing. */
static int
check_depth(const char *s, size_t len, size_t max, struct kiln_err *err)
{
	size_t depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return kiln_err_invalid(
				        err, "JSON document nests deeper than %zu levels", max);
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return 0;
}

static int
load_json(const void *data, size_t len, const struct reg_limits *lim, const char *what,
          json_t **ret, struct kiln_err *err)
{
	if (len > lim->max_manifest_bytes)
		return kiln_err_invalid(err, "%s is %zu bytes, more than the limit of %zu", what,
		                        len, lim->max_manifest_bytes);
	int r = check_depth(data, len, lim->max_json_depth, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", what);
	json_error_t je;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return kiln_err_invalid(err, "%s is not valid JSON: %s (line %d)", what, je.text,
		                        je.line);
	if (!json_is_object(j)) {
		json_decref(j);
		return kiln_err_invalid(err, "%s is not a JSON object", what);
	}
	*ret = j;
	return 0;
}

static enum reg_kind
content_type_kind(const char *ct, bool *generic)
{
	*generic = true;
	if (!ct)
		return REG_KIND_UNKNOWN;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	_cleanup_free_ char *t = kiln_xstrndup(ct, n);
	for (char *p = t; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!*t || kiln_str_eq(t, "application/json") ||
	    kiln_str_eq(t, "application/octet-stream") || kiln_str_eq(t, "text/plain"))
		return REG_KIND_UNKNOWN;
	*generic = false;
	return kind_of(t);
}

static int
detect_json(json_t *j, const char *content_type, enum reg_kind *ret, struct kiln_err *err)
{
	json_t *mtj = json_object_get(j, "mediaType");
	bool has_layers = json_object_get(j, "layers") != NULL;
	bool has_config = json_object_get(j, "config") != NULL;
	bool has_manifests = json_object_get(j, "manifests") != NULL;
	if (has_manifests && (has_layers || has_config))
		return kiln_err_invalid(err, "ambiguous manifest: it has both `manifests` and `%s`",
		                        has_layers ? "layers" : "config");
	if (mtj && !json_is_string(mtj))
		return kiln_err_invalid(err, "manifest mediaType is not a string");
	const char *mt = json_string_value(mtj);
	enum reg_kind k = kind_of(mt);
	if (mt && k == REG_KIND_UNKNOWN)
		return kiln_err_invalid(err, "unsupported manifest media type `%s`", mt);
	bool generic;
	enum reg_kind ck = content_type_kind(content_type, &generic);
	if (!generic && ck == REG_KIND_UNKNOWN)
		return kiln_err_invalid(err, "unsupported manifest Content-Type `%s`",
		                        content_type);
	if (k == REG_KIND_UNKNOWN) {
		if (ck != REG_KIND_UNKNOWN)
			k = ck;
		else if (has_manifests)
			k = REG_KIND_OCI_INDEX;
		else if (has_layers || has_config)
			k = REG_KIND_OCI_MANIFEST;
		else
			return kiln_err_invalid(
			        err, "not a manifest: no mediaType, layers or manifests");
	} else if (ck != REG_KIND_UNKNOWN && ck != k) {
		return kiln_err_invalid(err,
		                        "manifest mediaType `%s` conflicts with Content-Type `%s`",
		                        mt, content_type);
	}
	if (reg_kind_is_index(k) ? (has_layers || has_config) : has_manifests)
		return kiln_err_invalid(err, "manifest of type %s has the fields of the other kind",
		                        reg_kind_media_type(k));
	json_t *sv = json_object_get(j, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return kiln_err_invalid(err, "unsupported manifest schemaVersion (want 2)");
	*ret = k;
	return 0;
}

int
reg_media_detect(const void *data, size_t len, const char *content_type,
                 const struct reg_limits *lim, enum reg_kind *ret, struct kiln_err *err)
{
	const struct reg_limits def = REG_LIMITS_INIT;
	_cleanup_json_ json_t *j = NULL;
	int r = load_json(data, len, lim ? lim : &def, "manifest", &j, err);
	if (r < 0)
		return r;
	return detect_json(j, content_type, ret, err);
}

/* ---- platforms ---- */

void
reg_platform_release(struct reg_platform *p)
{
	if (!p)
		return;
	free(p->os);
	free(p->architecture);
	free(p->variant);
	free(p->os_version);
	*p = (struct reg_platform)REG_PLATFORM_INIT;
}

/* containerd's normalisation: GOARCH names, and the variants implied when absent. */
static void
normalize_arch(const char *arch, const char *variant, const char **ret_arch,
               const char **ret_variant)
{
	*ret_arch = arch;
	*ret_variant = variant && *variant ? variant : NULL;
	if (kiln_str_eq(arch, "x86_64") || kiln_str_eq(arch, "x86-64")) {
		*ret_arch = "amd64";
	} else if (kiln_str_eq(arch, "i386") || kiln_str_eq(arch, "i686")) {
		*ret_arch = "386";
	} else if (kiln_str_eq(arch, "aarch64") || kiln_str_eq(arch, "arm64")) {
		*ret_arch = "arm64";
		if (*ret_variant &&
		    (kiln_str_eq(*ret_variant, "8") || kiln_str_eq(*ret_variant, "v8")))
			*ret_variant = NULL;
	} else if (kiln_str_eq(arch, "armhf")) {
		*ret_arch = "arm", *ret_variant = "v7";
	} else if (kiln_str_eq(arch, "armel")) {
		*ret_arch = "arm", *ret_variant = "v6";
	} else if (kiln_str_eq(arch, "arm")) {
		if (!*ret_variant || kiln_str_eq(*ret_variant, "7"))
			*ret_variant = "v7";
		else if (kiln_str_eq(*ret_variant, "6"))
			*ret_variant = "v6";
		else if (kiln_str_eq(*ret_variant, "5"))
			*ret_variant = "v5";
	}
	if (kiln_str_eq(*ret_arch, "amd64") && *ret_variant && kiln_str_eq(*ret_variant, "v1"))
		*ret_variant = NULL;
}

int
reg_platform_parse(const char *s, struct reg_platform *out, struct kiln_err *err)
{
	_cleanup_free_ char *copy = kiln_xstrdup(s);
	char *parts[4] = {0};
	size_t n = 0;
	for (char *tok = copy, *next; tok && n < 4; tok = next) {
		next = strchr(tok, '/');
		if (next)
			*next++ = '\0';
		parts[n++] = tok;
	}
	if (n < 2 || n > 3 || parts[3] || !*parts[0] || !*parts[1] || (n == 3 && !*parts[2]))
		return kiln_err_invalid(err, "invalid platform `%s`: want os/arch[/variant]", s);
	for (char *p = copy; p < copy + strlen(s); p++)
		*p = (char)tolower((unsigned char)*p);
	const char *arch, *variant;
	normalize_arch(parts[1], n == 3 ? parts[2] : NULL, &arch, &variant);
	*out = (struct reg_platform){
	        .os = kiln_xstrdup(parts[0]),
	        .architecture = kiln_xstrdup(arch),
	        .variant = variant ? kiln_xstrdup(variant) : NULL,
	};
	return 0;
}

void
reg_platform_host(struct reg_platform *out)
{
	struct utsname u;
	const char *arch = "amd64", *variant = NULL;
	if (uname(&u) == 0)
		normalize_arch(u.machine, NULL, &arch, &variant);
	*out = (struct reg_platform){
	        .os = kiln_xstrdup("linux"),
	        .architecture = kiln_xstrdup(arch),
	        .variant = variant ? kiln_xstrdup(variant) : NULL,
	};
}

char *
reg_platform_string(const struct reg_platform *p)
{
	return kiln_xasprintf("%s/%s%s%s", p->os ? p->os : "?",
	                      p->architecture ? p->architecture : "?", p->variant ? "/" : "",
	                      p->variant ? p->variant : "");
}

bool
reg_platform_match(const struct reg_platform *want, const struct reg_platform *have)
{
	if (!want->os || !have->os || !want->architecture || !have->architecture)
		return false;
	if (!kiln_str_eq(want->os, have->os))
		return false;
	const char *wa, *wv, *ha, *hv;
	normalize_arch(want->architecture, want->variant, &wa, &wv);
	normalize_arch(have->architecture, have->variant, &ha, &hv);
	if (!kiln_str_eq(wa, ha))
		return false;
	if (!wv || !hv)
		return !wv && !hv;
	return kiln_str_eq(wv, hv);
}

/* ---- descriptors ---- */

void
reg_descriptor_release(struct reg_descriptor *d)
{
	if (!d)
		return;
	free(d->media_type);
	reg_platform_release(&d->platform);
	if (d->annotations)
		json_decref(d->annotations);
	*d = (struct reg_descriptor){0};
}

static char *
xstrdup_or_null(const char *s)
{
	return s ? kiln_xstrdup(s) : NULL;
}

void
reg_descriptor_copy(struct reg_descriptor *dst, const struct reg_descriptor *src)
{
	*dst = (struct reg_descriptor){
	        .media_type = xstrdup_or_null(src->media_type),
	        .size = src->size,
	        .has_platform = src->has_platform,
	        .platform =
	                {
	                        .os = xstrdup_or_null(src->platform.os),
	                        .architecture = xstrdup_or_null(src->platform.architecture),
	                        .variant = xstrdup_or_null(src->platform.variant),
	                        .os_version = xstrdup_or_null(src->platform.os_version),
	                },
	        .annotations = src->annotations ? json_deep_copy(src->annotations) : NULL,
	};
	memcpy(dst->digest, src->digest, sizeof(dst->digest));
}

static int
parse_annotations(json_t *j, json_t **ret, struct kiln_err *err)
{
	json_t *a = json_object_get(j, "annotations");
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_object(a))
		return kiln_err_invalid(err, "annotations must be an object");
	const char *k;
	json_t *v;
	json_object_foreach(a, k, v)
	{
		if (!json_is_string(v))
			return kiln_err_invalid(err, "annotation `%s` is not a string", k);
	}
	*ret = json_incref(a);
	return 0;
}

static int
parse_descriptor(json_t *j, bool need_mt, struct reg_descriptor *out, struct kiln_err *err)
{
	*out = (struct reg_descriptor){0};
	if (!json_is_object(j))
		return kiln_err_invalid(err, "descriptor is not an object");
	json_t *mt = json_object_get(j, "mediaType");
	const char *digest = json_string_value(json_object_get(j, "digest"));
	json_t *size = json_object_get(j, "size");
	if ((mt && !json_is_string(mt)) || (need_mt && !mt))
		return kiln_err_invalid(err, "descriptor without a mediaType string");
	if (!digest)
		return kiln_err_invalid(err, "descriptor without a digest");
	if (!kiln_digest_valid(digest))
		return kiln_err_invalid(err, "descriptor digest `%s` is not a sha256 digest",
		                        digest);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return kiln_err_invalid(err, "descriptor %s has no valid size", digest);
	out->media_type = xstrdup_or_null(json_string_value(mt));
	memcpy(out->digest, digest, sizeof(out->digest));
	out->size = json_integer_value(size);
	json_t *p = json_object_get(j, "platform");
	if (p) {
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *arch = json_string_value(json_object_get(p, "architecture"));
		if (!json_is_object(p) || !os || !arch) {
			reg_descriptor_release(out);
			return kiln_err_invalid(
			        err, "descriptor %s: platform needs os and architecture", digest);
		}
		out->has_platform = true;
		out->platform.os = kiln_xstrdup(os);
		out->platform.architecture = kiln_xstrdup(arch);
		out->platform.variant =
		        xstrdup_or_null(json_string_value(json_object_get(p, "variant")));
		out->platform.os_version =
		        xstrdup_or_null(json_string_value(json_object_get(p, "os.version")));
	}
	int r = parse_annotations(j, &out->annotations, err);
	if (r < 0)
		reg_descriptor_release(out);
	return r;
}

static json_t *
descriptor_json(const struct reg_descriptor *d)
{
	json_t *j = json_object();
	if (d->media_type)
		json_object_set_new(j, "mediaType", json_string(d->media_type));
	json_object_set_new(j, "digest", json_string(d->digest));
	json_object_set_new(j, "size", json_integer(d->size));
	if (d->annotations && json_object_size(d->annotations))
		json_object_set(j, "annotations", d->annotations);
	if (d->has_platform) {
		json_t *p = json_object();
		json_object_set_new(p, "architecture", json_string(d->platform.architecture));
		json_object_set_new(p, "os", json_string(d->platform.os));
		if (d->platform.os_version)
			json_object_set_new(p, "os.version", json_string(d->platform.os_version));
		if (d->platform.variant)
			json_object_set_new(p, "variant", json_string(d->platform.variant));
		json_object_set_new(j, "platform", p);
	}
	return j;
}

static int
dump(json_t *j, struct kiln_buf *out, struct kiln_err *err)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return kiln_err_set(err, ENOMEM, "serialise JSON");
	kiln_buf_addstr(out, s);
	free(s);
	return 0;
}

/* ---- manifests ---- */

void
reg_manifest_release(struct reg_manifest *m)
{
	if (!m)
		return;
	reg_descriptor_release(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		reg_descriptor_release(&m->layers[i]);
	free(m->layers);
	if (m->annotations)
		json_decref(m->annotations);
	*m = (struct reg_manifest){0};
}

int
reg_manifest_parse(const void *data, size_t len, const struct reg_limits *lim,
                   struct reg_manifest *out, struct kiln_err *err)
{
	const struct reg_limits def = REG_LIMITS_INIT;
	lim = lim ? lim : &def;
	_cleanup_json_ json_t *j = NULL;
	enum reg_kind k;
	int r = load_json(data, len, lim, "manifest", &j, err);
	if (r < 0 || (r = detect_json(j, NULL, &k, err)) < 0)
		return r;
	if (reg_kind_is_index(k))
		return kiln_err_invalid(err, "expected an image manifest, got an index (%s)",
		                        reg_kind_media_type(k));
	json_t *layers = json_object_get(j, "layers");
	if (!json_is_array(layers))
		return kiln_err_invalid(err, "manifest has no layers array");
	if (json_array_size(layers) > lim->max_layers)
		return kiln_err_invalid(err, "manifest has %zu layers, more than the limit of %zu",
		                        json_array_size(layers), lim->max_layers);
	struct reg_manifest m = {.kind = k};
	bool docker = k == REG_KIND_DOCKER_MANIFEST;
	r = parse_descriptor(json_object_get(j, "config"), docker, &m.config, err);
	if (r < 0)
		return kiln_err_wrap(err, "manifest config");
	m.layers = kiln_xcalloc(json_array_size(layers) + 1, sizeof(*m.layers));
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l)
	{
		r = parse_descriptor(l, docker, &m.layers[i], err);
		if (r < 0) {
			reg_manifest_release(&m);
			return kiln_err_wrap(err, "manifest layer %zu", i);
		}
		m.n_layers++;
	}
	r = parse_annotations(j, &m.annotations, err);
	if (r < 0) {
		reg_manifest_release(&m);
		return r;
	}
	*out = m;
	return 0;
}

int
reg_manifest_write(const struct reg_manifest *m, struct kiln_buf *out, struct kiln_err *err)
{
	const char *mt = reg_kind_media_type(m->kind);
	if (!mt || reg_kind_is_index(m->kind))
		return kiln_err_invalid(err, "not a manifest kind");
	_cleanup_json_ json_t *j = json_object();
	json_object_set_new(j, "schemaVersion", json_integer(2));
	json_object_set_new(j, "mediaType", json_string(mt));
	json_object_set_new(j, "config", descriptor_json(&m->config));
	json_t *layers = json_array();
	for (size_t i = 0; i < m->n_layers; i++)
		json_array_append_new(layers, descriptor_json(&m->layers[i]));
	json_object_set_new(j, "layers", layers);
	if (m->annotations && json_object_size(m->annotations))
		json_object_set(j, "annotations", m->annotations);
	return dump(j, out, err);
}

/* ---- indexes ---- */

void
reg_index_release(struct reg_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->n_manifests; i++)
		reg_descriptor_release(&idx->manifests[i]);
	free(idx->manifests);
	if (idx->annotations)
		json_decref(idx->annotations);
	*idx = (struct reg_index){0};
}

int
reg_index_parse(const void *data, size_t len, const struct reg_limits *lim, struct reg_index *out,
                struct kiln_err *err)
{
	const struct reg_limits def = REG_LIMITS_INIT;
	lim = lim ? lim : &def;
	_cleanup_json_ json_t *j = NULL;
	enum reg_kind k;
	int r = load_json(data, len, lim, "index", &j, err);
	if (r < 0 || (r = detect_json(j, NULL, &k, err)) < 0)
		return r;
	if (!reg_kind_is_index(k))
		return kiln_err_invalid(err, "expected an index, got an image manifest (%s)",
		                        reg_kind_media_type(k));
	json_t *ms = json_object_get(j, "manifests");
	if (!json_is_array(ms))
		return kiln_err_invalid(err, "index has no manifests array");
	if (json_array_size(ms) > lim->max_index_entries)
		return kiln_err_invalid(err, "index has %zu entries, more than the limit of %zu",
		                        json_array_size(ms), lim->max_index_entries);
	struct reg_index idx = {.kind = k};
	idx.manifests = kiln_xcalloc(json_array_size(ms) + 1, sizeof(*idx.manifests));
	size_t i;
	json_t *e;
	json_array_foreach(ms, i, e)
	{
		r = parse_descriptor(e, k == REG_KIND_DOCKER_LIST, &idx.manifests[i], err);
		if (r < 0) {
			reg_index_release(&idx);
			return kiln_err_wrap(err, "index entry %zu", i);
		}
		idx.n_manifests++;
	}
	r = parse_annotations(j, &idx.annotations, err);
	if (r < 0) {
		reg_index_release(&idx);
		return r;
	}
	*out = idx;
	return 0;
}

int
reg_index_write(const struct reg_index *idx, struct kiln_buf *out, struct kiln_err *err)
{
	const char *mt = reg_kind_media_type(idx->kind);
	if (!mt || !reg_kind_is_index(idx->kind))
		return kiln_err_invalid(err, "not an index kind");
	_cleanup_json_ json_t *j = json_object();
	json_object_set_new(j, "schemaVersion", json_integer(2));
	json_object_set_new(j, "mediaType", json_string(mt));
	json_t *ms = json_array();
	for (size_t i = 0; i < idx->n_manifests; i++)
		json_array_append_new(ms, descriptor_json(&idx->manifests[i]));
	json_object_set_new(j, "manifests", ms);
	if (idx->annotations && json_object_size(idx->annotations))
		json_object_set(j, "annotations", idx->annotations);
	return dump(j, out, err);
}

int
reg_index_select(const struct reg_index *idx, const struct reg_platform *want, struct kiln_err *err)
{
	struct reg_platform host = REG_PLATFORM_INIT;
	if (!want) {
		reg_platform_host(&host);
		want = &host;
	}
	int found = -1;
	for (size_t i = 0; i < idx->n_manifests && found < 0; i++) {
		const struct reg_descriptor *d = &idx->manifests[i];
		if (d->has_platform && reg_platform_match(want, &d->platform))
			found = (int)i;
	}
	if (found >= 0) {
		reg_platform_release(&host);
		return found;
	}
	_cleanup_buf_ struct kiln_buf avail = KILN_BUF_INIT;
	for (size_t i = 0; i < idx->n_manifests; i++) {
		if (!idx->manifests[i].has_platform)
			continue;
		_cleanup_free_ char *p = reg_platform_string(&idx->manifests[i].platform);
		kiln_buf_addf(&avail, "%s%s", avail.len ? ", " : "", p);
	}
	_cleanup_free_ char *w = reg_platform_string(want);
	reg_platform_release(&host);
	return kiln_err_set(err, ENOENT, "no manifest for platform %s in the index (available: %s)",
	                    w, avail.len ? avail.buf : "none");
}

/* ---- image configs ---- */

void
reg_config_release(struct reg_config *c)
{
	if (!c)
		return;
	free(c->created);
	free(c->os);
	free(c->architecture);
	free(c->variant);
	kiln_strv_release(&c->diff_ids);
	if (c->config)
		json_decref(c->config);
	if (c->history)
		json_decref(c->history);
	if (c->raw)
		json_decref(c->raw);
	*c = (struct reg_config){0};
}

int
reg_config_parse(const void *data, size_t len, const struct reg_limits *lim, struct reg_config *out,
                 struct kiln_err *err)
{
	const struct reg_limits def = REG_LIMITS_INIT;
	lim = lim ? lim : &def;
	json_t *j = NULL;
	int r = load_json(data, len, lim, "image config", &j, err);
	if (r < 0)
		return r;
	struct reg_config c = {.raw = j};
	const char *os = json_string_value(json_object_get(j, "os"));
	const char *arch = json_string_value(json_object_get(j, "architecture"));
	json_t *rootfs = json_object_get(j, "rootfs");
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!os || !arch) {
		r = kiln_err_invalid(err, "image config lacks os or architecture");
		goto fail;
	}
	if (!json_is_array(ids) ||
	    !kiln_str_eq(json_string_value(json_object_get(rootfs, "type")) ?: "", "layers")) {
		r = kiln_err_invalid(err,
		                     "image config has no rootfs of type layers with diff_ids");
		goto fail;
	}
	if (json_array_size(ids) > lim->max_layers) {
		r = kiln_err_invalid(err, "image config has %zu layers, more than the limit of %zu",
		                     json_array_size(ids), lim->max_layers);
		goto fail;
	}
	c.os = kiln_xstrdup(os);
	c.architecture = kiln_xstrdup(arch);
	c.variant = xstrdup_or_null(json_string_value(json_object_get(j, "variant")));
	c.created = xstrdup_or_null(json_string_value(json_object_get(j, "created")));
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		const char *d = json_string_value(v);
		if (!d || !kiln_digest_valid(d)) {
			r = kiln_err_invalid(err, "image config diff_id %zu is not a sha256 digest",
			                     i);
			goto fail;
		}
		kiln_strv_push(&c.diff_ids, d);
	}
	json_t *cc = json_object_get(j, "config");
	if (json_is_object(cc))
		c.config = json_incref(cc);
	json_t *h = json_object_get(j, "history");
	if (json_is_array(h))
		c.history = json_incref(h);
	*out = c;
	return 0;
fail:
	reg_config_release(&c);
	return r;
}

int
reg_config_write(const struct reg_config *c, struct kiln_buf *out, struct kiln_err *err)
{
	if (!c->os || !c->architecture)
		return kiln_err_invalid(err, "image config needs os and architecture");
	/* Start from the parsed document so fields kiln does not model survive. */
	_cleanup_json_ json_t *j = c->raw ? json_deep_copy(c->raw) : json_object();
	json_object_del(j, "created");
	json_object_del(j, "variant");
	if (c->created)
		json_object_set_new(j, "created", json_string(c->created));
	json_object_set_new(j, "architecture", json_string(c->architecture));
	json_object_set_new(j, "os", json_string(c->os));
	if (c->variant)
		json_object_set_new(j, "variant", json_string(c->variant));
	if (c->config)
		json_object_set(j, "config", c->config);
	else
		json_object_del(j, "config");
	json_t *ids = json_array();
	for (size_t i = 0; i < c->diff_ids.n; i++)
		json_array_append_new(ids, json_string(c->diff_ids.v[i]));
	json_object_set_new(j, "rootfs", json_pack("{s:s,s:o}", "type", "layers", "diff_ids", ids));
	if (c->history)
		json_object_set(j, "history", c->history);
	else
		json_object_del(j, "history");
	return dump(j, out, err);
}
