// The link emulator: its stages against a manual clock, and the proxy on
// loopback against echo, sink and source servers. Bytes must arrive intact
// and in order in both directions over several connections at once; the
// rates and the delay must show in what a client measures, in generous
// bands (the shaping works: never much above the rate; and it does not
// starve: well above half of it); peers that close, reset or are not there
// leave the proxy healthy. Every socket has a timeout, so no test hangs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ionn/link.h"
#include "ionn/model_costs.h"

namespace ionn {
namespace {

double NowMs() { return Clock::System().NowMs(); }

void SetTimeouts(int fd, int seconds = 10) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int ConnectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SetTimeouts(fd);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t k = send(fd, data, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    data += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// Reads until EOF (or an error); what arrived.
std::vector<char> RecvToEnd(int fd) {
  std::vector<char> got;
  char buf[64 << 10];
  while (true) {
    const ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k <= 0) break;
    got.insert(got.end(), buf, buf + k);
  }
  return got;
}

std::vector<char> SeededBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<char> v(n);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

// A loopback server that runs `handle(fd)` on a thread per connection and
// closes the fd afterwards.
class TestServer {
 public:
  explicit TestServer(std::function<void(int)> handle) : handle_(std::move(handle)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        SetTimeouts(c);
        std::lock_guard<std::mutex> lock(mu_);
        threads_.emplace_back([this, c] {
          handle_(c);
          close(c);
        });
      }
    });
  }
  ~TestServer() {
    shutdown(fd_, SHUT_RDWR);  // wakes accept
    acceptor_.join();
    close(fd_);
    for (auto& t : threads_) t.join();
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::function<void(int)> handle_;
  int fd_ = -1, port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

void Echo(int fd) {
  char buf[16 << 10];
  while (true) {
    const ssize_t k = recv(fd, buf, sizeof buf, 0);
    if (k <= 0) break;
    if (!SendAll(fd, buf, static_cast<size_t>(k))) return;
  }
  shutdown(fd, SHUT_WR);
}

std::unique_ptr<LinkProxy> StartProxy(const std::string& upstream, double up_mbps, double down_mbps, double rtt_ms,
                                      std::function<void(const std::string&)> log = nullptr) {
  LinkOptions o;
  o.listen = "127.0.0.1:0";
  o.connect = upstream;
  o.uplink_mbps = up_mbps;
  o.downlink_mbps = down_mbps;
  o.rtt_ms = rtt_ms;
  o.log = std::move(log);
  auto p = LinkProxy::Start(o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? std::move(p).value() : nullptr;
}

// Polls `done` for up to 5 s.
bool Eventually(const std::function<bool()>& done) {
  const double until = NowMs() + 5000;
  while (NowMs() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

TEST(TokenBucket, StartsFullThenPacesAtTheRate) {
  ManualClock clock;
  TokenBucket bucket(8, 4096, &clock);  // 8 Mbps = 1048.576 bytes per ms
  const double per_ms = 8 * kBytesPerMsPerMbps;
  EXPECT_DOUBLE_EQ(bucket.bytes_per_ms(), per_ms);
  EXPECT_EQ(bucket.Reserve(4096), 0.0);
  EXPECT_NEAR(bucket.Reserve(1000), 1000 / per_ms, 1e-9);
  // Reservations queue up: the next caller waits for both.
  EXPECT_NEAR(bucket.Reserve(1000), 2000 / per_ms, 1e-9);
  clock.Advance(2000 / per_ms);
  EXPECT_NEAR(bucket.Reserve(0), 0.0, 1e-9);
  // Idle time refills up to the burst, not beyond.
  clock.Advance(1000);
  EXPECT_EQ(bucket.Reserve(4096), 0.0);
  EXPECT_NEAR(bucket.Reserve(1), 1 / per_ms, 1e-9);
}

TEST(TokenBucket, LongRunRateIsTheSetRate) {
  ManualClock clock;
  TokenBucket bucket(80, 16 << 10, &clock);
  uint64_t bytes = 0;
  const double start = clock.NowMs();
  while (clock.NowMs() - start < 1000) {
    clock.SleepMs(bucket.Reserve(1500));
    bytes += 1500;
  }
  const double rate = bytes / (clock.NowMs() - start);
  EXPECT_GT(rate, 80 * kBytesPerMsPerMbps * 0.99);
  EXPECT_LT(rate, 80 * kBytesPerMsPerMbps * 1.03);  // the burst, once
}

// With a trace the bucket earns at the trace's rate (1000 B/ms for 10 ms,
// 250 B/ms after), its time 0 when it was made; the burst still caps idle
// refills.
TEST(TokenBucket, FollowsATrace) {
  ManualClock clock;
  auto trace = std::make_shared<RateTrace>(RateTrace::Create({{0, 1000}, {10, 250}}, 0).value());
  TokenBucket bucket(trace, 1000, &clock);
  EXPECT_EQ(bucket.Reserve(1000), 0.0);             // it starts full
  EXPECT_NEAR(bucket.Reserve(9000), 9, 1e-9);       // 9 ms at 1000 B/ms
  clock.Advance(9);
  EXPECT_NEAR(bucket.Reserve(2000), 5, 1e-9);       // 1000 B by 10 ms, 1000 at 250 B/ms
  clock.Advance(105);
  EXPECT_EQ(bucket.Reserve(1000), 0.0);             // refilled to the burst, not beyond
  EXPECT_NEAR(bucket.Reserve(500), 2, 1e-9);
}

TEST(DelayLine, StampsDueTimesAndKeepsOrder) {
  ManualClock clock(100);
  DelayLine line(7, 1 << 20, &clock);
  EXPECT_TRUE(line.Push({{'a'}, 0, false}));
  clock.Advance(2);
  EXPECT_TRUE(line.Push({{'b', 'c'}, 0, false}));
  EXPECT_TRUE(line.Push({{}, 0, true}));
  auto a = line.Pop();
  auto b = line.Pop();
  auto end = line.Pop();
  ASSERT_TRUE(a && b && end);
  EXPECT_EQ(a->bytes, std::vector<char>{'a'});
  EXPECT_DOUBLE_EQ(a->due_ms, 107);
  EXPECT_EQ(b->bytes, (std::vector<char>{'b', 'c'}));
  EXPECT_DOUBLE_EQ(b->due_ms, 109);
  EXPECT_TRUE(end->end);
}

TEST(DelayLine, PushWaitsForRoomAndCloseWakesEveryone) {
  ManualClock clock;
  DelayLine line(0, 4, &clock);
  EXPECT_TRUE(line.Push({{'1', '2', '3'}, 0, false}));
  std::atomic<int> pushed{0};
  std::thread pusher([&] {
    pushed = line.Push({{'4', '5'}, 0, false}) ? 1 : 2;  // 5 bytes > 4: waits for the first to go
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(pushed.load(), 0);
  ASSERT_TRUE(line.Pop());
  pusher.join();
  EXPECT_EQ(pushed.load(), 1);
  ASSERT_TRUE(line.Pop());
  std::thread popper([&] { EXPECT_FALSE(line.Pop()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  line.Close();
  popper.join();
  EXPECT_FALSE(line.Push({{'x'}, 0, false}));
}

TEST(LinkProxy, RejectsBadOptionsNamingThem) {
  auto bad = [](LinkOptions o, const std::string& word) {
    o.listen = "127.0.0.1:0";
    auto p = LinkProxy::Start(o);
    ASSERT_FALSE(p.ok()) << word;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(word), std::string::npos) << p.status().message();
  };
  LinkOptions o;
  o.uplink_mbps = 0;
  bad(o, "uplink_mbps");
  o = {};
  o.downlink_mbps = std::numeric_limits<double>::infinity();
  bad(o, "downlink_mbps");
  o = {};
  o.uplink_mbps = std::nan("");
  bad(o, "uplink_mbps");
  o = {};
  o.rtt_ms = -1;
  bad(o, "rtt_ms");
  o = {};
  o.segment_bytes = 100;
  bad(o, "segment_bytes");
  o = {};
  o.connect = "127.0.0.1";
  bad(o, "127.0.0.1");
  o = {};
  o.connect = "127.0.0.1:70000";
  bad(o, "70000");
}

TEST(LinkProxy, BytesArriveIntactAndInOrderBothWaysOverSeveralConnections) {
  TestServer echo(Echo);
  std::mutex log_mu;
  std::vector<std::string> lines;
  auto proxy = StartProxy(echo.address(), 400, 400, 2, [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(log_mu);
    lines.push_back(l);
  });
  ASSERT_TRUE(proxy);
  constexpr int kConnections = 4;
  constexpr size_t kBytes = 512 << 10;
  std::vector<std::thread> clients;
  std::vector<int> intact(kConnections, 0);
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      const std::vector<char> sent = SeededBytes(kBytes + 1000 * c, 17 + c);
      const int fd = ConnectTo(proxy->port());
      ASSERT_GE(fd, 0);
      std::thread writer([&] {
        EXPECT_TRUE(SendAll(fd, sent.data(), sent.size()));
        shutdown(fd, SHUT_WR);  // half-close: the echo still answers
      });
      const std::vector<char> got = RecvToEnd(fd);
      writer.join();
      close(fd);
      intact[c] = got == sent;
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kConnections; ++c) EXPECT_TRUE(intact[c]) << "connection " << c;
  ASSERT_TRUE(Eventually([&] { return proxy->stats().connections_open == 0; }));
  const LinkStats st = proxy->stats();
  const uint64_t total = kConnections * kBytes + 1000 * (0 + 1 + 2 + 3);
  EXPECT_EQ(st.connections_accepted, uint64_t{kConnections});
  EXPECT_EQ(st.connections_reset, 0u);
  EXPECT_EQ(st.uplink_bytes, total);
  EXPECT_EQ(st.downlink_bytes, total);
  std::lock_guard<std::mutex> lock(log_mu);
  ASSERT_EQ(lines.size(), size_t{kConnections});
  for (const auto& l : lines) EXPECT_NE(l.find(" closed after "), std::string::npos) << l;
}

// Sends `bytes` through the proxy to a sink; goodput in Mbps from the first
// byte sent to the sink's end of stream, over `streams` connections.
double UploadMbps(int streams, double mbps, double seconds) {
  std::atomic<uint64_t> received{0};
  TestServer sink([&](int fd) { received += RecvToEnd(fd).size(); });
  auto proxy = StartProxy(sink.address(), mbps, 1000, 0);
  if (!proxy) return 0;
  const uint64_t per_stream = static_cast<uint64_t>(mbps * kBytesPerMsPerMbps * seconds * 1000 / streams);
  const std::vector<char> data = SeededBytes(per_stream, 5);
  const double start = NowMs();
  std::vector<std::thread> senders;
  for (int s = 0; s < streams; ++s) {
    senders.emplace_back([&] {
      const int fd = ConnectTo(proxy->port());
      ASSERT_GE(fd, 0);
      EXPECT_TRUE(SendAll(fd, data.data(), data.size()));
      shutdown(fd, SHUT_WR);
      RecvToEnd(fd);  // the sink closes once it has it all
      close(fd);
    });
  }
  for (auto& t : senders) t.join();
  const double ms = NowMs() - start;
  EXPECT_EQ(received.load(), per_stream * streams);
  return received.load() / (ms * kBytesPerMsPerMbps);
}

TEST(LinkProxy, UploadGoodputFollowsTheSetRate) {
  for (double mbps : {10.0, 80.0}) {
    const double got = UploadMbps(1, mbps, 0.5);
    EXPECT_LE(got, 1.1 * mbps) << "set " << mbps << " Mbps";
    EXPECT_GT(got, 0.5 * mbps) << "set " << mbps << " Mbps";
  }
}

TEST(LinkProxy, ConnectionsShareOneRatePerDirection) {
  const double got = UploadMbps(3, 10, 0.6);
  EXPECT_LE(got, 1.1 * 10);
  EXPECT_GT(got, 0.5 * 10);
}

TEST(LinkProxy, DownlinkHasItsOwnRate) {
  const size_t bytes = static_cast<size_t>(10 * kBytesPerMsPerMbps * 500);  // 0.5 s at 10 Mbps
  const std::vector<char> data = SeededBytes(bytes, 9);
  TestServer source([&](int fd) {
    SendAll(fd, data.data(), data.size());
    shutdown(fd, SHUT_WR);
    RecvToEnd(fd);
  });
  auto proxy = StartProxy(source.address(), 1000, 10, 0);
  ASSERT_TRUE(proxy);
  const double start = NowMs();
  const int fd = ConnectTo(proxy->port());
  ASSERT_GE(fd, 0);
  const std::vector<char> got = RecvToEnd(fd);
  const double mbps = got.size() / ((NowMs() - start) * kBytesPerMsPerMbps);
  close(fd);
  EXPECT_TRUE(got == data);
  EXPECT_LE(mbps, 1.1 * 10);
  EXPECT_GT(mbps, 0.5 * 10);
}

// Median round trip of a 1-byte ping-pong through an echo, in ms.
double PingPongMs(int port) {
  const int fd = ConnectTo(port);
  EXPECT_GE(fd, 0);
  std::vector<double> ms;
  char byte = 'p';
  for (int i = 0; i < 9; ++i) {
    const double t0 = NowMs();
    if (!SendAll(fd, &byte, 1) || recv(fd, &byte, 1, MSG_WAITALL) != 1) break;
    ms.push_back(NowMs() - t0);
  }
  close(fd);
  if (ms.empty()) return -1;
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

TEST(LinkProxy, RttAddsTheSetDelayToAPingPong) {
  TestServer echo(Echo);
  auto proxy = StartProxy(echo.address(), 80, 80, 20);
  ASSERT_TRUE(proxy);
  const double rtt = PingPongMs(proxy->port());
  EXPECT_GE(rtt, 20 * 0.95);
  EXPECT_LT(rtt, 20 + 150);  // generous: a loaded machine may schedule late
}

TEST(LinkProxy, AServerThatResetsClosesThePair) {
  // Reads a little, then resets the connection.
  TestServer resetter([](int fd) {
    char buf[1024];
    (void)recv(fd, buf, sizeof buf, MSG_WAITALL);
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  });
  std::vector<std::string> lines;
  std::mutex log_mu;
  auto proxy = StartProxy(resetter.address(), 100, 100, 0, [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(log_mu);
    lines.push_back(l);
  });
  ASSERT_TRUE(proxy);
  const int fd = ConnectTo(proxy->port());
  ASSERT_GE(fd, 0);
  const std::vector<char> data = SeededBytes(4096, 3);
  EXPECT_TRUE(SendAll(fd, data.data(), data.size()));
  // The client sees its connection end (a reset, or an end of stream) rather than hang.
  char buf[64];
  EXPECT_LE(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  ASSERT_TRUE(Eventually([&] { return proxy->stats().connections_open == 0; }));
  EXPECT_EQ(proxy->stats().connections_reset, 1u);
  std::lock_guard<std::mutex> lock(log_mu);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" reset after "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("server"), std::string::npos) << lines[0];
}

TEST(LinkProxy, AClientThatResetsOrClosesEarlyLeavesTheProxyHealthy) {
  std::atomic<int> ended{0};
  TestServer sink([&](int fd) {
    RecvToEnd(fd);
    ended++;
  });
  auto proxy = StartProxy(sink.address(), 100, 100, 1);
  ASSERT_TRUE(proxy);
  for (int i = 0; i < 3; ++i) {
    const int fd = ConnectTo(proxy->port());
    ASSERT_GE(fd, 0);
    const std::vector<char> data = SeededBytes(8192, i);
    EXPECT_TRUE(SendAll(fd, data.data(), data.size()));
    if (i % 2 == 0) {
      linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
  }
  EXPECT_TRUE(Eventually([&] { return ended.load() == 3 && proxy->stats().connections_open == 0; }));
  EXPECT_EQ(proxy->stats().connections_accepted, 3u);
}

TEST(LinkProxy, AServerThatIsNotThereRefusesTheClient) {
  int port = 0;
  {
    TestServer gone([](int) {});
    port = gone.port();
  }
  auto proxy = StartProxy("127.0.0.1:" + std::to_string(port), 80, 80, 0);
  ASSERT_TRUE(proxy);
  const int fd = ConnectTo(proxy->port());
  ASSERT_GE(fd, 0);
  char buf[16];
  EXPECT_LE(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  EXPECT_TRUE(Eventually([&] { return proxy->stats().connections_failed == 1; }));
  EXPECT_EQ(proxy->stats().connections_open, 0u);
}

TEST(LinkProxy, StopEndsOpenConnectionsAndIsIdempotent) {
  TestServer echo(Echo);
  auto proxy = StartProxy(echo.address(), 1, 1, 50);  // slow: data is still in flight at Stop
  ASSERT_TRUE(proxy);
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(ConnectTo(proxy->port()));
    ASSERT_GE(fds.back(), 0);
    const std::vector<char> data = SeededBytes(20000, i);
    EXPECT_TRUE(SendAll(fds.back(), data.data(), data.size()));
  }
  ASSERT_TRUE(Eventually([&] { return proxy->stats().connections_open == 3; }));
  const double t0 = NowMs();
  proxy->Stop();
  EXPECT_LT(NowMs() - t0, 2000);  // not waiting for the 1 Mbps link to drain
  proxy->Stop();
  EXPECT_EQ(proxy->stats().connections_open, 0u);
  for (int fd : fds) {
    RecvToEnd(fd);  // returns: the connection was ended
    close(fd);
  }
  EXPECT_LT(ConnectTo(proxy->port()), 0);  // no longer listening
}

TEST(LinkProxy, PeersSeeTheSegmentSizeOfAnEthernetLink) {
  std::atomic<int> server_mss{0};
  TestServer echo([&](int fd) {
    int mss = 0;
    socklen_t len = sizeof mss;
    getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
    server_mss = mss;
    Echo(fd);
  });
  auto proxy = StartProxy(echo.address(), 80, 80, 0);
  ASSERT_TRUE(proxy);
  const int fd = ConnectTo(proxy->port());
  ASSERT_GE(fd, 0);
  int mss = 0;
  socklen_t len = sizeof mss;
  getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
  EXPECT_LE(mss, 1448);  // not loopback's 65483
  char ping = 'x';
  EXPECT_TRUE(SendAll(fd, &ping, 1));
  EXPECT_EQ(recv(fd, &ping, 1, MSG_WAITALL), 1);
  close(fd);
  EXPECT_GT(server_mss.load(), 0);
  EXPECT_LE(server_mss.load(), 1448);
}

TEST(LinkProxy, RefusesConnectionsBeyondTheLimit) {
  TestServer echo(Echo);
  LinkOptions o;
  o.listen = "127.0.0.1:0";
  o.connect = echo.address();
  o.max_connections = 1;
  auto proxy = LinkProxy::Start(o);
  ASSERT_TRUE(proxy.ok()) << proxy.status().message();
  const int first = ConnectTo((*proxy)->port());
  ASSERT_TRUE(Eventually([&] { return (*proxy)->stats().connections_open == 1; }));
  const int second = ConnectTo((*proxy)->port());
  char buf[4];
  EXPECT_LE(recv(second, buf, sizeof buf, 0), 0);
  EXPECT_EQ((*proxy)->stats().connections_failed, 1u);
  // The first still echoes.
  char ping = 'x';
  EXPECT_TRUE(SendAll(first, &ping, 1));
  EXPECT_EQ(recv(first, buf, 1, MSG_WAITALL), 1);
  close(first);
  close(second);
}

}  // namespace
}  // namespace ionn
