/* The build graph: vertices with content digests, deduplicated, in topological order. */
#include "sv.h"

/* SHA256_Init and friends are deprecated in OpenSSL 3 but kept: unlike EVP they need no
 * provider fetch, whose first use loads openssl.cnf (a millisecond of every `kiln plan`),
 * and no context allocation per vertex. Same algorithm, so the same digests. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

struct sv_graph *
sv_graph_new(void)
{
	return kiln_xcalloc(1, sizeof(struct sv_graph));
}

static void
vertex_free(struct sv_vertex *v)
{
	json_decref(v->def);
	free(v->inputs);
	free(v->stage);
	free(v->description);
	free(v);
}

static void array_memo_free(struct sv_array_memo *m);

void
sv_graph_free(struct sv_graph *g)
{
	if (!g)
		return;
	array_memo_free(g->hash_memo);
	for (size_t i = 0; i < g->nvertices; i++)
		vertex_free(g->vertices[i]);
	free(g->vertices);
	free(g->by_digest);
	for (size_t i = 0; i < g->nresults; i++) {
		free(g->results[i].name);
		json_decref(g->results[i].config);
	}
	free(g->results);
	free(g);
}

const char *
sv_op_name(enum sv_op op)
{
	switch (op) {
	case SV_OP_SOURCE:
		return "source";
	case SV_OP_EXEC:
		return "exec";
	case SV_OP_FILE:
		return "file";
	}
	return "unknown";
}

/*
 * A digest of a JSON value that depends only on its content: every value is fed to SHA-256
 * as a type tag, a length and its bytes, object members in key order. It walks jansson's
 * tree directly; printing canonical JSON text just to hash it was most of the cost of
 * planning long Dockerfiles.
 */
/* The bytes go through a small buffer: a def is hundreds of short strings, and one
 * EVP_DigestUpdate per length and per string cost more than the hashing itself. With
 * `out` set, the bytes are collected there instead of hashed (see hash_shared_array). */
struct hasher {
	SHA256_CTX sha;
	struct kiln_buf *out;
	struct sv_array_memo *memo; /* NULL: no memo */
	size_t n;
	unsigned char buf[4096];
};

/*
 * The bytes a shared array (a RUN's env, shared by the RUNs between two ENVs) hashes to,
 * kept from one vertex to the next: each RUN of a long stage hashed its whole env entry by
 * entry, quadratic in the stage's length, while all but the last few entries are the same
 * values as in the previous RUN's array (do_run keeps them). The memo holds a reference to
 * the array, so its elements stay alive and their addresses unique while they are compared
 * with the next array's; defs never change once added (sv_graph_add), so an element at the
 * same address hashes to the same bytes. Only the SHA-256 of those bytes is left per RUN.
 */
struct sv_array_memo {
	json_t *array;
	size_t n, alloc;
	const json_t **elems; /* the array's elements, */
	size_t *end;          /* and where each one's bytes end in `bytes` */
	struct kiln_buf bytes;
};

static void
array_memo_release(struct sv_array_memo *m)
{
	json_decref(m->array);
	free(m->elems);
	free(m->end);
	kiln_buf_release(&m->bytes);
}

static void
array_memo_free(struct sv_array_memo *m)
{
	if (!m)
		return;
	array_memo_release(m);
	free(m);
}

static void
hash_flush(struct hasher *h)
{
	SHA256_Update(&h->sha, h->buf, h->n);
	h->n = 0;
}

static void
hash_add(struct hasher *h, const void *data, size_t len)
{
	if (h->out) {
		kiln_buf_add(h->out, data, len);
		return;
	}
	if (h->n + len > sizeof(h->buf)) {
		hash_flush(h);
		if (len > sizeof(h->buf)) {
			SHA256_Update(&h->sha, data, len);
			return;
		}
	}
	memcpy(h->buf + h->n, data, len);
	h->n += len;
}

static void
hash_len(struct hasher *h, char tag, size_t n)
{
	unsigned char b[9] = {(unsigned char)tag};
	for (int i = 0; i < 8; i++)
		b[1 + i] = (unsigned char)(n >> (8 * i));
	hash_add(h, b, sizeof(b));
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void hash_json(struct hasher *h, const json_t *v);

/* A shared array's bytes, from the memo where its elements are the memo's (see above). */
static void
hash_shared_array(struct hasher *h, const json_t *v)
{
	struct sv_array_memo *m = h->memo;
	size_t n = json_array_size(v), same = 0;
	if (v != m->array) {
		while (same < n && same < m->n && json_array_get(v, same) == m->elems[same])
			same++;
		KILN_GROW(m->elems, m->alloc, n);
		m->end = kiln_xreallocarray(m->end, m->alloc, sizeof(*m->end));
		kiln_buf_setlen(&m->bytes, same ? m->end[same - 1] : 0);
		struct hasher sub = {.out = &m->bytes};
		for (size_t i = same; i < n; i++) {
			m->elems[i] = json_array_get(v, i);
			hash_json(&sub, m->elems[i]);
			m->end[i] = m->bytes.len;
		}
		json_decref(m->array);
		m->array = json_incref((json_t *)v);
		m->n = n;
	}
	hash_len(h, 'a', n);
	hash_add(h, m->bytes.buf, m->bytes.len);
}

static void
hash_json(struct hasher *h, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char *stack_keys[32];
		const char **keys =
		        n <= 32 ? stack_keys : kiln_xreallocarray(NULL, n, sizeof(*keys));
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) keys[i++] = k;
		qsort(keys, n, sizeof(*keys), key_cmp);
		hash_len(h, 'o', n);
		for (i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			hash_len(h, 'k', kl);
			hash_add(h, keys[i], kl);
			hash_json(h, json_object_get(v, keys[i]));
		}
		if (keys != stack_keys)
			free(keys);
		break;
	}
	case JSON_ARRAY:
		if (h->memo && json_array_size(v) >= 8 && v->refcount > 1) {
			hash_shared_array(h, v);
			break;
		}
		hash_len(h, 'a', json_array_size(v));
		for (size_t i = 0; i < json_array_size(v); i++)
			hash_json(h, json_array_get(v, i));
		break;
	case JSON_STRING:
		hash_len(h, 's', json_string_length(v));
		hash_add(h, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		hash_len(h, 'i', (size_t)json_integer_value(v));
		break;
	case JSON_REAL: {
		double d = json_real_value(v);
		hash_len(h, 'r', 0);
		hash_add(h, &d, sizeof(d));
		break;
	}
	case JSON_TRUE:
		hash_len(h, 't', 0);
		break;
	case JSON_FALSE:
		hash_len(h, 'f', 0);
		break;
	case JSON_NULL:
		hash_len(h, 'n', 0);
		break;
	}
}

void
sv_json_digest(const json_t *value, struct kiln_digest *out)
{
	struct hasher h; /* not zeroed: only buf[0..n) is ever read */
	SHA256_Init(&h.sha);
	h.out = NULL;
	h.memo = NULL;
	h.n = 0;
	hash_json(&h, value);
	hash_flush(&h);
	SHA256_Final(out->bytes, &h.sha);
}

/* What a vertex is: its op, its definition and its inputs' digests, in that order. */
static void
vertex_digest(struct sv_graph *g, enum sv_op op, json_t *def, struct sv_vertex *const *inputs,
              size_t ninputs, struct kiln_digest *d)
{
	struct hasher h; /* not zeroed: only buf[0..n) is ever read */
	SHA256_Init(&h.sha);
	h.out = NULL;
	if (!g->hash_memo) {
		g->hash_memo = kiln_xcalloc(1, sizeof(*g->hash_memo));
		g->hash_memo->bytes = (struct kiln_buf)KILN_BUF_INIT;
	}
	h.memo = g->hash_memo;
	h.n = 0;
	const char *name = sv_op_name(op);
	hash_len(&h, 'p', strlen(name));
	hash_add(&h, name, strlen(name));
	hash_json(&h, def);
	hash_len(&h, 'a', ninputs);
	for (size_t i = 0; i < ninputs; i++)
		hash_add(&h, inputs[i]->digest.bytes, sizeof(inputs[i]->digest.bytes));
	hash_flush(&h);
	SHA256_Final(d->bytes, &h.sha);
}

static size_t
digest_bucket(const struct kiln_digest *d, size_t size)
{
	size_t h;
	memcpy(&h, d->bytes, sizeof(h)); /* a SHA-256 prefix is already uniformly spread */
	return h & (size - 1);
}

/* The table slot holding digest d, or the empty slot where it belongs. The table is kept
 * at most half full, so a 10,000-line Dockerfile's graph dedups in linear time. */
static struct sv_vertex **
digest_slot(struct sv_graph *g, const struct kiln_digest *d)
{
	if ((g->nvertices + 1) * 2 > g->by_digest_size) {
		size_t size = g->by_digest_size ? g->by_digest_size * 2 : 256;
		struct sv_vertex **t = kiln_xcalloc(size, sizeof(*t));
		for (size_t i = 0; i < g->nvertices; i++) {
			size_t b = digest_bucket(&g->vertices[i]->digest, size);
			while (t[b])
				b = (b + 1) & (size - 1);
			t[b] = g->vertices[i];
		}
		free(g->by_digest);
		g->by_digest = t;
		g->by_digest_size = size;
	}
	size_t b = digest_bucket(d, g->by_digest_size);
	while (g->by_digest[b] &&
	       memcmp(g->by_digest[b]->digest.bytes, d->bytes, sizeof(d->bytes)) != 0)
		b = (b + 1) & (g->by_digest_size - 1);
	return &g->by_digest[b];
}

struct sv_vertex *
sv_graph_add(struct sv_graph *g, enum sv_op op, json_t *def, struct sv_vertex *const *inputs,
             size_t ninputs, const struct sv_vertex_meta *meta)
{
	struct kiln_digest d;
	vertex_digest(g, op, def, inputs, ninputs, &d);

	struct sv_vertex **slot = digest_slot(g, &d);
	if (*slot) {
		json_decref(def);
		return *slot;
	}

	struct sv_vertex *v = kiln_xcalloc(1, sizeof(*v));
	v->digest = d;
	kiln_digest_format(&d, v->digest_hex);
	v->op = op;
	v->def = def;
	if (ninputs) {
		v->inputs = kiln_xreallocarray(NULL, ninputs, sizeof(*v->inputs));
		memcpy(v->inputs, inputs, ninputs * sizeof(*v->inputs));
	}
	v->ninputs = ninputs;
	if (meta) {
		v->stage = meta->stage ? kiln_xstrdup(meta->stage) : NULL;
		v->description = meta->description ? kiln_xstrdup(meta->description) : NULL;
		v->line = meta->line;
	}
	KILN_GROW(g->vertices, g->alloc, g->nvertices + 1);
	v->index = g->nvertices;
	g->vertices[g->nvertices++] = v;
	*slot = v;
	return v;
}

void
sv_graph_add_result(struct sv_graph *g, const char *name, struct sv_vertex *vertex, json_t *config,
                    bool target)
{
	KILN_GROW(g->results, g->results_alloc, g->nresults + 1);
	g->results[g->nresults++] = (struct sv_result){
	        .name = kiln_xstrdup(name),
	        .vertex = vertex,
	        .config = config,
	        .target = target,
	};
}

/*
 * The plan as JSON, written straight into the buffer: byte for byte what jansson's
 * json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER) prints, without building a tree of the
 * whole graph first and without jansson's per-value callbacks, which together were most of
 * `kiln plan`'s time on long Dockerfiles.
 */
struct jw {
	struct kiln_buf *b;
	int fd;  /* >= 0: flush b to fd whenever it holds JW_FLUSH bytes */
	int err; /* the first write error, -errno */
	/* The text of the last shared array printed, as sv_array_memo keeps its hashed
	 * bytes: consecutive RUNs share one env array (see do_run), printed again for each,
	 * and the next env array shares all but its new entries. NULL: no memo. */
	struct sv_array_memo *memo;
	size_t memo_depth;
	struct jw_objs *objs; /* NULL: none kept (see jw_shared_object) */
};

/*
 * The text of objects printed more than once, by address and depth: the history entries
 * of stages that replay another share that stage's (frontend/convert.c), some 5,000 of a
 * long plan's. Like the arrays above, they do not change once in the graph, which holds
 * them for as long as this lives. Open addressing, at most half full.
 */
struct jw_obj {
	const json_t *v;
	size_t depth, off, len;
};
struct jw_objs {
	struct jw_obj *slot;
	size_t nslots, n;
	struct kiln_buf text;
};

static void
jw_objs_release(struct jw_objs *o)
{
	free(o->slot);
	kiln_buf_release(&o->text);
}

#define JW_FLUSH (64 * 1024)

static void
jw_flush(struct jw *w)
{
	for (size_t off = 0; w->err >= 0 && off < w->b->len;) {
		ssize_t n = write(w->fd, w->b->buf + off, w->b->len - off);
		if (n < 0 && errno != EINTR)
			w->err = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	w->b->len = 0;
}

static inline void
jw_add(struct jw *w, const char *s, size_t n)
{
	struct kiln_buf *b = w->b;
	if (b->len + n >= b->alloc) {
		if (w->fd >= 0 && b->len)
			jw_flush(w);
		kiln_buf_grow(b, n);
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n; /* NUL-terminated once, at the end */
}

#define jw_lit(w, s) jw_add((w), (s), sizeof(s) - 1)

static inline void
jw_ch(struct jw *w, char c)
{
	jw_add(w, &c, 1);
}

/* A newline and `depth` levels of two spaces: jansson's separator with JSON_INDENT(2). */
static void
jw_indent(struct jw *w, size_t depth)
{
	static const char spaces[] =
	        "\n                                                              ";
	size_t n = depth * 2;
	if (n < sizeof(spaces) - 1) {
		jw_add(w, spaces, n + 1);
		return;
	}
	jw_ch(w, '\n');
	while (n) {
		size_t k = n < sizeof(spaces) - 2 ? n : sizeof(spaces) - 2;
		jw_add(w, spaces + 1, k);
		n -= k;
	}
}

/* How many leading bytes of s need no escaping. Eight at a time: the strings (env arrays
 * above all) are most of a plan's bytes. hasless/haszero from "Bit Twiddling Hacks". */
static size_t
plain_prefix(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, q, b;
		memcpy(&x, s + i, 8);
		q = x ^ (ones * '"');
		b = x ^ (ones * '\\');
		if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high)
			break;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

/* jansson's escaping: quote and backslash, the short C escapes, other control characters
 * as \uXXXX; everything else (UTF-8 included) as it is. */
static void
jw_str(struct jw *w, const char *s, size_t n)
{
	jw_ch(w, '"');
	for (;;) {
		size_t k = plain_prefix(s, n);
		jw_add(w, s, k);
		if (k == n)
			break;
		unsigned char c = (unsigned char)s[k];
		s += k + 1;
		n -= k + 1;
		switch (c) {
		case '"':
			jw_lit(w, "\\\"");
			break;
		case '\\':
			jw_lit(w, "\\\\");
			break;
		case '\b':
			jw_lit(w, "\\b");
			break;
		case '\f':
			jw_lit(w, "\\f");
			break;
		case '\n':
			jw_lit(w, "\\n");
			break;
		case '\r':
			jw_lit(w, "\\r");
			break;
		case '\t':
			jw_lit(w, "\\t");
			break;
		default: {
			char u[7];
			snprintf(u, sizeof(u), "\\u%04X", c);
			jw_add(w, u, 6);
		}
		}
	}
	jw_ch(w, '"');
}

static void
jw_cstr(struct jw *w, const char *s)
{
	jw_str(w, s, strlen(s));
}

static void
jw_int(struct jw *w, long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", v);
	jw_add(w, tmp, (size_t)n);
}

static int
jw_chunk(const char *buf, size_t size, void *data)
{
	jw_add(data, buf, size);
	return 0;
}

static void jw_value(struct jw *w, const json_t *v, size_t depth);

/* A shared array's text at `depth`, re-rendered from its first element that is not the
 * memo's: "[", the elements, each after its comma and indent, then the indent and "]". */
static void
jw_shared_array(struct jw *w, const json_t *v, size_t depth)
{
	struct sv_array_memo *m = w->memo;
	size_t n = json_array_size(v), same = 0;
	if (v != m->array || depth != w->memo_depth) {
		while (depth == w->memo_depth && same < n && same < m->n &&
		       json_array_get(v, same) == m->elems[same])
			same++;
		KILN_GROW(m->elems, m->alloc, n);
		m->end = kiln_xreallocarray(m->end, m->alloc, sizeof(*m->end));
		kiln_buf_setlen(&m->bytes, same ? m->end[same - 1] : 0);
		struct jw sub = {.b = &m->bytes, .fd = -1};
		if (!same)
			jw_ch(&sub, '[');
		for (size_t i = same; i < n; i++) {
			if (i)
				jw_ch(&sub, ',');
			jw_indent(&sub, depth + 1);
			m->elems[i] = json_array_get(v, i);
			jw_value(&sub, m->elems[i], depth + 1);
			m->end[i] = m->bytes.len;
		}
		jw_indent(&sub, depth);
		jw_ch(&sub, ']');
		json_decref(m->array);
		m->array = json_incref((json_t *)v);
		m->n = n;
		w->memo_depth = depth;
	}
	jw_add(w, m->bytes.buf, m->bytes.len);
}

static void
jw_object(struct jw *w, const json_t *v, size_t depth)
{
	const char *k;
	json_t *x;
	bool first = true;
	jw_ch(w, '{');
	json_object_foreach((json_t *)v, k, x)
	{
		if (!first)
			jw_ch(w, ',');
		first = false;
		jw_indent(w, depth + 1);
		jw_cstr(w, k);
		jw_lit(w, ": ");
		jw_value(w, x, depth + 1);
	}
	jw_indent(w, depth);
	jw_ch(w, '}');
}

static size_t
jw_obj_bucket(const json_t *v, size_t depth, size_t nslots)
{
	uint64_t h = ((uint64_t)(uintptr_t)v >> 4) * 0x9E3779B97F4A7C15ull;
	return (size_t)((h >> 24) + depth) & (nslots - 1);
}

/* A shared object's text, rendered the first time it is met at this depth. */
static void
jw_shared_object(struct jw *w, const json_t *v, size_t depth)
{
	struct jw_objs *o = w->objs;
	if ((o->n + 1) * 2 > o->nslots) {
		size_t nslots = o->nslots ? o->nslots * 2 : 1024;
		struct jw_obj *t = kiln_xcalloc(nslots, sizeof(*t));
		for (size_t i = 0; i < o->nslots; i++) {
			if (!o->slot[i].v)
				continue;
			size_t b = jw_obj_bucket(o->slot[i].v, o->slot[i].depth, nslots);
			while (t[b].v)
				b = (b + 1) & (nslots - 1);
			t[b] = o->slot[i];
		}
		free(o->slot);
		o->slot = t;
		o->nslots = nslots;
	}
	size_t b = jw_obj_bucket(v, depth, o->nslots);
	while (o->slot[b].v && (o->slot[b].v != v || o->slot[b].depth != depth))
		b = (b + 1) & (o->nslots - 1);
	struct jw_obj *e = &o->slot[b];
	if (!e->v) {
		struct jw sub = {.b = &o->text, .fd = -1};
		size_t off = o->text.len;
		jw_object(&sub, v, depth);
		*e = (struct jw_obj){.v = v, .depth = depth, .off = off, .len = o->text.len - off};
		o->n++;
	}
	jw_add(w, o->text.buf + e->off, e->len);
}

static void
jw_value(struct jw *w, const json_t *v, size_t depth)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		if (json_object_size(v) == 0) {
			jw_lit(w, "{}");
			break;
		}
		if (w->objs && v->refcount > 1) {
			jw_shared_object(w, v, depth);
			break;
		}
		jw_object(w, v, depth);
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		if (n == 0) {
			jw_lit(w, "[]");
			break;
		}
		/* Shared, or made of values shared with other arrays. */
		if (w->memo && n >= 8 && (v->refcount > 1 || json_array_get(v, 0)->refcount > 1)) {
			jw_shared_array(w, v, depth);
			break;
		}
		jw_ch(w, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				jw_ch(w, ',');
			jw_indent(w, depth + 1);
			jw_value(w, json_array_get(v, i), depth + 1);
		}
		jw_indent(w, depth);
		jw_ch(w, ']');
		break;
	}
	case JSON_STRING:
		jw_str(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		jw_int(w, (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		/* No plan carries one; jansson's own printing keeps them exact. */
		json_dump_callback(v, jw_chunk, w, JSON_ENCODE_ANY);
		break;
	case JSON_TRUE:
		jw_lit(w, "true");
		break;
	case JSON_FALSE:
		jw_lit(w, "false");
		break;
	case JSON_NULL:
		jw_lit(w, "null");
		break;
	}
}

/* `"key": ` at the given depth, after a comma unless it is the object's first member. */
static void
jw_key(struct jw *w, const char *key, size_t depth, bool first)
{
	if (!first)
		jw_ch(w, ',');
	jw_indent(w, depth);
	jw_cstr(w, key);
	jw_lit(w, ": ");
}

static void
graph_json(const struct sv_graph *g, struct jw *jw)
{
	struct jw w = *jw;
	jw_lit(&w, "{");
	jw_key(&w, "vertices", 1, true);
	if (!g->nvertices)
		jw_lit(&w, "[]");
	else
		jw_ch(&w, '[');
	for (size_t i = 0; i < g->nvertices; i++) {
		const struct sv_vertex *v = g->vertices[i];
		if (i)
			jw_ch(&w, ',');
		jw_indent(&w, 2);
		jw_ch(&w, '{');
		jw_key(&w, "digest", 3, true);
		jw_cstr(&w, v->digest_hex);
		jw_key(&w, "op", 3, false);
		jw_cstr(&w, sv_op_name(v->op));
		jw_key(&w, "inputs", 3, false);
		if (!v->ninputs) {
			jw_lit(&w, "[]");
		} else {
			jw_ch(&w, '[');
			for (size_t j = 0; j < v->ninputs; j++) {
				if (j)
					jw_ch(&w, ',');
				jw_indent(&w, 4);
				jw_cstr(&w, v->inputs[j]->digest_hex);
			}
			jw_indent(&w, 3);
			jw_ch(&w, ']');
		}
		jw_key(&w, "def", 3, false);
		jw_value(&w, v->def, 3);
		if (v->stage) {
			jw_key(&w, "stage", 3, false);
			jw_cstr(&w, v->stage);
		}
		if (v->description) {
			jw_key(&w, "description", 3, false);
			jw_cstr(&w, v->description);
		}
		if (v->line) {
			jw_key(&w, "line", 3, false);
			jw_int(&w, v->line);
		}
		jw_indent(&w, 2);
		jw_ch(&w, '}');
	}
	if (g->nvertices) {
		jw_indent(&w, 1);
		jw_ch(&w, ']');
	}
	jw_key(&w, "results", 1, false);
	if (!g->nresults)
		jw_lit(&w, "[]");
	else
		jw_ch(&w, '[');
	for (size_t i = 0; i < g->nresults; i++) {
		const struct sv_result *r = &g->results[i];
		if (i)
			jw_ch(&w, ',');
		jw_indent(&w, 2);
		jw_ch(&w, '{');
		jw_key(&w, "stage", 3, true);
		jw_cstr(&w, r->name);
		jw_key(&w, "vertex", 3, false);
		jw_cstr(&w, r->vertex ? r->vertex->digest_hex : "");
		jw_key(&w, "target", 3, false);
		if (r->target)
			jw_lit(&w, "true");
		else
			jw_lit(&w, "false");
		if (r->config) {
			jw_key(&w, "config", 3, false);
			jw_value(&w, r->config, 3);
		}
		jw_indent(&w, 2);
		jw_ch(&w, '}');
	}
	if (g->nresults) {
		jw_indent(&w, 1);
		jw_ch(&w, ']');
	}
	jw_indent(&w, 0);
	jw_lit(&w, "}\n");
	*jw = w;
}

void
sv_graph_to_json(const struct sv_graph *g, struct kiln_buf *out)
{
	struct sv_array_memo memo = {.bytes = KILN_BUF_INIT};
	struct jw_objs objs = {.text = KILN_BUF_INIT};
	struct jw w = {.b = out, .fd = -1, .memo = &memo, .objs = &objs};
	graph_json(g, &w);
	array_memo_release(&memo);
	jw_objs_release(&objs);
	kiln_buf_setlen(out, out->len);
}

int
sv_graph_write_json(const struct sv_graph *g, int fd, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	kiln_buf_grow(&b, JW_FLUSH);
	struct sv_array_memo memo = {.bytes = KILN_BUF_INIT};
	struct jw_objs objs = {.text = KILN_BUF_INIT};
	struct jw w = {.b = &b, .fd = fd, .memo = &memo, .objs = &objs};
	graph_json(g, &w);
	array_memo_release(&memo);
	jw_objs_release(&objs);
	jw_flush(&w);
	if (w.err < 0)
		return kiln_err_set(err, -w.err, "write");
	return 0;
}

static void
dot_escape(struct kiln_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			kiln_buf_addch(out, '\\');
		if (*s == '\n') {
			kiln_buf_addstr(out, "\\n");
			continue;
		}
		kiln_buf_addch(out, *s);
	}
}

void
sv_graph_to_dot(const struct sv_graph *g, struct kiln_buf *out)
{
	kiln_buf_addstr(out,
	                "digraph kiln {\n\trankdir=TB;\n\tnode [shape=box, fontname=monospace];\n");
	for (size_t i = 0; i < g->nvertices; i++) {
		const struct sv_vertex *v = g->vertices[i];
		kiln_buf_addf(out, "\t\"%.19s\" [label=\"", v->digest_hex);
		if (v->stage) {
			kiln_buf_addch(out, '[');
			dot_escape(out, v->stage);
			kiln_buf_addstr(out, "] ");
		}
		dot_escape(out, v->description ? v->description : sv_op_name(v->op));
		kiln_buf_addf(out, "\\n%.19s\"];\n", v->digest_hex);
		for (size_t j = 0; j < v->ninputs; j++)
			kiln_buf_addf(out, "\t\"%.19s\" -> \"%.19s\";\n", v->inputs[j]->digest_hex,
			              v->digest_hex);
	}
	kiln_buf_addstr(out, "}\n");
}
