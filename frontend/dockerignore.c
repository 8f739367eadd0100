/*
 * .dockerignore patterns, read as moby/patternmatcher's ignorefile.ReadAll and matched as
 * its PatternMatcher.MatchesOrParentMatches. patternmatcher turns each pattern into a Go
 * regexp (or an exact/prefix/suffix test); kiln builds the same regexp text and runs it
 * on a small Thompson NFA, so odd patterns (`[*]`, `\d`, `^`) mean what they mean there.
 * Everything is compiled at parse time: matching allocates nothing for ordinary patterns.
 */
#include "dockerignore.h"
#include "fe_utf8.h"

#include <fcntl.h>

enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_REGEXP };

enum op {
	OP_CLASS, /* one rune in class[arg] */
	OP_ANY,   /* one rune but '\n' (Go's `.`) */
	OP_SPLIT, /* go to x and y */
	OP_JMP,   /* go to x */
	OP_BOT,   /* at the beginning of the text */
	OP_EOT,   /* at the end of the text */
	OP_WORDB, /* \b */
	OP_NWORDB,
	OP_MATCH,
};

struct inst {
	enum op op;
	uint32_t x, y;
};

struct range {
	int32_t lo, hi;
};

struct class
{
	struct range *r;
	size_t n, alloc;
	bool neg;
};

struct pattern {
	char *text;        /* as fe_ignore_pattern shows it: "!" + clean for exceptions */
	const char *clean; /* patternmatcher's cleanedPattern */
	size_t clean_len;
	bool exclusion;
	enum match_type type;
	struct inst *prog;
	size_t nprog, prog_alloc;
	struct class *classes;
	size_t nclasses, classes_alloc;
};

struct fe_ignore {
	struct pattern *p;
	size_t n, alloc;
};

static void
pattern_release(struct pattern *p)
{
	free(p->text);
	free(p->prog);
	for (size_t i = 0; i < p->nclasses; i++)
		free(p->classes[i].r);
	free(p->classes);
}

void
fe_ignore_free(struct fe_ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		pattern_release(&ig->p[i]);
	free(ig->p);
	free(ig);
}

static void
fe_ignore_freep(struct fe_ignore **ig)
{
	fe_ignore_free(*ig);
}

size_t
fe_ignore_count(const struct fe_ignore *ig)
{
	return ig ? ig->n : 0;
}

const char *
fe_ignore_pattern(const struct fe_ignore *ig, size_t i)
{
	return ig->p[i].text;
}

/* Trim s[0..*len) in place of Unicode white space; returns the new start. */
static const char *
trim_space(const char *s, size_t *len)
{
	size_t n = *len;
	while (n) {
		size_t w;
		if (!fe_is_space(fe_utf8_rune(s, n, &w)))
			break;
		s += w;
		n -= w;
	}
	while (n) {
		/* step back to the start of the last rune; a stray byte is no space */
		size_t k = n - 1, w;
		while (k > 0 && n - k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		int32_t r = fe_utf8_rune(s + k, n - k, &w);
		if (k + w != n || !fe_is_space(r))
			break;
		n = k;
	}
	*len = n;
	return s;
}

/* ---- filepath.Match's syntax check (what patternmatcher.New calls it for) ---- */

static bool
get_esc(const char **pp, const char *end)
{
	const char *p = *pp;
	if (p >= end || *p == '-' || *p == ']')
		return false;
	if (*p == '\\') {
		p++;
		if (p >= end)
			return false;
	}
	size_t w;
	int32_t r = fe_utf8_rune(p, (size_t)(end - p), &w);
	if (r == FE_RUNE_ERROR && w == 1)
		return false;
	p += w;
	*pp = p;
	return p < end;
}

static bool
chunk_valid(const char *c, const char *end)
{
	while (c < end) {
		if (*c == '[') {
			c++;
			if (c < end && *c == '^')
				c++;
			for (int nrange = 0;; nrange++) {
				if (c < end && *c == ']' && nrange > 0) {
					c++;
					break;
				}
				if (!get_esc(&c, end))
					return false;
				if (*c == '-') {
					c++;
					if (!get_esc(&c, end))
						return false;
				}
			}
		} else if (*c == '\\') {
			c++;
			if (c >= end)
				return false;
			c++;
		} else {
			c++;
		}
	}
	return true;
}

static bool
glob_valid(const char *p)
{
	while (*p) {
		while (*p == '*')
			p++;
		const char *c = p;
		bool inrange = false;
		for (; *p; p++) {
			if (*p == '\\') {
				if (p[1])
					p++;
			} else if (*p == '[') {
				inrange = true;
			} else if (*p == ']') {
				inrange = false;
			} else if (*p == '*' && !inrange) {
				break;
			}
		}
		if (!chunk_valid(c, p))
			return false;
	}
	return true;
}

/* ---- a regexp compiler for the RE2 subset patternmatcher produces ---- */

struct re {
	struct pattern *pat;
	const char *s, *end;
};

static uint32_t
emit(struct pattern *p, enum op op, uint32_t x, uint32_t y)
{
	KILN_GROW(p->prog, p->prog_alloc, p->nprog + 1);
	p->prog[p->nprog] = (struct inst){op, x, y};
	return (uint32_t)p->nprog++;
}

/* Put a new instruction at `at`, moving the code after it and its jump targets along. */
static void
insert(struct pattern *p, uint32_t at, enum op op)
{
	KILN_GROW(p->prog, p->prog_alloc, p->nprog + 1);
	memmove(&p->prog[at + 1], &p->prog[at], (p->nprog - at) * sizeof(*p->prog));
	p->nprog++;
	for (size_t i = at + 1; i < p->nprog; i++) {
		struct inst *in = &p->prog[i];
		if (in->op == OP_SPLIT || in->op == OP_JMP) {
			if (in->x >= at)
				in->x++;
			if (in->op == OP_SPLIT && in->y >= at)
				in->y++;
		}
	}
	p->prog[at] = (struct inst){op, 0, 0};
}

static struct class *
new_class(struct pattern *p, uint32_t *idx)
{
	KILN_GROW(p->classes, p->classes_alloc, p->nclasses + 1);
	*idx = (uint32_t)p->nclasses;
	struct class *c = &p->classes[p->nclasses++];
	*c = (struct class){0};
	return c;
}

static void
class_add(struct class *c, int32_t lo, int32_t hi)
{
	KILN_GROW(c->r, c->alloc, c->n + 1);
	c->r[c->n++] = (struct range){lo, hi};
}

/* Add the complement of ranges (sorted, disjoint) to c. */
static void
class_add_negated(struct class *c, const struct range *r, size_t n)
{
	int32_t next = 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].lo > next)
			class_add(c, next, r[i].lo - 1);
		next = r[i].hi + 1;
	}
	if (next <= 0x10FFFF)
		class_add(c, next, 0x10FFFF);
}

static const struct range perl_d[] = {{'0', '9'}};
static const struct range perl_s[] = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
static const struct range perl_w[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};

/* \d \s \w and their capitals into c; false when `ch` is none of them. */
static bool
add_perl_class(struct class *c, char ch)
{
	const struct range *r;
	size_t n;
	switch (ch | 0x20) {
	case 'd':
		r = perl_d, n = KILN_ARRAY_SIZE(perl_d);
		break;
	case 's':
		r = perl_s, n = KILN_ARRAY_SIZE(perl_s);
		break;
	case 'w':
		r = perl_w, n = KILN_ARRAY_SIZE(perl_w);
		break;
	default:
		return false;
	}
	if (ch >= 'a')
		for (size_t i = 0; i < n; i++)
			class_add(c, r[i].lo, r[i].hi);
	else
		class_add_negated(c, r, n);
	return true;
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

/* One escaped rune after a backslash (Go's parseEscape); -1 when invalid. */
static int32_t
parse_escape(struct re *re)
{
	if (re->s >= re->end)
		return -1;
	unsigned char c = (unsigned char)*re->s++;
	if (c >= 0x80)
		return -1;
	switch (c) {
	case 'a':
		return '\a';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'v':
		return '\v';
	case 'x': {
		int32_t v = 0;
		if (re->s < re->end && *re->s == '{') {
			re->s++;
			int nd = 0;
			while (re->s < re->end && *re->s != '}') {
				int h = hexval(*re->s++);
				if (h < 0 || v > 0x10FFFF)
					return -1;
				v = v * 16 + h;
				nd++;
			}
			if (re->s >= re->end || !nd || v > 0x10FFFF)
				return -1;
			re->s++;
			return v;
		}
		for (int i = 0; i < 2; i++) {
			int h = re->s < re->end ? hexval(*re->s++) : -1;
			if (h < 0)
				return -1;
			v = v * 16 + h;
		}
		return v;
	}
	}
	if (c >= '0' && c <= '7') {
		/* \1-\7 alone would be a backreference, which Go rejects */
		if (c != '0' && (re->s >= re->end || *re->s < '0' || *re->s > '7'))
			return -1;
		int32_t v = c - '0';
		for (int i = 1; i < 3 && re->s < re->end && *re->s >= '0' && *re->s <= '7'; i++)
			v = v * 8 + (*re->s++ - '0');
		return v;
	}
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return -1;
	return c;
}

static int32_t
next_rune(struct re *re)
{
	size_t w;
	int32_t r = fe_utf8_rune(re->s, (size_t)(re->end - re->s), &w);
	re->s += w;
	return r;
}

static const struct {
	const char *name;
	const char *ranges; /* pairs of lo,hi */
} posix_classes[] = {
        {"alnum", "09AZaz"},
        {"alpha", "AZaz"},
        {"ascii", "\x01\x7f"},
        {"blank", "\t\t  "},
        {"cntrl", "\x01\x1f\x7f\x7f"},
        {"digit", "09"},
        {"graph", "!~"},
        {"lower", "az"},
        {"print", " ~"},
        {"punct", "!/:@[`{~"},
        {"space", "\t\r  "},
        {"upper", "AZ"},
        {"word", "09AZ__az"},
        {"xdigit", "09AFaf"},
};

/* A [:name:] class at re->s (just after its '['); 1 parsed, 0 not one, -1 bad name. */
static int
parse_posix_class(struct re *re, struct class *c)
{
	if (re->end - re->s < 2 || re->s[0] != ':')
		return 0;
	const char *close = NULL;
	for (const char *q = re->s + 1; q + 1 < re->end; q++)
		if (q[0] == ':' && q[1] == ']') {
			close = q;
			break;
		}
	if (!close)
		return 0;
	const char *name = re->s + 1;
	bool neg = *name == '^';
	if (neg)
		name++;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(posix_classes); i++) {
		size_t nl = strlen(posix_classes[i].name);
		if ((size_t)(close - name) != nl || memcmp(name, posix_classes[i].name, nl) != 0)
			continue;
		const char *rg = posix_classes[i].ranges;
		struct range r[8];
		size_t n = 0;
		/* "ascii" starts at 0, which a C string cannot hold */
		for (; rg[0]; rg += 2)
			r[n++] = (struct range){(unsigned char)rg[0], (unsigned char)rg[1]};
		if (kiln_str_eq(posix_classes[i].name, "ascii") ||
		    kiln_str_eq(posix_classes[i].name, "cntrl"))
			r[0].lo = 0;
		if (neg)
			class_add_negated(c, r, n);
		else
			for (size_t k = 0; k < n; k++)
				class_add(c, r[k].lo, r[k].hi);
		re->s = close + 2;
		return 1;
	}
	return -1;
}

/* A bracket class; re->s is just after the '['. */
static int
parse_class(struct re *re)
{
	uint32_t idx;
	struct class *c = new_class(re->pat, &idx);
	if (re->s < re->end && *re->s == '^') {
		c->neg = true;
		re->s++;
	}
	bool first = true;
	for (;;) {
		if (re->s >= re->end)
			return -1;
		if (*re->s == ']' && !first) {
			re->s++;
			break;
		}
		first = false;
		if (*re->s == '[') {
			re->s++;
			int r = parse_posix_class(re, c);
			if (r < 0)
				return -1;
			if (r > 0)
				continue;
			re->s--;
		}
		int32_t lo;
		if (*re->s == '\\') {
			re->s++;
			if (re->s < re->end && add_perl_class(c, *re->s)) {
				re->s++;
				continue;
			}
			lo = parse_escape(re);
		} else {
			lo = next_rune(re);
		}
		if (lo < 0)
			return -1;
		int32_t hi = lo;
		if (re->end - re->s >= 2 && re->s[0] == '-' && re->s[1] != ']') {
			re->s++;
			if (*re->s == '\\') {
				re->s++;
				hi = parse_escape(re);
			} else {
				hi = next_rune(re);
			}
			if (hi < lo)
				return -1;
		}
		class_add(c, lo, hi);
	}
	emit(re->pat, OP_CLASS, idx, 0);
	return 0;
}

static int parse_seq(struct re *re, bool in_group);

static int
parse_atom(struct re *re)
{
	struct pattern *p = re->pat;
	char c = *re->s;
	if (c == '(') {
		re->s++;
		if (parse_seq(re, true) < 0 || re->s >= re->end || *re->s != ')')
			return -1;
		re->s++;
		return 0;
	}
	if (c == '[') {
		re->s++;
		return parse_class(re);
	}
	if (c == '.') {
		re->s++;
		emit(p, OP_ANY, 0, 0);
		return 0;
	}
	if (c == '^' || c == '$') {
		re->s++;
		emit(p, c == '^' ? OP_BOT : OP_EOT, 0, 0);
		return 0;
	}
	if (c == ')' || c == '|' || c == '*' || c == '+' || c == '?' || c == '{')
		return -1; /* never produced by patternmatcher's conversion */
	uint32_t idx;
	int32_t r;
	if (c == '\\') {
		re->s++;
		if (re->s >= re->end)
			return -1;
		char e = *re->s;
		if (e == 'A' || e == 'z' || e == 'b' || e == 'B') {
			re->s++;
			emit(p,
			     e == 'A'   ? OP_BOT
			     : e == 'z' ? OP_EOT
			     : e == 'b' ? OP_WORDB
			                : OP_NWORDB,
			     0, 0);
			return 0;
		}
		struct class *cl = new_class(p, &idx);
		if (add_perl_class(cl, e)) {
			re->s++;
			emit(p, OP_CLASS, idx, 0);
			return 0;
		}
		r = parse_escape(re);
		if (r < 0)
			return -1;
		class_add(cl, r, r);
		emit(p, OP_CLASS, idx, 0);
		return 0;
	}
	r = next_rune(re);
	class_add(new_class(p, &idx), r, r);
	emit(p, OP_CLASS, idx, 0);
	return 0;
}

static int
parse_seq(struct re *re, bool in_group)
{
	struct pattern *p = re->pat;
	while (re->s < re->end && !(in_group && *re->s == ')')) {
		uint32_t start = (uint32_t)p->nprog;
		if (parse_atom(re) < 0)
			return -1;
		if (re->s >= re->end)
			break;
		char q = *re->s;
		if (q != '*' && q != '+' && q != '?')
			continue;
		re->s++;
		if (re->s < re->end && (*re->s == '*' || *re->s == '+' || *re->s == '?'))
			return -1; /* Go: invalid nested repetition operator */
		if (q == '+') {
			emit(p, OP_SPLIT, start, (uint32_t)p->nprog + 1);
			continue;
		}
		insert(p, start, OP_SPLIT);
		if (q == '*')
			emit(p, OP_JMP, start, 0);
		p->prog[start].x = start + 1;
		p->prog[start].y = (uint32_t)p->nprog;
	}
	return 0;
}

static int
re_compile(struct pattern *p, const char *text, size_t len)
{
	struct re re = {.pat = p, .s = text, .end = text + len};
	if (parse_seq(&re, false) < 0 || re.s != re.end)
		return -1;
	emit(p, OP_MATCH, 0, 0);
	return 0;
}

/* ---- matching ---- */

static bool
class_has(const struct class *c, int32_t r)
{
	bool in = false;
	for (size_t i = 0; i < c->n && !in; i++)
		in = r >= c->r[i].lo && r <= c->r[i].hi;
	return in != c->neg;
}

static bool
is_word(int32_t r)
{
	return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
	       r == '_';
}

struct nfa {
	const struct pattern *p;
	uint32_t *mark; /* generation in which each pc was added */
	uint32_t gen;
	const char *s;
	size_t len;
};

static void
add_thread(struct nfa *n, uint32_t *list, size_t *cnt, uint32_t pc, size_t pos, int32_t prev,
           int32_t next)
{
	if (n->mark[pc] == n->gen)
		return;
	n->mark[pc] = n->gen;
	const struct inst *in = &n->p->prog[pc];
	switch (in->op) {
	case OP_JMP:
		add_thread(n, list, cnt, in->x, pos, prev, next);
		return;
	case OP_SPLIT:
		add_thread(n, list, cnt, in->x, pos, prev, next);
		add_thread(n, list, cnt, in->y, pos, prev, next);
		return;
	case OP_BOT:
		if (pos == 0)
			add_thread(n, list, cnt, pc + 1, pos, prev, next);
		return;
	case OP_EOT:
		if (pos == n->len)
			add_thread(n, list, cnt, pc + 1, pos, prev, next);
		return;
	case OP_WORDB:
	case OP_NWORDB:
		if ((is_word(prev) != is_word(next)) == (in->op == OP_WORDB))
			add_thread(n, list, cnt, pc + 1, pos, prev, next);
		return;
	default:
		list[(*cnt)++] = pc;
	}
}

static bool
nfa_run(struct nfa *n, uint32_t *clist, uint32_t *nlist)
{
	size_t nc = 0, nn = 0, pos = 0, w = 0;
	int32_t prev = -1;
	int32_t cur = n->len ? fe_utf8_rune(n->s, n->len, &w) : -1;
	n->gen++;
	add_thread(n, clist, &nc, 0, 0, prev, cur);
	for (;;) {
		for (size_t i = 0; i < nc; i++)
			if (n->p->prog[clist[i]].op == OP_MATCH)
				return true;
		if (pos >= n->len || !nc)
			return false;
		size_t npos = pos + w, nw = 0;
		int32_t nxt = npos < n->len ? fe_utf8_rune(n->s + npos, n->len - npos, &nw) : -1;
		n->gen++;
		nn = 0;
		for (size_t i = 0; i < nc; i++) {
			const struct inst *in = &n->p->prog[clist[i]];
			bool ok = in->op == OP_ANY ? cur != '\n'
			                           : in->op == OP_CLASS &&
			                                     class_has(&n->p->classes[in->x], cur);
			if (ok)
				add_thread(n, nlist, &nn, clist[i] + 1, npos, cur, nxt);
		}
		uint32_t *t = clist;
		clist = nlist;
		nlist = t;
		nc = nn;
		prev = cur;
		cur = nxt;
		pos = npos;
		w = nw;
	}
}

#define NFA_STACK_STATES 256

static bool
regexp_match(const struct pattern *p, const char *s, size_t len)
{
	uint32_t stack[3 * NFA_STACK_STATES];
	uint32_t *mem = stack;
	_cleanup_free_ uint32_t *heap = NULL;
	if (p->nprog > NFA_STACK_STATES)
		mem = heap = kiln_xreallocarray(NULL, 3 * p->nprog, sizeof(*mem));
	struct nfa n = {.p = p, .mark = mem, .s = s, .len = len};
	memset(n.mark, 0, p->nprog * sizeof(*n.mark));
	return nfa_run(&n, mem + p->nprog, mem + 2 * p->nprog);
}

static bool
pattern_match(const struct pattern *p, const char *s, size_t len)
{
	switch (p->type) {
	case M_EXACT:
		return len == p->clean_len && memcmp(s, p->clean, len) == 0;
	case M_PREFIX:
		return len >= p->clean_len - 2 && memcmp(s, p->clean, p->clean_len - 2) == 0;
	case M_SUFFIX: {
		const char *suf = p->clean + 2;
		size_t sl = p->clean_len - 2;
		if (len >= sl && memcmp(s + len - sl, suf, sl) == 0)
			return true;
		/* "**" + "/foo" also matches "foo" itself */
		return suf[0] == '/' && len == sl - 1 && memcmp(s, suf + 1, len) == 0;
	}
	case M_REGEXP:
		return regexp_match(p, s, len);
	}
	return false;
}

bool
fe_ignore_matches(const struct fe_ignore *ig, const char *path)
{
	if (!ig)
		return false;
	size_t len = strlen(path);
	const char *last_slash = memrchr(path, '/', len);
	bool matched = false;
	for (size_t i = 0; i < ig->n; i++) {
		const struct pattern *p = &ig->p[i];
		/* an inclusion cannot change a match, nor an exception a non-match */
		if (p->exclusion != matched)
			continue;
		bool m = pattern_match(p, path, len);
		/* a pattern matching a parent directory covers everything below it */
		for (const char *q = path; !m && last_slash && q <= last_slash; q++)
			if (*q == '/')
				m = pattern_match(p, path, (size_t)(q - path));
		if (m)
			matched = !p->exclusion;
	}
	return matched;
}

/* ---- building the set ---- */

static bool
should_escape(int32_t r)
{
	return r < 0x80 && r && strchr(".+()|{}$", r);
}

/* patternmatcher's Pattern.compile: pick the match type and build the regexp. */
static int
pattern_compile(struct pattern *p)
{
	_cleanup_buf_ struct kiln_buf re = KILN_BUF_INIT;
	enum match_type type = M_EXACT;
	const char *s = p->clean, *end = p->clean + p->clean_len;
	kiln_buf_addch(&re, '^');
	/* a Go text/scanner drops a leading byte-order mark */
	if (kiln_str_has_prefix(s, "\xEF\xBB\xBF"))
		s += 3;
	for (int i = 0; s < end; i++) {
		size_t w;
		int32_t ch = fe_utf8_rune(s, (size_t)(end - s), &w);
		s += w;
		if (ch == '*') {
			if (s < end && *s == '*') {
				s++;
				if (s < end && *s == '/')
					s++;
				if (s >= end) {
					if (type == M_EXACT) {
						type = M_PREFIX;
					} else {
						kiln_buf_addstr(&re, ".*");
						type = M_REGEXP;
					}
				} else {
					kiln_buf_addstr(&re, "(.*/)?");
					type = M_REGEXP;
				}
				if (i == 0)
					type = M_SUFFIX;
			} else {
				kiln_buf_addstr(&re, "[^/]*");
				type = M_REGEXP;
			}
		} else if (ch == '?') {
			kiln_buf_addstr(&re, "[^/]");
			type = M_REGEXP;
		} else if (should_escape(ch)) {
			kiln_buf_addch(&re, '\\');
			kiln_buf_addch(&re, ch);
		} else if (ch == '\\') {
			kiln_buf_addch(&re, '\\');
			if (s < end) {
				ch = fe_utf8_rune(s, (size_t)(end - s), &w);
				s += w;
				kiln_buf_add_rune(&re, (uint32_t)ch);
				type = M_REGEXP;
			}
		} else if (ch == '[' || ch == ']') {
			kiln_buf_addch(&re, ch);
			type = M_REGEXP;
		} else {
			kiln_buf_add_rune(&re, (uint32_t)ch);
		}
	}
	p->type = type;
	if (type != M_REGEXP)
		return 0;
	kiln_buf_addch(&re, '$');
	return re_compile(p, re.buf, re.len);
}

/* Append one pattern as patternmatcher.New takes it; `raw` has had ReadAll's treatment. */
static int
add_pattern(struct fe_ignore *ig, const char *raw, const char *file, int line, struct kiln_err *err)
{
	size_t len = strlen(raw);
	const char *s = trim_space(raw, &len);
	if (!len)
		return 0;
	_cleanup_free_ char *t = kiln_xstrndup(s, len);
	_cleanup_free_ char *clean = kiln_path_clean(t);
	struct pattern p = {0};
	if (clean[0] == '!') {
		if (!clean[1]) {
			if (file)
				return kiln_err_at(err, file, line, line,
				                   "illegal exclusion pattern: \"!\"");
			return kiln_err_invalid(err, "illegal exclusion pattern: \"!\"");
		}
		p.exclusion = true;
	}
	p.text = TAKE_PTR(clean);
	p.clean = p.text + (p.exclusion ? 1 : 0);
	p.clean_len = strlen(p.clean);
	if (!glob_valid(p.clean) || pattern_compile(&p) < 0) {
		int r;
		if (file)
			r = kiln_err_at(err, file, line, line, "invalid pattern `%s`: %s", p.clean,
			                "syntax error in pattern");
		else
			r = kiln_err_invalid(err, "invalid exclude pattern `%s`: %s", p.clean,
			                     "syntax error in pattern");
		pattern_release(&p);
		return r;
	}
	KILN_GROW(ig->p, ig->alloc, ig->n + 1);
	ig->p[ig->n++] = p;
	return 0;
}

/* ReadAll's per-line treatment: trim, split off "!", clean, drop a leading "/". */
static char *
normalize_line(const char *s, size_t len)
{
	s = trim_space(s, &len);
	if (!len)
		return NULL;
	bool invert = s[0] == '!';
	if (invert) {
		s++;
		len--;
		s = trim_space(s, &len);
	}
	_cleanup_free_ char *t = kiln_xstrndup(s, len);
	_cleanup_free_ char *clean = len ? kiln_path_clean(t) : kiln_xstrdup("");
	const char *c = clean;
	if (strlen(c) > 1 && c[0] == '/')
		c++;
	return kiln_xasprintf("%s%s", invert ? "!" : "", c);
}

int
fe_ignore_parse(const char *file, const char *data, struct fe_ignore **ret, struct kiln_err *err)
{
	_cleanup_(fe_ignore_freep) struct fe_ignore *ig = kiln_xcalloc(1, sizeof(*ig));
	const char *s = data;
	if (kiln_str_has_prefix(s, "\xEF\xBB\xBF"))
		s += 3;
	for (int line = 1; *s; line++) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		const char *next = nl ? nl + 1 : s + len;
		/* bufio.ScanLines drops one "\r" before the newline */
		if (len && s[len - 1] == '\r')
			len--;
		/* only a '#' in the first column starts a comment (ReadAll checks before
		 * trimming) */
		if (s[0] != '#') {
			_cleanup_free_ char *pat = normalize_line(s, len);
			if (pat && add_pattern(ig, pat, file, line, err) < 0)
				return -EINVAL;
		}
		s = next;
	}
	*ret = TAKE_PTR(ig);
	return 0;
}

int
fe_ignore_from_list(char *const *patterns, size_t n, struct fe_ignore **ret, struct kiln_err *err)
{
	_cleanup_(fe_ignore_freep) struct fe_ignore *ig = kiln_xcalloc(1, sizeof(*ig));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *pat = normalize_line(patterns[i], strlen(patterns[i]));
		if (pat && add_pattern(ig, pat, NULL, 0, err) < 0)
			return -EINVAL;
	}
	*ret = TAKE_PTR(ig);
	return 0;
}

/* Read `path` into b; 1 when read, 0 when it does not exist. */
static int
read_optional(const char *path, struct kiln_buf *b, struct kiln_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_err_set(err, errno, "open `%s`", path);
	}
	if (kiln_buf_read_fd(b, fd, err) < 0)
		return kiln_err_wrap(err, "read `%s`", path);
	return 1;
}

int
fe_ignore_load(const char *context_dir, const char *dockerfile, struct fe_ignore **ret,
               struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	_cleanup_free_ char *path = NULL;
	int r = 0;
	if (dockerfile) {
		path = kiln_xasprintf("%s.dockerignore", dockerfile);
		r = read_optional(path, &b, err);
		if (r < 0)
			return r;
	}
	if (r == 0) {
		free(path);
		path = kiln_xasprintf("%s/.dockerignore", context_dir);
		r = read_optional(path, &b, err);
		if (r < 0)
			return r;
	}
	if (r == 0) {
		*ret = kiln_xcalloc(1, sizeof(**ret));
		return 0;
	}
	return fe_ignore_parse(path, b.buf, ret, err);
}
