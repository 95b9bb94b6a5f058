// The `vm` command-line tool. Subcommands are added by the frontend, backend
// and engine work; docs/cli.md describes each one and the JSON state schema.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "vm/ir/passes.hpp"
#include "vm/ir/text.hpp"
#include "vm/ir/verifier.hpp"
#include "vm/translate/assembler.hpp"
#include "vm/translate/state_json.hpp"
#include "cli_run.hpp"
#include "cli_translate.hpp"
#include "vm/engine/jit.hpp"
#include "vm/translate/toolchain.hpp"
#include "vm/translate/x86.hpp"

namespace {

using vm::core::GuestAddr;

constexpr uint64_t kDefaultCodeAddr = 0x1000000;
constexpr uint64_t kDefaultStackBase = 0x7ffe0000;
constexpr uint64_t kDefaultStackSize = 0x10000;
constexpr uint64_t kDefaultMaxBlocks = 1000000;

int fail(const std::string& msg) {
  fmt::print(stderr, "vm: {}\n", msg);
  return 1;
}

// Code from --code HEX or --asm TEXT (exactly one).
vm::core::Result<std::vector<uint8_t>> code_bytes(const std::string& hex, const std::string& text) {
  if (hex.empty() == text.empty())
    return vm::core::fail(vm::core::ErrorCode::InvalidArgument, "give exactly one of --code HEX and --asm TEXT");
  if (!text.empty()) return vm::translate::assemble_x86(text);
  std::vector<uint8_t> out;
  std::string clean;
  for (char c : hex)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.starts_with("0x")) clean = clean.substr(2);
  if (clean.size() % 2 != 0) return vm::core::fail(vm::core::ErrorCode::Parse, "--code: odd number of hex digits");
  for (size_t i = 0; i < clean.size(); i += 2) {
    if (!std::isxdigit(static_cast<unsigned char>(clean[i])) || !std::isxdigit(static_cast<unsigned char>(clean[i + 1])))
      return vm::core::fail(vm::core::ErrorCode::Parse, fmt::format("--code: '{}' is not hex", clean.substr(i, 2)));
    out.push_back(static_cast<uint8_t>(std::stoul(clean.substr(i, 2), nullptr, 16)));
  }
  if (out.empty()) return vm::core::fail(vm::core::ErrorCode::InvalidArgument, "--code: no bytes");
  return out;
}

struct CodeOptions {
  std::string hex;
  std::string text;
  uint64_t at = kDefaultCodeAddr;
};

void add_code_options(CLI::App* cmd, CodeOptions& o) {
  cmd->add_option("--code", o.hex, "Guest machine code as hex bytes");
  cmd->add_option("--asm", o.text, "Guest code as Intel-syntax assembly (assembled with LLVM MC)");
  cmd->add_option("--at", o.at, "Guest address of the code (default 0x1000000)")->default_str("0x1000000");
}

int run_lift(const CodeOptions& o, bool optimize) {
  auto code = code_bytes(o.hex, o.text);
  if (!code) return fail(code.error().to_string());
  vm::core::RegionMemory mem;
  if (auto ok = mem.add_region(GuestAddr(o.at), *code, vm::core::kPermRead | vm::core::kPermExec); !ok)
    return fail(ok.error().to_string());
  auto block = vm::translate::decode_block(mem, GuestAddr(o.at));
  if (!block) return fail(block.error().to_string());
  if (auto ok = vm::ir::verify(*block); !ok) return fail("internal error: lifted block does not verify: " + ok.error().message);
  if (optimize) vm::ir::run_standard_passes(*block);
  fmt::print("{}", vm::ir::print(*block));
  return 0;
}

struct ExecOptions {
  std::string state_path;
  std::string engine = "interp";
  std::string tier = "fast";
  uint64_t max_blocks = kDefaultMaxBlocks;
  bool no_memory = false;
};

// The JIT loop's result in the interpreter's terms, so both print the same JSON.
vm::translate::RunResult as_run_result(const vm::engine::JitRunResult& j) {
  using J = vm::engine::JitRunResult::Reason;
  using R = vm::translate::RunResult::Reason;
  vm::translate::RunResult r;
  r.reason = j.reason == J::Stop ? R::Stop : j.reason == J::Trap ? R::Trap : j.reason == J::Fault ? R::Fault
             : j.reason == J::Syscall ? R::Syscall : R::StepLimit;
  r.pc = j.pc;
  r.fault_addr = j.fault_addr;
  r.trap = j.trap;
  r.message = j.message;
  r.blocks = j.blocks;
  return r;
}

int run_exec(const CodeOptions& o, const ExecOptions& e) {
  if (e.engine != "interp" && e.engine != "jit") return fail(fmt::format("--engine {}: expected interp or jit", e.engine));
  auto tier = vm::engine::parse_tier(e.tier);
  if (!tier || e.tier == "opt") return fail(fmt::format("--tier {}: expected fast or optimized", e.tier));
  auto code = code_bytes(o.hex, o.text);
  if (!code) return fail(code.error().to_string());
  vm::translate::MachineState st;
  if (!e.state_path.empty()) {
    std::ifstream in(e.state_path);
    if (!in) return fail(fmt::format("cannot read {}", e.state_path));
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = vm::translate::parse_state_json(ss.str());
    if (!parsed) return fail(fmt::format("{}: {}", e.state_path, parsed.error().to_string()));
    st = std::move(*parsed);
  } else {
    // The documented default: a 64 KiB stack, rsp 4 KiB below its top.
    (void)st.memory.add_region(GuestAddr(kDefaultStackBase), kDefaultStackSize, vm::core::kPermRW);
    st.regs.gpr[4] = kDefaultStackBase + kDefaultStackSize - 0x1000;
  }
  st.regs.rip = o.at;
  if (auto ok = st.memory.add_region(GuestAddr(o.at), *code, vm::core::kPermRead | vm::core::kPermExec); !ok)
    return fail("code region: " + ok.error().to_string());
  GuestAddr stop(o.at + code->size());
  vm::translate::RunResult r;
  if (e.engine == "jit") {
    // Blocks end at the stop address exactly as the interpreter's do, so both engines run the same blocks.
    vm::engine::BlockSource source = [stop](vm::core::GuestMemory& m, GuestAddr pc) {
      vm::translate::BlockOptions bo;
      bo.stop_pc = stop.value();
      return vm::translate::decode_block(m, pc, bo);
    };
    auto j = vm::engine::run_jit(st.memory, st.regs, stop, e.max_blocks, source, *tier);
    if (j.reason == vm::engine::JitRunResult::Reason::Error) return fail("jit: " + j.message);
    r = as_run_result(j);
  } else {
    r = vm::translate::run_interpreter(st.memory, st.regs, stop, e.max_blocks);
  }
  vm::translate::JsonOutputOptions out;
  out.include_memory = !e.no_memory;
  fmt::print("{}", vm::translate::state_to_json(st, &r, out));
  return 0;
}

}  // namespace

int main(int argc, char** argv, char** envp) {
  CLI::App app{"vm: an LLVM-backed x86-64 dynamic binary translator"};
  bool version = false;
  app.add_flag("--version", version, "Print version and toolchain information");
  app.require_subcommand(0, 1);
  vm::engine::cli::add_run_command(app);
  vm::engine::cli::add_translate_command(app);

  CodeOptions lift_code;
  bool lift_opt = false;
  CLI::App* lift = app.add_subcommand("lift", "Print the vm-ir of the block at --at");
  add_code_options(lift, lift_code);
  lift->add_flag("--opt", lift_opt, "Run the standard vm-ir passes before printing");

  CodeOptions exec_code;
  ExecOptions exec_opts;
  CLI::App* exec = app.add_subcommand("exec", "Run code with the interpreter or the JIT and print the final state as JSON");
  add_code_options(exec, exec_code);
  exec->add_option("--state", exec_opts.state_path, "Initial state (JSON, see docs/cli.md)");
  exec->add_option("--engine", exec_opts.engine, "Execution engine: interp (vm-ir interpreter, default) or jit (LLVM JIT)");
  exec->add_option("--tier", exec_opts.tier, "JIT tier: fast (default) or optimized");
  exec->add_option("--max-steps", exec_opts.max_blocks, "Stop after this many blocks (default 1000000)");
  exec->add_flag("--no-memory", exec_opts.no_memory, "Leave memory regions out of the output");

  bool markdown = false;
  CLI::App* coverage = app.add_subcommand("coverage", "Print the supported x86 instruction forms");
  coverage->add_flag("--markdown", markdown, "As docs/x86-coverage.md (the only format for now)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line, like every other argument error of ours.
    std::fprintf(stderr, "vm: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm::engine::cli::run_selected(app)) return vm::engine::cli::run_execute(envp);
  if (vm::engine::cli::translate_selected(app)) return vm::engine::cli::translate_execute();
  if (version) {
    fmt::print("vm 0.1.0 (LLVM {}, Zydis {})\n", vm::translate::llvm_version(), vm::translate::zydis_version());
    return 0;
  }
  if (lift->parsed()) return run_lift(lift_code, lift_opt);
  if (exec->parsed()) return run_exec(exec_code, exec_opts);
  if (coverage->parsed()) {
    fmt::print("{}", vm::translate::x86_coverage_markdown());
    return 0;
  }
  fmt::print("{}", app.help());
  return 0;
}
