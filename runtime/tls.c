/* tls.c — see tls.h. */
#define LOG_COMPONENT "tls"
#include "runtime/tls.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "runtime/log.h"

static void log_ssl_error(const char *what)
{
    char msg[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, msg, sizeof msg);
    LOG_ERROR("%s: %s", what, msg);
    ERR_clear_error();
}

int tls_is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

SSL_CTX *tls_client_ctx_new(const char *ca, int insecure)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        log_ssl_error("cannot create a TLS client context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = (ca && *ca) ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char what[300];
        snprintf(what, sizeof what, "cannot load CA certificates from %s",
                 (ca && *ca) ? ca : "the system store");
        log_ssl_error(what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* SNI (host names only, RFC 6066) and the identity to verify. 0 or -1. */
static int client_prepare(SSL *ssl, const char *h, int insecure)
{
    int ip = tls_is_ip_literal(h);
    if (!ip && SSL_set_tlsext_host_name(ssl, h) != 1) return -1;
    if (insecure) return 0;
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    if (ip) return X509_VERIFY_PARAM_set1_ip_asc(p, h) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(p, h, 0) == 1 ? 0 : -1;
}

/* A bufferevent over a new SSL of ctx in state st, or NULL. */
static struct bufferevent *ssl_bufferevent(struct event_base *base, SSL *ssl,
                                           enum bufferevent_ssl_state st)
{
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, st, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *tls_client_bufferevent(struct event_base *base, SSL_CTX *ctx,
                                           const char *host, int insecure)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    if (client_prepare(ssl, host, insecure) != 0) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl_bufferevent(base, ssl, BUFFEREVENT_SSL_CONNECTING);
}

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_ssl_error("cannot create a TLS server context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        log_ssl_error(cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl_error(key);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct bufferevent *tls_server_bufferevent(struct event_base *base, SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    return ssl ? ssl_bufferevent(base, ssl, BUFFEREVENT_SSL_ACCEPTING) : NULL;
}
