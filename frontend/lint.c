/*
 * kiln lint: the engine (rule table, check directive, the stage model) and BuildKit's
 * build checks, with BuildKit's names and messages so skip lists carry over.
 *
 * BuildKit runs its checks while it lowers the Dockerfile, with the base images' configs
 * at hand. kiln lints without pulling anything: where a rule needs an image's environment
 * (UndefinedVar), the caller may supply it, and otherwise the rule stays exact only for
 * well-known minimal images and reports likely typos elsewhere.
 */
#include "lint.h"
#include "dockerignore.h"

#include <ctype.h>
#include <strings.h>

#define BK_URL(slug) "https://docs.docker.com/go/dockerfile/rule/" slug "/"
/* kiln's own rules are documented by `kiln lint --list`; SARIF wants a URI for each. */
/* kiln's own rules are documented by `kiln lint --list`; they have no web page. */
#define KILN_URL(slug) NULL

static const struct fe_lint_rule rules[R__COUNT] = {
        [R_STAGE_NAME_CASING] = {"StageNameCasing", FE_LINT_WARNING,
                                 "Stage names should be lowercase", BK_URL("stage-name-casing"),
                                 true},
        [R_FROM_AS_CASING] = {"FromAsCasing", FE_LINT_WARNING,
                              "The 'as' keyword should match the case of the 'from' keyword",
                              BK_URL("from-as-casing"), true},
        [R_NO_EMPTY_CONTINUATION] = {"NoEmptyContinuation", FE_LINT_WARNING,
                                     "Empty continuation lines will become errors in a future "
                                     "release",
                                     BK_URL("no-empty-continuation"), true},
        [R_CONSISTENT_INSTRUCTION_CASING] = {"ConsistentInstructionCasing", FE_LINT_WARNING,
                                             "All commands within the Dockerfile should use "
                                             "the same casing (either upper or lower)",
                                             BK_URL("consistent-instruction-casing"), true},
        [R_DUPLICATE_STAGE_NAME] = {"DuplicateStageName", FE_LINT_WARNING,
                                    "Stage names should be unique", BK_URL("duplicate-stage-name"),
                                    true},
        [R_RESERVED_STAGE_NAME] = {"ReservedStageName", FE_LINT_WARNING,
                                   "Reserved words should not be used as stage names",
                                   BK_URL("reserved-stage-name"), true},
        [R_JSON_ARGS_RECOMMENDED] = {"JSONArgsRecommended", FE_LINT_WARNING,
                                     "JSON arguments recommended for ENTRYPOINT/CMD to prevent "
                                     "unintended behavior related to OS signals",
                                     BK_URL("json-args-recommended"), true},
        [R_MAINTAINER_DEPRECATED] = {"MaintainerDeprecated", FE_LINT_WARNING,
                                     "The MAINTAINER instruction is deprecated, use a label "
                                     "instead to define an image author",
                                     BK_URL("maintainer-deprecated"), true},
        [R_UNDEFINED_ARG_IN_FROM] = {"UndefinedArgInFrom", FE_LINT_WARNING,
                                     "FROM command must use declared ARGs",
                                     BK_URL("undefined-arg-in-from"), true},
        [R_WORKDIR_RELATIVE_PATH] = {"WorkdirRelativePath", FE_LINT_WARNING,
                                     "Relative workdir without an absolute workdir declared "
                                     "within the build can have unexpected results if the base "
                                     "image changes",
                                     BK_URL("workdir-relative-path"), true},
        [R_UNDEFINED_VAR] = {"UndefinedVar", FE_LINT_WARNING,
                             "Variables should be defined before their use",
                             BK_URL("undefined-var"), true},
        [R_MULTIPLE_INSTRUCTIONS_DISALLOWED] = {"MultipleInstructionsDisallowed", FE_LINT_WARNING,
                                                "Multiple instructions of the same type should "
                                                "not be used in the same stage",
                                                BK_URL("multiple-instructions-disallowed"), true},
        [R_LEGACY_KEY_VALUE_FORMAT] = {"LegacyKeyValueFormat", FE_LINT_WARNING,
                                       "Legacy key/value format with whitespace separator "
                                       "should not be used",
                                       BK_URL("legacy-key-value-format"), true},
        [R_REDUNDANT_TARGET_PLATFORM] = {"RedundantTargetPlatform", FE_LINT_WARNING,
                                         "Setting platform to predefined $TARGETPLATFORM in "
                                         "FROM is redundant as this is the default behavior",
                                         BK_URL("redundant-target-platform"), true},
        [R_SECRETS_USED_IN_ARG_OR_ENV] = {"SecretsUsedInArgOrEnv", FE_LINT_WARNING,
                                          "Sensitive data should not be used in the ARG or ENV "
                                          "commands",
                                          BK_URL("secrets-used-in-arg-or-env"), true},
        [R_INVALID_DEFAULT_ARG_IN_FROM] = {"InvalidDefaultArgInFrom", FE_LINT_WARNING,
                                           "Default value for global ARG results in an empty "
                                           "or invalid base image name",
                                           BK_URL("invalid-default-arg-in-from"), true},
        [R_FROM_PLATFORM_FLAG_CONST_DISALLOWED] = {"FromPlatformFlagConstDisallowed",
                                                   FE_LINT_WARNING,
                                                   "FROM --platform flag should not use a "
                                                   "constant value",
                                                   BK_URL("from-platform-flag-const-disallowed"),
                                                   true},
        [R_COPY_IGNORED_FILE] = {"CopyIgnoredFile", FE_LINT_WARNING,
                                 "Attempting to Copy file that is excluded by .dockerignore",
                                 BK_URL("copy-ignored-file"), true},
        [R_EXPOSE_PROTO_CASING] = {"ExposeProtoCasing", FE_LINT_WARNING,
                                   "Protocol in EXPOSE instruction should be lowercase",
                                   BK_URL("expose-proto-casing"), true},
        [R_EXPOSE_INVALID_FORMAT] = {"ExposeInvalidFormat", FE_LINT_WARNING,
                                     "IP address and host-port mapping should not be used in "
                                     "EXPOSE instruction. This will become an error in a "
                                     "future release",
                                     BK_URL("expose-invalid-format"), true},

        [R_COPY_CONTEXT_BEFORE_INSTALL] = {"CopyContextBeforeInstall", FE_LINT_WARNING,
                                           "COPY of the whole context before a dependency "
                                           "install reinstalls on every code change",
                                           KILN_URL("copycontextbeforeinstall"), false},
        [R_APT_UPDATE_WITHOUT_INSTALL] = {"AptUpdateWithoutInstall", FE_LINT_WARNING,
                                          "apt-get update in a RUN without apt-get install: "
                                          "the cached lists go stale",
                                          KILN_URL("aptupdatewithoutinstall"), false},
        [R_APT_INSTALL_WITHOUT_YES] = {"AptInstallWithoutYes", FE_LINT_WARNING,
                                       "apt-get install without -y stops at the prompt",
                                       KILN_URL("aptinstallwithoutyes"), false},
        [R_APT_INSTALL_RECOMMENDS] = {"AptInstallRecommends", FE_LINT_WARNING,
                                      "apt-get install without --no-install-recommends pulls "
                                      "in packages nobody asked for",
                                      KILN_URL("aptinstallrecommends"), false},
        [R_APT_LISTS_NOT_REMOVED] = {"AptListsNotRemoved", FE_LINT_WARNING,
                                     "apt lists left in the layer of the RUN that installs",
                                     KILN_URL("aptlistsnotremoved"), false},
        [R_APK_ADD_WITHOUT_NO_CACHE] = {"ApkAddWithoutNoCache", FE_LINT_WARNING,
                                        "apk add without --no-cache keeps the index in the "
                                        "image",
                                        KILN_URL("apkaddwithoutnocache"), false},
        [R_YUM_DNF_CACHE_NOT_CLEANED] = {"YumDnfCacheNotCleaned", FE_LINT_WARNING,
                                         "dnf/yum install without clean all in the same RUN "
                                         "keeps the package cache in the image",
                                         KILN_URL("yumdnfcachenotcleaned"), false},
        [R_PIP_WITHOUT_NO_CACHE_DIR] = {"PipWithoutNoCacheDir", FE_LINT_WARNING,
                                        "pip install without --no-cache-dir keeps downloaded "
                                        "wheels in the image",
                                        KILN_URL("pipwithoutnocachedir"), false},
        [R_NPM_INSTALL_WITH_LOCKFILE] = {"NpmInstallWithLockfile", FE_LINT_WARNING,
                                         "npm install where a lockfile was copied: npm ci is "
                                         "faster and exact",
                                         KILN_URL("npminstallwithlockfile"), false},
        [R_PACKAGE_CACHE_MOUNT] = {"PackageCacheMount", FE_LINT_INFO,
                                   "A package download in RUN without a cache mount for the "
                                   "package manager's cache",
                                   KILN_URL("packagecachemount"), false},
        [R_CHOWN_CHMOD_AFTER_COPY] = {"ChownChmodAfterCopy", FE_LINT_WARNING,
                                      "RUN chmod/chown on files an earlier COPY/ADD created "
                                      "duplicates them in a new layer",
                                      KILN_URL("chownchmodaftercopy"), false},
        [R_REMOVE_IN_LATER_LAYER] = {"RemoveInLaterLayer", FE_LINT_WARNING,
                                     "Files removed in a later RUN than the step that created "
                                     "them stay in the image",
                                     KILN_URL("removeinlaterlayer"), false},
        [R_FROM_LATEST_TAG] = {"FromLatestTag", FE_LINT_WARNING,
                               "FROM an image without a tag or with :latest is not "
                               "reproducible",
                               KILN_URL("fromlatesttag"), false},
        [R_ADD_LOCAL_NON_ARCHIVE] = {"AddLocalNonArchive", FE_LINT_WARNING,
                                     "ADD of local files that are not archives: COPY says what "
                                     "it does",
                                     KILN_URL("addlocalnonarchive"), false},
        [R_RUN_CD_USE_WORKDIR] = {"RunCdUseWorkdir", FE_LINT_WARNING,
                                  "RUN that starts with cd where WORKDIR fits",
                                  KILN_URL("runcduseworkdir"), false},
        [R_FINAL_STAGE_RUNS_AS_ROOT] = {"FinalStageRunsAsRoot", FE_LINT_INFO,
                                        "The final stage sets no non-root USER",
                                        KILN_URL("finalstagerunsasroot"), false},
        [R_BUILD_TOOLS_IN_FINAL_STAGE] = {"BuildToolsInFinalStage", FE_LINT_WARNING,
                                          "The final stage builds with compilers or package "
                                          "tools and copies nothing from a builder stage",
                                          KILN_URL("buildtoolsinfinalstage"), false},
};

const struct fe_lint_rule *
fe_lint_rules_list(size_t *ret_n)
{
	*ret_n = R__COUNT;
	return rules;
}

const struct fe_lint_rule *
fe_lint_rule_find(const char *name)
{
	for (size_t i = 0; i < R__COUNT; i++)
		if (!strcasecmp(rules[i].name, name))
			return &rules[i];
	return NULL;
}

const char *
fe_lint_severity_name(enum fe_lint_severity s)
{
	switch (s) {
	case FE_LINT_ERROR:
		return "error";
	case FE_LINT_WARNING:
		return "warning";
	default:
		return "info";
	}
}

void
fe_lint_findings_free(struct fe_lint_finding *findings, size_t n)
{
	for (size_t i = 0; findings && i < n; i++)
		free(findings[i].message);
	free(findings);
}

void
lint_report(struct lint *l, enum lint_rule_id rule, const struct fe_cmd *at, const char *fmt, ...)
{
	if (l->skip[rule])
		return;
	KILN_GROW(l->findings, l->alloc, l->nfindings + 1);
	struct fe_lint_finding *f = &l->findings[l->nfindings++];
	f->rule = &rules[rule];
	f->severity = rules[rule].severity;
	if (l->error && f->severity == FE_LINT_WARNING)
		f->severity = FE_LINT_ERROR;
	f->file = l->ast->file;
	f->line = at ? at->start_line : 1;
	f->end_line = at ? at->end_line : 1;
	va_list ap;
	va_start(ap, fmt);
	struct kiln_buf b = KILN_BUF_INIT;
	kiln_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	f->message = kiln_buf_detach(&b, NULL);
}

/* ---- the check directive: skip=A,B|all;error=true;experimental=... ---- */

static bool
parse_go_bool(const char *s, bool *ret)
{
	static const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(t); i++) {
		if (kiln_str_eq(s, t[i]))
			return *ret = true, true;
		if (kiln_str_eq(s, f[i]))
			return *ret = false, true;
	}
	return false;
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int
parse_check(struct lint *l, const char *value, const char *origin, int line)
{
	_cleanup_free_ char *copy = kiln_xstrdup(value);
	bool skip[R__COUNT] = {0}, error = false;
	char *save = NULL;
	for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
		part = trim(part);
		if (!*part)
			continue;
		char *eq = strchr(part, '=');
		if (!eq)
			return kiln_err_at(l->err, l->ast->file, line, 0,
			                   "invalid check %s \"%s\": want key=value", origin, part);
		*eq = 0;
		char *key = trim(part), *val = trim(eq + 1);
		if (!strcasecmp(key, "skip")) {
			char *s2 = NULL;
			for (char *n = strtok_r(val, ",", &s2); n; n = strtok_r(NULL, ",", &s2)) {
				n = trim(n);
				if (!strcasecmp(n, "all")) {
					for (size_t i = 0; i < R__COUNT; i++)
						skip[i] = true;
				} else {
					/* Unknown names are BuildKit rules kiln lacks, or typos:
					 * neither should stop a build. */
					const struct fe_lint_rule *r = fe_lint_rule_find(n);
					if (r)
						skip[r - rules] = true;
				}
			}
		} else if (!strcasecmp(key, "error")) {
			if (!parse_go_bool(val, &error))
				return kiln_err_at(l->err, l->ast->file, line, 0,
				                   "invalid check %s: error=%s is not a boolean",
				                   origin, val);
		} else if (!strcasecmp(key, "experimental")) {
			/* kiln runs CopyIgnoredFile, BuildKit's one experimental rule, always. */
		} else {
			return kiln_err_at(l->err, l->ast->file, line, 0,
			                   "invalid check %s: unknown key \"%s\"", origin, key);
		}
	}
	memcpy(l->skip, skip, sizeof(skip));
	l->error = error;
	return 0;
}

/* ---- helpers shared by the rules ---- */

int
lint_stage_ref(const struct lint *l, size_t before, const char *ref)
{
	if (!ref || !*ref)
		return -1;
	for (size_t i = 0; i < before && i < l->nstages; i++)
		if (l->stages[i].name && !strcasecmp(l->stages[i].name, ref))
			return (int)i;
	char *end;
	long n = strtol(ref, &end, 10);
	if (!*end && n >= 0 && (size_t)n < before && (size_t)n < l->nstages)
		return (int)n;
	return -1;
}

static size_t
levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 64;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost =
			        tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1])
			                ? 0
			                : 1;
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* The closest of `names` to `v` within a typo's distance, or NULL (util/suggest). */
static const char *
suggest(const char *v, char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	size_t vl = strlen(v);
	size_t allowed = vl <= 3 ? 1 : 2;
	for (size_t i = 0; i < n; i++) {
		const char *o = names[i];
		if (kiln_str_eq(o, v))
			continue;
		size_t d = levenshtein(v, o);
		if (d < best_d) {
			best_d = d;
			best = o;
		}
	}
	return best_d <= allowed ? best : NULL;
}

/* A variable reference found in a word. */
struct var_ref {
	char name[128];
	bool modifier; /* ${v:-w} and friends: the word copes with an unset v */
};

/*
 * Collect the variables a Dockerfile word references, as BuildKit's lexer sees them:
 * nothing inside single quotes, the escape character hides the next one.
 */
static size_t
scan_vars(const char *w, char escape, struct var_ref *out, size_t max)
{
	size_t n = 0;
	bool sq = false, dq = false;
	for (const char *p = w; *p; p++) {
		if (sq) {
			if (*p == '\'')
				sq = false;
			continue;
		}
		if (*p == escape && p[1]) {
			p++;
			continue;
		}
		if (*p == '\'' && !dq) {
			sq = true;
			continue;
		}
		if (*p == '"') {
			dq = !dq;
			continue;
		}
		if (*p != '$')
			continue;
		const char *s = p + 1;
		bool brace = *s == '{';
		if (brace)
			s++;
		const char *e = s;
		if (isdigit((unsigned char)*e))
			e++;
		else
			while (isalnum((unsigned char)*e) || *e == '_')
				e++;
		if (e == s)
			continue;
		struct var_ref r = {.modifier = brace && *e != '}'};
		size_t len = (size_t)(e - s);
		if (len >= sizeof(r.name))
			len = sizeof(r.name) - 1;
		memcpy(r.name, s, len);
		r.name[len] = 0;
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup |= kiln_str_eq(out[i].name, r.name);
		if (!dup && n < max)
			out[n++] = r;
		p = e - 1;
	}
	return n;
}

static const char *const auto_args[] = {
        "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
        "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
};

/* Go's reference.ParseNormalizedNamed, as far as a linter needs it. */
static bool
path_component_ok(const char *s, size_t n)
{
	if (n == 0 || (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0])))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (islower((unsigned char)c) || isdigit((unsigned char)c))
			continue;
		if (c != '.' && c != '_' && c != '-')
			return false;
		/* a separator sits between alphanumerics: ".", "_", "__" or dashes */
		if (i + 1 == n)
			return false;
	}
	return true;
}

static bool
image_ref_valid(const char *ref)
{
	if (!*ref)
		return false;
	const char *at = strchr(ref, '@');
	size_t nlen = at ? (size_t)(at - ref) : strlen(ref);
	if (at) {
		const char *colon = strchr(at + 1, ':');
		if (!colon || colon == at + 1 || strlen(colon + 1) < 32)
			return false;
	}
	const char *slash = memrchr(ref, '/', nlen);
	const char *tag =
	        memchr(slash ? slash : ref, ':', nlen - (size_t)((slash ? slash : ref) - ref));
	size_t plen = tag ? (size_t)(tag - ref) : nlen;
	if (tag) {
		size_t tl = nlen - plen - 1;
		if (tl == 0 || tl > 128)
			return false;
		for (size_t i = 0; i < tl; i++) {
			char c = tag[1 + i];
			if (!isalnum((unsigned char)c) && c != '_' &&
			    (i == 0 || (c != '.' && c != '-')))
				return false;
		}
	}
	const char *p = ref, *end = ref + plen;
	/* The first component is a registry when it has '.', ':' or is localhost. */
	const char *first = memchr(p, '/', plen);
	if (first) {
		size_t fl = (size_t)(first - p);
		bool domain = memchr(p, '.', fl) || memchr(p, ':', fl) ||
		              (fl == 9 && !memcmp(p, "localhost", 9));
		for (size_t i = 0; i < fl; i++)
			domain |= isupper((unsigned char)p[i]);
		if (domain)
			p = first + 1;
	}
	while (p < end) {
		const char *s = memchr(p, '/', (size_t)(end - p));
		size_t cl = s ? (size_t)(s - p) : (size_t)(end - p);
		if (!path_component_ok(p, cl))
			return false;
		p += cl + (s ? 1 : 0);
		if (s && p == end)
			return false;
	}
	return true;
}

/* ---- the model ---- */

/* Does the word use a global ARG declared without a default? */
static bool
refs_no_default(const struct lint *l, const char *word)
{
	struct var_ref refs[16];
	size_t n = scan_vars(word, l->ast->escape, refs, KILN_ARRAY_SIZE(refs));
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < l->meta_no_default.n; i++)
			if (kiln_str_eq(refs[k].name, l->meta_no_default.v[i]))
				return true;
	return false;
}

struct expand_ctx {
	const struct fe_vars *vars;
	bool unset; /* a variable was not found */
};

static const char *
expand_lookup(void *ctx, const char *name)
{
	struct expand_ctx *c = ctx;
	const char *v = fe_vars_get(c->vars, name);
	if (!v)
		c->unset = true;
	return v;
}

/* Expand with `vars`; NULL when a variable was unset or the word is malformed. */
static char *
expand_known(const struct lint *l, const struct fe_vars *vars, const char *word)
{
	struct expand_ctx c = {.vars = vars};
	struct fe_shlex lx = {.escape = l->ast->escape, .lookup = expand_lookup, .lookup_ctx = &c};
	struct kiln_err e = KILN_ERR_INIT;
	char *out = NULL;
	if (fe_expand_word(&lx, word, &out, &e) < 0) {
		kiln_err_release(&e);
		return NULL;
	}
	if (c.unset) {
		free(out);
		return NULL;
	}
	return out;
}

static int
build_model(struct lint *l)
{
	const struct fe_ast *ast = l->ast;
	l->cmds = kiln_arena_array(l->arena, ast->nnodes ? ast->nnodes : 1, sizeof(*l->cmds));
	size_t nfrom = 0;
	for (size_t i = 0; i < ast->nnodes; i++) {
		int r = fe_cmd_parse(l->arena, ast->file, &ast->nodes[i], &l->cmds[i], l->err);
		if (r < 0)
			return r;
		if (l->cmds[i]->kind == FE_CMD_FROM)
			nfrom++;
	}
	l->ncmds = ast->nnodes;
	l->stages = kiln_arena_array(l->arena, nfrom ? nfrom : 1, sizeof(*l->stages));

	for (size_t i = 0; i < KILN_ARRAY_SIZE(auto_args); i++)
		fe_vars_set(&l->meta, auto_args[i], "");
	fe_vars_set(&l->meta, "BUILDPLATFORM", "linux/amd64");
	fe_vars_set(&l->meta, "TARGETPLATFORM", "linux/amd64");
	fe_vars_set(&l->meta, "BUILDOS", "linux");
	fe_vars_set(&l->meta, "TARGETOS", "linux");
	fe_vars_set(&l->meta, "BUILDARCH", "amd64");
	fe_vars_set(&l->meta, "TARGETARCH", "amd64");

	size_t i = 0;
	for (; i < l->ncmds && l->cmds[i]->kind != FE_CMD_FROM; i++) {
		const struct fe_cmd *c = l->cmds[i];
		if (c->kind != FE_CMD_ARG)
			continue;
		for (size_t k = 0; k < c->kv.nkvs; k++) {
			if (!c->kv.kvs[k].value)
				kiln_strv_push(&l->meta_no_default, c->kv.kvs[k].key);
			_cleanup_free_ char *v =
			        c->kv.kvs[k].value ? expand_known(l, &l->meta, c->kv.kvs[k].value)
			                           : NULL;
			fe_vars_set(&l->meta, c->kv.kvs[k].key, v ? v : "");
		}
	}
	l->nmeta = i;
	for (; i < l->ncmds; i++) {
		struct fe_cmd *c = l->cmds[i];
		if (c->kind == FE_CMD_FROM) {
			struct lint_stage *s = &l->stages[l->nstages];
			s->from = c;
			s->name = c->from.stage_name;
			s->image = c->from.image;
			s->image_expanded = expand_known(l, &l->meta, c->from.image);
			if (s->image_expanded && refs_no_default(l, c->from.image)) {
				free(s->image_expanded);
				s->image_expanded = NULL; /* its value comes from --build-arg */
			}
			s->base = -1;
			const char *img = s->image_expanded ? s->image_expanded : s->image;
			s->base = lint_stage_ref(l, l->nstages, img);
			if (s->base >= 0 && !l->stages[s->base].name)
				s->base = -1; /* FROM 0 is an image named "0", not stage 0 */
			if (s->base >= 0)
				l->stages[s->base].built_on = true;
			s->scratch = s->base < 0 && !strcasecmp(img, "scratch");
			s->first = i + 1;
			l->nstages++;
		} else if (l->nstages) {
			l->stages[l->nstages - 1].count++;
		}
	}
	/* Who uses whom: COPY --from and RUN --mount from= make a stage a builder. */
	for (size_t si = 0; si < l->nstages; si++) {
		struct lint_stage *s = &l->stages[si];
		for (size_t k = s->first; k < s->first + s->count; k++) {
			const struct fe_cmd *c = l->cmds[k];
			int ref = -1;
			if (c->kind == FE_CMD_COPY)
				ref = lint_stage_ref(l, si, c->copy.from);
			if (ref >= 0)
				l->stages[ref].copied_from = true;
			if (c->kind != FE_CMD_RUN)
				continue;
			for (size_t m = 0; m < c->run.nmounts; m++) {
				ref = lint_stage_ref(l, si, c->run.mounts[m].from);
				if (ref >= 0)
					l->stages[ref].copied_from = true;
			}
		}
	}
	/* Shipped: the last stage, stages nothing uses (other --target outputs), and the
	 * stages those build on. Stages only copied from are builders. */
	for (size_t si = l->nstages; si-- > 0;) {
		struct lint_stage *s = &l->stages[si];
		if (si + 1 == l->nstages || (!s->copied_from && !s->built_on))
			s->shipped = true;
		if (s->shipped && s->base >= 0)
			l->stages[s->base].shipped = true;
	}
	return 0;
}

/* ---- BuildKit's rules ---- */

static bool
same_case(const char *s)
{
	bool lower = true, upper = true;
	for (; *s; s++) {
		if (islower((unsigned char)*s))
			upper = false;
		if (isupper((unsigned char)*s))
			lower = false;
	}
	return lower || upper;
}

static bool
is_lower(const char *s)
{
	for (; *s; s++)
		if (isupper((unsigned char)*s))
			return false;
	return true;
}

static bool
is_upper(const char *s)
{
	for (; *s; s++)
		if (islower((unsigned char)*s))
			return false;
	return true;
}

/* The instruction word as written (node->original starts with it). */
static char *
instr_word(const struct lint *l, const struct fe_node *n)
{
	const char *o = n->original ? n->original : n->name;
	size_t len = 0;
	while (o[len] && !isspace((unsigned char)o[len]))
		len++;
	return kiln_arena_strndup(l->arena, o, len);
}

static void
rule_casing(struct lint *l)
{
	size_t lower = 0, upper = 0;
	char **words = kiln_arena_array(l->arena, l->ncmds ? l->ncmds : 1, sizeof(*words));
	for (size_t i = l->nmeta; i < l->ncmds; i++) {
		words[i] = instr_word(l, l->cmds[i]->node);
		if (same_case(words[i])) {
			if (is_lower(words[i]))
				lower++;
			else
				upper++;
		}
	}
	bool maj_lower = lower > upper;
	for (size_t i = l->nmeta; i < l->ncmds; i++) {
		const char *w = words[i];
		if (maj_lower && !is_lower(w))
			lint_report(l, R_CONSISTENT_INSTRUCTION_CASING, l->cmds[i],
			            "Command '%s' should match the case of the command majority "
			            "(lowercase)",
			            w);
		else if (!maj_lower && !is_upper(w))
			lint_report(l, R_CONSISTENT_INSTRUCTION_CASING, l->cmds[i],
			            "Command '%s' should match the case of the command majority "
			            "(uppercase)",
			            w);
	}
}

static void
rule_stages(struct lint *l)
{
	for (size_t si = 0; si < l->nstages; si++) {
		const struct lint_stage *s = &l->stages[si];
		const struct fe_cmd *c = s->from;
		const struct fe_node *n = c->node;
		if (!s->name)
			continue;
		const char *orig = n->args[2];
		if (!is_lower(orig))
			lint_report(l, R_STAGE_NAME_CASING, c,
			            "Stage name '%s' should be lowercase", orig);
		const char *from = instr_word(l, n), *as = n->args[1];
		bool mismatch =
		        (is_lower(from) && !is_lower(as)) || (is_upper(from) && !is_upper(as));
		if (same_case(from) && mismatch)
			lint_report(l, R_FROM_AS_CASING, c,
			            "'%s' and '%s' keywords' casing do not match", as, from);
		if (kiln_str_eq(s->name, "context") || kiln_str_eq(s->name, "scratch"))
			lint_report(
			        l, R_RESERVED_STAGE_NAME, c,
			        "Stage name should not use the same name as reserved stage \"%s\"",
			        s->name);
		for (size_t j = 0; j < si; j++)
			if (l->stages[j].name && kiln_str_eq(l->stages[j].name, s->name)) {
				lint_report(
				        l, R_DUPLICATE_STAGE_NAME, c,
				        "Duplicate stage name \"%s\", stage names should be unique",
				        s->name);
				break;
			}
	}
}

static void
rule_empty_continuation(struct lint *l)
{
	char *const *w = fe_ast_warnings(l->ast);
	if (!*w)
		return;
	/* The parser notes "FILE:LINE: empty continuation line ..." per instruction. */
	for (size_t i = 0; i < l->ncmds; i++) {
		const struct fe_cmd *c = l->cmds[i];
		if (c->end_line <= c->start_line)
			continue;
		_cleanup_free_ char *want = kiln_xasprintf("%s:%d: empty continuation line",
		                                           l->ast->file, c->start_line);
		for (char *const *p = w; *p; p++)
			if (kiln_str_has_prefix(*p, want)) {
				lint_report(l, R_NO_EMPTY_CONTINUATION, c,
				            "Empty continuation line");
				break;
			}
	}
}

static bool
is_secret_key(const char *key)
{
	static const char *deny[] = {"apikey",   "auth",  "credential", "credentials", "key",
	                             "password", "pword", "passwd",     "secret",      "token"};
	static const char *allow[] = {"public", "file", "version"};
	bool d = false, a = false;
	const char *p = key;
	while (*p) {
		size_t n = strcspn(p, "_");
		for (size_t i = 0; i < KILN_ARRAY_SIZE(deny); i++)
			d |= strlen(deny[i]) == n && !strncasecmp(p, deny[i], n);
		for (size_t i = 0; i < KILN_ARRAY_SIZE(allow); i++)
			a |= strlen(allow[i]) == n && !strncasecmp(p, allow[i], n);
		p += n;
		if (*p == '_')
			p++;
	}
	return d && !a;
}

static void
check_secret(struct lint *l, const struct fe_cmd *c)
{
	const char *kind = c->kind == FE_CMD_ARG ? "ARG" : "ENV";
	for (size_t k = 0; k < c->kv.nkvs; k++)
		if (is_secret_key(c->kv.kvs[k].key))
			lint_report(
			        l, R_SECRETS_USED_IN_ARG_OR_ENV, c,
			        "Do not use ARG or ENV instructions for sensitive data (%s \"%s\")",
			        kind, c->kv.kvs[k].key);
}

static void
rule_from(struct lint *l)
{
	/* The names FROM may use: global ARGs and the automatic platform ARGs. */
	char *const *meta = kiln_strv_get(&l->meta.kv);
	size_t nmeta = l->meta.kv.n;
	char **names = kiln_arena_array(l->arena, nmeta ? nmeta : 1, sizeof(*names));
	for (size_t i = 0; i < nmeta; i++)
		names[i] = kiln_arena_strndup(l->arena, meta[i], strcspn(meta[i], "="));

	for (size_t si = 0; si < l->nstages; si++) {
		const struct lint_stage *s = &l->stages[si];
		const struct fe_cmd *c = s->from;
		struct var_ref refs[16];
		size_t nr = scan_vars(s->image, l->ast->escape, refs, KILN_ARRAY_SIZE(refs));
		const char *plat = c->from.platform;
		if (plat)
			nr += scan_vars(plat, l->ast->escape, refs + nr,
			                KILN_ARRAY_SIZE(refs) - nr);
		for (size_t k = 0; k < nr; k++) {
			if (fe_vars_get(&l->meta, refs[k].name))
				continue;
			const char *sug = suggest(refs[k].name, names, nmeta);
			if (sug)
				lint_report(l, R_UNDEFINED_ARG_IN_FROM, c,
				            "FROM argument '%s' is not declared (did you mean %s?)",
				            refs[k].name, sug);
			else
				lint_report(l, R_UNDEFINED_ARG_IN_FROM, c,
				            "FROM argument '%s' is not declared", refs[k].name);
		}
		/* Only defaults count: a build must not need --build-arg to be valid. */
		if (s->base < 0 && strchr(s->image, '$')) {
			_cleanup_free_ char *e = expand_known(l, &l->meta, s->image);
			if (e && !image_ref_valid(e))
				lint_report(
				        l, R_INVALID_DEFAULT_ARG_IN_FROM, c,
				        "Default value for ARG %s results in empty or invalid base "
				        "image name",
				        s->image);
		}
		if (!plat)
			continue;
		struct var_ref pr[4];
		size_t np = scan_vars(plat, l->ast->escape, pr, KILN_ARRAY_SIZE(pr));
		if (np == 1 && kiln_str_eq(pr[0].name, "TARGETPLATFORM") && !pr[0].modifier &&
		    (kiln_str_eq(plat, "$TARGETPLATFORM") ||
		     kiln_str_eq(plat, "${TARGETPLATFORM}")))
			lint_report(
			        l, R_REDUNDANT_TARGET_PLATFORM, c,
			        "Setting platform to predefined %s in FROM is redundant as this is "
			        "the default behavior",
			        plat);
		if (np == 0 && !strchr(plat, '$')) {
			/* os/arch[/variant]: a constant, unless the stage name says which. */
			char os[64] = "", arch[64] = "";
			if (sscanf(plat, "%63[^/]/%63[^/]", os, arch) >= 1 && *os &&
			    !(s->name && (strstr(s->name, os) || (*arch && strstr(s->name, arch)))))
				lint_report(
				        l, R_FROM_PLATFORM_FLAG_CONST_DISALLOWED, c,
				        "FROM --platform flag should not use constant value \"%s\"",
				        plat);
		}
	}
}

/* Images whose config sets no variable but PATH: there UndefinedVar is exact. */
static bool
minimal_image(const char *image)
{
	static const char *names[] = {"alpine",      "busybox",   "debian",      "ubuntu",
	                              "fedora",      "centos",    "rockylinux",  "almalinux",
	                              "amazonlinux", "archlinux", "oraclelinux", "scratch"};
	const char *base = strrchr(image, '/');
	base = base ? base + 1 : image;
	if (strchr(image, '/') && !kiln_str_has_prefix(image, "docker.io/library/") &&
	    !kiln_str_has_prefix(image, "library/"))
		return false;
	size_t n = strcspn(base, ":@");
	for (size_t i = 0; i < KILN_ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == n && !strncmp(base, names[i], n))
			return true;
	return false;
}

struct scope {
	struct fe_vars env;  /* ENV (inherited by stages built on this one) */
	struct fe_vars args; /* ARGs declared in the stage */
	bool exact;          /* the base image's environment is known */
};

static bool
scope_has(const struct scope *sc, const char *name)
{
	return fe_vars_get(&sc->env, name) || fe_vars_get(&sc->args, name);
}

static void
check_word(struct lint *l, const struct fe_cmd *c, const struct scope *sc, const char *w,
           struct kiln_strv *seen)
{
	struct var_ref refs[16];
	size_t n = scan_vars(w, l->ast->escape, refs, KILN_ARRAY_SIZE(refs));
	for (size_t k = 0; k < n; k++) {
		const char *name = refs[k].name;
		if (scope_has(sc, name) || kiln_str_eq(name, "BUILDKIT_SBOM_SCAN_CONTEXT") ||
		    kiln_str_eq(name, "BUILDKIT_SBOM_SCAN_STAGE"))
			continue;
		bool dup = false;
		for (size_t i = 0; i < seen->n; i++)
			dup |= kiln_str_eq(seen->v[i], name);
		if (dup)
			continue;
		kiln_strv_push(seen, name);
		_cleanup_strv_ struct kiln_strv opts = KILN_STRV_INIT;
		for (size_t i = 0; i < sc->env.kv.n; i++)
			kiln_strv_push_take(&opts, kiln_xstrndup(sc->env.kv.v[i],
			                                         strcspn(sc->env.kv.v[i], "=")));
		for (size_t i = 0; i < sc->args.kv.n; i++)
			kiln_strv_push_take(&opts, kiln_xstrndup(sc->args.kv.v[i],
			                                         strcspn(sc->args.kv.v[i], "=")));
		const char *sug = suggest(name, opts.v, opts.n);
		/* Unknown base image: the name may be its variable; a near miss of a known
		 * name is still most likely a typo. */
		if (!sc->exact && !sug)
			continue;
		if (sug)
			lint_report(l, R_UNDEFINED_VAR, c,
			            "Usage of undefined variable '$%s' (did you mean $%s?)", name,
			            sug);
		else
			lint_report(l, R_UNDEFINED_VAR, c, "Usage of undefined variable '$%s'",
			            name);
	}
}

static void
check_vars(struct lint *l, const struct fe_cmd *c, struct scope *sc)
{
	_cleanup_strv_ struct kiln_strv seen = KILN_STRV_INIT;
	switch (c->kind) {
	case FE_CMD_COPY:
	case FE_CMD_ADD:
		for (size_t i = 0; i < c->copy.nsources; i++)
			check_word(l, c, sc, c->copy.sources[i], &seen);
		check_word(l, c, sc, c->copy.dest, &seen);
		if (c->copy.chown)
			check_word(l, c, sc, c->copy.chown, &seen);
		if (c->copy.chmod)
			check_word(l, c, sc, c->copy.chmod, &seen);
		if (c->copy.from)
			check_word(l, c, sc, c->copy.from, &seen);
		break;
	case FE_CMD_ENV:
	case FE_CMD_LABEL:
		for (size_t k = 0; k < c->kv.nkvs; k++) {
			if (c->kind == FE_CMD_LABEL)
				check_word(l, c, sc, c->kv.kvs[k].key, &seen);
			check_word(l, c, sc, c->kv.kvs[k].value, &seen);
		}
		break;
	case FE_CMD_ARG:
		/* Each default sees the ARGs before it, in this instruction too. */
		for (size_t k = 0; k < c->kv.nkvs; k++) {
			if (c->kv.kvs[k].value)
				check_word(l, c, sc, c->kv.kvs[k].value, &seen);
			fe_vars_set(&sc->args, c->kv.kvs[k].key, "");
		}
		break;
	case FE_CMD_WORKDIR:
	case FE_CMD_USER:
	case FE_CMD_STOPSIGNAL:
		check_word(l, c, sc, c->value, &seen);
		break;
	case FE_CMD_EXPOSE:
	case FE_CMD_VOLUME:
		for (size_t i = 0; i < c->list.nwords; i++)
			check_word(l, c, sc, c->list.words[i], &seen);
		break;
	case FE_CMD_RUN:
		for (size_t i = 0; i < c->node->nflags; i++)
			if (kiln_str_has_prefix(c->node->flags[i], "--mount="))
				check_word(l, c, sc, c->node->flags[i] + 8, &seen);
		break;
	default:
		break;
	}
	if (c->kind == FE_CMD_ENV)
		for (size_t k = 0; k < c->kv.nkvs; k++)
			fe_vars_set(&sc->env, c->kv.kvs[k].key, "");
}

static void
rule_stage_bodies(struct lint *l)
{
	struct scope *scopes = kiln_xcalloc(l->nstages ? l->nstages : 1, sizeof(*scopes));
	bool *workdir_set = kiln_arena_array(l->arena, l->nstages + 1, sizeof(bool));
	bool *shell_set = kiln_arena_array(l->arena, l->nstages + 1, sizeof(bool));

	for (size_t i = 0; i < l->nmeta; i++)
		if (l->cmds[i]->kind == FE_CMD_ARG)
			check_secret(l, l->cmds[i]);

	for (size_t si = 0; si < l->nstages; si++) {
		const struct lint_stage *s = &l->stages[si];
		struct scope *sc = &scopes[si];
		if (s->base >= 0) {
			fe_vars_copy(&sc->env, &scopes[s->base].env);
			sc->exact = scopes[s->base].exact;
			workdir_set[si] = workdir_set[s->base];
			shell_set[si] = shell_set[s->base];
		} else {
			fe_vars_set(&sc->env, "PATH", "");
			const char *img = s->image_expanded ? s->image_expanded : s->image;
			char *const *env = l->opts->image_env && !s->scratch
			                           ? l->opts->image_env(l->opts->image_env_ctx, img)
			                           : NULL;
			for (; env && *env; env++) {
				_cleanup_free_ char *k = kiln_xstrndup(*env, strcspn(*env, "="));
				fe_vars_set(&sc->env, k, "");
			}
			sc->exact = s->scratch || env || (s->image_expanded && minimal_image(img));
		}
		const struct fe_cmd *last_cmd = NULL, *last_ep = NULL, *last_hc = NULL;
		for (size_t k = s->first; k < s->first + s->count; k++) {
			const struct fe_cmd *c = l->cmds[k];
			check_vars(l, c, sc);
			switch (c->kind) {
			case FE_CMD_ARG:
			case FE_CMD_ENV:
				check_secret(l, c);
				if (c->kind == FE_CMD_ARG)
					break;
				/* fall through */
			case FE_CMD_LABEL:
				for (size_t a = 0; a + 2 < c->node->nargs; a += 3)
					if (!c->node->args[a + 2][0]) {
						const char *w =
						        c->kind == FE_CMD_ENV ? "ENV" : "LABEL";
						lint_report(l, R_LEGACY_KEY_VALUE_FORMAT, c,
						            "\"%s key=value\" should be used "
						            "instead of "
						            "legacy \"%s key value\" format",
						            w, w);
						break;
					}
				break;
			case FE_CMD_MAINTAINER:
				lint_report(l, R_MAINTAINER_DEPRECATED, c,
				            "Maintainer instruction is deprecated in favor of "
				            "using label");
				break;
			case FE_CMD_WORKDIR: {
				const char *p = c->value;
				bool abs = p[0] == '/' || p[0] == '$';
				if (!abs && !workdir_set[si])
					lint_report(l, R_WORKDIR_RELATIVE_PATH, c,
					            "Relative workdir \"%s\" can have unexpected "
					            "results if "
					            "the base image changes",
					            p);
				/* BuildKit warns only until a WORKDIR, any WORKDIR, has been set */
				workdir_set[si] = true;
				break;
			}
			case FE_CMD_SHELL:
				shell_set[si] = true;
				break;
			case FE_CMD_CMD:
			case FE_CMD_ENTRYPOINT:
			case FE_CMD_HEALTHCHECK: {
				const struct fe_cmd **last = c->kind == FE_CMD_CMD ? &last_cmd
				                             : c->kind == FE_CMD_ENTRYPOINT
				                                     ? &last_ep
				                                     : &last_hc;
				if (*last)
					lint_report(
					        l, R_MULTIPLE_INSTRUCTIONS_DISALLOWED, *last,
					        "Multiple %s instructions should not be used in "
					        "the "
					        "same stage because only the last one will be used",
					        instr_word(l, c->node));
				*last = c;
				if (c->kind != FE_CMD_HEALTHCHECK && c->cmdline.shell_form &&
				    !shell_set[si])
					lint_report(l, R_JSON_ARGS_RECOMMENDED, c,
					            "JSON arguments recommended for %s to prevent "
					            "unintended behavior related to OS signals",
					            instr_word(l, c->node));
				break;
			}
			case FE_CMD_EXPOSE:
				for (size_t w = 0; w < c->list.nwords; w++) {
					const char *p = c->list.words[w];
					if (strchr(p, '$'))
						continue;
					if (strchr(p, ':'))
						lint_report(
						        l, R_EXPOSE_INVALID_FORMAT, c,
						        "EXPOSE instruction should not define an "
						        "IP "
						        "address or host-port mapping, found '%s'",
						        p);
					const char *slash = strchr(p, '/');
					if (slash && !is_lower(slash + 1))
						lint_report(l, R_EXPOSE_PROTO_CASING, c,
						            "Defined protocol '%s' in EXPOSE "
						            "instruction "
						            "should be lowercase",
						            p);
				}
				break;
			default:
				break;
			}
		}
	}
	for (size_t si = 0; si < l->nstages; si++) {
		fe_vars_release(&scopes[si].env);
		fe_vars_release(&scopes[si].args);
	}
	free(scopes);
}

static void
rule_copy_ignored(struct lint *l)
{
	if (!l->ignore || l->skip[R_COPY_IGNORED_FILE])
		return;
	size_t np = fe_ignore_count(l->ignore);
	bool root_ignored = false;
	for (size_t i = 0; i < np; i++) {
		const char *p = fe_ignore_pattern(l->ignore, i);
		/* Exceptions make the outcome for a directory depend on its contents. */
		if (p[0] == '!')
			return;
		root_ignored |=
		        kiln_str_eq(p, "*") || kiln_str_eq(p, "**") || kiln_str_eq(p, "**/*");
	}
	if (np == 0)
		return;
	for (size_t si = 0; si < l->nstages; si++) {
		const struct lint_stage *s = &l->stages[si];
		for (size_t k = s->first; k < s->first + s->count; k++) {
			const struct fe_cmd *c = l->cmds[k];
			if ((c->kind != FE_CMD_COPY && c->kind != FE_CMD_ADD) || c->copy.from)
				continue;
			for (size_t i = 0; i < c->copy.nsources; i++) {
				const char *src = c->copy.sources[i];
				if (strstr(src, "://") || kiln_str_has_prefix(src, "git@") ||
				    strchr(src, '$'))
					continue;
				_cleanup_free_ char *clean = kiln_path_clean(src);
				const char *rel = clean;
				while (*rel == '/')
					rel++;
				if (!*rel || kiln_str_eq(rel, ".")) {
					if (!root_ignored)
						continue;
					rel = ".";
				}
				if (kiln_str_eq(rel, ".") ? root_ignored
				                          : fe_ignore_matches(l->ignore, rel))
					lint_report(
					        l, R_COPY_IGNORED_FILE, c,
					        "Attempting to %s file \"%s\" that is excluded by "
					        ".dockerignore",
					        c->kind == FE_CMD_ADD ? "Add" : "Copy", rel);
			}
		}
	}
}

/* Insertion sort by line: stable, so a line's findings keep the order rules ran in, and
 * rules report in nearly line order already. */
static void
sort_findings(struct fe_lint_finding *f, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct fe_lint_finding x = f[i];
		size_t j = i;
		for (; j > 0 && f[j - 1].line > x.line; j--)
			f[j] = f[j - 1];
		f[j] = x;
	}
}

int
fe_lint(const struct fe_ast *ast, const struct fe_lint_opts *opts, struct fe_lint_finding **ret,
        size_t *ret_n, struct kiln_err *err)
{
	static const struct fe_lint_opts none = FE_LINT_OPTS_INIT;
	struct lint l = {.ast = ast, .opts = opts ? opts : &none, .err = err};
	int r = 0;
	l.meta = (struct fe_vars)FE_VARS_INIT;
	l.arena = kiln_arena_new();

	const char *check = NULL;
	for (char *const *a = l.opts->build_args; a && *a; a++)
		if (kiln_str_has_prefix(*a, "BUILDKIT_DOCKERFILE_CHECK="))
			check = *a + strlen("BUILDKIT_DOCKERFILE_CHECK=");
	if (check)
		r = parse_check(&l, check, "build arg BUILDKIT_DOCKERFILE_CHECK", 0);
	else if (ast->check) /* the tree keeps no line for directives */
		r = parse_check(&l, ast->check, "directive", 0);
	if (r < 0)
		goto out;
	r = build_model(&l);
	if (r < 0)
		goto out;
	if (l.opts->context_dir) {
		r = fe_ignore_load(l.opts->context_dir, l.opts->dockerfile, &l.ignore, err);
		if (r < 0)
			goto out;
	}

	rule_casing(&l);
	rule_empty_continuation(&l);
	rule_stages(&l);
	rule_from(&l);
	rule_stage_bodies(&l);
	rule_copy_ignored(&l);
	lint_kiln_rules(&l);

	sort_findings(l.findings, l.nfindings);
	*ret = TAKE_PTR(l.findings);
	*ret_n = l.nfindings;
	l.nfindings = 0;
out:
	fe_lint_findings_free(l.findings, l.nfindings);
	for (size_t i = 0; i < l.nstages; i++)
		free(l.stages[i].image_expanded);
	fe_ignore_free(l.ignore);
	fe_vars_release(&l.meta);
	kiln_strv_release(&l.meta_no_default);
	kiln_arena_free(l.arena);
	return r < 0 ? r : 0;
}
