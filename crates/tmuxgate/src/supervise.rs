//! Crash containment: a panic anywhere is logged and counted, and the gateway's background
//! tasks that can start over do, after a backoff.
//!
//! The gateway is built with `panic = "unwind"` (Rust's default) on purpose: a panic in one
//! connection's task ends that connection (tokio catches it at the task's edge) and nothing
//! else, where `abort` would take every session's viewers down with it. What unwinding
//! costs is that a panic is silent unless someone looks; [`install_panic_hook`] makes it
//! loud (an `error` log line with where it happened, and `tmuxgate_panics_total`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Panics since the process started (`tmuxgate_panics_total`).
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// Longest wait between restarts of a task that keeps panicking.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Logs every panic as an `error` (with its location and message) and counts it, then
/// runs the hook that was there before (Rust's: the message on stderr).
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(%location, %thread, panic = %message,
            "a panic: the task it happened in was stopped, the gateway goes on");
        previous(info);
    }));
}

/// Runs the task `make` builds until `cancel`; if it panics, logs it and starts a new one
/// after `backoff` (doubling up to [`MAX_BACKOFF`]). A task that returns is not restarted.
pub fn spawn_supervised<F, Fut>(
    name: &'static str,
    cancel: CancellationToken,
    backoff: Duration,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut wait = backoff;
        loop {
            let run = tokio::spawn(make());
            let abort = run.abort_handle();
            let ended = tokio::select! {
                ended = run => ended,
                () = cancel.cancelled() => {
                    abort.abort();
                    return;
                }
            };
            match ended {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    tracing::error!(
                        task = name,
                        restart_in_ms = wait.as_millis() as u64,
                        "a background task panicked; restarting it"
                    );
                }
                Err(_) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_one_that_returns_is_not() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = spawn_supervised(
            "test",
            CancellationToken::new(),
            Duration::from_millis(1),
            move || {
                let counted = counted.clone();
                async move {
                    // Panics twice, then finishes.
                    if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("on purpose");
                    }
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the supervisor ends once the task returns")
            .expect("the supervisor itself never panics");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_hook_counts_a_panic_and_keeps_the_process_going() {
        install_panic_hook();
        let before = PANICS.load(Ordering::Relaxed);
        let joined = std::thread::spawn(|| panic!("on purpose")).join();
        assert!(joined.is_err(), "the thread panicked");
        assert!(PANICS.load(Ordering::Relaxed) > before);
        let text = crate::metrics::Stats::default().render_prometheus(0, 0);
        assert!(text.contains("tmuxgate_panics_total "), "{text}");
    }

    #[tokio::test]
    async fn cancelling_stops_a_running_task() {
        let cancel = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = std::sync::Mutex::new(Some(tx));
        let task = spawn_supervised(
            "test",
            cancel.clone(),
            Duration::from_millis(1),
            move || {
                let guard = tx.lock().unwrap().take();
                async move {
                    // Holds the sender until aborted: dropping it tells the test.
                    let _held = guard;
                    std::future::pending::<()>().await;
                }
            },
        );
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the supervisor ends")
            .expect("no panic");
        assert!(rx.await.is_err(), "the task was dropped");
    }
}
