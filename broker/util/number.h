/* Bounded number parsing for command lines and options: all or nothing,
 * never atoi. */
#ifndef TF_NUMBER_H
#define TF_NUMBER_H

#include <stdbool.h>

/* True, with *out set, when text is a decimal integer in [min, max] and
 * nothing else; false (and *out untouched) otherwise. */
bool tf_parse_long(const char *text, long min, long max, long *out);

#endif
