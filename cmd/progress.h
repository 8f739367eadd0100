/*
 * Internal to cmd/: build progress, as `kiln build --progress MODE` shows it.
 *
 * Calling sequence:
 *
 *	struct progress *p = progress_new(mode, stderr, graph, want);  // auto is resolved here
 *	so.progress = progress_event; so.progress_data = p;          // the solver's callback
 *	sv_solve(...);
 *	progress_export_begin(p, "exporting to image");              // the step after the solve
 *	progress_export_logf(p, "writing image %s", digest);
 *	progress_export_done(p, ok);
 *	progress_finish(p, ok);     // last redraw; nothing is written after it returns
 *	...print the error, if any...
 *	progress_free(p);
 *
 * progress_event takes the solver's events, which the engine serialises, from any thread.
 */
#ifndef KILN_CMD_PROGRESS_H
#define KILN_CMD_PROGRESS_H

#include "base/base.h"
#include "solver/sv.h"

#include <stdio.h>

enum progress_mode {
	PROGRESS_AUTO, /* tty when the output is a terminal (and TERM is not dumb), else plain */
	PROGRESS_TTY,
	PROGRESS_PLAIN,
	PROGRESS_QUIET,
	PROGRESS_RAWJSON,
};

/* "auto", "tty", "plain", "quiet", "rawjson"; -EINVAL for anything else. */
int progress_mode_parse(const char *s, enum progress_mode *ret);
/* PROGRESS_AUTO becomes tty or plain for output fd `fd`; other modes are returned as is. */
enum progress_mode progress_mode_resolve(enum progress_mode mode, int fd);

struct progress;

/* Progress for solving `want` (one vertex of `g`) onto `out`. `g` is borrowed until
 * progress_free. */
struct progress *progress_new(enum progress_mode mode, FILE *out, const struct sv_graph *g,
                              const struct sv_vertex *want);
/* The mode after resolving auto. */
enum progress_mode progress_mode(const struct progress *p);
/* The solver's progress callback; `data` is the struct progress. */
void progress_event(void *data, const struct sv_event *ev);
/* A line of text for the user (e.g. "interrupted") that is no step's output: in the live
 * view it goes above the view, which is redrawn under it. `p` may be NULL (stderr). */
void progress_printf(struct progress *p, const char *fmt, ...) KILN_PRINTF(2, 3);
/* The exporting step, which is no vertex of the graph. */
void progress_export_begin(struct progress *p, const char *name);
void progress_export_logf(struct progress *p, const char *fmt, ...) KILN_PRINTF(2, 3);
void progress_export_done(struct progress *p, bool ok);
/* The end of the build: the live view (tty) is drawn a last time, without the output of
 * finished steps, and its timer stops. Safe to call twice and on NULL. */
void progress_finish(struct progress *p, bool ok);
/* Finishes (as a failure) when not finished yet. Accepts NULL. */
void progress_free(struct progress *p);

#endif
