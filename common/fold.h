/*
 * fold.h - Unicode case for the matcher, with utf8proc.
 *
 * Owns: lowering the non-ASCII characters of a term or a path into a
 * caller's buffer, with a map from the folded bytes back to the original
 * ones; the smart-case question "has this text an upper-case letter?".
 * Never touches: ASCII case (match_lower folds it byte by byte, and the
 * bonus model needs a path's ASCII humps intact), scoring, allocation.
 *
 * The matcher compares bytes. A term like "ä" is made to match "Ä" by
 * scoring it against the path with its non-ASCII characters lowered too,
 * then mapping the matched positions back: positions stay byte offsets
 * into the path as it is. Bytes that are not valid UTF-8 pass through as
 * they are, so a name in Latin-1 still matches bytewise. Only paths with
 * a byte >= 0x80 are folded, and only for terms that need it: ASCII pays
 * nothing.
 */
#ifndef FIDX_FOLD_H
#define FIDX_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if s has a byte >= 0x80. */
bool fold_has_high(const char *s, size_t n);

/*
 * True if s has an upper-case letter: ASCII A-Z, or a valid UTF-8
 * character utf8proc calls upper case (Ä, Д, Σ). Smart case asks this.
 */
bool fold_has_upper(const char *s, size_t n);

/*
 * True if the character at s (n > 0 bytes left) is upper case, as
 * fold_has_upper() asks; its length in bytes goes to *len (1 for a byte
 * that is not UTF-8).
 */
bool fold_upper_at(const char *s, size_t n, size_t *len);

/*
 * Writes s (n bytes) into out (cap bytes) with every valid non-ASCII
 * character lowered (utf8proc_tolower); ASCII and invalid bytes are
 * copied as they are. With map (cap + 1 entries), map[k] is the offset in
 * s of the character out[k] belongs to, and map[length] = n. Returns the
 * folded length, or SIZE_MAX if it would pass cap (a lowered character
 * may take one byte more than its upper case).
 */
size_t fold_lower(const char *s, size_t n, char *out, size_t cap,
    uint32_t *map);

/*
 * The offset in s of the character folded byte k came from, and (in
 * *end) one past its last byte: a position in the folded text names the
 * whole character in the original.
 */
static inline uint32_t
fold_source(const uint32_t *map, size_t k, uint32_t *end)
{
	size_t e = k + 1;

	while (map[e] == map[k])
		e++;
	*end = map[e];
	return map[k];
}

#endif
