#include "exporter/http/tls.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <climits>
#include <cstring>
#include <map>

#include "exporter/config/yaml_section.h"

namespace execflow {

struct TlsMaterial {
  X509* cert = nullptr;
  STACK_OF(X509)* chain = nullptr;
  EVP_PKEY* key = nullptr;
  X509_STORE* client_cas = nullptr;
  STACK_OF(X509_NAME)* client_ca_names = nullptr;
  int verify_mode = SSL_VERIFY_NONE;
  bool verify_chain = false;  // false: any client certificate is accepted (Request/RequireAny)
  std::vector<std::string> allowed_sans;
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string ciphers;  // OpenSSL names, for TLS 1.2 and below
  std::string groups;
  bool server_preference = true;

  TlsMaterial() = default;
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;
  ~TlsMaterial() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    X509_STORE_free(client_cas);
    sk_X509_NAME_pop_free(client_ca_names, X509_NAME_free);
  }
};

namespace {

// TLS 1.2 suites when the web config lists none: ECDHE (forward secrecy) and AEAD only,
// in Go's order. OpenSSL's default adds static RSA (AES128-SHA, AES128-GCM-SHA256: no
// forward secrecy) and CBC; Go's (exporter-toolkit's) has no static RSA since Go 1.22 but
// keeps ECDHE with AES-CBC-SHA1, which cipher_suites can list. TLS 1.3 suites (OpenSSL's
// defaults) are all forward-secret AEAD.
constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpensslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// The compat libraries run as root: they must be as protected as the binary.
Result<void> CheckOwnedAndNotWritable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Fail("stat " + path, errno);
  if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022) != 0) {
    return Fail(path + ": refusing to load a library owned by another user or writable by others");
  }
  return {};
}

std::vector<std::string> CompatDirs(const std::string& compat_dir) {
  if (!compat_dir.empty()) return {compat_dir};
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return {};
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  return {dir + "/../lib/execflow", dir + "/lib/execflow"};
}

Result<std::string> ReadPem(const std::string& what, const std::string& file, const std::string& inline_text) {
  if (file.empty()) return inline_text;
  auto text = ReadConfigFile(what, file);
  if (!text) return std::unexpected(text.error());
  return *text;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::vector<X509*> ReadCertificates(const std::string& pem) {
  std::vector<X509*> out;
  BioPtr bio = MemBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.push_back(x);
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

int MaterialIndex() {
  static const int idx = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::shared_ptr<const TlsMaterial>*>(ptr);
      });
  return idx;
}

const TlsMaterial* MaterialOf(const SSL* s) {
  auto* p = static_cast<std::shared_ptr<const TlsMaterial>*>(SSL_get_ex_data(s, MaterialIndex()));
  return p ? p->get() : nullptr;
}

// Exact match of an allowed name against the certificate's DNS, e-mail, IP or
// URI subject alternative names (exporter-toolkit's client_allowed_sans).
bool SanAllowed(X509* cert, const std::vector<std::string>& allowed) {
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return false;
  bool ok = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && !ok; ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    std::string value;
    if (n->type == GEN_DNS || n->type == GEN_EMAIL || n->type == GEN_URI) {
      const ASN1_IA5STRING* s = n->d.ia5;
      value.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
    } else if (n->type == GEN_IPADD) {
      char ip[INET6_ADDRSTRLEN];
      const int len = ASN1_STRING_length(n->d.ip);
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
      if (family != AF_UNSPEC && inet_ntop(family, ASN1_STRING_get0_data(n->d.ip), ip, sizeof(ip))) {
        value = ip;
      }
    }
    for (const auto& a : allowed) ok = ok || (!value.empty() && value == a);
  }
  GENERAL_NAMES_free(names);
  return ok;
}

int VerifyClient(int preverify_ok, X509_STORE_CTX* ctx) {
  const SSL* s = static_cast<const SSL*>(
      X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const TlsMaterial* m = s ? MaterialOf(s) : nullptr;
  if (!m) return 0;
  if (!m->verify_chain) preverify_ok = 1;  // Go's RequestClientCert, RequireAnyClientCert
  if (!preverify_ok) return 0;
  if (X509_STORE_CTX_get_error_depth(ctx) == 0 && !m->allowed_sans.empty()) {
    return SanAllowed(X509_STORE_CTX_get_current_cert(ctx), m->allowed_sans) ? 1 : 0;
  }
  return 1;
}

int ServerIndex() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// Handshake start, before the ClientHello: the connection now waits for its client.
void OnInfo(const SSL* s, int where, int) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  if (const auto* t = static_cast<const TlsServer*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ServerIndex()))) {
    t->HandshakeStarted(SSL_get_fd(s));
  }
}

// Before OpenSSL picks a version, cipher or certificate: the current web config applies.
int OnClientHello(SSL* s, int* alert, void* arg) {
  std::shared_ptr<const TlsMaterial> m = static_cast<TlsServer*>(arg)->ForHandshake();
  if (!m) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  // A TLS 1.3 HelloRetryRequest calls us twice for one connection.
  delete static_cast<std::shared_ptr<const TlsMaterial>*>(SSL_get_ex_data(s, MaterialIndex()));
  SSL_set_ex_data(s, MaterialIndex(), new std::shared_ptr<const TlsMaterial>(m));
  bool ok = SSL_set_min_proto_version(s, m->min_version) == 1 &&
            SSL_set_max_proto_version(s, m->max_version) == 1 &&
            SSL_set_cipher_list(s, m->ciphers.c_str()) == 1 &&
            (m->groups.empty() || SSL_set1_groups_list(s, m->groups.c_str()) == 1) &&
            SSL_use_cert_and_key(s, m->cert, m->key, m->chain, 1) == 1;
  if (m->server_preference) SSL_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
  else SSL_clear_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (m->verify_mode == SSL_VERIFY_NONE) {
    SSL_set_verify(s, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_set_verify(s, m->verify_mode, VerifyClient);
    if (m->client_cas) ok = ok && SSL_set1_verify_cert_store(s, m->client_cas) == 1;
    if (m->client_ca_names) {
      STACK_OF(X509_NAME)* names = SSL_dup_CA_list(m->client_ca_names);
      if (names) SSL_set_client_CA_list(s, names);
    }
  }
  if (!ok) {
    spdlog::debug("tls: configure handshake: {}", OpensslError());
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

std::vector<FileSignature> Signatures(const TlsServerConfig& t) {
  return {SignatureOf(t.cert_file), SignatureOf(t.key_file), SignatureOf(t.client_ca_file)};
}

}  // namespace

Result<void> LoadTlsLibraries(const std::string& compat_dir) {
  static std::mutex mu;
  static bool loaded = false;
  std::lock_guard lock(mu);
  if (loaded) return {};
  std::string found;
  const std::vector<std::string> dirs = CompatDirs(compat_dir);
  for (const auto& d : dirs) {
    if (access((d + "/libssl.so").c_str(), F_OK) == 0) {
      found = d;
      break;
    }
  }
  if (!found.empty()) {
    for (const char* name : {"libcrypto.so", "libssl.so"}) {
      const std::string path = found + "/" + name;
      if (auto ok = CheckOwnedAndNotWritable(path); !ok) return ok;
      if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        const char* why = dlerror();
        return Fail("TLS: load " + path + ": " + (why ? why : "unknown error"));
      }
    }
  }
  // civetweb dlopens libssl.so and libcrypto.so and resolves all it needs, or says no TLS.
  if ((mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS) == 0) {
    std::string where;
    for (const auto& d : dirs) where += (where.empty() ? "" : ", ") + d;
    return Fail(found.empty()
                    ? "TLS: civetweb could not load OpenSSL, and execflow's compatibility libraries "
                      "(libssl.so, libcrypto.so) are not in " + where +
                      " (install execflow with them, see README 'Security')"
                    : "TLS: civetweb could not initialise OpenSSL with the compatibility libraries in " +
                          found);
  }
  loaded = true;
  return {};
}

Result<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsServerConfig& t) {
  auto m = std::make_shared<TlsMaterial>();
  const std::string cert_what = t.cert_file.empty() ? "tls_server_config.cert" : "cert_file";
  const std::string key_what = t.key_file.empty() ? "tls_server_config.key" : "key_file";
  auto cert_pem = ReadPem(cert_what, t.cert_file, t.cert);
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = ReadPem(key_what, t.key_file, t.key);
  if (!key_pem) return std::unexpected(key_pem.error());
  std::vector<X509*> certs = ReadCertificates(*cert_pem);
  if (certs.empty()) return Fail("TLS: " + cert_what + " " + t.cert_file + ": no PEM certificate");
  m->cert = certs[0];
  m->chain = sk_X509_new_null();
  for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(m->chain, certs[i]);
  {
    BioPtr bio = MemBio(*key_pem);
    m->key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  }
  if (!m->key) {
    ERR_clear_error();
    return Fail("TLS: " + key_what + " " + t.key_file + ": no PEM private key");
  }
  if (X509_check_private_key(m->cert, m->key) != 1) {
    ERR_clear_error();
    return Fail("TLS: the private key does not match the certificate");
  }

  const std::string& auth = t.client_auth_type;
  if (auth == "RequestClientCert") m->verify_mode = SSL_VERIFY_PEER;
  if (auth == "RequireAnyClientCert") m->verify_mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  if (auth == "VerifyClientCertIfGiven") m->verify_mode = SSL_VERIFY_PEER;
  if (auth == "RequireAndVerifyClientCert") {
    m->verify_mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  m->verify_chain = auth == "VerifyClientCertIfGiven" || auth == "RequireAndVerifyClientCert";
  m->allowed_sans = t.client_allowed_sans;
  if (!t.client_ca_file.empty() || !t.client_ca.empty()) {
    auto ca_pem = ReadPem("client_ca_file", t.client_ca_file, t.client_ca);
    if (!ca_pem) return std::unexpected(ca_pem.error());
    std::vector<X509*> cas = ReadCertificates(*ca_pem);
    if (cas.empty()) return Fail("TLS: client CA " + t.client_ca_file + ": no PEM certificate");
    m->client_cas = X509_STORE_new();
    m->client_ca_names = sk_X509_NAME_new_null();
    for (X509* ca : cas) {
      X509_STORE_add_cert(m->client_cas, ca);
      sk_X509_NAME_push(m->client_ca_names, X509_NAME_dup(X509_get_subject_name(ca)));
      X509_free(ca);
    }
  }

  m->min_version = t.min_version;
  m->max_version = t.max_version;
  m->server_preference = t.prefer_server_cipher_suites;
  for (const auto& name : t.cipher_suites) {
    if (name.rfind("TLS_AES_", 0) == 0 || name.rfind("TLS_CHACHA20_", 0) == 0) continue;  // TLS 1.3
    const char* openssl_name = OPENSSL_cipher_name(name.c_str());
    if (!openssl_name || std::strcmp(openssl_name, "(NONE)") == 0) {
      return Fail("TLS: cipher suite " + name + " is not available in this OpenSSL");
    }
    m->ciphers += (m->ciphers.empty() ? "" : ":") + std::string(openssl_name);
  }
  if (m->ciphers.empty()) m->ciphers = kDefaultTls12Ciphers;
  static const std::map<std::string, std::string> kGroups = {
      {"CurveP256", "P-256"}, {"CurveP384", "P-384"}, {"CurveP521", "P-521"}, {"X25519", "X25519"}};
  for (const auto& c : t.curve_preferences) m->groups += (m->groups.empty() ? "" : ":") + kGroups.at(c);
  return std::shared_ptr<const TlsMaterial>(std::move(m));
}

std::shared_ptr<const TlsMaterial> TlsServer::ForHandshake() {
  auto settings = watcher_->Current();
  std::lock_guard lock(mu_);
  if (!settings) {
    if (error_ != settings.error().message) {
      spdlog::error("tls: refusing handshakes: {}", settings.error().message);
    }
    error_ = settings.error().message;
    return nullptr;
  }
  const TlsServerConfig& t = (*settings)->config.tls;
  std::vector<FileSignature> files = Signatures(t);
  if (*settings == settings_ && files == files_) return material_;
  settings_ = *settings;
  files_ = std::move(files);
  auto m = LoadTlsMaterial(t);
  if (!m) {
    material_ = nullptr;
    error_ = m.error().message;
    spdlog::error("tls: refusing handshakes until this is fixed: {}", error_);
    return nullptr;
  }
  if (!error_.empty() || material_) spdlog::info("tls: certificate and settings reloaded");
  error_.clear();
  material_ = *m;
  return material_;
}

bool TlsServer::InitContext(void* ssl_ctx) {
  SSL_CTX* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  // Every handshake is a full one, so client certificates are checked against
  // the CA in force now and a reloaded certificate is used at once.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_client_hello_cb(ctx, OnClientHello, this);
  // In place of civetweb's, which does nothing.
  if (SSL_CTX_set_ex_data(ctx, ServerIndex(), this) != 1) return false;
  SSL_CTX_set_info_callback(ctx, OnInfo);
  return true;
}

}  // namespace execflow
