/*
 * Internal: UTF-8 decoding and white space exactly as Go has them (utf8.DecodeRune,
 * unicode.IsSpace), so the frontend treats bad bytes and odd spaces as BuildKit does: an
 * invalid, truncated, overlong or surrogate sequence is U+FFFD of width 1.
 */
#ifndef KILN_FE_UTF8_H
#define KILN_FE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FE_RUNE_ERROR 0xFFFDu

/* Decode one rune at s (n > 0 bytes left) as Go's utf8.DecodeRune: an invalid, truncated,
 * overlong or surrogate sequence gives U+FFFD with width 1. Returns the width. */
static inline size_t
fe_utf8_decode(const char *str, size_t n, uint32_t *r)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	if (c < 0x80) {
		*r = c;
		return 1;
	}
	*r = FE_RUNE_ERROR;
	if (c < 0xC2 || c > 0xF4)
		return 1;
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 1;
		*r = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
		return 2;
	}
	if (c < 0xF0) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
			return 1;
		*r = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
		return 3;
	}
	unsigned char lo = 0x80, hi = 0xBF;
	if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
		return 1;
	*r = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
	     ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
	return 4;
}

/* Go unicode.IsSpace. */
static inline bool
fe_is_space(uint32_t r)
{
	switch (r) {
	case '\t':
	case '\n':
	case '\v':
	case '\f':
	case '\r':
	case ' ':
	case 0x85:
	case 0xA0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202F:
	case 0x205F:
	case 0x3000:
		return true;
	default:
		return r >= 0x2000 && r <= 0x200A;
	}
}

/* The same decoder for callers that want the rune back: returns it, *width its length. */
static inline int32_t
fe_utf8_rune(const char *s, size_t n, size_t *width)
{
	uint32_t r;
	*width = fe_utf8_decode(s, n, &r);
	return (int32_t)r;
}

#endif
