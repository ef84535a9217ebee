/* mock_fault.c — which POSTs the mock refuses, and with what. See mock.h. */
#include "testing/mockup/mock.h"

#include <string.h>

void mock_opts_defaults(mock_opts *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->host, "127.0.0.1");
    o->port = 4319;
    o->error_code = 503;
    o->retry_after = 1;
    o->success_code = 200;
    o->keep = 1000000;
    o->seed = 1;
}

void mock_faults_init(mock_faults *f, const mock_opts *o)
{
    memset(f, 0, sizeof *f);
    f->opts = o;
    /* splitmix64 of the seed, so 0 and small seeds give a usable state */
    uint64_t z = o->seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    f->rng = (z ^ (z >> 31)) | 1;
}

void mock_faults_arm(mock_faults *f, long count, int code)
{
    f->admin_left = count;
    f->admin_code = code;
}

/* Uniform in [0, 1). */
static double draw(mock_faults *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (double)(f->rng >> 11) * (1.0 / 9007199254740992.0);
}

int mock_faults_decide(mock_faults *f)
{
    const mock_opts *o = f->opts;
    double d429 = draw(f), derr = draw(f);
    long n = f->posts++;
    if (f->admin_left > 0) {
        f->admin_left--;
        return f->admin_code;
    }
    if (n < o->fail_first) return o->error_code;
    if (d429 < o->rate_429) return 429;
    if (derr < o->error_rate) return o->error_code;
    return 0;
}
