//! The one WebSocket to `/ws`, kept alive for as long as the chat page is shown.
//!
//! A single task ([`run`]) owns the connection's life: connect, feed every frame to [`Chat`], and
//! on loss reconnect with exponential backoff and jitter (0.5 s doubling up to 30 s), showing the
//! wait ([`Chat::retry_in`]) so the person can [`retry_now`] instead. Browser
//! callbacks (socket events, `online`/`offline`, a 1 s tick) only push [`Event`]s into a channel,
//! so the whole lifecycle reads top-down in one place.
//!
//! Why the extra signals beyond the socket's own close event:
//! - `offline`: browsers keep a WebSocket "open" long after the network is gone (and test
//!   harnesses that emulate offline leave sockets alone), so we drop it ourselves and wait for
//!   `online` instead of retrying into a dead network.
//! - silence: the server's pings are answered by the browser without telling us, so we send our
//!   own `ping` every 20 s and give up on a socket that said nothing for 45 s.

use crate::api;
use crate::protocol::{ClientFrame, ServerFrame};
use crate::ui::state::Chat;
use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::{select, FutureExt, StreamExt};
use gloo_timers::callback::Interval;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::{
    window, window_event_listener_untyped, GetUntracked, Set, WindowListenerHandle,
};
use leptos::task::spawn_local;
use std::cell::RefCell;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

const BACKOFF_MIN_MS: f64 = 500.0;
const BACKOFF_MAX_MS: f64 = 30_000.0;
const TICK_MS: u32 = 1000;
/// Send a `ping` when we have not pinged for this long.
const PING_EVERY_MS: f64 = 20_000.0;
/// Drop a socket that has not sent us anything for this long (two pings unanswered).
const SILENT_AFTER_MS: f64 = 45_000.0;
/// Give up on a connection attempt that has not opened after this long.
const CONNECT_TIMEOUT_MS: f64 = 10_000.0;
/// After this many failed attempts in a row, check whether the session is still valid.
const CHECK_SESSION_AFTER: u32 = 3;

thread_local! {
    /// The socket while it is open: what [`transmit`] writes to.
    static OPEN: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
    /// The running connection task's handle, if the chat page is shown.
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Sends a frame if the socket is open. Returns false otherwise: the caller's state (cursors,
/// outbox) makes sure it is sent again, or is no longer needed, after the next connect.
pub fn transmit(frame: &ClientFrame) -> bool {
    OPEN.with(|open| match &*open.borrow() {
        Some(ws) if ws.ready_state() == WebSocket::OPEN => {
            ws.send_with_str(&frame.to_json()).is_ok()
        }
        _ => false,
    })
}

/// Starts the connection for `chat` (stopping any earlier one).
pub fn start(chat: Chat) {
    stop();
    let (tx, rx) = mpsc::unbounded();
    let on = |name: &str, event: Event| {
        let tx = tx.clone();
        window_event_listener_untyped(name, move |_| {
            let _ = tx.unbounded_send(event.clone());
        })
    };
    let listeners = vec![on("online", Event::Online), on("offline", Event::Offline)];
    let ticker = {
        let tx = tx.clone();
        Interval::new(TICK_MS, move || {
            let _ = tx.unbounded_send(Event::Tick);
        })
    };
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            events: tx.clone(),
            _listeners: Listeners(listeners),
            _ticker: ticker,
        })
    });
    spawn_local(run(chat, tx, rx));
}

/// Ends the wait before the next connection attempt (the "Retry now" button).
pub fn retry_now() {
    RUNNING.with(|r| {
        if let Some(running) = &*r.borrow() {
            let _ = running.events.unbounded_send(Event::RetryNow);
        }
    });
}

/// Stops the connection (the chat page is going away, e.g. on log out).
pub fn stop() {
    if let Some(running) = RUNNING.with(|r| r.borrow_mut().take()) {
        let _ = running.events.unbounded_send(Event::Stop);
    }
}

/// What wakes the connection task.
#[derive(Clone, Debug)]
enum Event {
    /// Socket number `n` opened / sent a text frame / closed.
    Opened(u32),
    Frame(u32, String),
    Closed(u32),
    Online,
    Offline,
    Tick,
    /// The person asked to try again now.
    RetryNow,
    Stop,
}

/// How one connection ended.
enum Outcome {
    Closed { was_open: bool },
    WentOffline,
    Stop,
}

async fn run(chat: Chat, tx: UnboundedSender<Event>, mut rx: UnboundedReceiver<Event>) {
    let mut failures: u32 = 0;
    let mut number: u32 = 0;
    loop {
        // Retrying into a network the browser knows is down only burns the backoff.
        if !browser_online() {
            chat.on_disconnected();
            if !wait_for_online(&mut rx).await {
                return;
            }
        }
        number += 1;
        let outcome = match Socket::open(&ws_url(), number, tx.clone()) {
            Ok(socket) => {
                let outcome = drive(&chat, &socket, number, &mut rx).await;
                OPEN.with(|open| open.borrow_mut().take());
                outcome
            }
            Err(_) => Outcome::Closed { was_open: false },
        };
        if chat.link.try_get_untracked().is_none() {
            return; // the page's state is gone
        }
        match outcome {
            Outcome::Stop => return,
            Outcome::WentOffline => {
                failures = 0;
                chat.on_disconnected();
                continue;
            }
            Outcome::Closed { was_open } => {
                if was_open {
                    failures = 0;
                }
                chat.on_disconnected();
            }
        }
        failures += 1;
        if failures >= CHECK_SESSION_AFTER {
            spawn_local(check_session());
        }
        if !sleep_or_wake(&chat, backoff_ms(failures), &mut rx).await {
            return;
        }
    }
}

/// Runs one socket until it closes, goes silent, the browser goes offline or we are stopped.
async fn drive(
    chat: &Chat,
    socket: &Socket,
    number: u32,
    rx: &mut UnboundedReceiver<Event>,
) -> Outcome {
    let started = now();
    let mut opened = false;
    let mut last_heard = started;
    let mut last_ping = started;
    while let Some(event) = rx.next().await {
        if chat.link.try_get_untracked().is_none() {
            return Outcome::Stop; // the chat page is gone; its signals with it
        }
        match event {
            Event::Opened(n) if n == number => {
                opened = true;
                last_heard = now();
                OPEN.with(|open| *open.borrow_mut() = Some(socket.ws.clone()));
                chat.on_connected();
            }
            Event::Frame(n, text) if n == number => {
                last_heard = now();
                // A frame we cannot read is logged and skipped, never fatal.
                match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(frame) => chat.on_frame(frame),
                    Err(e) => leptos::logging::warn!("unreadable frame from server: {e}"),
                }
            }
            Event::Closed(n) if n == number => return Outcome::Closed { was_open: opened },
            Event::Offline => return Outcome::WentOffline,
            Event::Stop => return Outcome::Stop,
            Event::Tick => {
                let t = now();
                chat.prune_typing(t);
                if !opened && t - started > CONNECT_TIMEOUT_MS {
                    return Outcome::Closed { was_open: false };
                }
                if opened && t - last_heard > SILENT_AFTER_MS {
                    return Outcome::Closed { was_open: true };
                }
                if opened && t - last_ping > PING_EVERY_MS {
                    last_ping = t;
                    transmit(&ClientFrame::Ping);
                }
            }
            // Events of older sockets, or `online` while we are connected.
            _ => {}
        }
    }
    Outcome::Stop
}

/// Waits for the browser's `online` event. False when stopped instead.
async fn wait_for_online(rx: &mut UnboundedReceiver<Event>) -> bool {
    while let Some(event) = rx.next().await {
        match event {
            Event::Online => return true,
            Event::Stop => return false,
            _ => {}
        }
    }
    false
}

/// Sleeps `ms`, counting the seconds down in `chat.retry_in`, and waking early when the browser
/// comes back online or the person asks to retry. False when stopped instead.
async fn sleep_or_wake(chat: &Chat, ms: u32, rx: &mut UnboundedReceiver<Event>) -> bool {
    let until = now() + f64::from(ms);
    let show = |chat: &Chat| {
        let left = ((until - now()) / 1000.0).ceil().max(0.0) as u32;
        chat.retry_in.try_set(Some(left));
    };
    show(chat);
    let mut sleep = TimeoutFuture::new(ms).fuse();
    let woke = loop {
        select! {
            _ = sleep => break true,
            event = rx.next() => match event {
                Some(Event::Online | Event::RetryNow) => break true,
                Some(Event::Tick) => show(chat),
                Some(Event::Stop) | None => break false,
                _ => {}
            },
        }
    };
    chat.retry_in.try_set(None);
    woke
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so that many
/// clients dropped at once by a restarting server do not come back in lockstep.
fn backoff_ms(failures: u32) -> u32 {
    let exp = BACKOFF_MIN_MS * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = exp.min(BACKOFF_MAX_MS);
    (capped / 2.0 + js_sys::Math::random() * capped / 2.0) as u32
}

/// A refused upgrade looks like any other failed connect, so after a few failures ask `/api/me`:
/// if the session is gone, go to the login page instead of retrying forever.
async fn check_session() {
    if let Ok(None) = api::me().await {
        let _ = window().location().set_href("/login");
    }
}

fn browser_online() -> bool {
    window().navigator().on_line()
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// `ws(s)://<this host>/ws`: same origin, so the session cookie goes along.
fn ws_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws")
}

/// A browser WebSocket whose events go into the connection task's channel, tagged with its number
/// so that late events of a replaced socket are ignored. Dropping it closes it.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
}

impl Socket {
    fn open(
        url: &str,
        number: u32,
        tx: UnboundedSender<Event>,
    ) -> Result<Self, wasm_bindgen::JsValue> {
        let ws = WebSocket::new(url)?;
        let on_open = {
            let tx = tx.clone();
            Closure::<dyn FnMut()>::new(move || {
                let _ = tx.unbounded_send(Event::Opened(number));
            })
        };
        let on_message = {
            let tx = tx.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                // The protocol is text frames only; anything else is ignored.
                if let Some(text) = e.data().as_string() {
                    let _ = tx.unbounded_send(Event::Frame(number, text));
                }
            })
        };
        // An `error` is always followed by `close`, so `close` alone ends the connection.
        let on_close = Closure::<dyn FnMut()>::new(move || {
            let _ = tx.unbounded_send(Event::Closed(number));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// What `stop` needs to end the task; dropping it removes the window listeners and the ticker.
struct Running {
    events: UnboundedSender<Event>,
    _listeners: Listeners,
    _ticker: Interval,
}

struct Listeners(Vec<WindowListenerHandle>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for handle in self.0.drain(..) {
            handle.remove();
        }
    }
}
