// The real system on loopback: an edge server and clients in one process,
// real layers, real bytes over gRPC. Queries during the upload must equal a
// whole-model run here; bad calls get a status naming what was wrong and
// leave the session and the server healthy.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <cmath>
#include <random>
#include <set>
#include <thread>

#include "ionn.grpc.pb.h"
#include "ionn/client.h"
#include "ionn/link.h"
#include "ionn/model_costs.h"
#include "ionn/server.h"
#include "ionn/zoo.h"
#include "layer_store.h"
#include "wire.h"
#include "../fuzz/small_model.h"

namespace ionn {
namespace {

const std::string kPaper = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";

std::unique_ptr<OffloadServer> StartServer(ServerOptions o = {}) {
  o.listen = "127.0.0.1:0";
  o.regression = ReadRegressionCsv(kPaper + "server_regression.csv").value();
  auto s = OffloadServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Waits (at most 30 s) until the server's stats satisfy `done`. A client's
// last call returns before the server's handler has ended, and a session a
// call still holds (an upload being cancelled, say) ends with that call:
// stats that follow from it are read once they have settled.
template <typename Done>
bool WaitForStats(const OffloadServer& server, Done done) {
  for (int i = 0; i < 3000; ++i) {
    if (done(server.stats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// No call in flight and no session open: every session has ended.
bool Settled(const ServerStats& st) { return st.calls_in_flight == 0 && st.sessions == 0; }

ClientOptions Options(const Graph& g, int port, const std::string& profile_file) {
  ClientOptions o;
  o.servers = {"127.0.0.1:" + std::to_string(port)};
  o.client_profile = ReadProfileCsv(kPaper + profile_file).value();
  for (const auto& in : g.inputs) o.inputs[in.name] = SeededInput(in.shape, 7);
  o.chunk_bytes = 256 << 10;
  o.reconnect_backoff_ms = 50;  // a lost server: 8 attempts within about a second
  o.reconnect_backoff_max_ms = 200;
  return o;
}

double MaxRelError(const TensorMap& got, const TensorMap& want) {
  double worst = 0;
  for (const auto& [name, w] : want) {
    const Tensor& g = got.at(name);
    if (g.shape != w.shape) return 1e9;
    double diff = 0, scale = 0;
    for (size_t i = 0; i < w.data.size(); ++i) {
      diff = std::max(diff, double(std::fabs(g.data[i] - w.data[i])));
      scale = std::max(scale, double(std::fabs(w.data[i])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-30));
  }
  return worst;
}

struct Checked {
  int queries = 0, wrong = 0, offloaded = 0;
};

// Runs a client on zoo `model`; every query's outputs against a local run.
// `more_ports`: servers to go on with after a loss.
Result<ClientResult> RunChecked(const std::string& model, const std::string& profile, int port, Checked* c,
                                const std::function<void(const ClientProgress&)>& progress = nullptr,
                                const std::vector<int>& more_ports = {}) {
  Graph g = BuildZooModel(model, 3).value();
  auto local = Engine::Create(g).value();
  ClientOptions o = Options(g, port, profile);
  for (int p : more_ports) o.servers.push_back("127.0.0.1:" + std::to_string(p));
  const TensorMap want = local->RunAll(o.inputs).value();
  return RunClient(g, o, progress, [&](const ClientQuery& q, const TensorMap& out) {
    ++c->queries;
    c->offloaded += q.server_layers > 0;
    if (MaxRelError(out, want) > 1e-5) ++c->wrong;
  });
}

// A slow client (50 ms a layer) of `g` against a server on loopback that
// predicts its own times (types the paper's regression lacks: nearly 0):
// some queries run layers on the server, and every output of every query
// equals a local run.
void ExpectOffloadedQueriesEqualLocalRuns(const Graph& g) {
  ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.regression = ReadRegressionCsv(kPaper + "server_regression.csv").value();
  for (const Layer& l : g.layers) so.regression.by_type.emplace(LayerKindCaffeType(l.kind), std::make_pair(1e-7, 0.01));
  auto server = OffloadServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status().message();
  ClientOptions o;
  o.servers = {"127.0.0.1:" + std::to_string((*server)->port())};
  for (const auto& in : g.inputs) o.inputs[in.name] = SeededInput(in.shape, 7);
  for (const auto& l : g.layers) {
    o.client_profile.order.push_back(l.name);
    o.client_profile.rows[l.name].client_ms = 50.0;
  }
  o.link.uplink_mbps = o.link.downlink_mbps = 1000;
  o.max_queries = 6;
  o.duration_ms = -1;
  const TensorMap want = Engine::Create(g).value()->RunAll(o.inputs).value();
  size_t outputs = 0;
  int wrong = 0, offloaded = 0;
  auto r = RunClient(g, o, nullptr, [&](const ClientQuery& q, const TensorMap& out) {
    offloaded += q.server_layers > 0;
    outputs = out.size();
    wrong += MaxRelError(out, want) > 1e-5;
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->server_lost) << r->server_error;
  EXPECT_GT(offloaded, 0);
  EXPECT_EQ(outputs, g.outputs.size());
  EXPECT_EQ(wrong, 0);
}

TEST(Net, UploadInManyPartitionsWithQueriesThatEqualLocalRuns) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Checked c;
  auto r = RunChecked("googlenet", "googlenet.csv", server->port(), &c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->upload_complete) << r->upload_error;
  EXPECT_FALSE(r->server_lost) << r->server_error;
  EXPECT_GT(r->plan.partitions.size(), 5u);
  EXPECT_EQ(r->partitions.size(), r->plan.partitions.size());
  EXPECT_EQ(c.wrong, 0);
  EXPECT_GT(c.offloaded, 0);
  EXPECT_GE(c.queries, 6);  // at least one during the upload + five after
  for (size_t p = 1; p < r->partitions.size(); ++p) {
    EXPECT_GE(r->partitions[p].start_ms, r->partitions[p - 1].acked_ms);  // in plan order, one at a time
  }
  EXPECT_EQ(server->stats().sessions, 0);  // closed at the end
  EXPECT_GT(server->stats().query_steps, 0u);
}

// A model with the kinds PyTorch's exports add (their attributes travel in
// the architecture, their constants as weights): split between client and
// server, every query equals a local run.
TEST(Net, ExportedModelKindsOffloadAndEqualLocalRuns) {
  std::mt19937 rng(5);
  auto random = [&](int64_t n) {
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  Graph g;
  g.name = "exported_kinds";
  g.inputs = {{"x", {1, 8, 12, 12}}};
  auto add = [&](Layer l, std::vector<std::string> inputs) {
    l.name = "l" + std::to_string(g.layers.size());
    l.inputs = std::move(inputs);
    g.layers.push_back(l);
    return l.name;
  };
  Layer conv;
  conv.kind = LayerKind::kConv;
  conv.out_channels = 8, conv.kernel_h = conv.kernel_w = 3, conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
  conv.weights = {{"w", {8, 8, 3, 3}, random(8 * 8 * 9)}, {"b", {8}, random(8)}};
  std::string t = add(conv, {"x"});
  Layer sig;
  sig.kind = LayerKind::kSigmoid;
  const std::string s = add(sig, {t});
  Layer mul;
  mul.kind = LayerKind::kMul;
  t = add(mul, {t, s});  // SiLU
  Layer up;  // a kind whose attributes travel as Layer::attrs
  up.kind = LayerKind::kResize;
  up.attrs["mode"].text = "linear";
  up.attrs["coordinate_transformation_mode"].text = "half_pixel";
  up.attrs["nearest_mode"].text = "floor";
  up.attrs["scales"].floats = {2, 3};
  up.attrs["sizes"].ints = {24, 36};
  t = add(up, {t});
  Layer down;
  down.kind = LayerKind::kMaxPool;
  down.kernel_h = 2, down.kernel_w = 3, down.stride_h = 2, down.stride_w = 3;
  t = add(down, {t});
  Layer pad;
  pad.kind = LayerKind::kPad;
  pad.pad_top = pad.pad_left = 1, pad.pad_value = 0.5f;
  t = add(pad, {t});
  Layer hs;
  hs.kind = LayerKind::kHardSigmoid;
  hs.alpha = 0.25f, hs.beta = 0.375f;
  t = add(hs, {t});
  Layer scale;
  scale.kind = LayerKind::kMul;
  scale.weights = {{"scale", {8, 1, 1}, random(8)}};
  scale.weight_first = true;
  t = add(scale, {t});
  Layer reshape;
  reshape.kind = LayerKind::kReshape;
  reshape.reshape_to = {1, 2, 4, 13, 13};
  t = add(reshape, {t});
  Layer tr;
  tr.kind = LayerKind::kTranspose;
  tr.perm = {0, 2, 1, 3, 4};
  t = add(tr, {t});
  reshape.reshape_to = {1, 8, 13, 13};
  t = add(reshape, {t});
  Layer half;
  half.kind = LayerKind::kSlice;
  half.axis = 1, half.slice_begin = 2, half.slice_end = 6;
  t = add(half, {t});
  Layer swish;
  swish.kind = LayerKind::kHardSwish;
  t = add(swish, {t});
  Layer mean;
  mean.kind = LayerKind::kReduceMean;
  mean.attrs["axes"].ints = {2, 3};
  mean.attrs["keepdims"].ints = {0};
  t = add(mean, {t});
  Layer div;
  div.kind = LayerKind::kDiv;
  div.weights = {{"d", {4}, {1.0f, 2.0f, 4.0f, 8.0f}}};
  t = add(div, {t});
  g.outputs = {t};
  ASSERT_TRUE(g.Finalize().ok());

  ExpectOffloadedQueriesEqualLocalRuns(g);
}

// A transformer's pieces and issue 23's kinds (LayerNorm, attention's
// MatMul of two computed tensors, Softmax, a class token, Gather, strided
// Slice, Erf, Max, Min, ConvTranspose) in a model of two outputs: every
// query's outputs, both, equal a local run; layers on both sides.
TEST(Net, ATransformerOfTwoOutputsOffloadsAndEqualsLocalRuns) {
  const Graph g = fuzz::SmallTransformerModel();
  ASSERT_EQ(g.outputs.size(), 2u);
  ExpectOffloadedQueriesEqualLocalRuns(g);
}

TEST(Net, TwoClientsWithDifferentModelsAtOnce) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Checked a, b;
  Result<ClientResult> ra = Status::Internal("not run"), rb = Status::Internal("not run");
  std::thread t([&] { ra = RunChecked("mobilenet", "mobilenet.csv", server->port(), &a); });
  rb = RunChecked("googlenet", "googlenet.csv", server->port(), &b);
  t.join();
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status().message() << " / " << rb.status().message();
  EXPECT_EQ(a.wrong + b.wrong, 0);
  EXPECT_TRUE(ra->upload_complete && rb->upload_complete);
  EXPECT_GT(a.offloaded + b.offloaded, 0);
}

// The content-addressed layer store: a client that comes back uploads
// nothing the server holds, plans it as uploaded at time 0 and runs its
// first query at the optimal placement; asked to, it uploads everything
// as at a first meeting.
TEST(Net, ReturningClientUploadsNothingHeld) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Checked first;
  auto r1 = RunChecked("googlenet", "googlenet.csv", server->port(), &first);
  ASSERT_TRUE(r1.ok()) << r1.status().message();
  ASSERT_TRUE(r1->upload_complete) << r1->upload_error;
  EXPECT_EQ(r1->held_layers, 0);
  ASSERT_TRUE(WaitForStats(*server, Settled));
  const uint64_t uploaded = server->stats().bytes_uploaded;
  EXPECT_GT(uploaded, 0u);
  EXPECT_GT(server->stats().store_entries, 0u);

  Checked again;
  auto r2 = RunChecked("googlenet", "googlenet.csv", server->port(), &again);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_FALSE(r2->server_lost) << r2->server_error;
  const int n = static_cast<int>(r2->costs.num_layers());
  EXPECT_EQ(r2->held_layers, n);
  EXPECT_EQ(r2->held_bytes, static_cast<int64_t>(uploaded));
  EXPECT_EQ(server->stats().bytes_uploaded, uploaded);  // not one byte more
  ASSERT_EQ(r2->plan.partitions.size(), 1u);
  EXPECT_EQ(r2->plan.partitions[0].upload_ms, 0.0);
  EXPECT_TRUE(r2->upload_complete);
  EXPECT_EQ(r2->upload_ms, 0.0);
  ASSERT_FALSE(r2->queries.empty());
  EXPECT_NEAR(r2->queries[0].predicted_ms, r2->plan.latency_optimal_ms, 1e-9);
  EXPECT_GT(r2->queries[0].server_layers, 0);
  EXPECT_EQ(again.wrong, 0);

  // Ignoring what the server holds: the first meeting's plan and bytes.
  Graph g = BuildZooModel("googlenet", 3).value();
  ClientOptions o = Options(g, server->port(), "googlenet.csv");
  o.use_held = false;
  o.max_queries = 3;
  o.duration_ms = -1;
  auto r3 = RunClient(g, o);
  ASSERT_TRUE(r3.ok()) << r3.status().message();
  EXPECT_EQ(r3->held_layers, 0);
  EXPECT_EQ(r3->plan.partitions.size(), r1->plan.partitions.size());
}

// Held is per layer, by content: the same architecture with other weights
// shares only the layers without weights (pooling, ReLU, ...).
TEST(Net, OtherWeightsShareOnlyWeightlessLayers) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Checked first;
  ASSERT_TRUE(RunChecked("mobilenet", "mobilenet.csv", server->port(), &first).ok());
  Graph g = BuildZooModel("mobilenet", 4).value();  // other seed, other weights
  auto local = Engine::Create(g).value();
  ClientOptions o = Options(g, server->port(), "mobilenet.csv");
  const TensorMap want = local->RunAll(o.inputs).value();
  int wrong = 0;
  auto r = RunClient(g, o, nullptr, [&](const ClientQuery&, const TensorMap& out) { wrong += MaxRelError(out, want) > 1e-5; });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->upload_complete);
  int weightless = 0;
  for (const auto& l : g.layers) weightless += l.weights.empty();
  EXPECT_EQ(r->held_layers, weightless);
  EXPECT_EQ(r->held_bytes, 0);
  EXPECT_EQ(wrong, 0);
}

// With no room for unused layers, the store forgets a model once its
// session ends: the client that comes back uploads it again.
TEST(Net, StoreWithoutRoomEvictsWhatNoSessionUses) {
  ServerOptions so;
  so.store_bytes = 0;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  Checked a, b;
  ASSERT_TRUE(RunChecked("mobilenet", "mobilenet.csv", server->port(), &a).ok());
  ASSERT_TRUE(WaitForStats(*server, Settled));
  EXPECT_EQ(server->stats().store_bytes, 0u);
  EXPECT_EQ(server->stats().store_entries, 0u);  // fused and weightless kernels too
  EXPECT_GT(server->stats().store_evictions, 0u);
  auto r = RunChecked("mobilenet", "mobilenet.csv", server->port(), &b);
  ASSERT_TRUE(r.ok());
  int with_weights = 0;
  for (const auto& p : r->plan.partitions) {
    for (int k : p.layers) with_weights += r->costs.layer(k).upload_ms > 0;
  }
  EXPECT_EQ(r->held_bytes, 0);
  EXPECT_GT(with_weights, 0);
  EXPECT_EQ(a.wrong + b.wrong, 0);
}

// GET `path` from 127.0.0.1:`port` over plain HTTP/1.0; the whole answer.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<size_t>(n));
  close(fd);
  return answer;
}

// The Prometheus endpoint counts what the server did.
TEST(Net, MetricsEndpointCountsSessionsUploadsAndSteps) {
  ServerOptions so;
  so.metrics_listen = "127.0.0.1:0";
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  ASSERT_GT(server->metrics_port(), 0);
  Checked c;
  auto r = RunChecked("mobilenet", "mobilenet.csv", server->port(), &c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string text = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_NE(text.find("200 OK"), std::string::npos) << text.substr(0, 200);
  const ServerStats st = server->stats();
  EXPECT_NE(text.find("ionn_query_steps_total " + std::to_string(st.query_steps)), std::string::npos) << text;
  EXPECT_NE(text.find("ionn_uploaded_bytes_total " + std::to_string(st.bytes_uploaded)), std::string::npos);
  EXPECT_NE(text.find("ionn_sessions 0"), std::string::npos);
  EXPECT_NE(text.find("ionn_query_step_seconds_count " + std::to_string(st.query_steps)), std::string::npos);
  EXPECT_GT(st.query_steps, 0u);

  ServerOptions taken;
  taken.metrics_listen = "127.0.0.1:" + std::to_string(server->metrics_port());  // in use
  taken.listen = "127.0.0.1:0";
  auto second = OffloadServer::Start(taken);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot serve metrics"), std::string::npos) << second.status().message();
}

// The server goes away mid-upload: the client goes on locally, says so,
// and loses no query.
TEST(Net, ServerLostMidUploadClientGoesOnLocally) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Checked c;
  std::atomic<bool> killed{false};
  auto r = RunChecked("googlenet", "googlenet.csv", server->port(), &c, [&](const ClientProgress& p) {
    if (p.partitions_acked == 3 && !killed.exchange(true)) server->Shutdown(0);
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(killed);
  EXPECT_FALSE(r->upload_complete);
  EXPECT_EQ(r->partitions.size(), 3u);
  EXPECT_EQ(r->sessions.size(), 1u);  // its one server stayed away: every attempt failed
  EXPECT_EQ(r->reconnect_attempts, 8);
  EXPECT_EQ(c.wrong, 0);
  EXPECT_GE(c.queries, 5);
  EXPECT_EQ(c.queries, static_cast<int>(r->queries.size()));
}

// The server goes away mid-upload; the client goes on with the next one
// of its list, uploads everything there (it holds none of it) and loses
// no query.
TEST(Net, ServerLostMidUploadClientResumesWithTheNextServer) {
  auto a = StartServer(), b = StartServer();
  ASSERT_TRUE(a && b);
  Checked c;
  std::atomic<bool> killed{false};
  auto r = RunChecked(
      "googlenet", "googlenet.csv", a->port(), &c,
      [&](const ClientProgress& p) {
        if (p.partitions_acked == 3 && !killed.exchange(true)) a->Shutdown(0);
      },
      {b->port()});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->sessions.size(), 2u) << r->server_error;
  EXPECT_FALSE(r->sessions[0].lost.empty());
  EXPECT_EQ(r->sessions[0].acked, 3);
  EXPECT_TRUE(r->sessions[1].lost.empty()) << r->sessions[1].lost;
  EXPECT_EQ(r->server, "127.0.0.1:" + std::to_string(b->port()));
  EXPECT_TRUE(r->server_lost);
  EXPECT_TRUE(r->upload_complete);
  EXPECT_EQ(c.wrong, 0);
  EXPECT_EQ(c.queries, static_cast<int>(r->queries.size()));
  EXPECT_GT(r->queries.back().server_layers, 0);  // offloading again, to b
  int64_t weights = 0;
  const Graph g = BuildZooModel("googlenet", 3).value();
  for (const auto& l : g.layers) weights += net::LayerUploadBytes(l);
  EXPECT_EQ(b->stats().bytes_uploaded, static_cast<uint64_t>(weights));
}

// The link goes down for a moment mid-upload (every connection reset): the
// client opens a new session with the same server, which holds what was
// uploaded before the cut (proven), and sends only the rest.
TEST(Net, LinkCutMidUploadClientResumesUploadingOnlyWhatTheServerLacks) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(server->port());
  lo.uplink_mbps = lo.downlink_mbps = 100;
  auto link = LinkProxy::Start(lo);
  ASSERT_TRUE(link.ok()) << link.status().message();
  Checked c;
  // The cut must catch the next partition's upload on the wire: a cut
  // between calls is no loss (gRPC just connects again). After the third
  // acknowledgement, a watcher cuts as soon as more bytes go up.
  std::atomic<int64_t> bytes_at_third{-1};
  std::atomic<int> cut{-1};
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && cut < 0) {
      const int64_t at = bytes_at_third;
      if (at >= 0 && static_cast<int64_t>((*link)->stats().uplink_bytes) > at) cut = (*link)->CutAll();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  auto r = RunChecked("googlenet", "googlenet.csv", (*link)->port(), &c, [&](const ClientProgress& p) {
    int64_t none = -1;
    if (p.partitions_acked == 3) bytes_at_third.compare_exchange_strong(none, (*link)->stats().uplink_bytes);
  });
  done = true;
  watcher.join();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(cut.load(), 1);
  ASSERT_GE(r->sessions.size(), 2u) << r->server_error;
  EXPECT_FALSE(r->sessions[0].lost.empty());
  EXPECT_TRUE(r->upload_complete) << r->server_error;
  EXPECT_EQ(c.wrong, 0);
  EXPECT_EQ(c.queries, static_cast<int>(r->queries.size()));
  // What the first session had acknowledged is held by the last, not sent again.
  const ClientSession& last = r->sessions.back();
  int first_layers = 0;
  int64_t first_bytes = 0, sent_last = 0;
  for (const auto& p : r->partitions) {
    if (p.session == 0) first_layers += p.layers, first_bytes += p.bytes;
    if (p.session == static_cast<int>(r->sessions.size()) - 1 && !p.held) sent_last += p.bytes;
  }
  EXPECT_GE(last.held_layers, first_layers);
  EXPECT_GE(last.held_bytes, first_bytes);
  int64_t weights = 0;
  const Graph g = BuildZooModel("googlenet", 3).value();
  for (const auto& l : g.layers) weights += net::LayerUploadBytes(l);
  EXPECT_EQ(sent_last, weights - last.held_bytes);
  EXPECT_GT(first_bytes, 0);
}

// A small model whose middle layer is one large fully connected layer
// (about 2 MiB of weights): its partition is what a slow link carries long.
Graph BigLayerModel(int big_outputs = 2048) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  Graph g;
  g.name = "big_layer";
  g.inputs = {{"x", {1, 256}}};
  Layer fc;
  fc.kind = LayerKind::kFc;
  fc.name = "small", fc.inputs = {"x"}, fc.out_channels = 256;
  fc.weights = {{"w", {256, 256}, random(256 * 256)}, {"b", {256}, random(256)}};
  g.layers.push_back(fc);
  fc.name = "big", fc.inputs = {"small"}, fc.out_channels = big_outputs;
  fc.weights = {{"w", {big_outputs, 256}, random(big_outputs * 256)}, {"b", {big_outputs}, random(big_outputs)}};
  g.layers.push_back(fc);
  Layer relu;
  relu.kind = LayerKind::kRelu;
  relu.name = "relu", relu.inputs = {"big"};
  g.layers.push_back(relu);
  fc.name = "out", fc.inputs = {"relu"}, fc.out_channels = 10;
  fc.weights = {{"w", {10, big_outputs}, random(10 * big_outputs)}, {"b", {10}, random(10)}};
  g.layers.push_back(fc);
  g.outputs = {"out"};
  EXPECT_TRUE(g.Finalize().ok());
  return g;
}

int64_t WeightBytes(const Graph& g) {
  int64_t bytes = 0;
  for (const auto& l : g.layers) bytes += net::LayerUploadBytes(l);
  return bytes;
}

// A slow device (every layer 40 ms here) whose upload goes through `link`;
// every query checked against a run here.
ClientOptions SlowLinkOptions(const Graph& g, int port) {
  ClientOptions o;
  o.servers = {"127.0.0.1:" + std::to_string(port)};
  o.inputs["x"] = SeededInput(g.inputs[0].shape, 7);
  for (const auto& l : g.layers) {
    o.client_profile.order.push_back(l.name);
    o.client_profile.rows[l.name].client_ms = 40.0;
  }
  o.emulate_profile = true;
  o.chunk_bytes = 64 << 10;
  o.reconnect_backoff_ms = 50;
  o.reconnect_backoff_max_ms = 200;
  return o;
}

// Runs a client on `g`; every query's outputs against a run here (the
// wrong ones counted in `wrong`).
Result<ClientResult> RunVerified(const Graph& g, const ClientOptions& o, int* wrong) {
  const TensorMap want = Engine::Create(g).value()->RunAll(o.inputs).value();
  return RunClient(g, o, nullptr,
                   [&](const ClientQuery&, const TensorMap& out) { *wrong += MaxRelError(out, want) > 1e-5; });
}

// Calls `act` once, from a thread of its own, as soon as `link` has carried
// more than `bytes` up; the destructor waits for it.
class OnUplinkBytes {
 public:
  OnUplinkBytes(LinkProxy& link, uint64_t bytes, std::function<void()> act)
      : thread_([this, &link, bytes, act = std::move(act)] {
          while (!done_) {
            if (link.stats().uplink_bytes > bytes) {
              act();
              acted_ = true;
              return;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          }
        }) {}
  ~OnUplinkBytes() { Join(); }
  bool Join() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return acted_;
  }

 private:
  std::atomic<bool> done_{false}, acted_{false};
  std::thread thread_;
};

// A partition that takes several times the client's call deadline on a
// slow link completes in one call: the upload's deadline follows its
// bytes, and the weights cross the link once.
TEST(Net, APartitionLongerThanTheCallDeadlineUploadsOnceOnASlowLink) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(server->port());
  lo.uplink_mbps = 5;  // the big layer: about 3.4 s
  lo.downlink_mbps = 100;
  auto link = LinkProxy::Start(lo);
  ASSERT_TRUE(link.ok()) << link.status().message();
  const Graph g = BigLayerModel();
  ClientOptions o = SlowLinkOptions(g, (*link)->port());
  o.call_deadline_ms = 1000;
  o.link.uplink_mbps = o.link.downlink_mbps = 5;
  int wrong = 0;
  auto r = RunVerified(g, o, &wrong);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->upload_complete) << r->server_error << r->upload_error;
  EXPECT_FALSE(r->server_lost) << r->server_error;
  EXPECT_EQ(r->sessions.size(), 1u);
  EXPECT_GT(r->upload_ms, 2 * o.call_deadline_ms);  // it did take longer than a call's deadline
  for (const auto& a : r->upload_attempts) EXPECT_TRUE(a.acked) << a.ended;
  EXPECT_EQ(server->stats().bytes_uploaded, static_cast<uint64_t>(WeightBytes(g)));
  EXPECT_EQ(r->bytes_sent, WeightBytes(g));
  EXPECT_EQ(wrong, 0);
}

// Re-planning from the upload: planned for 20 Mbps on a 5 Mbps link, the
// client sees the slower rate in its paced writes (no probe bytes) and
// re-plans what it has not sent; every query stays exact, every layer
// crosses once, and with re-planning off nothing of it happens.
TEST(Net, ReplanningOnASlowerLinkThanPlannedLosesNothing) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(server->port());
  // The big layer: 4 MiB, about 6.7 s at 5 Mbps, several of gRPC's
  // flow-control windows (which grow to 1.6 MB under load: half the layer
  // of the other tests went before the link held a write back).
  lo.uplink_mbps = 5;
  lo.downlink_mbps = 100;
  auto link = LinkProxy::Start(lo);
  ASSERT_TRUE(link.ok()) << link.status().message();
  const Graph g = BigLayerModel(4096);
  ClientOptions o = SlowLinkOptions(g, (*link)->port());
  o.link.uplink_mbps = 20;
  o.link.downlink_mbps = 100;
  o.use_held = false;
  o.replan.mode = ReplanMode::kPassive;
  int wrong = 0;
  auto r = RunVerified(g, o, &wrong);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->upload_complete) << r->server_error << r->upload_error;
  EXPECT_EQ(r->replan, "passive");
  ASSERT_FALSE(r->replans.empty());
  // The estimate: the link's rate (at 10 Mbps it read 10.4-10.5 on a
  // quiet machine, up to 11.1 beside a build: the buffers' offset), not the
  // 20 planned; a bound loose enough for a loaded machine (at 5 Mbps beside
  // 6 busy loops on 2 cores: 4.3-6.5, and 11-14 before the interval after a
  // call's first paced write was left out).
  EXPECT_GT(r->replans.front().estimated_mbps, 3);
  EXPECT_LT(r->replans.front().estimated_mbps, 10);
  ASSERT_FALSE(r->rate_samples.empty());
  EXPECT_GT(r->rate_samples.back().estimated_mbps, 3);
  EXPECT_LT(r->rate_samples.back().estimated_mbps, 7.5);
  EXPECT_EQ(r->bytes_sent, WeightBytes(g));
  EXPECT_TRUE(r->replan_error.empty()) << r->replan_error;
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(r->queries.size(), 0u);

  o.replan.mode = ReplanMode::kOff;
  auto off = RunVerified(g, o, &wrong);
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_EQ(off->replan, "off");
  EXPECT_TRUE(off->replans.empty());
  EXPECT_TRUE(off->rate_samples.empty());
  EXPECT_EQ(wrong, 0);
  // A plan made elsewhere has no planner to re-plan with: refused.
  o.replan.mode = ReplanMode::kPassive;
  o.plan_function = [](const CostGraph& c) { return MakePlan(c, PlannerOptions{}); };
  const auto refused = RunClient(g, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("re-planning needs the planner"), std::string::npos)
      << refused.status().message();
}

// The link is cut in the middle of the big layer's partition: the next
// session proves the whole blocks that arrived and sends only the rest.
// The server receives the weights once, plus at most a block per cut.
TEST(Net, ALinkCutMidPartitionResumesAfterTheLastKeptBlock) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(server->port());
  lo.uplink_mbps = 10;
  lo.downlink_mbps = 100;
  auto link = LinkProxy::Start(lo);
  ASSERT_TRUE(link.ok()) << link.status().message();
  const Graph g = BigLayerModel();
  ClientOptions o = SlowLinkOptions(g, (*link)->port());
  o.link.uplink_mbps = o.link.downlink_mbps = 10;
  std::atomic<int> cut{-1};
  OnUplinkBytes watcher(**link, 1u << 20, [&] { cut = (*link)->CutAll(); });  // inside the big layer
  int wrong = 0;
  auto r = RunVerified(g, o, &wrong);
  watcher.Join();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(cut.load(), 1);
  EXPECT_TRUE(r->upload_complete) << r->server_error << r->upload_error;
  ASSERT_GE(r->sessions.size(), 2u);
  EXPECT_GT(r->resumed_bytes, 256 << 10);
  EXPECT_EQ(server->stats().resumed_bytes, static_cast<uint64_t>(r->resumed_bytes));
  const int64_t weights = WeightBytes(g);
  const uint64_t cuts = r->sessions.size() - 1;
  EXPECT_LE(server->stats().bytes_uploaded, weights + cuts * net::kProofBlockBytes);
  EXPECT_GE(server->stats().bytes_uploaded, static_cast<uint64_t>(weights));
  // The attempts say what happened: the cut one, then the resumed one.
  bool cut_seen = false, resumed_acked = false;
  for (const auto& a : r->upload_attempts) {
    cut_seen = cut_seen || (!a.acked && a.sent > 0);
    resumed_acked = resumed_acked || (a.acked && a.resumed > 0 && a.sent + a.resumed == a.bytes);
  }
  EXPECT_TRUE(cut_seen);
  EXPECT_TRUE(resumed_acked);
  EXPECT_EQ(wrong, 0);
}

// The server goes down in the middle of the big layer and starts again on
// the same port and upload folder: what it had received (the small layer,
// built, and the big one's first blocks) is offered to the client's next
// session, which proves it and sends only the rest.
TEST(Net, AServerStartedAgainOnItsUploadFolderResumesTheUpload) {
  const std::string dir = testing::TempDir() + "ionn-upload-dir-" + std::to_string(getpid());
  ServerOptions so;
  so.upload_dir = dir;
  auto first = StartServer(so);
  ASSERT_TRUE(first);
  const int port = first->port();
  {  // one server a folder
    ServerOptions other = so;
    other.listen = "127.0.0.1:0";
    auto refused = OffloadServer::Start(other);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("is in use by another server"), std::string::npos)
        << refused.status().message();
  }
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(port);
  lo.uplink_mbps = 10;
  lo.downlink_mbps = 100;
  auto link = LinkProxy::Start(lo);
  ASSERT_TRUE(link.ok()) << link.status().message();
  const Graph g = BigLayerModel();
  ClientOptions o = SlowLinkOptions(g, (*link)->port());
  o.link.uplink_mbps = o.link.downlink_mbps = 10;
  std::unique_ptr<OffloadServer> second;
  uint64_t first_received = 0;
  OnUplinkBytes watcher(**link, 1u << 20, [&] {  // down, and up again on the same port and folder
    first->Shutdown(0);
    first_received = first->stats().bytes_uploaded;
    ServerOptions again = so;
    again.listen = "127.0.0.1:" + std::to_string(port);
    again.regression = ReadRegressionCsv(kPaper + "server_regression.csv").value();
    auto started = OffloadServer::Start(again);
    EXPECT_TRUE(started.ok()) << started.status().message();
    if (started.ok()) second = std::move(started).value();
  });
  int wrong = 0;
  auto r = RunVerified(g, o, &wrong);
  const bool restarted = watcher.Join();
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(restarted && second);
  EXPECT_TRUE(r->upload_complete) << r->server_error << r->upload_error;
  ASSERT_GE(r->sessions.size(), 2u);
  const uint64_t weights = static_cast<uint64_t>(WeightBytes(g));
  const ServerStats st = second->stats();
  EXPECT_GT(st.resumed_bytes, 256u << 10);
  EXPECT_EQ(st.bytes_uploaded + st.resumed_bytes, weights);  // every byte resumed or sent once
  EXPECT_LE(first_received + st.bytes_uploaded, weights + net::kProofBlockBytes);
  EXPECT_EQ(wrong, 0);
  second.reset();
  std::filesystem::remove_all(dir);
}

// gRPC would bind a second server to the same port (SO_REUSEPORT) and let
// it take some of the first one's clients: refused instead.
TEST(Net, ASecondServerOnAPortInUseIsRefused) {
  auto first = StartServer();
  ASSERT_TRUE(first);
  ServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(first->port());
  auto second = OffloadServer::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(second.status().message().find("Address already in use"), std::string::npos) << second.status().message();
}

TEST(Net, HelloToNoServerIsUnavailable) {
  Graph g = BuildZooModel("alexnet", 1).value();
  ClientOptions o = Options(g, 1, "alexnet.csv");  // nothing listens on port 1
  o.call_deadline_ms = 2000;
  auto r = RunClient(g, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kUnavailable || r.status().code() == StatusCode::kDeadlineExceeded)
      << r.status().message();
}

// Hostile calls, straight through the stub.
class NetRejects : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.max_chunk_bytes = 64 << 10;
    server_ = StartServer(o);
    ASSERT_TRUE(server_);
    stub_ = v1::Offload::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
    model_ = BuildZooModel("alexnet", 2).value();
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model_);
    v1::OpenSessionReply reply;
    ASSERT_TRUE(stub_->OpenSession(&ctx, req, &reply).ok());
    session_ = reply.session_id();
  }

  // Uploads layers `layers` as partition `p` in chunks of `chunk` bytes.
  grpc::Status Upload(uint32_t p, const std::vector<int>& layers, size_t chunk = 32 << 10,
                      const std::string& session = "", int corrupt_byte = -1) {
    std::string bytes;
    for (int k : layers) {
      if (k >= 0 && k < static_cast<int>(model_.layers.size())) net::AppendLayerWeights(model_.layers[k], &bytes);
    }
    if (corrupt_byte >= 0 && corrupt_byte < int(bytes.size())) bytes[corrupt_byte] ^= 1;
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto w = stub_->Upload(&ctx, &reply);
    size_t off = 0;
    bool first = true;
    while (first || off < bytes.size()) {
      v1::UploadChunk c;
      if (first) {
        c.set_session_id(session.empty() ? session_ : session);
        c.set_partition(p);
        for (int k : layers) c.add_layers(k);
      }
      const size_t n = std::min(chunk, bytes.size() - off);
      c.set_data(bytes.data() + off, n);
      off += n;
      first = false;
      if (!w->Write(c)) break;
    }
    w->WritesDone();
    return w->Finish();
  }

  // Sends bytes [begin, end) of the weights of `layers` as partition 0 of
  // `session`, the first message saying `resume_from`.
  grpc::Status UploadPart(const std::string& session, const std::vector<int>& layers,
                          const std::vector<uint64_t>& resume_from, size_t begin, size_t end) {
    std::string bytes;
    for (int k : layers) net::AppendLayerWeights(model_.layers[k], &bytes);
    end = std::min(end, bytes.size());
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto w = stub_->Upload(&ctx, &reply);
    v1::UploadChunk c;
    c.set_session_id(session);
    for (int k : layers) c.add_layers(k);
    for (uint64_t r : resume_from) c.add_resume_from(r);
    for (size_t off = begin; off < end || off == begin; off += 32 << 10) {
      c.set_data(bytes.data() + off, std::min<size_t>(32 << 10, end - off));
      if (!w->Write(c)) break;
      c = v1::UploadChunk();
    }
    w->WritesDone();
    return w->Finish();
  }

  grpc::Status Open(v1::OpenSessionReply* reply) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model_);
    return stub_->OpenSession(&ctx, req, reply);
  }

  // Proves every prefix `opened` offers, as a client holding the model's
  // weights would (`right`), or with one byte of the answer wrong.
  grpc::Status ProvePrefixes(const v1::OpenSessionReply& opened, bool right, v1::ProveHeldReply* reply) {
    grpc::ClientContext ctx;
    v1::ProveHeldRequest req;
    req.set_session_id(opened.session_id());
    for (const auto& c : opened.prefixes()) {
      auto* p = req.add_prefix_proofs();
      p->set_layer(c.layer());
      std::string hashes;
      for (uint64_t b : c.blocks()) {
        const uint64_t at = b * net::kProofBlockBytes;
        const std::string block = net::LayerWeightBytesAt(model_.layers[c.layer()], at,
                                                          std::min<uint64_t>(net::kProofBlockBytes, c.bytes() - at));
        hashes += net::LayerStore::BlockHashes(block.data(), block.size());
      }
      if (!right) hashes[3] ^= 1;
      p->set_block_hashes(hashes);
    }
    return stub_->ProveHeld(&ctx, req, reply);
  }

  grpc::Status Step(const std::vector<int>& layers, const TensorMap& tensors, const std::vector<std::string>& wanted,
                    v1::QueryStepReply* reply, const std::string& session = "") {
    grpc::ClientContext ctx;
    v1::QueryStepRequest req;
    req.set_session_id(session.empty() ? session_ : session);
    req.set_query_id(1);
    req.set_last_step(true);
    for (int k : layers) req.add_layers(k);
    for (const auto& [name, t] : tensors) net::TensorToProto(name, t, req.add_tensors());
    for (const auto& w : wanted) req.add_wanted(w);
    return stub_->QueryStep(&ctx, req, reply);
  }

  static void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, const std::string& part) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(part), std::string::npos) << s.error_message();
  }

  std::unique_ptr<OffloadServer> server_;
  std::unique_ptr<v1::Offload::Stub> stub_;
  Graph model_;
  std::string session_;
};

TEST_F(NetRejects, BadCallsGetAStatusAndTheSessionStaysHealthy) {
  const int conv1 = model_.FindLayer("conv1"), relu1 = model_.FindLayer("relu1");
  const TensorMap input = {{"data", SeededInput(model_.inputs[0].shape, 1)}};
  v1::QueryStepReply reply;
  ExpectStatus(Upload(0, {conv1}, 32 << 10, "feedbeef"), grpc::StatusCode::NOT_FOUND, "no session 'feedbeef'");
  {  // no token at all: an empty session id
    grpc::ClientContext ctx;
    v1::CloseSessionRequest close;
    v1::CloseSessionReply closed;
    ExpectStatus(stub_->CloseSession(&ctx, close, &closed), grpc::StatusCode::NOT_FOUND, "no session ''");
  }
  ExpectStatus(Upload(1, {conv1}), grpc::StatusCode::FAILED_PRECONDITION, "expected partition 0");
  ExpectStatus(Upload(0, {9999}), grpc::StatusCode::INVALID_ARGUMENT, "layer index 9999 does not exist");
  ExpectStatus(Upload(0, {conv1, conv1}), grpc::StatusCode::INVALID_ARGUMENT, "listed twice");
  ExpectStatus(Upload(0, {conv1}, 128 << 10), grpc::StatusCode::RESOURCE_EXHAUSTED, "passes the limit");
  ExpectStatus(Upload(0, {conv1}, 32 << 10, "", 100), grpc::StatusCode::INVALID_ARGUMENT,
               "do not match the content hash");
  ExpectStatus(Step({conv1}, input, {"conv1"}, &reply), grpc::StatusCode::FAILED_PRECONDITION,
               "'conv1' has not been uploaded");
  // Now the right partition, and a query step on it.
  ASSERT_TRUE(Upload(0, {conv1, relu1}).ok());
  ExpectStatus(Upload(1, {conv1}), grpc::StatusCode::FAILED_PRECONDITION, "'conv1' was already uploaded");
  ExpectStatus(Step({conv1}, {{"data", Tensor{{1, 3, 10, 10}, std::vector<float>(300)}}}, {"conv1"}, &reply),
               grpc::StatusCode::INVALID_ARGUMENT, "expected [1,3,227,227]");
  ExpectStatus(Step({conv1}, {{"nope", input.at("data")}}, {"conv1"}, &reply), grpc::StatusCode::INVALID_ARGUMENT,
               "'nope' is not a tensor of the model");
  ExpectStatus(Step({conv1}, {}, {"conv1"}, &reply), grpc::StatusCode::INVALID_ARGUMENT, "'data'");
  ExpectStatus(Step({conv1}, input, {"conv1"}, &reply, "0000"), grpc::StatusCode::NOT_FOUND, "no session");
  ExpectStatus(Step({conv1, conv1}, input, {"conv1"}, &reply), grpc::StatusCode::INVALID_ARGUMENT, "listed twice");
  ASSERT_TRUE(Step({conv1, relu1}, input, {"relu1"}, &reply).ok());
  auto local = Engine::Create(model_).value();
  const Tensor want = local->Run({conv1, relu1}, input, {"relu1"}).value().at("relu1");
  auto got = net::TensorFromProto(reply.tensors(0), want.shape);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, want.data);
  EXPECT_GE(server_->stats().failed_calls, 12u);
}

// The layer store answers "held" for a layer of the same structure (kind,
// attributes, shapes: computed by the server) and declared hash, never for
// a declared hash alone; a layer without weights must declare the hash of
// its structure.
TEST_F(NetRejects, TheStoreKeysLayersByStructureNotByADeclaredHashAlone) {
  ASSERT_TRUE(Upload(0, {0}).ok());  // conv1's kernel is in the store now
  const std::string conv1_hash = net::ArchitectureToProto(model_).layers(0).content_hash();

  Graph tiny;
  tiny.name = "tiny";
  tiny.inputs.push_back({"x", {1, 3, 8, 8}});
  Layer conv;
  conv.name = "c";
  conv.kind = LayerKind::kConv;
  conv.inputs = {"x"};
  conv.kernel_h = conv.kernel_w = 3;
  conv.out_channels = 4;
  conv.weights = {{"W", {4, 3, 3, 3}, {}}, {"B", {4}, {}}};
  tiny.layers.push_back(conv);
  tiny.outputs = {"c"};
  ASSERT_TRUE(tiny.Finalize().ok());
  v1::OpenSessionRequest req;
  *req.mutable_model() = net::ArchitectureToProto(tiny);
  req.mutable_model()->mutable_layers(0)->set_content_hash(conv1_hash);  // another layer's hash
  {
    grpc::ClientContext ctx;
    v1::OpenSessionReply reply;
    ASSERT_TRUE(stub_->OpenSession(&ctx, req, &reply).ok());
    EXPECT_EQ(reply.held_layers_size(), 0);
  }
  // The same structure and hash: held, once proven (challenged here).
  {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest same;
    *same.mutable_model() = net::ArchitectureToProto(model_);
    v1::OpenSessionReply reply;
    ASSERT_TRUE(stub_->OpenSession(&ctx, same, &reply).ok());
    ASSERT_EQ(reply.challenges_size(), 1);
    EXPECT_EQ(reply.challenges(0).layer(), 0u);
    EXPECT_FALSE(std::count(reply.held_layers().begin(), reply.held_layers().end(), 0u));
  }
  // A ReLU claiming conv1's hash would file its kernel under it.
  v1::OpenSessionRequest lying;
  *lying.mutable_model() = net::ArchitectureToProto(model_);
  ASSERT_EQ(model_.layers[1].kind, LayerKind::kRelu);
  lying.mutable_model()->mutable_layers(1)->set_content_hash(conv1_hash);
  grpc::ClientContext ctx;
  v1::OpenSessionReply reply;
  ExpectStatus(stub_->OpenSession(&ctx, lying, &reply), grpc::StatusCode::INVALID_ARGUMENT, "content_hash");
}

// A layer with weights is held only for a client that proves it has
// them: the hashes of the 32 blocks of its weight bytes the server picked,
// once, before any upload; a wrong hash, a short answer, a layer not
// challenged or a second try is refused.
TEST_F(NetRejects, HeldLayersWithWeightsNeedAProofOfPossession) {
  ASSERT_TRUE(Upload(0, {0}).ok());  // conv1 is in the store, with its block hashes
  auto open = [&](v1::OpenSessionReply* reply) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model_);
    return stub_->OpenSession(&ctx, req, reply);
  };
  auto prove = [&](const std::string& session, uint32_t layer, const std::string& hashes, v1::ProveHeldReply* reply) {
    grpc::ClientContext ctx;
    v1::ProveHeldRequest req;
    req.set_session_id(session);
    auto* p = req.add_proofs();
    p->set_layer(layer);
    p->set_block_hashes(hashes);
    return stub_->ProveHeld(&ctx, req, reply);
  };
  // The answer a client holding conv1's weights gives.
  auto answer = [&](const v1::HeldChallenge& c) {
    std::string hashes;
    for (uint64_t b : c.blocks()) {
      const std::string block = net::LayerWeightBytesAt(model_.layers[0], b * net::kProofBlockBytes, net::kProofBlockBytes);
      hashes += net::LayerStore::BlockHashes(block.data(), block.size());
    }
    return hashes;
  };
  const uint64_t blocks = (net::LayerUploadBytes(model_.layers[0]) + net::kProofBlockBytes - 1) / net::kProofBlockBytes;
  v1::OpenSessionReply a;
  ASSERT_TRUE(open(&a).ok());
  ASSERT_EQ(a.challenges_size(), 1);
  ASSERT_EQ(a.challenges(0).blocks_size(), static_cast<int>(net::LayerStore::kProofBlocks));
  std::set<uint64_t> distinct(a.challenges(0).blocks().begin(), a.challenges(0).blocks().end());
  EXPECT_EQ(distinct.size(), net::LayerStore::kProofBlocks);
  EXPECT_LT(*distinct.rbegin(), blocks);
  std::string wrong = answer(a.challenges(0));
  wrong[wrong.size() - 1] ^= 1;  // one block's hash wrong in its last byte
  v1::ProveHeldReply ra;
  ASSERT_TRUE(prove(a.session_id(), 0, wrong, &ra).ok());
  EXPECT_EQ(ra.held_layers_size(), 0);  // not held: the client uploads it
  v1::ProveHeldReply again;
  ExpectStatus(prove(a.session_id(), 0, answer(a.challenges(0)), &again), grpc::StatusCode::FAILED_PRECONDITION, "once");

  v1::OpenSessionReply b;
  ASSERT_TRUE(open(&b).ok());
  v1::ProveHeldReply rb;
  ExpectStatus(prove(b.session_id(), 1, answer(b.challenges(0)), &rb), grpc::StatusCode::INVALID_ARGUMENT,
               "not challenged");

  v1::OpenSessionReply c;
  ASSERT_TRUE(open(&c).ok());
  const std::string right_c = answer(c.challenges(0));
  v1::ProveHeldReply rc;
  ASSERT_TRUE(prove(c.session_id(), 0, right_c.substr(0, right_c.size() - 1), &rc).ok());  // one byte short
  EXPECT_EQ(rc.held_layers_size(), 0);

  v1::OpenSessionReply d;
  ASSERT_TRUE(open(&d).ok());
  EXPECT_NE(std::vector<uint64_t>(d.challenges(0).blocks().begin(), d.challenges(0).blocks().end()),
            std::vector<uint64_t>(a.challenges(0).blocks().begin(), a.challenges(0).blocks().end()));  // fresh draw
  v1::ProveHeldReply rd;
  ASSERT_TRUE(prove(d.session_id(), 0, answer(d.challenges(0)), &rd).ok());
  ASSERT_EQ(rd.held_layers_size(), 1);
  EXPECT_EQ(rd.held_layers(0), 0u);
  // Held means built: the session runs conv1 without uploading it.
  v1::QueryStepReply step;
  const TensorMap in = {{"data", SeededInput(model_.inputs[0].shape, 1)}};
  EXPECT_TRUE(Step({0}, in, {model_.layers[0].name}, &step, d.session_id()).ok());
  v1::ProveHeldReply late;
  ExpectStatus(prove(d.session_id(), 0, answer(d.challenges(0)), &late), grpc::StatusCode::FAILED_PRECONDITION, "once");
}

// A cut upload leaves its whole blocks for a session that proves them; a
// resume offset must be exactly the proven prefix.
TEST_F(NetRejects, ResumedUploadsStartExactlyAfterTheProvenPrefix) {
  const uint64_t conv1 = net::LayerUploadBytes(model_.layers[0]);
  ASSERT_GT(conv1, 20000u);
  // Cut after 10,500 bytes: ten whole blocks are kept.
  ExpectStatus(UploadPart(session_, {0}, {}, 0, 10500), grpc::StatusCode::INVALID_ARGUMENT,
               "the stream ended after 10500 of " + std::to_string(conv1) + " bytes its layers declare; 10240 bytes newly kept");
  EXPECT_EQ(server_->stats().partial_bytes, 10240u);
  v1::OpenSessionReply a;
  ASSERT_TRUE(Open(&a).ok());
  ASSERT_EQ(a.prefixes_size(), 1);
  EXPECT_EQ(a.prefixes(0).layer(), 0u);
  EXPECT_EQ(a.prefixes(0).bytes(), 10240u);
  EXPECT_EQ(a.prefixes(0).blocks_size(), 10);
  v1::ProveHeldReply ra;
  ASSERT_TRUE(ProvePrefixes(a, false, &ra).ok());
  EXPECT_EQ(ra.prefixes_size(), 0);  // not proven: the upload starts at byte 0
  ExpectStatus(UploadPart(a.session_id(), {0}, {10240}, 10240, conv1), grpc::StatusCode::INVALID_ARGUMENT,
               "layer 0 'conv1': resumes at byte 10240, but this session holds no prefix of it");

  v1::OpenSessionReply b;
  ASSERT_TRUE(Open(&b).ok());
  ASSERT_EQ(b.prefixes_size(), 1);
  v1::ProveHeldRequest unasked;
  unasked.set_session_id(b.session_id());
  unasked.add_prefix_proofs()->set_layer(1);
  {
    grpc::ClientContext ctx;
    v1::ProveHeldReply r;
    ExpectStatus(stub_->ProveHeld(&ctx, unasked, &r), grpc::StatusCode::INVALID_ARGUMENT, "layer 1's prefix was not challenged");
  }
  v1::OpenSessionReply c;
  ASSERT_TRUE(Open(&c).ok());
  v1::ProveHeldReply rc;
  ASSERT_TRUE(ProvePrefixes(c, true, &rc).ok());
  ASSERT_EQ(rc.prefixes_size(), 1);
  EXPECT_EQ(rc.prefixes(0).bytes(), 10240u);
  ExpectStatus(UploadPart(c.session_id(), {0}, {conv1 + 1}, 0, 0), grpc::StatusCode::OUT_OF_RANGE,
               "resume offset " + std::to_string(conv1 + 1) + " is past its " + std::to_string(conv1));
  ExpectStatus(UploadPart(c.session_id(), {0}, {1024}, 1024, conv1), grpc::StatusCode::INVALID_ARGUMENT,
               "resumes at byte 1024, but this session holds a proven prefix of 10240 bytes");
  ExpectStatus(UploadPart(c.session_id(), {0}, {10240, 0}, 10240, conv1), grpc::StatusCode::INVALID_ARGUMENT,
               "resume_from has 2 offsets for 1 layers");
  ExpectStatus(UploadPart(c.session_id(), {0}, {10240}, 10240 - 1024, conv1), grpc::StatusCode::INVALID_ARGUMENT,
               "more than the");  // repeats a kept block
  // Resuming at 0 gives the prefix up. Cut at 5000: a shorter prefix
  // replaces a kept one only because a client failed to prove that one
  // (session a), as if it were another client's garbage.
  ExpectStatus(UploadPart(c.session_id(), {0}, {0}, 0, 5000), grpc::StatusCode::INVALID_ARGUMENT,
               "the stream ended after 5000 of " + std::to_string(conv1) + " bytes its layers declare; 4096 bytes newly kept");
  // Cut again further on: a prefix that extends the kept one replaces it,
  // one that does not (the same 4096 bytes again) leaves it.
  v1::OpenSessionReply c2;
  ASSERT_TRUE(Open(&c2).ok());
  ASSERT_EQ(c2.prefixes_size(), 1);
  EXPECT_EQ(c2.prefixes(0).bytes(), 4096u);
  ExpectStatus(UploadPart(c2.session_id(), {0}, {}, 0, 4500), grpc::StatusCode::INVALID_ARGUMENT,
               "; 0 bytes newly kept");
  v1::OpenSessionReply d;
  ASSERT_TRUE(Open(&d).ok());
  v1::ProveHeldReply rd;
  ASSERT_TRUE(ProvePrefixes(d, true, &rd).ok());
  ASSERT_EQ(rd.prefixes_size(), 1);
  ExpectStatus(UploadPart(d.session_id(), {0}, {4096}, 4096, 20000), grpc::StatusCode::INVALID_ARGUMENT,
               "the stream ended after 20000 of " + std::to_string(conv1) + " bytes its layers declare; 19456 bytes newly kept");
  v1::OpenSessionReply e;
  ASSERT_TRUE(Open(&e).ok());
  ASSERT_EQ(e.prefixes_size(), 1);
  EXPECT_EQ(e.prefixes(0).bytes(), 19456u);
  v1::ProveHeldReply re;
  ASSERT_TRUE(ProvePrefixes(e, true, &re).ok());
  const uint64_t before = server_->stats().bytes_uploaded;
  ASSERT_TRUE(UploadPart(e.session_id(), {0}, {19456}, 19456, conv1).ok());
  EXPECT_EQ(server_->stats().bytes_uploaded - before, conv1 - 19456);
  EXPECT_EQ(server_->stats().resumed_bytes, 19456u);
  EXPECT_EQ(server_->stats().partial_bytes, 0u);  // built: its prefix is dropped
  v1::QueryStepReply step;
  const TensorMap in = {{"data", SeededInput(model_.inputs[0].shape, 1)}};
  EXPECT_TRUE(Step({0}, in, {model_.layers[0].name}, &step, e.session_id()).ok());
}

// A partition of several layers, some without weights: cut exactly at the
// end of its first layer (kept whole, hash-checked), then inside the last;
// the third session skips the first layer and resumes the last.
TEST_F(NetRejects, APartitionOfSeveralLayersResumesLayerByLayer) {
  std::vector<int> layers;
  for (const char* name : {"conv1", "relu1", "norm1", "pool1", "conv2"}) layers.push_back(model_.FindLayer(name));
  ASSERT_EQ(layers, (std::vector<int>{0, 1, 2, 3, 4}));
  const uint64_t c1 = net::LayerUploadBytes(model_.layers[0]), c2 = net::LayerUploadBytes(model_.layers[4]);
  ExpectStatus(UploadPart(session_, layers, {}, 0, c1), grpc::StatusCode::INVALID_ARGUMENT,
               "; " + std::to_string(c1) + " bytes newly kept");
  v1::OpenSessionReply a;
  v1::ProveHeldReply pa;
  ASSERT_TRUE(Open(&a).ok());
  ASSERT_TRUE(ProvePrefixes(a, true, &pa).ok());
  ASSERT_EQ(pa.prefixes_size(), 1);
  EXPECT_EQ(pa.prefixes(0).layer(), 0u);
  EXPECT_EQ(pa.prefixes(0).bytes(), c1);  // the whole layer
  // Later sessions hold the layers without weights (built at the first
  // OpenSession, in the store): their partition is the two convolutions.
  const std::vector<int> convs = {0, 4};
  ExpectStatus(UploadPart(a.session_id(), convs, {c1, 0}, c1, c1 + 30000), grpc::StatusCode::INVALID_ARGUMENT,
               "; 29696 bytes newly kept");
  v1::OpenSessionReply b;
  v1::ProveHeldReply pb;
  ASSERT_TRUE(Open(&b).ok());
  ASSERT_TRUE(ProvePrefixes(b, true, &pb).ok());
  ASSERT_EQ(pb.prefixes_size(), 2);
  const uint64_t before = server_->stats().bytes_uploaded;
  ASSERT_TRUE(UploadPart(b.session_id(), convs, {c1, 29696}, c1 + 29696, c1 + c2).ok());
  EXPECT_EQ(server_->stats().bytes_uploaded - before, c2 - 29696);
  EXPECT_EQ(server_->stats().resumed_bytes, c1 + 29696);
  v1::QueryStepReply step;
  const TensorMap in = {{"data", SeededInput(model_.inputs[0].shape, 1)}};
  EXPECT_TRUE(Step(layers, in, {"conv2"}, &step, b.session_id()).ok());
}

// A client that keeps cutting its uploads (each leaves prefixes behind) is
// refused further uploads once it has cut --max-cut-uploads-per-peer.
TEST(Net, CutUploadsPerClientAddressAreBounded) {
  ServerOptions so;
  so.max_cut_uploads_per_peer = 2;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  auto stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  const Graph model = BuildZooModel("alexnet", 2).value();
  std::string conv1;
  net::AppendLayerWeights(model.layers[0], &conv1);
  auto cut_upload = [&]() {
    grpc::ClientContext open_ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model);
    req.set_ignore_held(true);
    v1::OpenSessionReply opened;
    EXPECT_TRUE(stub->OpenSession(&open_ctx, req, &opened).ok());
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto w = stub->Upload(&ctx, &reply);
    v1::UploadChunk c;
    c.set_session_id(opened.session_id());
    c.add_layers(0);
    c.set_data(conv1.substr(0, 4096));
    w->Write(c);
    w->WritesDone();
    return w->Finish();
  };
  for (int i = 0; i < 2; ++i) {
    const grpc::Status st = cut_upload();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("bytes newly kept to resume from"), std::string::npos) << st.error_message();
  }
  const grpc::Status refused = cut_upload();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("2 uploads from"), std::string::npos) << refused.error_message();
}

// A client that starts an upload and then sends nothing (or too slowly)
// holds a worker only until the watchdog cancels its call; while the one
// worker is held, other calls are refused at once as busy, with retry advice.
TEST(Net, StalledCallsAreCancelledAndABusyServerRefusesWithRetryAdvice) {
  ServerOptions so;
  so.workers = 1;
  so.call_idle_s = 1;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  auto stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  Graph g = BuildZooModel("alexnet", 2).value();
  std::string session;
  {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(g);
    v1::OpenSessionReply reply;
    ASSERT_TRUE(stub->OpenSession(&ctx, req, &reply).ok());
    session = reply.session_id();
  }
  // The stalled upload: partition 0 = layer 0, one chunk of its bytes, then nothing.
  grpc::ClientContext upload_ctx;
  v1::UploadReply ack;
  auto writer = stub->Upload(&upload_ctx, &ack);
  v1::UploadChunk chunk;
  chunk.set_session_id(session);
  chunk.set_partition(0);
  chunk.add_layers(0);
  chunk.set_data(std::string(1000, '\0'));
  ASSERT_TRUE(writer->Write(chunk));
  // Busy while the upload holds the one worker: refused at once, with the
  // wait to retry after. (A call sent before the upload's handler started
  // could take the worker first and have the upload refused.)
  ASSERT_TRUE(WaitForStats(*server, [](const ServerStats& st) { return st.calls_in_flight == 1; }));
  {
    grpc::ClientContext ctx;
    v1::HelloRequest req;
    req.set_protocol_version(net::kProtocolVersion);
    v1::HelloReply reply;
    const grpc::Status st = stub->Hello(&ctx, req, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_NE(st.error_message().find("server busy"), std::string::npos) << st.error_message();
    EXPECT_EQ(ctx.GetServerTrailingMetadata().count(net::kRetryAfterMetadata), 1u);
  }
  // The watchdog cancels the stalled upload within about a second.
  const grpc::Status st = writer->Finish();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(server->stats().calls_cancelled, 1u);
  EXPECT_EQ(server->stats().busy_refusals, 1u);
  // The worker is free again and the session still usable: the partition
  // uploads whole.
  ClientOptions o = Options(g, server->port(), "alexnet.csv");
  o.max_queries = 2;
  auto r = RunClient(g, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->queries.size(), 2u);
}

// The server's memory for models is full (one AlexNet's weights and
// tensors): a second session is refused, or, by policy, the idle one is
// closed to make room.
TEST(Net, AFullServerRefusesOrEvictsTheIdleSessionByPolicy) {
  Graph g = BuildZooModel("alexnet", 2).value();
  v1::OpenSessionRequest req;
  *req.mutable_model() = net::ArchitectureToProto(g);
  for (auto policy : {ServerOptions::WhenFull::kRefuse, ServerOptions::WhenFull::kEvictIdle}) {
    ServerOptions so;
    so.max_memory_bytes = 300ull << 20;
    so.when_full = policy;
    so.evict_idle_s = 0.1;
    auto server = StartServer(so);
    ASSERT_TRUE(server);
    auto stub = v1::Offload::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
    auto open = [&](v1::OpenSessionReply* reply) {
      grpc::ClientContext ctx;
      return stub->OpenSession(&ctx, req, reply);
    };
    v1::OpenSessionReply first, second;
    ASSERT_TRUE(open(&first).ok());
    EXPECT_GT(server->stats().memory_bytes, 243000000u);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first is idle now
    const grpc::Status st = open(&second);
    if (policy == ServerOptions::WhenFull::kRefuse) {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
      EXPECT_NE(st.error_message().find("memory limit"), std::string::npos) << st.error_message();
      EXPECT_EQ(server->stats().sessions, 1);
    } else {
      ASSERT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(server->stats().sessions_evicted, 1u);
      EXPECT_EQ(server->stats().sessions, 1);
      grpc::ClientContext ctx;  // the evicted session is gone
      v1::CloseSessionRequest close;
      close.set_session_id(first.session_id());
      v1::CloseSessionReply closed;
      EXPECT_EQ(stub->CloseSession(&ctx, close, &closed).error_code(), grpc::StatusCode::NOT_FOUND);
    }
  }
  // Kernels no session uses (the layer store's cache) make room for a new
  // session rather than block it: AlexNet uploaded whole and closed, then
  // GoogLeNet under a limit that cannot hold both.
  ServerOptions so;
  so.max_memory_bytes = 300ull << 20;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  ClientOptions o = Options(g, server->port(), "alexnet.csv");
  o.max_queries = 1;
  o.duration_ms = -1;
  o.queries_after_upload = 0;
  auto first = RunClient(g, o);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(WaitForStats(*server, Settled));
  EXPECT_GT(server->stats().store_cached_bytes, 0u);
  Graph googlenet = BuildZooModel("googlenet", 2).value();
  ClientOptions o2 = Options(googlenet, server->port(), "googlenet.csv");
  o2.max_queries = 2;
  o2.max_reconnects = 0;
  auto second = RunClient(googlenet, o2);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->sessions.size(), 1u);
  EXPECT_TRUE(second->sessions[0].lost.empty()) << second->sessions[0].lost;
  // A model bigger than the limit on its own is refused for good.
  ServerOptions tiny;
  tiny.max_memory_bytes = 100ull << 20;
  auto small = StartServer(tiny);
  ASSERT_TRUE(small);
  ClientOptions o3 = Options(g, small->port(), "alexnet.csv");
  o3.max_queries = 1;
  auto refused = RunClient(g, o3);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("on its own"), std::string::npos) << refused.status().message();
}

// One client address cannot fill the server with sessions; session ids
// are 128-bit random tokens.
TEST(Net, SessionsPerClientAddressAreBounded) {
  ServerOptions so;
  so.max_sessions_per_peer = 2;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  auto stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  const Graph g = BuildZooModel("mobilenet", 1, /*with_weights=*/false).value();
  auto open = [&](v1::OpenSessionReply* reply) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(g);
    return stub->OpenSession(&ctx, req, reply);
  };
  v1::OpenSessionReply a, b, c, d;
  ASSERT_TRUE(open(&a).ok());
  ASSERT_TRUE(open(&b).ok());
  EXPECT_EQ(a.session_id().size(), 32u);
  EXPECT_NE(a.session_id(), b.session_id());
  const grpc::Status third = open(&c);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.error_message().find("per address"), std::string::npos) << third.error_message();
  grpc::ClientContext ctx;
  v1::CloseSessionRequest close;
  close.set_session_id(a.session_id());
  v1::CloseSessionReply closed;
  ASSERT_TRUE(stub->CloseSession(&ctx, close, &closed).ok());
  EXPECT_TRUE(open(&d).ok());
}

// Each limit at limit + 1 (refused), then at the limit (accepted): the
// chunk size, the name length, the layer count; and a session nobody uses
// frees its memory at expiry.
TEST_F(NetRejects, LimitsHoldAtTheirBoundaries) {
  const int conv1 = model_.FindLayer("conv1");
  ExpectStatus(Upload(0, {conv1}, (64 << 10) + 1), grpc::StatusCode::RESOURCE_EXHAUSTED, "passes the limit of 65536");
  EXPECT_TRUE(Upload(0, {conv1}, 64 << 10).ok());

  auto open = [&](const v1::Architecture& a) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = a;
    v1::OpenSessionReply reply;
    return stub_->OpenSession(&ctx, req, &reply);
  };
  v1::Architecture a = net::ArchitectureToProto(model_);
  a.set_name(std::string(257, 'n'));
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "256");
  a.set_name(std::string(256, 'n'));
  EXPECT_TRUE(open(a).ok());

  ServerOptions so;
  so.max_layers = static_cast<uint32_t>(model_.layers.size()) - 1;
  so.session_idle_s = 0.3;
  auto small = StartServer(so);
  ASSERT_TRUE(small);
  auto stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(small->port()), grpc::InsecureChannelCredentials()));
  auto open_small = [&](v1::OpenSessionReply* reply) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model_);
    return stub->OpenSession(&ctx, req, reply);
  };
  v1::OpenSessionReply reply;
  ExpectStatus(open_small(&reply), grpc::StatusCode::RESOURCE_EXHAUSTED, "23 layers, over the limit of 22");
  small.reset();
  so.max_layers = static_cast<uint32_t>(model_.layers.size());
  small = StartServer(so);
  ASSERT_TRUE(small);
  stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(small->port()), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(open_small(&reply).ok());
  EXPECT_GT(small->stats().memory_bytes, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the client vanished
  v1::OpenSessionReply other;
  ASSERT_TRUE(open_small(&other).ok());  // a call expires idle sessions first
  EXPECT_EQ(small->stats().sessions, 1);
  grpc::ClientContext ctx;
  v1::CloseSessionRequest close;
  close.set_session_id(reply.session_id());
  v1::CloseSessionReply closed;
  EXPECT_EQ(stub->CloseSession(&ctx, close, &closed).error_code(), grpc::StatusCode::NOT_FOUND);
  close.set_session_id(other.session_id());
  grpc::ClientContext ctx2;
  EXPECT_TRUE(stub->CloseSession(&ctx2, close, &closed).ok());
  EXPECT_EQ(small->stats().memory_bytes, 0u);
  EXPECT_EQ(small->stats().model_bytes, 0u);
}

TEST_F(NetRejects, HostileArchitecturesAreRefused) {
  auto open = [&](v1::Architecture a) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = std::move(a);
    v1::OpenSessionReply reply;
    return stub_->OpenSession(&ctx, req, &reply);
  };
  v1::Architecture a = net::ArchitectureToProto(model_);
  a.mutable_layers(3)->set_kind("Gelu");
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "unknown layer kind 'Gelu'");
  a = net::ArchitectureToProto(model_);
  a.mutable_layers(0)->mutable_weights(0)->mutable_shape()->set_dims(0, int64_t{1} << 40);
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "negative or too large");
  for (int64_t dim : {int64_t{0}, int64_t{-3}}) {  // zero and negative dimensions, of a weight and of the input
    a = net::ArchitectureToProto(model_);
    a.mutable_layers(0)->mutable_weights(0)->mutable_shape()->set_dims(1, dim);
    ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "");
    a = net::ArchitectureToProto(model_);
    a.mutable_inputs(0)->mutable_shape()->set_dims(1, dim);
    ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "");
  }
  a = net::ArchitectureToProto(model_);
  a.mutable_layers(2)->set_inputs(0, "later");
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "reads tensor 'later'");
  a = net::ArchitectureToProto(model_);
  a.set_name("m'\n2026-01-01T00:00:00 serve: session deadbeef closed");  // would forge a server log line
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "control character");
  // Not UTF-8 (a stray continuation byte, an overlong '/', a surrogate, a
  // sequence cut short): refused by ionn with a message, not by protobuf.
  for (const std::string bad : {"a\x80" "b", "\xC0\xAF", "\xED\xA0\x80", "conv\xE2\x82"}) {
    a = net::ArchitectureToProto(model_);
    a.mutable_layers(4)->set_name(bad);
    ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "not UTF-8");
  }
  a = net::ArchitectureToProto(model_);
  a.set_name("alexnet \xE2\x82\xAC\xF0\x9F\x98\x80");  // a euro sign and an emoji: fine
  EXPECT_TRUE(open(a).ok());
  a = net::ArchitectureToProto(model_);
  *a.mutable_layers(0)->add_weights() = a.layers(0).weights(0);
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "twice");
  a = net::ArchitectureToProto(model_);
  a.mutable_layers(1)->set_content_hash("short");
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "content_hash must be 32 bytes");
  a = net::ArchitectureToProto(model_);
  a.mutable_inputs(0)->mutable_shape()->set_dims(2, 1 << 20);
  a.mutable_inputs(0)->mutable_shape()->set_dims(3, 1 << 20);
  ExpectStatus(open(a), grpc::StatusCode::INVALID_ARGUMENT, "");
  EXPECT_EQ(server_->stats().sessions, 2);  // the fixture's and the one with a UTF-8 name, still open
}

// A model whose queries would make more tensor bytes than the server allows
// is refused before anything is allocated (a 4 GiB activation used to run).
TEST(Net, ModelsBeyondTheActivationLimitAreRefused) {
  ServerOptions so;
  const Graph g = BuildZooModel("alexnet", 1, /*with_weights=*/false).value();
  uint64_t need = 0;
  for (const auto& in : g.inputs) need += ElementCount(in.shape) * 4;
  for (const auto& l : g.layers) need += ElementCount(l.output_shape) * 4;
  so.max_activation_bytes = need - 1;
  auto server = StartServer(so);
  ASSERT_TRUE(server);
  auto stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  v1::OpenSessionRequest req;
  *req.mutable_model() = net::ArchitectureToProto(g);
  v1::OpenSessionReply reply;
  grpc::ClientContext ctx;
  const grpc::Status st = stub->OpenSession(&ctx, req, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find(std::to_string(need) + " bytes of tensors"), std::string::npos) << st.error_message();
  EXPECT_EQ(server->stats().sessions, 0);

  ServerOptions enough;
  enough.max_activation_bytes = need;  // at the limit: accepted
  auto ok_server = StartServer(enough);
  ASSERT_TRUE(ok_server);
  auto ok_stub = v1::Offload::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(ok_server->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ok_ctx;
  EXPECT_TRUE(ok_stub->OpenSession(&ok_ctx, req, &reply).ok());
}

// Layer::attrs (the kinds defined in one place) travel in the architecture
// as they are, count in the content hash, and are checked like every other
// field: unknown names, duplicates, NaN, and too many are refused.
TEST(Wire, LayerAttributesRoundTripCountInTheHashAndAreChecked) {
  Graph g;
  g.inputs = {{"x", {1, 2, 4, 4}}};
  Layer up;
  up.name = "up", up.inputs = {"x"}, up.kind = LayerKind::kResize;
  up.attrs["mode"].text = "nearest";
  up.attrs["coordinate_transformation_mode"].text = "asymmetric";
  up.attrs["nearest_mode"].text = "floor";
  up.attrs["scales"].floats = {2, 2};
  up.attrs["sizes"].ints = {8, 8};
  g.layers = {up};
  g.outputs = {"up"};
  ASSERT_TRUE(g.Finalize().ok());
  const v1::Architecture a = net::ArchitectureToProto(g);
  auto back = net::ArchitectureFromProto(a, net::WireLimits{});
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->layers[0].attrs, g.layers[0].attrs);
  EXPECT_EQ(net::LayerContentHash(*back, back->layers[0]), a.layers(0).content_hash());
  Graph linear = g;
  linear.layers[0].attrs["mode"].text = "linear";
  EXPECT_NE(net::LayerContentHash(linear, linear.layers[0]), a.layers(0).content_hash());

  auto refused = [&](const std::function<void(v1::LayerSpec*)>& edit, const std::string& fragment) {
    v1::Architecture bad = a;
    edit(bad.mutable_layers(0));
    auto r = net::ArchitectureFromProto(bad, net::WireLimits{});
    ASSERT_FALSE(r.ok()) << fragment;
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  };
  refused([](v1::LayerSpec* l) { l->add_attrs()->set_name("colour"); }, "unknown attribute 'colour'");
  refused([](v1::LayerSpec* l) { *l->add_attrs() = l->attrs(0); }, "given twice");
  auto attr = [](v1::LayerSpec* l, const std::string& name) {
    for (auto& a : *l->mutable_attrs()) {
      if (a.name() == name) return &a;
    }
    ADD_FAILURE() << "no attribute " << name;
    return l->add_attrs();
  };
  refused([&](v1::LayerSpec* l) { attr(l, "scales")->set_floats(0, NAN); }, "not finite");
  refused([&](v1::LayerSpec* l) { attr(l, "scales")->set_floats(0, 0); }, "scale 0");
  refused([&](v1::LayerSpec* l) { attr(l, "scales")->set_floats(0, 1e-30f); }, "not size 8");  // would overflow
  refused([&](v1::LayerSpec* l) { attr(l, "sizes")->set_ints(0, int64_t{1} << 40); }, "size");
  refused([&](v1::LayerSpec* l) { attr(l, "mode")->set_text("\xff"); }, "UTF-8");
  refused(
      [](v1::LayerSpec* l) {
        for (int i = 0; i < 20; ++i) l->add_attrs()->set_name("a" + std::to_string(i));
      },
      "more than 16 attributes");
  refused([](v1::LayerSpec* l) { l->set_kind("Conv"); }, "takes no attributes");
}

}  // namespace
}  // namespace ionn
