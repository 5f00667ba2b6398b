/*
 * size.h - the one syntax of numbers on fidx's and fidxd's command lines.
 *
 * Owns: parsing a count or byte size with an optional K, M or G suffix.
 * Never touches: messages (callers name the flag), anything else.
 *
 * A number is decimal digits, then at most one suffix: K, M or G (or k,
 * m, g), multiples of 1024, 1024^2 and 1024^3, so "64K" is 65536 and
 * "1M" files is 1,048,576 files. No sign, spaces, fraction or hex.
 */
#ifndef FIDX_SIZE_H
#define FIDX_SIZE_H

/*
 * Parses s into *out when it is in [min, max]. -1 with errno EINVAL for
 * a malformed number, ERANGE for one out of range (or of 64 bits).
 */
int size_parse(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out);

#endif
