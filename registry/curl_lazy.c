/*
 * libcurl, loaded on first use.
 *
 * Linking libcurl makes the dynamic loader map some thirty libraries it depends on (TLS,
 * LDAP, Kerberos, IDN, ...) at every start of kiln, about 4 ms — most of the time of a
 * `kiln parse` or `kiln lint`, which never touch the network. So kiln does not link it:
 * these definitions of the libcurl calls kiln makes open libcurl.so.4 the first time one
 * is called and forward to it. A missing libcurl is then reported on first use, as the
 * loader would have reported it at start.
 *
 * The variadic setters take exactly one argument after the option in every call kiln
 * makes (a long, a pointer, a curl_off_t or a function pointer), each passed as one
 * 64-bit integer register on the LP64 targets kiln supports, so forwarding it as a
 * pointer-sized value is exact.
 */
#define CURL_DISABLE_TYPECHECK /* the type-checking macros would wrap our definitions */
#include "base/base.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <pthread.h>

_Static_assert(sizeof(void *) == sizeof(long) && sizeof(void *) == sizeof(curl_off_t),
               "variadic curl setters are forwarded as one pointer-sized value");

#define CURL_CALLS(X)                                                                              \
	X(CURLcode, curl_global_init, (long flags))                                                \
	X(CURL *, curl_easy_init, (void))                                                          \
	X(CURLcode, curl_easy_perform, (CURL * h))                                                 \
	X(void, curl_easy_cleanup, (CURL * h))                                                     \
	X(const char *, curl_easy_strerror, (CURLcode c))                                          \
	X(char *, curl_easy_escape, (CURL * h, const char *s, int n))                              \
	X(void, curl_free, (void *p))                                                              \
	X(CURLSH *, curl_share_init, (void))                                                       \
	X(CURLSHcode, curl_share_cleanup, (CURLSH * s))                                            \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s))          \
	X(void, curl_slist_free_all, (struct curl_slist * l))                                      \
	X(CURLU *, curl_url, (void))                                                               \
	X(void, curl_url_cleanup, (CURLU * u))                                                     \
	X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags))   \
	X(CURLUcode, curl_url_set,                                                                 \
	  (CURLU * u, CURLUPart what, const char *part, unsigned int flags))                       \
	X(CURLcode, curl_easy_setopt, (CURL * h, CURLoption o, ...))                               \
	X(CURLcode, curl_easy_getinfo, (CURL * h, CURLINFO i, ...))                                \
	X(CURLSHcode, curl_share_setopt, (CURLSH * s, CURLSHoption o, ...))

static struct {
#define FIELD(ret, name, args) ret(*name) args;
	CURL_CALLS(FIELD)
#undef FIELD
} real;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void
load(void)
{
	void *lib = kiln_lazy_open("libcurl.so.4", "needed to talk to registries");
#define LOOKUP(ret, name, args) *(void **)&real.name = kiln_lazy_sym(lib, "libcurl.so.4", #name);
	CURL_CALLS(LOOKUP)
#undef LOOKUP
}

#define REAL(name) (pthread_once(&load_once, load), real.name)

CURLcode
curl_global_init(long flags)
{
	return REAL(curl_global_init)(flags);
}

CURL *
curl_easy_init(void)
{
	return REAL(curl_easy_init)();
}

CURLcode
curl_easy_perform(CURL *h)
{
	return REAL(curl_easy_perform)(h);
}

void
curl_easy_cleanup(CURL *h)
{
	REAL(curl_easy_cleanup)(h);
}

const char *
curl_easy_strerror(CURLcode c)
{
	return REAL(curl_easy_strerror)(c);
}

char *
curl_easy_escape(CURL *h, const char *s, int n)
{
	return REAL(curl_easy_escape)(h, s, n);
}

void
curl_free(void *p)
{
	REAL(curl_free)(p);
}

CURLSH *
curl_share_init(void)
{
	return REAL(curl_share_init)();
}

CURLSHcode
curl_share_cleanup(CURLSH *s)
{
	return REAL(curl_share_cleanup)(s);
}

struct curl_slist *
curl_slist_append(struct curl_slist *l, const char *s)
{
	return REAL(curl_slist_append)(l, s);
}

void
curl_slist_free_all(struct curl_slist *l)
{
	REAL(curl_slist_free_all)(l);
}

CURLU *
curl_url(void)
{
	return REAL(curl_url)();
}

void
curl_url_cleanup(CURLU *u)
{
	REAL(curl_url_cleanup)(u);
}

CURLUcode
curl_url_get(CURLU *u, CURLUPart what, char **part, unsigned int flags)
{
	return REAL(curl_url_get)(u, what, part, flags);
}

CURLUcode
curl_url_set(CURLU *u, CURLUPart what, const char *part, unsigned int flags)
{
	return REAL(curl_url_set)(u, what, part, flags);
}

CURLcode
curl_easy_setopt(CURL *h, CURLoption o, ...)
{
	va_list ap;
	va_start(ap, o);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return REAL(curl_easy_setopt)(h, o, arg);
}

CURLcode
curl_easy_getinfo(CURL *h, CURLINFO i, ...)
{
	va_list ap;
	va_start(ap, i);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return REAL(curl_easy_getinfo)(h, i, arg);
}

CURLSHcode
curl_share_setopt(CURLSH *s, CURLSHoption o, ...)
{
	va_list ap;
	va_start(ap, o);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return REAL(curl_share_setopt)(s, o, arg);
}

/*
 * The one libssl call kiln makes, on the SSL_CTX libcurl hands its CURLOPT_SSL_CTX_FUNCTION
 * callback: libcurl has loaded libssl by then, so this finds the same library. Linking
 * libssl would load libcrypto at every start (base/crypto_lazy.c says why it is not).
 */
static X509_STORE *(*real_ssl_ctx_get_cert_store)(const SSL_CTX *ctx);
static pthread_once_t ssl_once = PTHREAD_ONCE_INIT;

static void
load_ssl(void)
{
	void *lib = kiln_lazy_open("libssl.so.3", "TLS");
	*(void **)&real_ssl_ctx_get_cert_store =
	        kiln_lazy_sym(lib, "libssl.so.3", "SSL_CTX_get_cert_store");
}

X509_STORE *
SSL_CTX_get_cert_store(const SSL_CTX *ctx)
{
	pthread_once(&ssl_once, load_ssl);
	return real_ssl_ctx_get_cert_store(ctx);
}
