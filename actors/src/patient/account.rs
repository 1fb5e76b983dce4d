//! The account's own rows, changed one at a time by its actor (two devices editing at once cannot
//! lose each other's change): the profile, the bound phone, the password, notification preferences.

use hospital_domain::live::{PersonalEvent, ProfileUpdate};
use hospital_domain::notify::{KindChannels, NotificationPreferences};
use hospital_domain::Phone;
use hospital_store::{Account, PendingEvent, StoreError};

use super::msg::{AccountError, ProfileChange};
use super::state::PatientState;
use crate::error::ActorError;

/// What the account's devices are shown of it (the live `profile` event, and the API's view).
pub fn profile_update(a: &Account) -> ProfileUpdate {
    ProfileUpdate {
        id: a.id,
        phone: a.phone.as_ref().map(|p| p.masked()),
        email: a.email.as_ref().map(|e| e.as_str().to_string()),
        wechat_bound: a.wechat_openid.is_some(),
        has_password: a.password_hash.is_some(),
        profile: a.profile.clone(),
        created_at: a.created_at,
    }
}

impl PatientState {
    async fn account_row(&self) -> Result<Account, AccountError> {
        self.ctx.stores.data.account(self.account).await?.ok_or(AccountError::NoSuchAccount)
    }

    /// Writes the account's row with `events`, under the account's fence.
    async fn write_account(&mut self, a: &Account, events: &[PendingEvent]) -> Result<(), StoreError> {
        let written = self.ctx.stores.data.update_account(a, events, self.held.fence().as_ref()).await;
        self.after_write(written)
    }

    pub(super) async fn update_profile(&mut self, change: ProfileChange) -> Result<Account, AccountError> {
        let mut a = self.account_row().await?;
        if let Some(n) = change.name {
            a.profile.name = Some(n);
        }
        if let Some(g) = change.gender {
            a.profile.gender = Some(g);
        }
        if let Some(d) = change.birth_date {
            a.profile.birth_date = Some(d);
        }
        // Other devices of the account see the change live: the event is written with it.
        let events = vec![PendingEvent::new(a.id, PersonalEvent::Profile(profile_update(&a)))];
        self.write_account(&a, &events).await?;
        self.ctx.events.durable(events);
        Ok(a)
    }

    pub(super) async fn bind_phone(&mut self, phone: Phone) -> Result<Account, AccountError> {
        let mut a = self.account_row().await?;
        a.phone = Some(phone);
        match self.write_account(&a, &[]).await {
            Ok(()) => Ok(a),
            // Whichever key clashed, the phone is what changed.
            Err(StoreError::Conflict(_)) => Err(AccountError::PhoneTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a change of how the account signs in, with the `profile` event its other devices
    /// see (the masked phone, `has_password`).
    async fn write_sign_in(&mut self, a: Account) -> Result<Account, AccountError> {
        let events = vec![PendingEvent::new(a.id, PersonalEvent::Profile(profile_update(&a)))];
        self.write_account(&a, &events).await?;
        self.ctx.events.durable(events);
        Ok(a)
    }

    pub(super) async fn unbind_phone(&mut self) -> Result<Account, AccountError> {
        let mut a = self.account_row().await?;
        if a.phone.is_none() {
            return Err(AccountError::NoPhone);
        }
        if a.wechat_openid.is_none() && (a.email.is_none() || a.password_hash.is_none()) {
            return Err(AccountError::LastSignInMethod);
        }
        a.phone = None;
        self.write_sign_in(a).await
    }

    pub(super) async fn set_password(
        &mut self,
        expected: Option<String>,
        hash: String,
    ) -> Result<Account, AccountError> {
        let mut a = self.account_row().await?;
        // The actor serialises the account's changes, so this compare-and-set against what the
        // caller verified is exact: of two devices changing the password, the second is refused.
        if a.password_hash != expected {
            return Err(AccountError::PasswordChanged);
        }
        a.password_hash = Some(hash);
        self.write_sign_in(a).await
    }

    pub(super) async fn set_preferences(
        &mut self,
        kinds: &[KindChannels],
    ) -> Result<NotificationPreferences, ActorError> {
        let data = &self.ctx.stores.data;
        let prefs = data.notification_preferences(self.account).await?.with_changes(kinds);
        let written = data.put_notification_preferences(self.account, &prefs, self.held.fence().as_ref()).await;
        self.after_write(written)?;
        Ok(prefs)
    }
}
