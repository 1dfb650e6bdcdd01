#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <list>
#include <thread>

#include "ionn/link.h"
#include "ionn/model_costs.h"

namespace ionn {

TokenBucket::TokenBucket(double mbps, uint64_t burst_bytes, Clock* clock)
    : bytes_per_ms_(mbps * kBytesPerMsPerMbps),
      burst_bytes_(std::max<uint64_t>(burst_bytes, 1)),
      clock_(clock),
      tokens_(static_cast<double>(burst_bytes_)),
      start_ms_(clock->NowMs()),
      last_ms_(start_ms_) {}

TokenBucket::TokenBucket(std::shared_ptr<const RateTrace> trace, uint64_t burst_bytes, Clock* clock)
    : bytes_per_ms_(trace->MeanBytesPerMs()),
      trace_(std::move(trace)),
      burst_bytes_(std::max<uint64_t>(burst_bytes, 1)),
      clock_(clock),
      tokens_(static_cast<double>(burst_bytes_)),
      start_ms_(clock->NowMs()),
      last_ms_(start_ms_) {}

double TokenBucket::Reserve(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const double now = clock_->NowMs();
  if (now > last_ms_) {
    const double earned = trace_ ? trace_->BytesBetween(last_ms_ - start_ms_, now - start_ms_)
                                 : (now - last_ms_) * bytes_per_ms_;
    // With a trace the depth follows the rate now (2 ms of it, at least the
    // depth given), so an idle spell on a fast stretch does not let a burst
    // through a slow one.
    const double depth = trace_ ? std::max(static_cast<double>(burst_bytes_), 2 * trace_->RateAt(now - start_ms_))
                                : static_cast<double>(burst_bytes_);
    tokens_ = std::min(depth, tokens_ + earned);
    last_ms_ = now;
  }
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return 0.0;
  if (!trace_) return -tokens_ / bytes_per_ms_;
  return trace_->FinishMs(now - start_ms_, -tokens_) - (now - start_ms_);
}

DelayLine::DelayLine(double delay_ms, uint64_t capacity_bytes, Clock* clock)
    : delay_ms_(delay_ms), capacity_bytes_(std::max<uint64_t>(capacity_bytes, 1)), clock_(clock) {}

bool DelayLine::Push(Chunk chunk) {
  std::unique_lock<std::mutex> lock(mu_);
  // A chunk larger than the capacity still goes through an empty line.
  cv_.wait(lock,
           [&] { return closed_ || queued_bytes_ == 0 || queued_bytes_ + chunk.bytes.size() <= capacity_bytes_; });
  if (closed_) return false;
  chunk.due_ms = clock_->NowMs() + delay_ms_;
  queued_bytes_ += chunk.bytes.size();
  chunks_.push_back(std::move(chunk));
  cv_.notify_all();
  return true;
}

std::optional<DelayLine::Chunk> DelayLine::Pop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return closed_ || !chunks_.empty(); });
  if (closed_) return std::nullopt;
  Chunk chunk = std::move(chunks_.front());
  chunks_.pop_front();
  queued_bytes_ -= chunk.bytes.size();
  cv_.notify_all();
  return chunk;
}

void DelayLine::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  chunks_.clear();
  queued_bytes_ = 0;
  cv_.notify_all();
}

Status ValidateLinkOptions(const LinkOptions& o) {
  auto positive_rate = [](const char* name, double v) -> Status {
    if (!(v > 0) || !std::isfinite(v)) {
      return Status::Invalid(std::string(name) + " must be a finite rate > 0 Mbps, got " + std::to_string(v));
    }
    return Status::Ok();
  };
  IONN_RETURN_IF_ERROR(positive_rate("uplink_mbps", o.uplink_mbps));
  IONN_RETURN_IF_ERROR(positive_rate("downlink_mbps", o.downlink_mbps));
  if (!(o.rtt_ms >= 0) || !std::isfinite(o.rtt_ms)) {
    return Status::Invalid("rtt_ms must be finite and >= 0 ms, got " + std::to_string(o.rtt_ms));
  }
  if (o.socket_buffer_bytes < (4 << 10) || o.socket_buffer_bytes > (16 << 20)) {
    return Status::Invalid("socket_buffer_bytes must be in 4 KiB .. 16 MiB, got " +
                           std::to_string(o.socket_buffer_bytes));
  }
  if (o.segment_bytes != 0 && (o.segment_bytes < 536 || o.segment_bytes > 65495)) {
    return Status::Invalid("segment_bytes must be 0 or in 536 .. 65495, got " + std::to_string(o.segment_bytes));
  }
  if (o.max_connections < 1) {
    return Status::Invalid("max_connections must be >= 1, got " + std::to_string(o.max_connections));
  }
  if (!(o.connect_timeout_ms > 0)) {
    return Status::Invalid("connect_timeout_ms must be > 0, got " + std::to_string(o.connect_timeout_ms));
  }
  return Status::Ok();
}

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

// "host:port" or "[v6 host]:port".
Result<Address> Resolve(const std::string& spec, bool passive) {
  std::string host, port;
  if (!spec.empty() && spec[0] == '[') {
    const size_t close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      return Status::Invalid("address '" + spec + "' is not [host]:port");
    }
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos) return Status::Invalid("address '" + spec + "' is not host:port");
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return Status::Invalid("address '" + spec + "': port '" + port + "' is not a number in 0..65535");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return Status::Invalid("address '" + spec + "': " + gai_strerror(rc));
  Address a;
  std::memcpy(&a.addr, found->ai_addr, found->ai_addrlen);
  a.len = found->ai_addrlen;
  a.family = found->ai_family;
  freeaddrinfo(found);
  return a;
}

std::string PeerName(const sockaddr_storage& s) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (s.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&s);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&s);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

// Before the handshake: buffer sizes and the segment size announced.
void SetBuffers(int fd, const LinkOptions& o) {
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.socket_buffer_bytes, sizeof o.socket_buffer_bytes);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.socket_buffer_bytes, sizeof o.socket_buffer_bytes);
  if (o.segment_bytes > 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &o.segment_bytes, sizeof o.segment_bytes);
}

void SetNoDelay(int fd) {
  const int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Makes close() send a reset rather than a FIN.
void SetResetOnClose(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

std::string Seconds(double ms) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f s", ms / 1000);
  return s;
}

}  // namespace

// Shared by the proxy and its connections: the options, the one bucket per
// direction, counters and the log.
struct LinkShared {
  LinkOptions options;
  Clock* clock = nullptr;
  Address upstream;
  std::unique_ptr<TokenBucket> uplink, downlink;
  uint64_t up_chunk_bytes = 0, down_chunk_bytes = 0;
  uint64_t up_line_bytes = 0, down_line_bytes = 0;
  std::atomic<bool> stopping{false}, stalled{false};
  std::atomic<uint64_t> accepted{0}, open{0}, failed{0}, reset{0}, up_bytes{0}, down_bytes{0};
  std::mutex log_mu;

  void Log(const std::string& line) {
    if (!options.log) return;
    std::lock_guard<std::mutex> lock(log_mu);
    options.log(line);
  }
};

// One client connection and its connection to the server: two pipelines,
// client -> uplink bucket -> delay -> server and server -> downlink bucket
// -> delay -> client, a reader and a writer thread each.
class LinkConnection {
 public:
  LinkConnection(LinkShared* shared, uint64_t id, int client_fd, std::string peer)
      : shared_(shared),
        id_(id),
        client_fd_(client_fd),
        peer_(std::move(peer)),
        up_line_(shared->options.rtt_ms / 2, shared->up_line_bytes, shared->clock),
        down_line_(shared->options.rtt_ms / 2, shared->down_line_bytes, shared->clock),
        start_ms_(shared->clock->NowMs()) {
    setup_ = std::thread([this] { Run(); });
  }
  ~LinkConnection() {
    Abort("proxy stopped");
    if (setup_.joinable()) setup_.join();
  }

  bool done() const { return done_.load(); }

  // Ends the connection now: both sockets reset, queued bytes dropped. The
  // first reason given is the one logged.
  void Abort(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_.exchange(true)) return;
    reason_ = why;
    for (int fd : {client_fd_, server_fd_}) {
      if (fd < 0) continue;
      SetResetOnClose(fd);
      (void)shutdown(fd, SHUT_RDWR);
    }
    up_line_.Close();
    down_line_.Close();
  }

 private:
  std::string Reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }

  void Run() {
    if (Connect()) {
      std::thread pumps[4] = {
          std::thread(
              [this] { Read(client_fd_, "client", shared_->uplink.get(), shared_->up_chunk_bytes, &up_line_); }),
          std::thread([this] { Write(server_fd_, "server", &up_line_, &up_bytes_, &shared_->up_bytes); }),
          std::thread(
              [this] { Read(server_fd_, "server", shared_->downlink.get(), shared_->down_chunk_bytes, &down_line_); }),
          std::thread([this] { Write(client_fd_, "client", &down_line_, &down_bytes_, &shared_->down_bytes); }),
      };
      for (auto& t : pumps) t.join();
      if (aborted_.load()) shared_->reset++;
      const std::string why = Reason();
      shared_->Log("connection " + std::to_string(id_) + " from " + peer_ +
                   (aborted_.load() ? " reset after " : " closed after ") +
                   Seconds(shared_->clock->NowMs() - start_ms_) + ": " + std::to_string(up_bytes_.load()) +
                   " bytes up, " + std::to_string(down_bytes_.load()) + " bytes down" +
                   (aborted_.load() ? " (" + why + ")" : ""));
    } else {
      shared_->failed++;
      shared_->Log("connection " + std::to_string(id_) + " from " + peer_ + " refused: connecting to " +
                   shared_->options.connect + ": " + Reason());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (server_fd_ >= 0) close(server_fd_);
      close(client_fd_);
      server_fd_ = client_fd_ = -1;
    }
    shared_->open--;
    done_ = true;
  }

  // Connects to the server without blocking Stop for longer than a poll.
  bool Connect() {
    const Address& to = shared_->upstream;
    int fd = socket(to.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      Abort(Errno("socket"));
      return false;
    }
    SetBuffers(fd, shared_->options);
    SetNoDelay(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      server_fd_ = fd;
      if (aborted_.load()) return false;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0) {
      if (errno != EINPROGRESS) {
        Abort(Errno("connect"));
        return false;
      }
      const double deadline = shared_->clock->NowMs() + shared_->options.connect_timeout_ms;
      while (true) {
        if (aborted_.load()) return false;
        pollfd p{fd, POLLOUT, 0};
        const int n = poll(&p, 1, 50);
        if (n > 0) break;
        if (n < 0 && errno != EINTR) {
          Abort(Errno("poll"));
          return false;
        }
        if (shared_->clock->NowMs() > deadline) {
          Abort("no answer within " + std::to_string(shared_->options.connect_timeout_ms) + " ms");
          return false;
        }
      }
      int err = 0;
      socklen_t len = sizeof err;
      (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        Abort(Errno("connect"));
        return false;
      }
    }
    const int flags = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return !aborted_.load();
  }

  // Waits until `due_ms` on the shared clock, in slices so that an abort
  // is noticed. False if aborted meanwhile.
  bool WaitUntil(double due_ms) {
    Clock* clock = shared_->clock;
    while (!aborted_.load()) {
      const double left = due_ms - clock->NowMs();
      if (left <= 0) return true;
      clock->SleepMs(std::min(left, 10.0));
    }
    return false;
  }

  // While the link is stalled: false if aborted meanwhile.
  bool WaitWhileStalled() {
    while (shared_->stalled.load()) {
      if (aborted_.load()) return false;
      shared_->clock->SleepMs(10);
    }
    return !aborted_.load();
  }

  void Read(int fd, const char* side, TokenBucket* bucket, uint64_t chunk_bytes, DelayLine* line) {
    while (true) {
      if (!WaitWhileStalled()) return;
      DelayLine::Chunk chunk;
      chunk.bytes.resize(chunk_bytes);
      const ssize_t n = recv(fd, chunk.bytes.data(), chunk.bytes.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Abort(std::string(side) + ": " + Errno("recv"));
        return;
      }
      if (n == 0) {
        chunk.bytes.clear();
        chunk.end = true;
        (void)line->Push(std::move(chunk));
        return;
      }
      chunk.bytes.resize(static_cast<size_t>(n));
      if (!WaitUntil(shared_->clock->NowMs() + bucket->Reserve(static_cast<uint64_t>(n)))) return;
      if (!line->Push(std::move(chunk))) return;
    }
  }

  void Write(int fd, const char* side, DelayLine* line, std::atomic<uint64_t>* conn_bytes,
             std::atomic<uint64_t>* link_bytes) {
    while (auto chunk = line->Pop()) {
      if (!WaitUntil(chunk->due_ms) || !WaitWhileStalled()) return;
      if (chunk->end) {
        (void)shutdown(fd, SHUT_WR);
        return;
      }
      size_t sent = 0;
      while (sent < chunk->bytes.size()) {
        const ssize_t n = send(fd, chunk->bytes.data() + sent, chunk->bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          Abort(std::string(side) + ": " + Errno("send"));
          return;
        }
        sent += static_cast<size_t>(n);
        *conn_bytes += static_cast<uint64_t>(n);
        *link_bytes += static_cast<uint64_t>(n);
      }
    }
  }

  LinkShared* const shared_;
  const uint64_t id_;
  std::mutex mu_;  // guards the fds against Abort while they are being closed
  int client_fd_;
  int server_fd_ = -1;
  const std::string peer_;
  DelayLine up_line_, down_line_;
  const double start_ms_;
  std::atomic<bool> aborted_{false}, done_{false};
  std::string reason_;  // guarded by mu_; set once, by the first Abort
  std::atomic<uint64_t> up_bytes_{0}, down_bytes_{0};
  std::thread setup_;
};

struct LinkProxy::Impl {
  LinkShared shared;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  int port = 0;
  std::thread acceptor;
  std::mutex conns_mu;
  std::list<std::unique_ptr<LinkConnection>> conns;
  std::mutex stop_mu;
  bool stopped = false;

  void Accept() {
    uint64_t next_id = 1;
    while (!shared.stopping.load()) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      const int n = poll(p, 2, 1000);
      Reap();
      if (n < 0 && errno != EINTR) break;
      if (shared.stopping.load()) break;
      if (n <= 0 || !(p[0].revents & POLLIN)) continue;
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
      if (fd < 0) {
        // EMFILE and the like: back off rather than spin.
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) shared.clock->SleepMs(10);
        continue;
      }
      const uint64_t id = next_id++;
      shared.accepted++;
      SetNoDelay(fd);
      if (shared.open.load() >= static_cast<uint64_t>(shared.options.max_connections)) {
        shared.failed++;
        SetResetOnClose(fd);
        close(fd);
        shared.Log("connection " + std::to_string(id) + " from " + PeerName(from) +
                   " refused: " + std::to_string(shared.options.max_connections) + " connections open already");
        continue;
      }
      shared.open++;
      std::lock_guard<std::mutex> lock(conns_mu);
      conns.push_back(std::make_unique<LinkConnection>(&shared, id, fd, PeerName(from)));
    }
  }

  void Reap() {
    std::list<std::unique_ptr<LinkConnection>> finished;
    {
      std::lock_guard<std::mutex> lock(conns_mu);
      for (auto it = conns.begin(); it != conns.end();) {
        if ((*it)->done()) {
          finished.push_back(std::move(*it));
          it = conns.erase(it);
        } else {
          ++it;
        }
      }
    }
    finished.clear();  // joins outside the lock
  }
};

Result<std::unique_ptr<LinkProxy>> LinkProxy::Start(const LinkOptions& options) {
  IONN_RETURN_IF_ERROR(ValidateLinkOptions(options));
  IONN_ASSIGN_OR_RETURN(Address listen_at, Resolve(options.listen, true));
  IONN_ASSIGN_OR_RETURN(Address upstream, Resolve(options.connect, false));

  std::unique_ptr<LinkProxy> proxy(new LinkProxy());
  proxy->impl_ = std::make_unique<Impl>();
  Impl& impl = *proxy->impl_;
  LinkShared& s = impl.shared;
  s.options = options;
  s.clock = options.clock ? options.clock : &Clock::System();
  s.upstream = upstream;
  auto make_direction = [&](double mbps, const std::shared_ptr<const RateTrace>& trace,
                            std::unique_ptr<TokenBucket>* bucket, uint64_t* chunk, uint64_t* line_bytes) {
    // Reads sized for the fastest rate the link will have; with a trace the
    // bucket's depth follows its rate (TokenBucket), from 16 KiB.
    const double per_ms = trace ? trace->MaxBytesPerMs() : mbps * kBytesPerMsPerMbps;
    const uint64_t burst = options.burst_bytes > 0 ? options.burst_bytes
                           : trace               ? uint64_t{16} << 10
                                                 : std::max<uint64_t>(16 << 10, static_cast<uint64_t>(2 * per_ms));
    *bucket = trace ? std::make_unique<TokenBucket>(trace, burst, s.clock)
                    : std::make_unique<TokenBucket>(mbps, burst, s.clock);
    // About 1 ms of the rate per read, so that streams sharing the bucket
    // interleave finely, never more than the burst.
    *chunk = std::min<uint64_t>({burst, 64 << 10, std::max<uint64_t>(2 << 10, static_cast<uint64_t>(per_ms))});
    // The bandwidth-delay product, and a few chunks beside it.
    *line_bytes = static_cast<uint64_t>(per_ms * options.rtt_ms / 2) + 4 * *chunk + (64 << 10);
  };
  make_direction(options.uplink_mbps, options.uplink_trace, &s.uplink, &s.up_chunk_bytes, &s.up_line_bytes);
  make_direction(options.downlink_mbps, options.downlink_trace, &s.downlink, &s.down_chunk_bytes, &s.down_line_bytes);

  if (pipe2(impl.wake, O_CLOEXEC) != 0) return Status::Io(Errno("pipe"));
  impl.listen_fd = socket(listen_at.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl.listen_fd < 0) return Status::Io(Errno("socket"));
  const int one = 1;
  (void)setsockopt(impl.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Accepted sockets inherit these; they must be set before the handshake.
  SetBuffers(impl.listen_fd, options);
  if (bind(impl.listen_fd, reinterpret_cast<const sockaddr*>(&listen_at.addr), listen_at.len) != 0) {
    return Status::Unavailable(Errno(("binding " + options.listen).c_str()));
  }
  if (listen(impl.listen_fd, 128) != 0) return Status::Io(Errno(("listening on " + options.listen).c_str()));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(impl.listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Status::Io(Errno("getsockname"));
  }
  impl.port = bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                         : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  impl.acceptor = std::thread([&impl] { impl.Accept(); });
  return proxy;
}

LinkProxy::~LinkProxy() {
  if (!impl_) return;
  Stop();
  for (int fd : {impl_->listen_fd, impl_->wake[0], impl_->wake[1]}) {
    if (fd >= 0) close(fd);
  }
}

int LinkProxy::port() const { return impl_->port; }

LinkStats LinkProxy::stats() const {
  const LinkShared& s = impl_->shared;
  LinkStats st;
  st.connections_accepted = s.accepted.load();
  st.connections_open = s.open.load();
  st.connections_failed = s.failed.load();
  st.connections_reset = s.reset.load();
  st.uplink_bytes = s.up_bytes.load();
  st.downlink_bytes = s.down_bytes.load();
  return st;
}

int LinkProxy::CutAll() {
  std::lock_guard<std::mutex> lock(impl_->conns_mu);
  int cut = 0;
  for (auto& c : impl_->conns) {
    if (c->done()) continue;
    c->Abort("link cut");
    ++cut;
  }
  return cut;
}

void LinkProxy::Stall(bool stalled) { impl_->shared.stalled = stalled; }

void LinkProxy::Stop() {
  std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->shared.stopping = true;
  const char byte = 1;
  (void)!write(impl_->wake[1], &byte, 1);
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  close(impl_->listen_fd);  // refuses new connections from here on
  impl_->listen_fd = -1;
  std::list<std::unique_ptr<LinkConnection>> conns;
  {
    std::lock_guard<std::mutex> lock(impl_->conns_mu);
    conns.swap(impl_->conns);
  }
  for (auto& c : conns) c->Abort("proxy stopped");
  conns.clear();  // joins each connection's threads
}

}  // namespace ionn
