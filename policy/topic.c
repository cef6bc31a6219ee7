#include "policy/topic.h"

#include <string.h>

/* Length of the level starting at s (up to '/' or the end). */
static size_t level_len(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash ? (size_t)(slash - s) : strlen(s);
}

static bool check(const char *t, bool wildcards, const char **why)
{
	size_t len = strlen(t);
	unsigned levels = 1;

	if (len == 0) {
		*why = "must not be empty";
		return false;
	}
	if (len > TF_TOPIC_MAX_LEN) {
		*why = "longer than 1024 bytes";
		return false;
	}
	if (t[0] == '$') {
		*why = "topics starting with $ are reserved for the broker";
		return false;
	}
	/* MQTT advises against control characters in topics; refusing them
	 * here also keeps the subscribe decision's witness level (\x01,
	 * policy/decide.c) a level that no policy names. */
	for (const char *p = t; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*why = "must not contain control characters";
			return false;
		}
	}
	for (const char *p = t;; p += level_len(p) + 1) {
		size_t n = level_len(p);

		if (memchr(p, '+', n) || memchr(p, '#', n)) {
			if (!wildcards) {
				*why = "must not contain the wildcards + or #";
				return false;
			}
			if (n != 1) {
				*why = "+ and # must stand alone in a level";
				return false;
			}
			if (p[0] == '#' && p[1] != '\0') {
				*why = "# must be the last level";
				return false;
			}
		}
		if (p[n] == '\0')
			break;
		if (++levels > TF_TOPIC_MAX_LEVELS) {
			*why = "more than 64 levels";
			return false;
		}
	}
	return true;
}

bool tf_topic_filter_valid(const char *filter, const char **why)
{
	return check(filter, true, why);
}

bool tf_topic_name_valid(const char *topic, const char **why)
{
	if (!check(topic, false, why))
		return false;
	if (topic[strlen(topic) - 1] == '/') {
		*why = "must not end with /";
		return false;
	}
	return true;
}

bool tf_topic_matches(const char *filter, const char *topic)
{
	/* MQTT 4.7.2: a leading wildcard does not match a $ topic. */
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		size_t fn = level_len(filter), tn = level_len(topic);

		if (fn == 1 && filter[0] == '#')
			return true;
		if (!(fn == 1 && filter[0] == '+') && (fn != tn || memcmp(filter, topic, fn) != 0))
			return false;
		filter += fn;
		topic += tn;
		if (*filter == '\0' || *topic == '\0')
			break;
		filter++;
		topic++;
	}
	if (*filter == '\0' && *topic == '\0')
		return true;
	/* "a/#" matches "a": the topic ended where the filter goes on with #. */
	return *topic == '\0' && strcmp(filter, "/#") == 0;
}

bool tf_filters_overlap(const char *a, const char *b)
{
	for (;;) {
		size_t an = level_len(a), bn = level_len(b);
		bool a_plus = an == 1 && a[0] == '+', b_plus = bn == 1 && b[0] == '+';

		if ((an == 1 && a[0] == '#') || (bn == 1 && b[0] == '#'))
			return true;
		if (!a_plus && !b_plus && (an != bn || memcmp(a, b, an) != 0))
			return false;
		a += an;
		b += bn;
		if (*a == '\0' || *b == '\0')
			break;
		a++;
		b++;
	}
	if (*a == '\0' && *b == '\0')
		return true;
	return strcmp(*a ? a : b, "/#") == 0;
}
