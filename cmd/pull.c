/* kiln pull: fetch an image from a registry into the store and name it. */
#include "cmd.h"
#include "registry/reg.h"

static const char pull_usage[] =
        "Usage: kiln pull [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST] REF\n";

int
cmd_pull(int argc, char **argv)
{
	const char *platform = NULL, *src = NULL;
	_cleanup_strv_ struct kiln_strv insecure = KILN_STRV_INIT;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--platform") && i + 1 < argc) {
			platform = argv[++i];
		} else if (kiln_str_has_prefix(argv[i], "--platform=")) {
			platform = argv[i] + strlen("--platform=");
		} else if (kiln_str_eq(argv[i], "--insecure-registry") && i + 1 < argc) {
			kiln_strv_push(&insecure, argv[++i]);
		} else if (kiln_str_has_prefix(argv[i], "--insecure-registry=")) {
			kiln_strv_push(&insecure, argv[i] + strlen("--insecure-registry="));
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("%s\nPull an image (its manifest for the platform, config and "
			       "layers)"
			       " into the store and name it.\n",
			       pull_usage);
			return 0;
		} else if (argv[i][0] == '-' || src) {
			fprintf(stderr, "kiln pull: unexpected argument %s\n%s", argv[i],
			        pull_usage);
			return KILN_EXIT_USAGE;
		} else {
			src = argv[i];
		}
	}
	if (!src) {
		fprintf(stderr, "%s", pull_usage);
		return KILN_EXIT_USAGE;
	}

	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_client *c = NULL;
	struct reg_ref ref = REG_REF_INIT;
	struct reg_platform pl = REG_PLATFORM_INIT;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	_cleanup_free_ char *name = NULL;
	int rc = KILN_EXIT_FAIL;
	if (platform && reg_platform_parse(platform, &pl, &err) < 0)
		goto fail;
	if (reg_ref_parse_normalized(src, &ref, &err) < 0)
		goto fail;
	reg_ref_default_tag(&ref);

	struct reg_client_opts o = REG_CLIENT_OPTS_INIT;
	o.certs_d = getenv("KILN_CERTS_D");
	for (size_t i = 0; i < insecure.n; i++)
		o.insecure = o.insecure || kiln_str_eq(insecure.v[i], ref.domain);
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_client_new(ref.domain, &o, &c, &err) < 0 ||
	    reg_pull(c, st, &ref, platform ? &pl : NULL, digest, &err) < 0)
		goto fail;
	name = reg_ref_string(&ref);
	printf("%s\n%s\n", digest, name);
	rc = 0;
	goto out;
fail:
	cmd_print_err(&err);
out:
	reg_client_free(c);
	reg_store_free(st);
	reg_platform_release(&pl);
	reg_ref_release(&ref);
	return rc;
}
