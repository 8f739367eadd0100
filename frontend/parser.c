/*
 * The Dockerfile parser: text -> one fe_node per instruction, exactly as BuildKit's
 * frontend/dockerfile/parser splits lines, directives, flags, arguments and heredocs (the
 * contract is shared/spec/parse-dump.md). Go strings may hold any byte, so every string here
 * is handled with its length; the tree keeps lengths next to its C strings.
 *
 * The work is linear in the input: each physical line is visited once (continuations are
 * appended to one buffer), and the heredoc lexer only runs on RUN/ADD/COPY lines that
 * contain "<<".
 */
#include "parser.h"
#include "unicode_print.h"

#include <limits.h>

#define MAX_LINE      65535 /* Go's bufio.Scanner token limit, minus the newline */
#define JSON_MAXDEPTH 10000 /* Go encoding/json's nesting limit */
#define LEX_MAXDEPTH  1000  /* ${...} nesting the heredoc lexer follows (Go has no limit) */
#define RUNE_EOF      UINT32_MAX

struct str {
	const char *p;
	size_t n;
};

struct strvec {
	struct str *v;
	size_t n, alloc;
};

static void
strvec_push(struct strvec *sv, const char *p, size_t n)
{
	KILN_GROW(sv->v, sv->alloc, sv->n + 1);
	sv->v[sv->n++] = (struct str){p, n};
}

enum kind {
	K_UNKNOWN,
	K_ADD,
	K_ARG,
	K_CMD,
	K_COPY,
	K_ENTRYPOINT,
	K_ENV,
	K_EXPOSE,
	K_FROM,
	K_HEALTHCHECK,
	K_LABEL,
	K_MAINTAINER,
	K_ONBUILD,
	K_RUN,
	K_SHELL,
	K_STOPSIGNAL,
	K_USER,
	K_VOLUME,
	K_WORKDIR,
};

static const struct {
	const char *name;
	size_t len;
	enum kind kind;
} kinds[] = {
        {"add", 3, K_ADD},
        {"arg", 3, K_ARG},
        {"cmd", 3, K_CMD},
        {"copy", 4, K_COPY},
        {"entrypoint", 10, K_ENTRYPOINT},
        {"env", 3, K_ENV},
        {"expose", 6, K_EXPOSE},
        {"from", 4, K_FROM},
        {"healthcheck", 11, K_HEALTHCHECK},
        {"label", 5, K_LABEL},
        {"maintainer", 10, K_MAINTAINER},
        {"onbuild", 7, K_ONBUILD},
        {"run", 3, K_RUN},
        {"shell", 5, K_SHELL},
        {"stopsignal", 10, K_STOPSIGNAL},
        {"user", 4, K_USER},
        {"volume", 6, K_VOLUME},
        {"workdir", 7, K_WORKDIR},
};

static enum kind
kind_of(const char *name, size_t n)
{
	/* The first letter before memcmp: a call per candidate showed in profiles. */
	for (size_t i = 0; i < KILN_ARRAY_SIZE(kinds); i++)
		if (kinds[i].len == n && kinds[i].name[0] == name[0] &&
		    memcmp(kinds[i].name, name, n) == 0)
			return kinds[i].kind;
	return K_UNKNOWN;
}

struct parser {
	struct fe_ast *ast;
	struct kiln_arena *arena;
	const char *file;
	const char *data;
	size_t len, pos;
	int lineno; /* physical lines read so far */
	char escape;
	bool directives_done;
	bool seen_escape, seen_syntax, seen_check;
	struct kiln_err *err;
	struct fe_node *nodes;
	size_t nnodes, nodes_alloc;
	struct kiln_buf line; /* the logical line being built */
	struct kiln_buf tmp;
	struct strvec args, flags, words;
	int start_line;
};

/* ---- small helpers with Go's semantics ---- */

/* The regexp class [\t\v\f\r ] BuildKit splits on. */
static inline bool
is_w(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* unicode.IsSpace(rune(b)) of a single byte taken as U+00xx (BuildKit's byte loops). */
static inline bool
is_byte_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0;
}

/* Regexp \s (RE2 Perl class): [\t\n\f\r ], no \v. */
static inline bool
is_re_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* Length of the leading Unicode white space (bytes.TrimLeftFunc(s, unicode.IsSpace)). */
static size_t
lspace_len(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint32_t r;
		size_t w = fe_utf8_decode(s + i, n - i, &r);
		if (w == 1 && r == FE_RUNE_ERROR)
			break;
		if (!fe_is_space(r))
			break;
		i += w;
	}
	return i;
}

/* Length of the trailing Unicode white space: every space rune's encoding ends in bytes that
 * Go's DecodeLastRune would decode back to that rune, so matching suffixes is exact. */
static size_t
rspace_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t e = n;
	for (;;) {
		if (e >= 1 && (is_w(s[e - 1]) || s[e - 1] == '\n')) {
			e--;
		} else if (e >= 2 && s[e - 2] == 0xC2 && (s[e - 1] == 0x85 || s[e - 1] == 0xA0)) {
			e -= 2;
		} else if (e >= 3) {
			unsigned a = s[e - 3], b = s[e - 2], c = s[e - 1];
			bool sp =
			        (a == 0xE1 && b == 0x9A && c == 0x80) ||
			        (a == 0xE2 && b == 0x80 &&
			         (c <= 0x8A || c == 0xA8 || c == 0xA9 || c == 0xAF) && c >= 0x80) ||
			        (a == 0xE2 && b == 0x81 && c == 0x9F) ||
			        (a == 0xE3 && b == 0x80 && c == 0x80);
			if (!sp)
				break;
			e -= 3;
		} else {
			break;
		}
	}
	return n - e;
}

/* strings.TrimSpace */
static void
trim_space(const char **s, size_t *n)
{
	size_t l = lspace_len(*s, *n);
	*s += l;
	*n -= l;
	*n -= rspace_len(*s, *n);
}

/* Appending one character is the parser's inner loop: skip kiln_buf's out-of-line calls
 * while the buffer has room (kiln_buf keeps one byte for the NUL). */
static inline void
put_rune(struct kiln_buf *b, uint32_t r)
{
	if (r < 0x80 && b->len + 2 <= b->alloc) {
		b->buf[b->len++] = (char)r;
		b->buf[b->len] = '\0';
	} else {
		kiln_buf_add_rune(b, r);
	}
}

static const char *
arena_dup(struct parser *p, const char *s, size_t n)
{
	return kiln_arena_strndup(p->arena, s, n);
}

static const char *
mem_find(const char *s, size_t n, const char *needle, size_t nn)
{
	return memmem(s, n, needle, nn);
}

/* ---- physical lines ---- */

/* The next physical line without its '\n' (the BOM dropped from the first). Returns 1, 0 at
 * the end of the input, or -EINVAL for a line longer than Go's scanner accepts. */
static int
next_line(struct parser *p, const char **ret, size_t *ret_len, bool *had_nl)
{
	if (p->pos >= p->len)
		return 0;
	const char *start = p->data + p->pos;
	const char *nl = memchr(start, '\n', p->len - p->pos);
	size_t l = nl ? (size_t)(nl - start) : p->len - p->pos;
	p->lineno++;
	if (l > MAX_LINE)
		return kiln_err_at(p->err, p->file, p->lineno, 0, "line too long (over %d bytes)",
		                   MAX_LINE);
	p->pos += l + (nl ? 1 : 0);
	if (p->lineno == 1 && l >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
		start += 3;
		l -= 3;
	}
	*ret = start;
	*ret_len = l;
	if (had_nl)
		*had_nl = nl != NULL;
	return 1;
}

/* bytes.TrimRight(line, "\r\n") */
static size_t
trim_newline(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	return n;
}

static bool
is_comment(const char *s, size_t n)
{
	size_t l = lspace_len(s, n);
	return l < n && s[l] == '#';
}

/* The continuation regexp `([^E])E[ \t]*$|^E[ \t]*$`: drop E and what follows it. */
static bool
trim_continuation(const struct parser *p, const char *s, size_t *n)
{
	size_t e = *n;
	while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	if (e == 0 || s[e - 1] != p->escape)
		return false;
	if (e >= 2 && s[e - 2] == p->escape)
		return false;
	*n = e - 1;
	return true;
}

/* ---- parser directives ---- */

static int
directive(struct parser *p, const char *s, size_t n)
{
	/* ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ */
	size_t i = 0;
	if (n == 0 || s[0] != '#')
		goto done;
	i = 1;
	while (i < n && is_re_space(s[i]))
		i++;
	size_t ks = i;
	if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		goto done;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
	                 (s[i] >= '0' && s[i] <= '9')))
		i++;
	size_t ke = i;
	while (i < n && is_re_space(s[i]))
		i++;
	if (i >= n || s[i] != '=')
		goto done;
	i++;
	if (i >= n)
		goto done;
	size_t vs = i, ve = n;
	while (vs < n && is_re_space(s[vs]))
		vs++;
	if (vs == n) {
		/* All blanks: the lazy (.+?) still takes the last one. */
		vs = n - 1;
	} else {
		while (ve > vs && is_re_space(s[ve - 1]))
			ve--;
	}
	char key[16];
	size_t kl = ke - ks;
	if (kl >= sizeof(key))
		goto done;
	for (size_t k = 0; k < kl; k++)
		key[k] = (char)(s[ks + k] | 0x20);
	key[kl] = 0;
	bool *seen;
	if (kiln_str_eq(key, "escape"))
		seen = &p->seen_escape;
	else if (kiln_str_eq(key, "syntax"))
		seen = &p->seen_syntax;
	else if (kiln_str_eq(key, "check"))
		seen = &p->seen_check;
	else
		goto done;
	if (*seen)
		return kiln_err_at(p->err, p->file, p->lineno, 0,
		                   "only one %s parser directive can be used", key);
	*seen = true;
	const char *v = s + vs;
	size_t vl = ve - vs;
	if (kiln_str_eq(key, "escape")) {
		if (vl != 1 || (v[0] != '\\' && v[0] != '`')) {
			kiln_buf_reset(&p->tmp);
			fe_go_quote(&p->tmp, v, vl);
			return kiln_err_at(
			        p->err, p->file, p->lineno, 0,
			        "invalid escape directive value %s: must be \\ or backtick",
			        p->tmp.buf);
		}
		p->escape = v[0];
		p->ast->escape = v[0];
	} else if (kiln_str_eq(key, "syntax")) {
		p->ast->syntax = arena_dup(p, v, vl);
		kiln_strv_pushf(&p->ast->warnings,
		                "%s:%d: syntax directive ignored: kiln has its own frontend",
		                p->file, p->lineno);
	} else {
		p->ast->check = arena_dup(p, v, vl);
	}
	return 0;
done:
	p->directives_done = true;
	return 0;
}

/* ---- flags: BuildKit's extractBuilderFlags, byte by byte ---- */

static void
extract_flags(struct parser *p, const char *line, size_t n, const char **rest, size_t *rest_len)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	struct kiln_buf *w = &p->tmp;
	bool blank_ok = false;
	unsigned char quote = 0;
	const unsigned char E = (unsigned char)p->escape;

	kiln_buf_reset(w);
	for (size_t pos = 0; pos <= n; pos++) {
		unsigned char ch = pos < n ? (unsigned char)line[pos] : 0;
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (is_byte_space(ch))
				continue;
			if (ch != '-' || pos + 1 == n || line[pos + 1] != '-') {
				*rest = line + pos;
				*rest_len = n - pos;
				return;
			}
			phase = WORD;
		}
		if (pos == n) {
			bool dashdash = w->len == 2 && memcmp(w->buf, "--", 2) == 0;
			if (!dashdash && (blank_ok || w->len > 0))
				strvec_push(&p->flags, arena_dup(p, w->buf, w->len), w->len);
			break;
		}
		if (phase == WORD) {
			if (is_byte_space(ch)) {
				phase = SPACES;
				if (w->len == 2 && memcmp(w->buf, "--", 2) == 0) {
					*rest = line + pos;
					*rest_len = n - pos;
					return;
				}
				if (blank_ok || w->len > 0)
					strvec_push(&p->flags, arena_dup(p, w->buf, w->len),
					            w->len);
				kiln_buf_reset(w);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = QUOTE;
				continue;
			}
			if (ch == E) {
				if (pos + 1 == n)
					continue;
				ch = (unsigned char)line[++pos];
			}
			put_rune(w, ch);
			continue;
		}
		/* QUOTE */
		if (ch == quote) {
			phase = WORD;
			continue;
		}
		if (ch == E) {
			if (pos + 1 == n) {
				phase = WORD;
				continue;
			}
			ch = (unsigned char)line[++pos];
		}
		put_rune(w, ch);
	}
	*rest = line + n;
	*rest_len = 0;
}

/* ---- words: BuildKit's parseWords (ARG, ENV, LABEL); quotes and escapes are kept ---- */

static void
parse_words(struct parser *p, const char *s, size_t n)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	struct kiln_buf *w = &p->tmp;
	bool blank_ok = false;
	uint32_t quote = 0, ch = 0;
	size_t width = 0;
	const uint32_t E = (unsigned char)p->escape;

	p->words.n = 0;
	kiln_buf_reset(w);
	for (size_t pos = 0; pos <= n; pos += width) {
		if (pos != n)
			width = fe_utf8_decode(s + pos, n - pos, &ch);
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (fe_is_space(ch))
				continue;
			phase = WORD;
		}
		if (pos == n) {
			if (blank_ok || w->len > 0)
				strvec_push(&p->words, arena_dup(p, w->buf, w->len), w->len);
			break;
		}
		if (phase == WORD) {
			if (fe_is_space(ch)) {
				phase = SPACES;
				if (blank_ok || w->len > 0)
					strvec_push(&p->words, arena_dup(p, w->buf, w->len),
					            w->len);
				kiln_buf_reset(w);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = QUOTE;
			}
			if (ch == E) {
				if (pos + width == n)
					continue;
				put_rune(w, ch);
				pos += width;
				width = fe_utf8_decode(s + pos, n - pos, &ch);
			}
			put_rune(w, ch);
			continue;
		}
		/* QUOTE */
		if (ch == quote)
			phase = WORD;
		if (ch == E && quote != '\'') {
			if (pos + width == n) {
				phase = WORD;
				continue;
			}
			pos += width;
			put_rune(w, ch);
			width = fe_utf8_decode(s + pos, n - pos, &ch);
		}
		put_rune(w, ch);
	}
}

/* ---- JSON arrays, with Go encoding/json's grammar and string decoding ---- */

struct json {
	const char *s;
	size_t n, i;
};

static void
js_ws(struct json *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
	                       j->s[j->i] == '\r'))
		j->i++;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at s[i..]; -1 when not. */
static int32_t
js_u4(const struct json *j, size_t i)
{
	if (i + 4 > j->n)
		return -1;
	int32_t v = 0;
	for (size_t k = 0; k < 4; k++) {
		int h = hexval(j->s[i + k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* A string at j->i (which is '"'); decoded into out when out is not NULL. */
static bool
js_string(struct json *j, struct kiln_buf *out)
{
	j->i++;
	while (j->i < j->n) {
		unsigned char c = (unsigned char)j->s[j->i];
		if (c == '"') {
			j->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (j->i + 1 >= j->n)
				return false;
			char e = j->s[j->i + 1];
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e && simple) {
				static const char dec[] = "\"\\/\b\f\n\r\t";
				if (out)
					put_rune(out, (unsigned char)dec[simple - "\"\\/bfnrt"]);
				j->i += 2;
				continue;
			}
			if (e != 'u')
				return false;
			int32_t r = js_u4(j, j->i + 2);
			if (r < 0)
				return false;
			j->i += 6;
			if (r >= 0xD800 && r <= 0xDFFF) {
				int32_t r2 = -1;
				if (r < 0xDC00 && j->i + 1 < j->n && j->s[j->i] == '\\' &&
				    j->s[j->i + 1] == 'u')
					r2 = js_u4(j, j->i + 2);
				if (r2 >= 0xDC00 && r2 <= 0xDFFF) {
					r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
					j->i += 6;
				} else {
					r = 0xFFFD;
				}
			}
			if (out)
				put_rune(out, (uint32_t)r);
			continue;
		}
		if (c < 0x80) {
			if (out)
				put_rune(out, c);
			j->i++;
			continue;
		}
		uint32_t r;
		size_t w = fe_utf8_decode(j->s + j->i, j->n - j->i, &r);
		if (out) {
			if (w == 1 && r == FE_RUNE_ERROR)
				put_rune(out, 0xFFFD);
			else
				kiln_buf_add(out, j->s + j->i, w);
		}
		j->i += w;
	}
	return false;
}

static bool
js_digits(struct json *j)
{
	size_t st = j->i;
	while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > st;
}

static bool
js_number(struct json *j)
{
	if (j->s[j->i] == '-')
		j->i++;
	if (j->i >= j->n)
		return false;
	if (j->s[j->i] == '0')
		j->i++;
	else if (!js_digits(j))
		return false;
	if (j->i < j->n && j->s[j->i] == '.') {
		j->i++;
		if (!js_digits(j))
			return false;
	}
	if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

/* An object key and its colon. */
static bool
js_key(struct json *j)
{
	js_ws(j);
	if (j->i >= j->n || j->s[j->i] != '"' || !js_string(j, NULL))
		return false;
	js_ws(j);
	if (j->i >= j->n || j->s[j->i] != ':')
		return false;
	j->i++;
	return true;
}

/* Validate one JSON value nested `depth` levels deep. Iterative, with an explicit stack of
 * open containers, so that 10,000 levels cost no C stack. */
static bool
js_value(struct json *j, int depth)
{
	char stack[JSON_MAXDEPTH];
	int sp = 0;

	for (;;) {
		js_ws(j);
		if (j->i >= j->n)
			return false;
		char c = j->s[j->i];
		if (c == '[' || c == '{') {
			if (depth + sp + 1 > JSON_MAXDEPTH)
				return false;
			j->i++;
			js_ws(j);
			if (j->i < j->n && j->s[j->i] == (c == '[' ? ']' : '}')) {
				j->i++;
			} else {
				stack[sp++] = c;
				if (c == '{' && !js_key(j))
					return false;
				continue;
			}
		} else if (c == '"') {
			if (!js_string(j, NULL))
				return false;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (!js_number(j))
				return false;
		} else {
			static const char *const lits[] = {"true", "false", "null"};
			size_t k;
			for (k = 0; k < 3; k++) {
				size_t l = strlen(lits[k]);
				if (j->n - j->i >= l && memcmp(j->s + j->i, lits[k], l) == 0) {
					j->i += l;
					break;
				}
			}
			if (k == 3)
				return false;
		}
		/* A value ended: close containers or move to the next element. */
		for (;;) {
			if (sp == 0)
				return true;
			js_ws(j);
			if (j->i >= j->n)
				return false;
			char top = stack[sp - 1];
			if (j->s[j->i] == ',') {
				j->i++;
				if (top == '{' && !js_key(j))
					return false;
				break;
			}
			if (j->s[j->i] != (top == '[' ? ']' : '}'))
				return false;
			j->i++;
			sp--;
		}
	}
}

/*
 * ARGS as a JSON array of strings. Returns 1 and fills p->args, 0 when ARGS is not valid
 * JSON (the caller falls back), or -EINVAL for a valid array with a non-string element.
 */
static int
parse_json_array(struct parser *p, const char *name, const char *s, size_t n)
{
	struct json j = {s, n, 0};
	struct kiln_buf *b = &p->tmp;
	size_t bad = 0;

	p->args.n = 0;
	if (n == 0 || s[0] != '[')
		return 0;
	j.i = 1;
	js_ws(&j);
	if (j.i < n && s[j.i] == ']') {
		j.i++;
	} else {
		for (size_t idx = 1;; idx++) {
			js_ws(&j);
			if (j.i >= n)
				return 0;
			if (s[j.i] == '"') {
				kiln_buf_reset(b);
				if (!js_string(&j, b))
					return 0;
				strvec_push(&p->args, arena_dup(p, b->buf, b->len), b->len);
			} else {
				if (!js_value(&j, 1))
					return 0;
				if (!bad)
					bad = idx;
			}
			js_ws(&j);
			if (j.i >= n)
				return 0;
			if (s[j.i] == ',') {
				j.i++;
				continue;
			}
			if (s[j.i] != ']')
				return 0;
			j.i++;
			break;
		}
	}
	js_ws(&j);
	if (j.i != n)
		return 0;
	if (bad) {
		p->args.n = 0;
		char up[16] = "";
		for (size_t k = 0; name[k] && k + 1 < sizeof(up); k++)
			up[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
		return kiln_err_at(p->err, p->file, p->start_line, p->lineno,
		                   "JSON array in %s: element %zu is not a string", up, bad);
	}
	return 1;
}

/* The JSON rule with the scratch arguments left as they were when ARGS is not JSON. */
static int
parse_json(struct parser *p, const char *name, const char *s, size_t n)
{
	size_t mark = p->args.n;
	int r = parse_json_array(p, name, s, n);
	if (r <= 0)
		p->args.n = mark;
	return r;
}

/* ---- per-instruction argument rules ---- */

static void
split_list(struct parser *p, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t st = i;
		while (i < n && !is_w(s[i]))
			i++;
		strvec_push(&p->args, s + st, i - st);
		while (i < n && is_w(s[i]))
			i++;
	}
}

/* RUN/CMD/ENTRYPOINT/SHELL: JSON or the whole string. Returns 1 for JSON, 0, or -errno. */
static int
maybe_json(struct parser *p, const char *name, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	int r = parse_json(p, name, s, n);
	if (r != 0)
		return r;
	strvec_push(&p->args, s, n);
	return 0;
}

static int
parse_kv(struct parser *p, const char *name, const char *s, size_t n)
{
	parse_words(p, s, n);
	if (p->words.n == 0)
		return 0;
	struct str *first = &p->words.v[0];
	if (!memchr(first->p, '=', first->n)) {
		size_t i = 0;
		while (i < n && !is_w(s[i]))
			i++;
		if (i == n) {
			kiln_buf_reset(&p->tmp);
			fe_go_quote(&p->tmp, s, n);
			return kiln_err_at(
			        p->err, p->file, p->start_line, p->lineno,
			        "%s %s: missing value (want %s NAME VALUE or NAME=VALUE)", name,
			        p->tmp.buf, name);
		}
		size_t j = i;
		while (j < n && is_w(s[j]))
			j++;
		strvec_push(&p->args, s, i);
		strvec_push(&p->args, s + j, n - j);
		strvec_push(&p->args, "", 0);
		return 0;
	}
	for (size_t k = 0; k < p->words.n; k++) {
		struct str *w = &p->words.v[k];
		const char *eq = memchr(w->p, '=', w->n);
		if (!eq) {
			kiln_buf_reset(&p->tmp);
			fe_go_quote(&p->tmp, w->p, w->n);
			return kiln_err_at(p->err, p->file, p->start_line, p->lineno,
			                   "%s: can't find = in %s: must be of the form NAME=VALUE",
			                   name, p->tmp.buf);
		}
		strvec_push(&p->args, w->p, (size_t)(eq - w->p));
		strvec_push(&p->args, eq + 1, w->n - (size_t)(eq - w->p) - 1);
		strvec_push(&p->args, "=", 1);
	}
	return 0;
}

/* Copy a scratch vector into the arena as NUL-terminated strings plus their lengths. */
static void
finish_strs(struct parser *p, const struct strvec *sv, const char ***ret, size_t **ret_lens,
            size_t *ret_n)
{
	*ret_n = sv->n;
	if (sv->n == 0) {
		*ret = NULL;
		*ret_lens = NULL;
		return;
	}
	const char **v = kiln_arena_array(p->arena, sv->n + 1, sizeof(*v));
	size_t *lens = kiln_arena_array(p->arena, sv->n, sizeof(*lens));
	for (size_t i = 0; i < sv->n; i++) {
		v[i] = arena_dup(p, sv->v[i].p, sv->v[i].n);
		lens[i] = sv->v[i].n;
	}
	*ret = v;
	*ret_lens = lens;
}

/* Go strings.ToLower: ASCII maps A-Z; otherwise rune by rune, invalid bytes -> U+FFFD. */
static void
lower_name(struct parser *p, const char *s, size_t n, struct fe_node *node)
{
	struct kiln_buf *b = &p->tmp;
	bool ascii = true;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	kiln_buf_reset(b);
	if (ascii) {
		kiln_buf_add(b, s, n);
		for (size_t i = 0; i < n; i++)
			if (b->buf[i] >= 'A' && b->buf[i] <= 'Z')
				b->buf[i] += 'a' - 'A';
	} else {
		for (size_t i = 0; i < n;) {
			uint32_t r;
			i += fe_utf8_decode(s + i, n - i, &r);
			put_rune(b, fe_to_lower(r));
		}
	}
	node->name = arena_dup(p, b->buf, b->len);
	node->name_len = b->len;
}

/*
 * One logical line -> node (BuildKit's newNodeFromLine). ONBUILD's sub-instruction is
 * parsed by the same loop, one level per turn, so deep nesting costs no stack.
 */
static int
parse_line(struct parser *p, const char *s, size_t n, struct fe_node *node)
{
	struct fe_node *cur = node;
	int r;

	for (;;) {
		trim_space(&s, &n);
		cur->original = arena_dup(p, s, n);
		cur->start_line = p->start_line;
		cur->end_line = p->lineno;
		size_t i = 0;
		while (i < n && !is_w(s[i]))
			i++;
		const char *args = s + n;
		size_t alen = 0;
		p->flags.n = 0;
		p->args.n = 0;
		if (i < n) {
			size_t j = i;
			while (j < n && is_w(s[j]))
				j++;
			extract_flags(p, s + j, n - j, &args, &alen);
			trim_space(&args, &alen);
		}
		lower_name(p, s, i, cur);
		finish_strs(p, &p->flags, &cur->flags, &cur->flag_lens, &cur->nflags);
		enum kind k = kind_of(cur->name, cur->name_len);
		if (k == K_ONBUILD && alen > 0) {
			cur->sub = kiln_arena_alloc(p->arena, sizeof(*cur->sub));
			cur = cur->sub;
			s = args;
			n = alen;
			continue;
		}
		r = 0;
		switch (k) {
		case K_ONBUILD:
			break;
		case K_FROM:
		case K_EXPOSE:
			split_list(p, args, alen);
			break;
		case K_ADD:
		case K_COPY:
		case K_VOLUME:
			r = parse_json(p, cur->name, args, alen);
			if (r == 0)
				split_list(p, args, alen);
			break;
		case K_RUN:
		case K_CMD:
		case K_ENTRYPOINT:
		case K_SHELL:
			r = maybe_json(p, cur->name, args, alen);
			break;
		case K_MAINTAINER:
		case K_USER:
		case K_WORKDIR:
		case K_STOPSIGNAL:
			if (alen > 0)
				strvec_push(&p->args, args, alen);
			break;
		case K_HEALTHCHECK: {
			size_t sep = 0, next;
			while (sep < alen && !is_byte_space((unsigned char)args[sep]))
				sep++;
			next = sep;
			while (next < alen && is_byte_space((unsigned char)args[next]))
				next++;
			if (sep == 0)
				break;
			r = maybe_json(p, cur->name, args + next, alen - next);
			if (r >= 0) {
				/* TYPE goes first: shift the rest by one. */
				strvec_push(&p->args, NULL, 0);
				memmove(p->args.v + 1, p->args.v,
				        (p->args.n - 1) * sizeof(*p->args.v));
				p->args.v[0] = (struct str){args, sep};
			}
			break;
		}
		case K_ARG:
			parse_words(p, args, alen);
			for (size_t w = 0; w < p->words.n; w++)
				strvec_push(&p->args, p->words.v[w].p, p->words.v[w].n);
			break;
		case K_ENV:
			r = parse_kv(p, "ENV", args, alen);
			break;
		case K_LABEL:
			r = parse_kv(p, "LABEL", args, alen);
			break;
		case K_UNKNOWN:
			strvec_push(&p->args, "", 0);
			break;
		}
		if (r < 0)
			return r;
		cur->json = r == 1;
		finish_strs(p, &p->args, &cur->args, &cur->arg_lens, &cur->nargs);
		return 0;
	}
}

/* ---- heredocs: BuildKit's shell lexer, as far as finding heredoc words needs it ---- */

struct lexwords {
	struct kiln_buf cur;
	bool in_word;
	struct strvec *out;
	struct kiln_arena *arena;
};

struct lex {
	const char *s;
	size_t n, i;
	bool raw_quotes, raw_escapes;
	int depth;
};

static uint32_t
lex_peek(const struct lex *lx)
{
	if (lx->i >= lx->n)
		return RUNE_EOF;
	uint32_t r;
	fe_utf8_decode(lx->s + lx->i, lx->n - lx->i, &r);
	return r;
}

static uint32_t
lex_next(struct lex *lx)
{
	if (lx->i >= lx->n)
		return RUNE_EOF;
	uint32_t r;
	lx->i += fe_utf8_decode(lx->s + lx->i, lx->n - lx->i, &r);
	return r;
}

static void
lw_push(struct lexwords *w)
{
	strvec_push(w->out, kiln_arena_strndup(w->arena, w->cur.buf, w->cur.len), w->cur.len);
	kiln_buf_reset(&w->cur);
	w->in_word = false;
}

static void
lw_raw_char(struct lexwords *w, uint32_t ch)
{
	if (!w)
		return;
	put_rune(&w->cur, ch);
	w->in_word = true;
}

static void
lw_char(struct lexwords *w, uint32_t ch)
{
	if (!w)
		return;
	if (fe_is_space(ch)) {
		if (w->in_word && w->cur.len != 0)
			lw_push(w);
	} else {
		lw_raw_char(w, ch);
	}
}

static int lex_stop_on(struct lex *lx, uint32_t stop, bool raw_escapes, struct kiln_buf *out,
                       struct lexwords *w);

static void
add_rune_or_eof(struct kiln_buf *b, uint32_t r)
{
	put_rune(b, r == RUNE_EOF ? 0xFFFD : r);
}

static int
lex_single_quote(struct lex *lx, struct kiln_buf *out)
{
	uint32_t ch = lex_next(lx);
	if (lx->raw_quotes)
		put_rune(out, ch);
	for (;;) {
		ch = lex_next(lx);
		if (ch == RUNE_EOF)
			return -1;
		if (ch == '\'') {
			if (lx->raw_quotes)
				put_rune(out, ch);
			return 0;
		}
		put_rune(out, ch);
	}
}

static int lex_dollar(struct lex *lx, struct kiln_buf *out);

static int
lex_double_quote(struct lex *lx, struct kiln_buf *out)
{
	uint32_t ch = lex_next(lx);
	if (lx->raw_quotes)
		put_rune(out, ch);
	for (;;) {
		uint32_t pk = lex_peek(lx);
		if (pk == RUNE_EOF)
			return -1;
		if (pk == '"') {
			lex_next(lx);
			if (lx->raw_quotes)
				kiln_buf_addch(out, '"');
			return 0;
		}
		if (pk == '$') {
			if (lex_dollar(lx, out) < 0)
				return -1;
			continue;
		}
		ch = lex_next(lx);
		if (ch == '\\') {
			if (lx->raw_escapes)
				kiln_buf_addch(out, '\\');
			pk = lex_peek(lx);
			if (pk == RUNE_EOF)
				continue;
			if (pk == '"' || pk == '$' || pk == '\\')
				ch = lex_next(lx);
		}
		put_rune(out, ch);
	}
}

static bool
lex_is_digit(uint32_t r)
{
	return r >= '0' && r <= '9';
}

/* unicode.IsLetter, approximated for non-ASCII (any printable rune that is not ASCII): only
 * ${name} with exotic names can tell the difference. */
static bool
lex_is_letter(uint32_t r)
{
	if (r < 0x80)
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
	return r != RUNE_EOF && r != 0xFFFD && fe_is_print(r);
}

static void
lex_name(struct lex *lx, struct kiln_buf *name)
{
	while (lex_peek(lx) != RUNE_EOF) {
		uint32_t ch = lex_peek(lx);
		if (name->len == 0 && lex_is_digit(ch)) {
			while (lex_is_digit(lex_peek(lx)))
				put_rune(name, lex_next(lx));
			return;
		}
		if (name->len == 0 && ch != 0 && ch < 0x80 && strchr("@*#?-$!0", (int)ch)) {
			put_rune(name, lex_next(lx));
			return;
		}
		if (!lex_is_letter(ch) && !lex_is_digit(ch) && ch != '_')
			break;
		put_rune(name, lex_next(lx));
	}
}

/* $name, ${name} and ${name<modifier>word} with no variable set: BuildKit's SkipUnsetEnv
 * gives the text back as written (modulo the words' own processing). */
static int
lex_dollar(struct lex *lx, struct kiln_buf *out)
{
	_cleanup_buf_ struct kiln_buf name = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf word = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf word2 = KILN_BUF_INIT;

	lex_next(lx);
	if (lex_peek(lx) != '{') {
		lex_name(lx, &name);
		kiln_buf_addch(out, '$');
		kiln_buf_add(out, name.buf, name.len);
		return 0;
	}
	lex_next(lx);
	uint32_t pk = lex_peek(lx);
	if (pk == RUNE_EOF || pk == '{' || pk == '}' || pk == ':')
		return -1;
	lex_name(lx, &name);
	uint32_t ch = lex_next(lx);
	if (ch == '}') {
		kiln_buf_addstr(out, "${");
		kiln_buf_add(out, name.buf, name.len);
		kiln_buf_addch(out, '}');
		return 0;
	}
	if (lx->depth >= LEX_MAXDEPTH)
		return -1;
	lx->depth++;
	int r = -1;
	struct kiln_buf chs = KILN_BUF_INIT;
	add_rune_or_eof(&chs, ch);
	bool null_is_unset = false;
	if (ch == ':') {
		null_is_unset = true;
		ch = lex_next(lx);
		add_rune_or_eof(&chs, ch);
	}
	if (null_is_unset || ch == '+' || ch == '-' || ch == '?' || ch == '#' || ch == '%') {
		bool raw = ch == '#' || ch == '%';
		if (null_is_unset && raw)
			goto out;
		if (lex_stop_on(lx, '}', raw, &word, NULL) < 0)
			goto out;
		kiln_buf_addstr(out, "${");
		kiln_buf_add(out, name.buf, name.len);
		kiln_buf_add(out, chs.buf, chs.len);
		kiln_buf_add(out, word.buf, word.len);
		kiln_buf_addch(out, '}');
		r = 0;
	} else if (ch == '/') {
		if (lex_peek(lx) == '/')
			lex_next(lx);
		if (lex_stop_on(lx, '/', true, &word, NULL) < 0 ||
		    lex_stop_on(lx, '}', true, &word2, NULL) < 0)
			goto out;
		kiln_buf_addstr(out, "${");
		kiln_buf_add(out, name.buf, name.len);
		kiln_buf_addch(out, '/');
		kiln_buf_add(out, word.buf, word.len);
		kiln_buf_addch(out, '/');
		kiln_buf_add(out, word2.buf, word2.len);
		kiln_buf_addch(out, '}');
		r = 0;
	}
out:
	kiln_buf_release(&chs);
	lx->depth--;
	return r;
}

/* "<" or "<<" plus the blanks after it, so that `<<  EOF` stays one word. */
static void
lex_less(struct lex *lx, struct kiln_buf *out)
{
	lex_next(lx);
	if (lex_peek(lx) != '<') {
		kiln_buf_addch(out, '<');
		return;
	}
	lex_next(lx);
	kiln_buf_addstr(out, "<<");
	while (lex_peek(lx) == ' ' || lex_peek(lx) == '\t')
		put_rune(out, lex_next(lx));
}

static int
lex_stop_on(struct lex *lx, uint32_t stop, bool raw_escapes, struct kiln_buf *out,
            struct lexwords *w)
{
	bool saved = lx->raw_escapes;
	int r = 0;
	_cleanup_buf_ struct kiln_buf tmp = KILN_BUF_INIT;

	lx->raw_escapes = raw_escapes;
	for (;;) {
		uint32_t ch = lex_peek(lx);
		if (ch == RUNE_EOF)
			break;
		if (stop != RUNE_EOF && ch == stop) {
			lex_next(lx);
			goto done;
		}
		if (ch == '\'' || ch == '"' || ch == '$' || ch == '<') {
			kiln_buf_reset(&tmp);
			if (ch == '\'')
				r = lex_single_quote(lx, &tmp);
			else if (ch == '"')
				r = lex_double_quote(lx, &tmp);
			else if (ch == '$')
				r = lex_dollar(lx, &tmp);
			else
				lex_less(lx, &tmp);
			if (r < 0)
				goto done;
			kiln_buf_add(out, tmp.buf, tmp.len);
			if (w && ch == '$') {
				for (size_t k = 0; k < tmp.len;) {
					uint32_t c;
					k += fe_utf8_decode(tmp.buf + k, tmp.len - k, &c);
					lw_char(w, c);
				}
			} else if (w) {
				kiln_buf_add(&w->cur, tmp.buf, tmp.len);
				w->in_word = true;
			}
			continue;
		}
		ch = lex_next(lx);
		if (ch == '\\') {
			if (lx->raw_escapes) {
				lw_raw_char(w, ch);
				kiln_buf_addch(out, '\\');
			}
			ch = lex_next(lx);
			if (ch == RUNE_EOF)
				break;
			lw_raw_char(w, ch);
		} else {
			lw_char(w, ch);
		}
		put_rune(out, ch);
	}
	if (stop != RUNE_EOF)
		r = -1;
	else if (w && w->cur.len > 0)
		lw_push(w);
done:
	lx->raw_escapes = saved;
	return r;
}

/* Shell words of s (escape '\\'); returns -1 when the lexer fails (unterminated quote...). */
static int
lex_words(struct parser *p, const char *s, size_t n, bool raw_quotes, bool raw_escapes,
          struct strvec *out)
{
	struct lex lx = {.s = s, .n = n, .raw_quotes = raw_quotes, .raw_escapes = raw_escapes};
	struct lexwords w = {.cur = KILN_BUF_INIT, .out = out, .arena = p->arena};
	_cleanup_buf_ struct kiln_buf res = KILN_BUF_INIT;
	out->n = 0;
	int r = lex_stop_on(&lx, RUNE_EOF, raw_escapes, &res, &w);
	kiln_buf_release(&w.cur);
	return r;
}

static size_t
count_quotes(const struct str *s)
{
	size_t c = 0;
	for (size_t i = 0; i < s->n; i++)
		c += s->p[i] == '\'' || s->p[i] == '"';
	return c;
}

/* The heredocs a logical line opens (BuildKit's heredocsFromLine + ParseHeredoc). */
static int
find_heredocs(struct parser *p, const char *line, size_t n, struct fe_heredoc **ret, size_t *ret_n)
{
	struct strvec words = {0}, name = {0}, name_raw = {0};
	struct fe_heredoc *docs = NULL;
	size_t ndocs = 0, alloc = 0;
	int r = 0;

	if (lex_words(p, line, n, true, true, &words) < 0)
		goto out;
	for (size_t k = 0; k < words.n; k++) {
		/* ^(\d*)<<(-?)\s*([^<]*)$ */
		const char *w = words.v[k].p;
		size_t wn = words.v[k].n, i = 0;
		while (i < wn && w[i] >= '0' && w[i] <= '9')
			i++;
		size_t ndigits = i;
		if (wn - i < 2 || w[i] != '<' || w[i + 1] != '<')
			continue;
		i += 2;
		bool chomp = i < wn && w[i] == '-';
		if (chomp)
			i++;
		while (i < wn && is_re_space((unsigned char)w[i]))
			i++;
		if (i == wn || memchr(w + i, '<', wn - i))
			continue;
		if (lex_words(p, w + i, wn - i, false, false, &name) < 0 ||
		    lex_words(p, w + i, wn - i, true, false, &name_raw) < 0) {
			r = kiln_err_at(p->err, p->file, p->start_line, p->lineno,
			                "heredoc delimiter %.*s cannot be parsed", (int)(wn - i),
			                w + i);
			goto out;
		}
		if (name.n != 1)
			continue;
		if (name_raw.n != 1) {
			r = kiln_err_at(p->err, p->file, p->start_line, p->lineno,
			                "heredoc delimiter %.*s is ambiguous", (int)(wn - i),
			                w + i);
			goto out;
		}
		KILN_GROW(docs, alloc, ndocs + 1);
		struct fe_heredoc *d = &docs[ndocs++];
		memset(d, 0, sizeof(*d));
		d->name = name.v[0].p;
		d->name_len = name.v[0].n;
		d->chomp = chomp;
		d->expand = count_quotes(&name.v[0]) == count_quotes(&name_raw.v[0]);
		d->fd = -1;
		if (ndigits > 0) {
			long long fd = 0;
			for (size_t q = 0; q < ndigits && fd <= INT_MAX; q++)
				fd = fd * 10 + (w[q] - '0');
			d->fd = fd > INT_MAX ? INT_MAX : (int)fd;
		}
	}
	if (ndocs > 0) {
		*ret = kiln_arena_array(p->arena, ndocs, sizeof(**ret));
		memcpy(*ret, docs, ndocs * sizeof(*docs));
		*ret_n = ndocs;
	}
out:
	free(words.v);
	free(name.v);
	free(name_raw.v);
	free(docs);
	return r;
}

/* Read each heredoc's body: raw lines up to the one equal to its name. */
static int
read_heredocs(struct parser *p, struct fe_node *target)
{
	struct kiln_buf body = KILN_BUF_INIT;
	int r = 0;

	for (size_t k = 0; k < target->nheredocs; k++) {
		struct fe_heredoc *d = &target->heredocs[k];
		size_t nl = d->name_len;
		bool terminated = false;
		kiln_buf_reset(&body);
		for (;;) {
			const char *s = NULL;
			size_t n = 0;
			bool had_nl = false;
			r = next_line(p, &s, &n, &had_nl);
			if (r < 0)
				goto out;
			if (r == 0)
				break;
			size_t tn = trim_newline(s, n);
			const char *t = s;
			if (d->chomp)
				while (tn > 0 && *t == '\t') {
					t++;
					tn--;
				}
			if (tn == nl && memcmp(t, d->name, nl) == 0) {
				terminated = true;
				break;
			}
			if (d->chomp)
				while (n > 0 && *s == '\t') {
					s++;
					n--;
				}
			kiln_buf_add(&body, s, n);
			if (had_nl)
				kiln_buf_addch(&body, '\n');
		}
		if (!terminated) {
			r = kiln_err_at(p->err, p->file, p->start_line, p->lineno,
			                "unterminated heredoc <<%s started here", d->name);
			goto out;
		}
		d->content = arena_dup(p, body.buf, body.len);
		d->content_len = body.len;
	}
	r = 0;
out:
	kiln_buf_release(&body);
	return r;
}

static bool
heredoc_kind(const struct fe_node *n)
{
	enum kind k = kind_of(n->name, n->name_len);
	return (k == K_RUN || k == K_ADD || k == K_COPY) && !n->json;
}

/* ---- the driver ---- */

static int
parse_all(struct parser *p)
{
	const char *s = NULL;
	size_t n = 0;
	int r;

	for (;;) {
		r = next_line(p, &s, &n, NULL);
		if (r <= 0)
			return r;
		p->start_line = p->lineno;
		n = trim_newline(s, n);
		size_t l = lspace_len(s, n);
		s += l;
		n -= l;
		if (!p->directives_done) {
			r = directive(p, s, n);
			if (r < 0)
				return r;
		}
		if (n > 0 && s[0] == '#')
			n = 0;
		bool cont = trim_continuation(p, s, &n);
		if (!cont && n == 0)
			continue;
		kiln_buf_reset(&p->line);
		kiln_buf_add(&p->line, s, n);
		bool empty_cont = false;
		while (cont) {
			r = next_line(p, &s, &n, NULL);
			if (r < 0)
				return r;
			if (r == 0)
				break;
			n = trim_newline(s, n);
			if (is_comment(s, n))
				continue;
			if (lspace_len(s, n) == n) {
				empty_cont = true;
				continue;
			}
			cont = trim_continuation(p, s, &n);
			kiln_buf_add(&p->line, s, n);
		}
		if (empty_cont)
			kiln_strv_pushf(
			        &p->ast->warnings,
			        "%s:%d: empty continuation line in this instruction (BuildKit "
			        "will reject it)",
			        p->file, p->start_line);

		KILN_GROW(p->nodes, p->nodes_alloc, p->nnodes + 1);
		struct fe_node *node = &p->nodes[p->nnodes];
		memset(node, 0, sizeof(*node));
		r = parse_line(p, p->line.buf, p->line.len, node);
		if (r < 0)
			return r;
		p->nnodes++;

		struct fe_node *target = node;
		if (kind_of(node->name, node->name_len) == K_ONBUILD && node->sub)
			target = node->sub;
		if (heredoc_kind(target) && mem_find(p->line.buf, p->line.len, "<<", 2)) {
			r = find_heredocs(p, p->line.buf, p->line.len, &target->heredocs,
			                  &target->nheredocs);
			if (r < 0)
				return r;
			r = read_heredocs(p, target);
			if (r < 0)
				return r;
		}
		for (struct fe_node *x = node; x; x = x->sub)
			x->end_line = p->lineno;
	}
}

int
fe_parse(const char *file, const char *data, size_t len, struct fe_ast **ret, struct kiln_err *err)
{
	struct fe_ast *ast = kiln_xcalloc(1, sizeof(*ast));
	ast->arena = kiln_arena_new();
	ast->file = kiln_arena_strdup(ast->arena, file);
	ast->escape = '\\';

	struct parser p = {
	        .ast = ast,
	        .arena = ast->arena,
	        .file = file,
	        .data = data,
	        .len = len,
	        .escape = '\\',
	        .err = err,
	        .line = KILN_BUF_INIT,
	        .tmp = KILN_BUF_INIT,
	};
	int r = parse_all(&p);
	if (r == 0 && p.nnodes == 0)
		r = kiln_err_at(err, file, p.lineno > 0 ? p.lineno : 1, 0,
		                "file with no instructions");
	if (r == 0) {
		/* Not zeroed, all copied over (p.nodes already holds that many bytes). */
		ast->nodes = kiln_arena_alloc_uninit(ast->arena, p.nnodes * sizeof(*ast->nodes));
		memcpy(ast->nodes, p.nodes, p.nnodes * sizeof(*p.nodes));
		ast->nnodes = p.nnodes;
	}
	free(p.nodes);
	free(p.args.v);
	free(p.flags.v);
	free(p.words.v);
	kiln_buf_release(&p.line);
	kiln_buf_release(&p.tmp);
	if (r < 0) {
		fe_ast_free(ast);
		return r;
	}
	*ret = ast;
	return 0;
}

void
fe_ast_free(struct fe_ast *ast)
{
	if (!ast)
		return;
	kiln_strv_release(&ast->warnings);
	kiln_arena_free(ast->arena);
	free(ast);
}

char *const *
fe_ast_warnings(const struct fe_ast *ast)
{
	return kiln_strv_get((struct kiln_strv *)&ast->warnings);
}
