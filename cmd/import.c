/* kiln import DIR|TAR REF: a single-layer image from a root filesystem. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_import(int argc, char **argv)
{
	const char *src = NULL, *target = NULL, *platform = NULL;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--platform") && i + 1 < argc) {
			platform = argv[++i];
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("Usage: kiln import [--platform P] DIR|TAR REF\n\nMake a "
			       "single-layer "
			       "image from a root filesystem. With SOURCE_DATE_EPOCH set, newer "
			       "mtimes "
			       "are clamped to it and it is the creation time.\n");
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "kiln import: unknown option %s\n", argv[i]);
			return KILN_EXIT_USAGE;
		} else if (!src) {
			src = argv[i];
		} else if (!target) {
			target = argv[i];
		} else {
			fprintf(stderr, "kiln import: too many arguments\n");
			return KILN_EXIT_USAGE;
		}
	}
	if (!src || !target) {
		fprintf(stderr, "Usage: kiln import [--platform P] DIR|TAR REF\n");
		return KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_ref ref = REG_REF_INIT;
	struct reg_platform pl = REG_PLATFORM_INIT;
	struct reg_import_opts o = REG_IMPORT_OPTS_INIT;
	_cleanup_free_ char *name = NULL;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int rc = KILN_EXIT_FAIL;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	uint64_t epoch;
	if (sde && *sde) {
		if (kiln_parse_u64(sde, &epoch) < 0 || epoch > INT64_MAX) {
			kiln_err_invalid(&err, "SOURCE_DATE_EPOCH `%s` is not a number of seconds",
			                 sde);
			goto fail;
		}
		o.clamp_mtime = o.created = (int64_t)epoch;
	}
	if (platform) {
		if (reg_platform_parse(platform, &pl, &err) < 0)
			goto fail;
		o.platform = &pl;
	}
	if (reg_ref_parse_normalized(target, &ref, &err) < 0)
		goto fail;
	if (ref.digest) {
		kiln_err_invalid(&err, "`%s`: an image name cannot carry a digest", target);
		goto fail;
	}
	reg_ref_default_tag(&ref);
	name = reg_ref_string(&ref);
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_import_rootfs(st, src, &o, digest, &err) < 0 ||
	    reg_name_set(st, name, digest, &err) < 0)
		goto fail;
	printf("%s\n", digest);
	rc = 0;
	goto out;
fail:
	cmd_print_err(&err);
out:
	reg_platform_release(&pl);
	reg_ref_release(&ref);
	reg_store_free(st);
	return rc;
}
