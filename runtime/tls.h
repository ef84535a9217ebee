/* tls.h — TLS set-up for libevent connections, written once: the exporter's
 * client side (peer and host name verification, SNI) and the server side
 * used by the mock upstream (and any TLS listener).
 *
 * Contexts are made once at start-up on any thread and are then shared,
 * read-only, by the bufferevents of one event_base. OpenSSL errors are
 * logged here with what failed; callers only see NULL.
 */
#ifndef SW_TLS_H
#define SW_TLS_H

struct bufferevent;
struct event_base;
struct ssl_ctx_st;

/* Returns an owned client context (TLS 1.2 or newer) verifying the peer
 * against ca_file (NULL or "": the system store), or without verification
 * when insecure (the caller warns); NULL on failure (logged). */
struct ssl_ctx_st *tls_client_ctx_new(const char *ca_file, int insecure);
/* Returns an owned bufferevent that connects with TLS to host (SNI for
 * host names; unless insecure, the certificate must match the host name
 * or IP address), or NULL. ctx is borrowed and must outlive it. */
struct bufferevent *tls_client_bufferevent(struct event_base *base, struct ssl_ctx_st *ctx,
                                           const char *host, int insecure);
/* Returns an owned server context (TLS 1.2 or newer) with the PEM
 * certificate chain cert and private key key, or NULL (logged). */
struct ssl_ctx_st *tls_server_ctx_new(const char *cert, const char *key);
/* Returns an owned bufferevent that accepts TLS on the socket it is given
 * later (evhttp_set_bevcb style), or NULL. ctx is borrowed. */
struct bufferevent *tls_server_bufferevent(struct event_base *base, struct ssl_ctx_st *ctx);
/* 1 for an IPv4 or IPv6 address literal (no DNS, no SNI). */
int tls_is_ip_literal(const char *host);

#endif
