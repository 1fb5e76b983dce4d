//! The consent check every patient route passes (SET-2, `http::consent`): the latest versions
//! of the policies kept in memory, reloaded from the store at most every `REFRESH` (a version
//! published on another node applies here within that), and the accounts known to have
//! accepted them remembered; only a patient with something pending reads their consents from the
//! store on each call.

use hospital_domain::privacy::{latest, pending, PolicyKind, PolicyVersion};
use hospital_domain::AccountId;
use hospital_store::DataStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};

/// How stale this node's view of the latest versions may get.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Accounts remembered as having consented, at most (the memory is cleared beyond it).
const MAX_REMEMBERED: usize = 100_000;

/// The latest version of each kind, as last loaded.
struct Latest {
    loaded: Instant,
    versions: Arc<Vec<PolicyVersion>>,
}

/// The (kind, version) pairs of texts.
type Accepted = Vec<(PolicyKind, u32)>;

/// This node's view of the latest versions, and the accounts known to have accepted them.
#[derive(Clone, Default)]
pub struct ConsentGate {
    latest: Arc<RwLock<Option<Latest>>>,
    /// Account -> the (kind, version) pairs it has accepted, as last seen complete.
    accepted: Arc<Mutex<HashMap<AccountId, Accepted, foldhash::fast::RandomState>>>,
}

/// A text's (kind, version).
fn pair(v: &PolicyVersion) -> (PolicyKind, u32) {
    (v.kind, v.version)
}

fn pairs(versions: &[PolicyVersion]) -> Accepted {
    versions.iter().map(pair).collect()
}

impl ConsentGate {
    /// The latest version of each kind published (none: nothing to consent to).
    pub async fn latest(&self, data: &dyn DataStore) -> ApiResult<Arc<Vec<PolicyVersion>>> {
        if let Some(l) = self.latest.read().expect("consent lock").as_ref().filter(|l| l.loaded.elapsed() < REFRESH) {
            return Ok(l.versions.clone());
        }
        self.reload(data).await
    }

    pub(crate) async fn reload(&self, data: &dyn DataStore) -> ApiResult<Arc<Vec<PolicyVersion>>> {
        let all = data.policies().await?;
        let versions: Arc<Vec<PolicyVersion>> = Arc::new(latest(&all).into_iter().cloned().collect());
        *self.latest.write().expect("consent lock") =
            Some(Latest { loaded: Instant::now(), versions: versions.clone() });
        Ok(versions)
    }

    /// Refuses a patient who has not accepted the latest versions (403 `consent_required`).
    pub async fn check(&self, data: &dyn DataStore, account: AccountId) -> ApiResult<()> {
        let latest = self.latest(data).await?;
        if latest.is_empty() {
            return Ok(());
        }
        // Compared in place: this runs on every patient request, and a fresh list each time
        // was an allocation a request for nothing.
        let known = |a: &Accepted| a.iter().copied().eq(latest.iter().map(pair));
        if self.accepted.lock().expect("consent lock").get(&account).is_some_and(known) {
            return Ok(());
        }
        let want = pairs(&latest);
        let consents = data.consents_of(account).await?;
        let left = pending(&latest, &consents);
        if left.is_empty() {
            self.remember(account, want);
            return Ok(());
        }
        let names: Vec<String> =
            left.iter().map(|v| format!("{}（{}）第{}版", v.kind.label(), v.kind, v.version)).collect();
        Err(ApiError::Denied {
            code: "consent_required",
            message: format!(
                "accept {} first: read GET /api/v1/policies, accept with POST /api/v1/me/consents",
                names.join("、")
            ),
        })
    }

    fn remember(&self, account: AccountId, accepted: Accepted) {
        let mut m = self.accepted.lock().expect("consent lock");
        if m.len() >= MAX_REMEMBERED {
            m.clear();
        }
        m.insert(account, accepted);
    }
}
