#include "ionn/zoo.h"

#include "shape.h"

#include <cmath>
#include <functional>

namespace ionn {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t HashName(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Builds a graph layer by layer, tracking shapes so that weights can be made.
class ZooBuilder {
 public:
  ZooBuilder(std::string model, Shape input, uint64_t seed, bool with_weights)
      : seed_(seed), with_weights_(with_weights) {
    g_.name = std::move(model);
    g_.inputs.push_back({"data", std::move(input)});
  }

  std::string Conv(const std::string& name, const std::string& in, int out, int k, int stride = 1,
                   int pad = 0, int group = 1, bool bias = true) {
    Layer l = Make(name, LayerKind::kConv, {in});
    l.out_channels = out, l.group = group;
    l.kernel_h = l.kernel_w = k, l.stride_h = l.stride_w = stride;
    l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = pad;
    const int64_t in_c = Channels(in);
    const double fan_in = static_cast<double>(in_c / group) * k * k;
    l.weights.push_back(Random(name + "/W", {out, in_c / group, k, k}, std::sqrt(6.0 / fan_in)));
    if (bias) l.weights.push_back(Random(name + "/b", {out}, 0.05));
    return Add(std::move(l));
  }
  std::string Relu(const std::string& name, const std::string& in) { return Add(Make(name, LayerKind::kRelu, {in})); }
  std::string Lrn(const std::string& name, const std::string& in, int size, float alpha, float beta) {
    Layer l = Make(name, LayerKind::kLrn, {in});
    l.lrn_size = size, l.lrn_alpha = alpha, l.lrn_beta = beta, l.lrn_bias = 1;
    return Add(std::move(l));
  }
  std::string Pool(const std::string& name, const std::string& in, bool max, int k, int stride, int pad = 0,
                   bool ceil = true) {
    Layer l = Make(name, max ? LayerKind::kMaxPool : LayerKind::kAvgPool, {in});
    l.kernel_h = l.kernel_w = k, l.stride_h = l.stride_w = stride;
    l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = pad;
    l.ceil_mode = ceil;
    l.count_include_pad = true;  // Caffe's average pooling divides by the padded window
    return Add(std::move(l));
  }
  std::string GlobalAvgPool(const std::string& name, const std::string& in) {
    return Add(Make(name, LayerKind::kGlobalAvgPool, {in}));
  }
  std::string Fc(const std::string& name, const std::string& in, int out) {
    Layer l = Make(name, LayerKind::kFc, {in});
    l.out_channels = out;
    const Shape* s = g_.TensorShape(in);
    const int64_t features = ElementCount(*s) / (*s)[0];
    l.weights.push_back(Random(name + "/W", {out, features}, std::sqrt(6.0 / features)));
    l.weights.push_back(Random(name + "/b", {out}, 0.05));
    return Add(std::move(l));
  }
  std::string Dropout(const std::string& name, const std::string& in) {
    return Add(Make(name, LayerKind::kDropout, {in}));
  }
  std::string Softmax(const std::string& name, const std::string& in) {
    Layer l = Make(name, LayerKind::kSoftmax, {in});
    l.softmax_coerce_2d = true;
    return Add(std::move(l));
  }
  std::string Concat(const std::string& name, const std::vector<std::string>& in) {
    return Add(Make(name, LayerKind::kConcat, in));
  }
  std::string Eltwise(const std::string& name, const std::string& a, const std::string& b) {
    return Add(Make(name, LayerKind::kAdd, {a, b}));
  }
  // Caffe's BatchNorm (running statistics only) and Scale (gamma, beta).
  std::string BatchNorm(const std::string& name, const std::string& in) {
    Layer l = Make(name, LayerKind::kBatchNorm, {in});
    const int64_t c = Channels(in);
    l.weights.push_back(Constant(name + "/gamma", c, 1));
    l.weights.push_back(Constant(name + "/beta", c, 0));
    l.weights.push_back(Random(name + "/mean", {c}, 0.1));
    Weight var = Random(name + "/var", {c}, 0.25);
    for (float& v : var.data) v = 1.0f + v;
    l.weights.push_back(std::move(var));
    return Add(std::move(l));
  }
  std::string Scale(const std::string& name, const std::string& in) {
    Layer l = Make(name, LayerKind::kScale, {in});
    l.epsilon = 0;
    const int64_t c = Channels(in);
    Weight gamma = Random(name + "/gamma", {c}, 0.25);
    for (float& v : gamma.data) v = 1.0f + v;
    l.weights.push_back(std::move(gamma));
    l.weights.push_back(Random(name + "/beta", {c}, 0.1));
    l.weights.push_back(Constant(name + "/mean", c, 0));
    l.weights.push_back(Constant(name + "/var", c, 1));
    return Add(std::move(l));
  }

  Result<Graph> Finish(const std::string& output) {
    g_.outputs = {output};
    IONN_RETURN_IF_ERROR(status_);
    IONN_RETURN_IF_ERROR(g_.Finalize());
    return std::move(g_);
  }

 private:
  Layer Make(const std::string& name, LayerKind kind, std::vector<std::string> inputs) {
    Layer l;
    l.name = name;
    l.kind = kind;
    l.inputs = std::move(inputs);
    return l;
  }
  std::string Add(Layer l) {
    // Shapes are needed while building; Finalize checks everything again.
    // Copies: pushing the layer may move the shapes the pointers point into.
    std::vector<Shape> shapes;
    for (const auto& name : l.inputs) {
      const Shape* s = g_.TensorShape(name);
      if (!s && status_.ok()) status_ = Status::Internal("zoo: '" + l.name + "' reads unknown tensor '" + name + "'");
      shapes.push_back(s ? *s : Shape{});
    }
    std::vector<const Shape*> in;
    for (const Shape& s : shapes) in.push_back(&s);
    if (status_.ok()) {
      Status s = InferLayerShape(l, in, &l.output_shape);
      if (!s.ok()) status_ = s.WithContext("zoo layer '" + l.name + "'");
    }
    g_.layers.push_back(std::move(l));
    return g_.layers.back().name;
  }
  int64_t Channels(const std::string& tensor) const { return (*g_.TensorShape(tensor))[1]; }
  Weight Random(const std::string& name, Shape shape, double scale) {
    Weight w{name, std::move(shape), {}};
    if (!with_weights_) return w;  // shapes only
    w.data.resize(ElementCount(w.shape));
    uint64_t state = HashName(name, seed_);
    const double unit = scale / static_cast<double>(1ULL << 52);
    for (float& v : w.data) {
      const int64_t r = static_cast<int64_t>(SplitMix(state) >> 11) - (1LL << 52);  // [-2^52, 2^52)
      v = static_cast<float>(r * unit);
    }
    return w;
  }
  Weight Constant(const std::string& name, int64_t c, float value) {
    return Weight{name, {c}, with_weights_ ? std::vector<float>(c, value) : std::vector<float>()};
  }

  Graph g_;
  uint64_t seed_;
  bool with_weights_;
  Status status_;
};

Result<Graph> AlexNet(uint64_t seed, bool w) {
  ZooBuilder b("alexnet", {1, 3, 227, 227}, seed, w);
  std::string x = b.Conv("conv1", "data", 96, 11, 4);
  x = b.Relu("relu1", x);
  x = b.Lrn("norm1", x, 5, 1e-4f, 0.75f);
  x = b.Pool("pool1", x, true, 3, 2);
  x = b.Conv("conv2", x, 256, 5, 1, 2, 2);
  x = b.Relu("relu2", x);
  x = b.Lrn("norm2", x, 5, 1e-4f, 0.75f);
  x = b.Pool("pool2", x, true, 3, 2);
  x = b.Conv("conv3", x, 384, 3, 1, 1);
  x = b.Relu("relu3", x);
  x = b.Conv("conv4", x, 384, 3, 1, 1, 2);
  x = b.Relu("relu4", x);
  x = b.Conv("conv5", x, 256, 3, 1, 1, 2);
  x = b.Relu("relu5", x);
  x = b.Pool("pool5", x, true, 3, 2);
  x = b.Fc("fc6", x, 4096);
  x = b.Relu("relu6", x);
  x = b.Dropout("drop6", x);
  x = b.Fc("fc7", x, 4096);
  x = b.Relu("relu7", x);
  x = b.Dropout("drop7", x);
  x = b.Fc("fc8", x, 1000);
  return b.Finish(b.Softmax("prob", x));
}

Result<Graph> GoogLeNet(uint64_t seed, bool w) {
  ZooBuilder b("googlenet", {1, 3, 224, 224}, seed, w);
  std::string x = b.Relu("conv1/relu_7x7", b.Conv("conv1/7x7_s2", "data", 64, 7, 2, 3));
  x = b.Pool("pool1/3x3_s2", x, true, 3, 2);
  x = b.Lrn("pool1/norm1", x, 5, 1e-4f, 0.75f);
  x = b.Relu("conv2/relu_3x3_reduce", b.Conv("conv2/3x3_reduce", x, 64, 1));
  x = b.Relu("conv2/relu_3x3", b.Conv("conv2/3x3", x, 192, 3, 1, 1));
  x = b.Lrn("conv2/norm2", x, 5, 1e-4f, 0.75f);
  x = b.Pool("pool2/3x3_s2", x, true, 3, 2);
  auto inception = [&](const std::string& m, const std::string& in, int c1, int r3, int c3, int r5, int c5, int pp) {
    const std::string p = "inception_" + m + "/";
    std::string a = b.Relu(p + "relu_1x1", b.Conv(p + "1x1", in, c1, 1));
    std::string t = b.Relu(p + "relu_3x3_reduce", b.Conv(p + "3x3_reduce", in, r3, 1));
    t = b.Relu(p + "relu_3x3", b.Conv(p + "3x3", t, c3, 3, 1, 1));
    std::string f = b.Relu(p + "relu_5x5_reduce", b.Conv(p + "5x5_reduce", in, r5, 1));
    f = b.Relu(p + "relu_5x5", b.Conv(p + "5x5", f, c5, 5, 1, 2));
    std::string q = b.Pool(p + "pool", in, true, 3, 1, 1);
    q = b.Relu(p + "relu_pool_proj", b.Conv(p + "pool_proj", q, pp, 1));
    return b.Concat(p + "output", {a, t, f, q});
  };
  x = inception("3a", x, 64, 96, 128, 16, 32, 32);
  x = inception("3b", x, 128, 128, 192, 32, 96, 64);
  x = b.Pool("pool3/3x3_s2", x, true, 3, 2);
  x = inception("4a", x, 192, 96, 208, 16, 48, 64);
  x = inception("4b", x, 160, 112, 224, 24, 64, 64);
  x = inception("4c", x, 128, 128, 256, 24, 64, 64);
  x = inception("4d", x, 112, 144, 288, 32, 64, 64);
  x = inception("4e", x, 256, 160, 320, 32, 128, 128);
  x = b.Pool("pool4/3x3_s2", x, true, 3, 2);
  x = inception("5a", x, 256, 160, 320, 32, 128, 128);
  x = inception("5b", x, 384, 192, 384, 48, 128, 128);
  x = b.Pool("pool5/7x7_s1", x, false, 7, 1);
  x = b.Dropout("pool5/drop_7x7_s1", x);
  x = b.Fc("loss3/classifier", x, 1000);
  return b.Finish(b.Softmax("prob", x));
}

Result<Graph> ResNet50(uint64_t seed, bool w) {
  ZooBuilder b("resnet50", {1, 3, 224, 224}, seed, w);
  auto conv_bn = [&](const std::string& suffix, const std::string& in, int out, int k, int stride, int pad,
                     bool relu, bool bias) {
    std::string x = b.Conv("res" + suffix, in, out, k, stride, pad, 1, bias);
    x = b.BatchNorm("bn" + suffix, x);
    x = b.Scale("scale" + suffix, x);
    return relu ? b.Relu("res" + suffix + "_relu", x) : x;
  };
  std::string x = b.Conv("conv1", "data", 64, 7, 2, 3);
  x = b.BatchNorm("bn_conv1", x);
  x = b.Scale("scale_conv1", x);
  x = b.Relu("conv1_relu", x);
  x = b.Pool("pool1", x, true, 3, 2);
  const int blocks[] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    const int width = 64 << stage;
    for (int i = 0; i < blocks[stage]; ++i) {
      const std::string id = std::to_string(stage + 2) + std::string(1, static_cast<char>('a' + i));
      const int stride = (i == 0 && stage > 0) ? 2 : 1;
      std::string shortcut = x;
      if (i == 0) shortcut = conv_bn(id + "_branch1", x, width * 4, 1, stride, 0, false, false);
      std::string y = conv_bn(id + "_branch2a", x, width, 1, stride, 0, true, false);
      y = conv_bn(id + "_branch2b", y, width, 3, 1, 1, true, false);
      y = conv_bn(id + "_branch2c", y, width * 4, 1, 1, 0, false, false);
      x = b.Relu("res" + id + "_relu", b.Eltwise("res" + id, shortcut, y));
    }
  }
  x = b.Pool("pool5", x, false, 7, 1);
  x = b.Fc("fc1000", x, 1000);
  return b.Finish(b.Softmax("prob", x));
}

Result<Graph> InceptionBn(uint64_t seed, bool w) {
  ZooBuilder b("inception_bn", {1, 3, 224, 224}, seed, w);
  auto unit = [&](const std::string& n, const std::string& in, int out, int k, int stride, int pad) {
    std::string x = b.Conv("conv_" + n, in, out, k, stride, pad);
    x = b.BatchNorm("bn_" + n, x);
    x = b.Scale("scale_conv_" + n, x);
    return b.Relu("relu_" + n, x);
  };
  auto factory_a = [&](const std::string& m, const std::string& in, int c1, int r3, int c3, int rd, int cd,
                       bool max_pool, int proj) {
    std::string a = unit(m + "_1x1", in, c1, 1, 1, 0);
    std::string t = unit(m + "_3x3", unit(m + "_3x3_reduce", in, r3, 1, 1, 0), c3, 3, 1, 1);
    std::string d = unit(m + "_double_3x3_reduce", in, rd, 1, 1, 0);
    d = unit(m + "_double_3x3_1", unit(m + "_double_3x3_0", d, cd, 3, 1, 1), cd, 3, 1, 1);
    std::string p = b.Pool((max_pool ? "max_pool_" : "ave_pool_") + m + "_pool", in, max_pool, 3, 1, 1);
    p = unit(m + "_proj", p, proj, 1, 1, 0);
    return b.Concat("ch_concat_" + m + "_chconcat", {a, t, d, p});
  };
  auto factory_b = [&](const std::string& m, const std::string& in, int r3, int c3, int rd, int cd) {
    std::string t = unit(m + "_3x3", unit(m + "_3x3_reduce", in, r3, 1, 1, 0), c3, 3, 2, 1);
    std::string d = unit(m + "_double_3x3_reduce", in, rd, 1, 1, 0);
    d = unit(m + "_double_3x3_1", unit(m + "_double_3x3_0", d, cd, 3, 1, 1), cd, 3, 2, 1);
    std::string p = b.Pool("max_pool_" + m + "_pool", in, true, 3, 2, 1, /*ceil=*/false);
    return b.Concat("ch_concat_" + m + "_chconcat", {t, d, p});
  };
  std::string x = unit("conv1", "data", 64, 7, 2, 3);
  x = b.Pool("pool1", x, true, 3, 2);
  x = unit("conv2red", x, 64, 1, 1, 0);
  x = unit("conv2", x, 192, 3, 1, 1);
  x = b.Pool("pool2", x, true, 3, 2);
  x = factory_a("3a", x, 64, 64, 64, 64, 96, false, 32);
  x = factory_a("3b", x, 64, 64, 96, 64, 96, false, 64);
  x = factory_b("3c", x, 128, 160, 64, 96);
  x = factory_a("4a", x, 224, 64, 96, 96, 128, false, 128);
  x = factory_a("4b", x, 192, 96, 128, 96, 128, false, 128);
  x = factory_a("4c", x, 160, 128, 160, 128, 160, false, 128);
  x = factory_a("4d", x, 96, 128, 192, 160, 192, false, 128);
  x = factory_b("4e", x, 128, 192, 192, 256);
  x = factory_a("5a", x, 352, 192, 320, 160, 224, false, 128);
  x = factory_a("5b", x, 352, 192, 320, 192, 224, true, 128);
  x = b.GlobalAvgPool("global_pool", x);
  x = b.Fc("fc1", x, 1000);
  return b.Finish(b.Softmax("softmax", x));
}

Result<Graph> MobileNet(uint64_t seed, bool w) {
  ZooBuilder b("mobilenet", {1, 3, 224, 224}, seed, w);
  auto unit = [&](const std::string& conv, const std::string& relu, const std::string& in, int out, int k,
                  int stride, int group) {
    std::string x = b.Conv(conv, in, out, k, stride, k / 2, group, /*bias=*/false);
    x = b.BatchNorm(conv + "/bn", x);
    x = b.Scale(conv + "/scale", x);
    return b.Relu(relu, x);
  };
  std::string x = unit("conv1", "relu1", "data", 32, 3, 2, 1);
  struct Block { const char* id; int out; int stride; };
  const Block blocks[] = {{"2_1", 64, 1},  {"2_2", 128, 2}, {"3_1", 128, 1}, {"3_2", 256, 2},
                          {"4_1", 256, 1}, {"4_2", 512, 2}, {"5_1", 512, 1}, {"5_2", 512, 1},
                          {"5_3", 512, 1}, {"5_4", 512, 1}, {"5_5", 512, 1}, {"5_6", 1024, 2},
                          {"6", 1024, 1}};
  int channels = 32;
  for (const Block& blk : blocks) {
    const std::string id = blk.id;
    x = unit("conv" + id + "/dw", "relu" + id + "/dw", x, channels, 3, blk.stride, channels);
    x = unit("conv" + id + "/sep", "relu" + id + "/sep", x, blk.out, 1, 1, 1);
    channels = blk.out;
  }
  x = b.Pool("pool6", x, false, 7, 1);
  x = b.Conv("fc7", x, 1000, 1);
  return b.Finish(b.Softmax("prob", x));
}

}  // namespace

const std::vector<ZooEntry>& ZooModels() {
  static const std::vector<ZooEntry> models = {
      {"alexnet", "BVLC AlexNet (227x227, grouped convolutions, LRN)", "alexnet.csv"},
      {"googlenet", "BVLC GoogLeNet (224x224, no auxiliary classifiers)", "googlenet.csv"},
      {"resnet50", "ResNet-50 (Caffe, BatchNorm + Scale)", "resnet50.csv"},
      {"inception_bn", "Inception-BN (BN-Inception, Caffe conversion)", "inception_bn.csv"},
      {"mobilenet", "MobileNet v1 1.0 224 (Caffe, BatchNorm + Scale)", "mobilenet.csv"},
  };
  return models;
}

Result<Graph> BuildZooModel(const std::string& name, uint64_t seed, bool with_weights) {
  using Builder = std::function<Result<Graph>(uint64_t, bool)>;
  const std::pair<const char*, Builder> builders[] = {{"alexnet", AlexNet},
                                                      {"googlenet", GoogLeNet},
                                                      {"resnet50", ResNet50},
                                                      {"inception_bn", InceptionBn},
                                                      {"mobilenet", MobileNet}};
  for (const auto& [n, build] : builders) {
    if (name == n) return build(seed, with_weights);
  }
  std::string known;
  for (const auto& m : ZooModels()) known += (known.empty() ? "" : ", ") + m.name;
  return Status::NotFound("no zoo model '" + name + "' (known: " + known + ")");
}

}  // namespace ionn
