/* libFuzzer target: the Dockerfile parser, its dump and the typed-instruction JSON on any
 * input. Every allocation must be released and no input may crash or trip a sanitizer. */
#include "frontend/fe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast = NULL;

	if (fe_parse("Dockerfile", (const char *)data, size, &ast, &err) < 0) {
		kiln_err_release(&err);
		return 0;
	}
	struct kiln_buf out = KILN_BUF_INIT;
	fe_ast_dump(ast, &out);
	kiln_buf_release(&out);
	if (fe_ast_to_json(ast, &out, &err) < 0)
		kiln_err_release(&err);
	kiln_buf_release(&out);
	fe_ast_free(ast);
	return 0;
}
