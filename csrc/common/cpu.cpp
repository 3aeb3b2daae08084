// The CPU path the SIMD kernels take (common/simd.hpp): what the CPU runs, and CNNVIS_CPU_CAPABILITY.
#include <cstdlib>

#include "common/errors.hpp"
#include "common/simd.hpp"

namespace cnnvis {
namespace simd {

namespace {

constexpr Capability kAll[] = {Capability::kDefault, Capability::kAvx2, Capability::kAvx512};

Capability detect() {
#ifdef CNNVIS_X86
  __builtin_cpu_init();  // needed when this runs from a static initializer
  // AVX-512 as the kernels' target attribute names it (F, VL, DQ, BW: every AVX-512 CPU since Skylake-SP).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
    return Capability::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Capability::kAvx2;
#endif
  return Capability::kDefault;
}

}  // namespace

namespace detail {
std::atomic<int> active{static_cast<int>(max_capability())};
}

const char* capability_name(Capability c) {
  switch (c) {
    case Capability::kAvx512: return "avx512";
    case Capability::kAvx2: return "avx2";
    default: return "default";
  }
}

Capability parse_capability(const std::string& name) {
  for (Capability c : kAll)
    if (name == capability_name(c)) return c;
  throw InvalidArgument("CNNVIS_CPU_CAPABILITY must be one of default, avx2, avx512, got '" + name + "'");
}

Capability max_capability() {
  static const Capability c = detect();
  return c;
}

std::vector<Capability> available_capabilities() {
  std::vector<Capability> out;
  for (Capability c : kAll)
    if (c <= max_capability()) out.push_back(c);
  return out;
}

void set_capability(Capability c) {
  if (c > max_capability())
    throw InvalidArgument(std::string("this CPU has no ") + capability_name(c) + " path (the widest is " +
                          capability_name(max_capability()) + ")");
  detail::active.store(static_cast<int>(c), std::memory_order_relaxed);
}

Resolved resolve_capability(const std::string& requested, Capability widest) {
  const Capability want = parse_capability(requested);
  if (want <= widest) return {want, ""};
  return {widest, "CNNVIS_CPU_CAPABILITY=" + requested + ": this CPU has no " + capability_name(want) +
                      " path; using " + capability_name(widest)};
}

std::string apply_capability_env() {
  const char* env = std::getenv("CNNVIS_CPU_CAPABILITY");
  if (!env || !*env) return "";
  const Resolved r = resolve_capability(env, max_capability());
  set_capability(r.capability);
  return r.warning;
}

}  // namespace simd
}  // namespace cnnvis
