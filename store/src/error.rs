//! The store's error type. Callers match on `Conflict` (a rule of the write said no: a unique key
//! taken, a cap reached), by its typed reason; everything else is an infrastructure failure the
//! gateway logs and answers with 500/503.

/// `Result` with the store's error.
pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write broke a rule the store enforces inside its transaction; nothing was written.
    #[error("refused: {0}")]
    Conflict(Conflict),
    /// The embedded engine failed (I/O, corruption, a full disk).
    #[error("embedded store: {0}")]
    Engine(String),
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// ScyllaDB failed, is unreachable, or answered something the backend did not expect.
    #[error("scylla: {0}")]
    Scylla(String),
    /// A stored row did not decode: a bug or a schema change without migration.
    #[error("stored row in {table} does not decode: {source}")]
    Decode {
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A sealed field did not decrypt: wrong key, or tampering.
    #[error("sealed field: {0}")]
    Cipher(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
}

/// Why the store refused a write. Callers match on the variant, never on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// An account with this id exists already.
    #[error("the account exists already")]
    Account,
    /// The phone belongs to another account.
    #[error("the phone belongs to another account")]
    Phone,
    /// The e-mail address belongs to another account.
    #[error("the email belongs to another account")]
    Email,
    /// The WeChat openid belongs to another account.
    #[error("the wechat account belongs to another account")]
    WechatAccount,
    /// The account to update does not exist (any more).
    #[error("no such account")]
    NoSuchAccount,
    /// The same person (same ID-number index) is already a patient of the account.
    #[error("the person is already a patient of the account")]
    Patient,
    /// The account holds `PatientCaps::per_account` patients already.
    #[error("the account's patient cap is reached")]
    PatientCap,
    /// `PatientCaps::accounts_per_person` other accounts hold the person already.
    #[error("the person's account cap is reached")]
    PersonCap,
    /// A patient's person (ID-number index) cannot change: remove and add instead.
    #[error("a patient's person cannot change")]
    PatientPerson,
    /// The patient to update does not exist (any more).
    #[error("no such patient")]
    NoSuchPatient,
    /// The staff username is taken.
    #[error("the username is taken")]
    Username,
    /// An audit append does not continue its chain's head (a second writer, a gap, a forged link).
    #[error("the append does not continue the audit chain")]
    AuditChain,
    /// A fee item is held by another order, or paid already.
    #[error("the fee item is taken by another order or paid")]
    FeeItemTaken,
    /// A fee item was sent again with other content under the same id.
    #[error("the fee item was sent before with other content")]
    FeeItemChanged,
    /// A ledger movement key was used before for another movement.
    #[error("the movement key was used for another movement")]
    LedgerKey,
    /// A ledger movement breaks double entry (legs not summing to zero, a repeated account).
    #[error("the movement is not balanced")]
    Ledger,
    /// A movement would take a balance below zero.
    #[error("the balance is insufficient")]
    InsufficientBalance,
    /// A policy version with this number is published already (versions never change).
    #[error("this policy version is published already")]
    PolicyVersion,
    /// The write carries a fencing token older than one the store has seen for its resource:
    /// the writer's lease passed to a newer owner (`lease`); or (ScyllaDB) the write began past
    /// its lease's deadline, when a newer owner may have taken over.
    #[error("this node no longer owns the resource: its fencing token is stale or its lease ran out")]
    StaleFence,
}

impl Conflict {
    /// What the taken key is called, for messages ("this phone is already registered").
    pub fn what(self) -> &'static str {
        match self {
            Conflict::Account | Conflict::NoSuchAccount => "account",
            Conflict::Phone => "phone",
            Conflict::Email => "email",
            Conflict::WechatAccount => "wechat account",
            Conflict::Patient | Conflict::PatientCap | Conflict::PatientPerson | Conflict::NoSuchPatient => "patient",
            Conflict::PersonCap => "person",
            Conflict::Username => "username",
            Conflict::AuditChain => "audit chain",
            Conflict::FeeItemTaken | Conflict::FeeItemChanged => "fee item",
            Conflict::LedgerKey | Conflict::Ledger => "ledger movement",
            Conflict::InsufficientBalance => "balance",
            Conflict::PolicyVersion => "policy version",
            Conflict::StaleFence => "owner",
        }
    }
}

impl From<Conflict> for StoreError {
    fn from(c: Conflict) -> Self {
        StoreError::Conflict(c)
    }
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

/// The LSM tree's own errors, as its snapshots' reads give them.
impl From<fjall::LsmError> for StoreError {
    fn from(e: fjall::LsmError) -> Self {
        StoreError::Engine(e.to_string())
    }
}
