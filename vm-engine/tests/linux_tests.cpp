// Linux user mode: the ELF loader and initial stack on real static
// executables (built from tests/guest by the build), its error paths, and a
// robustness sweep of corrupted executables (errors, never a crash).
#include <doctest/doctest.h>

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "vm/engine/linux/elf_loader.hpp"
#include "vm/engine/linux/syscalls.hpp"

using namespace vm;
using namespace vm::engine::linux;

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::unique_ptr<mem::AddressSpace> small_space() {
  mem::AddressSpaceConfig cfg;
  cfg.size = uint64_t{1} << 34;  // 16 GiB of virtual space is plenty here
  auto s = mem::AddressSpace::create(cfg);
  REQUIRE(s.has_value());
  return std::move(*s);
}

const std::string kGuestDir = VM_GUEST_DIR;

// A hand-built ELF64 x86-64 executable: the program headers right after
// the ELF header, then `body` (segment file offsets count from the start).
std::vector<uint8_t> build_elf(uint16_t type, uint64_t entry, const std::vector<Elf64_Phdr>& segments,
                               const std::vector<uint8_t>& body) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = type;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(segments.size());
  std::vector<uint8_t> f(sizeof eh + segments.size() * sizeof(Elf64_Phdr));
  std::memcpy(f.data(), &eh, sizeof eh);
  std::memcpy(f.data() + sizeof eh, segments.data(), segments.size() * sizeof(Elf64_Phdr));
  f.insert(f.end(), body.begin(), body.end());
  return f;
}

Elf64_Phdr load_segment(uint32_t flags, uint64_t offset, uint64_t vaddr, uint64_t filesz, uint64_t memsz) {
  Elf64_Phdr p{};
  p.p_type = PT_LOAD;
  p.p_flags = flags;
  p.p_offset = offset;
  p.p_vaddr = p.p_paddr = vaddr;
  p.p_filesz = filesz;
  p.p_memsz = memsz;
  p.p_align = 0x1000;
  return p;
}

}  // namespace

TEST_CASE("a static-PIE executable is placed a third of the way up whatever the space's size") {
  CHECK(pie_load_base(uint64_t{64} << 30) == 0x555555000);
  CHECK(pie_load_base(uint64_t{4} << 30) == 0x55555000);
  auto file = read_file(kGuestDir + "/hello-gcc-O2-pie");
  REQUIRE(file.size() > 1000);
  for (uint64_t size : {uint64_t{1} << 30, uint64_t{4} << 30, uint64_t{1} << 40}) {
    CAPTURE(size);
    mem::AddressSpaceConfig cfg;
    cfg.size = size;
    auto space = mem::AddressSpace::create(cfg);
    REQUIRE(space.has_value());
    auto img = load_elf(**space, file);
    REQUIRE_MESSAGE(img.has_value(), (img ? "" : img.error().to_string()));
    CHECK(img->pie);
    CHECK(img->load_bias == pie_load_base(size));
    CHECK((*space)->is_mapped(img->entry));
  }
}

TEST_CASE("a static glibc executable loads with its segments and permissions") {
  auto file = read_file(kGuestDir + "/hello-gcc-O2");
  REQUIRE(file.size() > 1000);
  auto space = small_space();
  auto img = load_elf(*space, file);
  REQUIRE_MESSAGE(img.has_value(), (img ? "" : img.error().to_string()));
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  CHECK(img->entry.value() == eh.e_entry);
  CHECK(img->phnum == eh.e_phnum);
  CHECK_FALSE(img->pie);
  // Every PT_LOAD byte from the file is in guest memory with the segment's permissions.
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    std::vector<uint8_t> back(ph.p_filesz);
    REQUIRE(space->read(core::GuestAddr(ph.p_vaddr), back).has_value());
    CHECK(std::memcmp(back.data(), file.data() + ph.p_offset, ph.p_filesz) == 0);
    uint8_t probe[1] = {0};
    bool writable = space->write(core::GuestAddr(ph.p_vaddr + ph.p_memsz - 1), probe).has_value();
    CHECK(writable == ((ph.p_flags & PF_W) != 0));
    bool executable = space->fetch(core::GuestAddr(ph.p_vaddr), probe).has_value();
    if (!(ph.p_flags & PF_X)) {
      // The first page may be shared with an executable segment; check the last.
      executable = space->fetch(core::GuestAddr((ph.p_vaddr + ph.p_memsz - 1)), probe).has_value();
    }
    CHECK(executable == ((ph.p_flags & PF_X) != 0));
  }
  CHECK(img->brk_start.is_aligned(4096));
  CHECK(space->brk(core::GuestAddr(0)) == img->brk_start);
}

TEST_CASE("the initial stack follows the System V x86-64 layout") {
  auto file = read_file(kGuestDir + "/hello-musl-O2");
  auto space = small_space();
  auto img = load_elf(*space, file);
  REQUIRE(img.has_value());
  StackConfig sc;
  sc.argv = {"/prog", "a1", "second arg"};
  sc.envp = {"A=1", "B=two"};
  sc.execfn = "/prog";
  auto st = build_initial_stack(*space, *img, sc);
  REQUIRE(st.has_value());
  CHECK(st->rsp.is_aligned(16));
  auto word = [&](uint64_t at) {
    uint64_t v = 0;
    REQUIRE(space->read(core::GuestAddr(at), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 8)).has_value());
    return v;
  };
  auto str = [&](uint64_t at) {
    std::string s;
    for (char c; (c = static_cast<char>(word(at++) & 0xff)) != 0;) s += c;
    return s;
  };
  uint64_t sp = st->rsp.value();
  CHECK(word(sp) == 3);
  CHECK(str(word(sp + 8)) == "/prog");
  CHECK(str(word(sp + 16)) == "a1");
  CHECK(str(word(sp + 24)) == "second arg");
  CHECK(word(sp + 32) == 0);
  CHECK(str(word(sp + 40)) == "A=1");
  CHECK(str(word(sp + 48)) == "B=two");
  CHECK(word(sp + 56) == 0);
  std::map<uint64_t, uint64_t> aux;
  for (uint64_t p = sp + 64;; p += 16) {
    uint64_t k = word(p), v = word(p + 8);
    if (k == kAtNull) break;
    aux[k] = v;
  }
  CHECK(aux[kAtPagesz] == 4096);
  CHECK(aux[kAtEntry] == img->entry.value());
  CHECK(aux[kAtPhnum] == img->phnum);
  CHECK(str(aux[kAtPlatform]) == "x86_64");
  CHECK(str(aux[kAtExecfn]) == "/prog");
  CHECK(aux.count(kAtRandom) == 1);
  CHECK(aux.count(kAtHwcap) == 1);
  CHECK(aux.count(kAtClktck) == 1);
}

TEST_CASE("malformed and unsupported executables are refused with a reason") {
  auto space = small_space();
  auto err = [&](std::vector<uint8_t> f) {
    auto r = load_elf(*space, f);
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
  };
  CHECK(err({}).find("too small") != std::string::npos);
  std::vector<uint8_t> junk(200, 0x41);
  CHECK(err(junk).find("bad magic") != std::string::npos);
  auto good = read_file(kGuestDir + "/hello-musl-O2");
  auto f = good;
  f[EI_CLASS] = ELFCLASS32;
  CHECK(err(f).find("64-bit") != std::string::npos);
  f = good;
  f[18] = 0xb7;  // e_machine = AArch64
  f[19] = 0;
  CHECK(err(f).find("not x86-64") != std::string::npos);
  f = good;
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof eh);
  eh.e_phoff = f.size() - 10;
  std::memcpy(f.data(), &eh, sizeof eh);
  CHECK(err(f).find("outside the file") != std::string::npos);
  f.assign(good.begin(), good.begin() + 2000);  // truncated: segments point past the end
  CHECK(err(f).find("outside the file") != std::string::npos);
}

TEST_CASE("segment permissions: a shared page gets the union, a gap stays unmapped, a large bss is mapped") {
  // Text [0x400000, 0x401100) r-x and data [0x401100, 0x401200) rw- share
  // the page 0x401000; the page 0x402000 belongs to no segment; a second
  // data segment at 0x403000 has 1 GiB of bss. The headers are in the
  // text's first bytes, its file range the whole file.
  std::vector<Elf64_Phdr> segs = {load_segment(PF_R | PF_X, 0, 0x400000, 0x1100, 0x1100),
                                  load_segment(PF_R | PF_W, 0x1100, 0x401100, 0x10, 0x100),
                                  load_segment(PF_R | PF_W, 0x1110, 0x403110, 0x10, uint64_t{1} << 30)};
  std::vector<uint8_t> body(0x1120 - sizeof(Elf64_Ehdr) - segs.size() * sizeof(Elf64_Phdr), 0x90);
  auto space = small_space();
  auto img = load_elf(*space, build_elf(ET_EXEC, 0x400100, segs, body));
  REQUIRE_MESSAGE(img.has_value(), (img ? "" : img.error().to_string()));
  CHECK(img->lowest.value() == 0x400000);
  CHECK(img->brk_start.value() == ((0x403110 + (uint64_t{1} << 30) + 0xfff) & ~uint64_t{0xfff}));
  std::vector<mem::MappingInfo> expect = {
      {core::GuestAddr(0x400000), 0x1000, core::kPermRead | core::kPermExec},
      {core::GuestAddr(0x401000), 0x1000, core::kPermRWX},
      {core::GuestAddr(0x403000), img->brk_start.value() - 0x403000, core::kPermRW},
  };
  CHECK(space->mappings() == expect);
  uint8_t byte = 0;
  REQUIRE(space->read(core::GuestAddr(0x401100 + 0x10), std::span<uint8_t>(&byte, 1)).has_value());
  CHECK(byte == 0);  // bss after the file bytes
  REQUIRE(space->read(core::GuestAddr(0x403110), std::span<uint8_t>(&byte, 1)).has_value());
  CHECK(byte == 0x90);
}

TEST_CASE("256 overlapping segments, the most the loader takes, load as the union of their permissions") {
  // Each over the same 1 GiB, alternately read-only and read-write. The
  // loader works out permissions per range of pages, not per page and
  // segment (which listed 256 x 262144 pages here, 1 GiB of bookkeeping).
  std::vector<Elf64_Phdr> segs;
  for (int i = 0; i < 256; ++i)
    segs.push_back(load_segment(i % 2 ? PF_R : PF_R | PF_W, 0, 0x10000, 0x100, uint64_t{1} << 30));
  mem::AddressSpaceConfig cfg;
  cfg.size = uint64_t{4} << 30;
  auto space = mem::AddressSpace::create(cfg);
  REQUIRE(space.has_value());
  auto img = load_elf(**space, build_elf(ET_EXEC, 0x10000, segs, std::vector<uint8_t>(0x100, 0)));
  REQUIRE_MESSAGE(img.has_value(), (img ? "" : img.error().to_string()));
  std::vector<mem::MappingInfo> expect = {{core::GuestAddr(0x10000), uint64_t{1} << 30, core::kPermRW}};
  CHECK((*space)->mappings() == expect);
}

TEST_CASE("a segment whose address wraps around with the static-PIE base is refused") {
  std::vector<Elf64_Phdr> segs = {load_segment(PF_R | PF_X, 0, 0xfffffffffffff000, 0x100, 0x100)};
  auto space = small_space();
  auto r = load_elf(*space, build_elf(ET_DYN, 0, segs, std::vector<uint8_t>(0x100, 0)));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("outside the guest address space") != std::string::npos);
}

TEST_CASE("a guest space too small for the stack gets an error, not a wrapped address") {
  mem::AddressSpaceConfig cfg;
  cfg.size = uint64_t{64} << 20;
  cfg.strategy = mem::MemoryStrategy::SoftMmu;
  auto space = mem::AddressSpace::create(cfg);
  REQUIRE(space.has_value());
  ElfImage img;
  auto r = build_initial_stack(**space, img, StackConfig{});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("no room for a stack") != std::string::npos);
}

TEST_CASE("the loader survives thousands of corrupted executables") {
  auto good = read_file(kGuestDir + "/hello-musl-O2");
  REQUIRE(good.size() > 4096);
  std::mt19937_64 rng(99);
  int loaded = 0;
  for (int i = 0; i < 300; ++i) {
    auto f = good;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      // Mostly the headers, where the loader's decisions are.
      size_t at = rng() % 4 == 0 ? rng() % f.size() : rng() % std::min<size_t>(f.size(), 64 + 56 * 8);
      f[at] = static_cast<uint8_t>(rng());
    }
    if (rng() % 5 == 0) f.resize(rng() % f.size());
    auto space = small_space();
    auto r = load_elf(*space, f);
    loaded += r.has_value();
    if (!r) CHECK_FALSE(r.error().message.empty());
  }
  MESSAGE(loaded << " of 300 corrupted files still loaded");
}

TEST_CASE("mmap beyond the guest address space fails with ENOMEM, and the space stays usable") {
  mem::AddressSpaceConfig cfg;
  cfg.size = uint64_t{1} << 30;  // 1 GiB (vm run --address-space 1G)
  auto space = mem::AddressSpace::create(cfg);
  REQUIRE(space.has_value());
  LinuxSyscalls sys(**space, "/prog");
  auto mmap_anon = [&](uint64_t len) {
    core::X86State s;
    s.gpr[0] = 9;  // mmap(NULL, len, RW, PRIVATE|ANON, -1, 0)
    s.gpr[7] = 0;
    s.gpr[6] = len;
    s.gpr[2] = 3;
    s.gpr[10] = 0x22;
    s.gpr[8] = static_cast<uint64_t>(-1);
    s.gpr[9] = 0;
    sys.handle(s);
    return static_cast<int64_t>(s.gpr[0]);
  };
  // 256 MiB pieces: a few fit, then the space is full.
  int fitted = 0;
  int64_t r = 0;
  while ((r = mmap_anon(uint64_t{256} << 20)) > 0) {
    CHECK((*space)->is_mapped(core::GuestAddr(static_cast<uint64_t>(r))));
    REQUIRE(++fitted < 8);
  }
  CHECK(r == -ENOMEM);
  CHECK(fitted >= 1);
  CHECK(mmap_anon(uint64_t{2} << 30) == -ENOMEM);  // larger than the whole space
  CHECK(mmap_anon(4096) > 0);                      // small maps still find room
}

TEST_CASE("syscalls check guest pointers and never touch host memory directly") {
  auto space = small_space();
  REQUIRE(space->map(core::GuestAddr(0x100000), 0x1000, core::kPermRW, mem::kMapFixed).has_value());
  LinuxSyscalls sys(*space, "/prog");
  core::X86State s;
  // write(1, <unmapped>, 10) -> -EFAULT
  s.gpr[0] = 1;
  s.gpr[7] = 1;
  s.gpr[6] = 0xdead0000;
  s.gpr[2] = 10;
  sys.handle(s);
  CHECK(static_cast<int64_t>(s.gpr[0]) == -EFAULT);
  // uname(buf) fills guest memory
  s.gpr[0] = 63;
  s.gpr[7] = 0x100000;
  sys.handle(s);
  CHECK(s.gpr[0] == 0);
  char sysname[6] = {};
  REQUIRE(space->read(core::GuestAddr(0x100000), std::span<uint8_t>(reinterpret_cast<uint8_t*>(sysname), 5)).has_value());
  CHECK(std::string(sysname) == "Linux");
  // open of a path crossing into unmapped memory -> -EFAULT
  const char tail[] = "abc";
  REQUIRE(space->write(core::GuestAddr(0x100ffd), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(tail), 3)).has_value());
  s.gpr[0] = 2;
  s.gpr[7] = 0x100ffd;
  s.gpr[6] = 0;
  sys.handle(s);
  CHECK(static_cast<int64_t>(s.gpr[0]) == -EFAULT);
  // brk and mmap act on the guest space
  s.gpr[0] = 9;  // mmap(NULL, 8192, RW, PRIVATE|ANON)
  s.gpr[7] = 0;
  s.gpr[6] = 8192;
  s.gpr[2] = 3;
  s.gpr[10] = 0x22;
  s.gpr[8] = static_cast<uint64_t>(-1);
  s.gpr[9] = 0;
  sys.handle(s);
  uint64_t m = s.gpr[0];
  CHECK(m % 4096 == 0);
  CHECK(space->is_mapped(core::GuestAddr(m)));
  // arch_prctl(ARCH_SET_FS)
  s.gpr[0] = 158;
  s.gpr[7] = 0x1002;
  s.gpr[6] = 0x123000;
  sys.handle(s);
  CHECK(s.fs_base == 0x123000);
  // unknown syscall -> -ENOSYS
  s.gpr[0] = 999;
  sys.handle(s);
  CHECK(static_cast<int64_t>(s.gpr[0]) == -ENOSYS);
  // rcx/r11 hold the return rip and rflags, as after a real syscall
  s.rip = 0x401000;
  s.gpr[0] = 39;  // getpid
  sys.handle(s);
  CHECK(s.gpr[1] == 0x401000);
  CHECK(s.gpr[11] == core::get_rflags(s));
  CHECK(sys.counts().at(39) == 1);
}
