// Internal to net: the server's content-addressed layer store. Built
// layers (engine kernels) are kept under the content hash their client
// declared (LayerContentHash, which the uploaded bytes were checked
// against), shared by every session whose model holds the same layer: a
// client that comes back, or a second client with the same model, uploads
// nothing the server still holds. A kernel a live session uses stays; the
// others stay cached within a byte budget, the least recently used evicted
// first. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ionn/engine.h"
#include "wire.h"

namespace ionn::net {

class LayerStore {
 public:
  explicit LayerStore(uint64_t cache_bytes) : cache_bytes_(cache_bytes) {}

  // Keys: a layer's content hash, or a fusion group's (FusionKey).
  static std::string LayerKey(const std::string& content_hash) { return "L" + content_hash; }
  static std::string FusionKey(const std::vector<std::string>& member_hashes);

  // Proof of possession: per block of kProofBlockBytes of a layer's weight
  // bytes (as Upload sends them; the last block shorter), the first
  // kProofHashBytes of its SHA-256, recorded when the bytes were uploaded.
  static constexpr size_t kProofBlockBytes = net::kProofBlockBytes;
  static constexpr size_t kProofHashBytes = 16;
  static std::string BlockHashes(const char* bytes, size_t size);
  static uint64_t Blocks(uint64_t size) { return (size + kProofBlockBytes - 1) / kProofBlockBytes; }
  static constexpr size_t kProofBlocks = 32;  // blocks asked for per layer (all when it has fewer)
  // Whether `answer` holds the hashes of blocks `indices` of the bytes
  // `hashes` were made from, in that order.
  static bool CheckBlocks(const std::string& hashes, uint64_t weight_bytes, const std::vector<uint64_t>& indices,
                          const std::string& answer);

  struct Held {
    Engine::SharedKernel kernel;                // null: not held
    std::shared_ptr<const std::string> blocks;  // BlockHashes of its weights (null for kernels without weights)
  };
  // The entry under `key` (marked as just used); kernel null when absent.
  Held Find(const std::string& key);
  // Keeps `kernel` under `key` (an entry already there stays, holding the
  // kernel a session uses) and evicts unused entries beyond the budget.
  // `bytes`: the weights it holds (Winograd's transformed weights
  // included: Engine::KernelExtraBytes), at least kMinEntryBytes (a kernel
  // without weights still holds its primitive).
  static constexpr uint64_t kMinEntryBytes = 4096;
  void Put(const std::string& key, Engine::SharedKernel kernel, uint64_t bytes,
           std::shared_ptr<const std::string> blocks = nullptr);
  // Evicts unused entries beyond the budget (after sessions ended).
  void Trim();
  // Evicts unused kernels, least recently used first, until those left
  // take at most `cached_bytes` (to make room under a server's memory limit).
  void TrimCachedTo(uint64_t cached_bytes);

  struct Stats {
    size_t entries = 0;
    uint64_t bytes = 0;         // all entries
    uint64_t cached_bytes = 0;  // entries no session uses
    uint64_t hits = 0, misses = 0, evictions = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    Engine::SharedKernel kernel;
    std::shared_ptr<const std::string> blocks;
    uint64_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };
  uint64_t CachedBytesLocked() const;
  void EvictLocked(uint64_t budget);

  const uint64_t cache_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  uint64_t bytes_ = 0, hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace ionn::net
