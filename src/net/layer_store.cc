#include "layer_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

namespace ionn::net {

std::string LayerStore::FusionKey(const std::vector<std::string>& member_hashes) {
  std::string key = "F";
  for (const auto& h : member_hashes) key += h;
  return key;
}

namespace {

void Sha256(const char* data, size_t size, unsigned char out[EVP_MAX_MD_SIZE]) {
  unsigned int n = 0;
  EVP_Digest(data, size, out, &n, EVP_sha256(), nullptr);
}

}  // namespace

std::string LayerStore::BlockHashes(const char* bytes, size_t size) {
  std::string hashes;
  hashes.reserve(Blocks(size) * kProofHashBytes);
  unsigned char digest[EVP_MAX_MD_SIZE];
  for (size_t off = 0; off < size; off += kProofBlockBytes) {
    Sha256(bytes + off, std::min(kProofBlockBytes, size - off), digest);
    hashes.append(reinterpret_cast<const char*>(digest), kProofHashBytes);
  }
  return hashes;
}

bool LayerStore::CheckBlocks(const std::string& hashes, uint64_t weight_bytes, const std::vector<uint64_t>& indices,
                             const std::string& answer) {
  const uint64_t blocks = Blocks(weight_bytes);
  if (indices.empty() || hashes.size() != blocks * kProofHashBytes || answer.size() != indices.size() * kProofHashBytes) {
    return false;
  }
  int differ = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= blocks) return false;
    differ |= CRYPTO_memcmp(answer.data() + i * kProofHashBytes, hashes.data() + indices[i] * kProofHashBytes,
                            kProofHashBytes);
  }
  return differ == 0;
}

LayerStore::Held LayerStore::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return {};
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return {it->second.kernel, it->second.blocks};
}

void LayerStore::Put(const std::string& key, Engine::SharedKernel kernel, uint64_t bytes,
                     std::shared_ptr<const std::string> blocks) {
  if (!kernel) return;
  bytes = std::max(bytes, kMinEntryBytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    // Keep the kernel a session uses: an unused copy of the same weights
    // would only double them in memory.
    if (it->second.kernel.use_count() == 1) it->second.kernel = std::move(kernel);
    if (!it->second.blocks) it->second.blocks = std::move(blocks);
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  } else {
    lru_.push_front(key);
    entries_.emplace(key, Entry{std::move(kernel), std::move(blocks), bytes, lru_.begin()});
    bytes_ += bytes;
  }
  EvictLocked(cache_bytes_);
}

// An entry whose kernel only the store holds is used by no session (an
// engine holds its kernels for as long as it lives).
uint64_t LayerStore::CachedBytesLocked() const {
  uint64_t cached = 0;
  for (const auto& [key, e] : entries_) cached += e.kernel.use_count() == 1 ? e.bytes : 0;
  return cached;
}

// Engines end on other threads meanwhile, so an entry counted as used may
// be unused by the time the loop reaches it: the count saturates.
void LayerStore::EvictLocked(uint64_t budget) {
  if (bytes_ <= budget) return;  // even if nothing were used
  uint64_t cached = CachedBytesLocked();
  for (auto it = lru_.end(); cached > budget && it != lru_.begin();) {
    --it;
    auto e = entries_.find(*it);
    if (e->second.kernel.use_count() != 1) continue;
    cached -= std::min(cached, e->second.bytes);
    bytes_ -= e->second.bytes;
    ++evictions_;
    entries_.erase(e);
    it = lru_.erase(it);
  }
}

void LayerStore::Trim() {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(cache_bytes_);
}

void LayerStore::TrimCachedTo(uint64_t cached_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(std::min(cached_bytes, cache_bytes_));
}

LayerStore::Stats LayerStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.entries = entries_.size();
  s.bytes = bytes_;
  s.cached_bytes = CachedBytesLocked();
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  return s;
}

}  // namespace ionn::net
