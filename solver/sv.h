/*
 * kiln solver: a generic DAG of build operations. It knows no Dockerfile.
 *
 * Calling sequence:
 *
 *	struct sv_graph *g = sv_graph_new();
 *	struct sv_vertex *base = sv_graph_add(g, SV_OP_SOURCE, def, NULL, 0, &meta);
 *	struct sv_vertex *run  = sv_graph_add(g, SV_OP_EXEC, def2, &base, 1, &meta2);
 *	sv_graph_add_result(g, "build", run, config);
 *	sv_graph_to_json(g, &out); sv_graph_to_dot(g, &out);
 *	sv_graph_free(g);
 *
 * A vertex is an operation (`op`) with a JSON definition (`def`) and ordered inputs.
 * Its digest is SHA-256 over the canonical JSON of {op, def, inputs: [input digests]},
 * so it is stable across runs and covers everything the operation depends on; adding a
 * vertex whose digest is already in the graph returns the existing one (identical
 * vertices run once). Metadata (stage, description, line) is not part of the digest.
 *
 * Definitions by op (the contract between the frontend and the ops that run them):
 *   source: {"type":"image","ref":R,"platform":P} | {"type":"local","name":"context",
 *            "include":[...], "exclude":[...]} | {"type":"scratch"}
 *   exec:   {"args":[...],"env":[...],"cwd":D,"user":U,"network":N,"security":S,
 *            "mounts":[{"type":..,"target":..,"input":I,"source":..,"readonly":..,...}]}
 *            input 0 is the root filesystem; mounts name further inputs by index.
 *   file:   {"actions":[{"action":"copy"|"mkdir"|"mkfile",...}]}; input 0 is the
 *            destination filesystem, further inputs are copy sources by index.
 */
#ifndef KILN_SV_H
#define KILN_SV_H

#include "base/base.h"

#include <jansson.h>

enum sv_op { SV_OP_SOURCE, SV_OP_EXEC, SV_OP_FILE };

struct sv_vertex_meta {
	const char *stage;       /* stage name or index as text */
	const char *description; /* e.g. "RUN make" */
	int line;                /* Dockerfile line, 0 if none */
};

struct sv_vertex {
	struct kiln_digest digest;
	char digest_hex[KILN_DIGEST_HEX_LEN + 1];
	enum sv_op op;
	json_t *def;
	struct sv_vertex **inputs;
	size_t ninputs;
	char *stage;
	char *description;
	int line;
	size_t index; /* position in the graph, in insertion (topological) order */
};

struct sv_result {
	char *name;            /* stage name, or its index as text */
	struct sv_vertex *vertex;
	json_t *config;        /* the OCI image config the stage ends with */
	bool target;           /* the stage the build was asked for */
};

struct sv_graph {
	struct sv_vertex **vertices;
	size_t nvertices, alloc;
	struct sv_vertex **by_digest; /* open-addressing table for dedup, size a power of 2 */
	size_t by_digest_size;
	struct sv_result *results;
	size_t nresults, results_alloc;
};

struct sv_graph *sv_graph_new(void);
void sv_graph_free(struct sv_graph *g);
/* Add a vertex; takes ownership of `def`. Inputs must already be in the graph. Returns the
 * vertex (an existing one when identical). */
struct sv_vertex *sv_graph_add(struct sv_graph *g, enum sv_op op, json_t *def,
			       struct sv_vertex *const *inputs, size_t ninputs,
			       const struct sv_vertex_meta *meta);
/* Record a stage's result; takes ownership of `config`. */
void sv_graph_add_result(struct sv_graph *g, const char *name, struct sv_vertex *vertex,
			 json_t *config, bool target);
const char *sv_op_name(enum sv_op op);
/* {"vertices":[{digest,op,inputs,stage,description,line,def}...],"results":[...]} */
void sv_graph_to_json(const struct sv_graph *g, struct kiln_buf *out);
/* Graphviz dot. */
void sv_graph_to_dot(const struct sv_graph *g, struct kiln_buf *out);

#endif
