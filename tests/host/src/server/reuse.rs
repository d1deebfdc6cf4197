//! Instance reuse for WASIp3 components, as Spin 4 does it (`crates/trigger-http/src/server.rs`
//! with wasmtime-wasi-http's `handler::ProxyHandler`): a request goes to a live instance that is
//! *available*, else to a new one. Available, as in `ProxyHandler`'s workers: it has served fewer
//! than `max_instance_reuse_count` requests, runs fewer than
//! `max_instance_concurrent_reuse_count`, and either runs none or its event loop has gone idle
//! since it last took one (every request it runs waits on I/O). A request it just took is assumed
//! to be busy with the CPU until then, so a burst spreads over new instances instead of queueing
//! behind one guest's code. Among available instances the oldest takes it (`ProxyHandler` gives
//! it to whichever worker pops its shared queue first). An instance with no request and no guest
//! task left for 1 s (Spin's default `--idle-instance-timeout`) is dropped, and so is one that
//! reached its reuse count, once its last request and guest task are done.
//! There is no request timeout (Spin's default). WASIp2 components never come here: they get a
//! fresh instance per request (`invoke.rs`), as in Spin.
//!
//! Each instance is one tokio task that owns its `Store` and runs its event loop
//! (`Store::run_concurrent`): the requests it accepted run there side by side, and so does
//! whatever the guest still does after answering. The pool counts, in the app's `running`, every
//! instance that has a request or a guest task in progress, so `SpinHost::settled` waits for work
//! a guest does after its answer is out. It does not prepare requests or answers (see
//! `invoke_p3.rs`).

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use wasmtime::component::Accessor;
use wasmtime::Store;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};

use super::instance::InstanceState;
use super::invoke::Running;
use crate::runtime::{engine, LogSink};

/// Spin 4's default `--idle-instance-timeout`.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);

/// How far an instance is reused (`spin up --max-instance-reuse-count` and
/// `--max-instance-concurrent-reuse-count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseLimits {
    /// Requests one instance serves in its life.
    pub max_instance_reuse_count: usize,
    /// Requests one instance serves at the same time.
    pub max_instance_concurrent_reuse_count: usize,
}

/// One request's work inside an instance: given the instance's store and its export, it runs
/// the handler and delivers the answer itself.
pub type Task = Box<
    dyn for<'a> FnOnce(
            &'a Accessor<InstanceState>,
            &'a Service,
        ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
        + Send,
>;

/// An instance that still takes requests: the pool's side of it.
struct Slot {
    id: u64,
    tasks: mpsc::UnboundedSender<Task>,
    /// Requests handed over and not finished yet (some may still be in the channel).
    in_flight: usize,
    /// Requests handed over in its life.
    accepted: usize,
    /// Its event loop went idle after it last took a request: all its requests wait on I/O.
    waiting_on_io: Arc<AtomicBool>,
}

impl Slot {
    /// `ProxyHandler`'s `Worker::set_available` condition (the reuse count is not checked here:
    /// an instance that reached it has already left `Slots::open`).
    fn available(&self, limits: ReuseLimits) -> bool {
        self.in_flight < limits.max_instance_concurrent_reuse_count
            && (self.in_flight == 0 || self.waiting_on_io.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Slots {
    open: Vec<Slot>,
    next_id: u64,
}

/// The live instances of one WASIp3 component.
pub struct InstancePool {
    pre: ServicePre<InstanceState>,
    limits: ReuseLimits,
    slots: Mutex<Slots>,
    running: Arc<AtomicUsize>,
    logs: LogSink,
}

impl InstancePool {
    pub fn new(
        pre: ServicePre<InstanceState>,
        limits: ReuseLimits,
        running: Arc<AtomicUsize>,
        logs: LogSink,
    ) -> Arc<InstancePool> {
        Arc::new(InstancePool {
            pre,
            limits,
            slots: Mutex::default(),
            running,
            logs,
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `task` in an instance with room for it, or in a new instance whose state
    /// `new_state` makes. A task whose instance fails (a trap, or instantiation) is dropped,
    /// which its request sees as an answer that never came.
    pub fn dispatch(self: &Arc<Self>, task: Task, new_state: impl FnOnce() -> InstanceState) {
        let mut slots = self.slots();
        let limits = self.limits;
        let room = slots.open.iter().position(|s| s.available(limits));
        if let Some(index) = room {
            let slot = &mut slots.open[index];
            slot.in_flight += 1;
            slot.accepted += 1;
            // Busy until its event loop says otherwise, as `ProxyHandler`'s `accept_task`.
            slot.waiting_on_io.store(false, Ordering::Relaxed);
            // A closed channel (the instance just failed) drops the task: its request fails.
            let _ = slot.tasks.send(task);
            if slot.accepted >= limits.max_instance_reuse_count {
                // Dropping the sender tells the instance to end once its work is done.
                slots.open.remove(index);
            }
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = slots.next_id;
        slots.next_id += 1;
        let waiting_on_io = Arc::new(AtomicBool::new(false));
        if limits.max_instance_reuse_count > 1 {
            slots.open.push(Slot {
                id,
                tasks: tx,
                in_flight: 1,
                accepted: 1,
                waiting_on_io: waiting_on_io.clone(),
            });
        }
        drop(slots);
        let state = new_state();
        let pool = self.clone();
        tokio::spawn(async move {
            let outcome = pool.run_instance(id, state, task, rx, &waiting_on_io).await;
            pool.close(id);
            if let Err(e) = outcome {
                pool.logs.host_line(&format!("instance ended: {e:#}"));
            }
        });
    }

    /// One request of instance `id` finished.
    fn finished(&self, id: u64) {
        if let Some(slot) = self.slots().open.iter_mut().find(|s| s.id == id) {
            slot.in_flight -= 1;
        }
    }

    /// Takes instance `id` out of the pool for good.
    fn close(&self, id: u64) {
        self.slots().open.retain(|s| s.id != id);
    }

    /// Takes idle instance `id` out of the pool unless a request was handed to it meanwhile.
    /// `in_flight` only changes under the lock, so at 0 nothing is on its way to it either.
    fn close_if_idle(&self, id: u64) -> bool {
        let mut slots = self.slots();
        match slots.open.iter().position(|s| s.id == id) {
            Some(index) if slots.open[index].in_flight > 0 => false,
            Some(index) => {
                slots.open.remove(index);
                true
            }
            None => true,
        }
    }

    /// Instantiates the component and serves the requests that come until the instance has
    /// nothing left to do and is closed (reuse count reached, or idle too long). Each time its
    /// event loop has nothing left to run, it sets `waiting_on_io`.
    async fn run_instance(
        &self,
        id: u64,
        state: InstanceState,
        first: Task,
        mut incoming: mpsc::UnboundedReceiver<Task>,
        waiting_on_io: &AtomicBool,
    ) -> Result<()> {
        // Counted from the start: the first request is under way.
        let mut busy = Some(Running::start(&self.running));
        let mut store = Store::new(engine(), state);
        let service = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        let service = &service;
        let event_loop = store.run_concurrent(async |accessor| {
            let mut tasks = FuturesUnordered::new();
            tasks.push(first(accessor, service));
            let mut closed = false;
            let mut idle = pin!(tokio::time::sleep(Duration::MAX));
            let mut idle_armed = false;
            poll_fn(|cx| loop {
                while let Poll::Ready(Some(())) = tasks.poll_next_unpin(cx) {
                    self.finished(id);
                }
                if !closed {
                    match incoming.poll_recv(cx) {
                        Poll::Ready(Some(task)) => {
                            // Counted before the request's own count can end, so
                            // `running` never reads 0 while this instance works.
                            busy.get_or_insert_with(|| Running::start(&self.running));
                            waiting_on_io.store(false, Ordering::Relaxed);
                            tasks.push(task(accessor, service));
                            idle_armed = false;
                            continue;
                        }
                        Poll::Ready(None) => closed = true,
                        Poll::Pending => {}
                    }
                }
                // A guest task still running after its answer keeps the instance alive and
                // counted, as it keeps Spin's worker alive.
                if !tasks.is_empty() || accessor.poll_no_interesting_tasks(cx).is_pending() {
                    idle_armed = false;
                    return Poll::Pending;
                }
                busy = None;
                if closed {
                    return Poll::Ready(());
                }
                if !idle_armed {
                    let deadline = tokio::time::Instant::now() + IDLE_INSTANCE_TIMEOUT;
                    idle.as_mut().reset(deadline);
                    idle_armed = true;
                }
                if idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if self.close_if_idle(id) {
                    return Poll::Ready(());
                }
                // A request arrived as the timer fired: it is in the channel.
                idle_armed = false;
            })
            .await
        });
        let mut event_loop = pin!(event_loop);
        poll_fn(|cx| {
            let poll = event_loop.as_mut().poll(cx);
            if poll.is_pending() {
                // No guest code is ready to run: `ProxyHandler` sets `accept_concurrent` here.
                waiting_on_io.store(true, Ordering::Relaxed);
            }
            poll
        })
        .await
        .map_err(|e| anyhow!("{e:?}"))
    }
}
