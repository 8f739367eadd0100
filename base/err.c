/* Errors that carry their cause and, for user input, the file and line at fault. */
#include "base.h"

static int
err_vset(struct kiln_err *err, int code, bool sys, const char *fmt, va_list ap)
{
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (err) {
		free(err->msg);
		free(err->file);
		*err = (struct kiln_err){.code = code, .sys = sys, .msg = msg};
	} else {
		free(msg);
	}
	return -code;
}

int
kiln_err_set(struct kiln_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	if (errnum <= 0)
		errnum = errnum < 0 ? -errnum : EIO;
	va_start(ap, fmt);
	int r = err_vset(err, errnum, true, fmt, ap);
	va_end(ap);
	return r;
}

int
kiln_err_invalid(struct kiln_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, EINVAL, false, fmt, ap);
	va_end(ap);
	return r;
}

int
kiln_err_at(struct kiln_err *err, const char *file, int line, int line_end, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, EINVAL, false, fmt, ap);
	va_end(ap);
	kiln_err_locate(err, file, line, line_end);
	return r;
}

int
kiln_err_locate(struct kiln_err *err, const char *file, int line, int line_end)
{
	if (!err)
		return -EINVAL;
	if (!err->file && file) {
		err->file = kiln_xstrdup(file);
		err->line = line;
		err->line_end = line_end;
	}
	return -(err->code ? err->code : EINVAL);
}

int
kiln_err_wrap(struct kiln_err *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	va_list ap;
	char *ctx;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ctx = NULL;
	va_end(ap);
	if (ctx) {
		char *msg = kiln_xasprintf("%s: %s", ctx, err->msg ? err->msg : "error");
		free(ctx);
		free(err->msg);
		err->msg = msg;
	}
	if (!err->code)
		err->code = EIO;
	return -err->code;
}

char *
kiln_err_format(const struct kiln_err *err)
{
	struct kiln_buf sb = KILN_BUF_INIT;
	if (err->file) {
		kiln_buf_addf(&sb, "%s:", err->file);
		if (err->line > 0)
			kiln_buf_addf(&sb, "%d:", err->line);
		kiln_buf_addch(&sb, ' ');
	}
	kiln_buf_addstr(&sb, err->msg ? err->msg : "unknown error");
	if (err->sys && err->code)
		kiln_buf_addf(&sb, ": %s", strerror(err->code));
	return kiln_buf_detach(&sb, NULL);
}

void
kiln_err_release(struct kiln_err *err)
{
	if (!err)
		return;
	free(err->msg);
	free(err->file);
	*err = (struct kiln_err)KILN_ERR_INIT;
}
