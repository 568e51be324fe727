//! Server-sent events for the Pending Requests page: each new pending request for
//! the signed-in owner (from `Store::subscribe`, `StoreEvent::Pending`) is pushed
//! as it is recorded, so it appears without a reload.
//!
//! The stream does not count as activity: when the session idles out the stream
//! sends `signed-out` and ends, and the page goes to the sign-in form.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::store::StoreEvent;

use super::error::ApiError;
use super::session::{self, SessionInfo};
use super::AppState;

/// How often the stream re-checks that its session is still signed in.
const SESSION_CHECK: Duration = Duration::from_secs(1);

/// `GET /api/v1/me/pending/events`.
pub async fn pending_events(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let Some(id) = session::cookie(&headers, session::COOKIE) else {
        return ApiError::unauthorized().into_response();
    };
    let Ok(info) = st.sessions.get(&id, false) else {
        return ApiError::unauthorized().into_response();
    };
    Sse::new(stream_for(st, info))
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Cursor {
    st: AppState,
    info: SessionInfo,
    rx: tokio::sync::broadcast::Receiver<StoreEvent>,
    tick: tokio::time::Interval,
    stopping: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

fn stream_for(st: AppState, info: SessionInfo) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = st.store.subscribe();
    let mut tick = tokio::time::interval(SESSION_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = st.stop.subscribe();
    let cursor = Cursor {
        st,
        info,
        rx,
        tick,
        stopping,
        done: false,
    };
    stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            if *c.stopping.borrow() {
                return None;
            }
            tokio::select! {
                changed = c.stopping.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                ev = c.rx.recv() => match ev {
                    Ok(StoreEvent::Pending(req)) if req.owner == c.info.aor => {
                        let data = serde_json::to_string(&req).unwrap_or_default();
                        return Some((Ok(Event::default().event("pending").data(data)), c));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "pending event stream lagged; the page reloads");
                        return Some((Ok(Event::default().event("reload").data("lagged")), c));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = c.tick.tick() => {
                    if c.st.sessions.get(&c.info.id, false).is_err() {
                        c.done = true;
                        return Some((Ok(Event::default().event("signed-out").data("idle")), c));
                    }
                }
            }
        }
    })
}
