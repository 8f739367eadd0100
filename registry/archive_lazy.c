/*
 * libarchive, loaded on first use.
 *
 * libarchive brings libxml2, ICU, libstdc++, nettle, liblzma, liblz4, libbz2 and libacl
 * with it; mapping and relocating them was about 1.8 ms of every start of kiln, some 10%
 * of a `kiln plan` or `kiln parse`, which never read or write a tar. So kiln does not link
 * it (as registry/curl_lazy.c does for libcurl): these definitions of the libarchive calls
 * kiln makes open libarchive.so.13 the first time one is called and forward to it. A
 * missing libarchive is then reported on first use, as the loader would have reported it
 * at start.
 *
 * A call kiln starts to make must be added here; the link fails until it is.
 */
#include "base/base.h"

#include <archive.h>
#include <archive_entry.h>
#include <pthread.h>

/* R: returns a value, V: returns nothing; (type, name, parameters, arguments). */
#define ARCHIVE_CALLS(R, V)                                                                        \
	R(time_t, archive_entry_atime, (struct archive_entry * a0), (a0))                          \
	R(int, archive_entry_atime_is_set, (struct archive_entry * a0), (a0))                      \
	R(long, archive_entry_atime_nsec, (struct archive_entry * a0), (a0))                       \
	R(int, archive_entry_ctime_is_set, (struct archive_entry * a0), (a0))                      \
	R(mode_t, archive_entry_filetype, (struct archive_entry * a0), (a0))                       \
	V(void, archive_entry_free, (struct archive_entry * a0), (a0))                             \
	R(la_int64_t, archive_entry_gid, (struct archive_entry * a0), (a0))                        \
	R(const char *, archive_entry_gname, (struct archive_entry * a0), (a0))                    \
	R(const char *, archive_entry_hardlink, (struct archive_entry * a0), (a0))                 \
	R(mode_t, archive_entry_mode, (struct archive_entry * a0), (a0))                           \
	R(time_t, archive_entry_mtime, (struct archive_entry * a0), (a0))                          \
	R(long, archive_entry_mtime_nsec, (struct archive_entry * a0), (a0))                       \
	R(struct archive_entry *, archive_entry_new, (void), ())                                   \
	R(const char *, archive_entry_pathname, (struct archive_entry * a0), (a0))                 \
	R(mode_t, archive_entry_perm, (struct archive_entry * a0), (a0))                           \
	R(dev_t, archive_entry_rdev, (struct archive_entry * a0), (a0))                            \
	R(dev_t, archive_entry_rdevmajor, (struct archive_entry * a0), (a0))                       \
	R(dev_t, archive_entry_rdevminor, (struct archive_entry * a0), (a0))                       \
	V(void, archive_entry_set_filetype, (struct archive_entry * a0, unsigned int a1),          \
	  (a0, a1))                                                                                \
	V(void, archive_entry_set_gid, (struct archive_entry * a0, la_int64_t a1), (a0, a1))       \
	V(void, archive_entry_set_gname, (struct archive_entry * a0, const char *a1), (a0, a1))    \
	V(void, archive_entry_set_hardlink, (struct archive_entry * a0, const char *a1), (a0, a1)) \
	V(void, archive_entry_set_mode, (struct archive_entry * a0, mode_t a1), (a0, a1))          \
	V(void, archive_entry_set_mtime, (struct archive_entry * a0, time_t a1, long a2),          \
	  (a0, a1, a2))                                                                            \
	V(void, archive_entry_set_pathname, (struct archive_entry * a0, const char *a1), (a0, a1)) \
	V(void, archive_entry_set_perm, (struct archive_entry * a0, mode_t a1), (a0, a1))          \
	V(void, archive_entry_set_rdev, (struct archive_entry * a0, dev_t a1), (a0, a1))           \
	V(void, archive_entry_set_rdevmajor, (struct archive_entry * a0, dev_t a1), (a0, a1))      \
	V(void, archive_entry_set_rdevminor, (struct archive_entry * a0, dev_t a1), (a0, a1))      \
	V(void, archive_entry_set_size, (struct archive_entry * a0, la_int64_t a1), (a0, a1))      \
	V(void, archive_entry_set_symlink, (struct archive_entry * a0, const char *a1), (a0, a1))  \
	V(void, archive_entry_set_uid, (struct archive_entry * a0, la_int64_t a1), (a0, a1))       \
	V(void, archive_entry_set_uname, (struct archive_entry * a0, const char *a1), (a0, a1))    \
	R(la_int64_t, archive_entry_size, (struct archive_entry * a0), (a0))                       \
	R(int, archive_entry_size_is_set, (struct archive_entry * a0), (a0))                       \
	R(const char *, archive_entry_sourcepath, (struct archive_entry * a0), (a0))               \
	R(const char *, archive_entry_symlink, (struct archive_entry * a0), (a0))                  \
	R(la_int64_t, archive_entry_uid, (struct archive_entry * a0), (a0))                        \
	R(const char *, archive_entry_uname, (struct archive_entry * a0), (a0))                    \
	V(void, archive_entry_unset_atime, (struct archive_entry * a0), (a0))                      \
	V(void, archive_entry_unset_birthtime, (struct archive_entry * a0), (a0))                  \
	V(void, archive_entry_unset_ctime, (struct archive_entry * a0), (a0))                      \
	V(void, archive_entry_xattr_add_entry,                                                     \
	  (struct archive_entry * a0, const char *a1, const void *a2, size_t a3),                  \
	  (a0, a1, a2, a3))                                                                        \
	R(int, archive_entry_xattr_next,                                                           \
	  (struct archive_entry * a0, const char **a1, const void **a2, size_t *a3),               \
	  (a0, a1, a2, a3))                                                                        \
	R(int, archive_entry_xattr_reset, (struct archive_entry * a0), (a0))                       \
	R(int, archive_errno, (struct archive * a0), (a0))                                         \
	R(const char *, archive_error_string, (struct archive * a0), (a0))                         \
	R(int, archive_filter_code, (struct archive * a0, int a1), (a0, a1))                       \
	R(la_ssize_t, archive_read_data, (struct archive * a0, void *a1, size_t a2), (a0, a1, a2)) \
	R(int, archive_read_data_block,                                                            \
	  (struct archive * a0, const void **a1, size_t *a2, la_int64_t *a3), (a0, a1, a2, a3))    \
	R(int, archive_read_disk_descend, (struct archive * a0), (a0))                             \
	R(struct archive *, archive_read_disk_new, (void), ())                                     \
	R(int, archive_read_disk_open, (struct archive * a0, const char *a1), (a0, a1))            \
	R(int, archive_read_disk_set_symlink_physical, (struct archive * a0), (a0))                \
	R(int, archive_read_free, (struct archive * a0), (a0))                                     \
	R(struct archive *, archive_read_new, (void), ())                                          \
	R(int, archive_read_next_header, (struct archive * a0, struct archive_entry * *a1),        \
	  (a0, a1))                                                                                \
	R(int, archive_read_next_header2, (struct archive * a0, struct archive_entry * a1),        \
	  (a0, a1))                                                                                \
	R(int, archive_read_open,                                                                  \
	  (struct archive * a0, void *a1, archive_open_callback *a2, archive_read_callback *a3,    \
	   archive_close_callback *a4),                                                            \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, archive_read_open_fd, (struct archive * a0, int a1, size_t a2), (a0, a1, a2))       \
	R(int, archive_read_open_filename, (struct archive * a0, const char *a1, size_t a2),       \
	  (a0, a1, a2))                                                                            \
	R(int, archive_read_open_memory, (struct archive * a0, const void *a1, size_t a2),         \
	  (a0, a1, a2))                                                                            \
	R(int, archive_read_support_filter_all, (struct archive * a0), (a0))                       \
	R(int, archive_read_support_filter_gzip, (struct archive * a0), (a0))                      \
	R(int, archive_read_support_filter_none, (struct archive * a0), (a0))                      \
	R(int, archive_read_support_filter_zstd, (struct archive * a0), (a0))                      \
	R(int, archive_read_support_format_all, (struct archive * a0), (a0))                       \
	R(int, archive_read_support_format_gnutar, (struct archive * a0), (a0))                    \
	R(int, archive_read_support_format_raw, (struct archive * a0), (a0))                       \
	R(int, archive_read_support_format_tar, (struct archive * a0), (a0))                       \
	R(int, archive_write_add_filter_by_name, (struct archive * a0, const char *a1), (a0, a1))  \
	R(int, archive_write_add_filter_gzip, (struct archive * a0), (a0))                         \
	R(int, archive_write_add_filter_zstd, (struct archive * a0), (a0))                         \
	R(int, archive_write_close, (struct archive * a0), (a0))                                   \
	R(la_ssize_t, archive_write_data, (struct archive * a0, const void *a1, size_t a2),        \
	  (a0, a1, a2))                                                                            \
	R(int, archive_write_free, (struct archive * a0), (a0))                                    \
	R(int, archive_write_header, (struct archive * a0, struct archive_entry * a1), (a0, a1))   \
	R(struct archive *, archive_write_new, (void), ())                                         \
	R(int, archive_write_open2,                                                                \
	  (struct archive * a0, void *a1, archive_open_callback *a2, archive_write_callback *a3,   \
	   archive_close_callback *a4, archive_free_callback *a5),                                 \
	  (a0, a1, a2, a3, a4, a5))                                                                \
	R(int, archive_write_open_fd, (struct archive * a0, int a1), (a0, a1))                     \
	R(int, archive_write_open_filename, (struct archive * a0, const char *a1), (a0, a1))       \
	R(int, archive_write_set_bytes_in_last_block, (struct archive * a0, int a1), (a0, a1))     \
	R(int, archive_write_set_bytes_per_block, (struct archive * a0, int a1), (a0, a1))         \
	R(int, archive_write_set_filter_option,                                                    \
	  (struct archive * a0, const char *a1, const char *a2, const char *a3), (a0, a1, a2, a3)) \
	R(int, archive_write_set_format_option,                                                    \
	  (struct archive * a0, const char *a1, const char *a2, const char *a3), (a0, a1, a2, a3)) \
	R(int, archive_write_set_format_pax, (struct archive * a0), (a0))                          \
	R(int, archive_write_set_format_pax_restricted, (struct archive * a0), (a0))               \
	R(int, archive_write_set_format_raw, (struct archive * a0), (a0))

static struct {
	ARCHIVE_CALLS(KILN_LAZY_FIELD, KILN_LAZY_FIELD)
	void (*archive_set_error)(struct archive *a, int err, const char *fmt, ...);
} real;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void
load(void)
{
	void *lib = kiln_lazy_open("libarchive.so.13", "needed to read and write tar archives");
#define LOOKUP(ret, name, params, args)                                                            \
	*(void **)&real.name = kiln_lazy_sym(lib, "libarchive.so.13", #name);
	ARCHIVE_CALLS(LOOKUP, LOOKUP)
	LOOKUP(void, archive_set_error, , )
#undef LOOKUP
}

ARCHIVE_CALLS(KILN_LAZY_DEFINE, KILN_LAZY_DEFINE_VOID)

/* Variadic: formatted here, handed over as one string (libarchive's own formatting knows
 * fewer conversions than vsnprintf, so the message is the same or better). */
void
archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	KILN_LAZY_REAL(archive_set_error)(a, err, "%s", msg);
}
