// libFuzzer target: the ONNX importer, then the engine on what it accepts.
// Any input must import or fail with a Status; an accepted model must build
// and run (or fail with a Status) without a crash, a leak or undefined
// behaviour (the fuzz build has ASan and UBSan). Seeds: fuzz/corpus/onnx.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ionn;
  auto g = ParseOnnx(std::string(reinterpret_cast<const char*>(data), size));
  if (!g.ok()) return 0;
  // Running needs every tensor once: keep the fuzzer to models a run of
  // which fits in a few MiB (the CLI's own limit is far larger).
  int64_t elements = 0;
  auto add = [&](const Shape& shape) {
    const int64_t n = ElementCount(shape);  // -1 when it overflows
    elements = n < 0 || elements > (1 << 20) ? int64_t{1} << 40 : elements + n;
  };
  for (const auto& in : g->inputs) add(in.shape);
  for (const auto& l : g->layers) add(l.output_shape);
  if (elements > (1 << 20)) return 0;
  EngineOptions eo;
  eo.threads = 1;
  auto engine = Engine::Create(*g, eo);
  if (!engine.ok()) return 0;
  TensorMap inputs;
  for (const auto& in : g->inputs) inputs[in.name] = SeededInput(in.shape, 1);
  (void)(*engine)->RunAll(inputs);
  return 0;
}
