/* test_json_esc.c — the JSON string escape rule (runtime/json_esc.h) and
 * a JSON log line carrying every byte that needs it: the line parses and
 * its message reads back unchanged. */
#include "runtime/json_esc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/log.h"
#include "testing/lib/th.h"

static void t_rule(void)
{
    char e[JSON_ESC_MAX];
    TH_ASSERT(json_esc('a', e) == 0 && json_esc(' ', e) == 0 && json_esc('~', e) == 0);
    TH_ASSERT(json_esc(0xc3, e) == 0); /* UTF-8 bytes pass */
    TH_ASSERT(json_esc('"', e) == 2 && memcmp(e, "\\\"", 2) == 0);
    TH_ASSERT(json_esc('\\', e) == 2 && memcmp(e, "\\\\", 2) == 0);
    TH_ASSERT(json_esc('\n', e) == 2 && memcmp(e, "\\n", 2) == 0);
    TH_ASSERT(json_esc('\r', e) == 2 && memcmp(e, "\\r", 2) == 0);
    TH_ASSERT(json_esc('\t', e) == 2 && memcmp(e, "\\t", 2) == 0);
    TH_ASSERT(json_esc(0x01, e) == 6 && memcmp(e, "\\u0001", 6) == 0);
    TH_ASSERT(json_esc(0x1f, e) == 6 && memcmp(e, "\\u001f", 6) == 0);
    TH_ASSERT(json_esc(0x7f, e) == 6 && memcmp(e, "\\u007f", 6) == 0);
}

/* A JSON log line with quotes, backslashes and control bytes in its
 * message is valid JSON and holds the message as it was. */
static void t_log_line(void)
{
    char path[] = "/tmp/test_json_esc.XXXXXX";
    int fd = mkstemp(path);
    TH_ASSERT(fd >= 0);
    int saved = dup(STDERR_FILENO);
    TH_ASSERT(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0);
    log_setup(LOG_LVL_INFO, 1);
    const char *msg = "a \"q\" \\ b\nc\rd\te\x01\x1f\x7f end";
    log_emit(LOG_LVL_INFO, "test", "%s", msg);
    TH_ASSERT(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char line[512] = "";
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    close(fd);
    unlink(path);
    TH_ASSERT(n > 0);
    json_object *o = json_tokener_parse(line);
    TH_ASSERT_MSG(o, "log line is not JSON: %s", line);
    json_object *m = NULL;
    TH_ASSERT(json_object_object_get_ex(o, "msg", &m));
    TH_ASSERT_EQ_STR(json_object_get_string(m), msg);
    json_object_put(o);
}

int main(void)
{
    TH_RUN(t_rule);
    TH_RUN(t_log_line);
    return th_done();
}
