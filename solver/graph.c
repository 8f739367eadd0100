/* The build graph: vertices with content digests, deduplicated, in topological order. */
#include "sv.h"

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

void
sv_graph_free(struct sv_graph *g)
{
	if (!g)
		return;
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

static int
hash_chunk(const char *buf, size_t size, void *data)
{
	kiln_sha256_update(data, buf, size);
	return 0;
}

/* The digest of what a vertex is: SHA-256 of the canonical JSON {def, inputs, op} (sorted
 * keys, no whitespace), streamed from jansson into the hash without building the text. */
static void
vertex_digest(enum sv_op op, json_t *def, struct sv_vertex *const *inputs, size_t ninputs,
              struct kiln_digest *d)
{
	json_t *inp = json_array();
	for (size_t i = 0; i < ninputs; i++)
		json_array_append_new(inp, json_string(inputs[i]->digest_hex));
	json_t *id = json_pack("{s:s, s:O, s:o}", "op", sv_op_name(op), "def", def, "inputs", inp);
	struct kiln_sha256 *h = kiln_sha256_new();
	if (!id || json_dump_callback(id, hash_chunk, h,
	                              JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) < 0)
		abort();
	json_decref(id);
	kiln_sha256_final(h, d);
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
	vertex_digest(op, def, inputs, ninputs, &d);

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

static int
buf_chunk(const char *buf, size_t size, void *data)
{
	kiln_buf_add(data, buf, size);
	return 0;
}

void
sv_graph_to_json(const struct sv_graph *g, struct kiln_buf *out)
{
	json_t *root = json_object();
	json_t *vs = json_array();
	for (size_t i = 0; i < g->nvertices; i++) {
		const struct sv_vertex *v = g->vertices[i];
		json_t *inputs = json_array();
		for (size_t j = 0; j < v->ninputs; j++)
			json_array_append_new(inputs, json_string(v->inputs[j]->digest_hex));
		json_t *jv = json_pack("{s:s, s:s, s:o, s:O}", "digest", v->digest_hex, "op",
		                       sv_op_name(v->op), "inputs", inputs, "def", v->def);
		if (v->stage)
			json_object_set_new(jv, "stage", json_string(v->stage));
		if (v->description)
			json_object_set_new(jv, "description", json_string(v->description));
		if (v->line)
			json_object_set_new(jv, "line", json_integer(v->line));
		json_array_append_new(vs, jv);
	}
	json_object_set_new(root, "vertices", vs);
	json_t *rs = json_array();
	for (size_t i = 0; i < g->nresults; i++) {
		const struct sv_result *r = &g->results[i];
		json_t *jr = json_pack("{s:s, s:s, s:b}", "stage", r->name, "vertex",
		                       r->vertex ? r->vertex->digest_hex : "", "target", r->target);
		if (r->config)
			json_object_set(jr, "config", r->config);
		json_array_append_new(rs, jr);
	}
	json_object_set_new(root, "results", rs);
	json_dump_callback(root, buf_chunk, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	kiln_buf_addch(out, '\n');
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
