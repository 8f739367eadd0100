/* Placeholder until the typed-instruction layer lands (frontend/instructions.c). */
#include "parser.h"

int
fe_ast_to_json(const struct fe_ast *ast, struct kiln_buf *out, struct kiln_err *err)
{
	return kiln_err_set(err, ENOSYS, "parse --format=json");
}
