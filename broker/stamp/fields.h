/* The field encoding of trustflow's signed and hashed records: a header
 * line, then for each field its name, `:`, the decimal byte length of its
 * value, `:`, the value and a newline. Stamps (provenance-v1) and trace
 * checkpoints (operations-v1) are signed over it; anyone can rebuild it
 * from the published fields in any language. */
#ifndef TF_FIELDS_H
#define TF_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/* Encodes header (which ends in its own newline) and the n fields into
 * buf of cap bytes. Returns the length the encoding needs: when that is
 * more than cap, nothing useful was written (buf may be NULL then). */
size_t tf_fields_encode(const char *header, const char *const *names,
		const char *const *values, size_t n, char *buf, size_t cap);

/* Writes v in decimal at p, which has room for 20 digits, without a NUL;
 * returns the number of digits. */
size_t tf_put_decimal(char *p, uint64_t v);

#endif
