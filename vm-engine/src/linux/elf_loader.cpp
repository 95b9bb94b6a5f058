#include "vm/engine/linux/elf_loader.hpp"

#include <elf.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace vm::engine::linux {
namespace {

using core::ErrorCode;
using core::GuestAddr;

constexpr uint64_t kPage = 4096;

uint8_t perms_of(uint32_t p_flags) {
  uint8_t p = 0;
  if (p_flags & PF_R) p |= core::kPermRead;
  if (p_flags & PF_W) p |= core::kPermWrite;
  if (p_flags & PF_X) p |= core::kPermExec;
  return p;
}

core::Result<void> check_header(const Elf64_Ehdr& eh, size_t file_size) {
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return core::fail(ErrorCode::InvalidArgument, "not an ELF file (bad magic)");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return core::fail(ErrorCode::Unsupported, "not a 64-bit ELF file");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return core::fail(ErrorCode::Unsupported, "not a little-endian ELF file");
  if (eh.e_machine != EM_X86_64)
    return core::failf(ErrorCode::Unsupported, "ELF machine {} is not x86-64 (62)", eh.e_machine);
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    return core::failf(ErrorCode::Unsupported, "ELF type {} is not an executable", eh.e_type);
  if (eh.e_phentsize != sizeof(Elf64_Phdr))
    return core::failf(ErrorCode::InvalidArgument, "program header size {} (expected {})", eh.e_phentsize, sizeof(Elf64_Phdr));
  if (eh.e_phnum == 0 || eh.e_phnum > 256) return core::failf(ErrorCode::InvalidArgument, "bad program header count {}", eh.e_phnum);
  if (eh.e_phoff > file_size || eh.e_phnum * sizeof(Elf64_Phdr) > file_size - eh.e_phoff)
    return core::fail(ErrorCode::InvalidArgument, "program headers lie outside the file");
  return {};
}

}  // namespace

core::Result<ElfImage> load_elf(mem::AddressSpace& space, std::span<const uint8_t> file) {
  if (file.size() < sizeof(Elf64_Ehdr)) return core::failf(ErrorCode::InvalidArgument, "file too small for an ELF header ({} bytes)", file.size());
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  if (auto r = check_header(eh, file.size()); !r) return std::unexpected(r.error());
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  std::memcpy(ph.data(), file.data() + eh.e_phoff, ph.size() * sizeof(Elf64_Phdr));

  ElfImage img;
  img.pie = eh.e_type == ET_DYN;
  img.load_bias = img.pie ? pie_load_base(space.size()) : 0;
  uint64_t lo = ~0ull, hi = 0;
  for (size_t i = 0; i < ph.size(); ++i) {
    const auto& p = ph[i];
    if (p.p_type == PT_INTERP) {
      std::string interp;
      if (p.p_offset < file.size()) {
        size_t n = std::min<uint64_t>(p.p_filesz, file.size() - p.p_offset);
        interp.assign(reinterpret_cast<const char*>(file.data() + p.p_offset), strnlen(reinterpret_cast<const char*>(file.data() + p.p_offset), n));
      }
      return core::failf(ErrorCode::Unsupported,
                         "dynamically linked executable (interpreter {}) is not supported yet; link it with -static",
                         interp.empty() ? "?" : interp);
    }
    if (p.p_type == PT_GNU_STACK) img.executable_stack = (p.p_flags & PF_X) != 0;
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    if (p.p_filesz > p.p_memsz) return core::failf(ErrorCode::InvalidArgument, "segment {}: file size exceeds memory size", i);
    if (p.p_offset > file.size() || p.p_filesz > file.size() - p.p_offset)
      return core::failf(ErrorCode::InvalidArgument, "segment {}: file range [{:#x}, +{:#x}) lies outside the file ({} bytes)", i,
                         p.p_offset, p.p_filesz, file.size());
    if (p.p_align > 1 && (p.p_vaddr % kPage) != (p.p_offset % kPage))
      return core::failf(ErrorCode::InvalidArgument, "segment {}: address and file offset disagree modulo the page size", i);
    uint64_t vaddr = p.p_vaddr + img.load_bias;
    if (vaddr < p.p_vaddr || vaddr + p.p_memsz < vaddr || vaddr + p.p_memsz > space.size())
      return core::failf(ErrorCode::InvalidArgument, "segment {}: [{:#x}, +{:#x}) lies outside the guest address space", i, vaddr, p.p_memsz);
    lo = std::min(lo, vaddr & ~(kPage - 1));
    hi = std::max(hi, (vaddr + p.p_memsz + kPage - 1) & ~(kPage - 1));
  }
  if (hi == 0) return core::fail(ErrorCode::InvalidArgument, "no loadable segments");
  if (lo < 0x10000) return core::failf(ErrorCode::InvalidArgument, "segments start at {:#x}, below the lowest mappable address 0x10000", lo);

  // Map the whole image writable first, copy the file bytes, then apply each
  // segment's own permissions (pages shared by two segments get the union).
  if (auto r = space.map(GuestAddr(lo), hi - lo, core::kPermRW, mem::kMapFixedNoReplace); !r)
    return core::failf(ErrorCode::InvalidArgument, "cannot map the image at [{:#x}, {:#x}): {}", lo, hi, r.error().message);
  // Each segment's pages and permissions, as page ranges: the work is the
  // same for a 4 KiB segment and a 3 GiB bss (one entry per page was 16 bytes
  // per page per segment: gigabytes for 256 segments over a large space).
  struct Pages {
    uint64_t begin, end;
    uint8_t perms;
  };
  std::vector<Pages> pages;
  std::vector<uint64_t> cuts;  // where the permissions may change
  for (size_t i = 0; i < ph.size(); ++i) {
    const auto& p = ph[i];
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    uint64_t vaddr = p.p_vaddr + img.load_bias;
    if (p.p_filesz > 0)
      if (auto r = space.write(GuestAddr(vaddr), file.subspan(p.p_offset, p.p_filesz)); !r)
        return core::failf(ErrorCode::Internal, "segment {}: copy failed: {}", i, r.error().to_string());
    Pages range{vaddr & ~(kPage - 1), (vaddr + p.p_memsz + kPage - 1) & ~(kPage - 1), perms_of(p.p_flags)};
    pages.push_back(range);
    cuts.push_back(range.begin);
    cuts.push_back(range.end);
    // The program headers, if a segment covers them, give AT_PHDR.
    if (eh.e_phoff >= p.p_offset && eh.e_phoff < p.p_offset + p.p_filesz) img.phdr = GuestAddr(vaddr + (eh.e_phoff - p.p_offset));
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  // Between two cuts every page has the same segments: those pages get the
  // union of their permissions (a page two segments share), or are left
  // unmapped when they belong to no segment (a gap between segments).
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    uint64_t begin = cuts[k], end = cuts[k + 1];
    bool covered = false;
    uint8_t perms = 0;
    for (const Pages& r : pages)
      if (r.begin <= begin && end <= r.end) {
        covered = true;
        perms |= r.perms;
      }
    auto r = covered ? space.protect(GuestAddr(begin), end - begin, perms) : space.unmap(GuestAddr(begin), end - begin);
    if (!r) return std::unexpected(r.error());
  }
  for (const auto& p : ph)
    if (p.p_type == PT_PHDR) img.phdr = GuestAddr(p.p_vaddr + img.load_bias);
  img.entry = GuestAddr(eh.e_entry + img.load_bias);
  img.phent = eh.e_phentsize;
  img.phnum = eh.e_phnum;
  img.lowest = GuestAddr(lo);
  img.brk_start = GuestAddr(hi);
  space.set_brk_start(img.brk_start);
  return img;
}

core::Result<InitialStack> build_initial_stack(mem::AddressSpace& space, const ElfImage& image, const StackConfig& config) {
  constexpr uint64_t kAboveStack = 0x10000000;  // 256 MiB left above the stack for mmap
  if (config.top.value() == 0 && space.size() <= kAboveStack)
    return core::failf(ErrorCode::InvalidArgument, "a guest space of {:#x} bytes leaves no room for a stack below its top 256 MiB",
                       space.size());
  uint64_t top = config.top.value() != 0 ? config.top.value() : space.size() - kAboveStack;
  top &= ~(kPage - 1);
  uint64_t size = (config.size + kPage - 1) & ~(kPage - 1);
  if (size < 64 * 1024 || size > top) return core::failf(ErrorCode::InvalidArgument, "bad stack size {:#x}", config.size);
  uint8_t perms = core::kPermRW | (image.executable_stack ? core::kPermExec : 0);
  if (auto r = space.map(GuestAddr(top - size), size, perms, mem::kMapFixedNoReplace); !r)
    return core::failf(ErrorCode::OutOfMemory, "cannot map the stack: {}", r.error().message);

  // Build the block of strings and vectors in host memory, then copy it once.
  uint64_t sp = top;
  auto push_bytes = [&](const void* data, size_t n) -> core::Result<uint64_t> {
    sp -= n;
    if (auto r = space.write(GuestAddr(sp), std::span<const uint8_t>(static_cast<const uint8_t*>(data), n)); !r)
      return std::unexpected(r.error());
    return sp;
  };
  auto push_string = [&](const std::string& s) { return push_bytes(s.c_str(), s.size() + 1); };

  uint8_t random[16];
  if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
    for (size_t i = 0; i < sizeof random; ++i) random[i] = static_cast<uint8_t>(i * 151 + 7);
  auto at_random = push_bytes(random, sizeof random);
  if (!at_random) return std::unexpected(at_random.error());
  auto at_platform = push_string("x86_64");
  if (!at_platform) return std::unexpected(at_platform.error());
  auto at_execfn = push_string(config.execfn);
  if (!at_execfn) return std::unexpected(at_execfn.error());
  std::vector<uint64_t> argv_ptrs, envp_ptrs;
  for (const auto& s : config.envp) {
    auto p = push_string(s);
    if (!p) return std::unexpected(p.error());
    envp_ptrs.push_back(*p);
  }
  for (const auto& s : config.argv) {
    auto p = push_string(s);
    if (!p) return std::unexpected(p.error());
    argv_ptrs.push_back(*p);
  }

  std::vector<uint64_t> words;
  words.push_back(config.argv.size());
  words.insert(words.end(), argv_ptrs.begin(), argv_ptrs.end());
  words.push_back(0);
  words.insert(words.end(), envp_ptrs.begin(), envp_ptrs.end());
  words.push_back(0);
  auto aux = [&](uint64_t k, uint64_t v) {
    words.push_back(k);
    words.push_back(v);
  };
  aux(kAtPhdr, image.phdr.value());
  aux(kAtPhent, image.phent);
  aux(kAtPhnum, image.phnum);
  aux(kAtPagesz, kPage);
  aux(kAtBase, 0);
  aux(kAtFlags, 0);
  aux(kAtEntry, image.entry.value());
  aux(kAtUid, getuid());
  aux(kAtEuid, geteuid());
  aux(kAtGid, getgid());
  aux(kAtEgid, getegid());
  aux(kAtPlatform, *at_platform);
  aux(kAtHwcap, config.hwcap);
  aux(kAtClktck, static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  aux(kAtSecure, 0);
  aux(kAtRandom, *at_random);
  aux(kAtHwcap2, config.hwcap2);
  aux(kAtExecfn, *at_execfn);
  aux(kAtNull, 0);

  sp &= ~uint64_t(15);
  // argc must sit at a 16-byte aligned address.
  uint64_t bytes = words.size() * 8;
  sp -= bytes;
  sp &= ~uint64_t(15);
  if (sp < top - size + 4096) return core::fail(ErrorCode::OutOfMemory, "arguments and environment do not fit in the stack");
  if (auto r = space.write(GuestAddr(sp), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(words.data()), bytes)); !r)
    return std::unexpected(r.error());
  return InitialStack{GuestAddr(sp), GuestAddr(top - size), GuestAddr(top)};
}

}  // namespace vm::engine::linux
