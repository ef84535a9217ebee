/* replay_main.c — runs a libFuzzer target over its corpus without libFuzzer.
 *
 * Linked with one testing/fuzz/fuzz_<name>.c; `make test` runs it so every
 * corpus file (testing/fuzz/corpus/<name>/) and a bounded set of
 * deterministic mutations of each are replayed under the normal build (and
 * sanitizers when SANITIZE is set). Arguments: corpus directories or files;
 * without arguments the corpus directory named by the program is used.
 */
#include "testing/lib/th.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(b, cap);
            if (!nb) { free(b); fclose(f); return -1; }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    *out = b;
    *len = n;
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* The input as is, every prefix length at a few cut points, and byte flips. */
static size_t replay_one(const uint8_t *d, size_t n, uint64_t seed)
{
    size_t runs = 0;
    LLVMFuzzerTestOneInput(d, n); runs++;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return runs;
    for (int k = 1; k <= 8 && n > 0; k++) { LLVMFuzzerTestOneInput(d, n * k / 9); runs++; }
    for (int k = 0; k < 64 && n > 0; k++) {
        memcpy(m, d, n);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int j = 0; j < flips; j++)
            m[rng_next(&seed) % n] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
        LLVMFuzzerTestOneInput(m, n); runs++;
    }
    free(m);
    return runs;
}

static int replay_path(const char *path, size_t *files, size_t *runs)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) return -1;
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            if (replay_path(p, files, runs) != 0) rc = -1;
        }
        closedir(dir);
        return rc;
    }
    uint8_t *d = NULL;
    size_t n = 0;
    if (read_file(path, &d, &n) != 0) return -1;
    *runs += replay_one(d, n, 0x9E3779B97F4A7C15ull ^ n);
    free(d);
    (*files)++;
    return 0;
}

static void t_replay_corpus(void)
{
    extern char *program_invocation_short_name;
    char dir[512];
    const char *name = program_invocation_short_name;
    if (strncmp(name, "replay_", 7) == 0) name += 7;
    snprintf(dir, sizeof dir, "testing/fuzz/corpus/%s", name);
    size_t files = 0, runs = 0;
    TH_ASSERT_MSG(replay_path(dir, &files, &runs) == 0, "cannot read corpus %s", dir);
    TH_ASSERT_MSG(files > 0, "empty corpus %s", dir);
    printf("# replayed %zu corpus files, %zu inputs\n", files, runs);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        size_t files = 0, runs = 0;
        for (int i = 1; i < argc; i++)
            if (replay_path(argv[i], &files, &runs) != 0)
                fprintf(stderr, "cannot read %s: %s\n", argv[i], strerror(errno));
        printf("replayed %zu files, %zu inputs\n", files, runs);
        return 0;
    }
    TH_RUN(t_replay_corpus);
    return th_done();
}
