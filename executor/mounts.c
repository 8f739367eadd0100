/*
 * The pure parts of RUN --mount handling: which options each type takes, and where a cache
 * id lives in the store. No system calls here, so the rules are unit-testable.
 */
#include "ex.h"

static const char *const type_names[] = {
        [EX_MOUNT_BIND] = "bind",     [EX_MOUNT_CACHE] = "cache", [EX_MOUNT_TMPFS] = "tmpfs",
        [EX_MOUNT_SECRET] = "secret", [EX_MOUNT_SSH] = "ssh",
};

/* An environment variable name as POSIX shells accept it. */
static bool
valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

int
ex_mount_check(const struct ex_mount *m, struct kiln_err *err)
{
	if ((unsigned)m->type >= KILN_ARRAY_SIZE(type_names))
		return kiln_err_invalid(err, "--mount: unknown type %d", (int)m->type);
	const char *t = type_names[m->type];
	bool is_bind = m->type == EX_MOUNT_BIND, is_cache = m->type == EX_MOUNT_CACHE;
	bool is_secret = m->type == EX_MOUNT_SECRET, is_ssh = m->type == EX_MOUNT_SSH;

	if (!m->target && !is_secret && !is_ssh)
		return kiln_err_invalid(err, "--mount type=%s: target is required", t);
	if (is_secret && !m->target && !m->id)
		return kiln_err_invalid(err, "--mount type=secret: id or target is required");
	if (m->target) {
		if (m->target[0] != '/')
			return kiln_err_invalid(err, "--mount type=%s: target %s is not absolute",
			                        t, m->target);
		_cleanup_free_ char *clean = kiln_path_clean(m->target);
		if (kiln_str_eq(clean, "/"))
			return kiln_err_invalid(err, "--mount type=%s: cannot mount over /", t);
	}
	if ((is_bind || is_ssh) && (!m->source || !*m->source))
		return kiln_err_invalid(err, "--mount type=%s: source is required", t);
	if (!is_bind && !is_ssh && m->source)
		return kiln_err_invalid(err, "--mount type=%s: source is not supported", t);
	if (m->rw && !is_bind)
		return kiln_err_invalid(err, "--mount type=%s: rw is only for type=bind", t);
	if (m->readonly && !is_cache)
		return kiln_err_invalid(err, "--mount type=%s: readonly is only for type=cache", t);
	if (m->sharing != EX_SHARING_SHARED && !is_cache)
		return kiln_err_invalid(err, "--mount type=%s: sharing is only for type=cache", t);
	if ((unsigned)m->sharing > EX_SHARING_LOCKED)
		return kiln_err_invalid(err, "--mount type=cache: unknown sharing %d",
		                        (int)m->sharing);
	if (m->size && m->type != EX_MOUNT_TMPFS)
		return kiln_err_invalid(err, "--mount type=%s: size is only for type=tmpfs", t);
	if ((m->has_mode || m->has_uid || m->has_gid) && !is_cache && !is_secret && !is_ssh)
		return kiln_err_invalid(err, "--mount type=%s: mode, uid and gid are not supported",
		                        t);
	if (m->has_mode && m->mode > 07777)
		return kiln_err_invalid(err, "--mount type=%s: mode %o is not a file mode", t,
		                        m->mode);
	if ((m->has_uid && m->uid == UINT32_MAX) || (m->has_gid && m->gid == UINT32_MAX))
		return kiln_err_invalid(err, "--mount type=%s: uid/gid out of range", t);
	if (m->env && !is_secret)
		return kiln_err_invalid(err, "--mount type=%s: env is only for type=secret", t);
	if (m->env && !valid_env_name(m->env))
		return kiln_err_invalid(err, "--mount type=secret: env=%s is not a variable name",
		                        m->env);
	if ((m->data || m->data_len) && !is_secret)
		return kiln_err_invalid(err, "--mount type=%s: only secrets carry content", t);
	if (is_secret && !m->data && m->data_len)
		return kiln_err_invalid(err, "--mount type=secret: content missing");
	if (is_secret && m->env && m->data && memchr(m->data, '\0', m->data_len))
		return kiln_err_invalid(err, "--mount type=secret,env=%s: content has a NUL byte",
		                        m->env);
	if (m->id && (!*m->id || strlen(m->id) > 1024))
		return kiln_err_invalid(err, "--mount type=%s: id must be 1 to 1024 bytes", t);
	if (is_secret && m->id && !m->target &&
	    (kiln_str_eq(m->id, ".") || kiln_str_eq(m->id, "..")))
		return kiln_err_invalid(err,
		                        "--mount type=secret: id %s is not a file name; give a "
		                        "target",
		                        m->id);
	if (is_secret && m->id && !m->target && strchr(m->id, '/'))
		return kiln_err_invalid(
		        err, "--mount type=secret: id %s has a slash; give a target", m->id);
	return 0;
}

char *
ex_cache_dir_name(const char *id)
{
	/* The readable part only helps people looking at the store; the digest alone makes
	 * the name unique. Everything but [A-Za-z0-9._-] becomes '_', and a leading '.' too,
	 * so the name is never ".", ".." or hidden. */
	struct kiln_buf b = KILN_BUF_INIT;
	const char *p = id;
	while (*p == '/')
		p++; /* the default id is the target: "/root/.cache" reads as "root_.cache" */
	for (; *p && b.len < 48; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '_' || (c == '.' && b.len > 0);
		kiln_buf_addch(&b, ok ? c : '_');
	}
	struct kiln_digest d;
	kiln_sha256_buf(id, strlen(id), &d);
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&d, hex);
	kiln_buf_addf(&b, "%s%.16s", b.len ? "-" : "", hex + 7);
	return kiln_buf_detach(&b, NULL);
}
