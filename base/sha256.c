/*
 * SHA-256 for kiln plan's vertex digests, with the x86-64 SHA extensions where the CPU
 * has them and OpenSSL's SHA-256 elsewhere.
 *
 * kiln plan needs no other cryptography, and mapping and relocating libcrypto (21,000
 * relocations) was 0.7 ms of every start of kiln; libcrypto is now loaded on first use
 * (base/crypto_lazy.c), which on CPUs with the SHA extensions a plan never makes. With
 * them, these instructions are what OpenSSL uses too; without them OpenSSL's vectorised
 * code is twice as fast as plain C would be, worth loading it for. Same digests either
 * way (tests/base/test_base.c compares them).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "base.h"

#include <openssl/sha.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <pthread.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct kiln_sha256_ctx *)0)->u.openssl),
               "kiln_sha256_ctx holds a SHA256_CTX");

#if defined(__x86_64__)
static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
};

/* Four rounds at a time with the SHA extensions; the state is kept as ABEF and CDGH, the
 * layout sha256rnds2 wants, and the message schedule as four vectors of four words. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
blocks_shani(uint32_t h[8], const unsigned char *p, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
	__m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);         /* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);         /* EFGH */
	__m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
	st1 = _mm_blend_epi16(st1, tmp, 0xF0);      /* CDGH */
	for (; nblocks--; p += 64) {
		__m128i abef = st0, cdgh = st1, w[4];
		for (int g = 0; g < 16; g++) {
			__m128i m;
			if (g < 4) {
				m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)),
				                     bswap);
			} else {
				/* W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2]) */
				m = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
				m = _mm_add_epi32(
				        m, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
				m = _mm_sha256msg2_epu32(m, w[(g + 3) & 3]);
			}
			w[g & 3] = m;
			__m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);
			__m128i mk = _mm_add_epi32(m, k);
			st1 = _mm_sha256rnds2_epu32(st1, st0, mk);
			st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(mk, 0x0E));
		}
		st0 = _mm_add_epi32(st0, abef);
		st1 = _mm_add_epi32(st1, cdgh);
	}
	tmp = _mm_shuffle_epi32(st0, 0x1B);    /* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);    /* DCHG */
	st0 = _mm_blend_epi16(tmp, st1, 0xF0); /* DCBA */
	st1 = _mm_alignr_epi8(st1, tmp, 8);    /* HGFE */
	_mm_storeu_si128((__m128i *)&h[0], st0);
	_mm_storeu_si128((__m128i *)&h[4], st1);
}

static bool have_shani;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void
detect(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
		return;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	have_shani = (b & bit_SHA) != 0;
}
#endif

/* Whether the SHA extensions are there; without them OpenSSL's SHA-256 is used. */
static bool
shani(void)
{
#if defined(__x86_64__)
	pthread_once(&detect_once, detect);
	return have_shani;
#else
	return false;
#endif
}

void
kiln_sha256_ctx_init(struct kiln_sha256_ctx *ctx)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	ctx->openssl = !shani();
	if (ctx->openssl) {
		SHA256_Init((SHA256_CTX *)ctx->u.openssl);
		return;
	}
	memcpy(ctx->u.own.h, iv, sizeof(iv));
	ctx->u.own.len = 0;
	ctx->u.own.n = 0;
}

void
kiln_sha256_ctx_update(struct kiln_sha256_ctx *ctx, const void *data, size_t len)
{
	if (ctx->openssl) {
		SHA256_Update((SHA256_CTX *)ctx->u.openssl, data, len);
		return;
	}
#if defined(__x86_64__)
	struct kiln_sha256_own *o = &ctx->u.own;
	const unsigned char *p = data;
	o->len += len;
	if (o->n) {
		size_t k = 64 - o->n < len ? 64 - o->n : len;
		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		len -= k;
		if (o->n < 64)
			return;
		blocks_shani(o->h, o->buf, 1);
		o->n = 0;
	}
	if (len >= 64) {
		blocks_shani(o->h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	memcpy(o->buf, p, len);
	o->n = len;
#endif
}

void
kiln_sha256_ctx_final(struct kiln_sha256_ctx *ctx, struct kiln_digest *out)
{
	if (ctx->openssl) {
		SHA256_Final(out->bytes, (SHA256_CTX *)ctx->u.openssl);
		return;
	}
	struct kiln_sha256_own *o = &ctx->u.own;
	uint64_t bits = o->len * 8;
	unsigned char pad[72] = {0x80};
	size_t padlen = (o->n < 56 ? 56 : 120) - o->n;
	for (int i = 0; i < 8; i++)
		pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
	kiln_sha256_ctx_update(ctx, pad, padlen + 8);
	for (int i = 0; i < 8; i++) {
		out->bytes[4 * i] = (unsigned char)(o->h[i] >> 24);
		out->bytes[4 * i + 1] = (unsigned char)(o->h[i] >> 16);
		out->bytes[4 * i + 2] = (unsigned char)(o->h[i] >> 8);
		out->bytes[4 * i + 3] = (unsigned char)o->h[i];
	}
}
