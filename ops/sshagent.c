/*
 * kiln's own ssh agent, for `kiln build --ssh ID=KEYFILE[,KEYFILE]`: buildx loads key
 * files into an agent of its own rather than asking for a running ssh-agent, and so does
 * kiln, without the ssh-agent binary. The keys are read once at start (unencrypted
 * OpenSSH "openssh-key-v1" files or PEM/PKCS#8: Ed25519, RSA, ECDSA P-256/384/521), a
 * thread answers the agent protocol (draft-miller-ssh-agent) on a unix socket in a
 * private directory:
 *	SSH_AGENTC_REQUEST_IDENTITIES -> SSH_AGENT_IDENTITIES_ANSWER
 *	SSH_AGENTC_SIGN_REQUEST       -> SSH_AGENT_SIGN_RESPONSE (rsa-sha2-256/512 by flag)
 *	anything else                 -> SSH_AGENT_FAILURE
 * The agent only signs: it cannot add, remove or lock keys, so a RUN step can use the
 * keys but never read them.
 */
#include "ops.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SSH_AGENT_FAILURE             5
#define SSH_AGENTC_REQUEST_IDENTITIES 11
#define SSH_AGENT_IDENTITIES_ANSWER   12
#define SSH_AGENTC_SIGN_REQUEST       13
#define SSH_AGENT_SIGN_RESPONSE       14
#define SSH_AGENT_RSA_SHA2_256        0x02
#define SSH_AGENT_RSA_SHA2_512        0x04

#define AGENT_MSG_MAX     (256 * 1024) /* as OpenSSH's agent */
#define AGENT_CLIENTS_MAX 64

enum key_type { KEY_ED25519, KEY_RSA, KEY_ECDSA };

struct agent_key {
	enum key_type type;
	EVP_PKEY *pkey;
	struct kiln_buf blob; /* the public key in SSH wire format */
	char *comment;
	const char *ssh_name;  /* "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", ... */
	const EVP_MD *ec_hash; /* ECDSA: the curve's hash */
};

struct agent_client {
	int fd;
	struct kiln_buf in;
};

struct ops_sshagent {
	char *dir, *path;
	int lfd, stopfd;
	pthread_t thread;
	bool started;
	struct agent_key *keys;
	size_t nkeys;
	struct agent_client clients[AGENT_CLIENTS_MAX];
	size_t nclients;
};

/* ---- SSH wire format ---- */

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad; /* a read ran past the end: every later read fails too */
};

static uint32_t
rd_u32(struct rd *r)
{
	if (r->bad || r->n < 4) {
		r->bad = true;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
	             r->p[3];
	r->p += 4;
	r->n -= 4;
	return v;
}

static const uint8_t *
rd_string(struct rd *r, size_t *len)
{
	uint32_t l = rd_u32(r);
	if (r->bad || l > r->n) {
		r->bad = true;
		*len = 0;
		return (const uint8_t *)"";
	}
	const uint8_t *s = r->p;
	r->p += l;
	r->n -= l;
	*len = l;
	return s;
}

static bool
rd_string_eq(struct rd *r, const char *want)
{
	size_t l;
	const uint8_t *s = rd_string(r, &l);
	return !r->bad && l == strlen(want) && !memcmp(s, want, l);
}

/* An mpint as a BIGNUM (NULL when malformed); keys' numbers are never negative. */
static BIGNUM *
rd_mpint(struct rd *r)
{
	size_t l;
	const uint8_t *s = rd_string(r, &l);
	if (r->bad || (l && s[0] & 0x80))
		return NULL;
	return BN_bin2bn(s, (int)l, NULL);
}

static void
wr_u32(struct kiln_buf *b, uint32_t v)
{
	uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
	kiln_buf_add(b, x, 4);
}

static void
wr_string(struct kiln_buf *b, const void *s, size_t len)
{
	wr_u32(b, (uint32_t)len);
	kiln_buf_add(b, s, len);
}

static void
wr_cstring(struct kiln_buf *b, const char *s)
{
	wr_string(b, s, strlen(s));
}

static void
wr_mpint(struct kiln_buf *b, const BIGNUM *bn)
{
	int n = BN_num_bytes(bn);
	_cleanup_free_ uint8_t *x = kiln_xmalloc((size_t)n + 1);
	x[0] = 0;
	BN_bn2bin(bn, x + 1);
	/* a leading zero keeps a number with its top bit set positive */
	bool pad = n > 0 && x[1] & 0x80;
	wr_string(b, pad ? x : x + 1, (size_t)n + pad);
}

/* ---- keys ---- */

static void
bn_freep(BIGNUM **b)
{
	BN_clear_free(*b);
}
#define _cleanup_bn_ _cleanup_(bn_freep)

static void
key_release(struct agent_key *k)
{
	EVP_PKEY_free(k->pkey);
	kiln_buf_release(&k->blob);
	free(k->comment);
}

static int
ssl_err(struct kiln_err *err, const char *path, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return kiln_err_invalid(err, "ssh key %s: %s%s%s", path, what, *buf ? ": " : "", buf);
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* RSA from OpenSSH's (n, e, d, iqmp, p, q); OpenSSL also wants d mod p-1 and d mod q-1. */
static EVP_PKEY *
rsa_from_parts(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d, const BIGNUM *iqmp,
               const BIGNUM *p, const BIGNUM *q)
{
	BN_CTX *bctx = BN_CTX_new();
	_cleanup_bn_ BIGNUM *p1 = BN_new(), *q1 = BN_new(), *dmp1 = BN_new(), *dmq1 = BN_new();
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (bctx && p1 && q1 && dmp1 && dmq1 && bld && BN_sub(p1, p, BN_value_one()) &&
	    BN_sub(q1, q, BN_value_one()) && BN_mod(dmp1, d, p1, bctx) &&
	    BN_mod(dmq1, d, q1, bctx) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp))
		pkey = pkey_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_CTX_free(bctx);
	return pkey;
}

static const char *
ec_group_for(const uint8_t *ssh_curve, size_t len)
{
	static const char *const map[][2] = {
	        {"nistp256", "P-256"}, {"nistp384", "P-384"}, {"nistp521", "P-521"}};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(map); i++)
		if (len == strlen(map[i][0]) && !memcmp(ssh_curve, map[i][0], len))
			return map[i][1];
	return NULL;
}

static EVP_PKEY *
ec_from_parts(const char *group, const uint8_t *q, size_t qlen, const BIGNUM *d)
{
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, qlen) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d))
		pkey = pkey_fromdata("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* The private key of an "openssh-key-v1" file (PROTOCOL.key in OpenSSH). */
static int
parse_openssh(const char *path, const uint8_t *data, size_t len, struct agent_key *k,
              struct kiln_err *err)
{
	static const char magic[] = "openssh-key-v1"; /* with its NUL */
	if (len < sizeof(magic) || memcmp(data, magic, sizeof(magic)))
		return kiln_err_invalid(err, "ssh key %s: not an openssh-key-v1 key", path);
	struct rd r = {.p = data + sizeof(magic), .n = len - sizeof(magic)};
	size_t l;
	if (!rd_string_eq(&r, "none") || !rd_string_eq(&r, "none"))
		return kiln_err_invalid(err,
		                        "ssh key %s: the key is encrypted (a passphrase): kiln "
		                        "takes unencrypted keys, or an agent socket",
		                        path);
	rd_string(&r, &l); /* kdf options */
	uint32_t nkeys = rd_u32(&r);
	if (r.bad || nkeys != 1)
		return kiln_err_invalid(err, "ssh key %s: %u keys in one file", path, nkeys);
	rd_string(&r, &l); /* the public key, again in the private part */
	const uint8_t *priv = rd_string(&r, &l);
	if (r.bad)
		return kiln_err_invalid(err, "ssh key %s: truncated", path);
	struct rd pr = {.p = priv, .n = l};
	uint32_t c1 = rd_u32(&pr), c2 = rd_u32(&pr);
	if (pr.bad || c1 != c2)
		return kiln_err_invalid(err, "ssh key %s: corrupt (check bytes differ)", path);
	size_t tl;
	const uint8_t *type = rd_string(&pr, &tl);
	_cleanup_free_ char *tname = kiln_xstrndup((const char *)type, tl);
	if (kiln_str_eq(tname, "ssh-ed25519")) {
		size_t pl, sl;
		rd_string(&pr, &pl);
		const uint8_t *sk = rd_string(&pr, &sl);
		if (pr.bad || sl != 64)
			return kiln_err_invalid(err, "ssh key %s: bad ed25519 key", path);
		k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
	} else if (kiln_str_eq(tname, "ssh-rsa")) {
		_cleanup_bn_ BIGNUM *n = rd_mpint(&pr);
		_cleanup_bn_ BIGNUM *e = rd_mpint(&pr);
		_cleanup_bn_ BIGNUM *d = rd_mpint(&pr);
		_cleanup_bn_ BIGNUM *iqmp = rd_mpint(&pr);
		_cleanup_bn_ BIGNUM *p = rd_mpint(&pr);
		_cleanup_bn_ BIGNUM *q = rd_mpint(&pr);
		if (!n || !e || !d || !iqmp || !p || !q)
			return kiln_err_invalid(err, "ssh key %s: bad RSA key", path);
		k->pkey = rsa_from_parts(n, e, d, iqmp, p, q);
	} else if (kiln_str_has_prefix(tname, "ecdsa-sha2-")) {
		size_t cl, ql;
		const uint8_t *curve = rd_string(&pr, &cl);
		const uint8_t *q = rd_string(&pr, &ql);
		_cleanup_bn_ BIGNUM *d = rd_mpint(&pr);
		const char *group = ec_group_for(curve, cl);
		if (!group || !d)
			return kiln_err_invalid(err, "ssh key %s: bad or unsupported ECDSA key",
			                        path);
		k->pkey = ec_from_parts(group, q, ql, d);
	} else {
		return kiln_err_invalid(err, "ssh key %s: key type %s is not supported", path,
		                        tname);
	}
	if (!k->pkey)
		return ssl_err(err, path, "load the key");
	size_t cl;
	const uint8_t *comment = rd_string(&pr, &cl);
	if (!pr.bad && cl)
		k->comment = kiln_xstrndup((const char *)comment, cl);
	return 0;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The public key blob and the SSH names for a loaded key. */
static int
key_describe(const char *path, struct agent_key *k, struct kiln_err *err)
{
	struct kiln_buf *b = &k->blob;
	if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
		uint8_t pub[32];
		size_t pl = sizeof(pub);
		if (EVP_PKEY_get_raw_public_key(k->pkey, pub, &pl) <= 0 || pl != 32)
			return ssl_err(err, path, "ed25519 public key");
		k->type = KEY_ED25519;
		k->ssh_name = "ssh-ed25519";
		wr_cstring(b, k->ssh_name);
		wr_string(b, pub, pl);
	} else if (EVP_PKEY_is_a(k->pkey, "RSA")) {
		_cleanup_bn_ BIGNUM *n = NULL, *e = NULL;
		if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) <= 0 ||
		    EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) <= 0)
			return ssl_err(err, path, "RSA public key");
		k->type = KEY_RSA;
		k->ssh_name = "ssh-rsa";
		wr_cstring(b, k->ssh_name);
		wr_mpint(b, e);
		wr_mpint(b, n);
	} else if (EVP_PKEY_is_a(k->pkey, "EC")) {
		static const struct {
			const char *group, *curve, *name;
			const EVP_MD *(*md)(void);
		} curves[] = {
		        {"prime256v1", "nistp256", "ecdsa-sha2-nistp256", EVP_sha256},
		        {"secp384r1", "nistp384", "ecdsa-sha2-nistp384", EVP_sha384},
		        {"secp521r1", "nistp521", "ecdsa-sha2-nistp521", EVP_sha512},
		};
		char group[64];
		uint8_t q[200];
		size_t gl, ql;
		if (EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof(group), &gl) <= 0 ||
		    EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, q,
		                                    sizeof(q), &ql) <= 0)
			return ssl_err(err, path, "ECDSA public key");
		size_t c = 0;
		while (c < KILN_ARRAY_SIZE(curves) && !kiln_str_eq(curves[c].group, group))
			c++;
		if (c == KILN_ARRAY_SIZE(curves))
			return kiln_err_invalid(err, "ssh key %s: curve %s is not supported", path,
			                        group);
		k->type = KEY_ECDSA;
		k->ssh_name = curves[c].name;
		k->ec_hash = curves[c].md();
		wr_cstring(b, k->ssh_name);
		wr_cstring(b, curves[c].curve);
		wr_string(b, q, ql);
	} else {
		return kiln_err_invalid(err, "ssh key %s: unsupported key type", path);
	}
	return 0;
}

static void
strip_space(struct kiln_buf *b, const char *s, const char *end)
{
	for (; s < end; s++)
		if (!strchr(" \t\r\n", *s))
			kiln_buf_addch(b, *s);
}

static int
key_load(const char *path, struct agent_key *k, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf text = KILN_BUF_INIT;
	if (kiln_buf_read_file(&text, path, err) < 0)
		return kiln_err_wrap(err, "ssh key");
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	static const char end[] = "-----END OPENSSH PRIVATE KEY-----";
	const char *b = strstr(text.buf, begin);
	int r;
	if (b) {
		const char *e = strstr(b, end);
		if (!e)
			return kiln_err_invalid(err, "ssh key %s: no END line", path);
		_cleanup_buf_ struct kiln_buf b64 = KILN_BUF_INIT;
		strip_space(&b64, b + strlen(begin), e);
		if (b64.len % 4)
			return kiln_err_invalid(err, "ssh key %s: bad base64", path);
		_cleanup_free_ uint8_t *raw = kiln_xmalloc(b64.len / 4 * 3 + 1);
		int n = EVP_DecodeBlock(raw, (const uint8_t *)b64.buf, (int)b64.len);
		if (n < 0)
			return kiln_err_invalid(err, "ssh key %s: bad base64", path);
		/* EVP_DecodeBlock counts the padding as data */
		for (size_t i = b64.len; i > 0 && b64.buf[i - 1] == '='; i--)
			n--;
		r = parse_openssh(path, raw, (size_t)n, k, err);
		OPENSSL_cleanse(raw, b64.len / 4 * 3);
	} else if (strstr(text.buf, "-----BEGIN ")) {
		if (strstr(text.buf, "ENCRYPTED"))
			return kiln_err_invalid(err,
			                        "ssh key %s: the key is encrypted (a passphrase): "
			                        "kiln takes unencrypted keys, or an agent socket",
			                        path);
		BIO *bio = BIO_new_mem_buf(text.buf, (int)text.len);
		k->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
		BIO_free(bio);
		r = k->pkey ? 0 : ssl_err(err, path, "not a private key");
	} else {
		r = kiln_err_invalid(err, "ssh key %s: not a private key (OpenSSH or PEM)", path);
	}
	OPENSSL_cleanse(text.buf, text.len);
	if (r < 0)
		return r;
	if (!k->comment)
		k->comment = kiln_xstrdup(path);
	return key_describe(path, k, err);
}

/* ---- the protocol ---- */

static void
reply_failure(struct kiln_buf *out)
{
	wr_u32(out, 1);
	kiln_buf_addch(out, SSH_AGENT_FAILURE);
}

static void
reply_identities(struct ops_sshagent *a, struct kiln_buf *out)
{
	_cleanup_buf_ struct kiln_buf m = KILN_BUF_INIT;
	kiln_buf_addch(&m, SSH_AGENT_IDENTITIES_ANSWER);
	wr_u32(&m, (uint32_t)a->nkeys);
	for (size_t i = 0; i < a->nkeys; i++) {
		wr_string(&m, a->keys[i].blob.buf, a->keys[i].blob.len);
		wr_cstring(&m, a->keys[i].comment);
	}
	wr_string(out, m.buf, m.len);
}

/* The signature of `data` in SSH form (string name, string sig); false on failure. */
static bool
key_sign(const struct agent_key *k, const uint8_t *data, size_t len, uint32_t flags,
         struct kiln_buf *sig)
{
	const EVP_MD *md = NULL;
	const char *name = k->ssh_name;
	if (k->type == KEY_RSA) {
		if (flags & SSH_AGENT_RSA_SHA2_512) {
			md = EVP_sha512();
			name = "rsa-sha2-512";
		} else if (flags & SSH_AGENT_RSA_SHA2_256) {
			md = EVP_sha256();
			name = "rsa-sha2-256";
		} else {
			md = EVP_sha1(); /* plain ssh-rsa, for old servers */
		}
	} else if (k->type == KEY_ECDSA) {
		md = k->ec_hash;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sl = 0;
	_cleanup_free_ uint8_t *s = NULL;
	bool ok = ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, k->pkey) > 0 &&
	          EVP_DigestSign(ctx, NULL, &sl, data, len) > 0;
	if (ok) {
		s = kiln_xmalloc(sl);
		ok = EVP_DigestSign(ctx, s, &sl, data, len) > 0;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return false;
	}
	wr_cstring(sig, name);
	if (k->type != KEY_ECDSA) {
		wr_string(sig, s, sl);
		return true;
	}
	/* ECDSA: DER's SEQUENCE { r, s } becomes string (mpint r, mpint s) */
	const uint8_t *p = s;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
	if (!es)
		return false;
	const BIGNUM *r = NULL, *ss = NULL;
	ECDSA_SIG_get0(es, &r, &ss);
	_cleanup_buf_ struct kiln_buf rs = KILN_BUF_INIT;
	wr_mpint(&rs, r);
	wr_mpint(&rs, ss);
	ECDSA_SIG_free(es);
	wr_string(sig, rs.buf, rs.len);
	return true;
}

static void
reply_sign(struct ops_sshagent *a, struct rd *r, struct kiln_buf *out)
{
	size_t bl, dl;
	const uint8_t *blob = rd_string(r, &bl);
	const uint8_t *data = rd_string(r, &dl);
	uint32_t flags = rd_u32(r);
	if (r->bad)
		return reply_failure(out);
	for (size_t i = 0; i < a->nkeys; i++) {
		const struct agent_key *k = &a->keys[i];
		if (k->blob.len != bl || memcmp(k->blob.buf, blob, bl))
			continue;
		_cleanup_buf_ struct kiln_buf sig = KILN_BUF_INIT;
		if (!key_sign(k, data, dl, flags, &sig))
			break;
		wr_u32(out, (uint32_t)(1 + 4 + sig.len));
		kiln_buf_addch(out, SSH_AGENT_SIGN_RESPONSE);
		wr_string(out, sig.buf, sig.len);
		return;
	}
	reply_failure(out);
}

static void
handle(struct ops_sshagent *a, const uint8_t *msg, size_t len, struct kiln_buf *out)
{
	struct rd r = {.p = msg + 1, .n = len - 1};
	switch (msg[0]) {
	case SSH_AGENTC_REQUEST_IDENTITIES:
		reply_identities(a, out);
		break;
	case SSH_AGENTC_SIGN_REQUEST:
		reply_sign(a, &r, out);
		break;
	default:
		reply_failure(out);
		break;
	}
}

static void
client_close(struct ops_sshagent *a, size_t i)
{
	close(a->clients[i].fd);
	kiln_buf_release(&a->clients[i].in);
	a->clients[i] = a->clients[--a->nclients];
}

/* Read what the client sent and answer every whole message; false: close it. */
static bool
client_serve(struct ops_sshagent *a, struct agent_client *c)
{
	uint8_t buf[16384];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	kiln_buf_add(&c->in, buf, (size_t)n);
	while (c->in.len >= 4) {
		const uint8_t *p = (const uint8_t *)c->in.buf;
		uint32_t len =
		        (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (len == 0 || len > AGENT_MSG_MAX)
			return false;
		if (c->in.len < 4 + (size_t)len)
			return true;
		_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
		handle(a, p + 4, len, &out);
		/* Answers are small: one that does not fit the socket's buffer means a
		 * client that does not read, which loses its connection. */
		if (send(c->fd, out.buf, out.len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)out.len)
			return false;
		size_t used = 4 + (size_t)len;
		memmove(c->in.buf, c->in.buf + used, c->in.len - used);
		kiln_buf_setlen(&c->in, c->in.len - used);
	}
	return true;
}

static void *
agent_main(void *arg)
{
	struct ops_sshagent *a = arg;
	struct pollfd pfd[2 + AGENT_CLIENTS_MAX];
	for (;;) {
		pfd[0] = (struct pollfd){.fd = a->stopfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = a->lfd, .events = POLLIN};
		for (size_t i = 0; i < a->nclients; i++)
			pfd[2 + i] = (struct pollfd){.fd = a->clients[i].fd, .events = POLLIN};
		size_t n = 2 + a->nclients;
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		/* clients first, from the end, as client_close moves the last one down */
		for (size_t i = n - 2; i-- > 0;) {
			if (!pfd[2 + i].revents)
				continue;
			if (!client_serve(a, &a->clients[i]))
				client_close(a, i);
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && a->nclients == AGENT_CLIENTS_MAX)
				close(fd);
			else if (fd >= 0)
				a->clients[a->nclients++] =
				        (struct agent_client){.fd = fd, .in = KILN_BUF_INIT};
		}
	}
	while (a->nclients)
		client_close(a, a->nclients - 1);
	return NULL;
}

/* ---- the interface ---- */

/* Agents of builds that were killed leave their directories behind: remove those whose
 * socket nobody listens on. A directory younger than a minute may belong to a build
 * that has not bound its socket yet, and is left alone. */
static void
clean_stale(const char *tmp_dir)
{
	_cleanup_close_ int dfd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	if (kiln_dir_names(dfd, &names) < 0)
		return;
	time_t now = time(NULL);
	for (size_t i = 0; i < names.n; i++) {
		struct stat st;
		if (!kiln_str_has_prefix(names.v[i], "ssh-") ||
		    fstatat(dfd, names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || now - st.st_mtime < 60)
			continue;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s/agent.sock", tmp_dir,
		                 names.v[i]);
		if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
			continue;
		_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    (errno != ECONNREFUSED && errno != ENOENT))
			continue;
		kiln_rm_rf_at(dfd, names.v[i]);
	}
}

int
ops_sshagent_start(const char *tmp_dir, const char *const *keyfiles, size_t nkeys,
                   struct ops_sshagent **ret, struct kiln_err *err)
{
	if (!nkeys)
		return kiln_err_invalid(err, "an ssh agent needs at least one key");
	struct ops_sshagent *a = kiln_xcalloc(1, sizeof(*a));
	a->lfd = a->stopfd = -1;
	a->keys = kiln_xcalloc(nkeys, sizeof(*a->keys));
	int r = 0;
	for (size_t i = 0; i < nkeys && r >= 0; i++) {
		a->keys[i].blob = (struct kiln_buf)KILN_BUF_INIT;
		a->nkeys++;
		r = key_load(keyfiles[i], &a->keys[i], err);
	}
	if (r < 0)
		goto fail;
	if (mkdir(tmp_dir, 0700) < 0 && errno != EEXIST) {
		r = kiln_err_set(err, errno, "mkdir `%s`", tmp_dir);
		goto fail;
	}
	clean_stale(tmp_dir);
	a->dir = kiln_xasprintf("%s/ssh-XXXXXX", tmp_dir);
	if (!mkdtemp(a->dir)) {
		r = kiln_err_set(err, errno, "mkdtemp `%s`", a->dir);
		free(a->dir);
		a->dir = NULL;
		goto fail;
	}
	a->path = kiln_xasprintf("%s/agent.sock", a->dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(a->path) >= sizeof(sa.sun_path)) {
		r = kiln_err_set(err, ENAMETOOLONG, "ssh agent socket `%s`: path too long",
		                 a->path);
		goto fail;
	}
	strcpy(sa.sun_path, a->path);
	/* Only kiln connects (0600): a RUN step reaches the agent through the executor's
	 * forwarding socket, which carries the mount's uid/gid/mode. */
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a->stopfd = eventfd(0, EFD_CLOEXEC);
	if (a->lfd < 0 || a->stopfd < 0 || bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(a->path, 0600) < 0 || listen(a->lfd, 16) < 0) {
		r = kiln_err_set(err, errno, "ssh agent socket `%s`", a->path);
		goto fail;
	}
	/* Signals stay with the thread that waits for them (kiln build's signalfd). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pr = pthread_create(&a->thread, NULL, agent_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pr != 0) {
		r = kiln_err_set(err, pr, "ssh agent thread");
		goto fail;
	}
	a->started = true;
	*ret = a;
	return 0;
fail:
	ops_sshagent_free(a);
	return r;
}

const char *
ops_sshagent_socket(const struct ops_sshagent *a)
{
	return a->path;
}

void
ops_sshagent_free(struct ops_sshagent *a)
{
	if (!a)
		return;
	if (a->started) {
		uint64_t one = 1;
		(void)!write(a->stopfd, &one, sizeof(one));
		pthread_join(a->thread, NULL);
	}
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->stopfd >= 0)
		close(a->stopfd);
	if (a->path)
		unlink(a->path);
	if (a->dir)
		rmdir(a->dir);
	for (size_t i = 0; i < a->nkeys; i++)
		key_release(&a->keys[i]);
	free(a->keys);
	free(a->path);
	free(a->dir);
	free(a);
}
