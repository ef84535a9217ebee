/* err.c — see err.h. */
#include "runtime/err.h"

const char *sw_strerror(int err)
{
    switch (err) {
    case SW_OK: return "ok";
    case SW_ENOMEM: return "out of memory";
    case SW_ETOOBIG: return "size limit exceeded";
    case SW_EINVAL: return "invalid argument";
    case SW_EDECODE: return "malformed input";
    case SW_EIO: return "I/O error";
    case SW_EFULL: return "full";
    case SW_EUNSUPPORTED: return "unsupported";
    case SW_ENOTFOUND: return "not found";
    case SW_ECLOSED: return "closed";
    case SW_EUNAVAIL: return "storage unavailable";
    default: return "unknown error";
    }
}
