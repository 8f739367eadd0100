/* A growable string buffer with git's strbuf rules: never NULL, always NUL-terminated. */
#include "base.h"

#include <fcntl.h>

char kiln_buf_empty[1];

void
kiln_buf_init(struct kiln_buf *sb, size_t hint)
{
	*sb = (struct kiln_buf)KILN_BUF_INIT;
	if (hint)
		kiln_buf_grow(sb, hint);
}

void
kiln_buf_release(struct kiln_buf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	*sb = (struct kiln_buf)KILN_BUF_INIT;
}

char *
kiln_buf_detach(struct kiln_buf *sb, size_t *len)
{
	if (len)
		*len = sb->len;
	char *res = sb->alloc ? sb->buf : kiln_xstrdup("");
	*sb = (struct kiln_buf)KILN_BUF_INIT;
	return res;
}

void
kiln_buf_grow(struct kiln_buf *sb, size_t extra)
{
	size_t need;
	if (__builtin_add_overflow(sb->len, extra, &need) || __builtin_add_overflow(need, 1, &need)) {
		fprintf(stderr, "kiln: buffer size overflow\n");
		abort();
	}
	if (need <= sb->alloc)
		return;
	bool fresh = sb->alloc == 0;
	size_t n = sb->alloc ? sb->alloc : 64;
	while (n < need)
		n = n * 2 > n ? n * 2 : need;
	sb->buf = kiln_xrealloc(fresh ? NULL : sb->buf, n);
	if (fresh)
		sb->buf[0] = '\0';
	sb->alloc = n;
}

void
kiln_buf_setlen(struct kiln_buf *sb, size_t len)
{
	if (!sb->alloc && len == 0)
		return;
	if (len > sb->len)
		kiln_buf_grow(sb, len - sb->len);
	sb->len = len;
	sb->buf[len] = '\0';
}

void
kiln_buf_add(struct kiln_buf *sb, const void *data, size_t len)
{
	if (!len)
		return;
	/* One capacity check on the way: planning a long Dockerfile appends some 100,000
	 * short strings (history, descriptions, words). */
	if (len >= sb->alloc - sb->len) /* also when alloc is 0: never write kiln_buf_empty */
		kiln_buf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void
kiln_buf_addstr(struct kiln_buf *sb, const char *s)
{
	kiln_buf_add(sb, s, strlen(s));
}

void
kiln_buf_addch(struct kiln_buf *sb, int c)
{
	kiln_buf_grow(sb, 1);
	sb->buf[sb->len++] = (char)c;
	sb->buf[sb->len] = '\0';
}

void
kiln_buf_vaddf(struct kiln_buf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n <= 0)
		return;
	kiln_buf_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void
kiln_buf_addf(struct kiln_buf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln_buf_vaddf(sb, fmt, ap);
	va_end(ap);
}

void
kiln_buf_add_rune(struct kiln_buf *sb, uint32_t r)
{
	unsigned char b[4];
	size_t n;
	if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = 0xFFFD;
	if (r < 0x80) {
		b[0] = (unsigned char)r;
		n = 1;
	} else if (r < 0x800) {
		b[0] = 0xC0 | (r >> 6);
		b[1] = 0x80 | (r & 0x3F);
		n = 2;
	} else if (r < 0x10000) {
		b[0] = 0xE0 | (r >> 12);
		b[1] = 0x80 | ((r >> 6) & 0x3F);
		b[2] = 0x80 | (r & 0x3F);
		n = 3;
	} else {
		b[0] = 0xF0 | (r >> 18);
		b[1] = 0x80 | ((r >> 12) & 0x3F);
		b[2] = 0x80 | ((r >> 6) & 0x3F);
		b[3] = 0x80 | (r & 0x3F);
		n = 4;
	}
	kiln_buf_add(sb, b, n);
}

int
kiln_buf_read_fd(struct kiln_buf *sb, int fd, struct kiln_err *err)
{
	for (;;) {
		kiln_buf_grow(sb, 8192);
		ssize_t n = read(fd, sb->buf + sb->len, sb->alloc - sb->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kiln_err_set(err, errno, "read");
		}
		if (n == 0)
			return 0;
		kiln_buf_setlen(sb, sb->len + (size_t)n);
	}
}

int
kiln_buf_read_file(struct kiln_buf *sb, const char *path, struct kiln_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "open `%s`", path);
	int r = kiln_buf_read_fd(sb, fd, err);
	if (r < 0)
		return kiln_err_wrap(err, "`%s`", path);
	return 0;
}
