/* err.h — project error codes.
 *
 * Functions that can fail return 0 on success and one of these (negative)
 * otherwise; sw_strerror() names them. errno is logged where a syscall failed,
 * never returned.
 */
#ifndef SW_ERR_H
#define SW_ERR_H

enum {
    SW_OK = 0,
    SW_ENOMEM = -1,      /* allocation failed */
    SW_ETOOBIG = -2,     /* a size cap was hit (body, decompressed, buffer) */
    SW_EINVAL = -3,      /* invalid argument or value */
    SW_EDECODE = -4,     /* malformed input (protobuf, JSON, compressed data) */
    SW_EIO = -5,         /* I/O or syscall failure (see log for errno) */
    SW_EFULL = -6,       /* queue or store full: try again later */
    SW_EUNSUPPORTED = -7,/* unsupported encoding, method or feature */
    SW_ENOTFOUND = -8,   /* no such thing */
    SW_ECLOSED = -9,     /* component stopped or shutting down */
    SW_EUNAVAIL = -10,   /* storage unavailable (write errors): keep the data, retry later */
};

const char *sw_strerror(int err);

#endif
