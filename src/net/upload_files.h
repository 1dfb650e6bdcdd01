// Internal to net: weight bytes as uploads receive them, one file per
// layer in a folder (`ionn serve --upload-dir`), so that a server killed
// and started again on the same folder still has them: at start every
// file becomes a kept prefix (PartialUploads) of its layer, whole or cut,
// which the client's next session proves and does not send again.
//
// A file holds a header (the layer's store key and weight byte count) and
// the first bytes of the layer. It is written while it arrives under a
// name of its own upload ("<key hash>.<upload>.part"), then renamed to
// "<key hash>.part" when the upload of the layer ends, cut or whole; a
// file a killed server left under its upload's name is read as well (the
// longest of a layer's files is kept). As in memory, a layer's file is
// replaced only by a longer one, and an upload refused midway leaves none.
// Files beyond `capacity_bytes` are removed oldest first. One server a
// folder (a lock file: a second is refused before it touches the folder).
// Only regular files are read or written (no links followed). Nothing here
// fails an upload: a write that fails only costs the file (the log says
// so). Thread-safe; one writer per upload, none outliving its UploadFiles.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ionn/status.h"

namespace ionn::net {

class UploadFiles {
 public:
  // Makes `dir` if need be and locks it; fails if it cannot be written or
  // another server holds it.
  static Result<std::unique_ptr<UploadFiles>> Open(const std::string& dir, uint64_t capacity_bytes,
                                                   std::function<void(const std::string&)> log);
  ~UploadFiles();  // releases the folder's lock

  // Every layer's bytes found in the folder, the longest file of each,
  // newest first while they fit in the capacity (the rest removed).
  // `keep` gets the store key, the layer's weight byte count and the bytes.
  void Load(const std::function<void(const std::string& key, uint64_t layer_bytes, const std::string& bytes)>& keep);

  // One layer's bytes as one upload receives them: the first `n` of them
  // (a resumed prefix) at once, then as they arrive.
  class Writer {
   public:
    ~Writer();  // End()
    void Append(const char* data, uint64_t n);
    // The upload of this layer ended (cut or whole): its file takes the
    // layer's name, unless the one there is as long.
    void End();
    // The upload was refused: its file goes.
    void Abandon();

   private:
    friend class UploadFiles;
    UploadFiles* files_ = nullptr;
    std::string key_, path_, final_path_;
    int fd_ = -1;
    uint64_t bytes_ = 0;
  };
  std::unique_ptr<Writer> Start(const std::string& key, uint64_t layer_bytes, const std::string& upload,
                                const char* prefix, uint64_t n);
  // The layer's bytes are no use any more (they failed its content hash).
  void Remove(const std::string& key);

 private:
  UploadFiles(std::string dir, uint64_t capacity_bytes, std::function<void(const std::string&)> log, int lock_fd)
      : dir_(std::move(dir)), capacity_bytes_(capacity_bytes), log_(std::move(log)), lock_fd_(lock_fd) {}
  std::string PathOf(const std::string& key, const std::string& upload) const;
  // Renames `path` to `final_path` if its `bytes` are more than the file
  // there; removes it otherwise.
  void Settle(const std::string& path, const std::string& final_path, uint64_t bytes);
  void Log(const std::string& line);

  const std::string dir_;
  const uint64_t capacity_bytes_;
  std::function<void(const std::string&)> log_;
  const int lock_fd_;
  std::mutex mu_;  // guards what follows
  uint64_t counter_ = 0;          // orders the settled files, oldest first
  std::map<std::string, std::pair<uint64_t, uint64_t>> settled_;  // path -> (order, bytes)
};

}  // namespace ionn::net
