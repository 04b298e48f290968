//! Crash containment: a panic anywhere is logged and counted, and the gateway's background
//! tasks that can start over do, after a backoff.
//!
//! The gateway is built with `panic = "unwind"` (Rust's default) on purpose: a panic in one
//! connection's task ends that connection (tokio catches it at the task's edge) and nothing
//! else, where `abort` would take every session's viewers down with it. What unwinding
//! costs is that a panic is silent unless someone looks; [`install_panic_hook`] makes it
//! loud (an `error` log line with where it happened, and `tmuxgate_panics_total`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Panics since the process started (`tmuxgate_panics_total`).
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// The first wait before a task that panicked is started again.
pub const RESTART_BACKOFF: Duration = Duration::from_secs(1);

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

/// What a run of a task started by [`spawn_supervised_with`] gets.
pub struct Resumed<S> {
    /// The task's state, locked for as long as the run lasts. A run that panicked left it
    /// as it was when it panicked (a tokio mutex is not poisoned).
    pub state: tokio::sync::OwnedMutexGuard<S>,
    /// Whether an earlier run panicked: this one may have to catch up on what that one
    /// was in the middle of.
    pub restarted: bool,
}

/// [`spawn_supervised`] for a task whose state must outlive a panic: the channels it reads,
/// what it has not passed on yet. Each run gets `state` ([`Resumed`]). Without `cancel`,
/// the task is restarted until it returns (its channels close).
pub fn spawn_supervised_with<S, F, Fut>(
    name: &'static str,
    cancel: Option<CancellationToken>,
    backoff: Duration,
    state: S,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    S: Send + 'static,
    F: Fn(Resumed<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let state = Arc::new(tokio::sync::Mutex::new(state));
    let make = Arc::new(make);
    let started = AtomicBool::new(false);
    spawn_supervised(name, cancel.unwrap_or_default(), backoff, move || {
        let (state, make) = (state.clone(), make.clone());
        let restarted = started.swap(true, Ordering::Relaxed);
        async move {
            let state = state.lock_owned().await;
            make(Resumed { state, restarted }).await;
        }
    })
}

/// Runs `task`; if it panics, runs `after_panic` (which cleans up what the task would have
/// on its way out), for a task that cannot simply start over.
pub fn spawn_contained<T, C>(name: &'static str, task: T, after_panic: C)
where
    T: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = tokio::spawn(task).await
            && e.is_panic()
        {
            tracing::error!(task = name, "a task panicked; cleaning up after it");
            after_panic.await;
        }
    });
}

/// Faults injected into a running gateway, for the fault tests. A test arms a target
/// (`hub:SESSION_ID`, `fleet:INSTANCE`), and the task that checks that target next panics
/// there, once. Or it holds one (`fleet-outbox:INSTANCE`), and the task waits there until
/// the [`faults::Hold`] is dropped. While nothing is armed or held, a check is one atomic
/// load.
#[doc(hidden)]
pub mod faults {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard};

    use tokio::sync::Semaphore;

    static ANY: AtomicBool = AtomicBool::new(false);
    static FAULTS: Mutex<Faults> = Mutex::new(Faults {
        armed: Vec::new(),
        held: Vec::new(),
    });

    struct Faults {
        armed: Vec<String>,
        /// Closed when released; never has a permit.
        held: Vec<(String, Arc<Semaphore>)>,
    }

    fn faults() -> MutexGuard<'static, Faults> {
        FAULTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(faults: &Faults) {
        let any = !faults.armed.is_empty() || !faults.held.is_empty();
        ANY.store(any, Ordering::Release);
    }

    /// Has the next check of `target` panic.
    pub fn arm(target: impl Into<String>) {
        let mut faults = faults();
        faults.armed.push(target.into());
        update(&faults);
    }

    /// Whether `target` is armed still (its task has not checked it since).
    pub fn is_armed(target: &str) -> bool {
        faults().armed.iter().any(|t| t == target)
    }

    /// Panics if `target` is armed (and disarms it).
    pub(crate) fn check(target: impl FnOnce() -> String) {
        if !ANY.load(Ordering::Acquire) {
            return;
        }
        let target = target();
        let fire = {
            let mut faults = faults();
            let found = faults.armed.iter().position(|t| *t == target);
            let fire = found.map(|i| faults.armed.swap_remove(i)).is_some();
            update(&faults);
            fire
        };
        assert!(!fire, "injected fault: {target}");
    }

    /// Stops every task at its waits on `target` until the returned hold is dropped.
    pub fn hold(target: impl Into<String>) -> Hold {
        let gate = Arc::new(Semaphore::new(0));
        let mut faults = faults();
        faults.held.push((target.into(), gate.clone()));
        update(&faults);
        Hold(gate)
    }

    /// Waits while `target` is held.
    pub(crate) async fn wait(target: impl FnOnce() -> String) {
        if !ANY.load(Ordering::Acquire) {
            return;
        }
        let target = target();
        let gate = faults()
            .held
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, gate)| gate.clone());
        if let Some(gate) = gate {
            // Never a permit: this ends when the hold closes the gate.
            let _ = gate.acquire().await;
        }
    }

    /// A target held (see [`hold`]) until this is dropped.
    #[must_use = "the target is released when this is dropped"]
    pub struct Hold(Arc<Semaphore>);

    impl Drop for Hold {
        fn drop(&mut self) {
            let mut faults = faults();
            faults.held.retain(|(_, gate)| !Arc::ptr_eq(gate, &self.0));
            update(&faults);
            self.0.close();
        }
    }
}

#[cfg(test)]
mod tests {
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
        let text = crate::metrics::Stats::default().render_prometheus(Default::default());
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

    #[tokio::test]
    async fn a_restarted_task_keeps_its_state_and_knows_it_restarted() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<(u32, bool)>();
        let cancel = CancellationToken::new();
        let task = spawn_supervised_with(
            "test",
            Some(cancel.clone()),
            Duration::from_millis(1),
            rx,
            move |mut run: Resumed<tokio::sync::mpsc::UnboundedReceiver<u32>>| {
                let seen = seen_tx.clone();
                async move {
                    while let Some(n) = run.state.recv().await {
                        // The third message kills the run that reads it.
                        assert_ne!(n, 3, "on purpose");
                        let _ = seen.send((n, run.restarted));
                    }
                }
            },
        );
        for n in 1..=5 {
            tx.send(n).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 4 {
            let next = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await;
            got.push(next.expect("every message but the fatal one").unwrap());
        }
        // The receiver survived the panic: nothing after the fatal message was lost.
        assert_eq!(got, [(1, false), (2, false), (4, true), (5, true)]);
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the run returns once the channel closes: no restart")
            .expect("no panic in the supervisor");
    }

    #[tokio::test]
    async fn a_contained_task_that_panics_is_cleaned_up_after_and_one_that_returns_is_not() {
        let (tx, rx) = tokio::sync::oneshot::channel::<&str>();
        spawn_contained("test", async { panic!("on purpose") }, async move {
            let _ = tx.send("cleaned");
        });
        let cleaned = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert_eq!(cleaned.expect("in time"), Ok("cleaned"));

        let (tx, rx) = tokio::sync::oneshot::channel::<&str>();
        spawn_contained("test", async {}, async move {
            let _ = tx.send("cleaned");
        });
        let after = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert!(after.expect("the cleanup is dropped").is_err(), "not run");
    }
}
