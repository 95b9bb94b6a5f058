#include "cli_run.hpp"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <bit>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vm/core/log.hpp"
#include "vm/engine/linux/process.hpp"

namespace vm::engine::cli {
namespace {

struct RunArgs {
  std::string engine = "tiered";
  std::string mmu = "direct";
  bool stats = false;
  bool trace = false;
  uint32_t hot_threshold = EngineConfig{}.hot_threshold;
  uint32_t opt_threshold = EngineConfig{}.opt_threshold;
  bool no_chain = false;
  bool no_region_callees = false;
  bool perf_map = false;
  bool verify_jit = false;
  bool precise_faults = false;
  std::string address_space = "4G";
  std::vector<std::string> dump;  // STAGES DIR
  std::vector<std::string> program;  // PROGRAM ARGS...
  CLI::App* cmd = nullptr;
};

RunArgs& args() {
  static RunArgs a;
  return a;
}

// "4G", "64G", "1T" (the suffix in either case: "64g") or a number of
// bytes: a power of two in [1 GiB, 128 TiB] (the stack goes 256 MiB below
// the top, static-PIE a third of the way up). Empty on anything else.
std::optional<uint64_t> parse_space_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  uint64_t n = std::stoull(text.substr(0, digits));
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, unsigned> kShift = {{"", 0}, {"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}};
  auto it = kShift.find(unit);
  if (it == kShift.end() || n == 0 || n > (uint64_t{1} << 47 >> it->second)) return std::nullopt;
  n <<= it->second;
  if (!std::has_single_bit(n) || n < (uint64_t{1} << 30) || n > (uint64_t{1} << 47)) return std::nullopt;
  return n;
}

}  // namespace

void add_run_command(CLI::App& app) {
  RunArgs& a = args();
  a.cmd = app.add_subcommand("run", "Run a static x86-64 Linux executable");
  a.cmd->prefix_command();  // everything after PROGRAM belongs to the guest, even "--help"
  a.cmd->add_option("--engine", a.engine, "Execution engine: interp (vm-ir interpreter), jit (compile every block at the fast tier) or tiered (interpret, compile warm blocks, recompile hot code as optimised regions; the default)")
      ->check(CLI::IsMember({"interp", "jit", "tiered"}));
  a.cmd->add_option("--mmu", a.mmu, "Guest memory strategy: direct (one host mapping; compiled code accesses it unchecked and recovers from host faults) or softmmu (page frames; compiled code checks a software TLB)")
      ->check(CLI::IsMember({"direct", "softmmu"}));
  a.cmd->add_option("--hot-threshold", a.hot_threshold, "tiered: interpreted runs before a block is compiled at the fast tier")
      ->check(CLI::Range(1u, 1u << 30));
  a.cmd->add_option("--opt-threshold", a.opt_threshold,
                    "tiered: entries of a block's fast code before it is recompiled as an optimised region (0: never)")
      ->check(CLI::Range(0u, 1u << 30));
  a.cmd->add_flag("--no-chain", a.no_chain, "jit/tiered: every compiled block returns to the dispatcher (no chaining)");
  a.cmd->add_flag("--no-region-callees", a.no_region_callees,
                  "tiered, direct mmu: optimised regions stop at calls instead of taking in the functions they call "
                  "(softmmu regions always stop at calls)");
  a.cmd->add_flag("--perf-map", a.perf_map, "jit/tiered: list compiled blocks in /tmp/perf-<pid>.map for perf report");
  a.cmd->add_flag("--verify-jit", a.verify_jit,
                  "jit/tiered: also run every compiled block in the interpreter on a copy of the state and stop at the "
                  "first difference (exit status 70); no chaining, slow - a debugging aid");
  a.cmd->add_flag("--precise-faults", a.precise_faults,
                  "direct mmu: compiled code keeps the guest registers exact at every memory access from the start "
                  "(otherwise only once the guest installs a SIGSEGV or SIGBUS handler; see docs/engine.md)");
  a.cmd->add_option("--address-space", a.address_space,
                    "Size of the guest's address space, a power of two from 1G to 128T (default 4G: direct code "
                    "masks guest addresses for free; see docs/linux-user.md)")
      ->type_name("SIZE");
  a.cmd->add_flag("--stats", a.stats, "Print translation, cache and syscall statistics to stderr at exit");
  a.cmd->add_flag("--trace", a.trace, "Log every block entered (at VM_LOG=debug)");
  a.cmd->add_option("--dump", a.dump,
                    "--dump STAGES DIR: write each translation's stages (comma list of ir, opt, llvm, asm, code) to "
                    "DIR/block_<pc>.<stage>; llvm, asm and code (the machine code as installed) need --engine jit "
                    "or tiered")
      ->expected(2)
      ->allow_extra_args(false)
      ->type_name("STAGES DIR");
  a.cmd->footer(
      "PROGRAM and everything after it are passed to the guest unchanged. stdin, stdout and stderr are shared with\n"
      "the guest; the exit status is the guest's (128+signal when a guest fault ends it). Errors in these options or\n"
      "in the executable are reported on one line with exit status 2. See docs/cli.md and docs/linux-user.md.");
}

bool run_selected(const CLI::App&) { return args().cmd != nullptr && args().cmd->parsed(); }

int run_execute(char** envp) {
  RunArgs& a = args();
  std::vector<std::string> rest = a.cmd->remaining();
  if (rest.empty()) {
    std::fprintf(stderr, "vm run: missing PROGRAM (try: vm run --help)\n");
    return 2;
  }
  uint8_t dump_stages = 0;
  if (!a.dump.empty()) {
    auto stages = parse_dump_stages(a.dump[0]);
    if (!stages) {
      std::fprintf(stderr, "vm run: --dump: '%s' is not a comma list of ir, opt, llvm, asm, code\n", a.dump[0].c_str());
      return 2;
    }
    if ((*stages & (kDumpLlvm | kDumpAsm | kDumpCode)) && a.engine == "interp") {
      std::fprintf(stderr, "vm run: --dump llvm/asm/code needs --engine jit or tiered (interp compiles nothing)\n");
      return 2;
    }
    std::error_code ec;
    std::filesystem::create_directories(a.dump[1], ec);
    if (ec || !std::filesystem::is_directory(a.dump[1])) {
      std::fprintf(stderr, "vm run: --dump: cannot use directory '%s': %s\n", a.dump[1].c_str(),
                   ec ? ec.message().c_str() : "not a directory");
      return 2;
    }
    dump_stages = *stages;
  }
  auto space_size = parse_space_size(a.address_space);
  if (!space_size) {
    std::fprintf(stderr, "vm run: --address-space: '%s' is not a power of two from 1G to 128T (such as 4G or 64G)\n",
                 a.address_space.c_str());
    return 2;
  }
  linux::ProcessOptions opts;
  opts.address_space_size = *space_size;
  opts.engine.kind = a.engine == "jit" ? EngineKind::Jit : a.engine == "tiered" ? EngineKind::Tiered : EngineKind::Interp;
  opts.mmu = a.mmu == "softmmu" ? mem::MemoryStrategy::SoftMmu : mem::MemoryStrategy::Direct;
  opts.stats = a.stats;
  opts.exit_with_guest = true;
  opts.engine.trace = a.trace;
  opts.engine.hot_threshold = a.hot_threshold;
  opts.engine.opt_threshold = a.opt_threshold;
  opts.engine.chain = !a.no_chain;
  // Under softmmu the bigger regions' compiles cost more than they save at
  // the benchmark scale (strings 1.19x slower; docs/benchmarks.md).
  opts.engine.region_callees = !a.no_region_callees && opts.mmu == mem::MemoryStrategy::Direct;
  opts.engine.perf_map = a.perf_map;
  opts.engine.verify_jit = a.verify_jit;
  // Precise fault state only once a guest handler could look at it
  // (linux::run_program switches it on at rt_sigaction).
  opts.engine.precise_faults = a.precise_faults;
  opts.engine.dump_stages = dump_stages;
  if (dump_stages != 0) opts.engine.dump_dir = a.dump[1];
  std::vector<std::string> env;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  auto status = linux::run_program(rest[0], rest, env, opts);
  if (!status) {
    std::fprintf(stderr, "vm run: %s\n", status.error().message.c_str());
    return 2;
  }
  return *status;
}

}  // namespace vm::engine::cli
