// Upload goodput through the link emulator (`ionn link`, include/ionn/link.h)
// on loopback: one or several streams send `seconds` worth of bytes at the
// set rate through the proxy to a sink; goodput = bytes / time from the
// first connect to the sink's last end of stream, as a share of the set
// rate (the goal: at least 95%). Prints a table; --json FILE writes
// the rows. Options: --seconds S (default 3), --rtt-ms R (default 2),
// --rates 10,80,400, --streams 1,4.
//
// The same measurement for another link, e.g. the kernel's (scripts/netlab.sh):
//   netlab.sh exec link_bench --sink 10.77.0.2:5001 &     # a sink, until SIGINT/SIGTERM
//   link_bench --to 10.77.0.2:5001 --rates 80             # no proxy: --rates is the rate set there
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "ionn/clock.h"
#include "ionn/link.h"
#include "ionn/model_costs.h"

using namespace ionn;

namespace {

std::vector<double> ParseList(const char* s) {
  std::vector<double> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::atof(item.c_str()));
  return v;
}

// "a.b.c.d:port" (IPv4), or exits.
sockaddr_in ParseAddress(const std::string& s) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || inet_pton(AF_INET, s.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "link_bench: '%s' is not an IPv4 address:port\n", s.c_str());
    std::exit(2);
  }
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1)));
  return a;
}

// Reads every connection to its end, counts the bytes, closes.
class Sink {
 public:
  explicit Sink(const std::string& address = "127.0.0.1:0") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = ParseAddress(address);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 64) != 0) {
      std::fprintf(stderr, "link_bench: cannot listen on %s: %s\n", address.c_str(), std::strerror(errno));
      std::exit(1);
    }
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::lock_guard<std::mutex> lock(mu_);
        readers_.emplace_back([this, c] {
          std::vector<char> buf(256 << 10);
          ssize_t n;
          while ((n = recv(c, buf.data(), buf.size(), 0)) > 0) bytes_ += static_cast<uint64_t>(n);
          close(c);
        });
      }
    });
  }
  ~Sink() {
    shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    close(fd_);
    for (auto& t : readers_) t.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  int fd_ = -1, port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> readers_;
  std::atomic<uint64_t> bytes_{0};
};

int ConnectTo(const std::string& address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = ParseAddress(address);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "link_bench: cannot connect to %s: %s\n", address.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

struct Row {
  double set_mbps = 0, rtt_ms = 0, seconds = 0, measured_mbps = 0;
  int streams = 0;
  uint64_t bytes = 0;
};

// Sends `seconds` of data at `mbps` over `streams` connections to `address`
// (a sink that closes each connection once it has read it all).
Row Send(const std::string& address, double mbps, int streams, double seconds) {
  const uint64_t per_stream = static_cast<uint64_t>(mbps * kBytesPerMsPerMbps * seconds * 1000 / streams);
  const std::vector<char> data(1 << 20, 'x');
  const double start = Clock::System().NowMs();
  std::vector<std::thread> senders;
  for (int s = 0; s < streams; ++s) {
    senders.emplace_back([&] {
      const int fd = ConnectTo(address);
      uint64_t left = per_stream;
      while (left > 0) {
        const ssize_t n = send(fd, data.data(), std::min<uint64_t>(left, data.size()), MSG_NOSIGNAL);
        if (n <= 0) std::abort();
        left -= static_cast<uint64_t>(n);
      }
      shutdown(fd, SHUT_WR);
      char c;
      while (recv(fd, &c, 1, 0) > 0) {
      }  // the sink closes once it has read everything
      close(fd);
    });
  }
  for (auto& t : senders) t.join();
  Row r;
  r.seconds = (Clock::System().NowMs() - start) / 1000;
  r.set_mbps = mbps;
  r.streams = streams;
  r.bytes = per_stream * streams;
  r.measured_mbps = r.bytes / (r.seconds * 1000 * kBytesPerMsPerMbps);
  return r;
}

// Through `ionn link` to a sink here.
Row Measure(double mbps, double rtt_ms, int streams, double seconds) {
  Sink sink;
  LinkOptions o;
  o.listen = "127.0.0.1:0";
  o.connect = sink.address();
  o.uplink_mbps = mbps;
  o.downlink_mbps = mbps;
  o.rtt_ms = rtt_ms;
  auto proxy = LinkProxy::Start(o);
  if (!proxy.ok()) {
    std::fprintf(stderr, "link_bench: %s\n", proxy.status().message().c_str());
    std::exit(1);
  }
  Row r = Send("127.0.0.1:" + std::to_string((*proxy)->port()), mbps, streams, seconds);
  r.rtt_ms = rtt_ms;
  if (sink.bytes() != r.bytes) {
    std::fprintf(stderr, "link_bench: the sink got %llu bytes of %llu\n", static_cast<unsigned long long>(sink.bytes()),
                 static_cast<unsigned long long>(r.bytes));
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, sink_at, to;
  double seconds = 3, rtt_ms = 2;
  std::vector<double> rates = {10, 80, 400}, streams = {1, 4};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    if (!std::strcmp(argv[i], "--rtt-ms") && i + 1 < argc) rtt_ms = std::atof(argv[++i]);
    if (!std::strcmp(argv[i], "--rates") && i + 1 < argc) rates = ParseList(argv[++i]);
    if (!std::strcmp(argv[i], "--streams") && i + 1 < argc) streams = ParseList(argv[++i]);
    if (!std::strcmp(argv[i], "--sink") && i + 1 < argc) sink_at = argv[++i];
    if (!std::strcmp(argv[i], "--to") && i + 1 < argc) to = argv[++i];
  }
  if (!sink_at.empty()) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    Sink sink(sink_at);
    std::fprintf(stderr, "link_bench: sink on %s until SIGINT/SIGTERM\n", sink_at.c_str());
    int sig = 0;
    sigwait(&stop, &sig);
    std::fprintf(stderr, "link_bench: sink read %llu bytes\n", static_cast<unsigned long long>(sink.bytes()));
    return 0;
  }
  if (!to.empty()) {
    std::printf(
        "upload goodput to the sink at %s, %.1f s of data per row, no proxy: set_mbps is what the link "
        "there was set to (1 Mbps = 1024*1024/8000 bytes/ms)\n",
        to.c_str(), seconds);
  } else {
    std::printf(
        "upload goodput through ionn link on loopback, %.1f s of data per row, rtt %g ms "
        "(1 Mbps = 1024*1024/8000 bytes/ms)\n",
        seconds, rtt_ms);
  }
  std::printf("%9s %8s %8s %12s %9s %13s %8s\n", "set_mbps", "rtt_ms", "streams", "bytes", "seconds", "measured_mbps",
              "percent");
  nlohmann::json rows = nlohmann::json::array();
  for (double mbps : rates) {
    for (double s : streams) {
      Row r = to.empty() ? Measure(mbps, rtt_ms, static_cast<int>(s), seconds)
                         : Send(to, mbps, static_cast<int>(s), seconds);
      r.rtt_ms = rtt_ms;  // with --to: what the link there was set to
      const double percent = 100 * r.measured_mbps / r.set_mbps;
      std::printf("%9g %8g %8d %12llu %9.3f %13.2f %7.1f%%\n", r.set_mbps, r.rtt_ms, r.streams,
                  static_cast<unsigned long long>(r.bytes), r.seconds, r.measured_mbps, percent);
      std::fflush(stdout);
      rows.push_back({{"set_mbps", r.set_mbps},
                      {"rtt_ms", r.rtt_ms},
                      {"streams", r.streams},
                      {"bytes", r.bytes},
                      {"seconds", r.seconds},
                      {"measured_mbps", r.measured_mbps},
                      {"percent", percent}});
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(1) << "\n";
  return 0;
}
