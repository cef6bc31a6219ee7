/* Fuzz target: the trace event decoder (broker/trace/trace_event.c), which reads
 * the store back for tfctl trace. Promise checked: whatever it accepts
 * encodes back to exactly the same bytes, so one event has one encoding
 * and its chain hash cannot be argued about. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "broker/trace/trace_event.h"

const char tf_fuzz_target[] = "event";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *scratch = malloc(size + 1), *again;
	struct tf_event ev;
	struct tf_err err;
	size_t len;

	FUZZ_CHECK(scratch != NULL);
	if (tf_event_decode((const char *)data, size, &ev, scratch, size + 1, &err) == TF_OK) {
		len = tf_event_encode(&ev, NULL, 0);
		FUZZ_CHECK(len == size);
		again = malloc(len);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(tf_event_encode(&ev, again, len) == len);
		FUZZ_CHECK(memcmp(again, data, len) == 0);
		free(again);
	}
	free(scratch);
	return 0;
}
