/* Image references and platforms, normalised the way docker/distribution and containerd do,
 * so that `FROM busybox` and `FROM docker.io/library/busybox:latest` are the same vertex. */
#include "convert.h"

#include <ctype.h>
#include <sys/utsname.h>

static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool
valid_component(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (is_lower_alnum(s[i]))
			continue;
		if (s[i] == '.' || s[i] == '_') {
			/* "." and "_" single, "__" double; never next to another separator */
			size_t run = 1;
			while (i + run < n && s[i + run] == '_' && s[i] == '_')
				run++;
			if (run > 2 || (s[i] == '.' && run > 1) || !is_lower_alnum(s[i + run]))
				return false;
			i += run - 1;
			continue;
		}
		if (s[i] == '-') {
			while (i + 1 < n && s[i + 1] == '-')
				i++;
			if (!is_lower_alnum(s[i + 1]))
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static bool
valid_domain(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']')
			return false;
	}
	return true;
}

static bool
valid_tag(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = s[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

int
fe_ref_normalize(const char *ref, char **ret, struct kiln_err *err)
{
	_cleanup_free_ char *s = kiln_xstrdup(ref);
	const char *digest = NULL, *tag = NULL;

	char *at = strrchr(s, '@');
	if (at) {
		*at = '\0';
		digest = at + 1;
		if (!kiln_digest_valid(digest))
			return kiln_err_invalid(
			        err, "invalid reference format: bad digest in \"%s\"", ref);
	}
	char *slash = strrchr(s, '/');
	char *colon = strrchr(slash ? slash : s, ':');
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
		if (!valid_tag(tag))
			return kiln_err_invalid(err, "invalid reference format: bad tag in \"%s\"",
			                        ref);
	}
	if (!*s)
		return kiln_err_invalid(err, "invalid reference format: \"%s\"", ref);

	/* The first component is a registry when it looks like a host name. */
	const char *domain = "docker.io";
	const char *path = s;
	char *first = strchr(s, '/');
	if (first) {
		size_t n = first - s;
		bool upper = false;
		for (size_t i = 0; i < n; i++)
			upper |= isupper((unsigned char)s[i]) != 0;
		if (memchr(s, '.', n) || memchr(s, ':', n) ||
		    (n == 9 && !memcmp(s, "localhost", 9)) || upper) {
			if (!valid_domain(s, n))
				return kiln_err_invalid(
				        err, "invalid reference format: bad registry in \"%s\"",
				        ref);
			*first = '\0';
			domain = s;
			path = first + 1;
		}
	}
	if (kiln_str_eq(domain, "index.docker.io"))
		domain = "docker.io";
	for (const char *p = path; *p; p++)
		if (isupper((unsigned char)*p))
			return kiln_err_invalid(err,
			                        "invalid reference format: repository name must be "
			                        "lowercase: \"%s\"",
			                        ref);
	for (const char *p = path;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!valid_component(p, n))
			return kiln_err_invalid(err, "invalid reference format: \"%s\"", ref);
		if (!e)
			break;
		p = e + 1;
	}

	struct kiln_buf out = KILN_BUF_INIT;
	kiln_buf_addf(&out, "%s/", domain);
	if (kiln_str_eq(domain, "docker.io") && !strchr(path, '/'))
		kiln_buf_addstr(&out, "library/");
	kiln_buf_addstr(&out, path);
	if (tag)
		kiln_buf_addf(&out, ":%s", tag);
	else if (!digest)
		kiln_buf_addstr(&out, ":latest");
	if (digest)
		kiln_buf_addf(&out, "@%s", digest);
	*ret = kiln_buf_detach(&out, NULL);
	return 0;
}

static void
platform_normalize(struct fe_platform *p)
{
	for (char *c = p->os; *c; c++)
		*c = tolower((unsigned char)*c);
	for (char *c = p->arch; *c; c++)
		*c = tolower((unsigned char)*c);
	if (kiln_str_eq(p->os, "macos"))
		strcpy(p->os, "darwin");
	if (kiln_str_eq(p->arch, "x86_64") || kiln_str_eq(p->arch, "x86-64") ||
	    kiln_str_eq(p->arch, "amd64")) {
		strcpy(p->arch, "amd64");
		if (kiln_str_eq(p->variant, "v1"))
			p->variant[0] = '\0';
	} else if (kiln_str_eq(p->arch, "i386")) {
		strcpy(p->arch, "386");
		p->variant[0] = '\0';
	} else if (kiln_str_eq(p->arch, "aarch64") || kiln_str_eq(p->arch, "arm64")) {
		strcpy(p->arch, "arm64");
		if (kiln_str_eq(p->variant, "8") || kiln_str_eq(p->variant, "v8"))
			p->variant[0] = '\0';
	} else if (kiln_str_eq(p->arch, "armhf")) {
		strcpy(p->arch, "arm");
		strcpy(p->variant, "v7");
	} else if (kiln_str_eq(p->arch, "armel")) {
		strcpy(p->arch, "arm");
		strcpy(p->variant, "v6");
	} else if (kiln_str_eq(p->arch, "arm")) {
		if (!p->variant[0] || kiln_str_eq(p->variant, "7"))
			strcpy(p->variant, "v7");
		else if (kiln_str_eq(p->variant, "5") || kiln_str_eq(p->variant, "6") ||
		         kiln_str_eq(p->variant, "8")) {
			char v[3] = {'v', p->variant[0], 0};
			strcpy(p->variant, v);
		}
	}
}

int
fe_platform_parse(const char *s, struct fe_platform *ret, struct kiln_err *err)
{
	struct fe_platform p = {0};
	const char *parts[3] = {0};
	size_t lens[3] = {0};
	size_t n = 0;
	for (const char *c = s;; n++) {
		if (n == 3)
			return kiln_err_invalid(err, "invalid platform \"%s\"", s);
		const char *e = strchr(c, '/');
		parts[n] = c;
		lens[n] = e ? (size_t)(e - c) : strlen(c);
		if (!e) {
			n++;
			break;
		}
		c = e + 1;
	}
	if (n < 2 || lens[0] == 0 || lens[1] == 0 || lens[0] >= sizeof(p.os) ||
	    lens[1] >= sizeof(p.arch) || lens[2] >= sizeof(p.variant) || (n == 3 && !lens[2]))
		return kiln_err_invalid(err, "invalid platform \"%s\": want os/arch[/variant]", s);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < lens[i]; j++) {
			unsigned char c = parts[i][j];
			if (!isalnum(c) && c != '_' && c != '-' && c != '.')
				return kiln_err_invalid(err, "invalid platform \"%s\"", s);
		}
	memcpy(p.os, parts[0], lens[0]);
	memcpy(p.arch, parts[1], lens[1]);
	if (n == 3)
		memcpy(p.variant, parts[2], lens[2]);
	platform_normalize(&p);
	*ret = p;
	return 0;
}

void
fe_platform_host(struct fe_platform *ret)
{
	struct utsname u;
	*ret = (struct fe_platform){.os = "linux", .arch = "amd64"};
	if (uname(&u) < 0)
		return;
	size_t n = strnlen(u.machine, sizeof(ret->arch) - 1);
	memcpy(ret->arch, u.machine, n);
	ret->arch[n] = '\0';
	if (kiln_str_eq(u.machine, "armv7l"))
		strcpy(ret->arch, "arm"), strcpy(ret->variant, "v7");
	else if (kiln_str_eq(u.machine, "armv6l"))
		strcpy(ret->arch, "arm"), strcpy(ret->variant, "v6");
	platform_normalize(ret);
}

void
fe_platform_format(const struct fe_platform *p, char out[100])
{
	if (p->variant[0])
		snprintf(out, 100, "%s/%s/%s", p->os, p->arch, p->variant);
	else
		snprintf(out, 100, "%s/%s", p->os, p->arch);
}
