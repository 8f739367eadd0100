/*
 * Image references with the grammar and normalisation of Docker's distribution/reference
 * package, so a name means the same thing in kiln as in `docker pull`:
 *
 *	reference  := name [ ":" tag ] [ "@" digest ]
 *	name       := [ domain "/" ] path-component { "/" path-component }
 *	domain     := host [ ":" port ]        host := domain-name | "[" ipv6 "]"
 *	path-comp. := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *	tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *	digest     := algorithm ":" hex{32,}
 *
 * None of the pieces can contain another's separator except ':' (port and tag), which
 * the position after the last '/' settles, so a hand-written splitter matches the
 * regular expressions exactly.
 */
#include "reg.h"

#include <ctype.h>

static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component of length n. */
static bool
path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		/* separator: ".", "_", "__" or one or more "-" */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

static bool
path_valid(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '/') {
			if (!path_component_valid(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

static bool
domain_component_valid(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool
domain_valid(const char *s, size_t n)
{
	size_t hostlen;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':')
				return false;
		hostlen = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', n);
		hostlen = colon ? (size_t)(colon - s) : n;
		size_t start = 0;
		for (size_t i = 0; i <= hostlen; i++) {
			if (i == hostlen || s[i] == '.') {
				if (!domain_component_valid(s + start, i - start))
					return false;
				start = i + 1;
			}
		}
	}
	if (hostlen == n)
		return true;
	if (s[hostlen] != ':' || hostlen + 1 == n)
		return false;
	for (size_t i = hostlen + 1; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool
reg_ref_tag_valid(const char *tag)
{
	size_t n = strlen(tag);
	if (n == 0 || n > 128)
		return false;
	if (!isalnum((unsigned char)tag[0]) && tag[0] != '_')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)tag[i]) && tag[i] != '_' && tag[i] != '.' &&
		    tag[i] != '-')
			return false;
	return true;
}

/* The grammar: algorithm components joined by [-_+.], ':', 32 or more hex digits. */
static bool
digest_grammar_valid(const char *d)
{
	const char *p = d;
	for (;;) {
		if (!isalpha((unsigned char)*p))
			return false;
		while (isalnum((unsigned char)*p))
			p++;
		if (*p == ':')
			break;
		if (!strchr("-_+.", *p) || !*p)
			return false;
		p++;
	}
	p++;
	size_t n = 0;
	for (; *p; p++, n++)
		if (!isxdigit((unsigned char)*p))
			return false;
	return n >= 32;
}

/* go-digest's check after the grammar: a known algorithm with its exact lowercase length. */
bool
reg_ref_digest_valid(const char *d)
{
	if (!digest_grammar_valid(d))
		return false;
	static const struct {
		const char *alg;
		size_t hex;
	} algs[] = {{"sha256:", 64}, {"sha384:", 96}, {"sha512:", 128}};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(algs); i++) {
		size_t al = strlen(algs[i].alg);
		if (strncmp(d, algs[i].alg, al) != 0)
			continue;
		if (strlen(d + al) != algs[i].hex)
			return false;
		for (const char *p = d + al; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return false;
		return true;
	}
	return false;
}

void
reg_ref_release(struct reg_ref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	*r = (struct reg_ref)REG_REF_INIT;
}

/* Split and check; returns false on any grammar failure (the caller names the error). */
static bool
split_reference(const char *s, struct reg_ref *out)
{
	const char *at = strchr(s, '@');
	size_t rest = at ? (size_t)(at - s) : strlen(s);
	if (at && !digest_grammar_valid(at + 1))
		return false;
	const char *slash = memrchr(s, '/', rest);
	const char *colon =
	        memchr(slash ? slash : s, ':', rest - (size_t)((slash ? slash : s) - s));
	size_t namelen = colon ? (size_t)(colon - s) : rest;
	if (colon) {
		_cleanup_free_ char *tag = kiln_xstrndup(colon + 1, rest - namelen - 1);
		if (!reg_ref_tag_valid(tag))
			return false;
		out->tag = TAKE_PTR(tag);
	}
	const char *first = memchr(s, '/', namelen);
	if (first && domain_valid(s, (size_t)(first - s)) &&
	    path_valid(first + 1, namelen - (size_t)(first - s) - 1)) {
		out->domain = kiln_xstrndup(s, (size_t)(first - s));
		out->path = kiln_xstrndup(first + 1, namelen - (size_t)(first - s) - 1);
	} else if (path_valid(s, namelen)) {
		out->path = kiln_xstrndup(s, namelen);
	} else {
		return false;
	}
	if (at)
		out->digest = kiln_xstrdup(at + 1);
	return true;
}

int
reg_ref_parse(const char *s, struct reg_ref *out, struct kiln_err *err)
{
	struct reg_ref r = REG_REF_INIT;
	if (!*s)
		return kiln_err_invalid(err, "invalid reference format: repository name must have "
		                             "at least one component");
	if (!split_reference(s, &r)) {
		reg_ref_release(&r);
		/* Docker's hint: the same text in lower case would have parsed. */
		_cleanup_free_ char *lower = kiln_xstrdup(s);
		for (char *p = lower; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		bool lower_ok = split_reference(lower, &r);
		reg_ref_release(&r);
		if (lower_ok) {
			return kiln_err_invalid(
			        err,
			        "invalid reference format: repository name (%s) must be lowercase",
			        s);
		}
		return kiln_err_invalid(err, "invalid reference format: `%s`", s);
	}
	size_t namelen = strlen(r.path) + (r.domain ? strlen(r.domain) + 1 : 0);
	if (namelen > REG_NAME_MAX) {
		reg_ref_release(&r);
		return kiln_err_invalid(err,
		                        "invalid reference format: repository name must not be "
		                        "more than %d characters",
		                        REG_NAME_MAX);
	}
	if (r.digest && !reg_ref_digest_valid(r.digest)) {
		int ret = kiln_err_invalid(err, "invalid reference format: bad digest `%s`",
		                           r.digest);
		reg_ref_release(&r);
		return ret;
	}
	*out = r;
	return 0;
}

static bool
is_identifier(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int
reg_ref_parse_normalized(const char *s, struct reg_ref *out, struct kiln_err *err)
{
	if (is_identifier(s))
		return kiln_err_invalid(
		        err,
		        "invalid repository name (%s), cannot specify 64-byte hexadecimal strings",
		        s);
	/* The first component is a registry when it looks like a host: has '.' or ':', is
	 * "localhost", or has upper case (which a path never may). */
	const char *slash = strchr(s, '/');
	_cleanup_free_ char *domain = NULL;
	const char *remainder;
	bool host = false;
	if (slash) {
		size_t n = (size_t)(slash - s);
		host = memchr(s, '.', n) || memchr(s, ':', n) ||
		       (n == 9 && !strncmp(s, "localhost", 9));
		for (size_t i = 0; i < n && !host; i++)
			if (isupper((unsigned char)s[i]))
				host = true;
	}
	if (host) {
		domain = kiln_xstrndup(s, (size_t)(slash - s));
		remainder = slash + 1;
	} else {
		domain = kiln_xstrdup(REG_DEFAULT_DOMAIN);
		remainder = s;
	}
	if (kiln_str_eq(domain, "index.docker.io")) {
		free(domain);
		domain = kiln_xstrdup(REG_DEFAULT_DOMAIN);
	}
	_cleanup_free_ char *full = NULL;
	if (kiln_str_eq(domain, REG_DEFAULT_DOMAIN) && !strchr(remainder, '/'))
		full = kiln_xasprintf("%s/library/%s", domain, remainder);
	else
		full = kiln_xasprintf("%s/%s", domain, remainder);
	size_t rlen = strcspn(remainder, ":");
	for (size_t i = 0; i < rlen; i++)
		if (isupper((unsigned char)remainder[i]))
			return kiln_err_invalid(err,
			                        "invalid reference format: repository name (%.*s) "
			                        "must be lowercase",
			                        (int)rlen, remainder);
	struct reg_ref r = REG_REF_INIT;
	int ret = reg_ref_parse(full, &r, err);
	if (ret < 0)
		return ret;
	if (!r.domain) {
		/* The domain we put in front did not parse as one. */
		reg_ref_release(&r);
		return kiln_err_invalid(err, "invalid reference format: `%s`", s);
	}
	*out = r;
	return 0;
}

void
reg_ref_default_tag(struct reg_ref *r)
{
	if (!r->tag && !r->digest)
		r->tag = kiln_xstrdup("latest");
}

char *
reg_ref_name(const struct reg_ref *r)
{
	if (!r->domain)
		return kiln_xstrdup(r->path);
	return kiln_xasprintf("%s/%s", r->domain, r->path);
}

static char *
with_suffixes(char *name, const struct reg_ref *r)
{
	char *s = kiln_xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "",
	                         r->digest ? "@" : "", r->digest ? r->digest : "");
	free(name);
	return s;
}

char *
reg_ref_string(const struct reg_ref *r)
{
	return with_suffixes(reg_ref_name(r), r);
}

char *
reg_ref_familiar(const struct reg_ref *r)
{
	if (!r->domain || !kiln_str_eq(r->domain, REG_DEFAULT_DOMAIN))
		return reg_ref_string(r);
	const char *path = r->path;
	if (kiln_str_has_prefix(path, "library/") && !strchr(path + 8, '/'))
		path += 8;
	return with_suffixes(kiln_xstrdup(path), r);
}
