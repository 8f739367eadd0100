/* kiln push: send an image from the store to a registry. */
#include "cmd.h"
#include "registry/reg.h"

static const char push_usage[] = "Usage: kiln push [--insecure-registry HOST] REF [DEST]\n";

int
cmd_push(int argc, char **argv)
{
	const char *src = NULL, *dst = NULL;
	_cleanup_strv_ struct kiln_strv insecure = KILN_STRV_INIT;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--insecure-registry") && i + 1 < argc) {
			kiln_strv_push(&insecure, argv[++i]);
		} else if (kiln_str_has_prefix(argv[i], "--insecure-registry=")) {
			kiln_strv_push(&insecure, argv[i] + strlen("--insecure-registry="));
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("%s\nPush the image REF names in the store to the registry of DEST"
			       " (default: REF itself).\n",
			       push_usage);
			return 0;
		} else if (argv[i][0] == '-' || dst) {
			fprintf(stderr, "kiln push: unexpected argument %s\n%s", argv[i],
			        push_usage);
			return KILN_EXIT_USAGE;
		} else if (!src) {
			src = argv[i];
		} else {
			dst = argv[i];
		}
	}
	if (!src) {
		fprintf(stderr, "%s", push_usage);
		return KILN_EXIT_USAGE;
	}

	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_client *c = NULL;
	struct reg_ref ref = REG_REF_INIT;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int rc = KILN_EXIT_FAIL;
	if (reg_ref_parse_normalized(dst ? dst : src, &ref, &err) < 0)
		goto fail;
	if (ref.digest) {
		kiln_err_invalid(&err, "`%s`: push to a tag, not a digest", dst ? dst : src);
		goto fail;
	}
	reg_ref_default_tag(&ref);

	struct reg_client_opts o = REG_CLIENT_OPTS_INIT;
	o.certs_d = getenv("KILN_CERTS_D");
	/* Tests make small blobs go in chunks to exercise PATCH uploads. */
	const char *chunk = getenv("KILN_PUSH_CHUNK_SIZE");
	uint64_t n;
	if (chunk && kiln_parse_u64(chunk, &n) == 0 && n > 0 && n < INT64_MAX)
		o.chunk_size = (int64_t)n;
	for (size_t i = 0; i < insecure.n; i++)
		o.insecure = o.insecure || kiln_str_eq(insecure.v[i], ref.domain);
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_client_new(ref.domain, &o, &c, &err) < 0 ||
	    reg_push(c, st, src, &ref, digest, &err) < 0)
		goto fail;
	printf("%s\n", digest);
	rc = 0;
	goto out;
fail:
	cmd_print_err(&err);
out:
	reg_client_free(c);
	reg_store_free(st);
	reg_ref_release(&ref);
	return rc;
}
