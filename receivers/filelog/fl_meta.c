/* fl_meta.c — container id, config.v2.json and the per-container Resource. */
#define LOG_COMPONENT "filelog"

#include "receivers/filelog/fl_meta.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "receivers/filelog/fl_enc.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define CONFIG_MAX (4u << 20)
#define RESOURCE_MAX (1u << 20)

struct fl_container {
    struct fl_container *next;
    char id[FL_CONTAINER_ID_LEN + 1];
    char *config_path;       /* owned: <dir>/config.v2.json */
    unsigned refs;
    int64_t checked_ns;      /* last stat of config_path */
    int have_stat;
    struct stat st;          /* of the config read last */
    buf res;                 /* encoded Resource attributes */
};

struct fl_meta {
    const char *prefix;
    int64_t ttl_ns;
    fl_container *list;
    size_t n;
    uint64_t reads;
};

static int is_id(const char *s, size_t n)
{
    if (n != FL_CONTAINER_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int fl_meta_id_from_path(const char *path, char id[FL_CONTAINER_ID_LEN + 1])
{
    const char *base = strrchr(path, '/');
    const char *file = base ? base + 1 : path;
    if (strlen(file) >= FL_CONTAINER_ID_LEN && is_id(file, FL_CONTAINER_ID_LEN) &&
        (file[FL_CONTAINER_ID_LEN] == '-' || file[FL_CONTAINER_ID_LEN] == '.' ||
         file[FL_CONTAINER_ID_LEN] == '\0')) {
        memcpy(id, file, FL_CONTAINER_ID_LEN);
        id[FL_CONTAINER_ID_LEN] = '\0';
        return 0;
    }
    if (base && base > path) {
        const char *d = base;
        while (d > path && d[-1] != '/') d--;
        if (is_id(d, (size_t)(base - d))) {
            memcpy(id, d, FL_CONTAINER_ID_LEN);
            id[FL_CONTAINER_ID_LEN] = '\0';
            return 0;
        }
    }
    return SW_ENOTFOUND;
}

void fl_container_info_destroy(fl_container_info *ci)
{
    free(ci->name);
    free(ci->image);
    for (size_t i = 0; i < ci->n_labels; i++) {
        free(ci->label_keys[i]);
        free(ci->label_values[i]);
    }
    free(ci->label_keys);
    free(ci->label_values);
    memset(ci, 0, sizeof *ci);
}

static int dup_string(json_object *o, char **out)
{
    if (!o || !json_object_is_type(o, json_type_string)) return 0;
    *out = strdup(json_object_get_string(o));
    return *out ? 0 : SW_ENOMEM;
}

static int parse_labels(json_object *labels, fl_container_info *ci)
{
    if (!labels || !json_object_is_type(labels, json_type_object)) return 0;
    size_t n = (size_t)json_object_object_length(labels), i = 0;
    if (!n) return 0;
    ci->label_keys = calloc(n, sizeof *ci->label_keys);
    ci->label_values = calloc(n, sizeof *ci->label_values);
    if (!ci->label_keys || !ci->label_values) return SW_ENOMEM;
    json_object_object_foreach(labels, k, v) {
        if (i >= n || !json_object_is_type(v, json_type_string)) continue;
        ci->label_keys[i] = strdup(k);
        ci->label_values[i] = strdup(json_object_get_string(v));
        ci->n_labels = ++i;
        if (!ci->label_keys[i - 1] || !ci->label_values[i - 1]) return SW_ENOMEM;
    }
    return 0;
}

int fl_meta_parse_config(const char *json, size_t len, fl_container_info *out)
{
    json_object *o = NULL, *name = NULL, *config = NULL, *image = NULL, *labels = NULL;
    int rc = SW_EDECODE;
    memset(out, 0, sizeof *out);
    json_tokener *tok = json_tokener_new_ex(32);
    if (!tok) return SW_ENOMEM;
    if (len <= INT32_MAX) o = json_tokener_parse_ex(tok, json, (int)len);
    if (!o || !json_object_is_type(o, json_type_object)) goto out;
    json_object_object_get_ex(o, "Name", &name);
    if (json_object_object_get_ex(o, "Config", &config) && json_object_is_type(config, json_type_object)) {
        json_object_object_get_ex(config, "Image", &image);
        json_object_object_get_ex(config, "Labels", &labels);
    }
    if ((rc = dup_string(name, &out->name)) != 0 || (rc = dup_string(image, &out->image)) != 0 ||
        (rc = parse_labels(labels, out)) != 0)
        goto out;
    if (out->name && out->name[0] == '/') memmove(out->name, out->name + 1, strlen(out->name));
    rc = 0;
out:
    if (rc != 0) fl_container_info_destroy(out);
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

void fl_meta_split_image(const char *img, size_t *name_len, const char **tag, size_t *tag_len)
{
    size_t n = strlen(img);
    const char *at = strchr(img, '@');
    const char *slash = strrchr(img, '/');
    *tag = NULL;
    *tag_len = 0;
    if (at) n = (size_t)(at - img);
    const char *colon = NULL;
    for (const char *p = slash ? slash : img; p < img + n; p++)
        if (*p == ':') colon = p;
    if (colon) {
        *tag = colon + 1;
        *tag_len = n - (size_t)(colon + 1 - img);
        n = (size_t)(colon - img);
    }
    *name_len = n;
}

/* container.image.tags: a KeyValue whose value is an ArrayValue of one string. */
static int put_tags(buf *out, const char *tag, size_t tlen)
{
    static const char key[] = "container.image.tags";
    size_t str = fl_len_field(1, tlen);          /* AnyValue{string} */
    size_t arr = fl_len_field(1, str);           /* ArrayValue{values} */
    size_t any = fl_len_field(5, arr);           /* AnyValue{array_value} */
    size_t kv = fl_len_field(1, sizeof key - 1) + fl_len_field(2, any);
    int rc = fl_put_len(out, 1, kv);
    if (!rc) rc = fl_put_bytes(out, 1, key, sizeof key - 1);
    if (!rc) rc = fl_put_len(out, 2, any);
    if (!rc) rc = fl_put_len(out, 5, arr);
    if (!rc) rc = fl_put_len(out, 1, str);
    if (!rc) rc = fl_put_bytes(out, 1, tag, tlen);
    return rc;
}

static int put_attr(buf *out, const char *k, const char *v)
{
    return fl_put_kv_str(out, 1, k, strlen(k), v, strlen(v));
}

int fl_meta_encode_resource(const char *id, const fl_container_info *ci, const char *label_prefix,
                            buf *out)
{
    int rc = 0;
    if (id) rc = put_attr(out, "container.id", id);
    if (!ci) return rc;
    if (!rc && ci->name) rc = put_attr(out, "container.name", ci->name);
    if (!rc && ci->image) {
        size_t nlen, tlen;
        const char *tag;
        fl_meta_split_image(ci->image, &nlen, &tag, &tlen);
        rc = fl_put_kv_str(out, 1, "container.image.name", 20, ci->image, nlen);
        if (!rc && tlen) rc = put_tags(out, tag, tlen);
    }
    char key[1024];
    for (size_t i = 0; i < ci->n_labels && !rc; i++) {
        int n = snprintf(key, sizeof key, "%s%s", label_prefix, ci->label_keys[i]);
        if (n < 0 || (size_t)n >= sizeof key) continue;
        rc = put_attr(out, key, ci->label_values[i]);
    }
    return rc;
}

/* ---- the cache ---- */

fl_meta *fl_meta_new(const char *label_prefix, uint64_t ttl_ms)
{
    fl_meta *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->prefix = label_prefix ? label_prefix : "";
    m->ttl_ns = (int64_t)ttl_ms * 1000000;
    return m;
}

static void container_free(fl_container *c)
{
    free(c->config_path);
    buf_destroy(&c->res);
    free(c);
}

void fl_meta_free(fl_meta *m)
{
    if (!m) return;
    while (m->list) {
        fl_container *c = m->list;
        m->list = c->next;
        container_free(c);
    }
    free(m);
}

/* Reads and encodes c's config (or only the id when it is missing/bad). */
static void reload(fl_meta *m, fl_container *c, const struct stat *st)
{
    fl_container_info ci;
    char *data = NULL;
    int have = 0, fd = st ? open(c->config_path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0 && st->st_size > 0 && st->st_size <= CONFIG_MAX && (data = malloc((size_t)st->st_size))) {
        ssize_t r = pread(fd, data, (size_t)st->st_size, 0);
        if (r > 0 && fl_meta_parse_config(data, (size_t)r, &ci) == 0) have = 1;
        else LOG_WARN_RL(60, "cannot parse %s: container name and image unknown", c->config_path);
    }
    if (fd >= 0) close(fd);
    free(data);
    m->reads++;
    buf_reset(&c->res);
    if (fl_meta_encode_resource(c->id, have ? &ci : NULL, m->prefix, &c->res) != 0) {
        buf_reset(&c->res); /* over the cap: the id alone */
        fl_meta_encode_resource(c->id, NULL, m->prefix, &c->res);
    }
    if (have) fl_container_info_destroy(&ci);
    c->have_stat = st != NULL;
    if (st) c->st = *st;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void refresh(fl_meta *m, fl_container *c, int64_t now_ns, int force)
{
    struct stat st;
    if (!force && now_ns - c->checked_ns < m->ttl_ns) return;
    c->checked_ns = now_ns;
    int ok = stat(c->config_path, &st) == 0;
    if (!force && ok == c->have_stat && (!ok || same_stat(&st, &c->st))) return;
    reload(m, c, ok ? &st : NULL);
}

fl_container *fl_meta_get(fl_meta *m, const char *path, int64_t now_ns)
{
    char id[FL_CONTAINER_ID_LEN + 1];
    if (fl_meta_id_from_path(path, id) != 0) return NULL;
    for (fl_container *c = m->list; c; c = c->next)
        if (strcmp(c->id, id) == 0) {
            c->refs++;
            return c;
        }
    fl_container *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path) : 1;
    size_t plen = (size_t)dlen + sizeof "/config.v2.json";
    c->config_path = malloc(plen);
    if (!c->config_path) { free(c); return NULL; }
    snprintf(c->config_path, plen, "%.*s/config.v2.json", dlen, slash ? path : ".");
    memcpy(c->id, id, sizeof id);
    buf_init(&c->res, RESOURCE_MAX);
    c->refs = 1;
    refresh(m, c, now_ns, 1);
    c->next = m->list;
    m->list = c;
    m->n++;
    return c;
}

void fl_meta_put(fl_meta *m, fl_container *c)
{
    if (!c || --c->refs) return;
    for (fl_container **pp = &m->list; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            m->n--;
            break;
        }
    container_free(c);
}

const buf *fl_meta_resource(fl_meta *m, fl_container *c, int64_t now_ns)
{
    refresh(m, c, now_ns, 0);
    return &c->res;
}

size_t fl_meta_count(const fl_meta *m) { return m->n; }
uint64_t fl_meta_reads(const fl_meta *m) { return m->reads; }
