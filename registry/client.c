/* The registry HTTP client: transport (libcurl), auth, and the Distribution API calls. */
#include "registry/client_internal.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <strings.h>
#include <time.h>

enum auth_kind { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct token {
	char *scope;
	char *token;
	int64_t expires; /* monotonic seconds */
};

struct reg_client {
	char *host;     /* as given: the name in references and in config.json */
	char *api_host; /* where the API answers (registry-1.docker.io for docker.io) */
	char *scheme;   /* "https" or "http" once decided, else NULL */
	char *base;     /* "SCHEME://API_HOST" */
	struct reg_client_opts o;
	char *certs_d;
	char *user, *pass;

	pthread_mutex_t auth_lock; /* one token fetch at a time: parallel 401s share it */
	pthread_mutex_t lock;      /* guards everything below and scheme/base */
	enum auth_kind kind;
	char *realm, *service;
	struct token *tokens;
	size_t n_tokens, alloc_tokens;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

int
regc_err(struct kiln_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	kiln_err_invalid(err, "%s", msg);
	err->code = code;
	return -code;
}

const char *
regc_host(const struct reg_client *c)
{
	return c->host;
}

const struct reg_client_opts *
regc_opts(const struct reg_client *c)
{
	return &c->o;
}

static int64_t
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- client lifecycle ---- */

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	struct reg_client *c = user;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *user)
{
	struct reg_client *c = user;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
reg_client_new(const char *host, const struct reg_client_opts *o, struct reg_client **ret,
               struct kiln_err *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, global_init);
	if (!*host || strpbrk(host, "/?#@ \t\r\n"))
		return kiln_err_invalid(err, "invalid registry host \"%s\"", host);

	struct reg_client *c = kiln_xcalloc(1, sizeof(*c));
	c->o = *o;
	if (c->o.max_attempts == 0)
		c->o.max_attempts = 1;
	if (c->o.parallel == 0)
		c->o.parallel = 1;
	if (c->o.chunk_size <= 0)
		c->o.chunk_size = 32 << 20;
	c->host = kiln_xstrdup(host);
	c->api_host =
	        kiln_xstrdup(kiln_str_eq(host, "docker.io") || kiln_str_eq(host, "index.docker.io")
	                             ? "registry-1.docker.io"
	                             : host);
	c->certs_d = kiln_xstrdup(o->certs_d && *o->certs_d ? o->certs_d : "/etc/docker/certs.d");
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->auth_lock, NULL);
	for (size_t i = 0; i < KILN_ARRAY_SIZE(c->share_locks); i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	c->share = curl_share_init();
	if (!c->share)
		abort();
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);

	if (o->username && o->password) {
		c->user = kiln_xstrdup(o->username);
		c->pass = kiln_xstrdup(o->password);
	} else {
		_cleanup_free_ char *path = o->docker_config ? kiln_xstrdup(o->docker_config)
		                                             : reg_dockercfg_default_path();
		int r = reg_dockercfg_get(path, host, &c->user, &c->pass, err);
		if (r < 0) {
			reg_client_free(c);
			return r;
		}
	}
	*ret = c;
	return 0;
}

void
reg_client_free(struct reg_client *c)
{
	if (!c)
		return;
	curl_share_cleanup(c->share);
	for (size_t i = 0; i < KILN_ARRAY_SIZE(c->share_locks); i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->auth_lock);
	for (size_t i = 0; i < c->n_tokens; i++) {
		free(c->tokens[i].scope);
		free(c->tokens[i].token);
	}
	free(c->tokens);
	free(c->realm);
	free(c->service);
	free(c->host);
	free(c->api_host);
	free(c->scheme);
	free(c->base);
	free(c->certs_d);
	free(c->user);
	if (c->pass)
		explicit_bzero(c->pass, strlen(c->pass));
	free(c->pass);
	free(c);
}

/* ---- one HTTP exchange ---- */

typedef int (*sink_fn)(const char *p, size_t n, long status, void *ctx);

struct req {
	const char *method; /* GET HEAD POST PUT PATCH */
	const char *url;
	const char *scope; /* token scope the request needs, NULL for none */
	const char *accept;
	const char *content_type;
	char *range;         /* "Range: bytes=N-" value part, or NULL */
	char *content_range; /* "A-B", or NULL */
	const void *data;    /* body from memory ... */
	size_t len;
	int fd; /* ... or from fd (>= 0) at [off, off+flen) */
	int64_t off, flen;
	sink_fn sink; /* 2xx body goes here, else into `body` */
	void *sink_ctx;
	struct kiln_buf *body;
	size_t body_max;
	bool no_retry;    /* the caller retries (resumable downloads) */
	bool no_redirect; /* do not follow Location */
};

struct resp {
	long status;
	char *location, *content_type, *digest, *www_auth, *content_range, *retry_after;
	struct kiln_buf err_body; /* body of non-2xx answers, capped */
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	bool too_big;
	bool sink_failed;
};

static void
resp_reset(struct resp *r)
{
	free(r->location);
	free(r->content_type);
	free(r->digest);
	free(r->www_auth);
	free(r->content_range);
	free(r->retry_after);
	kiln_buf_release(&r->err_body);
	*r = (struct resp){.err_body = KILN_BUF_INIT};
}

static void
resp_releasep(struct resp *r)
{
	resp_reset(r);
}
#define _cleanup_resp_ _cleanup_(resp_releasep)
#define RESP_INIT                                                                                  \
	{                                                                                          \
		.err_body = KILN_BUF_INIT                                                          \
	}

struct xfer {
	const struct req *req;
	struct resp *resp;
	int64_t read_pos; /* of the request body */
};

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue or a redirect): forget the last one's. */
		resp_reset(x->resp);
		const char *sp = memchr(buf, ' ', len);
		if (sp)
			x->resp->status = strtol(sp + 1, NULL, 10);
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t klen = colon - buf;
	const char *v = colon + 1;
	const char *end = buf + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	char **slot = NULL;
#define HDR(name, field)                                                                           \
	if (klen == strlen(name) && strncasecmp(buf, name, klen) == 0)                             \
	slot = &x->resp->field
	HDR("Location", location);
	HDR("Content-Type", content_type);
	HDR("Docker-Content-Digest", digest);
	HDR("WWW-Authenticate", www_auth);
	HDR("Content-Range", content_range);
	HDR("Retry-After", retry_after);
#undef HDR
	if (slot && !*slot)
		*slot = kiln_xstrndup(v, end - v);
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	long st = x->resp->status;
	if (st >= 200 && st < 300) {
		if (x->req->sink) {
			if (x->req->sink(p, len, st, x->req->sink_ctx) < 0) {
				x->resp->sink_failed = true;
				return 0;
			}
			return len;
		}
		if (x->req->body) {
			if (x->req->body->len + len > x->req->body_max) {
				x->resp->too_big = true;
				return 0;
			}
			kiln_buf_add(x->req->body, p, len);
		}
		return len;
	}
	if (x->resp->err_body.len < 65536)
		kiln_buf_add(&x->resp->err_body, p, len);
	return len;
}

static size_t
on_read(char *out, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	const struct req *r = x->req;
	size_t want = size * n;
	if (r->fd >= 0) {
		int64_t left = r->flen - x->read_pos;
		if (left <= 0)
			return 0;
		if ((int64_t)want > left)
			want = left;
		ssize_t got = pread(r->fd, out, want, r->off + x->read_pos);
		if (got < 0)
			return CURL_READFUNC_ABORT;
		x->read_pos += got;
		return got;
	}
	size_t left = r->len - x->read_pos;
	if (want > left)
		want = left;
	memcpy(out, (const char *)r->data + x->read_pos, want);
	x->read_pos += want;
	return want;
}

static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;
	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	x->read_pos = offset;
	return CURL_SEEKFUNC_OK;
}

struct tls_ctx {
	const char *dir; /* CERTS_D/HOST[:PORT] */
};

/* Docker's certs.d: every *.crt in the host's directory is a CA, added to the system ones. */
static CURLcode
on_ssl_ctx(CURL *h, void *sslctx, void *arg)
{
	struct tls_ctx *t = arg;
	DIR *d = opendir(t->dir);
	if (!d)
		return CURLE_OK;
	X509_STORE *store = SSL_CTX_get_cert_store(sslctx);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!kiln_str_has_suffix(de->d_name, ".crt"))
			continue;
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", t->dir, de->d_name);
		X509_STORE_load_file(store, p);
	}
	closedir(d);
	return CURLE_OK;
}

/* Docker's certs.d also holds client certificates: NAME.cert with its NAME.key. Writes the
 * first pair found (the caller frees both) or leaves them NULL. */
static void
find_client_cert(const char *dir, char **ret_cert, char **ret_key)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) && !*ret_cert) {
		if (!kiln_str_has_suffix(de->d_name, ".cert"))
			continue;
		size_t stem = strlen(de->d_name) - strlen(".cert");
		char *cert = kiln_xasprintf("%s/%s", dir, de->d_name);
		char *key = kiln_xasprintf("%s/%.*s.key", dir, (int)stem, de->d_name);
		if (access(key, R_OK) == 0) {
			*ret_cert = cert;
			*ret_key = key;
		} else {
			free(cert);
			free(key);
		}
	}
	closedir(d);
}

static void
curl_slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

static void
curl_easy_cleanupp(CURL **h)
{
	if (*h)
		curl_easy_cleanup(*h);
}

static void add_header(struct curl_slist **l, const char *fmt, ...) KILN_PRINTF(2, 3);
static void
add_header(struct curl_slist **l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *h = NULL;
	if (vasprintf(&h, fmt, ap) < 0)
		abort();
	va_end(ap);
	struct curl_slist *n = curl_slist_append(*l, h);
	if (!n)
		abort();
	*l = n;
}

/* Perform one exchange; resp->cc says whether an HTTP answer came back. */
static void
http_once(struct reg_client *c, const struct req *req, const char *url, const char *auth,
          struct resp *resp)
{
	resp_reset(resp);
	_cleanup_(curl_easy_cleanupp) CURL *h = curl_easy_init();
	_cleanup_(curl_slist_freep) struct curl_slist *hdrs = NULL;
	if (!h)
		abort();
	struct xfer x = {.req = req, .resp = resp};
	_cleanup_free_ char *certs_name = reg_url_certs_name(url);
	_cleanup_free_ char *certs_dir =
	        kiln_xasprintf("%s/%s", c->certs_d, certs_name ? certs_name : "-");
	struct tls_ctx tls = {.dir = certs_dir};
	_cleanup_free_ char *client_cert = NULL, *client_key = NULL;
	find_client_cert(certs_dir, &client_cert, &client_key);

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/0.1");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->o.connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o.low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	if (client_cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, client_cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, client_key);
	}
	if (c->o.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &tls);
	}

	bool has_body = req->fd >= 0 || req->data;
	curl_off_t body_len = req->fd >= 0 ? req->flen : (curl_off_t)req->len;
	if (kiln_str_eq(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (kiln_str_eq(req->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, has_body ? body_len : 0);
		if (has_body) {
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &x);
		} else {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		}
	} else if (kiln_str_eq(req->method, "PUT") || kiln_str_eq(req->method, "PATCH")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, has_body ? body_len : 0);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &x);
		if (kiln_str_eq(req->method, "PATCH"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
	}
	curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);

	add_header(&hdrs, "Expect:");
	if (req->accept)
		add_header(&hdrs, "Accept: %s", req->accept);
	if (req->content_type)
		add_header(&hdrs, "Content-Type: %s", req->content_type);
	if (req->range)
		add_header(&hdrs, "Range: %s", req->range);
	if (req->content_range)
		add_header(&hdrs, "Content-Range: %s", req->content_range);
	if (auth)
		add_header(&hdrs, "Authorization: %s", auth);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	resp->cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code)
		resp->status = code;
	if (resp->cc != CURLE_OK && !resp->errbuf[0])
		snprintf(resp->errbuf, sizeof(resp->errbuf), "%s", curl_easy_strerror(resp->cc));
}

static bool
cc_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* ---- errors from registry answers ---- */

/* "CODE: message" from the registry's {"errors":[...]} body, or NULL. */
static char *
registry_message(const struct resp *r)
{
	if (!r->err_body.len)
		return NULL;
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(r->err_body.buf, r->err_body.len, 0, &jerr);
	json_t *e = root ? json_array_get(json_object_get(root, "errors"), 0) : NULL;
	if (!e)
		return NULL;
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (code && msg)
		return kiln_xasprintf("%s: %s", code, msg);
	return code || msg ? kiln_xstrdup(code ? code : msg) : NULL;
}

static int
status_error(struct reg_client *c, const struct resp *r, const char *what, struct kiln_err *err)
{
	_cleanup_free_ char *m = registry_message(r);
	const char *sep = m ? ": " : "";
	const char *mm = m ? m : "";
	switch (r->status) {
	case 401:
		return regc_err(err, EACCES, "unauthorized: %s: %s%s%s", c->host, what, sep, mm);
	case 403:
		return regc_err(err, EACCES, "denied: %s: %s%s%s", c->host, what, sep, mm);
	case 404:
		return regc_err(err, ENOENT, "%s: %s: not found%s%s", c->host, what, sep, mm);
	default:
		return regc_err(err, EPROTO, "%s: %s: HTTP %ld%s%s", c->host, what, r->status, sep,
		                mm);
	}
}

/* ---- auth ---- */

static const char *
token_lookup(struct reg_client *c, const char *scope)
{
	int64_t now = now_s();
	for (size_t i = 0; i < c->n_tokens; i++)
		if (kiln_str_eq(c->tokens[i].scope, scope) && c->tokens[i].expires > now)
			return c->tokens[i].token;
	return NULL;
}

static void
token_store(struct reg_client *c, const char *scope, char *token, int64_t expires_in)
{
	/* Renew a little early so a token does not expire in flight. */
	int64_t margin = expires_in > 20 ? 10 : expires_in / 2;
	int64_t expires = now_s() + expires_in - margin;
	for (size_t i = 0; i < c->n_tokens; i++) {
		if (kiln_str_eq(c->tokens[i].scope, scope)) {
			free(c->tokens[i].token);
			c->tokens[i].token = token;
			c->tokens[i].expires = expires;
			return;
		}
	}
	KILN_GROW(c->tokens, c->alloc_tokens, c->n_tokens + 1);
	c->tokens[c->n_tokens++] =
	        (struct token){.scope = kiln_xstrdup(scope), .token = token, .expires = expires};
}

/* The Authorization value for a request to `url`, or NULL. The caller frees. */
static char *
auth_header_for(struct reg_client *c, const char *url, const char *scope)
{
	char *out = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->kind == AUTH_BASIC && c->user && reg_url_may_send_auth(url, c->base, true)) {
		out = reg_auth_basic_header(c->user, c->pass);
	} else if (c->kind == AUTH_BEARER && reg_url_may_send_auth(url, c->base, false)) {
		const char *t = token_lookup(c, scope ? scope : "");
		if (t)
			out = kiln_xasprintf("Bearer %s", t);
	}
	pthread_mutex_unlock(&c->lock);
	return out;
}

static int
fetch_token(struct reg_client *c, const char *scope, struct kiln_err *err)
{
	_cleanup_free_ char *url = NULL;
	pthread_mutex_lock(&c->lock);
	url = kiln_xstrdup(c->realm);
	if (c->service) {
		char *u = reg_url_add_query(url, "service", c->service);
		free(url);
		url = u;
	}
	pthread_mutex_unlock(&c->lock);
	/* Several scopes (push with a mount) go as repeated scope= parameters. */
	if (scope && *scope) {
		_cleanup_free_ char *copy = kiln_xstrdup(scope);
		char *save = NULL;
		for (char *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
			char *u = reg_url_add_query(url, "scope", s);
			free(url);
			url = u;
		}
	}
	_cleanup_free_ char *basic = NULL;
	if (c->user) {
		if (!kiln_str_has_prefix(url, "https://"))
			return regc_err(
			        err, EACCES,
			        "%s: refusing to send credentials over plain HTTP to the token "
			        "server %s",
			        c->host, c->realm);
		basic = reg_auth_basic_header(c->user, c->pass);
	}
	_cleanup_buf_ struct kiln_buf body = KILN_BUF_INIT;
	struct req req = {
	        .method = "GET", .url = url, .fd = -1, .body = &body, .body_max = 1 << 20};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	for (unsigned attempt = 0;; attempt++) {
		kiln_buf_reset(&body);
		http_once(c, &req, url, basic, &resp);
		bool again = resp.cc != CURLE_OK ? cc_retryable(resp.cc)
		                                 : reg_http_status_retryable(resp.status);
		if (!again || attempt + 1 >= c->o.max_attempts)
			break;
		sleep_ms(reg_backoff_ms(attempt + 1, c->o.backoff_base_ms, c->o.backoff_cap_ms));
	}
	if (resp.cc != CURLE_OK)
		return regc_err(err, EIO, "%s: token server %s: %s", c->host, c->realm,
		                resp.errbuf);
	if (resp.status == 401 || resp.status == 403)
		return regc_err(err, EACCES, "unauthorized: %s: the token server refused %s",
		                c->host, c->user ? "the credentials" : "anonymous access");
	if (resp.status != 200)
		return regc_err(err, EPROTO, "%s: token server %s: HTTP %ld", c->host, c->realm,
		                resp.status);
	char *token;
	int64_t expires_in;
	int r = reg_auth_token_parse(body.buf, body.len, &token, &expires_in, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", c->host);
	pthread_mutex_lock(&c->lock);
	token_store(c, scope ? scope : "", token, expires_in);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Answer a 401: learn the scheme from the challenge and get what it asks for. */
static int
authenticate_locked(struct reg_client *c, const char *www_auth, const char *scope, const char *sent,
                    struct kiln_err *err)
{
	if (!www_auth)
		return regc_err(err, EACCES, "unauthorized: %s: no WWW-Authenticate challenge",
		                c->host);
	struct reg_auth_challenge ch = {0};
	int r = reg_auth_challenge_parse(www_auth, &ch, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", c->host);
	if (strcasecmp(ch.scheme, "basic") == 0) {
		reg_auth_challenge_release(&ch);
		if (!c->user)
			return regc_err(err, EACCES,
			                "unauthorized: %s: authentication required (kiln login %s)",
			                c->host, c->host);
		if (!kiln_str_eq(c->scheme, "https"))
			return regc_err(err, EACCES,
			                "%s: refusing to send credentials over plain HTTP",
			                c->host);
		pthread_mutex_lock(&c->lock);
		c->kind = AUTH_BASIC;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (strcasecmp(ch.scheme, "bearer") != 0 || !ch.realm) {
		r = regc_err(err, EACCES, "%s: unsupported authentication scheme \"%s\"", c->host,
		             ch.scheme);
		reg_auth_challenge_release(&ch);
		return r;
	}
	if (!kiln_str_has_prefix(ch.realm, "https://") &&
	    !kiln_str_has_prefix(ch.realm, "http://")) {
		r = regc_err(err, EPROTO, "%s: bad token realm \"%s\"", c->host, ch.realm);
		reg_auth_challenge_release(&ch);
		return r;
	}
	pthread_mutex_lock(&c->lock);
	/* Another thread may have fetched a token while this request failed with none. */
	const char *have = c->kind == AUTH_BEARER ? token_lookup(c, scope ? scope : "") : NULL;
	bool fresh = have && (!sent || !kiln_str_has_prefix(sent, "Bearer ") ||
	                      !kiln_str_eq(sent + strlen("Bearer "), have));
	if (fresh) {
		pthread_mutex_unlock(&c->lock);
		reg_auth_challenge_release(&ch);
		return 0;
	}
	c->kind = AUTH_BEARER;
	free(c->realm);
	free(c->service);
	c->realm = TAKE_PTR(ch.realm);
	c->service = TAKE_PTR(ch.service);
	pthread_mutex_unlock(&c->lock);
	/* Ask for what the request needs; the challenge's scope when we did not say. */
	_cleanup_free_ char *want = kiln_xstrdup(scope ? scope : ch.scope ? ch.scope : "");
	reg_auth_challenge_release(&ch);
	return fetch_token(c, want, err);
}

static int
authenticate(struct reg_client *c, const char *www_auth, const char *scope, const char *sent,
             struct kiln_err *err)
{
	pthread_mutex_lock(&c->auth_lock);
	int r = authenticate_locked(c, www_auth, scope, sent, err);
	pthread_mutex_unlock(&c->auth_lock);
	return r;
}

/* ---- requests with auth, redirects and retries ---- */

/* Returns 0 with any HTTP answer in resp (the caller judges the status), or -errno when no
 * answer came back after the retries. */
static int
do_request(struct reg_client *c, const struct req *req, struct resp *resp, struct kiln_err *err)
{
	_cleanup_free_ char *url = kiln_xstrdup(req->url);
	bool reauthed = false;
	unsigned attempt = 0, redirects = 0;
	for (;;) {
		if (req->body)
			kiln_buf_reset(req->body);
		_cleanup_free_ char *auth = auth_header_for(c, url, req->scope);
		http_once(c, req, url, auth, resp);
		if (resp->sink_failed)
			return -EIO; /* the sink filled err already */
		if (resp->too_big)
			return regc_err(err, EFBIG, "%s: answer to %s %s is too large", c->host,
			                req->method, url);
		bool retry = false;
		if (resp->cc != CURLE_OK) {
			if (!cc_retryable(resp->cc) || req->no_retry ||
			    attempt + 1 >= c->o.max_attempts)
				return regc_err(err, EIO, "%s: %s %s: %s", c->host, req->method,
				                url, resp->errbuf);
			retry = true;
		} else if (resp->status == 401 && !reauthed &&
		           reg_url_may_send_auth(url, c->base, false)) {
			int r = authenticate(c, resp->www_auth, req->scope, auth, err);
			if (r < 0)
				return r;
			reauthed = true;
			continue;
		} else if ((resp->status == 301 || resp->status == 302 || resp->status == 303 ||
		            resp->status == 307 || resp->status == 308) &&
		           resp->location && !req->no_redirect) {
			if (++redirects > 5)
				return regc_err(err, ELOOP, "%s: too many redirects", c->host);
			char *next = reg_url_resolve(url, resp->location);
			if (!next)
				return regc_err(err, EPROTO, "%s: bad redirect to \"%s\"", c->host,
				                resp->location);
			free(url);
			url = next;
			continue;
		} else if (reg_http_status_retryable(resp->status) && !req->no_retry &&
		           attempt + 1 < c->o.max_attempts) {
			retry = true;
		}
		if (!retry)
			return 0;
		attempt++;
		unsigned ms = reg_backoff_ms(attempt, c->o.backoff_base_ms, c->o.backoff_cap_ms);
		uint64_t ra;
		/* Retry-After in seconds (the HTTP-date form is ignored), within our cap. */
		if (resp->retry_after && kiln_parse_u64(resp->retry_after, &ra) == 0 &&
		    (ra = ra > 3600 ? 3600 : ra) * 1000 > ms)
			ms = ra * 1000 > c->o.backoff_cap_ms ? c->o.backoff_cap_ms
			                                     : (unsigned)(ra * 1000);
		sleep_ms(ms);
	}
}

/* ---- base URL ---- */

static void
set_base(struct reg_client *c, const char *scheme)
{
	c->scheme = kiln_xstrdup(scheme);
	c->base = kiln_xasprintf("%s://%s", scheme, c->api_host);
}

/* Note a challenge from the ping without fetching anything yet. */
static void
note_challenge(struct reg_client *c, const char *www_auth)
{
	struct reg_auth_challenge ch = {0};
	struct kiln_err e = KILN_ERR_INIT;
	if (!www_auth || reg_auth_challenge_parse(www_auth, &ch, &e) < 0) {
		kiln_err_release(&e);
		return;
	}
	if (strcasecmp(ch.scheme, "bearer") == 0 && ch.realm) {
		c->kind = AUTH_BEARER;
		free(c->realm);
		free(c->service);
		c->realm = TAKE_PTR(ch.realm);
		c->service = TAKE_PTR(ch.service);
	} else if (strcasecmp(ch.scheme, "basic") == 0 && c->user &&
	           kiln_str_eq(c->scheme, "https")) {
		c->kind = AUTH_BASIC;
	}
	reg_auth_challenge_release(&ch);
}

int
regc_ensure_base(struct reg_client *c, struct kiln_err *err)
{
	pthread_mutex_lock(&c->lock);
	bool done = c->base != NULL;
	pthread_mutex_unlock(&c->lock);
	if (done)
		return 0;
	_cleanup_resp_ struct resp resp = RESP_INIT;
	_cleanup_free_ char *https_url = kiln_xasprintf("https://%s/v2/", c->api_host);
	struct req req = {.method = "GET", .url = https_url, .fd = -1};
	for (unsigned attempt = 0;; attempt++) {
		http_once(c, &req, https_url, NULL, &resp);
		bool again = resp.cc != CURLE_OK
		                     ? cc_retryable(resp.cc) && resp.cc != CURLE_COULDNT_CONNECT
		                     : reg_http_status_retryable(resp.status);
		if (!again || attempt + 1 >= c->o.max_attempts)
			break;
		sleep_ms(reg_backoff_ms(attempt + 1, c->o.backoff_base_ms, c->o.backoff_cap_ms));
	}
	const char *scheme = "https";
	if (resp.cc != CURLE_OK) {
		_cleanup_free_ char *https_err = kiln_xstrdup(resp.errbuf);
		if (!c->o.insecure && !reg_host_is_loopback(c->api_host))
			return regc_err(err, EIO, "%s: %s", c->host, https_err);
		/* As Docker: a loopback or --insecure-registry host may speak plain HTTP. */
		_cleanup_free_ char *http_url = kiln_xasprintf("http://%s/v2/", c->api_host);
		http_once(c, &req, http_url, NULL, &resp);
		if (resp.cc != CURLE_OK || (resp.status != 200 && resp.status != 401))
			return regc_err(err, EIO, "%s: https: %s; http: %s", c->host, https_err,
			                resp.cc != CURLE_OK ? resp.errbuf : "not a registry");
		scheme = "http";
	}
	pthread_mutex_lock(&c->lock);
	if (!c->base) {
		set_base(c, scheme);
		if (resp.status == 401)
			note_challenge(c, resp.www_auth);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int
reg_client_ping(struct reg_client *c, struct kiln_err *err)
{
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = kiln_xasprintf("%s/v2/", c->base);
	struct req req = {.method = "GET", .url = url, .fd = -1};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status != 200)
		return status_error(c, &resp, "GET /v2/", err);
	return 0;
}

/* ---- manifests ---- */

static char *
scope_for(const char *repo, const char *actions)
{
	return kiln_xasprintf("repository:%s:%s", repo, actions);
}

static char *
api_url(struct reg_client *c, const char *repo, const char *kind, const char *ref,
        struct kiln_err *err)
{
	char *u = reg_url_v2(c->scheme, c->api_host, repo, kind, ref);
	if (!u)
		regc_err(err, EINVAL, "invalid repository or reference \"%s\" / \"%s\"", repo, ref);
	return u;
}

int
reg_client_get_manifest(struct reg_client *c, const char *repo, const char *ref,
                        struct kiln_buf *body, enum reg_kind *ret_kind,
                        char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = api_url(c, repo, "manifests", ref, err);
	if (!url)
		return -EINVAL;
	_cleanup_free_ char *scope = scope_for(repo, "pull");
	struct reg_limits lim = REG_LIMITS_INIT;
	struct req req = {.method = "GET",
	                  .url = url,
	                  .scope = scope,
	                  .accept = REG_MANIFEST_ACCEPT,
	                  .fd = -1,
	                  .body = body,
	                  .body_max = lim.max_manifest_bytes};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return kiln_err_wrap(err, "manifest %s:%s", repo, ref);
	_cleanup_free_ char *what =
	        kiln_xasprintf("manifest %s%s%s", repo, reg_ref_digest_valid(ref) ? "@" : ":", ref);
	if (resp.status != 200)
		return status_error(c, &resp, what, err);
	r = reg_media_detect(body->buf, body->len, resp.content_type, &lim, ret_kind, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s/%s", c->host, what);
	struct kiln_digest d;
	kiln_sha256_buf(body->buf, body->len, &d);
	kiln_digest_format(&d, ret_digest);
	if (kiln_str_has_prefix(ref, "sha256:") && !kiln_str_eq(ref, ret_digest))
		return regc_err(err, EBADMSG, "%s/%s: digest mismatch: got %s", c->host, what,
		                ret_digest);
	if (resp.digest && kiln_str_has_prefix(resp.digest, "sha256:") &&
	    !kiln_str_eq(resp.digest, ret_digest))
		return regc_err(err, EBADMSG,
		                "%s/%s: digest mismatch: the registry says %s, the bytes are %s",
		                c->host, what, resp.digest, ret_digest);
	return 0;
}

int
reg_client_head_manifest(struct reg_client *c, const char *repo, const char *ref,
                         char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = api_url(c, repo, "manifests", ref, err);
	if (!url)
		return -EINVAL;
	_cleanup_free_ char *scope = scope_for(repo, "pull");
	struct req req = {.method = "HEAD",
	                  .url = url,
	                  .scope = scope,
	                  .accept = REG_MANIFEST_ACCEPT,
	                  .fd = -1};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		_cleanup_free_ char *what = kiln_xasprintf("manifest %s:%s", repo, ref);
		r = status_error(c, &resp, what, err);
		/* Other 4xx: this registry does not do HEAD well; the caller may GET. */
		if (resp.status >= 400 && resp.status < 500 && resp.status != 401 &&
		    resp.status != 403 && resp.status != 404 && resp.status != 429) {
			err->code = EOPNOTSUPP;
			r = -EOPNOTSUPP;
		}
		return r;
	}
	ret_digest[0] = '\0';
	if (resp.digest && kiln_digest_valid(resp.digest))
		memcpy(ret_digest, resp.digest, KILN_DIGEST_HEX_LEN + 1);
	return 0;
}

int
reg_client_put_manifest(struct reg_client *c, const char *repo, const char *ref,
                        const char *media_type, const void *data, size_t len, struct kiln_err *err)
{
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = api_url(c, repo, "manifests", ref, err);
	if (!url)
		return -EINVAL;
	_cleanup_free_ char *scope = scope_for(repo, "pull,push");
	struct req req = {.method = "PUT",
	                  .url = url,
	                  .scope = scope,
	                  .content_type = media_type,
	                  .data = data,
	                  .len = len,
	                  .fd = -1,
	                  .no_redirect = true};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status != 201 && resp.status != 200) {
		_cleanup_free_ char *what = kiln_xasprintf("put manifest %s:%s", repo, ref);
		return status_error(c, &resp, what, err);
	}
	/* The registry must have stored exactly our bytes. */
	struct kiln_digest d;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(data, len, &d);
	kiln_digest_format(&d, hex);
	if (resp.digest && kiln_str_has_prefix(resp.digest, "sha256:") &&
	    !kiln_str_eq(resp.digest, hex))
		return regc_err(err, EBADMSG,
		                "%s: put manifest %s:%s: digest mismatch: sent %s, the registry "
		                "says %s",
		                c->host, repo, ref, hex, resp.digest);
	return 0;
}

/* ---- blobs ---- */

struct blob_sink {
	struct reg_client *c;
	struct reg_store *st;
	const char *digest;
	int64_t size;
	struct reg_ingest *in;
	int64_t offset; /* where this attempt's body starts */
	bool started;   /* body bytes seen in this attempt */
	const char *content_range;
	struct resp *resp;
	struct kiln_err *err;
};

static int
blob_sink(const char *p, size_t n, long status, void *ctx)
{
	struct blob_sink *s = ctx;
	if (!s->started) {
		s->started = true;
		if (status == 206) {
			/* "bytes START-END/TOTAL": it must continue where we stopped. */
			const char *cr = s->resp->content_range;
			long long start = -1;
			if (!cr || sscanf(cr, "bytes %lld-", &start) != 1 || start != s->offset)
				return regc_err(s->err, EPROTO,
				                "%s: blob %s: bad Content-Range \"%s\"", s->c->host,
				                s->digest, cr ? cr : "");
		} else if (s->offset > 0) {
			/* The server ignored Range: start over from byte 0. */
			reg_ingest_abort(s->in);
			s->in = NULL;
			s->offset = 0;
			int r = reg_ingest_begin(s->st, s->digest, s->size, &s->in, s->err);
			if (r < 0)
				return r;
		}
	}
	return reg_ingest_write(s->in, p, n, s->err);
}

int
reg_client_fetch_blob(struct reg_client *c, struct reg_store *st, const char *repo,
                      const char *digest, int64_t size, struct kiln_err *err)
{
	if (reg_blob_exists(st, digest))
		return 0;
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = api_url(c, repo, "blobs", digest, err);
	if (!url)
		return -EINVAL;
	_cleanup_free_ char *scope = scope_for(repo, "pull");
	_cleanup_resp_ struct resp resp = RESP_INIT;
	struct blob_sink s = {
	        .c = c, .st = st, .digest = digest, .size = size, .resp = &resp, .err = err};
	r = reg_ingest_begin(st, digest, size, &s.in, err);
	if (r < 0)
		return r;
	struct req req = {.method = "GET",
	                  .url = url,
	                  .scope = scope,
	                  .fd = -1,
	                  .sink = blob_sink,
	                  .sink_ctx = &s,
	                  .no_retry = true};
	for (unsigned attempt = 0;; attempt++) {
		s.offset = reg_ingest_offset(s.in);
		s.started = false;
		free(req.range);
		req.range =
		        s.offset > 0 ? kiln_xasprintf("bytes=%lld-", (long long)s.offset) : NULL;
		r = do_request(c, &req, &resp, err);
		bool again = false;
		if (r < 0) {
			/* A dropped connection: keep what arrived and ask for the rest. */
			again = !resp.sink_failed && resp.cc != CURLE_OK && cc_retryable(resp.cc);
		} else if (resp.status == 200 || resp.status == 206) {
			break;
		} else if (resp.status == 416 && s.offset > 0 && s.offset == size) {
			break; /* we had it all; the commit decides */
		} else if (reg_http_status_retryable(resp.status)) {
			again = true;
		} else {
			_cleanup_free_ char *what = kiln_xasprintf("blob %s", digest);
			r = status_error(c, &resp, what, err);
		}
		if (!again || attempt + 1 >= c->o.max_attempts) {
			if (r >= 0)
				r = status_error(c, &resp, digest, err);
			free(req.range);
			reg_ingest_abort(s.in);
			return r;
		}
		kiln_err_release(err);
		sleep_ms(reg_backoff_ms(attempt + 1, c->o.backoff_base_ms, c->o.backoff_cap_ms));
	}
	free(req.range);
	r = reg_ingest_commit(s.in, NULL, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s/%s: blob %s", c->host, repo, digest);
	return 0;
}

int
reg_client_blob_exists(struct reg_client *c, const char *repo, const char *digest,
                       struct kiln_err *err)
{
	int r = regc_ensure_base(c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = api_url(c, repo, "blobs", digest, err);
	if (!url)
		return -EINVAL;
	_cleanup_free_ char *scope = scope_for(repo, "pull,push");
	struct req req = {.method = "HEAD", .url = url, .scope = scope, .fd = -1};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status == 200)
		return 1;
	if (resp.status == 404)
		return 0;
	_cleanup_free_ char *what = kiln_xasprintf("blob %s", digest);
	return status_error(c, &resp, what, err);
}

/* POST to start an upload (or mount); writes the upload Location, or NULL when mounted. */
static int
upload_start(struct reg_client *c, const char *repo, const char *digest, const char *mount_from,
             const char *scope, char **ret_location, struct kiln_err *err)
{
	_cleanup_free_ char *url = api_url(c, repo, "blobs/uploads", "", err);
	if (!url)
		return -EINVAL;
	if (mount_from) {
		char *u = reg_url_add_query(url, "mount", digest);
		free(url);
		url = reg_url_add_query(u, "from", mount_from);
		free(u);
	}
	struct req req = {
	        .method = "POST", .url = url, .scope = scope, .fd = -1, .no_redirect = true};
	_cleanup_resp_ struct resp resp = RESP_INIT;
	int r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status == 201 && mount_from) {
		*ret_location = NULL;
		return 0;
	}
	if (resp.status != 202 || !resp.location)
		return status_error(c, &resp, "start blob upload", err);
	*ret_location = reg_url_resolve(url, resp.location);
	if (!*ret_location)
		return regc_err(err, EPROTO, "%s: bad upload location \"%s\"", c->host,
		                resp.location);
	return 0;
}

int
reg_client_push_blob(struct reg_client *c, struct reg_store *st, const char *repo,
                     const char *digest, const char *mount_from, struct kiln_err *err)
{
	int r = reg_client_blob_exists(c, repo, digest, err);
	if (r != 0)
		return r < 0 ? r : 0;
	int64_t size = reg_blob_size(st, digest, err);
	if (size < 0)
		return (int)size;
	_cleanup_close_ int fd = reg_blob_open(st, digest, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *scope =
	        mount_from ? kiln_xasprintf("repository:%s:pull,push repository:%s:pull", repo,
	                                    mount_from)
	                   : scope_for(repo, "pull,push");
	_cleanup_free_ char *loc = NULL;
	r = upload_start(c, repo, digest, mount_from, scope, &loc, err);
	if (r < 0 && mount_from) {
		/* A mount the token server or registry refuses is only a missed shortcut. */
		kiln_err_release(err);
		free(scope);
		scope = scope_for(repo, "pull,push");
		mount_from = NULL;
		r = upload_start(c, repo, digest, NULL, scope, &loc, err);
	}
	if (r < 0)
		return r;
	if (!loc)
		return 0; /* mounted */

	int64_t off = 0;
	_cleanup_resp_ struct resp resp = RESP_INIT;
	if (size > c->o.chunk_size) {
		while (off < size) {
			int64_t n = size - off > c->o.chunk_size ? c->o.chunk_size : size - off;
			_cleanup_free_ char *range = kiln_xasprintf("%lld-%lld", (long long)off,
			                                            (long long)(off + n - 1));
			struct req req = {.method = "PATCH",
			                  .url = loc,
			                  .scope = scope,
			                  .content_type = "application/octet-stream",
			                  .content_range = range,
			                  .fd = fd,
			                  .off = off,
			                  .flen = n,
			                  .no_redirect = true};
			r = do_request(c, &req, &resp, err);
			if (r < 0)
				return r;
			if (resp.status != 202)
				return status_error(c, &resp, "upload blob chunk", err);
			if (resp.location) {
				char *next = reg_url_resolve(loc, resp.location);
				if (!next)
					return regc_err(err, EPROTO,
					                "%s: bad upload location \"%s\"", c->host,
					                resp.location);
				free(loc);
				loc = next;
			}
			off += n;
		}
	}
	_cleanup_free_ char *put_url = reg_url_add_query(loc, "digest", digest);
	struct req req = {.method = "PUT",
	                  .url = put_url,
	                  .scope = scope,
	                  .content_type = "application/octet-stream",
	                  .fd = fd,
	                  .off = off,
	                  .flen = size - off,
	                  .no_redirect = true};
	r = do_request(c, &req, &resp, err);
	if (r < 0)
		return r;
	if (resp.status != 201) {
		_cleanup_free_ char *what = kiln_xasprintf("upload blob %s", digest);
		return status_error(c, &resp, what, err);
	}
	if (resp.digest && !kiln_str_eq(resp.digest, digest))
		return regc_err(err, EBADMSG, "%s: upload blob %s: the registry stored %s", c->host,
		                digest, resp.digest);
	return 1;
}
