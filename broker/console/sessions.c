#include "config.h"

#include "broker/console/sessions.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

struct tf_console_session {
	char id[TF_CONSOLE_TOKEN_HEX + 1];
	char csrf[TF_CONSOLE_TOKEN_HEX + 1];
	char key[TF_CONSOLE_TOKEN_HEX + 1];   /* "" when found by id */
	char *user;
	void *link;
	int64_t last_used_ms;
	unsigned refs;      /* the table's (while live) and the requests' */
	bool live;          /* in the table */
};

struct tf_console_sessions {
	pthread_mutex_t lock;
	struct tf_console_session **slots;   /* max of them; NULL: free */
	unsigned max;
	int64_t idle_ms;
	void (*destroy)(void *link);
};

bool tf_console_random_token(char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char bytes[TF_CONSOLE_TOKEN_HEX / 2];

	if (RAND_bytes(bytes, (int)sizeof(bytes)) != 1)
		return false;
	for (size_t i = 0; i < sizeof(bytes); i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 15];
	}
	hex[TF_CONSOLE_TOKEN_HEX] = '\0';
	OPENSSL_cleanse(bytes, sizeof(bytes));
	return true;
}

/* Whether token is the hex token want, in time that does not depend on
 * where they differ. */
static bool token_equal(const char *want, const char *token)
{
	return token != NULL && strlen(token) == TF_CONSOLE_TOKEN_HEX && want[0] != '\0'
		&& CRYPTO_memcmp(want, token, TF_CONSOLE_TOKEN_HEX) == 0;
}

struct tf_console_sessions *tf_console_sessions_new(unsigned max, int64_t idle_ms,
		void (*destroy)(void *link))
{
	struct tf_console_sessions *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->slots = calloc(max ? max : 1, sizeof(*t->slots));
	if (t->slots == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->slots);
		free(t);
		return NULL;
	}
	t->max = max;
	t->idle_ms = idle_ms;
	t->destroy = destroy;
	return t;
}

static void session_free(struct tf_console_sessions *t, struct tf_console_session *s)
{
	if (s->link != NULL)
		t->destroy(s->link);
	OPENSSL_cleanse(s->id, sizeof(s->id));
	OPENSSL_cleanse(s->csrf, sizeof(s->csrf));
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s->user);
	free(s);
}

/* Takes slot i's session out of the table (lock held). Returns it when
 * that was its last reference: the caller frees it, outside the lock. */
static struct tf_console_session *unslot(struct tf_console_sessions *t, unsigned i)
{
	struct tf_console_session *s = t->slots[i];

	t->slots[i] = NULL;
	s->live = false;
	return --s->refs == 0 ? s : NULL;
}

/* Unslots the idle sessions (lock held) into gone[] (room for t->max);
 * returns how many there are to free. */
static unsigned unslot_idle(struct tf_console_sessions *t, int64_t now_ms,
		struct tf_console_session **gone)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t->max; i++) {
		struct tf_console_session *s = t->slots[i], *dead;

		if (s != NULL && now_ms - s->last_used_ms > t->idle_ms
				&& (dead = unslot(t, i)) != NULL)
			gone[n++] = dead;
	}
	return n;
}

static void free_all(struct tf_console_sessions *t, struct tf_console_session **gone, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		session_free(t, gone[i]);
}

void tf_console_sessions_expire(struct tf_console_sessions *t, int64_t now_ms)
{
	struct tf_console_session **gone = calloc(t->max ? t->max : 1, sizeof(*gone));
	unsigned n;

	if (gone == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	n = unslot_idle(t, now_ms, gone);
	pthread_mutex_unlock(&t->lock);
	free_all(t, gone, n);
	free(gone);
}

enum tf_console_sessions_rc tf_console_sessions_add(struct tf_console_sessions *t,
		const char *username, const char *key, void *link, int64_t now_ms,
		struct tf_console_session **out)
{
	struct tf_console_session *s = calloc(1, sizeof(*s));
	unsigned free_slot = t->max;

	*out = NULL;
	if (s == NULL || (s->user = strdup(username)) == NULL || !tf_console_random_token(s->id)
			|| !tf_console_random_token(s->csrf)
			|| (key != NULL && strlen(key) != TF_CONSOLE_TOKEN_HEX)) {
		if (s != NULL) {
			free(s->user);
			free(s);
		}
		return TF_CONSOLE_SESSIONS_NOMEM;
	}
	if (key != NULL)
		memcpy(s->key, key, TF_CONSOLE_TOKEN_HEX + 1);
	s->last_used_ms = now_ms;
	s->refs = 2;        /* the table's and the caller's */
	s->live = true;
	tf_console_sessions_expire(t, now_ms);
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->max && free_slot == t->max; i++)
		if (t->slots[i] == NULL)
			free_slot = i;
	if (free_slot == t->max) {
		pthread_mutex_unlock(&t->lock);
		free(s->user);
		free(s);
		return TF_CONSOLE_SESSIONS_FULL;
	}
	s->link = link;
	t->slots[free_slot] = s;
	pthread_mutex_unlock(&t->lock);
	*out = s;
	return TF_CONSOLE_SESSIONS_OK;
}

struct tf_console_session *tf_console_sessions_find(struct tf_console_sessions *t,
		const char *token, bool by_key, int64_t now_ms)
{
	struct tf_console_session *found = NULL, *dead = NULL;

	if (token == NULL || strlen(token) != TF_CONSOLE_TOKEN_HEX)
		return NULL;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->max; i++) {
		struct tf_console_session *s = t->slots[i];

		if (s == NULL || !token_equal(by_key ? s->key : s->id, token))
			continue;
		if (now_ms - s->last_used_ms > t->idle_ms) {
			dead = unslot(t, i);
		} else {
			s->last_used_ms = now_ms;
			s->refs++;
			found = s;
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
	if (dead != NULL)
		session_free(t, dead);
	return found;
}

void tf_console_sessions_release(struct tf_console_sessions *t, struct tf_console_session *s)
{
	bool last;

	if (s == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (last)
		session_free(t, s);
}

void tf_console_sessions_end(struct tf_console_sessions *t, struct tf_console_session *s)
{
	struct tf_console_session *dead = NULL;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->max; i++)
		if (t->slots[i] == s) {
			dead = unslot(t, i);
			break;
		}
	pthread_mutex_unlock(&t->lock);
	/* The caller holds a reference: dead is NULL unless it broke that. */
	if (dead != NULL)
		session_free(t, dead);
}

unsigned tf_console_sessions_count(struct tf_console_sessions *t)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->max; i++)
		n += t->slots[i] != NULL;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void tf_console_sessions_free(struct tf_console_sessions *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->max; i++) {
		struct tf_console_session *s = t->slots[i];

		if (s != NULL && (s = unslot(t, i)) != NULL)
			session_free(t, s);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->slots);
	free(t);
}

const char *tf_console_session_id(const struct tf_console_session *s)
{
	return s->id;
}

const char *tf_console_session_csrf(const struct tf_console_session *s)
{
	return s->csrf;
}

const char *tf_console_session_user(const struct tf_console_session *s)
{
	return s->user;
}

void *tf_console_session_link(const struct tf_console_session *s)
{
	return s->link;
}

bool tf_console_session_csrf_ok(const struct tf_console_session *s, const char *token)
{
	return token_equal(s->csrf, token);
}
