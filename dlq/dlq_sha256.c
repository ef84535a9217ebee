/* dlq_sha256.c — see dlq_sha256.h. */
#include "dlq/dlq_sha256.h"

#include <openssl/evp.h>
#include <stdlib.h>

#include "runtime/err.h"

struct dlq_sha256 {
    EVP_MD_CTX *ctx;
};

dlq_sha256 *dlq_sha256_new(void)
{
    dlq_sha256 *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx || dlq_sha256_reset(s) != 0) {
        dlq_sha256_free(s);
        return NULL;
    }
    return s;
}

void dlq_sha256_free(dlq_sha256 *s)
{
    if (!s) return;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

int dlq_sha256_reset(dlq_sha256 *s)
{
    return EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) == 1 ? 0 : SW_EIO;
}

int dlq_sha256_update(dlq_sha256 *s, const void *p, size_t n)
{
    if (n == 0) return 0;
    return EVP_DigestUpdate(s->ctx, p, n) == 1 ? 0 : SW_EIO;
}

int dlq_sha256_final(dlq_sha256 *s, uint8_t out[DLQ_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != DLQ_SHA256_LEN) return SW_EIO;
    return 0;
}

int dlq_sha256_copy(dlq_sha256 *dst, const dlq_sha256 *src)
{
    return EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) == 1 ? 0 : SW_EIO;
}

int dlq_sha256_2(const void *a, size_t an, const void *b, size_t bn,
                 uint8_t out[DLQ_SHA256_LEN])
{
    int rc = SW_ENOMEM;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) goto out;
    rc = SW_EIO;
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) goto out;
    if (an && EVP_DigestUpdate(c, a, an) != 1) goto out;
    if (bn && EVP_DigestUpdate(c, b, bn) != 1) goto out;
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(c, out, &n) != 1 || n != DLQ_SHA256_LEN) goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    return rc;
}
