// End-to-end tests of `vm translate` and `vm exec --engine jit`: the built
// `vm` binary is run as a user would run it and its real outputs are checked
// — object headers, assembly of the right architecture, the blocks of an ELF
// function, JIT results equal to the interpreter's, and one-line errors with
// exit status 2 for every bad input.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <elf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string temp_path(const std::string& name) {
  return fmt::format("{}/vm_cli_translate_{}_{}", std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", getpid(), name);
}

Run vm(const std::vector<std::string>& args) {
  std::string cmd = quote(VM_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  std::string out = temp_path("stdout"), err = temp_path("stderr");
  int rc = std::system((cmd + " > " + quote(out) + " 2> " + quote(err)).c_str());
  Run r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

// A short lifted program: arithmetic, a branch, memory through the stack, a call.
const std::vector<std::string> kProgram = {"translate", "--asm", "add rax, rbx; jz 1f; imul rcx, rdx; 1: push rcx; pop rsi; ret"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

uint16_t elf_machine(const std::string& bytes) {
  Elf64_Ehdr eh{};
  if (bytes.size() < sizeof(eh) || bytes.compare(0, SELFMAG, ELFMAG) != 0) return 0;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  return eh.e_type == ET_REL ? eh.e_machine : 0;
}

}  // namespace

TEST_CASE("vm translate --emit obj writes a relocatable object for each target") {
  struct Case {
    const char* target;
    uint16_t machine;
  };
  for (Case c : {Case{"aarch64", EM_AARCH64}, Case{"riscv64", EM_RISCV}, Case{"host", EM_X86_64}}) {
    for (const char* tier : {"fast", "optimized"}) {
      CAPTURE(c.target);
      CAPTURE(tier);
      std::string path = temp_path("obj.o");
      Run r = vm(with(kProgram, {"--target", c.target, "--emit", "obj", "--tier", tier, "-o", path}));
      CHECK(r.status == 0);
      CHECK(r.err == "");
      CHECK(r.out == "");
      CHECK(elf_machine(slurp(path)) == c.machine);
      std::remove(path.c_str());
    }
  }
  // Binary data is never written to stdout.
  Run r = vm(with(kProgram, {"--target", "aarch64", "--emit", "obj"}));
  CHECK(r.status == 2);
  CHECK(r.out == "");
  CHECK(r.err.find("-o FILE") != std::string::npos);
}

TEST_CASE("vm translate --emit asm is assembly of the chosen architecture") {
  Run arm = vm(with(kProgram, {"--target", "aarch64", "--emit", "asm"}));
  REQUIRE(arm.status == 0);
  CHECK(arm.out.find("vm_block_0:") != std::string::npos);
  CHECK(arm.out.find("\tldr\tx") != std::string::npos);  // AArch64 64-bit load
  CHECK(arm.out.find("%rdi") == std::string::npos);
  Run rv = vm(with(kProgram, {"--target", "riscv64", "--emit", "asm", "--tier", "optimized"}));
  REQUIRE(rv.status == 0);
  CHECK(rv.out.find("\tld\ta") != std::string::npos);  // RISC-V load into an argument register
  for (const char* tier : {"fast", "optimized"}) {
    Run host = vm(with(kProgram, {"--target", "host", "--emit", "asm", "--tier", tier}));
    REQUIRE(host.status == 0);
    CHECK(host.out.find(fmt::format("# guest block 0x1000000 ({} tier)", tier)) != std::string::npos);
    CHECK(host.out.find("%rdi") != std::string::npos);  // x86-64, the state pointer arrives in rdi
  }
  // softmmu code calls the slow path through MemoryContext (offset 32 = load_slow, 40 = store_slow).
  Run soft = vm(with(kProgram, {"--target", "host", "--emit", "llvm", "--mmu", "softmmu"}));
  REQUIRE(soft.status == 0);
  Run direct = vm(with(kProgram, {"--target", "host", "--emit", "llvm", "--mmu", "direct"}));
  REQUIRE(direct.status == 0);
  CHECK(soft.out != direct.out);
  CHECK(soft.out.find("call i32 %") != std::string::npos);
  CHECK(direct.out.find("call i32 %") == std::string::npos);
}

TEST_CASE("vm translate --emit llvm: the JIT's IR, as lowered or after the lean pipeline") {
  Run fast = vm(with(kProgram, {"--target", "host", "--emit", "llvm", "--tier", "fast"}));
  Run opt = vm(with(kProgram, {"--target", "host", "--emit", "llvm", "--tier", "optimized"}));
  REQUIRE(fast.status == 0);
  REQUIRE(opt.status == 0);
  CHECK(fast.out.find("define i64 @vm_1000000(ptr noalias") != std::string::npos);
  CHECK(opt.out.find("define i64 @vm_1000000(ptr noalias") != std::string::npos);
  // Dead flag computations are gone after the pipeline.
  CHECK(opt.out.size() < fast.out.size());
  Run cross = vm(with(kProgram, {"--target", "riscv64", "--emit", "llvm"}));
  REQUIRE(cross.status == 0);
  CHECK(cross.out.find("target triple = \"riscv64") != std::string::npos);
  CHECK(cross.out.find("@vm_block_table") != std::string::npos);
}

TEST_CASE("vm translate --emit ir covers every block of the code, and one block equals vm lift") {
  Run one = vm({"translate", "--code", "4801d8c3", "--target", "host", "--emit", "ir"});
  Run lift = vm({"lift", "--code", "4801d8c3"});
  REQUIRE(one.status == 0);
  REQUIRE(lift.status == 0);
  CHECK(one.out == lift.out + "\n");
  // add; jz over imul; push/pop; ret: blocks at the start, after jz and at the jz target.
  Run r = vm(with(kProgram, {"--target", "aarch64", "--emit", "ir"}));
  REQUIRE(r.status == 0);
  std::set<std::string> starts;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("block ")) starts.insert(line.substr(6, line.find(' ', 6) - 6));
  CHECK(starts == std::set<std::string>{"0x1000000", "0x1000005", "0x1000009"});
}

TEST_CASE("vm translate --elf translates one function of a guest program") {
  std::string exe = std::string(VM_GUEST_DIR) + "/recursion-gcc-O0";
  // The symbol's address from binutils, independently of our ELF reader.
  Run nm{};
  {
    std::string out = temp_path("nm");
    std::system(("nm " + quote(exe) + " > " + quote(out)).c_str());
    nm.out = slurp(out);
    std::remove(out.c_str());
  }
  std::string fib_addr;
  std::istringstream lines(nm.out);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > 19 && line.substr(17) == "t fib") fib_addr = line.substr(0, 16);
  REQUIRE(fib_addr.size() == 16);
  uint64_t addr = std::stoull(fib_addr, nullptr, 16);

  Run ir = vm({"translate", "--elf", exe, "--symbol", "fib", "--target", "host", "--emit", "ir"});
  REQUIRE(ir.status == 0);
  CHECK(ir.out.starts_with(fmt::format("block {:#x} ", addr)));
  // fib calls itself twice: two direct calls back to its own entry.
  std::string self_call = fmt::format("call {:#x}, ret", addr);
  size_t first = ir.out.find(self_call);
  CHECK(first != std::string::npos);
  CHECK(ir.out.find(self_call, first + 1) != std::string::npos);
  CHECK(ir.out.find("  ret %") != std::string::npos);

  std::string path = temp_path("fib.o");
  for (const char* target : {"aarch64", "riscv64"}) {
    Run obj = vm({"translate", "--elf", exe, "--symbol", "fib", "--target", target, "--emit", "obj", "-o", path});
    CHECK(obj.status == 0);
    CHECK(elf_machine(slurp(path)) == (std::string(target) == "aarch64" ? EM_AARCH64 : EM_RISCV));
  }
  std::remove(path.c_str());
  Run musl = vm({"translate", "--elf", std::string(VM_GUEST_DIR) + "/sha256-musl-O2", "--symbol", "main", "--target",
                 "riscv64", "--emit", "asm", "--tier", "optimized"});
  CHECK(musl.status == 0);
  CHECK(musl.out.find("vm_block_table:") != std::string::npos);
}

TEST_CASE("vm translate: every bad input is one line on stderr and exit status 2") {
  std::string exe = std::string(VM_GUEST_DIR) + "/recursion-gcc-O0";
  std::string not_elf = temp_path("not_elf");
  std::ofstream(not_elf) << "hello, not an ELF file\n";
  std::string truncated = temp_path("truncated");
  std::ofstream(truncated, std::ios::binary) << slurp(exe).substr(0, 100);
  const std::vector<std::vector<std::string>> bad = {
      {"--code", "4801d8", "--target", "mips", "--emit", "asm"},
      {"--code", "4801d8", "--target", "host", "--emit", "exe"},
      {"--code", "4801d8", "--target", "host", "--emit", "ir", "--tier", "slow"},
      {"--code", "4801d8", "--target", "host", "--emit", "ir", "--mmu", "paged"},
      {"--code", "4801d8", "--emit", "ir"},
      {"--code", "4801d8", "--target", "host"},
      {"--target", "host", "--emit", "ir"},
      {"--code", "4801d8", "--elf", exe, "--symbol", "fib", "--target", "host", "--emit", "ir"},
      {"--elf", exe, "--target", "host", "--emit", "ir"},
      {"--code", "90", "--symbol", "fib", "--target", "host", "--emit", "ir"},
      {"--elf", exe, "--symbol", "fib", "--at", "0x1000", "--target", "host", "--emit", "ir"},
      {"--code", "4801d", "--target", "host", "--emit", "ir"},
      {"--code", "zz", "--target", "host", "--emit", "ir"},
      {"--code", "06", "--target", "host", "--emit", "ir"},          // not an x86-64 instruction
      {"--code", "4801d80fff", "--target", "host", "--emit", "ir"},  // undecodable after a valid one
      {"--code", "48", "--target", "host", "--emit", "ir"},          // cut off
      {"--elf", exe, "--symbol", "no_such_function", "--target", "host", "--emit", "ir"},
      {"--elf", not_elf, "--symbol", "main", "--target", "host", "--emit", "ir"},
      {"--elf", truncated, "--symbol", "main", "--target", "host", "--emit", "ir"},
      {"--elf", "/nonexistent/file", "--symbol", "main", "--target", "host", "--emit", "ir"},
      {"--code", "90", "--target", "host", "--emit", "ir", "-o", "/nonexistent/dir/out"},
  };
  for (const auto& args : bad) {
    Run r = vm(with({"translate"}, args));
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    CAPTURE(shown);
    CHECK(r.status == 2);
    CHECK(r.out == "");
    CHECK(r.err.starts_with("vm translate: "));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  std::remove(not_elf.c_str());
  std::remove(truncated.c_str());
  // ud2 is code, not garbage.
  CHECK(vm({"translate", "--code", "0f0b", "--target", "host", "--emit", "ir"}).status == 0);
}

TEST_CASE("vm exec --engine jit prints the interpreter's JSON at both tiers") {
  std::string state = temp_path("state.json");
  std::ofstream(state) << R"({"registers": {"rbx": "0x200000", "rsp": "0x300100", "rdx": "0x7",
      "xmm1": "0102030405060708090a0b0c0d0e0f10"}, "flags": {"cf": 1},
      "memory": [{"address": "0x200000", "perms": "rw-", "bytes": "11223344"},
                 {"address": "0x300000", "size": "0x200"}, {"address": "0x400000", "perms": "r--", "size": "0x10"}]})";
  const std::vector<std::vector<std::string>> programs = {
      {"--asm", "mov ecx, 10; xor eax, eax; 1: add rax, rcx; push rax; loop 1b; mov rbx, qword ptr [0x10]"},  // fault
      {"--asm", "mov eax, dword ptr [rbx]; adc eax, 0; mov dword ptr [rbx], eax; movdqa xmm0, xmm1; paddb xmm0, xmm0",
       "--state", state},
      {"--asm", "mov dword ptr [0x400000], eax", "--state", state},  // write to read-only memory
      {"--asm", "xor ecx, ecx; div rcx"},                              // #DE
      {"--asm", "mov eax, 60; syscall; nop"},
      {"--code", "0f0b"},
      {"--asm", "vpaddd ymm0, ymm1, ymm2"},  // unsupported (AVX): the trap message names the instruction
      {"--asm", "1: jmp 1b", "--max-steps", "50"},
      {"--asm", "mov rsi, rsp; mov rcx, 5; mov al, 0x5a; rep stosb; cld; lock xadd qword ptr [rsp], rcx; bsf rdx, rcx; "
                "call 1f; 1: pop rdi; cmovz rax, rdi",
       "--at", "0x500000"},
  };
  for (const auto& p : programs) {
    Run interp = vm(with(with({"exec"}, p), {"--engine", "interp"}));
    REQUIRE(interp.status == 0);
    REQUIRE(interp.out.find("\"exit\"") != std::string::npos);
    for (const char* tier : {"fast", "optimized"}) {
      Run jit = vm(with(with({"exec"}, p), {"--engine", "jit", "--tier", tier}));
      CAPTURE(p[1]);
      CAPTURE(tier);
      CHECK(jit.status == 0);
      CHECK(jit.err == "");
      CHECK(jit.out == interp.out);
    }
  }
  std::remove(state.c_str());
  Run bad = vm({"exec", "--code", "90", "--engine", "jit", "--tier", "slow"});
  CHECK(bad.status != 0);
  CHECK(bad.err.find("--tier slow") != std::string::npos);
}
