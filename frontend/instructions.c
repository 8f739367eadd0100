/*
 * Typed instructions: parse-tree nodes -> struct fe_cmd, as BuildKit's
 * frontend/dockerfile/instructions does it (parse.go, bflag.go, commands_runmount.go).
 *
 * Each instruction declares the flags it accepts; the flag words from the parser are then
 * checked against that table (unknown, repeated, missing or bad values are errors). Values
 * stay raw: the converter expands them once the variables in scope are known. --mount
 * specs are parsed here only to report mistakes with the line; the converter parses them
 * again, after expansion, with fe_mount_parse.
 */
#include "instructions.h"

#include <ctype.h>
#include <math.h>

/* ---- flags (bflag.go) ---- */

enum flag_type { FLAG_BOOL, FLAG_STRING, FLAG_STRINGS };

struct flag {
	const char *name;
	enum flag_type type;
	bool used;
	const char *value;   /* string: the value; bool: "true"/"false" */
	const char **values; /* strings: every value, in order */
	size_t nvalues;
};

struct req {
	struct kiln_arena *arena;
	const char *file;
	const struct fe_node *node;
	const char *name; /* "RUN", "COPY", ... */
};

static int req_fail(const struct req *r, struct kiln_err *err, const char *fmt, ...)
        KILN_PRINTF(3, 4);

static int
req_fail(const struct req *r, struct kiln_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	int ret = kiln_err_at(err, r->file, r->node->start_line, r->node->end_line, "%s",
	                      msg ? msg : "error");
	free(msg);
	return ret;
}

static struct flag *
flag_find(struct flag *flags, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

/* Check the node's flag words against `flags` (n entries) and fill in their values. */
static int
flags_parse(const struct req *r, struct flag *flags, size_t n, struct kiln_err *err)
{
	const struct fe_node *node = r->node;
	for (size_t i = 0; i < node->nflags; i++) {
		const char *arg = node->flags[i];
		if (!kiln_str_has_prefix(arg, "--"))
			return req_fail(r, err, "arg should start with -- : %s", arg);
		if (kiln_str_eq(arg, "--"))
			break;
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const char *value = eq ? eq + 1 : "";
		struct flag *f = flag_find(flags, n, name, nlen);
		if (!f)
			return req_fail(r, err, "unknown flag: --%.*s", (int)nlen, name);
		if (f->used && f->type != FLAG_STRINGS)
			return req_fail(r, err, "duplicate flag specified: --%s", f->name);
		f->used = true;
		switch (f->type) {
		case FLAG_BOOL:
			if (eq && !*value)
				return req_fail(r, err, "missing a value on flag: --%s", f->name);
			if (!eq || !strcasecmp(value, "true"))
				f->value = "true";
			else if (!strcasecmp(value, "false"))
				f->value = "false";
			else
				return req_fail(r, err,
				                "expecting boolean value for flag --%s, not: %s",
				                f->name, value);
			break;
		case FLAG_STRING:
			if (!eq)
				return req_fail(r, err, "missing a value on flag: --%s", f->name);
			f->value = value;
			break;
		case FLAG_STRINGS:
			if (!eq)
				return req_fail(r, err, "missing a value on flag: --%s", f->name);
			f->values =
			        kiln_xreallocarray(f->values, f->nvalues + 1, sizeof(*f->values));
			f->values[f->nvalues++] = value;
			break;
		}
	}
	return 0;
}

/* Copy a STRINGS flag's values into the arena and free the temporary array. */
static const char **
flag_take_values(struct kiln_arena *arena, struct flag *f, size_t *ret_n)
{
	const char **out = NULL;
	if (f->nvalues) {
		out = kiln_arena_array(arena, f->nvalues, sizeof(*out));
		memcpy(out, f->values, f->nvalues * sizeof(*out));
	}
	*ret_n = f->nvalues;
	free(f->values);
	f->values = NULL;
	f->nvalues = 0;
	return out;
}

static void
flags_release(struct flag *flags, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(flags[i].values);
		flags[i].values = NULL;
	}
}

static bool
flag_true(const struct flag *f)
{
	return f->value && kiln_str_eq(f->value, "true");
}

#define FLAG(n, t)                                                                                 \
	{                                                                                          \
		.name = (n), .type = (t)                                                           \
	}

/* ---- Go durations (time.ParseDuration) ---- */

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
        {"ms", 1000000},
        {"s", 1000000000ull},
        {"m", 60ull * 1000000000ull},
        {"h", 3600ull * 1000000000ull},
};

int
fe_duration_parse(const char *s, int64_t *ret_ns)
{
	const char *p = s;
	bool neg = false;
	uint64_t total = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (kiln_str_eq(p, "0")) {
		*ret_ns = 0;
		return 0;
	}
	if (!*p)
		return -EINVAL;
	while (*p) {
		uint64_t v = 0, f = 0;
		double scale = 1;
		bool pre = false, post = false, frac_overflow = false;

		if (!(*p == '.' || (*p >= '0' && *p <= '9')))
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			pre = true;
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v) || v > (1ull << 63))
				return -ERANGE;
		}
		if (*p == '.') {
			p++;
			for (; *p >= '0' && *p <= '9'; p++) {
				post = true;
				/* Like Go, digits past what fits are dropped: they cannot matter.
				 */
				if (frac_overflow)
					continue;
				uint64_t nf;
				if (__builtin_mul_overflow(f, 10, &nf) ||
				    __builtin_add_overflow(nf, (uint64_t)(*p - '0'), &nf) ||
				    nf > (1ull << 63)) {
					frac_overflow = true;
					continue;
				}
				f = nf;
				scale *= 10;
			}
		}
		if (!pre && !post)
			return -EINVAL;
		const char *u = p;
		while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
			p++;
		size_t ulen = (size_t)(p - u);
		if (ulen == 0)
			return -EINVAL; /* missing unit */
		uint64_t unit = 0;
		for (size_t i = 0; i < KILN_ARRAY_SIZE(duration_units); i++)
			if (strlen(duration_units[i].name) == ulen &&
			    memcmp(duration_units[i].name, u, ulen) == 0)
				unit = duration_units[i].ns;
		if (!unit)
			return -EINVAL; /* unknown unit */
		if (__builtin_mul_overflow(v, unit, &v) || v > (1ull << 63))
			return -ERANGE;
		if (f > 0) {
			uint64_t add = (uint64_t)((double)f * ((double)unit / scale));
			if (__builtin_add_overflow(v, add, &v) || v > (1ull << 63))
				return -ERANGE;
		}
		if (__builtin_add_overflow(total, v, &total) || total > (1ull << 63))
			return -ERANGE;
	}
	if (total == (1ull << 63)) {
		if (!neg)
			return -ERANGE;
		*ret_ns = INT64_MIN;
		return 0;
	}
	*ret_ns = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

/* ---- --mount (commands_runmount.go) ---- */

/* One record of Go's encoding/csv: fields split at commas, a field that starts with `"`
 * is quoted ("" inside is a quote). Fields are allocated in the arena. */
static int
csv_split(struct kiln_arena *arena, const char *s, const char ***ret, size_t *ret_n,
          struct kiln_err *err)
{
	const char **fields = NULL;
	size_t n = 0, alloc = 0;
	_cleanup_buf_ struct kiln_buf field = KILN_BUF_INIT;
	const char *p = s;

	if (!*s)
		return kiln_err_invalid(err, "failed to parse csv mounts: EOF");
	for (;;) {
		kiln_buf_reset(&field);
		if (*p == '"') {
			p++;
			for (;;) {
				if (!*p) {
					free(fields);
					return kiln_err_invalid(
					        err, "failed to parse csv mounts: extraneous or "
					             "missing \" in quoted-field");
				}
				if (*p == '"') {
					if (p[1] == '"') {
						kiln_buf_addch(&field, '"');
						p += 2;
						continue;
					}
					p++;
					break;
				}
				kiln_buf_addch(&field, *p++);
			}
			if (*p && *p != ',') {
				free(fields);
				return kiln_err_invalid(err,
				                        "failed to parse csv mounts: extraneous or "
				                        "missing \" in quoted-field");
			}
		} else {
			while (*p && *p != ',') {
				if (*p == '"') {
					free(fields);
					return kiln_err_invalid(err, "failed to parse csv mounts: "
					                             "bare \" in non-quoted-field");
				}
				kiln_buf_addch(&field, *p++);
			}
		}
		KILN_GROW(fields, alloc, n + 1);
		fields[n++] = kiln_arena_strndup(arena, field.buf, field.len);
		if (!*p)
			break;
		p++; /* the comma */
	}
	*ret = kiln_arena_array(arena, n, sizeof(**ret));
	memcpy(*ret, fields, n * sizeof(*fields));
	*ret_n = n;
	free(fields);
	return 0;
}

/* Go strconv.ParseBool. */
static int
parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(yes); i++)
		if (kiln_str_eq(s, yes[i])) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(no); i++)
		if (kiln_str_eq(s, no[i])) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}

/* Go strconv.ParseUint(s, base, 32). */
static int
parse_u32(const char *s, int base, uint32_t *ret)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : 99;
		if (d >= base)
			return -EINVAL;
		v = v * (uint64_t)base + (uint64_t)d;
		if (v > UINT32_MAX)
			return -ERANGE;
	}
	*ret = (uint32_t)v;
	return 0;
}

/* docker's units.RAMInBytes: "64m", "1.5g", "100", "2 GiB"; binary multiples. */
static int
parse_ram_size(const char *s, uint64_t *ret)
{
	const char *p = s;
	const char *num = p;
	while (isdigit((unsigned char)*p))
		p++;
	if (p == num)
		return -EINVAL;
	if (*p == '.') {
		p++;
		const char *frac = p;
		while (isdigit((unsigned char)*p))
			p++;
		if (p == frac)
			return -EINVAL;
	}
	size_t numlen = (size_t)(p - num);
	if (*p == ' ')
		p++;
	double mult = 1;
	static const char units[] = "kmgtp";
	if (*p && strchr(units, tolower((unsigned char)*p))) {
		for (const char *u = units; *u; u++) {
			mult *= 1024;
			if (*u == tolower((unsigned char)*p))
				break;
		}
		p++;
	}
	if (*p == 'i' || *p == 'I')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	char buf[64];
	if (numlen >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, num, numlen);
	buf[numlen] = '\0';
	double v = strtod(buf, NULL) * mult;
	if (!isfinite(v) || v >= 9223372036854775807.0)
		return -ERANGE;
	*ret = (uint64_t)v;
	return 0;
}

static const char *const mount_type_names[] = {
        [FE_MOUNT_BIND] = "bind",     [FE_MOUNT_CACHE] = "cache", [FE_MOUNT_TMPFS] = "tmpfs",
        [FE_MOUNT_SECRET] = "secret", [FE_MOUNT_SSH] = "ssh",
};

/* Does the raw value hold something the converter will expand? Such values are checked
 * after expansion, not now (BuildKit defers them the same way). */
static bool
has_var(const char *v, bool raw)
{
	return raw && strchr(v, '$');
}

/*
 * `raw`: the spec is unexpanded (the instructions step). Values with `$` are then kept as
 * written and not checked; a type given by a variable turns off the checks that depend on
 * the type. Unlike BuildKit, the type-dependent checks (required, size, env, sharing, ...)
 * run after all fields are read, so `required,type=secret` works in either order.
 */
static int
mount_parse(struct kiln_arena *arena, const char *spec, bool raw, struct fe_mount *ret,
            struct kiln_err *err)
{
	const char **fields = NULL;
	size_t nfields = 0;
	int r = csv_split(arena, spec, &fields, &nfields, err);
	if (r < 0)
		return r;

	struct fe_mount m = {.type = FE_MOUNT_BIND};
	bool ro_auto = true, type_known = true, has_sharing = false;
	bool has_required = false, has_size = false;

	for (size_t i = 0; i < nfields; i++) {
		const char *field = fields[i];
		const char *eq = strchr(field, '=');
		size_t klen = eq ? (size_t)(eq - field) : strlen(field);
		char *key = kiln_arena_strndup(arena, field, klen);
		for (char *k = key; *k; k++)
			*k = (char)tolower((unsigned char)*k);
		const char *value = eq ? eq + 1 : NULL;

		if (!value) {
			if (kiln_str_eq(key, "readonly") || kiln_str_eq(key, "ro")) {
				m.readonly = true;
				ro_auto = false;
				continue;
			}
			if (kiln_str_eq(key, "readwrite") || kiln_str_eq(key, "rw")) {
				m.readonly = false;
				ro_auto = false;
				continue;
			}
			if (kiln_str_eq(key, "required")) {
				m.required = true;
				has_required = true;
				continue;
			}
			return kiln_err_invalid(err, "invalid field '%s' must be a key=value pair",
			                        field);
		}

		if (kiln_str_eq(key, "from")) {
			/* A stage chosen by a variable would make the stage graph depend on
			 * values; BuildKit refuses it before expansion. */
			const char *d = strchr(value, '$');
			if (raw && d && d[1])
				return kiln_err_invalid(err,
				                        "'from' doesn't support variable "
				                        "expansion, define alias stage instead");
			m.from = value;
		} else if (kiln_str_eq(key, "type")) {
			if (has_var(value, raw)) {
				type_known = false;
				continue;
			}
			size_t t;
			for (t = 0; t < KILN_ARRAY_SIZE(mount_type_names); t++)
				if (!strcasecmp(value, mount_type_names[t]))
					break;
			if (t == KILN_ARRAY_SIZE(mount_type_names))
				return kiln_err_invalid(err, "unsupported mount type \"%s\"",
				                        value);
			m.type = (enum fe_mount_type)t;
			type_known = true;
		} else if (kiln_str_eq(key, "source") || kiln_str_eq(key, "src")) {
			m.source = value;
		} else if (kiln_str_eq(key, "target") || kiln_str_eq(key, "dst") ||
		           kiln_str_eq(key, "destination")) {
			m.target = value;
		} else if (kiln_str_eq(key, "readonly") || kiln_str_eq(key, "ro") ||
		           kiln_str_eq(key, "readwrite") || kiln_str_eq(key, "rw")) {
			bool b = false;
			ro_auto = false;
			if (has_var(value, raw))
				continue;
			if (parse_bool(value, &b) < 0)
				return kiln_err_invalid(err, "invalid value for %s: %s", key,
				                        value);
			bool is_ro = kiln_str_eq(key, "readonly") || kiln_str_eq(key, "ro");
			m.readonly = is_ro ? b : !b;
		} else if (kiln_str_eq(key, "required")) {
			has_required = true;
			if (has_var(value, raw))
				continue;
			if (parse_bool(value, &m.required) < 0)
				return kiln_err_invalid(err, "invalid value for %s: %s", key,
				                        value);
		} else if (kiln_str_eq(key, "id")) {
			m.id = value;
		} else if (kiln_str_eq(key, "env")) {
			m.env = value;
		} else if (kiln_str_eq(key, "sharing")) {
			has_sharing = true;
			if (has_var(value, raw))
				continue;
			if (!strcasecmp(value, "shared"))
				m.sharing = FE_SHARING_SHARED;
			else if (!strcasecmp(value, "private"))
				m.sharing = FE_SHARING_PRIVATE;
			else if (!strcasecmp(value, "locked"))
				m.sharing = FE_SHARING_LOCKED;
			else
				return kiln_err_invalid(err, "unsupported sharing value \"%s\"",
				                        value);
		} else if (kiln_str_eq(key, "mode") || kiln_str_eq(key, "uid") ||
		           kiln_str_eq(key, "gid")) {
			bool is_mode = key[0] == 'm';
			bool *has = is_mode ? &m.has_mode : key[0] == 'u' ? &m.has_uid : &m.has_gid;
			uint32_t *dst = is_mode ? &m.mode : key[0] == 'u' ? &m.uid : &m.gid;
			*has = true;
			if (has_var(value, raw)) {
				*dst = 0;
				continue;
			}
			if (parse_u32(value, is_mode ? 8 : 10, dst) < 0)
				return kiln_err_invalid(err, "invalid value %s for %s", value, key);
		} else if (kiln_str_eq(key, "size")) {
			has_size = true;
			if (has_var(value, raw))
				continue;
			if (parse_ram_size(value, &m.size) < 0)
				return kiln_err_invalid(err, "invalid value for %s: %s", key,
				                        value);
		} else {
			return kiln_err_invalid(err, "unexpected key '%s' in '%s'", key, field);
		}
	}

	if (type_known) {
		const char *tn = mount_type_names[m.type];
		bool file_info = m.type == FE_MOUNT_SECRET || m.type == FE_MOUNT_SSH ||
		                 m.type == FE_MOUNT_CACHE;
		if (m.has_mode && !file_info)
			return kiln_err_invalid(err, "mode not allowed for \"%s\" type mounts", tn);
		if (m.has_uid && !file_info)
			return kiln_err_invalid(err, "uid not allowed for \"%s\" type mounts", tn);
		if (m.has_gid && !file_info)
			return kiln_err_invalid(err, "gid not allowed for \"%s\" type mounts", tn);
		if (has_required && m.type != FE_MOUNT_SECRET && m.type != FE_MOUNT_SSH)
			return kiln_err_invalid(
			        err, "unexpected key 'required' for mount type '%s'", tn);
		if (has_size && m.type != FE_MOUNT_TMPFS)
			return kiln_err_invalid(err, "unexpected key 'size' for mount type '%s'",
			                        tn);
		if (m.env && m.type != FE_MOUNT_SECRET)
			return kiln_err_invalid(err, "unexpected key 'env' for mount type '%s'",
			                        tn);
		if (has_sharing && m.type != FE_MOUNT_CACHE)
			return kiln_err_invalid(err, "invalid cache sharing set for %s mount", tn);
		if (m.type == FE_MOUNT_SECRET) {
			if (m.from)
				return kiln_err_invalid(err, "secret mount should not have a from");
			if (!m.source && !m.target && !m.id && !m.env)
				return kiln_err_invalid(
				        err,
				        "invalid secret mount. one of source, target required");
			if (m.source && m.id)
				return kiln_err_invalid(err, "both source and id can't be set");
		}
		if ((m.type == FE_MOUNT_BIND || m.type == FE_MOUNT_CACHE ||
		     m.type == FE_MOUNT_TMPFS) &&
		    (!m.target || !*m.target))
			return kiln_err_invalid(err, "mount type %s requires a target", tn);
		if (ro_auto)
			m.readonly = !(m.type == FE_MOUNT_CACHE || m.type == FE_MOUNT_TMPFS);
	} else if (ro_auto) {
		m.readonly = false;
	}
	*ret = m;
	return 0;
}

int
fe_mount_parse(struct kiln_arena *arena, const char *spec, struct fe_mount *ret,
               struct kiln_err *err)
{
	return mount_parse(arena, spec, false, ret, err);
}

/* ---- instructions ---- */

static const struct {
	const char *name;
	enum fe_cmd_kind kind;
} cmd_names[] = {
        {"from", FE_CMD_FROM},
        {"run", FE_CMD_RUN},
        {"cmd", FE_CMD_CMD},
        {"entrypoint", FE_CMD_ENTRYPOINT},
        {"shell", FE_CMD_SHELL},
        {"label", FE_CMD_LABEL},
        {"maintainer", FE_CMD_MAINTAINER},
        {"expose", FE_CMD_EXPOSE},
        {"env", FE_CMD_ENV},
        {"add", FE_CMD_ADD},
        {"copy", FE_CMD_COPY},
        {"arg", FE_CMD_ARG},
        {"onbuild", FE_CMD_ONBUILD},
        {"stopsignal", FE_CMD_STOPSIGNAL},
        {"healthcheck", FE_CMD_HEALTHCHECK},
        {"user", FE_CMD_USER},
        {"volume", FE_CMD_VOLUME},
        {"workdir", FE_CMD_WORKDIR},
};

const char *
fe_cmd_kind_name(enum fe_cmd_kind kind)
{
	static const char *const upper[] = {
	        [FE_CMD_FROM] = "FROM",
	        [FE_CMD_RUN] = "RUN",
	        [FE_CMD_CMD] = "CMD",
	        [FE_CMD_ENTRYPOINT] = "ENTRYPOINT",
	        [FE_CMD_SHELL] = "SHELL",
	        [FE_CMD_LABEL] = "LABEL",
	        [FE_CMD_MAINTAINER] = "MAINTAINER",
	        [FE_CMD_EXPOSE] = "EXPOSE",
	        [FE_CMD_ENV] = "ENV",
	        [FE_CMD_ADD] = "ADD",
	        [FE_CMD_COPY] = "COPY",
	        [FE_CMD_ARG] = "ARG",
	        [FE_CMD_ONBUILD] = "ONBUILD",
	        [FE_CMD_STOPSIGNAL] = "STOPSIGNAL",
	        [FE_CMD_HEALTHCHECK] = "HEALTHCHECK",
	        [FE_CMD_USER] = "USER",
	        [FE_CMD_VOLUME] = "VOLUME",
	        [FE_CMD_WORKDIR] = "WORKDIR",
	};
	if ((size_t)kind < KILN_ARRAY_SIZE(upper) && upper[kind])
		return upper[kind];
	return "UNKNOWN";
}

/* An instruction that takes no flags still rejects any it is given. */
static int
no_flags(const struct req *r, struct kiln_err *err)
{
	return flags_parse(r, NULL, 0, err);
}

static int
exactly_one(const struct req *r, struct kiln_err *err)
{
	if (r->node->nargs != 1)
		return req_fail(r, err, "%s requires exactly one argument", r->name);
	return 0;
}

static void
cmdline_from_node(const struct fe_node *node, struct fe_cmdline *cl)
{
	cl->argv = node->args;
	cl->argc = node->nargs;
	cl->shell_form = !node->json;
}

static int
parse_from(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	if (n->nargs == 3 && !strcasecmp(n->args[1], "as")) {
		char *name = kiln_arena_strdup(r->arena, n->args[2]);
		for (char *p = name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		bool ok = name[0] >= 'a' && name[0] <= 'z';
		for (const char *p = name + 1; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			     *p == '_' || *p == '.';
		if (!ok)
			return req_fail(
			        r, err,
			        "invalid name for build stage: \"%s\", name can't start with a "
			        "number or contain symbols",
			        n->args[2]);
		c->from.stage_name = name;
	} else if (n->nargs != 1) {
		return req_fail(r, err, "FROM requires either one or three arguments");
	}
	struct flag fl[] = {FLAG("platform", FLAG_STRING)};
	int ret = flags_parse(r, fl, KILN_ARRAY_SIZE(fl), err);
	if (ret < 0)
		return ret;
	c->from.image = n->args[0];
	c->from.platform = fl[0].value;
	return 0;
}

static int
parse_run(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	struct flag fl[] = {
	        FLAG("mount", FLAG_STRINGS),
	        FLAG("network", FLAG_STRING),
	        FLAG("security", FLAG_STRING),
	};
	int ret = flags_parse(r, fl, KILN_ARRAY_SIZE(fl), err);
	if (ret < 0)
		goto out;
	const char *net = fl[1].value, *sec = fl[2].value;
	if (net && !has_var(net, true) && !kiln_str_eq(net, "default") &&
	    !kiln_str_eq(net, "none") && !kiln_str_eq(net, "host")) {
		ret = req_fail(r, err, "unsupported network mode \"%s\"", net);
		goto out;
	}
	if (sec && !has_var(sec, true) && !kiln_str_eq(sec, "sandbox") &&
	    !kiln_str_eq(sec, "insecure")) {
		ret = req_fail(r, err, "unsupported security mode \"%s\"", sec);
		goto out;
	}
	if (r->node->nargs == 0 && r->node->nheredocs == 0) {
		ret = req_fail(r, err, "RUN requires at least one argument");
		goto out;
	}
	c->run.nmounts = fl[0].nvalues;
	if (c->run.nmounts)
		c->run.mounts = kiln_arena_array(r->arena, c->run.nmounts, sizeof(*c->run.mounts));
	for (size_t i = 0; i < fl[0].nvalues; i++) {
		ret = mount_parse(r->arena, fl[0].values[i], true, &c->run.mounts[i], err);
		if (ret < 0) {
			kiln_err_wrap(err, "--mount=%s", fl[0].values[i]);
			kiln_err_locate(err, r->file, r->node->start_line, r->node->end_line);
			goto out;
		}
	}
	c->run.network = net;
	c->run.security = sec;
	cmdline_from_node(r->node, &c->run.cmd);
	c->run.heredocs = r->node->heredocs;
	c->run.nheredocs = r->node->nheredocs;
	ret = 0;
out:
	flags_release(fl, KILN_ARRAY_SIZE(fl));
	return ret;
}

static int
parse_cmdline(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	int ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	cmdline_from_node(r->node, &c->cmdline);
	if (c->kind == FE_CMD_SHELL) {
		if (r->node->nargs == 0)
			return req_fail(r, err, "SHELL requires at least one argument");
		if (!r->node->json)
			return req_fail(r, err, "SHELL requires the arguments to be in JSON form");
	}
	return 0;
}

static int
parse_kv(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	int ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	if (n->nargs == 0)
		return req_fail(r, err, "%s requires at least one argument", r->name);
	if (n->nargs % 3 != 0)
		return req_fail(r, err, "Bad input to %s, too many arguments", r->name);
	c->kv.nkvs = n->nargs / 3;
	c->kv.kvs = kiln_arena_array(r->arena, c->kv.nkvs, sizeof(*c->kv.kvs));
	for (size_t i = 0; i < c->kv.nkvs; i++) {
		if (!n->args[3 * i][0])
			return req_fail(r, err, "%s names can not be blank", r->name);
		c->kv.kvs[i].key = n->args[3 * i];
		c->kv.kvs[i].value = n->args[3 * i + 1];
	}
	return 0;
}

static int
parse_arg(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	int ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	if (n->nargs == 0)
		return req_fail(r, err, "ARG requires at least one argument");
	c->kv.nkvs = n->nargs;
	c->kv.kvs = kiln_arena_array(r->arena, n->nargs, sizeof(*c->kv.kvs));
	for (size_t i = 0; i < n->nargs; i++) {
		const char *eq = strchr(n->args[i], '=');
		if (eq == n->args[i])
			return req_fail(r, err, "ARG names can not be blank");
		if (eq) {
			c->kv.kvs[i].key =
			        kiln_arena_strndup(r->arena, n->args[i], (size_t)(eq - n->args[i]));
			c->kv.kvs[i].value = eq + 1;
		} else {
			c->kv.kvs[i].key = n->args[i];
		}
	}
	return 0;
}

static int
parse_list(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	if (n->nargs == 0)
		return req_fail(r, err, "%s requires at least one argument", r->name);
	int ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	c->list.words = kiln_arena_array(r->arena, n->nargs, sizeof(*c->list.words));
	c->list.nwords = n->nargs;
	for (size_t i = 0; i < n->nargs; i++) {
		const char *w = n->args[i];
		if (c->kind == FE_CMD_VOLUME) {
			/* VOLUME ["  /a "] names /a: BuildKit trims each entry. */
			const char *b = w, *e = w + strlen(w);
			while (b < e && isspace((unsigned char)*b))
				b++;
			while (e > b && isspace((unsigned char)e[-1]))
				e--;
			if (b == e)
				return req_fail(r, err,
				                "VOLUME specified can not be an empty string");
			w = kiln_arena_strndup(r->arena, b, (size_t)(e - b));
		}
		c->list.words[i] = w;
	}
	return 0;
}

static int
parse_value(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	int ret = exactly_one(r, err);
	if (ret < 0)
		return ret;
	ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	c->value = r->node->args[0];
	return 0;
}

/* BuildKit's parser.ParseHeredoc on one argument: `<<[-]WORD` (with an optional fd
 * before) whose WORD unquotes to exactly one word. Returns the unquoted name or NULL. */
static char *
heredoc_name(struct kiln_arena *arena, const char *arg)
{
	const char *p = arg;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p[0] != '<' || p[1] != '<')
		return NULL;
	p += 2;
	if (*p == '-')
		p++;
	while (isspace((unsigned char)*p))
		p++;
	if (strchr(p, '<'))
		return NULL;
	_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
	char q = 0;
	for (; *p; p++) {
		if (q) {
			if (*p == q)
				q = 0;
			else if (q == '"' && *p == '\\' && p[1] && strchr("\"\\$`", p[1]))
				kiln_buf_addch(&out, *++p);
			else
				kiln_buf_addch(&out, *p);
		} else if (*p == '\'' || *p == '"') {
			q = *p;
		} else if (*p == '\\' && p[1]) {
			kiln_buf_addch(&out, *++p);
		} else if (isspace((unsigned char)*p)) {
			return NULL; /* more than one word */
		} else {
			kiln_buf_addch(&out, *p);
		}
	}
	if (q || out.len == 0)
		return NULL;
	return kiln_arena_strndup(arena, out.buf, out.len);
}

static int
parse_copy(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	bool add = c->kind == FE_CMD_ADD;
	if (n->nargs < 2)
		return req_fail(r, err,
		                "%s requires at least two arguments, but only one was provided. "
		                "Destination could not be determined",
		                r->name);
	/* ADD has no --from or --parents, COPY no --checksum, --keep-git-dir or --unpack. */
	struct flag fl[] = {
	        FLAG("chown", FLAG_STRING),
	        FLAG("chmod", FLAG_STRING),
	        FLAG("link", FLAG_BOOL),
	        FLAG("exclude", FLAG_STRINGS),
	        FLAG(add ? "checksum" : "from", FLAG_STRING),
	        FLAG(add ? "keep-git-dir" : "parents", FLAG_BOOL),
	        FLAG(add ? "unpack" : "", FLAG_BOOL),
	};
	size_t nfl = add ? KILN_ARRAY_SIZE(fl) : KILN_ARRAY_SIZE(fl) - 1;
	int ret = flags_parse(r, fl, nfl, err);
	if (ret < 0)
		goto out;
	c->copy.chown = fl[0].value;
	c->copy.chmod = fl[1].value;
	c->copy.link = flag_true(&fl[2]);
	if (add) {
		c->copy.checksum = fl[4].value;
		c->copy.keep_git_dir = flag_true(&fl[5]);
		c->copy.unpack = fl[6].used ? flag_true(&fl[6]) : -1;
	} else {
		c->copy.from = fl[4].value;
		c->copy.parents = flag_true(&fl[5]);
		c->copy.unpack = -1;
	}
	c->copy.excludes = flag_take_values(r->arena, &fl[3], &c->copy.nexcludes);

	c->copy.dest = n->args[n->nargs - 1];
	if (!n->json && heredoc_name(r->arena, c->copy.dest)) {
		ret = req_fail(r, err, "%s cannot accept a heredoc as a destination", r->name);
		goto out;
	}
	c->copy.sources = kiln_arena_array(r->arena, n->nargs - 1, sizeof(*c->copy.sources));
	if (n->nheredocs)
		c->copy.heredocs =
		        kiln_arena_array(r->arena, n->nheredocs, sizeof(*c->copy.heredocs));
	for (size_t i = 0; i + 1 < n->nargs; i++) {
		char *name = n->json ? NULL : heredoc_name(r->arena, n->args[i]);
		const struct fe_heredoc *h = NULL;
		for (size_t j = 0; name && j < n->nheredocs; j++)
			if (kiln_str_eq(n->heredocs[j].name, name))
				h = &n->heredocs[j];
		if (h && c->copy.nheredocs < n->nheredocs)
			c->copy.heredocs[c->copy.nheredocs++] = *h;
		else
			c->copy.sources[c->copy.nsources++] = n->args[i];
	}
	ret = 0;
out:
	flags_release(fl, nfl);
	return ret;
}

/* time.Duration flag: 0 or unset is "unset"; anything else must be >= 1ms (BuildKit). */
static int
parse_interval(const struct req *r, const struct flag *f, int64_t *ret, struct kiln_err *err)
{
	*ret = 0;
	if (!f->value || !*f->value)
		return 0;
	int64_t d;
	if (fe_duration_parse(f->value, &d) < 0)
		return req_fail(r, err, "invalid duration \"%s\" for --%s", f->value, f->name);
	if (d != 0 && d < 1000000)
		return req_fail(r, err, "Interval \"%s\" cannot be less than 1ms", f->name);
	*ret = d;
	return 0;
}

static int
parse_healthcheck(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	if (n->nargs == 0)
		return req_fail(r, err, "HEALTHCHECK requires at least one argument");
	c->healthcheck.retries = -1;
	if (!strcasecmp(n->args[0], "NONE")) {
		/* BuildKit ignores flags here; kiln refuses them, since they cannot apply. */
		if (n->nargs != 1 || n->nflags)
			return req_fail(r, err, "HEALTHCHECK NONE takes no arguments");
		c->healthcheck.none = true;
		return 0;
	}
	struct flag fl[] = {
	        FLAG("interval", FLAG_STRING),     FLAG("timeout", FLAG_STRING),
	        FLAG("start-period", FLAG_STRING), FLAG("start-interval", FLAG_STRING),
	        FLAG("retries", FLAG_STRING),
	};
	int ret = flags_parse(r, fl, KILN_ARRAY_SIZE(fl), err);
	if (ret < 0)
		return ret;
	if (strcasecmp(n->args[0], "CMD") != 0) {
		char *up = kiln_arena_strdup(r->arena, n->args[0]);
		for (char *p = up; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		return req_fail(r, err, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", up);
	}
	if (n->nargs < 2)
		return req_fail(r, err, "Missing command after HEALTHCHECK CMD");
	c->healthcheck.test.argv = n->args + 1;
	c->healthcheck.test.argc = n->nargs - 1;
	c->healthcheck.test.shell_form = !n->json;
	if ((ret = parse_interval(r, &fl[0], &c->healthcheck.interval, err)) < 0 ||
	    (ret = parse_interval(r, &fl[1], &c->healthcheck.timeout, err)) < 0 ||
	    (ret = parse_interval(r, &fl[2], &c->healthcheck.start_period, err)) < 0 ||
	    (ret = parse_interval(r, &fl[3], &c->healthcheck.start_interval, err)) < 0)
		return ret;
	if (fl[4].value && *fl[4].value) {
		const char *s = fl[4].value;
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (!isdigit((unsigned char)s[s[0] == '-' || s[0] == '+']) || *end ||
		    errno == ERANGE || v > INT32_MAX || v < INT32_MIN)
			return req_fail(r, err, "invalid value \"%s\" for --retries", s);
		if (v < 0)
			return req_fail(r, err, "--retries cannot be negative (%lld)", v);
		c->healthcheck.retries = (int)v;
	}
	return 0;
}

static int cmd_parse(struct kiln_arena *arena, const char *file, const struct fe_node *node,
                     int start_line, int end_line, struct fe_cmd **ret, struct kiln_err *err);

static int
parse_onbuild(const struct req *r, struct fe_cmd *c, struct kiln_err *err)
{
	const struct fe_node *n = r->node;
	const struct fe_node *sub = n->sub;
	if (!sub || !sub->name || !*sub->name)
		return req_fail(r, err, "ONBUILD requires at least one argument");
	int ret = no_flags(r, err);
	if (ret < 0)
		return ret;
	if (kiln_str_eq(sub->name, "onbuild"))
		return req_fail(r, err, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	if (kiln_str_eq(sub->name, "from") || kiln_str_eq(sub->name, "maintainer"))
		return req_fail(r, err, "%s isn't allowed as an ONBUILD trigger",
		                kiln_str_eq(sub->name, "from") ? "FROM" : "MAINTAINER");
	ret = cmd_parse(r->arena, r->file, sub, n->start_line, n->end_line, &c->onbuild.cmd, err);
	if (ret < 0)
		return ret;

	/* The trigger as written: the original line without its ONBUILD word, then the
	 * heredoc bodies and terminators, as BuildKit stores it in the image config. */
	_cleanup_buf_ struct kiln_buf expr = KILN_BUF_INIT;
	const char *o = sub->original;
	if (!o) {
		o = n->original ? n->original : "";
		while (isspace((unsigned char)*o))
			o++;
		if (!strncasecmp(o, "onbuild", 7))
			o += 7;
		while (isspace((unsigned char)*o))
			o++;
	}
	kiln_buf_addstr(&expr, o);
	const struct fe_node *hn = sub->nheredocs ? sub : n;
	for (size_t i = 0; i < hn->nheredocs; i++)
		kiln_buf_addf(&expr, "\n%s%s", hn->heredocs[i].content, hn->heredocs[i].name);
	c->onbuild.expression = kiln_arena_strndup(r->arena, expr.buf, expr.len);
	return 0;
}

static int
cmd_parse(struct kiln_arena *arena, const char *file, const struct fe_node *node, int start_line,
          int end_line, struct fe_cmd **ret, struct kiln_err *err)
{
	/* ONBUILD's sub node may carry no lines of its own: it is on its parent's. */
	struct fe_node located = *node;
	if (located.start_line <= 0) {
		located.start_line = start_line;
		located.end_line = end_line;
	}
	struct req r = {.arena = arena, .file = file, .node = &located};
	size_t k;
	/* The first letter, case-folded, before strcasecmp: a long Dockerfile made 60,000
	 * strcasecmp calls here. (c | 0x20 is c's lower case for every ASCII letter.) */
	for (k = 0; k < KILN_ARRAY_SIZE(cmd_names); k++)
		if (node->name && (node->name[0] | 0x20) == cmd_names[k].name[0] &&
		    !strcasecmp(node->name, cmd_names[k].name))
			break;
	if (k == KILN_ARRAY_SIZE(cmd_names)) {
		char *up = kiln_arena_strdup(arena, node->name ? node->name : "");
		for (char *p = up; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		return req_fail(&r, err, "unknown instruction: %s", up);
	}
	struct fe_cmd *c = kiln_arena_alloc(arena, sizeof(*c));
	c->kind = cmd_names[k].kind;
	c->node = node;
	c->start_line = located.start_line;
	c->end_line = located.end_line;
	r.name = fe_cmd_kind_name(c->kind);

	int rc;
	switch (c->kind) {
	case FE_CMD_FROM:
		rc = parse_from(&r, c, err);
		break;
	case FE_CMD_RUN:
		rc = parse_run(&r, c, err);
		break;
	case FE_CMD_CMD:
	case FE_CMD_ENTRYPOINT:
	case FE_CMD_SHELL:
		rc = parse_cmdline(&r, c, err);
		break;
	case FE_CMD_LABEL:
	case FE_CMD_ENV:
		rc = parse_kv(&r, c, err);
		break;
	case FE_CMD_ARG:
		rc = parse_arg(&r, c, err);
		break;
	case FE_CMD_EXPOSE:
	case FE_CMD_VOLUME:
		rc = parse_list(&r, c, err);
		break;
	case FE_CMD_MAINTAINER:
	case FE_CMD_STOPSIGNAL:
	case FE_CMD_USER:
	case FE_CMD_WORKDIR:
		rc = parse_value(&r, c, err);
		break;
	case FE_CMD_ADD:
	case FE_CMD_COPY:
		rc = parse_copy(&r, c, err);
		break;
	case FE_CMD_HEALTHCHECK:
		rc = parse_healthcheck(&r, c, err);
		break;
	case FE_CMD_ONBUILD:
		rc = parse_onbuild(&r, c, err);
		break;
	default:
		rc = req_fail(&r, err, "unknown instruction: %s", r.name);
		break;
	}
	if (rc < 0)
		return rc;
	*ret = c;
	return 0;
}

int
fe_cmd_parse(struct kiln_arena *arena, const char *file, const struct fe_node *node,
             struct fe_cmd **ret, struct kiln_err *err)
{
	return cmd_parse(arena, file, node, node->start_line, node->end_line, ret, err);
}
