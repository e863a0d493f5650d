/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but EVP's per-call
   context and provider dispatch cost 2-5x for the short inputs a Merkle tree hashes (65-byte
   nodes, ~450-byte leaves), on every decision. They remain in 3.x; see AuditLog/SHA256.swift. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/crypto.h>
