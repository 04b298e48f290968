//! Typed helpers on [`Client`]: one method per request type, returning the decoded success
//! data or [`ClientError::Server`] with the response's `errorCode`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tmuxgate_protocol::request::{
    AttachMode, Auth, ChannelRef, Credential, Heartbeat, Request, SessionAttach, SessionCreate,
    SessionOptions, SessionRef, SessionResize, SessionShare, SessionUnshare, TerminalInput,
};
use tmuxgate_protocol::response::{Attached, AuthReply, HeartbeatReply, SessionInfo, SessionList};

use crate::error::{into_data, into_typed};
use crate::{Attachment, Client, ClientError};

impl Client {
    /// `session-create` with a name and a size.
    pub async fn create_session(
        &self,
        name: &str,
        cols: u16,
        rows: u16,
    ) -> Result<SessionInfo, ClientError> {
        let options = SessionOptions {
            cols: Some(cols),
            rows: Some(rows),
            cwd: None,
            ..SessionOptions::default()
        };
        self.create_session_with(SessionCreate {
            name: name.into(),
            options,
        })
        .await
    }

    /// `session-create` with every option.
    pub async fn create_session_with(
        &self,
        create: SessionCreate,
    ) -> Result<SessionInfo, ClientError> {
        into_typed(self.request(Request::SessionCreate(create)).await?)
    }

    /// `session-list`: the sessions this client may see.
    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let list: SessionList = into_typed(self.request(Request::SessionList).await?)?;
        Ok(list.sessions)
    }

    /// `session-attach`: a new channel whose frames the returned [`Attachment`] receives.
    pub async fn attach(&self, attach: SessionAttach) -> Result<Attachment, ClientError> {
        let reply = self.exchange(Request::SessionAttach(attach)).await?;
        let frames = reply.frames;
        let attached: Attached = into_typed(reply.body)?;
        let frames = frames.ok_or_else(|| {
            ClientError::Protocol(format!(
                "attach response carries no usable channel: {}",
                attached.channel
            ))
        })?;
        let shared = self.shared().clone();
        Ok(Attachment::new(
            attached,
            frames,
            shared,
            self.keeps_output(),
        ))
    }

    /// `session-attach` in write mode to the session's active pane at a viewer size.
    pub async fn attach_session(
        &self,
        session_id: &str,
        cols: u16,
        rows: u16,
    ) -> Result<Attachment, ClientError> {
        self.attach(attach_request(session_id, cols, rows)).await
    }

    /// `session-detach`: the channel's frames stop (those already received stay readable).
    pub async fn detach(&self, channel: u32) -> Result<(), ClientError> {
        into_data(
            self.request(Request::SessionDetach(ChannelRef { channel }))
                .await?,
        )?;
        self.shared().forget_channel(channel);
        Ok(())
    }

    /// `session-destroy`: kills the session; its viewers get `session-closed`.
    pub async fn destroy_session(&self, session_id: &str) -> Result<(), ClientError> {
        let request = Request::SessionDestroy(SessionRef {
            session_id: session_id.into(),
        });
        into_data(self.request(request).await?).map(drop)
    }

    /// `session-resize` for the channel's session. Returns the success data
    /// (`{"channel", "cols", "rows", "applied"}`: `applied` is false on a read-only channel).
    pub async fn resize(&self, channel: u32, cols: u16, rows: u16) -> Result<Value, ClientError> {
        let request = Request::SessionResize(SessionResize {
            channel,
            cols,
            rows,
        });
        Ok(into_data(self.request(request).await?)?.unwrap_or_default())
    }

    /// `terminal-input`: types UTF-8 text (binary INPUT frames, [`Client::send_input`], are
    /// the efficient path; this one is acknowledged). Returns the success data
    /// (`{"channel", "bytes"}`).
    pub async fn terminal_input(&self, channel: u32, data: &str) -> Result<Value, ClientError> {
        let request = Request::TerminalInput(TerminalInput {
            channel,
            data: data.into(),
        });
        Ok(into_data(self.request(request).await?)?.unwrap_or_default())
    }

    /// `heartbeat`: the server's reply and the measured round-trip time.
    pub async fn heartbeat(&self) -> Result<(HeartbeatReply, Duration), ClientError> {
        let started = Instant::now();
        let timestamp = Some(Value::from(tmuxgate_protocol::now_millis()));
        let body = self
            .request(Request::Heartbeat(Heartbeat { timestamp }))
            .await?;
        let elapsed = started.elapsed();
        Ok((into_typed(body)?, elapsed))
    }

    /// `auth` with a user name and password: the token issued and who it speaks for.
    pub async fn login(&self, user: &str, password: &str) -> Result<AuthReply, ClientError> {
        let auth = Auth {
            username: Some(user.into()),
            password: Some(Credential::new(password)),
            token: None,
        };
        into_typed(self.request(Request::Auth(auth)).await?)
    }

    /// `auth` with a token.
    pub async fn authenticate(&self, token: &str) -> Result<AuthReply, ClientError> {
        let auth = Auth {
            username: None,
            password: None,
            token: Some(Credential::new(token)),
        };
        into_typed(self.request(Request::Auth(auth)).await?)
    }

    /// `session-share`: lets `user` attach to the session in `mode`.
    pub async fn share(
        &self,
        session_id: &str,
        user: &str,
        mode: AttachMode,
    ) -> Result<Value, ClientError> {
        let share = SessionShare {
            session_id: session_id.into(),
            user: user.into(),
            mode,
        };
        Ok(into_data(self.request(Request::SessionShare(share)).await?)?.unwrap_or_default())
    }

    /// `session-unshare`: takes `user`'s share back.
    pub async fn unshare(&self, session_id: &str, user: &str) -> Result<Value, ClientError> {
        let unshare = SessionUnshare {
            session_id: session_id.into(),
            user: user.into(),
        };
        Ok(into_data(self.request(Request::SessionUnshare(unshare)).await?)?.unwrap_or_default())
    }

    /// `metrics`: the gateway's JSON summary of its counters.
    pub async fn metrics(&self) -> Result<Value, ClientError> {
        into_typed(self.request(Request::Metrics).await?)
    }
}

/// A write-mode attach request for the session's active pane at `cols`×`rows`.
pub fn attach_request(session_id: &str, cols: u16, rows: u16) -> SessionAttach {
    SessionAttach {
        session_id: session_id.into(),
        mode: Default::default(),
        resume_from: None,
        resume_log_id: None,
        cols: Some(cols),
        rows: Some(rows),
        target: None,
    }
}
