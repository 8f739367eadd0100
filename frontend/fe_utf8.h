/*
 * Internal: UTF-8 decoding as Go's utf8.DecodeRune does it, so the frontend treats bad
 * bytes exactly as BuildKit: an invalid or truncated sequence is U+FFFD of width 1.
 */
#ifndef KILN_FE_UTF8_H
#define KILN_FE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define FE_RUNE_ERROR 0xFFFD

/* Decode the rune at s[0..n) (n > 0); *width gets its length in bytes (>= 1). */
static inline int32_t
fe_utf8_decode(const char *str, size_t n, size_t *width)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	*width = 1;
	if (c < 0x80)
		return c;
	size_t len;
	int32_t r, min;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		r = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		r = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		r = c & 0x07;
		min = 0x10000;
	} else {
		return FE_RUNE_ERROR;
	}
	if (n < len)
		return FE_RUNE_ERROR;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return FE_RUNE_ERROR;
		r = (r << 6) | (s[i] & 0x3F);
	}
	if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		return FE_RUNE_ERROR;
	*width = len;
	return r;
}

#endif
