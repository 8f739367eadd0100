/*
 * BuildKit's parser Dump() format (spec: shared/spec/parse-dump.md), so that kiln's parse
 * tree can be compared byte for byte with the reference parser's.
 */
#include "parser.h"
#include "unicode_print.h"

static const char hexdig[] = "0123456789abcdef";

void
fe_go_quote(struct kiln_buf *out, const char *s, size_t len)
{
	kiln_buf_grow(out, len + 2);
	kiln_buf_addch(out, '"');
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		/* The common case: printable ASCII that needs no escape. */
		if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
			size_t j = i + 1;
			while (j < len && (unsigned char)s[j] >= 0x20 &&
			       (unsigned char)s[j] < 0x7F && s[j] != '"' && s[j] != '\\')
				j++;
			kiln_buf_add(out, s + i, j - i);
			i = j;
			continue;
		}
		uint32_t r;
		size_t w = fe_utf8_decode(s + i, len - i, &r);
		if (w == 1 && r == FE_RUNE_ERROR) {
			char b[4] = {'\\', 'x', hexdig[c >> 4], hexdig[c & 15]};
			kiln_buf_add(out, b, 4);
			i++;
			continue;
		}
		if (r == '"' || r == '\\') {
			kiln_buf_addch(out, '\\');
			kiln_buf_addch(out, (int)r);
		} else if (fe_is_print(r)) {
			kiln_buf_add(out, s + i, w);
		} else {
			switch (r) {
			case '\a':
				kiln_buf_addstr(out, "\\a");
				break;
			case '\b':
				kiln_buf_addstr(out, "\\b");
				break;
			case '\f':
				kiln_buf_addstr(out, "\\f");
				break;
			case '\n':
				kiln_buf_addstr(out, "\\n");
				break;
			case '\r':
				kiln_buf_addstr(out, "\\r");
				break;
			case '\t':
				kiln_buf_addstr(out, "\\t");
				break;
			case '\v':
				kiln_buf_addstr(out, "\\v");
				break;
			default:
				if (r < 0x20 || r == 0x7F)
					kiln_buf_addf(out, "\\x%02x", (unsigned)r);
				else if (r < 0x10000)
					kiln_buf_addf(out, "\\u%04x", (unsigned)r);
				else
					kiln_buf_addf(out, "\\U%08x", (unsigned)r);
			}
		}
		i += w;
	}
	kiln_buf_addch(out, '"');
}

/* Nodes built by kiln's parser carry lengths (strings may hold NUL bytes); nodes built by
 * hand may not. */
static void
quote_str(struct kiln_buf *out, const char *s, const size_t *lens, size_t i)
{
	fe_go_quote(out, s, lens ? lens[i] : strlen(s));
}

/* ONBUILD nests only through `sub`, so the tree is a chain: print it with a loop and close
 * the parentheses at the end (no recursion, however deep the nesting). */
static void
dump_node(const struct fe_node *n, struct kiln_buf *out)
{
	size_t depth = 0;
	kiln_buf_addch(out, '(');
	for (;;) {
		size_t name_len = n->name_len ? n->name_len : strlen(n->name);
		kiln_buf_add(out, n->name, name_len);
		/* Go's Dump() trims the line: an empty name (a line that is only a continuation
		 * character) leaves no space before what follows. */
		const char *sep = name_len > 0 || depth > 0 ? " " : "";
		if (n->nflags > 0) {
			kiln_buf_addstr(out, sep);
			kiln_buf_addch(out, '[');
			sep = " ";
			for (size_t i = 0; i < n->nflags; i++) {
				if (i)
					kiln_buf_addch(out, ' ');
				quote_str(out, n->flags[i], n->flag_lens, i);
			}
			kiln_buf_addch(out, ']');
		}
		for (size_t i = 0; i < n->nargs; i++) {
			kiln_buf_addstr(out, sep);
			sep = " ";
			quote_str(out, n->args[i], n->arg_lens, i);
		}
		if (!n->sub)
			break;
		kiln_buf_addstr(out, " (");
		depth++;
		n = n->sub;
	}
	for (size_t i = 0; i <= depth; i++)
		kiln_buf_addch(out, ')');
	kiln_buf_addch(out, '\n');
}

void
fe_ast_dump(const struct fe_ast *ast, struct kiln_buf *out)
{
	for (size_t i = 0; i < ast->nnodes; i++)
		dump_node(&ast->nodes[i], out);
}
