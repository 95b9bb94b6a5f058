// Native execution oracle: runs the same bytes on the host CPU in a forked
// child, at the same guest addresses, for the cases where Unicorn follows
// QEMU's choices instead of the hardware (see the regression rows that use
// it). The child maps code, data and stack at their guest addresses, loads
// the register file from a shared page through a small trampoline, runs
// the code, and an epilogue placed right after the code stores the state
// back and exits. Data and stack are memfd mappings shared with the parent.
#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "vm/translate/assembler.hpp"
#include "x86_machine.hpp"

namespace vm::translate::test {
namespace {

constexpr uint64_t kTrampoline = 0x1100000;
constexpr uint64_t kIo = 0x1200000;        // shared page: state in / out
constexpr uint64_t kScratchStack = 0x1300000;
// Layout of the shared page.
constexpr uint64_t kGprOff = 0, kRflagsOff = 128, kRipOff = 136, kMxcsrOff = 144, kXmmOff = 256, kFxOff = 1024;
// In the FXSAVE image at kFxOff (the rest of the x87 part: core::store_x87_fxsave).
constexpr size_t kFxFcw = 0, kFxMxcsr = 24;

struct SharedRegion {
  int fd = -1;
  uint8_t* host = nullptr;
  size_t size = 0;
  explicit SharedRegion(size_t n) : size(n) {
    fd = memfd_create("vm-native", 0);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(n)) != 0) return;
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    host = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~SharedRegion() {
    if (host) munmap(host, size);
    if (fd >= 0) close(fd);
  }
  bool map_at(uint64_t addr, int prot) const {
    void* p = mmap(reinterpret_cast<void*>(addr), size, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    return p == reinterpret_cast<void*>(addr);
  }
};

std::string prologue_text() {
  // The x87 state comes in as an FXSAVE image; xmm and MXCSR are loaded after it.
  std::string s = fmt::format("mov rsp, {:#x}\nfxrstor [{:#x}]\npush qword ptr [{:#x}]\npopfq\nldmxcsr dword ptr [{:#x}]\n",
                              kScratchStack + 0x1000, kIo + kFxOff, kIo + kRflagsOff, kIo + kMxcsrOff);
  for (int i = 0; i < 16; ++i) s += fmt::format("movdqu xmm{}, xmmword ptr [{:#x}]\n", i, kIo + kXmmOff + 16 * i);
  static const char* kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  for (int i = 0; i < 16; ++i) s += fmt::format("mov {}, qword ptr [{:#x}]\n", kNames[i], kIo + kGprOff + 8 * i);
  s += fmt::format("jmp qword ptr [{:#x}]\n", kIo + kRipOff);
  return s;
}

std::string epilogue_text() {
  static const char* kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  std::string s;
  for (int i = 0; i < 16; ++i) s += fmt::format("mov qword ptr [{:#x}], {}\n", kIo + kGprOff + 8 * i, kNames[i]);
  s += fmt::format("mov rsp, {:#x}\npushfq\npop rax\nmov qword ptr [{:#x}], rax\n", kScratchStack + 0x1000, kIo + kRflagsOff);
  for (int i = 0; i < 16; ++i) s += fmt::format("movdqu xmmword ptr [{:#x}], xmm{}\n", kIo + kXmmOff + 16 * i, i);
  s += fmt::format("fxsave [{:#x}]\n", kIo + kFxOff);
  s += fmt::format("stmxcsr dword ptr [{:#x}]\nmov eax, 231\nxor edi, edi\nsyscall\n", kIo + kMxcsrOff);
  return s;
}

}  // namespace

Outcome run_native(std::span<const uint8_t> code, Machine& m) {
  Outcome out;
  static const auto prologue = assemble_x86(prologue_text());
  static const auto epilogue = assemble_x86(epilogue_text());
  if (!prologue || !epilogue) {
    out.what = "native: cannot assemble the trampoline";
    return out;
  }
  SharedRegion io(4096), data(kDataSize), stack(kStackSize);
  if (!io.host || !data.host || !stack.host) {
    out.what = "native: memfd unavailable";
    return out;
  }
  std::memcpy(data.host, m.data.data(), kDataSize);
  std::memcpy(stack.host, m.stack.data(), kStackSize);
  std::memcpy(io.host + kGprOff, m.regs.gpr, 128);
  uint64_t rflags = core::get_rflags(m.regs);
  std::memcpy(io.host + kRflagsOff, &rflags, 8);
  std::memcpy(io.host + kRipOff, &m.regs.rip, 8);
  std::memcpy(io.host + kMxcsrOff, &m.regs.mxcsr, 4);
  std::memcpy(io.host + kXmmOff, m.regs.xmm, 256);
  uint8_t* fx = io.host + kFxOff;
  std::memcpy(fx + kFxFcw, &m.regs.fpu_cw, 2);
  std::memcpy(fx + kFxMxcsr, &m.regs.mxcsr, 4);
  core::store_x87_fxsave(m.regs, fx);

  pid_t pid = fork();
  if (pid < 0) {
    out.what = "native: fork failed";
    return out;
  }
  if (pid == 0) {
    // A guest fault must kill the child with its signal: the test runner's
    // crash handlers (inherited through fork) would report a crash instead.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT}) signal(sig, SIG_DFL);
    alarm(5);
    auto map_private = [](uint64_t addr, size_t size, std::span<const uint8_t> bytes, uint8_t fill) {
      void* p = mmap(reinterpret_cast<void*>(addr), size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != reinterpret_cast<void*>(addr)) _exit(100);
      std::memset(p, fill, size);
      std::memcpy(p, bytes.data(), bytes.size());
      if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0) _exit(101);
    };
    std::vector<uint8_t> guest(code.begin(), code.end());
    guest.insert(guest.end(), epilogue->begin(), epilogue->end());
    if (!io.map_at(kIo, PROT_READ | PROT_WRITE) || !data.map_at(kDataBase, PROT_READ | PROT_WRITE) ||
        !stack.map_at(kStackBase, PROT_READ | PROT_WRITE))
      _exit(102);
    void* scratch = mmap(reinterpret_cast<void*>(kScratchStack), 0x1000, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (scratch != reinterpret_cast<void*>(kScratchStack)) _exit(103);
    map_private(kCodeBase, kCodeSize, guest, 0xcc);
    map_private(kTrampoline, 0x1000, *prologue, 0xcc);
    // The guest's fs/gs bases. From here on the child must not touch its own
    // TLS, so the syscalls are issued directly and nothing returns.
    const uint64_t fs = m.regs.fs_base, gs = m.regs.gs_base;
    long rc = 0;
    asm volatile("syscall" : "=a"(rc) : "a"(158), "D"(0x1002), "S"(fs) : "rcx", "r11", "memory");  // arch_prctl(ARCH_SET_FS)
    if (rc != 0) _exit(105);
    asm volatile("syscall" : "=a"(rc) : "a"(158), "D"(0x1001), "S"(gs) : "rcx", "r11", "memory");  // arch_prctl(ARCH_SET_GS)
    if (rc != 0) _exit(106);
    reinterpret_cast<void (*)()>(kTrampoline)();
    _exit(104);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.what = WIFSIGNALED(status) ? fmt::format("native: signal {}", WTERMSIG(status))
                                   : fmt::format("native: setup failed ({})", WEXITSTATUS(status));
    return out;
  }
  std::memcpy(m.regs.gpr, io.host + kGprOff, 128);
  std::memcpy(&rflags, io.host + kRflagsOff, 8);
  core::set_rflags(m.regs, rflags);
  std::memcpy(&m.regs.mxcsr, io.host + kMxcsrOff, 4);
  std::memcpy(m.regs.xmm, io.host + kXmmOff, 256);
  std::memcpy(&m.regs.fpu_cw, fx + kFxFcw, 2);
  core::load_x87_fxsave(m.regs, fx);
  std::memcpy(m.data.data(), data.host, kDataSize);
  std::memcpy(m.stack.data(), stack.host, kStackSize);
  m.regs.rip = kCodeBase + code.size();
  out.completed = true;
  out.pc = m.regs.rip;
  return out;
}

}  // namespace vm::translate::test
