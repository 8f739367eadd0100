/* kiln load FILE [NAME]: an OCI layout (directory or tar) or a docker-save archive. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_load(int argc, char **argv)
{
	const char *path = NULL, *fallback = NULL;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("Usage: kiln load [-i] FILE|DIR [NAME]\n\nLoad an OCI layout "
			       "(directory or "
			       "tar) or a `docker save` archive. NAME names the image when the "
			       "archive "
			       "names none.\n");
			return 0;
		} else if ((kiln_str_eq(argv[i], "-i") || kiln_str_eq(argv[i], "--input")) &&
		           i + 1 < argc && !path) {
			path = argv[++i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "kiln load: unknown option %s\n", argv[i]);
			return KILN_EXIT_USAGE;
		} else if (!path) {
			path = argv[i];
		} else if (!fallback) {
			fallback = argv[i];
		} else {
			fprintf(stderr, "kiln load: too many arguments\n");
			return KILN_EXIT_USAGE;
		}
	}
	if (!path) {
		fprintf(stderr, "Usage: kiln load FILE|DIR [NAME]\n");
		return KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_loaded *v = NULL;
	size_t n = 0;
	int rc = KILN_EXIT_FAIL;
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_archive_load(st, path, &v, &n, &err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = v[i].name ? kiln_xstrdup(v[i].name) : NULL;
		if (!name && fallback) {
			struct reg_ref ref = REG_REF_INIT;
			if (reg_ref_parse_normalized(fallback, &ref, &err) < 0)
				goto fail;
			reg_ref_default_tag(&ref);
			name = reg_ref_string(&ref);
			reg_ref_release(&ref);
		}
		if (!name) {
			printf("Loaded image: %s\n", v[i].digest);
			continue;
		}
		if (reg_name_set(st, name, v[i].digest, &err) < 0)
			goto fail;
		struct reg_ref ref = REG_REF_INIT;
		_cleanup_free_ char *fam = NULL;
		if (reg_ref_parse_normalized(name, &ref, NULL) >= 0)
			fam = reg_ref_familiar(&ref);
		reg_ref_release(&ref);
		printf("Loaded image: %s %s\n", fam ? fam : name, v[i].digest);
	}
	rc = 0;
	goto out;
fail:
	cmd_print_err(&err);
out:
	reg_loaded_free(v, n);
	reg_store_free(st);
	return rc;
}
