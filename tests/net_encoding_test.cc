// Upload encodings on the real system (loopback): every encoding offloads;
// queries that ran only exact layers equal a whole-model run here, those
// that ran approximate ones say so; the server decodes only what the
// declared layer allows, keeps only exact layers in its store, and refuses
// bad encoded uploads naming the layer, the session staying healthy.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <zstd.h>

#include <cmath>

#include "ionn.grpc.pb.h"
#include "ionn/client.h"
#include "ionn/model_costs.h"
#include "ionn/server.h"
#include "ionn/slices.h"
#include "ionn/weight_codec.h"
#include "ionn/zoo.h"
#include "wire.h"

namespace ionn {
namespace {

const std::string kPaper = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";

std::unique_ptr<OffloadServer> StartServer() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.regression = ReadRegressionCsv(kPaper + "server_regression.csv").value();
  auto s = OffloadServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

double MaxRelError(const TensorMap& got, const TensorMap& want) {
  double worst = 0;
  for (const auto& [name, w] : want) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < w.data.size(); ++i) {
      diff = std::max(diff, double(std::fabs(got.at(name).data[i] - w.data[i])));
      scale = std::max(scale, double(std::fabs(w.data[i])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-30));
  }
  return worst;
}

TEST(NetEncodings, EveryEncodingOffloadsAndItsExactQueriesEqualLocalRuns) {
  const Graph g = BuildZooModel("googlenet", 3).value();
  const TensorMap inputs = {{"data", SeededInput(g.inputs[0].shape, 7)}};
  const TensorMap want = Engine::Create(g).value()->RunAll(inputs).value();
  // The largest error of an approximate query (relative to the largest
  // output): bfloat16 truncated, fp16, int8 per channel.
  const std::map<UploadEncoding, double> bound = {{UploadEncoding::kProgressive, 0.25},
                                                  {UploadEncoding::kFp16, 0.01},
                                                  {UploadEncoding::kInt8, 0.1}};
  for (UploadEncoding e : UploadEncodings()) {
    SCOPED_TRACE(UploadEncodingName(e));
    auto server = StartServer();
    ASSERT_TRUE(server);
    ClientOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(server->port())};
    o.client_profile = ReadProfileCsv(kPaper + "googlenet.csv").value();
    o.inputs = inputs;
    o.chunk_bytes = 256 << 10;
    o.upload_encoding = e;
    int exact = 0, approximate = 0, wrong = 0;
    auto r = RunClient(g, o, nullptr, [&](const ClientQuery& q, const TensorMap& out) {
      const double err = MaxRelError(out, want);
      if (q.exact) {
        ++exact, wrong += err > 1e-5;
      } else {
        ++approximate;
        EXPECT_LE(err, bound.at(e));
        EXPECT_GT(q.server_layers, 0);
      }
    });
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->upload_complete) << r->upload_error;
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(r->queries_approximate, approximate);
    EXPECT_EQ(r->plan.encoding, e);
    if (IsLossyForGood(e)) {
      EXPECT_LT(r->exact_from_ms, 0);
      EXPECT_GT(approximate, 0);
    } else {
      EXPECT_DOUBLE_EQ(r->exact_from_ms, r->upload_ms);
      EXPECT_TRUE(r->queries.back().exact);
      EXPECT_GT(exact, 0);
      if (e != UploadEncoding::kProgressive) {
        EXPECT_EQ(approximate, 0);
      }
    }
    if (e == UploadEncoding::kProgressive) {
      EXPECT_EQ(r->plan.partitions.size() % 2, 0u);  // each high partition has its low one
    }
    if (e == UploadEncoding::kLossless) {
      int64_t raw = 0;
      for (const auto& l : g.layers) raw += net::LayerUploadBytes(l);
      EXPECT_LT(r->bytes_sent, raw);
    }
  }
}

// Sub-layer slices through the real system: the client uploads and runs
// the sliced model (its profile sliced by the simulator's rule), the
// server builds slices and joins like any layer, and every exact query
// equals the whole, unsliced model run here (within 1e-5), progressive
// uploads included.
TEST(NetEncodings, SlicedModelsOffloadAndEqualTheWholeModel) {
  const Graph whole = BuildZooModel("mobilenet", 3).value();
  const TensorMap inputs = {{"data", SeededInput(whole.inputs[0].shape, 5)}};
  const TensorMap want = Engine::Create(whole).value()->RunAll(inputs).value();
  const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{3, 0.1});
  ASSERT_FALSE(cut.empty());
  const Graph sliced = SliceGraph(whole, cut).value();
  for (UploadEncoding e : {UploadEncoding::kExact, UploadEncoding::kProgressive}) {
    SCOPED_TRACE(UploadEncodingName(e));
    auto server = StartServer();
    ASSERT_TRUE(server);
    ClientOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(server->port())};
    o.client_profile = SliceProfile(ReadProfileCsv(kPaper + "mobilenet.csv").value(), cut);
    o.inputs = inputs;
    o.upload_encoding = e;
    o.planner.algorithm = "window-search";
    int exact = 0, wrong = 0, sliced_on_server = 0;
    auto r = RunClient(sliced, o, nullptr, [&](const ClientQuery& q, const TensorMap& out) {
      if (!q.exact) return;
      ++exact, wrong += MaxRelError(out, want) > 1e-5;
    });
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->upload_complete) << r->upload_error;
    EXPECT_GT(exact, 0);
    EXPECT_EQ(wrong, 0);
    for (const Partition& p : r->plan.partitions) {
      for (int k : p.layers) sliced_on_server += r->costs.layer(k).name.find("/slice") != std::string::npos;
    }
    EXPECT_GT(sliced_on_server, 0);
    EXPECT_TRUE(r->queries.back().exact);
  }
}

class NetEncodingRejects : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer();
    ASSERT_TRUE(server_);
    stub_ = v1::Offload::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
    model_ = BuildZooModel("alexnet", 2).value();
  }

  grpc::Status Open(const std::string& encoding, v1::OpenSessionReply* reply) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(model_);
    req.set_upload_encoding(encoding);
    return stub_->OpenSession(&ctx, req, reply);
  }

  // Partition `p` of `session`: layer `k`'s bytes `data` (declared as
  // `declared` encoded bytes; < 0: their size) in `phase`.
  grpc::Status Upload(const std::string& session, uint32_t p, int k, const std::string& data, uint32_t phase,
                      int64_t declared = -1) {
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto w = stub_->Upload(&ctx, &reply);
    v1::UploadChunk c;
    c.set_session_id(session);
    c.set_partition(p);
    c.add_layers(k);
    c.set_phase(phase);
    c.add_encoded_bytes(declared < 0 ? data.size() : static_cast<uint64_t>(declared));
    for (size_t off = 0; off < data.size() || off == 0; off += 32 << 10) {
      c.set_data(data.data() + off, std::min<size_t>(32 << 10, data.size() - off));
      if (!w->Write(c)) break;
      c = v1::UploadChunk();
      if (data.empty()) break;
    }
    w->WritesDone();
    return w->Finish();
  }

  grpc::Status Step(const std::string& session, const std::vector<int>& layers, v1::QueryStepReply* reply) {
    grpc::ClientContext ctx;
    v1::QueryStepRequest req;
    req.set_session_id(session);
    req.set_query_id(1);
    req.set_last_step(true);
    for (int k : layers) req.add_layers(k);
    net::TensorToProto("data", SeededInput(model_.inputs[0].shape, 1), req.add_tensors());
    req.add_wanted(model_.layers[layers.back()].name);
    return stub_->QueryStep(&ctx, req, reply);
  }

  std::string Encoded(UploadEncoding e, int k, UnitPhase phase) {
    return CodecFor(e).Encode(model_.layers[k], phase, {}).value();
  }

  static void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, const std::string& part) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(part), std::string::npos) << s.error_message();
  }

  std::unique_ptr<OffloadServer> server_;
  std::unique_ptr<v1::Offload::Stub> stub_;
  Graph model_;
};

TEST_F(NetEncodingRejects, AnEncodingTheServerDoesNotDecodeIsRefusedAtOpenSession) {
  v1::OpenSessionReply reply;
  ExpectStatus(Open("zip", &reply), grpc::StatusCode::INVALID_ARGUMENT, "unknown upload encoding 'zip'");
  grpc::ClientContext ctx;
  v1::HelloRequest hello;
  hello.set_protocol_version(1);
  v1::HelloReply said;
  ASSERT_TRUE(stub_->Hello(&ctx, hello, &said).ok());
  EXPECT_EQ(said.upload_encodings_size(), static_cast<int>(UploadEncodings().size()));
}

TEST_F(NetEncodingRejects, BadEncodedUploadsNameTheLayerAndTheSessionStaysHealthy) {
  v1::OpenSessionReply opened;
  ASSERT_TRUE(Open("lossless", &opened).ok());
  const std::string s = opened.session_id();
  const int conv1 = 0;
  const uint64_t most = CodecFor(UploadEncoding::kLossless).MaxEncodedBytes(model_.layers[conv1], UnitPhase::kWhole);
  // A zstd frame that expands far past conv1's weights.
  const std::string zeros(8 << 20, '\0');
  std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 19));
  std::string frame(1, '\1');
  uint32_t count = 0;  // every value of conv1 (fewer than a frame's 65536)
  for (const auto& w : model_.layers[conv1].weights) count += static_cast<uint32_t>(w.data.size());
  ASSERT_LT(count, 65536u);
  const uint32_t size = static_cast<uint32_t>(bomb.size());
  frame.append(reinterpret_cast<const char*>(&count), 4).append(reinterpret_cast<const char*>(&size), 4) += bomb;
  ExpectStatus(Upload(s, 0, conv1, frame, 0), grpc::StatusCode::INVALID_ARGUMENT, "layer 0 'conv1'");
  ExpectStatus(Upload(s, 0, conv1, frame, 0), grpc::StatusCode::INVALID_ARGUMENT, "does not decompress");
  ExpectStatus(Upload(s, 0, conv1, "", 0, static_cast<int64_t>(most + 1)), grpc::StatusCode::INVALID_ARGUMENT,
               "takes at most " + std::to_string(most));
  const std::string good = Encoded(UploadEncoding::kLossless, conv1, UnitPhase::kWhole);
  ExpectStatus(Upload(s, 0, conv1, good.substr(0, good.size() - 10), 0), grpc::StatusCode::INVALID_ARGUMENT,
               "layer 0 'conv1'");  // a truncated layer: the stream ends short of what it declared
  ExpectStatus(Upload(s, 0, conv1, good, 1), grpc::StatusCode::INVALID_ARGUMENT, "has no 'high' phase");
  {  // no encoded sizes
    grpc::ClientContext ctx;
    v1::UploadReply reply;
    auto w = stub_->Upload(&ctx, &reply);
    v1::UploadChunk c;
    c.set_session_id(s);
    c.add_layers(conv1);
    c.set_data(good);
    w->Write(c);
    w->WritesDone();
    ExpectStatus(w->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "declares encoded_bytes");
  }
  // Healthy: the right bytes now, and a query step on them, exact.
  ASSERT_TRUE(Upload(s, 0, conv1, good, 0).ok());
  v1::QueryStepReply reply;
  ASSERT_TRUE(Step(s, {conv1}, &reply).ok());
  EXPECT_FALSE(reply.approximate());
}

// Progressive: a low half needs its high half; the high half runs,
// approximately, and is never in the store; the low half makes the layer
// exact (a step equals a local run) and puts it there.
TEST_F(NetEncodingRejects, ProgressiveHalvesInOrderAndOnlyExactLayersInTheStore) {
  v1::OpenSessionReply opened;
  ASSERT_TRUE(Open("progressive", &opened).ok());
  const std::string s = opened.session_id();
  const int conv1 = 0;
  const std::string high = Encoded(UploadEncoding::kProgressive, conv1, UnitPhase::kHigh);
  const std::string low = Encoded(UploadEncoding::kProgressive, conv1, UnitPhase::kLow);
  ExpectStatus(Upload(s, 0, conv1, low, 2), grpc::StatusCode::FAILED_PRECONDITION, "has no high half here");
  ExpectStatus(Upload(s, 0, conv1, high, 0), grpc::StatusCode::INVALID_ARGUMENT, "has no 'whole' phase");
  ExpectStatus(Upload(s, 0, conv1, high + "x", 1), grpc::StatusCode::INVALID_ARGUMENT, "takes exactly");
  ASSERT_TRUE(Upload(s, 0, conv1, high, 1).ok());
  v1::QueryStepReply reply;
  ASSERT_TRUE(Step(s, {conv1}, &reply).ok());
  EXPECT_TRUE(reply.approximate());
  // Another session meets a store without conv1: a high half is not exact.
  v1::OpenSessionReply other;
  ASSERT_TRUE(Open("", &other).ok());
  for (const auto& c : other.challenges()) EXPECT_NE(c.layer(), static_cast<uint32_t>(conv1));
  ASSERT_TRUE(Upload(s, 1, conv1, low, 2).ok());
  ExpectStatus(Upload(s, 2, conv1, low, 2), grpc::StatusCode::FAILED_PRECONDITION, "has no high half here");
  ASSERT_TRUE(Step(s, {conv1}, &reply).ok());
  EXPECT_FALSE(reply.approximate());
  const TensorMap input = {{"data", SeededInput(model_.inputs[0].shape, 1)}};
  const Tensor want = Engine::Create(model_).value()->Run({conv1}, input, {"conv1"}).value().at("conv1");
  EXPECT_EQ(net::TensorFromProto(reply.tensors(0), want.shape).value().data, want.data);
  v1::OpenSessionReply later;
  ASSERT_TRUE(Open("", &later).ok());
  bool held = false;
  for (const auto& c : later.challenges()) held = held || c.layer() == static_cast<uint32_t>(conv1);
  EXPECT_TRUE(held) << "the exact layer is in the store once its low half arrived";
}

}  // namespace
}  // namespace ionn
