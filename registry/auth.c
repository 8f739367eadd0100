/* Registry auth, the pure parts: WWW-Authenticate challenges, Basic headers, token answers. */
#include "registry/reg.h"

#include <openssl/evp.h>
#include <strings.h>

static bool
is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       strchr("!#$%&'*+-.^_`|~/=", ch) != NULL;
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token (without '=', which may only end token68 values) or a quoted string. */
static const char *
parse_value(const char *p, char **out)
{
	struct kiln_buf b = KILN_BUF_INIT;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			kiln_buf_addch(&b, *p);
		}
		if (*p != '"') {
			kiln_buf_release(&b);
			return NULL;
		}
		*out = kiln_buf_detach(&b, NULL);
		return p + 1;
	}
	const char *start = p;
	while (*p && is_tchar(*p))
		p++;
	if (p == start)
		return NULL;
	*out = kiln_xstrndup(start, p - start);
	return p;
}

void
reg_auth_challenge_release(struct reg_auth_challenge *c)
{
	if (!c)
		return;
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

int
reg_auth_challenge_parse(const char *header, struct reg_auth_challenge *out, struct kiln_err *err)
{
	struct reg_auth_challenge c = {0};
	const char *p = skip_ws(header);
	const char *start = p;
	while (*p && is_tchar(*p) && *p != '=')
		p++;
	if (p == start)
		return kiln_err_invalid(err, "malformed WWW-Authenticate header \"%s\"", header);
	c.scheme = kiln_xstrndup(start, p - start);
	p = skip_ws(p);
	size_t nparams = 0;
	while (*p) {
		const char *kstart = p;
		while (*p && is_tchar(*p) && *p != '=')
			p++;
		if (p == kstart)
			goto bad;
		_cleanup_free_ char *key = kiln_xstrndup(kstart, p - kstart);
		p = skip_ws(p);
		if (*p != '=') {
			/* A bare token after a parameter starts the next challenge: we use the
			 * first. */
			if (nparams > 0)
				break;
			goto bad;
		}
		p = skip_ws(p + 1);
		_cleanup_free_ char *val = NULL;
		p = parse_value(p, &val);
		if (!p)
			goto bad;
		char **slot = NULL;
		if (strcasecmp(key, "realm") == 0)
			slot = &c.realm;
		else if (strcasecmp(key, "service") == 0)
			slot = &c.service;
		else if (strcasecmp(key, "scope") == 0)
			slot = &c.scope;
		else if (strcasecmp(key, "error") == 0)
			slot = &c.error;
		if (slot) {
			free(*slot);
			*slot = TAKE_PTR(val);
		}
		nparams++;
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p)
			goto bad;
	}
	*out = c;
	return 0;
bad:
	reg_auth_challenge_release(&c);
	return kiln_err_invalid(err, "malformed WWW-Authenticate header \"%s\"", header);
}

char *
reg_auth_basic_header(const char *user, const char *pass)
{
	_cleanup_free_ char *plain = kiln_xasprintf("%s:%s", user, pass);
	size_t n = strlen(plain);
	_cleanup_free_ char *b64 = kiln_xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
	return kiln_xasprintf("Basic %s", b64);
}

int
reg_auth_token_parse(const char *json, size_t len, char **ret_token, int64_t *ret_expires_in,
                     struct kiln_err *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root))
		return kiln_err_invalid(err, "token server answer is not a JSON object");
	const char *tok = json_string_value(json_object_get(root, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(root, "access_token"));
	if (!tok || !*tok)
		return kiln_err_invalid(err, "token server answer has no token");
	int64_t exp = 60; /* the token spec's default lifetime */
	json_t *e = json_object_get(root, "expires_in");
	if (json_is_integer(e) && json_integer_value(e) > 0)
		exp = json_integer_value(e);
	*ret_token = kiln_xstrdup(tok);
	*ret_expires_in = exp;
	return 0;
}
