// Guest and host are both x86-64 Linux, so structure layouts (stat, statx,
// timespec, iovec, termios, winsize, pollfd, utsname...) are identical: a
// forwarded call copies the guest's bytes into a host buffer, calls the host
// kernel with it, and copies the bytes back. What must be checked is every
// guest pointer and length, which all go through the AddressSpace.
#include "vm/engine/linux/syscalls.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "vm/core/log.hpp"

namespace vm::engine::linux {
namespace {

using core::GuestAddr;

constexpr uint64_t kPage = 4096;
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxIo = 64u << 20;  // one read/write moves at most 64 MiB (Linux also caps to ~2 GiB)

int64_t host_result(long r) { return r < 0 ? -static_cast<int64_t>(errno) : r; }

}  // namespace

LinuxSyscalls::LinuxSyscalls(mem::AddressSpace& space, std::string exe_path)
    : space_(&space), exe_path_(std::move(exe_path)) {}

const char* LinuxSyscalls::name(uint64_t nr) {
  switch (nr) {
#define VM_SYSCALL_NAME(n) \
  case SYS_##n: return #n;
    VM_SYSCALL_NAME(read) VM_SYSCALL_NAME(write) VM_SYSCALL_NAME(open) VM_SYSCALL_NAME(close) VM_SYSCALL_NAME(stat)
    VM_SYSCALL_NAME(fstat) VM_SYSCALL_NAME(lstat) VM_SYSCALL_NAME(poll) VM_SYSCALL_NAME(lseek) VM_SYSCALL_NAME(mmap)
    VM_SYSCALL_NAME(mprotect) VM_SYSCALL_NAME(munmap) VM_SYSCALL_NAME(brk) VM_SYSCALL_NAME(rt_sigaction)
    VM_SYSCALL_NAME(rt_sigprocmask) VM_SYSCALL_NAME(rt_sigreturn) VM_SYSCALL_NAME(ioctl) VM_SYSCALL_NAME(pread64)
    VM_SYSCALL_NAME(pwrite64) VM_SYSCALL_NAME(readv) VM_SYSCALL_NAME(writev) VM_SYSCALL_NAME(access)
    VM_SYSCALL_NAME(pipe) VM_SYSCALL_NAME(sched_yield) VM_SYSCALL_NAME(mremap) VM_SYSCALL_NAME(madvise)
    VM_SYSCALL_NAME(dup) VM_SYSCALL_NAME(dup2) VM_SYSCALL_NAME(nanosleep) VM_SYSCALL_NAME(getpid) VM_SYSCALL_NAME(exit)
    VM_SYSCALL_NAME(kill) VM_SYSCALL_NAME(uname) VM_SYSCALL_NAME(fcntl) VM_SYSCALL_NAME(fsync)
    VM_SYSCALL_NAME(ftruncate) VM_SYSCALL_NAME(getdents64) VM_SYSCALL_NAME(getcwd) VM_SYSCALL_NAME(chdir)
    VM_SYSCALL_NAME(rename) VM_SYSCALL_NAME(mkdir) VM_SYSCALL_NAME(rmdir) VM_SYSCALL_NAME(unlink)
    VM_SYSCALL_NAME(readlink) VM_SYSCALL_NAME(gettimeofday) VM_SYSCALL_NAME(getrlimit) VM_SYSCALL_NAME(getuid)
    VM_SYSCALL_NAME(getgid) VM_SYSCALL_NAME(geteuid) VM_SYSCALL_NAME(getegid) VM_SYSCALL_NAME(getppid)
    VM_SYSCALL_NAME(sigaltstack) VM_SYSCALL_NAME(arch_prctl) VM_SYSCALL_NAME(gettid) VM_SYSCALL_NAME(time)
    VM_SYSCALL_NAME(futex) VM_SYSCALL_NAME(sched_getaffinity) VM_SYSCALL_NAME(set_tid_address)
    VM_SYSCALL_NAME(clock_gettime) VM_SYSCALL_NAME(clock_getres) VM_SYSCALL_NAME(clock_nanosleep)
    VM_SYSCALL_NAME(exit_group) VM_SYSCALL_NAME(tgkill) VM_SYSCALL_NAME(openat) VM_SYSCALL_NAME(mkdirat)
    VM_SYSCALL_NAME(newfstatat) VM_SYSCALL_NAME(unlinkat) VM_SYSCALL_NAME(renameat) VM_SYSCALL_NAME(readlinkat)
    VM_SYSCALL_NAME(faccessat) VM_SYSCALL_NAME(ppoll) VM_SYSCALL_NAME(set_robust_list) VM_SYSCALL_NAME(dup3)
    VM_SYSCALL_NAME(pipe2) VM_SYSCALL_NAME(prlimit64) VM_SYSCALL_NAME(getrandom) VM_SYSCALL_NAME(statx)
    VM_SYSCALL_NAME(rseq) VM_SYSCALL_NAME(faccessat2) VM_SYSCALL_NAME(renameat2) VM_SYSCALL_NAME(sysinfo)
#undef VM_SYSCALL_NAME
    default: return "unknown";
  }
}

SyscallOutcome LinuxSyscalls::handle(core::X86State& s) {
  uint64_t nr = s.gpr[0];
  const uint64_t a[6] = {s.gpr[7], s.gpr[6], s.gpr[2], s.gpr[10], s.gpr[8], s.gpr[9]};
  ++counts_[nr];
  SyscallOutcome out;
  int64_t r = dispatch(nr, a, s, out);
  VM_LOG_TRACE("syscall {}({}) ({:#x}, {:#x}, {:#x}) = {}", name(nr), nr, a[0], a[1], a[2], r);
  s.gpr[0] = static_cast<uint64_t>(r);
  // The syscall instruction leaves the return address in rcx and rflags in r11.
  s.gpr[1] = s.rip;
  s.gpr[11] = core::get_rflags(s);
  return out;
}

int64_t LinuxSyscalls::dispatch(uint64_t nr, const uint64_t a[6], core::X86State& state, SyscallOutcome& out) {
  mem::AddressSpace& sp = *space_;

  // Guest memory helpers: every guest pointer goes through these.
  auto read_bytes = [&](uint64_t addr, size_t n, std::vector<uint8_t>& buf) -> bool {
    buf.resize(n);
    return n == 0 || sp.read(GuestAddr(addr), buf).has_value();
  };
  auto write_bytes = [&](uint64_t addr, const void* data, size_t n) -> bool {
    return n == 0 || sp.write(GuestAddr(addr), std::span<const uint8_t>(static_cast<const uint8_t*>(data), n)).has_value();
  };
  auto read_string = [&](uint64_t addr, std::string& s) -> int64_t {
    s.clear();
    char chunk[256];
    while (s.size() < kMaxPath) {
      // Read up to the end of the page so a string ending just before an unmapped page works.
      size_t n = std::min<uint64_t>(sizeof chunk, kPage - ((addr + s.size()) % kPage));
      if (!sp.read(GuestAddr(addr + s.size()), std::span<uint8_t>(reinterpret_cast<uint8_t*>(chunk), n))) return -EFAULT;
      const char* z = static_cast<const char*>(std::memchr(chunk, 0, n));
      if (z != nullptr) {
        s.append(chunk, z - chunk);
        return 0;
      }
      s.append(chunk, n);
    }
    return -ENAMETOOLONG;
  };
  // A struct the guest passes in (nullptr for a null guest pointer).
  auto in_struct = [&](uint64_t addr, void* host, size_t n) -> int64_t {
    if (addr == 0) return 1;
    return sp.read(GuestAddr(addr), std::span<uint8_t>(static_cast<uint8_t*>(host), n)) ? 0 : -EFAULT;
  };
  auto out_struct = [&](uint64_t addr, const void* host, size_t n) -> int64_t {
    if (addr == 0) return 0;
    return write_bytes(addr, host, n) ? 0 : -EFAULT;
  };
  // Paths: /proc/self/exe must name the guest program, not the translator.
  auto guest_path = [&](uint64_t addr, std::string& path) -> int64_t {
    if (int64_t e = read_string(addr, path); e != 0) return e;
    return 0;
  };

  std::vector<uint8_t> buf;
  switch (nr) {
    case SYS_read:
    case SYS_pread64: {
      size_t n = std::min<uint64_t>(a[2], kMaxIo);
      buf.resize(n);
      long r = nr == SYS_read ? ::read(static_cast<int>(a[0]), buf.data(), n)
                              : ::pread(static_cast<int>(a[0]), buf.data(), n, static_cast<off_t>(a[3]));
      if (r < 0) return -errno;
      if (!write_bytes(a[1], buf.data(), static_cast<size_t>(r))) return -EFAULT;
      return r;
    }
    case SYS_write:
    case SYS_pwrite64: {
      size_t n = std::min<uint64_t>(a[2], kMaxIo);
      if (!read_bytes(a[1], n, buf)) return -EFAULT;
      long r = nr == SYS_write ? ::write(static_cast<int>(a[0]), buf.data(), n)
                               : ::pwrite(static_cast<int>(a[0]), buf.data(), n, static_cast<off_t>(a[3]));
      return host_result(r);
    }
    case SYS_readv:
    case SYS_writev: {
      if (a[2] > IOV_MAX) return -EINVAL;
      std::vector<iovec> iov(a[2]);
      if (!sp.read(GuestAddr(a[1]), std::span<uint8_t>(reinterpret_cast<uint8_t*>(iov.data()), iov.size() * sizeof(iovec))))
        return -EFAULT;
      int64_t total = 0;
      for (const iovec& v : iov) {
        uint64_t base = reinterpret_cast<uint64_t>(v.iov_base);
        size_t n = std::min<size_t>(v.iov_len, kMaxIo);
        if (n == 0) continue;
        buf.resize(n);
        long r;
        if (nr == SYS_writev) {
          if (!read_bytes(base, n, buf)) return total > 0 ? total : -EFAULT;
          r = ::write(static_cast<int>(a[0]), buf.data(), n);
        } else {
          r = ::read(static_cast<int>(a[0]), buf.data(), n);
          if (r > 0 && !write_bytes(base, buf.data(), static_cast<size_t>(r))) return total > 0 ? total : -EFAULT;
        }
        if (r < 0) return total > 0 ? total : -errno;
        total += r;
        if (static_cast<size_t>(r) < n) break;
      }
      return total;
    }
    case SYS_open:
    case SYS_openat: {
      std::string path;
      uint64_t p = nr == SYS_open ? a[0] : a[1];
      if (int64_t e = guest_path(p, path); e != 0) return e;
      int dirfd = nr == SYS_open ? AT_FDCWD : static_cast<int>(a[0]);
      int flags = static_cast<int>(nr == SYS_open ? a[1] : a[2]);
      mode_t mode = static_cast<mode_t>(nr == SYS_open ? a[2] : a[3]);
      return host_result(::openat(dirfd, path.c_str(), flags, mode));
    }
    case SYS_close: {
      int fd = static_cast<int>(a[0]);
      if (fd <= 2 && fd >= 0) {
        // Keep the translator's own stdio alive; the guest sees the close succeed.
        return 0;
      }
      return host_result(::close(fd));
    }
    case SYS_lseek: return host_result(::lseek(static_cast<int>(a[0]), static_cast<off_t>(a[1]), static_cast<int>(a[2])));
    case SYS_fstat: {
      struct stat st;
      if (::fstat(static_cast<int>(a[0]), &st) < 0) return -errno;
      return out_struct(a[1], &st, sizeof st);
    }
    case SYS_stat:
    case SYS_lstat:
    case SYS_newfstatat: {
      std::string path;
      uint64_t p = nr == SYS_newfstatat ? a[1] : a[0];
      if (int64_t e = guest_path(p, path); e != 0) return e;
      struct stat st;
      int dirfd = nr == SYS_newfstatat ? static_cast<int>(a[0]) : AT_FDCWD;
      int flags = nr == SYS_newfstatat ? static_cast<int>(a[3]) : (nr == SYS_lstat ? AT_SYMLINK_NOFOLLOW : 0);
      if (::fstatat(dirfd, path.c_str(), &st, flags) < 0) return -errno;
      return out_struct(nr == SYS_newfstatat ? a[2] : a[1], &st, sizeof st);
    }
    case SYS_statx: {
      std::string path;
      if (int64_t e = guest_path(a[1], path); e != 0) return e;
      uint8_t stx[256];
      long r = ::syscall(SYS_statx, static_cast<int>(a[0]), path.c_str(), static_cast<int>(a[2]),
                         static_cast<unsigned>(a[3]), stx);
      if (r < 0) return -errno;
      return out_struct(a[4], stx, sizeof stx);
    }
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2: {
      std::string path;
      if (int64_t e = guest_path(nr == SYS_access ? a[0] : a[1], path); e != 0) return e;
      if (nr == SYS_access) return host_result(::access(path.c_str(), static_cast<int>(a[1])));
      return host_result(::syscall(nr, static_cast<int>(a[0]), path.c_str(), static_cast<int>(a[2]),
                                   nr == SYS_faccessat2 ? static_cast<int>(a[3]) : 0));
    }
    case SYS_readlink:
    case SYS_readlinkat: {
      std::string path;
      if (int64_t e = guest_path(nr == SYS_readlink ? a[0] : a[1], path); e != 0) return e;
      uint64_t out_addr = nr == SYS_readlink ? a[1] : a[2];
      size_t n = std::min<uint64_t>(nr == SYS_readlink ? a[2] : a[3], kMaxPath);
      if (path == "/proc/self/exe") {
        size_t len = std::min(n, exe_path_.size());
        return write_bytes(out_addr, exe_path_.data(), len) ? static_cast<int64_t>(len) : -EFAULT;
      }
      buf.resize(n);
      long r = ::readlinkat(nr == SYS_readlink ? AT_FDCWD : static_cast<int>(a[0]), path.c_str(),
                            reinterpret_cast<char*>(buf.data()), n);
      if (r < 0) return -errno;
      return write_bytes(out_addr, buf.data(), static_cast<size_t>(r)) ? r : -EFAULT;
    }
    case SYS_getcwd: {
      char cwd[kMaxPath];
      if (::getcwd(cwd, sizeof cwd) == nullptr) return -errno;
      size_t len = std::strlen(cwd) + 1;
      if (len > a[1]) return -ERANGE;
      return write_bytes(a[0], cwd, len) ? static_cast<int64_t>(len) : -EFAULT;
    }
    case SYS_chdir:
    case SYS_rmdir:
    case SYS_unlink: {
      std::string path;
      if (int64_t e = guest_path(a[0], path); e != 0) return e;
      if (nr == SYS_chdir) return host_result(::chdir(path.c_str()));
      if (nr == SYS_rmdir) return host_result(::rmdir(path.c_str()));
      return host_result(::unlink(path.c_str()));
    }
    case SYS_mkdir: {
      std::string path;
      if (int64_t e = guest_path(a[0], path); e != 0) return e;
      return host_result(::mkdir(path.c_str(), static_cast<mode_t>(a[1])));
    }
    case SYS_mkdirat: {
      std::string path;
      if (int64_t e = guest_path(a[1], path); e != 0) return e;
      return host_result(::mkdirat(static_cast<int>(a[0]), path.c_str(), static_cast<mode_t>(a[2])));
    }
    case SYS_unlinkat: {
      std::string path;
      if (int64_t e = guest_path(a[1], path); e != 0) return e;
      return host_result(::unlinkat(static_cast<int>(a[0]), path.c_str(), static_cast<int>(a[2])));
    }
    case SYS_rename: {
      std::string from, to;
      if (int64_t e = guest_path(a[0], from); e != 0) return e;
      if (int64_t e = guest_path(a[1], to); e != 0) return e;
      return host_result(::rename(from.c_str(), to.c_str()));
    }
    case SYS_renameat:
    case SYS_renameat2: {
      std::string from, to;
      if (int64_t e = guest_path(a[1], from); e != 0) return e;
      if (int64_t e = guest_path(a[3], to); e != 0) return e;
      return host_result(::syscall(SYS_renameat2, static_cast<int>(a[0]), from.c_str(), static_cast<int>(a[2]), to.c_str(),
                                   nr == SYS_renameat2 ? static_cast<unsigned>(a[4]) : 0u));
    }
    case SYS_getdents64: {
      size_t n = std::min<uint64_t>(a[2], kMaxIo);
      buf.resize(n);
      long r = ::syscall(SYS_getdents64, static_cast<int>(a[0]), buf.data(), n);
      if (r < 0) return -errno;
      return write_bytes(a[1], buf.data(), static_cast<size_t>(r)) ? r : -EFAULT;
    }
    case SYS_ftruncate: return host_result(::ftruncate(static_cast<int>(a[0]), static_cast<off_t>(a[1])));
    case SYS_fsync: return host_result(::fsync(static_cast<int>(a[0])));
    case SYS_dup: return host_result(::dup(static_cast<int>(a[0])));
    case SYS_dup2: return host_result(::dup2(static_cast<int>(a[0]), static_cast<int>(a[1])));
    case SYS_dup3: return host_result(::dup3(static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2])));
    case SYS_pipe:
    case SYS_pipe2: {
      int fds[2];
      if (::pipe2(fds, nr == SYS_pipe2 ? static_cast<int>(a[1]) : 0) < 0) return -errno;
      if (!write_bytes(a[0], fds, sizeof fds)) {
        ::close(fds[0]);
        ::close(fds[1]);
        return -EFAULT;
      }
      return 0;
    }
    case SYS_fcntl: {
      int cmd = static_cast<int>(a[1]);
      switch (cmd) {
        case F_GETFD: case F_SETFD: case F_GETFL: case F_SETFL: case F_DUPFD: case F_DUPFD_CLOEXEC:
          return host_result(::fcntl(static_cast<int>(a[0]), cmd, static_cast<long>(a[2])));
        default: return -EINVAL;
      }
    }
    case SYS_ioctl: {
      unsigned long req = a[1];
      if (req == TCGETS) {
        struct termios t;
        if (::ioctl(static_cast<int>(a[0]), TCGETS, &t) < 0) return -errno;
        return out_struct(a[2], &t, sizeof t);
      }
      if (req == TIOCGWINSZ) {
        struct winsize w;
        if (::ioctl(static_cast<int>(a[0]), TIOCGWINSZ, &w) < 0) return -errno;
        return out_struct(a[2], &w, sizeof w);
      }
      return -ENOTTY;
    }
    case SYS_poll:
    case SYS_ppoll: {
      if (a[1] > 4096) return -EINVAL;
      std::vector<pollfd> fds(a[1]);
      if (!fds.empty() &&
          !sp.read(GuestAddr(a[0]), std::span<uint8_t>(reinterpret_cast<uint8_t*>(fds.data()), fds.size() * sizeof(pollfd))))
        return -EFAULT;
      long r;
      if (nr == SYS_poll) {
        r = ::poll(fds.data(), fds.size(), static_cast<int>(a[2]));
      } else {
        timespec ts;
        int64_t has = in_struct(a[2], &ts, sizeof ts);
        if (has < 0) return has;
        r = ::ppoll(fds.data(), fds.size(), has == 1 ? nullptr : &ts, nullptr);
      }
      if (r < 0) return -errno;
      if (!fds.empty() && !write_bytes(a[0], fds.data(), fds.size() * sizeof(pollfd))) return -EFAULT;
      return r;
    }

    // ----- memory management: the guest address space -----
    case SYS_brk: return static_cast<int64_t>(sp.brk(GuestAddr(a[0])).value());
    case SYS_mmap: {
      uint64_t addr = a[0], len = a[1];
      int prot = static_cast<int>(a[2]), flags = static_cast<int>(a[3]), fd = static_cast<int>(a[4]);
      uint64_t off = a[5];
      if (len == 0 || (off & (kPage - 1)) != 0) return -EINVAL;
      uint8_t perms = (prot & PROT_READ ? core::kPermRead : 0) | (prot & PROT_WRITE ? core::kPermWrite : 0) |
                      (prot & PROT_EXEC ? core::kPermExec : 0);
      uint32_t mflags = (flags & MAP_FIXED) ? uint32_t{mem::kMapFixed} : (flags & MAP_FIXED_NOREPLACE) ? uint32_t{mem::kMapFixedNoReplace} : 0u;
      core::Result<GuestAddr> r;
      if (flags & MAP_ANONYMOUS) {
        r = sp.map(GuestAddr(addr), len, perms, mflags);
      } else {
        // A file mapping is a private copy of the file's bytes.
        if ((flags & MAP_SHARED) && (prot & PROT_WRITE)) {
          VM_LOG_WARN("mmap: writable MAP_SHARED file mapping of fd {} is emulated as a private copy", fd);
        }
        struct stat st;
        if (::fstat(fd, &st) < 0) return -errno;
        uint64_t avail = static_cast<uint64_t>(st.st_size) > off ? static_cast<uint64_t>(st.st_size) - off : 0;
        size_t n = std::min<uint64_t>(avail, len);
        buf.resize(n);
        size_t got = 0;
        while (got < n) {
          long k = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(off + got));
          if (k < 0) return -errno;
          if (k == 0) break;
          got += static_cast<size_t>(k);
        }
        buf.resize(got);
        r = sp.map_file(GuestAddr(addr), len, perms, mflags, buf, 0);
      }
      if (!r && r.error().code == core::ErrorCode::OutOfMemory && !space_full_warned_) {
        space_full_warned_ = true;
        VM_LOG_WARN("mmap of {:#x} bytes: no room in the guest address space ({} MiB); `vm run --address-space` "
                    "gives the guest a bigger one",
                    len, sp.size() >> 20);
      }
      if (!r) return r.error().code == core::ErrorCode::InvalidArgument ? -EINVAL : -ENOMEM;
      return static_cast<int64_t>(r->value());
    }
    case SYS_munmap: {
      if ((a[0] & (kPage - 1)) != 0 || a[1] == 0) return -EINVAL;
      return sp.unmap(GuestAddr(a[0]), a[1]) ? 0 : -EINVAL;
    }
    case SYS_mprotect: {
      if ((a[0] & (kPage - 1)) != 0) return -EINVAL;
      int prot = static_cast<int>(a[2]);
      uint8_t perms = (prot & PROT_READ ? core::kPermRead : 0) | (prot & PROT_WRITE ? core::kPermWrite : 0) |
                      (prot & PROT_EXEC ? core::kPermExec : 0);
      auto r = sp.protect(GuestAddr(a[0]), a[1], perms);
      if (!r) return r.error().code == core::ErrorCode::InvalidArgument ? -EINVAL : -ENOMEM;
      return 0;
    }
    case SYS_mremap: {
      uint64_t old_addr = a[0], old_len = (a[1] + kPage - 1) & ~(kPage - 1), new_len = (a[2] + kPage - 1) & ~(kPage - 1);
      int flags = static_cast<int>(a[3]);
      if ((old_addr & (kPage - 1)) != 0 || new_len == 0) return -EINVAL;
      if (new_len <= old_len) {
        if (new_len < old_len && !sp.unmap(GuestAddr(old_addr + new_len), old_len - new_len)) return -EINVAL;
        return static_cast<int64_t>(old_addr);
      }
      // Grow in place when the pages after the mapping are free.
      uint8_t perms = core::kPermRW;
      for (const auto& m : sp.mappings())
        if (m.start.value() <= old_addr && old_addr < m.start.value() + m.length) perms = m.perms;
      if (sp.map(GuestAddr(old_addr + old_len), new_len - old_len, perms, mem::kMapFixedNoReplace))
        return static_cast<int64_t>(old_addr);
      if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
      auto moved = sp.map(GuestAddr(0), new_len, perms, 0);
      if (!moved) return -ENOMEM;
      buf.resize(old_len);
      if (!sp.read(GuestAddr(old_addr), buf) || !sp.write(*moved, buf)) {
        (void)sp.unmap(*moved, new_len);
        return -EFAULT;
      }
      (void)sp.unmap(GuestAddr(old_addr), old_len);
      return static_cast<int64_t>(moved->value());
    }
    case SYS_madvise: return 0;  // advice only; MADV_DONTNEED on private anonymous memory is not emulated

    // ----- process -----
    case SYS_exit:
    case SYS_exit_group:
      out.action = SyscallOutcome::Action::Exit;
      out.exit_status = static_cast<int>(a[0] & 0xff);
      return 0;
    case SYS_arch_prctl: {
      constexpr int kSetGs = 0x1001, kSetFs = 0x1002, kGetFs = 0x1003, kGetGs = 0x1004;
      switch (static_cast<int>(a[0])) {
        case kSetFs: state.fs_base = a[1]; return 0;
        case kSetGs: state.gs_base = a[1]; return 0;
        case kGetFs: return out_struct(a[1], &state.fs_base, 8);
        case kGetGs: return out_struct(a[1], &state.gs_base, 8);
        default: return -EINVAL;
      }
    }
    case SYS_set_tid_address: clear_child_tid_ = a[0]; return ::getpid();
    case SYS_set_robust_list: return 0;
    case SYS_rseq: return -ENOSYS;
    case SYS_rt_sigaction: {
      int sig = static_cast<int>(a[0]);
      if (sig < 1 || sig > kNumSignals || a[3] != 8) return -EINVAL;
      if (a[2] != 0 && out_struct(a[2], &actions_[sig], sizeof(GuestSigaction)) != 0) return -EFAULT;
      if (a[1] != 0) {
        if (sig == SIGKILL || sig == SIGSTOP) return -EINVAL;
        GuestSigaction act;
        if (in_struct(a[1], &act, sizeof act) != 0) return -EFAULT;
        actions_[sig] = act;
      }
      return 0;
    }
    case SYS_rt_sigprocmask: {
      if (a[3] != 8) return -EINVAL;
      uint64_t old = sigmask_;
      if (a[1] != 0) {
        uint64_t set;
        if (in_struct(a[1], &set, 8) != 0) return -EFAULT;
        switch (static_cast<int>(a[0])) {
          case SIG_BLOCK: sigmask_ |= set; break;
          case SIG_UNBLOCK: sigmask_ &= ~set; break;
          case SIG_SETMASK: sigmask_ = set; break;
          default: return -EINVAL;
        }
        sigmask_ &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
      }
      return out_struct(a[2], &old, 8);
    }
    case SYS_sigaltstack: {
      if (a[1] != 0) {
        stack_t none{};
        none.ss_flags = SS_DISABLE;
        if (out_struct(a[1], &none, sizeof none) != 0) return -EFAULT;
      }
      return 0;  // an alternate stack is accepted; handlers run on the current stack
    }
    case SYS_getpid: return ::getpid();
    case SYS_gettid: return ::getpid();
    case SYS_getppid: return ::getppid();
    case SYS_getuid: return ::getuid();
    case SYS_geteuid: return ::geteuid();
    case SYS_getgid: return ::getgid();
    case SYS_getegid: return ::getegid();
    case SYS_kill:
    case SYS_tgkill: {
      int pid = static_cast<int>(a[0]);
      int sig = static_cast<int>(nr == SYS_kill ? a[1] : a[2]);
      bool self = nr == SYS_kill ? (pid == ::getpid() || pid == 0) : (pid == ::getpid() && static_cast<int>(a[1]) == ::getpid());
      if (!self) return -EPERM;  // only signals to ourselves are emulated
      if (sig < 0 || sig > kNumSignals) return -EINVAL;
      if (sig == 0) return 0;
      out.action = SyscallOutcome::Action::Signal;
      out.signal = sig;
      return 0;
    }
    case SYS_uname: {
      struct utsname u;
      if (::uname(&u) < 0) return -errno;
      std::strncpy(u.machine, "x86_64", sizeof u.machine);
      return out_struct(a[0], &u, sizeof u);
    }
    case SYS_clock_gettime:
    case SYS_clock_getres: {
      timespec ts;
      long r = nr == SYS_clock_gettime ? ::clock_gettime(static_cast<clockid_t>(a[0]), &ts)
                                       : ::clock_getres(static_cast<clockid_t>(a[0]), &ts);
      if (r < 0) return -errno;
      return out_struct(a[1], &ts, sizeof ts);
    }
    case SYS_gettimeofday: {
      timeval tv;
      if (::gettimeofday(&tv, nullptr) < 0) return -errno;
      return out_struct(a[0], &tv, sizeof tv);
    }
    case SYS_time: {
      time_t t = ::time(nullptr);
      if (a[0] != 0 && out_struct(a[0], &t, sizeof t) != 0) return -EFAULT;
      return t;
    }
    case SYS_nanosleep:
    case SYS_clock_nanosleep: {
      timespec req, rem{};
      uint64_t req_addr = nr == SYS_nanosleep ? a[0] : a[2];
      if (in_struct(req_addr, &req, sizeof req) != 0) return -EFAULT;
      long r = nr == SYS_nanosleep ? ::nanosleep(&req, &rem)
                                   : -::clock_nanosleep(static_cast<clockid_t>(a[0]), static_cast<int>(a[1]), &req, &rem);
      if (nr == SYS_clock_nanosleep && r < 0) return r;
      if (r < 0) return -errno;
      return 0;
    }
    case SYS_getrandom: {
      size_t n = std::min<uint64_t>(a[1], kMaxIo);
      buf.resize(n);
      long r = ::getrandom(buf.data(), n, static_cast<unsigned>(a[2]));
      if (r < 0) return -errno;
      return write_bytes(a[0], buf.data(), static_cast<size_t>(r)) ? r : -EFAULT;
    }
    case SYS_getrlimit:
    case SYS_prlimit64: {
      int resource = static_cast<int>(nr == SYS_getrlimit ? a[0] : a[1]);
      if (nr == SYS_prlimit64 && a[0] != 0 && static_cast<pid_t>(a[0]) != ::getpid()) return -EPERM;
      struct rlimit rl;
      if (::getrlimit(resource, &rl) < 0) return -errno;
      // Setting limits is accepted but not applied to the translator itself.
      return out_struct(nr == SYS_getrlimit ? a[1] : a[3], &rl, sizeof rl);
    }
    case SYS_sched_getaffinity: {
      size_t n = std::min<uint64_t>(a[1], 1024);
      buf.assign(n, 0);
      long r = ::syscall(SYS_sched_getaffinity, static_cast<pid_t>(0), n, buf.data());
      if (r < 0) return -errno;
      return write_bytes(a[2], buf.data(), static_cast<size_t>(r)) ? r : -EFAULT;
    }
    case SYS_sched_yield: return 0;
    case SYS_sysinfo: {
      struct sysinfo info;
      if (::sysinfo(&info) < 0) return -errno;
      return out_struct(a[0], &info, sizeof info);
    }
    case SYS_futex: {
      // One guest thread: a wait whose value matches would sleep forever, so
      // it returns as if woken (allowed: futex waits may wake spuriously).
      int op = static_cast<int>(a[1]) & 0x7f;
      constexpr int kWait = 0, kWake = 1, kWaitBitset = 9, kWakeBitset = 10;
      if (op == kWait || op == kWaitBitset) {
        uint32_t v;
        if (in_struct(a[0], &v, 4) != 0) return -EFAULT;
        return v != static_cast<uint32_t>(a[2]) ? -EAGAIN : 0;
      }
      if (op == kWake || op == kWakeBitset) return 0;
      return -ENOSYS;
    }
    default:
      if (warned_.insert(nr).second) VM_LOG_WARN("unsupported syscall {} ({}) returns -ENOSYS", nr, name(nr));
      return -ENOSYS;
  }
}

}  // namespace vm::engine::linux
