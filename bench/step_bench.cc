// Per-query-step protocol overhead on loopback: a QueryStep's round trip as
// the client sees it minus the server's execution time in the reply, for
// input tensors of several sizes (a one-layer model: global average pooling,
// so the answer is a few floats and execution takes microseconds). Beside
// it, the same bytes sent over a plain loopback TCP connection and a 12-byte
// answer back: what moving the bytes costs with no protocol at all.
//
// Usage: step_bench [--steps N] [--idle-ms MS] [--default-malloc]  (the latter: without
// TuneAllocatorForQuerySteps, to compare)
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ionn.grpc.pb.h"
#include "ionn/server.h"
#include "wire.h"

namespace ionn {
namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

Graph PoolModel(int hw) {
  Graph g;
  g.name = "pool" + std::to_string(hw);
  g.inputs.push_back({"x", {1, 3, hw, hw}});
  Layer l;
  l.name = "gap";
  l.kind = LayerKind::kGlobalAvgPool;
  l.inputs = {"x"};
  g.layers.push_back(l);
  g.outputs = {"gap"};
  if (!g.Finalize().ok()) std::abort();
  return g;
}

// Round trips of `bytes` up and 12 bytes down over a loopback TCP socket.
std::vector<double> TcpRoundTrips(size_t bytes, int steps, double idle_ms) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener, 1) != 0) std::abort();
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread echo([&] {
    int c = accept(listener, nullptr, nullptr);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<char> buf(bytes);
    for (int i = 0; i < steps; ++i) {
      size_t got = 0;
      while (got < bytes) {
        const ssize_t n = read(c, buf.data() + got, bytes - got);
        if (n <= 0) std::abort();
        got += static_cast<size_t>(n);
      }
      if (write(c, buf.data(), 12) != 12) std::abort();
    }
    close(c);
  });
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  std::vector<char> buf(bytes, 1);
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    if (idle_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(idle_ms * 1000)));
    const double t0 = NowMs();
    size_t sent = 0;
    while (sent < bytes) {
      const ssize_t n = write(s, buf.data() + sent, bytes - sent);
      if (n <= 0) std::abort();
      sent += static_cast<size_t>(n);
    }
    char back[12];
    size_t got = 0;
    while (got < 12) {
      const ssize_t n = read(s, back + got, 12 - got);
      if (n <= 0) std::abort();
      got += static_cast<size_t>(n);
    }
    ms.push_back(NowMs() - t0);
  }
  echo.join();
  close(s);
  close(listener);
  return ms;
}

int Main(int argc, char** argv) {
  int steps = 300;
  double idle_ms = 0;  // between steps, as a client waits while the server computes
  bool tune = true;
  for (int i = 1; i < argc; ++i) tune = tune && std::string(argv[i]) != "--default-malloc";
  if (tune) TuneAllocatorForQuerySteps();
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--steps") steps = std::max(10, std::atoi(argv[i + 1]));
    if (std::string(argv[i]) == "--idle-ms") idle_ms = std::max(0.0, std::atof(argv[i + 1]));
  }
  ServerOptions so;
  so.listen = "127.0.0.1:0";
  auto server = OffloadServer::Start(so);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().message().c_str());
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto stub = v1::Offload::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                                             grpc::InsecureChannelCredentials(), args));
  std::printf("%10s %6s | %22s %22s | %22s | %s\n", "input_kib", "steps", "round trip p50/p99 ms", "overhead p50/p99 ms",
              "tcp round trip p50/p99", "overhead - tcp p50");
  for (int hw : {16, 64, 224, 448}) {
    const Graph g = PoolModel(hw);
    v1::OpenSessionRequest open;
    *open.mutable_model() = net::ArchitectureToProto(g);
    open.set_ignore_held(true);
    v1::OpenSessionReply session;
    {
      grpc::ClientContext ctx;
      if (!stub->OpenSession(&ctx, open, &session).ok()) return 1;
    }
    {
      grpc::ClientContext ctx;
      v1::UploadReply reply;
      auto w = stub->Upload(&ctx, &reply);
      v1::UploadChunk chunk;
      chunk.set_session_id(session.session_id());
      chunk.add_layers(0);
      w->Write(chunk);
      w->WritesDone();
      if (!w->Finish().ok()) return 1;
    }
    const Tensor x = SeededInput(g.inputs[0].shape, 1);
    std::vector<double> rtt, overhead;
    for (int i = 0; i < steps + 20; ++i) {
      if (idle_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(idle_ms * 1000)));
      v1::QueryStepRequest req;
      req.set_session_id(session.session_id());
      req.set_query_id(static_cast<uint64_t>(i + 1));
      req.add_layers(0);
      net::TensorToProto("x", x, req.add_tensors());
      req.add_wanted("gap");
      req.set_last_step(true);
      grpc::ClientContext ctx;
      v1::QueryStepReply reply;
      const double t0 = NowMs();
      const grpc::Status st = stub->QueryStep(&ctx, req, &reply);
      const double t1 = NowMs();
      if (!st.ok()) {
        std::fprintf(stderr, "QueryStep: %s\n", st.error_message().c_str());
        return 1;
      }
      auto out = net::TensorFromProto(reply.tensors(0), g.layers[0].output_shape);
      if (!out.ok()) return 1;
      if (i >= 20) rtt.push_back(t1 - t0), overhead.push_back(t1 - t0 - reply.server_ms());
    }
    const size_t bytes = x.data.size() * 4;
    const std::vector<double> tcp = TcpRoundTrips(bytes, steps, idle_ms);
    std::printf("%10.1f %6d | %10.3f %11.3f %10.3f %11.3f | %10.3f %11.3f | %10.3f\n", bytes / 1024.0, steps,
                Quantile(rtt, 0.5), Quantile(rtt, 0.99), Quantile(overhead, 0.5), Quantile(overhead, 0.99),
                Quantile(tcp, 0.5), Quantile(tcp, 0.99), Quantile(overhead, 0.5) - Quantile(tcp, 0.5));
    std::fflush(stdout);
  }
  (*server)->Shutdown(0);
  return 0;
}

}  // namespace
}  // namespace ionn

int main(int argc, char** argv) { return ionn::Main(argc, argv); }
