/* Tests for frontend/lint*.c: every rule with a Dockerfile that breaks it (exactly one
 * finding, on the right line) and one that follows it (no finding at all). */
#include "testlib.h"

#include "frontend/fe.h"

#include <strings.h>

#define APT_MOUNTS                                                                                 \
	"--mount=type=cache,target=/var/cache/apt,sharing=locked "                                 \
	"--mount=type=cache,target=/var/lib/apt,sharing=locked "

struct lint_case {
	const char *rule;
	const char *bad;
	int line;        /* where the bad one's finding is */
	const char *msg; /* a part of its message */
	const char *good;
	const char *check; /* BUILDKIT_DOCKERFILE_CHECK for both, or NULL */
};

static const struct lint_case cases[] = {
        {"StageNameCasing", "FROM alpine:3.20 AS Build\nUSER app\n", 1,
         "Stage name 'Build' should be lowercase", "FROM alpine:3.20 AS build\nUSER app\n"},
        {"FromAsCasing", "FROM alpine:3.20 as build\nUSER app\n", 1,
         "'as' and 'FROM' keywords' casing do not match", "FROM alpine:3.20 AS build\nUSER app\n"},
        {"NoEmptyContinuation", "FROM alpine:3.20\nUSER app\nRUN echo a \\\n\n    b\n", 3,
         "Empty continuation line", "FROM alpine:3.20\nUSER app\nRUN echo a \\\n    b\n"},
        {"ConsistentInstructionCasing", "FROM alpine:3.20\nrun echo a\nUSER app\n", 2,
         "Command 'run' should match the case of the command majority (uppercase)",
         "from alpine:3.20\nrun echo a\nuser app\n"},
        {"DuplicateStageName", "FROM alpine:3.20 AS a\nRUN echo\nFROM alpine:3.20 AS a\nUSER app\n",
         3, "Duplicate stage name \"a\", stage names should be unique",
         "FROM alpine:3.20 AS a\nRUN echo\nFROM alpine:3.20 AS b\nUSER app\n"},
        {"ReservedStageName", "FROM alpine:3.20 AS scratch\nUSER app\n", 1,
         "Stage name should not use the same name as reserved stage \"scratch\"",
         "FROM alpine:3.20 AS base\nUSER app\n"},
        {"JSONArgsRecommended", "FROM alpine:3.20\nUSER app\nCMD echo hi\n", 3,
         "JSON arguments recommended for CMD to prevent unintended behavior related to OS "
         "signals",
         "FROM alpine:3.20\nUSER app\nCMD [\"echo\", \"hi\"]\nSHELL [\"/bin/ash\", "
         "\"-c\"]\nENTRYPOINT exec app\n"},
        {"MaintainerDeprecated", "FROM alpine:3.20\nMAINTAINER me\nUSER app\n", 2,
         "Maintainer instruction is deprecated in favor of using label",
         "FROM alpine:3.20\nLABEL org.opencontainers.image.authors=me\nUSER app\n"},
        {"UndefinedArgInFrom", "ARG VERSION=3.20\nFROM alpine:${VERSON}\nUSER app\n", 2,
         "FROM argument 'VERSON' is not declared (did you mean VERSION?)",
         "ARG VERSION=3.20\nFROM --platform=$BUILDPLATFORM alpine:${VERSION}\nUSER app\n"},
        {"WorkdirRelativePath", "FROM alpine:3.20\nWORKDIR app\nUSER app\n", 2,
         "Relative workdir \"app\" can have unexpected results if the base image changes",
         "FROM alpine:3.20 AS base\nWORKDIR /app\nFROM base\nWORKDIR sub\nUSER app\n"},
        {"UndefinedVar", "FROM alpine:3.20\nARG foo\nENV PATH=$PAHT:/app/bin\nUSER app\n", 3,
         "Usage of undefined variable '$PAHT' (did you mean $PATH?)",
         "FROM alpine:3.20 AS base\nENV A=1\nFROM base\nARG foo\nCOPY $foo /x\n"
         "ENV PATH=$PATH:/app/bin B=$A\nRUN echo $undefined_in_shell\nUSER app\n"},
        {"MultipleInstructionsDisallowed",
         "FROM alpine:3.20\nUSER app\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\nCMD [\"c\"]\n", 3,
         "Multiple CMD instructions should not be used in the same stage because only the "
         "last one will be used",
         "FROM alpine:3.20 AS a\nCMD [\"a\"]\nFROM a\nUSER app\nCMD [\"c\"]\n"},
        {"LegacyKeyValueFormat", "FROM alpine:3.20\nENV A 1\nUSER app\n", 2,
         "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
         "FROM alpine:3.20\nENV A=1\nLABEL b=2\nUSER app\n"},
        {"RedundantTargetPlatform", "FROM --platform=$TARGETPLATFORM alpine:3.20\nUSER app\n", 1,
         "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
         "default behavior",
         "FROM --platform=$BUILDPLATFORM alpine:3.20\nUSER app\n"},
        {"SecretsUsedInArgOrEnv", "FROM alpine:3.20\nARG AWS_SECRET_ACCESS_KEY\nUSER app\n", 2,
         "Do not use ARG or ENV instructions for sensitive data (ARG "
         "\"AWS_SECRET_ACCESS_KEY\")",
         "FROM alpine:3.20\nARG PUBLIC_KEY\nENV KEYBOARD=us GPG_KEY_FILE=/k\nUSER app\n"},
        {"InvalidDefaultArgInFrom", "ARG TAG\nFROM busybox:${TAG}\nUSER app\n", 2,
         "Default value for ARG busybox:${TAG} results in empty or invalid base image name",
         "ARG VARIANT\nARG TAG\nFROM busybox:stable${VARIANT}\nFROM alpine:${TAG:-3.20}\nUSER "
         "app\n"},
        {"FromPlatformFlagConstDisallowed", "FROM --platform=linux/amd64 alpine:3.20\nUSER app\n",
         1, "FROM --platform flag should not use constant value \"linux/amd64\"",
         "FROM --platform=linux/amd64 alpine:3.20 AS build-amd64\nUSER app\n"},
        /* CopyIgnoredFile runs in its own test: it needs a context directory. */
        {"ExposeProtoCasing", "FROM alpine:3.20\nUSER app\nEXPOSE 80/TCP\n", 3,
         "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
         "FROM alpine:3.20\nUSER app\nEXPOSE 80/tcp 53/udp 8080\n"},
        {"ExposeInvalidFormat", "FROM alpine:3.20\nUSER app\nEXPOSE 127.0.0.1:80:80\n", 3,
         "EXPOSE instruction should not define an IP address or host-port mapping, found "
         "'127.0.0.1:80:80'",
         "FROM alpine:3.20\nUSER app\nEXPOSE 80\n"},

        {"CopyContextBeforeInstall",
         "FROM node:22\nWORKDIR /app\nCOPY . .\nRUN --mount=type=cache,target=/root/.npm npm "
         "ci\nUSER node\n",
         3, "copy package.json package-lock.json first",
         "FROM node:22\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN "
         "--mount=type=cache,target=/root/.npm npm ci\nCOPY . .\nUSER node\n"},
        {"AptUpdateWithoutInstall",
         "FROM debian:12\nRUN " APT_MOUNTS "apt-get update\nRUN " APT_MOUNTS
         "apt-get install -y --no-install-recommends curl\nUSER app\n",
         2, "apt-get update without apt-get install in the same RUN",
         "FROM debian:12\nRUN " APT_MOUNTS
         "apt-get update && apt-get install -y --no-install-recommends curl\nUSER app\n"},
        {"AptInstallWithoutYes",
         "FROM debian:12\nRUN " APT_MOUNTS
         "apt-get update && \\\n apt-get install --no-install-recommends curl\nUSER app\n",
         2, "apt-get install without -y stops at the confirmation prompt",
         "FROM debian:12\nRUN " APT_MOUNTS
         "apt-get update && \\\n apt-get -qy install --no-install-recommends curl\nUSER app\n"},
        {"AptInstallRecommends",
         "FROM debian:12\nRUN " APT_MOUNTS "apt-get update && apt-get install -y curl\nUSER app\n",
         2, "add --no-install-recommends",
         "FROM debian:12\nRUN " APT_MOUNTS
         "apt-get update && apt-get install --yes --no-install-recommends curl\nUSER app\n"},
        {"AptListsNotRemoved",
         "FROM debian:12\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked "
         "apt-get update && apt-get install -y --no-install-recommends curl\nUSER app\n",
         2, "rm -rf /var/lib/apt/lists/*",
         "FROM debian:12\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked "
         "apt-get update && apt-get install -y --no-install-recommends curl \\\n"
         " && rm -rf /var/lib/apt/lists/*\nUSER app\n"},
        {"ApkAddWithoutNoCache", "FROM alpine:3.20\nRUN apk add curl\nUSER app\n", 2,
         "use 'apk add --no-cache'", "FROM alpine:3.20\nRUN apk add --no-cache curl\nUSER app\n",
         "skip=PackageCacheMount"},
        {"YumDnfCacheNotCleaned", "FROM fedora:40\nRUN dnf install -y curl\nUSER app\n", 2,
         "'&& dnf clean all'",
         "FROM fedora:40\nRUN dnf install -y curl && dnf clean all\nUSER app\n",
         "skip=PackageCacheMount"},
        {"PipWithoutNoCacheDir", "FROM python:3.12\nRUN pip install flask\nUSER app\n", 2,
         "add --no-cache-dir",
         "FROM python:3.12\nRUN pip install --no-cache-dir flask\nUSER app\n"
         "RUN --mount=type=cache,target=/root/.cache/pip pip install flask\n"
         "RUN pipenv install --deploy\n",
         "skip=PackageCacheMount"},
        {"NpmInstallWithLockfile",
         "FROM node:22\nWORKDIR /app\nCOPY package*.json ./\nRUN "
         "--mount=type=cache,target=/root/.npm npm install\nCOPY . .\nUSER node\n",
         4, "use 'npm ci'",
         "FROM node:22\nWORKDIR /app\nCOPY package*.json ./\nRUN "
         "--mount=type=cache,target=/root/.npm npm ci\nRUN "
         "--mount=type=cache,target=/root/.npm npm install left-pad\nCOPY . .\nUSER node\n"},
        {"PackageCacheMount",
         "FROM node:22\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm "
         "ci\nUSER node\n",
         4, "add --mount=type=cache,target=/root/.npm to the RUN",
         "FROM node:22\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN "
         "--mount=type=cache,target=/root/.npm npm ci\nUSER node\n"},
        {"ChownChmodAfterCopy",
         "FROM alpine:3.20\nCOPY app /app\nRUN chown -R app /app\nUSER app\n", 3,
         "use COPY --chown=... on line 2",
         "FROM alpine:3.20\nCOPY --chown=app app /app\nRUN chown app /var/lib/app\n"
         "RUN mkdir -p /app/data && chown -R app /app/data\nUSER app\n"},
        {"RemoveInLaterLayer",
         "FROM alpine:3.20\nRUN wget -O /tmp/a.tgz https://example.com/a.tgz\n"
         "RUN tar xzf /tmp/a.tgz -C /opt\nRUN rm /tmp/a.tgz\nUSER app\n",
         4, "rm of /tmp/a.tgz, which was downloaded on line 2, in a later layer",
         "FROM alpine:3.20\nRUN wget -O /tmp/a.tgz https://example.com/a.tgz && \\\n"
         "  tar xzf /tmp/a.tgz -C /opt && rm /tmp/a.tgz\nRUN rm -rf /var/tmp/x\n"
         "RUN wget -qO- https://example.com/b.tgz | tar xz\nRUN rm -f b.tgz\nUSER app\n"},
        {"FromLatestTag", "FROM alpine:latest\nUSER app\n", 1,
         "FROM alpine:latest follows whatever :latest is today",
         "FROM alpine:3.20 AS base\nFROM scratch AS empty\nFROM "
         "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
         "FROM base\nUSER app\n"},
        {"AddLocalNonArchive", "FROM alpine:3.20\nADD config.json /etc/app/\nUSER app\n", 2,
         "ADD of local \"config.json\", which is not an archive: use COPY",
         "FROM alpine:3.20\nADD app.tar.gz /opt/\nADD https://example.com/x.json /x\nUSER "
         "app\n"},
        {"RunCdUseWorkdir", "FROM alpine:3.20\nRUN cd /src && ./configure\nUSER app\n", 2,
         "use 'WORKDIR /src'",
         "FROM alpine:3.20\nWORKDIR /src\nRUN ./configure && cd / && echo done\n"
         "RUN cd /tmp && wget https://example.com/x.tgz && tar xzf x.tgz\n"
         "RUN cd /opt/src && ./configure && cd / && rm -rf /opt/src\nUSER app\n"},
        {"FinalStageRunsAsRoot", "FROM alpine:3.20 AS base\nUSER app\nFROM base\nUSER root\n", 3,
         "the final stage runs as root",
         "FROM alpine:3.20 AS base\nUSER app\nFROM base\nRUN echo\n"},
        {"BuildToolsInFinalStage",
         "FROM alpine:3.20\nRUN apk add --no-cache gcc musl-dev\nUSER app\n", 2,
         "the final stage builds with gcc and copies nothing from another stage",
         "FROM golang:1.22 AS build\nRUN --mount=type=cache,target=/go/pkg/mod "
         "--mount=type=cache,target=/root/.cache/go-build go build -o /app .\n"
         "FROM alpine:3.20\nCOPY --from=build /app /app\nUSER app\n"
         "RUN apk add --no-cache --virtual .build-deps gcc musl-dev && make && apk del "
         ".build-deps\n"},
};

struct lint_out {
	struct fe_ast *ast;
	struct fe_lint_finding *f;
	size_t n;
};

static void
lint_out_release(struct lint_out *o)
{
	fe_lint_findings_free(o->f, o->n);
	fe_ast_free(o->ast);
}

static void
dump(const struct lint_out *o)
{
	for (size_t i = 0; i < o->n; i++)
		print_message("  finding: %d %s %s: %s\n", o->f[i].line,
		              fe_lint_severity_name(o->f[i].severity), o->f[i].rule->name,
		              o->f[i].message);
}

static int
lint_text(const char *df, const char *check, const char *context, struct lint_out *o,
          struct kiln_err *err)
{
	memset(o, 0, sizeof(*o));
	assert_int_equal(fe_parse("Dockerfile", df, strlen(df), &o->ast, err), 0);
	struct fe_lint_opts opts = FE_LINT_OPTS_INIT;
	_cleanup_free_ char *arg =
	        check ? kiln_xasprintf("BUILDKIT_DOCKERFILE_CHECK=%s", check) : NULL;
	char *args[] = {(char *)"FOO=bar", arg, NULL};
	opts.build_args = args;
	opts.context_dir = context;
	return fe_lint(o->ast, &opts, &o->f, &o->n, err);
}

static void
expect_one(const char *df, const char *check, const char *context, const char *rule, int line,
           const char *msg)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text(df, check, context, &o, &err), 0);
	if (o.n != 1 || !kiln_str_eq(o.f[0].rule->name, rule) || o.f[0].line != line ||
	    !strstr(o.f[0].message, msg)) {
		print_message("want exactly %s on line %d (\"%s\") for:\n%s", rule, line, msg, df);
		dump(&o);
		fail();
	}
	assert_string_equal(o.f[0].file, "Dockerfile");
	assert_int_equal(o.f[0].severity, o.f[0].rule->severity);
	lint_out_release(&o);
}

static void
expect_none(const char *df, const char *check, const char *context)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text(df, check, context, &o, &err), 0);
	if (o.n != 0) {
		print_message("want no finding for:\n%s", df);
		dump(&o);
		fail();
	}
	lint_out_release(&o);
}

static void
run_case(void **state)
{
	const struct lint_case *c = *state;
	expect_one(c->bad, c->check, NULL, c->rule, c->line, c->msg);
	expect_none(c->good, c->check, NULL);
}

static void
test_lint__every_rule_has_a_case(void **state)
{
	size_t n;
	const struct fe_lint_rule *r = fe_lint_rules_list(&n);
	assert_int_equal(n, 37);
	for (size_t i = 0; i < n; i++) {
		bool found = kiln_str_eq(r[i].name, "CopyIgnoredFile"); /* its own test */
		for (size_t k = 0; k < KILN_ARRAY_SIZE(cases); k++)
			found |= kiln_str_eq(cases[k].rule, r[i].name);
		if (!found)
			fail_msg("rule %s has no test case", r[i].name);
		assert_true(r[i].description[0]);
		/* BuildKit's rules link to Docker's page; kiln's are documented by --list. */
		if (r[i].buildkit)
			assert_true(kiln_str_has_prefix(r[i].url, "https://docs.docker.com/"));
		else
			assert_null(r[i].url);
		assert_ptr_equal(fe_lint_rule_find(r[i].name), &r[i]);
		/* BuildKit's rules come first, then kiln's */
		assert_true(i < 20 ? r[i].buildkit : !r[i].buildkit);
	}
	assert_null(fe_lint_rule_find("NoSuchRule"));
}

static void
test_lint__copy_ignored_file(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, ".dockerignore", "secret.txt\nbuild/\n");
	expect_one("FROM alpine:3.20\nCOPY app /app\nCOPY secret.txt /x\nUSER app\n", NULL, dir,
	           "CopyIgnoredFile", 3,
	           "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore");
	expect_one("FROM alpine:3.20\nADD ./build/out.tar /x\nUSER app\n", NULL, dir,
	           "CopyIgnoredFile", 2,
	           "Attempting to Add file \"build/out.tar\" that is excluded by .dockerignore");
	expect_none("FROM alpine:3.20 AS b\nRUN echo > /secret.txt\nFROM alpine:3.20\n"
	            "COPY . /app\nCOPY other.txt /y\nCOPY --from=b secret.txt /z\nUSER app\n",
	            NULL, dir);
	/* without a context there is no .dockerignore to apply */
	expect_none("FROM alpine:3.20\nCOPY secret.txt /x\nUSER app\n", NULL, NULL);
	/* exceptions make directories undecidable: BuildKit stays silent, so do we */
	test_write_file(dir, ".dockerignore", "secret.txt\n!keep\n");
	expect_none("FROM alpine:3.20\nCOPY secret.txt /x\nUSER app\n", NULL, dir);
	test_tmpdir_remove(dir);
}

static void
test_lint__check_directive_skip(void **state)
{
	expect_none("# check=skip=FromLatestTag\nFROM alpine\nUSER app\n", NULL, NULL);
	expect_none("# check=skip=JSONArgsRecommended,FromLatestTag\nFROM alpine\nUSER app\nCMD "
	            "x\n",
	            NULL, NULL);
	expect_none("# check=skip=all\nFROM alpine\nMAINTAINER x\n", NULL, NULL);
	/* a rule kiln does not know is no reason to fail */
	expect_one("# check=skip=InvalidBaseImagePlatform\nFROM alpine\nUSER app\n", NULL, NULL,
	           "FromLatestTag", 2, "FROM alpine has no tag");
}

static void
test_lint__check_directive_error(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(
	        lint_text("# check=error=true\nFROM alpine\nRUN echo\n", NULL, NULL, &o, &err), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.f[0].rule->name, "FromLatestTag");
	assert_int_equal(o.f[0].severity, FE_LINT_ERROR);
	/* info stays info: error=true fails builds on BuildKit's warnings, not on hints */
	assert_string_equal(o.f[1].rule->name, "FinalStageRunsAsRoot");
	assert_int_equal(o.f[1].severity, FE_LINT_INFO);
	lint_out_release(&o);

	assert_int_equal(lint_text("# check=error=false;skip=\nFROM alpine\nUSER app\n", NULL, NULL,
	                           &o, &err),
	                 0);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.f[0].severity, FE_LINT_WARNING);
	lint_out_release(&o);
}

static void
test_lint__check_directive_invalid(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text("# check=bogus=1\nFROM alpine:3.20\n", NULL, NULL, &o, &err),
	                 -EINVAL);
	assert_err_contains(&err, "Dockerfile: invalid check directive: unknown key \"bogus\"");
	fe_ast_free(o.ast);
	assert_int_equal(lint_text("# check=error=maybe\nFROM alpine:3.20\n", NULL, NULL, &o, &err),
	                 -EINVAL);
	assert_err_contains(&err, "error=maybe is not a boolean");
	fe_ast_free(o.ast);
	assert_int_equal(lint_text("FROM alpine:3.20\n", "skip", NULL, &o, &err), -EINVAL);
	assert_err_contains(&err, "invalid check build arg BUILDKIT_DOCKERFILE_CHECK \"skip\"");
	fe_ast_free(o.ast);
}

static void
test_lint__build_arg_overrides_directive(void **state)
{
	/* the directive says error=true; the build arg replaces it */
	expect_none("# check=error=true\nFROM alpine\nUSER app\n", "skip=FromLatestTag", NULL);
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text("# check=skip=all\nFROM alpine\nUSER app\n",
	                           "error=true;skip=FinalStageRunsAsRoot", NULL, &o, &err),
	                 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.f[0].rule->name, "FromLatestTag");
	assert_int_equal(o.f[0].severity, FE_LINT_ERROR);
	lint_out_release(&o);
}

static void
test_lint__multiline_start_line(void **state)
{
	/* a finding sits on the first line of its instruction and spans to its last */
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text("FROM alpine:3.20\nUSER app\nCMD echo \\\n  a \\\n  b\n", NULL,
	                           NULL, &o, &err),
	                 0);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.f[0].line, 3);
	assert_int_equal(o.f[0].end_line, 5);
	lint_out_release(&o);
}

static void
test_lint__parse_error_has_line(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct lint_out o;
	assert_int_equal(lint_text("FROM alpine:3.20\nBOGUS x\n", NULL, NULL, &o, &err), -EINVAL);
	assert_err_contains(&err, "Dockerfile:2: unknown instruction: BOGUS");
	fe_ast_free(o.ast);
}

static void
test_lint__good_multistage_is_clean(void **state)
{
	expect_none("# syntax=docker/dockerfile:1\n"
	            "ARG GO_VERSION=1.22\n"
	            "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build\n"
	            "ARG TARGETOS TARGETARCH\n"
	            "WORKDIR /src\n"
	            "COPY go.mod go.sum ./\n"
	            "RUN --mount=type=cache,target=/go/pkg/mod go mod download\n"
	            "COPY . .\n"
	            "RUN --mount=type=cache,target=/go/pkg/mod \\\n"
	            "    --mount=type=cache,target=/root/.cache/go-build \\\n"
	            "    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .\n"
	            "\n"
	            "FROM alpine:3.20\n"
	            "RUN apk add --no-cache ca-certificates \\\n"
	            " && adduser -D -u 10001 app\n"
	            "COPY --from=build --chmod=0755 /out/app /usr/local/bin/app\n"
	            "ENV APP_PORT=8080\n"
	            "EXPOSE 8080/tcp\n"
	            "USER app\n"
	            "HEALTHCHECK CMD [\"app\", \"health\"]\n"
	            "ENTRYPOINT [\"app\"]\n",
	            NULL, NULL);
}

static void
test_lint__good_python_and_node_are_clean(void **state)
{
	expect_none(
	        "# syntax=docker/dockerfile:1\n"
	        "FROM python:3.12-slim AS build\n"
	        "WORKDIR /app\n"
	        "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n"
	        "    --mount=type=cache,target=/var/lib/apt,sharing=locked \\\n"
	        "    apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev\n"
	        "COPY requirements.txt .\n"
	        "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
	        "    pip wheel --wheel-dir /wheels -r requirements.txt\n"
	        "\n"
	        "FROM python:3.12-slim\n"
	        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1\n"
	        "WORKDIR /app\n"
	        "RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \\\n"
	        "    pip install --no-cache-dir --no-index /wheels/*\n"
	        "COPY --chown=10001:10001 . .\n"
	        "USER 10001\n"
	        "EXPOSE 8000\n"
	        "CMD [\"gunicorn\", \"-b\", \"0.0.0.0:8000\", \"app:app\"]\n",
	        NULL, NULL);
	expect_none("FROM node:22-alpine AS deps\n"
	            "WORKDIR /app\n"
	            "COPY package.json package-lock.json ./\n"
	            "RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev\n"
	            "\n"
	            "FROM node:22-alpine\n"
	            "ENV NODE_ENV=production\n"
	            "WORKDIR /app\n"
	            "COPY --from=deps /app/node_modules ./node_modules\n"
	            "COPY . .\n"
	            "USER node\n"
	            "CMD [\"node\", \"server.js\"]\n",
	            NULL, NULL);
}

static void
test_lint__undefined_var_with_unknown_base(void **state)
{
	/* python's image defines PYTHON_VERSION; kiln cannot know, so only typos count */
	expect_none("FROM python:3.12\nENV V=$PYTHON_VERSION\nUSER app\n", NULL, NULL);
	expect_one("FROM python:3.12\nENV A=1\nENV B=$AA\nUSER app\n", NULL, NULL, "UndefinedVar",
	           3, "Usage of undefined variable '$AA' (did you mean $A?)");
	/* a stage ARG does not reach the stage built on it; an ENV does */
	expect_one("FROM alpine:3.20 AS a\nARG X\nENV Y=1\nFROM a\nENV Z=$Y$X\nUSER app\n", NULL,
	           NULL, "UndefinedVar", 5, "Usage of undefined variable '$X'");
}

static void
test_lint__from_arg_without_default(void **state)
{
	/* the image comes from --build-arg: invalid by default, but no tag to judge */
	expect_one("ARG IMG\nFROM $IMG\nUSER app\n", NULL, NULL, "InvalidDefaultArgInFrom", 2,
	           "Default value for ARG $IMG results in empty or invalid base image name");
	expect_none("ARG REGISTRY=docker.io\nARG TAG=3.20\nFROM ${REGISTRY}/library/alpine:${TAG}\n"
	            "USER app\n",
	            NULL, NULL);
	/* the base image is the build arg's choice; a variable tag is judged by its default */
	expect_none("ARG BASE=busybox\nFROM ${BASE}\nUSER app\n", NULL, NULL);
	expect_one("ARG TAG=latest\nFROM alpine:${TAG}\nUSER app\n", NULL, NULL, "FromLatestTag", 2,
	           "FROM alpine:latest follows whatever :latest is today");
}

static void
test_lint__remove_copied_files(void **state)
{
	expect_one("FROM alpine:3.20\nWORKDIR /app\nCOPY . .\nRUN rm -rf tests\nUSER app\n", NULL,
	           NULL, "RemoveInLaterLayer", 4,
	           "rm of tests, which COPY on line 3 added, in a later layer: its bytes stay in "
	           "that layer");
	/* the WORKDIR of the stage built on carries over */
	expect_one("FROM alpine:3.20 AS base\nWORKDIR /app\nFROM base\nCOPY run.sh .\n"
	           "RUN chmod +x /app/run.sh\nUSER app\n",
	           NULL, NULL, "ChownChmodAfterCopy", 5,
	           "chmod of /app/run.sh, which COPY on line 4 created");
	/* a builder stage's layers never reach the image: size rules stay quiet there */
	expect_none("FROM alpine:3.20 AS build\nWORKDIR /app\nCOPY . .\nRUN rm -rf tests\n"
	            "FROM alpine:3.20\nCOPY --from=build /app /app\nUSER app\n",
	            NULL, NULL);
	/* a cache or tmpfs mount holds the download: nothing stays */
	expect_none("FROM alpine:3.20\nRUN --mount=type=tmpfs,target=/dl wget -O /dl/a.tgz "
	            "https://example.com/a.tgz\nRUN rm -f /dl/a.tgz\nUSER app\n",
	            NULL, NULL);
}

static char *const *
python_env(void *ctx, const char *image)
{
	static char *const env[] = {(char *)"PATH=/usr/local/bin", (char *)"PYTHON_VERSION=3.12",
	                            NULL};
	(*(int *)ctx)++;
	return kiln_str_eq(image, "python:3.12") ? env : NULL;
}

static void
test_lint__image_env_makes_undefined_var_exact(void **state)
{
	const char *df = "FROM python:3.12\nENV V=$PYTHON_VERSION W=$NOPE\nUSER app\n";
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast;
	assert_int_equal(fe_parse("Dockerfile", df, strlen(df), &ast, &err), 0);
	int calls = 0;
	struct fe_lint_opts o = FE_LINT_OPTS_INIT;
	o.image_env = python_env;
	o.image_env_ctx = &calls;
	struct fe_lint_finding *f;
	size_t n;
	assert_int_equal(fe_lint(ast, &o, &f, &n, &err), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].rule->name, "UndefinedVar");
	assert_string_equal(f[0].message, "Usage of undefined variable '$NOPE'");
	assert_int_equal(f[0].line, 2);
	fe_lint_findings_free(f, n);
	fe_ast_free(ast);
}

static void
test_lint__severity_names(void **state)
{
	assert_string_equal(fe_lint_severity_name(FE_LINT_ERROR), "error");
	assert_string_equal(fe_lint_severity_name(FE_LINT_WARNING), "warning");
	assert_string_equal(fe_lint_severity_name(FE_LINT_INFO), "info");
}

int
main(void)
{
	struct CMUnitTest tests[KILN_ARRAY_SIZE(cases) + 16];
	size_t n = 0;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++)
		tests[n++] = (struct CMUnitTest){
		        .name = kiln_xasprintf("test_lint__rule_%s", cases[i].rule),
		        .test_func = run_case,
		        .initial_state = (void *)&cases[i],
		};
#define ADD(f) tests[n++] = (struct CMUnitTest){.name = #f, .test_func = f}
	ADD(test_lint__every_rule_has_a_case);
	ADD(test_lint__copy_ignored_file);
	ADD(test_lint__check_directive_skip);
	ADD(test_lint__check_directive_error);
	ADD(test_lint__check_directive_invalid);
	ADD(test_lint__build_arg_overrides_directive);
	ADD(test_lint__multiline_start_line);
	ADD(test_lint__parse_error_has_line);
	ADD(test_lint__good_multistage_is_clean);
	ADD(test_lint__good_python_and_node_are_clean);
	ADD(test_lint__undefined_var_with_unknown_base);
	ADD(test_lint__from_arg_without_default);
	ADD(test_lint__remove_copied_files);
	ADD(test_lint__image_env_makes_undefined_var_exact);
	ADD(test_lint__severity_names);
	int rc = _cmocka_run_group_tests("lint", tests, n, NULL, NULL);
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++)
		free((char *)tests[i].name);
	return rc;
}
