/* --secret specs, as docker buildx writes them: id=ID[,src=FILE|env=VAR][,type=file|env]. */
#include "cmd.h"

void
cmd_secrets_release(struct cmd_secrets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].id);
		kiln_buf_release(&s->v[i].data);
	}
	free(s->v);
	*s = (struct cmd_secrets){0};
}

const struct cmd_secret *
cmd_secrets_find(const struct cmd_secrets *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (kiln_str_eq(s->v[i].id, id))
			return &s->v[i];
	return NULL;
}

int
cmd_secrets_add(struct cmd_secrets *s, const char *spec, struct kiln_err *err)
{
	_cleanup_free_ char *copy = kiln_xstrdup(spec);
	const char *id = NULL, *src = NULL, *env = NULL, *type = NULL;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
	     f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq)
			return kiln_err_invalid(err, "--secret %s: %s is not key=value", spec, f);
		*eq = '\0';
		const char *v = eq + 1;
		if (kiln_str_eq(f, "id"))
			id = v;
		else if (kiln_str_eq(f, "src") || kiln_str_eq(f, "source"))
			src = v;
		else if (kiln_str_eq(f, "env"))
			env = v;
		else if (kiln_str_eq(f, "type"))
			type = v;
		else
			return kiln_err_invalid(err, "--secret %s: unknown key %s", spec, f);
	}
	if (type && !kiln_str_eq(type, "file") && !kiln_str_eq(type, "env"))
		return kiln_err_invalid(err, "--secret %s: type must be file or env", spec);
	if (type && kiln_str_eq(type, "env") && src && !env)
		env = src, src = NULL;
	if (!id)
		id = env ? env : src;
	if (!id || !*id)
		return kiln_err_invalid(err, "--secret %s: no id", spec);
	if (src && env)
		return kiln_err_invalid(err, "--secret %s: src and env are exclusive", spec);
	if (cmd_secrets_find(s, id))
		return kiln_err_invalid(err, "--secret %s: id %s given twice", spec, id);

	struct kiln_buf data = KILN_BUF_INIT;
	/* Without src or env, as buildx: the environment variable named like the id. */
	if (!src && !env)
		env = id;
	if (src) {
		if (kiln_buf_read_file(&data, src, err) < 0)
			return kiln_err_wrap(err, "--secret %s", spec);
	} else {
		const char *v = getenv(env);
		if (!v)
			return kiln_err_invalid(
			        err, "--secret %s: environment variable %s is not set", spec, env);
		kiln_buf_addstr(&data, v);
	}
	KILN_GROW(s->v, s->alloc, s->n + 1);
	s->v[s->n++] = (struct cmd_secret){.id = kiln_xstrdup(id), .data = data};
	return 0;
}
