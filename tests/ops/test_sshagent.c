/* Unit tests for ops/sshagent.c: keys made by ssh-keygen, the agent checked by OpenSSH's
 * own clients (ssh-add -l, ssh-keygen -Y sign) and by raw protocol messages. */
#include "testlib.h"

#include "ops/ops.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

struct fx {
	char *tmp;
	struct ops_sshagent *agent;
};

static int
setup(void **state)
{
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	ops_sshagent_free(fx->agent);
	test_tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

/* Run a shell command in fx->tmp; returns its exit status, its stdout in `out` if given. */
static int KILN_PRINTF(3, 4) sh(struct fx *fx, struct kiln_buf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_buf_ struct kiln_buf cmd = KILN_BUF_INIT;
	kiln_buf_addf(&cmd, "cd '%s' && ", fx->tmp);
	if (fx->agent)
		kiln_buf_addf(&cmd, "SSH_AUTH_SOCK='%s' ", ops_sshagent_socket(fx->agent));
	kiln_buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd.buf, "r");
	assert_non_null(p);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		if (out)
			kiln_buf_add(out, buf, n);
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
path_in(struct fx *fx, const char *name)
{
	return kiln_xasprintf("%s/%s", fx->tmp, name);
}

/* ssh-keygen -t TYPE [extra] -f NAME, no passphrase. */
static void
keygen(struct fx *fx, const char *name, const char *args)
{
	assert_int_equal(
	        sh(fx, NULL, "ssh-keygen -q -N '' -C %s-comment %s -f %s", name, args, name), 0);
}

static void
start(struct fx *fx, const char *const *names, size_t n)
{
	char *paths[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		paths[i] = path_in(fx, names[i]);
	_cleanup_free_ char *dir = path_in(fx, "agent-tmp");
	struct kiln_err err = KILN_ERR_INIT;
	int r = ops_sshagent_start(dir, (const char *const *)paths, n, &fx->agent, &err);
	if (r < 0)
		fail_msg("ops_sshagent_start: %s", err.msg);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
}

/* What OpenSSH does with the agent: list the key, sign a file with it, check the
 * signature. */
static void
check_with_openssh(struct fx *fx, const char *name)
{
	_cleanup_buf_ struct kiln_buf list = KILN_BUF_INIT, fp = KILN_BUF_INIT;
	assert_int_equal(sh(fx, &list, "ssh-add -l"), 0);
	assert_int_equal(sh(fx, &fp, "ssh-keygen -lf %s.pub | cut -d' ' -f2", name), 0);
	kiln_buf_setlen(&fp, fp.len - 1); /* the newline */
	assert_non_null(strstr(list.buf, fp.buf));
	assert_non_null(strstr(list.buf, "-comment"));
	assert_int_equal(sh(fx, NULL, "echo 'signed by kiln' > data-%s", name), 0);
	assert_int_equal(
	        sh(fx, NULL, "ssh-keygen -q -Y sign -f %s.pub -n file data-%s 2>&1", name, name),
	        0);
	assert_int_equal(sh(fx, NULL,
	                    "ssh-keygen -Y check-novalidate -n file -s data-%s.sig < data-%s "
	                    ">/dev/null 2>&1",
	                    name, name),
	                 0);
	/* and the check does fail for other data */
	assert_int_not_equal(sh(fx, NULL,
	                        "echo other | ssh-keygen -Y check-novalidate -n file -s "
	                        "data-%s.sig >/dev/null 2>&1",
	                        name),
	                     0);
}

static void
test_sshagent__ed25519_openssh_format(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "ed", "-t ed25519");
	start(fx, (const char *[]){"ed"}, 1);
	check_with_openssh(fx, "ed");
}

static void
test_sshagent__rsa_openssh_format(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "rsa", "-t rsa -b 2048");
	start(fx, (const char *[]){"rsa"}, 1);
	check_with_openssh(fx, "rsa"); /* ssh-keygen -Y asks for rsa-sha2-512 */
}

static void
test_sshagent__rsa_pem_and_ecdsa_pkcs8(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "rsapem", "-t rsa -b 2048 -m PEM");
	keygen(fx, "ec", "-t ecdsa -b 384 -m PKCS8");
	keygen(fx, "ec256", "-t ecdsa -b 256");
	_cleanup_buf_ struct kiln_buf head = KILN_BUF_INIT;
	assert_int_equal(sh(fx, &head, "head -1 rsapem; head -1 ec"), 0);
	assert_string_equal(head.buf,
	                    "-----BEGIN RSA PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\n");
	start(fx, (const char *[]){"rsapem", "ec", "ec256"}, 3);
	_cleanup_buf_ struct kiln_buf list = KILN_BUF_INIT;
	assert_int_equal(sh(fx, &list, "ssh-add -l | wc -l"), 0);
	assert_string_equal(list.buf, "3\n");
	check_with_openssh(fx, "rsapem");
	check_with_openssh(fx, "ec");
	check_with_openssh(fx, "ec256");
}

/* ---- raw protocol ---- */

static int
agent_connect(struct fx *fx)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, ops_sshagent_socket(fx->agent));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
put_u32(struct kiln_buf *b, uint32_t v)
{
	uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
	kiln_buf_add(b, x, 4);
}

static void
put_string(struct kiln_buf *b, const void *s, size_t n)
{
	put_u32(b, (uint32_t)n);
	kiln_buf_add(b, s, n);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One framed message: type + body. */
static void
frame(struct kiln_buf *out, int type, const struct kiln_buf *body)
{
	put_u32(out, (uint32_t)(1 + (body ? body->len : 0)));
	kiln_buf_addch(out, type);
	if (body)
		kiln_buf_add(out, body->buf, body->len);
}

/* Read one reply (its type and body); -1 on end of stream. */
static int
reply(int fd, struct kiln_buf *body)
{
	uint8_t h[4];
	ssize_t n = recv(fd, h, 4, MSG_WAITALL);
	if (n == 0)
		return -1;
	assert_int_equal(n, 4);
	uint32_t len = get_u32(h);
	assert_true(len >= 1 && len < 65536);
	kiln_buf_reset(body);
	kiln_buf_grow(body, len);
	assert_int_equal(recv(fd, body->buf, len, MSG_WAITALL), (ssize_t)len);
	kiln_buf_setlen(body, len);
	int type = (uint8_t)body->buf[0];
	memmove(body->buf, body->buf + 1, len - 1);
	kiln_buf_setlen(body, len - 1);
	return type;
}

/* The first key's blob from an identities answer. */
static void
first_blob(int fd, struct kiln_buf *blob)
{
	_cleanup_buf_ struct kiln_buf req = KILN_BUF_INIT, ans = KILN_BUF_INIT;
	frame(&req, 11, NULL);
	assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
	assert_int_equal(reply(fd, &ans), 12);
	const uint8_t *p = (const uint8_t *)ans.buf;
	assert_int_equal(get_u32(p), 1);
	uint32_t bl = get_u32(p + 4);
	kiln_buf_add(blob, p + 8, bl);
}

static int
sign(int fd, const struct kiln_buf *blob, const char *data, uint32_t flags, struct kiln_buf *sig)
{
	_cleanup_buf_ struct kiln_buf body = KILN_BUF_INIT, req = KILN_BUF_INIT;
	put_string(&body, blob->buf, blob->len);
	put_string(&body, data, strlen(data));
	put_u32(&body, flags);
	frame(&req, 13, &body);
	assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
	return reply(fd, sig);
}

/* A signature response's algorithm name and raw signature. */
static void
split_sig(const struct kiln_buf *resp, char **name, struct kiln_buf *raw)
{
	const uint8_t *p = (const uint8_t *)resp->buf;
	uint32_t total = get_u32(p);
	assert_int_equal(total + 4, resp->len);
	uint32_t nl = get_u32(p + 4);
	*name = kiln_xstrndup((const char *)p + 8, nl);
	uint32_t sl = get_u32(p + 8 + nl);
	kiln_buf_add(raw, p + 12 + nl, sl);
}

static void
verify_rsa(struct fx *fx, const char *name, const EVP_MD *md, const char *data,
           const struct kiln_buf *raw)
{
	assert_int_equal(sh(fx, NULL, "ssh-keygen -e -m PKCS8 -f %s.pub > %s.pem", name, name), 0);
	_cleanup_free_ char *pem = kiln_xasprintf("%s/%s.pem", fx->tmp, name);
	FILE *f = fopen(pem, "r");
	assert_non_null(f);
	EVP_PKEY *pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pub);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(ctx, (const uint8_t *)raw->buf, raw->len,
	                                  (const uint8_t *)data, strlen(data)),
	                 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
}

static void
test_sshagent__rsa_signature_follows_flags(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "rsa", "-t rsa -b 2048");
	start(fx, (const char *[]){"rsa"}, 1);
	_cleanup_close_ int fd = agent_connect(fx);
	_cleanup_buf_ struct kiln_buf blob = KILN_BUF_INIT;
	first_blob(fd, &blob);
	static const struct {
		uint32_t flags;
		const char *name;
		const EVP_MD *(*md)(void);
	} cases[] = {{2, "rsa-sha2-256", EVP_sha256},
	             {4, "rsa-sha2-512", EVP_sha512},
	             {0, "ssh-rsa", EVP_sha1}};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
		_cleanup_buf_ struct kiln_buf resp = KILN_BUF_INIT, raw = KILN_BUF_INIT;
		assert_int_equal(sign(fd, &blob, "session data", cases[i].flags, &resp), 14);
		_cleanup_free_ char *name = NULL;
		split_sig(&resp, &name, &raw);
		assert_string_equal(name, cases[i].name);
		assert_int_equal(raw.len, 256); /* a 2048-bit key's signature */
		verify_rsa(fx, "rsa", cases[i].md(), "session data", &raw);
	}
}

static void
test_sshagent__fails_what_it_does_not_do(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "ed", "-t ed25519");
	keygen(fx, "other", "-t ed25519");
	start(fx, (const char *[]){"ed"}, 1);
	_cleanup_close_ int fd = agent_connect(fx);
	_cleanup_buf_ struct kiln_buf resp = KILN_BUF_INIT, req = KILN_BUF_INIT;
	/* add identity (17), remove all (19), lock (22), an extension (27): all refused */
	static const int refused[] = {17, 19, 22, 27};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(refused); i++) {
		kiln_buf_reset(&req);
		frame(&req, refused[i], NULL);
		assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
		assert_int_equal(reply(fd, &resp), 5);
	}
	/* a key it does not hold */
	_cleanup_buf_ struct kiln_buf blob = KILN_BUF_INIT, pub = KILN_BUF_INIT;
	first_blob(fd, &blob);
	kiln_buf_setlen(&blob, blob.len - 1);
	kiln_buf_addch(&blob, 'x');
	assert_int_equal(sign(fd, &blob, "data", 0, &resp), 5);
	/* a truncated sign request */
	kiln_buf_reset(&req);
	_cleanup_buf_ struct kiln_buf body = KILN_BUF_INIT;
	put_u32(&body, 1000);
	frame(&req, 13, &body);
	assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
	assert_int_equal(reply(fd, &resp), 5);
	/* two requests in one write are both answered, in order */
	kiln_buf_reset(&req);
	frame(&req, 11, NULL);
	frame(&req, 99, NULL);
	assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
	assert_int_equal(reply(fd, &resp), 12);
	assert_int_equal(reply(fd, &resp), 5);
	/* a message larger than an agent takes ends the connection */
	kiln_buf_reset(&req);
	put_u32(&req, 1u << 30);
	assert_int_equal(write(fd, req.buf, req.len), (ssize_t)req.len);
	assert_int_equal(reply(fd, &resp), -1);
	/* and the agent goes on serving others */
	_cleanup_close_ int fd2 = agent_connect(fx);
	_cleanup_buf_ struct kiln_buf blob2 = KILN_BUF_INIT;
	first_blob(fd2, &blob2);
}

static void
test_sshagent__bad_keys_are_errors(void **state)
{
	struct fx *fx = *state;
	_cleanup_free_ char *dir = path_in(fx, "agent-tmp");
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sh(fx, NULL, "ssh-keygen -q -t ed25519 -N secret -f enc"), 0);
	assert_int_equal(sh(fx, NULL, "ssh-keygen -q -t rsa -b 2048 -m PEM -N secret -f encpem"),
	                 0);
	test_write_file(fx->tmp, "notakey", "hello\n");
	test_write_file(fx->tmp, "cut",
	                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
	                "-----END OPENSSH PRIVATE KEY-----\n");
	static const struct {
		const char *file, *msg;
	} cases[] = {
	        {"enc", "enc: the key is encrypted"},
	        {"encpem", "encpem: the key is encrypted"},
	        {"notakey", "not a private key"},
	        {"cut", "cut: "},
	        {"missing", "missing"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *p = path_in(fx, cases[i].file);
		const char *keys[] = {p};
		assert_true(ops_sshagent_start(dir, keys, 1, &fx->agent, &err) < 0);
		assert_null(fx->agent);
		assert_err_contains(&err, cases[i].msg);
	}
	struct stat st;
	if (stat(dir, &st) == 0) /* nothing is left behind by a failed start */
		assert_int_equal(sh(fx, NULL, "test -z \"$(ls -A agent-tmp)\""), 0);
}

static void
test_sshagent__private_socket_removed_at_free(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "ed", "-t ed25519");
	start(fx, (const char *[]){"ed"}, 1);
	_cleanup_free_ char *sock = kiln_xstrdup(ops_sshagent_socket(fx->agent));
	_cleanup_free_ char *dir = kiln_xstrndup(sock, strrchr(sock, '/') - sock);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* only kiln connects: steps reach it through the executor's own socket */
	assert_int_equal(st.st_mode & 0777, 0600);
	ops_sshagent_free(fx->agent);
	fx->agent = NULL;
	assert_int_equal(stat(sock, &st), -1);
	assert_int_equal(stat(dir, &st), -1);
}

static void
test_sshagent__stale_agent_dirs_are_removed(void **state)
{
	struct fx *fx = *state;
	keygen(fx, "ed", "-t ed25519");
	/* a killed build's directory (a socket nobody listens on), one that is too new to
	 * judge, and a live agent's */
	assert_int_equal(sh(fx, NULL,
	                    "mkdir -p agent-tmp/ssh-dead agent-tmp/ssh-new agent-tmp/keep && "
	                    "python3 -c 'import socket,sys; "
	                    "socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "
	                    "agent-tmp/ssh-dead/agent.sock && "
	                    "touch -d '-2 minutes' agent-tmp/ssh-dead agent-tmp/keep"),
	                 0);
	start(fx, (const char *[]){"ed"}, 1);
	struct ops_sshagent *live = fx->agent;
	assert_int_equal(
	        sh(fx, NULL, "touch -d '-2 minutes' \"$(dirname %s)\"", ops_sshagent_socket(live)),
	        0);
	fx->agent = NULL;
	start(fx, (const char *[]){"ed"}, 1);
	_cleanup_buf_ struct kiln_buf ls = KILN_BUF_INIT;
	assert_int_equal(sh(fx, &ls, "ls agent-tmp | grep -c ."), 0);
	assert_string_equal(ls.buf, "4\n"); /* keep, ssh-new, the live one, the new one */
	assert_int_not_equal(sh(fx, NULL, "test -e agent-tmp/ssh-dead"), 0);
	assert_int_equal(sh(fx, NULL, "test -d agent-tmp/ssh-new && test -d agent-tmp/keep"), 0);
	assert_int_equal(
	        sh(fx, NULL, "SSH_AUTH_SOCK=%s ssh-add -l >/dev/null", ops_sshagent_socket(live)),
	        0);
	ops_sshagent_free(live);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sshagent__ed25519_openssh_format, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__rsa_openssh_format, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__rsa_pem_and_ecdsa_pkcs8, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__rsa_signature_follows_flags, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__fails_what_it_does_not_do, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__bad_keys_are_errors, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__private_socket_removed_at_free,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sshagent__stale_agent_dirs_are_removed, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
