/*
 * The segment cache: compressed chunks of layer tars, kept so that the next export of the
 * same bytes (a big file that did not change, the unchanged stretch of a tree of small
 * files) takes them instead of compressing again.
 *
 * <root>/exporter/segments/<compression>-<level>/<key>, one file per chunk. The key is the
 * SHA-256 of everything the compressed bytes depend on: a format tag, the level, the
 * dictionary and the chunk's bytes (never stat data, never a weaker hash: a wrong entry
 * would be a corrupt image). An entry is a header (magic, crc32 and length of the input,
 * length of the output, then the SHA-256 of the header's first 24 bytes and the output),
 * then the output. Readers check all of it; a torn entry (entries are not fsynced: losing
 * one costs a compression, never a wrong byte) or a corrupt one is a miss and is removed.
 * Entries are written to a temp name and renamed, so a reader never sees one half written.
 *
 * An entry's mtime is its last use (set on every hit); the cache is bounded by
 * exp_segments_prune: `kiln prune`, and exp_segments_bound after each export that added
 * entries (at most every SEG_PRUNE_EVERY seconds: listing a big cache costs a stat per
 * entry, so it may overshoot its bound by what that time's exports add).
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SEG_MAGIC "kilnseg1"
#define SEG_HDR   56 /* magic 8, crc 4, in_len 4, out_len 8, sha256 32 */

static void
put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

char *
exp_segments_dir(const char *root, enum exp_compression c, int level)
{
	return kiln_xasprintf("%s/exporter/segments/%s-%d", root, exp_compression_name(c),
	                      exp_compression_level(c, level));
}

void
exp_segment_key(int level, const void *dict, size_t dict_len, const void *in, size_t in_len,
                char ret[65])
{
	/* zlib's version too: another zlib may deflate the same input to other bytes, and a
	 * reused chunk must be what a fresh compression would make. */
	static const char tag[] = "kiln gzip segment v1";
	const char *zv = zlibVersion();
	unsigned char pre[9];
	pre[0] = (unsigned char)level;
	put_le(pre + 1, dict_len, 4);
	put_le(pre + 5, in_len, 4);
	struct kiln_sha256 *h = kiln_sha256_new();
	kiln_sha256_update(h, tag, sizeof(tag));
	kiln_sha256_update(h, zv, strlen(zv) + 1);
	kiln_sha256_update(h, pre, sizeof(pre));
	kiln_sha256_update(h, dict, dict_len);
	kiln_sha256_update(h, in, in_len);
	struct kiln_digest d;
	kiln_sha256_final(h, &d);
	char full[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&d, full);
	memcpy(ret, full + strlen("sha256:"), 65); /* the hex and its NUL */
}

/* The checksum of an entry: over the header's fields and the output. */
static void
entry_sum(const unsigned char *hdr, const unsigned char *out, size_t out_len,
          struct kiln_digest *ret)
{
	struct kiln_sha256 *h = kiln_sha256_new();
	kiln_sha256_update(h, hdr, 24);
	kiln_sha256_update(h, out, out_len);
	kiln_sha256_final(h, ret);
}

static bool
pread_full(int fd, void *buf, size_t len, off_t off)
{
	unsigned char *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return true;
}

bool
exp_segment_load(const char *dir, const char *key, size_t in_len, unsigned char **ret_out,
                 size_t *ret_out_len, uint32_t *ret_crc)
{
	_cleanup_free_ char *path = kiln_xasprintf("%s/%s", dir, key);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char hdr[SEG_HDR];
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < SEG_HDR ||
	    !pread_full(fd, hdr, SEG_HDR, 0))
		goto bad;
	uint64_t out_len = get_le(hdr + 16, 8);
	/* deflate never makes more than a few bytes per 16 KiB over its input */
	if (memcmp(hdr, SEG_MAGIC, 8) != 0 || get_le(hdr + 12, 4) != in_len ||
	    out_len > in_len + in_len / 8 + 4096 || (uint64_t)st.st_size != SEG_HDR + out_len)
		goto bad;
	unsigned char *out = kiln_xmalloc(out_len ? out_len : 1);
	struct kiln_digest d;
	if (!pread_full(fd, out, out_len, SEG_HDR)) {
		free(out);
		goto bad;
	}
	entry_sum(hdr, out, out_len, &d);
	if (memcmp(d.bytes, hdr + 24, 32) != 0) {
		free(out);
		goto bad;
	}
	/* the last use, for pruning */
	(void)futimens(fd, NULL);
	*ret_out = out;
	*ret_out_len = out_len;
	*ret_crc = (uint32_t)get_le(hdr + 8, 4);
	return true;
bad:
	unlink(path);
	return false;
}

bool
exp_segment_store(const char *dir, const char *key, size_t in_len, uint32_t crc,
                  const unsigned char *out, size_t out_len)
{
	unsigned char hdr[SEG_HDR];
	memcpy(hdr, SEG_MAGIC, 8);
	put_le(hdr + 8, crc, 4);
	put_le(hdr + 12, in_len, 4);
	put_le(hdr + 16, out_len, 8);
	struct kiln_digest d;
	entry_sum(hdr, out, out_len, &d);
	memcpy(hdr + 24, d.bytes, 32);
	/* one temp name per thread: two workers may make the same entry at once */
	_cleanup_free_ char *tmp = kiln_xasprintf("%s/.tmp-%s-%d", dir, key, (int)gettid());
	_cleanup_free_ char *path = kiln_xasprintf("%s/%s", dir, key);
	_cleanup_close_ int fd =
	        open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	struct kiln_err scratch = KILN_ERR_INIT;
	bool ok = kiln_write_all(fd, hdr, SEG_HDR, &scratch) >= 0 &&
	          kiln_write_all(fd, out, out_len, &scratch) >= 0 && rename(tmp, path) == 0;
	kiln_err_release(&scratch);
	if (!ok)
		unlink(tmp);
	return ok;
}

/* ---- size and pruning ---- */

struct seg_file {
	char *path;
	int64_t mtime;
	uint64_t size;
};

static int
mtime_cmp(const void *a, const void *b)
{
	const struct seg_file *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Every entry (and stale temp file) of every compression's directory. */
static int
list_all(const char *root, struct seg_file **ret, size_t *ret_n, struct kiln_err *err)
{
	_cleanup_free_ char *top = kiln_xasprintf("%s/exporter/segments", root);
	struct seg_file *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir(top);
	if (!d) {
		*ret = NULL;
		*ret_n = 0;
		return errno == ENOENT ? 0 : kiln_err_set(err, errno, "open `%s`", top);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *sub = kiln_xasprintf("%s/%s", top, de->d_name);
		DIR *s = opendir(sub);
		if (!s)
			continue;
		struct dirent *e;
		while ((e = readdir(s))) {
			if (kiln_str_eq(e->d_name, ".") || kiln_str_eq(e->d_name, ".."))
				continue;
			struct stat st;
			if (fstatat(dirfd(s), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				v = kiln_xreallocarray(v, cap, sizeof(*v));
			}
			v[n++] = (struct seg_file){kiln_xasprintf("%s/%s", sub, e->d_name),
			                           (int64_t)st.st_mtim.tv_sec,
			                           (uint64_t)st.st_blocks * 512};
		}
		closedir(s);
	}
	closedir(d);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void
files_free(struct seg_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int
exp_segments_usage(const char *root, uint64_t *ret_bytes, size_t *ret_n, struct kiln_err *err)
{
	struct seg_file *v;
	size_t n;
	int r = list_all(root, &v, &n, err);
	if (r < 0)
		return r;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].size;
	files_free(v, n);
	*ret_bytes = total;
	*ret_n = n;
	return 0;
}

int
exp_segments_prune(const char *root, uint64_t keep, int64_t older_than, uint64_t *ret_freed,
                   struct kiln_err *err)
{
	struct seg_file *v;
	size_t n;
	int r = list_all(root, &v, &n, err);
	if (r < 0)
		return r;
	uint64_t total = 0, freed = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].size;
	if (n > 1)
		qsort(v, n, sizeof(*v), mtime_cmp);
	/* Oldest first; removing an entry another export is reading is safe (it has it
	 * open), and one it is about to read is a miss. */
	for (size_t i = 0; i < n; i++) {
		bool old = older_than >= 0 && v[i].mtime < older_than;
		if (total <= keep && !old)
			continue;
		if (unlink(v[i].path) == 0 || errno == ENOENT) {
			total -= v[i].size;
			freed += v[i].size;
		}
	}
	files_free(v, n);
	if (ret_freed)
		*ret_freed = freed;
	return 0;
}

#define SEG_PRUNE_EVERY 300

void
exp_segments_bound(const char *root)
{
	_cleanup_free_ char *stamp = kiln_xasprintf("%s/exporter/segments/.pruned", root);
	struct stat st;
	time_t now = time(NULL);
	if (stat(stamp, &st) == 0 && st.st_mtime > now - SEG_PRUNE_EVERY && st.st_mtime <= now)
		return;
	_cleanup_close_ int fd = open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		(void)futimens(fd, NULL);
	struct kiln_err scratch = KILN_ERR_INIT;
	exp_segments_prune(root, EXP_SEGMENTS_MAX, -1, NULL, &scratch);
	kiln_err_release(&scratch);
}
