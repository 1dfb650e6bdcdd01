#include "partial_uploads.h"

#include "layer_store.h"

namespace ionn::net {

uint64_t PartialUploads::KeptBytes(uint64_t size, uint64_t layer_bytes) {
  if (size >= layer_bytes) return layer_bytes;
  return size / LayerStore::kProofBlockBytes * LayerStore::kProofBlockBytes;
}

uint64_t PartialUploads::Put(const std::string& key, const char* data, uint64_t size, uint64_t layer_bytes,
                             double now_ms) {
  const uint64_t kept = KeptBytes(size, layer_bytes);
  if (kept == 0 || kept > capacity_bytes_) return 0;
  auto hashes = std::make_shared<const std::string>(LayerStore::BlockHashes(data, kept));
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(now_ms);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    const std::string& old = *it->second.prefix.hashes;
    const bool extends = kept > it->second.prefix.bytes->size() && hashes->compare(0, old.size(), old) == 0;
    if (!extends && !it->second.disputed) return 0;
    EraseLocked(it);
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{{std::make_shared<const std::string>(data, kept), std::move(hashes)}, now_ms, false,
                              lru_.begin()});
  bytes_ += kept;
  while (bytes_ > capacity_bytes_ && !lru_.empty()) EraseLocked(entries_.find(lru_.back()));
  return kept;
}

PartialUploads::Prefix PartialUploads::Find(const std::string& key, double now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(now_ms);
  auto it = entries_.find(key);
  return it == entries_.end() ? Prefix{} : it->second.prefix;
}

void PartialUploads::Proved(const std::string& key, bool proven, double now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (!proven) {
    it->second.disputed = true;
    return;
  }
  it->second.used_ms = now_ms;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
}

void PartialUploads::Erase(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) EraseLocked(it);
}

void PartialUploads::TrimTo(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  while (bytes_ > bytes && !lru_.empty()) EraseLocked(entries_.find(lru_.back()));
}

void PartialUploads::Expire(double now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(now_ms);
}

uint64_t PartialUploads::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t PartialUploads::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void PartialUploads::EraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.prefix.bytes->size();
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void PartialUploads::ExpireLocked(double now_ms) {
  while (!lru_.empty()) {
    auto it = entries_.find(lru_.back());
    if (now_ms - it->second.used_ms <= ttl_ms_) break;
    EraseLocked(it);
  }
}

}  // namespace ionn::net
