/* libFuzzer target: manifests, indexes and configs from untrusted bytes (a registry or an
 * archive). Every parser must fail cleanly or round-trip what it accepted. */
#include "registry/reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_err err = KILN_ERR_INIT;
	enum reg_kind k;
	struct reg_manifest m = {0};
	struct reg_index idx = {0};
	struct reg_config c = {0};
	struct kiln_buf b = KILN_BUF_INIT;
	const char *cts[] = {NULL, REG_MT_OCI_INDEX, "application/json"};
	for (size_t i = 0; i < 3; i++) {
		reg_media_detect(data, size, cts[i], NULL, &k, &err);
		kiln_err_release(&err);
	}
	if (reg_manifest_parse(data, size, NULL, &m, &err) == 0) {
		struct reg_manifest back = {0};
		if (reg_manifest_write(&m, &b, &err) < 0 ||
		    reg_manifest_parse(b.buf, b.len, NULL, &back, &err) < 0 ||
		    back.n_layers != m.n_layers)
			abort();
		reg_manifest_release(&back);
		kiln_buf_reset(&b);
	}
	kiln_err_release(&err);
	if (reg_index_parse(data, size, NULL, &idx, &err) == 0) {
		reg_index_select(&idx, NULL, &err);
		if (reg_index_write(&idx, &b, &err) < 0)
			abort();
		kiln_buf_reset(&b);
	}
	kiln_err_release(&err);
	if (reg_config_parse(data, size, NULL, &c, &err) == 0) {
		if (reg_config_write(&c, &b, &err) < 0)
			abort();
	}
	kiln_err_release(&err);
	reg_manifest_release(&m);
	reg_index_release(&idx);
	reg_config_release(&c);
	kiln_buf_release(&b);
	return 0;
}
