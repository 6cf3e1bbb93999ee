//! The server's side of the HTTP API: `app`'s `Backend` trait implemented over the store and
//! the bus (which reaches the hubs of every node). The server functions in `app::api` parse input and find the session; this module
//! checks what the user may do, changes the store, and tells the affected connections.

use crate::auth;
use crate::bus::{Sessions, UserNote};
use crate::hub::session_key;
use crate::metrics::{Limit, Query};
use crate::store::{GroupRefusal, Removed, Requested, Role, StoreError};
use crate::AppState;
use app::api::ssr::Backend;
use app::api::{ApiError, ApiErrorCode};
use app::contacts::{ContactChange, ContactList, Relation, MAX_PENDING_REQUESTS};
use app::model::MessageId;
use app::model::{
    ConvId, ConvKind, Conversation, Event, GroupTitle, HistoryPage, Password, Seq, UserId, UserRef,
    Username, UsernamePrefix, MAX_SEARCH_RESULTS,
};
use app::model::{NewWebhook, Webhook};
use app::protocol::ServerFrame;
use app::search::{SearchPage, SearchQuery};

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => ApiError::new(ApiErrorCode::Conflict, e.to_string()),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal("the server could not reach its database; retry shortly")
            }
        }
    }
}

impl From<auth::Busy> for ApiError {
    fn from(e: auth::Busy) -> Self {
        ApiError::new(ApiErrorCode::RateLimited, e.to_string())
    }
}

impl AppState {
    /// The user behind a session token, or `Unauthorized`. Does not extend the session (the
    /// WebSocket and uploads use it: they cannot re-issue the cookie).
    pub async fn authenticate(&self, token: &str) -> Result<UserRef, ApiError> {
        self.store
            .session_user(&auth::token_hash(token))
            .await?
            .ok_or_else(ApiError::unauthorized)
    }

    /// As [`AppState::authenticate`], and keeps a session in use alive (sliding expiry): once
    /// less than half of its lifetime is left, its expiry moves to a full lifetime from now.
    /// That is one database write per half lifetime per session, not one per request. True when
    /// it moved: the caller re-issues the cookie with a fresh `Max-Age`.
    pub async fn authenticate_sliding(&self, token: &str) -> Result<(UserRef, bool), ApiError> {
        let hash = auth::token_hash(token);
        let (user, expires_at) = self
            .store
            .session(&hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let ttl = self.config.session_ttl().as_millis() as i64;
        let now = crate::store::now_ms();
        let extended =
            expires_at - now < ttl / 2 && self.store.extend_session(&hash, now + ttl).await?;
        Ok((user, extended))
    }

    async fn new_session(&self, user: UserId) -> Result<String, ApiError> {
        let token = auth::new_token();
        self.store
            .create_session(user, &auth::token_hash(&token), self.config.session_ttl())
            .await?;
        Ok(token)
    }

    async fn find_user(&self, name: &Username) -> Result<UserRef, ApiError> {
        self.store.user_by_name(name).await?.ok_or_else(|| {
            ApiError::not_found(format!("there is no user named {:?}", name.as_str()))
        })
    }

    /// The conversation if `me` is a member of it; `NotFound` if it does not exist, `Forbidden`
    /// if it does but `me` is not in it.
    async fn require_member(
        &self,
        me: &UserRef,
        conv: ConvId,
    ) -> Result<(ConvKind, Role), ApiError> {
        let kind = self
            .store
            .kind(conv)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("there is no conversation {conv}")))?;
        let role = self
            .store
            .role(conv, me.id)
            .await?
            .ok_or_else(|| ApiError::forbidden("you are not a member of this conversation"))?;
        Ok((kind, role))
    }

    async fn require_group_member(&self, me: &UserRef, conv: ConvId) -> Result<Role, ApiError> {
        match self.require_member(me, conv).await? {
            (ConvKind::Group, role) => Ok(role),
            (ConvKind::Direct, _) => Err(ApiError::invalid(
                "a direct chat has exactly two people; start a group instead",
            )),
        }
    }

    /// Publishes a group event to the conversation's members, like a message (it has its seq in
    /// the log; a client that misses it gets it from `sync`).
    fn publish_event(&self, event: Event) {
        let conv = event.conv;
        self.bus.publish(conv, &ServerFrame::Event(event));
    }

    async fn view(&self, me: &UserRef, conv: ConvId) -> Result<Conversation, ApiError> {
        self.store
            .conversation_for(me.id, conv)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("there is no conversation {conv}")))
    }

    /// Sends each current member their own view of `conv` (titles differ per viewer), and
    /// `removed` users a last view marked removed, with who removed them (`None`: they left).
    async fn announce(
        &self,
        conv: ConvId,
        removed: &[(UserId, Conversation, Option<UserRef>)],
    ) -> Result<(), ApiError> {
        let members = self.store.members(conv).await?;
        for member in &members {
            if let Some(view) = self.store.conversation_for(member.id, conv).await? {
                let mut frames = vec![ServerFrame::Conversation {
                    conversation: view,
                    removed: false,
                    by: None,
                }];
                // Whoever is new to them in this conversation may already be online.
                frames.extend(
                    members
                        .iter()
                        .filter(|other| other.id != member.id)
                        .filter(|other| self.presence.is_online(&self.hub, other.id))
                        .map(|other| ServerFrame::Presence {
                            user: other.id,
                            online: true,
                        }),
                );
                let note = UserNote {
                    membership: Some((conv, true)),
                    frames,
                };
                self.bus.to_user(member.id, note);
            }
        }
        for (user, last_view, by) in removed {
            let frame = ServerFrame::Conversation {
                conversation: last_view.clone(),
                removed: true,
                by: by.clone(),
            };
            let note = UserNote {
                membership: Some((conv, false)),
                frames: vec![frame],
            };
            self.bus.to_user(*user, note);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for AppState {
    async fn register(
        &self,
        username: Username,
        password: Password,
    ) -> Result<(UserRef, String), ApiError> {
        let hash = self
            .hashes
            .run(move || auth::hash_password(password.expose()))
            .await?
            .map_err(|e| ApiError::internal(format!("could not hash the password: {e}")))?;
        let user = self.store.create_user(&username, &hash).await?;
        tracing::info!(user = %user.username, "registered");
        let token = self.new_session(user.id).await?;
        Ok((user, token))
    }

    async fn login(
        &self,
        username: &str,
        password: &str,
        peer: &str,
    ) -> Result<(UserRef, String), ApiError> {
        if !self.limits.allow_login(username, peer) {
            return Err(ApiError::new(
                ApiErrorCode::RateLimited,
                "too many logins; wait a few minutes and try again",
            ));
        }
        let found = self.store.user_with_hash(username).await?;
        let stored = found.as_ref().map(|(_, hash)| hash.clone());
        let password = password.to_owned();
        let ok = self
            .hashes
            .run(move || auth::verify_password(&password, stored.as_deref()))
            .await?;
        match found {
            Some((user, _)) if ok => {
                // Asked only with the right password, so it reveals nothing to a guesser.
                if self.store.is_disabled(user.id).await? {
                    return Err(ApiError::new(
                        ApiErrorCode::Forbidden,
                        "this account is disabled; ask the operator of this server",
                    ));
                }
                let token = self.new_session(user.id).await?;
                Ok((user, token))
            }
            _ => Err(ApiError::new(
                ApiErrorCode::BadCredentials,
                "wrong username or password",
            )),
        }
    }

    fn allow_registration(&self, peer: Option<std::net::IpAddr>) -> Result<(), ApiError> {
        match peer {
            Some(peer) if !self.limits.allow_registration(peer) => Err(ApiError::new(
                ApiErrorCode::RateLimited,
                "too many accounts registered from your address; try again later",
            )),
            _ => Ok(()),
        }
    }

    async fn logout(&self, token: &str) -> Result<(), ApiError> {
        let hash = auth::token_hash(token);
        let user = self.store.session_user(&hash).await?;
        self.store.delete_session(&hash).await?;
        // The session's open WebSockets end with it (4004), on whichever node they are.
        if let Some(user) = user {
            self.bus
                .end_sessions(user.id, Sessions::One(session_key(&hash)));
        }
        Ok(())
    }

    async fn change_password(
        &self,
        me: &UserRef,
        token: &str,
        current: &str,
        new: Password,
    ) -> Result<(), ApiError> {
        if !self.limits.allow_password_check(&me.username) {
            self.metrics.refused(Limit::Login);
            return Err(ApiError::new(
                ApiErrorCode::RateLimited,
                "too many wrong passwords; wait a few minutes and try again",
            ));
        }
        let stored = self
            .store
            .user_with_hash(&me.username)
            .await?
            .map(|(_, hash)| hash);
        let current = current.to_owned();
        let ok = self
            .hashes
            .run(move || auth::verify_password(&current, stored.as_deref()))
            .await?;
        if !ok {
            return Err(ApiError::new(
                ApiErrorCode::BadCredentials,
                "the current password is wrong",
            ));
        }
        let hash = self
            .hashes
            .run(move || auth::hash_password(new.expose()))
            .await?
            .map_err(|e| ApiError::internal(format!("could not hash the password: {e}")))?;
        let keep = auth::token_hash(token);
        self.store.set_password(me.id, &hash, &keep).await?;
        self.bus
            .end_sessions(me.id, Sessions::AllBut(session_key(&keep)));
        tracing::info!(user = %me.username, "password changed; other sessions ended");
        Ok(())
    }

    async fn logout_everywhere(&self, me: &UserRef) -> Result<(), ApiError> {
        self.store.delete_sessions_of(me.id).await?;
        self.bus.end_sessions(me.id, Sessions::All);
        tracing::info!(user = %me.username, "logged out everywhere");
        Ok(())
    }

    async fn authenticate(&self, token: &str) -> Result<UserRef, ApiError> {
        let (user, extended) = self.authenticate_sliding(token).await?;
        if extended {
            app::api::ssr::set_session_cookie(token);
        }
        Ok(user)
    }

    fn session_max_age(&self) -> u64 {
        self.config.session_ttl().as_secs().max(1)
    }

    fn cookie_attributes(&self) -> &str {
        if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    }

    async fn conversations(&self, me: &UserRef) -> Result<Vec<Conversation>, ApiError> {
        Ok(self.store.conversations_for(me.id).await?)
    }

    async fn open_direct(&self, me: &UserRef, other: Username) -> Result<Conversation, ApiError> {
        let other = self.find_user(&other).await?;
        if other.id == me.id {
            return Err(ApiError::invalid(
                "a direct chat needs another person: open one with someone else's username",
            ));
        }
        let (conv, created) = self.store.open_direct(me.id, other.id).await?;
        if created {
            self.announce(conv, &[]).await?;
        }
        self.view(me, conv).await
    }

    async fn create_group(
        &self,
        me: &UserRef,
        title: GroupTitle,
        members: Vec<Username>,
    ) -> Result<Conversation, ApiError> {
        let mut ids = Vec::with_capacity(members.len());
        for name in &members {
            ids.push(self.find_user(name).await?.id);
        }
        let (conv, created) = self.store.create_group(me.id, &title, &ids).await?;
        self.announce(conv, &[]).await?;
        self.publish_event(created);
        self.view(me, conv).await
    }

    async fn add_member(
        &self,
        me: &UserRef,
        conv: ConvId,
        user: Username,
    ) -> Result<Conversation, ApiError> {
        self.require_group_member(me, conv).await?;
        let user = self.find_user(&user).await?;
        if let Some(added) = self.store.add_member(conv, me.id, user.id).await? {
            self.announce(conv, &[]).await?;
            self.publish_event(added);
        }
        self.view(me, conv).await
    }

    async fn remove_member(
        &self,
        me: &UserRef,
        conv: ConvId,
        user: Username,
    ) -> Result<Conversation, ApiError> {
        let role = self.require_group_member(me, conv).await?;
        let user = self.find_user(&user).await?;
        let Some(last_view) = self.store.conversation_for(user.id, conv).await? else {
            return Err(ApiError::not_found(format!(
                "{} is not in this group",
                user.username
            )));
        };
        let events = self
            .store
            .remove_member(conv, me.id, user.id)
            .await?
            .map_err(|refusal| match refusal {
                GroupRefusal::NotAllowed if role.manages() => {
                    ApiError::forbidden("nobody can remove the group's owner")
                }
                GroupRefusal::NotAllowed => {
                    ApiError::forbidden("only the group's owner and admins can remove others")
                }
                other => group_refusal(other, &user),
            })?;
        for event in events {
            self.publish_event(event);
        }
        let by = (user.id != me.id).then(|| me.clone());
        self.announce(conv, &[(user.id, last_view.clone(), by)])
            .await?;
        if user.id == me.id {
            // Removing yourself is leaving: there is no view of the group left to show, so the
            // answer is the last one (the same the `removed` frame carries).
            return Ok(last_view);
        }
        self.view(me, conv).await
    }

    async fn leave_group(&self, me: &UserRef, conv: ConvId) -> Result<(), ApiError> {
        self.require_group_member(me, conv).await?;
        let last_view = self.view(me, conv).await?;
        let events = self
            .store
            .remove_member(conv, me.id, me.id)
            .await?
            .map_err(|refusal| group_refusal(refusal, me))?;
        for event in events {
            self.publish_event(event);
        }
        self.announce(conv, &[(me.id, last_view, None)]).await
    }

    async fn rename_group(
        &self,
        me: &UserRef,
        conv: ConvId,
        title: GroupTitle,
    ) -> Result<Conversation, ApiError> {
        self.require_group_member(me, conv).await?;
        let renamed =
            self.store
                .rename(conv, me.id, &title)
                .await?
                .map_err(|refusal| match refusal {
                    GroupRefusal::NotAllowed => {
                        ApiError::forbidden("only the group's owner and admins can rename it")
                    }
                    other => group_refusal(other, me),
                })?;
        self.announce(conv, &[]).await?;
        self.publish_event(renamed);
        self.view(me, conv).await
    }

    async fn set_role(
        &self,
        me: &UserRef,
        conv: ConvId,
        user: Username,
        role: Role,
    ) -> Result<Conversation, ApiError> {
        let mine = self.require_group_member(me, conv).await?;
        let user = self.find_user(&user).await?;
        let changed = self
            .store
            .set_role(conv, me.id, user.id, role)
            .await?
            .map_err(|refusal| match refusal {
                GroupRefusal::NotAllowed if mine.sets_roles() => ApiError::forbidden(
                    "the owner's role does not change: ownership passes on only when the owner \
                     leaves",
                ),
                GroupRefusal::NotAllowed => {
                    ApiError::forbidden("only the group's owner makes and unmakes admins")
                }
                other => group_refusal(other, &user),
            })?;
        // Already in that role: nothing was logged, nothing to tell.
        if let Some(event) = changed {
            self.announce(conv, &[]).await?;
            self.publish_event(event);
        }
        self.view(me, conv).await
    }

    async fn history(
        &self,
        me: &UserRef,
        conv: ConvId,
        before_seq: Option<Seq>,
        limit: u32,
    ) -> Result<HistoryPage, ApiError> {
        self.require_member(me, conv).await?;
        let started = std::time::Instant::now();
        let page = self.store.history(me.id, conv, before_seq, limit).await;
        self.metrics.query_took(Query::History, started);
        Ok(page?)
    }

    async fn search(
        &self,
        me: &UserRef,
        query: SearchQuery,
        conv: Option<ConvId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<SearchPage, ApiError> {
        if let Some(conv) = conv {
            self.require_member(me, conv).await?;
        }
        let query = query
            .searchable(self.store.min_search_word())
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let started = std::time::Instant::now();
        let page = self.store.search(me.id, &query, conv, before, limit).await;
        self.metrics.query_took(Query::Search, started);
        Ok(page?)
    }

    // ----- contacts and user search ------------------------------------------------------------

    async fn contacts(&self, me: &UserRef) -> Result<ContactList, ApiError> {
        Ok(self.store.contacts_of(me.id).await?)
    }

    async fn request_contact(
        &self,
        me: &UserRef,
        other: Username,
    ) -> Result<ContactChange, ApiError> {
        let other = self.contact_candidate(me, &other).await?;
        match self.store.request_contact(me.id, other.id).await? {
            Requested::Sent => Ok(self.tell_contact(me, &other, Relation::Outgoing)),
            Requested::Accepted { conv, created } => {
                self.contact_accepted(me, &other, conv, created).await
            }
            Requested::AlreadyContacts => Err(ApiError::new(
                ApiErrorCode::Conflict,
                format!("{} is already one of your contacts", other.username),
            )),
            Requested::AlreadyAsked => Err(ApiError::new(
                ApiErrorCode::Conflict,
                format!(
                    "you have already asked {}; wait for their answer",
                    other.username
                ),
            )),
            Requested::TooManyPending => Err(ApiError::new(
                ApiErrorCode::RateLimited,
                format!(
                    "{MAX_PENDING_REQUESTS} of your contact requests are still unanswered; \
                     withdraw some or wait for answers"
                ),
            )),
        }
    }

    async fn accept_contact(
        &self,
        me: &UserRef,
        other: Username,
    ) -> Result<ContactChange, ApiError> {
        let other = self.contact_candidate(me, &other).await?;
        match self.store.accept_contact(me.id, other.id).await? {
            Some((conv, created)) => self.contact_accepted(me, &other, conv, created).await,
            None => Err(no_request_from(&other)),
        }
    }

    async fn decline_contact(
        &self,
        me: &UserRef,
        other: Username,
    ) -> Result<ContactChange, ApiError> {
        let other = self.contact_candidate(me, &other).await?;
        if self.store.decline_contact(me.id, other.id).await? {
            Ok(self.tell_contact(me, &other, Relation::None))
        } else {
            Err(no_request_from(&other))
        }
    }

    async fn remove_contact(
        &self,
        me: &UserRef,
        other: Username,
    ) -> Result<ContactChange, ApiError> {
        let other = self.contact_candidate(me, &other).await?;
        match self.store.remove_contact(me.id, other.id).await? {
            Removed::Contact | Removed::Withdrawn => {
                Ok(self.tell_contact(me, &other, Relation::None))
            }
            Removed::Nothing => Err(ApiError::not_found(format!(
                "{} is not one of your contacts and you have no request waiting with them",
                other.username
            ))),
        }
    }

    async fn search_users(
        &self,
        me: &UserRef,
        prefix: UsernamePrefix,
    ) -> Result<Vec<UserRef>, ApiError> {
        Ok(self
            .store
            .search_users(me.id, &prefix, MAX_SEARCH_RESULTS)
            .await?)
    }

    async fn create_webhook(
        &self,
        me: &UserRef,
        conv: ConvId,
        name: Username,
    ) -> Result<NewWebhook, ApiError> {
        self.require_group_member(me, conv).await?;
        let bot = self
            .store
            .webhook_bot(conv, &name)
            .await
            .map_err(|e| match e {
                StoreError::UsernameTaken => ApiError::new(
                    ApiErrorCode::Conflict,
                    format!(
                        "{:?} is someone's account already; name the webhook's bot differently",
                        name.as_str()
                    ),
                ),
                other => other.into(),
            })?;
        // The bot joins like a person: the `added` event, and every member hears of it.
        if let Some(added) = self.store.add_member(conv, me.id, bot.id).await? {
            self.announce(conv, &[]).await?;
            self.publish_event(added);
        }
        let secret = auth::new_token();
        let webhook = self
            .store
            .create_webhook(conv, bot.id, me.id, &auth::token_hash(&secret))
            .await?;
        Ok(NewWebhook {
            webhook,
            path: format!("/hooks/{secret}"),
        })
    }

    async fn webhooks(&self, me: &UserRef, conv: ConvId) -> Result<Vec<Webhook>, ApiError> {
        self.require_group_member(me, conv).await?;
        Ok(self.store.webhooks(conv).await?)
    }

    async fn revoke_webhook(&self, me: &UserRef, conv: ConvId, id: i64) -> Result<(), ApiError> {
        self.require_group_member(me, conv).await?;
        if self.store.delete_webhook(conv, id).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("this group has no such webhook"))
        }
    }
}

impl AppState {
    /// The other person of a contact call: an existing user who is not `me`.
    async fn contact_candidate(&self, me: &UserRef, other: &Username) -> Result<UserRef, ApiError> {
        if other.as_str() == me.username {
            return Err(ApiError::invalid(
                "you cannot be your own contact; enter someone else's username",
            ));
        }
        self.find_user(other).await
    }

    /// Tells every connection of both people (on every node) where they now stand with each
    /// other; returns `me`'s side of it, the API's reply.
    fn tell_contact(&self, me: &UserRef, other: &UserRef, mine: Relation) -> ContactChange {
        let theirs = match mine {
            Relation::Outgoing => Relation::Incoming,
            Relation::Incoming => Relation::Outgoing,
            same => same,
        };
        let note = |user: &UserRef, relation| UserNote {
            membership: None,
            frames: vec![ServerFrame::Contact(ContactChange {
                user: user.clone(),
                relation,
            })],
        };
        self.bus.to_user(other.id, note(me, theirs));
        self.bus.to_user(me.id, note(other, mine));
        ContactChange {
            user: other.clone(),
            relation: mine,
        }
    }

    /// After an accept: both hear it, and a newly opened direct chat is announced to both (which
    /// also tells each whether the other is online: presence travels with shared conversations).
    async fn contact_accepted(
        &self,
        me: &UserRef,
        other: &UserRef,
        conv: ConvId,
        created: bool,
    ) -> Result<ContactChange, ApiError> {
        if created {
            self.announce(conv, &[]).await?;
        }
        Ok(self.tell_contact(me, other, Relation::Contact))
    }
}

/// The refusals of a group change that read the same whatever the change (`NotAllowed` is worded
/// by each caller). `subject` is whom the change was about.
fn group_refusal(refusal: GroupRefusal, subject: &UserRef) -> ApiError {
    match refusal {
        GroupRefusal::NotMember => ApiError::forbidden("you are not a member of this group"),
        GroupRefusal::NoSuchMember => {
            ApiError::not_found(format!("{} is not in this group", subject.username))
        }
        GroupRefusal::NotAllowed => {
            ApiError::forbidden("your role in this group does not allow that")
        }
    }
}

fn no_request_from(other: &UserRef) -> ApiError {
    ApiError::not_found(format!(
        "{} has no contact request waiting for your answer",
        other.username
    ))
}
