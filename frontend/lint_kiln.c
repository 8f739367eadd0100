/*
 * kiln lint: kiln's own rules, about what makes builds slow (cache busting, downloads
 * without a cache mount) and images big (package caches, files kept by an earlier layer).
 *
 * RUN commands are read with a small shell word splitter: simple commands separated by
 * && || ; | & newlines and parentheses, quotes removed. It is a heuristic reader, so the
 * rules only fire on shapes they recognise for sure; a rule that could misfire stays
 * silent. Size rules only look at stages whose layers can end up in an output image.
 */
#include "lint.h"

#include <ctype.h>
#include <fnmatch.h>
#include <strings.h>

struct sh_cmd {
	const char **argv;
	size_t argc;
};

struct sh_script {
	struct sh_cmd *cmds;
	size_t n, alloc;
};

static void
sh_finish_word(struct kiln_buf *w, bool *in_word, struct kiln_strv *cur)
{
	if (!*in_word)
		return;
	kiln_strv_push(cur, w->buf);
	kiln_buf_reset(w);
	*in_word = false;
}

static void
sh_finish_cmd(struct kiln_arena *a, struct kiln_strv *cur, struct sh_script *sh)
{
	static const char *skip[] = {"sudo", "env",  "exec",  "nohup", "time", "command",
	                             "then", "else", "do",    "if",    "!",    "{",
	                             "}",    "elif", "while", "until"};
	size_t i = 0;
	/* Leading VAR=value assignments and wrappers do not name the program. */
	while (i < cur->n) {
		const char *w = cur->v[i];
		bool assign = (isalpha((unsigned char)w[0]) || w[0] == '_') && strchr(w, '=') &&
		              strcspn(w, "=") == strspn(w, "abcdefghijklmnopqrstuvwxyz"
		                                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                                           "0123456789_");
		bool wrap = false;
		for (size_t k = 0; k < KILN_ARRAY_SIZE(skip); k++)
			wrap |= kiln_str_eq(w, skip[k]);
		if (!assign && !wrap)
			break;
		i++;
	}
	if (i < cur->n) {
		KILN_GROW(sh->cmds, sh->alloc, sh->n + 1);
		struct sh_cmd *c = &sh->cmds[sh->n++];
		c->argc = cur->n - i;
		c->argv = kiln_arena_array(a, c->argc + 1, sizeof(*c->argv));
		for (size_t k = 0; k < c->argc; k++)
			c->argv[k] = kiln_arena_strdup(a, cur->v[i + k]);
	}
	kiln_strv_release(cur);
}

static void
sh_split(struct kiln_arena *a, const char *s, struct sh_script *sh)
{
	_cleanup_buf_ struct kiln_buf w = KILN_BUF_INIT;
	_cleanup_strv_ struct kiln_strv cur = KILN_STRV_INIT;
	bool in_word = false;
	char q = 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (q) {
			if (c == q)
				q = 0;
			else if (q == '"' && c == '\\' && p[1])
				kiln_buf_addch(&w, *++p);
			else
				kiln_buf_addch(&w, c);
			continue;
		}
		if (c == '\'' || c == '"') {
			q = c;
			in_word = true;
			continue;
		}
		if (c == '\\' && p[1]) {
			p++;
			if (*p != '\n') {
				kiln_buf_addch(&w, *p);
				in_word = true;
			}
			continue;
		}
		if (c == '#' && !in_word) {
			while (p[1] && p[1] != '\n')
				p++;
			continue;
		}
		if (strchr("&|;\n()`", c)) {
			sh_finish_word(&w, &in_word, &cur);
			sh_finish_cmd(a, &cur, sh);
			continue;
		}
		if (isspace((unsigned char)c)) {
			sh_finish_word(&w, &in_word, &cur);
			continue;
		}
		kiln_buf_addch(&w, c);
		in_word = true;
	}
	sh_finish_word(&w, &in_word, &cur);
	sh_finish_cmd(a, &cur, sh);
}

/* ---- what a RUN does ---- */

enum pm {
	PM_APT,
	PM_APK,
	PM_DNF,
	PM_PIP,
	PM_NPM,
	PM_YARN,
	PM_PNPM,
	PM_GO,
	PM_CARGO,
	PM_BUNDLE,
	PM_COMPOSER,
	PM_MAVEN,
	PM_GRADLE,
	PM__COUNT
};

static const struct {
	const char *name;     /* as shown in messages */
	const char *mount;    /* the cache mount to suggest */
	const char *match[3]; /* substrings of a cache mount target that cover the cache */
	const char *manifest; /* what to copy before installing */
} pms[PM__COUNT] = {
        [PM_APT] = {"apt-get",
                    "--mount=type=cache,target=/var/cache/apt,sharing=locked "
                    "--mount=type=cache,target=/var/lib/apt,sharing=locked",
                    {"/var/cache/apt", "/var/lib/apt"},
                    NULL},
        [PM_APK] = {"apk",
                    "--mount=type=cache,target=/etc/apk/cache",
                    {"/etc/apk/cache", "/var/cache/apk"},
                    NULL},
        [PM_DNF] = {"dnf",
                    "--mount=type=cache,target=/var/cache/dnf",
                    {"/var/cache/dnf", "/var/cache/yum"},
                    NULL},
        [PM_PIP] = {"pip",
                    "--mount=type=cache,target=/root/.cache/pip",
                    {".cache/pip", "/.cache"},
                    "requirements.txt (or pyproject.toml)"},
        [PM_NPM] = {"npm",
                    "--mount=type=cache,target=/root/.npm",
                    {".npm"},
                    "package.json package-lock.json"},
        [PM_YARN] = {"yarn",
                     "--mount=type=cache,target=/usr/local/share/.cache/yarn",
                     {"yarn"},
                     "package.json yarn.lock"},
        [PM_PNPM] = {"pnpm",
                     "--mount=type=cache,target=/root/.local/share/pnpm/store",
                     {"pnpm"},
                     "package.json pnpm-lock.yaml"},
        [PM_GO] = {"go",
                   "--mount=type=cache,target=/go/pkg/mod "
                   "--mount=type=cache,target=/root/.cache/go-build",
                   {"pkg/mod", "go-build"},
                   "go.mod go.sum"},
        [PM_CARGO] = {"cargo",
                      "--mount=type=cache,target=/usr/local/cargo/registry",
                      {"cargo"},
                      "Cargo.toml Cargo.lock"},
        [PM_BUNDLE] = {"bundle",
                       "--mount=type=cache,target=/usr/local/bundle/cache",
                       {"bundle", ".gem"},
                       "Gemfile Gemfile.lock"},
        [PM_COMPOSER] = {"composer",
                         "--mount=type=cache,target=/root/.composer/cache",
                         {"composer"},
                         "composer.json composer.lock"},
        [PM_MAVEN] = {"mvn", "--mount=type=cache,target=/root/.m2", {".m2"}, "pom.xml"},
        [PM_GRADLE] = {"gradle",
                       "--mount=type=cache,target=/root/.gradle",
                       {".gradle"},
                       "build.gradle settings.gradle"},
};

struct run_info {
	const struct fe_cmd *c;
	struct sh_script sh;
	/* per package manager: an install of dependencies / any download */
	const struct sh_cmd *install[PM__COUNT];
	const struct sh_cmd *download[PM__COUNT];
	bool apt_update;
	bool apt_lists_removed, apk_cache_removed, dnf_clean;
	const struct sh_cmd *build_tool; /* a compiler run or toolchain install */
	bool pkg_removed;                /* apk del, apt-get purge, dnf remove, ... */
	const char *build_tool_name;
};

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static bool
prog_is(const struct sh_cmd *c, const char *name)
{
	return kiln_str_eq(base_name(c->argv[0]), name);
}

static bool
has_arg(const struct sh_cmd *c, const char *arg)
{
	for (size_t i = 1; i < c->argc; i++)
		if (kiln_str_eq(c->argv[i], arg))
			return true;
	return false;
}

static bool
has_arg_prefix(const struct sh_cmd *c, const char *prefix)
{
	for (size_t i = 1; i < c->argc; i++)
		if (kiln_str_has_prefix(c->argv[i], prefix))
			return true;
	return false;
}

/* A short option letter, alone or in a cluster (-qy). */
static bool
has_short(const struct sh_cmd *c, char letter)
{
	for (size_t i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (a[0] == '-' && a[1] != '-' && strchr(a + 1, letter))
			return true;
	}
	return false;
}

/* The first non-option word after argv[0] (skipping `-o VALUE` of apt). */
static const char *
subcommand(const struct sh_cmd *c, size_t *ret_i)
{
	for (size_t i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (a[0] == '-') {
			if ((kiln_str_eq(a, "-o") || kiln_str_eq(a, "-c") ||
			     kiln_str_eq(a, "-C")) &&
			    i + 1 < c->argc)
				i++;
			continue;
		}
		if (ret_i)
			*ret_i = i;
		return a;
	}
	return NULL;
}

static bool
is_build_pkg(const char *p)
{
	static const char *pk[] = {"build-essential", "build-base", "gcc",       "g++",   "make",
	                           "cmake",           "golang",     "golang-go", "rustc", "cargo",
	                           "clang",           "gcc-c++"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(pk); i++)
		if (kiln_str_eq(p, pk[i]))
			return true;
	return false;
}

static void
classify(struct run_info *ri, const struct sh_cmd *c)
{
	const char *prog = base_name(c->argv[0]);
	size_t si = 0;
	const char *sub = subcommand(c, &si);
	enum pm pm = PM__COUNT;
	bool install = false, download = false;

	if (kiln_str_eq(prog, "apt-get") || kiln_str_eq(prog, "apt")) {
		pm = PM_APT;
		ri->pkg_removed |=
		        sub && (kiln_str_eq(sub, "purge") || kiln_str_eq(sub, "remove") ||
		                kiln_str_eq(sub, "autoremove"));
		if (sub && kiln_str_eq(sub, "update")) {
			ri->apt_update = download = true;
		} else if (sub &&
		           (kiln_str_eq(sub, "install") || kiln_str_eq(sub, "upgrade") ||
		            kiln_str_eq(sub, "dist-upgrade") || kiln_str_eq(sub, "full-upgrade"))) {
			install = download = true;
		}
	} else if (kiln_str_eq(prog, "apk")) {
		pm = PM_APK;
		ri->pkg_removed |= sub && kiln_str_eq(sub, "del");
		install = download =
		        sub && (kiln_str_eq(sub, "add") || kiln_str_eq(sub, "upgrade"));
	} else if (kiln_str_eq(prog, "dnf") || kiln_str_eq(prog, "yum") ||
	           kiln_str_eq(prog, "microdnf") || kiln_str_eq(prog, "tdnf")) {
		pm = PM_DNF;
		if (sub && kiln_str_eq(sub, "clean") && has_arg(c, "all"))
			ri->dnf_clean = true;
		ri->pkg_removed |=
		        sub && (kiln_str_eq(sub, "remove") || kiln_str_eq(sub, "erase") ||
		                kiln_str_eq(sub, "autoremove"));
		install = download =
		        sub && (kiln_str_eq(sub, "install") || kiln_str_eq(sub, "groupinstall") ||
		                kiln_str_eq(sub, "update") || kiln_str_eq(sub, "upgrade"));
	} else if (kiln_str_eq(prog, "pip") || kiln_str_eq(prog, "pip2") ||
	           kiln_str_has_prefix(prog, "pip3") ||
	           (!strncmp(prog, "python", 6) && has_arg(c, "-m") && has_arg(c, "pip"))) {
		pm = PM_PIP;
		install = download = has_arg(c, "install");
		sub = "install";
	} else if (kiln_str_eq(prog, "npm")) {
		pm = PM_NPM;
		install = download = sub && (kiln_str_eq(sub, "install") || kiln_str_eq(sub, "i") ||
		                             kiln_str_eq(sub, "ci"));
	} else if (kiln_str_eq(prog, "yarn")) {
		pm = PM_YARN;
		install = download = !sub || kiln_str_eq(sub, "install");
	} else if (kiln_str_eq(prog, "pnpm")) {
		pm = PM_PNPM;
		install = download = sub && (kiln_str_eq(sub, "install") || kiln_str_eq(sub, "i"));
	} else if (kiln_str_eq(prog, "go") && sub) {
		pm = PM_GO;
		const char *next = si + 1 < c->argc ? c->argv[si + 1] : "";
		install = (kiln_str_eq(sub, "mod") && kiln_str_eq(next, "download")) ||
		          kiln_str_eq(sub, "get");
		download = install || kiln_str_eq(sub, "build") || kiln_str_eq(sub, "install");
		if (kiln_str_eq(sub, "build") || kiln_str_eq(sub, "install"))
			ri->build_tool = c, ri->build_tool_name = "go build";
	} else if (kiln_str_eq(prog, "cargo") && sub) {
		pm = PM_CARGO;
		install = kiln_str_eq(sub, "fetch");
		download = install || kiln_str_eq(sub, "build") || kiln_str_eq(sub, "install");
		if (kiln_str_eq(sub, "build") || kiln_str_eq(sub, "install"))
			ri->build_tool = c, ri->build_tool_name = "cargo build";
	} else if (kiln_str_eq(prog, "bundle")) {
		pm = PM_BUNDLE;
		install = download = sub && kiln_str_eq(sub, "install");
	} else if (kiln_str_eq(prog, "composer")) {
		pm = PM_COMPOSER;
		install = download = sub && kiln_str_eq(sub, "install");
	} else if (kiln_str_eq(prog, "mvn") || kiln_str_eq(prog, "mvnw")) {
		pm = PM_MAVEN;
		install = has_arg_prefix(c, "dependency:");
		download = true;
		if (has_arg(c, "package") || has_arg(c, "install") || has_arg(c, "verify"))
			ri->build_tool = c, ri->build_tool_name = "mvn package";
	} else if (kiln_str_eq(prog, "gradle") || kiln_str_eq(prog, "gradlew")) {
		pm = PM_GRADLE;
		install = has_arg(c, "dependencies");
		download = true;
		if (has_arg(c, "build") || has_arg(c, "assemble") || has_arg(c, "bootJar"))
			ri->build_tool = c, ri->build_tool_name = "gradle build";
	} else if (kiln_str_eq(prog, "make") || kiln_str_eq(prog, "cmake") ||
	           kiln_str_eq(prog, "gcc") || kiln_str_eq(prog, "g++") ||
	           kiln_str_eq(prog, "cc") || kiln_str_eq(prog, "clang")) {
		ri->build_tool = c;
		ri->build_tool_name = kiln_str_eq(prog, "make") ? "make" : prog;
	} else if (kiln_str_eq(prog, "rm")) {
		for (size_t i = 1; i < c->argc; i++) {
			ri->apt_lists_removed |=
			        kiln_str_has_prefix(c->argv[i], "/var/lib/apt/lists");
			ri->apk_cache_removed |= kiln_str_has_prefix(c->argv[i], "/var/cache/apk");
			ri->dnf_clean |= kiln_str_has_prefix(c->argv[i], "/var/cache/dnf") ||
			                 kiln_str_has_prefix(c->argv[i], "/var/cache/yum");
		}
	}
	if ((pm == PM_NPM || pm == PM_YARN || pm == PM_PNPM) && sub &&
	    (kiln_str_eq(sub, "run") || kiln_str_eq(sub, "build")) &&
	    (kiln_str_eq(sub, "build") ||
	     (si + 1 < c->argc && kiln_str_eq(c->argv[si + 1], "build"))))
		ri->build_tool = c, ri->build_tool_name = pm == PM_NPM    ? "npm run build"
		                                          : pm == PM_YARN ? "yarn build"
		                                                          : "pnpm build";
	if (pm == PM__COUNT)
		return;
	if (install && !ri->install[pm])
		ri->install[pm] = c;
	if (download && !ri->download[pm])
		ri->download[pm] = c;
	/* Toolchain packages installed into the stage. */
	if ((pm == PM_APT || pm == PM_APK || pm == PM_DNF) && install && !ri->build_tool)
		for (size_t i = si + 1; i < c->argc; i++)
			if (is_build_pkg(c->argv[i])) {
				ri->build_tool = c;
				ri->build_tool_name = c->argv[i];
				break;
			}
}

static void
run_info_init(struct lint *l, struct run_info *ri, const struct fe_cmd *c)
{
	memset(ri, 0, sizeof(*ri));
	ri->c = c;
	const struct fe_cmdline *cl = &c->run.cmd;
	if (!cl->shell_form) {
		/* exec form: one command, or sh -c "script" */
		if (cl->argc >= 3 && kiln_str_eq(cl->argv[1], "-c")) {
			sh_split(l->arena, cl->argv[2], &ri->sh);
		} else if (cl->argc) {
			KILN_GROW(ri->sh.cmds, ri->sh.alloc, 1);
			ri->sh.cmds[0].argv = cl->argv;
			ri->sh.cmds[0].argc = cl->argc;
			ri->sh.n = 1;
		}
	} else {
		_cleanup_buf_ struct kiln_buf text = KILN_BUF_INIT;
		for (size_t i = 0; i < cl->argc; i++) {
			if (i)
				kiln_buf_addch(&text, ' ');
			kiln_buf_addstr(&text, cl->argv[i]);
		}
		for (size_t i = 0; i < c->run.nheredocs; i++) {
			kiln_buf_addch(&text, '\n');
			kiln_buf_addstr(&text, c->run.heredocs[i].content);
		}
		sh_split(l->arena, text.buf, &ri->sh);
	}
	for (size_t i = 0; i < ri->sh.n; i++)
		classify(ri, &ri->sh.cmds[i]);
}

/* Does a cache/tmpfs mount of this RUN hold the package manager's cache? */
static bool
cache_mounted(const struct fe_cmd *c, enum pm pm)
{
	for (size_t m = 0; m < c->run.nmounts; m++) {
		const struct fe_mount *mt = &c->run.mounts[m];
		if (mt->type != FE_MOUNT_CACHE && mt->type != FE_MOUNT_TMPFS)
			continue;
		for (size_t k = 0; k < 3 && pms[pm].match[k]; k++)
			if (mt->target && strstr(mt->target, pms[pm].match[k]))
				return true;
	}
	return false;
}

/* A cache or tmpfs mount whose target holds `path` (or is under it). */
static bool
mount_holds(const struct fe_cmd *c, const char *path)
{
	for (size_t m = 0; m < c->run.nmounts; m++) {
		const struct fe_mount *mt = &c->run.mounts[m];
		if ((mt->type == FE_MOUNT_CACHE || mt->type == FE_MOUNT_TMPFS) && mt->target &&
		    kiln_str_has_prefix(mt->target, path))
			return true;
	}
	return false;
}

static bool
mount_covers(const struct fe_cmd *c, const char *path)
{
	if (c->kind != FE_CMD_RUN)
		return false;
	for (size_t m = 0; m < c->run.nmounts; m++) {
		const char *t = c->run.mounts[m].target;
		size_t n = t ? strlen(t) : 0;
		if (n && !strncmp(path, t, n) && (path[n] == '/' || !path[n]))
			return true;
	}
	return false;
}

/* ---- path bookkeeping for COPY-then-chmod and create-then-remove ---- */

struct created {
	char *path; /* absolute, cleaned */
	bool dir;   /* everything under it counts */
	const struct fe_cmd *by;
	const char *how; /* "COPY", "ADD", "downloaded" */
};

static char *
resolve(struct kiln_arena *a, const char *workdir, const char *p)
{
	_cleanup_free_ char *j = p[0] == '/' ? kiln_path_clean(p) : kiln_path_join(workdir, p);
	return kiln_arena_strdup(a, j);
}

/* Is `p` `base` or below it? */
static bool
path_under(const char *p, const char *base)
{
	size_t n = strlen(base);
	if (kiln_str_eq(base, "/"))
		return true;
	return !strncmp(p, base, n) && (p[n] == '/' || !p[n]);
}

static bool
looks_like_file(const char *src)
{
	const char *b = base_name(src);
	const char *dot = strrchr(b, '.');
	return dot && dot != b && dot[1];
}

static bool
is_archive_name(const char *src)
{
	static const char *ext[] = {".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".tlz",
	                            ".gz",  ".bz2", ".xz",  ".zst",  ".lz4", ".lzma", ".Z"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(ext); i++)
		if (kiln_str_has_suffix(src, ext[i]))
			return true;
	return false;
}

static bool
is_remote(const char *src)
{
	return strstr(src, "://") || kiln_str_has_prefix(src, "git@");
}

/* Track COPY/ADD results: a file source into a dir lands at dir/name. */
static void
add_copy_created(struct lint *l, struct created **cr, size_t *n, size_t *alloc,
                 const struct fe_cmd *c, const char *workdir)
{
	const char *dest = c->copy.dest;
	if (strchr(dest, '$'))
		return;
	char *d = resolve(l->arena, workdir, dest);
	if (kiln_str_eq(d, "/"))
		return;
	bool dest_dir = kiln_str_has_suffix(dest, "/") || kiln_str_eq(dest, ".") ||
	                c->copy.nsources + c->copy.nheredocs > 1;
	for (size_t i = 0; i < c->copy.nsources; i++) {
		const char *src = c->copy.sources[i];
		KILN_GROW(*cr, *alloc, *n + 1);
		struct created *x = &(*cr)[(*n)++];
		x->by = c;
		x->how = c->kind == FE_CMD_ADD ? "ADD" : "COPY";
		if (dest_dir && looks_like_file(src) && !strpbrk(src, "*?[")) {
			const char *b = base_name(src);
			if (is_remote(src)) {
				_cleanup_free_ char *q = kiln_xstrndup(b, strcspn(b, "?#"));
				x->path = kiln_arena_printf(l->arena, "%s/%s", d, q);
			} else {
				x->path = kiln_arena_printf(l->arena, "%s/%s", d, b);
			}
			x->dir = false;
		} else {
			x->path = d;
			x->dir = true;
		}
	}
}

/* Downloads of a RUN: curl -o F / -O, wget -O F / wget URL. */
static void
add_download_created(struct lint *l, struct created **cr, size_t *n, size_t *alloc,
                     const struct run_info *ri, const char *workdir)
{
	for (size_t k = 0; k < ri->sh.n; k++) {
		const struct sh_cmd *c = &ri->sh.cmds[k];
		bool curl = prog_is(c, "curl"), wget = prog_is(c, "wget");
		if (!curl && !wget)
			continue;
		const char *out = NULL, *url = NULL;
		bool remote_name = false;
		for (size_t i = 1; i < c->argc; i++) {
			const char *a = c->argv[i];
			if (is_remote(a)) {
				url = a;
			} else if (curl &&
			           (kiln_str_eq(a, "--output") ||
			            (a[0] == '-' && a[1] != '-' && a[strlen(a) - 1] == 'o'))) {
				if (i + 1 < c->argc)
					out = c->argv[++i];
			} else if (curl && (kiln_str_eq(a, "--remote-name") ||
			                    (a[0] == '-' && a[1] != '-' && strchr(a, 'O')))) {
				remote_name = true;
			} else if (wget && kiln_str_eq(a, "--output-document")) {
				if (i + 1 < c->argc)
					out = c->argv[++i];
			} else if (wget && kiln_str_has_prefix(a, "--output-document=")) {
				out = a + strlen("--output-document=");
			} else if (wget && a[0] == '-' && a[1] != '-' && strchr(a, 'O')) {
				/* -O FILE, -OFILE, -qO- (standard output) */
				const char *o = strchr(a, 'O');
				if (o[1])
					out = o + 1;
				else if (i + 1 < c->argc)
					out = c->argv[++i];
			}
		}
		if (!out && url && (remote_name || wget)) {
			_cleanup_free_ char *b =
			        kiln_xstrndup(base_name(url), strcspn(base_name(url), "?#"));
			if (*b)
				out = kiln_arena_strdup(l->arena, b);
		}
		if (!out || kiln_str_eq(out, "-") || strchr(out, '$'))
			continue;
		char *p = resolve(l->arena, workdir, out);
		if (mount_covers(ri->c, p))
			continue;
		KILN_GROW(*cr, *alloc, *n + 1);
		(*cr)[(*n)++] =
		        (struct created){.path = p, .dir = false, .by = ri->c, .how = "downloaded"};
	}
}

/* ---- the rules ---- */

static bool
is_context_copy(const struct fe_cmd *c)
{
	if ((c->kind != FE_CMD_COPY && c->kind != FE_CMD_ADD) || c->copy.from)
		return false;
	for (size_t i = 0; i < c->copy.nsources; i++)
		if (kiln_str_eq(c->copy.sources[i], ".") || kiln_str_eq(c->copy.sources[i], "./"))
			return true;
	return false;
}

static bool
copies_lockfile(const struct fe_cmd *c)
{
	if (c->kind != FE_CMD_COPY && c->kind != FE_CMD_ADD)
		return false;
	for (size_t i = 0; i < c->copy.nsources; i++) {
		const char *b = base_name(c->copy.sources[i]);
		if (!fnmatch(b, "package-lock.json", 0) || !fnmatch(b, "npm-shrinkwrap.json", 0))
			return true;
	}
	return false;
}

static bool
env_sets(const struct fe_cmd *c, const char *key)
{
	if (c->kind != FE_CMD_ENV)
		return false;
	for (size_t k = 0; k < c->kv.nkvs; k++)
		if (kiln_str_eq(c->kv.kvs[k].key, key))
			return true;
	return false;
}

static void
rules_run_packages(struct lint *l, const struct lint_stage *s, struct run_info *ri,
                   bool pip_env_nocache)
{
	const struct fe_cmd *c = ri->c;
	const struct sh_cmd *apt = ri->install[PM_APT];
	if (ri->apt_update && !apt)
		lint_report(
		        l, R_APT_UPDATE_WITHOUT_INSTALL, c,
		        "apt-get update without apt-get install in the same RUN: the cached "
		        "update goes stale; run 'apt-get update && apt-get install -y ...' in one "
		        "RUN");
	for (size_t k = 0; k < ri->sh.n; k++) {
		const struct sh_cmd *a = &ri->sh.cmds[k];
		if (!prog_is(a, "apt-get") && !prog_is(a, "apt"))
			continue;
		const char *sub = subcommand(a, NULL);
		if (!sub || !kiln_str_eq(sub, "install"))
			continue;
		if (!has_short(a, 'y') && !has_arg(a, "--yes") && !has_arg(a, "--assume-yes"))
			lint_report(l, R_APT_INSTALL_WITHOUT_YES, c,
			            "%s install without -y stops at the confirmation prompt: use "
			            "'%s install -y'",
			            a->argv[0], a->argv[0]);
		if (!has_arg(a, "--no-install-recommends") &&
		    !has_arg_prefix(a, "APT::Install-Recommends="))
			lint_report(
			        l, R_APT_INSTALL_RECOMMENDS, c,
			        "%s install without --no-install-recommends installs recommended "
			        "packages too: add --no-install-recommends",
			        a->argv[0]);
	}
	if (s->shipped) {
		if (apt && !ri->apt_lists_removed && !mount_holds(c, "/var/lib/apt"))
			lint_report(l, R_APT_LISTS_NOT_REMOVED, c,
			            "apt lists stay in this layer: end the RUN with "
			            "'&& rm -rf /var/lib/apt/lists/*' (or mount a cache on "
			            "/var/lib/apt)");
		const struct sh_cmd *apk = ri->install[PM_APK];
		if (apk && !has_arg(apk, "--no-cache") && !ri->apk_cache_removed &&
		    !cache_mounted(c, PM_APK))
			lint_report(
			        l, R_APK_ADD_WITHOUT_NO_CACHE, c,
			        "apk add without --no-cache keeps the package index in the image: "
			        "use 'apk add --no-cache'");
		const struct sh_cmd *dnf = ri->install[PM_DNF];
		if (dnf && !ri->dnf_clean && !cache_mounted(c, PM_DNF))
			lint_report(
			        l, R_YUM_DNF_CACHE_NOT_CLEANED, c,
			        "%s install keeps its package cache in the image: end the RUN with "
			        "'&& %s clean all'",
			        base_name(dnf->argv[0]), base_name(dnf->argv[0]));
		const struct sh_cmd *pip = ri->install[PM_PIP];
		if (pip && !has_arg(pip, "--no-cache-dir") && !pip_env_nocache &&
		    !cache_mounted(c, PM_PIP))
			lint_report(
			        l, R_PIP_WITHOUT_NO_CACHE_DIR, c,
			        "pip install keeps downloaded packages in /root/.cache/pip: add "
			        "--no-cache-dir (or mount a cache there)");
	}
	for (int pm = 0; pm < PM__COUNT; pm++) {
		if (!ri->download[pm] || cache_mounted(c, (enum pm)pm))
			continue;
		/* An explicit no-cache flag chose a small layer; a cache mount would need it
		 * dropped, which is the user's call, not a finding. */
		if ((pm == PM_APK && ri->install[pm] && has_arg(ri->install[pm], "--no-cache")) ||
		    (pm == PM_PIP && ri->install[pm] && has_arg(ri->install[pm], "--no-cache-dir")))
			continue;
		lint_report(l, R_PACKAGE_CACHE_MOUNT, c,
		            "%s downloads on every rebuild of this step: add %s to the RUN",
		            pms[pm].name, pms[pm].mount);
	}
}

/*
 * A RUN that starts with `cd DIR &&` wants WORKDIR DIR, unless the directory is a scratch
 * place the RUN leaves again (cd back, rm it, /tmp): there WORKDIR would be wrong.
 */
static bool
cd_wants_workdir(const struct run_info *ri)
{
	const char *dir = ri->sh.cmds[0].argv[1];
	if (dir[0] == '-' || strchr(dir, '$') || kiln_str_has_prefix(dir, "/tmp") ||
	    kiln_str_has_prefix(dir, "/var/tmp"))
		return false;
	for (size_t k = 1; k < ri->sh.n; k++) {
		const struct sh_cmd *c = &ri->sh.cmds[k];
		if (prog_is(c, "cd") || prog_is(c, "pushd") || prog_is(c, "popd"))
			return false;
		if (prog_is(c, "rm"))
			for (size_t i = 1; i < c->argc; i++)
				if (kiln_str_eq(c->argv[i], dir))
					return false;
	}
	return true;
}

/* Is `p` a directory this RUN makes itself (mkdir), or under one? */
static bool
made_here(struct lint *l, const struct run_info *ri, const char *workdir, const char *p)
{
	for (size_t k = 0; k < ri->sh.n; k++) {
		const struct sh_cmd *c = &ri->sh.cmds[k];
		if (!prog_is(c, "mkdir"))
			continue;
		for (size_t i = 1; i < c->argc; i++) {
			if (c->argv[i][0] == '-' || strchr(c->argv[i], '$'))
				continue;
			if (path_under(p, resolve(l->arena, workdir, c->argv[i])))
				return true;
		}
	}
	return false;
}

/* chmod/chown of what COPY created, rm of what an earlier step created. */
static void
rule_perm_rm(struct lint *l, const struct run_info *ri, const char *workdir,
             const struct created *cr, size_t ncr)
{
	const struct fe_cmd *c = ri->c;
	for (size_t x = 0; x < ri->sh.n; x++) {
		const struct sh_cmd *sc = &ri->sh.cmds[x];
		bool perm = prog_is(sc, "chmod") || prog_is(sc, "chown") || prog_is(sc, "chgrp");
		bool rm = prog_is(sc, "rm");
		if (!perm && !rm)
			continue;
		bool recursive =
		        has_short(sc, 'R') || has_short(sc, 'r') || has_arg(sc, "--recursive");
		bool first = perm; /* chmod/chown take the mode/owner first */
		const struct created *hit = NULL;
		const char *arg = NULL;
		for (size_t i = 1; i < sc->argc && !hit; i++) {
			const char *a = sc->argv[i];
			if (a[0] == '-')
				continue;
			if (first) {
				first = false;
				continue;
			}
			if (strchr(a, '$'))
				continue;
			_cleanup_free_ char *g = kiln_xstrndup(a, strcspn(a, "*?["));
			if (!*g)
				continue;
			char *p = resolve(l->arena, workdir, g);
			if (mount_covers(c, p) || made_here(l, ri, workdir, p))
				continue;
			for (size_t q = ncr; q-- > 0 && !hit;) {
				const struct created *cp = &cr[q];
				bool downloaded = cp->how[0] == 'd';
				if (perm && downloaded)
					continue;
				if (kiln_str_eq(p, cp->path) ||
				    (cp->dir && path_under(p, cp->path)) ||
				    (recursive && !kiln_str_eq(p, "/") && path_under(cp->path, p)))
					hit = cp, arg = a;
			}
		}
		if (!hit)
			continue;
		if (perm)
			lint_report(
			        l, R_CHOWN_CHMOD_AFTER_COPY, c,
			        "%s of %s, which %s on line %d created, copies those files into a "
			        "new layer: use %s --%s=... on line %d",
			        base_name(sc->argv[0]), arg, hit->how, hit->by->start_line,
			        hit->how, prog_is(sc, "chmod") ? "chmod" : "chown",
			        hit->by->start_line);
		else if (hit->how[0] == 'd')
			lint_report(
			        l, R_REMOVE_IN_LATER_LAYER, c,
			        "rm of %s, which was downloaded on line %d, in a later layer: its "
			        "bytes stay in the image; download, use and remove it in one RUN",
			        arg, hit->by->start_line);
		else
			lint_report(
			        l, R_REMOVE_IN_LATER_LAYER, c,
			        "rm of %s, which %s on line %d added, in a later layer: its bytes "
			        "stay in that layer; keep it out of the %s (.dockerignore, "
			        "narrower sources) or build in a separate stage",
			        arg, hit->how, hit->by->start_line, hit->how);
	}
}

static void
rule_stage(struct lint *l, size_t si)
{
	const struct lint_stage *s = &l->stages[si];
	const struct fe_cmd *context_copy = NULL;
	bool reported_context_copy = false;
	bool installed_before[PM__COUNT] = {0};
	bool lockfile = false, pip_env_nocache = false;
	/* what the stage builds on left behind (an image's own WORKDIR is unknown: /) */
	const char *workdir =
	        s->base >= 0 && l->stages[s->base].workdir ? l->stages[s->base].workdir : "/";
	struct created *cr = NULL;
	size_t ncr = 0, acr = 0;

	for (size_t k = s->first; k < s->first + s->count; k++) {
		const struct fe_cmd *c = l->cmds[k];
		switch (c->kind) {
		case FE_CMD_WORKDIR:
			if (!strchr(c->value, '$'))
				workdir = resolve(l->arena, workdir, c->value);
			break;
		case FE_CMD_ENV:
			pip_env_nocache |= env_sets(c, "PIP_NO_CACHE_DIR");
			break;
		case FE_CMD_COPY:
		case FE_CMD_ADD:
			if (is_context_copy(c) && !context_copy)
				context_copy = c;
			lockfile |= copies_lockfile(c);
			add_copy_created(l, &cr, &ncr, &acr, c, workdir);
			if (c->kind == FE_CMD_ADD && !c->copy.nheredocs && c->copy.unpack < 0 &&
			    !c->copy.checksum) {
				bool local_plain = c->copy.nsources > 0;
				for (size_t i = 0; i < c->copy.nsources; i++) {
					const char *src = c->copy.sources[i];
					if (is_remote(src) || is_archive_name(src) ||
					    strchr(src, '$'))
						local_plain = false;
				}
				if (local_plain)
					lint_report(l, R_ADD_LOCAL_NON_ARCHIVE, c,
					            "ADD of local \"%s\", which is not an archive: "
					            "use COPY",
					            c->copy.sources[0]);
			}
			break;
		case FE_CMD_RUN: {
			struct run_info ri;
			run_info_init(l, &ri, c);
			rules_run_packages(l, s, &ri, pip_env_nocache);

			for (int pm = 0; pm < PM__COUNT; pm++) {
				if (!ri.install[pm])
					continue;
				if (context_copy && !installed_before[pm] &&
				    !reported_context_copy) {
					reported_context_copy = true;
					if (pms[pm].manifest)
						lint_report(l, R_COPY_CONTEXT_BEFORE_INSTALL,
						            context_copy,
						            "COPY of the whole context before the "
						            "%s install "
						            "on line %d: every code change "
						            "reinstalls the "
						            "dependencies; copy %s first, install, "
						            "then COPY "
						            "the rest",
						            pms[pm].name, c->start_line,
						            pms[pm].manifest);
					else
						lint_report(
						        l, R_COPY_CONTEXT_BEFORE_INSTALL,
						        context_copy,
						        "COPY of the whole context before the %s "
						        "install "
						        "on line %d: every code change reinstalls "
						        "the "
						        "packages; move the install above the COPY",
						        pms[pm].name, c->start_line);
				}
				if (!context_copy)
					installed_before[pm] = true;
			}
			const struct sh_cmd *npm = ri.install[PM_NPM];
			if (npm && lockfile) {
				size_t si2 = 0;
				const char *sub = subcommand(npm, &si2);
				bool pkgs = false;
				for (size_t i = si2 + 1; i < npm->argc; i++)
					pkgs |= npm->argv[i][0] != '-';
				if (sub && !kiln_str_eq(sub, "ci") && !pkgs)
					lint_report(
					        l, R_NPM_INSTALL_WITH_LOCKFILE, c,
					        "npm install with a copied package-lock.json: use "
					        "'npm ci', which installs exactly the lockfile and "
					        "is "
					        "faster");
			}
			if (c->run.cmd.shell_form && ri.sh.n >= 2 &&
			    prog_is(&ri.sh.cmds[0], "cd") && ri.sh.cmds[0].argc == 2 &&
			    cd_wants_workdir(&ri) && !c->run.nheredocs)
				lint_report(l, R_RUN_CD_USE_WORKDIR, c,
				            "RUN starts with 'cd %s': use 'WORKDIR %s' so the "
				            "directory "
				            "holds for the instructions that follow",
				            ri.sh.cmds[0].argv[1], ri.sh.cmds[0].argv[1]);

			if (s->shipped)
				rule_perm_rm(l, &ri, workdir, cr, ncr);
			add_download_created(l, &cr, &ncr, &acr, &ri, workdir);
			free(ri.sh.cmds);
			break;
		}
		default:
			break;
		}
	}
	free(cr);
	l->stages[si].workdir = workdir;
}

/* FROM without a tag or with :latest; stage references and scratch are fine. */
static void
rule_from_tag(struct lint *l, const struct lint_stage *s)
{
	if (s->base >= 0 || s->scratch || !s->image_expanded || !*s->image_expanded)
		return;
	/* FROM ${BASE}: the image is a build arg's choice, and so is its tag. A variable
	 * only in the tag (alpine:${TAG}) is judged by the tag's default. */
	const char *raw_slash = strrchr(s->image, '/');
	size_t name_len = strcspn(raw_slash ? raw_slash : s->image, ":@") +
	                  (size_t)(raw_slash ? raw_slash - s->image : 0);
	if (memchr(s->image, '$', name_len))
		return;
	const char *img = s->image_expanded;
	if (strchr(img, '@'))
		return;
	const char *slash = strrchr(img, '/');
	const char *colon = strchr(slash ? slash : img, ':');
	if (!colon)
		lint_report(l, R_FROM_LATEST_TAG, s->from,
		            "FROM %s has no tag, so it means whatever :latest is today: pin a "
		            "version (%s:<version>)",
		            img, img);
	else if (kiln_str_eq(colon + 1, "latest"))
		lint_report(l, R_FROM_LATEST_TAG, s->from,
		            "FROM %s follows whatever :latest is today: pin a version", img);
}

static void
rule_final_stage(struct lint *l)
{
	if (!l->nstages)
		return;
	size_t last = l->nstages - 1;
	const struct lint_stage *fs = &l->stages[last];
	/* the chain of stages the final image is built on, base first */
	size_t chain[64], n = 0;
	for (int si = (int)last; si >= 0 && n < KILN_ARRAY_SIZE(chain); si = l->stages[si].base)
		chain[n++] = (size_t)si;

	const char *user = NULL;
	bool copies_from = false;
	const struct run_info *tool = NULL;
	struct run_info ri_tool;
	for (size_t ci = n; ci-- > 0;) {
		const struct lint_stage *s = &l->stages[chain[ci]];
		for (size_t k = s->first; k < s->first + s->count; k++) {
			const struct fe_cmd *c = l->cmds[k];
			if (c->kind == FE_CMD_USER)
				user = c->value;
			if (c->kind == FE_CMD_COPY && c->copy.from)
				copies_from = true;
			if (c->kind == FE_CMD_RUN) {
				for (size_t m = 0; m < c->run.nmounts; m++)
					copies_from |= c->run.mounts[m].from != NULL;
				if (!tool) {
					run_info_init(l, &ri_tool, c);
					/* Official images build in one RUN and remove the
					 * toolchain again: no tools stay behind. */
					if (ri_tool.build_tool && !ri_tool.pkg_removed)
						tool = &ri_tool;
					else
						free(ri_tool.sh.cmds);
				}
			}
		}
	}
	if (tool && !copies_from)
		lint_report(l, R_BUILD_TOOLS_IN_FINAL_STAGE, tool->c,
		            "the final stage builds with %s and copies nothing from another stage: "
		            "build in a stage 'FROM ... AS build' and 'COPY --from=build' only the "
		            "result into a slim final stage",
		            tool->build_tool_name);
	if (tool)
		free(ri_tool.sh.cmds);

	const char *img = fs->image_expanded ? fs->image_expanded : fs->image;
	bool nonroot_image = strstr(img, "nonroot") || strstr(img, "rootless");
	bool root = !user || kiln_str_eq(user, "root") || kiln_str_eq(user, "0") ||
	            kiln_str_has_prefix(user, "root:") || kiln_str_has_prefix(user, "0:");
	if (root && !nonroot_image)
		lint_report(
		        l, R_FINAL_STAGE_RUNS_AS_ROOT, fs->from,
		        "the final stage runs as root: add 'USER <name or uid>' after the steps "
		        "that need root");
}

void
lint_kiln_rules(struct lint *l)
{
	for (size_t si = 0; si < l->nstages; si++) {
		rule_from_tag(l, &l->stages[si]);
		rule_stage(l, si);
	}
	rule_final_stage(l);
}
