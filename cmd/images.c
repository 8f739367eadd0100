/* kiln images: the names in the store, with digest, size and age. */
#include "cmd.h"
#include "registry/reg.h"

#include <time.h>

static char *
age(const char *created, int64_t fallback)
{
	struct tm tm = {0};
	time_t t = (time_t)fallback;
	if (created && strptime(created, "%Y-%m-%dT%H:%M:%S", &tm))
		t = timegm(&tm);
	int64_t d = (int64_t)time(NULL) - (int64_t)t;
	if (d < 0)
		d = 0;
	if (d < 60)
		return kiln_xasprintf("%lld seconds ago", (long long)d);
	if (d < 3600)
		return kiln_xasprintf("%lld minutes ago", (long long)(d / 60));
	if (d < 86400 * 2)
		return kiln_xasprintf("%lld hours ago", (long long)(d / 3600));
	return kiln_xasprintf("%lld days ago", (long long)(d / 86400));
}

static char *
human(int64_t n)
{
	if (n < 1000)
		return kiln_xasprintf("%lldB", (long long)n);
	if (n < 1000 * 1000)
		return kiln_xasprintf("%.1fkB", (double)n / 1e3);
	if (n < 1000LL * 1000 * 1000)
		return kiln_xasprintf("%.1fMB", (double)n / 1e6);
	return kiln_xasprintf("%.2fGB", (double)n / 1e9);
}

int
cmd_images(int argc, char **argv)
{
	bool no_trunc = false;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--no-trunc")) {
			no_trunc = true;
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("Usage: kiln images [--no-trunc]\n\nList the images in the store: "
			       "name, "
			       "manifest digest, size of the content, age.\n");
			return 0;
		} else {
			fprintf(stderr, "kiln images: unknown option %s\n", argv[i]);
			return KILN_EXIT_USAGE;
		}
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_name *names = NULL;
	size_t n = 0;
	if (reg_store_open(cmd_root(), &st, &err) < 0 || reg_name_list(st, &names, &n, &err) < 0) {
		cmd_print_err(&err);
		reg_store_free(st);
		return KILN_EXIT_FAIL;
	}
	printf("%-40s %-*s %-10s %s\n", "NAME", no_trunc ? 71 : 12, "DIGEST", "SIZE", "CREATED");
	for (size_t i = 0; i < n; i++) {
		struct reg_image img = REG_IMAGE_INIT;
		struct reg_ref ref = REG_REF_INIT;
		_cleanup_free_ char *fam = NULL, *sz = NULL, *when = NULL;
		if (reg_ref_parse_normalized(names[i].name, &ref, NULL) >= 0)
			fam = reg_ref_familiar(&ref);
		reg_ref_release(&ref);
		if (reg_image_open(st, names[i].digest, NULL, &img, &err) < 0) {
			kiln_err_release(&err);
			sz = kiln_xstrdup("?");
			when = age(NULL, names[i].updated);
		} else {
			int64_t total = img.manifest.config.size;
			for (size_t k = 0; k < img.manifest.n_layers; k++)
				total += img.manifest.layers[k].size;
			sz = human(total);
			when = age(img.config.created, names[i].updated);
		}
		printf("%-40s %-*.*s %-10s %s\n", fam ? fam : names[i].name, no_trunc ? 71 : 12,
		       no_trunc ? 71 : 12, no_trunc ? names[i].digest : names[i].digest + 7, sz,
		       when);
		reg_image_release(&img);
	}
	reg_names_free(names, n);
	reg_store_free(st);
	return 0;
}
