/* fl_meta.h — container metadata for the filelog receiver.
 *
 * A Docker json-file log lives at <root>/containers/<id>/<id>-json.log
 * beside the container's config.v2.json. The container id comes from the
 * path; name (without Docker's leading '/'), image and labels come from
 * config.v2.json. Each container's OpenTelemetry Resource is encoded once
 * (container.id, container.name, container.image.name,
 * container.image.tags, labels under label_prefix) and shared by the files
 * of that container, so a request carries one resource per container.
 * config.v2.json is stat()ed again once the TTL passed and re-read when it
 * changed (mtime, size or inode). Ingest thread; entries are reference
 * counted by the files that use them and freed with the last one.
 */
#ifndef SW_FL_META_H
#define SW_FL_META_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

#define FL_CONTAINER_ID_LEN 64

typedef struct fl_meta fl_meta;
typedef struct fl_container fl_container;

/* Pure pieces, for tests and the fuzz target. */
typedef struct fl_container_info {
    char *name;             /* owned, without the leading '/'; NULL if absent */
    char *image;            /* owned, Config.Image as written; NULL if absent */
    size_t n_labels;
    char **label_keys;      /* owned */
    char **label_values;    /* owned */
} fl_container_info;

/* The container id in path (borrowed): the 64-hex-digit directory name or
 * file name prefix; writes it NUL-terminated into id[65]. 0 or SW_ENOTFOUND. */
int fl_meta_id_from_path(const char *path, char id[FL_CONTAINER_ID_LEN + 1]);
/* Parses config.v2.json text. 0, SW_EDECODE or SW_ENOMEM. */
int fl_meta_parse_config(const char *json, size_t len, fl_container_info *out);
void fl_container_info_destroy(fl_container_info *ci);
/* Splits an image reference into name and tag: "reg:5000/app:1.2" ->
 * ("reg:5000/app", "1.2"); "app@sha256:..." -> ("app", none). *tag_len 0:
 * no tag. Borrowed pointers into img. */
void fl_meta_split_image(const char *img, size_t *name_len, const char **tag, size_t *tag_len);
/* Appends the Resource message body (its attributes, fields 1) for id and
 * ci (either may be NULL) to out. */
int fl_meta_encode_resource(const char *id, const fl_container_info *ci, const char *label_prefix,
                            buf *out);

/* The cache. prefix borrowed (outlives it). Returns owned or NULL. */
fl_meta *fl_meta_new(const char *label_prefix, uint64_t ttl_ms);
/* NULL-safe; every container must have been released. */
void fl_meta_free(fl_meta *m);
/* The container of log file path (borrowed), a reference the caller
 * releases with fl_meta_put; NULL when the path names no container (or no
 * memory). */
fl_container *fl_meta_get(fl_meta *m, const char *path, int64_t now_ns);
void fl_meta_put(fl_meta *m, fl_container *c);
/* The encoded Resource of c, refreshed from config.v2.json if the TTL passed
 * and the file changed. Borrowed until the next call on c. */
const buf *fl_meta_resource(fl_meta *m, fl_container *c, int64_t now_ns);
/* Containers cached (for tests). */
size_t fl_meta_count(const fl_meta *m);
/* Times config.v2.json was (re)read (for tests). */
uint64_t fl_meta_reads(const fl_meta *m);

#endif
