// CPU kernels for proxy training, built on first use by effscale.search.cpu_kernels (torch.utils.cpp_extension).
//
// depthwise_weight_grad: the weight gradient of a depthwise convolution (one filter per channel, no dilation) on
// channels_last float tensors,
//   dW[c, i, j] = sum over n, ho, wo of grad[n, c, ho, wo] * x[n, c, ho*s + i - p, wo*s + j - p].
// Channels are innermost in memory, so a group of up to GROUP channels is a few contiguous vectors: for each
// output position the kernel reads the group's gradient once and adds its products with the input under every
// tap into K*K accumulators (in registers for small groups, in L1 otherwise). Work is split over (batch chunk,
// channel group) pairs; each batch chunk has its own partial sums, added in a fixed order, so a given thread
// count gives the same result.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int64_t GROUP = 64;  // channels per task: the accumulators of a 7x7 kernel stay in L1

struct Geometry {
  int64_t batch, channels, height, width, out_height, out_width, kernel, stride, pad;
};

// First and one-past-last output index whose tap `offset` lands inside [0, size).
inline std::pair<int64_t, int64_t> valid_outputs(int64_t offset, int64_t size, int64_t out_size, int64_t stride,
                                                 int64_t pad) {
  int64_t lo = pad - offset > 0 ? (pad - offset + stride - 1) / stride : 0;
  int64_t hi = (size - 1 + pad - offset) >= 0 ? (size - 1 + pad - offset) / stride + 1 : 0;
  return {lo, std::min(hi, out_size)};
}

// Partial sums of one (batch range, channel group of `width` <= GROUP channels) into acc_out[K*K] (row stride
// `channels`). For each output position the group's gradient and input vectors are contiguous in memory.
template <int K, int64_t WIDTH>
void accumulate(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                int64_t c0, int64_t runtime_width) {
  const int64_t width = WIDTH > 0 ? WIDTH : runtime_width;
  alignas(64) float acc[K * K][GROUP] = {};
  const int64_t C = g.channels;
  for (int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * g.height * g.width * C + c0;
    const float* gn = grad + n * g.out_height * g.out_width * C + c0;
    for (int64_t ho = 0; ho < g.out_height; ++ho) {
      for (int64_t wo = 0; wo < g.out_width; ++wo) {
        const float* __restrict__ gv = gn + (ho * g.out_width + wo) * C;
        const int64_t h_base = ho * g.stride - g.pad, w_base = wo * g.stride - g.pad;
        for (int i = 0; i < K; ++i) {
          const int64_t hi = h_base + i;
          if (hi < 0 || hi >= g.height) continue;
          for (int j = 0; j < K; ++j) {
            const int64_t wi = w_base + j;
            if (wi < 0 || wi >= g.width) continue;
            const float* __restrict__ xv = xn + (hi * g.width + wi) * C;
            float* __restrict__ a = acc[i * K + j];
            for (int64_t v = 0; v < width; ++v) a[v] += gv[v] * xv[v];
          }
        }
      }
    }
  }
  for (int t = 0; t < K * K; ++t)
    for (int64_t v = 0; v < width; ++v) acc_out[t * C + c0 + v] = acc[t][v];
}

// The same for any kernel size and lane count (accumulators in memory).
void accumulate_any(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                    int64_t c0, int64_t lanes) {
  const int64_t C = g.channels, K = g.kernel;
  for (int64_t t = 0; t < K * K; ++t)
    for (int64_t v = 0; v < lanes; ++v) acc_out[t * C + c0 + v] = 0.0f;
  for (int64_t i = 0; i < K; ++i) {
    auto [ho0, ho1] = valid_outputs(i, g.height, g.out_height, g.stride, g.pad);
    for (int64_t j = 0; j < K; ++j) {
      auto [wo0, wo1] = valid_outputs(j, g.width, g.out_width, g.stride, g.pad);
      float* out = acc_out + (i * K + j) * C + c0;
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t ho = ho0; ho < ho1; ++ho)
          for (int64_t wo = wo0; wo < wo1; ++wo) {
            const float* gv = grad + ((n * g.out_height + ho) * g.out_width + wo) * C + c0;
            const int64_t hi = ho * g.stride - g.pad + i, wi = wo * g.stride - g.pad + j;
            const float* xv = x + ((n * g.height + hi) * g.width + wi) * C + c0;
            for (int64_t v = 0; v < lanes; ++v) out[v] += gv[v] * xv[v];
          }
    }
  }
}

// A compile-time group width where the channels allow one (fully unrolled, registers where they suffice).
template <int K>
void with_width(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                int64_t c0, int64_t width) {
  switch (width) {
    case 64: return accumulate<K, 64>(x, grad, acc_out, g, n0, n1, c0, width);
    case 48: return accumulate<K, 48>(x, grad, acc_out, g, n0, n1, c0, width);
    case 32: return accumulate<K, 32>(x, grad, acc_out, g, n0, n1, c0, width);
    case 16: return accumulate<K, 16>(x, grad, acc_out, g, n0, n1, c0, width);
    case 8: return accumulate<K, 8>(x, grad, acc_out, g, n0, n1, c0, width);
    default: return accumulate<K, 0>(x, grad, acc_out, g, n0, n1, c0, width);
  }
}

void accumulate_group(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                      int64_t c0) {
  const int64_t width = std::min<int64_t>(GROUP, g.channels - c0);
  if (g.kernel == 3) return with_width<3>(x, grad, acc_out, g, n0, n1, c0, width);
  if (g.kernel == 5) return with_width<5>(x, grad, acc_out, g, n0, n1, c0, width);
  if (g.kernel == 7) return with_width<7>(x, grad, acc_out, g, n0, n1, c0, width);
  accumulate_any(x, grad, acc_out, g, n0, n1, c0, width);
}

}  // namespace

torch::Tensor depthwise_weight_grad(const torch::Tensor& input, const torch::Tensor& grad_output, int64_t kernel,
                                    int64_t stride, int64_t pad) {
  TORCH_CHECK(input.dim() == 4 && grad_output.dim() == 4, "depthwise_weight_grad: 4-d tensors expected");
  TORCH_CHECK(input.scalar_type() == at::kFloat && grad_output.scalar_type() == at::kFloat,
              "depthwise_weight_grad: float32 tensors expected");
  TORCH_CHECK(input.device().is_cpu() && grad_output.device().is_cpu(), "depthwise_weight_grad: CPU tensors expected");
  const auto nhwc = at::MemoryFormat::ChannelsLast;
  auto x = input.contiguous(nhwc);
  auto grad = grad_output.contiguous(nhwc);
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), grad.size(2), grad.size(3), kernel, stride, pad};
  TORCH_CHECK(grad.size(0) == g.batch && grad.size(1) == g.channels, "depthwise_weight_grad: shapes do not match");
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), g.batch));
  const int64_t blocks = (g.channels + GROUP - 1) / GROUP;
  auto partial = torch::empty({chunks, kernel * kernel, g.channels}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  float* pp = partial.data_ptr<float>();
  at::parallel_for(0, chunks * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t chunk = task / blocks, block = task % blocks;
      const int64_t n0 = g.batch * chunk / chunks, n1 = g.batch * (chunk + 1) / chunks;
      accumulate_group(xp, gp, pp + chunk * kernel * kernel * g.channels, g, n0, n1, block * GROUP);
    }
  });
  // (chunks, K*K, C) -> (C, 1, K, K), the partial sums added in chunk order.
  return partial.sum(0).t().reshape({g.channels, 1, kernel, kernel});
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "weight gradient of a channels_last depthwise convolution");
}
