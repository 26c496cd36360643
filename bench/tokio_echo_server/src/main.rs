// tokio_echo_server: the Tokio 1.24 peer, a current_thread runtime (the fair one-thread peer), one task per
// connection doing read then write_all, the way Tokio's own echo example does. It speaks the protocol of
// bench/servers/server_common.h: prints "port N", answers "stats" on stdin with the process's CPU time and
// memory, exits when stdin closes.
//
//   tokio_echo_server [--port=0] [--cpu=0] [--buffer=65536]
use std::io::{BufRead, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn flag(name: &str, fallback: i64) -> i64 {
    let prefix = format!("--{}=", name);
    for argument in std::env::args().skip(1) {
        if let Some(value) = argument.strip_prefix(&prefix) {
            return value.parse().unwrap_or_else(|_| {
                eprintln!("tokio_echo_server: --{} must be a whole number, got '{}'", name, value);
                std::process::exit(2)
            });
        }
    }
    fallback
}

fn pin_current_thread(cpu: i64) {
    if cpu < 0 || cpu as usize >= std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) {
        return;
    }
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn raise_fd_limit() {
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn stats_line() -> String {
    let (user_us, sys_us) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        let micros = |t: libc::timeval| t.tv_sec as i64 * 1_000_000 + t.tv_usec as i64;
        (micros(usage.ru_utime), micros(usage.ru_stime))
    };
    let rss_pages: i64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|field| field.parse().ok()))
        .unwrap_or(-1);
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64;
    let heap = unsafe { libc::mallinfo2() };
    format!(
        "stats user_us={} sys_us={} rss_bytes={} heap_bytes={}\n",
        user_us,
        sys_us,
        rss_pages * page_size,
        heap.uordblks + heap.hblkhd
    )
}

fn start_control_thread() {
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(text) if text.starts_with("stats") => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(stats_line().as_bytes());
                    let _ = out.flush();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(0); // stdin closed: the harness is done with this server
    });
}

async fn echo_session(mut socket: tokio::net::TcpStream, buffer_size: usize) {
    let _ = socket.set_nodelay(true);
    // Not zeroed (read_buf fills spare capacity), like the C++ servers' buffers.
    let mut buffer: Vec<u8> = Vec::with_capacity(buffer_size);
    loop {
        buffer.clear();
        match socket.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if socket.write_all(&buffer).await.is_err() {
            return;
        }
    }
}

fn main() {
    let port = flag("port", 0);
    let cpu = flag("cpu", -1);
    let buffer_size = flag("buffer", 64 * 1024).max(1) as usize;
    raise_fd_limit();
    pin_current_thread(cpu);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap_or_else(|error| {
        eprintln!("tokio_echo_server: runtime: {}", error);
        std::process::exit(1)
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port as u16)).await.unwrap_or_else(|error| {
            eprintln!("tokio_echo_server: listen: {}", error);
            std::process::exit(1)
        });
        start_control_thread();
        println!("port {}", listener.local_addr().map(|a| a.port()).unwrap_or(0));
        let _ = std::io::stdout().flush();
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(echo_session(socket, buffer_size));
            }
        }
    });
}
