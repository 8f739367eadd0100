/* HTTP policy for the registry client, the pure parts: URLs, retries, where auth may go. */
#include "registry/reg.h"

#include <curl/curl.h>
#include <strings.h>

unsigned
reg_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms)
{
	if (attempt == 0)
		return 0;
	uint64_t d = base_ms;
	for (unsigned i = 1; i < attempt && d < cap_ms; i++)
		d *= 2;
	return d > cap_ms ? cap_ms : (unsigned)d;
}

bool
reg_http_status_retryable(long status)
{
	return status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

static bool
repo_valid(const char *repo)
{
	/* path-component ::= [a-z0-9]+ (separator [a-z0-9]+)*, joined by '/'. */
	if (!*repo || strlen(repo) > REG_NAME_MAX)
		return false;
	for (const char *p = repo; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			continue;
		if (!strchr("._-/", *p) || p == repo || !p[1])
			return false;
		if (*p == '/' && (p[-1] == '/' || strchr("._-", p[-1])))
			return false;
	}
	return true;
}

char *
reg_url_v2(const char *scheme, const char *host, const char *repo, const char *kind,
           const char *ref)
{
	if (!repo_valid(repo))
		return NULL;
	if (*ref && !reg_ref_tag_valid(ref) && !reg_ref_digest_valid(ref))
		return NULL;
	return kiln_xasprintf("%s://%s/v2/%s/%s/%s", scheme, host, repo, kind, ref);
}

static void
curlu_freep(CURLU **u)
{
	if (*u)
		curl_url_cleanup(*u);
}
#define _cleanup_curlu_ _cleanup_(curlu_freep)

static char *
curlu_get(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	if (curl_url_get(u, part, &v, 0) != CURLUE_OK)
		return NULL;
	char *copy = kiln_xstrdup(v);
	curl_free(v);
	return copy;
}

char *
reg_url_resolve(const char *base, const char *location)
{
	_cleanup_curlu_ CURLU *u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK)
		return NULL;
	_cleanup_free_ char *scheme = curlu_get(u, CURLUPART_SCHEME);
	if (!scheme || (!kiln_str_eq(scheme, "https") && !kiln_str_eq(scheme, "http")))
		return NULL;
	return curlu_get(u, CURLUPART_URL);
}

char *
reg_url_add_query(const char *url, const char *name, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	if (!esc)
		abort();
	char *out = kiln_xasprintf("%s%c%s=%s", url, strchr(url, '?') ? '&' : '?', name, esc);
	curl_free(esc);
	return out;
}

/* Scheme, lowercased host and port (the scheme's default when absent). */
static bool
origin(const char *url, char **scheme, char **host, long *port)
{
	_cleanup_curlu_ CURLU *u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		return false;
	*scheme = curlu_get(u, CURLUPART_SCHEME);
	*host = curlu_get(u, CURLUPART_HOST);
	char *p = NULL;
	*port = 0;
	if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		*port = strtol(p, NULL, 10);
		curl_free(p);
	}
	if (!*scheme || !*host) {
		free(*scheme);
		free(*host);
		*scheme = *host = NULL;
		return false;
	}
	for (char *c = *host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c += 'a' - 'A';
	return true;
}

char *
reg_url_certs_name(const char *url)
{
	_cleanup_curlu_ CURLU *u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		return NULL;
	_cleanup_free_ char *host = curlu_get(u, CURLUPART_HOST);
	if (!host)
		return NULL;
	_cleanup_free_ char *port = curlu_get(u, CURLUPART_PORT); /* NULL when not in the URL */
	return port ? kiln_xasprintf("%s:%s", host, port) : kiln_xstrdup(host);
}

bool
reg_url_may_send_auth(const char *url, const char *registry_base, bool user_secret)
{
	_cleanup_free_ char *s1 = NULL, *h1 = NULL, *s2 = NULL, *h2 = NULL;
	long p1, p2;
	if (!origin(url, &s1, &h1, &p1))
		return false;
	if (!origin(registry_base, &s2, &h2, &p2))
		return false;
	if (!kiln_str_eq(s1, s2) || !kiln_str_eq(h1, h2) || p1 != p2)
		return false;
	return !user_secret || kiln_str_eq(s1, "https");
}

bool
reg_host_is_loopback(const char *host)
{
	_cleanup_free_ char *h = NULL;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		if (!end)
			return false;
		h = kiln_xstrndup(host + 1, end - host - 1);
	} else {
		h = kiln_xstrndup(host, strcspn(host, ":"));
	}
	if (strcasecmp(h, "localhost") == 0 || kiln_str_eq(h, "::1"))
		return true;
	if (!kiln_str_has_prefix(h, "127."))
		return false;
	int dots = 0;
	for (const char *p = h; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return dots == 3;
}
