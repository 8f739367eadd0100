/*
 * Build progress: plain (`#N` lines, as BuildKit's --progress=plain), quiet, rawjson
 * (one JSON event per line). Steps are numbered in the order they are first seen.
 */
#include "progress.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

struct progress {
	enum progress_mode mode;
	FILE *out;
	size_t *numbers; /* by vertex index; 0 = not seen */
	size_t nvertices;
	size_t next;
	size_t export_n; /* the exporting step's number, 0 before it starts */
	uint64_t export_t0;
	bool finished;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
progress_mode_parse(const char *s, enum progress_mode *ret)
{
	static const char *const names[] = {
	        [PROGRESS_AUTO] = "auto",       [PROGRESS_TTY] = "tty",
	        [PROGRESS_PLAIN] = "plain",     [PROGRESS_QUIET] = "quiet",
	        [PROGRESS_RAWJSON] = "rawjson",
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(names); i++)
		if (kiln_str_eq(s, names[i])) {
			*ret = (enum progress_mode)i;
			return 0;
		}
	return -EINVAL;
}

enum progress_mode
progress_mode_resolve(enum progress_mode mode, int fd)
{
	if (mode != PROGRESS_AUTO)
		return mode;
	const char *term = getenv("TERM");
	if (isatty(fd) && !(term && kiln_str_eq(term, "dumb")))
		return PROGRESS_TTY;
	return PROGRESS_PLAIN;
}

struct progress *
progress_new(enum progress_mode mode, FILE *out, const struct sv_graph *g,
             const struct sv_vertex *want)
{
	struct progress *p = kiln_xcalloc(1, sizeof(*p));
	p->mode = progress_mode_resolve(mode, fileno(out));
	if (p->mode == PROGRESS_TTY)
		p->mode = PROGRESS_PLAIN; /* no live view yet */
	p->out = out;
	p->nvertices = g->nvertices;
	p->numbers = kiln_xcalloc(g->nvertices + 1, sizeof(size_t));
	return p;
}

enum progress_mode
progress_mode(const struct progress *p)
{
	return p->mode;
}

static size_t
step_number(struct progress *p, const struct sv_vertex *v)
{
	if (v->index >= p->nvertices)
		return 0;
	if (!p->numbers[v->index])
		p->numbers[v->index] = ++p->next;
	return p->numbers[v->index];
}

static void
print_log(struct progress *p, size_t n, const char *data, size_t len)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t l = nl ? (size_t)(nl - data) : len;
		fprintf(p->out, "#%zu %.*s\n", n, (int)l, data);
		if (!nl)
			break;
		len -= l + 1;
		data = nl + 1;
	}
}

static void
event_json(struct progress *p, const struct sv_event *ev, const char *desc)
{
	const struct sv_vertex *v = ev->vertex;
	_cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s}", "event", sv_event_name(ev->type),
	                                     "vertex", v->digest_hex, "name", desc);
	if (ev->cache_key)
		json_object_set_new(j, "cache_key", json_string(ev->cache_key));
	if (ev->explain)
		json_object_set_new(j, "explain", json_string(ev->explain));
	if (ev->type == SV_EVENT_LOG) {
		json_object_set_new(j, "stream", json_integer(ev->stream));
		json_object_set_new(j, "data", json_stringn(ev->data, ev->len));
	}
	if (ev->type == SV_EVENT_FINISHED || ev->type == SV_EVENT_FAILED)
		json_object_set_new(j, "duration_ns", json_integer((json_int_t)ev->duration_ns));
	if (ev->type == SV_EVENT_FAILED && ev->err && ev->err->msg)
		json_object_set_new(j, "error", json_string(ev->err->msg));
	char *s = json_dumps(j, JSON_COMPACT);
	if (s)
		fprintf(p->out, "%s\n", s);
	free(s);
}

static void
event_plain(struct progress *p, const struct sv_event *ev, const char *desc)
{
	size_t n = step_number(p, ev->vertex);
	switch (ev->type) {
	case SV_EVENT_STARTED:
		fprintf(p->out, "#%zu %s\n", n, desc);
		if (ev->explain)
			fprintf(p->out, "#%zu explain: %s\n", n, ev->explain);
		break;
	case SV_EVENT_CACHED:
		fprintf(p->out, "#%zu %s\n#%zu CACHED\n", n, desc, n);
		break;
	case SV_EVENT_LOG:
		print_log(p, n, ev->data, ev->len);
		break;
	case SV_EVENT_FINISHED:
		fprintf(p->out, "#%zu DONE %.1fs\n", n, (double)ev->duration_ns / 1e9);
		break;
	case SV_EVENT_FAILED:
		fprintf(p->out, "#%zu ERROR: %s\n", n,
		        ev->err && ev->err->msg ? ev->err->msg : "failed");
		break;
	case SV_EVENT_CANCELLED:
		fprintf(p->out, "#%zu CANCELED\n", n);
		break;
	}
}

void
progress_event(void *data, const struct sv_event *ev)
{
	struct progress *p = data;
	const struct sv_vertex *v = ev->vertex;
	const char *desc = v->description ? v->description : sv_op_name(v->op);
	if (p->finished || p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_RAWJSON)
		event_json(p, ev, desc);
	else
		event_plain(p, ev, desc);
	fflush(p->out);
}

void
progress_export_begin(struct progress *p, const char *name)
{
	p->export_n = ++p->next;
	p->export_t0 = now_ns();
	if (p->mode == PROGRESS_PLAIN)
		fprintf(p->out, "#%zu %s\n", p->export_n, name);
}

void
progress_export_logf(struct progress *p, const char *fmt, ...)
{
	if (p->mode != PROGRESS_PLAIN || !p->export_n)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(p->out, "#%zu ", p->export_n);
	vfprintf(p->out, fmt, ap);
	fputc('\n', p->out);
	va_end(ap);
}

void
progress_export_done(struct progress *p, bool ok)
{
	if (p->mode != PROGRESS_PLAIN || !p->export_n)
		return;
	if (ok)
		fprintf(p->out, "#%zu DONE %.1fs\n", p->export_n,
		        (double)(now_ns() - p->export_t0) / 1e9);
	else
		fprintf(p->out, "#%zu ERROR\n", p->export_n);
	fflush(p->out);
}

void
progress_finish(struct progress *p, bool ok)
{
	if (!p || p->finished)
		return;
	p->finished = true;
	fflush(p->out);
}

void
progress_free(struct progress *p)
{
	if (!p)
		return;
	progress_finish(p, false);
	free(p->numbers);
	free(p);
}
