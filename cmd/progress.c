/*
 * Build progress: plain (`#N` lines, as BuildKit's --progress=plain), quiet, rawjson
 * (one JSON event per line) and tty, BuildKit's live view:
 *
 *	[+] Building 3.2s (5/9)
 *	 => [internal] load build context                        0.0s
 *	 => CACHED [stage-1 2/4] COPY a /a                        0.0s
 *	 => [stage-1 3/4] RUN make                                1.3s
 *	 => => # cc -c main.c
 *
 * The view is redrawn in place (cursor up, clear line) at every event and by a timer
 * thread ten times a second, so running steps' clocks move while they are silent. Steps
 * are listed, and numbered in plain mode, in the order they are first seen.
 */
#include "progress.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Output lines kept per step: the live view shows TAIL_LIVE under a running step, a
 * failed step keeps TAIL_KEEP on screen. */
#define TAIL_KEEP     10
#define TAIL_LIVE     6
#define PARTIAL_MAX   4096 /* a longer line without a newline is cut into lines */
#define REDRAW_NS     100000000u
#define LOG_REDRAW_NS 50000000u

enum step_state { STEP_RUNNING, STEP_DONE, STEP_CACHED, STEP_ERROR, STEP_CANCELED };

struct step {
	const char *name; /* the vertex's description, or owned for the exporting step */
	char *owned_name;
	enum step_state state;
	uint64_t t0, duration_ns;
	char *tail[TAIL_KEEP]; /* a ring of the last complete output lines */
	size_t ntail;          /* lines pushed so far */
	struct kiln_buf partial;
	struct kiln_strv notes; /* lines that stay under the step: explain, export's */
};

struct progress {
	enum progress_mode mode;
	FILE *out;
	size_t *numbers; /* by vertex index; 0 = not seen */
	size_t nvertices;
	size_t next;
	size_t export_n; /* the exporting step's number, 0 before it starts */
	uint64_t export_t0;
	bool finished;

	/* tty: everything below is guarded by `mu`; the timer thread redraws. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t timer;
	bool timer_started;
	bool stopping;
	struct step *steps; /* steps[n - 1] for step number n */
	size_t nsteps, steps_alloc;
	size_t total; /* the vertices `want` needs, plus the exporting step */
	uint64_t t0, last_draw;
	size_t drawn; /* lines of the last frame, the cursor is on the line below them */
	struct kiln_buf frame;
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

/* ---- tty ---- */

/* Append `s` to `b` as at most `cols` terminal columns: tabs become spaces, ANSI escape
 * sequences and other control characters are dropped (they would move the cursor the
 * redraw counts on), a UTF-8 sequence counts one column. Returns the columns used. */
static size_t
add_clipped(struct kiln_buf *b, const char *s, size_t len, size_t cols)
{
	size_t used = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0x1b) {
			/* CSI: ESC [ parameters final-byte; other escapes: ESC + one byte */
			if (i + 1 < len && s[i + 1] == '[') {
				i += 2;
				while (i < len && !((unsigned char)s[i] >= 0x40 &&
				                    (unsigned char)s[i] <= 0x7e))
					i++;
			} else {
				i++;
			}
			continue;
		}
		if (c == '\t')
			c = ' ';
		if (c < 0x20 || c == 0x7f)
			continue;
		bool continuation = (c & 0xc0) == 0x80;
		if (!continuation) {
			if (used == cols)
				break;
			used++;
		}
		kiln_buf_addch(b, (char)c);
	}
	return used;
}

static void
frame_line_begin(struct progress *p)
{
	/* Clear first: clearing after a line that fills the width would, on terminals that
	 * defer the wrap, erase its last character. */
	kiln_buf_addstr(&p->frame, "\x1b[K");
}

static void
frame_line_end(struct progress *p, size_t *nlines)
{
	kiln_buf_addch(&p->frame, '\n');
	(*nlines)++;
}

/* " => NAME ....... 1.3s" in `cols` columns. */
static void
frame_step(struct progress *p, const struct step *st, uint64_t now, size_t cols, size_t *nlines)
{
	static const char *const prefix[] = {
	        [STEP_RUNNING] = "",           [STEP_DONE] = "",
	        [STEP_CACHED] = "CACHED ",     [STEP_ERROR] = "ERROR ",
	        [STEP_CANCELED] = "CANCELED ",
	};
	uint64_t ns = st->state == STEP_RUNNING ? now - st->t0 : st->duration_ns;
	char t[32];
	int tl = snprintf(t, sizeof(t), "%.1fs", (double)ns / 1e9);
	_cleanup_buf_ struct kiln_buf left = KILN_BUF_INIT;
	kiln_buf_addstr(&left, " => ");
	kiln_buf_addstr(&left, prefix[st->state]);
	kiln_buf_addstr(&left, st->name);
	frame_line_begin(p);
	if (cols < (size_t)tl + 8) {
		add_clipped(&p->frame, left.buf, left.len, cols);
	} else {
		size_t budget = cols - (size_t)tl - 1;
		size_t used = add_clipped(&p->frame, left.buf, left.len, budget);
		for (; used < budget + 1; used++)
			kiln_buf_addch(&p->frame, ' ');
		kiln_buf_add(&p->frame, t, (size_t)tl);
	}
	frame_line_end(p, nlines);
}

static void
frame_sub(struct progress *p, const char *lead, const char *text, size_t len, size_t cols,
          size_t *nlines)
{
	frame_line_begin(p);
	size_t used = add_clipped(&p->frame, lead, strlen(lead), cols);
	add_clipped(&p->frame, text, len, cols - used);
	frame_line_end(p, nlines);
}

/* The last `max` output lines of a step, the unfinished one included. */
static void
frame_tail(struct progress *p, const struct step *st, size_t max, size_t cols, size_t *nlines)
{
	size_t have = st->ntail < TAIL_KEEP ? st->ntail : TAIL_KEEP;
	size_t want = max - (st->partial.len ? 1 : 0);
	size_t show = have < want ? have : want;
	for (size_t i = st->ntail - show; i < st->ntail; i++) {
		const char *l = st->tail[i % TAIL_KEEP];
		frame_sub(p, " => => # ", l, strlen(l), cols, nlines);
	}
	if (st->partial.len)
		frame_sub(p, " => => # ", st->partial.buf, st->partial.len, cols, nlines);
}

static void
term_size(struct progress *p, size_t *cols, size_t *rows)
{
	struct winsize ws;
	*cols = 80;
	*rows = 0; /* unknown: no limit */
	if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
	}
	/* One column spare: some terminals wrap as soon as the last column is written. */
	if (*cols > 1)
		(*cols)--;
}

static size_t
frame_height(const struct progress *p, bool live, size_t from, size_t tail)
{
	size_t h = 1;
	for (size_t i = from; i < p->nsteps; i++) {
		const struct step *st = &p->steps[i];
		h += 1 + st->notes.n;
		if (st->state == STEP_ERROR)
			h += (st->ntail < TAIL_KEEP ? st->ntail : TAIL_KEEP) + !!st->partial.len;
		else if (live && st->state == STEP_RUNNING)
			h += st->ntail + !!st->partial.len < tail ? st->ntail + !!st->partial.len
			                                          : tail;
	}
	return h;
}

/* Draw the view over the last one. `live`: running steps show their output; the final
 * frame (not live) is written once and may be taller than the terminal. Under p->mu. */
static void
draw(struct progress *p, bool live, bool ok)
{
	uint64_t now = now_ns();
	size_t cols, rows;
	term_size(p, &cols, &rows);
	kiln_buf_reset(&p->frame);
	if (p->drawn)
		kiln_buf_addf(&p->frame, "\r\x1b[%zuA", p->drawn);
	/* A live frame taller than the terminal could not be redrawn (cursor-up stops at
	 * the top): leave out the oldest steps, which are finished by then mostly. */
	size_t from = 0, tail = TAIL_LIVE;
	while (live && rows > 1 && frame_height(p, live, from, tail) > rows - 1) {
		if (from < p->nsteps && p->steps[from].state != STEP_RUNNING)
			from++; /* finished steps go first */
		else if (tail > 1)
			tail--; /* then running steps' output shrinks */
		else if (from < p->nsteps)
			from++;
		else
			break;
	}
	size_t done = 0;
	for (size_t i = 0; i < p->nsteps; i++)
		done += p->steps[i].state == STEP_DONE || p->steps[i].state == STEP_CACHED;
	char head[128];
	int hl = snprintf(head, sizeof(head), "[+] Building %.1fs (%zu/%zu)%s",
	                  (double)(now - p->t0) / 1e9, done, p->total,
	                  live ? ""
	                  : ok ? " FINISHED"
	                       : " FAILED");
	size_t n = 0;
	frame_line_begin(p);
	add_clipped(&p->frame, head, (size_t)hl, cols);
	frame_line_end(p, &n);
	for (size_t i = from; i < p->nsteps; i++) {
		const struct step *st = &p->steps[i];
		frame_step(p, st, now, cols, &n);
		for (size_t k = 0; k < st->notes.n; k++)
			frame_sub(p, " => => ", st->notes.v[k], strlen(st->notes.v[k]), cols, &n);
		if (st->state == STEP_ERROR)
			frame_tail(p, st, TAIL_KEEP, cols, &n);
		else if (live && st->state == STEP_RUNNING)
			frame_tail(p, st, tail, cols, &n);
	}
	if (live && rows > 1 && n > rows - 1) {
		/* still too tall (many running steps): keep the top of the frame */
		size_t keep = rows - 1, seen = 0;
		const char *s = p->frame.buf;
		for (size_t i = 0; i < p->frame.len; i++)
			if (s[i] == '\n' && ++seen == keep) {
				/* the cursor-up prefix has no newline, so line `keep` ends here */
				kiln_buf_setlen(&p->frame, i + 1);
				break;
			}
		n = keep;
	}
	kiln_buf_addstr(&p->frame, "\x1b[J"); /* what a taller last frame left below */
	fwrite(p->frame.buf, 1, p->frame.len, p->out);
	fflush(p->out);
	p->drawn = n;
	p->last_draw = now;
}

static void *
timer_main(void *arg)
{
	struct progress *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += REDRAW_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->mu, &ts);
		if (!p->stopping)
			draw(p, true, true);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static struct step *
step_get(struct progress *p, const struct sv_vertex *v, const char *desc)
{
	size_t n = step_number(p, v);
	if (!n)
		return NULL;
	if (n > p->nsteps) {
		KILN_GROW(p->steps, p->steps_alloc, n);
		for (; p->nsteps < n; p->nsteps++)
			p->steps[p->nsteps] = (struct step){.partial = KILN_BUF_INIT,
			                                    .notes = KILN_STRV_INIT,
			                                    .name = desc,
			                                    .t0 = now_ns()};
	}
	return &p->steps[n - 1];
}

static void
tail_push(struct step *st, const char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		len--;
	/* "50%\r60%\r70%": a progress meter shows its last state */
	const char *cr = memrchr(line, '\r', len);
	if (cr) {
		len -= (size_t)(cr + 1 - line);
		line = cr + 1;
	}
	char **slot = &st->tail[st->ntail++ % TAIL_KEEP];
	free(*slot);
	*slot = kiln_xstrndup(line, len);
}

static void
step_log(struct step *st, const char *data, size_t len)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t l = nl ? (size_t)(nl - data) : len;
		kiln_buf_add(&st->partial, data, l);
		if (nl || st->partial.len > PARTIAL_MAX) {
			tail_push(st, st->partial.buf, st->partial.len);
			kiln_buf_reset(&st->partial);
		}
		if (!nl)
			break;
		len -= l + 1;
		data = nl + 1;
	}
}

static void
step_drop_output(struct step *st)
{
	for (size_t i = 0; i < TAIL_KEEP; i++) {
		free(st->tail[i]);
		st->tail[i] = NULL;
	}
	st->ntail = 0;
	kiln_buf_release(&st->partial);
}

static void
event_tty(struct progress *p, const struct sv_event *ev, const char *desc)
{
	struct step *st = step_get(p, ev->vertex, desc);
	if (!st)
		return;
	uint64_t now = now_ns();
	switch (ev->type) {
	case SV_EVENT_STARTED:
		st->state = STEP_RUNNING;
		st->t0 = now;
		if (ev->explain) {
			/* the step's line above already names it */
			const char *why = ev->explain;
			size_t dl = strlen(desc);
			if (!strncmp(why, desc, dl) && !strncmp(why + dl, ": ", 2))
				why += dl + 2;
			kiln_strv_pushf(&st->notes, "explain: %s", why);
		}
		break;
	case SV_EVENT_CACHED:
		st->state = STEP_CACHED;
		st->duration_ns = 0;
		step_drop_output(st);
		break;
	case SV_EVENT_LOG:
		step_log(st, ev->data, ev->len);
		/* a chatty step is redrawn by the timer, not at every chunk */
		if (now - p->last_draw < LOG_REDRAW_NS)
			return;
		break;
	case SV_EVENT_FINISHED:
		st->state = STEP_DONE;
		st->duration_ns = ev->duration_ns;
		step_drop_output(st);
		break;
	case SV_EVENT_FAILED:
		st->state = STEP_ERROR;
		st->duration_ns = ev->duration_ns ? ev->duration_ns : now - st->t0;
		break;
	case SV_EVENT_CANCELLED:
		st->state = STEP_CANCELED;
		st->duration_ns = now - st->t0;
		step_drop_output(st);
		break;
	}
	draw(p, true, true);
}

static void
tty_start(struct progress *p, const struct sv_graph *g, const struct sv_vertex *want)
{
	/* Count what the build needs: the vertices below `want`, and the export. */
	_cleanup_free_ bool *seen = kiln_xcalloc(g->nvertices + 1, sizeof(bool));
	_cleanup_free_ const struct sv_vertex **stack =
	        kiln_xcalloc(g->nvertices + 1, sizeof(*stack));
	size_t sp = 0;
	if (want && want->index < g->nvertices) {
		stack[sp++] = want;
		seen[want->index] = true;
	}
	while (sp) {
		const struct sv_vertex *v = stack[--sp];
		p->total++;
		for (size_t i = 0; i < v->ninputs; i++) {
			const struct sv_vertex *in = v->inputs[i];
			if (in->index < g->nvertices && !seen[in->index]) {
				seen[in->index] = true;
				stack[sp++] = in;
			}
		}
	}
	p->total++;
	p->t0 = now_ns();
	pthread_mutex_lock(&p->mu);
	draw(p, true, true);
	pthread_mutex_unlock(&p->mu);
	/* No signal may land on the timer: the build takes Ctrl-C through a signalfd, which
	 * only works while every thread blocks it. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p->timer_started = pthread_create(&p->timer, NULL, timer_main, p) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the interface ---- */

struct progress *
progress_new(enum progress_mode mode, FILE *out, const struct sv_graph *g,
             const struct sv_vertex *want)
{
	struct progress *p = kiln_xcalloc(1, sizeof(*p));
	p->mode = progress_mode_resolve(mode, fileno(out));
	p->out = out;
	p->nvertices = g->nvertices;
	p->numbers = kiln_xcalloc(g->nvertices + 1, sizeof(size_t));
	p->frame = (struct kiln_buf)KILN_BUF_INIT;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (p->mode == PROGRESS_TTY)
		tty_start(p, g, want);
	return p;
}

enum progress_mode
progress_mode(const struct progress *p)
{
	return p->mode;
}

void
progress_event(void *data, const struct sv_event *ev)
{
	struct progress *p = data;
	const struct sv_vertex *v = ev->vertex;
	const char *desc = v->description ? v->description : sv_op_name(v->op);
	pthread_mutex_lock(&p->mu);
	if (p->finished || p->mode == PROGRESS_QUIET) {
		/* nothing */
	} else if (p->mode == PROGRESS_TTY) {
		event_tty(p, ev, desc);
	} else {
		if (p->mode == PROGRESS_RAWJSON)
			event_json(p, ev, desc);
		else
			event_plain(p, ev, desc);
		fflush(p->out);
	}
	pthread_mutex_unlock(&p->mu);
}

void
progress_printf(struct progress *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_buf_ struct kiln_buf line = KILN_BUF_INIT;
	kiln_buf_vaddf(&line, fmt, ap);
	va_end(ap);
	if (!p) {
		fprintf(stderr, "%s\n", line.buf);
		return;
	}
	pthread_mutex_lock(&p->mu);
	bool live = p->mode == PROGRESS_TTY && !p->finished;
	if (live && p->drawn)
		fprintf(p->out, "\r\x1b[%zuA\x1b[J", p->drawn); /* the view goes, the line */
	fprintf(p->out, "%s\n", line.buf);                      /* takes its place, */
	p->drawn = 0;
	if (live)
		draw(p, true, true); /* and the view comes back below it */
	fflush(p->out);
	pthread_mutex_unlock(&p->mu);
}

void
progress_export_begin(struct progress *p, const char *name)
{
	pthread_mutex_lock(&p->mu);
	p->export_n = ++p->next;
	p->export_t0 = now_ns();
	if (p->mode == PROGRESS_PLAIN) {
		fprintf(p->out, "#%zu %s\n", p->export_n, name);
	} else if (p->mode == PROGRESS_TTY && !p->finished) {
		KILN_GROW(p->steps, p->steps_alloc, p->export_n);
		for (; p->nsteps < p->export_n; p->nsteps++)
			p->steps[p->nsteps] = (struct step){.partial = KILN_BUF_INIT,
			                                    .notes = KILN_STRV_INIT,
			                                    .t0 = p->export_t0};
		struct step *st = &p->steps[p->export_n - 1];
		st->owned_name = kiln_xstrdup(name);
		st->name = st->owned_name;
		draw(p, true, true);
	}
	pthread_mutex_unlock(&p->mu);
}

void
progress_export_logf(struct progress *p, const char *fmt, ...)
{
	pthread_mutex_lock(&p->mu);
	if (p->export_n && (p->mode == PROGRESS_PLAIN || p->mode == PROGRESS_TTY)) {
		va_list ap;
		va_start(ap, fmt);
		_cleanup_buf_ struct kiln_buf line = KILN_BUF_INIT;
		kiln_buf_vaddf(&line, fmt, ap);
		va_end(ap);
		if (p->mode == PROGRESS_PLAIN)
			fprintf(p->out, "#%zu %s\n", p->export_n, line.buf);
		else if (!p->finished)
			kiln_strv_push(&p->steps[p->export_n - 1].notes, line.buf);
	}
	pthread_mutex_unlock(&p->mu);
}

void
progress_export_done(struct progress *p, bool ok)
{
	pthread_mutex_lock(&p->mu);
	uint64_t ns = now_ns() - p->export_t0;
	if (!p->export_n) {
		/* not begun */
	} else if (p->mode == PROGRESS_PLAIN) {
		if (ok)
			fprintf(p->out, "#%zu DONE %.1fs\n", p->export_n, (double)ns / 1e9);
		else
			fprintf(p->out, "#%zu ERROR\n", p->export_n);
		fflush(p->out);
	} else if (p->mode == PROGRESS_TTY && !p->finished) {
		struct step *st = &p->steps[p->export_n - 1];
		st->state = ok ? STEP_DONE : STEP_ERROR;
		st->duration_ns = ns;
		draw(p, true, true);
	}
	pthread_mutex_unlock(&p->mu);
}

void
progress_finish(struct progress *p, bool ok)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	bool was = p->finished;
	p->finished = true;
	p->stopping = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	if (was)
		return;
	if (p->timer_started)
		pthread_join(p->timer, NULL);
	p->timer_started = false;
	if (p->mode == PROGRESS_TTY) {
		uint64_t now = now_ns();
		for (size_t i = 0; i < p->nsteps; i++) {
			struct step *st = &p->steps[i];
			/* a step that never ended (the export failed) ended with the build */
			if (st->state == STEP_RUNNING) {
				st->state = ok ? STEP_DONE : STEP_ERROR;
				st->duration_ns = now - st->t0;
			}
		}
		draw(p, false, ok);
	}
	fflush(p->out);
}

void
progress_free(struct progress *p)
{
	if (!p)
		return;
	progress_finish(p, false);
	for (size_t i = 0; i < p->nsteps; i++) {
		step_drop_output(&p->steps[i]);
		kiln_strv_release(&p->steps[i].notes);
		free(p->steps[i].owned_name);
	}
	free(p->steps);
	kiln_buf_release(&p->frame);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p->numbers);
	free(p);
}
