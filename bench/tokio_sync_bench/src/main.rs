// tokio_sync_bench: the Tokio 1.24 peer of bench/sync_compare.py for coordination primitives (tokio::sync:
// mpsc bounded and unbounded, oneshot, Mutex, Semaphore). Speaks the protocol written down at the top of
// bench/sync_compare.py:
//
//   tokio_sync_bench --workload=NAME --ops=N
//
// runs workload NAME once (a short warm-up, then N timed operations) and prints one JSON line; an unknown
// workload exits 3 with nothing on stdout.
//
// One-thread workloads run in one task spawned on a `current_thread` runtime whose thread is pinned to
// CPU 0. Two-thread workloads run on a 2-worker `multi_thread` runtime; `on_thread_start` pins the first
// worker thread started to CPU 0 and the second to CPU 1 (libc::sched_setaffinity). Tokio has no API to put
// a task on a chosen worker: the tasks are spawned from outside the runtime (its injection queue) and
// each reports the CPU it finished on (`consumer_cpu`, `producer_cpus`, `task_cpus` in the JSON line), so
// the placement Tokio chose is visible (Tokio 1.24 keeps a woken task on the waking worker, so producer and
// consumer tend to end up on one worker).
//
// --placement=pinned_runtimes (a variant, run as its own row) runs the two-thread workloads instead on two
// `current_thread` runtimes, one per thread (CPU 0 and CPU 1), sharing the channel or mutex: producers on
// CPU 0 and the consumer on CPU 1; for mutex_contended 2 tasks on each. This is the placement the
// protocol asks for, which the multi_thread runtime cannot be told to keep. With it the one-thread
// workloads exit 3 (not offered: they would repeat the default's).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};

const BOUNDED_CAPACITY: usize = 1024;

fn usage_error(message: &str) -> ! {
    eprintln!("tokio_sync_bench: {}", message);
    eprintln!("usage: tokio_sync_bench --workload=NAME --ops=N [--placement=multi_thread|pinned_runtimes]");
    std::process::exit(2)
}

fn pin_current_thread(cpu: usize) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpus, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn current_cpu() -> i32 {
    unsafe { libc::sched_getcpu() }
}

// The process's CPU time (every thread, user + system), in seconds. On a busy machine the wall time of a
// run includes the time its threads waited for a CPU; this does not.
fn process_cpu_seconds() -> f64 {
    unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now);
        now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
    }
}

// A timed section: wall seconds and process CPU seconds.
struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch { wall: Instant::now(), cpu: process_cpu_seconds() }
    }
    fn stop(&self) -> (f64, f64) {
        (self.wall.elapsed().as_secs_f64(), process_cpu_seconds() - self.cpu)
    }
}

fn warmup_ops(ops: u64) -> u64 {
    (ops / 10).clamp(1, 200_000)
}

// ---- one thread, one task -------------------------------------------------------------------------------

async fn channel_bounded(ops: u64) -> u64 {
    let (tx, mut rx) = mpsc::channel::<u64>(BOUNDED_CAPACITY);
    let mut sum = 0u64;
    for i in 0..ops {
        tx.send(i).await.unwrap();
        sum = sum.wrapping_add(rx.recv().await.unwrap());
    }
    sum
}

async fn channel_unbounded(ops: u64) -> u64 {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let mut sum = 0u64;
    for i in 0..ops {
        tx.send(i).unwrap(); // Tokio's unbounded send is not async: it never waits
        sum = sum.wrapping_add(rx.recv().await.unwrap());
    }
    sum
}

async fn oneshot_roundtrip(ops: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..ops {
        let (tx, rx) = oneshot::channel::<u64>();
        tx.send(i).unwrap();
        sum = sum.wrapping_add(rx.await.unwrap());
    }
    sum
}

async fn mutex_uncontended(ops: u64) -> u64 {
    let mutex = Mutex::new(0u64);
    for _ in 0..ops {
        let mut guard = mutex.lock().await;
        *guard += 1;
    }
    let count = *mutex.lock().await;
    count
}

async fn semaphore(ops: u64) -> u64 {
    let semaphore = Semaphore::new(1);
    let mut sum = 0u64;
    for _ in 0..ops {
        let permit = semaphore.acquire().await.unwrap(); // one permit; dropping it releases it
        sum += 1;
        drop(std::hint::black_box(permit));
    }
    sum
}

async fn one_thread(workload: &str, ops: u64) -> u64 {
    match workload {
        "channel_bounded" => channel_bounded(ops).await,
        "channel_unbounded" => channel_unbounded(ops).await,
        "oneshot" => oneshot_roundtrip(ops).await,
        "mutex_uncontended" => mutex_uncontended(ops).await,
        "semaphore" => semaphore(ops).await,
        _ => unreachable!(),
    }
}

fn run_one_thread(workload: &'static str, ops: u64) -> ((f64, f64), String) {
    pin_current_thread(0);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move {
        // One task spawned on the runtime, not the block_on future itself.
        tokio::spawn(async move {
            std::hint::black_box(one_thread(workload, warmup_ops(ops)).await);
            let watch = Stopwatch::start();
            std::hint::black_box(one_thread(workload, ops).await);
            (watch.stop(), String::new())
        })
        .await
        .unwrap()
    })
}

// ---- two worker threads ---------------------------------------------------------------------------------

fn two_worker_runtime() -> tokio::runtime::Runtime {
    let started = Arc::new(AtomicUsize::new(0));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            // The two workers start when the runtime is built (the blocking pool, unused here, would
            // start more threads later; they would land on CPU 0 and 1 in turn).
            pin_current_thread(started.fetch_add(1, Ordering::Relaxed) % 2);
        })
        .build()
        .unwrap()
}

// Producers send `ops / producers` messages each into one bounded(1024) channel; one consumer receives all.
async fn cross(producers: u64, ops: u64) -> String {
    let per_producer = ops / producers;
    let (tx, mut rx) = mpsc::channel::<u64>(BOUNDED_CAPACITY);
    let consumer = tokio::spawn(async move {
        let mut received = 0u64;
        let mut sum = 0u64;
        while let Some(value) = rx.recv().await {
            received += 1;
            sum = sum.wrapping_add(value);
        }
        (received, std::hint::black_box(sum), current_cpu())
    });
    let mut handles = Vec::new();
    for _ in 0..producers {
        let tx = tx.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_producer {
                tx.send(i).await.unwrap();
            }
            current_cpu()
        }));
    }
    drop(tx);
    let mut producer_cpus = Vec::new();
    for handle in handles {
        producer_cpus.push(handle.await.unwrap().to_string());
    }
    let (received, _, consumer_cpu) = consumer.await.unwrap();
    assert_eq!(received, per_producer * producers);
    format!(", \"consumer_cpu\": {}, \"producer_cpus\": [{}]", consumer_cpu, producer_cpus.join(", "))
}

// Four tasks each take the lock, increment, release, `ops / 4` times.
async fn mutex_contended(ops: u64) -> String {
    const TASKS: u64 = 4;
    let per_task = ops / TASKS;
    let mutex = Arc::new(Mutex::new(0u64));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let mutex = mutex.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                *mutex.lock().await += 1;
            }
            current_cpu()
        }));
    }
    let mut cpus = Vec::new();
    for handle in handles {
        cpus.push(handle.await.unwrap().to_string());
    }
    assert_eq!(*mutex.lock().await, per_task * TASKS);
    format!(", \"task_cpus\": [{}]", cpus.join(", "))
}

async fn two_threads(workload: &str, ops: u64) -> String {
    match workload {
        "channel_cross_1p" => cross(1, ops).await,
        "channel_cross_4p" => cross(4, ops).await,
        "mutex_contended" => mutex_contended(ops).await,
        _ => unreachable!(),
    }
}

fn run_two_threads(workload: &'static str, ops: u64) -> ((f64, f64), String) {
    pin_current_thread(0); // the main thread only waits in block_on
    let runtime = two_worker_runtime();
    runtime.block_on(async move {
        two_threads(workload, warmup_ops(ops) * 4).await;
        let watch = Stopwatch::start();
        let extra = two_threads(workload, ops).await;
        (watch.stop(), extra)
    })
}

// Runs `tasks(0)` on a current_thread runtime on a thread pinned to CPU 0 and `tasks(1)` on another pinned
// to CPU 1, starting both together; returns (wall, CPU) seconds from the start to both finishing.
fn on_two_runtimes<F, Fut>(tasks: F) -> (f64, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let tasks = Arc::new(tasks);
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|index| {
            let tasks = tasks.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                pin_current_thread(index);
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                barrier.wait();
                runtime.block_on(tasks(index));
            })
        })
        .collect();
    barrier.wait();
    let watch = Stopwatch::start();
    for thread in threads {
        thread.join().unwrap();
    }
    watch.stop()
}

fn cross_two_runtimes(producers: u64, ops: u64) -> (f64, f64) {
    let per_producer = ops / producers;
    let (tx, rx) = mpsc::channel::<u64>(BOUNDED_CAPACITY);
    let tx = std::sync::Mutex::new(Some(tx));
    let rx = std::sync::Mutex::new(Some(rx));
    on_two_runtimes(move |index| {
        let tx = if index == 0 { tx.lock().unwrap().take() } else { None };
        let rx = if index == 1 { rx.lock().unwrap().take() } else { None };
        async move {
            if index == 0 {
                let tx = tx.unwrap();
                let handles: Vec<_> = (0..producers)
                    .map(|_| {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            for i in 0..per_producer {
                                tx.send(i).await.unwrap();
                            }
                        })
                    })
                    .collect();
                drop(tx);
                for handle in handles {
                    handle.await.unwrap();
                }
            } else {
                let mut rx = rx.unwrap();
                let mut received = 0u64;
                while let Some(value) = rx.recv().await {
                    received += 1;
                    std::hint::black_box(value);
                }
                assert_eq!(received, per_producer * producers);
            }
        }
    })
}

fn mutex_contended_two_runtimes(ops: u64) -> (f64, f64) {
    let per_task = ops / 4;
    let mutex = Arc::new(Mutex::new(0u64));
    let shared = mutex.clone();
    let timing = on_two_runtimes(move |_| {
        let mutex = shared.clone();
        async move {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let mutex = mutex.clone();
                    tokio::spawn(async move {
                        for _ in 0..per_task {
                            *mutex.lock().await += 1;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }
    });
    assert_eq!(*mutex.try_lock().unwrap(), per_task * 4);
    timing
}

fn run_two_runtimes(workload: &'static str, ops: u64) -> ((f64, f64), String) {
    pin_current_thread(0); // the main thread only waits
    let run = |ops: u64| match workload {
        "channel_cross_1p" => cross_two_runtimes(1, ops),
        "channel_cross_4p" => cross_two_runtimes(4, ops),
        "mutex_contended" => mutex_contended_two_runtimes(ops),
        _ => unreachable!(),
    };
    run(warmup_ops(ops) * 4);
    (run(ops), String::new())
}

fn main() {
    let mut workload: Option<String> = None;
    let mut ops: u64 = 1_000_000;
    let mut two_runtimes = false;
    for argument in std::env::args().skip(1) {
        if argument == "--help" || argument == "-h" {
            println!("tokio_sync_bench --workload=NAME --ops=N [--placement=multi_thread|pinned_runtimes]: see");
            println!("bench/sync_compare.py for the protocol, src/main.rs for the placements");
            return;
        } else if let Some(value) = argument.strip_prefix("--workload=") {
            workload = Some(value.to_string());
        } else if let Some(value) = argument.strip_prefix("--placement=") {
            match value {
                "multi_thread" => two_runtimes = false,
                "pinned_runtimes" => two_runtimes = true,
                _ => usage_error(&format!("--placement must be multi_thread or pinned_runtimes, got '{}'", value)),
            }
        } else if let Some(value) = argument.strip_prefix("--ops=") {
            ops = value.parse().unwrap_or_else(|_| usage_error(&format!("--ops must be a whole number, got '{}'", value)));
            if ops == 0 {
                usage_error("--ops must be at least 1");
            }
        } else {
            usage_error(&format!("unknown argument '{}'", argument));
        }
    }
    let workload: &'static str = match workload.as_deref() {
        None => usage_error("--workload is required"),
        Some(name) => match name {
            "channel_bounded" => "channel_bounded",
            "channel_unbounded" => "channel_unbounded",
            "oneshot" => "oneshot",
            "mutex_uncontended" => "mutex_uncontended",
            "semaphore" => "semaphore",
            "channel_cross_1p" => "channel_cross_1p",
            "channel_cross_4p" => "channel_cross_4p",
            "mutex_contended" => "mutex_contended",
            _ => std::process::exit(3), // not offered: nothing on stdout
        },
    };
    let two_threads = if two_runtimes { run_two_runtimes } else { run_two_threads };
    let (ops, ((seconds, cpu_seconds), extra)) = match workload {
        "channel_cross_1p" => (ops, two_threads(workload, ops)),
        "channel_cross_4p" | "mutex_contended" => {
            let ops = (ops / 4).max(1) * 4; // N/4 each
            (ops, two_threads(workload, ops))
        }
        _ if two_runtimes => std::process::exit(3), // the variant is about the two-thread workloads only
        _ => (ops, run_one_thread(workload, ops)),
    };
    println!(
        "{{\"impl\": \"tokio\", \"workload\": \"{}\", \"ops\": {}, \"seconds\": {:.9}, \"ns_per_op\": {:.3}, \"ops_per_s\": {:.1}, \"cpu_seconds\": {:.9}, \"runtime\": \"{}\"{}}}",
        workload,
        ops,
        seconds,
        seconds * 1e9 / ops as f64,
        ops as f64 / seconds,
        cpu_seconds,
        if !(workload.starts_with("channel_cross") || workload == "mutex_contended") {
            "current_thread"
        } else if two_runtimes {
            "2 x current_thread, pinned"
        } else {
            "multi_thread(2)"
        },
        extra
    );
}
