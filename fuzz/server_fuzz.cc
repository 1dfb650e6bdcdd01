// libFuzzer targets: what an edge server decodes from a client, through a
// real OffloadServer in this process (gRPC on loopback), so that the
// server's own validation is what is fuzzed. Built twice:
//   architecture_fuzz  an input is an OpenSessionRequest (the architecture
//                      decoder, the store's structure keys, the activation
//                      limit), then UploadChunk messages of one Upload call
//                      (the partition decoder and the layer builds), a
//                      chunk listing layers starting the next call;
//   query_step_fuzz    an input is a sequence of QueryStepRequest messages
//                      against a session of fuzz/small_model.h, uploaded
//                      whole at start (the query-step decoder and execution).
// Framing: messages one after another, each a 4-byte little-endian length
// and that many bytes. A session id that is empty or "S" is replaced by the
// session's real one (the fuzzer cannot guess a 128-bit token; the tests
// check wrong ids). Seeds: fuzz/corpus/{architecture,query_step}, written
// by fuzz/make_seeds.cc.
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "ionn.grpc.pb.h"
#include "ionn/server.h"
#include "small_model.h"
#include "wire.h"

namespace ionn::fuzz {
namespace {

std::vector<std::string> Messages(const uint8_t* data, size_t size) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at + 4 <= size && out.size() < 64) {
    const uint32_t n = uint32_t(data[at]) | uint32_t(data[at + 1]) << 8 | uint32_t(data[at + 2]) << 16 |
                       uint32_t(data[at + 3]) << 24;
    at += 4;
    if (n > size - at) break;
    out.emplace_back(reinterpret_cast<const char*>(data + at), n);
    at += n;
  }
  return out;
}

struct Fixture {
  std::unique_ptr<OffloadServer> server;
  std::unique_ptr<v1::Offload::Stub> stub;
  std::string session;  // query_step_fuzz: the small model, uploaded

  Fixture() {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.max_model_bytes = 64 << 20;  // what one input can make the server hold
    o.max_activation_bytes = 64 << 20;
    o.store_bytes = 16 << 20;
    o.max_chunk_bytes = 64 << 10;
    o.session_idle_s = 1e6;
    auto s = OffloadServer::Start(o);
    if (!s.ok()) std::abort();
    server = std::move(s).value();
    stub = v1::Offload::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  }

  // Opens a session of the small model and uploads it as one partition.
  void UploadSmallModel() {
    const Graph g = SmallModel();
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req;
    *req.mutable_model() = net::ArchitectureToProto(g);
    v1::OpenSessionReply reply;
    if (!stub->OpenSession(&ctx, req, &reply).ok()) std::abort();
    session = reply.session_id();
    grpc::ClientContext up;
    v1::UploadReply ack;
    auto writer = stub->Upload(&up, &ack);
    v1::UploadChunk chunk;
    chunk.set_session_id(session);
    chunk.set_partition(0);
    std::string bytes;
    for (size_t k = 0; k < g.layers.size(); ++k) {
      chunk.add_layers(static_cast<uint32_t>(k));
      net::AppendLayerWeights(g.layers[k], &bytes);
    }
    chunk.set_data(bytes);
    writer->Write(chunk);
    writer->WritesDone();
    if (!writer->Finish().ok()) std::abort();
  }
};

template <typename Message>
void SetSession(Message* m, const std::string& id) {
  if (m->session_id().empty() || m->session_id() == "S") m->set_session_id(id);
}

void Deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

}  // namespace
}  // namespace ionn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ionn;
  using namespace ionn::fuzz;
  static Fixture* f = [] {
    auto* fixture = new Fixture();
#ifdef IONN_FUZZ_QUERY_STEP
    fixture->UploadSmallModel();
#endif
    return fixture;
  }();
  const std::vector<std::string> messages = Messages(data, size);
#ifdef IONN_FUZZ_QUERY_STEP
  for (const std::string& bytes : messages) {
    v1::QueryStepRequest req;
    if (!req.ParseFromString(bytes)) continue;
    SetSession(&req, f->session);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::QueryStepReply reply;
    (void)f->stub->QueryStep(&ctx, req, &reply);
  }
#else
  if (messages.empty()) return 0;
  v1::OpenSessionRequest open;
  if (!open.ParseFromString(messages[0])) return 0;
  std::string id;
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::OpenSessionReply reply;
    if (!f->stub->OpenSession(&ctx, open, &reply).ok()) return 0;
    id = reply.session_id();
  }
  // Upload calls: a chunk that lists layers after chunks of the same call
  // starts the next call (the next partition), as a client's would.
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<v1::UploadChunk>> writer;
  v1::UploadReply ack;
  auto finish = [&] {
    if (!writer) return;
    writer->WritesDone();
    (void)writer->Finish();
    writer.reset();
  };
  bool written = false;
  for (size_t i = 1; i < messages.size(); ++i) {
    v1::UploadChunk chunk;
    if (!chunk.ParseFromString(messages[i])) continue;
    SetSession(&chunk, id);
    if (written && chunk.layers_size() > 0) finish();
    if (!writer) {
      ctx = std::make_unique<grpc::ClientContext>();
      Deadline(ctx.get());
      writer = f->stub->Upload(ctx.get(), &ack);
      written = false;
    }
    written = true;
    if (!writer->Write(chunk)) finish();
  }
  finish();
  grpc::ClientContext close_ctx;
  Deadline(&close_ctx);
  v1::CloseSessionRequest close;
  close.set_session_id(id);
  v1::CloseSessionReply closed;
  (void)f->stub->CloseSession(&close_ctx, close, &closed);
#endif
  return 0;
}
