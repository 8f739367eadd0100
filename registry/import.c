/*
 * `kiln import`: a single-layer image from a root filesystem.
 *
 * The layer is a deterministic tar: entries sorted by name, owners and modes as on disk,
 * mtimes kept or clamped, no atime/ctime, no user or group names. The same tree always
 * gives the same diff_id and, with gzip's header timestamp off, the same layer digest.
 * One pass: the tar writer's output is hashed (the diff_id) and fed on to a second
 * libarchive writer in raw format with the gzip filter, whose output streams into the
 * store's ingest (the layer digest).
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

struct pipeline {
	struct reg_layer_writer *lw;
	struct archive *tar; /* the layer writer's tar */
	struct kiln_err *err;
	int64_t clamp;
	struct hardlink {
		dev_t dev;
		ino_t ino;
		char *path;
	} * links;
	size_t n_links, alloc_links;
};

static int
archive_fail(struct pipeline *p, struct archive *a, const char *what)
{
	return reg_layer_writer_fail_on(p->lw, a, what);
}

static void
normalize_entry(struct pipeline *p, struct archive_entry *e)
{
	archive_entry_unset_atime(e);
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	time_t mt = archive_entry_mtime(e);
	if (p->clamp >= 0 && mt > p->clamp)
		mt = (time_t)p->clamp;
	archive_entry_set_mtime(e, mt, 0);
}

static int
write_file_data(struct pipeline *p, int fd, const char *path)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(p->err, errno, "read `%s`", path);
		if (n == 0)
			return 0;
		if (archive_write_data(p->tar, buf, (size_t)n) < 0)
			return archive_fail(p, p->tar, "write layer");
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the entries below directory `dfd` (whose path in the tar is `prefix`), sorted. */
static int
add_dir(struct pipeline *p, int dfd, const char *prefix, int depth)
{
	if (depth > 256)
		return kiln_err_set(p->err, ELOOP, "directory tree too deep at `%s`", prefix);
	int dup = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dup < 0)
		return kiln_err_set(p->err, errno, "open `%s`", prefix);
	DIR *d = fdopendir(dup);
	if (!d) {
		close(dup);
		return kiln_err_set(p->err, errno, "read `%s`", prefix);
	}
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!kiln_str_eq(de->d_name, ".") && !kiln_str_eq(de->d_name, ".."))
			kiln_strv_push(&names, de->d_name);
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), name_cmp);

	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		_cleanup_free_ char *path =
		        *prefix ? kiln_xasprintf("%s/%s", prefix, name) : kiln_xstrdup(name);
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return kiln_err_set(p->err, errno, "stat `%s`", path);
		if (S_ISSOCK(st.st_mode))
			continue; /* sockets do not survive a tar, as in docker */
		_cleanup_entry_ struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, path);
		archive_entry_set_mode(e, st.st_mode);
		archive_entry_set_uid(e, st.st_uid);
		archive_entry_set_gid(e, st.st_gid);
		archive_entry_set_mtime(e, st.st_mtim.tv_sec, 0);
		normalize_entry(p, e);
		_cleanup_close_ int fd = -1;
		if (S_ISREG(st.st_mode)) {
			if (st.st_nlink > 1) {
				for (size_t k = 0; k < p->n_links; k++) {
					if (p->links[k].dev == st.st_dev &&
					    p->links[k].ino == st.st_ino) {
						archive_entry_set_hardlink(e, p->links[k].path);
						archive_entry_set_size(e, 0);
						goto header;
					}
				}
				KILN_GROW(p->links, p->alloc_links, p->n_links + 1);
				p->links[p->n_links++] =
				        (struct hardlink){st.st_dev, st.st_ino, kiln_xstrdup(path)};
			}
			fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return kiln_err_set(p->err, errno, "open `%s`", path);
			archive_entry_set_size(e, st.st_size);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
			if (n < 0)
				return kiln_err_set(p->err, errno, "readlink `%s`", path);
			target[n] = '\0';
			archive_entry_set_symlink(e, target);
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			archive_entry_set_rdev(e, st.st_rdev);
		}
	header:
		if (archive_write_header(p->tar, e) != ARCHIVE_OK)
			return archive_fail(p, p->tar, path);
		if (fd >= 0) {
			int r = write_file_data(p, fd, path);
			if (r < 0)
				return r;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
			        openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return kiln_err_set(p->err, errno, "open `%s`", path);
			int r = add_dir(p, sub, path, depth + 1);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* A tar given as the root filesystem: entries in their order, normalised the same way. */
static int
add_tar(struct pipeline *p, const char *src)
{
	_cleanup_archive_read_ struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, src, 65536) != ARCHIVE_OK)
		return kiln_err_set(p->err, archive_errno(a) > 0 ? archive_errno(a) : EINVAL,
		                    "open `%s`: %s", src, archive_error_string(a));
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		normalize_entry(p, e);
		archive_entry_set_uname(e, NULL);
		archive_entry_set_gname(e, NULL);
		if (archive_write_header(p->tar, e) != ARCHIVE_OK)
			return archive_fail(p, p->tar, archive_entry_pathname(e));
		const void *buf;
		size_t len;
		la_int64_t off;
		int dr;
		while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data(p->tar, buf, len) < 0)
				return archive_fail(p, p->tar, "write layer");
		if (dr != ARCHIVE_EOF)
			return kiln_err_invalid(p->err, "read `%s`: %s", src,
			                        archive_error_string(a));
	}
	if (r != ARCHIVE_EOF)
		return kiln_err_invalid(p->err, "read `%s`: %s", src, archive_error_string(a));
	return 0;
}

static char *
rfc3339(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	char buf[64];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return kiln_xstrdup(buf);
}

/* Build the layer; fills the layer descriptor and diff_id. */
static int
build_layer(struct reg_store *st, const char *src, int64_t clamp, struct reg_descriptor *layer,
            char diff_id[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	struct stat sst;
	if (stat(src, &sst) < 0)
		return kiln_err_set(err, errno, "import `%s`", src);
	struct pipeline p = {.err = err, .clamp = clamp};
	int r = reg_layer_writer_new(st, &p.lw, err);
	if (r < 0)
		return r;
	p.tar = reg_layer_writer_archive(p.lw);
	if (S_ISDIR(sst.st_mode)) {
		_cleanup_close_ int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = dfd < 0 ? kiln_err_set(err, errno, "open `%s`", src) : add_dir(&p, dfd, "", 0);
	} else {
		r = add_tar(&p, src);
	}
	if (r < 0)
		goto out;
	if ((r = reg_layer_writer_close(p.lw, diff_id)) < 0)
		goto out;
	r = reg_layer_writer_commit(p.lw, layer);
out:
	reg_layer_writer_free(p.lw);
	for (size_t i = 0; i < p.n_links; i++)
		free(p.links[i].path);
	free(p.links);
	return r;
}

int
reg_import_rootfs(struct reg_store *st, const char *src, const struct reg_import_opts *o,
                  char ret_manifest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	const struct reg_import_opts def = REG_IMPORT_OPTS_INIT;
	o = o ? o : &def;
	struct reg_manifest m = {.kind = REG_KIND_OCI_MANIFEST};
	struct reg_config c = {0};
	_cleanup_buf_ struct kiln_buf cbuf = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf mbuf = KILN_BUF_INIT;
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	m.layers = kiln_xcalloc(1, sizeof(*m.layers));
	m.n_layers = 1;
	int r = build_layer(st, src, o->clamp_mtime, &m.layers[0], diff_id, err);
	if (r < 0)
		goto out;

	struct reg_platform host = REG_PLATFORM_INIT;
	const struct reg_platform *pl = o->platform;
	if (!pl) {
		reg_platform_host(&host);
		pl = &host;
	}
	c.os = kiln_xstrdup(pl->os);
	c.architecture = kiln_xstrdup(pl->architecture);
	c.variant = pl->variant ? kiln_xstrdup(pl->variant) : NULL;
	reg_platform_release(&host);
	c.created = rfc3339(o->created >= 0 ? o->created : (int64_t)time(NULL));
	kiln_strv_push(&c.diff_ids, diff_id);
	c.config = json_pack("{s:[s]}", "Env",
	                     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	c.history = json_pack("[{s:s,s:s}]", "created", c.created, "created_by",
	                      o->created_by ? o->created_by : "kiln import");
	r = reg_config_write(&c, &cbuf, err);
	if (r < 0)
		goto out;
	m.config.media_type = kiln_xstrdup(REG_MT_OCI_CONFIG);
	m.config.size = (int64_t)cbuf.len;
	r = reg_blob_put(st, cbuf.buf, cbuf.len, NULL, m.config.digest, err);
	if (r < 0)
		goto out;
	r = reg_manifest_write(&m, &mbuf, err);
	if (r < 0)
		goto out;
	r = reg_blob_put(st, mbuf.buf, mbuf.len, NULL, ret_manifest, err);
out:
	reg_manifest_release(&m);
	reg_config_release(&c);
	if (r < 0)
		kiln_err_wrap(err, "import `%s`", src);
	return r;
}
