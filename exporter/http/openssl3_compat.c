/* Built twice, as libssl.so and libcrypto.so (see exporter/http/tls.h): the
 * names Debian 12's civetweb 1.15 dlopens, which only libssl-dev provides,
 * as symlinks to OpenSSL 3 that lack the one function civetweb needs. */
#if defined(EXECFLOW_COMPAT_SSL)
#include <openssl/ssl.h>

/* OpenSSL 3 renamed it SSL_get1_peer_certificate (same semantics: a new
 * reference the caller frees) and keeps the old name only as a macro. */
#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s) { return SSL_get1_peer_certificate(s); }
#else
/* Nothing of its own: its DT_NEEDED libcrypto.so.3 answers civetweb's dlsym(). */
const char execflow_openssl3_compat[] = "libcrypto.so for civetweb: OpenSSL 3's libcrypto.so.3";
#endif
