/*
 * libcrypto, loaded on first use.
 *
 * Mapping and relocating libcrypto (21,000 relocations) was 0.7 ms of every start of
 * kiln, a tenth of a `kiln parse` of a long Dockerfile, which needs no cryptography at
 * all (`kiln plan` loads it at its first SHA-256). So kiln does not link it (as
 * registry/curl_lazy.c does for libcurl and registry/archive_lazy.c for libarchive):
 * these definitions of the libcrypto calls kiln makes open libcrypto.so.3 the first time
 * one is called and forward to it. That is the libcrypto libcurl's libssl uses, loaded
 * once, so an X509_STORE from curl's SSL_CTX is the same library's. A missing libcrypto
 * is reported on first use, as the loader would have reported it at start.
 *
 * A call kiln starts to make must be added here; the link fails until it is.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "base.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>

/* R: returns a value, V: returns nothing; (type, name, parameters, arguments). */
#define CRYPTO_CALLS(R, V)                                                                         \
	R(int, BIO_free, (BIO * a0), (a0))                                                         \
	R(BIO *, BIO_new_mem_buf, (const void *a0, int a1), (a0, a1))                              \
	V(void, BN_CTX_free, (BN_CTX * a0), (a0))                                                  \
	R(BN_CTX *, BN_CTX_new, (void), ())                                                        \
	R(BIGNUM *, BN_bin2bn, (const unsigned char *a0, int a1, BIGNUM *a2), (a0, a1, a2))        \
	R(int, BN_bn2bin, (const BIGNUM *a0, unsigned char *a1), (a0, a1))                         \
	V(void, BN_clear_free, (BIGNUM * a0), (a0))                                                \
	R(int, BN_div, (BIGNUM * a0, BIGNUM * a1, const BIGNUM *a2, const BIGNUM *a3, BN_CTX *a4), \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(BIGNUM *, BN_new, (void), ())                                                            \
	R(int, BN_num_bits, (const BIGNUM *a0), (a0))                                              \
	R(int, BN_sub, (BIGNUM * a0, const BIGNUM *a1, const BIGNUM *a2), (a0, a1, a2))            \
	R(const BIGNUM *, BN_value_one, (void), ())                                                \
	V(void, ECDSA_SIG_free, (ECDSA_SIG * a0), (a0))                                            \
	V(void, ECDSA_SIG_get0, (const ECDSA_SIG *a0, const BIGNUM **a1, const BIGNUM **a2),       \
	  (a0, a1, a2))                                                                            \
	V(void, ERR_clear_error, (void), ())                                                       \
	V(void, ERR_error_string_n, (unsigned long a0, char *a1, size_t a2), (a0, a1, a2))         \
	R(unsigned long, ERR_get_error, (void), ())                                                \
	R(int, EVP_DecodeBlock, (unsigned char *a0, const unsigned char *a1, int a2),              \
	  (a0, a1, a2))                                                                            \
	R(int, EVP_Digest,                                                                         \
	  (const void *a0, size_t a1, unsigned char *a2, unsigned int *a3, const EVP_MD *a4,       \
	   ENGINE *a5),                                                                            \
	  (a0, a1, a2, a3, a4, a5))                                                                \
	R(int, EVP_DigestFinal_ex, (EVP_MD_CTX * a0, unsigned char *a1, unsigned int *a2),         \
	  (a0, a1, a2))                                                                            \
	R(int, EVP_DigestInit_ex, (EVP_MD_CTX * a0, const EVP_MD *a1, ENGINE *a2), (a0, a1, a2))   \
	R(int, EVP_DigestSign,                                                                     \
	  (EVP_MD_CTX * a0, unsigned char *a1, size_t *a2, const unsigned char *a3, size_t a4),    \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_DigestSignInit,                                                                 \
	  (EVP_MD_CTX * a0, EVP_PKEY_CTX * *a1, const EVP_MD *a2, ENGINE *a3, EVP_PKEY *a4),       \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_DigestUpdate, (EVP_MD_CTX * a0, const void *a1, size_t a2), (a0, a1, a2))       \
	R(int, EVP_DigestVerify,                                                                   \
	  (EVP_MD_CTX * a0, const unsigned char *a1, size_t a2, const unsigned char *a3,           \
	   size_t a4),                                                                             \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_DigestVerifyInit,                                                               \
	  (EVP_MD_CTX * a0, EVP_PKEY_CTX * *a1, const EVP_MD *a2, ENGINE *a3, EVP_PKEY *a4),       \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_EncodeBlock, (unsigned char *a0, const unsigned char *a1, int a2),              \
	  (a0, a1, a2))                                                                            \
	V(void, EVP_MD_CTX_free, (EVP_MD_CTX * a0), (a0))                                          \
	R(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())                                                \
	R(EVP_MD *, EVP_MD_fetch, (OSSL_LIB_CTX * a0, const char *a1, const char *a2),             \
	  (a0, a1, a2))                                                                            \
	V(void, EVP_PKEY_CTX_free, (EVP_PKEY_CTX * a0), (a0))                                      \
	R(EVP_PKEY_CTX *, EVP_PKEY_CTX_new_from_name,                                              \
	  (OSSL_LIB_CTX * a0, const char *a1, const char *a2), (a0, a1, a2))                       \
	V(void, EVP_PKEY_free, (EVP_PKEY * a0), (a0))                                              \
	R(int, EVP_PKEY_fromdata, (EVP_PKEY_CTX * a0, EVP_PKEY * *a1, int a2, OSSL_PARAM a3[]),    \
	  (a0, a1, a2, a3))                                                                        \
	R(int, EVP_PKEY_fromdata_init, (EVP_PKEY_CTX * a0), (a0))                                  \
	R(int, EVP_PKEY_get_bn_param, (const EVP_PKEY *a0, const char *a1, BIGNUM **a2),           \
	  (a0, a1, a2))                                                                            \
	R(int, EVP_PKEY_get_octet_string_param,                                                    \
	  (const EVP_PKEY *a0, const char *a1, unsigned char *a2, size_t a3, size_t *a4),          \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY *a0, unsigned char *a1, size_t *a2),   \
	  (a0, a1, a2))                                                                            \
	R(int, EVP_PKEY_get_utf8_string_param,                                                     \
	  (const EVP_PKEY *a0, const char *a1, char *a2, size_t a3, size_t *a4),                   \
	  (a0, a1, a2, a3, a4))                                                                    \
	R(int, EVP_PKEY_is_a, (const EVP_PKEY *a0, const char *a1), (a0, a1))                      \
	R(EVP_PKEY *, EVP_PKEY_new_raw_private_key,                                                \
	  (int a0, ENGINE *a1, const unsigned char *a2, size_t a3), (a0, a1, a2, a3))              \
	R(const EVP_MD *, EVP_sha1, (void), ())                                                    \
	R(const EVP_MD *, EVP_sha256, (void), ())                                                  \
	R(const EVP_MD *, EVP_sha384, (void), ())                                                  \
	R(const EVP_MD *, EVP_sha512, (void), ())                                                  \
	V(void, OPENSSL_cleanse, (void *a0, size_t a1), (a0, a1))                                  \
	V(void, OSSL_PARAM_BLD_free, (OSSL_PARAM_BLD * a0), (a0))                                  \
	R(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_new, (void), ())                                        \
	R(int, OSSL_PARAM_BLD_push_BN, (OSSL_PARAM_BLD * a0, const char *a1, const BIGNUM *a2),    \
	  (a0, a1, a2))                                                                            \
	R(int, OSSL_PARAM_BLD_push_octet_string,                                                   \
	  (OSSL_PARAM_BLD * a0, const char *a1, const void *a2, size_t a3), (a0, a1, a2, a3))      \
	R(int, OSSL_PARAM_BLD_push_utf8_string,                                                    \
	  (OSSL_PARAM_BLD * a0, const char *a1, const char *a2, size_t a3), (a0, a1, a2, a3))      \
	R(OSSL_PARAM *, OSSL_PARAM_BLD_to_param, (OSSL_PARAM_BLD * a0), (a0))                      \
	R(int, SHA256_Final, (unsigned char *a0, SHA256_CTX *a1), (a0, a1))                        \
	R(int, SHA256_Init, (SHA256_CTX * a0), (a0))                                               \
	R(int, SHA256_Update, (SHA256_CTX * a0, const void *a1, size_t a2), (a0, a1, a2))          \
	V(void, OSSL_PARAM_free, (OSSL_PARAM * a0), (a0))                                          \
	R(EVP_PKEY *, PEM_read_PUBKEY,                                                             \
	  (FILE * a0, EVP_PKEY * *a1, pem_password_cb * a2, void *a3), (a0, a1, a2, a3))           \
	R(EVP_PKEY *, PEM_read_bio_PrivateKey,                                                     \
	  (BIO * a0, EVP_PKEY * *a1, pem_password_cb * a2, void *a3), (a0, a1, a2, a3))            \
	R(int, X509_STORE_load_file, (X509_STORE * a0, const char *a1), (a0, a1))                  \
	R(ECDSA_SIG *, d2i_ECDSA_SIG, (ECDSA_SIG * *a0, const unsigned char **a1, long a2),        \
	  (a0, a1, a2))

static struct {
	CRYPTO_CALLS(KILN_LAZY_FIELD, KILN_LAZY_FIELD)
} real;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void
load(void)
{
	void *lib = kiln_lazy_open("libcrypto.so.3", "OpenSSL 3");
#define LOOKUP(ret, name, params, args)                                                            \
	*(void **)&real.name = kiln_lazy_sym(lib, "libcrypto.so.3", #name);
	CRYPTO_CALLS(LOOKUP, LOOKUP)
#undef LOOKUP
}

CRYPTO_CALLS(KILN_LAZY_DEFINE, KILN_LAZY_DEFINE_VOID)
