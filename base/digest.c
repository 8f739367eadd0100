/* SHA-256 through OpenSSL's EVP interface, and the "sha256:<hex>" digest strings. */
#include "base.h"

#include <openssl/evp.h>
#include <pthread.h>

struct kiln_sha256 {
	EVP_MD_CTX *md;
};

/* EVP_sha256() makes OpenSSL 3 look the implementation up again on every init; fetch it
 * once. The method is immutable and shared by every thread after this. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? sha256_md : EVP_sha256();
}

struct kiln_sha256 *
kiln_sha256_new(void)
{
	struct kiln_sha256 *ctx = kiln_xmalloc(sizeof(*ctx));
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || EVP_DigestInit_ex(ctx->md, sha256(), NULL) != 1) {
		fprintf(stderr, "kiln: OpenSSL cannot provide SHA-256\n");
		abort();
	}
	return ctx;
}

void
kiln_sha256_update(struct kiln_sha256 *ctx, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(ctx->md, data, len);
}

void
kiln_sha256_final(struct kiln_sha256 *ctx, struct kiln_digest *out)
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx->md, out->bytes, &n);
	kiln_sha256_free(ctx);
}

void
kiln_sha256_free(struct kiln_sha256 *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

void
kiln_sha256_buf(const void *data, size_t len, struct kiln_digest *out)
{
	unsigned int n = 0;
	EVP_Digest(data, len, out->bytes, &n, sha256(), NULL);
}

void
kiln_digest_format(const struct kiln_digest *d, char out[KILN_DIGEST_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[d->bytes[i] >> 4];
		out[8 + 2 * i] = hex[d->bytes[i] & 15];
	}
	out[KILN_DIGEST_HEX_LEN] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool
kiln_digest_valid(const char *s)
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != KILN_DIGEST_HEX_LEN)
		return false;
	for (size_t i = 7; i < KILN_DIGEST_HEX_LEN; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

int
kiln_digest_parse(const char *s, struct kiln_digest *out, struct kiln_err *err)
{
	if (!kiln_digest_valid(s))
		return kiln_err_invalid(err, "invalid digest `%s`: want sha256: and 64 lowercase hex digits", s);
	for (size_t i = 0; i < 32; i++)
		out->bytes[i] = (uint8_t)(hexval(s[7 + 2 * i]) << 4 | hexval(s[8 + 2 * i]));
	return 0;
}
