// Backend selection: parsing, the SURGE_BACKEND override, explicit choices, and the automatic fallback to
// epoll when io_uring is denied, proven in a child process whose seccomp filter makes io_uring_setup
// fail with EPERM (what Docker's default profile does).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/worker.h"

namespace surge {
namespace {

// Sets an environment variable for one test and restores the previous value afterwards.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    if (previous_.has_value()) {
      setenv(name_, previous_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

bool io_uring_available_here() { return IoUringBackend::create({}).ok(); }

TEST(BackendSelectionTest, ParsesChoices) {
  EXPECT_EQ(*parse_backend_choice("auto"), BackendChoice::kAuto);
  EXPECT_EQ(*parse_backend_choice("io_uring"), BackendChoice::kIoUring);
  EXPECT_EQ(*parse_backend_choice("uring"), BackendChoice::kIoUring);
  EXPECT_EQ(*parse_backend_choice("epoll"), BackendChoice::kEpoll);
  for (const char* bad : {"", "EPOLL", "kqueue", "io-uring", "epoll "}) {
    auto parsed = parse_backend_choice(bad);
    EXPECT_FALSE(parsed) << "'" << bad << "' was accepted";
    if (!parsed) {
      EXPECT_EQ(parsed.error().code(), EINVAL);
    }
  }
}

TEST(BackendSelectionTest, AutoPrefersIoUringWhenAvailable) {
  ScopedEnvironment clear(kBackendEnvironmentVariable, nullptr);
  auto backend = make_backend(BackendChoice::kAuto);
  ASSERT_TRUE(backend) << backend.error().message();
  EXPECT_EQ((*backend)->kind(), io_uring_available_here() ? BackendKind::kIoUring : BackendKind::kEpoll);
}

TEST(BackendSelectionTest, EnvironmentVariableOverridesAuto) {
  ScopedEnvironment force(kBackendEnvironmentVariable, "epoll");
  auto worker = Worker::create();
  ASSERT_TRUE(worker) << worker.error().message();
  EXPECT_EQ((*worker)->backend_kind(), BackendKind::kEpoll);
}

TEST(BackendSelectionTest, ExplicitChoiceInCodeWinsOverEnvironment) {
  ScopedEnvironment force(kBackendEnvironmentVariable, "io_uring");
  auto worker = Worker::create({.backend = BackendChoice::kEpoll});
  ASSERT_TRUE(worker) << worker.error().message();
  EXPECT_EQ((*worker)->backend_kind(), BackendKind::kEpoll);
}

TEST(BackendSelectionTest, InvalidEnvironmentVariableIsAClearError) {
  ScopedEnvironment force(kBackendEnvironmentVariable, "fastest");
  auto worker = Worker::create();
  ASSERT_FALSE(worker);
  EXPECT_EQ(worker.error().code(), EINVAL);
  EXPECT_NE(worker.error().message().find("SURGE_BACKEND"), std::string::npos) << worker.error().message();
}

// Makes io_uring_setup(2) fail with EPERM for this process, as a container's seccomp profile would.
bool deny_io_uring_setup() {
#if defined(__x86_64__)
  constexpr std::uint32_t kArchitecture = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t kArchitecture = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArchitecture, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Child-process exit codes, so the parent can say what went wrong.
enum ChildExit : int {
  kChildOk = 0,
  kChildNoSeccomp = 10,
  kChildIoUringStillWorks = 11,
  kChildNoWorker = 12,
  kChildWrongBackend = 13,
  kChildEchoFailed = 14,
};

Task<bool> echo_round_trip() {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) co_return false;
  auto address = *listener->local_addr();
  (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return false;
  if (!co_await stream->write_all("ping")) co_return false;
  char reply[4];
  if (!co_await stream->read_exact(reply)) co_return false;
  co_return std::string_view(reply, 4) == "ping";
}

[[noreturn]] void child_main() {
  if (!deny_io_uring_setup()) _exit(kChildNoSeccomp);
  if (IoUringBackend::create({}).ok()) _exit(kChildIoUringStillWorks);
  unsetenv(kBackendEnvironmentVariable);
  auto worker = Worker::create();  // auto: must fall back, and say why on stderr
  if (!worker) _exit(kChildNoWorker);
  if ((*worker)->backend_kind() != BackendKind::kEpoll) _exit(kChildWrongBackend);
  auto echoed = (*worker)->block_on_for(echo_round_trip(), std::chrono::seconds(5));
  _exit(echoed.value_or(false) ? kChildOk : kChildEchoFailed);
}

TEST(BackendSelectionTest, FallsBackToEpollWhenSeccompDeniesIoUring) {
  int stderr_pipe[2];
  ASSERT_EQ(pipe2(stderr_pipe, O_CLOEXEC), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(stderr_pipe[1], STDERR_FILENO);
    child_main();
  }
  close(stderr_pipe[1]);

  // Read the child's stderr until it closes, bounded in time: a hung child is killed and fails the test.
  std::string child_stderr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool timed_out = false;
  for (;;) {
    pollfd readable{stderr_pipe[0], POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (poll(&readable, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[512];
    const ssize_t n = read(stderr_pipe[0], chunk, sizeof(chunk));
    if (n <= 0) break;
    child_stderr.append(chunk, static_cast<std::size_t>(n));
  }
  close(stderr_pipe[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_FALSE(timed_out) << "the child hung; stderr: " << child_stderr;
  ASSERT_TRUE(WIFEXITED(status)) << "the child died; stderr: " << child_stderr;
  if (WEXITSTATUS(status) == kChildNoSeccomp) GTEST_SKIP() << "seccomp filters cannot be installed here";
  ASSERT_EQ(WEXITSTATUS(status), kChildOk) << "child stderr: " << child_stderr;
  EXPECT_NE(child_stderr.find("io_uring unavailable (io_uring_setup: Operation not permitted); using epoll"),
            std::string::npos)
      << "the fallback must say why, once: " << child_stderr;
}

}  // namespace
}  // namespace surge
