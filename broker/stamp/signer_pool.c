#include "broker/stamp/signer_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "broker/util/background.h"

/* Nonces a worker makes between two visits to the lock: few enough that
 * the first ones reach an empty pool soon, many enough that the lock is
 * rarely contended. */
#define BATCH 64

struct nonce {
	unsigned char r[32];   /* secret: the nonce, reduced mod L */
	unsigned char R[32];   /* r·B, encoded */
};

/* The secret material, first in the locked region. */
struct secrets {
	unsigned char a[32];       /* the clamped secret scalar, reduced mod L */
	unsigned char prefix[32];  /* the second half of SHA-512(seed) */
	unsigned char A[32];       /* the public key */
};

struct worker {
	struct tf_signer_pool *pool;
	struct nonce *batch;       /* BATCH nonces in the locked region */
	pthread_t thread;
};

struct tf_signer_pool {
	/* One region, locked where the system allows: the secrets, the ring
	 * of size nonces, and each worker's batch. */
	unsigned char *region;
	size_t region_len;
	struct secrets *sec;
	struct nonce *ring;
	uint32_t size;
	uint32_t low_water;        /* workers wake when the level drops below it */
	unsigned n_workers;
	unsigned running;          /* workers started in this process */
	struct worker workers[TF_POOL_MAX_WORKERS];
	uint64_t generation;       /* forks_seen when the pool was filled */

	pthread_mutex_t lock;
	pthread_cond_t wake;       /* workers wait for room */
	uint32_t head;             /* under lock: the next nonce to take */
	uint32_t level;            /* under lock: nonces in the ring */
	uint32_t reserved;         /* under lock: nonces workers are making */
	bool filling;              /* under lock: workers are to fill up */
	bool stopping;             /* under lock */
	bool locked;
	uint64_t signatures, empty, restarts;   /* under lock */
};

/* Never repeats in the process, across pools; a forked child continues
 * from the parent's value, which is why the pid goes into each nonce. */
static _Atomic uint64_t nonce_counter;

/* Fork children this process descends from: a pool filled at another
 * count was filled by another process. Counted by a pthread_atfork
 * handler, since getpid() is a system call that would cost a stamp about
 * a microsecond. (glibc drops the handler when the plugin is unloaded.) */
static _Atomic uint64_t forks_seen;
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
	atomic_fetch_add(&forks_seen, 1);
}

static void watch_forks(void)
{
	(void)pthread_atfork(NULL, NULL, count_fork);
}

/* r and R from fresh random bytes, the prefix, the counter and the pid.
 * Returns false for the one r in 2^252 that is zero. */
static bool make_nonce(const struct secrets *sec, struct nonce *out)
{
	unsigned char fresh[32], h[64], ctr[8];
	uint64_t c = atomic_fetch_add(&nonce_counter, 1);
	uint32_t pid = (uint32_t)getpid();
	crypto_hash_sha512_state st;
	bool ok;

	/* Should the generator be weak, the prefix (secret) and the counter
	 * (unique) still make r unique and unpredictable: the hedge.
	 * libsodium's generator, not OpenSSL's: it has no state that an exit
	 * handler tears down under a worker still running. */
	randombytes_buf(fresh, sizeof(fresh));
	for (int i = 0; i < 8; i++)
		ctr[i] = (unsigned char)(c >> (8 * i));
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, sec->prefix, sizeof(sec->prefix));
	crypto_hash_sha512_update(&st, fresh, sizeof(fresh));
	crypto_hash_sha512_update(&st, ctr, sizeof(ctr));
	crypto_hash_sha512_update(&st, (const unsigned char *)&pid, sizeof(pid));
	crypto_hash_sha512_final(&st, h);
	/* All 64 bytes reduced: uniform mod L (a clamped scalar is not). */
	crypto_core_ed25519_scalar_reduce(out->r, h);
	ok = crypto_scalarmult_ed25519_base_noclamp(out->R, out->r) == 0;
	sodium_memzero(h, sizeof(h));
	sodium_memzero(fresh, sizeof(fresh));
	sodium_memzero(&st, sizeof(st));
	return ok;
}

/* Under lock: how many nonces a worker may make now (0: none). */
static uint32_t room_for_batch(const struct tf_signer_pool *p)
{
	uint32_t room = p->size - p->level - p->reserved;

	if (!p->filling || room == 0)
		return 0;
	return room < BATCH ? room : BATCH;
}

/* Under lock: appends n nonces from batch to the ring. */
static void put_batch(struct tf_signer_pool *p, const struct nonce *batch, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p->ring[(p->head + p->level + i) % p->size] = batch[i];
	p->level += n;
	if (p->level + p->reserved >= p->size)
		p->filling = false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tf_signer_pool *p = w->pool;

	tf_background_thread("tf-sign");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		uint32_t n, made = 0;

		while (!p->stopping && room_for_batch(p) == 0)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stopping)
			break;
		n = room_for_batch(p);
		p->reserved += n;
		pthread_mutex_unlock(&p->lock);
		for (uint32_t i = 0; i < n; i++)
			if (make_nonce(p->sec, &w->batch[made]))
				made++;
		pthread_mutex_lock(&p->lock);
		p->reserved -= n;
		put_batch(p, w->batch, made);
		sodium_memzero(w->batch, sizeof(*w->batch) * n);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Starts the workers in this process; p->running says how many started. */
static int start_workers(struct tf_signer_pool *p, struct tf_err *err)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->generation = atomic_load(&forks_seen);
	p->head = p->level = p->reserved = 0;
	p->filling = true;
	p->stopping = false;
	for (p->running = 0; p->running < p->n_workers; p->running++) {
		struct worker *w = &p->workers[p->running];

		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			break;
	}
	if (p->running == 0 && p->n_workers > 0)
		return tf_err_set(err, TF_ERR_IO, "cannot start a signing pool worker thread");
	return TF_OK;
}

static void stop_workers(struct tf_signer_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->running; i++)
		pthread_join(p->workers[i].thread, NULL);
	p->running = 0;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
}

/* In a forked child: the workers did not come along (threads do not
 * survive fork) and the nonces are the parent's, which may use them too.
 * Wipe them all and start afresh. The lock may have been held by a thread
 * of the parent at the fork, so it is made anew rather than taken.
 *
 * mosquitto 2.0.11's `mosquitto -d` forks (mosquitto__daemonise in
 * src/mosquitto.c) before it initialises plugins, so the pool is started in
 * the daemon itself and this runs only when something forks later. */
static void restart_in_child(struct tf_signer_pool *p)
{
	struct tf_err ignored;

	sodium_memzero(p->ring, sizeof(*p->ring) * p->size);
	for (unsigned i = 0; i < p->n_workers; i++)
		sodium_memzero(p->workers[i].batch, sizeof(struct nonce) * BATCH);
	/* Memory locks are not inherited across fork. */
	p->locked = sodium_mlock(p->region, p->region_len) == 0;
	p->running = 0;
	p->restarts++;
	/* With no worker the pool stays empty: every signature is then an
	 * ordinary one, which is slower but safe. */
	(void)start_workers(p, &ignored);
}

/* Under lock: takes the oldest nonce into *out and wipes its slot.
 * Returns false when the pool is empty. */
static bool take(struct tf_signer_pool *p, struct nonce *out)
{
	if (p->level == 0) {
		p->empty++;
		return false;
	}
	*out = p->ring[p->head];
	sodium_memzero(&p->ring[p->head], sizeof(p->ring[p->head]));
	p->head = (p->head + 1) % p->size;
	p->level--;
	p->signatures++;
	if (!p->filling && p->level < p->low_water) {
		p->filling = true;
		pthread_cond_broadcast(&p->wake);
	}
	return true;
}

bool tf_signer_pool_sign(struct tf_signer_pool *p, const void *data, size_t len,
		unsigned char sig[64])
{
	unsigned char k64[64], k[32], ka[32];
	crypto_hash_sha512_state st;
	struct nonce n;
	bool got;

	if (p->generation != atomic_load_explicit(&forks_seen, memory_order_relaxed))
		restart_in_child(p);
	pthread_mutex_lock(&p->lock);
	got = take(p, &n);
	pthread_mutex_unlock(&p->lock);
	if (!got)
		return false;
	/* k = SHA-512(R || A || M) mod L; S = r + k·a mod L. */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, n.R, sizeof(n.R));
	crypto_hash_sha512_update(&st, p->sec->A, sizeof(p->sec->A));
	crypto_hash_sha512_update(&st, data, len);
	crypto_hash_sha512_final(&st, k64);
	crypto_core_ed25519_scalar_reduce(k, k64);
	crypto_core_ed25519_scalar_mul(ka, k, p->sec->a);
	memcpy(sig, n.R, 32);
	crypto_core_ed25519_scalar_add(sig + 32, n.r, ka);
	/* k·a with k (public) gives a away: wiped like r. */
	sodium_memzero(ka, sizeof(ka));
	sodium_memzero(&n, sizeof(n));
	return true;
}

void tf_signer_pool_stats(struct tf_signer_pool *p, struct tf_signer_pool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = (struct tf_signer_pool_stats){ p->running, p->size, p->level, p->signatures,
		p->empty, p->restarts, p->locked };
	pthread_mutex_unlock(&p->lock);
}

/* Fills p->sec from the seed (RFC 8032, 5.1.5) and checks a·B == pub. */
static bool derive_secrets(struct tf_signer_pool *p, const unsigned char seed[32],
		const unsigned char pub[32])
{
	unsigned char h[64], wide[64] = { 0 }, check[32];
	bool ok;

	crypto_hash_sha512(h, seed, 32);
	h[0] &= 248;
	h[31] &= 127;
	h[31] |= 64;
	/* scalar_mul wants a reduced a; a mod L gives the same signatures. */
	memcpy(wide, h, 32);
	crypto_core_ed25519_scalar_reduce(p->sec->a, wide);
	memcpy(p->sec->prefix, h + 32, 32);
	memcpy(p->sec->A, pub, 32);
	ok = crypto_scalarmult_ed25519_base_noclamp(check, p->sec->a) == 0
		&& sodium_memcmp(check, pub, 32) == 0;
	sodium_memzero(h, sizeof(h));
	sodium_memzero(wide, sizeof(wide));
	return ok;
}

/* The locked region, or NULL. */
static int alloc_region(struct tf_signer_pool *p, struct tf_err *err)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = sizeof(struct secrets) + sizeof(struct nonce)
		* ((size_t)p->size + (size_t)p->n_workers * BATCH);
	void *mem;

	len = (len + page - 1) / page * page;
	if (posix_memalign(&mem, page, len) != 0)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory for the signing pool");
	memset(mem, 0, len);
	p->region = mem;
	p->region_len = len;
	p->sec = mem;
	/* struct nonce is 64 bytes, struct secrets 96: nonces stay aligned
	 * enough for byte arrays. */
	p->ring = (struct nonce *)(void *)(p->region + sizeof(struct secrets));
	for (unsigned i = 0; i < p->n_workers; i++)
		p->workers[i] = (struct worker){ p, p->ring + p->size + (size_t)i * BATCH, 0 };
	p->locked = sodium_mlock(p->region, p->region_len) == 0;
	return TF_OK;
}

static void free_region(struct tf_signer_pool *p)
{
	if (p->region == NULL)
		return;
	/* Wipes, then unlocks (even where locking had failed). */
	sodium_munlock(p->region, p->region_len);
	free(p->region);
}

int tf_signer_pool_start(const unsigned char seed[32], const unsigned char pub[32],
		unsigned workers, uint32_t size, struct tf_signer_pool **out, struct tf_err *err)
{
	struct tf_signer_pool *p;
	int rc;

	*out = NULL;
	if (workers > TF_POOL_MAX_WORKERS)
		return tf_err_set(err, TF_ERR_INVALID, "signing pool: %u workers (0 to %d)", workers,
			TF_POOL_MAX_WORKERS);
	if (size < TF_POOL_MIN_SIZE || size > TF_POOL_MAX_SIZE)
		return tf_err_set(err, TF_ERR_INVALID, "signing pool: size %u (%d to %u)", size,
			TF_POOL_MIN_SIZE, TF_POOL_MAX_SIZE);
	if (sodium_init() < 0)
		return tf_err_set(err, TF_ERR_INVALID, "signing pool: libsodium cannot start");
	pthread_once(&fork_watch, watch_forks);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory for the signing pool");
	p->size = size;
	/* Refill once half is used, then up to full: the workers do not take
	 * a core from the first half of a burst (measured on two cores, a
	 * burst of 20,000 went from 0.54 to 0.64 of plain mosquitto against
	 * refilling once a sixteenth was used), and idle workers are not
	 * woken for every signature. */
	p->low_water = size / 2;
	p->n_workers = workers;
	rc = alloc_region(p, err);
	if (rc == TF_OK && !derive_secrets(p, seed, pub))
		rc = tf_err_set(err, TF_ERR_INVALID, "signing pool: the private key does not give "
			"its public key");
	if (rc == TF_OK && (rc = start_workers(p, err)) != TF_OK)
		stop_workers(p);
	if (rc != TF_OK) {
		free_region(p);
		free(p);
		return rc;
	}
	*out = p;
	return TF_OK;
}

void tf_signer_pool_stop(struct tf_signer_pool *p)
{
	if (p == NULL)
		return;
	/* In a forked child whose pool was never restarted, the threads are
	 * the parent's: there is nothing to join. */
	if (p->generation == atomic_load(&forks_seen))
		stop_workers(p);
	free_region(p);
	free(p);
}
