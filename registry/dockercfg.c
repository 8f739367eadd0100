/* Docker's config.json "auths": where `docker login` (and `kiln login`) keep credentials. */
#include "registry/reg.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#define HUB_KEY "https://index.docker.io/v1/"

char *
reg_dockercfg_default_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG");
	if (dir && *dir)
		return kiln_xasprintf("%s/config.json", dir);
	const char *home = getenv("HOME");
	return kiln_xasprintf("%s/.docker/config.json", home && *home ? home : "/root");
}

static bool
is_hub(const char *host)
{
	return kiln_str_eq(host, "docker.io") || kiln_str_eq(host, "index.docker.io") ||
	       kiln_str_eq(host, "registry-1.docker.io");
}

char *
reg_dockercfg_key(const char *host)
{
	return kiln_xstrdup(is_hub(host) ? HUB_KEY : host);
}

/* The host part of an "auths" key, as Docker's ConvertToHostname: drop the scheme and
 * anything after the first '/'. */
static char *
key_host(const char *key)
{
	if (kiln_str_has_prefix(key, "http://"))
		key += 7;
	else if (kiln_str_has_prefix(key, "https://"))
		key += 8;
	return kiln_xstrndup(key, strcspn(key, "/"));
}

static bool
key_matches(const char *key, const char *host)
{
	_cleanup_free_ char *kh = key_host(key);
	if (is_hub(host))
		return is_hub(kh);
	return kiln_str_eq(kh, host);
}

static int
load(const char *path, json_t **ret, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret = NULL;
			return 0;
		}
		return kiln_err_set(err, errno, "open %s", path);
	}
	int r = kiln_buf_read_fd(&b, fd, err);
	if (r < 0)
		return kiln_err_wrap(err, "read %s", path);
	json_error_t jerr;
	json_t *root = json_loadb(b.buf, b.len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return kiln_err_invalid(err, "%s: not a JSON object (%s)", path,
		                        root ? "wrong type" : jerr.text);
	}
	*ret = root;
	return 0;
}

static int
decode_auth(const char *path, const char *b64, char **ret_user, char **ret_pass,
            struct kiln_err *err)
{
	size_t n = strlen(b64);
	_cleanup_free_ unsigned char *plain = kiln_xmalloc(n / 4 * 3 + 4);
	int len = n ? EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n) : 0;
	if (len < 0 || n % 4)
		return kiln_err_invalid(err, "%s: \"auth\" is not valid base64", path);
	/* EVP_DecodeBlock counts the '=' padding as zero bytes. */
	while (n > 0 && b64[n - 1] == '=') {
		n--;
		len--;
	}
	plain[len] = '\0';
	char *colon = memchr(plain, ':', len);
	if (!colon)
		return kiln_err_invalid(err, "%s: \"auth\" is not user:password", path);
	*ret_user = kiln_xstrndup((char *)plain, colon - (char *)plain);
	*ret_pass = kiln_xstrndup(colon + 1, (char *)plain + len - colon - 1);
	return 0;
}

int
reg_dockercfg_get(const char *path, const char *host, char **ret_user, char **ret_pass,
                  struct kiln_err *err)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load(path, &root, err);
	if (r < 0)
		return r;
	json_t *auths = root ? json_object_get(root, "auths") : NULL;
	if (!json_is_object(auths))
		return 0;
	/* An exact key wins over one that only matches after normalising. */
	_cleanup_free_ char *want = reg_dockercfg_key(host);
	json_t *entry = json_object_get(auths, want);
	if (!entry) {
		const char *k;
		json_t *v;
		json_object_foreach(auths, k, v)
		{
			if (key_matches(k, host)) {
				entry = v;
				break;
			}
		}
	}
	if (!json_is_object(entry))
		return 0;
	const char *b64 = json_string_value(json_object_get(entry, "auth"));
	if (b64 && *b64) {
		r = decode_auth(path, b64, ret_user, ret_pass, err);
		return r < 0 ? r : 1;
	}
	const char *u = json_string_value(json_object_get(entry, "username"));
	const char *p = json_string_value(json_object_get(entry, "password"));
	if (u && p) {
		*ret_user = kiln_xstrdup(u);
		*ret_pass = kiln_xstrdup(p);
		return 1;
	}
	return 0;
}

static int
mkdir_parents(const char *path, struct kiln_err *err)
{
	_cleanup_free_ char *dir = kiln_xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "mkdir %s", dir);
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "mkdir %s", dir);
	return 0;
}

static int
store(const char *path, json_t *root, struct kiln_err *err)
{
	int r = mkdir_parents(path, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!text)
		return kiln_err_set(err, ENOMEM, "encode %s", path);
	_cleanup_free_ char *tmp = kiln_xasprintf("%s.tmp-XXXXXX", path);
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "create %s", tmp);
	size_t len = strlen(text);
	bool ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len &&
	          write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	if (!ok || rename(tmp, path) < 0) {
		r = kiln_err_set(err, errno ? errno : EIO, "write %s", path);
		unlink(tmp);
		return r;
	}
	return 0;
}

int
reg_dockercfg_set(const char *path, const char *host, const char *user, const char *pass,
                  struct kiln_err *err)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load(path, &root, err);
	if (r < 0)
		return r;
	if (!root)
		root = json_object();
	json_t *auths = json_object_get(root, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(root, "auths", auths);
	}
	_cleanup_free_ char *basic = reg_auth_basic_header(user, pass);
	_cleanup_free_ char *key = reg_dockercfg_key(host);
	json_t *entry = json_object_get(auths, key);
	if (!json_is_object(entry)) {
		entry = json_object();
		json_object_set_new(auths, key, entry);
	}
	json_object_del(entry, "username");
	json_object_del(entry, "password");
	json_object_set_new(entry, "auth", json_string(basic + strlen("Basic ")));
	return store(path, root, err);
}

int
reg_dockercfg_remove(const char *path, const char *host, struct kiln_err *err)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load(path, &root, err);
	if (r < 0)
		return r;
	json_t *auths = root ? json_object_get(root, "auths") : NULL;
	bool removed = false;
	if (json_is_object(auths)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(auths, tmp, k, v)
		{
			if (key_matches(k, host)) {
				json_object_del(auths, k);
				removed = true;
			}
		}
	}
	if (!removed)
		return kiln_err_set(err, ENOENT, "not logged in to %s", host);
	return store(path, root, err);
}
