/* mock_server.c — lifecycle of the mock upstream: bind, TLS, ready file.
 * See mock.h; the request handlers are in mock_http.c. */
#define LOG_COMPONENT "mockup"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/tls.h"
#include "testing/mockup/mock_server_int.h"

/* Largest request body evhttp reads (it answers 413 above this). */
#define MOCK_MAX_BODY (64u * 1024u * 1024u)

static int tls_load(mock_server *srv)
{
    srv->ssl = tls_server_ctx_new(srv->opts->tls_cert, srv->opts->tls_key);
    return srv->ssl ? 0 : SW_EIO;
}

/* evhttp's bufferevent factory for HTTPS: every connection starts a TLS
 * accept. */
static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    mock_server *srv = arg;
    return tls_server_bufferevent(base, srv->ssl);
}

/* The address clients should use: the bound one, with "any" mapped to
 * loopback. Writes "HOST:PORT" (IPv6 in brackets) to dst and the port to
 * *port. */
static int bound_address(struct evhttp_bound_socket *h, char *dst, size_t cap, int *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(h);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        LOG_ERROR("getsockname: %s", strerror(errno));
        return SW_EIO;
    }
    char host[INET6_ADDRSTRLEN] = "127.0.0.1";
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) strcpy(host, "::1");
        else inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        *port = ntohs(a->sin6_port);
        snprintf(dst, cap, "[%s]:%d", host, *port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        if (a->sin_addr.s_addr != htonl(INADDR_ANY))
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        *port = ntohs(a->sin_port);
        snprintf(dst, cap, "%s:%d", host, *port);
    }
    return 0;
}

/* Writes "<scheme>=HOST:PORT\n" (and "admin=HOST:PORT\n" when admin is
 * set) to PATH.tmp, then renames it to PATH. */
static int write_ready_file(const char *path, const char *scheme, const char *addr,
                            const char *admin)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return SW_EINVAL;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        LOG_ERROR("cannot write %s: %s", tmp, strerror(errno));
        return SW_EIO;
    }
    int ok = fprintf(f, "%s=%s\n", scheme, addr) > 0;
    if (ok && admin) ok = fprintf(f, "admin=%s\n", admin) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        LOG_ERROR("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return SW_EIO;
    }
    return 0;
}

int mock_server_listen(mock_server *srv)
{
    const mock_opts *o = srv->opts;
    int port = srv->bound_port ? srv->bound_port : o->port;
    srv->bound = evhttp_bind_socket_with_handle(srv->http, o->host, (ev_uint16_t)port);
    if (!srv->bound) {
        LOG_ERROR("cannot listen on %s:%d: %s", o->host, port, strerror(errno));
        return SW_EIO;
    }
    if (srv->bound_port) LOG_INFO("listening again on port %d", port);
    return 0;
}

/* The admin listener (--admin-listen): its own evhttp, never refused. */
static int admin_listen(mock_server *srv, char *addr, size_t cap)
{
    const mock_opts *o = srv->opts;
    srv->admin_http = evhttp_new(srv->base);
    if (!srv->admin_http) return SW_ENOMEM;
    evhttp_set_timeout(srv->admin_http, 60);
    mock_http_setup(srv, srv->admin_http);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(
        srv->admin_http, o->admin_host, (ev_uint16_t)o->admin_port);
    if (!h) {
        LOG_ERROR("cannot listen on %s:%d: %s", o->admin_host, o->admin_port, strerror(errno));
        return SW_EIO;
    }
    int port;
    int rc = bound_address(h, addr, cap, &port);
    if (rc == 0) LOG_INFO("admin endpoints on http://%s", addr);
    return rc;
}

static int bind_and_announce(mock_server *srv)
{
    const mock_opts *o = srv->opts;
    char addr[INET6_ADDRSTRLEN + 16], admin[INET6_ADDRSTRLEN + 16];
    int rc = mock_server_listen(srv);
    if (rc == 0) rc = bound_address(srv->bound, addr, sizeof addr, &srv->bound_port);
    if (rc == 0 && o->admin_host[0]) rc = admin_listen(srv, admin, sizeof admin);
    if (rc) return rc;
    const char *scheme = srv->ssl ? "https" : "http";
    LOG_INFO("listening on %s://%s", scheme, addr);
    if (!o->ready_file) return 0;
    return write_ready_file(o->ready_file, scheme, addr, o->admin_host[0] ? admin : NULL);
}

int mock_server_new(struct event_base *base, const mock_opts *opts, mock_server **out)
{
    *out = NULL;
    mock_server *srv = calloc(1, sizeof *srv);
    if (!srv) return SW_ENOMEM;
    srv->base = base;
    srv->opts = opts;
    srv->latency_ms = opts->latency_ms;
    mock_faults_init(&srv->faults, opts);
    int rc = SW_ENOMEM;
    srv->store = mock_store_new(opts->keep);
    srv->http = evhttp_new(base);
    if (!srv->store || !srv->http) goto fail;
    if (opts->tls_cert && (rc = tls_load(srv)) != 0) goto fail;
    if (srv->ssl) evhttp_set_bevcb(srv->http, tls_bevcb, srv);
    evhttp_set_max_body_size(srv->http, MOCK_MAX_BODY);
    evhttp_set_max_headers_size(srv->http, 64 * 1024);
    evhttp_set_timeout(srv->http, 60);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    mock_http_setup(srv, srv->http);
    if ((rc = bind_and_announce(srv)) != 0) goto fail;
    if ((rc = mock_outage_setup(srv)) != 0) goto fail;
    *out = srv;
    return 0;
fail:
    mock_server_free(srv);
    return rc;
}

void mock_server_free(mock_server *srv)
{
    if (!srv) return;
    mock_outage_teardown(srv);
    mock_http_flush_pending(srv);
    if (srv->http) evhttp_free(srv->http);
    if (srv->admin_http) evhttp_free(srv->admin_http);
    if (srv->ssl) SSL_CTX_free(srv->ssl);
    mock_store_free(srv->store);
    free(srv);
}
