/*
 * USER resolution from the image's own /etc/passwd and /etc/group. kiln never asks NSS:
 * the host's users mean nothing inside an image, and glibc's NSS would load host modules.
 * The rules follow runc's GetExecUser, which is what Docker and BuildKit give users.
 */
#include "ex.h"

#include <fcntl.h>
#include <limits.h>

struct pw_entry {
	char *name;
	uint32_t uid, gid;
	char *home;
};

struct gr_entry {
	char *name;
	uint32_t gid;
	char *members; /* comma-separated */
};

/* A uid/gid field: decimal, and below (uid_t)-1, which the kernel reserves. */
static bool
parse_id(const char *s, uint32_t *out)
{
	uint64_t v;
	if (kiln_parse_u64(s, &v) < 0 || v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Split one line at ':' into at most n fields (in place); returns the number found. */
static size_t
split_fields(char *line, char **fields, size_t n)
{
	size_t k = 0;
	char *p = line;
	while (k < n) {
		fields[k++] = p;
		char *c = strchr(p, ':');
		if (!c)
			break;
		*c = '\0';
		p = c + 1;
	}
	return k;
}

/*
 * Walk the lines of a passwd or group text, calling `fn` with the fields of each line that
 * is neither blank nor a comment. Returns what `fn` returns when it is non-zero.
 */
typedef int (*line_fn)(char **fields, size_t n, void *data);

static int
each_line(const char *text, size_t nfields, line_fn fn, void *data)
{
	if (!text)
		return 0;
	const char *p = text;
	while (*p) {
		const char *end = strchrnul(p, '\n');
		_cleanup_free_ char *line = kiln_xstrndup(p, (size_t)(end - p));
		p = *end ? end + 1 : end;
		size_t len = strlen(line);
		while (len &&
		       (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		/* NIS compat lines (+name, -name) refer to a directory service kiln does not use.
		 */
		if (!*s || *s == '#' || *s == '+' || *s == '-')
			continue;
		char *fields[8] = {0};
		size_t n = split_fields(s, fields, nfields);
		int r = fn(fields, n, data);
		if (r)
			return r;
	}
	return 0;
}

struct pw_query {
	const char *name; /* match by name, or */
	bool by_uid;      /* by uid */
	uint32_t uid;
	struct pw_entry found;
	bool ok;
};

static int
pw_match(char **f, size_t n, void *data)
{
	struct pw_query *q = data;
	uint32_t uid, gid;
	if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
		return 0;
	if (q->name ? !kiln_str_eq(f[0], q->name) : uid != q->uid)
		return 0;
	q->found.name = kiln_xstrdup(f[0]);
	q->found.uid = uid;
	q->found.gid = gid;
	q->found.home = kiln_xstrdup(n >= 6 && *f[5] ? f[5] : "/");
	q->ok = true;
	return 1;
}

struct gr_query {
	const char *name; /* find a group by name */
	uint32_t gid;
	bool ok;
	const char *member; /* or collect the groups listing this user */
	gid_t *groups;
	size_t ngroups, alloc;
};

static bool
has_member(const char *members, const char *user)
{
	size_t ulen = strlen(user);
	const char *p = members;
	while (*p) {
		const char *end = strchrnul(p, ',');
		const char *s = p;
		while (s < end && *s == ' ')
			s++;
		if ((size_t)(end - s) == ulen && !memcmp(s, user, ulen))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static int
gr_match(char **f, size_t n, void *data)
{
	struct gr_query *q = data;
	uint32_t gid;
	if (n < 3 || !parse_id(f[2], &gid))
		return 0;
	if (q->name) {
		if (!kiln_str_eq(f[0], q->name))
			return 0;
		q->gid = gid;
		q->ok = true;
		return 1;
	}
	if (n >= 4 && has_member(f[3], q->member)) {
		for (size_t i = 0; i < q->ngroups; i++)
			if (q->groups[i] == gid)
				return 0;
		KILN_GROW(q->groups, q->alloc, q->ngroups + 1);
		q->groups[q->ngroups++] = gid;
	}
	return 0;
}

static bool
is_numeric(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int
ex_user_resolve_text(const char *spec, const char *passwd, const char *group, struct ex_user *ret,
                     struct kiln_err *err)
{
	if (!spec)
		spec = "";
	const char *colon = strchr(spec, ':');
	_cleanup_free_ char *user =
	        colon ? kiln_xstrndup(spec, (size_t)(colon - spec)) : kiln_xstrdup(spec);
	const char *grp = colon ? colon + 1 : NULL;
	if (!*user)
		user = (free(user), kiln_xstrdup("root"));
	if (grp && !*grp)
		return kiln_err_invalid(err, "USER %s: empty group", spec);

	struct pw_query pq = {0};
	if (is_numeric(user)) {
		pq.by_uid = true;
		if (!parse_id(user, &pq.uid))
			return kiln_err_invalid(err, "USER %s: uid out of range", spec);
	} else {
		pq.name = user;
	}
	each_line(passwd, 7, pw_match, &pq);
	_cleanup_free_ char *pw_name = pq.found.name;
	_cleanup_free_ char *home = pq.found.home;
	uint32_t uid, gid;
	if (pq.ok) {
		uid = pq.found.uid;
		gid = pq.found.gid;
	} else if (pq.by_uid) {
		uid = pq.uid;
		gid = 0;
		home = kiln_xstrdup("/");
	} else if (kiln_str_eq(user, "root")) {
		/* An image without /etc/passwd still runs as root by default. */
		uid = gid = 0;
		home = kiln_xstrdup("/root");
	} else {
		return kiln_err_invalid(err, "USER %s: no user \"%s\" in /etc/passwd", spec, user);
	}

	struct gr_query gq = {0};
	if (grp) {
		if (is_numeric(grp)) {
			if (!parse_id(grp, &gid))
				return kiln_err_invalid(err, "USER %s: gid out of range", spec);
		} else {
			gq.name = grp;
			each_line(group, 4, gr_match, &gq);
			if (!gq.ok)
				return kiln_err_invalid(
				        err, "USER %s: no group \"%s\" in /etc/group", spec, grp);
			gid = gq.gid;
		}
	}
	/* The primary group first, then (without an explicit group) every group whose member
	 * list names the user, as runc and Docker do. */
	struct gr_query mq = {0};
	KILN_GROW(mq.groups, mq.alloc, 1);
	mq.groups[mq.ngroups++] = gid;
	if (!grp && pw_name) {
		mq.member = pw_name;
		each_line(group, 4, gr_match, &mq);
	}

	ret->uid = uid;
	ret->gid = gid;
	ret->groups = mq.groups;
	ret->ngroups = mq.ngroups;
	ret->home = TAKE_PTR(home);
	return 0;
}

/* Read a file inside the root; a missing one is NULL, not an error. */
static int
read_in_root(int rootfd, const char *path, char **ret, struct kiln_err *err)
{
	struct kiln_err e = KILN_ERR_INIT;
	_cleanup_close_ int fd = kiln_path_openat_in_root(rootfd, path, O_RDONLY, 0, &e);
	if (fd == -ENOENT) {
		kiln_err_release(&e);
		*ret = NULL;
		return 0;
	}
	if (fd < 0) {
		*err = e;
		return fd;
	}
	struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_fd(&b, fd, err);
	if (r < 0) {
		kiln_buf_release(&b);
		return kiln_err_wrap(err, "read %s", path);
	}
	*ret = kiln_buf_detach(&b, NULL);
	return 0;
}

int
ex_user_resolve_at(int rootfd, const char *spec, struct ex_user *ret, struct kiln_err *err)
{
	_cleanup_free_ char *passwd = NULL;
	_cleanup_free_ char *group = NULL;
	int r = read_in_root(rootfd, "/etc/passwd", &passwd, err);
	if (r < 0)
		return r;
	r = read_in_root(rootfd, "/etc/group", &group, err);
	if (r < 0)
		return r;
	return ex_user_resolve_text(spec, passwd, group, ret, err);
}

void
ex_user_release(struct ex_user *u)
{
	if (!u)
		return;
	free(u->groups);
	free(u->home);
	u->groups = NULL;
	u->home = NULL;
	u->ngroups = 0;
}
