/*
 * Dockerfile word expansion, following BuildKit's shell lexer (frontend/dockerfile/shell)
 * with its default options: quotes are removed, unset variables expand to "", and the
 * ${v...} modifiers behave as there, quirks included, so a Dockerfile means the same to
 * kiln as to `docker build`.
 */
#include "shlex.h"
#include "fe_utf8.h"

#include <locale.h>
#include <pthread.h>
#include <wctype.h>

#define SC_EOF (-1)

/* ---- variables ---- */

/* Stages of long Dockerfiles carry hundreds of variables and every expansion looks them up,
 * so the list has a hash index (FNV-1a over the key) beside it. */
static size_t
key_hash(const char *key, size_t klen)
{
	size_t h = 1469598103934665603u;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211u;
	return h;
}

static size_t
entry_key_len(const char *e)
{
	return strcspn(e, "=");
}

static void
vars_reindex(struct fe_vars *vars)
{
	size_t n = vars->nslots ? vars->nslots : 16;
	while (n < vars->kv.n * 2 + 2)
		n *= 2;
	free(vars->slots);
	vars->slots = kiln_xcalloc(n, sizeof(*vars->slots));
	vars->nslots = n;
	for (size_t i = 0; i < vars->kv.n; i++) {
		const char *e = vars->kv.v[i];
		size_t b = key_hash(e, entry_key_len(e)) & (n - 1);
		while (vars->slots[b])
			b = (b + 1) & (n - 1);
		vars->slots[b] = i + 1;
	}
}

/* The slot for key: holding its position + 1, or empty (0) where it would go. */
static size_t *
vars_slot(const struct fe_vars *vars, const char *key)
{
	size_t klen = strlen(key);
	size_t b = key_hash(key, klen) & (vars->nslots - 1);
	for (;; b = (b + 1) & (vars->nslots - 1)) {
		size_t pos = vars->slots[b];
		if (!pos)
			return &vars->slots[b];
		const char *e = vars->kv.v[pos - 1];
		if (strncmp(e, key, klen) == 0 && e[klen] == '=')
			return &vars->slots[b];
	}
}

void
fe_vars_set(struct fe_vars *vars, const char *key, const char *value)
{
	/* Joined by hand: printf's format parsing was most of the cost, and this runs for
	 * every ENV and ARG of every stage (and every entry a stage inherits). */
	size_t kl = strlen(key), vl = value ? strlen(value) : 0;
	char *e = kiln_xmalloc(kl + vl + 2);
	memcpy(e, key, kl);
	e[kl] = '=';
	memcpy(e + kl + 1, value ? value : "", vl + 1);
	if ((vars->kv.n + 1) * 2 > vars->nslots)
		vars_reindex(vars);
	size_t *slot = vars_slot(vars, key);
	if (!*slot) {
		kiln_strv_push_take(&vars->kv, e);
		*slot = vars->kv.n;
		return;
	}
	free(vars->kv.v[*slot - 1]);
	vars->kv.v[*slot - 1] = e;
}

const char *
fe_vars_get(const struct fe_vars *vars, const char *key)
{
	if (!vars->kv.n)
		return NULL;
	size_t pos = *vars_slot(vars, key);
	return pos ? vars->kv.v[pos - 1] + strlen(key) + 1 : NULL;
}

void
fe_vars_copy(struct fe_vars *dst, const struct fe_vars *src)
{
	for (size_t i = 0; i < src->kv.n; i++) {
		const char *e = src->kv.v[i];
		const char *eq = strchr(e, '=');
		_cleanup_free_ char *k = kiln_xstrndup(e, (size_t)(eq - e));
		fe_vars_set(dst, k, eq + 1);
	}
}

void
fe_vars_release(struct fe_vars *vars)
{
	kiln_strv_release(&vars->kv);
	free(vars->slots);
	vars->slots = NULL;
	vars->nslots = 0;
}

/* ---- character classes as Go's unicode package has them ---- */

static locale_t utf8_locale;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;

/* Read-only after the first call; lets non-ASCII names be classified without touching the
 * process locale. Without a UTF-8 locale, non-ASCII runes count as letters. */
static void
utf8_locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static bool
is_name_rune(int32_t r, bool *digit)
{
	*digit = r >= '0' && r <= '9';
	if (r < 0x80)
		return *digit || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
	pthread_once(&utf8_locale_once, utf8_locale_init);
	if (!utf8_locale)
		return r != FE_RUNE_ERROR;
	return iswalnum_l((wint_t)r, utf8_locale);
}

static bool
is_special_param(int32_t r)
{
	return r && strchr("@*#?-$!0", r);
}

/* ---- Go-compatible text helpers ---- */

/* Go's %q, enough for error messages: the word the user wrote, quoted. */
static void
add_go_quoted(struct kiln_buf *b, const char *s, size_t len)
{
	kiln_buf_addch(b, '"');
	for (size_t i = 0; i < len;) {
		size_t w;
		int32_t r = fe_utf8_rune(s + i, len - i, &w);
		if (r == FE_RUNE_ERROR && w == 1) {
			kiln_buf_addf(b, "\\x%02x", (unsigned char)s[i]);
		} else if (r == '"' || r == '\\') {
			kiln_buf_addch(b, '\\');
			kiln_buf_addch(b, r);
		} else if (r == '\n') {
			kiln_buf_addstr(b, "\\n");
		} else if (r == '\t') {
			kiln_buf_addstr(b, "\\t");
		} else if (r == '\r') {
			kiln_buf_addstr(b, "\\r");
		} else if (r < 0x20 || r == 0x7F) {
			kiln_buf_addf(b, "\\x%02x", (unsigned)r);
		} else {
			kiln_buf_add(b, s + i, w);
		}
		i += w;
	}
	kiln_buf_addch(b, '"');
}

/* A string as runes, with the byte offset of each (off[n] is the length). */
struct runes {
	int32_t *r;
	size_t *off;
	size_t n;
};

static void
runes_decode(struct runes *rs, const char *s, size_t len)
{
	rs->r = kiln_xreallocarray(NULL, len + 1, sizeof(*rs->r));
	rs->off = kiln_xreallocarray(NULL, len + 1, sizeof(*rs->off));
	rs->n = 0;
	for (size_t i = 0; i < len;) {
		size_t w;
		rs->off[rs->n] = i;
		rs->r[rs->n++] = fe_utf8_rune(s + i, len - i, &w);
		i += w;
	}
	rs->off[rs->n] = len;
}

static void
runes_release(struct runes *rs)
{
	free(rs->r);
	free(rs->off);
}

/* ---- the shell patterns of ${v#p}, ${v%p} and ${v/p/r} ---- */

/* BuildKit turns these into a Go regexp: `*` is `.*` (or `.*?`), `?` is `.`, everything else
 * literal; there are no bracket expressions. A small backtracking matcher gives the same
 * leftmost-first answers for that subset. */
enum { SP_LIT, SP_ANY, SP_STAR };
struct sp_tok {
	int kind;
	int32_t r;
};
struct sp {
	struct sp_tok *t;
	size_t n;
	bool greedy;
	/* failure memo for (star token, position): a star's outcome there is fixed */
	uint8_t *memo;
	const struct runes *in;
};

static int
sp_compile(const int32_t *p, size_t n, struct sp *sp, struct kiln_buf *emsg)
{
	size_t i = 0;
	/* The pattern is read by a Go text/scanner, which drops a leading byte-order mark. */
	if (n && p[0] == 0xFEFF)
		i++;
	sp->t = kiln_xreallocarray(NULL, n + 1, sizeof(*sp->t));
	sp->n = 0;
	while (i < n) {
		int32_t r = p[i++];
		if (r == '*') {
			sp->t[sp->n++] = (struct sp_tok){SP_STAR, 0};
			continue;
		}
		if (r == '?') {
			sp->t[sp->n++] = (struct sp_tok){SP_ANY, 0};
			continue;
		}
		if (r == '\\') {
			/* `\}` and `\/` were needed to get past the ${} parser; drop the backslash
			 */
			if (i < n && (p[i] == '}' || p[i] == '/'))
				continue;
			int32_t e = i < n ? p[i++] : SC_EOF;
			if (e != '*' && e != '?' && e != '\\') {
				if (e == SC_EOF)
					kiln_buf_addstr(emsg, "invalid escape '\\%!c(int32=-1)'");
				else {
					kiln_buf_addstr(emsg, "invalid escape '\\");
					kiln_buf_add_rune(emsg, (uint32_t)e);
					kiln_buf_addch(emsg, '\'');
				}
				free(sp->t);
				sp->t = NULL;
				return -1;
			}
			r = e;
		}
		sp->t[sp->n++] = (struct sp_tok){SP_LIT, r};
	}
	return 0;
}

/* End of a match of tokens [i..] starting at rune `pos`, or -1. */
static ssize_t
sp_match(struct sp *sp, size_t i, size_t pos)
{
	const struct runes *in = sp->in;
	for (; i < sp->n && sp->t[i].kind != SP_STAR; i++) {
		if (pos >= in->n)
			return -1;
		int32_t c = in->r[pos];
		if (sp->t[i].kind == SP_LIT ? c != sp->t[i].r : c == '\n')
			return -1;
		pos++;
	}
	if (i == sp->n)
		return (ssize_t)pos;
	size_t bit = i * (in->n + 1) + pos;
	if (sp->memo[bit / 8] & (1u << (bit % 8)))
		return -1;
	size_t max = 0;
	while (pos + max < in->n && in->r[pos + max] != '\n')
		max++;
	for (size_t k = 0; k <= max; k++) {
		ssize_t e = sp_match(sp, i + 1, pos + (sp->greedy ? max - k : k));
		if (e >= 0)
			return e;
	}
	sp->memo[bit / 8] |= (uint8_t)(1u << (bit % 8));
	return -1;
}

static void
sp_bind(struct sp *sp, const struct runes *in)
{
	sp->in = in;
	sp->memo = kiln_xcalloc(((sp->n + 1) * (in->n + 1) + 7) / 8, 1);
}

static void
sp_release(struct sp *sp)
{
	free(sp->t);
	free(sp->memo);
}

/* ---- the lexer ---- */

struct sw {
	const struct fe_shlex *lx;
	const char *s;
	size_t len;
	size_t pos;
	bool raw_escapes;
	struct kiln_buf emsg; /* the error, when a step returns -1 */
};

static int32_t
sc_peek(struct sw *sw)
{
	if (sw->pos >= sw->len)
		return SC_EOF;
	size_t w;
	return fe_utf8_rune(sw->s + sw->pos, sw->len - sw->pos, &w);
}

static int32_t
sc_next(struct sw *sw)
{
	if (sw->pos >= sw->len)
		return SC_EOF;
	size_t w;
	int32_t r = fe_utf8_rune(sw->s + sw->pos, sw->len - sw->pos, &w);
	sw->pos += w;
	return r;
}

static int fail(struct sw *sw, const char *fmt, ...) KILN_PRINTF(2, 3);
static int
fail(struct sw *sw, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln_buf_reset(&sw->emsg);
	kiln_buf_vaddf(&sw->emsg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Go's string(rune), for the modifier named in an error (EOF prints as U+FFFD). */
static void
add_rune_or_eof(struct kiln_buf *b, int32_t r)
{
	kiln_buf_add_rune(b, r < 0 ? FE_RUNE_ERROR : (uint32_t)r);
}

static const char *
get_env(struct sw *sw, const char *name)
{
	const struct fe_shlex *lx = sw->lx;
	const char *v = lx->vars ? fe_vars_get(lx->vars, name) : NULL;
	if (!v && lx->lookup)
		v = lx->lookup(lx->lookup_ctx, name);
	return v;
}

/* The word splitter of ProcessWords. */
struct words {
	struct kiln_buf word;
	struct kiln_strv *out;
	bool in_word;
};

static void
words_add_char(struct words *w, int32_t r)
{
	if (!w)
		return;
	if (fe_is_space(r)) {
		if (w->in_word && w->word.len) {
			kiln_strv_push(w->out, w->word.buf);
			kiln_buf_reset(&w->word);
			w->in_word = false;
		}
		return;
	}
	kiln_buf_add_rune(&w->word, (uint32_t)r);
	w->in_word = true;
}

static void
words_add_raw_char(struct words *w, int32_t r)
{
	if (!w)
		return;
	kiln_buf_add_rune(&w->word, (uint32_t)r);
	w->in_word = true;
}

static void
words_add_string(struct words *w, const char *s, size_t len)
{
	if (!w)
		return;
	for (size_t i = 0; i < len;) {
		size_t n;
		words_add_char(w, fe_utf8_rune(s + i, len - i, &n));
		i += n;
	}
}

static void
words_add_raw_string(struct words *w, const char *s, size_t len)
{
	if (!w)
		return;
	kiln_buf_add(&w->word, s, len);
	w->in_word = true;
}

static void
words_finish(struct words *w)
{
	if (w->word.len) {
		kiln_strv_push(w->out, w->word.buf);
		kiln_buf_reset(&w->word);
		w->in_word = false;
	}
}

static int process_dollar(struct sw *sw, struct kiln_buf *out);

static void
process_name(struct sw *sw, struct kiln_buf *name)
{
	int32_t c;
	while ((c = sc_peek(sw)) != SC_EOF) {
		bool digit;
		bool ok = is_name_rune(c, &digit);
		if (!name->len && digit) {
			while ((c = sc_peek(sw)) >= '0' && c <= '9')
				kiln_buf_addch(name, sc_next(sw));
			return;
		}
		if (!name->len && is_special_param(c)) {
			kiln_buf_addch(name, sc_next(sw));
			return;
		}
		if (!ok && c != '_')
			return;
		kiln_buf_add_rune(name, (uint32_t)sc_next(sw));
	}
}

static int
process_single_quote(struct sw *sw, struct kiln_buf *out)
{
	sc_next(sw);
	for (;;) {
		int32_t c = sc_next(sw);
		if (c == SC_EOF)
			return fail(sw, "unexpected end of statement while looking for matching "
			                "single-quote");
		if (c == '\'')
			return 0;
		kiln_buf_add_rune(out, (uint32_t)c);
	}
}

static int
process_double_quote(struct sw *sw, struct kiln_buf *out)
{
	int32_t esc = (unsigned char)sw->lx->escape;
	sc_next(sw);
	for (;;) {
		int32_t c = sc_peek(sw);
		if (c == SC_EOF)
			return fail(sw, "unexpected end of statement while looking for matching "
			                "double-quote");
		if (c == '"') {
			sc_next(sw);
			return 0;
		}
		if (c == '$') {
			if (process_dollar(sw, out) < 0)
				return -1;
			continue;
		}
		c = sc_next(sw);
		if (c == esc) {
			if (sw->raw_escapes)
				kiln_buf_add_rune(out, (uint32_t)c);
			int32_t n = sc_peek(sw);
			if (n == SC_EOF)
				continue; /* the loop reports the missing quote */
			/* only these can be escaped inside double quotes; others stay literal */
			if (n == '"' || n == '$' || n == esc)
				c = sc_next(sw);
		}
		kiln_buf_add_rune(out, (uint32_t)c);
	}
}

/*
 * Read up to `stop` (or the end when SC_EOF), expanding as it goes, into `result`; `w`
 * gets the split words at the top level only (NULL inside ${}).
 */
static int
process_stop_on(struct sw *sw, int32_t stop, bool raw, struct kiln_buf *result, struct words *w)
{
	int32_t esc = (unsigned char)sw->lx->escape;
	bool saved_raw = sw->raw_escapes;
	int rc = 0;
	sw->raw_escapes = raw;
	_cleanup_buf_ struct kiln_buf tmp = KILN_BUF_INIT;
	int32_t c;
	while ((c = sc_peek(sw)) != SC_EOF) {
		if (stop != SC_EOF && c == stop) {
			sc_next(sw);
			goto out;
		}
		if (c == '$' || c == '\'' || c == '"') {
			kiln_buf_reset(&tmp);
			if (c == '$')
				rc = process_dollar(sw, &tmp);
			else if (c == '\'')
				rc = process_single_quote(sw, &tmp);
			else
				rc = process_double_quote(sw, &tmp);
			if (rc < 0)
				goto out;
			kiln_buf_add(result, tmp.buf, tmp.len);
			if (c == '$')
				words_add_string(w, tmp.buf, tmp.len);
			else
				words_add_raw_string(w, tmp.buf, tmp.len);
			continue;
		}
		c = sc_next(sw);
		if (c == esc) {
			if (sw->raw_escapes) {
				words_add_raw_char(w, c);
				kiln_buf_add_rune(result, (uint32_t)c);
			}
			/* the escape character escapes anything; at the very end it vanishes */
			c = sc_next(sw);
			if (c == SC_EOF)
				break;
			words_add_raw_char(w, c);
		} else {
			words_add_char(w, c);
		}
		kiln_buf_add_rune(result, (uint32_t)c);
	}
	if (stop != SC_EOF) {
		kiln_buf_reset(&sw->emsg);
		kiln_buf_addstr(&sw->emsg,
		                "unexpected end of statement while looking for matching ");
		kiln_buf_add_rune(&sw->emsg, (uint32_t)stop);
		rc = -1;
	}
out:
	sw->raw_escapes = saved_raw;
	return rc;
}

/* Decode a pattern string into runes (as Go's []rune conversion does). */
static int32_t *
pattern_runes(const char *s, size_t len, size_t *n)
{
	struct runes rs;
	runes_decode(&rs, s, len);
	free(rs.off);
	*n = rs.n;
	return rs.r;
}

static int
pattern_error(struct sw *sw, const int32_t *p, size_t n, struct kiln_buf *why)
{
	kiln_buf_reset(&sw->emsg);
	kiln_buf_addstr(&sw->emsg, "invalid pattern (");
	for (size_t i = 0; i < n; i++)
		kiln_buf_add_rune(&sw->emsg, (uint32_t)p[i]);
	kiln_buf_addf(&sw->emsg, ") in substitution: %s", why->buf);
	return -1;
}

/* ${v#p} and ${v##p} (and, reversed, ${v%p} and ${v%%p}): drop the matched prefix. */
static int
trim(struct sw *sw, const char *pattern, size_t plen, const char *value, bool greedy, bool suffix,
     struct kiln_buf *out)
{
	size_t np;
	_cleanup_free_ int32_t *p = pattern_runes(pattern, plen, &np);
	struct runes in;
	runes_decode(&in, value, strlen(value));
	if (suffix) {
		/* A regexp cannot find the shortest rightmost match, so BuildKit reverses both
		 * the pattern (keeping `\x` pairs in order) and the value, and trims a prefix. */
		int32_t *rp = kiln_xreallocarray(NULL, np + 1, sizeof(*rp));
		for (size_t i = 0; i < np;) {
			size_t o = np - 1 - i;
			if (p[i] == '\\' && i != np - 1) {
				rp[o - 1] = p[i];
				rp[o] = p[i + 1];
				i += 2;
			} else {
				rp[o] = p[i];
				i++;
			}
		}
		free(p);
		p = rp;
		for (size_t i = 0; i < in.n / 2; i++) {
			int32_t t = in.r[i];
			in.r[i] = in.r[in.n - 1 - i];
			in.r[in.n - 1 - i] = t;
		}
	}
	struct sp sp = {.greedy = greedy};
	_cleanup_buf_ struct kiln_buf why = KILN_BUF_INIT;
	if (sp_compile(p, np, &sp, &why) < 0) {
		runes_release(&in);
		return pattern_error(sw, p, np, &why);
	}
	sp_bind(&sp, &in);
	ssize_t end = sp_match(&sp, 0, 0);
	size_t from = end < 0 ? 0 : (size_t)end;
	if (suffix) {
		/* reversing went through runes, so bad bytes come back as U+FFFD */
		for (size_t i = in.n; i > from; i--)
			kiln_buf_add_rune(out, (uint32_t)in.r[i - 1]);
	} else {
		kiln_buf_addstr(out, value + in.off[from]);
	}
	sp_release(&sp);
	runes_release(&in);
	return 0;
}

/* Go's Regexp.ReplaceAllString template for a regexp with no groups: $0 and ${0} are the
 * match, $$ is "$", other names expand to nothing, a malformed reference stays literal. */
static void
expand_template(struct kiln_buf *out, const char *t, const char *m, size_t mlen)
{
	while (*t) {
		const char *d = strchr(t, '$');
		if (!d) {
			kiln_buf_addstr(out, t);
			return;
		}
		kiln_buf_add(out, t, (size_t)(d - t));
		t = d;
		if (t[1] == '$') {
			kiln_buf_addch(out, '$');
			t += 2;
			continue;
		}
		bool brace = t[1] == '{';
		const char *name = t + (brace ? 2 : 1);
		size_t i = 0, tlen = strlen(name);
		while (i < tlen) {
			size_t w;
			bool digit;
			int32_t r = fe_utf8_rune(name + i, tlen - i, &w);
			if (!is_name_rune(r, &digit) && r != '_')
				break;
			i += w;
		}
		if (i == 0 || (brace && name[i] != '}')) {
			kiln_buf_addch(out, '$');
			t++;
			continue;
		}
		long num = 0;
		for (size_t k = 0; k < i; k++) {
			if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
				num = -1;
				break;
			}
			num = num * 10 + (name[k] - '0');
		}
		if (name[0] == '0' && i > 1)
			num = -1;
		if (num == 0)
			kiln_buf_add(out, m, mlen);
		t = name + i + (brace ? 1 : 0);
	}
}

/* ${v/p/r} and ${v//p/r}: an unanchored greedy search, replaced as Go's regexp does it. */
static int
replace(struct sw *sw, const char *pattern, size_t plen, const char *repl, const char *value,
        bool all, struct kiln_buf *out)
{
	size_t np;
	_cleanup_free_ int32_t *p = pattern_runes(pattern, plen, &np);
	struct sp sp = {.greedy = true};
	_cleanup_buf_ struct kiln_buf why = KILN_BUF_INIT;
	if (sp_compile(p, np, &sp, &why) < 0)
		return pattern_error(sw, p, np, &why);
	struct runes in;
	runes_decode(&in, value, strlen(value));
	sp_bind(&sp, &in);
	size_t last = 0, search = 0;
	while (search <= in.n) {
		ssize_t a0 = -1, a1 = -1;
		for (size_t s = search; s <= in.n; s++) {
			a1 = sp_match(&sp, 0, s);
			if (a1 >= 0) {
				a0 = (ssize_t)s;
				break;
			}
		}
		if (a0 < 0)
			break;
		kiln_buf_add(out, value + in.off[last], in.off[a0] - in.off[last]);
		if (!all) {
			kiln_buf_addstr(out, repl);
			last = (size_t)a1;
			break;
		}
		/* no second replacement for an empty match right after a match */
		if ((size_t)a1 > last || a0 == 0)
			expand_template(out, repl, value + in.off[a0], in.off[a1] - in.off[a0]);
		last = (size_t)a1;
		search = search + 1 > (size_t)a1 ? search + 1 : (size_t)a1;
	}
	kiln_buf_addstr(out, value + in.off[last]);
	sp_release(&sp);
	runes_release(&in);
	return 0;
}

static int
process_dollar(struct sw *sw, struct kiln_buf *out)
{
	_cleanup_buf_ struct kiln_buf name = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf word = KILN_BUF_INIT;
	sc_next(sw);
	if (sc_peek(sw) != '{') {
		process_name(sw, &name);
		if (!name.len) {
			kiln_buf_addch(out, '$');
			return 0;
		}
		const char *v = get_env(sw, name.buf);
		kiln_buf_addstr(out, v ? v : "");
		return 0;
	}
	sc_next(sw);
	int32_t c = sc_peek(sw);
	if (c == SC_EOF)
		return fail(sw, "syntax error: missing '}'");
	if (c == '{' || c == '}' || c == ':')
		return fail(sw, "syntax error: bad substitution");
	process_name(sw, &name);
	c = sc_next(sw);
	_cleanup_buf_ struct kiln_buf mod = KILN_BUF_INIT; /* the modifier as written */
	add_rune_or_eof(&mod, c);
	bool null_is_unset = false;
	const char *v;

	switch (c) {
	case '}':
		v = get_env(sw, name.buf);
		kiln_buf_addstr(out, v ? v : "");
		return 0;
	case ':':
		null_is_unset = true;
		c = sc_next(sw);
		add_rune_or_eof(&mod, c);
		/* whatever follows the ':' is read as a word first */
		__attribute__((fallthrough));
	case '+':
	case '-':
	case '?':
	case '#':
	case '%': {
		if (process_stop_on(sw, '}', c == '#' || c == '%', &word, NULL) < 0) {
			if (sc_peek(sw) == SC_EOF)
				return fail(sw, "syntax error: missing '}'");
			return -1;
		}
		v = get_env(sw, name.buf);
		bool empty = !v || (null_is_unset && !*v);
		switch (c) {
		case '-':
			kiln_buf_addstr(out, empty ? word.buf : v);
			return 0;
		case '+':
			if (!empty)
				kiln_buf_add(out, word.buf, word.len);
			return 0;
		case '?':
			if (!v)
				return fail(sw, "%s: %s", name.buf,
				            word.len ? word.buf : "is not allowed to be unset");
			if (null_is_unset && !*v)
				return fail(sw, "%s: %s", name.buf,
				            word.len ? word.buf : "is not allowed to be empty");
			kiln_buf_addstr(out, v);
			return 0;
		case '#':
		case '%': {
			/* one more # or % asks for the longest match */
			const char *p = word.buf;
			bool greedy = word.len && p[0] == c;
			if (greedy)
				p++;
			return trim(sw, p, word.len - (greedy ? 1 : 0), v ? v : "", greedy,
			            c == '%', out);
		}
		default:
			return fail(sw, "unsupported modifier (%s) in substitution", mod.buf);
		}
	}
	case '/': {
		bool all = sc_peek(sw) == '/';
		if (all)
			sc_next(sw);
		_cleanup_buf_ struct kiln_buf pat = KILN_BUF_INIT;
		if (process_stop_on(sw, '/', true, &pat, NULL) < 0) {
			if (sc_peek(sw) == SC_EOF)
				return fail(sw, "syntax error: missing '/' in ${}");
			return -1;
		}
		if (process_stop_on(sw, '}', true, &word, NULL) < 0) {
			if (sc_peek(sw) == SC_EOF)
				return fail(sw, "syntax error: missing '}'");
			return -1;
		}
		v = get_env(sw, name.buf);
		return replace(sw, pat.buf, pat.len, word.buf, v ? v : "", all, out);
	}
	default:
		return fail(sw, "unsupported modifier (%s) in substitution", mod.buf);
	}
}

static int
process(const struct fe_shlex *lx, const char *word, struct kiln_buf *result, struct words *w,
        struct kiln_err *err)
{
	struct sw sw = {.lx = lx, .s = word, .len = strlen(word), .emsg = KILN_BUF_INIT};
	/* a Go text/scanner skips a leading byte-order mark */
	if (kiln_str_has_prefix(word, "\xEF\xBB\xBF"))
		sw.pos = 3;
	if (process_stop_on(&sw, SC_EOF, false, result, w) < 0) {
		_cleanup_buf_ struct kiln_buf q = KILN_BUF_INIT;
		add_go_quoted(&q, word, sw.len);
		kiln_err_invalid(err, "failed to process %s: %s", q.buf, sw.emsg.buf);
		kiln_buf_release(&sw.emsg);
		return -EINVAL;
	}
	kiln_buf_release(&sw.emsg);
	return 0;
}

int
fe_expand_word(const struct fe_shlex *lx, const char *word, char **ret, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
	int r = process(lx, word, &out, NULL, err);
	if (r < 0)
		return r;
	*ret = kiln_buf_detach(&out, NULL);
	return 0;
}

int
fe_expand_words(const struct fe_shlex *lx, const char *word, struct kiln_strv *ret,
                struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
	_cleanup_strv_ struct kiln_strv list = KILN_STRV_INIT;
	struct words w = {.word = KILN_BUF_INIT, .out = &list};
	int r = process(lx, word, &out, &w, err);
	if (r >= 0)
		words_finish(&w);
	kiln_buf_release(&w.word);
	if (r < 0)
		return r;
	for (size_t i = 0; i < list.n; i++)
		kiln_strv_push_take(ret, TAKE_PTR(list.v[i]));
	return 0;
}
