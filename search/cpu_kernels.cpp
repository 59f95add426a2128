// CPU kernels for proxy training, built on first use by effscale.search.cpu_kernels (torch.utils.cpp_extension).
// All take channels_last float tensors, whose channels are innermost in memory, and work on contiguous channel
// vectors. Each records its calls for torch.profiler itself (RECORD_KERNEL): a Python record_function around a
// call costs tens of microseconds even with no profiler running, and a training step makes about 130 calls.
//
// depthwise_weight_grad: the weight gradient of a depthwise convolution (one filter per channel, no dilation),
//   dW[c, i, j] = sum over n, ho, wo of grad[n, c, ho, wo] * x[n, c, ho*s + i - p, wo*s + j - p].
// For each output position the kernel reads a group of up to GROUP channels' gradient once and adds its products
// with the input under every tap into K*K accumulators (in registers for small groups, in L1 otherwise). Work is
// split over (batch chunk, channel group) pairs; each batch chunk has its own partial sums, added in a fixed order,
// so a given thread count gives the same result.
//
// depthwise_input_grad: the input gradient of a depthwise convolution, as sums gathered into every position of dx
// from the taps of the output's gradient that reach it,
//   dx[n, c, h, w] = sum over i, j with s | h + p - i and s | w + p - j
//                    of grad[n, c, (h + p - i)/s, (w + p - j)/s] * w[c, i, j].
// Each position of dx is written once, by one thread, from a group of up to GROUP channels summed in registers in
// tap order, so the result does not depend on the thread count; the same position of a few images goes at once,
// each weight vector loaded once for them.
//
// squeeze_excite_backward: both gradients of y = x * gate[:, :, None, None] in one pass over grad and x,
//   dx = grad * gate,  dgate[n, c] = sum over h, w of grad[n, c, h, w] * x[n, c, h, w],
// where autograd's mul reads grad twice, writes grad * x and reads it again to sum. Each image is one task, summed
// in position order, so the result does not depend on the thread count.
//
// batch_norm_forward / batch_norm_backward: training-mode batch norm over N, H, W, in two passes each way (one for
// the per-channel sums, one for the output), where PyTorch's channels_last kernels are several times slower per
// element on few channels. The tensor is walked as runs of lcm(C, 16) floats, whole rows of channels a vector unit
// handles however few the channels; the per-channel sums are split into chunks fixed by the shape, so the result
// does not depend on the thread count either. The forward pass takes both moments in one pass from values shifted
// by the first pixel, moves the running statistics it is given (no small tensor ops in Python for them), and
// normalises as z = (x - mean) * scale + bias; the backward pass is
//   dx = w / std * (dy - mean(dy) - (x - mean) / var * mean(dy * (x - mean))),  dw = sum(dy * (x - mean)) / std,
//   db = sum(dy).
// With silu, SiLU follows in the same passes: the forward pass writes only y = z * sigmoid(z), two passes over
// memory fewer than a separate SiLU makes (read z, write y), and z is not kept. The backward pass takes
//   dz = dy * (s + y * (1 - s)),  s = sigmoid(z) = y / z
// in its sums' pass, from dy, x and the forward pass's output y (which the next layer keeps anyway), writes dz where
// dx goes and then dx over it. z is recomputed from the saved mean and variance bit for bit as the forward pass
// computed it (that pass normalises with the float32 variance it returns), so y / z is the forward pass's sigmoid to
// 1.5 ulp: one division in place of the sigmoid's exp, whose arithmetic, not memory, bounded that pass on the
// project's CPUs. The exp of the forward pass's sigmoid is a branch-free polynomial: with -fno-trapping-math
// (PyTorch enables no floating-point traps) the compiler turns its clamp into selects and the loops into vector code.
//
// batch_norm_silu_gate_forward / _backward: y = SiLU(z), z = batch_norm(x), followed by a squeeze-excite gate,
//   out = y * gate[n, c],  gate = sigmoid(fc2(SiLU(fc1(pooled)))),  pooled[n, c] = mean over h, w of y,
// the MLP by ATen's operators on (N, C) matrices. y is never written: the forward pass takes the statistics, then
// pooled and s = sigmoid(z) (the one exp and division per element; z is a multiply-add away from x), then out from
// x and s. The backward pass takes, per image and channel, the sums the gate's gradient and the batch norm's need,
// then dx. With dy = grad * gate + dpooled / (H W) and dz = dy * SiLU'(z):
//   dgate = sum grad * y,  sum dz = gate sum grad * SiLU' + dpooled / (H W) sum SiLU', and likewise with (x - mean),
// five sums over h, w per image and channel, added over images in order. Against batch norm, SiLU, the pooling and
// the product apart, 13 passes over memory in place of 18, and about 20 operators fewer. Channels go by vectors of
// LANES (C must be a multiple); each image is one task, its positions in order, so the results do not depend on the
// thread count.

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

// Records the enclosing kernel's calls for torch.profiler as "effscale::<name>"; free while no profiler runs.
#define RECORD_KERNEL(name) RECORD_FUNCTION("effscale::" name, c10::ArrayRef<const c10::IValue>{})

constexpr int64_t GROUP = 64;  // channels per task: the accumulators of a 7x7 kernel stay in L1
constexpr int64_t IMAGES = 4;  // images per task of the depthwise forward and input-gradient kernels

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

// Calls f(std::integral_constant<int64_t, W>{}) with W = width where a compile-time width exists (fully unrolled
// loops, registers where they suffice), else with W = 0 (the width at run time).
template <typename F>
void with_width(int64_t width, F f) {
  switch (width) {
    case 64: return f(std::integral_constant<int64_t, 64>{});
    case 48: return f(std::integral_constant<int64_t, 48>{});
    case 32: return f(std::integral_constant<int64_t, 32>{});
    case 16: return f(std::integral_constant<int64_t, 16>{});
    case 8: return f(std::integral_constant<int64_t, 8>{});
    default: return f(std::integral_constant<int64_t, 0>{});
  }
}

template <int K>
void accumulate_width(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                      int64_t c0, int64_t width) {
  with_width(width, [&](auto w) { accumulate<K, decltype(w)::value>(x, grad, acc_out, g, n0, n1, c0, width); });
}

void accumulate_group(const float* x, const float* grad, float* acc_out, const Geometry& g, int64_t n0, int64_t n1,
                      int64_t c0) {
  const int64_t width = std::min<int64_t>(GROUP, g.channels - c0);
  if (g.kernel == 3) return accumulate_width<3>(x, grad, acc_out, g, n0, n1, c0, width);
  if (g.kernel == 5) return accumulate_width<5>(x, grad, acc_out, g, n0, n1, c0, width);
  if (g.kernel == 7) return accumulate_width<7>(x, grad, acc_out, g, n0, n1, c0, width);
  accumulate_any(x, grad, acc_out, g, n0, n1, c0, width);
}

}  // namespace

torch::Tensor depthwise_weight_grad(const torch::Tensor& input, const torch::Tensor& grad_output, int64_t kernel,
                                    int64_t stride, int64_t pad) {
  RECORD_KERNEL("depthwise_weight_grad");
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

namespace {

// A tap of a kernel axis that reaches a destination index, and the source index it reads there.
struct Tap {
  int64_t tap, source;
};

// Per index of dx along one axis, the taps of the output's gradient that reach it: source = (d + pad - tap) / stride
// where that divides exactly and lies inside [0, source_size).
std::vector<std::vector<Tap>> axis_taps(int64_t size, int64_t source_size, int64_t kernel, int64_t stride,
                                        int64_t pad) {
  std::vector<std::vector<Tap>> taps(size);
  for (int64_t d = 0; d < size; ++d)
    for (int64_t t = 0; t < kernel; ++t) {
      const int64_t at = d + pad - t;
      if (at < 0 || at % stride != 0) continue;
      if (at / stride < source_size) taps[d].push_back({t, at / stride});
    }
  return taps;
}

// Eight floats as one value (a vector register), loaded and stored at any float's alignment.
typedef float Lanes8 __attribute__((vector_size(32), aligned(4)));

// One destination position of one channel group in P images: dst[q, c] = sum over the taps (i, j) of
// src[q, i's source row, j's source column, c] * taps_weight[i * K + j, c], for q < P, summed in tap order in
// registers, each weight vector loaded once for the P images; `image` floats apart in src, `out_image` in dst.
template <int64_t WIDTH, int P>
void gather_position(const float* src, const float* taps_weight, float* dst, const std::vector<Tap>& rows,
                     const std::vector<Tap>& columns, int64_t image, int64_t out_image, int64_t source_width,
                     int64_t kernel, int64_t channels) {
  Lanes8 acc[P][WIDTH / 8] = {};
  for (const Tap& r : rows)
    for (const Tap& c : columns) {
      const float* sv = src + (r.source * source_width + c.source) * channels;
      const float* wv = taps_weight + (r.tap * kernel + c.tap) * channels;
      for (int64_t v = 0; v < WIDTH / 8; ++v) {
        const Lanes8 w = *reinterpret_cast<const Lanes8*>(wv + 8 * v);
        for (int q = 0; q < P; ++q) acc[q][v] += *reinterpret_cast<const Lanes8*>(sv + q * image + 8 * v) * w;
      }
    }
  for (int q = 0; q < P; ++q)
    for (int64_t v = 0; v < WIDTH / 8; ++v) *reinterpret_cast<Lanes8*>(dst + q * out_image + 8 * v) = acc[q][v];
}

// One destination row of one channel group in `images` images (`image` floats apart in src, `out_image` in dst):
// dst[x, c] = sum over the taps (i, j) reaching (row, x) of src[i's source row, j's source column, c] *
// taps_weight[i * K + j, c], summed in tap order. For a compile-time width, in registers with explicit vectors (left
// to itself, the compiler vectorises the loop over taps, with gathers), several images at a time.
template <int64_t WIDTH>
void gather_row(const float* src, const float* taps_weight, float* dst, const std::vector<Tap>& rows,
                const std::vector<std::vector<Tap>>& columns, int64_t images, int64_t image, int64_t out_image,
                int64_t source_width, int64_t kernel, int64_t channels, int64_t runtime_width) {
  constexpr int P = WIDTH >= 48 ? 2 : 4;  // accumulators and weights within the 32 vector registers
  for (size_t x = 0; x < columns.size(); ++x) {
    float* out = dst + x * channels;
    int64_t q = 0;
    if constexpr (WIDTH > 0) {
      for (; q + P <= images; q += P)
        gather_position<WIDTH, P>(src + q * image, taps_weight, out + q * out_image, rows, columns[x], image,
                                  out_image, source_width, kernel, channels);
      for (; q < images; ++q)
        gather_position<WIDTH, 1>(src + q * image, taps_weight, out + q * out_image, rows, columns[x], image,
                                  out_image, source_width, kernel, channels);
    } else {
      for (; q < images; ++q) {
        float* o = out + q * out_image;
        std::fill(o, o + runtime_width, 0.0f);
        for (const Tap& r : rows)
          for (const Tap& c : columns[x]) {
            const float* sv = src + q * image + (r.source * source_width + c.source) * channels;
            const float* wv = taps_weight + (r.tap * kernel + c.tap) * channels;
            for (int64_t v = 0; v < runtime_width; ++v) o[v] += sv[v] * wv[v];
          }
      }
    }
  }
}

// The channels of the next group out of `remaining`: the most, up to GROUP, that a compile-time width of
// `with_width` covers (64 = 48 + 16 -> 64; 40 -> 32, then 8), or all of them below 8.
int64_t vector_group(int64_t remaining) {
  for (int64_t width : {int64_t{64}, int64_t{48}, int64_t{32}, int64_t{16}, int64_t{8}})
    if (remaining >= width) return width;
  return remaining;
}

}  // namespace

torch::Tensor depthwise_input_grad(const torch::Tensor& grad_output, const torch::Tensor& weight, int64_t height,
                                   int64_t width, int64_t stride, int64_t pad) {
  RECORD_KERNEL("depthwise_input_grad");
  TORCH_CHECK(grad_output.dim() == 4 && weight.dim() == 4 && weight.size(1) == 1 &&
                  weight.size(0) == grad_output.size(1) && weight.size(2) == weight.size(3),
              "depthwise_input_grad: a 4-d gradient and a (C, 1, K, K) weight expected");
  TORCH_CHECK(grad_output.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
                  grad_output.device().is_cpu() && weight.device().is_cpu(),
              "depthwise_input_grad: float32 CPU tensors expected");
  const auto nhwc = at::MemoryFormat::ChannelsLast;
  auto grad = grad_output.contiguous(nhwc);
  const int64_t batch = grad.size(0), C = grad.size(1), grad_height = grad.size(2), grad_width = grad.size(3);
  const int64_t K = weight.size(2);
  auto taps_weight = weight.reshape({C, K * K}).t().contiguous();  // (K*K, C): each tap's channels contiguous
  auto grad_x = torch::empty({batch, C, height, width}, grad.options().memory_format(nhwc));
  const auto rows = axis_taps(height, grad_height, K, stride, pad);
  const auto columns = axis_taps(width, grad_width, K, stride, pad);
  const float* gp = grad.data_ptr<float>();
  const float* wp = taps_weight.data_ptr<float>();
  float* dp = grad_x.data_ptr<float>();
  const int64_t grad_image = grad_height * grad_width * C, image = height * width * C;
  const int64_t blocks = (batch + IMAGES - 1) / IMAGES;
  at::parallel_for(0, blocks * height, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / height * IMAGES, row = task % height;
      const int64_t images = std::min(IMAGES, batch - n);
      const float* grad_n = gp + n * grad_image;
      float* dx_row = dp + n * image + row * width * C;
      for (int64_t c0 = 0, group; c0 < C; c0 += group) {
        group = vector_group(C - c0);
        with_width(group, [&](auto w) {
          gather_row<decltype(w)::value>(grad_n + c0, wp + c0, dx_row + c0, rows[row], columns, images, grad_image,
                                          image, grad_width, K, C, group);
        });
      }
    }
  });
  return grad_x;
}


std::vector<torch::Tensor> squeeze_excite_backward(const torch::Tensor& grad_output, const torch::Tensor& input,
                                                   const torch::Tensor& gate_input) {
  RECORD_KERNEL("squeeze_excite_backward");
  TORCH_CHECK(input.dim() == 4 && grad_output.sizes() == input.sizes(), "squeeze_excite_backward: grad and x differ");
  TORCH_CHECK(gate_input.dim() == 2 && gate_input.size(0) == input.size(0) && gate_input.size(1) == input.size(1),
              "squeeze_excite_backward: the gate must be (N, C)");
  TORCH_CHECK(input.scalar_type() == at::kFloat && grad_output.scalar_type() == at::kFloat &&
                  gate_input.scalar_type() == at::kFloat,
              "squeeze_excite_backward: float32 tensors expected");
  TORCH_CHECK(input.device().is_cpu() && grad_output.device().is_cpu() && gate_input.device().is_cpu(),
              "squeeze_excite_backward: CPU tensors expected");
  const auto nhwc = at::MemoryFormat::ChannelsLast;
  auto x = input.contiguous(nhwc);
  auto grad = grad_output.contiguous(nhwc);
  auto gate = gate_input.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1), positions = x.size(2) * x.size(3);
  auto grad_x = torch::empty_like(x, x.options().memory_format(nhwc));
  auto grad_gate = torch::empty({batch, channels}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  const float* gatep = gate.data_ptr<float>();
  float* dxp = grad_x.data_ptr<float>();
  float* dgatep = grad_gate.data_ptr<float>();
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* __restrict__ factor = gatep + n * channels;
      float* __restrict__ sum = dgatep + n * channels;
      std::fill(sum, sum + channels, 0.0f);
      for (int64_t p = 0; p < positions; ++p) {
        const int64_t at = (n * positions + p) * channels;
        const float* __restrict__ g = gp + at;
        const float* __restrict__ xv = xp + at;
        float* __restrict__ dx = dxp + at;
        for (int64_t c = 0; c < channels; ++c) {
          dx[c] = g[c] * factor[c];
          sum[c] += g[c] * xv[c];
        }
      }
    }
  });
  return {grad_x, grad_gate};
}

namespace {

// Partial sums per pass: at most BN_CHUNKS, of at least BN_CHUNK_FLOATS floats each, a split fixed by the shape,
// so any thread count gives the same result. Within a chunk, runs of BN_RUN periods are summed in float and added
// in double: vector-speed float adds, each rounding error no larger than a sum of BN_RUN terms makes.
constexpr int64_t BN_CHUNKS = 64, BN_CHUNK_FLOATS = 16384, BN_RUN = 16;

// A channels_last tensor seen as a flat array of `periods` runs of `period` = lcm(C, 16) floats (whole rows of C
// channels, a multiple of the vector width however few the channels), then `tail` floats (fewer than one period).
struct Periods {
  int64_t channels, period, periods, tail;
  Periods(int64_t numel, int64_t c) : channels(c), period(std::lcm(c, int64_t{16})), periods(numel / period),
                                      tail(numel - numel / period * period) {}
};

// Two per-channel sums over the whole tensor, of v = value(i, j) and of v * weight(i, j), j being the position of i
// in the period, summed lane by lane as above, the lanes folded onto their channels and the chunks added in order.
// With `out`, v is also written to out[i] in the same pass, and each period is summed from there (one loop that both
// writes and sums does not vectorise).
template <typename V, typename W>
std::pair<std::vector<double>, std::vector<double>> channel_sums(const Periods& g, V value, W weight,
                                                                 float* out = nullptr) {
  const int64_t P = g.period, chunks = std::clamp<int64_t>(g.periods * P / BN_CHUNK_FLOATS, 1, BN_CHUNKS);
  std::vector<double> partial(2 * chunks * P, 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> run(2 * P);
    float* __restrict__ first = run.data();
    float* __restrict__ second = first + P;
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      double* __restrict__ first_sum = partial.data() + 2 * chunk * P;
      double* __restrict__ second_sum = first_sum + P;
      const int64_t q_end = g.periods * (chunk + 1) / chunks;
      for (int64_t q0 = g.periods * chunk / chunks; q0 < q_end; q0 += BN_RUN) {
        std::fill(run.begin(), run.end(), 0.0f);
        for (int64_t q = q0; q < std::min(q0 + BN_RUN, q_end); ++q) {
          if (out) {
            float* __restrict__ o = out + q * P;
            for (int64_t j = 0; j < P; ++j) o[j] = value(q * P + j, j);
            for (int64_t j = 0; j < P; ++j) {
              first[j] += o[j];
              second[j] += o[j] * weight(q * P + j, j);
            }
          } else {
            for (int64_t j = 0; j < P; ++j) {
              const float v = value(q * P + j, j);
              first[j] += v;
              second[j] += v * weight(q * P + j, j);
            }
          }
        }
        for (int64_t j = 0; j < P; ++j) {
          first_sum[j] += first[j];
          second_sum[j] += second[j];
        }
      }
    }
  });
  std::vector<double> firsts(g.channels, 0.0), seconds(g.channels, 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t row = 0; row < P; row += g.channels)
      for (int64_t c = 0; c < g.channels; ++c) {
        firsts[c] += partial[2 * chunk * P + row + c];
        seconds[c] += partial[(2 * chunk + 1) * P + row + c];
      }
  const int64_t start = g.periods * P;
  for (int64_t i = 0; i < g.tail; ++i) {
    const float v = value(start + i, i);
    if (out) out[start + i] = v;
    firsts[i % g.channels] += v;
    seconds[i % g.channels] += v * weight(start + i, i);
  }
  return {firsts, seconds};
}

// out[i] = f(i, j) over the whole tensor, j being the position of i in the period. f may read out[i]: each element
// is read before it is written.
template <typename F>
void map_periods(const Periods& g, float* out, F f) {
  const int64_t P = g.period;
  at::parallel_for(0, g.periods, std::max<int64_t>(1, 16384 / P), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      float* o = out + q * P;
#pragma GCC ivdep
      for (int64_t j = 0; j < P; ++j) o[j] = f(q * P + j, j);
    }
  });
  const int64_t start = g.periods * P;
  for (int64_t i = 0; i < g.tail; ++i) out[start + i] = f(start + i, i);
}

// A per-channel float vector repeated over one period.
std::vector<float> over_period(const Periods& g, const std::vector<double>& per_channel) {
  std::vector<float> out(g.period);
  for (int64_t j = 0; j < g.period; ++j) out[j] = static_cast<float>(per_channel[j % g.channels]);
  return out;
}

// Inlined into the loops that call them, which then vectorise.
#define ALWAYS_INLINE inline __attribute__((always_inline))

// exp(v) as 2^n * exp(r): n = round(v / ln 2), r = v - n ln 2 in [-ln2 / 2, ln2 / 2] (in two steps, as Cephes' expf),
// exp(r) from a degree-5 polynomial fitted to its relative error (within 2.1e-7 in float arithmetic, 2 ulp), times
// 2^n made from its exponent bits. Branch-free, so that the loops that call it run as vector code; v is clamped
// to where the result is a normal float.
ALWAYS_INLINE float exp_approx(float v) {
  v = v < -87.3f ? -87.3f : (v > 88.7f ? 88.7f : v);  // NaN stays NaN
  const float rounder = 12582912.0f;          // 1.5 * 2^23: adding it rounds to an integer
  const float n = (v * 1.44269504f + rounder) - rounder;
  const float r = (v - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 8.2976473e-3f;
  p = p * r + 4.1915383e-2f;
  p = p * r + 1.6667575e-1f;
  p = p * r + 4.9998894e-1f;
  p = p * r + 9.9999970e-1f;
  p = p * r + 1.0000001f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float power;
  std::memcpy(&power, &bits, sizeof power);
  return p * power;
}

ALWAYS_INLINE float sigmoid(float z) { return 1.0f / (1.0f + exp_approx(-z)); }

// The batch norm's output from z: z itself, or SiLU(z).
template <bool SILU>
ALWAYS_INLINE float activate(float z) {
  return SILU ? z * sigmoid(z) : z;
}

// dy * dsilu/dz: the gradient of SiLU's input z from its output's, dy, and the output y = z * sigmoid(z) itself,
// which gives the sigmoid as y / z (to 1.5 ulp where z is the forward pass's z, bit for bit) without its exp; at
// |z| < 1e-20 the sigmoid is 1/2 to float precision, and y / z would lose it.
ALWAYS_INLINE float silu_grad(float dy, float z, float y) {
  const float s = std::fabs(z) < 1e-20f ? 0.5f : y / z;
  return dy * (s + y * (1.0f - s));
}

// The batch norm's per-channel scale and its output z, written once for both passes: the backward pass recomputes
// the forward pass's z bit for bit from the float32 mean and variance the forward pass returns.
double normalising_scale(float weight, float variance, double eps) {
  return weight / std::sqrt(static_cast<double>(variance) + eps);
}

// Centred first, as a mean far from zero would cancel in x * scale + offset.
ALWAYS_INLINE float normalised(float x, float mean, float scale, float bias) { return (x - mean) * scale + bias; }

void check_batch_norm_input(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu(),
              "batch_norm: a 4-d float32 CPU tensor expected");
  TORCH_CHECK(weight.numel() == x.size(1) && weight.scalar_type() == at::kFloat, "batch_norm: one weight per channel");
  TORCH_CHECK(bias.numel() == x.size(1) && bias.scalar_type() == at::kFloat, "batch_norm: one bias per channel");
  TORCH_CHECK(x.numel() / x.size(1) > 1, "batch_norm: more than one value per channel expected");
}

// A batch norm's running mean and variance (float32, one per channel, updated in place), or none to update.
struct RunningStatistics {
  std::optional<torch::Tensor> mean, var;
  double factor;

  void update(const float* batch_mean, const float* batch_var, int64_t channels, double count) const {
    if (!mean || !var) return;
    TORCH_CHECK(mean->is_contiguous() && var->is_contiguous() && mean->scalar_type() == at::kFloat &&
                    var->scalar_type() == at::kFloat && mean->numel() == channels && var->numel() == channels,
                "batch_norm: running statistics must be contiguous float32, one per channel");
    float *m = mean->data_ptr<float>(), *v = var->data_ptr<float>();
    const double unbiased = count / (count - 1);
    for (int64_t c = 0; c < channels; ++c) {
      m[c] = static_cast<float>((1 - factor) * m[c] + factor * batch_mean[c]);
      v[c] = static_cast<float>((1 - factor) * v[c] + factor * batch_var[c] * unbiased);
    }
  }
};

}  // namespace

// A training-mode batch norm's statistics over N, H, W: the mean and biased variance (float32 tensors, returned)
// and the per-channel mean and scale z = (x - mean) * scale + bias normalises with. Running statistics, when given,
// move by `factor` towards the batch's mean and unbiased variance, in place, as F.batch_norm moves them.
struct BatchStatistics {
  torch::Tensor mean, var;
  std::vector<double> mean_c, scale_c;
};

BatchStatistics batch_statistics(const torch::Tensor& x, const torch::Tensor& weight, const RunningStatistics& running,
                                 double eps) {
  const int64_t C = x.size(1);
  const double count = static_cast<double>(x.numel() / C);
  Periods g(x.numel(), C);
  const float* xp = x.data_ptr<float>();
  // Sums shifted by the first pixel's values: one pass for both moments, without the cancellation of raw sums.
  std::vector<double> shift_c(xp, xp + C);
  const std::vector<float> shift = over_period(g, shift_c);
  const float* sp = shift.data();
  const auto shifted = [xp, sp](int64_t i, int64_t j) { return xp[i] - sp[j]; };
  auto [sums, squares] = channel_sums(g, shifted, shifted);
  BatchStatistics out{torch::empty({C}, x.options()), torch::empty({C}, x.options()), std::vector<double>(C),
                      std::vector<double>(C)};
  const auto weight_in = weight.contiguous();
  const float* w = weight_in.data_ptr<float>();
  float *mean_out = out.mean.data_ptr<float>(), *var_out = out.var.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double shifted_mean = sums[c] / count;
    const double variance = std::max(0.0, squares[c] / count - shifted_mean * shifted_mean);
    out.mean_c[c] = shift_c[c] + shifted_mean;
    mean_out[c] = static_cast<float>(out.mean_c[c]);
    var_out[c] = static_cast<float>(variance);
    out.scale_c[c] = normalising_scale(w[c], var_out[c], eps);
  }
  running.update(mean_out, var_out, C, count);
  return out;
}

// Training-mode batch norm, then SiLU when SILU: (y, mean, biased variance) over N, H, W.
template <bool SILU>
std::vector<torch::Tensor> batch_norm_forward_impl(const torch::Tensor& input, const torch::Tensor& weight,
                                                   const torch::Tensor& bias, const RunningStatistics& running,
                                                   double eps) {
  check_batch_norm_input(input, weight, bias);
  auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto stats = batch_statistics(x, weight, running, eps);
  const auto bias_in = bias.contiguous();
  const float* b = bias_in.data_ptr<float>();
  Periods g(x.numel(), x.size(1));
  const std::vector<float> mean_p = over_period(g, stats.mean_c), scale = over_period(g, stats.scale_c),
                           bias_p = over_period(g, std::vector<double>(b, b + x.size(1)));
  const float *xp = x.data_ptr<float>(), *mp = mean_p.data(), *kp = scale.data(), *bp = bias_p.data();
  auto y = torch::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  map_periods(g, y.data_ptr<float>(),
              [xp, mp, kp, bp](int64_t i, int64_t j) {
                return activate<SILU>(normalised(xp[i], mp[j], kp[j], bp[j]));
              });
  return {y, stats.mean, stats.var};
}

// The batch norm's gradients as per-channel coefficients, from the sums over N, H, W of its output's gradient dz and
// of dz * (x - mean): dx = w * invstd * (dz - mean(dz) - (x - mean) * invstd^2 * mean(dz * (x - mean))), which is
// a dz + b (x - mean) + c; dweight = invstd * sum(dz * (x - mean)), dbias = sum(dz).
struct Gradients {
  std::vector<double> a, b, c;
  torch::Tensor grad_weight, grad_bias;
};

Gradients batch_norm_coefficients(const torch::Tensor& weight, const std::vector<double>& invstd_c,
                                  const std::vector<double>& grad_sums, const std::vector<double>& product_sums,
                                  double count) {
  const int64_t C = weight.numel();
  const auto options = weight.options();
  Gradients out{std::vector<double>(C), std::vector<double>(C), std::vector<double>(C), torch::empty({C}, options),
                torch::empty({C}, options)};
  const float* w = weight.data_ptr<float>();
  float *dw = out.grad_weight.data_ptr<float>(), *db = out.grad_bias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    out.a[c] = w[c] * invstd_c[c];
    out.b[c] = -out.a[c] * invstd_c[c] * invstd_c[c] * product_sums[c] / count;
    out.c[c] = -out.a[c] * grad_sums[c] / count;
    dw[c] = static_cast<float>(product_sums[c] * invstd_c[c]);
    db[c] = static_cast<float>(grad_sums[c]);
  }
  return out;
}

// Its gradients (dx, dweight, dbias), dx written to `grad_x`, from the forward pass's mean and inverse standard
// deviation, the output's gradient dy (which may be grad_x itself) and the sums over N, H, W of dy and dy * (x - mean).
std::vector<torch::Tensor> batch_norm_gradients(const torch::Tensor& grad_x, const float* dy, const torch::Tensor& x,
                                                const torch::Tensor& weight, const float* mean_p,
                                                const std::vector<double>& invstd_c,
                                                const std::pair<std::vector<double>, std::vector<double>>& sums) {
  const int64_t C = x.size(1);
  const auto k = batch_norm_coefficients(weight, invstd_c, sums.first, sums.second, static_cast<double>(x.numel() / C));
  Periods g(x.numel(), C);
  const std::vector<float> a_p = over_period(g, k.a), b_p = over_period(g, k.b), c_p = over_period(g, k.c);
  const float *ap = a_p.data(), *bp = b_p.data(), *cp = c_p.data(), *mp = mean_p, *xp = x.data_ptr<float>();
  map_periods(g, grad_x.data_ptr<float>(), [dy, xp, ap, bp, cp, mp](int64_t i, int64_t j) {
    return ap[j] * dy[i] + bp[j] * (xp[i] - mp[j]) + cp[j];
  });
  return {grad_x, k.grad_weight, k.grad_bias};
}

std::vector<torch::Tensor> batch_norm_forward(const torch::Tensor& input, const torch::Tensor& weight,
                                              const torch::Tensor& bias, const std::optional<torch::Tensor>& running_mean,
                                              const std::optional<torch::Tensor>& running_var, double factor,
                                              double eps, bool silu) {
  RECORD_KERNEL("batch_norm_forward");
  const RunningStatistics running{running_mean, running_var, factor};
  return silu ? batch_norm_forward_impl<true>(input, weight, bias, running, eps)
              : batch_norm_forward_impl<false>(input, weight, bias, running, eps);
}

// The gradients of batch_norm_forward's output (dx, dweight, dbias). After a forward pass with SiLU, `output` is its
// output y: the batch norm's output gradient dz is then taken in the sums' pass, from grad, x and y, and written where
// dx goes, and dx over it.
std::vector<torch::Tensor> batch_norm_backward(const torch::Tensor& grad_output, const torch::Tensor& input,
                                               const torch::Tensor& weight, const torch::Tensor& bias,
                                               const torch::Tensor& mean, const torch::Tensor& var, double eps,
                                               const std::optional<torch::Tensor>& output) {
  RECORD_KERNEL("batch_norm_backward");
  check_batch_norm_input(input, weight, bias);
  TORCH_CHECK(grad_output.sizes() == input.sizes() && grad_output.scalar_type() == at::kFloat,
              "batch_norm_backward: grad and x differ");
  TORCH_CHECK(!output || (output->sizes() == input.sizes() && output->scalar_type() == at::kFloat),
              "batch_norm_backward: the output and x differ");
  const auto nhwc = at::MemoryFormat::ChannelsLast;
  auto x = input.contiguous(nhwc);
  auto grad = grad_output.contiguous(nhwc);
  const int64_t C = x.size(1);
  const auto saved_mean = mean.contiguous(), saved_var = var.contiguous(), weight_in = weight.contiguous();
  const float *mean_in = saved_mean.data_ptr<float>(), *var_in = saved_var.data_ptr<float>();
  std::vector<double> mean_c(mean_in, mean_in + C), invstd_c(C);
  for (int64_t c = 0; c < C; ++c) invstd_c[c] = 1.0 / std::sqrt(static_cast<double>(var_in[c]) + eps);
  Periods g(x.numel(), C);
  const std::vector<float> mean_p = over_period(g, mean_c);
  const float *mp = mean_p.data(), *xp = x.data_ptr<float>(), *gp = grad.data_ptr<float>();
  const auto centred = [xp, mp](int64_t i, int64_t j) { return xp[i] - mp[j]; };
  auto grad_x = torch::empty_like(x, x.options().memory_format(nhwc));
  if (!output) {
    const auto sums = channel_sums(g, [gp](int64_t i, int64_t) { return gp[i]; }, centred);
    return batch_norm_gradients(grad_x, gp, x, weight_in, mp, invstd_c, sums);
  }
  auto y = output->contiguous(nhwc);
  const auto bias_in = bias.contiguous();
  const float *w = weight_in.data_ptr<float>(), *bias_v = bias_in.data_ptr<float>(), *yp = y.data_ptr<float>();
  std::vector<double> scale_c(C), bias_c(bias_v, bias_v + C);
  for (int64_t c = 0; c < C; ++c) scale_c[c] = normalising_scale(w[c], var_in[c], eps);
  const std::vector<float> scale = over_period(g, scale_c), bias_p = over_period(g, bias_c);
  const float *kp = scale.data(), *bp = bias_p.data();
  float* dz = grad_x.data_ptr<float>();
  const auto silu_input_grad = [gp, xp, yp, mp, kp, bp](int64_t i, int64_t j) {
    return silu_grad(gp[i], normalised(xp[i], mp[j], kp[j], bp[j]), yp[i]);
  };
  const auto sums = channel_sums(g, silu_input_grad, centred, dz);
  return batch_norm_gradients(grad_x, dz, x, weight_in, mp, invstd_c, sums);
}

namespace {

// z = (x - mean) * scale + bias per channel, from a batch norm's saved float32 mean and variance: the same z, bit
// for bit, in every pass of the gated kernels.
struct Normaliser {
  std::vector<float> mean, scale, bias;
  std::vector<double> invstd;

  Normaliser(const torch::Tensor& mean_in, const torch::Tensor& var_in, const torch::Tensor& weight,
             const torch::Tensor& bias_in, double eps) {
    const int64_t C = weight.numel();
    TORCH_CHECK(mean_in.numel() == C && var_in.numel() == C && mean_in.scalar_type() == at::kFloat &&
                    var_in.scalar_type() == at::kFloat,
                "batch_norm: one float32 mean and variance per channel expected");
    const auto m = mean_in.contiguous(), v = var_in.contiguous(), w = weight.contiguous(), b = bias_in.contiguous();
    const float *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>(), *wp = w.data_ptr<float>();
    mean.assign(mp, mp + C);
    bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + C);
    for (int64_t c = 0; c < C; ++c) {
      scale.push_back(static_cast<float>(normalising_scale(wp[c], vp[c], eps)));
      invstd.push_back(1.0 / std::sqrt(static_cast<double>(vp[c]) + eps));
    }
  }
};

constexpr int64_t LANES = 8;  // channels per vector of the gated kernels: C must be a multiple

// f(n, i, c) for every element of x, i being its offset and c its channel in image n. Each image is one task, its
// positions in order, so per-image sums do not depend on the thread count; the channels go by whole vectors of
// LANES, a fixed inner count with no remainder loop, which ivdep lets the compiler vectorise whatever f reads and
// writes (f must not carry a dependency from one channel to another).
template <typename F>
void for_each_element(const torch::Tensor& x, F f) {
  const int64_t C = x.size(1), positions = x.size(2) * x.size(3);
  TORCH_CHECK(C % LANES == 0, "batch_norm_silu_gate: the channels must be a multiple of ", LANES);
  at::parallel_for(0, x.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t row = n * positions * C; row < (n + 1) * positions * C; row += C)
        for (int64_t c0 = 0; c0 < C; c0 += LANES)
#pragma GCC ivdep
          for (int64_t c = c0; c < c0 + LANES; ++c) f(n, row + c, c);
  });
}

// `t` as a contiguous float32 tensor of `x`'s sizes: (N, C) per image and channel, or (N, C, H, W) channels_last.
torch::Tensor matching(const torch::Tensor& t, const torch::Tensor& x, bool per_image, const char* what) {
  const bool sizes = per_image ? t.dim() == 2 && t.size(0) == x.size(0) && t.size(1) == x.size(1)
                               : t.sizes() == x.sizes();
  TORCH_CHECK(sizes && t.scalar_type() == at::kFloat, "batch_norm_silu_gate: ", what, " must be float32 ",
              per_image ? "(N, C)" : "of x's shape");
  return per_image ? t.contiguous() : t.contiguous(at::MemoryFormat::ChannelsLast);
}

// SiLU's derivative at z: s (1 + z (1 - s)), s = sigmoid(z).
ALWAYS_INLINE float silu_slope(float z, float s) { return s * (1.0f + z * (1.0f - s)); }

}  // namespace

// The gated batch norm's passes (see the top of this file), on a checked channels_last x and its z per channel.
namespace {

// (pooled (N, C), s = sigmoid(z)).
std::pair<torch::Tensor, torch::Tensor> gate_pool(const torch::Tensor& x, const Normaliser& z) {
  const int64_t C = x.size(1), positions = x.size(2) * x.size(3);
  auto pooled = torch::zeros({x.size(0), C}, x.options());
  auto sigmoids = torch::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float *xp = x.data_ptr<float>(), *mp = z.mean.data(), *kp = z.scale.data(), *bp = z.bias.data();
  float *pp = pooled.data_ptr<float>(), *sgp = sigmoids.data_ptr<float>();
  for_each_element(x, [=](int64_t n, int64_t i, int64_t c) {
    const float zc = normalised(xp[i], mp[c], kp[c], bp[c]);
    sgp[i] = sigmoid(zc);
    pp[n * C + c] += zc * sgp[i];
  });
  pooled.div_(static_cast<double>(positions));
  return {pooled, sigmoids};
}

// out = z * s * gate[n, c].
torch::Tensor gate_scale(const torch::Tensor& x, const torch::Tensor& sigmoids, const Normaliser& z,
                         const torch::Tensor& gate) {
  const int64_t C = x.size(1);
  auto out = torch::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float *xp = x.data_ptr<float>(), *sgp = sigmoids.data_ptr<float>(), *gp = gate.data_ptr<float>(),
              *mp = z.mean.data(), *kp = z.scale.data(), *bp = z.bias.data();
  float* op = out.data_ptr<float>();
  for_each_element(x, [=](int64_t n, int64_t i, int64_t c) {
    op[i] = normalised(xp[i], mp[c], kp[c], bp[c]) * sgp[i] * gp[n * C + c];
  });
  return out;
}

// Per image and channel, over h, w: (sum grad * y, sum grad * SiLU', sum grad * SiLU' * (x - mean), sum SiLU',
// sum SiLU' * (x - mean)), as a (5, N, C) tensor; the first is the gate's gradient.
torch::Tensor gate_sums(const torch::Tensor& x, const torch::Tensor& grad, const torch::Tensor& sigmoids,
                        const Normaliser& z) {
  const int64_t N = x.size(0), C = x.size(1), plane = N * C;
  auto sums = torch::zeros({5, N, C}, x.options());
  const float *xp = x.data_ptr<float>(), *gp = grad.data_ptr<float>(), *sgp = sigmoids.data_ptr<float>(),
              *mp = z.mean.data(), *kp = z.scale.data(), *bp = z.bias.data();
  float* sp = sums.data_ptr<float>();
  for_each_element(x, [=](int64_t n, int64_t i, int64_t c) {
    const float centred = xp[i] - mp[c], zc = centred * kp[c] + bp[c], slope = silu_slope(zc, sgp[i]);
    float* sum = sp + n * C + c;
    sum[0] += gp[i] * zc * sgp[i];
    sum[plane] += gp[i] * slope;
    sum[2 * plane] += gp[i] * slope * centred;
    sum[3 * plane] += slope;
    sum[4 * plane] += slope * centred;
  });
  return sums;
}

// (dx, dweight, dbias) from the output's gradient, the gate, the gradient of pooled (from the gate's MLP) and the
// sums of gate_sums.
std::vector<torch::Tensor> gate_input_gradient(const torch::Tensor& x, const torch::Tensor& grad,
                                               const torch::Tensor& sigmoids, const Normaliser& z,
                                               const torch::Tensor& weight, const torch::Tensor& gate,
                                               const torch::Tensor& grad_pooled, const torch::Tensor& sums) {
  const int64_t N = x.size(0), C = x.size(1), positions = x.size(2) * x.size(3);
  // dpooled spread over the positions it averaged: the part of dy that does not depend on grad.
  const auto spread = grad_pooled / static_cast<double>(positions);
  const float *gatep = gate.data_ptr<float>(), *dm = spread.data_ptr<float>(), *sp = sums.data_ptr<float>();
  std::vector<double> grad_sums(C, 0.0), product_sums(C, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = n * C + c;
      const double factor = gatep[i], shift = dm[i];
      grad_sums[c] += factor * sp[N * C + i] + shift * sp[3 * N * C + i];
      product_sums[c] += factor * sp[2 * N * C + i] + shift * sp[4 * N * C + i];
    }
  const auto k = batch_norm_coefficients(weight.contiguous(), z.invstd, grad_sums, product_sums,
                                         static_cast<double>(N * positions));
  const std::vector<float> a(k.a.begin(), k.a.end()), b(k.b.begin(), k.b.end()), c0(k.c.begin(), k.c.end());
  auto grad_x = torch::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float *xp = x.data_ptr<float>(), *gp = grad.data_ptr<float>(), *sgp = sigmoids.data_ptr<float>(),
              *mp = z.mean.data(), *kp = z.scale.data(), *bp = z.bias.data(), *ap = a.data(), *bcp = b.data(),
              *cp = c0.data();
  float* dxp = grad_x.data_ptr<float>();
  for_each_element(x, [=](int64_t n, int64_t i, int64_t c) {
    const float centred = xp[i] - mp[c], zc = centred * kp[c] + bp[c];
    const float dz = (gp[i] * gatep[n * C + c] + dm[n * C + c]) * silu_slope(zc, sgp[i]);
    dxp[i] = ap[c] * dz + bcp[c] * centred + cp[c];
  });
  return {grad_x, k.grad_weight, k.grad_bias};
}

}  // namespace

// (out, and for the backward pass: sigmoid(z), mean, biased variance, pooled, fc1's output, gate); the running
// statistics move as batch_norm_forward moves them.
std::vector<torch::Tensor> batch_norm_silu_gate_forward(const torch::Tensor& input, const torch::Tensor& weight,
                                                        const torch::Tensor& bias,
                                                        const std::optional<torch::Tensor>& running_mean,
                                                        const std::optional<torch::Tensor>& running_var, double factor,
                                                        double eps, const torch::Tensor& fc1_weight,
                                                        const torch::Tensor& fc1_bias, const torch::Tensor& fc2_weight,
                                                        const torch::Tensor& fc2_bias) {
  RECORD_KERNEL("batch_norm_silu_gate_forward");
  check_batch_norm_input(input, weight, bias);
  auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto stats = batch_statistics(x, weight, RunningStatistics{running_mean, running_var, factor}, eps);
  const Normaliser z(stats.mean, stats.var, weight, bias, eps);
  auto [pooled, sigmoids] = gate_pool(x, z);
  auto hidden = at::linear(pooled, fc1_weight, fc1_bias);
  auto gate = at::sigmoid(at::linear(at::silu(hidden), fc2_weight, fc2_bias)).contiguous();
  return {gate_scale(x, sigmoids, z, gate), sigmoids, stats.mean, stats.var, pooled, hidden, gate};
}

// (dx, dweight, dbias, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias) from the output's gradient and what the
// forward pass returned.
std::vector<torch::Tensor> batch_norm_silu_gate_backward(const torch::Tensor& grad_output, const torch::Tensor& input,
                                                         const torch::Tensor& sigmoids_in, const torch::Tensor& weight,
                                                         const torch::Tensor& bias, const torch::Tensor& mean,
                                                         const torch::Tensor& var, const torch::Tensor& pooled,
                                                         const torch::Tensor& hidden, const torch::Tensor& gate_in,
                                                         const torch::Tensor& fc1_weight,
                                                         const torch::Tensor& fc2_weight, double eps) {
  RECORD_KERNEL("batch_norm_silu_gate_backward");
  check_batch_norm_input(input, weight, bias);
  auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto grad = matching(grad_output, x, false, "grad"), sigmoids = matching(sigmoids_in, x, false, "the sigmoids");
  const auto gate = matching(gate_in, x, true, "the gate");
  const Normaliser z(mean, var, weight, bias, eps);
  auto sums = gate_sums(x, grad, sigmoids, z);
  auto grad_logits = sums[0] * gate * (1 - gate);  // sums[0]: the gate's gradient
  auto hidden_sigmoid = at::sigmoid(hidden);
  auto grad_hidden = at::mm(grad_logits, fc2_weight) * hidden_sigmoid * (1 + hidden * (1 - hidden_sigmoid));
  auto input_grads = gate_input_gradient(x, grad, sigmoids, z, weight, gate, at::mm(grad_hidden, fc1_weight), sums);
  return {input_grads[0], input_grads[1], input_grads[2], at::mm(grad_hidden.t(), pooled), grad_hidden.sum(0),
          at::mm(grad_logits.t(), hidden * hidden_sigmoid), grad_logits.sum(0)};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "weight gradient of a channels_last depthwise convolution");
  m.def("depthwise_input_grad", &depthwise_input_grad,
        "input gradient of a channels_last depthwise convolution, for an input of the given height and width");
  m.def("squeeze_excite_backward", &squeeze_excite_backward,
        "gradients of x * gate[:, :, None, None] for a channels_last x and an (N, C) gate");
  m.def("batch_norm_forward", &batch_norm_forward,
        "training-mode batch norm of a channels_last tensor, then SiLU if silu; moves the running statistics given");
  m.def("batch_norm_backward", &batch_norm_backward,
        "gradients of training-mode batch norm, or of batch norm then SiLU given the forward pass's output");
  m.def("batch_norm_silu_gate_forward", &batch_norm_silu_gate_forward,
        "SiLU(batch_norm(x)) times its squeeze-excite gate, and what the backward pass needs");
  m.def("batch_norm_silu_gate_backward", &batch_norm_silu_gate_backward,
        "gradients of batch_norm_silu_gate_forward's output by x, the batch norm's and the gate's parameters");
}
