/*
 * Layer compression on all cores, in the same pass as both digests.
 *
 * The tar stream comes in through exp_compressor_write: it is hashed there (the diff_id)
 * and compressed into a store ingest, which hashes what it is given (the blob digest).
 *
 * gzip is pigz's scheme: the tar is cut into fixed 1 MiB chunks, each deflated on a pool
 * thread as raw deflate primed with the previous chunk's last 32 KiB as dictionary and
 * ended with a sync flush (so it ends on a byte boundary); the pieces are written in order
 * behind one gzip header, then a final empty block and the trailer (crc32s combined). One
 * gzip member, readable by every gzip reader, and, because the cut points depend only on
 * the data, the same bytes for the same tar however many threads ran. The dictionary keeps
 * the ratio within a fraction of a percent of single-stream gzip.
 *
 * Each chunk is first looked at (chunk_params): bytes that look random (order-0 entropy
 * above 7.9 bits a byte: compressed or encrypted data) are stored, since deflate would
 * spend its time for at most 1%; bytes whose matches gain little over their entropy
 * (base64, most numeric noise: a 16 KiB trial at level 1 is not 10% smaller than the
 * entropy says) get Huffman coding only, which is as small for them and 3-4x faster;
 * everything else gets the level asked for. The choice depends only on the chunk's
 * bytes and the level, so the output stays the same for the same tar.
 *
 * The stages run on their own threads once a layer is bigger than one chunk, so the tar
 * writer (the caller) never waits for a digest: a hasher takes the chunks in order for
 * the diff_id, gzip workers compress them in any order, and an emitter writes them in
 * order into the ingest (which hashes them: the blob digest), or feeds them to zstd.
 *
 * zstd uses libzstd's own workers (ZSTD_c_nbWorkers); its multi-threaded output depends
 * on the parameters, not on the number of workers.
 *
 * Cuts (exp_compressor_cut): the layer writer ends a chunk where a big file's data starts
 * and ends, and the first chunk of the file has no dictionary, so the file's chunks, and
 * so their compressed bytes, depend only on the file's content, not on where in the tar it
 * lands. Such a deflated chunk (and any other deflated one) is kept in the segment cache
 * (exp_compressor_set_cache): a file per chunk named by the SHA-256 of zlib's version, the
 * level, the dictionary and the chunk's bytes, holding the compressed bytes, their crc32
 * and input length and a SHA-256 over all that, which is checked on every read, so a torn
 * or corrupt entry is never used (and is removed; segcache.c). The next export of the same bytes
 * takes the entry instead of deflating again; the stream is byte for byte what a fresh
 * compression gives, as the entry is what the fresh path made of the same input. Stored and
 * Huffman-only chunks are not cached: making them again costs less than hashing them for a
 * key and reading an entry back.
 */
#include "internal.h"

#include "registry/reg.h"

#include <libdeflate.h>
#include <pthread.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define GZ_CHUNK (1u << 20)
#define GZ_DICT  32768u

struct chunk {
	unsigned char *in;
	size_t in_len;
	unsigned char dict[GZ_DICT]; /* gzip: the 32 KiB before this chunk */
	size_t dict_len;
	unsigned char *out;
	size_t out_len;
	uLong crc;
	int result; /* gzip: Z_OK, or a zlib error */
	bool compressed, hashed, emitted;
	bool reused;     /* gzip: the bytes came from the segment cache */
	bool added;      /* gzip: and made an entry in it */
	bool out_pooled; /* `out` is an OUT_CAP buffer from the compressor's pool */
};

struct outbuf {
	unsigned char *p;
	size_t len;
	bool pooled; /* goes back to the pool, not to free() */
	struct outbuf *next;
};

struct exp_compressor {
	enum exp_compression kind;
	int level;
	struct reg_ingest *in;
	struct kiln_sha256 *diff;
	int64_t total;
	struct chunk *cur;           /* being filled */
	unsigned char tail[GZ_DICT]; /* gzip: the last bytes before `cur` */
	size_t tail_len;
	/* The pipeline: chunk number k lives in ring[k % ring_size] from its submission
	 * until it is hashed and emitted; the counters only grow. */
	struct chunk **ring;
	size_t ring_size;
	uint64_t produced, hash_next, compress_next, emit_next, freed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t *threads;
	size_t nthreads;
	bool stop;
	int failed; /* -errno from the emitter; its text in perr */
	struct kiln_err perr;
	uLong crc; /* gzip: of everything emitted */
	/* The writer: compressed buffers, in order, into the ingest (write + blob digest). */
	struct outbuf *q_head, *q_tail;
	size_t q_bytes;
	bool q_busy, sink_running;
	pthread_t sink;
	pthread_cond_t scv;
	int sink_failed;
	struct kiln_err serr;
	struct chunk *pool; /* finished chunks for reuse, linked by `out` (the main thread's) */
	/* gzip: the segment cache directory (NULL: none) and what came from it */
	char *cache_dir;
	bool cache_lookup;  /* false: entries are written, never read */
	int64_t reused;     /* tar bytes (emitter's, read after finish) */
	size_t cache_added; /* entries written */
	/* gzip: output buffers of OUT_CAP bytes for reuse, linked through their first bytes
	 * (under mu) */
	unsigned char *outpool;
	size_t noutpool;
	/* zstd */
	ZSTD_CCtx *zc;
	unsigned char *zout;
	size_t zout_size;
};

int
exp_compression_parse(const char *s, enum exp_compression *ret)
{
	if (kiln_str_eq(s, "gzip"))
		*ret = EXP_COMPRESSION_GZIP;
	else if (kiln_str_eq(s, "zstd"))
		*ret = EXP_COMPRESSION_ZSTD;
	else if (kiln_str_eq(s, "uncompressed"))
		*ret = EXP_COMPRESSION_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *
exp_compression_name(enum exp_compression c)
{
	switch (c) {
	case EXP_COMPRESSION_ZSTD:
		return "zstd";
	case EXP_COMPRESSION_NONE:
		return "uncompressed";
	case EXP_COMPRESSION_GZIP:
		break;
	}
	return "gzip";
}

int
exp_compression_level(enum exp_compression c, int level)
{
	switch (c) {
	case EXP_COMPRESSION_ZSTD:
		/* BuildKit's default; its range is zstd's. */
		if (level < 0)
			return 3;
		return level < 1 ? 1 : level > 22 ? 22 : level;
	case EXP_COMPRESSION_NONE:
		return 0;
	case EXP_COMPRESSION_GZIP:
		break;
	}
	if (level < 0)
		return 6; /* gzip's and pigz's default */
	return level > 9 ? 9 : level;
}

const char *
exp_compression_media_type(enum exp_compression c)
{
	switch (c) {
	case EXP_COMPRESSION_ZSTD:
		return REG_MT_OCI_LAYER_ZSTD;
	case EXP_COMPRESSION_NONE:
		return REG_MT_OCI_LAYER;
	case EXP_COMPRESSION_GZIP:
		break;
	}
	return REG_MT_OCI_LAYER_GZIP;
}

size_t
exp_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (size_t)n;
}

/* ---- gzip ---- */

static void
chunk_free(struct chunk *j)
{
	if (!j)
		return;
	free(j->in);
	free(j->out);
	free(j);
}
/* log2(x) for x >= 1 within 0.01 (no libm): the exponent, then a quadratic in the
 * mantissa. */
static double
approx_log2(uint32_t x)
{
	int e = 31 - __builtin_clz(x);
	double m = (double)x / (double)(1u << e) - 1.0;
	return e + m * (4.0 / 3.0 - m / 3.0);
}

#define GZ_TRIAL  16384u
#define GZ_SAMPLE 1024u /* bytes a slice */
#define GZ_SLICES 64u
/* Chunks smaller than this are not worth a segment cache entry. */
#define GZ_CACHE_MIN (64u << 10)

/* The level and strategy for one chunk (see the top of the file). */
static void
chunk_params(z_stream *trial, const unsigned char *p, size_t n, int level, uint32_t count[256],
             int *ret_level, int *ret_strategy)
{
	*ret_level = level;
	*ret_strategy = Z_DEFAULT_STRATEGY;
	if (level == 0 || n < GZ_TRIAL * 2)
		return;
	/* Random-looking data is the common big case (compressed files) and is stored:
	 * a sample of 64 slices of 1 KiB says so at a sixteenth of the cost of the whole
	 * histogram. Only a sample that looks random decides; an estimate from a sample
	 * errs low, so that is rare for data the whole histogram would compress. The
	 * stride is no multiple of a power of two, so data that alternates in aligned
	 * blocks (tar's are 512 bytes) is not sampled in one phase only. */
	if (n >= GZ_SAMPLE * GZ_SLICES * 4) {
		uint32_t sc[256] = {0};
		size_t stride = (n - GZ_SAMPLE) / (GZ_SLICES - 1);
		stride -= !(stride & 1); /* odd, and the last slice still ends within p */
		for (size_t s = 0; s < GZ_SLICES; s++)
			for (const unsigned char *q = p + s * stride, *e = q + GZ_SAMPLE; q < e;
			     q++)
				sc[*q]++;
		double sbits = 0, sln = approx_log2(GZ_SAMPLE * GZ_SLICES);
		for (int c = 0; c < 256; c++)
			if (sc[c])
				sbits += sc[c] * (sln - approx_log2(sc[c]));
		if (sbits >= 7.9 * (GZ_SAMPLE * GZ_SLICES)) {
			*ret_level = 0;
			return;
		}
	}
	/* four tables: runs of one byte value do not stall on one counter */
	uint32_t part[3][256] = {{0}};
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		count[p[i]]++;
		part[0][p[i + 1]]++;
		part[1][p[i + 2]]++;
		part[2][p[i + 3]]++;
	}
	for (; i < n; i++)
		count[p[i]]++;
	for (int c = 0; c < 256; c++)
		count[c] += part[0][c] + part[1][c] + part[2][c];
	double bits = 0, ln = approx_log2((uint32_t)n);
	for (int c = 0; c < 256; c++)
		if (count[c])
			bits += count[c] * (ln - approx_log2(count[c]));
	if (bits >= 7.9 * (double)n) {
		*ret_level = 0;
		return;
	}
	/* Does LZ77 pay? A trial on a slice from the middle of the chunk. */
	unsigned char out[GZ_TRIAL + 1024];
	if (deflateReset(trial) != Z_OK)
		return;
	trial->next_in = (unsigned char *)p + n / 2 - GZ_TRIAL / 2;
	trial->avail_in = GZ_TRIAL;
	trial->next_out = out;
	trial->avail_out = sizeof(out);
	int r = deflate(trial, Z_FINISH);
	if (r != Z_STREAM_END)
		return;
	double lz = (double)(sizeof(out) - trial->avail_out);
	double huff = bits / 8.0 * GZ_TRIAL / (double)n;
	if (lz > huff * 0.9)
		*ret_strategy = Z_HUFFMAN_ONLY;
}

/*
 * Huffman-only deflate, written here rather than by zlib (whose Z_HUFFMAN_ONLY goes
 * byte by byte through its match machinery): one dynamic block of literals whose code
 * comes from the histogram chunk_params already made, written 64 bits at a time, then
 * the sync flush zlib would write. 4-5x zlib's speed on the bytes it is used for.
 */
struct bitw {
	unsigned char *p;
	uint64_t acc;
	unsigned n;
};

static inline void
bw_put(struct bitw *w, uint32_t bits, unsigned n)
{
	w->acc |= (uint64_t)bits << w->n;
	w->n += n;
	if (w->n >= 32) {
		uint32_t v = (uint32_t)w->acc;
		memcpy(w->p, &v, 4); /* little-endian: deflate's bit order */
		w->p += 4;
		w->acc >>= 32;
		w->n -= 32;
	}
}

static void
bw_align(struct bitw *w)
{
	while (w->n > 0) {
		*w->p++ = (unsigned char)w->acc;
		w->acc >>= 8;
		w->n = w->n > 8 ? w->n - 8 : 0;
	}
}

/* Code lengths (at most `limit` bits) for `n` symbols from their counts; unused symbols
 * get 0. Too deep a tree is flattened by halving the counts and building it again. */
static void
huff_lengths(const uint32_t *count, int n, int limit, uint8_t *len)
{
	uint32_t f[286];
	for (int i = 0; i < n; i++)
		f[i] = count[i];
	for (;;) {
		/* nodes: leaves 0..n-1, then inner nodes; parent links give depths */
		uint64_t w[2 * 286];
		int parent[2 * 286], live[2 * 286], nlive = 0, nodes = n;
		for (int i = 0; i < n; i++) {
			parent[i] = -1;
			len[i] = 0;
			if (f[i]) {
				w[i] = f[i];
				live[nlive++] = i;
			}
		}
		if (nlive == 1) {
			len[live[0]] = 1;
			return;
		}
		while (nlive > 1) {
			int a = -1, b = -1; /* the two lightest */
			for (int k = 0; k < nlive; k++) {
				int x = live[k];
				if (a < 0 || w[x] < w[live[a]]) {
					b = a;
					a = k;
				} else if (b < 0 || w[x] < w[live[b]]) {
					b = k;
				}
			}
			int na = live[a], nb = live[b];
			w[nodes] = w[na] + w[nb];
			parent[nodes] = -1;
			parent[na] = parent[nb] = nodes;
			int hi = a > b ? a : b, lo = a > b ? b : a;
			live[hi] = live[--nlive];
			live[lo] = nodes++;
		}
		int max = 0;
		for (int i = 0; i < n; i++) {
			if (!f[i])
				continue;
			int d = 0;
			for (int x = i; parent[x] >= 0; x = parent[x])
				d++;
			len[i] = (uint8_t)d;
			max = d > max ? d : max;
		}
		if (max <= limit)
			return;
		for (int i = 0; i < n; i++)
			f[i] = f[i] ? (f[i] >> 1) | 1 : 0;
	}
}

/* Canonical codes for the lengths, bit-reversed for LSB-first writing (RFC 1951 3.2.2). */
static void
huff_codes(const uint8_t *len, int n, uint16_t *code)
{
	uint16_t bl_count[16] = {0}, next[16] = {0};
	for (int i = 0; i < n; i++)
		bl_count[len[i]]++;
	bl_count[0] = 0;
	uint16_t c = 0;
	for (int b = 1; b < 16; b++) {
		c = (uint16_t)((c + bl_count[b - 1]) << 1);
		next[b] = c;
	}
	for (int i = 0; i < n; i++) {
		if (!len[i])
			continue;
		uint16_t v = next[len[i]]++, r = 0;
		for (int b = 0; b < len[i]; b++)
			r = (uint16_t)((r << 1) | ((v >> b) & 1));
		code[i] = r;
	}
}

static void
huff_block(const uint32_t hist[256], struct chunk *j)
{
	uint32_t count[257];
	memcpy(count, hist, 256 * sizeof(uint32_t));
	count[256] = 1; /* end of block */
	uint8_t len[258];
	uint16_t code[258] = {0};
	huff_lengths(count, 257, 15, len);
	len[257] = 1; /* one distance code of 1 bit: none is used, inflate wants one */
	huff_codes(len, 257, code);
	/* the code lengths, each sent as a code-length symbol 0..15 (no runs) */
	uint32_t clc[19] = {0};
	for (int i = 0; i < 258; i++)
		clc[len[i]]++;
	uint8_t cll[19];
	uint16_t clcode[19] = {0};
	huff_lengths(clc, 19, 7, cll);
	huff_codes(cll, 19, clcode);
	static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
	                                  11, 4,  12, 3, 13, 2, 14, 1, 15};
	int hclen = 19;
	while (hclen > 4 && !cll[order[hclen - 1]])
		hclen--;
	j->out = kiln_xmalloc(j->in_len * 2 + 1024);
	struct bitw w = {.p = j->out};
	bw_put(&w, 0 | (2 << 1), 3); /* not final, dynamic */
	bw_put(&w, 0, 5);            /* HLIT: 257 */
	bw_put(&w, 0, 5);            /* HDIST: 1 */
	bw_put(&w, (uint32_t)(hclen - 4), 4);
	for (int i = 0; i < hclen; i++)
		bw_put(&w, cll[order[i]], 3);
	for (int i = 0; i < 258; i++)
		bw_put(&w, clcode[len[i]], cll[len[i]]);
	const unsigned char *p = j->in, *end = j->in + j->in_len;
	for (; end - p >= 2; p += 2) /* two codes of at most 15 bits fit one put */
		bw_put(&w, code[p[0]] | ((uint32_t)code[p[1]] << len[p[0]]), len[p[0]] + len[p[1]]);
	if (p < end)
		bw_put(&w, code[*p], len[*p]);
	bw_put(&w, code[256], len[256]);
	bw_put(&w, 0, 3); /* sync flush: an empty stored block */
	bw_align(&w);
	static const unsigned char sync[4] = {0, 0, 0xff, 0xff};
	memcpy(w.p, sync, 4);
	w.p += 4;
	j->out_len = (size_t)(w.p - j->out);
	j->crc = libdeflate_crc32(0, j->in, j->in_len);
}

/*
 * Output buffers are reused: a fresh 1 MiB malloc per chunk is a fresh mapping (or
 * memory the allocator just gave back) whose pages all fault on first write, which cost
 * more than a chunk's stored copy. The pool is small: the ring and the writer's queue
 * hold the rest.
 */
#define OUT_CAP      (GZ_CHUNK + GZ_CHUNK / 64 + 4096) /* stored blocks, deflateBound */
#define OUT_POOL_MAX 8u

static void
out_get(struct exp_compressor *c, struct chunk *j)
{
	pthread_mutex_lock(&c->mu);
	unsigned char *p = c->outpool;
	if (p) {
		memcpy(&c->outpool, p, sizeof(p));
		c->noutpool--;
	}
	pthread_mutex_unlock(&c->mu);
	j->out = p ? p : kiln_xmalloc(OUT_CAP);
	j->out_pooled = true;
}

/* Back to the pool, with c->mu held. */
static void
out_put_locked(struct exp_compressor *c, unsigned char *p)
{
	if (c->noutpool >= OUT_POOL_MAX) {
		free(p);
		return;
	}
	memcpy(p, &c->outpool, sizeof(p));
	c->outpool = p;
	c->noutpool++;
}

/* Stored blocks, written here: zlib's level 0 costs a pass more, and a sync flush's
 * empty block is not needed, stored blocks end on a byte boundary. */
static void
stored_blocks(struct exp_compressor *c, struct chunk *j)
{
	if (j->in_len + (j->in_len / 65535 + 1) * 5 <= OUT_CAP)
		out_get(c, j);
	else
		j->out = kiln_xmalloc(j->in_len + (j->in_len / 65535 + 1) * 5);
	unsigned char *o = j->out;
	for (size_t off = 0; off < j->in_len;) {
		size_t n = j->in_len - off > 65535 ? 65535 : j->in_len - off;
		o[0] = 0; /* not final, stored; the rest of the byte is padding */
		o[1] = (unsigned char)n;
		o[2] = (unsigned char)(n >> 8);
		o[3] = (unsigned char)~n;
		o[4] = (unsigned char)(~n >> 8);
		memcpy(o + 5, j->in + off, n);
		o += 5 + n;
		off += n;
	}
	j->out_len = (size_t)(o - j->out);
	j->crc = libdeflate_crc32(0, j->in, j->in_len);
}

static int
gz_deflate(struct exp_compressor *c, z_stream *zs, z_stream *trial, struct chunk *j)
{
	int want_level = c->level;
	const char *cache_dir = c->cache_dir;
	int level, strategy;
	uint32_t hist[256] = {0};
	chunk_params(trial, j->in, j->in_len, want_level, hist, &level, &strategy);
	if (strategy == Z_HUFFMAN_ONLY) {
		huff_block(hist, j);
		return Z_OK;
	}
	if (level == 0) {
		stored_blocks(c, j);
		return Z_OK;
	}
	char key[65];
	bool cache = cache_dir && j->in_len >= GZ_CACHE_MIN;
	if (cache) {
		exp_segment_key(level, j->dict, j->dict_len, j->in, j->in_len, key);
		uint32_t crc;
		if (c->cache_lookup &&
		    exp_segment_load(cache_dir, key, j->in_len, &j->out, &j->out_len, &crc)) {
			j->crc = crc;
			j->reused = true;
			return Z_OK;
		}
	}
	int r = deflateReset(zs);
	if (r == Z_OK)
		r = deflateParams(zs, level, strategy);
	if (r == Z_OK && j->dict_len)
		r = deflateSetDictionary(zs, j->dict, (uInt)j->dict_len);
	if (r != Z_OK)
		return r;
	size_t cap = deflateBound(zs, (uLong)j->in_len) + 64;
	if (cap <= OUT_CAP) {
		out_get(c, j);
		cap = OUT_CAP;
	} else {
		j->out = kiln_xmalloc(cap);
	}
	zs->next_in = j->in;
	zs->avail_in = (uInt)j->in_len;
	zs->next_out = j->out;
	zs->avail_out = (uInt)cap;
	for (;;) {
		r = deflate(zs, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return r;
		if (zs->avail_in == 0 && zs->avail_out > 0)
			break;
		/* Only when deflateBound was not enough: grow and go on. */
		size_t used = cap - zs->avail_out;
		cap *= 2;
		j->out = kiln_xrealloc(j->out, cap);
		j->out_pooled = false;
		zs->next_out = j->out + used;
		zs->avail_out = (uInt)(cap - used);
	}
	j->out_len = (size_t)(zs->next_out - j->out);
	j->crc = libdeflate_crc32(0, j->in, j->in_len);
	if (cache)
		j->added = exp_segment_store(cache_dir, key, j->in_len, (uint32_t)j->crc, j->out,
		                             j->out_len);
	return Z_OK;
}

static int
gz_stream_init(z_stream *zs, int level)
{
	*zs = (z_stream){0};
	return deflateInit2(zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

/* A deflater and its trial stream for one thread. */
struct gz_streams {
	z_stream zs, trial;
	int init;
};

static void
gz_streams_init(struct gz_streams *g, int level)
{
	g->init = gz_stream_init(&g->zs, level);
	if (g->init == Z_OK && gz_stream_init(&g->trial, 1) != Z_OK) {
		deflateEnd(&g->zs);
		g->init = Z_MEM_ERROR;
	}
}

static void
gz_streams_end(struct gz_streams *g)
{
	if (g->init == Z_OK) {
		deflateEnd(&g->zs);
		deflateEnd(&g->trial);
	}
}

static void
gz_compress(struct exp_compressor *c, struct gz_streams *g, struct chunk *j)
{
	j->result = g->init == Z_OK ? gz_deflate(c, &g->zs, &g->trial, j) : g->init;
}

/* ---- the writer ---- */

#define SINK_MAX (8u << 20) /* bytes queued before the emitter waits: bounds peak RSS */

static void *
sink_main(void *arg)
{
	struct exp_compressor *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && !c->q_head)
			pthread_cond_wait(&c->scv, &c->mu);
		if (!c->q_head)
			break;
		struct outbuf *b = c->q_head;
		c->q_head = b->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->q_busy = true;
		int failed = c->sink_failed;
		pthread_mutex_unlock(&c->mu);
		int r = failed ? failed : reg_ingest_write(c->in, b->p, b->len, &c->serr);
		pthread_mutex_lock(&c->mu);
		c->q_bytes -= b->len;
		c->q_busy = false;
		if (r < 0 && !c->sink_failed)
			c->sink_failed = r;
		if (b->pooled)
			out_put_locked(c, b->p);
		else
			free(b->p);
		free(b);
		pthread_cond_broadcast(&c->scv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Write compressed bytes: queued for the writer when it runs (taking `p`, a malloc'd
 * buffer, when `take`; one of the pool's when `pooled`), else at once. */
static int
out_write(struct exp_compressor *c, unsigned char *p, size_t len, bool take, bool pooled,
          struct kiln_err *err)
{
	if (!c->sink_running) {
		int r = reg_ingest_write(c->in, p, len, err);
		if (take)
			free(p);
		return r;
	}
	struct outbuf *b = kiln_xcalloc(1, sizeof(*b));
	if (take) {
		b->p = p;
		b->pooled = pooled;
	} else {
		b->p = kiln_xmalloc(len ? len : 1);
		memcpy(b->p, p, len);
	}
	b->len = len;
	pthread_mutex_lock(&c->mu);
	while (c->q_bytes > SINK_MAX && !c->sink_failed && !c->stop)
		pthread_cond_wait(&c->scv, &c->mu);
	int r = c->sink_failed;
	if (!r) {
		if (c->q_tail)
			c->q_tail->next = b;
		else
			c->q_head = b;
		c->q_tail = b;
		c->q_bytes += len;
		pthread_cond_broadcast(&c->scv);
	}
	pthread_mutex_unlock(&c->mu);
	if (r) {
		free(b->p);
		free(b);
	}
	return r;
}

/* Wait until the writer has written everything queued. */
static int
out_flush(struct exp_compressor *c)
{
	if (!c->sink_running)
		return 0;
	pthread_mutex_lock(&c->mu);
	while ((c->q_head || c->q_busy) && !c->sink_failed)
		pthread_cond_wait(&c->scv, &c->mu);
	int r = c->sink_failed;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* ---- zstd ---- */

static int
zstd_fail(size_t code, struct kiln_err *err)
{
	return kiln_err_set(err, EIO, "zstd: %s", ZSTD_getErrorName(code));
}

static int
zstd_run(struct exp_compressor *c, const void *p, size_t len, ZSTD_EndDirective mode,
         struct kiln_err *err)
{
	ZSTD_inBuffer in = {p, len, 0};
	for (;;) {
		if (!c->zout)
			c->zout = kiln_xmalloc(c->zout_size);
		ZSTD_outBuffer out = {c->zout, c->zout_size, 0};
		size_t left = ZSTD_compressStream2(c->zc, &out, &in, mode);
		if (ZSTD_isError(left))
			return zstd_fail(left, err);
		if (out.pos) {
			/* the writer takes the buffer; the next call gets a new one */
			int r = out_write(c, c->zout, out.pos, true, false, err);
			c->zout = NULL;
			if (r < 0)
				return r;
		}
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

/* ---- the pipeline ---- */

/* A chunk to fill: a used one when there is one (its 1 MiB buffer already faulted in:
 * a fresh malloc of that size is an mmap whose pages fault on first write). */
static struct chunk *
chunk_get(struct exp_compressor *c)
{
	struct chunk *j = c->pool;
	if (!j) {
		j = kiln_xcalloc(1, sizeof(*j));
		j->in = kiln_xmalloc(GZ_CHUNK);
		return j;
	}
	c->pool = (struct chunk *)(void *)j->out;
	j->in_len = 0;
	j->dict_len = 0;
	j->out = NULL;
	j->out_len = 0;
	j->crc = 0;
	j->result = 0;
	j->compressed = j->hashed = j->emitted = false;
	j->reused = j->added = j->out_pooled = false;
	return j;
}

/* Back to the pool (called by the main thread only). */
static void
chunk_put(struct exp_compressor *c, struct chunk *j)
{
	free(j->out);
	j->out = (unsigned char *)(void *)c->pool;
	c->pool = j;
}

static struct chunk *
slot(struct exp_compressor *c, uint64_t k)
{
	return c->ring[k % c->ring_size];
}

/* Write one chunk, in order: its compressed bytes (gzip), it through zstd, or it as it
 * is. Called by the emitter, or inline for a one-chunk layer. */
static int
emit(struct exp_compressor *c, struct chunk *j, struct kiln_err *err)
{
	switch (c->kind) {
	case EXP_COMPRESSION_GZIP:
		if (j->result != Z_OK)
			return kiln_err_set(err, j->result == Z_MEM_ERROR ? ENOMEM : EIO,
			                    "gzip: deflate failed (%d)", j->result);
		c->crc = crc32_combine(c->crc, j->crc, (z_off_t)j->in_len);
		if (j->reused)
			c->reused += (int64_t)j->in_len;
		c->cache_added += j->added;
		unsigned char *out = j->out;
		j->out = NULL;
		return out_write(c, out, j->out_len, true, j->out_pooled, err);
	case EXP_COMPRESSION_ZSTD:
		return zstd_run(c, j->in, j->in_len, ZSTD_e_continue, err);
	case EXP_COMPRESSION_NONE:
		break;
	}
	return out_write(c, j->in, j->in_len, false, false, err);
}

static void *
hasher_main(void *arg)
{
	struct exp_compressor *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && c->hash_next == c->produced)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		struct chunk *j = slot(c, c->hash_next);
		pthread_mutex_unlock(&c->mu);
		kiln_sha256_update(c->diff, j->in, j->in_len);
		pthread_mutex_lock(&c->mu);
		j->hashed = true;
		c->hash_next++;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void *
emitter_main(void *arg)
{
	struct exp_compressor *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && !c->failed &&
		       (c->emit_next == c->produced ||
		        (c->kind == EXP_COMPRESSION_GZIP && !slot(c, c->emit_next)->compressed)))
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop || c->failed)
			break;
		struct chunk *j = slot(c, c->emit_next);
		pthread_mutex_unlock(&c->mu);
		int r = emit(c, j, &c->perr);
		/* gzip output is written; zstd copied the input into its own buffers */
		free(j->out);
		j->out = NULL;
		pthread_mutex_lock(&c->mu);
		if (r < 0)
			c->failed = r;
		j->emitted = true;
		c->emit_next++;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void *
gz_worker(void *arg)
{
	struct exp_compressor *c = arg;
	struct gz_streams g;
	gz_streams_init(&g, c->level);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && c->compress_next == c->produced)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		struct chunk *j = slot(c, c->compress_next++);
		pthread_mutex_unlock(&c->mu);
		gz_compress(c, &g, j);
		pthread_mutex_lock(&c->mu);
		j->compressed = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	gz_streams_end(&g);
	return NULL;
}

static int
pipeline_start(struct exp_compressor *c, struct kiln_err *err)
{
	size_t workers = c->kind == EXP_COMPRESSION_GZIP ? exp_cpus() : 0;
	c->ring_size = workers * 2 + 4;
	c->ring = kiln_xcalloc(c->ring_size, sizeof(*c->ring));
	c->threads = kiln_xcalloc(workers + 2, sizeof(*c->threads));
	if (pthread_create(&c->sink, NULL, sink_main, c) != 0)
		return kiln_err_set(err, EAGAIN, "compression threads");
	c->sink_running = true;
	void *(*mains[2])(void *) = {hasher_main, emitter_main};
	for (size_t i = 0; i < workers + 2; i++) {
		if (pthread_create(&c->threads[i], NULL, i < 2 ? mains[i] : gz_worker, c) != 0) {
			if (i < 3) { /* a hasher, an emitter and, for gzip, one worker at least */
				c->nthreads = i;
				return kiln_err_set(err, EAGAIN, "compression threads");
			}
			break;
		}
		c->nthreads = i + 1;
	}
	return 0;
}

/* Hand `cur` to the pipeline, waiting for room in the ring. */
static int
submit(struct exp_compressor *c, struct kiln_err *err)
{
	struct chunk *j = c->cur;
	c->cur = NULL;
	if (c->kind == EXP_COMPRESSION_GZIP) {
		/* The next chunk's dictionary is this chunk's end (with what came before when it
		 * is shorter than a window). */
		memcpy(j->dict, c->tail, c->tail_len);
		j->dict_len = c->tail_len;
		if (j->in_len >= GZ_DICT) {
			memcpy(c->tail, j->in + j->in_len - GZ_DICT, GZ_DICT);
			c->tail_len = GZ_DICT;
		} else {
			size_t keep = c->tail_len + j->in_len > GZ_DICT ? GZ_DICT - j->in_len
			                                                : c->tail_len;
			memmove(c->tail, c->tail + c->tail_len - keep, keep);
			memcpy(c->tail + keep, j->in, j->in_len);
			c->tail_len = keep + j->in_len;
		}
	}
	if (!c->threads) {
		int r = pipeline_start(c, err);
		if (r < 0) {
			chunk_free(j);
			return r;
		}
	}
	pthread_mutex_lock(&c->mu);
	while (c->produced - c->freed == c->ring_size && !c->failed) {
		struct chunk *old = slot(c, c->freed);
		if (old->hashed && old->emitted) {
			chunk_put(c, old);
			c->ring[c->freed % c->ring_size] = NULL;
			c->freed++;
		} else {
			pthread_cond_wait(&c->cv, &c->mu);
		}
	}
	int r = c->failed;
	if (!r) {
		c->ring[c->produced % c->ring_size] = j;
		c->produced++;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	if (r) {
		chunk_free(j);
		return r;
	}
	return 0;
}

/* Wait for every submitted chunk to be hashed and emitted. */
static int
drain(struct exp_compressor *c)
{
	pthread_mutex_lock(&c->mu);
	while (!c->failed && (c->hash_next < c->produced || c->emit_next < c->produced))
		pthread_cond_wait(&c->cv, &c->mu);
	while (c->failed && c->hash_next < c->produced)
		pthread_cond_wait(&c->cv, &c->mu);
	int r = c->failed;
	pthread_mutex_unlock(&c->mu);
	return r;
}

static void
pipeline_stop(struct exp_compressor *c)
{
	if (c->threads) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		for (size_t i = 0; i < c->nthreads; i++)
			pthread_join(c->threads[i], NULL);
		free(c->threads);
		c->threads = NULL;
	}
	if (c->sink_running) {
		/* stop is set: the writer empties its queue (skipping writes once failed) */
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_broadcast(&c->scv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->sink, NULL);
		c->sink_running = false;
		while (c->q_head) { /* queued by an emitter that was still running */
			struct outbuf *b = c->q_head;
			c->q_head = b->next;
			free(b->p);
			free(b);
		}
		c->q_tail = NULL;
	}
	for (uint64_t k = c->freed; c->ring && k < c->produced; k++)
		chunk_free(slot(c, k));
	free(c->ring);
	c->ring = NULL;
	chunk_free(c->cur);
	c->cur = NULL;
}

static void
put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* A copy of the emitter's error for the caller. */
static int
failed_err(struct exp_compressor *c, int r, struct kiln_err *err)
{
	const struct kiln_err *e = c->perr.msg ? &c->perr : &c->serr;
	if (err && e->msg)
		kiln_err_set(err, e->code ? e->code : -r, "%s", e->msg);
	else
		kiln_err_set(err, -r, "write layer");
	return r;
}

/* ---- public (internal.h) ---- */

int
exp_compressor_new(enum exp_compression kind, int level, struct reg_ingest *in,
                   struct exp_compressor **ret, struct kiln_err *err)
{
	struct exp_compressor *c = kiln_xcalloc(1, sizeof(*c));
	c->kind = kind;
	c->level = exp_compression_level(kind, level);
	c->in = in;
	c->diff = kiln_sha256_new();
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->scv, NULL);
	if (kind == EXP_COMPRESSION_GZIP) {
		static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
		unsigned char h[10];
		memcpy(h, hdr, sizeof(h));
		h[8] = c->level == 9 ? 2 : c->level == 1 ? 4 : 0; /* XFL, as gzip sets it */
		c->crc = crc32(0L, Z_NULL, 0);
		int r = reg_ingest_write(in, h, sizeof(h), err);
		if (r < 0) {
			exp_compressor_free(c);
			return r;
		}
	} else if (kind == EXP_COMPRESSION_ZSTD) {
		c->zc = ZSTD_createCCtx();
		if (!c->zc) {
			exp_compressor_free(c);
			return kiln_err_set(err, ENOMEM, "zstd context");
		}
		size_t z = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, c->level);
		if (!ZSTD_isError(z))
			z = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1);
		if (!ZSTD_isError(z)) /* a libzstd without threads compresses in this one */
			(void)ZSTD_CCtx_setParameter(c->zc, ZSTD_c_nbWorkers, (int)exp_cpus());
		if (ZSTD_isError(z)) {
			int r = zstd_fail(z, err);
			exp_compressor_free(c);
			return r;
		}
		c->zout_size = ZSTD_CStreamOutSize();
	}
	*ret = c;
	return 0;
}

size_t
exp_compressor_space(struct exp_compressor *c, unsigned char **ret)
{
	if (!c->cur)
		c->cur = chunk_get(c);
	*ret = c->cur->in + c->cur->in_len;
	return GZ_CHUNK - c->cur->in_len;
}

int
exp_compressor_commit(struct exp_compressor *c, size_t len, struct kiln_err *err)
{
	if (c->failed)
		return failed_err(c, c->failed, err);
	c->total += (int64_t)len;
	c->cur->in_len += len;
	if (c->cur->in_len == GZ_CHUNK) {
		int r = submit(c, err);
		if (r < 0)
			return c->failed ? failed_err(c, r, err) : r;
	}
	return 0;
}

int
exp_compressor_write(struct exp_compressor *c, const void *data, size_t len, struct kiln_err *err)
{
	if (c->failed)
		return failed_err(c, c->failed, err);
	const unsigned char *p = data;
	while (len) {
		unsigned char *to;
		size_t n = exp_compressor_space(c, &to);
		if (n > len)
			n = len;
		memcpy(to, p, n);
		p += n;
		len -= n;
		int r = exp_compressor_commit(c, n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int
exp_compressor_finish(struct exp_compressor *c, char diff_id[KILN_DIGEST_HEX_LEN + 1],
                      struct kiln_err *err)
{
	int r = c->failed;
	if (r)
		return failed_err(c, r, err);
	struct chunk *j = c->cur;
	if (j && !j->in_len) {
		chunk_free(j);
		c->cur = j = NULL;
	}
	if (!c->threads) {
		/* A layer of one chunk (or none): no threads for it. */
		c->cur = NULL;
		if (j) {
			kiln_sha256_update(c->diff, j->in, j->in_len);
			if (c->kind == EXP_COMPRESSION_GZIP) {
				struct gz_streams g;
				gz_streams_init(&g, c->level);
				gz_compress(c, &g, j);
				gz_streams_end(&g);
			}
			r = emit(c, j, err);
			chunk_free(j);
		}
	} else {
		if (j)
			r = submit(c, err);
		if (r >= 0 && (r = drain(c)) < 0)
			return failed_err(c, r, err);
	}
	if (r < 0)
		return r;
	if (c->kind == EXP_COMPRESSION_GZIP) {
		/* A final empty fixed-Huffman block, then crc32 and the length mod 2^32. */
		unsigned char end[10] = {0x03, 0x00};
		put_le32(end + 2, (uint32_t)c->crc);
		put_le32(end + 6, (uint32_t)c->total);
		r = out_write(c, end, sizeof(end), false, false, err);
	} else if (c->kind == EXP_COMPRESSION_ZSTD) {
		r = zstd_run(c, NULL, 0, ZSTD_e_end, err);
	}
	if (r >= 0 && (r = out_flush(c)) < 0)
		return failed_err(c, r, err);
	if (r < 0)
		return r;
	struct kiln_digest d;
	kiln_sha256_final(c->diff, &d);
	c->diff = NULL;
	kiln_digest_format(&d, diff_id);
	return 0;
}

int64_t
exp_compressor_tar_size(const struct exp_compressor *c)
{
	return c->total;
}

int
exp_compressor_cut(struct exp_compressor *c, bool fresh, struct kiln_err *err)
{
	if (c->kind != EXP_COMPRESSION_GZIP)
		return 0;
	if (c->failed)
		return failed_err(c, c->failed, err);
	if (c->cur && c->cur->in_len) {
		int r = submit(c, err);
		if (r < 0)
			return c->failed ? failed_err(c, r, err) : r;
	}
	if (fresh)
		c->tail_len = 0; /* the next chunk's dictionary */
	return 0;
}

int
exp_compressor_set_cache(struct exp_compressor *c, const char *dir, bool lookup,
                         struct kiln_err *err)
{
	if (c->kind != EXP_COMPRESSION_GZIP || c->level == 0)
		return 0;
	int r = exp_mkdir_p(dir, err);
	if (r < 0)
		return r;
	free(c->cache_dir);
	c->cache_dir = kiln_xstrdup(dir);
	c->cache_lookup = lookup;
	return 0;
}

int64_t
exp_compressor_reused(const struct exp_compressor *c)
{
	return c->reused;
}

size_t
exp_compressor_cache_added(const struct exp_compressor *c)
{
	return c->cache_added;
}

void
exp_compressor_free(struct exp_compressor *c)
{
	if (!c)
		return;
	pipeline_stop(c);
	while (c->pool) {
		struct chunk *j = c->pool;
		c->pool = (struct chunk *)(void *)j->out;
		j->out = NULL;
		chunk_free(j);
	}
	kiln_err_release(&c->perr);
	kiln_err_release(&c->serr);
	free(c->cache_dir);
	while (c->outpool) {
		unsigned char *p = c->outpool;
		memcpy(&c->outpool, p, sizeof(p));
		free(p);
	}
	pthread_cond_destroy(&c->scv);
	ZSTD_freeCCtx(c->zc);
	free(c->zout);
	kiln_sha256_free(c->diff);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
