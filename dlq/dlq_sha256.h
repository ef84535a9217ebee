/* dlq_sha256.h — SHA-256 over OpenSSL EVP, for the DLQ's segment and record
 * hashes.
 *
 * A dlq_sha256 is a streaming context owned by one thread at a time; the
 * one-shot helper allocates nothing it does not free. Only the DLQ uses it
 * today; if another component needs SHA-256 this moves to runtime/.
 */
#ifndef SW_DLQ_SHA256_H
#define SW_DLQ_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DLQ_SHA256_LEN 32

typedef struct dlq_sha256 dlq_sha256;

/* Returns an owned context, already initialised, or NULL. */
dlq_sha256 *dlq_sha256_new(void);
void dlq_sha256_free(dlq_sha256 *s);
/* Starts a new digest. 0 or SW_EIO. */
int dlq_sha256_reset(dlq_sha256 *s);
int dlq_sha256_update(dlq_sha256 *s, const void *p, size_t n);
/* Writes the digest and leaves the context needing a reset. 0 or SW_EIO. */
int dlq_sha256_final(dlq_sha256 *s, uint8_t out[DLQ_SHA256_LEN]);
/* Copies the running state of src into dst (both owned by the caller). */
int dlq_sha256_copy(dlq_sha256 *dst, const dlq_sha256 *src);
/* One shot over two pieces (b may be NULL with bn 0). 0 or SW_E*. */
int dlq_sha256_2(const void *a, size_t an, const void *b, size_t bn,
                 uint8_t out[DLQ_SHA256_LEN]);

#endif
