/* test_fl_meta.c — container id from the path, config.v2.json, the
 * resource cache with its TTL and re-read on change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "opentelemetry/proto/resource/v1/resource.pb-c.h"
#include "receivers/filelog/fl_meta.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void t_id_from_path(void)
{
    char id[FL_CONTAINER_ID_LEN + 1];
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/var/lib/docker/containers/" ID "/" ID "-json.log", id), 0);
    TH_ASSERT_EQ_STR(id, ID);
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/x/" ID "/" ID "-json.log.1", id), 0);
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/x/" ID "/other.log", id), 0); /* from the directory */
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/var/log/syslog", id), SW_ENOTFOUND);
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/x/0123/y.log", id), SW_ENOTFOUND);
    TH_ASSERT_EQ_INT(fl_meta_id_from_path("/x/" ID "X/y.log", id), SW_ENOTFOUND);
}

static void t_parse_config(void)
{
    static const char js[] = "{\"ID\":\"" ID "\",\"Name\":\"/web-1\",\"Image\":\"sha256:ffff\","
                             "\"Config\":{\"Image\":\"nginx:1.25\",\"Labels\":{\"team\":\"core\",\"n\":\"1\"}}}";
    fl_container_info ci;
    TH_ASSERT_EQ_INT(fl_meta_parse_config(js, sizeof js - 1, &ci), 0);
    TH_ASSERT_EQ_STR(ci.name, "web-1");
    TH_ASSERT_EQ_STR(ci.image, "nginx:1.25");
    TH_ASSERT_EQ_INT(ci.n_labels, 2);
    fl_container_info_destroy(&ci);
    TH_ASSERT_EQ_INT(fl_meta_parse_config("{", 1, &ci), SW_EDECODE);
    TH_ASSERT_EQ_INT(fl_meta_parse_config("[]", 2, &ci), SW_EDECODE);
    TH_ASSERT_EQ_INT(fl_meta_parse_config("{}", 2, &ci), 0);
    TH_ASSERT(ci.name == NULL && ci.image == NULL);
    fl_container_info_destroy(&ci);
}

static void t_split_image(void)
{
    static const struct { const char *in, *name, *tag; } c[] = {
        { "nginx", "nginx", "" }, { "nginx:1.25", "nginx", "1.25" },
        { "reg:5000/a/b:v2", "reg:5000/a/b", "v2" }, { "reg:5000/a/b", "reg:5000/a/b", "" },
        { "app@sha256:abcd", "app", "" }, { "app:1@sha256:abcd", "app", "1" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t nl, tl;
        const char *tag;
        fl_meta_split_image(c[i].in, &nl, &tag, &tl);
        TH_ASSERT_MSG(nl == strlen(c[i].name) && memcmp(c[i].in, c[i].name, nl) == 0, "%s", c[i].in);
        TH_ASSERT_MSG(tl == strlen(c[i].tag) && (!tl || memcmp(tag, c[i].tag, tl) == 0), "%s", c[i].in);
    }
}

/* Looks up key in the encoded resource attributes; owned copy or NULL. */
static char *res_attr(const buf *b, const char *key)
{
    Opentelemetry__Proto__Resource__V1__Resource *r =
        opentelemetry__proto__resource__v1__resource__unpack(NULL, b->len, b->data);
    char *v = NULL;
    TH_ASSERT(r != NULL);
    for (size_t i = 0; i < r->n_attributes; i++)
        if (strcmp(r->attributes[i]->key, key) == 0 && r->attributes[i]->value->string_value)
            v = strdup(r->attributes[i]->value->string_value);
    opentelemetry__proto__resource__v1__resource__free_unpacked(r, NULL);
    return v;
}

static void write_config(const char *dir, const char *name, const char *label)
{
    char p[512], js[512];
    snprintf(p, sizeof p, "%s/config.v2.json", dir);
    int n = snprintf(js, sizeof js, "{\"Name\":\"/%s\",\"Config\":{\"Image\":\"busybox\",\"Labels\":{\"app\":\"%s\"}}}",
                     name, label);
    TH_ASSERT_EQ_INT(th_write_file(p, js, (size_t)n), 0);
}

static void t_cache_ttl_and_reread(void)
{
    char root[256], dir[512], log[600];
    TH_ASSERT_EQ_INT(th_tmpdir(root, sizeof root), 0);
    snprintf(dir, sizeof dir, "%s/" ID, root);
    TH_ASSERT_EQ_INT(mkdir(dir, 0755), 0);
    snprintf(log, sizeof log, "%s/" ID "-json.log", dir);
    write_config(dir, "alpha", "one");
    fl_meta *m = fl_meta_new("k8s.label.", 1000);
    fl_container *c = fl_meta_get(m, log, 0), *c2 = fl_meta_get(m, log, 0);
    TH_ASSERT(c != NULL && c == c2);
    TH_ASSERT_EQ_INT(fl_meta_count(m), 1);
    char *v = res_attr(fl_meta_resource(m, c, 0), "container.name");
    TH_ASSERT_EQ_STR(v, "alpha");
    free(v);
    v = res_attr(fl_meta_resource(m, c, 0), "k8s.label.app");
    TH_ASSERT_EQ_STR(v, "one");
    free(v);
    write_config(dir, "beta-longer", "two"); /* size differs: a change */
    v = res_attr(fl_meta_resource(m, c, 500000000), "container.name"); /* within the TTL */
    TH_ASSERT_EQ_STR(v, "alpha");
    free(v);
    TH_ASSERT_EQ_INT(fl_meta_reads(m), 1);
    v = res_attr(fl_meta_resource(m, c, 1500000000), "container.name");
    TH_ASSERT_EQ_STR(v, "beta-longer");
    free(v);
    TH_ASSERT_EQ_INT(fl_meta_reads(m), 2);
    fl_meta_resource(m, c, 3000000000); /* TTL passed, file unchanged: no read */
    TH_ASSERT_EQ_INT(fl_meta_reads(m), 2);
    fl_meta_put(m, c);
    TH_ASSERT_EQ_INT(fl_meta_count(m), 1);
    fl_meta_put(m, c2);
    TH_ASSERT_EQ_INT(fl_meta_count(m), 0);
    TH_ASSERT(fl_meta_get(m, "/var/log/plain.log", 0) == NULL);
    fl_meta_free(m);
    th_rmtree(root);
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_id_from_path);
    TH_RUN(t_parse_config);
    TH_RUN(t_split_image);
    TH_RUN(t_cache_ttl_and_reread);
    return th_done();
}
