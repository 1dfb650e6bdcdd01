#include "upload_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ionn::net {
namespace {

constexpr char kMagic[8] = {'I', 'O', 'N', 'N', 'P', 'R', 'T', '1'};
constexpr uint32_t kMaxKeyBytes = 4096;
constexpr uint64_t kMaxLayerBytes = uint64_t{1} << 40;

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += digits[c >> 4], out += digits[c & 15];
  return out;
}

std::string KeyHash(const std::string& key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(key.data(), key.size(), digest, &n, EVP_sha256(), nullptr);
  return Hex(std::string(reinterpret_cast<const char*>(digest), n));
}

bool WriteAll(int fd, const char* data, uint64_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, data, std::min<uint64_t>(n, 1 << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w, n -= static_cast<uint64_t>(w);
  }
  return true;
}

bool ReadAll(int fd, char* data, uint64_t n) {
  while (n > 0) {
    const ssize_t r = read(fd, data, std::min<uint64_t>(n, 1 << 30));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    data += r, n -= static_cast<uint64_t>(r);
  }
  return true;
}

struct FileInfo {
  std::string path, key;
  uint64_t layer_bytes = 0, bytes = 0;
  int64_t mtime_ns = 0;
};

// The header of `path`, or false when it is not a file of ours.
bool ReadHeader(const std::string& path, FileInfo* info) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  char magic[8];
  uint32_t key_bytes = 0;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ReadAll(fd, magic, 8) && std::memcmp(magic, kMagic, 8) == 0 &&
            ReadAll(fd, reinterpret_cast<char*>(&key_bytes), 4) && key_bytes > 0 && key_bytes <= kMaxKeyBytes;
  if (ok) {
    info->key.resize(key_bytes);
    ok = ReadAll(fd, info->key.data(), key_bytes) && ReadAll(fd, reinterpret_cast<char*>(&info->layer_bytes), 8);
  }
  close(fd);
  const uint64_t header = 8 + 4 + key_bytes + 8;
  if (!ok || info->layer_bytes > kMaxLayerBytes || static_cast<uint64_t>(st.st_size) < header ||
      static_cast<uint64_t>(st.st_size) - header > info->layer_bytes) {
    return false;
  }
  info->path = path;
  info->bytes = static_cast<uint64_t>(st.st_size) - header;
  info->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

}  // namespace

Result<std::unique_ptr<UploadFiles>> UploadFiles::Open(const std::string& dir, uint64_t capacity_bytes,
                                                       std::function<void(const std::string&)> log) {
  if (dir.empty()) return Status::Invalid("the upload folder is empty");
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Invalid("cannot make the upload folder '" + dir + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Status::Invalid("'" + dir + "' is not a folder");
  if (access(dir.c_str(), W_OK | X_OK) != 0) return Status::Invalid("cannot write in the upload folder '" + dir + "'");
  const std::string lock = dir + "/LOCK";
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Invalid("cannot open '" + lock + "': " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return Status::Invalid("the upload folder '" + dir + "' is in use by another server");
  }
  return std::unique_ptr<UploadFiles>(new UploadFiles(dir, capacity_bytes, std::move(log), fd));
}

UploadFiles::~UploadFiles() { close(lock_fd_); }  // and the lock with it

void UploadFiles::Load(
    const std::function<void(const std::string& key, uint64_t layer_bytes, const std::string& bytes)>& keep) {
  std::vector<FileInfo> files;
  if (DIR* d = opendir(dir_.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() < 6 || name.compare(name.size() - 5, 5, ".part") != 0) continue;
      FileInfo info;
      if (ReadHeader(dir_ + "/" + name, &info)) {
        files.push_back(std::move(info));
      } else {
        Log("upload folder: '" + name + "' is not a layer's bytes; left alone");
      }
    }
    closedir(d);
  }
  // The longest file of each layer, then newest first within the capacity.
  std::sort(files.begin(), files.end(), [](const FileInfo& a, const FileInfo& b) {
    return a.key != b.key ? a.key < b.key : a.bytes > b.bytes;
  });
  std::vector<FileInfo> best;
  for (auto& f : files) {
    if (!best.empty() && best.back().key == f.key) {
      unlink(f.path.c_str());
    } else {
      best.push_back(std::move(f));
    }
  }
  std::sort(best.begin(), best.end(), [](const FileInfo& a, const FileInfo& b) { return a.mtime_ns > b.mtime_ns; });
  uint64_t total = 0, loaded = 0;
  size_t fit = 0;  // best[0, fit): the newest, within the capacity
  for (; fit < best.size() && total + best[fit].bytes <= capacity_bytes_; ++fit) total += best[fit].bytes;
  for (size_t i = fit; i < best.size(); ++i) unlink(best[i].path.c_str());
  total = 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = fit; i-- > 0;) {  // oldest first: the newest get the highest order
    const FileInfo& f = best[i];
    const std::string settled = PathOf(f.key, "");
    if (f.path != settled && rename(f.path.c_str(), settled.c_str()) != 0) continue;
    std::string bytes(f.bytes, '\0');
    const int fd = open(settled.c_str(), O_RDONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && lseek(fd, static_cast<off_t>(8 + 4 + f.key.size() + 8), SEEK_SET) >= 0 &&
                    ReadAll(fd, bytes.data(), f.bytes);
    if (fd >= 0) close(fd);
    if (!ok) continue;
    settled_[settled] = {++counter_, f.bytes};
    total += f.bytes, ++loaded;
    keep(f.key, f.layer_bytes, bytes);
  }
  if (loaded > 0) Log("upload folder: " + std::to_string(loaded) + " layers' bytes read (" + std::to_string(total) + " bytes)");
}

std::string UploadFiles::PathOf(const std::string& key, const std::string& upload) const {
  return dir_ + "/" + KeyHash(key) + (upload.empty() ? "" : "." + upload) + ".part";
}

std::unique_ptr<UploadFiles::Writer> UploadFiles::Start(const std::string& key, uint64_t layer_bytes,
                                                        const std::string& upload, const char* prefix, uint64_t n) {
  auto w = std::unique_ptr<Writer>(new Writer());
  w->files_ = this;
  w->key_ = key;
  w->path_ = PathOf(key, upload);
  w->final_path_ = PathOf(key, "");
  if (key.size() > kMaxKeyBytes) return w;  // not kept (keys are a hash or two; never this long)
  w->fd_ = open(w->path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  const uint32_t key_bytes = static_cast<uint32_t>(key.size());
  errno = EIO;  // what a short write reports below
  if (w->fd_ < 0 || !WriteAll(w->fd_, kMagic, 8) ||
      !WriteAll(w->fd_, reinterpret_cast<const char*>(&key_bytes), 4) || !WriteAll(w->fd_, key.data(), key_bytes) ||
      !WriteAll(w->fd_, reinterpret_cast<const char*>(&layer_bytes), 8)) {
    Log("upload folder: cannot write '" + w->path_ + "': " + std::strerror(errno));
    if (w->fd_ >= 0) close(w->fd_), unlink(w->path_.c_str());
    w->fd_ = -1;
  }
  w->Append(prefix, n);
  return w;
}

void UploadFiles::Writer::Append(const char* data, uint64_t n) {
  if (fd_ < 0 || n == 0) return;
  errno = EIO;
  if (!WriteAll(fd_, data, n)) {
    files_->Log("upload folder: cannot write '" + path_ + "': " + std::strerror(errno));
    close(fd_);
    unlink(path_.c_str());
    fd_ = -1;
    return;
  }
  bytes_ += n;
}

void UploadFiles::Writer::End() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
  files_->Settle(path_, final_path_, bytes_);
}

void UploadFiles::Writer::Abandon() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
  unlink(path_.c_str());
}

UploadFiles::Writer::~Writer() { End(); }

void UploadFiles::Settle(const std::string& path, const std::string& final_path, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto there = settled_.find(final_path);
  if (bytes == 0 || (there != settled_.end() && there->second.second >= bytes) ||
      rename(path.c_str(), final_path.c_str()) != 0) {
    unlink(path.c_str());
    return;
  }
  settled_[final_path] = {++counter_, bytes};
  uint64_t total = 0;
  for (const auto& [p, f] : settled_) total += f.second;
  while (total > capacity_bytes_ && !settled_.empty()) {
    auto oldest = std::min_element(settled_.begin(), settled_.end(),
                                   [](const auto& a, const auto& b) { return a.second.first < b.second.first; });
    total -= oldest->second.second;
    unlink(oldest->first.c_str());
    settled_.erase(oldest);
  }
}

void UploadFiles::Remove(const std::string& key) {
  const std::string path = PathOf(key, "");
  std::lock_guard<std::mutex> lock(mu_);
  settled_.erase(path);
  unlink(path.c_str());
}

void UploadFiles::Log(const std::string& line) {
  if (log_) log_(line);
}

}  // namespace ionn::net
