// Internal to net: the first bytes of layers whose upload was cut (the
// link lost, the client gone, the call cancelled), kept under the layer
// store's key (LayerStore::LayerKey) so that the next session of that
// client, or of any client that proves it holds the same bytes, resumes
// the layer's upload after them instead of from its first byte. A prefix
// is whole proof blocks (LayerStore::kProofBlockBytes) or the whole layer,
// with their block hashes for the proof.
//
// A kept prefix is replaced only by one that extends it (the same hashes
// over its blocks) or after a client failed to prove it (it may be another
// client's garbage): a short or wrong cut cannot wipe out a long good one.
// Entries not proven for `ttl_ms` expire; beyond `capacity_bytes` the
// least recently used go first; a layer's entry goes once it is built.
// Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ionn::net {

class PartialUploads {
 public:
  PartialUploads(uint64_t capacity_bytes, double ttl_ms) : capacity_bytes_(capacity_bytes), ttl_ms_(ttl_ms) {}

  struct Prefix {
    std::shared_ptr<const std::string> bytes;   // null: none kept
    std::shared_ptr<const std::string> hashes;  // LayerStore::BlockHashes of `bytes`
  };

  // The longest prefix of `size` bytes that arrived of a layer of
  // `layer_bytes` that is whole proof blocks, or all of it when complete.
  static uint64_t KeptBytes(uint64_t size, uint64_t layer_bytes);
  // Keeps KeptBytes(size, layer_bytes) of `data` under `key` (see above
  // for when it replaces what is there). Returns the bytes now kept under
  // `key` from `data` (0: none, or the old prefix stays).
  uint64_t Put(const std::string& key, const char* data, uint64_t size, uint64_t layer_bytes, double now_ms);
  // The prefix under `key`, if any (after expiring old ones).
  Prefix Find(const std::string& key, double now_ms);
  // A client proved (true) or failed to prove (false) the prefix under
  // `key`: proven, it is kept longer; failed, a later cut may replace it.
  void Proved(const std::string& key, bool proven, double now_ms);
  void Erase(const std::string& key);
  // Drops the least recently used prefixes until at most `bytes` are kept.
  void TrimTo(uint64_t bytes);
  void Expire(double now_ms);
  uint64_t bytes() const;  // kept now
  size_t entries() const;

 private:
  struct Entry {
    Prefix prefix;
    double used_ms = 0;  // stored or last proven
    bool disputed = false;  // a client failed to prove it
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recently used)
  };
  void EraseLocked(std::unordered_map<std::string, Entry>::iterator it);
  void ExpireLocked(double now_ms);

  const uint64_t capacity_bytes_;
  const double ttl_ms_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // by used_ms, most recent first
  uint64_t bytes_ = 0;
};

}  // namespace ionn::net
